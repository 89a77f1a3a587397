--
-- Statistics: haematite.stats() returns one row of row counts, table and
-- index sizes and the last sweep.  The counts whose names end in _estimate
-- come from the row density that VACUUM or ANALYZE stores in pg_class, so
-- they are exact right after an ANALYZE of an unchanged small table.
-- expired_events is always exact.  Privileges: only roles granted EXECUTE
-- may call it.
--

-- The row's columns, in order, with their types.
SELECT c.position, c.name, c.type::regtype AS type, c.mode
FROM pg_proc AS p,
     unnest(p.proargnames, p.proallargtypes, p.proargmodes)
         WITH ORDINALITY AS c(name, type, mode, position)
WHERE p.oid = 'haematite.stats()'::regprocedure
ORDER BY c.position;

-- Start from empty tables, so that the counts below are known.
DROP EXTENSION haematite;
CREATE EXTENSION haematite;
SELECT extversion FROM pg_extension WHERE extname = 'haematite';

-- An empty store: every count is 0, and stats returns exactly one row.
ANALYZE haematite.stream_heads, haematite.events, haematite.scalar_values;
SELECT streams_estimate, events_estimate, live_events_estimate, expired_events,
       cas_keys_estimate
FROM haematite.stats();
SELECT count(*) AS rows FROM haematite.stats();

-- Three streams: stats/a has 4 events that never expire, stats/b 2 expired
-- events and 1 that expires tomorrow, stats/c 3 expired events.  Two values.
SELECT haematite.append_batch('stats/a', ARRAY['\x01', '\x02', '\x03', '\x04']::bytea[], 0);
SELECT haematite.append_batch('stats/b', ARRAY['\x01', '\x02']::bytea[], 0, ttl => '0');
SELECT haematite.append('stats/b', '\x03', 2, ttl => '1 day');
SELECT haematite.append_batch('stats/c', ARRAY['\x01', '\x02', '\x03']::bytea[], 0, ttl => '0');
SELECT haematite.cas('stats/k1', NULL, 1);
SELECT haematite.cas('stats/k2', NULL, 2);

-- The expired count is exact without ANALYZE: 5 events expired, the one
-- that expires tomorrow is not counted.
SELECT expired_events FROM haematite.stats();

-- After ANALYZE the estimates are exact: 3 streams, 10 events of which 5
-- are live, 2 values.
ANALYZE haematite.stream_heads, haematite.events, haematite.scalar_values;
SELECT streams_estimate, events_estimate, live_events_estimate, expired_events,
       cas_keys_estimate
FROM haematite.stats();

-- The same numbers counted directly.
SELECT s.streams_estimate = (SELECT count(*) FROM haematite.stream_heads) AS streams_match,
       s.events_estimate = (SELECT count(*) FROM haematite.events) AS events_match,
       s.expired_events = (SELECT count(*) FROM haematite.events
                           WHERE expires_at <= statement_timestamp()) AS expired_match,
       s.cas_keys_estimate = (SELECT count(*) FROM haematite.scalar_values) AS keys_match
FROM haematite.stats() AS s;

-- The sizes are those of the three tables (heap, TOAST, free space and
-- visibility maps) and of their indexes.
SELECT s.table_bytes = pg_table_size('haematite.stream_heads')
                       + pg_table_size('haematite.events')
                       + pg_table_size('haematite.scalar_values') AS table_bytes_match,
       s.index_bytes = pg_indexes_size('haematite.stream_heads')
                       + pg_indexes_size('haematite.events')
                       + pg_indexes_size('haematite.scalar_values') AS index_bytes_match,
       s.table_bytes > 0 AS has_table_bytes,
       s.index_bytes > 0 AS has_index_bytes
FROM haematite.stats() AS s;

-- The expired count follows sweep at once: 2 of the 5 are deleted, then
-- the other 3.  ANALYZE then brings the event estimate down to the 5 live
-- events.  The stream count stays at 3, because sweep never deletes a head
-- row.
SELECT haematite.sweep(2);
SELECT expired_events FROM haematite.stats();
ANALYZE haematite.events;
SELECT events_estimate, live_events_estimate, expired_events FROM haematite.stats();
SELECT haematite.sweep();
SELECT expired_events FROM haematite.stats();
ANALYZE haematite.events;
SELECT streams_estimate, events_estimate, live_events_estimate, expired_events
FROM haematite.stats();

-- Between ANALYZEs the estimates follow the table's growth: ANALYZE at 1000
-- events of stats/big, then 1000 more.  The estimate scales the stored
-- density by the current number of pages, so it is close to 2005 but need
-- not be exact.
SELECT haematite.append_batch('stats/big', array_fill('\x00'::bytea, ARRAY[1000]), 0);
ANALYZE haematite.events;
SELECT haematite.append_batch('stats/big', array_fill('\x00'::bytea, ARRAY[1000]), 1000);
SELECT events_estimate BETWEEN 1800 AND 2200 AS events_estimate_follows_growth
FROM haematite.stats();

-- Without haematite in shared_preload_libraries no sweep is recorded, not
-- even the ones called by hand above, so the last sweep columns are NULL.
SELECT current_setting('shared_preload_libraries') ~ 'haematite' AS preloaded;
SELECT last_sweep_finished_at IS NULL AS no_finished_at,
       last_sweep_deleted IS NULL AS no_deleted,
       last_sweep_source IS NULL AS no_source
FROM haematite.stats();

-- Privileges.  Roles are shared by every database of the cluster, so drop
-- those left over by an earlier run that failed before its cleanup.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_haematite_stats_nobody, regress_haematite_monitor;
RESET client_min_messages;
CREATE ROLE regress_haematite_stats_nobody;
CREATE ROLE regress_haematite_monitor;

-- PUBLIC may not execute stats: a role with USAGE on the schema but no
-- grant gets 42501, and nothing is written.
GRANT USAGE ON SCHEMA haematite TO regress_haematite_stats_nobody;
SELECT tables_digest() AS digest_before \gset
SET ROLE regress_haematite_stats_nobody;
SELECT * FROM capture_error($$SELECT * FROM haematite.stats()$$);
RESET ROLE;
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- The monitoring recipe: USAGE plus EXECUTE on stats.  It returns the same
-- row as for the superuser, although the role may not read the tables
-- behind it, and it grants nothing else.
GRANT USAGE ON SCHEMA haematite TO regress_haematite_monitor;
GRANT EXECUTE ON FUNCTION haematite.stats() TO regress_haematite_monitor;
SELECT streams_estimate, events_estimate, expired_events, cas_keys_estimate
FROM haematite.stats() \gset superuser_
SET ROLE regress_haematite_monitor;
SELECT streams_estimate = :superuser_streams_estimate AS same_streams,
       events_estimate = :superuser_events_estimate AS same_events,
       expired_events = :superuser_expired_events AS same_expired,
       cas_keys_estimate = :superuser_cas_keys_estimate AS same_keys
FROM haematite.stats();
SELECT * FROM capture_error($$SELECT count(*) FROM haematite.events$$);
SELECT * FROM capture_error($$SELECT haematite.next_seq('stats/a')$$);
SELECT * FROM capture_error($$SELECT haematite.sweep()$$);
RESET ROLE;
SELECT p.oid::regprocedure AS monitor_may_execute
FROM pg_proc AS p
WHERE p.pronamespace = 'haematite'::regnamespace
  AND has_function_privilege('regress_haematite_monitor', p.oid, 'EXECUTE')
ORDER BY 1;

-- The body of stats was bound when the extension was created, so a caller's
-- search_path that shadows the functions and operators it uses changes
-- nothing.
CREATE SCHEMA regress_stats_shadow AUTHORIZATION regress_haematite_monitor;
SET ROLE regress_haematite_monitor;
CREATE FUNCTION regress_stats_shadow.statement_timestamp() RETURNS timestamptz
LANGUAGE sql AS $$SELECT 'infinity'::timestamptz$$;
CREATE FUNCTION regress_stats_shadow.pg_relation_size(regclass) RETURNS bigint
LANGUAGE sql AS $$SELECT 0::bigint$$;
CREATE FUNCTION regress_stats_shadow.shadow_le(timestamptz, timestamptz) RETURNS boolean
LANGUAGE sql AS $$SELECT true$$;
CREATE OPERATOR regress_stats_shadow.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz,
                                         FUNCTION = regress_stats_shadow.shadow_le);
SET search_path = regress_stats_shadow, pg_catalog;
SELECT streams_estimate OPERATOR(pg_catalog.=) :superuser_streams_estimate AS same_streams,
       events_estimate OPERATOR(pg_catalog.=) :superuser_events_estimate AS same_events,
       expired_events OPERATOR(pg_catalog.=) :superuser_expired_events AS same_expired
FROM haematite.stats();
RESET search_path;
RESET ROLE;

SET client_min_messages = warning;
DROP SCHEMA regress_stats_shadow CASCADE;
RESET client_min_messages;
REVOKE ALL ON FUNCTION haematite.stats() FROM regress_haematite_monitor;
REVOKE ALL ON SCHEMA haematite FROM regress_haematite_stats_nobody, regress_haematite_monitor;
DROP ROLE regress_haematite_stats_nobody;
DROP ROLE regress_haematite_monitor;

-- stats() turns sequential and bitmap scans off for its own run, so that it
-- counts expired events through the partial index on expires_at even before
-- the event table was ever analyzed, when the planner would otherwise read
-- the whole table.
SELECT proconfig FROM pg_proc WHERE oid = 'haematite.stats()'::regprocedure;
