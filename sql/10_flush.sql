--
-- flush: forces WAL to disk up to the insert position and returns the
-- flushed position.  LSN values differ between runs, so only comparisons
-- are printed.
--

-- The returned position is not before the insert position taken before the
-- call, and the server reports WAL flushed at least that far afterwards.
SELECT haematite.append('flush/stream', '\x01', 0);
SELECT pg_current_wal_insert_lsn() AS insert_before \gset
SELECT haematite.flush() AS flushed \gset
SELECT :'flushed'::pg_lsn >= :'insert_before'::pg_lsn AS covers_insert_position,
       pg_current_wal_flush_lsn() >= :'flushed'::pg_lsn AS server_flushed_that_far,
       pg_current_wal_insert_lsn() >= :'flushed'::pg_lsn AS not_past_insert_position;

-- After a commit under synchronous_commit = off, flush covers that commit.
SET synchronous_commit = off;
SELECT haematite.append('flush/stream', '\x02', 1);
SELECT pg_current_wal_insert_lsn() AS insert_after_commit \gset
SELECT haematite.flush() >= :'insert_after_commit'::pg_lsn AS covers_commit;
RESET synchronous_commit;

-- flush returns a pg_lsn, and calling it twice in a row never goes back.
SELECT pg_typeof(haematite.flush());
SELECT haematite.flush() AS first_flush \gset
SELECT haematite.flush() >= :'first_flush'::pg_lsn AS not_decreasing;

-- flush works inside a transaction block and writes no row.
SELECT tables_digest() AS digest_before \gset
BEGIN;
SELECT haematite.flush() IS NOT NULL AS flushed;
COMMIT;
SELECT tables_digest() = :'digest_before' AS nothing_written;
