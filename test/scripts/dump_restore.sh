#!/bin/bash
# pg_dump and restore: a restored database reads exactly what the dumped one
# read, and appends and cas continue where they stopped.
#
# Run by scripts/test.sh with PGHOST, PGPORT and PGUSER (a superuser) set for
# its throwaway server, on which haematite is installed (make install).
#
# The extension's three tables are registered with pg_extension_config_dump,
# so pg_dump writes CREATE EXTENSION followed by their rows.  This script
# fills a database with streams, values and a grant.  The streams hold
# events that never expire, events that expire tomorrow, events that already
# expired, and one stream whose events all expired.  It dumps the database
# in plain and in custom format and restores each dump into a new database
# (psql and pg_restore).  Then it compares the output of every read
# function, byte for byte, and every table row.
# It does the same for a database created at the oldest version with a base
# script: a dump does not record the extension version, so the restore
# creates the default version and loads the old rows into it.
#
# Every database and role created here is dropped on exit; their names start
# with haematite_dump.
set -euo pipefail

: "${PGHOST:?}" "${PGPORT:?}" "${PGUSER:?}"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pg_bin=${HAEMATITE_PGBIN:-/usr/lib/postgresql/15/bin}
source_database=haematite_dump_source
target_database=haematite_dump_target
reader_role=haematite_dump_reader
work_dir=$(mktemp -d /tmp/haematite-dump.XXXXXX)
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/databases.sh"

cleanup() {
	local db
	for db in "$source_database" "$target_database"; do
		psql -X -q -d postgres -c 'SET client_min_messages = warning' \
			-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
			echo "warning: could not drop database $db" >&2
	done
	psql -X -q -d postgres -c 'SET client_min_messages = warning' \
		-c "DROP ROLE IF EXISTS $reader_role" >/dev/null 2>&1 ||
		echo "warning: could not drop role $reader_role" >&2
	rm -rf "$work_dir"
}

# Fill a database that has the extension: four streams of every kind, two
# values, and the reader recipe's grants on two functions.
write_data() {
	sql "$1" <<-'SQL' >/dev/null
		SELECT haematite.append_batch('orders/1', ARRAY['\x01', '\x02', '\x03']::bytea[], 0);
		SELECT haematite.append('orders/1', '\x04', 3, ttl => '1 day');
		SELECT haematite.append('orders/1', '\x05', 4, ttl => '0');
		SELECT haematite.append('orders/1', '\x06', 5);
		SELECT haematite.append_batch('orders/2'::bytea, ARRAY['\xff', '', '\x00']::bytea[], 0, ttl => '1 day');
		SELECT haematite.append_batch('sessions/gone', ARRAY['\x01', '\x02']::bytea[], 0, ttl => '0');
		SELECT haematite.append('\x00ff'::bytea, repeat('x', 5000)::bytea, 0);
		SELECT haematite.cas('cursor/a', NULL, 5);
		SELECT haematite.cas('cursor/a', 5, 6);
		SELECT haematite.cas('\x01'::bytea, NULL, 0);
	SQL
	sql "$1" -c "GRANT USAGE ON SCHEMA haematite TO $reader_role" \
		-c "GRANT EXECUTE ON FUNCTION haematite.read(text), haematite.next_seq(text) TO $reader_role"
}

# Print everything the API returns for the data of write_data, then every
# table row read directly.  Errors are part of the output (a read of the
# stream whose events all expired raises SE003).
snapshot() {
	psql -X -q -A -t -v VERBOSITY=sqlstate -d "$1" 2>&1 <<-'SQL'
		SELECT 'read ' || k || ': ' || coalesce(string_agg(r.seq || '/' || encode(r.payload, 'hex')
		       || '/' || r.appended_at, ' ' ORDER BY r.seq), '')
		FROM unnest(ARRAY['orders/1', 'orders/2', '\x00ff']) AS k
		     LEFT JOIN LATERAL haematite.read(k::bytea) AS r ON true
		GROUP BY k ORDER BY k;
		SELECT 'read_from orders/2 from 1: ' || string_agg(seq || '/' || encode(payload, 'hex'), ' ' ORDER BY seq)
		FROM haematite.read_from('orders/2', 1);
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
		SELECT 'read sessions/gone:';
		SELECT * FROM haematite.read('sessions/gone');
		SELECT 'stream_heads: ' || h::text FROM haematite.stream_heads AS h ORDER BY h.stream_key;
		SELECT 'events: ' || e::text FROM haematite.events AS e ORDER BY e.stream_key, e.seq;
		SELECT 'scalar_values: ' || v::text FROM haematite.scalar_values AS v ORDER BY v.key;
	SQL
}

# Dump $source_database in format $1 ("plain" or "custom"), restore it into
# a new $target_database, and check that it reads and continues as the
# source does.  $2 names the case in the check descriptions.
check_dump_restore() {
	local format=$1 label=$2 dump_file=$work_dir/dump.$1

	"$pg_bin/pg_dump" --format="$format" --file="$dump_file" "$source_database"
	new_database "$target_database"
	if [[ $format == plain ]]; then
		sql "$target_database" -f "$dump_file" >/dev/null
	else
		"$pg_bin/pg_restore" --exit-on-error --dbname="$target_database" "$dump_file"
	fi

	snapshot "$target_database" >"$work_dir/restored.txt"
	check "$label: every read and every table row is as in the dumped database" \
		same_file "$work_dir/source.txt" "$work_dir/restored.txt"
	check "$label: the restored extension is at the default version" \
		equals "$(sql "$target_database" -c "SELECT extversion FROM pg_extension WHERE extname = 'haematite'")" \
		"$default_version"
	check "$label: the reader's grants were restored" \
		equals "$(sql "$target_database" -c "SELECT has_function_privilege('$reader_role', 'haematite.read(text)', 'EXECUTE'),
			has_function_privilege('$reader_role', 'haematite.next_seq(text)', 'EXECUTE'),
			has_function_privilege('$reader_role', 'haematite.append(text, bytea, bigint, interval)', 'EXECUTE')")" "t|t|f"
	check "$label: PUBLIC still may not execute any function" \
		equals "$(sql "$target_database" -c "SELECT count(*) FROM pg_proc AS p,
			aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
			WHERE p.pronamespace = 'haematite'::regnamespace AND a.grantee = 0")" "0"

	# Writes continue exactly where they stopped.
	check "$label: append continues the stream's sequence" \
		equals "$(sql "$target_database" -c "SELECT haematite.append('orders/1', '\\x07', 6)")" "7"
	check "$label: append with the sequence it had before raises SE001" \
		equals "$(psql -X -q -A -t -v VERBOSITY=sqlstate -d "$target_database" \
			-c "SELECT haematite.append('orders/2', '\\x07', 2)" 2>&1)" "ERROR:  SE001"
	check "$label: append_batch continues an expired stream after its last sequence" \
		equals "$(sql "$target_database" -c "SELECT haematite.append_batch('sessions/gone', ARRAY['\\x03']::bytea[], 2)")" "3"
	check "$label: read returns the restored and the new events" \
		equals "$(sql "$target_database" -c "SELECT string_agg(seq || ':' || encode(payload, 'hex'), ',' ORDER BY seq) FROM haematite.read('orders/1')")" \
		"0:01,1:02,2:03,3:04,5:06,6:07"
	check "$label: appended_at never goes below the restored events'" \
		equals "$(sql "$target_database" -c "SELECT bool_and(a.appended_at <= b.appended_at)
			FROM haematite.read('orders/1') AS a JOIN haematite.read('orders/1') AS b ON b.seq = a.seq + 1")" "t"
	sql "$target_database" -c "SELECT haematite.cas('cursor/a', 6, 7)" >/dev/null
	check "$label: cas continues from the restored value" \
		equals "$(sql "$target_database" -c "SELECT haematite.read_value('cursor/a')")" "7"
	check "$label: cas from the absent state fails on a restored key with SE002" \
		equals "$(psql -X -q -A -t -v VERBOSITY=sqlstate -d "$target_database" \
			-c "SELECT haematite.cas('\\x01'::bytea, NULL, 1)" 2>&1)" "ERROR:  SE002"
	check "$label: sweep deletes the three restored expired events" \
		equals "$(sql "$target_database" -c "SELECT haematite.sweep()")" "3"
}

trap cleanup EXIT
cleanup
mkdir -p "$work_dir"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE ROLE $reader_role"

default_version=$(sql postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'haematite'")
oldest_version=$(for script in "$repo_root"/haematite--*.sql; do
	version=${script##*/haematite--}
	version=${version%.sql}
	[[ $version == *--* ]] || echo "$version"
done | sort -V | head -n 1)

# A database at the default version, dumped in both formats.
new_database "$source_database"
sql "$source_database" -c "CREATE EXTENSION haematite"
write_data "$source_database"
snapshot "$source_database" >"$work_dir/source.txt"
check "the source database holds the data (a wrong setup would compare empty outputs)" \
	grep -q "next_seq orders/1: 6" "$work_dir/source.txt"
check "the source database hides the expired stream (SE003)" \
	grep -q "ERROR:  SE003" "$work_dir/source.txt"
check_dump_restore plain "plain format"
check_dump_restore custom "custom format"

# A database at the oldest version, restored where the default version is
# installed.
if [[ $oldest_version != "$default_version" ]]; then
	new_database "$source_database"
	sql "$source_database" -c "CREATE EXTENSION haematite VERSION '$oldest_version'"
	write_data "$source_database"
	snapshot "$source_database" >"$work_dir/source.txt"
	check_dump_restore custom "custom format from $oldest_version"
fi

echo "dump_restore: $passed passed, $failed failed"
((failed == 0))
