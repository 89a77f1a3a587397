-- W1 PL/pgSQL baseline: the same append written in PL/pgSQL.
\set stream :base + :client_id * 1000 + :n % 100
\set seq :n / 100
SELECT bench.sql_append(:stream, :payload, :seq);
\set n :n + 1
