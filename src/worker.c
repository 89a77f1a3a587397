/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The background sweeper and the shared record of the last sweep.
 *
 * With shared_preload_libraries = 'haematite' the postmaster starts the
 * sweep launcher, a background worker that connects to no database.  Every
 * haematite.sweep_interval the launcher looks up haematite.database
 * in pg_database and starts a sweep worker connected to that database.  The
 * sweep worker deletes expired events in transactions of at most
 * haematite.sweep_batch_size rows, logs one line if it deleted any, and
 * exits.  So no haematite process stays connected to the database between
 * sweeps.
 *
 * Before each batch the sweep worker takes two locks without waiting:
 * RowExclusiveLock on the database object, which is what a new connection
 * takes and what DROP DATABASE and ALTER DATABASE conflict with, and
 * RowExclusiveLock on the event table.  When another transaction holds or
 * requests a conflicting lock on either, the worker ends its round.  So
 * DROP DATABASE, DROP EXTENSION, TRUNCATE and the like wait at most for the
 * batch in progress, and a plain DROP DATABASE of the swept database
 * succeeds.  Appends take no lock that conflicts with a
 * sweep, and a sweep never locks a stream's head row.
 *
 * Both workers start only once recovery has finished: a hot standby runs
 * neither, and a promoted standby starts the launcher as part of promotion.
 *
 * Shared memory holds one HaematiteSweepState, guarded by its spinlock.  It
 * records the last sweep of each database, written by the sweep worker
 * after every batch and, when their transaction commits, by calls of
 * sweep() in any backend.  It keeps SWEEP_RECORD_SLOTS databases; a new one
 * replaces the database whose last sweep is oldest.  It also keeps the
 * outcome of the last round, which the sweep worker writes for the
 * launcher.  It exists only when the library is preloaded; otherwise
 * last_sweep() returns NULLs and nothing is recorded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "haematite.h"

/*
 * Seconds the postmaster waits before it starts the launcher again after
 * the launcher exited with an error or was terminated.  After a crash of
 * any backend the postmaster reinitializes shared memory and starts the
 * launcher with the other processes.
 */
#define SWEEP_LAUNCHER_RESTART_SECONDS 10

/* How many databases the shared record of the last sweep keeps. */
#define SWEEP_RECORD_SLOTS 32

/* How a sweep round ended, as reported by the sweep worker. */
typedef enum SweepRoundOutcome
{
	SWEEP_ROUND_FAILED,			/* the worker exited before reporting, for
								 * example after an error it logged */
	SWEEP_ROUND_SWEPT,			/* it swept until a batch came back short */
	SWEEP_ROUND_YIELDED,		/* it stopped early because DDL has or
								 * requests a conflicting lock */
	SWEEP_ROUND_NO_DATABASE,	/* haematite.database does not exist */
	SWEEP_ROUND_NO_CONNECTIONS, /* it exists but accepts no connections */
	SWEEP_ROUND_NO_EXTENSION,	/* the extension is not installed there */
	SWEEP_ROUND_NO_WORKER_SLOT	/* the launcher could not register a worker */
} SweepRoundOutcome;

/* The last sweep of one database. */
typedef struct SweepRecord
{
	Oid			database;		/* InvalidOid for a slot never used */
	TimestampTz finished_at;	/* when the sweep finished */
	int64		deleted;		/* how many events it deleted */
	HaematiteSweepSource source;	/* who ran it */
} SweepRecord;

/* The shared state of the sweeper; see the file header. */
typedef struct HaematiteSweepState
{
	slock_t		mutex;			/* guards every field below */
	SweepRecord records[SWEEP_RECORD_SLOTS];
	SweepRoundOutcome round_outcome;	/* how the last worker round ended */
} HaematiteSweepState;

/* The shared state, or NULL when the library was not preloaded. */
static HaematiteSweepState *sweep_state = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * A sweep by hand that the current transaction ran.  The list of them lives
 * in TopTransactionContext: a subtransaction abort drops its entries, and
 * the commit records their total as the last sweep.
 */
typedef struct PendingSweep
{
	SubTransactionId subxact_id;	/* the subtransaction that ran it */
	int64		deleted;		/* the count that sweep() returned */
} PendingSweep;

static List *pending_sweeps = NIL;
static bool sweep_callbacks_registered = false;

/* In the launcher: the sweep worker it waits for, or NULL. */
static BackgroundWorkerHandle *running_sweep_worker = NULL;

PG_FUNCTION_INFO_V1(last_sweep);

PGDLLEXPORT void haematite_sweep_launcher_main(Datum main_arg);
PGDLLEXPORT void haematite_sweep_worker_main(Datum main_arg);

static void record_pending_sweeps(XactEvent event, void *arg);
static void forget_aborted_sweeps(SubXactEvent event,
								  SubTransactionId subxact_id,
								  SubTransactionId parent_subxact_id,
								  void *arg);
static void sweep_shmem_request(void);
static void sweep_shmem_startup(void);
static SweepRoundOutcome run_sweep_round(void);
static SweepRoundOutcome find_database(const char *database_name,
									   Oid *database_oid);
static void report_round_outcome(SweepRoundOutcome outcome,
								 SweepRoundOutcome *reported);
static void terminate_sweep_worker(int code, Datum arg);
static SweepRoundOutcome lock_sweep_targets(void);
static void set_round_outcome(SweepRoundOutcome outcome);
static void define_sweep_worker(BackgroundWorker *worker,
								const char *function_name,
								const char *type, int restart_time);

/*
 * define_sweep_worker
 *		Fill *worker with what the launcher and the sweep worker share: a
 *		database connection, start after recovery, and an entry point here.
 *
 * The caller sets bgw_name when it differs from the type.
 */
static void
define_sweep_worker(BackgroundWorker *worker, const char *function_name,
					const char *type, int restart_time)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart_time;
	strlcpy(worker->bgw_library_name, "haematite", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, function_name, BGW_MAXLEN);
	strlcpy(worker->bgw_name, type, BGW_MAXLEN);
	strlcpy(worker->bgw_type, type, BGW_MAXLEN);
}

/*
 * haematite_worker_init
 *		Request the shared state and register the sweep launcher.
 *
 * Must be called from _PG_init while shared_preload_libraries is being
 * processed, because only then can a library add shared memory and static
 * background workers.
 */
void
haematite_worker_init(void)
{
	BackgroundWorker worker;

	Assert(process_shared_preload_libraries_in_progress);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sweep_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sweep_shmem_startup;

	define_sweep_worker(&worker, "haematite_sweep_launcher_main",
						"haematite sweep launcher",
						SWEEP_LAUNCHER_RESTART_SECONDS);
	RegisterBackgroundWorker(&worker);
}

/*
 * sweep_shmem_request
 *		Reserve shared memory for the sweeper's state (shmem_request_hook).
 */
static void
sweep_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(MAXALIGN(sizeof(HaematiteSweepState)));
}

/*
 * sweep_shmem_startup
 *		Find or create the sweeper's state (shmem_startup_hook).
 *
 * Runs in the postmaster at startup and after every crash restart, which
 * starts over with an empty record.
 */
static void
sweep_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sweep_state = ShmemInitStruct("haematite sweep state",
								  sizeof(HaematiteSweepState), &found);
	if (!found)
	{
		memset(sweep_state, 0, sizeof(HaematiteSweepState));
		SpinLockInit(&sweep_state->mutex);
		sweep_state->round_outcome = SWEEP_ROUND_FAILED;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * record_last_sweep
 *		Store a sweep as the last one of the current database in shared
 *		memory.
 *
 * Takes the database's slot, else an unused one, else the slot whose sweep
 * is oldest.  Does nothing when the library was not preloaded.  Never
 * raises.
 */
void
record_last_sweep(TimestampTz finished_at, int64 deleted,
				  HaematiteSweepSource source)
{
	SweepRecord *slot = NULL;
	int			i;

	if (sweep_state == NULL)
		return;

	SpinLockAcquire(&sweep_state->mutex);
	for (i = 0; i < SWEEP_RECORD_SLOTS; i++)
	{
		SweepRecord *candidate = &sweep_state->records[i];

		if (candidate->database == MyDatabaseId)
		{
			slot = candidate;
			break;
		}
		if (slot == NULL ||
			(slot->database != InvalidOid &&
			 (candidate->database == InvalidOid ||
			  candidate->finished_at < slot->finished_at)))
			slot = candidate;
	}
	slot->database = MyDatabaseId;
	slot->finished_at = finished_at;
	slot->deleted = deleted;
	slot->source = source;
	SpinLockRelease(&sweep_state->mutex);
}

/*
 * record_sweep_at_commit
 *		Record a sweep by hand as the last sweep when its transaction commits.
 *
 * Called by sweep() with the count it returns.  The sweeps of one
 * transaction are recorded as one, with their total count and the commit
 * time.  Sweeps of an aborted subtransaction are left out.  Nothing is
 * recorded when the transaction aborts or is prepared for two-phase commit.  Does
 * nothing when the library was not preloaded.
 */
void
record_sweep_at_commit(int64 deleted)
{
	PendingSweep *sweep;
	MemoryContext old_context;

	if (sweep_state == NULL)
		return;

	if (!sweep_callbacks_registered)
	{
		RegisterXactCallback(record_pending_sweeps, NULL);
		RegisterSubXactCallback(forget_aborted_sweeps, NULL);
		sweep_callbacks_registered = true;
	}

	old_context = MemoryContextSwitchTo(TopTransactionContext);
	sweep = palloc(sizeof(PendingSweep));
	sweep->subxact_id = GetCurrentSubTransactionId();
	sweep->deleted = deleted;
	pending_sweeps = lappend(pending_sweeps, sweep);
	MemoryContextSwitchTo(old_context);
}

/*
 * record_pending_sweeps
 *		Record the sweeps by hand of a committed transaction (XactCallback).
 *
 * Runs after the commit, so it must not raise; record_last_sweep never
 * does.  The list's memory goes with TopTransactionContext.
 */
static void
record_pending_sweeps(XactEvent event, void *arg)
{
	ListCell   *cell;
	int64		deleted = 0;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (pending_sweeps == NIL)
				break;
			foreach(cell, pending_sweeps)
				deleted += ((PendingSweep *) lfirst(cell))->deleted;
			record_last_sweep(GetCurrentTimestamp(), deleted,
							  HAEMATITE_SWEEP_BY_HAND);
			pending_sweeps = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			pending_sweeps = NIL;
			break;
		default:
			break;
	}
}

/*
 * forget_aborted_sweeps
 *		Drop the sweeps of an aborted subtransaction, and hand those of a
 *		committed one to its parent (SubXactCallback).
 */
static void
forget_aborted_sweeps(SubXactEvent event, SubTransactionId subxact_id,
					  SubTransactionId parent_subxact_id, void *arg)
{
	ListCell   *cell;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(cell, pending_sweeps)
		{
			PendingSweep *sweep = (PendingSweep *) lfirst(cell);

			if (sweep->subxact_id == subxact_id)
				sweep->subxact_id = parent_subxact_id;
		}
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(cell, pending_sweeps)
		{
			PendingSweep *sweep = (PendingSweep *) lfirst(cell);

			if (sweep->subxact_id == subxact_id)
				pending_sweeps = foreach_delete_current(pending_sweeps, cell);
		}
	}
}

/*
 * last_sweep(OUT finished_at timestamptz, OUT deleted bigint,
 *			  OUT source text) RETURNS record
 *
 * Returns the last sweep of the current database recorded since the server
 * started: when it finished, how many events it deleted, and 'worker' or
 * 'manual' for who ran it.  Returns one row of NULLs when there is none or
 * the library was not preloaded.
 */
Datum
last_sweep(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3] = {0};
	bool		nulls[3] = {true, true, true};
	bool		has_last_sweep = false;
	TimestampTz finished_at = 0;
	int64		deleted = 0;
	HaematiteSweepSource source = HAEMATITE_SWEEP_BY_WORKER;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (sweep_state != NULL)
	{
		int			i;

		SpinLockAcquire(&sweep_state->mutex);
		for (i = 0; i < SWEEP_RECORD_SLOTS; i++)
		{
			SweepRecord *record = &sweep_state->records[i];

			if (record->database == MyDatabaseId)
			{
				has_last_sweep = true;
				finished_at = record->finished_at;
				deleted = record->deleted;
				source = record->source;
				break;
			}
		}
		SpinLockRelease(&sweep_state->mutex);
	}

	if (has_last_sweep)
	{
		values[0] = TimestampTzGetDatum(finished_at);
		values[1] = Int64GetDatum(deleted);
		values[2] = CStringGetTextDatum(source == HAEMATITE_SWEEP_BY_WORKER ?
										"worker" : "manual");
		nulls[0] = nulls[1] = nulls[2] = false;
	}

	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values,
													  nulls)));
}

/*
 * haematite_sweep_launcher_main
 *		Entry point of the sweep launcher: start a sweep round every
 *		haematite.sweep_interval until terminated.
 *
 * SIGHUP rereads the configuration, so a new interval or database applies
 * from the next round on.  SIGTERM ends the launcher, and the sweep worker
 * it waits for, at once (exit status 1, so the postmaster starts it again
 * unless the server is shutting down).
 */
void
haematite_sweep_launcher_main(Datum main_arg)
{
	TimestampTz last_round_end = 0;
	SweepRoundOutcome reported = SWEEP_ROUND_SWEPT;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* Connect to the shared catalogs only, to read pg_database. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	before_shmem_exit(terminate_sweep_worker, (Datum) 0);

	ereport(LOG,
			(errmsg("haematite sweep launcher started for database \"%s\", interval %d ms, batch size %d",
					haematite_sweep_database, haematite_sweep_interval,
					haematite_sweep_batch_size)));

	for (;;)
	{
		int			wait_events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;
		long		timeout = -1;

		CHECK_FOR_INTERRUPTS();

		/* Apply a reload; a changed database gets its problems reported anew. */
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			reported = SWEEP_ROUND_SWEPT;
		}

		/*
		 * Run a round when the interval has passed since the last one ended
		 * (at once after startup), else sleep until then.  An interval of 0
		 * sleeps until a signal arrives.
		 */
		if (haematite_sweep_interval > 0)
		{
			TimestampTz now = GetCurrentTimestamp();
			TimestampTz next_round;

			next_round = TimestampTzPlusMilliseconds(last_round_end,
													 haematite_sweep_interval);
			if (now >= next_round)
			{
				report_round_outcome(run_sweep_round(), &reported);
				last_round_end = GetCurrentTimestamp();
				continue;
			}
			wait_events |= WL_TIMEOUT;
			timeout = TimestampDifferenceMilliseconds(now, next_round);
		}

		(void) WaitLatch(MyLatch, wait_events, timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * run_sweep_round
 *		Start a sweep worker in haematite.database and wait until it exits.
 *
 * Returns how the round ended.  Signals are served while waiting, so
 * SIGTERM ends the launcher (and terminate_sweep_worker the worker) at once.
 */
static SweepRoundOutcome
run_sweep_round(void)
{
	Oid			database_oid;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	SweepRoundOutcome outcome;

	outcome = find_database(haematite_sweep_database, &database_oid);
	if (outcome != SWEEP_ROUND_SWEPT)
		return outcome;

	/* The worker overwrites this unless it fails before the end. */
	set_round_outcome(SWEEP_ROUND_FAILED);

	define_sweep_worker(&worker, "haematite_sweep_worker_main",
						"haematite sweep worker", BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN,
			 "haematite sweep worker for database %u", database_oid);
	worker.bgw_main_arg = ObjectIdGetDatum(database_oid);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return SWEEP_ROUND_NO_WORKER_SLOT;

	/*
	 * Wait for the worker to exit.  The postmaster sets our latch when it
	 * starts and when it stops (bgw_notify_pid).
	 */
	running_sweep_worker = handle;
	for (;;)
	{
		pid_t		pid;
		BgwHandleStatus status;

		status = GetBackgroundWorkerPid(handle, &pid);
		if (status == BGWH_STOPPED)
			break;
		if (status == BGWH_POSTMASTER_DIED)
			proc_exit(1);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	running_sweep_worker = NULL;
	pfree(handle);

	SpinLockAcquire(&sweep_state->mutex);
	outcome = sweep_state->round_outcome;
	SpinLockRelease(&sweep_state->mutex);

	return outcome;
}

/*
 * find_database
 *		Find the database named database_name and check that a sweep worker
 *		can connect to it.
 *
 * Sets *database_oid and returns SWEEP_ROUND_SWEPT when it can.  Returns
 * SWEEP_ROUND_NO_DATABASE when there is no such database.  Returns
 * SWEEP_ROUND_NO_CONNECTIONS when it does not accept connections (such as
 * template0, or a database that an interrupted DROP DATABASE left invalid),
 * because the worker would fail with FATAL every round.
 *
 * Runs in a transaction of its own, so the caller must not be in one.  The
 * launcher is connected to no database, so it reads pg_database with a
 * sequential scan.  get_database_oid() would use an index of pg_database,
 * which such a process can open only when the shared relation cache file
 * already lists it; on a new cluster it fails with "cannot read pg_class
 * without having selected a database".
 */
static SweepRoundOutcome
find_database(const char *database_name, Oid *database_oid)
{
	Relation	pg_database;
	TableScanDesc scan;
	HeapTuple	tuple;
	SweepRoundOutcome outcome = SWEEP_ROUND_NO_DATABASE;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	pg_database = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(pg_database, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tuple);

		if (strcmp(NameStr(form->datname), database_name) == 0)
		{
			*database_oid = form->oid;
			if (!form->datallowconn || database_is_invalid_form(form))
				outcome = SWEEP_ROUND_NO_CONNECTIONS;
			else
				outcome = SWEEP_ROUND_SWEPT;
			break;
		}
	}
	table_endscan(scan);
	table_close(pg_database, AccessShareLock);

	CommitTransactionCommand();

	return outcome;
}

/*
 * report_round_outcome
 *		Log a problem that stopped a round, once until the outcome changes.
 *
 * *reported is the outcome logged last.  A round that swept clears it, so
 * a problem that comes back is logged again.  A round that yielded to DDL,
 * or failed with an error it logged, leaves it as it is.
 */
static void
report_round_outcome(SweepRoundOutcome outcome, SweepRoundOutcome *reported)
{
	if (outcome == SWEEP_ROUND_SWEPT)
	{
		*reported = SWEEP_ROUND_SWEPT;
		return;
	}
	if (outcome == *reported || outcome == SWEEP_ROUND_YIELDED ||
		outcome == SWEEP_ROUND_FAILED)
		return;

	switch (outcome)
	{
		case SWEEP_ROUND_NO_DATABASE:
			ereport(LOG,
					(errmsg("haematite sweeper is idle because database \"%s\" does not exist",
							haematite_sweep_database),
					 errhint("Create the database, or set haematite.database to the database where the haematite extension is installed.")));
			break;
		case SWEEP_ROUND_NO_CONNECTIONS:
			ereport(LOG,
					(errmsg("haematite sweeper is idle because database \"%s\" does not accept connections",
							haematite_sweep_database),
					 errhint("Allow connections to the database, or set haematite.database to another one.")));
			break;
		case SWEEP_ROUND_NO_EXTENSION:
			ereport(LOG,
					(errmsg("haematite sweeper is idle because extension \"haematite\" is not installed in database \"%s\"",
							haematite_sweep_database),
					 errhint("Run CREATE EXTENSION haematite in that database, or set haematite.database to another one.")));
			break;
		case SWEEP_ROUND_NO_WORKER_SLOT:
			ereport(WARNING,
					(errmsg("haematite sweeper could not start a sweep worker because no background worker slot is free"),
					 errhint("Raise max_worker_processes.")));
			break;
		default:
			break;
	}
	*reported = outcome;
}

/*
 * terminate_sweep_worker
 *		Ask the postmaster to end the sweep worker the launcher waits for.
 *
 * A before_shmem_exit callback of the launcher, so a terminated launcher
 * leaves no worker behind.
 */
static void
terminate_sweep_worker(int code, Datum arg)
{
	if (running_sweep_worker != NULL)
		TerminateBackgroundWorker(running_sweep_worker);
}

/*
 * haematite_sweep_worker_main
 *		Entry point of a sweep worker: delete the expired events of one
 *		database, one batch per transaction, then exit.
 *
 * main_arg is the database's OID.  Each batch deletes at most
 * haematite.sweep_batch_size events that expired by the start of its
 * transaction, and commits.  The round ends with the first short batch, or
 * when lock_sweep_targets reports a lock held or requested by DDL.  SIGTERM
 * cancels the batch in progress and exits.  The last sweep is recorded after
 * every committed batch, so a terminated round still shows what it deleted.
 * Only a round that ends normally logs its line.
 */
void
haematite_sweep_worker_main(Datum main_arg)
{
	Oid			database_oid = DatumGetObjectId(main_arg);
	int			batch_size = haematite_sweep_batch_size;
	SweepRoundOutcome outcome;
	TimestampTz started_at;
	TimestampTz finished_at;
	int64		deleted = 0;
	char	   *database_name = NULL;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(database_oid, InvalidOid, 0);

	/*
	 * Settings made with ALTER DATABASE ... SET apply to this worker too.
	 * Override those that would make every batch fail, the way autovacuum
	 * overrides the timeouts for its workers.
	 */
	SetConfigOption("default_transaction_read_only", "off",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0",
					PGC_SUSET, PGC_S_OVERRIDE);

	started_at = GetCurrentTimestamp();
	for (;;)
	{
		uint64		batch_deleted;

		/* sweep judges expiry against the statement's start time. */
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "deleting expired events");
		if (database_name == NULL)
			database_name = MemoryContextStrdup(TopMemoryContext,
												get_database_name(MyDatabaseId));

		outcome = lock_sweep_targets();
		if (outcome != SWEEP_ROUND_SWEPT)
		{
			PopActiveSnapshot();
			CommitTransactionCommand();
			break;
		}

		batch_deleted = delete_expired_events(GetCurrentStatementStartTimestamp(),
											  batch_size);

		PopActiveSnapshot();
		CommitTransactionCommand();
		deleted += batch_deleted;
		record_last_sweep(GetCurrentTimestamp(), deleted,
						  HAEMATITE_SWEEP_BY_WORKER);

		if (batch_deleted < (uint64) batch_size)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	finished_at = GetCurrentTimestamp();

	/*
	 * Every committed batch is recorded already.  Record a round that
	 * reached the event table once more, so that one which deleted nothing
	 * still shows the sweeper is alive.
	 */
	if (outcome == SWEEP_ROUND_SWEPT)
		record_last_sweep(finished_at, deleted, HAEMATITE_SWEEP_BY_WORKER);
	if (deleted > 0)
		ereport(LOG,
				(errmsg_plural("haematite sweep worker deleted " INT64_FORMAT " expired event in database \"%s\" in %ld ms",
							   "haematite sweep worker deleted " INT64_FORMAT " expired events in database \"%s\" in %ld ms",
							   deleted, deleted, database_name,
							   TimestampDifferenceMilliseconds(started_at,
															   finished_at))));
	set_round_outcome(outcome);

	proc_exit(0);
}

/*
 * lock_sweep_targets
 *		Take the locks of one sweep batch without waiting.
 *
 * Must be called in a transaction; the locks are held to its end.  Returns
 * SWEEP_ROUND_SWEPT when the batch may run; SWEEP_ROUND_YIELDED when
 * another transaction holds or waits for a conflicting lock on the database
 * or the event table (DROP DATABASE, DROP EXTENSION, TRUNCATE, ...);
 * SWEEP_ROUND_NO_EXTENSION when the extension is not installed.
 */
static SweepRoundOutcome
lock_sweep_targets(void)
{
	LOCKTAG		database_tag;
	Oid			events_oid;

	/*
	 * A conditional lock request also fails when a conflicting request
	 * waits in the queue, so a waiting DROP DATABASE ends the round too.
	 * This is the lock mode that InitPostgres takes on connection.
	 */
	SET_LOCKTAG_OBJECT(database_tag, InvalidOid, DatabaseRelationId,
					   MyDatabaseId, 0);
	if (LockAcquire(&database_tag, RowExclusiveLock, false, true) ==
		LOCKACQUIRE_NOT_AVAIL)
	{
		elog(DEBUG1, "haematite sweep worker yields to a lock on its database");
		return SWEEP_ROUND_YIELDED;
	}

	if (!OidIsValid(get_extension_oid("haematite", true)))
		return SWEEP_ROUND_NO_EXTENSION;

	events_oid = RangeVarGetRelidExtended(makeRangeVar("haematite", "events", -1),
										  RowExclusiveLock,
										  RVR_MISSING_OK | RVR_SKIP_LOCKED,
										  NULL, NULL);
	if (!OidIsValid(events_oid))
	{
		elog(DEBUG1, "haematite sweep worker yields to a lock on haematite.events");
		return SWEEP_ROUND_YIELDED;
	}

	return SWEEP_ROUND_SWEPT;
}

/*
 * set_round_outcome
 *		Store how the current sweep round ended, for the launcher.
 */
static void
set_round_outcome(SweepRoundOutcome outcome)
{
	SpinLockAcquire(&sweep_state->mutex);
	sweep_state->round_outcome = outcome;
	SpinLockRelease(&sweep_state->mutex);
}
