-- W2 PL/pgSQL baseline: the same read_from written in PL/pgSQL.
\set stream random(:first, :last)
SELECT * FROM bench.sql_read_from(:stream, :from, :count);
