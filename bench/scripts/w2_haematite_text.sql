-- W2 haematite, untyped key: resolved to the text overload of read_from.
\set stream random(:first, :last)
SELECT * FROM haematite.read_from(:stream, :from, :count);
