--
-- The examples of docs/reference.md.  Each example runs from an
-- "-- example: NAME" line to the next "-- end of example" line, and
-- test/scripts/docs_examples.sh checks that the reference shows exactly that
-- part of this file's expected output under the same name.  So a change in
-- behaviour fails here, and an edited example in the reference fails there.
--
-- The examples are plain psql, so that a reader can paste them into a
-- session.  Errors show psql's ERROR, DETAIL and HINT lines, and
-- "\echo :SQLSTATE" prints the SQLSTATE of the last error.
--

-- Start from empty tables, so that scan() and sweep() see only the streams
-- created below, whatever the earlier files left.
DROP EXTENSION haematite;
CREATE EXTENSION haematite;

-- pg_regress sets its own date and interval styles.  Use PostgreSQL's
-- defaults, so that values print as they do in a new psql session.
SET datestyle = 'ISO, MDY';
SET intervalstyle = 'postgres';

-- example: catalog-signatures
SELECT p.proname AS function,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS returns
FROM pg_proc AS p
WHERE p.pronamespace = 'haematite'::regnamespace
  AND NOT 'o' = ANY (coalesce(p.proargmodes, '{}'))
ORDER BY 1, 2;
-- end of example

-- example: catalog-attributes
SELECT p.oid::regprocedure AS function,
       CASE p.provolatile WHEN 'v' THEN 'volatile' WHEN 's' THEN 'stable'
                          ELSE 'immutable' END AS volatility,
       CASE p.proparallel WHEN 'u' THEN 'unsafe' WHEN 'r' THEN 'restricted'
                          ELSE 'safe' END AS parallel,
       p.prosecdef AS security_definer,
       p.proisstrict AS strict
FROM pg_proc AS p
WHERE p.pronamespace = 'haematite'::regnamespace
ORDER BY p.proname, p.oid::regprocedure::text;
-- end of example

-- example: concepts-stream
SELECT haematite.append('orders/42', convert_to('created', 'UTF8'), 0);
SELECT haematite.append('orders/42', convert_to('paid', 'UTF8'), 1);
SELECT seq, convert_from(payload, 'UTF8') AS payload
FROM haematite.read('orders/42');
SELECT haematite.next_seq('orders/42');
-- end of example

-- example: concepts-key-forms
SELECT haematite.next_seq('orders/42'::text) AS text_key,
       haematite.next_seq('orders/42'::bytea) AS bytea_key,
       haematite.next_seq('\x6f72646572732f3432'::bytea) AS hex_key;
-- end of example

-- example: append
SELECT haematite.append('orders/42', convert_to('shipped', 'UTF8'), 2);
-- end of example

-- example: append-conflict
SELECT haematite.append('orders/42', convert_to('cancelled', 'UTF8'), 2);
\echo :SQLSTATE
SELECT haematite.next_seq('orders/42');
-- end of example

-- example: append-new-stream
SELECT haematite.append('orders/43', convert_to('created', 'UTF8'), 0);
SELECT haematite.append('orders_archive/1', convert_to('created', 'UTF8'), 0);
-- end of example

-- example: append-binary-key
SELECT haematite.append('\x00ff'::bytea, '\x01', 5);
\echo :SQLSTATE
-- end of example

-- example: append-batch
SELECT haematite.append_batch('orders/43',
       ARRAY[convert_to('paid', 'UTF8'), convert_to('shipped', 'UTF8')],
       1);
SELECT seq, convert_from(payload, 'UTF8') AS payload,
       count(*) OVER (PARTITION BY appended_at) AS sharing_appended_at
FROM haematite.read_from('orders/43', 1);
-- end of example

-- example: append-batch-empty
SELECT haematite.append_batch('orders/43', '{}', 3);
SELECT haematite.append_batch('orders/44', '{}', 0);
SELECT haematite.next_seq('orders/44');
SELECT count(*) FROM haematite.scan('orders/44');
SELECT haematite.append_batch('orders/43', '{}', 0);
\echo :SQLSTATE
-- end of example

-- example: append-batch-all-or-nothing
SELECT haematite.append_batch('orders/43', ARRAY['\x01', NULL]::bytea[], 3);
\echo :SQLSTATE
SELECT haematite.next_seq('orders/43');
-- end of example

-- example: read
SELECT seq, convert_from(payload, 'UTF8') AS payload,
       appended_at <= now() AS appended_in_the_past
FROM haematite.read('orders/42');
SELECT count(*) FROM haematite.read('orders/never-written');
-- end of example

-- example: read-from
SELECT seq, convert_from(payload, 'UTF8') AS payload
FROM haematite.read_from('orders/42', 1);
SELECT seq, convert_from(payload, 'UTF8') AS payload
FROM haematite.read_from('orders/42', 0, 2);
SELECT count(*) FROM haematite.read_from('orders/42', 3);
-- end of example

-- example: next-seq
SELECT haematite.next_seq('orders/42') AS orders_42,
       haematite.next_seq('orders/never-written') AS never_written;
-- end of example

-- example: cas
SELECT haematite.cas('cursors/mailer', NULL, 0);
SELECT haematite.cas('cursors/mailer', 0, 3);
SELECT haematite.read_value('cursors/mailer');
-- end of example

-- example: cas-mismatch
SELECT haematite.cas('cursors/mailer', 0, 5);
\echo :SQLSTATE
SELECT haematite.cas('cursors/mailer', NULL, 5);
\echo :SQLSTATE
SELECT haematite.cas('cursors/billing', 2, 5);
\echo :SQLSTATE
SELECT haematite.read_value('cursors/mailer');
-- end of example

-- example: read-value
SELECT haematite.read_value('cursors/mailer') AS mailer,
       haematite.read_value('cursors/billing') IS NULL AS billing_absent;
-- end of example

-- example: scan
SELECT convert_from(stream_key, 'UTF8') AS stream, next_seq
FROM haematite.scan('orders/');
SELECT convert_from(stream_key, 'UTF8') AS stream, next_seq
FROM haematite.scan('orders_');
SELECT convert_from(stream_key, 'UTF8') AS stream, next_seq
FROM haematite.scan('orders/')
WHERE next_seq > 3;
SELECT stream_key, next_seq FROM haematite.scan();
-- end of example

-- example: ttl
SELECT haematite.append('sessions/7', convert_to('login', 'UTF8'), 0,
                        ttl => interval '15 minutes');
SELECT haematite.append('sessions/8', convert_to('login', 'UTF8'), 0,
                        ttl => interval '0');
SELECT convert_from(stream_key, 'UTF8') AS stream, next_seq
FROM haematite.scan('sessions/');
-- end of example

-- example: ttl-compacted
SELECT * FROM haematite.read('sessions/8');
\echo :SQLSTATE
SELECT haematite.next_seq('sessions/8');
SELECT haematite.append('sessions/8', convert_to('logout', 'UTF8'), 1);
SELECT seq, convert_from(payload, 'UTF8') AS payload
FROM haematite.read_from('sessions/8', 1);
SELECT seq, convert_from(payload, 'UTF8') AS payload
FROM haematite.read_from('sessions/8', 0, 1);
-- end of example

-- example: sweep
SELECT haematite.sweep();
SELECT haematite.sweep(1000);
SELECT haematite.next_seq('sessions/8');
-- end of example

-- example: flush
SELECT pg_current_wal_flush_lsn() >= flushed AS on_disk
FROM haematite.flush() AS flushed;
-- end of example

-- example: transactions-rollback
BEGIN;
SELECT haematite.append('orders/45', convert_to('created', 'UTF8'), 0);
SELECT haematite.cas('cursors/orders-45', NULL, 1);
SELECT haematite.next_seq('orders/45');
ROLLBACK;
SELECT haematite.next_seq('orders/45'),
       haematite.read_value('cursors/orders-45') IS NULL AS cursor_absent;
-- end of example

-- example: transactions-savepoint
BEGIN;
SAVEPOINT before_append;
SELECT haematite.append('orders/42', convert_to('refunded', 'UTF8'), 0);
ROLLBACK TO SAVEPOINT before_append;
SELECT haematite.append('orders/42', convert_to('refunded', 'UTF8'),
                        haematite.next_seq('orders/42'));
COMMIT;
-- end of example

-- example: errors-arguments
SELECT haematite.next_seq(NULL::text);
\echo :SQLSTATE
SELECT haematite.append('', '\x01', 0);
\echo :SQLSTATE
SELECT haematite.append(repeat('k', 1025), '\x01', 0);
\echo :SQLSTATE
SELECT haematite.append('orders/42', '\x01', -1);
\echo :SQLSTATE
SELECT haematite.append('orders/42', '\x01', 5, ttl => interval '-1 second');
\echo :SQLSTATE
SELECT haematite.append_batch('orders/42', ARRAY[['\x01'], ['\x02']]::bytea[], 5);
\echo :SQLSTATE
SELECT * FROM haematite.read_from('orders/42', 0, -1);
\echo :SQLSTATE
SELECT haematite.sweep(-1);
\echo :SQLSTATE
-- end of example

-- example: errors-plpgsql
DO $$
BEGIN
    PERFORM haematite.append('orders/42', '\x00', 0);
EXCEPTION WHEN SQLSTATE 'SE001' THEN
    RAISE NOTICE 'conflict, the stream is at %', haematite.next_seq('orders/42');
END
$$;
-- end of example

-- The privilege examples run in one transaction that is rolled back, so the
-- roles they create never outlive this file.
BEGIN;
CREATE ROLE app_reader;
CREATE ROLE app_writer;
CREATE ROLE app_consumer;
CREATE ROLE app_monitoring;

-- example: privileges-reader
GRANT USAGE ON SCHEMA haematite TO app_reader;
GRANT EXECUTE ON FUNCTION
    haematite.read(bytea), haematite.read(text),
    haematite.read_from(bytea, bigint, integer), haematite.read_from(text, bigint, integer),
    haematite.next_seq(bytea), haematite.next_seq(text),
    haematite.read_value(bytea), haematite.read_value(text),
    haematite.scan(bytea), haematite.scan(text), haematite.scan()
TO app_reader;
-- end of example

-- example: privileges-writer
GRANT USAGE ON SCHEMA haematite TO app_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA haematite TO app_writer;
-- end of example

-- example: privileges-consumer
GRANT EXECUTE ON FUNCTION haematite.cas(bytea, bigint, bigint),
                          haematite.cas(text, bigint, bigint)
TO app_consumer;
-- end of example

-- example: privileges-monitoring
GRANT USAGE ON SCHEMA haematite TO app_monitoring;
GRANT EXECUTE ON FUNCTION haematite.stats() TO app_monitoring;
-- end of example

-- example: privileges-check
SET ROLE app_reader;
SELECT haematite.next_seq('orders/42');
SAVEPOINT denied;
SELECT haematite.append('orders/42', '\x01', 5);
\echo :SQLSTATE
ROLLBACK TO SAVEPOINT denied;
SELECT count(*) FROM haematite.events;
\echo :SQLSTATE
-- end of example

ROLLBACK;
SELECT count(*) AS example_roles_left FROM pg_roles
WHERE rolname IN ('app_reader', 'app_writer', 'app_consumer', 'app_monitoring');

-- example: stats
ANALYZE haematite.stream_heads, haematite.events, haematite.scalar_values;
SELECT streams_estimate, events_estimate, live_events_estimate,
       expired_events, cas_keys_estimate,
       table_bytes > 0 AS has_table_bytes, last_sweep_source
FROM haematite.stats();
-- end of example

-- example: last-sweep
SELECT * FROM haematite.last_sweep();
-- end of example
