-- Default privileges of the role that runs CREATE EXTENSION must not reach
-- haematite's objects.
--
-- ALTER DEFAULT PRIVILEGES makes PostgreSQL grant privileges on every new
-- object a role creates, including the objects an extension script creates.
-- The install script revokes EXECUTE from PUBLIC only.  A default grant to
-- another role gives that role EXECUTE without the grant recipes, or write
-- access to the tables.  With write access it can break the invariants of
-- a stream: leave a gap, duplicate a sequence, or make a head row disagree
-- with its events.  TRIGGER on a table is worse, because a trigger on
-- haematite.events runs inside append as the superuser that owns the
-- functions.
--
-- Run with pg_prove, as a superuser, in a database where the pgtap and
-- haematite extensions exist.  The test drops and recreates the extension
-- inside its transaction, which is rolled back.

BEGIN;

SELECT plan(5);

CREATE ROLE haematite_sec_defaults;

DROP EXTENSION haematite;

ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO haematite_sec_defaults;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO haematite_sec_defaults;
ALTER DEFAULT PRIVILEGES GRANT ALL ON SCHEMAS TO haematite_sec_defaults;

CREATE EXTENSION haematite;

SELECT is_empty(
    $$SELECT c.relname, a.privilege_type
      FROM pg_class AS c,
           aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS a
      WHERE c.relnamespace = 'haematite'::regnamespace
        AND a.grantee = 'haematite_sec_defaults'::regrole$$,
    'default privileges grant nothing on the tables');

SELECT is_empty(
    $$SELECT p.oid::regprocedure
      FROM pg_proc AS p,
           aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
      WHERE p.pronamespace = 'haematite'::regnamespace
        AND a.grantee IN (0, 'haematite_sec_defaults'::regrole)$$,
    'default privileges grant EXECUTE on no function');

SELECT is_empty(
    $$SELECT a.privilege_type
      FROM pg_namespace AS n,
           aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
      WHERE n.nspname = 'haematite'
        AND a.grantee = 'haematite_sec_defaults'::regrole$$,
    'default privileges grant nothing on the schema');

SET ROLE haematite_sec_defaults;
SELECT throws_ok($$INSERT INTO haematite.events (stream_key, seq, payload, appended_at)
                   VALUES ('defaults/s', 5, '\x01', now())$$,
                 '42501', NULL,
                 'a role with default privileges cannot insert an event directly');
SELECT throws_ok($$CREATE FUNCTION pg_temp.on_event() RETURNS trigger LANGUAGE plpgsql
                   AS 'BEGIN RETURN NEW; END';
                   CREATE TRIGGER on_event BEFORE INSERT ON haematite.events
                   FOR EACH ROW EXECUTE FUNCTION pg_temp.on_event()$$,
                 '42501', NULL,
                 'a role with default privileges cannot put a trigger on haematite.events');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
