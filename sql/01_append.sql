--
-- append and next_seq: sequence numbers, return values, sequence conflicts,
-- the text and bytea forms of a key, binary keys and payload sizes.
--

-- A stream that never existed has next sequence 0, in both forms.
SELECT haematite.next_seq('append/basic'::text) AS text_form,
       haematite.next_seq('append/basic'::bytea) AS bytea_form;

-- Each append returns the new next sequence, and seqs start at 0.
SELECT now() AS before_first_append \gset
SELECT haematite.append('append/basic', '\x01', 0);
SELECT haematite.append('append/basic', '\x02', 1);
SELECT haematite.append('append/basic', '\x03', 2);
SELECT haematite.next_seq('append/basic');

-- The events come back in seq order with their payloads.
SELECT seq, payload FROM haematite.read('append/basic');

-- appended_at is set, is not earlier than the transaction of the first append,
-- is not later than now, and never decreases along the stream.
SELECT bool_and(appended_at IS NOT NULL) AS all_set,
       bool_and(appended_at >= :'before_first_append') AS after_first_append,
       bool_and(appended_at <= statement_timestamp()) AS not_in_future
FROM haematite.read('append/basic');
SELECT bool_and(appended_at >= previous) AS non_decreasing
FROM (SELECT appended_at,
             lag(appended_at) OVER (ORDER BY seq) AS previous
      FROM haematite.read('append/basic')) AS s
WHERE previous IS NOT NULL;

-- An expected_seq below or above the next sequence is a sequence conflict
-- (SE001) and writes nothing.
SELECT tables_digest() AS digest_before \gset
SELECT * FROM capture_error($$SELECT haematite.append('append/basic', '\x04', 2)$$);
SELECT * FROM capture_error($$SELECT haematite.append('append/basic', '\x04', 4)$$);
SELECT * FROM capture_error($$SELECT haematite.append('append/basic', '\x04', 0)$$);
SELECT haematite.next_seq('append/basic');
SELECT * FROM stream_rows('append/basic');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- On a stream that does not exist the actual next sequence is 0, and the
-- failed append creates no head row.
SELECT * FROM capture_error($$SELECT haematite.append('append/absent', '\x01', 1)$$);
SELECT * FROM stream_rows('append/absent');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- The text form uses the text's bytes in the database encoding, so text,
-- its bytea cast and convert_to() all name one stream.
SELECT haematite.append('append/forms'::text, '\x0a', 0);
SELECT haematite.append('append/forms'::bytea, '\x0b', 1);
SELECT haematite.append(convert_to('append/forms', 'UTF8'), '\x0c', 2);
SELECT haematite.next_seq('append/forms'::text) AS text_form,
       haematite.next_seq('append/forms'::bytea) AS bytea_form;
SELECT seq, payload FROM haematite.read('append/forms'::bytea);
SELECT * FROM capture_error($$SELECT haematite.append('append/forms'::bytea, '\x0d', 0)$$);

-- A key with multibyte characters: the bytea form is its UTF-8 encoding, and
-- the message prints the key as text.
SELECT haematite.append('append/ключ'::text, '\x01', 0);
SELECT haematite.next_seq(convert_to('append/ключ', 'UTF8'));
SELECT haematite.next_seq('\x617070656e642fd0bad0bbd18ed187'::bytea);
SELECT * FROM capture_error($$SELECT haematite.append(convert_to('append/ключ', 'UTF8'), '\x02', 0)$$);

-- Binary keys with 0x00 and 0xff bytes are distinct streams.  They are not
-- valid text, so messages print them in hex.
SELECT haematite.append('\x00'::bytea, '\x01', 0);
SELECT haematite.append('\x00ff'::bytea, '\x01', 0);
SELECT haematite.append('\x00ff'::bytea, '\x02', 1);
SELECT haematite.append('\xff'::bytea, '\x01', 0);
SELECT haematite.append('\x61006200'::bytea, '\x01', 0);
SELECT haematite.next_seq('\x00'::bytea) AS key_00,
       haematite.next_seq('\x00ff'::bytea) AS key_00ff,
       haematite.next_seq('\xff'::bytea) AS key_ff,
       haematite.next_seq('\x00ff00'::bytea) AS key_00ff00,
       haematite.next_seq('\x61006200'::bytea) AS key_61006200;
SELECT * FROM capture_error($$SELECT haematite.append('\x00ff'::bytea, '\x03', 0)$$);
SELECT * FROM capture_error($$SELECT haematite.append('\xff'::bytea, '\x02', 5)$$);
SELECT * FROM capture_error($$SELECT haematite.append('\x61006200'::bytea, '\x02', 0)$$);

-- A key that is valid text but contains a control character (a line feed)
-- is also printed in hex, so that a message stays on one line.
SELECT haematite.append(E'append/line\nfeed', '\x01', 0);
SELECT * FROM capture_error($$SELECT haematite.append(E'append/line\nfeed', '\x02', 0)$$);

-- A key of exactly 1024 bytes is accepted in both forms.
SELECT haematite.append(repeat('k', 1024), '\x01', 0);
SELECT haematite.append(convert_to(repeat('k', 1024), 'UTF8'), '\x02', 1);
SELECT haematite.next_seq(repeat('k', 1024));

-- Empty payloads are events like any other.
SELECT haematite.append('append/empty', '\x'::bytea, 0);
SELECT haematite.append('append/empty', ''::bytea, 1);
SELECT seq, payload, length(payload) AS bytes
FROM haematite.read('append/empty');

-- A payload of 4 MB of hash output round-trips byte for byte.
CREATE TEMP TABLE big_payload AS
SELECT string_agg(sha256(int4send(i)), ''::bytea ORDER BY i) AS payload
FROM generate_series(1, 131072) AS i;
SELECT haematite.append('append/big', payload, 0) FROM big_payload;
SELECT r.seq,
       length(r.payload) AS bytes,
       md5(r.payload) = md5(b.payload) AS same_bytes
FROM haematite.read('append/big') AS r, big_payload AS b;
DROP TABLE big_payload;

-- One statement can append several events: each call sees the previous one.
SELECT haematite.append('append/loop', int4send(g), g) AS next_seq
FROM generate_series(0, 4) AS g
ORDER BY g;
SELECT seq, payload FROM haematite.read('append/loop');

-- The argument names work in named notation.
SELECT haematite.append(stream_key => 'append/named', payload => '\x01',
                        expected_seq => 0, ttl => NULL);
SELECT haematite.append(expected_seq => 1, payload => '\x02',
                        stream_key => 'append/named'::bytea);
SELECT haematite.next_seq(stream_key => 'append/named');
SELECT seq, payload
FROM haematite.read_from(stream_key => 'append/named', from_seq => 1, max_count => 1);

-- A stream's next sequence is its event count.
SELECT haematite.next_seq('append/loop') = count(*) AS next_seq_is_count
FROM haematite.read('append/loop');
