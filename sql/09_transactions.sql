--
-- Transactions: appends and cas calls belong to the caller's transaction.
-- A rollback leaves no trace, a transaction reads its own appends, and an
-- error aborts the transaction as any PostgreSQL error does.
--

-- Appends rolled back leave no head row, no event row and next sequence 0.
BEGIN;
SELECT haematite.append('tx/rolled-back', '\x01', 0);
SELECT haematite.append_batch('tx/rolled-back', ARRAY['\x02', '\x03']::bytea[], 1);
SELECT haematite.cas('tx/rolled-back', NULL, 1);
SELECT haematite.next_seq('tx/rolled-back');
ROLLBACK;
SELECT haematite.next_seq('tx/rolled-back');
SELECT count(*) FROM haematite.read('tx/rolled-back');
SELECT * FROM stream_rows('tx/rolled-back');
SELECT haematite.read_value('tx/rolled-back') IS NULL AS value_absent;
SELECT count(*) FROM haematite.scan('tx/');

-- The stream can then be created from seq 0 as if the rollback never happened.
SELECT haematite.append('tx/rolled-back', '\x0a', 0);
SELECT seq, payload FROM haematite.read('tx/rolled-back');

-- A transaction that appends sees its own events in later statements, in
-- read, read_from, next_seq and scan.  read_value sees its own cas calls.
BEGIN;
SELECT haematite.append('tx/own', '\x01', 0);
SELECT haematite.append_batch('tx/own', ARRAY['\x02', '\x03']::bytea[], 1);
SELECT seq, payload FROM haematite.read('tx/own');
SELECT seq, payload FROM haematite.read_from('tx/own', 2);
SELECT haematite.next_seq('tx/own');
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq FROM haematite.scan('tx/own');
SELECT haematite.cas('tx/own', NULL, 1);
SELECT haematite.cas('tx/own', 1, 2);
SELECT haematite.read_value('tx/own');
COMMIT;
SELECT haematite.next_seq('tx/own'), haematite.read_value('tx/own');

-- A savepoint rolls back one append, and the stream goes on from the seq
-- before it.
BEGIN;
SELECT haematite.append('tx/savepoint', '\x01', 0);
SAVEPOINT before_second;
SELECT haematite.append('tx/savepoint', '\x02', 1);
ROLLBACK TO SAVEPOINT before_second;
SELECT haematite.next_seq('tx/savepoint');
SELECT haematite.append('tx/savepoint', '\x03', 1);
COMMIT;
SELECT seq, payload FROM haematite.read('tx/savepoint');

-- An error inside a transaction aborts it like any other error: later
-- statements are rejected until ROLLBACK, and the earlier append is undone.
BEGIN;
SELECT haematite.append('tx/aborted', '\x01', 0);
SELECT haematite.append('tx/aborted', '\x02', 0);
SELECT haematite.next_seq('tx/aborted');
ROLLBACK;
SELECT * FROM stream_rows('tx/aborted');

-- A caught error (here in a subtransaction) leaves the transaction usable,
-- and the transaction keeps what it wrote before the error.
BEGIN;
SELECT haematite.append('tx/caught', '\x01', 0);
SELECT sqlstate, detail
FROM capture_error($$SELECT haematite.append('tx/caught', '\x02', 0)$$);
SELECT haematite.append('tx/caught', '\x02', 1);
COMMIT;
SELECT seq, payload FROM haematite.read('tx/caught');

-- Events appended in one transaction by several calls keep their seq order
-- and a non-decreasing appended_at.
BEGIN;
SELECT haematite.append('tx/order', int4send(g), g) FROM generate_series(0, 2) AS g ORDER BY g;
SELECT haematite.append_batch('tx/order', ARRAY['\x03', '\x04']::bytea[], 3);
COMMIT;
SELECT bool_and(appended_at >= previous) AS non_decreasing,
       count(*) AS pairs
FROM (SELECT appended_at,
             lag(appended_at) OVER (ORDER BY seq) AS previous
      FROM haematite.read('tx/order')) AS s
WHERE previous IS NOT NULL;

-- In a READ ONLY transaction every function that writes is rejected (25006)
-- and writes nothing.  The readers work, and so does flush, which writes no
-- row.
SELECT tables_digest() AS digest_before \gset
BEGIN READ ONLY;
SELECT * FROM capture_error($$SELECT haematite.append('tx/read-only', '\x01', 0)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('tx/read-only', ARRAY['\x01']::bytea[], 0)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('tx/own', ARRAY[]::bytea[], 3)$$);
SELECT * FROM capture_error($$SELECT haematite.cas('tx/read-only', NULL, 1)$$);
SELECT * FROM capture_error($$SELECT haematite.sweep()$$);
SELECT haematite.flush() IS NOT NULL AS flushed;
SELECT seq, payload FROM haematite.read('tx/own');
SELECT haematite.next_seq('tx/own'), haematite.read_value('tx/own');
SELECT convert_from(stream_key, 'UTF8') AS key_text FROM haematite.scan('tx/own');
COMMIT;
SELECT tables_digest() = :'digest_before' AS nothing_written;
