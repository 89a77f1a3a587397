-- W6 haematite: scan of a random 6-digit prefix, which matches the 10 streams
-- whose 7-digit keys start with it.
\set prefix random(:scan_first, :scan_last)
SELECT * FROM haematite.scan(:prefix::bytea);
