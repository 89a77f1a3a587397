-- W3 haematite: append_batch of 100 payloads sent as one bytea[] parameter.
\set stream :base + :client_id * 1000 + :n % 100
\set seq (:n / 100) * 100
SELECT haematite.append_batch(:stream::bytea, :batch, :seq);
\set n :n + 1
