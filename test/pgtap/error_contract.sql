-- The error contract of haematite's SQL API: each SQLSTATE a call can raise,
-- with the fixed DETAIL wording of the SE00x errors, that a failed call
-- writes nothing, and that the happy paths run.
--
-- Run with pg_prove in a database where the pgtap and haematite extensions
-- exist, as a superuser: the SE004 and 22003 cases write the tables directly.
-- Everything runs in one transaction that is rolled back.

BEGIN;

SELECT plan(62);

-- error_detail runs a statement that must fail and returns the DETAIL of its
-- error, or 'no error' when it succeeds.
CREATE FUNCTION pg_temp.error_detail(statement text) RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION
    WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
        RETURN detail;
END
$$;

--
-- Happy paths.
--

SELECT lives_ok($$SELECT haematite.append('tap/stream', '\x01', 0)$$,
                'append creates a stream at seq 0');
SELECT lives_ok($$SELECT haematite.append('tap/stream'::bytea, '\x02', 1, ttl => '1 hour')$$,
                'append with a bytea key and a TTL');
SELECT lives_ok($$SELECT haematite.append_batch('tap/stream', ARRAY['\x03', '\x04']::bytea[], 2)$$,
                'append_batch appends after the last seq');
SELECT lives_ok($$SELECT haematite.append_batch('tap/absent', ARRAY[]::bytea[], 0)$$,
                'empty append_batch on an absent stream');
SELECT lives_ok($$SELECT * FROM haematite.read('tap/stream')$$,
                'read of an existing stream');
SELECT lives_ok($$SELECT * FROM haematite.read_from('tap/stream'::bytea, 2, 1)$$,
                'read_from with max_count');
SELECT lives_ok($$SELECT * FROM haematite.read('tap/absent')$$,
                'read of an absent stream');
SELECT lives_ok($$SELECT haematite.cas('tap/value', NULL, 1)$$,
                'cas creates a value');
SELECT lives_ok($$SELECT haematite.cas('tap/value'::bytea, 1, 2)$$,
                'cas advances a value');
SELECT lives_ok($$SELECT * FROM haematite.scan('tap/')$$,
                'scan with a prefix');
SELECT lives_ok($$SELECT * FROM haematite.scan()$$,
                'scan of every stream');
SELECT lives_ok($$SELECT haematite.sweep(10)$$,
                'sweep with max_events');
SELECT lives_ok($$SELECT haematite.flush()$$,
                'flush');

SELECT is(haematite.append_batch('tap/stream', ARRAY[]::bytea[], 4), 4::bigint,
          'empty append_batch returns expected_seq');
SELECT is(haematite.next_seq('tap/stream'), 4::bigint,
          'next_seq counts every appended event');
SELECT is(haematite.next_seq('tap/absent'), 0::bigint,
          'next_seq of an absent stream is 0');
SELECT is(haematite.read_value('tap/value'), 2::bigint,
          'read_value returns the value set by cas');
SELECT is(haematite.read_value('tap/missing'), NULL::bigint,
          'read_value of an absent key is NULL');
SELECT results_eq($$SELECT seq FROM haematite.read('tap/stream')$$,
                  ARRAY[0, 1, 2, 3]::bigint[],
                  'read returns seqs 0 to 3 in order');
SELECT results_eq($$SELECT stream_key, next_seq FROM haematite.scan('tap/')$$,
                  $$VALUES ('tap/stream'::bytea, 4::bigint)$$,
                  'scan lists the stream with its next sequence');

--
-- SE001: sequence conflict.
--

SELECT throws_ok($$SELECT haematite.append('tap/stream', '\x05', 3)$$,
                 'SE001', NULL, 'append with a stale expected_seq raises SE001');
SELECT is(pg_temp.error_detail($$SELECT haematite.append('tap/stream', '\x05', 3)$$),
          'Expected next sequence 3, actual 4.',
          'SE001 DETAIL names expected and actual');
SELECT throws_ok($$SELECT haematite.append_batch('tap/stream', ARRAY['\x05']::bytea[], 5)$$,
                 'SE001', NULL, 'append_batch with a future expected_seq raises SE001');
SELECT throws_ok($$SELECT haematite.append_batch('tap/stream', ARRAY[]::bytea[], 1)$$,
                 'SE001', NULL, 'empty append_batch still checks expected_seq');
SELECT throws_ok($$SELECT haematite.append('tap/new', '\x01', 1)$$,
                 'SE001', NULL, 'append to an absent stream with expected_seq 1 raises SE001');
SELECT is(pg_temp.error_detail($$SELECT haematite.append('tap/new', '\x01', 1)$$),
          'Expected next sequence 1, actual 0.',
          'SE001 DETAIL on an absent stream says actual 0');
SELECT is(haematite.next_seq('tap/stream'), 4::bigint,
          'failed appends leave next_seq at 4');
SELECT is(haematite.next_seq('tap/new'), 0::bigint,
          'failed append creates no stream');

--
-- SE002: CAS mismatch.
--

SELECT throws_ok($$SELECT haematite.cas('tap/value', 1, 3)$$,
                 'SE002', NULL, 'cas from a stale value raises SE002');
SELECT is(pg_temp.error_detail($$SELECT haematite.cas('tap/value', 1, 3)$$),
          'Expected value 1, actual 2.',
          'SE002 DETAIL names expected and actual');
SELECT throws_ok($$SELECT haematite.cas('tap/value', NULL, 3)$$,
                 'SE002', NULL, 'cas from NULL on an existing key raises SE002');
SELECT is(pg_temp.error_detail($$SELECT haematite.cas('tap/value', NULL, 3)$$),
          'Expected value absent, actual 2.',
          'SE002 DETAIL says absent for expected NULL');
SELECT throws_ok($$SELECT haematite.cas('tap/missing', 1, 3)$$,
                 'SE002', NULL, 'cas on an absent key raises SE002');
SELECT is(pg_temp.error_detail($$SELECT haematite.cas('tap/missing', 1, 3)$$),
          'Expected value 1, actual absent.',
          'SE002 DETAIL says absent for a missing key');
SELECT is(haematite.read_value('tap/value'), 2::bigint,
          'failed cas calls leave the value at 2');
SELECT is(haematite.read_value('tap/missing'), NULL::bigint,
          'failed cas creates no key');

--
-- SE003: history compacted.  ttl '0' expires the events for every later
-- statement.
--

SELECT lives_ok($$SELECT haematite.append_batch('tap/expired', ARRAY['\x01', '\x02']::bytea[], 0, ttl => '0')$$,
                'append_batch with ttl 0');
SELECT throws_ok($$SELECT * FROM haematite.read('tap/expired')$$,
                 'SE003', NULL, 'read of a fully expired stream raises SE003');
SELECT is(pg_temp.error_detail($$SELECT * FROM haematite.read_from('tap/expired', 1)$$),
          'Requested from sequence 1; next sequence is 2; no live event remains in that range.',
          'SE003 DETAIL names from_seq and the next sequence');
SELECT is_empty($$SELECT * FROM haematite.read_from('tap/expired', 2)$$,
                'read_from at the next sequence is empty, not SE003');
SELECT is_empty($$SELECT * FROM haematite.read_from('tap/expired', 0, 0)$$,
                'read_from with max_count 0 is empty, not SE003');

--
-- SE004: an event row at the seq that the head row marks as free.
--

INSERT INTO haematite.events (stream_key, seq, payload, appended_at, expires_at)
VALUES ('tap/stream'::bytea, 4, '\xdead', now(), NULL);
SELECT throws_ok($$SELECT haematite.append('tap/stream', '\x05', 4)$$,
                 'SE004', NULL, 'append onto a stray event row raises SE004');
SELECT throws_ok($$SELECT haematite.append_batch('tap/stream', ARRAY['\x05']::bytea[], 4)$$,
                 'SE004', NULL, 'append_batch onto a stray event row raises SE004');
SELECT is(haematite.next_seq('tap/stream'), 4::bigint,
          'SE004 leaves next_seq at 4');
DELETE FROM haematite.events WHERE stream_key = 'tap/stream'::bytea AND seq = 4;

--
-- 22004: NULL arguments.
--

SELECT throws_ok($$SELECT haematite.append(NULL::text, '\x01', 0)$$,
                 '22004', NULL, 'append with NULL stream_key raises 22004');
SELECT throws_ok($$SELECT haematite.append('tap/stream', NULL, 4)$$,
                 '22004', NULL, 'append with NULL payload raises 22004');
SELECT throws_ok($$SELECT haematite.append_batch('tap/stream', ARRAY['\x01', NULL]::bytea[], 4)$$,
                 '22004', NULL, 'append_batch with a NULL element raises 22004');
SELECT throws_ok($$SELECT * FROM haematite.read_from('tap/stream', NULL)$$,
                 '22004', NULL, 'read_from with NULL from_seq raises 22004');
SELECT throws_ok($$SELECT haematite.cas('tap/value', 2, NULL)$$,
                 '22004', NULL, 'cas with NULL new_value raises 22004');
SELECT throws_ok($$SELECT * FROM haematite.scan(NULL::bytea)$$,
                 '22004', NULL, 'scan with NULL prefix raises 22004');

--
-- 22023: negative numbers, empty keys, two-dimensional arrays.
--

SELECT throws_ok($$SELECT haematite.append('tap/stream', '\x01', -1)$$,
                 '22023', NULL, 'append with negative expected_seq raises 22023');
SELECT throws_ok($$SELECT haematite.append('tap/stream', '\x01', 4, ttl => '-1 second')$$,
                 '22023', NULL, 'append with negative ttl raises 22023');
SELECT throws_ok($$SELECT * FROM haematite.read_from('tap/stream', 0, -1)$$,
                 '22023', NULL, 'read_from with negative max_count raises 22023');
SELECT throws_ok($$SELECT haematite.cas('tap/value', 2, -1)$$,
                 '22023', NULL, 'cas with negative new_value raises 22023');
SELECT throws_ok($$SELECT haematite.sweep(-1)$$,
                 '22023', NULL, 'sweep with negative max_events raises 22023');
SELECT throws_ok($$SELECT haematite.next_seq(''::bytea)$$,
                 '22023', NULL, 'next_seq of an empty key raises 22023');
SELECT throws_ok($$SELECT haematite.append_batch('tap/stream', ARRAY[ARRAY['\x01'], ARRAY['\x02']]::bytea[], 4)$$,
                 '22023', NULL, 'append_batch with a two-dimensional array raises 22023');

--
-- 54000: keys over 1024 bytes.
--

SELECT lives_ok(format($$SELECT haematite.append(%L, '\x01', 0)$$, repeat('k', 1024)),
                'append with a 1024-byte key');
SELECT throws_ok(format($$SELECT haematite.append(%L, '\x01', 0)$$, repeat('k', 1025)),
                 '54000', NULL, 'append with a 1025-byte key raises 54000');
SELECT throws_ok(format($$SELECT haematite.read_value(%L::bytea)$$, repeat('k', 1025)),
                 '54000', NULL, 'read_value with a 1025-byte key raises 54000');

--
-- 22003: next sequence past the bigint maximum.
--

UPDATE haematite.stream_heads
SET next_seq = 9223372036854775807
WHERE stream_key = 'tap/stream'::bytea;
SELECT throws_ok($$SELECT haematite.append('tap/stream', '\x01', 9223372036854775807)$$,
                 '22003', NULL, 'append at the bigint maximum raises 22003');
SELECT is(haematite.next_seq('tap/stream'), 9223372036854775807::bigint,
          '22003 leaves next_seq at the maximum');

SELECT * FROM finish();

ROLLBACK;
