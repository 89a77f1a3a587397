-- W6 floor: the bare index range query on haematite.stream_heads that returns
-- the same 10 streams: keys from the prefix up to the next prefix.
\set prefix random(:scan_first, :scan_last)
\set upper :prefix + 1
SELECT stream_key, next_seq FROM haematite.stream_heads WHERE stream_key >= :prefix AND stream_key < :upper ORDER BY stream_key;
