--
-- The head row update that every append makes must stay a HOT update (no new
-- index entry), or the head table and its primary key bloat with every event.
-- The table's fillfactor leaves room on each page for the new row version.
--

SELECT count(haematite.append('hot/' || i, '\x00', 0)) AS streams FROM generate_series(0, 4) i;

SELECT pg_stat_force_next_flush();
SELECT n_tup_upd AS updates_before, n_tup_hot_upd AS hot_updates_before
FROM pg_stat_user_tables
WHERE relid = 'haematite.stream_heads'::regclass \gset

-- 300 appends to five existing streams, each in its own transaction, so that
-- page pruning can reclaim the old row versions as it would in production.
DO $$
BEGIN
    FOR i IN 0 .. 299 LOOP
        PERFORM haematite.append('hot/' || (i % 5), '\x01',
                                 haematite.next_seq('hot/' || (i % 5)));
        COMMIT;
    END LOOP;
END
$$;

-- Every one of the 300 appends updated its head row, and at least nine in
-- ten of those updates were HOT (in practice all of them are).
SELECT pg_stat_force_next_flush();
SELECT n_tup_upd - :updates_before AS head_updates,
       (n_tup_hot_upd - :hot_updates_before) >= 0.9 * (n_tup_upd - :updates_before)
           AS mostly_hot
FROM pg_stat_user_tables
WHERE relid = 'haematite.stream_heads'::regclass;

-- A new head row carries 48 filler bytes in reserve and its first append
-- clears them.  Pages are filled with rows of the larger size, so once their
-- streams have been appended to, every page has room for many HOT updates
-- before it needs pruning again.
SELECT haematite.append('reserve/new', '\x00', 0) AS next_seq;
SELECT octet_length(reserve) AS reserve_bytes
FROM haematite.stream_heads WHERE stream_key = 'reserve/new'::bytea;
SELECT haematite.append_batch('reserve/new', ARRAY['\x01', '\x02']::bytea[], 1) AS next_seq;
SELECT reserve IS NULL AS reserve_cleared
FROM haematite.stream_heads WHERE stream_key = 'reserve/new'::bytea;
SELECT haematite.append_batch('reserve/batch', ARRAY['\x01']::bytea[], 0, '1 hour') AS next_seq;
SELECT octet_length(reserve) AS reserve_bytes
FROM haematite.stream_heads WHERE stream_key = 'reserve/batch'::bytea;
SELECT haematite.append('reserve/batch', '\x02', 1, '1 hour') AS next_seq;
SELECT reserve IS NULL AS reserve_cleared
FROM haematite.stream_heads WHERE stream_key = 'reserve/batch'::bytea;
