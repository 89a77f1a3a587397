/*-------------------------------------------------------------------------
 *
 * flush.c
 *		Forcing WAL to disk: flush.
 *
 * With synchronous_commit = off, a commit returns before its WAL record is
 * on disk.  flush() makes every such commit durable: it writes and fsyncs
 * the WAL up to the current insert position, which lies after the commit
 * record of every transaction that had committed when flush() started, in
 * any session.  It waits for other backends still copying records into the
 * WAL buffers below that position.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/pg_lsn.h"

#include "haematite.h"

PG_FUNCTION_INFO_V1(flush);

/*
 * flush() RETURNS pg_lsn
 *
 * Flushes WAL to disk up to the current insert position and returns that
 * position.  Raises 25006 on a hot standby, which writes no WAL of its own.
 */
Datum
flush(PG_FUNCTION_ARGS)
{
	XLogRecPtr	insert_lsn;

	PreventCommandDuringRecovery("haematite.flush()");

	/*
	 * When the insert position is at the start of a page, the returned
	 * pointer lies just past the page header that no record has been
	 * written after yet.  Flush to the end of the previous page instead:
	 * asking XLogFlush for more than has been reserved only makes it log a
	 * complaint and flush what exists.
	 */
	insert_lsn = GetXLogInsertRecPtr();
	if (XLogSegmentOffset(insert_lsn, wal_segment_size) == SizeOfXLogLongPHD)
		insert_lsn -= SizeOfXLogLongPHD;
	else if (insert_lsn % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		insert_lsn -= SizeOfXLogShortPHD;

	XLogFlush(insert_lsn);

	PG_RETURN_LSN(insert_lsn);
}
