/*-------------------------------------------------------------------------
 *
 * errors.c
 *		Argument checks and error reports: the one place where haematite
 *		chooses SQLSTATEs and writes DETAIL texts.
 *
 * The check_* functions run at the top of every SQL-callable function,
 * before any lock is taken or row written, so a rejected call leaves no
 * trace.  The report_* functions raise the haematite error class, SE001 to
 * SE004.  Clients match on those SQLSTATEs and parse the numbers out of
 * DETAIL, so the DETAIL wording below is part of the API and must not change.
 *
 * Messages name the stream or key.  A key is shown as text in double quotes
 * when its bytes are valid in the database encoding and contain no control
 * character, double quote or backslash, and as \x-prefixed hex otherwise.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "haematite.h"

/*
 * arg_name
 *		Return the declared name of argument argno of the called function.
 *
 * Falls back to "argument N" for a function declared without names.  The
 * result is palloc'd in the current memory context.
 */
static char *
arg_name(FunctionCallInfo fcinfo, int argno)
{
	HeapTuple	proctup;
	Oid		   *argtypes;
	char	  **argnames;
	char	   *argmodes;
	char	   *name = NULL;

	proctup = SearchSysCache1(PROCOID,
							  ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	if (HeapTupleIsValid(proctup))
	{
		int			nargs = get_func_arg_info(proctup, &argtypes, &argnames,
											  &argmodes);

		if (argnames != NULL && argno < nargs && argnames[argno][0] != '\0')
			name = argnames[argno];
		ReleaseSysCache(proctup);
	}

	return name != NULL ? name : psprintf("argument %d", argno + 1);
}

/*
 * check_not_null_arg
 *		Raise 22004 when argument argno is NULL.
 *
 * The message names the argument as declared in the SQL signature.
 */
void
check_not_null_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", arg_name(fcinfo, argno))));
}

/*
 * check_key_arg
 *		Return key argument argno, or raise when it is NULL, empty or longer
 *		than HAEMATITE_MAX_KEY_BYTES.
 *
 * Works for bytea and text arguments alike, since both are varlenas whose
 * bytes are the key.  The result may be in packed (short-header) form; use
 * VARSIZE_ANY_EXHDR and VARDATA_ANY on it.
 */
bytea *
check_key_arg(FunctionCallInfo fcinfo, int argno)
{
	bytea	   *key;
	int			length;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", arg_name(fcinfo, argno))));

	key = PG_GETARG_BYTEA_PP(argno);
	length = VARSIZE_ANY_EXHDR(key);

	if (length == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", arg_name(fcinfo, argno)),
				 errdetail("Keys are 1 to %d bytes long.",
						   HAEMATITE_MAX_KEY_BYTES)));

	if (length > HAEMATITE_MAX_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too long", arg_name(fcinfo, argno)),
				 errdetail("The key is %d bytes long; the limit is %d bytes.",
						   length, HAEMATITE_MAX_KEY_BYTES)));

	return key;
}

/*
 * check_nonnegative_int64_arg
 *		Return bigint argument argno, or raise when it is NULL or negative.
 */
int64
check_nonnegative_int64_arg(FunctionCallInfo fcinfo, int argno)
{
	int64		value;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", arg_name(fcinfo, argno))));

	value = PG_GETARG_INT64(argno);
	if (value < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative, but is " INT64_FORMAT,
						arg_name(fcinfo, argno), value)));

	return value;
}

/*
 * report_negative_ttl
 *		Raise 22023 for a TTL argument that would expire an event before it
 *		was appended.
 */
static void
pg_attribute_noreturn()
report_negative_ttl(FunctionCallInfo fcinfo, int argno, Interval *ttl)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must not be negative, but is %s",
					arg_name(fcinfo, argno),
					DatumGetCString(DirectFunctionCall1(interval_out,
														IntervalPGetDatum(ttl))))));
}

/*
 * check_ttl_arg
 *		Raise when interval argument argno is negative, or so large that an
 *		expiry computed from it would leave the timestamp range.
 *
 * A NULL TTL is valid: the event never expires.  An interval is negative
 * when it compares below zero, with a month counted as 30 days as in
 * interval comparison.
 */
void
check_ttl_arg(FunctionCallInfo fcinfo, int argno)
{
	Interval   *ttl;
	Interval	zero = {0};
	TimestampTz now;
	volatile TimestampTz expiry = 0;
	volatile TimestampTz limit = 0;
	volatile bool in_range = true;

	if (PG_ARGISNULL(argno))
		return;

	ttl = PG_GETARG_INTERVAL_P(argno);
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  IntervalPGetDatum(ttl),
										  IntervalPGetDatum(&zero))) < 0)
		report_negative_ttl(fcinfo, argno, ttl);

	/*
	 * Adding the TTL to a timestamp raises 22008 when the sum leaves the
	 * timestamp range.  Try it here, also a year past the current time to
	 * leave room for a stream whose last append is in the future, and report
	 * an out-of-range TTL as an invalid argument instead.  Catching the
	 * error without a subtransaction is safe because a new error is raised
	 * at once.
	 */
	now = GetCurrentTimestamp();
	PG_TRY();
	{
		expiry = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														 TimestampTzGetDatum(now),
														 IntervalPGetDatum(ttl)));
		limit = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														TimestampTzGetDatum(now + USECS_PER_DAY * DAYS_PER_YEAR),
														IntervalPGetDatum(ttl)));
	}
	PG_CATCH();
	{
		FlushErrorState();
		in_range = false;
	}
	PG_END_TRY();

	if (!in_range || TIMESTAMP_NOT_FINITE(limit))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too large: %s", arg_name(fcinfo, argno),
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(ttl)))),
				 errdetail("An event's expiry must fall inside the timestamp range.")));

	/*
	 * Months and days make an interval's sign depend on the date: '-1 month
	 * 30 days' compares as positive but moves 31 March back a day.  Reject a
	 * TTL that puts an expiry before the time of the call.
	 */
	if (expiry < now)
		report_negative_ttl(fcinfo, argno, ttl);
}

/*
 * format_key
 *		Return a stream or scalar key as it appears in messages.
 *
 * Text in double quotes when the bytes are valid in the database encoding
 * and hold no control character, double quote or backslash, so that the
 * quotes always delimit the whole key; \x-prefixed hex otherwise.  The result is
 * palloc'd in the current memory context.
 */
char *
format_key(bytea *key)
{
	const char *data = VARDATA_ANY(key);
	int			length = VARSIZE_ANY_EXHDR(key);
	bool		printable;
	StringInfoData buf;

	printable = pg_verifymbstr(data, length, true);
	for (int i = 0; printable && i < length; i++)
	{
		unsigned char c = (unsigned char) data[i];

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			printable = false;
	}

	initStringInfo(&buf);
	if (printable)
	{
		appendStringInfoChar(&buf, '"');
		appendBinaryStringInfo(&buf, data, length);
		appendStringInfoChar(&buf, '"');
	}
	else
	{
		static const char hexdigits[] = "0123456789abcdef";

		appendStringInfoString(&buf, "\\x");
		for (int i = 0; i < length; i++)
		{
			unsigned char c = (unsigned char) data[i];

			appendStringInfoChar(&buf, hexdigits[c >> 4]);
			appendStringInfoChar(&buf, hexdigits[c & 0x0f]);
		}
	}

	return buf.data;
}

/*
 * report_sequence_conflict
 *		Raise SE001: an append's expected sequence is not the stream's next.
 */
void
report_sequence_conflict(bytea *stream_key, int64 expected, int64 actual)
{
	ereport(ERROR,
			(errcode(ERRCODE_HAEMATITE_SEQUENCE_CONFLICT),
			 errmsg("sequence conflict on stream %s", format_key(stream_key)),
			 errdetail("Expected next sequence " INT64_FORMAT ", actual " INT64_FORMAT ".",
					   expected, actual),
			 errhint("Read the stream from its current next sequence and retry.")));
}

/*
 * report_value_mismatch
 *		Raise SE002: a compare-and-swap found another value than expected.
 *
 * A NULL expected value or a missing key appears as "absent" in DETAIL.
 */
void
report_value_mismatch(bytea *key, bool expected_isnull, int64 expected,
					  bool actual_isnull, int64 actual)
{
	char	   *expected_text;
	char	   *actual_text;

	expected_text = expected_isnull ? pstrdup("absent") :
		psprintf(INT64_FORMAT, expected);
	actual_text = actual_isnull ? pstrdup("absent") :
		psprintf(INT64_FORMAT, actual);

	ereport(ERROR,
			(errcode(ERRCODE_HAEMATITE_VALUE_MISMATCH),
			 errmsg("compare-and-swap mismatch on key %s", format_key(key)),
			 errdetail("Expected value %s, actual %s.", expected_text,
					   actual_text)));
}

/*
 * report_history_compacted
 *		Raise SE003: every event at or after from_seq has expired.
 */
void
report_history_compacted(bytea *stream_key, int64 from_seq, int64 next_seq)
{
	ereport(ERROR,
			(errcode(ERRCODE_HAEMATITE_HISTORY_COMPACTED),
			 errmsg("history of stream %s is compacted", format_key(stream_key)),
			 errdetail("Requested from sequence " INT64_FORMAT "; next sequence is " INT64_FORMAT "; no live event remains in that range.",
					   from_seq, next_seq),
			 errhint("Continue from the next sequence that this detail gives; the expired events cannot be read again.")));
}

/*
 * report_sequence_overflow
 *		Raise 22003: appending count events would take next_seq past the
 *		bigint maximum.
 */
void
report_sequence_overflow(bytea *stream_key, int64 next_seq, int64 count)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("stream %s would pass the maximum sequence number",
					format_key(stream_key)),
			 errdetail_plural("The stream's next sequence is " INT64_FORMAT "; appending " INT64_FORMAT " event would pass " INT64_FORMAT ".",
							  "The stream's next sequence is " INT64_FORMAT "; appending " INT64_FORMAT " events would pass " INT64_FORMAT ".",
							  count, next_seq, count, PG_INT64_MAX)));
}

/*
 * report_event_collision
 *		Raise SE004: an event row already occupies a sequence that the
 *		stream's head row marks as not yet written.
 *
 * Only a write that went around haematite's functions, or a damaged table,
 * can cause this.
 */
void
report_event_collision(bytea *stream_key, int64 first_seq, int64 count)
{
	if (count == 1)
		ereport(ERROR,
				(errcode(ERRCODE_HAEMATITE_CORRUPT_DATA),
				 errmsg("corrupt data in stream %s", format_key(stream_key)),
				 errdetail("An event row already exists at sequence " INT64_FORMAT ", which the stream head row marks as not yet written.",
						   first_seq),
				 errhint("Check for writes to haematite.events that bypassed haematite's functions.")));

	ereport(ERROR,
			(errcode(ERRCODE_HAEMATITE_CORRUPT_DATA),
			 errmsg("corrupt data in stream %s", format_key(stream_key)),
			 errdetail("An event row already exists at one or more of sequences " INT64_FORMAT " to " INT64_FORMAT ", which the stream head row marks as not yet written.",
					   first_seq, first_seq + count - 1),
			 errhint("Check for writes to haematite.events that bypassed haematite's functions.")));
}

/*
 * report_missing_events
 *		Raise SE004: an append advanced the head row but fewer event rows
 *		than expected were inserted.
 *
 * Only a trigger or rule on haematite.events that skips rows can cause
 * this; the error rolls the whole append back.
 */
void
report_missing_events(bytea *stream_key, int64 expected_rows,
					  uint64 inserted_rows)
{
	ereport(ERROR,
			(errcode(ERRCODE_HAEMATITE_CORRUPT_DATA),
			 errmsg("events of stream %s were not stored", format_key(stream_key)),
			 errdetail("The append inserted " UINT64_FORMAT " of " INT64_FORMAT " event rows.",
					   inserted_rows, expected_rows),
			 errhint("Check for triggers or rules on haematite.events that skip rows.")));
}

/*
 * report_spi_failure
 *		Raise an internal error for an SPI call that should not fail.
 *
 * SPI raises user-facing failures (constraint violations, permission
 * errors) itself.  A negative return code means that haematite called SPI
 * wrongly or that its objects are damaged.
 */
void
report_spi_failure(const char *sql, int rc)
{
	elog(ERROR, "SPI call failed with %s while running: %s",
		 SPI_result_code_string(rc), sql);
}
