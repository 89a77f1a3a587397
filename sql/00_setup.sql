--
-- Install the extension and the helper that the later files use to show
-- errors.  The files run in name order in one database and share this setup.
--

-- Stream and key names in messages are printed as text only when their bytes
-- are valid in the database encoding, so the expected output assumes UTF8.
SELECT getdatabaseencoding();

CREATE EXTENSION haematite;

-- The extension is not relocatable.  Its objects live in schema haematite,
-- which the install script creates as a member of the extension, so that
-- DROP EXTENSION removes it too.
SELECT extname, extrelocatable FROM pg_extension WHERE extname = 'haematite';
SELECT n.nspname, d.deptype
FROM pg_depend d
JOIN pg_namespace n ON n.oid = d.objid
WHERE d.classid = 'pg_namespace'::regclass
  AND d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'haematite');

-- capture_error runs one statement and returns the SQLSTATE, message and
-- DETAIL of the error that it raises, so that the expected output shows all
-- three.  A statement that succeeds returns the row ('00000', 'no error', ''),
-- which marks a missing error in a diff.  The statement runs in a
-- subtransaction, so the caller's transaction goes on after the error.
CREATE FUNCTION capture_error(statement text,
                              OUT sqlstate text,
                              OUT message text,
                              OUT detail text)
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE statement;
    capture_error.sqlstate := '00000';
    message := 'no error';
    detail := '';
EXCEPTION
    WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS capture_error.sqlstate = RETURNED_SQLSTATE,
                                message = MESSAGE_TEXT,
                                detail = PG_EXCEPTION_DETAIL;
END
$$;

-- The helper itself: an error shows its SQLSTATE, a success shows 00000.
SELECT * FROM capture_error('SELECT 1 / 0');
SELECT * FROM capture_error('SELECT 1');

-- stream_rows counts the rows that the event table and the head table hold
-- for one stream, read directly as superuser.  After a failed call both
-- counts must be what they were before it.
CREATE FUNCTION stream_rows(stream_key bytea,
                            OUT event_rows bigint,
                            OUT head_rows bigint)
LANGUAGE sql
AS $$
    SELECT (SELECT count(*) FROM haematite.events e
            WHERE e.stream_key = stream_rows.stream_key),
           (SELECT count(*) FROM haematite.stream_heads h
            WHERE h.stream_key = stream_rows.stream_key)
$$;

-- tables_digest returns an md5 of every row of the three tables, read
-- directly as superuser.  A failed call must leave it unchanged.
CREATE FUNCTION tables_digest()
RETURNS text
LANGUAGE sql
AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(h::text, ',' ORDER BY h.stream_key)
         FROM haematite.stream_heads h),
        (SELECT string_agg(e::text, ',' ORDER BY e.stream_key, e.seq)
         FROM haematite.events e),
        (SELECT string_agg(v::text, ',' ORDER BY v.key)
         FROM haematite.scalar_values v)))
$$;
