-- W1 haematite, bytea key: append with the expected sequence, on the same
-- streams pattern as the floor.
\set stream :base + :client_id * 1000 + :n % 100
\set seq :n / 100
SELECT haematite.append(:stream::bytea, :payload, :seq);
\set n :n + 1
