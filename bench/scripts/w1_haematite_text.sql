-- W1 haematite, untyped key: the key parameter has no type, as many drivers
-- send it, so PostgreSQL resolves the call to the text overload.
\set stream :base + :client_id * 1000 + :n % 100
\set seq :n / 100
SELECT haematite.append(:stream, :payload, :seq);
\set n :n + 1
