--
-- cas and read_value: create, advance, mismatch, absent keys and the key
-- forms.
--

-- An absent key reads as NULL.
SELECT haematite.read_value('cas/cursor') IS NULL AS absent;

-- expected NULL creates the key.
SELECT haematite.cas('cas/cursor', NULL, 5);
SELECT haematite.read_value('cas/cursor');

-- The value moves to new_value when the current value equals expected.
SELECT haematite.cas('cas/cursor', 5, 6);
SELECT haematite.read_value('cas/cursor');

-- new_value may equal the current value, or be lower than it.
SELECT haematite.cas('cas/cursor', 6, 6);
SELECT haematite.cas('cas/cursor', 6, 2);
SELECT haematite.read_value('cas/cursor');

-- 0 and the bigint maximum are valid values.
SELECT haematite.cas('cas/cursor', 2, 0);
SELECT haematite.read_value('cas/cursor');
SELECT haematite.cas('cas/cursor', 0, 9223372036854775807);
SELECT haematite.read_value('cas/cursor');
SELECT haematite.cas('cas/cursor', 9223372036854775807, 7);

-- A mismatch raises SE002, names the expected and the actual value, and
-- writes nothing.
SELECT tables_digest() AS digest_before \gset
SELECT * FROM capture_error($$SELECT haematite.cas('cas/cursor', 5, 8)$$);
SELECT haematite.read_value('cas/cursor');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- expected NULL on an existing key is a mismatch with "absent" as expected.
SELECT * FROM capture_error($$SELECT haematite.cas('cas/cursor', NULL, 8)$$);
SELECT haematite.read_value('cas/cursor');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- A value expected on an absent key is a mismatch with "absent" as actual,
-- and does not create the key.
SELECT * FROM capture_error($$SELECT haematite.cas('cas/missing', 0, 1)$$);
SELECT haematite.read_value('cas/missing') IS NULL AS still_absent;
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- The text and bytea forms name one key.
SELECT haematite.cas('cas/forms'::text, NULL, 1);
SELECT haematite.cas('cas/forms'::bytea, 1, 2);
SELECT haematite.cas(convert_to('cas/forms', 'UTF8'), 2, 3);
SELECT haematite.read_value('cas/forms'::text) AS text_form,
       haematite.read_value('cas/forms'::bytea) AS bytea_form;
SELECT * FROM capture_error($$SELECT haematite.cas('cas/forms'::bytea, NULL, 1)$$);

-- Binary keys work, and messages print them in hex.
SELECT haematite.cas('\x00ff'::bytea, NULL, 10);
SELECT haematite.read_value('\x00ff'::bytea) AS key_00ff,
       haematite.read_value('\x00'::bytea) IS NULL AS key_00_absent;
SELECT * FROM capture_error($$SELECT haematite.cas('\x00ff'::bytea, 11, 12)$$);
SELECT * FROM capture_error($$SELECT haematite.cas('\xff'::bytea, 11, 12)$$);

-- A 1024-byte key is accepted.
SELECT haematite.cas(repeat('v', 1024), NULL, 1);
SELECT haematite.read_value(repeat('v', 1024));

-- Values and streams are separate: a value key is not a stream, and a stream
-- key is not a value.
SELECT haematite.append('cas/shared', '\x01', 0);
SELECT haematite.cas('cas/shared', NULL, 40);
SELECT haematite.next_seq('cas/shared') AS stream_next_seq,
       haematite.read_value('cas/shared') AS value;
SELECT haematite.next_seq('cas/cursor') AS next_seq_of_value_key;

-- Reading a value writes nothing.
SELECT tables_digest() AS digest_before \gset
SELECT haematite.read_value('cas/cursor');
SELECT haematite.read_value('cas/never') IS NULL AS absent;
SELECT tables_digest() = :'digest_before' AS nothing_written;
