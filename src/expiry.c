/*-------------------------------------------------------------------------
 *
 * expiry.c
 *		Removing expired events: sweep.
 *
 * Reads hide an expired event at once (see reads.c); sweep deletes the rows
 * afterwards to free their space.  It never changes a stream's head row:
 * next_seq keeps counting every event ever appended, and live_until stays
 * at the latest expiry, which is already past for a stream whose events
 * all expired.
 *
 * sweep locks the rows it deletes with SKIP LOCKED, so two sweeps running
 * at once divide the work instead of waiting for each other.  Appends never
 * lock event rows, so sweep never waits for them either.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/timestamp.h"

#include "haematite.h"

PG_FUNCTION_INFO_V1(sweep);

/*
 * Delete at most $2 (NULL: all) events that expired by $1.  Planned for each
 * call's values: a join plan fit for deleting ten events is unfit for
 * deleting millions, and the other way round.
 */
static HaematiteQuery sweep_query = {
	.sql =
	"WITH expired AS ("
	"  SELECT stream_key, seq FROM haematite.events "
	"  WHERE expires_at OPERATOR(pg_catalog.<=) $1 "
	"  LIMIT $2 FOR UPDATE SKIP LOCKED) "
	"DELETE FROM haematite.events e USING expired x "
	"WHERE e.stream_key OPERATOR(pg_catalog.=) x.stream_key "
	"  AND e.seq OPERATOR(pg_catalog.=) x.seq",
	.nargs = 2,
	.argtypes = {TIMESTAMPTZOID, INT8OID},
	.cursor_options = CURSOR_OPT_CUSTOM_PLAN,
};

/*
 * sweep(max_events integer DEFAULT NULL) RETURNS bigint
 *
 * Deletes events whose expiry is at or before the statement's start time,
 * at most max_events of them (all when NULL), and returns how many it
 * deleted.
 */
Datum
sweep(PG_FUNCTION_ARGS)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	int			rc;
	uint64		deleted;

	values[0] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
	if (PG_ARGISNULL(0))
	{
		values[1] = (Datum) 0;
		nulls[1] = 'n';
	}
	else
	{
		int32		max_events = PG_GETARG_INT32(0);

		if (max_events < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_events must not be negative, but is %d",
							max_events)));
		values[1] = Int64GetDatum((int64) max_events);
	}

	SPI_connect();

	rc = SPI_execute_plan(haematite_plan(&sweep_query), values, nulls, false,
						  0);
	if (rc != SPI_OK_DELETE)
		report_spi_failure(sweep_query.sql, rc);
	deleted = SPI_processed;

	SPI_finish();

	PG_RETURN_INT64((int64) deleted);
}
