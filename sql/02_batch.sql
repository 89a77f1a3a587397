--
-- append_batch: consecutive seqs, one shared appended_at, all or nothing,
-- empty batches and array shapes.
--

-- A batch on a new stream takes seqs 0 .. n-1 and returns n.
SELECT haematite.append_batch('batch/new', ARRAY['\x01', '\x02', '\x03']::bytea[], 0);
SELECT seq, payload FROM haematite.read('batch/new');

-- A second batch continues the stream, and single appends mix with batches.
SELECT haematite.append_batch('batch/new', ARRAY['\x04', '\x05']::bytea[], 3);
SELECT haematite.append('batch/new', '\x06', 5);
SELECT haematite.append_batch('batch/new', ARRAY['\x07']::bytea[], 6);
SELECT seq, payload FROM haematite.read('batch/new');

-- All events of one batch share one appended_at, and the next batch's is not
-- earlier.
SELECT count(DISTINCT appended_at) FILTER (WHERE seq < 3) AS first_batch,
       count(DISTINCT appended_at) FILTER (WHERE seq BETWEEN 3 AND 4) AS second_batch,
       min(appended_at) FILTER (WHERE seq BETWEEN 3 AND 4)
           >= max(appended_at) FILTER (WHERE seq < 3) AS second_not_earlier
FROM haematite.read('batch/new');

-- The text and bytea forms name one stream.
SELECT haematite.append_batch('batch/forms'::text, ARRAY['\x0a', '\x0b']::bytea[], 0);
SELECT haematite.append_batch('batch/forms'::bytea, ARRAY['\x0c']::bytea[], 2);
SELECT haematite.next_seq('batch/forms'::text) AS text_form,
       haematite.next_seq('batch/forms'::bytea) AS bytea_form;
SELECT seq, payload FROM haematite.read('batch/forms');

-- Empty payloads inside a batch are kept in place.
SELECT haematite.append_batch('batch/empty', ARRAY['\x', '\x01', '\x']::bytea[], 0);
SELECT seq, length(payload) AS bytes FROM haematite.read('batch/empty');

-- A one-dimensional array with a lower bound other than 1 is still appended
-- in element order.
SELECT haematite.append_batch('batch/bounds', '[5:7]={"\\x05","\\x06","\\x07"}'::bytea[], 0);
SELECT seq, payload FROM haematite.read('batch/bounds');

-- 1000 events in one batch: seqs 0 .. 999 with no gap, each with its payload.
SELECT haematite.append_batch('batch/large',
                              (SELECT array_agg(int4send(g) ORDER BY g)
                               FROM generate_series(0, 999) AS g),
                              0);
SELECT count(*) AS events,
       min(seq) AS first_seq,
       max(seq) AS last_seq,
       count(DISTINCT seq) AS distinct_seqs,
       bool_and(payload = int4send(seq::int)) AS payloads_in_order,
       count(DISTINCT appended_at) AS timestamps
FROM haematite.read('batch/large');

-- An empty batch on a stream that does not exist returns 0 and creates
-- nothing.
SELECT tables_digest() AS digest_before \gset
SELECT haematite.append_batch('batch/never', ARRAY[]::bytea[], 0);
SELECT haematite.append_batch('batch/never'::bytea, '{}'::bytea[], 0);
SELECT * FROM stream_rows('batch/never');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- An empty batch on an existing stream returns expected_seq and writes nothing.
SELECT haematite.append_batch('batch/forms', ARRAY[]::bytea[], 3);
SELECT haematite.next_seq('batch/forms');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- An empty batch still checks expected_seq: SE001 on both kinds of stream.
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/never', ARRAY[]::bytea[], 2)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/forms', ARRAY[]::bytea[], 1)$$);
SELECT * FROM stream_rows('batch/never');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- A non-empty batch with the wrong expected_seq is SE001 and writes nothing,
-- on an existing and on a new stream.
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/forms', ARRAY['\x01', '\x02']::bytea[], 2)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/forms', ARRAY['\x01', '\x02']::bytea[], 4)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/absent', ARRAY['\x01']::bytea[], 1)$$);
SELECT haematite.next_seq('batch/forms');
SELECT * FROM stream_rows('batch/absent');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- A NULL element rejects the whole batch (22004): no element is written,
-- wherever the NULL sits.
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/forms', ARRAY['\x01', NULL, '\x03']::bytea[], 3)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/forms', ARRAY['\x01', '\x02', NULL]::bytea[], 3)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/nulls', ARRAY[NULL]::bytea[], 0)$$);
SELECT haematite.next_seq('batch/forms');
SELECT * FROM stream_rows('batch/nulls');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- A two-dimensional array is rejected (22023) and writes nothing.
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/forms', ARRAY[ARRAY['\x01', '\x02'], ARRAY['\x03', '\x04']]::bytea[], 3)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/grid'::bytea, ARRAY[ARRAY['\x01'], ARRAY['\x02']]::bytea[], 0)$$);
SELECT * FROM stream_rows('batch/grid');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- After all the failures the stream takes the next batch at seq 3.
SELECT haematite.append_batch('batch/forms', ARRAY['\x0d', '\x0e']::bytea[], 3);
SELECT seq, payload FROM haematite.read('batch/forms');

-- haematite.max_batch_bytes bounds the size of one payload array: a larger
-- array is rejected (54000) before anything is written, a smaller one passes.
-- The limit applies to batches only, not to a single append.
SET haematite.max_batch_bytes = 1024;
SELECT tables_digest() AS digest_before \gset
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/limit', ARRAY[decode(repeat('ab', 2000), 'hex')]::bytea[], 0)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('batch/forms', ARRAY[decode(repeat('ab', 600), 'hex'), decode(repeat('cd', 600), 'hex')]::bytea[], 5)$$);
SELECT * FROM stream_rows('batch/limit');
SELECT tables_digest() = :'digest_before' AS nothing_written;
SELECT haematite.append_batch('batch/limit', ARRAY[decode(repeat('ab', 400), 'hex')]::bytea[], 0);
SELECT haematite.append('batch/limit', decode(repeat('ab', 2000), 'hex'), 1);
SELECT seq, length(payload) AS bytes FROM haematite.read('batch/limit');
RESET haematite.max_batch_bytes;
