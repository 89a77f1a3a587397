/*-------------------------------------------------------------------------
 *
 * streams.c
 *		Appending to streams: append, append_batch and next_seq.
 *
 * A stream is one row in haematite.stream_heads plus one row per event in
 * haematite.events.  The head row serialises appends to its stream.  Every
 * append updates it (or inserts it, for a new stream) in the same statement
 * that inserts the events, and the row lock taken by that UPDATE or INSERT
 * is held until the caller's transaction ends.  Appends to different streams
 * lock different head rows, so they do not wait for each other.  No other
 * lock is taken.
 *
 * Optimistic concurrency comes from the statement's WHERE clause: the UPDATE
 * only matches when next_seq equals the caller's expected_seq.  Under READ
 * COMMITTED, a concurrent append that commits first makes PostgreSQL
 * recheck that clause against the new row version, which then fails, and
 * the call raises SE001.  Under REPEATABLE READ and SERIALIZABLE PostgreSQL
 * raises 40001 instead.  A new stream is created by INSERT ... ON CONFLICT DO
 * NOTHING, so two racing creators never see a unique violation: the loser
 * inserts nothing and raises SE001.
 *
 * The head row update touches no indexed column and the table is created
 * with a fillfactor below 100, so it is normally a HOT update; see RESERVE
 * for how page pruning is kept rare.
 *
 * All memory is allocated in SPI's procedure context or the caller's
 * per-call context and is freed when the call returns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/timestamp.h"

#include "haematite.h"

PG_FUNCTION_INFO_V1(append);
PG_FUNCTION_INFO_V1(append_batch);
PG_FUNCTION_INFO_V1(next_seq);

/*
 * The append statements share their parameters:
 *		$1 stream key (bytea), $2 expected sequence (bigint),
 *		$3 payload (bytea) or payloads (bytea[]), $4 the time of the call
 *		(timestamptz), $5 TTL (interval, NULL for none), and for batches
 *		$6 the number of payloads (bigint).
 *
 * Each statement advances (or creates) the head row in a data-modifying CTE
 * and inserts the events from its RETURNING row, so one executor run does
 * the whole append and no event is written unless the head row matched.
 * Appends without a TTL, by far the most common, have statements of their
 * own that store no expiry and set live_until to infinity directly: simpler
 * expressions make the executor start-up of every call cheaper.
 *
 * Note: appended_at is GREATEST(last_appended_at, $4), computed from the
 * head row version the UPDATE locked, so it never decreases along a stream
 * even when the clock steps back or a caller waited for the lock.
 * live_until is the latest expiry of any event of the stream, so that scan
 * can tell whether a stream contains a live event without reading its events.
 */
#define HEAD_UPDATE(count, live_until) \
	"WITH head AS (" \
	"  UPDATE haematite.stream_heads " \
	"  SET next_seq = next_seq OPERATOR(pg_catalog.+) " count ", " \
	"      last_appended_at = GREATEST(last_appended_at, $4), " \
	"      live_until = " live_until ", " \
	"      reserve = NULL " \
	"  WHERE stream_key OPERATOR(pg_catalog.=) $1 " \
	"    AND next_seq OPERATOR(pg_catalog.=) $2 " \
	"  RETURNING last_appended_at) "

#define HEAD_INSERT(count, live_until) \
	"WITH head AS (" \
	"  INSERT INTO haematite.stream_heads AS h " \
	"      (stream_key, next_seq, last_appended_at, live_until, reserve) " \
	"  VALUES ($1, " count ", $4, " live_until ", " RESERVE ") " \
	"  ON CONFLICT (stream_key) DO NOTHING " \
	"  RETURNING h.last_appended_at) "

/*
 * A new head row carries RESERVE, 48 filler bytes that its first append
 * clears.  Inserts fill a page only up to the fillfactor, and PostgreSQL
 * prunes a page on access once its free space falls below that same
 * margin.  So rows inserted at their final size would make nearly every
 * later head update prune the whole page and log the prune.  Rows that
 * shrink after their first append leave free space above the margin, and a
 * page then takes dozens of HOT updates between prunes.
 */
#define RESERVE \
	"'\\x" \
	"000000000000000000000000000000000000000000000000" \
	"000000000000000000000000000000000000000000000000" \
	"'::pg_catalog.bytea"
#define LIVE_FOREVER "'infinity'::pg_catalog.timestamptz"
#define LIVE_UNTIL_UPDATED \
	"GREATEST(live_until, " \
	"         GREATEST(last_appended_at, $4) OPERATOR(pg_catalog.+) $5)"
#define LIVE_UNTIL_NEW "$4 OPERATOR(pg_catalog.+) $5"

#define EVENT_COLUMNS "stream_key, seq, payload, appended_at"
#define EXPIRY_VALUE "head.last_appended_at OPERATOR(pg_catalog.+) $5"
#define BATCH_SEQ "$2 OPERATOR(pg_catalog.+) p.ord OPERATOR(pg_catalog.-) 1"
#define BATCH_SOURCE \
	"FROM head, pg_catalog.unnest($3) WITH ORDINALITY AS p(payload, ord)"

#define ONE_EVENT_PLAIN \
	"INSERT INTO haematite.events (" EVENT_COLUMNS ") " \
	"SELECT $1, $2, $3, head.last_appended_at FROM head"
#define ONE_EVENT_EXPIRING \
	"INSERT INTO haematite.events (" EVENT_COLUMNS ", expires_at) " \
	"SELECT $1, $2, $3, head.last_appended_at, " EXPIRY_VALUE " FROM head"
#define BATCH_EVENTS_PLAIN \
	"INSERT INTO haematite.events (" EVENT_COLUMNS ") " \
	"SELECT $1, " BATCH_SEQ ", p.payload, head.last_appended_at " \
	BATCH_SOURCE
#define BATCH_EVENTS_EXPIRING \
	"INSERT INTO haematite.events (" EVENT_COLUMNS ", expires_at) " \
	"SELECT $1, " BATCH_SEQ ", p.payload, head.last_appended_at, " \
	EXPIRY_VALUE " " BATCH_SOURCE

#define APPEND_QUERY(sql) \
	{ \
		sql, 5, \
		{BYTEAOID, INT8OID, BYTEAOID, TIMESTAMPTZOID, INTERVALOID} \
	}
#define APPEND_BATCH_QUERY(sql) \
	{ \
		sql, 6, \
		{BYTEAOID, INT8OID, BYTEAARRAYOID, TIMESTAMPTZOID, INTERVALOID, \
		 INT8OID} \
	}

/* The two statements of one kind of append. */
typedef struct AppendStatements
{
	HaematiteQuery existing;	/* onto a stream whose next sequence is $2 */
	HaematiteQuery new;			/* as the first events of a new stream */
} AppendStatements;

static AppendStatements one_event = {
	APPEND_QUERY(HEAD_UPDATE("1", LIVE_FOREVER) ONE_EVENT_PLAIN),
	APPEND_QUERY(HEAD_INSERT("1", LIVE_FOREVER) ONE_EVENT_PLAIN),
};

static AppendStatements one_expiring_event = {
	APPEND_QUERY(HEAD_UPDATE("1", LIVE_UNTIL_UPDATED) ONE_EVENT_EXPIRING),
	APPEND_QUERY(HEAD_INSERT("1", LIVE_UNTIL_NEW) ONE_EVENT_EXPIRING),
};

static AppendStatements batch = {
	APPEND_BATCH_QUERY(HEAD_UPDATE("$6", LIVE_FOREVER) BATCH_EVENTS_PLAIN),
	APPEND_BATCH_QUERY(HEAD_INSERT("$6", LIVE_FOREVER) BATCH_EVENTS_PLAIN),
};

static AppendStatements expiring_batch = {
	APPEND_BATCH_QUERY(HEAD_UPDATE("$6", LIVE_UNTIL_UPDATED) BATCH_EVENTS_EXPIRING),
	APPEND_BATCH_QUERY(HEAD_INSERT("$6", LIVE_UNTIL_NEW) BATCH_EVENTS_EXPIRING),
};

/* The next sequence of a stream, without locking it. */
static HaematiteQuery next_seq_query = {
	.sql =
	"SELECT next_seq FROM haematite.stream_heads "
	"WHERE stream_key OPERATOR(pg_catalog.=) $1",
	.nargs = 1,
	.argtypes = {BYTEAOID},
};

/* The next sequence of a stream, locking its head row as an append would. */
static HaematiteQuery lock_head_query = {
	.sql =
	"SELECT next_seq FROM haematite.stream_heads "
	"WHERE stream_key OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	.nargs = 1,
	.argtypes = {BYTEAOID},
};

/* Arguments of one append or append_batch call, checked. */
typedef struct AppendRequest
{
	bytea	   *stream_key;
	Datum		payload;		/* bytea, or bytea[] for a batch */
	int64		count;			/* number of payloads */
	int64		expected_seq;
	bool		ttl_isnull;
	Datum		ttl;			/* interval, when not NULL */
} AppendRequest;

/*
 * stream_next_seq
 *		Return the stream's next sequence, 0 when the stream does not exist.
 *
 * With read_only, the head row is read in the caller's snapshot, as STABLE
 * functions require.  Otherwise it is read in a new snapshot, which under
 * READ COMMITTED includes the latest commit; SE001 reports that value as
 * the actual sequence.
 * Takes no lock.  The caller must be connected to SPI.
 */
int64
stream_next_seq(bytea *stream_key, bool read_only)
{
	Datum		values[1] = {PointerGetDatum(stream_key)};
	int64		result;

	if (!haematite_lookup_int64(&next_seq_query, values, NULL, read_only,
								&result))
		result = 0;

	return result;
}

/*
 * run_append
 *		Append the request's events in one statement; return the new next
 *		sequence.
 *
 * Raises SE001 when expected_seq is not the stream's next sequence, 22003
 * when the stream would pass the bigint maximum, and SE004 when an event
 * row already occupies one of the sequences being written.  On success the
 * stream's head row stays locked until the caller's transaction ends.
 */
static int64
run_append(AppendRequest *req, AppendStatements *statements)
{
	HaematiteQuery *query;
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	volatile int rc = 0;
	MemoryContext caller_context = CurrentMemoryContext;

	/* A new stream starts at 0; any other expectation needs its head row. */
	query = (req->expected_seq == 0) ? &statements->new : &statements->existing;

	values[0] = PointerGetDatum(req->stream_key);
	values[1] = Int64GetDatum(req->expected_seq);
	values[2] = req->payload;
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[4] = req->ttl;
	if (req->ttl_isnull)
		nulls[4] = 'n';
	values[5] = Int64GetDatum(req->count);

	SPI_connect();

	/* An append that would overflow next_seq fails unless SE001 applies. */
	if (req->expected_seq > PG_INT64_MAX - req->count)
	{
		int64		actual = stream_next_seq(req->stream_key, false);

		if (actual != req->expected_seq)
			report_sequence_conflict(req->stream_key, req->expected_seq,
									 actual);
		report_sequence_overflow(req->stream_key, actual, req->count);
	}

	/*
	 * Advance the head row and insert the events.  A unique violation on
	 * the event table means a row exists at a sequence the head row marks
	 * as not yet written, so report it as corrupt data.  The error is
	 * re-raised at once, so catching it without a subtransaction is safe.
	 */
	PG_TRY();
	{
		rc = SPI_execute_plan(haematite_plan(query), values, nulls, false, 0);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION ||
			edata->schema_name == NULL ||
			strcmp(edata->schema_name, "haematite") != 0)
			PG_RE_THROW();

		FlushErrorState();
		report_event_collision(req->stream_key, req->expected_seq,
							   req->count);
	}
	PG_END_TRY();

	if (rc != SPI_OK_INSERT)
		report_spi_failure(query->sql, rc);

	/* No row inserted: the head did not match expected_seq. */
	if (SPI_processed == 0)
		report_sequence_conflict(req->stream_key, req->expected_seq,
								 stream_next_seq(req->stream_key, false));

	/*
	 * The head row moved on by count, so every event row must be there.  A
	 * trigger or rule on haematite.events that skips rows would leave a gap.
	 */
	if (SPI_processed != (uint64) req->count)
		report_missing_events(req->stream_key, req->count, SPI_processed);

	SPI_finish();

	return req->expected_seq + req->count;
}

/*
 * check_empty_batch
 *		Check an empty batch's expected sequence; return it.
 *
 * Locks the stream's head row, when there is one, so that the check holds
 * until the caller's transaction ends, as a real append's would.  Creates
 * nothing for a stream that does not exist.  Raises SE001 on a mismatch.
 */
static int64
check_empty_batch(AppendRequest *req)
{
	Datum		values[1] = {PointerGetDatum(req->stream_key)};
	int64		actual;

	SPI_connect();

	if (!haematite_lookup_int64(&lock_head_query, values, NULL, false,
								&actual))
		actual = 0;

	if (actual != req->expected_seq)
		report_sequence_conflict(req->stream_key, req->expected_seq, actual);

	SPI_finish();

	return actual;
}

/*
 * check_append_args
 *		Fill req from the arguments shared by append and append_batch:
 *		stream_key (0), expected_seq (2) and ttl (3).
 */
static void
check_append_args(FunctionCallInfo fcinfo, AppendRequest *req)
{
	req->stream_key = check_key_arg(fcinfo, 0);
	req->expected_seq = check_nonnegative_int64_arg(fcinfo, 2);

	check_ttl_arg(fcinfo, 3);
	req->ttl_isnull = PG_ARGISNULL(3);
	req->ttl = req->ttl_isnull ? (Datum) 0 : PG_GETARG_DATUM(3);
}

/*
 * append(stream_key bytea|text, payload bytea, expected_seq bigint,
 *		  ttl interval DEFAULT NULL) RETURNS bigint
 *
 * Appends one event if expected_seq is the stream's next sequence and
 * returns the new next sequence.  The stream's head row stays locked until
 * the caller's transaction ends.
 */
Datum
append(PG_FUNCTION_ARGS)
{
	AppendRequest req;

	check_append_args(fcinfo, &req);
	check_not_null_arg(fcinfo, 1);
	req.payload = PG_GETARG_DATUM(1);
	req.count = 1;

	PG_RETURN_INT64(run_append(&req, req.ttl_isnull ? &one_event :
							   &one_expiring_event));
}

/*
 * append_batch(stream_key bytea|text, payloads bytea[], expected_seq bigint,
 *				ttl interval DEFAULT NULL) RETURNS bigint
 *
 * Appends every payload, in array order, as consecutive events sharing one
 * appended_at, or none of them.  An empty array only checks expected_seq.
 * Returns the new next sequence.
 */
Datum
append_batch(PG_FUNCTION_ARGS)
{
	AppendRequest req;
	Size		payloads_bytes;
	ArrayType  *payloads;

	check_append_args(fcinfo, &req);

	/*
	 * The array must be within the size limit, one-dimensional and free of
	 * NULLs.  Check the size before detoasting, which would allocate it.
	 */
	check_not_null_arg(fcinfo, 1);
	payloads_bytes = toast_raw_datum_size(PG_GETARG_DATUM(1));
	if (payloads_bytes > (Size) haematite_max_batch_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("payloads array is too large for one batch"),
				 errdetail("The array is %zu bytes; haematite.max_batch_bytes is %d bytes.",
						   payloads_bytes, haematite_max_batch_bytes),
				 errhint("Split the payloads into several append_batch calls.")));

	payloads = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(payloads) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payloads must be a one-dimensional array, but has %d dimensions",
						ARR_NDIM(payloads))));
	if (array_contains_nulls(payloads))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payloads must not contain NULL elements")));

	req.payload = PointerGetDatum(payloads);
	req.count = ArrayGetNItems(ARR_NDIM(payloads), ARR_DIMS(payloads));

	if (req.count == 0)
		PG_RETURN_INT64(check_empty_batch(&req));

	PG_RETURN_INT64(run_append(&req, req.ttl_isnull ? &batch :
							   &expiring_batch));
}

/*
 * next_seq(stream_key bytea|text) RETURNS bigint
 *
 * Returns the stream's next sequence, which is also the number of events
 * ever appended to it, or 0 for a stream that never existed.  Takes no lock.
 */
Datum
next_seq(PG_FUNCTION_ARGS)
{
	bytea	   *stream_key = check_key_arg(fcinfo, 0);
	int64		result;

	SPI_connect();
	result = stream_next_seq(stream_key, true);
	SPI_finish();

	PG_RETURN_INT64(result);
}
