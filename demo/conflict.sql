-- A writer with a stale view of a stream: it appends with an expected
-- sequence that is one behind the stream's next sequence. haematite raises
-- SE001 with the two numbers in DETAIL and writes nothing; a real writer
-- would read next_seq again, re-check its decision and retry.

\echo
\echo '== A stale append to' :'shown_stream'

SELECT haematite.next_seq(:'shown_stream') AS next_seq_before \gset

-- The DO block catches the error, so the demo goes on, and prints what a
-- client receives: SQLSTATE, message and DETAIL. Any other outcome, including a
-- successful append, stops the demo with an error.
SET demo.stream = :'shown_stream';
DO $$
DECLARE
	stream text := current_setting('demo.stream');
	stale_seq bigint := haematite.next_seq(stream) - 1;
	error_state text;
	error_message text;
	error_detail text;
BEGIN
	PERFORM haematite.append(stream, convert_to('stale write', 'UTF8'), stale_seq);
	RAISE EXCEPTION 'append with stale expected sequence % was accepted', stale_seq;
EXCEPTION
	WHEN SQLSTATE 'SE001' THEN
		GET STACKED DIAGNOSTICS error_state = RETURNED_SQLSTATE,
								error_message = MESSAGE_TEXT,
								error_detail = PG_EXCEPTION_DETAIL;
		RAISE NOTICE 'append(%, ..., expected_seq => %) raised SQLSTATE %: %',
			stream, stale_seq, error_state, error_message
			USING DETAIL = error_detail;
END
$$;
RESET demo.stream;

\echo
\echo 'Nothing was written: next_seq is unchanged.'
SELECT :next_seq_before AS "next_seq before",
	   haematite.next_seq(:'shown_stream') AS "next_seq after";
