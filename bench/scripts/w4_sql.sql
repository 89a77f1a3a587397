-- W4 PL/pgSQL baseline: the hot stream of w4_haematite.sql on the PL/pgSQL
-- baseline tables.
SELECT coalesce((SELECT next_seq FROM bench.sql_heads WHERE stream_key = :base::bytea), 0) AS expected \gset
SELECT bench.try_append_sql(:base::bytea, :payload, :expected);
