/* haematite--0.1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION haematite" to load this file. \quit

CREATE SCHEMA haematite;

COMMENT ON SCHEMA haematite IS
	'haematite event store: streams, events, compare-and-swap values and their API';

/*
 * Tables
 *
 * Three ordinary heap tables, so that WAL, replication, pg_dump, VACUUM,
 * partitioning and triggers work on them unchanged.  Application roles get no
 * privilege on them: every read and write goes through the SECURITY DEFINER
 * functions below, which keep the invariants (gap-free sequences, head rows
 * that match their events).
 *
 * Note: the tables carry no CHECK constraints on key lengths or on
 * non-negative numbers, because the functions check every argument before
 * writing and nobody else can write.  A CHECK constraint would cost every
 * append a parse of its expression when the statement starts.
 */

CREATE TABLE haematite.stream_heads (
	stream_key bytea PRIMARY KEY,
	next_seq bigint NOT NULL,
	last_appended_at timestamptz NOT NULL,
	live_until timestamptz NOT NULL,
	reserve bytea
) WITH (fillfactor = 70);

COMMENT ON TABLE haematite.stream_heads IS
	'One row per stream: its next sequence number; appends lock this row';
COMMENT ON COLUMN haematite.stream_heads.next_seq IS
	'Number of events ever appended; the sequence number of the next event';
COMMENT ON COLUMN haematite.stream_heads.last_appended_at IS
	'appended_at of the latest event; appends never go below it';
COMMENT ON COLUMN haematite.stream_heads.live_until IS
	'Latest expiry among the stream''s events, infinity once one has no TTL';
COMMENT ON COLUMN haematite.stream_heads.reserve IS
	'Filler that only a new row carries; the first append clears it, which leaves free space on the page for the updates of later appends';

CREATE TABLE haematite.events (
	stream_key bytea NOT NULL,
	seq bigint NOT NULL,
	payload bytea NOT NULL,
	appended_at timestamptz NOT NULL,
	expires_at timestamptz,
	PRIMARY KEY (stream_key, seq)
);

COMMENT ON TABLE haematite.events IS
	'One row per event, until sweep removes it after expiry';
COMMENT ON COLUMN haematite.events.expires_at IS
	'appended_at plus the TTL given to append; NULL for events that never expire';

CREATE INDEX events_expires_at_idx ON haematite.events (expires_at)
	WHERE expires_at IS NOT NULL;

COMMENT ON INDEX haematite.events_expires_at_idx IS
	'Finds expired events for sweep without reading events that never expire';

CREATE TABLE haematite.scalar_values (
	key bytea PRIMARY KEY,
	value bigint NOT NULL
) WITH (fillfactor = 70);

COMMENT ON TABLE haematite.scalar_values IS
	'One row per compare-and-swap key: consumer cursors, leases, counters';

SELECT pg_catalog.pg_extension_config_dump('haematite.stream_heads', '');
SELECT pg_catalog.pg_extension_config_dump('haematite.events', '');
SELECT pg_catalog.pg_extension_config_dump('haematite.scalar_values', '');

/*
 * Functions
 *
 * Every function exists with a bytea key and with a text key; the text
 * overload passes the text's bytes (in the database encoding) to the same C
 * function.  None is STRICT, because a NULL argument must raise 22004 rather
 * than return NULL.  All run as the extension owner (SECURITY DEFINER); the
 * SQL they run qualifies every table, function, operator and type, so the
 * caller's search_path cannot redirect them.
 */

-- Writers

CREATE FUNCTION haematite.append(stream_key bytea, payload bytea,
								 expected_seq bigint, ttl interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER;

CREATE FUNCTION haematite.append(stream_key text, payload bytea,
								 expected_seq bigint, ttl interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER;

COMMENT ON FUNCTION haematite.append(bytea, bytea, bigint, interval) IS
	'Append one event if expected_seq is the stream''s next sequence; returns the new next sequence';
COMMENT ON FUNCTION haematite.append(text, bytea, bigint, interval) IS
	'Append one event if expected_seq is the stream''s next sequence; returns the new next sequence';

CREATE FUNCTION haematite.append_batch(stream_key bytea, payloads bytea[],
									   expected_seq bigint, ttl interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append_batch'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER;

CREATE FUNCTION haematite.append_batch(stream_key text, payloads bytea[],
									   expected_seq bigint, ttl interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append_batch'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER;

COMMENT ON FUNCTION haematite.append_batch(bytea, bytea[], bigint, interval) IS
	'Append all payloads as consecutive events, all or nothing; returns the new next sequence';
COMMENT ON FUNCTION haematite.append_batch(text, bytea[], bigint, interval) IS
	'Append all payloads as consecutive events, all or nothing; returns the new next sequence';

CREATE FUNCTION haematite.cas(key bytea, expected bigint, new_value bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'cas'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER;

CREATE FUNCTION haematite.cas(key text, expected bigint, new_value bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'cas'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER;

COMMENT ON FUNCTION haematite.cas(bytea, bigint, bigint) IS
	'Set the value to new_value if it equals expected (NULL: the key must be absent)';
COMMENT ON FUNCTION haematite.cas(text, bigint, bigint) IS
	'Set the value to new_value if it equals expected (NULL: the key must be absent)';

CREATE FUNCTION haematite.sweep(max_events integer DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'sweep'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER;

COMMENT ON FUNCTION haematite.sweep(integer) IS
	'Delete expired events, at most max_events of them; returns how many were deleted';

CREATE FUNCTION haematite.flush()
RETURNS pg_lsn
AS 'MODULE_PATHNAME', 'flush'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER;

COMMENT ON FUNCTION haematite.flush() IS
	'Force WAL to disk up to the current insert position; returns the flushed position';

-- Readers

CREATE FUNCTION haematite.read(stream_key bytea)
RETURNS TABLE (seq bigint, payload bytea, appended_at timestamptz)
AS 'MODULE_PATHNAME', 'read_stream'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER ROWS 100;

CREATE FUNCTION haematite.read(stream_key text)
RETURNS TABLE (seq bigint, payload bytea, appended_at timestamptz)
AS 'MODULE_PATHNAME', 'read_stream'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER ROWS 100;

COMMENT ON FUNCTION haematite.read(bytea) IS
	'Every live event of the stream, in sequence order';
COMMENT ON FUNCTION haematite.read(text) IS
	'Every live event of the stream, in sequence order';

CREATE FUNCTION haematite.read_from(stream_key bytea, from_seq bigint,
									max_count integer DEFAULT NULL)
RETURNS TABLE (seq bigint, payload bytea, appended_at timestamptz)
AS 'MODULE_PATHNAME', 'read_from'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER ROWS 100;

CREATE FUNCTION haematite.read_from(stream_key text, from_seq bigint,
									max_count integer DEFAULT NULL)
RETURNS TABLE (seq bigint, payload bytea, appended_at timestamptz)
AS 'MODULE_PATHNAME', 'read_from'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER ROWS 100;

COMMENT ON FUNCTION haematite.read_from(bytea, bigint, integer) IS
	'Live events with seq >= from_seq, in order, at most max_count of them';
COMMENT ON FUNCTION haematite.read_from(text, bigint, integer) IS
	'Live events with seq >= from_seq, in order, at most max_count of them';

CREATE FUNCTION haematite.next_seq(stream_key bytea)
RETURNS bigint
AS 'MODULE_PATHNAME', 'next_seq'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER;

CREATE FUNCTION haematite.next_seq(stream_key text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'next_seq'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER;

COMMENT ON FUNCTION haematite.next_seq(bytea) IS
	'The stream''s next sequence number; 0 for a stream that never existed';
COMMENT ON FUNCTION haematite.next_seq(text) IS
	'The stream''s next sequence number; 0 for a stream that never existed';

CREATE FUNCTION haematite.read_value(key bytea)
RETURNS bigint
AS 'MODULE_PATHNAME', 'read_value'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER;

CREATE FUNCTION haematite.read_value(key text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'read_value'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER;

COMMENT ON FUNCTION haematite.read_value(bytea) IS
	'The value stored by cas, or NULL when the key is absent';
COMMENT ON FUNCTION haematite.read_value(text) IS
	'The value stored by cas, or NULL when the key is absent';

CREATE FUNCTION haematite.scan(prefix bytea)
RETURNS TABLE (stream_key bytea, next_seq bigint)
AS 'MODULE_PATHNAME', 'scan'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER ROWS 100;

CREATE FUNCTION haematite.scan(prefix text)
RETURNS TABLE (stream_key bytea, next_seq bigint)
AS 'MODULE_PATHNAME', 'scan'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER ROWS 100;

CREATE FUNCTION haematite.scan()
RETURNS TABLE (stream_key bytea, next_seq bigint)
AS 'MODULE_PATHNAME', 'scan'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER ROWS 1000;

COMMENT ON FUNCTION haematite.scan(bytea) IS
	'Streams whose key starts with the prefix bytes and that hold a live event, in key order';
COMMENT ON FUNCTION haematite.scan(text) IS
	'Streams whose key starts with the prefix bytes and that hold a live event, in key order';
COMMENT ON FUNCTION haematite.scan() IS
	'Every stream that holds a live event, in key order';

/*
 * Privileges
 *
 * PostgreSQL grants EXECUTE on new functions to PUBLIC.  Take it back, so
 * that only roles an administrator grants (see the README's recipes) can
 * call the API.
 */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA haematite FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA haematite FROM PUBLIC;

/*
 * ALTER DEFAULT PRIVILEGES of the installing role may have granted rights on
 * the objects above to other roles, for example INSERT on the tables or
 * TRIGGER, which would let a role run code as the owner.  Revoke every grant
 * to any role but the owner, so that exactly the README's recipes apply.
 */
DO $$
DECLARE
	leaked record;
BEGIN
	FOR leaked IN
		SELECT 'SCHEMA haematite' AS object, a.grantee
		FROM pg_catalog.pg_namespace n,
			 pg_catalog.aclexplode(n.nspacl) a
		WHERE n.nspname OPERATOR(pg_catalog.=) 'haematite'
		  AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
		UNION
		SELECT 'TABLE ' OPERATOR(pg_catalog.||) c.oid::pg_catalog.regclass::pg_catalog.text,
			   a.grantee
		FROM pg_catalog.pg_class c,
			 pg_catalog.aclexplode(c.relacl) a
		WHERE c.relnamespace OPERATOR(pg_catalog.=) 'haematite'::pg_catalog.regnamespace
		  AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
		UNION
		SELECT 'FUNCTION ' OPERATOR(pg_catalog.||) p.oid::pg_catalog.regprocedure::pg_catalog.text,
			   a.grantee
		FROM pg_catalog.pg_proc p,
			 pg_catalog.aclexplode(p.proacl) a
		WHERE p.pronamespace OPERATOR(pg_catalog.=) 'haematite'::pg_catalog.regnamespace
		  AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', leaked.object,
			CASE WHEN leaked.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				 ELSE leaked.grantee::pg_catalog.regrole::pg_catalog.text
			END);
	END LOOP;
END
$$;
