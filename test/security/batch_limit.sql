-- haematite.max_batch_bytes: the largest payload array, in bytes, that one
-- append_batch call accepts (64MB by default).  A larger array raises 54000
-- before any row is locked or written.  Only a superuser can change the
-- setting, so an application role cannot raise it to make one call allocate
-- more.  It does not apply to append, whose single payload is bounded only
-- by PostgreSQL's 1GB field limit.
--
-- Run with pg_prove, as a superuser, in a database where the pgtap and
-- haematite extensions exist.  Everything is rolled back.

BEGIN;

SELECT plan(20);

CREATE ROLE haematite_sec_batch_writer;
GRANT USAGE ON SCHEMA haematite TO haematite_sec_batch_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA haematite TO haematite_sec_batch_writer;

-- The payloads used below, built once.  big is 65 payloads of 1 MiB, over
-- the default limit; small is 2 payloads of 1000 bytes.  The table stores
-- both compressed, so the calls below also check that the limit applies to
-- the uncompressed size.
CREATE TEMP TABLE batch (name text PRIMARY KEY, payloads bytea[]);
INSERT INTO batch VALUES
    ('big', array_fill(convert_to(repeat('x', 1024 * 1024), 'UTF8'), ARRAY[65])),
    ('small', array_fill(convert_to(repeat('y', 1000), 'UTF8'), ARRAY[2]));
GRANT SELECT ON batch TO PUBLIC;

-- The size that append_batch measures: the array value with its headers,
-- before any compression.  The table stores the array compressed, so
-- measure a copy built by array_cat.
SELECT pg_column_size(array_cat(payloads, '{}'::bytea[])) AS small_bytes
FROM batch WHERE name = 'small' \gset

SELECT haematite.append('lim/existing', '\x01', 0) AS ignored \gset

--
-- The setting.
--

SELECT is(current_setting('haematite.max_batch_bytes'), '64MB',
          'haematite.max_batch_bytes defaults to 64MB');
SELECT results_eq(
    $$SELECT context, unit, min_val, max_val FROM pg_settings
      WHERE name = 'haematite.max_batch_bytes'$$,
    $$VALUES ('superuser'::text, 'B'::text, '1024'::text, '1073741823'::text)$$,
    'haematite.max_batch_bytes is superuser-only, in bytes, from 1024 to 1GB - 1');

SET ROLE haematite_sec_batch_writer;

SELECT throws_ok($$SET haematite.max_batch_bytes = '1GB'$$, '42501', NULL,
                 'writer: SET haematite.max_batch_bytes raises 42501');
SELECT throws_ok($$SET LOCAL haematite.max_batch_bytes = '1GB'$$, '42501', NULL,
                 'writer: SET LOCAL haematite.max_batch_bytes raises 42501');
SELECT throws_ok($$SELECT set_config('haematite.max_batch_bytes', '1073741823', false)$$,
                 '42501', NULL,
                 'writer: set_config of haematite.max_batch_bytes raises 42501');
SELECT throws_ok($$SET haematite.max_batch_bytes = '1MB'$$, '42501', NULL,
                 'writer: lowering haematite.max_batch_bytes raises 42501 too');
SELECT throws_ok($$RESET haematite.max_batch_bytes$$, '42501', NULL,
                 'writer: RESET haematite.max_batch_bytes raises 42501');
SELECT throws_ok($$ALTER ROLE haematite_sec_batch_writer SET haematite.max_batch_bytes = '1GB'$$,
                 '42501', NULL,
                 'writer: ALTER ROLE ... SET haematite.max_batch_bytes raises 42501');
SELECT is(current_setting('haematite.max_batch_bytes'), '64MB',
          'writer: haematite.max_batch_bytes is still 64MB');

--
-- The default limit.
--

SELECT throws_ok(
    $$SELECT haematite.append_batch('lim/new', (SELECT payloads FROM batch WHERE name = 'big'), 0)$$,
    '54000', NULL,
    'writer: append_batch(text) of 65 MiB raises 54000');
SELECT throws_ok(
    $$SELECT haematite.append_batch('lim/new'::bytea, (SELECT payloads FROM batch WHERE name = 'big'), 0)$$,
    '54000', NULL,
    'writer: append_batch(bytea) of 65 MiB raises 54000');
SELECT throws_ok(
    $$SELECT haematite.append_batch('lim/existing', (SELECT payloads FROM batch WHERE name = 'big'), 7)$$,
    '54000', NULL,
    'writer: an oversized batch raises 54000 even with a wrong expected_seq, so the stream is not read');
SELECT is(haematite.next_seq('lim/new'), 0::bigint,
          'writer: the rejected batches created no stream');
SELECT is(haematite.next_seq('lim/existing'), 1::bigint,
          'writer: the rejected batch left the existing stream at 1');

RESET ROLE;

SELECT is((SELECT count(*) FROM haematite.events WHERE stream_key = 'lim/new'::bytea), 0::bigint,
          'the rejected batches wrote no event');

--
-- A limit set by a superuser, at and just below the size of the array.
--

SELECT set_config('haematite.max_batch_bytes', :'small_bytes', true) AS ignored \gset
SET ROLE haematite_sec_batch_writer;
SELECT is(haematite.append_batch('lim/edge', (SELECT payloads FROM batch WHERE name = 'small'), 0),
          2::bigint,
          'writer: a batch exactly at the limit is accepted');
RESET ROLE;

SELECT set_config('haematite.max_batch_bytes', (:small_bytes - 1)::text, true) AS ignored \gset
SET ROLE haematite_sec_batch_writer;
SELECT throws_ok(
    $$SELECT haematite.append_batch('lim/edge', (SELECT payloads FROM batch WHERE name = 'small'), 2)$$,
    '54000', NULL,
    'writer: a batch one byte over the limit raises 54000');
SELECT is(haematite.next_seq('lim/edge'), 2::bigint,
          'writer: the batch one byte over the limit wrote nothing');
SELECT is(haematite.append('lim/single', convert_to(repeat('z', 4000), 'UTF8'), 0), 1::bigint,
          'writer: append of one payload larger than the limit is accepted');
RESET ROLE;

SELECT set_config('haematite.max_batch_bytes', '128MB', true) AS ignored \gset
SET ROLE haematite_sec_batch_writer;
SELECT is(haematite.append_batch('lim/new', (SELECT payloads FROM batch WHERE name = 'big'), 0),
          65::bigint,
          'writer: after a superuser raised the limit to 128MB, the 65 MiB batch is accepted');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
