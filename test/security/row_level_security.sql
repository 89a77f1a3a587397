-- Row-level security on haematite's tables does not apply to its API.
--
-- The functions run as the extension owner, a superuser, and superusers
-- bypass row-level security, even on a table with FORCE ROW LEVEL SECURITY.
-- So a policy that hides or forbids rows changes nothing that a caller of
-- the functions reads or writes.  This test enables and forces row-level
-- security on all three tables with policies that hide one stream and one
-- value, and checks that a writer still reads and writes them through every
-- function.
--
-- Run with pg_prove, as a superuser, in a database where the pgtap and
-- haematite extensions exist.  Everything is rolled back.

BEGIN;

SELECT plan(14);

CREATE ROLE haematite_sec_rls_writer;
GRANT USAGE ON SCHEMA haematite TO haematite_sec_rls_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA haematite TO haematite_sec_rls_writer;

DO $$
BEGIN
    PERFORM haematite.append_batch('rls/open', ARRAY['\x01', '\x02']::bytea[], 0);
    PERFORM haematite.append('rls/secret', '\x0a', 0);
    PERFORM haematite.append('rls/secret', '\x0b', 1, '0 seconds');
    PERFORM haematite.cas('rls/secret-value', NULL, 1);
END
$$;

ALTER TABLE haematite.stream_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE haematite.stream_heads FORCE ROW LEVEL SECURITY;
ALTER TABLE haematite.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE haematite.events FORCE ROW LEVEL SECURITY;
ALTER TABLE haematite.scalar_values ENABLE ROW LEVEL SECURITY;
ALTER TABLE haematite.scalar_values FORCE ROW LEVEL SECURITY;

CREATE POLICY hide_secret ON haematite.stream_heads
    USING (stream_key <> 'rls/secret'::bytea)
    WITH CHECK (stream_key <> 'rls/secret'::bytea);
CREATE POLICY hide_secret ON haematite.events
    USING (stream_key <> 'rls/secret'::bytea)
    WITH CHECK (stream_key <> 'rls/secret'::bytea);
CREATE POLICY hide_secret ON haematite.scalar_values
    USING (key <> 'rls/secret-value'::bytea)
    WITH CHECK (key <> 'rls/secret-value'::bytea);

SELECT is((SELECT count(*)::int FROM pg_class
           WHERE relnamespace = 'haematite'::regnamespace
             AND relkind = 'r' AND relrowsecurity AND relforcerowsecurity),
          3,
          'row-level security is enabled and forced on the three tables');
SELECT ok((SELECT r.rolsuper FROM pg_proc AS p JOIN pg_roles AS r ON r.oid = p.proowner
           WHERE p.oid = 'haematite.read(text)'::regprocedure),
          'the functions run as a superuser, which bypasses row-level security');

SET ROLE haematite_sec_rls_writer;

SELECT results_eq($$SELECT seq, payload FROM haematite.read('rls/secret')$$,
                  $$VALUES (0::bigint, '\x0a'::bytea)$$,
                  'writer: read returns the live event of the hidden stream');
SELECT results_eq($$SELECT seq, payload FROM haematite.read_from('rls/secret'::bytea, 0, 5)$$,
                  $$VALUES (0::bigint, '\x0a'::bytea)$$,
                  'writer: read_from returns the live event of the hidden stream');
SELECT is(haematite.next_seq('rls/secret'), 2::bigint,
          'writer: next_seq of the hidden stream is 2');
SELECT results_eq($$SELECT stream_key, next_seq FROM haematite.scan('rls/')$$,
                  $$VALUES ('rls/open'::bytea, 2::bigint), ('rls/secret', 2)$$,
                  'writer: scan lists the hidden stream');
SELECT is(haematite.append('rls/secret', '\x0c', 2), 3::bigint,
          'writer: append to the hidden stream passes its WITH CHECK policy');
SELECT is(haematite.append_batch('rls/secret', ARRAY['\x0d']::bytea[], 3), 4::bigint,
          'writer: append_batch to the hidden stream passes its WITH CHECK policy');
SELECT is(haematite.read_value('rls/secret-value'), 1::bigint,
          'writer: read_value returns the hidden value');
SELECT lives_ok($$SELECT haematite.cas('rls/secret-value', 1, 2)$$,
                'writer: cas changes the hidden value');
SELECT is(haematite.read_value('rls/secret-value'), 2::bigint,
          'writer: read_value returns the value cas set');
SELECT is(haematite.sweep(), 1::bigint,
          'writer: sweep deletes the expired event of the hidden stream');

SET row_security = off;
SELECT is(haematite.next_seq('rls/secret'), 4::bigint,
          'writer with row_security off: next_seq works, the policies never apply');
RESET row_security;

RESET ROLE;

SELECT results_eq(
    $$SELECT seq, payload FROM haematite.events
      WHERE stream_key = 'rls/secret'::bytea ORDER BY seq$$,
    $$VALUES (0::bigint, '\x0a'::bytea), (2, '\x0c'), (3, '\x0d')$$,
    'the event table holds the rows written through the policies');

SELECT * FROM finish();
ROLLBACK;
