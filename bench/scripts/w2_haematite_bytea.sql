-- W2 haematite, bytea key: read_from of a random pre-filled stream.
\set stream random(:first, :last)
SELECT * FROM haematite.read_from(:stream::bytea, :from, :count);
