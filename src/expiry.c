/*-------------------------------------------------------------------------
 *
 * expiry.c
 *		Removing expired events: sweep, and the deletion loop that the
 *		background sweeper (worker.c) runs too.
 *
 * Reads hide an expired event at once (see reads.c); sweep deletes the rows
 * afterwards to free their space.  It never changes a stream's head row:
 * next_seq keeps counting every event ever appended, and live_until stays
 * at the latest expiry, which is already past for a stream whose events
 * all expired.
 *
 * sweep locks the rows it deletes with SKIP LOCKED, so two sweeps running
 * at once divide the work instead of waiting for each other.  Appends only
 * insert event rows, which sweep cannot see before they commit, so sweep
 * does not wait for appends either.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/timestamp.h"

#include "haematite.h"

PG_FUNCTION_INFO_V1(sweep);

/*
 * Events deleted per statement.  A larger sweep runs the statement again,
 * so no call builds an array of every expired row.
 */
#define SWEEP_CHUNK_EVENTS 10000

/*
 * Delete at most $2 events that expired by $1.  The rows are found through
 * the partial index on expires_at, locked, and deleted by their tuple ids
 * (a TID scan).  So the cost follows the number of rows deleted, whatever
 * the planner's statistics estimate.  A join back to the event table could
 * turn into a rescan of the whole table per row when the statistics are
 * stale.
 *
 * Note: on a partitioned event table a tuple id names a row only within
 * its partition, so an expired row of another partition at the same tuple
 * id is deleted too (the expiry is checked again) and the count can exceed
 * $2 by those rows.
 */
static HaematiteQuery sweep_query = {
	.sql =
	"DELETE FROM haematite.events "
	"WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
	"    SELECT ctid FROM haematite.events "
	"    WHERE expires_at OPERATOR(pg_catalog.<=) $1 "
	"    LIMIT $2 FOR UPDATE SKIP LOCKED)) "
	"  AND expires_at OPERATOR(pg_catalog.<=) $1",
	.nargs = 2,
	.argtypes = {TIMESTAMPTZOID, INT8OID},
};

/*
 * sweep(max_events integer DEFAULT NULL) RETURNS bigint
 *
 * Deletes events whose expiry is at or before the statement's start time,
 * at most max_events of them (all when NULL), and returns how many it
 * deleted.  When the library is preloaded and the transaction commits,
 * the sweep becomes the last sweep that last_sweep() returns.
 */
Datum
sweep(PG_FUNCTION_ARGS)
{
	int64		max_events = -1;
	uint64		deleted;

	if (!PG_ARGISNULL(0))
	{
		int32		max_events_arg = PG_GETARG_INT32(0);

		if (max_events_arg < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_events must not be negative, but is %d",
							max_events_arg)));
		max_events = max_events_arg;
	}

	deleted = delete_expired_events(GetCurrentStatementStartTimestamp(),
									max_events);
	record_sweep_at_commit((int64) deleted);

	PG_RETURN_INT64((int64) deleted);
}

/*
 * delete_expired_events
 *		Delete at most max_events events (all when negative) whose expiry is
 *		at or before expired_by, and return how many were deleted.
 *
 * The caller must be in a transaction, not connected to SPI.  Events
 * locked by another transaction are skipped, so the call never waits for
 * a concurrent sweep.  Raises an error when a statement fails.
 */
uint64
delete_expired_events(TimestampTz expired_by, int64 max_events)
{
	Datum		values[2];
	int64		remaining = max_events;
	uint64		deleted = 0;

	values[0] = TimestampTzGetDatum(expired_by);

	SPI_connect();

	/* Delete chunk by chunk until one comes back short. */
	for (;;)
	{
		int64		chunk = SWEEP_CHUNK_EVENTS;
		int			rc;

		if (remaining >= 0 && remaining < chunk)
			chunk = remaining;
		if (chunk == 0)
			break;

		values[1] = Int64GetDatum(chunk);
		rc = SPI_execute_plan(haematite_plan(&sweep_query), values, NULL,
							  false, 0);
		if (rc != SPI_OK_DELETE)
			report_spi_failure(sweep_query.sql, rc);

		deleted += SPI_processed;
		if (remaining >= 0)
			remaining -= Min((int64) SPI_processed, remaining);
		if (SPI_processed < (uint64) chunk)
			break;

		CHECK_FOR_INTERRUPTS();
	}

	SPI_finish();

	return deleted;
}
