--
-- scan: prefix matching on bytes, key order, scan() of every stream and the
-- exclusion of streams without a live event.
--

-- scan() lists every stream in the database, so this file starts from empty
-- tables to keep its output independent of the other files.
TRUNCATE haematite.events, haematite.stream_heads;

SELECT haematite.append('orders/1', '\x01', 0);
SELECT haematite.append_batch('orders/2', ARRAY['\x01', '\x02']::bytea[], 0);
SELECT haematite.append_batch('orders/10', ARRAY['\x01', '\x02', '\x03']::bytea[], 0);
SELECT haematite.append('orders_x', '\x01', 0);
SELECT haematite.append('orders%x', '\x01', 0);
SELECT haematite.append('orders\x', '\x01', 0);
SELECT haematite.append('ordersX', '\x01', 0);
SELECT haematite.append('order', '\x01', 0);
SELECT haematite.append('payments/1', '\x01', 0);

-- A prefix returns the matching streams in key (byte) order with their next
-- sequence.
SELECT stream_key, convert_from(stream_key, 'UTF8') AS key_text, next_seq
FROM haematite.scan('orders/');

-- A whole key is a prefix of itself and of longer keys.
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq
FROM haematite.scan('orders/1');

-- "_", "%" and "\" are bytes, not patterns: each matches only itself.
SELECT convert_from(stream_key, 'UTF8') AS key_text FROM haematite.scan('orders_');
SELECT convert_from(stream_key, 'UTF8') AS key_text FROM haematite.scan('orders%');
SELECT convert_from(stream_key, 'UTF8') AS key_text FROM haematite.scan('orders\');
SELECT convert_from(stream_key, 'UTF8') AS key_text FROM haematite.scan('%');
SELECT convert_from(stream_key, 'UTF8') AS key_text FROM haematite.scan('_');

-- A shorter prefix returns every stream that starts with it.
SELECT convert_from(stream_key, 'UTF8') AS key_text FROM haematite.scan('order');

-- A prefix that matches nothing returns no rows.
SELECT count(*) FROM haematite.scan('invoices/');
SELECT count(*) FROM haematite.scan('orders/3');

-- The text and bytea forms of the prefix are the same bytes.
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq
FROM haematite.scan('orders/'::bytea);
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq
FROM haematite.scan(convert_to('orders/1', 'UTF8'));

-- A filter on the metadata is a WHERE clause.
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq
FROM haematite.scan('orders/')
WHERE next_seq > 1;

-- Binary keys sort by unsigned byte value.  A 0xff prefix still matches keys
-- that continue after it.
SELECT haematite.append('\x00'::bytea, '\x01', 0);
SELECT haematite.append('\x00ff'::bytea, '\x01', 0);
SELECT haematite.append('\x01'::bytea, '\x01', 0);
SELECT haematite.append('\x7f'::bytea, '\x01', 0);
SELECT haematite.append('\x80'::bytea, '\x01', 0);
SELECT haematite.append('\xff'::bytea, '\x01', 0);
SELECT haematite.append('\xff00'::bytea, '\x01', 0);
SELECT haematite.append('\xffff'::bytea, '\x01', 0);
SELECT stream_key FROM haematite.scan('\x00'::bytea);
SELECT stream_key FROM haematite.scan('\xff'::bytea);
SELECT stream_key FROM haematite.scan('\xffff'::bytea);
SELECT stream_key FROM haematite.scan('\x7f'::bytea);

-- scan() returns every stream with a live event, in key order.
SELECT stream_key, next_seq FROM haematite.scan();

-- scan() and scan of an empty prefix agree.
SELECT (SELECT array_agg(stream_key) FROM haematite.scan())
     = (SELECT array_agg(stream_key) FROM haematite.scan(''::bytea)) AS same_streams;

-- A stream whose events have all expired is left out, before and after sweep,
-- although its head row remains.
SELECT haematite.append_batch('ttl-scan/expired', ARRAY['\x01', '\x02']::bytea[], 0, ttl => '0');
SELECT count(*) FROM haematite.scan('ttl-scan/');
SELECT haematite.next_seq('ttl-scan/expired');

-- A stream is listed while any event is live: the latest expiry counts, not
-- the last event's.
SELECT haematite.append('ttl-scan/live-then-expired', '\x01', 0);
SELECT haematite.append('ttl-scan/live-then-expired', '\x02', 1, ttl => '0');
SELECT haematite.append('ttl-scan/hour-then-expired', '\x01', 0, ttl => '1 hour');
SELECT haematite.append('ttl-scan/hour-then-expired', '\x02', 1, ttl => '0');
SELECT haematite.append('ttl-scan/expired-then-hour', '\x01', 0, ttl => '0');
SELECT haematite.append('ttl-scan/expired-then-hour', '\x02', 1, ttl => '1 hour');
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq
FROM haematite.scan('ttl-scan/');

-- A stream whose expired events gain a live one is listed again.
SELECT haematite.append('ttl-scan/expired', '\x03', 2);
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq
FROM haematite.scan('ttl-scan/');

-- Sweeping the expired events changes nothing in the listing.
SELECT haematite.append('ttl-scan/gone', '\x01', 0, ttl => '0');
SELECT haematite.sweep() AS swept;
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq
FROM haematite.scan('ttl-scan/');

-- An empty batch on an absent stream creates nothing to list.
SELECT haematite.append_batch('ttl-scan/empty', ARRAY[]::bytea[], 0);
SELECT count(*) FROM haematite.scan('ttl-scan/empty');

-- A 1024-byte prefix matches the 1024-byte key equal to it.  A longer prefix
-- matches nothing, because no key is longer than 1024 bytes.
SELECT haematite.append(repeat('p', 1024), '\x01', 0);
SELECT length(stream_key) AS key_bytes, next_seq FROM haematite.scan(repeat('p', 1024));
SELECT length(stream_key) AS key_bytes, next_seq FROM haematite.scan(repeat('p', 1000));
SELECT count(*) FROM haematite.scan(repeat('p', 1025));
SELECT count(*) FROM haematite.scan(convert_to(repeat('p', 1025), 'UTF8'));
SELECT count(*) FROM haematite.scan(repeat('p', 100000));

-- A NULL prefix is rejected (22004) in both forms.
SELECT * FROM capture_error($$SELECT * FROM haematite.scan(NULL::text)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.scan(NULL::bytea)$$);

-- Scanning writes nothing.
SELECT tables_digest() AS digest_before \gset
SELECT count(*) FROM haematite.scan();
SELECT count(*) FROM haematite.scan('orders/');
SELECT tables_digest() = :'digest_before' AS nothing_written;
