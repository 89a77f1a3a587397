--
-- read and read_from: order, offsets, max_count, absent streams and the
-- result columns.
--

SELECT haematite.append_batch('read/five',
                              ARRAY['\x00', '\x01', '\x02', '\x03', '\x04']::bytea[],
                              0);

-- read returns every event in seq order, with the columns seq, payload and
-- appended_at.
SELECT seq, payload, appended_at IS NOT NULL AS has_appended_at
FROM haematite.read('read/five');

-- read is read_from(key, 0).
SELECT (SELECT array_agg(seq ORDER BY seq) FROM haematite.read('read/five'))
     = (SELECT array_agg(seq ORDER BY seq) FROM haematite.read_from('read/five', 0))
       AS same_events;

-- Rows arrive in seq order without an ORDER BY.
SELECT array_agg(seq) AS seqs FROM haematite.read('read/five');
SELECT array_agg(seq) AS seqs FROM haematite.read_from('read/five', 1);

-- from_seq in the middle returns that event and the later ones.
SELECT seq, payload FROM haematite.read_from('read/five', 2);

-- max_count limits the rows, counted from from_seq.
SELECT seq, payload FROM haematite.read_from('read/five', 1, 2);
SELECT seq, payload FROM haematite.read_from('read/five', 4, 10);
SELECT seq, payload FROM haematite.read_from('read/five', 0, max_count => 1);

-- max_count 0 returns no rows and no error.
SELECT count(*) FROM haematite.read_from('read/five', 0, 0);

-- max_count NULL means no limit, like the default.
SELECT count(*) FROM haematite.read_from('read/five', 0, NULL);

-- from_seq at or beyond the next sequence returns no rows and no error.
SELECT count(*) FROM haematite.read_from('read/five', 5);
SELECT count(*) FROM haematite.read_from('read/five', 1000);
SELECT count(*) FROM haematite.read_from('read/five', 9223372036854775807);

-- A stream that does not exist reads as empty, from any offset.
SELECT count(*) FROM haematite.read('read/absent');
SELECT count(*) FROM haematite.read_from('read/absent', 0);
SELECT count(*) FROM haematite.read_from('read/absent', 7, 3);

-- The text and bytea forms read one stream.
SELECT seq, payload FROM haematite.read('read/five'::bytea) WHERE seq < 2;
SELECT seq, payload FROM haematite.read_from('read/five'::bytea, 3);
SELECT seq, payload FROM haematite.read_from(convert_to('read/five', 'UTF8'), 3, 1);

-- Reading writes nothing.
SELECT tables_digest() AS digest_before \gset
SELECT count(*) FROM haematite.read('read/five');
SELECT count(*) FROM haematite.read_from('read/absent', 0);
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- read works as a table in a join: the last event of each of two streams.
SELECT haematite.append('read/other', '\xaa', 0);
SELECT k.key, last.seq, last.payload
FROM (VALUES ('read/five'), ('read/other')) AS k(key),
     LATERAL (SELECT seq, payload
              FROM haematite.read(k.key)
              ORDER BY seq DESC
              LIMIT 1) AS last
ORDER BY k.key;
