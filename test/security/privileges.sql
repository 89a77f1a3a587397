-- Privileges: the functions run as their superuser owner (SECURITY DEFINER)
-- and only the roles an administrator grants may call them.  A role with no
-- grant is rejected by every function.  The reader recipe allows exactly
-- the five reader functions.  The writer recipe allows the whole API but no
-- direct access to the tables, so no application role can write a gap, a
-- duplicate sequence or a head row that disagrees with its events.  Every
-- rejected call must leave the tables unchanged.
--
-- Run with pg_prove, as a superuser, in a database where the pgtap and
-- haematite extensions exist.  The roles are created inside the test's
-- transaction, which is rolled back, so none is left behind.

BEGIN;

SELECT plan(142);

-- Every function signature with a call that exercises it.  The writer
-- functions come first, in an order in which each call succeeds for a
-- writer (the stream priv/s starts with 2 events and the value priv/v at 1).
-- The monitoring functions stats and last_sweep come last: they write
-- nothing, but the reader recipe does not grant them.
CREATE TEMP TABLE api_call (
    position int,
    signature regprocedure,
    is_reader boolean,
    statement text
);
GRANT SELECT ON api_call TO PUBLIC;

INSERT INTO api_call VALUES
    (1, 'haematite.append(text,bytea,bigint,interval)', false,
     $$SELECT haematite.append('priv/s'::text, '\x03'::bytea, 2)$$),
    (2, 'haematite.append(bytea,bytea,bigint,interval)', false,
     $$SELECT haematite.append('priv/s'::bytea, '\x04'::bytea, 3)$$),
    (3, 'haematite.append_batch(text,bytea[],bigint,interval)', false,
     $$SELECT haematite.append_batch('priv/s'::text, ARRAY['\x05']::bytea[], 4)$$),
    (4, 'haematite.append_batch(bytea,bytea[],bigint,interval)', false,
     $$SELECT haematite.append_batch('priv/s'::bytea, ARRAY['\x06']::bytea[], 5)$$),
    (5, 'haematite.cas(text,bigint,bigint)', false,
     $$SELECT haematite.cas('priv/v'::text, 1, 2)$$),
    (6, 'haematite.cas(bytea,bigint,bigint)', false,
     $$SELECT haematite.cas('priv/v'::bytea, 2, 3)$$),
    (7, 'haematite.sweep(integer)', false,
     $$SELECT haematite.sweep()$$),
    (8, 'haematite.flush()', false,
     $$SELECT haematite.flush()$$),
    (9, 'haematite.read(text)', true,
     $$SELECT * FROM haematite.read('priv/s'::text)$$),
    (10, 'haematite.read(bytea)', true,
     $$SELECT * FROM haematite.read('priv/s'::bytea)$$),
    (11, 'haematite.read_from(text,bigint,integer)', true,
     $$SELECT * FROM haematite.read_from('priv/s'::text, 1)$$),
    (12, 'haematite.read_from(bytea,bigint,integer)', true,
     $$SELECT * FROM haematite.read_from('priv/s'::bytea, 0, 1)$$),
    (13, 'haematite.next_seq(text)', true,
     $$SELECT haematite.next_seq('priv/s'::text)$$),
    (14, 'haematite.next_seq(bytea)', true,
     $$SELECT haematite.next_seq('priv/s'::bytea)$$),
    (15, 'haematite.read_value(text)', true,
     $$SELECT haematite.read_value('priv/v'::text)$$),
    (16, 'haematite.read_value(bytea)', true,
     $$SELECT haematite.read_value('priv/v'::bytea)$$),
    (17, 'haematite.scan(text)', true,
     $$SELECT * FROM haematite.scan('priv/'::text)$$),
    (18, 'haematite.scan(bytea)', true,
     $$SELECT * FROM haematite.scan('priv/'::bytea)$$),
    (19, 'haematite.scan()', true,
     $$SELECT * FROM haematite.scan()$$),
    (20, 'haematite.stats()', false,
     $$SELECT * FROM haematite.stats()$$),
    (21, 'haematite.last_sweep()', false,
     $$SELECT * FROM haematite.last_sweep()$$);

-- Every statement that touches a table directly, for each of the three.
CREATE TEMP TABLE table_statement (
    table_name text,
    command text,
    statement text
);
GRANT SELECT ON table_statement TO PUBLIC;

INSERT INTO table_statement
SELECT t.table_name, c.command, format(c.template, t.table_name, t.key_column)
FROM (VALUES ('stream_heads', 'stream_key'),
             ('events', 'stream_key'),
             ('scalar_values', 'key')) AS t(table_name, key_column),
     (VALUES ('SELECT', 'SELECT count(*) FROM haematite.%s /* %s */'),
             ('INSERT', 'INSERT INTO haematite.%s (%s) VALUES (''priv/x'')'),
             ('UPDATE', 'UPDATE haematite.%s SET %2$s = %2$s'),
             ('DELETE', 'DELETE FROM haematite.%s /* %s */'),
             ('TRUNCATE', 'TRUNCATE haematite.%s /* %s */'),
             ('LOCK', 'LOCK TABLE haematite.%s /* %s */ IN ACCESS EXCLUSIVE MODE'))
         AS c(command, template);

-- A digest of every row of the three tables, to prove a rejected call wrote
-- nothing.  SECURITY DEFINER so that any role may take it.
CREATE FUNCTION pg_temp.tables_digest() RETURNS text
LANGUAGE sql SECURITY DEFINER
AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(format('%s,%s,%s,%s', stream_key, next_seq,
                                  last_appended_at, live_until),
                           ';' ORDER BY stream_key)
         FROM haematite.stream_heads),
        (SELECT string_agg(format('%s,%s,%s,%s,%s', stream_key, seq, payload,
                                  appended_at, expires_at),
                           ';' ORDER BY stream_key, seq)
         FROM haematite.events),
        (SELECT string_agg(format('%s,%s', key, value), ';' ORDER BY key)
         FROM haematite.scalar_values)))
$$;

CREATE ROLE haematite_sec_nobody;
CREATE ROLE haematite_sec_usage_only;
CREATE ROLE haematite_sec_reader;
CREATE ROLE haematite_sec_writer;

GRANT USAGE ON SCHEMA haematite TO haematite_sec_usage_only;

-- The reader recipe.
GRANT USAGE ON SCHEMA haematite TO haematite_sec_reader;
GRANT EXECUTE ON FUNCTION
    haematite.read(bytea), haematite.read(text),
    haematite.read_from(bytea, bigint, integer), haematite.read_from(text, bigint, integer),
    haematite.next_seq(bytea), haematite.next_seq(text),
    haematite.read_value(bytea), haematite.read_value(text),
    haematite.scan(bytea), haematite.scan(text), haematite.scan()
TO haematite_sec_reader;

-- The writer recipe.
GRANT USAGE ON SCHEMA haematite TO haematite_sec_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA haematite TO haematite_sec_writer;

DO $$
BEGIN
    PERFORM haematite.append_batch('priv/s', ARRAY['\x01', '\x02']::bytea[], 0);
    PERFORM haematite.cas('priv/v', NULL, 1);
END
$$;
SELECT pg_temp.tables_digest() AS digest_before \gset

--
-- The catalog: owner, SECURITY DEFINER, no SET clause, no PUBLIC grants.
--

SELECT is((SELECT count(*)::int FROM pg_proc
           WHERE pronamespace = 'haematite'::regnamespace),
          21,
          'schema haematite has 21 function signatures');

SELECT is_empty(
    $$SELECT oid::regprocedure FROM pg_proc
      WHERE pronamespace = 'haematite'::regnamespace
      EXCEPT SELECT signature FROM api_call$$,
    'every function signature has a call in this test');

SELECT is_empty(
    $$SELECT oid::regprocedure FROM pg_proc
      WHERE pronamespace = 'haematite'::regnamespace AND NOT prosecdef$$,
    'every function is SECURITY DEFINER');

SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc AS p JOIN pg_roles AS r ON r.oid = p.proowner
      WHERE p.pronamespace = 'haematite'::regnamespace AND NOT r.rolsuper$$,
    'every function is owned by a superuser');

-- Only stats() has a SET clause, and it sets planner switches only: no
-- function relies on a search_path setting.
SELECT is(
    (SELECT string_agg(oid::regprocedure::text || ' ' ||
                       array_to_string(proconfig, ','), '; ') COLLATE "C"
     FROM pg_proc
     WHERE pronamespace = 'haematite'::regnamespace AND proconfig IS NOT NULL),
    'haematite.stats() enable_seqscan=off,enable_bitmapscan=off',
    'only stats() has a SET clause, and it sets no search_path');

SELECT is_empty(
    $$SELECT p.oid::regprocedure
      FROM pg_proc AS p,
           aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
      WHERE p.pronamespace = 'haematite'::regnamespace
        AND a.grantee = 0$$,
    'no function grants anything to PUBLIC');

SELECT is_empty(
    $$SELECT c.relname, a.grantee::regrole, a.privilege_type
      FROM pg_class AS c,
           aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS a
      WHERE c.relnamespace = 'haematite'::regnamespace
        AND c.relkind = 'r'
        AND a.grantee <> c.relowner$$,
    'no role but the owner holds a privilege on the tables');

SELECT ok((SELECT r.rolsuper FROM pg_namespace AS n JOIN pg_roles AS r ON r.oid = n.nspowner
           WHERE n.nspname = 'haematite'),
          'schema haematite is owned by a superuser');

SELECT is_empty(
    $$SELECT a.grantee, a.privilege_type
      FROM pg_namespace AS n,
           aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
      WHERE n.nspname = 'haematite'
        AND a.grantee <> n.nspowner
        AND (a.grantee = 0 OR a.privilege_type = 'CREATE')$$,
    'schema haematite grants nothing to PUBLIC and CREATE to no other role');

SELECT is_empty(
    $$SELECT oid::regprocedure FROM pg_proc
      WHERE pronamespace = 'haematite'::regnamespace
        AND has_function_privilege('haematite_sec_reader', oid, 'EXECUTE')
      EXCEPT SELECT signature FROM api_call WHERE is_reader$$,
    'the reader recipe grants EXECUTE on reader functions only');

SELECT is((SELECT count(*)::int FROM api_call
           WHERE has_function_privilege('haematite_sec_writer', signature, 'EXECUTE')),
          21,
          'the writer recipe grants EXECUTE on all 21 functions');

--
-- A role without grants: 42501 from every function, with or without USAGE
-- on the schema.
--

SET ROLE haematite_sec_nobody;
SELECT throws_ok(statement, '42501', NULL,
                 format('role without grants: %s raises 42501', signature))
FROM api_call ORDER BY position;

SET ROLE haematite_sec_usage_only;
SELECT throws_ok(statement, '42501', NULL,
                 format('role with USAGE only: %s raises 42501', signature))
FROM api_call ORDER BY position;
RESET ROLE;

SELECT is(pg_temp.tables_digest(), :'digest_before',
          'the calls of roles without grants wrote nothing');

--
-- The reader recipe: the reader functions return the stored data; the
-- writer functions and the tables raise 42501.
--

SET ROLE haematite_sec_reader;

SELECT results_eq($$SELECT seq, payload FROM haematite.read('priv/s'::text)$$,
                  $$VALUES (0::bigint, '\x01'::bytea), (1, '\x02')$$,
                  'reader: read(text) returns the events');
SELECT results_eq($$SELECT seq, payload FROM haematite.read('priv/s'::bytea)$$,
                  $$VALUES (0::bigint, '\x01'::bytea), (1, '\x02')$$,
                  'reader: read(bytea) returns the events');
SELECT results_eq($$SELECT seq, payload FROM haematite.read_from('priv/s'::text, 1)$$,
                  $$VALUES (1::bigint, '\x02'::bytea)$$,
                  'reader: read_from(text) returns the events from seq 1');
SELECT results_eq($$SELECT seq, payload FROM haematite.read_from('priv/s'::bytea, 0, 1)$$,
                  $$VALUES (0::bigint, '\x01'::bytea)$$,
                  'reader: read_from(bytea) returns one event');
SELECT is(haematite.next_seq('priv/s'::text), 2::bigint,
          'reader: next_seq(text) returns 2');
SELECT is(haematite.next_seq('priv/s'::bytea), 2::bigint,
          'reader: next_seq(bytea) returns 2');
SELECT is(haematite.read_value('priv/v'::text), 1::bigint,
          'reader: read_value(text) returns 1');
SELECT is(haematite.read_value('priv/v'::bytea), 1::bigint,
          'reader: read_value(bytea) returns 1');
SELECT results_eq($$SELECT stream_key, next_seq FROM haematite.scan('priv/'::text)$$,
                  $$VALUES ('priv/s'::bytea, 2::bigint)$$,
                  'reader: scan(text) lists the stream');
SELECT results_eq($$SELECT stream_key, next_seq FROM haematite.scan('priv/'::bytea)$$,
                  $$VALUES ('priv/s'::bytea, 2::bigint)$$,
                  'reader: scan(bytea) lists the stream');
SELECT results_eq($$SELECT stream_key, next_seq FROM haematite.scan()
                    WHERE stream_key = 'priv/s'::bytea$$,
                  $$VALUES ('priv/s'::bytea, 2::bigint)$$,
                  'reader: scan() lists the stream');

SELECT throws_ok(statement, '42501', NULL,
                 format('reader: %s raises 42501', signature))
FROM api_call WHERE NOT is_reader ORDER BY position;

SELECT throws_ok(statement, '42501', NULL,
                 format('reader: %s on haematite.%s raises 42501', command, table_name))
FROM table_statement
WHERE command IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
ORDER BY table_name, command;

RESET ROLE;

SELECT is(pg_temp.tables_digest(), :'digest_before',
          'the rejected calls of the reader wrote nothing');

--
-- The writer recipe: the whole API works; the tables, their definition and
-- the functions' definition are out of reach.
--

SET ROLE haematite_sec_writer;

SELECT is(haematite.append('priv/s'::text, '\x03'::bytea, 2), 3::bigint,
          'writer: append(text) returns 3');
SELECT is(haematite.append('priv/s'::bytea, '\x04'::bytea, 3), 4::bigint,
          'writer: append(bytea) returns 4');
SELECT is(haematite.append_batch('priv/s'::text, ARRAY['\x05']::bytea[], 4), 5::bigint,
          'writer: append_batch(text) returns 5');
SELECT is(haematite.append_batch('priv/s'::bytea, ARRAY['\x06']::bytea[], 5), 6::bigint,
          'writer: append_batch(bytea) returns 6');
SELECT lives_ok($$SELECT haematite.cas('priv/v'::text, 1, 2)$$,
                'writer: cas(text) from 1 to 2 succeeds');
SELECT lives_ok($$SELECT haematite.cas('priv/v'::bytea, 2, 3)$$,
                'writer: cas(bytea) from 2 to 3 succeeds');
SELECT is(haematite.sweep(), 0::bigint,
          'writer: sweep() deletes nothing when nothing expired');
SELECT ok(haematite.flush() > '0/0'::pg_lsn,
          'writer: flush() returns a WAL position');
SELECT results_eq($$SELECT seq, payload FROM haematite.read('priv/s'::text)$$,
                  $$VALUES (0::bigint, '\x01'::bytea), (1, '\x02'), (2, '\x03'),
                           (3, '\x04'), (4, '\x05'), (5, '\x06')$$,
                  'writer: read(text) returns the six events');
SELECT results_eq($$SELECT seq, payload FROM haematite.read('priv/s'::bytea)$$,
                  $$VALUES (0::bigint, '\x01'::bytea), (1, '\x02'), (2, '\x03'),
                           (3, '\x04'), (4, '\x05'), (5, '\x06')$$,
                  'writer: read(bytea) returns the six events');
SELECT results_eq($$SELECT seq, payload FROM haematite.read_from('priv/s'::text, 4)$$,
                  $$VALUES (4::bigint, '\x05'::bytea), (5, '\x06')$$,
                  'writer: read_from(text) returns the events from seq 4');
SELECT results_eq($$SELECT seq, payload FROM haematite.read_from('priv/s'::bytea, 5, 1)$$,
                  $$VALUES (5::bigint, '\x06'::bytea)$$,
                  'writer: read_from(bytea) returns the last event');
SELECT is(haematite.next_seq('priv/s'::text), 6::bigint,
          'writer: next_seq(text) returns 6');
SELECT is(haematite.next_seq('priv/s'::bytea), 6::bigint,
          'writer: next_seq(bytea) returns 6');
SELECT is(haematite.read_value('priv/v'::text), 3::bigint,
          'writer: read_value(text) returns 3');
SELECT is(haematite.read_value('priv/v'::bytea), 3::bigint,
          'writer: read_value(bytea) returns 3');
SELECT results_eq($$SELECT stream_key, next_seq FROM haematite.scan('priv/'::text)$$,
                  $$VALUES ('priv/s'::bytea, 6::bigint)$$,
                  'writer: scan(text) lists the stream');
SELECT results_eq($$SELECT stream_key, next_seq FROM haematite.scan('priv/'::bytea)$$,
                  $$VALUES ('priv/s'::bytea, 6::bigint)$$,
                  'writer: scan(bytea) lists the stream');
SELECT results_eq($$SELECT stream_key, next_seq FROM haematite.scan()
                    WHERE stream_key = 'priv/s'::bytea$$,
                  $$VALUES ('priv/s'::bytea, 6::bigint)$$,
                  'writer: scan() lists the stream');
SELECT is((SELECT streams_estimate IS NOT NULL AND expired_events IS NOT NULL FROM haematite.stats()), true,
          'writer: stats() returns its row');
SELECT is((SELECT count(*)::int FROM haematite.last_sweep()), 1,
          'writer: last_sweep() returns its row');

RESET ROLE;
SELECT pg_temp.tables_digest() AS digest_before \gset
SET ROLE haematite_sec_writer;

SELECT throws_ok(statement, '42501', NULL,
                 format('writer: %s on haematite.%s raises 42501', command, table_name))
FROM table_statement
ORDER BY table_name, command;

SELECT throws_ok(
    $$CREATE FUNCTION pg_temp.note_event() RETURNS trigger LANGUAGE plpgsql
      AS 'BEGIN RETURN NEW; END';
      CREATE TRIGGER note_event BEFORE INSERT ON haematite.events
      FOR EACH ROW EXECUTE FUNCTION pg_temp.note_event()$$,
    '42501', NULL, 'writer: CREATE TRIGGER on haematite.events raises 42501');
SELECT throws_ok($$ALTER TABLE haematite.events DISABLE TRIGGER ALL$$,
                 '42501', NULL, 'writer: ALTER TABLE haematite.events raises 42501');
SELECT throws_ok($$ALTER TABLE haematite.stream_heads DROP CONSTRAINT stream_heads_next_seq_check$$,
                 '42501', NULL, 'writer: dropping a constraint of haematite.stream_heads raises 42501');
SELECT throws_ok($$CREATE POLICY open_all ON haematite.events USING (true)$$,
                 '42501', NULL, 'writer: CREATE POLICY on haematite.events raises 42501');
SELECT throws_ok($$CREATE INDEX ON haematite.events (payload)$$,
                 '42501', NULL, 'writer: CREATE INDEX on haematite.events raises 42501');
SELECT throws_ok($$ALTER FUNCTION haematite.next_seq(text) SECURITY INVOKER$$,
                 '42501', NULL, 'writer: ALTER FUNCTION on a haematite function raises 42501');
SELECT throws_ok($$CREATE FUNCTION haematite.next_seq(integer) RETURNS bigint
                   LANGUAGE sql AS 'SELECT 0::bigint'$$,
                 '42501', NULL, 'writer: CREATE FUNCTION in schema haematite raises 42501');
SELECT throws_ok($$CREATE TABLE haematite.events_copy (LIKE haematite.events)$$,
                 '42501', NULL, 'writer: CREATE TABLE in schema haematite raises 42501');
SELECT throws_ok($$ALTER SCHEMA haematite RENAME TO haematite_moved$$,
                 '42501', NULL, 'writer: ALTER SCHEMA haematite raises 42501');
SELECT throws_ok($$DROP EXTENSION haematite$$,
                 '42501', NULL, 'writer: DROP EXTENSION haematite raises 42501');

RESET ROLE;

SELECT is(pg_temp.tables_digest(), :'digest_before',
          'the rejected statements of the writer wrote nothing');

SELECT is_empty(
    $$SELECT h.stream_key
      FROM haematite.stream_heads AS h
           LEFT JOIN haematite.events AS e ON e.stream_key = h.stream_key
      GROUP BY h.stream_key, h.next_seq
      HAVING count(e.seq) <> h.next_seq
          OR coalesce(max(e.seq), -1) <> h.next_seq - 1$$,
    'every stream holds exactly the events 0 .. next_seq - 1');

SELECT * FROM finish();
ROLLBACK;
