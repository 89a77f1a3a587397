--
-- Stored data that breaks the extension's invariants, made by writing the
-- tables directly as superuser: an event row at a seq that the head row marks
-- as free (SE004), and a next sequence at the bigint maximum (22003).
--

--
-- SE004: an event row already sits at the stream's next sequence.
--

SELECT haematite.append_batch('integrity/corrupt', ARRAY['\x00', '\x01']::bytea[], 0);
INSERT INTO haematite.events (stream_key, seq, payload, appended_at, expires_at)
VALUES ('integrity/corrupt'::bytea, 2, '\xdead', now(), NULL);
SELECT tables_digest() AS digest_before \gset

-- append and append_batch at seq 2 find the row and raise SE004.  The stray
-- row keeps its payload and the next sequence stays 2.
SELECT * FROM capture_error($$SELECT haematite.append('integrity/corrupt', '\x02', 2)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('integrity/corrupt'::bytea, ARRAY['\x02', '\x03']::bytea[], 2)$$);
SELECT haematite.next_seq('integrity/corrupt');
SELECT seq, payload
FROM haematite.events
WHERE stream_key = 'integrity/corrupt'::bytea
ORDER BY seq;
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- A stray row at the second seq of a batch rejects the whole batch: seq 2 is
-- not written either.
DELETE FROM haematite.events
WHERE stream_key = 'integrity/corrupt'::bytea AND seq = 2;
INSERT INTO haematite.events (stream_key, seq, payload, appended_at, expires_at)
VALUES ('integrity/corrupt'::bytea, 3, '\xbeef', now(), NULL);
SELECT tables_digest() AS digest_before \gset
SELECT * FROM capture_error($$SELECT haematite.append_batch('integrity/corrupt', ARRAY['\x02', '\x03', '\x04']::bytea[], 2)$$);
SELECT seq, payload
FROM haematite.events
WHERE stream_key = 'integrity/corrupt'::bytea
ORDER BY seq;
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- A single append at seq 2 does not touch seq 3, so it succeeds.
SELECT haematite.append('integrity/corrupt', '\x02', 2);

-- An event row for a stream without a head row: without a head no event can
-- exist, so creating the stream raises SE004 and leaves no head row.
INSERT INTO haematite.events (stream_key, seq, payload, appended_at, expires_at)
VALUES ('integrity/orphan'::bytea, 0, '\xf00d', now(), NULL);
SELECT tables_digest() AS digest_before \gset
SELECT * FROM capture_error($$SELECT haematite.append('integrity/orphan', '\x00', 0)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('integrity/orphan', ARRAY['\x00']::bytea[], 0)$$);
SELECT * FROM stream_rows('integrity/orphan');
SELECT tables_digest() = :'digest_before' AS nothing_written;

DELETE FROM haematite.events WHERE stream_key = 'integrity/orphan'::bytea;

--
-- 22003: an append that would take the next sequence past the bigint maximum.
--

SELECT haematite.append('integrity/overflow', '\x00', 0);
UPDATE haematite.stream_heads
SET next_seq = 9223372036854775805
WHERE stream_key = 'integrity/overflow'::bytea;
SELECT tables_digest() AS digest_before \gset

-- Three events from 9223372036854775805 would need next sequence
-- 9223372036854775808: rejected, nothing written.
SELECT * FROM capture_error($$SELECT haematite.append_batch('integrity/overflow', ARRAY['\x01', '\x02', '\x03']::bytea[], 9223372036854775805)$$);
SELECT haematite.next_seq('integrity/overflow');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- Two events reach next sequence 9223372036854775807 exactly, which is valid.
SELECT haematite.append_batch('integrity/overflow', ARRAY['\x01', '\x02']::bytea[], 9223372036854775805);
SELECT seq, payload FROM haematite.read_from('integrity/overflow', 9223372036854775805);

-- No further event fits: append and a one-element batch are rejected, and
-- nothing is written.
SELECT tables_digest() AS digest_before \gset
SELECT * FROM capture_error($$SELECT haematite.append('integrity/overflow', '\x03', 9223372036854775807)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('integrity/overflow'::bytea, ARRAY['\x03']::bytea[], 9223372036854775807)$$);
SELECT haematite.next_seq('integrity/overflow');
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- An empty batch appends nothing, so it still succeeds at the maximum, and a
-- stale expected_seq is still a sequence conflict.
SELECT haematite.append_batch('integrity/overflow', ARRAY[]::bytea[], 9223372036854775807);
SELECT * FROM capture_error($$SELECT haematite.append('integrity/overflow', '\x03', 9223372036854775806)$$);
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- A read from the bigint maximum finds no event and raises nothing.
SELECT count(*) FROM haematite.read_from('integrity/overflow', 9223372036854775807);

--
-- appended_at never decreases along a stream, even when the clock is behind
-- the stream's last append (as after the system clock is stepped back): the
-- head row's last_appended_at, here moved a day ahead, is used instead.
--

SELECT haematite.append('integrity/clock', '\x00', 0);
UPDATE haematite.stream_heads
SET last_appended_at = last_appended_at + interval '1 day'
WHERE stream_key = 'integrity/clock'::bytea;
SELECT haematite.append('integrity/clock', '\x01', 1, ttl => '1 hour');
SELECT haematite.append_batch('integrity/clock', ARRAY['\x02', '\x03']::bytea[], 2);
SELECT seq,
       appended_at - first_value(appended_at) OVER (ORDER BY seq) AS after_first,
       expires_at - appended_at AS ttl
FROM haematite.events
WHERE stream_key = 'integrity/clock'::bytea
ORDER BY seq;
SELECT count(*) AS live FROM haematite.read('integrity/clock');

--
-- A trigger on haematite.events that skips rows would leave a gap behind a
-- head row that moved on.  The append raises SE004 instead, and rolls back
-- the head row with it.
--

SELECT haematite.append_batch('integrity/skipped', ARRAY['\x00']::bytea[], 0);
CREATE FUNCTION skip_odd_seqs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stream_key = 'integrity/skipped'::bytea AND NEW.seq % 2 = 1 THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER skip_odd_seqs BEFORE INSERT ON haematite.events
    FOR EACH ROW EXECUTE FUNCTION skip_odd_seqs();
SELECT * FROM capture_error($$SELECT haematite.append_batch('integrity/skipped', ARRAY['\x01', '\x02']::bytea[], 1)$$);
SELECT haematite.next_seq('integrity/skipped') AS next_seq,
       (SELECT count(*) FROM haematite.events
        WHERE stream_key = 'integrity/skipped'::bytea) AS events;
DROP TRIGGER skip_odd_seqs ON haematite.events;
DROP FUNCTION skip_odd_seqs();
