#!/bin/bash
# Extension updates: every update script in the repository keeps the data
# and grants of the version it starts from, and an updated installation ends
# up with the same objects as a new one.
#
# Run by scripts/test.sh with PGHOST, PGPORT and PGUSER (a superuser) set for
# its throwaway server, on which haematite is installed (make install).
#
# For each update script haematite--A--B.sql at the repository root, in
# version order:
#   - CREATE EXTENSION haematite VERSION 'A' in a new database, write streams
#     (with events that never expire, events that expire tomorrow and events
#     that already expired), values and an administrator's grant;
#   - ALTER EXTENSION haematite UPDATE TO 'B';
#   - check that every read through the API and every table row is what it
#     was, and that the grant survived;
#   - check that appends and cas continue from where they were, and that
#     sweep and stats (in the versions that have it) work.
# Then it updates the oldest version with a base script to the default
# version in one ALTER EXTENSION UPDATE, and compares the result with a new
# CREATE EXTENSION: members, their definitions, privileges and comments.
#
# Every database and role created here is dropped on exit; their names start
# with haematite_upgrade.
set -euo pipefail

: "${PGHOST:?}" "${PGPORT:?}" "${PGUSER:?}"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
extension_dir=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension
database=haematite_upgrade
fresh_database=haematite_upgrade_fresh
reader_role=haematite_upgrade_reader
defaults_role=haematite_upgrade_defaults
work_dir=$(mktemp -d /tmp/haematite-upgrade.XXXXXX)
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/databases.sh"

cleanup() {
	local db role
	for db in "$database" "$fresh_database"; do
		psql -X -q -d postgres -c 'SET client_min_messages = warning' \
			-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
			echo "warning: could not drop database $db" >&2
	done
	for role in "$reader_role" "$defaults_role"; do
		psql -X -q -d postgres -c 'SET client_min_messages = warning' \
			-c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 ||
			echo "warning: could not drop role $role" >&2
	done
	rm -rf "$work_dir"
}

# Print the haematite versions that have a base script, oldest first.
base_versions() {
	local script version
	for script in "$repo_root"/haematite--*.sql; do
		version=${script##*/haematite--}
		version=${version%.sql}
		if [[ $version != *--* ]]; then
			echo "$version"
		fi
	done | sort -V
}

# The data every version must keep: streams through the API of 0.1.0, which
# every later version has, and an administrator's grant of the reader
# recipe.
write_data() {
	sql "$1" <<-'SQL' >/dev/null
		SELECT haematite.append_batch('orders/1', ARRAY['\x01', '\x02', '\x03']::bytea[], 0);
		SELECT haematite.append('orders/1', '\x04', 3, ttl => '1 day');
		SELECT haematite.append('orders/1', '\x05', 4, ttl => '0');
		SELECT haematite.append_batch('orders/2'::bytea, ARRAY['\xff', '']::bytea[], 0, ttl => '1 day');
		SELECT haematite.append_batch('sessions/gone', ARRAY['\x01', '\x02']::bytea[], 0, ttl => '0');
		SELECT haematite.append('\x00ff'::bytea, '\xaa', 0);
		SELECT haematite.cas('cursor/a', NULL, 5);
		SELECT haematite.cas('cursor/a', 5, 6);
		SELECT haematite.cas('\x01'::bytea, NULL, 0);
	SQL
	sql "$1" -c "GRANT USAGE ON SCHEMA haematite TO $reader_role" \
		-c "GRANT EXECUTE ON FUNCTION haematite.read(text), haematite.next_seq(text) TO $reader_role"
}

# Print everything the API returns for the data of write_data, then a digest
# of every table row read directly.  Errors are part of the output (a read of
# a stream whose events all expired raises SE003).
snapshot() {
	psql -X -q -A -t -v VERBOSITY=sqlstate -d "$1" 2>&1 <<-'SQL'
		SELECT 'read ' || k || ': ' || coalesce(string_agg(r.seq || '/' || encode(r.payload, 'hex')
		       || '/' || r.appended_at, ' ' ORDER BY r.seq), '')
		FROM unnest(ARRAY['orders/1', 'orders/2', '\x00ff']) AS k
		     LEFT JOIN LATERAL haematite.read(k::bytea) AS r ON true
		GROUP BY k ORDER BY k;
		SELECT 'next_seq ' || k || ': ' || haematite.next_seq(k::bytea)
		FROM unnest(ARRAY['orders/1', 'orders/2', 'sessions/gone', '\x00ff', 'never']) AS k
		ORDER BY k;
		SELECT 'read_value ' || k || ': ' || coalesce(haematite.read_value(k::bytea)::text, 'NULL')
		FROM unnest(ARRAY['cursor/a', '\x01', 'absent']) AS k
		ORDER BY k;
		SELECT 'scan: ' || string_agg(encode(stream_key, 'hex') || '=' || next_seq, ' ' ORDER BY stream_key)
		FROM haematite.scan();
		SELECT 'scan orders/: ' || string_agg(encode(stream_key, 'hex') || '=' || next_seq, ' ' ORDER BY stream_key)
		FROM haematite.scan('orders/');
		SELECT 'read_from orders/1 from 1, 2 events: ' || string_agg(seq::text, ' ' ORDER BY seq)
		FROM haematite.read_from('orders/1', 1, 2);
		SELECT 'read sessions/gone:';
		SELECT * FROM haematite.read('sessions/gone');
		SELECT 'tables: ' || md5(concat_ws('|',
		    (SELECT string_agg(h::text, ',' ORDER BY h.stream_key) FROM haematite.stream_heads h),
		    (SELECT string_agg(e::text, ',' ORDER BY e.stream_key, e.seq) FROM haematite.events e),
		    (SELECT string_agg(v::text, ',' ORDER BY v.key) FROM haematite.scalar_values v)));
	SQL
}

# Print the extension's members, each with what defines it: a function's
# full definition, a table's columns, indexes and options, and for every
# member its privileges, initial privileges (what pg_dump compares against)
# and comment.  Run on a new and on an updated database, the two outputs
# must be equal.
describe_extension() {
	sql "$1" <<-'SQL'
		WITH member AS (
		    SELECT d.classid, d.objid
		    FROM pg_depend AS d
		    WHERE d.refclassid = 'pg_extension'::regclass
		      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'haematite')
		      AND d.deptype = 'e'
		)
		SELECT pg_describe_object(m.classid, m.objid, 0)
		       || E'\n  definition: ' || coalesce(CASE m.classid
		           WHEN 'pg_proc'::regclass THEN
		               (SELECT pg_get_functiondef(p.oid) || E'\n  acl: ' || coalesce(p.proacl::text, 'default')
		                FROM pg_proc AS p WHERE p.oid = m.objid)
		           WHEN 'pg_class'::regclass THEN
		               (SELECT c.relkind::text || ' ' || coalesce(c.reloptions::text, '')
		                       || E'\n  acl: ' || coalesce(c.relacl::text, 'default')
		                       || E'\n  columns: ' || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		                                                                || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		                                                                || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
		                                                                || coalesce(' -- ' || col_description(c.oid, a.attnum), ''),
		                                                                ', ' ORDER BY a.attnum)
		                                           FROM pg_attribute AS a
		                                                LEFT JOIN pg_attrdef AS ad
		                                                       ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
		                                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
		                       || E'\n  indexes: ' || coalesce((SELECT string_agg(pg_get_indexdef(i.indexrelid)
		                                                                          || coalesce(' -- ' || obj_description(i.indexrelid, 'pg_class'), ''),
		                                                                          '; ' ORDER BY 1)
		                                                         FROM pg_index AS i WHERE i.indrelid = c.oid), '')
		                       || E'\n  constraints: ' || coalesce((SELECT string_agg(co.conname || ' ' || pg_get_constraintdef(co.oid), '; ' ORDER BY co.conname)
		                                                             FROM pg_constraint AS co WHERE co.conrelid = c.oid), '')
		                FROM pg_class AS c WHERE c.oid = m.objid)
		           WHEN 'pg_namespace'::regclass THEN
		               (SELECT 'acl: ' || coalesce(n.nspacl::text, 'default') FROM pg_namespace AS n WHERE n.oid = m.objid)
		           END, '(not described)')
		       || E'\n  initial privileges: ' || coalesce((SELECT string_agg(pg_describe_object(ip.classoid, ip.objoid, ip.objsubid)
		                                                                     || ' ' || ip.privtype::text || ' ' || ip.initprivs::text, '; ' ORDER BY 1)
		                                                   FROM pg_init_privs AS ip
		                                                   WHERE ip.classoid = m.classid AND ip.objoid = m.objid), 'none')
		       || E'\n  comment: ' || coalesce(obj_description(m.objid, m.classid::regclass::name), 'none')
		FROM member AS m
		ORDER BY 1;
		SELECT 'extension ' || e.extversion || ' config tables: '
		       || (SELECT string_agg(t.relid::regclass::text || ' ' || quote_literal(t.condition), ', ' ORDER BY t.relid::regclass::text)
		           FROM unnest(e.extconfig, e.extcondition) AS t(relid, condition))
		FROM pg_extension AS e WHERE e.extname = 'haematite';
	SQL
}

# Check one update script: from version $1 to version $2.
check_update_path() {
	local from=$1 to=$2 label="$1 -> $2"
	local next_seq_before has_stats

	new_database "$database"
	sql "$database" -c "ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO $defaults_role"
	sql "$database" -c "CREATE EXTENSION haematite VERSION '$from'"
	write_data "$database"
	snapshot "$database" >"$work_dir/before.txt"
	next_seq_before=$(sql "$database" -c "SELECT haematite.next_seq('orders/1')")

	sql "$database" -c "ALTER EXTENSION haematite UPDATE TO '$to'"

	check "$label: the extension is at version $to" \
		equals "$(sql "$database" -c "SELECT extversion FROM pg_extension WHERE extname = 'haematite'")" "$to"
	snapshot "$database" >"$work_dir/after.txt"
	check "$label: every read and every table row is unchanged" \
		same_file "$work_dir/before.txt" "$work_dir/after.txt"
	check "$label: the snapshot saw the data (a wrong setup would compare empty outputs)" \
		grep -q "next_seq orders/1: 5" "$work_dir/after.txt"
	check "$label: a read of an expired stream still raises SE003" \
		grep -q "ERROR:  SE003" "$work_dir/after.txt"

	# Grants: the administrator's survive, and no new function is granted to
	# PUBLIC or, through default privileges, to another role.
	check "$label: the administrator's grants on the old functions survive" \
		equals "$(sql "$database" -c "SELECT has_function_privilege('$reader_role', 'haematite.read(text)', 'EXECUTE')
			AND has_function_privilege('$reader_role', 'haematite.next_seq(text)', 'EXECUTE')")" "t"
	check "$label: no function grants EXECUTE to a role but its owner and the reader" \
		equals "$(sql "$database" -c "SELECT coalesce(string_agg(p.oid::regprocedure::text || ' to ' || a.grantee::regrole::text, ', '), 'none')
			FROM pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
			WHERE p.pronamespace = 'haematite'::regnamespace
			  AND a.grantee <> p.proowner
			  AND a.grantee <> '$reader_role'::regrole")" "none"

	# Writes continue exactly where they stopped.
	check "$label: append continues the stream's sequence" \
		equals "$(sql "$database" -c "SELECT haematite.append('orders/1', '\\x06', $next_seq_before)")" \
		"$((next_seq_before + 1))"
	check "$label: append with the sequence of before the update raises SE001" \
		equals "$(psql -X -q -A -t -v VERBOSITY=sqlstate -d "$database" \
			-c "SELECT haematite.append('orders/1', '\\x07', $next_seq_before)" 2>&1)" "ERROR:  SE001"
	check "$label: append_batch continues an expired stream after its last sequence" \
		equals "$(sql "$database" -c "SELECT haematite.append_batch('sessions/gone', ARRAY['\\x03', '\\x04']::bytea[], 2)")" "4"
	check "$label: read returns the old and the new events" \
		equals "$(sql "$database" -c "SELECT string_agg(seq || ':' || encode(payload, 'hex'), ',' ORDER BY seq) FROM haematite.read('orders/1')")" \
		"0:01,1:02,2:03,3:04,5:06"
	sql "$database" -c "SELECT haematite.cas('cursor/a', 6, 7)" >/dev/null
	check "$label: cas continues from the stored value" \
		equals "$(sql "$database" -c "SELECT haematite.read_value('cursor/a')")" "7"

	# Statistics, in the versions that have them: exact after ANALYZE, and
	# the expired count follows sweep.
	has_stats=$(sql "$database" -c "SELECT to_regprocedure('haematite.stats()') IS NOT NULL")
	if [[ $has_stats == t ]]; then
		sql "$database" -c "ANALYZE haematite.stream_heads, haematite.events, haematite.scalar_values"
		check "$label: stats counts streams, events, expired events and keys" \
			equals "$(sql "$database" -c "SELECT streams_estimate || ' ' || events_estimate || ' '
				|| live_events_estimate || ' ' || expired_events || ' ' || cas_keys_estimate
				FROM haematite.stats()")" "4 13 10 3 2"
	fi
	check "$label: sweep deletes the three expired events" \
		equals "$(sql "$database" -c "SELECT haematite.sweep()")" "3"
	if [[ $has_stats == t ]]; then
		check "$label: stats counts no expired event after sweep" \
			equals "$(sql "$database" -c "SELECT expired_events FROM haematite.stats()")" "0"
	fi
}

trap cleanup EXIT
cleanup
mkdir -p "$work_dir"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE ROLE $reader_role" \
	-c "CREATE ROLE $defaults_role"

default_version=$(sql postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'haematite'")
check "haematite is installed (default version '$default_version')" \
	test -n "$default_version"
check "the installed control file names the repository's default version" \
	equals "$default_version" "$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$repo_root/haematite.control")"

# Every update script, in version order of its start.
shopt -s nullglob
update_scripts=("$repo_root"/haematite--*--*.sql)
shopt -u nullglob
check "the repository has at least one update script" \
	test "${#update_scripts[@]}" -gt 0
for script in $(printf '%s\n' "${update_scripts[@]}" | sort -V); do
	name=${script##*/}
	check "$name is installed as in the repository" \
		cmp -s "$script" "$extension_dir/$name"
	versions=${name#haematite--}
	versions=${versions%.sql}
	check_update_path "${versions%%--*}" "${versions#*--}"
done

# The oldest version updated to the default one in one step has the same
# objects, privileges and comments as a new installation.
oldest_version=$(base_versions | head -n 1)
new_database "$database"
sql "$database" -c "CREATE EXTENSION haematite VERSION '$oldest_version'" \
	-c "ALTER EXTENSION haematite UPDATE"
new_database "$fresh_database"
sql "$fresh_database" -c "CREATE EXTENSION haematite"
describe_extension "$database" >"$work_dir/updated.txt"
describe_extension "$fresh_database" >"$work_dir/fresh.txt"
check "ALTER EXTENSION UPDATE from $oldest_version reaches $default_version" \
	equals "$(tail -n 1 "$work_dir/updated.txt" | cut -d ' ' -f 2)" "$default_version"
check "an update from $oldest_version and a new installation have the same objects" \
	same_file "$work_dir/updated.txt" "$work_dir/fresh.txt"
check "the comparison covers every member (functions, tables, schema)" \
	equals "$(grep -c -E '^(function|table|schema) ' "$work_dir/fresh.txt")" \
	"$(sql "$fresh_database" -c "SELECT count(*) FROM pg_depend
		WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'haematite')")"

echo "upgrade: $passed passed, $failed failed"
((failed == 0))
