#!/bin/bash
# Hot standby: haematite's read functions and stats work on a streaming
# replica, and every function that writes fails with PostgreSQL's read-only
# error, 25006, leaving the replica running.
#
# Run by scripts/test.sh with PGHOST, PGPORT, PGUSER and HAEMATITE_PGBIN set
# for its throwaway server. This script makes a replica of that server with
# pg_basebackup in a new directory under /tmp, starts it on the next port as
# the postgres OS user, and removes it on exit.
set -euo pipefail

: "${PGHOST:?}" "${PGPORT:?}" "${HAEMATITE_PGBIN:?}"

database=haematite_standby
standby_dir=$(mktemp -d /tmp/haematite-standby.XXXXXX)
standby_port=$((PGPORT + 1))
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

cleanup() {
	runuser -u postgres -- "$HAEMATITE_PGBIN/pg_ctl" -D "$standby_dir/data" \
		-m immediate stop >/dev/null 2>&1 || true
	rm -rf "$standby_dir"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
}
trap cleanup EXIT

primary_sql() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$database" -c "$1"
}

standby_sql() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$standby_dir" -p "$standby_port" \
		-d "$database" -c "$1"
}

# Succeed when statement fails on the standby with SQLSTATE 25006 and one
# of PostgreSQL's own messages for it: "cannot execute ... in a read-only
# transaction" or "cannot execute ... during recovery".
fails_read_only() {
	local output
	output=$(psql -X -q -A -t -v VERBOSITY=verbose -h "$standby_dir" \
		-p "$standby_port" -d "$database" -c "$1" 2>&1) && return 1
	if [[ $output == *"ERROR:  25006: cannot execute "*" in a read-only transaction"* ||
		$output == *"ERROR:  25006: cannot execute "*" during recovery"* ]]; then
		return 0
	fi
	echo "  output: $output" >&2
	return 1
}

# Succeed when query returns exactly the expected text on the standby.
standby_returns() {
	local actual
	actual=$(standby_sql "$1")
	if [[ $actual != "$2" ]]; then
		echo "  expected: $2" >&2
		echo "  actual:   $actual" >&2
		return 1
	fi
}

# The primary's data, before the replica is made.
PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
	-c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database"
primary_sql "CREATE EXTENSION haematite"
primary_sql "SELECT haematite.append_batch('standby/orders', ARRAY['\\x01', '\\x02']::bytea[], 0)" >/dev/null
primary_sql "SELECT haematite.cas('standby/cursor', NULL, 7)" >/dev/null

# The replica: a base backup with streaming replication configured (-R).
chown postgres "$standby_dir"
runuser -u postgres -- "$HAEMATITE_PGBIN/pg_basebackup" -h "$PGHOST" \
	-p "$PGPORT" -U postgres -D "$standby_dir/data" -R -X stream -c fast
runuser -u postgres -- "$HAEMATITE_PGBIN/pg_ctl" -D "$standby_dir/data" \
	-o "-p $standby_port -k $standby_dir -c listen_addresses='' -c hot_standby=on" \
	-l "$standby_dir/server.log" -w start >/dev/null

check "the replica is in recovery" \
	standby_returns "SELECT pg_is_in_recovery()" "t"

# An append made after the replica started reaches it, and so do an event
# that expired at once and the row counts of an ANALYZE, which stats reads.
# Wait for replay of the primary's WAL up to the ANALYZE, for at most 60
# seconds.
primary_sql "SELECT haematite.append('standby/orders', '\\x03', 2)" >/dev/null
primary_sql "SELECT haematite.append('standby/expiring', '\\x01', 0, ttl => '0')" >/dev/null
primary_sql "ANALYZE haematite.stream_heads, haematite.events, haematite.scalar_values"
target_lsn=$(primary_sql "SELECT pg_current_wal_lsn()")
for _ in $(seq 600); do
	if [[ $(standby_sql "SELECT pg_last_wal_replay_lsn() >= '$target_lsn'::pg_lsn") == t ]]; then
		break
	fi
	sleep 0.1
done

check "read returns every event on the replica" \
	standby_returns "SELECT string_agg(seq || ':' || encode(payload, 'hex'), ',' ORDER BY seq) FROM haematite.read('standby/orders')" "0:01,1:02,2:03"
check "read_from works on the replica" \
	standby_returns "SELECT string_agg(seq::text, ',') FROM haematite.read_from('standby/orders', 1, 1)" "1"
check "read streams in a select list on the replica" \
	standby_returns "SELECT count(*) FROM (SELECT haematite.read('standby/orders')) r" "3"
check "next_seq works on the replica" \
	standby_returns "SELECT haematite.next_seq('standby/orders')" "3"
check "read_value works on the replica" \
	standby_returns "SELECT haematite.read_value('standby/cursor')" "7"
check "scan works on the replica" \
	standby_returns "SELECT string_agg(convert_from(stream_key, 'UTF8') || '=' || next_seq, ',') FROM haematite.scan('standby/')" "standby/orders=3"

check "append fails with 25006 on the replica" \
	fails_read_only "SELECT haematite.append('standby/orders', '\\x04', 3)"
check "append_batch fails with 25006 on the replica" \
	fails_read_only "SELECT haematite.append_batch('standby/orders', ARRAY['\\x04']::bytea[], 3)"
check "cas fails with 25006 on the replica" \
	fails_read_only "SELECT haematite.cas('standby/cursor', 7, 8)"
check "sweep fails with 25006 on the replica" \
	fails_read_only "SELECT haematite.sweep()"
check "flush fails with 25006 on the replica" \
	fails_read_only "SELECT haematite.flush()"
check "the failed writes changed nothing" \
	standby_returns "SELECT haematite.next_seq('standby/orders') || ',' || haematite.read_value('standby/cursor')" "3,7"
check "the replica still runs and is in recovery after the failed writes" \
	standby_returns "SELECT pg_is_in_recovery()" "t"

# stats reads pg_class and the relation files, which the replica has too,
# so after the primary's ANALYZE its estimates are the exact counts.  The
# expired event is still counted, because sweep failed on the replica.  No
# sweep runs on a replica, so the last sweep columns are NULL.
check "stats counts streams, events, expired events and keys on the replica" \
	standby_returns "SELECT streams_estimate || ' ' || events_estimate || ' ' || live_events_estimate
		|| ' ' || expired_events || ' ' || cas_keys_estimate FROM haematite.stats()" \
	"$(primary_sql "SELECT (SELECT count(*) FROM haematite.stream_heads) || ' '
		|| (SELECT count(*) FROM haematite.events) || ' '
		|| (SELECT count(*) FROM haematite.events WHERE expires_at IS NULL OR expires_at > now()) || ' '
		|| (SELECT count(*) FROM haematite.events WHERE expires_at <= now()) || ' '
		|| (SELECT count(*) FROM haematite.scalar_values)")"
check "stats on the replica counts the one expired event" \
	standby_returns "SELECT expired_events FROM haematite.stats()" "1"
check "stats reports the replica's table and index sizes" \
	standby_returns "SELECT table_bytes > 0 AND index_bytes > 0 FROM haematite.stats()" "t"
check "stats reports no sweep on the replica" \
	standby_returns "SELECT last_sweep_finished_at IS NULL AND last_sweep_deleted IS NULL
		AND last_sweep_source IS NULL FROM haematite.stats()" "t"

echo "standby: $passed passed, $failed failed"
((failed == 0))
