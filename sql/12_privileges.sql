--
-- Privileges: PUBLIC may not execute any haematite function, a role without
-- grants is rejected (42501), and the reader and writer grant recipes give
-- exactly the calls they name, never direct table access.
--

-- No function grants EXECUTE to PUBLIC, explicitly or by default ACL.
SELECT count(*) AS public_execute_grants
FROM pg_proc AS p,
     aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS acl
WHERE p.pronamespace = 'haematite'::regnamespace
  AND acl.grantee = 0
  AND acl.privilege_type = 'EXECUTE';

-- Roles are shared by every database of the cluster, so drop any left over by
-- an earlier run that failed before its cleanup.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_haematite_nobody, regress_haematite_reader,
                    regress_haematite_writer;
RESET client_min_messages;

CREATE ROLE regress_haematite_nobody;
CREATE ROLE regress_haematite_reader;
CREATE ROLE regress_haematite_writer;

-- A role without grants may execute none of the functions.
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_haematite_nobody', p.oid, 'EXECUTE') AS can_execute
FROM pg_proc AS p
WHERE p.pronamespace = 'haematite'::regnamespace
ORDER BY p.proname, p.oid::regprocedure::text;

-- Without USAGE on the schema the call fails on the schema.  With USAGE but
-- no EXECUTE it fails on the function.  Both are 42501.
SELECT haematite.append('priv/stream', '\x01', 0);
SELECT haematite.cas('priv/value', NULL, 1);
SELECT tables_digest() AS digest_before \gset
SET ROLE regress_haematite_nobody;
SELECT * FROM capture_error($$SELECT haematite.next_seq('priv/stream')$$);
SELECT * FROM capture_error($$SELECT haematite.append('priv/stream', '\x02', 1)$$);
RESET ROLE;
GRANT USAGE ON SCHEMA haematite TO regress_haematite_nobody;
SET ROLE regress_haematite_nobody;
SELECT * FROM capture_error($$SELECT haematite.append('priv/stream', '\x02', 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('priv/stream', ARRAY['\x02']::bytea[], 1)$$);
SELECT * FROM capture_error($$SELECT * FROM haematite.read('priv/stream')$$);
SELECT * FROM capture_error($$SELECT haematite.cas('priv/value', 1, 2)$$);
SELECT * FROM capture_error($$SELECT haematite.sweep()$$);
SELECT * FROM capture_error($$SELECT haematite.flush()$$);
SELECT * FROM capture_error($$SELECT count(*) FROM haematite.events$$);
RESET ROLE;
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- The reader recipe: USAGE plus EXECUTE on the reader functions in both forms.
GRANT USAGE ON SCHEMA haematite TO regress_haematite_reader;
GRANT EXECUTE ON FUNCTION
    haematite.read(bytea), haematite.read(text),
    haematite.read_from(bytea, bigint, integer), haematite.read_from(text, bigint, integer),
    haematite.next_seq(bytea), haematite.next_seq(text),
    haematite.read_value(bytea), haematite.read_value(text),
    haematite.scan(bytea), haematite.scan(text), haematite.scan()
TO regress_haematite_reader;

SET ROLE regress_haematite_reader;
SELECT seq, payload FROM haematite.read('priv/stream');
SELECT seq, payload FROM haematite.read_from('priv/stream'::bytea, 0, 1);
SELECT haematite.next_seq('priv/stream'), haematite.read_value('priv/value');
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq FROM haematite.scan('priv/');
SELECT count(*) > 0 AS lists_streams FROM haematite.scan();
-- The reader may not write, through the functions or the tables, nor read
-- the tables directly.
SELECT * FROM capture_error($$SELECT haematite.append('priv/stream', '\x02', 1)$$);
SELECT * FROM capture_error($$SELECT haematite.append_batch('priv/stream'::bytea, ARRAY['\x02']::bytea[], 1)$$);
SELECT * FROM capture_error($$SELECT haematite.cas('priv/value', 1, 2)$$);
SELECT * FROM capture_error($$SELECT haematite.sweep()$$);
SELECT * FROM capture_error($$SELECT haematite.flush()$$);
SELECT * FROM capture_error($$SELECT count(*) FROM haematite.events$$);
SELECT * FROM capture_error($$SELECT count(*) FROM haematite.stream_heads$$);
SELECT * FROM capture_error($$SELECT count(*) FROM haematite.scalar_values$$);
RESET ROLE;
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- The writer recipe: USAGE plus EXECUTE on every function.
GRANT USAGE ON SCHEMA haematite TO regress_haematite_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA haematite TO regress_haematite_writer;

SET ROLE regress_haematite_writer;
SELECT haematite.append('priv/stream', '\x02', 1);
SELECT haematite.append_batch('priv/stream'::bytea, ARRAY['\x03']::bytea[], 2);
SELECT haematite.cas('priv/value', 1, 2);
SELECT haematite.read_value('priv/value');
SELECT seq, payload FROM haematite.read('priv/stream');
SELECT haematite.sweep() >= 0 AS swept;
SELECT haematite.flush() IS NOT NULL AS flushed;
-- The functions write the tables for the writer, but the writer itself may
-- not touch them.
RESET ROLE;
SELECT tables_digest() AS digest_before \gset
SET ROLE regress_haematite_writer;
SELECT * FROM capture_error($$INSERT INTO haematite.events (stream_key, seq, payload, appended_at) VALUES ('priv/stream', 3, '\x04', now())$$);
SELECT * FROM capture_error($$UPDATE haematite.stream_heads SET next_seq = 0$$);
SELECT * FROM capture_error($$DELETE FROM haematite.scalar_values$$);
SELECT * FROM capture_error($$SELECT count(*) FROM haematite.events$$);
SELECT * FROM capture_error($$TRUNCATE haematite.events$$);
RESET ROLE;
SELECT tables_digest() = :'digest_before' AS nothing_written;

-- No role used here has any privilege on the tables.
SELECT r.rolname, c.relname,
       has_table_privilege(r.rolname, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE') AS any_table_privilege
FROM pg_roles AS r,
     pg_class AS c
WHERE r.rolname LIKE 'regress\_haematite\_%'
  AND c.relnamespace = 'haematite'::regnamespace
  AND c.relkind = 'r'
ORDER BY r.rolname, c.relname;

-- The reader recipe's grants are the only EXECUTE grants the reader holds.
SELECT p.oid::regprocedure AS function
FROM pg_proc AS p
WHERE p.pronamespace = 'haematite'::regnamespace
  AND has_function_privilege('regress_haematite_reader', p.oid, 'EXECUTE')
ORDER BY p.proname, p.oid::regprocedure::text;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA haematite FROM regress_haematite_reader, regress_haematite_writer;
REVOKE ALL ON SCHEMA haematite FROM regress_haematite_nobody, regress_haematite_reader, regress_haematite_writer;
DROP ROLE regress_haematite_nobody;
DROP ROLE regress_haematite_reader;
DROP ROLE regress_haematite_writer;
