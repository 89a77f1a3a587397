/* haematite--0.1.0--0.2.0.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION haematite UPDATE TO '0.2.0'" to load this file. \quit

/*
 * Version 0.2.0 has no install script of its own: CREATE EXTENSION runs
 * haematite--0.1.0.sql and then this script.  So a new installation and an
 * updated one run the same statements and end up with the same objects.
 *
 * The section of each feature creates its objects and revokes PUBLIC's
 * EXECUTE on them.  The last section removes the grants that default
 * privileges may have added to the new objects.
 *
 * Note: the background sweeper's section, which creates
 * haematite.last_sweep(), must come before the statistics section, because
 * the body of haematite.stats() is bound to last_sweep() when it is created.
 */

/*
 * Background sweeper
 *
 * With shared_preload_libraries = 'haematite', a background worker deletes
 * expired events every haematite.sweep_interval.  Shared memory keeps the
 * last sweep, whether the worker ran it or someone called sweep().
 * last_sweep() returns it; no role but the owner may call it, and
 * haematite.stats() shows it to the roles allowed to call that.
 */

CREATE FUNCTION haematite.last_sweep(
	OUT finished_at timestamptz,
	OUT deleted bigint,
	OUT source text)
RETURNS record
AS 'MODULE_PATHNAME', 'last_sweep'
LANGUAGE C VOLATILE PARALLEL SAFE SECURITY DEFINER;

COMMENT ON FUNCTION haematite.last_sweep() IS
	'Finish time, deleted count and source (worker or manual) of the last sweep since the server started; NULLs when none, or when haematite is not in shared_preload_libraries';

REVOKE ALL ON FUNCTION haematite.last_sweep() FROM PUBLIC;

/*
 * Statistics
 *
 * haematite.stats() returns one row that is cheap enough to poll every few
 * seconds on a store of millions of events.  The row counts whose names end
 * in _estimate are computed the way the planner sizes a table: the row
 * density that the last VACUUM or ANALYZE stored in pg_class, times the
 * table's current number of pages.  So they follow growth between VACUUMs
 * at the cost of one file size lookup.  A table that was never vacuumed or
 * analyzed falls back to the live row count of the cumulative statistics
 * system.  expired_events is exact: it counts the expired rows through the
 * partial index on expires_at, so its cost grows with the backlog that sweep
 * has not yet removed, not with the size of the store.  The SET clauses keep
 * the planner on that index even before the table was ever analyzed, when
 * it would otherwise scan the whole table.
 *
 * The body is an SQL-standard function body (BEGIN ATOMIC), parsed when this
 * script runs: every name in it is bound then, and the caller's search_path
 * plays no part when it runs.  It runs as the extension owner, because it
 * reads haematite.events, on which no application role has a privilege.
 */

CREATE FUNCTION haematite.stats(
	OUT streams_estimate bigint,
	OUT events_estimate bigint,
	OUT live_events_estimate bigint,
	OUT expired_events bigint,
	OUT cas_keys_estimate bigint,
	OUT table_bytes bigint,
	OUT index_bytes bigint,
	OUT last_sweep_finished_at timestamptz,
	OUT last_sweep_deleted bigint,
	OUT last_sweep_source text)
RETURNS record
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET enable_seqscan = off
SET enable_bitmapscan = off
BEGIN ATOMIC
	WITH table_size AS (
		SELECT c.oid AS relid,
			   CASE
				   WHEN c.reltuples OPERATOR(pg_catalog.>=) 0
					AND c.relpages OPERATOR(pg_catalog.>) 0
				   THEN pg_catalog.round(
							c.reltuples::pg_catalog.float8
							OPERATOR(pg_catalog./) c.relpages
							OPERATOR(pg_catalog.*) (pg_catalog.pg_relation_size(c.oid)
													OPERATOR(pg_catalog./)
													pg_catalog.current_setting('block_size')::pg_catalog.int8)
						)::pg_catalog.int8
				   ELSE pg_catalog.pg_stat_get_live_tuples(c.oid)
			   END AS rows_estimate,
			   pg_catalog.pg_table_size(c.oid) AS table_bytes,
			   pg_catalog.pg_indexes_size(c.oid) AS index_bytes
		FROM pg_catalog.pg_class AS c
		WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY['haematite.stream_heads',
													  'haematite.events',
													  'haematite.scalar_values']::pg_catalog.regclass[])
	),
	expired AS (
		SELECT pg_catalog.count(*) AS events
		FROM haematite.events AS e
		WHERE e.expires_at OPERATOR(pg_catalog.<=) pg_catalog.statement_timestamp()
	)
	SELECT heads.rows_estimate,
		   events.rows_estimate,
		   GREATEST(events.rows_estimate OPERATOR(pg_catalog.-) expired.events, 0),
		   expired.events,
		   scalar_values.rows_estimate,
		   heads.table_bytes OPERATOR(pg_catalog.+) events.table_bytes
			   OPERATOR(pg_catalog.+) scalar_values.table_bytes,
		   heads.index_bytes OPERATOR(pg_catalog.+) events.index_bytes
			   OPERATOR(pg_catalog.+) scalar_values.index_bytes,
		   last_sweep.finished_at,
		   last_sweep.deleted,
		   last_sweep.source
	FROM table_size AS heads,
		 table_size AS events,
		 table_size AS scalar_values,
		 expired,
		 haematite.last_sweep() AS last_sweep
	WHERE heads.relid OPERATOR(pg_catalog.=) 'haematite.stream_heads'::pg_catalog.regclass
	  AND events.relid OPERATOR(pg_catalog.=) 'haematite.events'::pg_catalog.regclass
	  AND scalar_values.relid OPERATOR(pg_catalog.=) 'haematite.scalar_values'::pg_catalog.regclass;
END;

COMMENT ON FUNCTION haematite.stats() IS
	'Row counts (estimates where named so), exact count of expired events not yet swept, table and index bytes, and the last sweep';

REVOKE ALL ON FUNCTION haematite.stats() FROM PUBLIC;

/*
 * Privileges of the new objects
 *
 * ALTER DEFAULT PRIVILEGES of the role running this script may have granted
 * rights on the functions created above to other roles.  Revoke every grant
 * on them to any role but the owner, as the install script does for its own
 * objects.  Only the new objects are touched: on an update, the grants an
 * administrator gave on the objects of 0.1.0 stay as they are.
 */
DO $$
DECLARE
	leaked record;
BEGIN
	FOR leaked IN
		SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS function,
			   a.grantee
		FROM pg_catalog.pg_proc p,
			 pg_catalog.aclexplode(p.proacl) a
		WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[
				  'haematite.last_sweep()',
				  'haematite.stats()']::pg_catalog.regprocedure[])
		  AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', leaked.function,
			CASE WHEN leaked.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				 ELSE leaked.grantee::pg_catalog.regrole::pg_catalog.text
			END);
	END LOOP;
END
$$;
