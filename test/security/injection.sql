-- Keys and payloads that look like SQL: quotes, backslashes, semicolons,
-- comment markers, dollar quotes, psql variables, LIKE wildcards, control
-- characters, NUL and invalid UTF-8 bytes.  haematite passes keys and
-- payloads to its queries as parameters, never as query text, so each one
-- must be stored and returned byte for byte, and nothing else may change.
--
-- Run with pg_prove, as a superuser, in a database where the pgtap and
-- haematite extensions exist.  Everything is rolled back.

BEGIN;

SELECT plan(236);

-- key_text is the key for the text overloads (NULL for keys that are not
-- valid text); key_bytes is the key itself.
CREATE TEMP TABLE injection_key (
    id int PRIMARY KEY,
    label text NOT NULL,
    key_text text,
    key_bytes bytea NOT NULL
);

INSERT INTO injection_key (id, label, key_text, key_bytes)
SELECT id, label, key_text, convert_to(key_text, 'UTF8')
FROM (VALUES
    (1, 'statement terminator and DROP TABLE', $k$'); DROP TABLE haematite.events; --$k$),
    (2, 'always-true condition', $k$x' OR '1'='1$k$),
    (3, 'single quote inside a word', $k$O'Reilly$k$),
    (4, 'backslashes', $k$back\slash\\ \x41 \'$k$),
    (5, 'semicolons', $k$semi;colon; SELECT 1;$k$),
    (6, 'double quotes', $k$"double" "quotes"$k$),
    (7, 'dollar quotes and parameter markers', $k$$1 $2 $$ $q$ $q$$k$),
    (8, 'LIKE wildcards', $k$%_ LIKE pattern \% \_$k$),
    (9, 'comment markers', $k$*/ /* -- comment$k$),
    (10, 'psql variables', $k$:'psql_var' :"ident" :plain$k$),
    (11, 'escape string syntax', $k$E'\x41\n'$k$),
    (12, 'multibyte characters', 'ключ/値/🔑'),
    (13, 'tab and newline', E'tab\there\nnew line'),
    (14, 'single quote alone', ''''),
    (15, 'backslash alone', '\'),
    (16, 'semicolon alone', ';'),
    (17, '1024 single quotes', repeat('''', 1024)),
    (18, 'format placeholders', '%s %I %L %1$s'),
    (19, 'trailing space', 'trailing space '))
    AS k(id, label, key_text);

INSERT INTO injection_key (id, label, key_text, key_bytes)
VALUES
    (20, 'a NUL byte', NULL, '\x00'),
    (21, 'quote, NUL, semicolon', NULL, '\x27003b'),
    (22, 'invalid UTF-8, backslash, quote', NULL, '\xff5c27'),
    (23, 'NUL then DROP TABLE', NULL, '\x00' || convert_to('''); DROP TABLE haematite.events; --', 'UTF8'));

-- A payload that is SQL too.
CREATE TEMP TABLE fragment AS
SELECT convert_to($f$'); DELETE FROM haematite.stream_heads; --$f$, 'UTF8') AS payload;

SELECT is(octet_length(key_bytes) BETWEEN 1 AND 1024, true,
          format('key %s is a valid key length', id))
FROM injection_key ORDER BY id;

-- Each key: one append (through the text overload when the key is text),
-- then a batch of two through the bytea overload.
SELECT is(CASE WHEN key_text IS NOT NULL
               THEN haematite.append(key_text, key_bytes, 0)
               ELSE haematite.append(key_bytes, key_bytes, 0) END,
          1::bigint,
          format('key %s (%s): append returns 1', id, label))
FROM injection_key ORDER BY id;

SELECT is(haematite.append_batch(key_bytes, ARRAY[(SELECT payload FROM fragment), key_bytes], 1),
          3::bigint,
          format('key %s (%s): append_batch returns 3', id, label))
FROM injection_key ORDER BY id;

SELECT is(CASE WHEN key_text IS NOT NULL
               THEN haematite.next_seq(key_text)
               ELSE haematite.next_seq(key_bytes) END,
          3::bigint,
          format('key %s (%s): next_seq returns 3', id, label))
FROM injection_key ORDER BY id;

SELECT is((SELECT array_agg(r.payload ORDER BY r.seq)
           FROM haematite.read(k.key_bytes) AS r),
          ARRAY[k.key_bytes, (SELECT payload FROM fragment), k.key_bytes],
          format('key %s (%s): read returns the payloads unchanged', k.id, k.label))
FROM injection_key AS k ORDER BY k.id;

SELECT is((SELECT array_agg(r.seq ORDER BY r.seq)
           FROM haematite.read_from(k.key_bytes, 1, 1) AS r),
          ARRAY[1::bigint],
          format('key %s (%s): read_from returns seq 1 only', k.id, k.label))
FROM injection_key AS k ORDER BY k.id;

SELECT is((SELECT count(*) FROM (
               SELECT CASE WHEN key_text IS NOT NULL
                           THEN haematite.cas(key_text, NULL, id)
                           END,
                      CASE WHEN key_text IS NULL
                           THEN haematite.cas(key_bytes, NULL, id)
                           END
               FROM injection_key) AS c),
          23::bigint,
          'cas creates a value for every key');

SELECT is((SELECT count(*) FROM (
               SELECT haematite.cas(key_bytes, id, id + 100) FROM injection_key) AS c),
          23::bigint,
          'cas through the bytea overload updates every value');

SELECT is(CASE WHEN key_text IS NOT NULL
               THEN haematite.read_value(key_text)
               ELSE haematite.read_value(key_bytes) END,
          id + 100::bigint,
          format('key %s (%s): read_value returns the value set by cas', id, label))
FROM injection_key ORDER BY id;

-- scan with the key as prefix returns exactly the keys that start with it.
SELECT is((SELECT array_agg(s.stream_key ORDER BY s.stream_key)
           FROM haematite.scan(k.key_bytes) AS s),
          (SELECT array_agg(o.key_bytes ORDER BY o.key_bytes)
           FROM injection_key AS o
           WHERE substr(o.key_bytes, 1, octet_length(k.key_bytes)) = k.key_bytes),
          format('key %s (%s): scan with the key as prefix returns the keys that start with it',
                 k.id, k.label))
FROM injection_key AS k ORDER BY k.id;

SELECT is((SELECT array_agg(e.seq ORDER BY e.seq) FROM haematite.events AS e
           WHERE e.stream_key = k.key_bytes),
          ARRAY[0, 1, 2]::bigint[],
          format('key %s (%s): the event table holds the key byte for byte', k.id, k.label))
FROM injection_key AS k ORDER BY k.id;

-- Nothing but the keys' own rows was written or dropped.
SELECT is((SELECT count(*) FROM haematite.stream_heads), 23::bigint,
          'the head table holds one row per key');
SELECT is((SELECT count(*) FROM haematite.events), 69::bigint,
          'the event table holds three rows per key');
SELECT is((SELECT count(*) FROM haematite.scalar_values), 23::bigint,
          'the value table holds one row per key');
SELECT tables_are('haematite', ARRAY['stream_heads', 'events', 'scalar_values'],
                  'schema haematite still has exactly its three tables');

-- Error messages show the key unchanged, as quoted text or as hex; nothing
-- in it is interpreted.
CREATE FUNCTION pg_temp.error_of(statement text) RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION
    WHEN OTHERS THEN
        RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SELECT ok(pg_temp.error_of(format('SELECT haematite.append(%L::bytea, %L::bytea, 0)',
                                  key_bytes, '\x01'))
          IN (format('SE001: sequence conflict on stream "%s"', key_text),
              format('SE001: sequence conflict on stream \x%s', encode(key_bytes, 'hex'))),
          format('key %s (%s): SE001 names the key unchanged', id, label))
FROM injection_key ORDER BY id;

SELECT * FROM finish();
ROLLBACK;
