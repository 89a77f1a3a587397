-- The cursors behind read, read_from and scan, as seen by a reader that runs
-- its own PL/pgSQL between the rows of a read.
--
-- These functions return rows from a cursor (a portal) that they keep open
-- across calls and refill every 1000 rows.  The portal belongs to the
-- caller's session, so the caller can see it in pg_cursors and run code
-- between two rows: a PL/pgSQL function in the same select list.  Such code
-- must neither break a read of more than 1000 rows nor make haematite return
-- rows that the caller put into a cursor of its own under the same name.
--
-- Run with pg_prove, as a superuser, in a database where the pgtap and
-- haematite extensions exist.  Everything is rolled back.

BEGIN;

SELECT plan(6);

CREATE ROLE haematite_sec_cursor_reader;
GRANT USAGE ON SCHEMA haematite TO haematite_sec_cursor_reader;
GRANT EXECUTE ON FUNCTION
    haematite.read(bytea), haematite.read(text),
    haematite.read_from(bytea, bigint, integer), haematite.read_from(text, bigint, integer),
    haematite.next_seq(bytea), haematite.next_seq(text),
    haematite.read_value(bytea), haematite.read_value(text),
    haematite.scan(bytea), haematite.scan(text), haematite.scan()
TO haematite_sec_cursor_reader;

-- 2500 events in one stream, and 1500 streams under one prefix: both more
-- than one batch of the cursor.
DO $$
BEGIN
    PERFORM haematite.append_batch('cur/s',
                                   array_fill('\x0102'::bytea, ARRAY[2500]), 0);
    PERFORM haematite.append(format('cur/k%s', lpad(i::text, 4, '0')), '\x01', 0)
    FROM generate_series(1, 1500) AS i;
END
$$;

SET ROLE haematite_sec_cursor_reader;

-- Summarise the rows (seq, payload) of a query as 'count=N sum=S payloads=P',
-- P being the distinct payloads, or return 'error' and the SQLSTATE.
CREATE FUNCTION pg_temp.outcome(query text) RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    summary text;
BEGIN
    EXECUTE format(
        'SELECT format(''count=%%s sum=%%s payloads=%%s'', count(*), sum(seq),
                       string_agg(DISTINCT payload::text, '',''))
         FROM (%s) AS q(seq, payload)', query)
    INTO summary;
    RETURN summary;
EXCEPTION
    WHEN OTHERS THEN
        RETURN 'error ' || SQLSTATE;
END
$$;

-- Code run between rows: a PL/pgSQL function that does nothing.
CREATE FUNCTION pg_temp.pass_through(n bigint) RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN n;
END
$$;

-- Code run between rows that, once per statement, replaces every open
-- cursor by one of the caller's with the same name, whose rows have other
-- column types: the second column would be read as the varlena header of a
-- bytea.  The setting sec_test.swapped records that it has run.
CREATE FUNCTION pg_temp.swap_cursors(n bigint) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    names text[];
    name text;
    substitute refcursor;
BEGIN
    IF current_setting('sec_test.swapped') = 'no' THEN
        PERFORM set_config('sec_test.swapped', 'yes', false);
        SELECT array_agg(c.name) INTO names FROM pg_cursors AS c;
        FOREACH name IN ARRAY coalesce(names, '{}') LOOP
            substitute := name;
            CLOSE substitute;
            OPEN substitute FOR
                SELECT 7::bigint, 48::bigint, 7::bigint FROM generate_series(1, 3000);
        END LOOP;
    END IF;
    RETURN n;
END
$$;

SELECT is(pg_temp.outcome(
              $$SELECT pg_temp.pass_through((r).seq), (r).payload
                FROM (SELECT haematite.read('cur/s') AS r OFFSET 0) AS s$$),
          'count=2500 sum=3123750 payloads=\x0102',
          'read of 2500 events with PL/pgSQL run between rows returns every event');

SELECT is(pg_temp.outcome(
              $$SELECT pg_temp.pass_through((r).seq), (r).payload
                FROM (SELECT haematite.read_from('cur/s'::bytea, 10) AS r OFFSET 0) AS s$$),
          'count=2490 sum=3123705 payloads=\x0102',
          'read_from of 2490 events with PL/pgSQL run between rows returns every event');

SELECT is(pg_temp.outcome(
              $$SELECT pg_temp.pass_through((r).next_seq), '\x01'::bytea
                FROM (SELECT haematite.scan('cur/k') AS r OFFSET 0) AS s$$),
          'count=1500 sum=1500 payloads=\x01',
          'scan of 1500 streams with PL/pgSQL run between rows returns every stream');

-- Replacing the cursor must either fail or leave the result unchanged.
SET sec_test.swapped = 'no';
SELECT pg_temp.outcome(
           $$SELECT pg_temp.swap_cursors((r).seq), (r).payload
             FROM (SELECT haematite.read('cur/s') AS r OFFSET 0) AS s$$) AS swapped_read \gset
SELECT ok(:'swapped_read' = 'count=2500 sum=3123750 payloads=\x0102'
          OR :'swapped_read' LIKE 'error %',
          'read whose cursor the caller replaces returns the stream or fails');

SET sec_test.swapped = 'no';
SELECT pg_temp.outcome(
           $$SELECT pg_temp.swap_cursors((r).next_seq), '\x01'::bytea
             FROM (SELECT haematite.scan('cur/k') AS r OFFSET 0) AS s$$) AS swapped_scan \gset
SELECT ok(:'swapped_scan' = 'count=1500 sum=1500 payloads=\x01'
          OR :'swapped_scan' LIKE 'error %',
          'scan whose cursor the caller replaces returns the streams or fails');

-- A read that the caller stops early closes its cursor at once.
SELECT count(*) FROM (SELECT haematite.read('cur/s') LIMIT 3) AS r \gset early_
SELECT is((SELECT count(*) FROM pg_cursors), 0::bigint,
          'reads stopped by LIMIT leave no cursor open');

RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
