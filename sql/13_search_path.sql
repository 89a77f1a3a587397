--
-- The functions run as the extension owner (SECURITY DEFINER), so a caller's
-- search_path must change nothing they do: tables, temporary tables,
-- operators and functions that shadow the ones the extension uses are never
-- used.  This file runs in a new session, so no query plan made under the
-- normal search_path is cached yet.
--

-- Roles are shared by every database of the cluster, so drop one left over by
-- an earlier run that failed before its cleanup.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_haematite_shadow;
RESET client_min_messages;

CREATE ROLE regress_haematite_shadow;
CREATE SCHEMA regress_shadow AUTHORIZATION regress_haematite_shadow;
GRANT USAGE ON SCHEMA haematite TO regress_haematite_shadow;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA haematite TO regress_haematite_shadow;

SET ROLE regress_haematite_shadow;

-- Tables named like the extension's, in a schema that comes first and in
-- pg_temp, which is searched before every schema.
CREATE TABLE regress_shadow.stream_heads (stream_key bytea, next_seq bigint,
                                          last_appended_at timestamptz,
                                          live_until timestamptz);
CREATE TABLE regress_shadow.events (stream_key bytea, seq bigint, payload bytea,
                                    appended_at timestamptz,
                                    expires_at timestamptz);
CREATE TABLE regress_shadow.scalar_values (key bytea, value bigint);
CREATE TEMP TABLE stream_heads (LIKE regress_shadow.stream_heads);
CREATE TEMP TABLE events (LIKE regress_shadow.events);
CREATE TEMP TABLE scalar_values (LIKE regress_shadow.scalar_values);

-- Comparison operators and time functions that raise an error naming the
-- user they run as, for every type the extension compares.
CREATE FUNCTION regress_shadow.shadow_called() RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'shadow object called as %', current_user;
END
$$;
DO $$
DECLARE
    type_name text;
    operator_name text;
BEGIN
    FOREACH type_name IN ARRAY ARRAY['bytea', 'bigint', 'integer', 'timestamptz']
    LOOP
        EXECUTE format('CREATE FUNCTION regress_shadow.shadow_compare(%1$s, %1$s) '
                       'RETURNS boolean LANGUAGE sql '
                       'AS ''SELECT regress_shadow.shadow_called()''',
                       type_name);
        FOREACH operator_name IN ARRAY ARRAY['=', '<>', '<', '<=', '>', '>=']
        LOOP
            EXECUTE format('CREATE OPERATOR regress_shadow.%s (LEFTARG = %s, '
                           'RIGHTARG = %s, FUNCTION = regress_shadow.shadow_compare)',
                           operator_name, type_name, type_name);
        END LOOP;
    END LOOP;
END
$$;
CREATE FUNCTION regress_shadow.now() RETURNS timestamptz
LANGUAGE sql AS 'SELECT CASE WHEN regress_shadow.shadow_called() THEN NULL::timestamptz END';
CREATE FUNCTION regress_shadow.statement_timestamp() RETURNS timestamptz
LANGUAGE sql AS 'SELECT CASE WHEN regress_shadow.shadow_called() THEN NULL::timestamptz END';
CREATE FUNCTION regress_shadow.clock_timestamp() RETURNS timestamptz
LANGUAGE sql AS 'SELECT CASE WHEN regress_shadow.shadow_called() THEN NULL::timestamptz END';

-- The shadow objects work where the search_path points at them.
SET search_path = regress_shadow, pg_catalog;
SELECT * FROM public.capture_error($$SELECT '\x01'::bytea = '\x01'::bytea$$);
SELECT * FROM public.capture_error($$SELECT now()$$);
RESET search_path;

-- Every function, called under a search_path that puts the shadow schema
-- before pg_catalog, behaves as without it.
SET search_path = regress_shadow, pg_catalog, haematite, public;
SELECT haematite.append('shadow/stream', '\x01', 0);
SELECT haematite.append('shadow/stream'::bytea, '\x02', 1, ttl => '1 hour');
SELECT haematite.append_batch('shadow/stream', ARRAY['\x03', '\x04']::bytea[], 2);
SELECT haematite.append('shadow/expired', '\x01', 0, ttl => '0');
SELECT * FROM capture_error($$SELECT haematite.append('shadow/stream', '\x05', 0)$$);
SELECT seq, payload FROM haematite.read('shadow/stream');
SELECT seq, payload FROM haematite.read_from('shadow/stream'::bytea, 1, 2);
SELECT * FROM capture_error($$SELECT * FROM haematite.read('shadow/expired')$$);
SELECT haematite.next_seq('shadow/stream');
SELECT haematite.cas('shadow/value', NULL, 1);
SELECT haematite.cas('shadow/value'::bytea, 1, 2);
SELECT * FROM capture_error($$SELECT haematite.cas('shadow/value', 1, 3)$$);
SELECT haematite.read_value('shadow/value');
SELECT pg_catalog.convert_from(stream_key, 'UTF8') AS key_text, next_seq
FROM haematite.scan('shadow/');
SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AS lists_streams FROM haematite.scan();
SELECT haematite.sweep() OPERATOR(pg_catalog.>=) 0 AS swept;
SELECT haematite.flush() IS NOT NULL AS flushed;
RESET search_path;
RESET ROLE;

-- The shadow tables stayed empty, and the extension's tables contain the data.
SELECT (SELECT count(*) FROM regress_shadow.stream_heads) AS shadow_heads,
       (SELECT count(*) FROM regress_shadow.events) AS shadow_events,
       (SELECT count(*) FROM regress_shadow.scalar_values) AS shadow_values,
       (SELECT count(*) FROM pg_temp.stream_heads) AS temp_heads,
       (SELECT count(*) FROM pg_temp.events) AS temp_events,
       (SELECT count(*) FROM pg_temp.scalar_values) AS temp_values;
SELECT * FROM stream_rows('shadow/stream');

DROP TABLE pg_temp.stream_heads, pg_temp.events, pg_temp.scalar_values;
SET client_min_messages = warning;
DROP SCHEMA regress_shadow CASCADE;
RESET client_min_messages;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA haematite FROM regress_haematite_shadow;
REVOKE ALL ON SCHEMA haematite FROM regress_haematite_shadow;
DROP ROLE regress_haematite_shadow;
