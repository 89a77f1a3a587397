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
