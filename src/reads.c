/*-------------------------------------------------------------------------
 *
 * reads.c
 *		Reading streams: read, read_from and scan.
 *
 * Called in FROM, where PostgreSQL stores all of a function's rows in a
 * tuplestore before passing any on, these set-returning functions fill that
 * tuplestore directly, in one executor run.  Called in a select list, in a
 * cursor or from a procedural language, they stream their rows instead.
 * Each call then returns one row from a batch of at most READ_BATCH_ROWS
 * rows.  The next batch comes from running the query again from just after
 * the last row returned (the next seq, or the next key).  Either way the
 * rows are held in a tuplestore limited to work_mem, which spills to a
 * temporary file beyond that, so a stream of any length is read in bounded
 * memory.
 *
 * No cursor stays open between calls, so nothing the caller does between
 * them (a savepoint rolled back, a commit that keeps a WITH HOLD cursor,
 * CLOSE ALL) can break a read half way.  Every batch runs in the snapshot
 * that is active when the function is called, which PostgreSQL keeps the
 * same for all calls made by one query, so the batches see one consistent
 * state.
 *
 * Readers take no lock and run in the caller's snapshot (they are STABLE,
 * and SPI runs their queries read-only), so a reader never waits for a
 * writer and reads only committed events and the caller's own.
 *
 * Expiry is judged against the statement's start time: an event is live
 * while its expires_at is NULL or later than statement_timestamp().
 *
 * The state of a streamed read lives in the SRF's multi-call memory context;
 * its batch is released when the last row has been returned, or by an
 * expression-context callback when the caller stops early.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tstoreReceiver.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "haematite.h"

PG_FUNCTION_INFO_V1(read_stream);
PG_FUNCTION_INFO_V1(read_from);
PG_FUNCTION_INFO_V1(scan);

/*
 * Rows read per batch when streaming: enough to spread the cost of running
 * the query over many rows, few enough that a short read does not wait for
 * a long one.
 */
#define READ_BATCH_ROWS 1000

/*
 * Live events of stream $1 from sequence $2, expiry judged at $3, at most $4
 * of them (NULL: all).
 */
static HaematiteQuery read_from_query = {
	.sql =
	"SELECT seq, payload, appended_at FROM haematite.events "
	"WHERE stream_key OPERATOR(pg_catalog.=) $1 "
	"  AND seq OPERATOR(pg_catalog.>=) $2 "
	"  AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) $3) "
	"ORDER BY seq LIMIT $4",
	.nargs = 4,
	.argtypes = {BYTEAOID, INT8OID, TIMESTAMPTZOID, INT8OID},
};

/*
 * At most $4 (NULL: all) streams with keys in [$1, $2) holding a live event
 * at $3.  live_until is the latest expiry among a stream's events, so no
 * event is read.  The scans are planned for a fast start, which makes them
 * walk the primary key in order instead of collecting and sorting every
 * match first.
 */
static HaematiteQuery scan_range_query = {
	.sql =
	"SELECT stream_key, next_seq FROM haematite.stream_heads "
	"WHERE stream_key OPERATOR(pg_catalog.>=) $1 "
	"  AND stream_key OPERATOR(pg_catalog.<) $2 "
	"  AND live_until OPERATOR(pg_catalog.>) $3 "
	"ORDER BY stream_key LIMIT $4",
	.nargs = 4,
	.argtypes = {BYTEAOID, BYTEAOID, TIMESTAMPTZOID, INT8OID},
	.cursor_options = CURSOR_OPT_GENERIC_PLAN | CURSOR_OPT_FAST_PLAN,
};

/*
 * At most $3 (NULL: all) streams with keys from $1 on holding a live event
 * at $2, for a prefix that has no upper bound (empty, or all 0xff bytes).
 */
static HaematiteQuery scan_from_query = {
	.sql =
	"SELECT stream_key, next_seq FROM haematite.stream_heads "
	"WHERE stream_key OPERATOR(pg_catalog.>=) $1 "
	"  AND live_until OPERATOR(pg_catalog.>) $2 "
	"ORDER BY stream_key LIMIT $3",
	.nargs = 3,
	.argtypes = {BYTEAOID, TIMESTAMPTZOID, INT8OID},
	.cursor_options = CURSOR_OPT_GENERIC_PLAN | CURSOR_OPT_FAST_PLAN,
};


/*
 * A read streamed in batches, across calls of one SRF.
 *
 * Each batch runs query with values, after setting the parameter at
 * limit_param to the batch size.  After the last row of a batch, the
 * parameter at resume_param moves past that row: to the next seq for a
 * stream read, to the smallest key after the last one for a scan.
 */
typedef struct BatchedRead
{
	HaematiteQuery *query;
	Datum		values[4];		/* parameters, by-reference ones copied */
	char		nulls[4];
	int			limit_param;	/* index of the LIMIT parameter */
	int			resume_param;	/* index of the parameter to move on */
	bool		resume_by_key;	/* resume from a key (scan) or a seq (read) */
	int64		remaining;		/* rows max_count still allows; -1 for all */
	bool		exhausted;		/* the last batch was short: no rows left */
	Tuplestorestate *batch;		/* rows of the current batch; NULL once the
								 * read has ended */
	uint64		batch_rows;		/* rows in the current batch */
	uint64		batch_returned; /* of those, rows already returned */
	TupleTableSlot *slot;		/* holds the row being returned */
	MemoryContext context;		/* the SRF's multi-call memory context */
	ExprContext *econtext;		/* where the shutdown callback is registered */
} BatchedRead;

/*
 * run_into_tuplestore
 *		Run query with the given parameters, writing every row it returns
 *		into store; return the number of rows.
 *
 * The executor writes the rows straight into the tuplestore, whose memory
 * belongs to store_context.  The query runs read-only in the active
 * snapshot.  The caller must be connected to SPI.
 */
static uint64
run_into_tuplestore(HaematiteQuery *query, Datum *values, const char *nulls,
					Tuplestorestate *store, MemoryContext store_context)
{
	ParamListInfo params;
	DestReceiver *dest;
	SPIExecuteOptions options = {0};
	int			rc;

	params = makeParamList(query->nargs);
	for (int i = 0; i < query->nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = (nulls[i] == 'n');
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = query->argtypes[i];
	}

	dest = CreateTuplestoreDestReceiver();
	SetTuplestoreDestReceiverParams(dest, store, store_context, false,
									NULL, NULL);

	options.params = params;
	options.read_only = true;
	options.dest = dest;
	rc = SPI_execute_plan_extended(haematite_plan(query), &options);
	if (rc != SPI_OK_SELECT)
		report_spi_failure(query->sql, rc);
	dest->rDestroy(dest);

	return SPI_processed;
}

/*
 * batched_read_end
 *		Release the batch of a streamed read; later calls return no rows.
 *
 * Also the shutdown callback for a caller that stops before the last row,
 * so that a batch spilled to a temporary file is closed with the query.
 */
static void
batched_read_end(Datum arg)
{
	BatchedRead *read = (BatchedRead *) DatumGetPointer(arg);

	if (read->batch == NULL)
		return;

	ExecClearTuple(read->slot);
	tuplestore_end(read->batch);
	read->batch = NULL;
}

/*
 * batched_read_fetch
 *		Replace the batch with the next rows of the read; return how many.
 *
 * Returns 0 once every row has been read.
 */
static uint64
batched_read_fetch(BatchedRead *read)
{
	int64		limit = READ_BATCH_ROWS;

	ExecClearTuple(read->slot);
	tuplestore_clear(read->batch);
	read->batch_rows = 0;
	read->batch_returned = 0;

	if (read->remaining >= 0 && read->remaining < limit)
		limit = read->remaining;
	if (read->exhausted || limit == 0)
		return 0;

	read->values[read->limit_param] = Int64GetDatum(limit);
	read->nulls[read->limit_param] = ' ';

	SPI_connect();
	read->batch_rows = run_into_tuplestore(read->query, read->values,
										   read->nulls, read->batch,
										   read->context);
	SPI_finish();

	if (read->batch_rows < (uint64) limit)
		read->exhausted = true;
	if (read->remaining >= 0)
		read->remaining -= read->batch_rows;

	return read->batch_rows;
}

/*
 * batched_read_resume_after
 *		Move the read's resume parameter past the row in read->slot.
 *
 * A stream read resumes at the next seq.  A scan resumes at the last key
 * with a 0x00 byte appended, the smallest byte string greater than it.
 */
static void
batched_read_resume_after(BatchedRead *read)
{
	bool		isnull;
	Datum		last = slot_getattr(read->slot, 1, &isnull);

	if (isnull)
		elog(ERROR, "haematite read returned a NULL sequence or key");

	if (read->resume_by_key)
	{
		bytea	   *key = DatumGetByteaPP(last);
		int			length = VARSIZE_ANY_EXHDR(key);
		bytea	   *next = MemoryContextAlloc(read->context,
											  VARHDRSZ + length + 1);

		SET_VARSIZE(next, VARHDRSZ + length + 1);
		memcpy(VARDATA(next), VARDATA_ANY(key), length);
		VARDATA(next)[length] = '\0';

		pfree(DatumGetPointer(read->values[read->resume_param]));
		read->values[read->resume_param] = PointerGetDatum(next);
	}
	else
		read->values[read->resume_param] =
			Int64GetDatum(DatumGetInt64(last) + 1);
}

/*
 * batched_read_next
 *		Put the read's next row in read->slot and return true, or return
 *		false after the last row.
 */
static bool
batched_read_next(BatchedRead *read)
{
	MemoryContext old_context;
	bool		found;

	if (read->batch == NULL)
		return false;

	if (read->batch_returned == read->batch_rows &&
		batched_read_fetch(read) == 0)
	{
		UnregisterExprContextCallback(read->econtext, batched_read_end,
									  PointerGetDatum(read));
		batched_read_end(PointerGetDatum(read));
		return false;
	}

	/*
	 * A row read back from a batch spilled to disk is allocated in the
	 * current memory context, and the slot frees it when the next row
	 * replaces it.  So it must not go in the per-call context, which is
	 * reset between calls.
	 */
	old_context = MemoryContextSwitchTo(read->context);
	found = tuplestore_gettupleslot(read->batch, true, false, read->slot);
	MemoryContextSwitchTo(old_context);
	if (!found)
		elog(ERROR, "haematite read batch ended early");

	read->batch_returned++;
	if (read->batch_returned == read->batch_rows)
		batched_read_resume_after(read);

	return true;
}

/*
 * begin_srf
 *		Start a value-per-call SRF; return its context, with the blessed
 *		result row type in tuple_desc.
 *
 * Leaves the current memory context as it found it.
 */
static FuncCallContext *
begin_srf(FunctionCallInfo fcinfo)
{
	FuncCallContext *funcctx;
	MemoryContext old_context;
	TupleDesc	tupdesc;

	funcctx = SRF_FIRSTCALL_INIT();
	old_context = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	funcctx->tuple_desc = BlessTupleDesc(tupdesc);

	MemoryContextSwitchTo(old_context);
	return funcctx;
}

/*
 * next_srf_row
 *		Return the SRF's next row, or finish the SRF after the last one.
 *
 * A SRF whose first call found nothing to read leaves user_fctx NULL.
 */
static Datum
next_srf_row(FunctionCallInfo fcinfo)
{
	FuncCallContext *funcctx = SRF_PERCALL_SETUP();
	BatchedRead *read = (BatchedRead *) funcctx->user_fctx;

	if (read != NULL && batched_read_next(read))
		SRF_RETURN_NEXT(funcctx, ExecFetchSlotHeapTupleDatum(read->slot));

	SRF_RETURN_DONE(funcctx);
}

/*
 * return_no_rows
 *		Finish a SRF that has nothing to read, from its first call.
 */
static Datum
return_no_rows(FunctionCallInfo fcinfo)
{
	begin_srf(fcinfo);
	return next_srf_row(fcinfo);
}

/*
 * caller_prefers_materialize
 *		Return true when the caller collects the rows in a tuplestore anyway.
 *
 * A function in FROM runs under a Function Scan, which stores every row the
 * function returns in a tuplestore before passing the first one on, and
 * signals this with SFRM_Materialize_Preferred.  Filling that tuplestore directly saves
 * a call and two tuple copies per row.
 */
static bool
caller_prefers_materialize(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	return rsinfo != NULL && IsA(rsinfo, ReturnSetInfo) &&
		(rsinfo->allowedModes & SFRM_Materialize) != 0 &&
		(rsinfo->allowedModes & SFRM_Materialize_Preferred) != 0;
}

/*
 * materialize_rows
 *		Run query for every row into a tuplestore handed to the caller as the
 *		SRF's result; return the number of rows.
 *
 * The tuplestore and its descriptor live in the caller's per-query memory
 * context.  The caller must be connected to SPI.
 */
static uint64
materialize_rows(FunctionCallInfo fcinfo, HaematiteQuery *query,
				 Datum *values, const char *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext per_query_context = rsinfo->econtext->ecxt_per_query_memory;
	MemoryContext old_context;
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	uint64		rows;

	old_context = MemoryContextSwitchTo(per_query_context);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	store = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
								  false, work_mem);
	MemoryContextSwitchTo(old_context);

	rows = run_into_tuplestore(query, values, nulls, store, per_query_context);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = tupdesc;

	return rows;
}

/*
 * begin_rows
 *		First call of a row-returning function: run query and return how
 *		many rows are ready, which is 0 exactly when the result is empty.
 *
 * values and nulls hold every parameter but the LIMIT one, at limit_param,
 * which is set here from max_count (-1: no limit).  resume_param and
 * resume_by_key set how a streamed read continues after a batch (see
 * BatchedRead).
 *
 * Either fills the caller's tuplestore with every row (*materialized set
 * to true; the function then returns at once) or reads the first batch of
 * a streamed read, whose rows next_srf_row then returns one per call.  The
 * caller must not be connected to SPI.
 */
static uint64
begin_rows(FunctionCallInfo fcinfo, HaematiteQuery *query, Datum *values,
		   char *nulls, int limit_param, int resume_param,
		   bool resume_by_key, int64 max_count, bool *materialized)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FuncCallContext *funcctx;
	MemoryContext old_context;
	BatchedRead *read;
	uint64		rows;

	*materialized = caller_prefers_materialize(fcinfo);
	if (*materialized)
	{
		values[limit_param] = Int64GetDatum(max_count);
		nulls[limit_param] = (max_count < 0) ? 'n' : ' ';

		SPI_connect();
		rows = materialize_rows(fcinfo, query, values, nulls);
		SPI_finish();

		return rows;
	}

	funcctx = begin_srf(fcinfo);
	old_context = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);

	read = palloc0(sizeof(BatchedRead));
	read->query = query;
	for (int i = 0; i < query->nargs; i++)
	{
		read->nulls[i] = nulls[i];
		read->values[i] = values[i];
		if (i != limit_param && nulls[i] != 'n' &&
			query->argtypes[i] == BYTEAOID)
			read->values[i] = PointerGetDatum(DatumGetByteaPCopy(values[i]));
	}
	read->limit_param = limit_param;
	read->resume_param = resume_param;
	read->resume_by_key = resume_by_key;
	read->remaining = max_count;
	read->context = funcctx->multi_call_memory_ctx;
	read->batch = tuplestore_begin_heap(false, false, work_mem);
	read->slot = MakeSingleTupleTableSlot(funcctx->tuple_desc,
										  &TTSOpsMinimalTuple);
	read->econtext = rsinfo->econtext;
	RegisterExprContextCallback(read->econtext, batched_read_end,
								PointerGetDatum(read));

	MemoryContextSwitchTo(old_context);
	funcctx->user_fctx = read;

	return batched_read_fetch(read);
}

/*
 * read_events
 *		First call of read and read_from: return the live events of
 *		stream_key from from_seq on, at most max_count of them (NULL: all).
 *
 * Raises SE003 when no live event is found although the stream has events
 * at or after from_seq.  The head row is read in the same snapshot as the
 * events, so a concurrent append cannot make the check wrong.
 */
static Datum
read_events(FunctionCallInfo fcinfo, bytea *stream_key, int64 from_seq,
			bool max_count_isnull, int64 max_count)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		materialized;
	int64		head_next_seq;

	/* max_count 0 requests no rows, so no history can be compacted. */
	if (!max_count_isnull && max_count == 0)
		return return_no_rows(fcinfo);

	values[0] = PointerGetDatum(stream_key);
	values[1] = Int64GetDatum(from_seq);
	values[2] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());

	if (begin_rows(fcinfo, &read_from_query, values, nulls, 3, 1, false,
				   max_count_isnull ? -1 : max_count, &materialized) == 0)
	{
		SPI_connect();
		head_next_seq = stream_next_seq(stream_key, true);
		SPI_finish();

		if (from_seq < head_next_seq)
			report_history_compacted(stream_key, from_seq, head_next_seq);
	}

	if (materialized)
		return (Datum) 0;
	return next_srf_row(fcinfo);
}

/*
 * read(stream_key bytea|text)
 *		RETURNS TABLE (seq bigint, payload bytea, appended_at timestamptz)
 *
 * Returns every live event of the stream in sequence order; the same as
 * read_from(stream_key, 0).  Raises SE003 when the stream has events but
 * all of them have expired.  The C name differs from the SQL name because
 * read() is the POSIX system call.
 */
Datum
read_stream(PG_FUNCTION_ARGS)
{
	if (SRF_IS_FIRSTCALL())
		return read_events(fcinfo, check_key_arg(fcinfo, 0), 0, true, 0);

	return next_srf_row(fcinfo);
}

/*
 * read_from(stream_key bytea|text, from_seq bigint,
 *			 max_count integer DEFAULT NULL)
 *		RETURNS TABLE (seq bigint, payload bytea, appended_at timestamptz)
 *
 * Returns the live events with seq >= from_seq in sequence order, at most
 * max_count of them (all when NULL).  Raises SE003 when it would return no
 * row although the stream has events at or after from_seq.
 */
Datum
read_from(PG_FUNCTION_ARGS)
{
	if (SRF_IS_FIRSTCALL())
	{
		bytea	   *stream_key = check_key_arg(fcinfo, 0);
		int64		from_seq = check_nonnegative_int64_arg(fcinfo, 1);
		bool		max_count_isnull = PG_ARGISNULL(2);
		int64		max_count = 0;

		if (!max_count_isnull)
		{
			max_count = PG_GETARG_INT32(2);
			if (max_count < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("max_count must not be negative, but is " INT64_FORMAT,
								max_count)));
		}

		return read_events(fcinfo, stream_key, from_seq, max_count_isnull,
						   max_count);
	}

	return next_srf_row(fcinfo);
}

/*
 * prefix_upper_bound
 *		Return the smallest byte string greater than every string that
 *		starts with prefix, or NULL when there is none.
 *
 * Drops trailing 0xff bytes and increments the last remaining byte: the
 * strings starting with "ab" are exactly those in ["ab", "ac").  There is no
 * bound for an empty prefix or one made only of 0xff bytes.  The result is
 * palloc'd in the current memory context.
 */
static bytea *
prefix_upper_bound(const char *prefix, int length)
{
	bytea	   *bound;

	while (length > 0 && (unsigned char) prefix[length - 1] == 0xff)
		length--;
	if (length == 0)
		return NULL;

	bound = palloc(VARHDRSZ + length);
	SET_VARSIZE(bound, VARHDRSZ + length);
	memcpy(VARDATA(bound), prefix, length);
	((unsigned char *) VARDATA(bound))[length - 1]++;

	return bound;
}

/*
 * scan(prefix bytea|text), scan()
 *		RETURNS TABLE (stream_key bytea, next_seq bigint)
 *
 * Returns the streams whose key starts with the prefix bytes (every stream
 * when there is no prefix) and that hold at least one live event, in key
 * order.  The prefix is compared as bytes, never as a pattern.  A prefix
 * longer than the longest key matches nothing.  Runs an index range scan
 * on the head table and never reads the event table.
 */
Datum
scan(PG_FUNCTION_ARGS)
{
	if (SRF_IS_FIRSTCALL())
	{
		bytea	   *prefix;
		bytea	   *upper;
		Datum		values[4];
		char		nulls[4] = {' ', ' ', ' ', ' '};
		HaematiteQuery *query;
		int			limit_param;
		bool		materialized;

		/* Check the prefix: NULL is an error, any length is allowed. */
		if (PG_NARGS() > 0)
		{
			if (PG_ARGISNULL(0))
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("prefix must not be NULL")));
			prefix = PG_GETARG_BYTEA_PP(0);
		}
		else
		{
			prefix = palloc(VARHDRSZ);
			SET_VARSIZE(prefix, VARHDRSZ);
		}

		/* No key is longer than HAEMATITE_MAX_KEY_BYTES. */
		if (VARSIZE_ANY_EXHDR(prefix) > HAEMATITE_MAX_KEY_BYTES)
			return return_no_rows(fcinfo);

		upper = prefix_upper_bound(VARDATA_ANY(prefix),
								   VARSIZE_ANY_EXHDR(prefix));
		values[0] = PointerGetDatum(prefix);
		if (upper != NULL)
		{
			query = &scan_range_query;
			values[1] = PointerGetDatum(upper);
			values[2] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
			limit_param = 3;
		}
		else
		{
			query = &scan_from_query;
			values[1] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
			limit_param = 2;
		}

		begin_rows(fcinfo, query, values, nulls, limit_param, 0, true, -1,
				   &materialized);

		if (materialized)
			return (Datum) 0;
	}

	return next_srf_row(fcinfo);
}
