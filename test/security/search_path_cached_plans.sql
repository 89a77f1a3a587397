-- search_path and object hijacking, in a session whose plans are cached.
--
-- Every role first calls the whole API in a clean session, so haematite
-- prepares and saves its plans.  Then an unprivileged writer plants, in
-- public and pg_temp, operators, functions, types and views named like
-- those in haematite's SQL (hijack_plant.psql).  Each role calls the API
-- again under search_path settings that put those schemas first and
-- pg_catalog last or nowhere.  The saved plans must be rebuilt with the same
-- built-in objects: every call returns what a clean session returns, and no
-- planted object runs, which its log would show.
--
-- Run with pg_prove, as a superuser, in a database where the pgtap and
-- haematite extensions exist.  Everything is rolled back.

BEGIN;

SELECT plan(21);

\ir hijack_setup.psql

-- Clean session: each caller runs the workload once, which saves the plans.
SELECT format('SET ROLE %I', role_name),
       format('CALL sec_hijack.workload_write(%L)', 'clean/' || name || '/'),
       format('CALL sec_hijack.workload_read(%L)', 'clean/' || name || '/'),
       'RESET ROLE'
FROM sec_hijack.caller ORDER BY name
\gexec

SELECT is_empty(format('SELECT * FROM sec_hijack.differences(%L)', 'clean/' || name || '/'),
                format('clean session, %s: the API returns the expected results', name))
FROM sec_hijack.caller ORDER BY name;

\ir hijack_plant.psql

-- Hijacked sessions: the same workload under each search_path, by each caller.
SELECT format('SET search_path = %s', v.setting),
       format('SET ROLE %I', c.role_name),
       format('CALL sec_hijack.workload_write(%L)', v.name || '/' || c.name || '/'),
       format('CALL sec_hijack.workload_read(%L)', v.name || '/' || c.name || '/'),
       'RESET ROLE',
       'RESET search_path'
FROM sec_hijack.search_path_variant AS v, sec_hijack.caller AS c
ORDER BY v.name, c.name
\gexec

SELECT is_empty(format('SELECT * FROM sec_hijack.differences(%L)', v.name || '/' || c.name || '/'),
                format('search_path %s, %s, cached plans: the API returns the expected results',
                       v.setting, c.name))
FROM sec_hijack.search_path_variant AS v, sec_hijack.caller AS c
ORDER BY v.name, c.name;

SELECT is_empty($$SELECT * FROM public.hijack_log$$,
                'no planted object ran during the API calls');

-- Control: the planted objects do capture unqualified SQL under these
-- search_path settings, so the empty log above means something.
SET search_path = public, pg_catalog;
SELECT '\x01'::pg_catalog.bytea = '\x02'::pg_catalog.bytea AS planted_equal \gset
SET search_path = pg_temp, public, pg_catalog;
SELECT count(*) AS planted_view_rows FROM events \gset
RESET search_path;

SELECT ok(:'planted_equal'::boolean AND :'planted_view_rows'::int = 1,
          'control: unqualified SQL reaches the planted operator and view');
SELECT results_eq(
    $$SELECT executed_as = current_user, object FROM public.hijack_log ORDER BY object$$,
    $$VALUES (true, 'operator public.=(bytea, bytea)'),
             (true, 'read of view pg_temp.events')$$,
    'control: the planted objects log each execution');

SELECT * FROM finish();
ROLLBACK;
