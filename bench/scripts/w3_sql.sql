-- W3 PL/pgSQL baseline: the same append_batch written in PL/pgSQL.
\set stream :base + :client_id * 1000 + :n % 100
\set seq (:n / 100) * 100
SELECT bench.sql_append_batch(:stream, :batch, :seq);
\set n :n + 1
