--
-- Reads called in a select list, in a cursor or from PL/pgSQL stream their
-- rows in batches of 1000, each batch read by running the query again from
-- just after the last row.  These checks cross batch boundaries, spill
-- batches to disk with a tiny work_mem, and interleave cursors with
-- savepoints and commits.  Every result is compared with the table itself.
--

SELECT haematite.append_batch('stream/wide',
    (SELECT array_agg(decode(md5(i::text) || repeat(md5((i * 7)::text), 30), 'hex'))
     FROM generate_series(1, 3000) i), 0);
SELECT haematite.append_batch('stream/short',
    (SELECT array_agg(int8send(i)) FROM generate_series(0, 1998) i), 0);

CREATE FUNCTION events_digest(key bytea, from_seq bigint, max_count bigint)
RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(seq::text || ':' || encode(payload, 'hex'), ',' ORDER BY seq))
    FROM (SELECT seq, payload FROM haematite.events
          WHERE stream_key = key AND seq >= from_seq
          ORDER BY seq LIMIT max_count) e
$$;

-- A select-list read of 3000 rows of about 500 bytes, with batches that
-- spill to disk: every row once, in order, with the stored payload.
SET work_mem = '64kB';
SELECT count(*) AS rows,
       count(DISTINCT (r).seq) AS distinct_seqs,
       md5(string_agg((r).seq::text || ':' || encode((r).payload, 'hex'), ',' ORDER BY (r).seq))
           = events_digest('stream/wide', 0, NULL) AS same_as_table
FROM (SELECT haematite.read('stream/wide') r) s;

-- Order as returned, not as sorted afterwards.
SELECT count(*) AS rows, bool_and(seq = n - 1) AS in_order
FROM (SELECT seq, row_number() OVER () AS n
      FROM (SELECT (haematite.read('stream/wide')).seq AS seq) r) s;

-- read_from with from_seq and max_count across batch boundaries.
SELECT count(*) AS rows, min((r).seq) AS first, max((r).seq) AS last
FROM (SELECT haematite.read_from('stream/wide', 5, 2500) r) s;
SELECT count(*) AS rows FROM (SELECT haematite.read_from('stream/wide', 0, 1000) r) s;
SELECT count(*) AS rows FROM (SELECT haematite.read_from('stream/wide', 2990) r) s;

-- Two reads in one select list each return their own stream.
SELECT count((a).seq) AS wide_rows, count((b).seq) AS short_rows,
       bool_and((b).seq IS NULL OR (b).payload = int8send((b).seq)) AS short_payloads_match
FROM (SELECT haematite.read('stream/wide') a, haematite.read('stream/short') b) s;
RESET work_mem;

-- A PL/pgSQL loop that appends to another stream between rows.
DO $$
DECLARE
    r record;
    n bigint := 0;
BEGIN
    FOR r IN SELECT (haematite.read('stream/short')).seq LOOP
        PERFORM haematite.append('stream/log', int8send(r.seq), n);
        n := n + 1;
    END LOOP;
    RAISE NOTICE 'loop read % rows', n;
END
$$;
SELECT haematite.next_seq('stream/log');

-- A cursor that outlives its transaction (WITH HOLD) keeps reading after
-- COMMIT, and the transaction's own append commits with it.
BEGIN;
SELECT haematite.append('stream/held', '\x01', 0);
DECLARE held CURSOR WITH HOLD FOR SELECT (haematite.read('stream/short')).seq;
FETCH 1 FROM held;
COMMIT;
MOVE 1500 IN held;
FETCH 1 FROM held;
CLOSE held;
SELECT haematite.next_seq('stream/held');

-- A cursor first fetched inside a savepoint that is rolled back goes on
-- past the batch boundary.
BEGIN;
DECLARE c CURSOR FOR SELECT (haematite.read('stream/short')).seq;
SAVEPOINT s;
FETCH 2 FROM c;
ROLLBACK TO s;
MOVE 996 IN c;
FETCH 3 FROM c;
CLOSE ALL;
COMMIT;

-- scan in a select list across batches: keys of 210 bytes, a tiny work_mem,
-- and keys with 0xff bytes after the prefix.
SELECT count(haematite.append(convert_to('many/' || lpad(i::text, 5, '0') || repeat('x', 200), 'UTF8'), '\x00', 0))
FROM generate_series(1, 2500) i;
SELECT count(haematite.append('many/'::bytea || '\xff'::bytea || int4send(i), '\x00', 0))
FROM generate_series(1, 5) i;
SET work_mem = '64kB';
SELECT count(*) AS streams,
       count(DISTINCT (r).stream_key) AS distinct_streams,
       bool_and((r).stream_key > coalesce(p, ''::bytea)) AS ascending
FROM (SELECT r, lag((r).stream_key) OVER () AS p
      FROM (SELECT haematite.scan('many/') r) s) t;
RESET work_mem;

DROP FUNCTION events_digest(bytea, bigint, bigint);
