/*-------------------------------------------------------------------------
 *
 * haematite.c
 *		Module entry point, settings, and the session cache of prepared SPI
 *		plans.
 *
 * haematite reaches its tables only through SQL that PostgreSQL plans and
 * executes (SPI), so partitioning, triggers and logical replication on those
 * tables keep working.  Row-level security policies do not apply, because
 * the functions run as the extension owner, a superuser, who bypasses them.
 *
 * To keep that path fast, every statement is parsed and planned once per
 * session.  Its plan is saved with SPI_keepplan in CacheMemoryContext and
 * reused by every later call.
 * The plan cache revalidates saved plans when the tables change (for example
 * after DROP and CREATE EXTENSION), so a stale plan is never executed.
 *
 * Plans are generic unless a statement sets other cursor options.  Their
 * parameters are not planned as constants, so a call pays for planning only
 * the first time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "haematite.h"

PG_MODULE_MAGIC;

/* haematite.max_batch_bytes: the largest payload array append_batch takes. */
int			haematite_max_batch_bytes = 64 * 1024 * 1024;

/* haematite.sweep_interval: milliseconds between sweep rounds; 0 disables. */
int			haematite_sweep_interval = 60 * 1000;

/* haematite.sweep_batch_size: events deleted per sweep transaction. */
int			haematite_sweep_batch_size = 10000;

/* haematite.database: the database whose events the sweeper deletes. */
char	   *haematite_sweep_database = NULL;

void		_PG_init(void);

/*
 * _PG_init
 *		Define haematite's settings when the module is loaded, and set up the
 *		background sweeper when it is loaded by shared_preload_libraries.
 *
 * The batch limit is superuser-only (PGC_SUSET), so an application role
 * cannot raise it to make one call allocate more.  The sweeper's settings
 * come from the server configuration and change on reload (PGC_SIGHUP).
 * Every process that loads the library defines them, so pg_settings shows
 * them even where the library is not preloaded.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("haematite.max_batch_bytes",
							"Sets the largest payload array that one append_batch call accepts.",
							"The size is that of the whole array value, headers included. "
							"Larger batches fail with SQLSTATE 54000 before any work is done.",
							&haematite_max_batch_bytes,
							64 * 1024 * 1024,
							1024,
							(int) MaxAllocSize,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	/*
	 * Milliseconds, so that a value below one second such as '400ms' is kept
	 * as it is rather than rounded to 0, which would stop the sweeper.
	 */
	DefineCustomIntVariable("haematite.sweep_interval",
							"Sets the time between two runs of the background sweeper.",
							"The sweeper deletes expired events only when haematite is in "
							"shared_preload_libraries. 0 stops it until the setting changes.",
							&haematite_sweep_interval,
							60 * 1000,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("haematite.sweep_batch_size",
							"Sets the maximum number of expired events the background sweeper deletes per transaction.",
							"Each batch commits on its own, so a large backlog never becomes one large transaction.",
							&haematite_sweep_batch_size,
							10000,
							1,
							INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("haematite.database",
							   "Sets the database whose expired events the background sweeper deletes.",
							   "The haematite extension must be installed in that database.",
							   &haematite_sweep_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("haematite");

	if (process_shared_preload_libraries_in_progress)
		haematite_worker_init();
}

/*
 * haematite_plan
 *		Return the saved plan of a statement, preparing it on first use.
 *
 * The caller must be connected to SPI.  The plan lives until the session
 * ends; the caller must not free it.  Raises an error when the statement
 * cannot be prepared, which only happens when the extension's objects are
 * missing or damaged.
 */
SPIPlanPtr
haematite_plan(HaematiteQuery *query)
{
	SPIPlanPtr	plan;
	int			cursor_options;

	if (query->plan != NULL)
		return query->plan;

	cursor_options = query->cursor_options != 0 ?
		query->cursor_options : CURSOR_OPT_GENERIC_PLAN;
	plan = SPI_prepare_cursor(query->sql, query->nargs, query->argtypes,
							  cursor_options);
	if (plan == NULL)
		report_spi_failure(query->sql, SPI_result);

	if (SPI_keepplan(plan) != 0)
		report_spi_failure(query->sql, SPI_ERROR_ARGUMENT);

	query->plan = plan;
	return plan;
}

/*
 * haematite_lookup_int64
 *		Run a query that returns at most one row of one non-null bigint.
 *
 * Stores the value in *result and returns true when the query returned a
 * row, or returns false when it returned none.  read_only must be true in
 * STABLE functions, so that the query runs in the caller's snapshot.  The caller
 * must be connected to SPI.
 */
bool
haematite_lookup_int64(HaematiteQuery *query, Datum *values, const char *nulls,
					   bool read_only, int64 *result)
{
	int			rc;
	bool		isnull;
	Datum		value;

	rc = SPI_execute_plan(haematite_plan(query), values, nulls, read_only, 1);
	if (rc < 0)
		report_spi_failure(query->sql, rc);

	if (SPI_processed == 0)
		return false;

	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						  &isnull);
	if (isnull)
		elog(ERROR, "haematite lookup returned NULL: %s", query->sql);

	*result = DatumGetInt64(value);
	return true;
}
