-- Import the dpkg log from standard input into haematite streams.
--
-- dpkg writes one line per step, for example:
--
--   2024-05-01 12:00:00 startup archives unpack
--   2024-05-01 12:00:00 install foo:amd64 <none> 1.2-3
--   2024-05-01 12:00:00 status half-installed foo:amd64 1.2-3
--   2024-05-01 12:00:01 configure foo:amd64 1.2-3 <none>
--   2024-05-01 12:00:01 trigproc man-db:amd64 2.11.2-2 <none>
--
-- Every line that names a package becomes one event in the stream
-- dpkg/<package>. The package name is taken without its ":arch" suffix, so
-- foo:amd64 and foo:i386 share the stream dpkg/foo. The payload is the raw
-- line, which still contains the architecture. Lines that name no package
-- ("startup ..." and "conffile ..." lines) are counted and skipped.
-- Events keep the order of the log inside each stream.

\echo '== Importing the dpkg log'

-- Read the file as whole lines. CSV with the control characters 0x01 as
-- delimiter and 0x02 as quote keeps every byte of a line as it is,
-- backslashes included. dpkg does not write those two characters. A line
-- with 0x01 in it would make \copy fail, and a pair of 0x02 in one line would
-- be dropped from it.
-- The identity column numbers the lines in file order.
CREATE TEMPORARY TABLE dpkg_log_line (
	line_no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	line text
);
\copy dpkg_log_line (line) FROM pstdin WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')

-- The third field is the action. A "status" line names the package in the
-- fifth field, after the new state. Install, upgrade, configure, remove,
-- purge and trigproc lines name it in the fourth.
CREATE TEMPORARY TABLE dpkg_event AS
SELECT line_no,
	   split_part(split_part(line, ' ', CASE WHEN action = 'status' THEN 5 ELSE 4 END),
				  ':', 1) AS package,
	   line
FROM (SELECT line_no, line, split_part(line, ' ', 3) AS action
	  FROM dpkg_log_line
	  WHERE line IS NOT NULL) AS parsed
WHERE action IN ('status', 'install', 'upgrade', 'configure', 'remove',
				 'purge', 'trigproc');

DELETE FROM dpkg_event WHERE package = '';

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM dpkg_event) THEN
		RAISE EXCEPTION 'no line of the dpkg log names a package'
			USING HINT = 'Check that the file is a dpkg log such as /var/log/dpkg.log.';
	END IF;
END
$$;

-- The lines of each package in log order, cut into batches of at most 1000
-- so that one append_batch call stays small however long the log is.
CREATE TEMPORARY TABLE dpkg_batch AS
SELECT stream_key,
	   batch_no,
	   array_agg(convert_to(line, 'UTF8') ORDER BY line_no) AS payloads
FROM (SELECT 'dpkg/' || package AS stream_key,
			 (row_number() OVER (PARTITION BY package ORDER BY line_no) - 1) / 1000
				 AS batch_no,
			 line_no,
			 line
	  FROM dpkg_event) AS numbered
GROUP BY stream_key, batch_no;

CREATE TEMPORARY TABLE dpkg_import (
	stream_key text,
	expected_seq bigint,
	next_seq bigint
);

-- Append the batches in order. Each call expects the stream's next sequence
-- as read just before it: a stream that already had events gets the new ones
-- after them, and a concurrent writer would make append_batch raise SE001
-- instead of interleaving its events with these.
DO $$
DECLARE
	batch record;
	expected_seq bigint;
BEGIN
	FOR batch IN SELECT * FROM dpkg_batch ORDER BY stream_key, batch_no LOOP
		expected_seq := haematite.next_seq(batch.stream_key);
		INSERT INTO dpkg_import (stream_key, expected_seq, next_seq)
		VALUES (batch.stream_key, expected_seq,
				haematite.append_batch(batch.stream_key, batch.payloads, expected_seq));
	END LOOP;
END
$$;

-- What was imported, counted three ways: from the log, from the values that
-- append_batch returned, and from haematite's own stream heads.
SELECT (SELECT count(*) FROM dpkg_log_line) AS "log lines",
	   (SELECT count(*) FROM dpkg_log_line) - (SELECT count(*) FROM dpkg_event)
		   AS "lines without a package",
	   (SELECT count(DISTINCT stream_key) FROM dpkg_import) AS "streams",
	   (SELECT count(*) FROM dpkg_import) AS "append_batch calls",
	   (SELECT sum(next_seq - expected_seq) FROM dpkg_import) AS "events appended",
	   (SELECT sum(next_seq) FROM haematite.scan('dpkg/')) AS "events in scan('dpkg/')";
