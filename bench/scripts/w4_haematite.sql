-- W4 haematite: every client appends to the one stream keyed :base. Each
-- transaction reads next_seq, then tries one append with it. The wrapper
-- returns false on a sequence conflict (SE001), and the client tries again
-- in its next transaction.
SELECT haematite.next_seq(:base::bytea) AS expected \gset
SELECT bench.try_append_haematite(:base::bytea, :payload, :expected);
