/*-------------------------------------------------------------------------
 *
 * reads.c
 *		Reading streams: read, read_from and scan.
 *
 * Called in a select list or from a procedural language, these
 * set-returning functions stream their rows: each opens a cursor (a portal)
 * on a saved plan at its first call, fetches rows from it in batches of
 * CURSOR_BATCH_ROWS, and returns one row per call.  A batch is held in a
 * tuplestore limited to work_mem, which spills to a temporary file beyond
 * that, so a stream of any length is read in bounded memory.  Called in
 * FROM, where PostgreSQL stores all of a function's rows in a tuplestore
 * before passing any on, they fill that tuplestore directly instead, in one
 * executor run; it too is limited to work_mem.
 *
 * Readers take no lock and run in the caller's snapshot (they are STABLE,
 * and SPI runs their queries read-only), so a reader never waits for a
 * writer and sees only committed events and the caller's own.
 *
 * Expiry is judged against the statement's start time: an event is live
 * while its expires_at is NULL or later than statement_timestamp().
 *
 * The portal, the batch tuplestore and the scan state live in the SRF's
 * multi-call memory context.  The portal is closed when the last row has
 * been returned, or by an expression-context callback when the caller stops
 * early (for example under a LIMIT).
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
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "haematite.h"

PG_FUNCTION_INFO_V1(read_stream);
PG_FUNCTION_INFO_V1(read_from);
PG_FUNCTION_INFO_V1(scan);

/*
 * Rows fetched from the cursor at a time: enough to spread the cost of a
 * fetch over many rows, few enough that a short read does not wait for a
 * long one.
 */
#define CURSOR_BATCH_ROWS 1000

/* Live events of stream $1 from sequence $2, expiry judged at $3, $4 rows. */
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

/* The next sequence of stream $1. */
static HaematiteQuery head_next_seq_query = {
	.sql =
	"SELECT next_seq FROM haematite.stream_heads "
	"WHERE stream_key OPERATOR(pg_catalog.=) $1",
	.nargs = 1,
	.argtypes = {BYTEAOID},
};

/*
 * Streams with keys in [$1, $2) holding a live event at $3.  live_until is
 * the latest expiry among a stream's events, so no event is read.  The scans
 * are planned for a cursor's fast start, which makes them walk the primary
 * key in order instead of collecting and sorting every match first.
 */
static HaematiteQuery scan_range_query = {
	.sql =
	"SELECT stream_key, next_seq FROM haematite.stream_heads "
	"WHERE stream_key OPERATOR(pg_catalog.>=) $1 "
	"  AND stream_key OPERATOR(pg_catalog.<) $2 "
	"  AND live_until OPERATOR(pg_catalog.>) $3 "
	"ORDER BY stream_key",
	.nargs = 3,
	.argtypes = {BYTEAOID, BYTEAOID, TIMESTAMPTZOID},
	.cursor_options = CURSOR_OPT_GENERIC_PLAN | CURSOR_OPT_FAST_PLAN,
};

/*
 * Streams with keys from $1 on holding a live event at $2, for a prefix
 * that has no upper bound (empty, or all 0xff bytes).
 */
static HaematiteQuery scan_from_query = {
	.sql =
	"SELECT stream_key, next_seq FROM haematite.stream_heads "
	"WHERE stream_key OPERATOR(pg_catalog.>=) $1 "
	"  AND live_until OPERATOR(pg_catalog.>) $2 "
	"ORDER BY stream_key",
	.nargs = 2,
	.argtypes = {BYTEAOID, TIMESTAMPTZOID},
	.cursor_options = CURSOR_OPT_GENERIC_PLAN | CURSOR_OPT_FAST_PLAN,
};

/*
 * A cursor being read in batches, across calls of one SRF.
 *
 * Note: the caller's SQL runs between the calls, and could close a portal it
 * can name and open its own under the same name, whose rows would then be
 * returned as ours.  So the portal gets a name with 64 random bits that
 * pg_cursors does not show, and every lookup checks it is still the very
 * portal opened.
 */
typedef struct CursorScan
{
	char		portal_name[NAMEDATALEN];	/* unguessable, see above */
	Portal		portal;			/* NULL once the portal is closed */
	bool		portal_exhausted;	/* last fetch returned a short batch */
	Tuplestorestate *batch;		/* rows fetched but not yet returned */
	TupleTableSlot *slot;		/* holds the row being returned */
	ExprContext *econtext;		/* where the shutdown callback is registered */
} CursorScan;

static void cursor_scan_close(CursorScan *scan);

/*
 * cursor_scan_portal
 *		Return the scan's portal, or NULL when it no longer exists.
 *
 * Finds the portal by name and checks that it is the one the scan opened.
 */
static Portal
cursor_scan_portal(CursorScan *scan)
{
	Portal		portal;

	if (scan->portal == NULL)
		return NULL;

	portal = SPI_cursor_find(scan->portal_name);
	return portal == scan->portal ? portal : NULL;
}

/*
 * cursor_scan_shutdown
 *		Close the cursor when the caller stops before the last row.
 */
static void
cursor_scan_shutdown(Datum arg)
{
	CursorScan *scan = (CursorScan *) DatumGetPointer(arg);
	Portal		portal = cursor_scan_portal(scan);

	if (portal != NULL)
		SPI_cursor_close(portal);
	scan->portal = NULL;
}

/*
 * cursor_scan_fetch
 *		Refill the batch with the cursor's next rows; return how many.
 *
 * Runs the portal directly with a tuplestore receiver, so the rows go
 * straight into the batch without being copied through SPI.
 */
static uint64
cursor_scan_fetch(CursorScan *scan)
{
	Portal		portal;
	DestReceiver *dest;
	uint64		fetched;

	tuplestore_clear(scan->batch);
	if (scan->portal_exhausted)
		return 0;

	portal = cursor_scan_portal(scan);
	if (portal == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_CURSOR_STATE),
				 errmsg("the cursor of a haematite read was closed before the read ended")));

	dest = CreateTuplestoreDestReceiver();
	SetTuplestoreDestReceiverParams(dest, scan->batch,
									GetMemoryChunkContext(scan), false,
									NULL, NULL);
	fetched = PortalRunFetch(portal, FETCH_FORWARD, CURSOR_BATCH_ROWS, dest);
	dest->rDestroy(dest);

	if (fetched < CURSOR_BATCH_ROWS)
		scan->portal_exhausted = true;

	return fetched;
}

/*
 * cursor_scan_open
 *		Open a cursor on plan and fetch its first batch; return the scan.
 *
 * The caller must be connected to SPI and be in the SRF's first call.  The
 * scan is allocated in the SRF's multi-call memory context, not in the
 * current one, which is SPI's and ends at SPI_finish.  funcctx->tuple_desc
 * describes the rows the SRF returns, which must match the plan's output
 * columns.
 */
static CursorScan *
cursor_scan_open(FunctionCallInfo fcinfo, FuncCallContext *funcctx,
				 SPIPlanPtr plan, Datum *values, const char *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext spi_context;
	CursorScan *scan;
	uint64		name_bits;

	spi_context = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);

	scan = palloc0(sizeof(CursorScan));
	scan->batch = tuplestore_begin_heap(false, false, work_mem);
	scan->slot = MakeSingleTupleTableSlot(funcctx->tuple_desc,
										  &TTSOpsMinimalTuple);

	if (!pg_strong_random(&name_bits, sizeof(name_bits)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random cursor name")));
	snprintf(scan->portal_name, sizeof(scan->portal_name),
			 "haematite read %016" INT64_MODIFIER "x", name_bits);

	/* SPI_cursor_open returns with SPI's memory context current. */
	scan->portal = SPI_cursor_open(scan->portal_name, plan, values, nulls,
								   true);
	scan->portal->visible = false;
	MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);

	scan->econtext = rsinfo->econtext;
	RegisterExprContextCallback(scan->econtext, cursor_scan_shutdown,
								PointerGetDatum(scan));

	cursor_scan_fetch(scan);

	MemoryContextSwitchTo(spi_context);
	return scan;
}

/*
 * cursor_scan_next
 *		Return the next row in scan->slot, fetching a batch when needed;
 *		return false after the last row, with the cursor closed.
 */
static bool
cursor_scan_next(CursorScan *scan)
{
	if (scan->portal == NULL)
		return false;

	if (tuplestore_gettupleslot(scan->batch, true, false, scan->slot))
		return true;

	if (cursor_scan_fetch(scan) > 0 &&
		tuplestore_gettupleslot(scan->batch, true, false, scan->slot))
		return true;

	cursor_scan_close(scan);
	return false;
}

/*
 * cursor_scan_close
 *		Close the cursor and release the batch.
 */
static void
cursor_scan_close(CursorScan *scan)
{
	UnregisterExprContextCallback(scan->econtext, cursor_scan_shutdown,
								  PointerGetDatum(scan));
	cursor_scan_shutdown(PointerGetDatum(scan));
	tuplestore_end(scan->batch);
	ExecDropSingleTupleTableSlot(scan->slot);
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
	CursorScan *scan = (CursorScan *) funcctx->user_fctx;

	if (scan != NULL && cursor_scan_next(scan))
		SRF_RETURN_NEXT(funcctx, ExecFetchSlotHeapTupleDatum(scan->slot));

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
 * function returns in a tuplestore before passing the first one on, and says
 * so with SFRM_Materialize_Preferred.  Filling that tuplestore directly saves
 * a call and two tuple copies per row.  A function in a select list, or
 * called from a procedural language, gets its rows streamed.
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
 *		Run query into a tuplestore handed to the caller as the SRF's result;
 *		return the number of rows.
 *
 * The executor writes each row straight into the tuplestore, which is
 * limited to work_mem and spills to a temporary file beyond that.  The
 * tuplestore and its descriptor live in the caller's per-query memory
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
	DestReceiver *dest;
	ParamListInfo params;
	SPIExecuteOptions options = {0};
	int			rc;

	old_context = MemoryContextSwitchTo(per_query_context);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	store = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
								  false, work_mem);
	MemoryContextSwitchTo(old_context);

	params = makeParamList(query->nargs);
	for (int i = 0; i < query->nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = (nulls != NULL && nulls[i] == 'n');
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = query->argtypes[i];
	}

	dest = CreateTuplestoreDestReceiver();
	SetTuplestoreDestReceiverParams(dest, store, per_query_context, false,
									NULL, NULL);

	options.params = params;
	options.read_only = true;
	options.dest = dest;
	rc = SPI_execute_plan_extended(haematite_plan(query), &options);
	if (rc != SPI_OK_SELECT)
		report_spi_failure(query->sql, rc);
	dest->rDestroy(dest);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = tupdesc;

	return tuplestore_tuple_count(store);
}

/*
 * begin_rows
 *		First call of a row-returning function: run query and return how
 *		many rows are ready, which is 0 exactly when the result is empty.
 *
 * Either fills the caller's tuplestore with every row (*materialized set
 * to true; the function then returns at once) or opens a cursor whose
 * first batch is fetched (the rows are then returned one per call by
 * next_srf_row).  The caller must be connected to SPI.
 */
static uint64
begin_rows(FunctionCallInfo fcinfo, HaematiteQuery *query, Datum *values,
		   const char *nulls, bool *materialized)
{
	FuncCallContext *funcctx;
	CursorScan *scan;

	*materialized = caller_prefers_materialize(fcinfo);
	if (*materialized)
		return materialize_rows(fcinfo, query, values, nulls);

	funcctx = begin_srf(fcinfo);
	scan = cursor_scan_open(fcinfo, funcctx, haematite_plan(query), values,
							nulls);
	funcctx->user_fctx = scan;

	return tuplestore_tuple_count(scan->batch);
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

	/* max_count 0 asks for nothing, and nothing can be compacted. */
	if (!max_count_isnull && max_count == 0)
		return return_no_rows(fcinfo);

	values[0] = PointerGetDatum(stream_key);
	values[1] = Int64GetDatum(from_seq);
	values[2] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
	values[3] = Int64GetDatum(max_count);
	if (max_count_isnull)
		nulls[3] = 'n';

	SPI_connect();

	if (begin_rows(fcinfo, &read_from_query, values, nulls,
				   &materialized) == 0)
	{
		Datum		head_values[1] = {PointerGetDatum(stream_key)};

		if (haematite_lookup_int64(&head_next_seq_query, head_values, NULL,
								   true, &head_next_seq) &&
			from_seq < head_next_seq)
			report_history_compacted(stream_key, from_seq, head_next_seq);
	}

	SPI_finish();

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
		Datum		values[3];
		HaematiteQuery *query;
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
		}
		else
		{
			query = &scan_from_query;
			values[1] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
		}

		SPI_connect();
		begin_rows(fcinfo, query, values, NULL, &materialized);
		SPI_finish();

		if (materialized)
			return (Datum) 0;
	}

	return next_srf_row(fcinfo);
}
