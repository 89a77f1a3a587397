-- Pre-fill streams for the read, growth, scan and memory workloads.
--
-- psql variables: first (key of the first stream, as a number), streams,
-- events (per stream), payload_bytes, haematite (true to fill haematite's
-- tables) and baselines (true to fill the floor and PL/pgSQL baseline tables
-- with the same events).
--
-- Stream keys are the decimal digits of first, first + 1, ...; with first
-- chosen so that every key has the same number of digits, key order is
-- numeric order and each stream's rows are inserted in primary key order.
-- haematite.events and haematite.stream_heads are written directly, as a
-- superuser, keeping the invariant the extension relies on: a head's
-- next_seq is the number of events in its stream, all of them live.

\set ON_ERROR_STOP on

CREATE TEMPORARY VIEW fill_events AS
SELECT convert_to((:first + s)::text, 'UTF8') AS stream_key, q AS seq,
	   convert_to(repeat('x', :payload_bytes), 'UTF8') AS payload,
	   now() AS appended_at
FROM generate_series(0, :streams - 1) AS s,
	 LATERAL generate_series(0, :events - 1 + 0 * s) AS q;

CREATE TEMPORARY VIEW fill_heads AS
SELECT convert_to((:first + s)::text, 'UTF8') AS stream_key,
	   :events::bigint AS next_seq, now() AS last_appended_at,
	   'infinity'::timestamptz AS live_until
FROM generate_series(0, :streams - 1) AS s;

\if :haematite
INSERT INTO haematite.events (stream_key, seq, payload, appended_at)
SELECT * FROM fill_events;
INSERT INTO haematite.stream_heads
	(stream_key, next_seq, last_appended_at, live_until)
SELECT * FROM fill_heads;
\endif

\if :baselines
INSERT INTO bench.floor_events (stream_key, seq, payload, appended_at)
SELECT * FROM fill_events;
INSERT INTO bench.sql_events (stream_key, seq, payload, appended_at)
SELECT * FROM fill_events;
INSERT INTO bench.sql_heads
	(stream_key, next_seq, last_appended_at, live_until)
SELECT * FROM fill_heads;
\endif

VACUUM ANALYZE;
