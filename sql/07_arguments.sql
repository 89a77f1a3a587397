--
-- Argument checks of every function: NULL (22004), negative numbers, empty
-- keys and array shape (22023), key length (54000).  Each rejected call
-- writes nothing.
--

SELECT haematite.append('args/stream', '\x01', 0);
SELECT haematite.cas('args/value', NULL, 1);
SELECT tables_digest() AS digest_before \gset

--
-- NULL in each required argument, in both key forms.  The message names the
-- argument.
--

-- append(stream_key, payload, expected_seq)
SELECT * FROM capture_error($$SELECT haematite.append(NULL::text, '\x01', 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append(NULL::bytea, '\x01', 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append('args/stream'::text, NULL, 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append('args/stream'::bytea, NULL, 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append('args/stream'::text, '\x01', NULL)$$);
SELECT * FROM capture_error($$SELECT haematite.append('args/stream'::bytea, '\x01', NULL)$$);

-- append_batch(stream_key, payloads, expected_seq), and a NULL element
SELECT * FROM capture_error($$SELECT haematite.append_batch(NULL::text, ARRAY['\x01']::bytea[], 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch(NULL::bytea, ARRAY['\x01']::bytea[], 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::text, NULL, 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::bytea, NULL, 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::text, ARRAY['\x01']::bytea[], NULL)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::bytea, ARRAY['\x01']::bytea[], NULL)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::text, ARRAY[NULL, '\x01']::bytea[], 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::bytea, ARRAY['\x01', NULL]::bytea[], 1)$$);

-- read(stream_key)
SELECT * FROM capture_error($$SELECT * FROM haematite.read(NULL::text)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read(NULL::bytea)$$);

-- read_from(stream_key, from_seq)
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from(NULL::text, 0)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from(NULL::bytea, 0)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('args/stream'::text, NULL)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('args/stream'::bytea, NULL, 1)$$);

-- next_seq(stream_key)
SELECT * FROM capture_error($$SELECT haematite.next_seq(NULL::text)$$);
SELECT * FROM capture_error($$SELECT haematite.next_seq(NULL::bytea)$$);

-- cas(key, expected, new_value)
SELECT * FROM capture_error($$SELECT haematite.cas(NULL::text, 1, 2)$$);
SELECT * FROM capture_error($$SELECT haematite.cas(NULL::bytea, NULL, 2)$$);
SELECT * FROM capture_error($$SELECT haematite.cas('args/value'::text, 1, NULL)$$);
SELECT * FROM capture_error($$SELECT haematite.cas('args/value'::bytea, 1, NULL)$$);

-- read_value(key)
SELECT * FROM capture_error($$SELECT haematite.read_value(NULL::text)$$);
SELECT * FROM capture_error($$SELECT haematite.read_value(NULL::bytea)$$);

-- scan(prefix)
SELECT * FROM capture_error($$SELECT * FROM haematite.scan(NULL::text)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.scan(NULL::bytea)$$);

SELECT haematite.next_seq('args/stream') AS next_seq,
       haematite.read_value('args/value') AS value;
SELECT tables_digest() = :'digest_before' AS nothing_written;

--
-- Negative sequence numbers, values, counts and TTLs (22023).  The message
-- names the argument and its value.
--

SELECT * FROM capture_error($$SELECT haematite.append('args/stream'::text, '\x01', -1)$$);
SELECT * FROM capture_error($$SELECT haematite.append('args/stream'::bytea, '\x01', -9223372036854775808)$$);
SELECT * FROM capture_error($$SELECT haematite.append('args/stream'::text, '\x01', 1, ttl => '-1 minute')$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::text, ARRAY['\x01']::bytea[], -1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::bytea, ARRAY[]::bytea[], -1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::bytea, ARRAY['\x01']::bytea[], 1, ttl => '-1 minute')$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('args/stream'::text, -1)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('args/stream'::bytea, -5, 1)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('args/stream'::text, 0, -1)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('args/stream'::bytea, 0, -2147483648)$$);
SELECT * FROM capture_error($$SELECT haematite.cas('args/value'::text, -1, 2)$$);
SELECT * FROM capture_error($$SELECT haematite.cas('args/value'::bytea, 1, -2)$$);
SELECT * FROM capture_error($$SELECT haematite.cas('args/new-value'::text, NULL, -1)$$);
SELECT * FROM capture_error($$SELECT haematite.sweep(-1)$$);

SELECT haematite.next_seq('args/stream') AS next_seq,
       haematite.read_value('args/value') AS value,
       haematite.read_value('args/new-value') IS NULL AS new_value_absent;
SELECT tables_digest() = :'digest_before' AS nothing_written;

--
-- Empty keys (22023), in both forms, for every function that takes a key.
--

SELECT * FROM capture_error($$SELECT haematite.append(''::text, '\x01', 0)$$);
SELECT * FROM capture_error($$SELECT haematite.append(''::bytea, '\x01', 0)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch(''::text, ARRAY['\x01']::bytea[], 0)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch(''::bytea, ARRAY[]::bytea[], 0)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read(''::text)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read(''::bytea)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from(''::text, 0)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from(''::bytea, 0, 1)$$);
SELECT * FROM capture_error($$SELECT haematite.next_seq(''::text)$$);
SELECT * FROM capture_error($$SELECT haematite.next_seq(''::bytea)$$);
SELECT * FROM capture_error($$SELECT haematite.cas(''::text, NULL, 1)$$);
SELECT * FROM capture_error($$SELECT haematite.cas(''::bytea, NULL, 1)$$);
SELECT * FROM capture_error($$SELECT haematite.read_value(''::text)$$);
SELECT * FROM capture_error($$SELECT haematite.read_value(''::bytea)$$);

SELECT tables_digest() = :'digest_before' AS nothing_written;

--
-- Two-dimensional payload arrays (22023), in both key forms.
--

SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::text, ARRAY[ARRAY['\x01'], ARRAY['\x02']]::bytea[], 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('args/stream'::bytea, ARRAY[ARRAY['\x01', '\x02']]::bytea[], 1)$$);

SELECT tables_digest() = :'digest_before' AS nothing_written;

--
-- Key length: 1024 bytes is accepted, 1025 bytes is rejected (54000) with the
-- length and the limit in DETAIL.  The text form counts bytes, not
-- characters: 512 two-byte characters are 1024 bytes.
--

CREATE TEMP TABLE long_keys AS
SELECT repeat('k', 1024) AS key_1024,
       repeat('k', 1025) AS key_1025,
       repeat('й', 512) AS cyrillic_1024,
       repeat('й', 513) AS cyrillic_1026;
SELECT octet_length(key_1024) AS key_1024,
       octet_length(key_1025) AS key_1025,
       octet_length(cyrillic_1024) AS cyrillic_1024,
       octet_length(cyrillic_1026) AS cyrillic_1026
FROM long_keys;

-- 1024 bytes: every function accepts the key.
SELECT haematite.next_seq(key_1024) FROM long_keys;
SELECT count(*) FROM long_keys, haematite.read(key_1024);
SELECT count(*) FROM long_keys, haematite.read_from(key_1024::bytea, 0);
SELECT haematite.read_value(key_1024::bytea) IS NULL AS absent FROM long_keys;
SELECT haematite.append(cyrillic_1024, '\x01', 0) FROM long_keys;
SELECT haematite.append_batch(convert_to(cyrillic_1024, 'UTF8'), ARRAY['\x02']::bytea[], 1) FROM long_keys;
SELECT haematite.cas(cyrillic_1024, NULL, 3) FROM long_keys;
SELECT haematite.read_value(convert_to(cyrillic_1024, 'UTF8')) FROM long_keys;
SELECT count(*) FROM long_keys, haematite.read(cyrillic_1024);
SELECT tables_digest() AS digest_before \gset

-- 1025 and 1026 bytes: every function rejects the key.
SELECT statements.call, sqlstate, message, detail
FROM long_keys,
     LATERAL (VALUES
         (1, 'append text 1025', format($$SELECT haematite.append(%L::text, '\x01', 0)$$, key_1025)),
         (2, 'append bytea 1025', format($$SELECT haematite.append(%L::bytea, '\x01', 0)$$, key_1025)),
         (3, 'append text 1026', format($$SELECT haematite.append(%L::text, '\x01', 0)$$, cyrillic_1026)),
         (4, 'append_batch text', format($$SELECT haematite.append_batch(%L::text, ARRAY['\x01']::bytea[], 0)$$, key_1025)),
         (5, 'append_batch bytea empty', format($$SELECT haematite.append_batch(%L::bytea, ARRAY[]::bytea[], 0)$$, key_1025)),
         (6, 'read text', format($$SELECT * FROM haematite.read(%L::text)$$, key_1025)),
         (7, 'read bytea', format($$SELECT * FROM haematite.read(%L::bytea)$$, key_1025)),
         (8, 'read_from text', format($$SELECT * FROM haematite.read_from(%L::text, 0)$$, key_1025)),
         (9, 'read_from bytea', format($$SELECT * FROM haematite.read_from(%L::bytea, 0, 1)$$, key_1025)),
         (10, 'next_seq text', format($$SELECT haematite.next_seq(%L::text)$$, key_1025)),
         (11, 'next_seq bytea', format($$SELECT haematite.next_seq(%L::bytea)$$, key_1025)),
         (12, 'cas text', format($$SELECT haematite.cas(%L::text, NULL, 1)$$, key_1025)),
         (13, 'cas bytea', format($$SELECT haematite.cas(%L::bytea, NULL, 1)$$, key_1025)),
         (14, 'read_value text', format($$SELECT haematite.read_value(%L::text)$$, key_1025)),
         (15, 'read_value bytea', format($$SELECT haematite.read_value(%L::bytea)$$, key_1025)),
         (16, 'read_value text 1026', format($$SELECT haematite.read_value(%L::text)$$, cyrillic_1026))
     ) AS statements(position, call, statement),
     LATERAL capture_error(statements.statement)
ORDER BY statements.position;

-- A key of 100000 bytes is rejected the same way.
SELECT *
FROM capture_error(format($$SELECT haematite.append(%L::text, '\x01', 0)$$, repeat('x', 100000)));

SELECT tables_digest() = :'digest_before' AS nothing_written;

--
-- The optional arguments accept NULL as their default: no TTL, no max_count,
-- no max_events.  cas with expected NULL creates the key.
--

SELECT haematite.append('args/defaults', '\x01', 0, NULL);
SELECT haematite.append_batch('args/defaults', ARRAY['\x02']::bytea[], 1, NULL);
SELECT seq FROM haematite.read_from('args/defaults', 0, NULL);
SELECT haematite.cas('args/defaults', NULL, 0);
SELECT haematite.read_value('args/defaults');
SELECT haematite.sweep(NULL) >= 0 AS sweep_ran;

DROP TABLE long_keys;
