-- haematite demo: the machine's dpkg log as one event stream per package.
--
-- scripts/demo.sh runs this file with psql in a new database where
-- CREATE EXTENSION haematite has run, and with the log on standard input:
--
--   psql -X -d haematite_demo -f demo/demo.sql < /var/log/dpkg.log
--
-- Each part is a file beside this one. All parts run in this psql session,
-- so the temporary tables made by the import stay visible to the later parts.

\set ON_ERROR_STOP on
\set QUIET on
\pset footer off
SET client_min_messages = notice;

\ir import.sql
\ir streams.sql
\ir consumer.sql
\ir conflict.sql

\echo
\echo 'Demo finished.'
