#!/usr/bin/env bash
# Measure what one haematite.stats() call costs on a large store, next to
# the count(*) queries it avoids.
#
#   bash bench/stats.sh
#
# Runs as root: installs and builds what is missing (scripts/setup.sh),
# then starts a throwaway cluster as the postgres user under /tmp, which it
# stops and removes on exit. Not part of the test suites: it takes minutes
# and its times depend on the machine.
#
# The store: STATS_BENCH_EVENTS events (default 5,000,000) of 100 bytes in
# streams of 100 events that never expire, and 10% more that expire
# tomorrow, which sit in the partial index on expires_at. It also has
# STATS_BENCH_KEYS values (default 100,000) and a backlog of
# STATS_BENCH_BACKLOG expired events that no sweep has removed yet (default
# 10,000). After VACUUM ANALYZE, each
# query runs 1 + STATS_BENCH_RUNS times (default 9) in one new session under
# EXPLAIN (ANALYZE, TIMING OFF). The script prints the server-side execution
# time of the first run and the median of the others. Then the backlog grows to STATS_BENCH_LARGE_BACKLOG (default 500,000) and
# stats() is measured again, since its exact expired count costs time in
# proportion to the backlog. Last, sweep() empties the backlog and stats()
# is measured once more.
#
# Environment: STATS_BENCH_PORT (default 54343), and the sizes above.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
PG_BIN=/usr/lib/postgresql/15/bin

port=${STATS_BENCH_PORT:-54343}
events=${STATS_BENCH_EVENTS:-5000000}
keys=${STATS_BENCH_KEYS:-100000}
backlog=${STATS_BENCH_BACKLOG:-10000}
large_backlog=${STATS_BENCH_LARGE_BACKLOG:-500000}
runs=${STATS_BENCH_RUNS:-9}

for setting in port events keys backlog large_backlog runs; do
	if ! [[ ${!setting} =~ ^[1-9][0-9]*$ ]]; then
		echo "bench/stats.sh: $setting must be a positive integer, got '${!setting}'" >&2
		exit 2
	fi
done
if ((events % 100 != 0 || backlog % 100 != 0 || large_backlog < backlog ||
	large_backlog % 100 != 0)); then
	echo "bench/stats.sh: the event counts must be multiples of 100," \
		"and STATS_BENCH_LARGE_BACKLOG at least STATS_BENCH_BACKLOG" >&2
	exit 2
fi

bash "$repo_dir/scripts/setup.sh" >/dev/null

work_dir=$(mktemp -d /tmp/haematite-stats-bench.XXXXXX)

# Stop the server if it runs and delete its directory (the EXIT trap).
stop_cluster() {
	if [[ -f $work_dir/data/postmaster.pid ]]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work_dir/data" \
			-m fast -w -t 60 stop >/dev/null 2>&1 ||
			runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work_dir/data" \
				-m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$work_dir"
}
trap stop_cluster EXIT

chown postgres:postgres "$work_dir"
runuser -u postgres -- "$PG_BIN/initdb" -D "$work_dir/data" -U postgres \
	--auth=trust --encoding=UTF8 --no-locale >/dev/null
cat >>"$work_dir/data/postgresql.conf" <<-CONF
	port = $port
	listen_addresses = ''
	unix_socket_directories = '$work_dir'
	shared_buffers = 2GB
	max_wal_size = 16GB
	checkpoint_timeout = 1h
	synchronous_commit = off
	autovacuum = off
CONF
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work_dir/data" \
	-l "$work_dir/server.log" -w -t 120 start >/dev/null
export PGHOST=$work_dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres

sql() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

# Print the median of the numbers on standard input.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Run query $1 $runs + 1 times in one new session.  Set first_ms to the
# execution time of the first run and median_ms to the median of the
# others, in milliseconds, as EXPLAIN ANALYZE reports them on the server (no
# network, no client).  The first run also loads haematite's library and
# fills the new session's catalog caches, as a poller that connects for
# every poll pays each time.
measure() {
	local i times
	times=$(for ((i = 0; i <= runs; i++)); do
		echo "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) $1;"
	done | sql | sed -n 's/.*"Execution Time": \([0-9.]*\).*/\1/p')
	first_ms=$(head -n 1 <<<"$times")
	median_ms=$(tail -n +2 <<<"$times" | median)
}

# Append $2 streams of 100 events named $1/<n>, with TTL $3 (NULL for none),
# in two sessions at once.
fill_streams() {
	local prefix=$1 streams=$2 ttl=$3 half=$(($2 / 2))
	sql -c "SELECT count(haematite.append_batch('$prefix/' || i,
		array_fill(decode(repeat('ab', 100), 'hex'), ARRAY[100]), 0, $ttl))
		FROM generate_series(1, $half) AS i" >/dev/null &
	sql -c "SELECT count(haematite.append_batch('$prefix/' || i,
		array_fill(decode(repeat('ab', 100), 'hex'), ARRAY[100]), 0, $ttl))
		FROM generate_series($half + 1, $streams) AS i" >/dev/null
	wait
}

echo "filling: $events events, $((events / 10)) more that expire tomorrow," \
	"$backlog expired, $keys values"
sql -c 'CREATE EXTENSION haematite'
started=$SECONDS
fill_streams live $((events / 100)) NULL
fill_streams tomorrow $((events / 1000)) "'1 day'"
fill_streams expired $((backlog / 100)) "'0'"
sql -c "SELECT count(haematite.cas('key/' || i, NULL, i)) FROM generate_series(1, $keys) AS i" >/dev/null
sql -c 'VACUUM ANALYZE haematite.stream_heads, haematite.events, haematite.scalar_values'
echo "filled in $((SECONDS - started)) s"

echo
echo "stats() row:"
psql -X -x -c 'SELECT * FROM haematite.stats()'

# Each row: the query's label, its first run in a new session and the
# median of the next runs.
results=()
record() {
	measure "$2"
	results+=("$(printf '%-52s %10s %10s' "$1" "$first_ms" "$median_ms")")
}

record "stats(), backlog $backlog" 'SELECT * FROM haematite.stats()'
stats_ms=$median_ms
record "count(*) FROM events" 'SELECT count(*) FROM haematite.events'
count_ms=$median_ms
record "count(*) of the live events" 'SELECT count(*) FROM haematite.events
	WHERE expires_at IS NULL OR expires_at > statement_timestamp()'
record "count(*) FROM stream_heads" 'SELECT count(*) FROM haematite.stream_heads'

fill_streams expired_more $(((large_backlog - backlog) / 100)) "'0'"
sql -c 'VACUUM ANALYZE haematite.events'
record "stats(), backlog $large_backlog" 'SELECT * FROM haematite.stats()'
large_stats_ms=$median_ms
record "count(*) FROM events, backlog $large_backlog" 'SELECT count(*) FROM haematite.events'
large_count_ms=$median_ms

sql -c 'SELECT haematite.sweep()' >/dev/null
sql -c 'VACUUM ANALYZE haematite.events'
record "stats(), no backlog (after sweep)" 'SELECT * FROM haematite.stats()'

echo
echo "Execution time in ms (EXPLAIN ANALYZE, TIMING OFF): the first run in a new"
echo "session, and the median of the $runs runs after it in that session."
printf '%-52s %10s %10s\n' query first median
printf '%s\n' "${results[@]}"
echo
awk -v s="$stats_ms" -v c="$count_ms" -v l="$large_stats_ms" -v lc="$large_count_ms" 'BEGIN {
	printf "count(*) FROM events takes %.0f times as long as stats() (backlog small, medians)\n", c / s
	printf "count(*) FROM events takes %.1f times as long as stats() (backlog large, medians)\n", lc / l }'
