-- A consumer that processes every dpkg/ event exactly once, even when it is
-- stopped part-way and started again.
--
-- Design: one cursor per stream, kept with haematite.cas under the key
-- demo/consumer/<stream key> (for example demo/consumer/dpkg/bash). A cursor
-- holds the seq of the next event to process; an absent cursor means the
-- consumer has not started that stream yet. "Processing" an event here means
-- inserting (stream key, seq) into demo.processed, whose primary key would
-- reject a second insert of the same event.
--
-- Each batch is one transaction: read the cursor with read_value, read up to
-- 10 events from it with read_from, process them, move the cursor past the
-- last one with cas (expected: the value read at the start), and commit. The
-- processed rows and the cursor therefore commit together or not at all, and
-- if a second consumer had moved the cursor in the meantime, cas would raise
-- SE002 and the batch would roll back instead of being processed twice.

\echo
\echo '== Consumer: walk every stream with read_from, checkpoint with cas'

CREATE SCHEMA demo;

CREATE TABLE demo.processed (
	stream_key bytea,
	seq bigint,
	PRIMARY KEY (stream_key, seq)
);

-- Process at most max_events events (all when NULL), then stop.
-- processed returns the number of events this call processed.
CREATE PROCEDURE demo.consume(max_events bigint, INOUT processed bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
	batch_size constant integer := 10;
	current_stream bytea;
	cursor_key bytea;
	cursor_seq bigint;
	batch_limit integer;
	batch_count bigint;
	batch_end bigint;
BEGIN
	processed := 0;

	FOR current_stream IN SELECT s.stream_key FROM haematite.scan('dpkg/') AS s LOOP
		cursor_key := convert_to('demo/consumer/', 'UTF8') || current_stream;

		LOOP
			IF max_events IS NOT NULL AND processed >= max_events THEN
				RETURN;
			END IF;
			batch_limit := least(batch_size, max_events - processed);

			-- Resume where the last committed batch of this stream ended.
			cursor_seq := haematite.read_value(cursor_key);

			WITH batch AS (
				SELECT e.seq
				FROM haematite.read_from(current_stream, coalesce(cursor_seq, 0),
										 batch_limit) AS e
			), inserted AS (
				INSERT INTO demo.processed (stream_key, seq)
				SELECT current_stream, batch.seq FROM batch
				RETURNING seq
			)
			SELECT count(*), max(seq) + 1 INTO batch_count, batch_end
			FROM inserted;

			EXIT WHEN batch_count = 0;

			-- Checkpoint: NULL as expected value creates the cursor.
			PERFORM haematite.cas(cursor_key, cursor_seq, batch_end);
			COMMIT;
			processed := processed + batch_count;
		END LOOP;
	END LOOP;
END
$$;

SELECT sum(next_seq) AS total_events FROM haematite.scan('dpkg/') \gset
SELECT :total_events / 2 AS half_events \gset

\echo
\echo 'First run: process half of the events, then stop.'
CALL demo.consume(:half_events, NULL) \gset first_
\echo 'processed' :first_processed 'events'

-- Cursor positions after the stop. The last stream touched is normally
-- part-way through.
SELECT count(*) FILTER (WHERE cursor_seq = s.next_seq) AS "streams finished",
	   count(*) FILTER (WHERE cursor_seq < s.next_seq) AS "streams part-way",
	   count(*) FILTER (WHERE cursor_seq IS NULL) AS "streams not started"
FROM haematite.scan('dpkg/') AS s,
	 LATERAL haematite.read_value(convert_to('demo/consumer/', 'UTF8') || s.stream_key)
		 AS cursor_seq;

\echo
\echo 'Second run: resume from the cursors stored with cas.'
CALL demo.consume(NULL, NULL) \gset second_
\echo 'processed' :second_processed 'events'

\echo
\echo 'Third run: everything is processed, so it finds nothing to do.'
CALL demo.consume(NULL, NULL) \gset third_
\echo 'processed' :third_processed 'events'

-- Proof. demo.processed has a primary key on (stream key, seq), so an event
-- processed twice would have stopped the demo with a unique violation. The
-- checks below show that the counts add up and that no event was skipped.
\echo
\echo 'Checks (each ok must be t):'

WITH every_event AS (
	SELECT s.stream_key, e.seq
	FROM haematite.scan('dpkg/') AS s,
		 LATERAL haematite.read(s.stream_key) AS e
), checks (name, expected, actual) AS (
	VALUES
		('events processed by the three runs',
		 :total_events::bigint,
		 (:first_processed + :second_processed + :third_processed)::bigint),
		('rows in demo.processed',
		 :total_events::bigint,
		 (SELECT count(*) FROM demo.processed)),
		('events never processed',
		 0::bigint,
		 (SELECT count(*) FROM every_event AS e
		  WHERE NOT EXISTS (SELECT FROM demo.processed AS p
							WHERE p.stream_key = e.stream_key AND p.seq = e.seq))),
		('processed rows that match no event',
		 0::bigint,
		 (SELECT count(*) FROM demo.processed AS p
		  WHERE NOT EXISTS (SELECT FROM every_event AS e
							WHERE e.stream_key = p.stream_key AND e.seq = p.seq))),
		('cursors not at their stream''s next_seq',
		 0::bigint,
		 (SELECT count(*) FROM haematite.scan('dpkg/') AS s
		  WHERE haematite.read_value(convert_to('demo/consumer/', 'UTF8') || s.stream_key)
				IS DISTINCT FROM s.next_seq))
)
SELECT name AS check, expected, actual, expected = actual AS ok
FROM checks;
