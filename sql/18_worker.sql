--
-- Background sweeper, on a server without haematite in
-- shared_preload_libraries (the regression server): its settings exist once
-- the library is loaded, no worker runs, and last_sweep() returns one row of
-- NULLs because nothing records sweeps.  test/scripts/worker.sh tests the
-- worker itself on a server that preloads the library.
--

-- A call loads the library in this session, which defines the settings.
SELECT haematite.next_seq('worker/none');
SELECT name, setting, unit, context, vartype, min_val, max_val, boot_val
FROM pg_settings
WHERE name IN ('haematite.sweep_interval', 'haematite.sweep_batch_size',
               'haematite.database')
ORDER BY name;

-- Every setting has a description.
SELECT name, short_desc <> '' AS has_description
FROM pg_settings
WHERE name LIKE 'haematite.%'
ORDER BY name;

-- The settings come from the server configuration only: SET fails with
-- 55P02 and leaves them unchanged.
SELECT * FROM capture_error($$SET haematite.sweep_interval = 5$$);
SELECT * FROM capture_error($$SET haematite.sweep_batch_size = 5$$);
SELECT * FROM capture_error($$SET haematite.database = 'other'$$);
SELECT current_setting('haematite.sweep_interval') AS sweep_interval,
       current_setting('haematite.sweep_batch_size') AS sweep_batch_size,
       current_setting('haematite.database') AS database;

-- No sweeper process runs without preloading.
SELECT count(*) AS sweeper_processes
FROM pg_stat_activity
WHERE backend_type LIKE 'haematite%';

-- last_sweep() returns exactly one row, of NULLs, also after a sweep.
SELECT count(*) AS rows FROM haematite.last_sweep();
SELECT haematite.append('worker/expired', '\x01', 0, '0');
SELECT haematite.sweep();
SELECT finished_at IS NULL AS finished_at_null,
       deleted IS NULL AS deleted_null,
       source IS NULL AS source_null
FROM haematite.last_sweep();

-- The columns of its row, in order, and its labels.
SELECT c.position, c.name, c.type::regtype AS type, c.mode
FROM pg_proc AS p,
     unnest(p.proargnames, p.proallargtypes, p.proargmodes)
         WITH ORDINALITY AS c(name, type, mode, position)
WHERE p.oid = 'haematite.last_sweep()'::regprocedure
ORDER BY c.position;
SELECT provolatile, proparallel, prosecdef, proisstrict
FROM pg_proc
WHERE oid = 'haematite.last_sweep()'::regprocedure;

-- Only the owner may call it: PUBLIC has no EXECUTE, and a role without
-- grants gets 42501.
SELECT has_function_privilege('public', 'haematite.last_sweep()', 'EXECUTE')
    AS public_can_execute;
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_haematite_worker_nobody;
RESET client_min_messages;
CREATE ROLE regress_haematite_worker_nobody;
GRANT USAGE ON SCHEMA haematite TO regress_haematite_worker_nobody;
SET ROLE regress_haematite_worker_nobody;
SELECT * FROM capture_error($$SELECT * FROM haematite.last_sweep()$$);
RESET ROLE;
REVOKE USAGE ON SCHEMA haematite FROM regress_haematite_worker_nobody;
DROP ROLE regress_haematite_worker_nobody;
