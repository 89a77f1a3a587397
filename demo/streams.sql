-- Look at the imported streams: the busiest ones found by a prefix scan, and
-- one stream read back event by event.

\echo
\echo '== The five busiest streams, from haematite.scan(''dpkg/'')'

SELECT convert_from(stream_key, 'UTF8') AS stream,
	   next_seq AS events
FROM haematite.scan('dpkg/')
ORDER BY next_seq DESC, stream_key
LIMIT 5;

-- Show the postgresql-15 stream when the log has it (setup installs that
-- package), otherwise the busiest stream.
SELECT convert_from(stream_key, 'UTF8') AS shown_stream
FROM haematite.scan('dpkg/')
ORDER BY stream_key = convert_to('dpkg/postgresql-15', 'UTF8') DESC,
		 next_seq DESC,
		 stream_key
LIMIT 1 \gset

\echo
\echo '== One stream read back with haematite.read(':'shown_stream'') (at most 20 events)'

SELECT seq,
	   appended_at,
	   convert_from(payload, 'UTF8') AS payload
FROM haematite.read(:'shown_stream')
ORDER BY seq
LIMIT 20;
