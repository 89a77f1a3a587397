--
-- TTL: expiry at appended_at + ttl, the history compacted error (SE003),
-- next_seq across expiry, and sweep.
--

-- Delete the expired events that earlier files left, so that the sweep counts
-- below are exact.
SELECT haematite.sweep() >= 0 AS swept_earlier_events;

-- An event appended with ttl '0' is expired for every later statement.  Its
-- stream keeps next sequence 1, and read raises SE003.
SELECT haematite.append('ttl/zero', '\x01', 0, ttl => '0');
SELECT haematite.next_seq('ttl/zero');
SELECT * FROM capture_error($$SELECT * FROM haematite.read('ttl/zero')$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('ttl/zero', 0)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('ttl/zero'::bytea, 0, 5)$$);

-- Appends continue after the last seq ever written, not after the last live
-- one.
SELECT * FROM capture_error($$SELECT haematite.append('ttl/zero', '\x02', 0)$$);
SELECT haematite.append('ttl/zero', '\x02', 1);
SELECT seq, payload FROM haematite.read('ttl/zero');

-- A stream whose events have all expired: SE003 names from_seq and the next
-- sequence, for from_seq 0 and for a later from_seq.
SELECT haematite.append_batch('ttl/expired', ARRAY['\x01', '\x02', '\x03']::bytea[], 0, ttl => '0');
SELECT * FROM capture_error($$SELECT * FROM haematite.read('ttl/expired')$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('ttl/expired', 2)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('ttl/expired', 1, 1)$$);

-- No SE003 when from_seq is at or past the next sequence, or max_count is 0:
-- those reads ask for no existing event.
SELECT count(*) FROM haematite.read_from('ttl/expired', 3);
SELECT count(*) FROM haematite.read_from('ttl/expired', 10);
SELECT count(*) FROM haematite.read_from('ttl/expired', 0, 0);
SELECT haematite.next_seq('ttl/expired');

-- A partly expired stream returns only its live events: seqs 0 and 1 have
-- expired, seq 2 has no TTL and seq 3 lives for an hour.
SELECT haematite.append('ttl/partial', '\x00', 0, ttl => '0');
SELECT haematite.append('ttl/partial', '\x01', 1, ttl => '0');
SELECT haematite.append('ttl/partial', '\x02', 2);
SELECT haematite.append('ttl/partial', '\x03', 3, ttl => '1 hour');
SELECT seq, payload FROM haematite.read('ttl/partial');
SELECT seq, payload FROM haematite.read_from('ttl/partial', 0, 1);
SELECT seq, payload FROM haematite.read_from('ttl/partial', 1);
SELECT seq, payload FROM haematite.read_from('ttl/partial', 3);
SELECT haematite.next_seq('ttl/partial');

-- An expired event between live ones is skipped, and max_count counts only
-- the live events returned.
SELECT haematite.append('ttl/middle', '\x00', 0);
SELECT haematite.append('ttl/middle', '\x01', 1, ttl => '0');
SELECT haematite.append('ttl/middle', '\x02', 2);
SELECT seq, payload FROM haematite.read('ttl/middle');
SELECT seq, payload FROM haematite.read_from('ttl/middle', 0, 2);
SELECT seq, payload FROM haematite.read_from('ttl/middle', 1, 1);

-- Expired events after live ones: read returns the live head, and a read_from
-- that starts in the expired tail raises SE003.
SELECT haematite.append('ttl/tail', '\x00', 0);
SELECT haematite.append_batch('ttl/tail', ARRAY['\x01', '\x02']::bytea[], 1, ttl => '0');
SELECT seq, payload FROM haematite.read('ttl/tail');
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('ttl/tail', 1)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('ttl/tail', 2, 1)$$);

-- A TTL applies to every event of its batch.  The stored expiry is
-- appended_at + ttl.  Without a TTL, or with ttl NULL, there is none.
SELECT haematite.append_batch('ttl/hour', ARRAY['\x01', '\x02']::bytea[], 0, ttl => '1 hour');
SELECT haematite.append('ttl/hour', '\x03', 2, ttl => NULL);
SELECT haematite.append('ttl/hour', '\x04', 3);
SELECT haematite.append_batch('ttl/hour', ARRAY['\x05']::bytea[], 4, ttl => NULL);
SELECT seq,
       expires_at = appended_at + interval '1 hour' AS expires_after_an_hour,
       expires_at IS NULL AS never_expires
FROM haematite.events
WHERE stream_key = 'ttl/hour'::bytea
ORDER BY seq;
SELECT count(*) AS live FROM haematite.read('ttl/hour');

-- The text and bytea forms accept a TTL alike.
SELECT haematite.append('ttl/forms'::bytea, '\x01', 0, ttl => '0');
SELECT haematite.append('ttl/forms'::text, '\x02', 1, ttl => '1 day');
SELECT seq FROM haematite.read('ttl/forms');

-- A negative TTL is rejected (22023) and writes nothing.
SELECT tables_digest() AS digest_before \gset
SELECT * FROM capture_error($$SELECT haematite.append('ttl/negative', '\x01', 0, ttl => '-1 second')$$);
SELECT * FROM capture_error($$SELECT haematite.append('ttl/negative'::bytea, '\x01', 0, ttl => '-1 day')$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('ttl/negative', ARRAY['\x01']::bytea[], 0, ttl => '-00:00:00.000001')$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('ttl/hour'::bytea, ARRAY['\x01']::bytea[], 5, ttl => '-1 hour')$$);
SELECT * FROM stream_rows('ttl/negative');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- A TTL so large that the expiry leaves the timestamp range is rejected
-- (22023) and writes nothing.
SELECT * FROM capture_error($$SELECT haematite.append('ttl/negative', '\x01', 0, ttl => '300000 years')$$);
SELECT * FROM stream_rows('ttl/negative');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- Expired events stay in the table until sweep deletes them, because reads
-- do not delete them.
SELECT count(*) AS expired_rows
FROM haematite.events
WHERE expires_at <= statement_timestamp();

-- sweep honours max_events and returns how many events it deleted.  Ten
-- events have expired: 1 in ttl/zero, 3 in ttl/expired, 2 in ttl/partial, 1
-- in ttl/middle, 2 in ttl/tail and 1 in ttl/forms.
SELECT haematite.sweep(max_events => 0) AS swept;
SELECT haematite.sweep(4) AS swept;
SELECT haematite.sweep(3) AS swept;
SELECT haematite.sweep() AS swept;
SELECT haematite.sweep() AS swept;
SELECT haematite.sweep(NULL) AS swept;
SELECT count(*) AS expired_rows
FROM haematite.events
WHERE expires_at <= statement_timestamp();

-- Sweep deleted only expired events: the live ones read as before, and no
-- next sequence moved.
SELECT seq, payload FROM haematite.read('ttl/partial');
SELECT seq, payload FROM haematite.read('ttl/middle');
SELECT seq, payload FROM haematite.read('ttl/tail');
SELECT seq, payload FROM haematite.read('ttl/zero');
SELECT count(*) AS live FROM haematite.read('ttl/hour');
SELECT haematite.next_seq('ttl/zero') AS zero,
       haematite.next_seq('ttl/expired') AS expired,
       haematite.next_seq('ttl/partial') AS partial,
       haematite.next_seq('ttl/tail') AS tail;

-- After sweep the history is still compacted, with the same DETAIL.
SELECT * FROM capture_error($$SELECT * FROM haematite.read('ttl/expired')$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read_from('ttl/tail', 1)$$);

-- Appends continue after the swept events.
SELECT haematite.append('ttl/expired', '\x04', 3);
SELECT seq, payload FROM haematite.read('ttl/expired');
SELECT count(*) FROM haematite.read_from('ttl/expired', 0);
