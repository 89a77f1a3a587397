-- search_path and object hijacking, in a session that has not called
-- haematite before.
--
-- An unprivileged writer plants, in public and pg_temp, operators,
-- functions, types and views named like those in haematite's SQL
-- (hijack_plant.psql) before the first call of the session, so haematite
-- prepares its plans for the first time under a hostile search_path.  Each
-- role then calls the whole API under search_path settings that put those
-- schemas first and pg_catalog last or nowhere: every call must return what
-- a clean session returns, and no planted object may run, which its log
-- would show.
--
-- Run with pg_prove, as a superuser, in a database where the pgtap and
-- haematite extensions exist.  Everything is rolled back.

BEGIN;

SELECT plan(18);

\ir hijack_setup.psql
\ir hijack_plant.psql

SELECT format('SET search_path = %s', v.setting),
       format('SET ROLE %I', c.role_name),
       format('CALL sec_hijack.workload_write(%L)', v.name || '/' || c.name || '/'),
       format('CALL sec_hijack.workload_read(%L)', v.name || '/' || c.name || '/'),
       'RESET ROLE',
       'RESET search_path'
FROM sec_hijack.search_path_variant AS v, sec_hijack.caller AS c
ORDER BY v.name DESC, c.name
\gexec

SELECT is_empty(format('SELECT * FROM sec_hijack.differences(%L)', v.name || '/' || c.name || '/'),
                format('search_path %s, %s, first call of the session: the API returns the expected results',
                       v.setting, c.name))
FROM sec_hijack.search_path_variant AS v, sec_hijack.caller AS c
ORDER BY v.name DESC, c.name;

SELECT is_empty($$SELECT * FROM public.hijack_log$$,
                'no planted object ran during the API calls');

-- Control: the planted objects do capture unqualified SQL under these
-- search_path settings, so the empty log above means something.
SET search_path = public, pg_catalog;
SELECT 1::bigint < 0::bigint AS planted_less \gset
SET search_path = pg_temp, public, pg_catalog;
SELECT count(*) AS planted_view_rows FROM stream_heads \gset
RESET search_path;

SELECT ok(:'planted_less'::boolean AND :'planted_view_rows'::int = 1,
          'control: unqualified SQL reaches the planted operator and view');
SELECT results_eq(
    $$SELECT executed_as = current_user, object FROM public.hijack_log ORDER BY object$$,
    $$VALUES (true, 'operator public.<(bigint, bigint)'),
             (true, 'read of view pg_temp.stream_heads')$$,
    'control: the planted objects log each execution');

SELECT * FROM finish();
ROLLBACK;
