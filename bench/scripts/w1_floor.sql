-- W1 floor: one prepared INSERT of one event. Each client appends to its own
-- 100 streams in turn and supplies the seq itself, so nothing is checked.
\set stream :base + :client_id * 1000 + :n % 100
\set seq :n / 100
INSERT INTO bench.floor_events (stream_key, seq, payload, appended_at) VALUES (:stream, :seq, :payload, now());
\set n :n + 1
