-- W2 floor: one prepared index range query on the floor table.
\set stream random(:first, :last)
SELECT seq, payload, appended_at FROM bench.floor_events WHERE stream_key = :stream AND seq >= :from ORDER BY seq LIMIT :count;
