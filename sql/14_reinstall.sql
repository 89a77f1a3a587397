--
-- Installing and removing the extension: only a superuser may create it, it
-- cannot move to another schema, and DROP then CREATE in one session leaves
-- working functions on new, empty tables.
--

-- Use every function first, so that any state the session caches exists.
SELECT haematite.append('reinstall/stream', '\x01', 0);
SELECT haematite.cas('reinstall/value', NULL, 1);
SELECT count(*) FROM haematite.read('reinstall/stream');
SELECT count(*) FROM haematite.scan('reinstall/');

-- The schema is fixed.
SELECT * FROM capture_error($$ALTER EXTENSION haematite SET SCHEMA public$$);

-- DROP EXTENSION removes every table and function, and the schema with them:
-- the install script creates the schema as a member of the extension.
DROP EXTENSION haematite;
SELECT count(*) AS haematite_schemas FROM pg_namespace
WHERE nspname = 'haematite';

-- A role that may create objects in the database, but is not a superuser,
-- cannot create the extension.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_haematite_owner;
RESET client_min_messages;
CREATE ROLE regress_haematite_owner;
GRANT CREATE ON DATABASE :"DBNAME" TO regress_haematite_owner;
SET ROLE regress_haematite_owner;
SELECT sqlstate, message FROM capture_error($$CREATE EXTENSION haematite$$);
RESET ROLE;
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'haematite';
REVOKE CREATE ON DATABASE :"DBNAME" FROM regress_haematite_owner;
DROP ROLE regress_haematite_owner;

-- Created again, the extension starts empty and every function works in this
-- same session.
CREATE EXTENSION haematite;
SELECT haematite.next_seq('reinstall/stream');
SELECT haematite.read_value('reinstall/value') IS NULL AS value_absent;
SELECT haematite.append('reinstall/stream', '\x02', 0);
SELECT haematite.append_batch('reinstall/stream', ARRAY['\x03']::bytea[], 1);
SELECT seq, payload FROM haematite.read('reinstall/stream');
SELECT seq, payload FROM haematite.read_from('reinstall/stream', 1);
SELECT haematite.cas('reinstall/value', NULL, 2);
SELECT haematite.read_value('reinstall/value');
SELECT convert_from(stream_key, 'UTF8') AS key_text, next_seq FROM haematite.scan();
SELECT haematite.sweep();
SELECT haematite.flush() IS NOT NULL AS flushed;
SELECT * FROM capture_error($$SELECT haematite.append('reinstall/stream', '\x04', 0)$$);
