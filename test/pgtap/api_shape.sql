-- The shape of haematite's SQL API.  Every function is checked for its
-- argument types, argument names and defaults, result type, volatility,
-- SECURITY DEFINER and non-strictness.  The three tables are checked for their
-- columns and primary keys, their pg_dump registration, and the absence of
-- PUBLIC EXECUTE grants on the functions.
--
-- Run with pg_prove in a database where the pgtap and haematite extensions
-- exist.  Everything runs in one transaction that is rolled back.

BEGIN;

SELECT plan(174);

-- One row per function signature: readers are STABLE, writers VOLATILE.
CREATE TEMP TABLE api_functions (
    name text,
    argument_types name[],
    result_type text,
    volatility text,
    arguments text,
    result_columns text
) ON COMMIT DROP;

INSERT INTO api_functions VALUES
    ('append', '{bytea,bytea,bigint,interval}', 'bigint', 'volatile',
     'stream_key bytea, payload bytea, expected_seq bigint, ttl interval DEFAULT NULL::interval', NULL),
    ('append', '{text,bytea,bigint,interval}', 'bigint', 'volatile',
     'stream_key text, payload bytea, expected_seq bigint, ttl interval DEFAULT NULL::interval', NULL),
    ('append_batch', '{bytea,bytea[],bigint,interval}', 'bigint', 'volatile',
     'stream_key bytea, payloads bytea[], expected_seq bigint, ttl interval DEFAULT NULL::interval', NULL),
    ('append_batch', '{text,bytea[],bigint,interval}', 'bigint', 'volatile',
     'stream_key text, payloads bytea[], expected_seq bigint, ttl interval DEFAULT NULL::interval', NULL),
    ('read', '{bytea}', 'setof record', 'stable',
     'stream_key bytea',
     'TABLE(seq bigint, payload bytea, appended_at timestamp with time zone)'),
    ('read', '{text}', 'setof record', 'stable',
     'stream_key text',
     'TABLE(seq bigint, payload bytea, appended_at timestamp with time zone)'),
    ('read_from', '{bytea,bigint,integer}', 'setof record', 'stable',
     'stream_key bytea, from_seq bigint, max_count integer DEFAULT NULL::integer',
     'TABLE(seq bigint, payload bytea, appended_at timestamp with time zone)'),
    ('read_from', '{text,bigint,integer}', 'setof record', 'stable',
     'stream_key text, from_seq bigint, max_count integer DEFAULT NULL::integer',
     'TABLE(seq bigint, payload bytea, appended_at timestamp with time zone)'),
    ('next_seq', '{bytea}', 'bigint', 'stable', 'stream_key bytea', NULL),
    ('next_seq', '{text}', 'bigint', 'stable', 'stream_key text', NULL),
    ('cas', '{bytea,bigint,bigint}', 'void', 'volatile',
     'key bytea, expected bigint, new_value bigint', NULL),
    ('cas', '{text,bigint,bigint}', 'void', 'volatile',
     'key text, expected bigint, new_value bigint', NULL),
    ('read_value', '{bytea}', 'bigint', 'stable', 'key bytea', NULL),
    ('read_value', '{text}', 'bigint', 'stable', 'key text', NULL),
    ('scan', '{bytea}', 'setof record', 'stable', 'prefix bytea',
     'TABLE(stream_key bytea, next_seq bigint)'),
    ('scan', '{text}', 'setof record', 'stable', 'prefix text',
     'TABLE(stream_key bytea, next_seq bigint)'),
    ('scan', '{}', 'setof record', 'stable', '',
     'TABLE(stream_key bytea, next_seq bigint)'),
    ('flush', '{}', 'pg_lsn', 'volatile', '', NULL),
    ('sweep', '{integer}', 'bigint', 'volatile',
     'max_events integer DEFAULT NULL::integer', NULL),
    ('last_sweep', '{}', 'record', 'volatile',
     'OUT finished_at timestamp with time zone, OUT deleted bigint, OUT source text',
     NULL),
    ('stats', '{}', 'record', 'stable',
     'OUT streams_estimate bigint, OUT events_estimate bigint, '
     'OUT live_events_estimate bigint, OUT expired_events bigint, '
     'OUT cas_keys_estimate bigint, OUT table_bytes bigint, OUT index_bytes bigint, '
     'OUT last_sweep_finished_at timestamp with time zone, '
     'OUT last_sweep_deleted bigint, OUT last_sweep_source text',
     NULL);

-- The extension, its schema and its exact set of function names.
SELECT has_extension('haematite', 'extension haematite is installed');
SELECT has_schema('haematite', 'schema haematite exists');
SELECT functions_are('haematite',
                     ARRAY['append', 'append_batch', 'read', 'read_from',
                           'next_seq', 'cas', 'read_value', 'scan', 'flush',
                           'sweep', 'last_sweep', 'stats'],
                     'schema haematite has exactly the API functions');
SELECT is((SELECT count(*)::int FROM pg_proc
           WHERE pronamespace = 'haematite'::regnamespace),
          21,
          'schema haematite has 21 function signatures');

-- 21 signatures, 7 checks each: 147 assertions.
SELECT has_function('haematite', name, argument_types,
                    format('%s(%s) exists', name, array_to_string(argument_types, ', ')))
FROM api_functions ORDER BY name, argument_types;

SELECT function_returns('haematite', name, argument_types, result_type,
                        format('%s(%s) returns %s', name,
                               array_to_string(argument_types, ', '), result_type))
FROM api_functions ORDER BY name, argument_types;

SELECT volatility_is('haematite', name, argument_types, volatility,
                     format('%s(%s) is %s', name,
                            array_to_string(argument_types, ', '), volatility))
FROM api_functions ORDER BY name, argument_types;

SELECT is_definer('haematite', name, argument_types,
                  format('%s(%s) is SECURITY DEFINER', name,
                         array_to_string(argument_types, ', ')))
FROM api_functions ORDER BY name, argument_types;

SELECT isnt_strict('haematite', name, argument_types,
                   format('%s(%s) is not STRICT, so NULL arguments raise 22004', name,
                          array_to_string(argument_types, ', ')))
FROM api_functions ORDER BY name, argument_types;

SELECT is(pg_get_function_arguments(p.oid), f.arguments,
          format('%s(%s) has the argument names and defaults of the API', f.name,
                 array_to_string(f.argument_types, ', ')))
FROM api_functions AS f
     LEFT JOIN pg_proc AS p
            ON p.pronamespace = 'haematite'::regnamespace
           AND p.proname = f.name
           AND array_to_string(p.proargtypes::regtype[], ',')
               = array_to_string(f.argument_types, ',')
ORDER BY f.name, f.argument_types;

SELECT is(pg_get_function_result(p.oid), coalesce(f.result_columns, f.result_type),
          format('%s(%s) has the result columns of the API', f.name,
                 array_to_string(f.argument_types, ', ')))
FROM api_functions AS f
     LEFT JOIN pg_proc AS p
            ON p.pronamespace = 'haematite'::regnamespace
           AND p.proname = f.name
           AND array_to_string(p.proargtypes::regtype[], ',')
               = array_to_string(f.argument_types, ',')
ORDER BY f.name, f.argument_types;

-- No function may be executed by PUBLIC: the default ACL of a function would
-- allow it, so an absent proacl fails this check too.
SELECT is_empty(
    $$SELECT p.oid::regprocedure
      FROM pg_proc AS p,
           aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS acl
      WHERE p.pronamespace = 'haematite'::regnamespace
        AND acl.grantee = 0
        AND acl.privilege_type = 'EXECUTE'$$,
    'no haematite function grants EXECUTE to PUBLIC');

-- The tables, their columns and their primary keys.
SELECT tables_are('haematite', ARRAY['stream_heads', 'events', 'scalar_values'],
                  'schema haematite has exactly the three tables');

SELECT columns_are('haematite', 'stream_heads',
                   ARRAY['stream_key', 'next_seq', 'last_appended_at', 'live_until', 'reserve'],
                   'stream_heads has the expected columns');
SELECT columns_are('haematite', 'events',
                   ARRAY['stream_key', 'seq', 'payload', 'appended_at', 'expires_at'],
                   'events has the expected columns');
SELECT columns_are('haematite', 'scalar_values',
                   ARRAY['key', 'value'],
                   'scalar_values has the expected columns');

SELECT col_type_is('haematite', 'stream_heads', 'stream_key', 'bytea',
                   'stream_heads.stream_key is bytea');
SELECT col_type_is('haematite', 'stream_heads', 'next_seq', 'bigint',
                   'stream_heads.next_seq is bigint');
SELECT col_type_is('haematite', 'stream_heads', 'last_appended_at', 'timestamp with time zone',
                   'stream_heads.last_appended_at is timestamptz');
SELECT col_type_is('haematite', 'stream_heads', 'live_until', 'timestamp with time zone',
                   'stream_heads.live_until is timestamptz');
SELECT col_type_is('haematite', 'events', 'stream_key', 'bytea',
                   'events.stream_key is bytea');
SELECT col_type_is('haematite', 'events', 'seq', 'bigint',
                   'events.seq is bigint');
SELECT col_type_is('haematite', 'events', 'payload', 'bytea',
                   'events.payload is bytea');
SELECT col_type_is('haematite', 'events', 'appended_at', 'timestamp with time zone',
                   'events.appended_at is timestamptz');
SELECT col_type_is('haematite', 'events', 'expires_at', 'timestamp with time zone',
                   'events.expires_at is timestamptz');
SELECT col_type_is('haematite', 'scalar_values', 'key', 'bytea',
                   'scalar_values.key is bytea');
SELECT col_type_is('haematite', 'scalar_values', 'value', 'bigint',
                   'scalar_values.value is bigint');
SELECT col_is_null('haematite', 'events', 'expires_at',
                   'events.expires_at allows NULL for events without TTL');

SELECT col_is_pk('haematite', 'stream_heads', ARRAY['stream_key'],
                 'stream_heads primary key is (stream_key)');
SELECT col_is_pk('haematite', 'events', ARRAY['stream_key', 'seq'],
                 'events primary key is (stream_key, seq)');
SELECT col_is_pk('haematite', 'scalar_values', ARRAY['key'],
                 'scalar_values primary key is (key)');

-- The head row is updated on every append, so its table leaves room for HOT
-- updates.  sweep finds expired events through a partial index on expires_at.
SELECT ok((SELECT 'fillfactor=70' = ANY (reloptions)
           FROM pg_class WHERE oid = 'haematite.stream_heads'::regclass),
          'stream_heads has fillfactor 70');
SELECT ok(EXISTS (SELECT 1
                  FROM pg_index AS i
                       JOIN pg_attribute AS a
                         ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                  WHERE i.indrelid = 'haematite.events'::regclass
                    AND i.indpred IS NOT NULL
                    AND a.attname = 'expires_at'),
          'events has a partial index on expires_at');

-- pg_dump dumps the rows of exactly these three tables.
SELECT set_eq(
    $$SELECT c.relname::text
      FROM pg_extension AS e,
           unnest(e.extconfig) AS config(relid)
           JOIN pg_class AS c ON c.oid = config.relid
      WHERE e.extname = 'haematite'$$,
    ARRAY['stream_heads', 'events', 'scalar_values'],
    'the three tables are registered with pg_extension_config_dump');

SELECT * FROM finish();

ROLLBACK;
