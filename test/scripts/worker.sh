#!/bin/bash
# Background sweeper: with shared_preload_libraries = 'haematite' a worker
# deletes expired events every haematite.sweep_interval (in milliseconds,
# so also below one second), in transactions of haematite.sweep_batch_size
# rows, logs one line per sweep that deleted something, and stays out of
# the way of appends, sweep() called by hand, DROP EXTENSION, DROP
# DATABASE, shutdown, crash restart and hot standby. It is not stopped by
# ALTER DATABASE ... SET, and logs once, without FATAL lines, that a
# database accepts no connections. last_sweep() reports the last sweep of
# the current database, also one that was terminated part way.
#
# Run as root. scripts/test.sh runs it with PGPORT set to its own server's
# port; this script never uses that server. It starts its own cluster with
# the library preloaded on port PGPORT + 3 (HAEMATITE_PORT + 3, 54332 by
# default) and a streaming replica of it on PGPORT + 4. Both run as the
# postgres OS user under a new directory in /tmp, removed on exit.
#
# Every wait polls with a limit of at most 60 seconds. The few fixed pauses
# only give the sweeper time to do something it must not do (log a message
# twice, sweep while disabled); they cannot make a correct sweeper fail.
set -euo pipefail

HAEMATITE_PGBIN=${HAEMATITE_PGBIN:-/usr/lib/postgresql/15/bin}
base_port=${PGPORT:-${HAEMATITE_PORT:-54329}}
port=$((base_port + 3))
standby_port=$((base_port + 4))
database=haematite_worker
work_dir=$(mktemp -d /tmp/haematite-worker.XXXXXX)
data_dir=$work_dir/data
log_file=$work_dir/server.log
standby_dir=$work_dir/standby
standby_log=$work_dir/standby.log
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

# Stop both servers and remove their directory, however the script ends.
cleanup() {
	local dir
	for dir in "$standby_dir" "$data_dir"; do
		if [[ -d $dir ]]; then
			runuser -u postgres -- "$HAEMATITE_PGBIN/pg_ctl" -D "$dir" \
				-m immediate stop >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$work_dir"
}
trap cleanup EXIT

pg_ctl_primary() {
	runuser -u postgres -- "$HAEMATITE_PGBIN/pg_ctl" -D "$data_dir" "$@"
}

# Stop the primary with a fast shutdown, failing after 60 seconds.
stop_fast() {
	pg_ctl_primary -m fast -t 60 -w stop >/dev/null
}

# Run SQL on the primary: sql DATABASE STATEMENT...
sql() {
	local db=$1
	shift
	local args=()
	local statement
	for statement in "$@"; do
		args+=(-c "$statement")
	done
	psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$work_dir" -p "$port" \
		-U postgres -d "$db" "${args[@]}"
}

standby_sql() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$work_dir" -p "$standby_port" \
		-U postgres -d "$database" -c "$1"
}

# Succeed when the query returns exactly the expected text.
returns() {
	local db=$1 query=$2 expected=$3 actual
	actual=$(sql "$db" "$query")
	if [[ $actual != "$expected" ]]; then
		echo "  query:    $query" >&2
		echo "  expected: $expected" >&2
		echo "  actual:   $actual" >&2
		return 1
	fi
}

# Poll a command every 0.2 seconds until it succeeds, for at most the
# given number of seconds: wait_for SECONDS COMMAND...
wait_for() {
	local seconds=$1
	shift
	local attempt
	for ((attempt = 0; attempt < seconds * 5; attempt++)); do
		if "$@" 2>/dev/null; then
			return 0
		fi
		sleep 0.2
	done
	echo "  gave up after $seconds s waiting for: $*" >&2
	"$@" || true
	return 1
}

# Succeed when the query returns "t".
is_true() {
	[[ $(sql "$1" "$2") == t ]]
}

# The size of the server log, to read what was logged after this point.
log_mark() {
	stat -c %s "$log_file"
}

# Print what the server logged after a mark.
log_since() {
	tail -c "+$(($1 + 1))" "$log_file"
}

# Count the log lines after a mark that match an extended regex.
count_log_lines() {
	log_since "$1" | grep -c -E -- "$2" || true
}

# Succeed when the log after a mark has exactly N lines matching a regex.
log_has_lines() {
	local mark=$1 pattern=$2 expected=$3 actual
	actual=$(count_log_lines "$mark" "$pattern")
	if [[ $actual != "$expected" ]]; then
		echo "  expected $expected log lines matching: $pattern" >&2
		echo "  found $actual; the log since the mark follows" >&2
		log_since "$mark" | sed 's/^/  | /' >&2
		return 1
	fi
}

# Sum the counts of the sweep worker's log lines after a mark.
sum_worker_deletions() {
	log_since "$1" |
		sed -n -E 's/.*haematite sweep worker deleted ([0-9]+) expired events? in database.*/\1/p' |
		awk '{ total += $1 } END { print total + 0 }'
}

# Set sweeper settings with ALTER SYSTEM and reload the configuration.
reload_with() {
	local setting
	for setting in "$@"; do
		sql postgres "ALTER SYSTEM SET $setting" >/dev/null
	done
	sql postgres "SELECT pg_reload_conf()" >/dev/null
}

# Succeed when no line of a file matches an extended regex.
file_lacks() {
	if grep -E -- "$2" "$1" >&2; then
		echo "  (lines of $1 that match: $2)" >&2
		return 1
	fi
}

launcher_pid() {
	sql postgres "SELECT pid FROM pg_stat_activity WHERE backend_type = 'haematite sweep launcher'"
}

launcher_running_with_new_pid() {
	local pid
	pid=$(launcher_pid)
	[[ -n $pid && $pid != "$1" ]]
}

process_gone() {
	! kill -0 "$1" 2>/dev/null
}

# The finish time of the last recorded sweep, or an empty line.
last_sweep_time() {
	sql "$database" "SELECT finished_at FROM haematite.last_sweep()"
}

last_sweep_newer_than() {
	[[ $(last_sweep_time) > "$1" ]]
}

# Wait until the worker has recorded the given number of further rounds.
wait_for_rounds() {
	local rounds=$1 round previous
	for ((round = 0; round < rounds; round++)); do
		previous=$(last_sweep_time)
		wait_for 30 last_sweep_newer_than "$previous" || return 1
	done
}

# The number of event rows in streams whose key starts with prefix/.
events_under() {
	sql "$database" "SELECT count(*) FROM haematite.events WHERE convert_from(stream_key, 'UTF8') LIKE '$1/%'"
}

# Succeed when the streams under a prefix hold exactly N event rows.
events_under_are() {
	local actual
	actual=$(events_under "$1")
	if [[ $actual != "$2" ]]; then
		echo "  $1/: expected $2 event rows, found $actual" >&2
		return 1
	fi
}

# Succeed when the standby returns exactly the expected text.
standby_returns() {
	local actual
	actual=$(standby_sql "$1")
	if [[ $actual != "$2" ]]; then
		echo "  standby query: $1" >&2
		echo "  expected: $2" >&2
		echo "  actual:   $actual" >&2
		return 1
	fi
}

# Append count events that expire at once, in one transaction, spread over
# streams named prefix/0, prefix/1, ... with per_stream events each.
append_expired() {
	local prefix=$1 streams=$2 per_stream=$3
	sql "$database" "SELECT count(haematite.append_batch('$prefix/' || i,
		array_fill('\\x01'::bytea, ARRAY[$per_stream]), 0, '0'))
		FROM generate_series(0, $streams - 1) AS i" >/dev/null
}

# The pid of the sweep worker, or an empty line when none runs.
sweep_worker_pid() {
	sql postgres "SELECT pid FROM pg_stat_activity WHERE backend_type = 'haematite sweep worker'"
}

# Succeed when a sweep worker is running.
sweep_worker_running() {
	[[ -n $(sweep_worker_pid) ]]
}

# The last sweep of a database as finished_at|deleted|source.
last_sweep_record() {
	sql "$1" "SELECT finished_at || '|' || deleted || '|' || source FROM haematite.last_sweep()"
}

# Succeed when the last sweep of every given database was a sweep by hand.
last_sweeps_are_manual() {
	local db source
	for db in "$@"; do
		source=$(sql "$db" "SELECT coalesce(source, 'none') FROM haematite.last_sweep()")
		if [[ $source != manual ]]; then
			echo "  $db: expected a sweep by hand, found $source" >&2
			return 1
		fi
	done
}

# Set a setting of the swept database with ALTER DATABASE ... SET.
set_database_setting() {
	sql postgres "ALTER DATABASE $database SET $1" >/dev/null
}

# Wait until the worker has deleted some of a large backlog, so that the
# next statement runs while a sweep is in progress (not checked: it may
# also run between two sweeps, which the checks after it accept too).
wait_until_sweep_started() {
	local prefix=$1 total=$2
	wait_for 30 is_true "$database" \
		"SELECT count(*) < $total FROM haematite.events WHERE convert_from(stream_key, 'UTF8') LIKE '$prefix/%'"
}

# The cluster, with the library preloaded and a short interval.
chown postgres "$work_dir"
runuser -u postgres -- "$HAEMATITE_PGBIN/initdb" --pgdata="$data_dir" \
	--username=postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
cat >>"$data_dir/postgresql.conf" <<EOF

# Throwaway cluster for haematite's background sweeper test.
port = $port
listen_addresses = ''
unix_socket_directories = '$work_dir'
log_line_prefix = '%m [%p] %b: '
shared_preload_libraries = 'haematite'
haematite.database = '$database'
haematite.sweep_interval = '1s'
haematite.sweep_batch_size = 7
EOF
pg_ctl_primary -l "$log_file" -w start >/dev/null

check "pg_settings shows the sweeper's settings" \
	returns postgres "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ',' ORDER BY name)
		FROM pg_settings WHERE name IN ('haematite.database', 'haematite.sweep_interval', 'haematite.sweep_batch_size')" \
	"haematite.database=$database,haematite.sweep_batch_size=7,haematite.sweep_interval=1000ms"
check "the sweep interval is in milliseconds and one minute by default" \
	returns postgres "SELECT unit || ',' || boot_val FROM pg_settings WHERE name = 'haematite.sweep_interval'" \
	"ms,60000"
check "the launcher logs its start" \
	wait_for 30 log_has_lines 0 'haematite sweep launcher started for database "haematite_worker", interval 1000 ms, batch size 7' 1

# A database that does not exist yet: one log line, however many rounds.
check "a missing database is logged" \
	wait_for 30 log_has_lines 0 "idle because database \"$database\" does not exist" 1
sleep 3
check "a missing database is logged once" \
	log_has_lines 0 "idle because database \"$database\" does not exist" 1

# A database without the extension: one log line too.
sql postgres "CREATE DATABASE $database"
check "a database without the extension is logged" \
	wait_for 30 log_has_lines 0 'idle because extension "haematite" is not installed' 1
sleep 3
check "a database without the extension is logged once" \
	log_has_lines 0 'idle because extension "haematite" is not installed' 1

sql "$database" "CREATE EXTENSION haematite"
check "the worker records a sweep once the extension exists" \
	wait_for 30 returns "$database" "SELECT source FROM haematite.last_sweep()" worker

# Interval 0 stops the sweeper. Two seconds let the launcher apply the reload
# and end a round it may be running.
reload_with "haematite.sweep_interval = 0"
sleep 2
append_expired worker/expired 5 10
sql "$database" "SELECT haematite.append_batch('worker/kept', ARRAY['\\x01', '\\x02']::bytea[], 0)" >/dev/null
sql "$database" "SELECT haematite.append('worker/kept', '\\x03', 2, '1 hour')" >/dev/null
xid_before=$(sql "$database" "SELECT txid_current()")
sleep 3
check "interval 0 deletes nothing" \
	returns "$database" "SELECT count(*) FROM haematite.events" 53

# A reload with a 1 s interval starts sweeping without a restart.
mark=$(log_mark)
reload_with "haematite.sweep_interval = '1s'"
check "the worker deletes expired events after a reload" \
	wait_for 30 returns "$database" "SELECT count(*) FROM haematite.events" 3
xid_after=$(sql "$database" "SELECT txid_current()")
check "each batch of 7 rows commits on its own" \
	test $((xid_after - xid_before)) -ge $((50 / 7 + 1 + 1))
check "sweeping keeps next_seq" \
	returns "$database" "SELECT string_agg(haematite.next_seq('worker/expired/' || i)::text, ',') FROM generate_series(0, 4) AS i" "10,10,10,10,10"
check "sweeping keeps live events" \
	returns "$database" "SELECT string_agg(seq::text, ',') FROM haematite.read('worker/kept')" "0,1,2"
check "the worker logs the rows it deleted" \
	test "$(sum_worker_deletions "$mark")" -eq 50
check "the log line names the database and the duration" \
	log_has_lines "$mark" "haematite sweep worker deleted [0-9]+ expired events? in database \"$database\" in [0-9]+ ms" \
	"$(count_log_lines "$mark" 'haematite sweep worker deleted')"
check "last_sweep reports the worker" \
	returns "$database" "SELECT source, deleted >= 0, finished_at <= now() FROM haematite.last_sweep()" "worker|t|t"

# Idle rounds log nothing.
mark=$(log_mark)
check "idle rounds are recorded" wait_for_rounds 3
check "idle rounds log nothing" log_has_lines "$mark" "haematite sweep" 0

# sweep() called by hand is recorded as manual.
reload_with "haematite.sweep_interval = 0"
sleep 2
append_expired worker/manual 1 5
check "sweep by hand deletes the expired events" \
	returns "$database" "SELECT haematite.sweep()" 5
check "last_sweep reports the sweep by hand" \
	returns "$database" "SELECT source, deleted FROM haematite.last_sweep()" "manual|5"
# A sweep by hand is recorded when its transaction commits, without the
# sweeps of rolled back subtransactions.
append_expired worker/rollback 1 4
recorded_before=$(sql "$database" "SELECT finished_at || ',' || deleted FROM haematite.last_sweep()")
sql "$database" "BEGIN" "SELECT haematite.sweep()" "ROLLBACK" >/dev/null
check "a rolled back sweep by hand is not recorded" \
	returns "$database" "SELECT finished_at || ',' || deleted FROM haematite.last_sweep()" "$recorded_before"
check "a rolled back sweep by hand leaves the events" \
	events_under_are worker/rollback 4
sql "$database" "BEGIN" "SELECT haematite.sweep(1)" "SAVEPOINT s" \
	"SELECT haematite.sweep(1)" "ROLLBACK TO SAVEPOINT s" "COMMIT" >/dev/null
check "a rolled back savepoint's sweep is not counted" \
	returns "$database" "SELECT source, deleted FROM haematite.last_sweep()" "manual|1"
sql "$database" "BEGIN" "SELECT haematite.sweep(1)" "SAVEPOINT s" \
	"SELECT haematite.sweep(2)" "RELEASE SAVEPOINT s" "COMMIT" >/dev/null
check "the sweeps of one transaction are recorded as one" \
	returns "$database" "SELECT source, deleted FROM haematite.last_sweep()" "manual|3"
check "the committed sweeps by hand removed their events" \
	events_under_are worker/rollback 0

check "last_sweep is not executable by PUBLIC" \
	returns "$database" "SELECT has_function_privilege('public', 'haematite.last_sweep()', 'EXECUTE')" f

# sweep() by hand in an open transaction and the worker: the worker skips
# the rows that the open transaction deleted, deletes the others without
# waiting for it, and the two counts add up to the rows appended.
append_expired worker/shared 20 50
mark=$(log_mark)
coproc HAND {
	psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$work_dir" -p "$port" \
		-U postgres -d "$database" 2>&1
}
# Bash unsets HAND_PID when the coprocess ends, so keep a copy.
hand_pid=$HAND_PID
echo "BEGIN; SELECT haematite.sweep(100);" >&"${HAND[1]}"
read -r -t 30 -u "${HAND[0]}" hand_deleted
check "sweep by hand in an open transaction deletes 100" test "$hand_deleted" = 100
reload_with "haematite.sweep_interval = '1s'"
check "the worker sweeps past rows locked by sweep by hand" \
	wait_for 60 events_under_are worker/shared 100
echo "COMMIT; SELECT count(*) FROM haematite.events WHERE convert_from(stream_key, 'UTF8') LIKE 'worker/shared/%';" >&"${HAND[1]}"
read -r -t 30 -u "${HAND[0]}" left_after_commit
check "the commit of the sweep by hand removes its rows" test "$left_after_commit" = 0
check "sweep by hand and worker count each row once" \
	test $((hand_deleted + $(sum_worker_deletions "$mark"))) -eq 1000

# An append left open on a stream does not stop the worker from deleting
# that stream's expired events, and commits afterwards.
append_expired worker/busy 1 10
echo "BEGIN; SELECT haematite.append('worker/busy/0', '\\x02', 10);" >&"${HAND[1]}"
read -r -t 30 -u "${HAND[0]}" open_append
check "an append in an open transaction succeeds" test "$open_append" = 11
check "the worker sweeps a stream with an open append" \
	wait_for 60 events_under_are worker/busy 0
echo "COMMIT; SELECT haematite.next_seq('worker/busy/0') || ':' || (SELECT string_agg(seq::text, ',') FROM haematite.read('worker/busy/0'));" >&"${HAND[1]}"
read -r -t 30 -u "${HAND[0]}" after_append
check "the open append commits after the sweep" test "$after_append" = "11:10"

# Many short sweeps by hand while the worker sweeps: no deadlock, no error,
# and every row is counted once.
mark=$(log_mark)
append_expired worker/race 40 100
wait_until_sweep_started worker/race 4000 || true
race_hand=0
race_replies_ok=true
for _ in $(seq 100); do
	echo "SELECT haematite.sweep(13);" >&"${HAND[1]}"
	count=''
	read -r -t 30 -u "${HAND[0]}" count || true
	if [[ ! $count =~ ^[0-9]+$ ]]; then
		echo "  sweep by hand returned: $count" >&2
		race_replies_ok=false
		break
	fi
	race_hand=$((race_hand + count))
done
check "sweeps by hand during a worker sweep succeed" $race_replies_ok
echo '\q' >&"${HAND[1]}"
wait "$hand_pid" || true
check "the racing sweeps delete every expired event" \
	wait_for 60 events_under_are worker/race 0
check "racing sweeps count each row once" \
	test $((race_hand + $(sum_worker_deletions "$mark"))) -eq 4000
check "racing sweeps log no error" log_has_lines "$mark" "ERROR|FATAL|deadlock" 0

# SIGTERM ends the launcher at once; the postmaster starts it again.
pid=$(launcher_pid)
kill -TERM "$pid"
check "the launcher exits on SIGTERM" wait_for 10 process_gone "$pid"
check "the postmaster restarts a terminated launcher" \
	wait_for 60 launcher_running_with_new_pid "$pid"

# SIGKILL of the launcher makes the postmaster restart every process; the
# launcher comes back and sweeps.
pid=$(launcher_pid)
kill -KILL "$pid"
check "the launcher comes back after a crash restart" \
	wait_for 60 launcher_running_with_new_pid "$pid"
append_expired worker/after_crash 1 3
check "the worker sweeps after a crash restart" \
	wait_for 30 events_under_are worker/after_crash 0

# DDL during a long sweep round. With one event per transaction, a round
# over 20000 events takes much longer than the 5 seconds that DROP DATABASE
# waits for other sessions to leave. A worker that stayed in the database to
# the end of its round would make the drop fail. Each case first checks that
# the worker is still in its round.
reload_with "haematite.sweep_batch_size = 1"

# DROP EXTENSION while the worker sweeps: it waits at most for one batch,
# and the worker then goes quiet.
append_expired worker/drop_extension 20 1000
wait_until_sweep_started worker/drop_extension 20000 || true
check "the worker is sweeping before the DROP EXTENSION" sweep_worker_running
mark=$(log_mark)
check "DROP EXTENSION succeeds during a sweep" \
	sql "$database" "SET statement_timeout = '60s'" "DROP EXTENSION haematite"
check "the worker reports the dropped extension" \
	wait_for 30 log_has_lines "$mark" 'idle because extension "haematite" is not installed' 1
check "DROP EXTENSION causes no worker error" \
	log_has_lines "$mark" "haematite sweep .*(ERROR|FATAL)" 0

# A plain DROP DATABASE (without FORCE) during a sweep: the worker leaves
# the database between two batches.
sql "$database" "CREATE EXTENSION haematite"
append_expired worker/drop_database 20 1000
wait_until_sweep_started worker/drop_database 20000 || true
check "the worker is sweeping before the DROP DATABASE" sweep_worker_running
mark=$(log_mark)
check "DROP DATABASE succeeds during a sweep" \
	sql postgres "SET statement_timeout = '60s'" "DROP DATABASE $database"
check "the launcher reports the dropped database" \
	wait_for 30 log_has_lines "$mark" "idle because database \"$database\" does not exist" 1

# A fast shutdown during a sweep is not held up by the sweeper.
sql postgres "CREATE DATABASE $database"
sql "$database" "CREATE EXTENSION haematite"
append_expired worker/shutdown 20 1000
wait_until_sweep_started worker/shutdown 20000 || true
check "the worker is sweeping before the fast shutdown" sweep_worker_running
check "a fast shutdown during a sweep completes" stop_fast
pg_ctl_primary -l "$log_file" -w start >/dev/null

# The restart began with no sweep recorded. Sweep the rest of the backlog
# by hand, so that the worker's next rounds find nothing left.
reload_with "haematite.sweep_batch_size = 1000"
sql "$database" "SELECT haematite.sweep()" >/dev/null
check "the backlog is gone after the restart" \
	wait_for 60 events_under_are worker/shutdown 0

# Each database has its own last sweep: the worker's rounds show only in
# haematite.database, and a sweep by hand only in its own database.
other_database=${database}_other
sql postgres "CREATE DATABASE $other_database"
sql "$other_database" "CREATE EXTENSION haematite"
check "the worker records rounds in its database" wait_for_rounds 2
check "another database has no record of the worker's rounds" \
	returns "$other_database" "SELECT coalesce(source, 'none') FROM haematite.last_sweep()" none
check "stats() in another database has no record of the worker's rounds" \
	returns "$other_database" "SELECT coalesce(last_sweep_source, 'none') FROM haematite.stats()" none
reload_with "haematite.sweep_interval = 0"
sleep 2
worker_record=$(last_sweep_record "$database")
check "the worker's database records the worker" test "${worker_record##*|}" = worker
check "sweep by hand in another database" \
	returns "$other_database" "SELECT haematite.sweep(0)" 0
check "last_sweep reports the sweep by hand in its database" \
	returns "$other_database" "SELECT source, deleted FROM haematite.last_sweep()" "manual|0"
check "stats() reports the sweep by hand in its database" \
	returns "$other_database" "SELECT last_sweep_source, last_sweep_deleted FROM haematite.stats()" "manual|0"
check "a sweep in another database leaves the worker's record" \
	equals "$(last_sweep_record "$database")" "$worker_record"
check "stats() reports the worker's record in its database" \
	returns "$database" "SELECT last_sweep_finished_at || '|' || last_sweep_deleted || '|' || last_sweep_source FROM haematite.stats()" "$worker_record"

# Shared memory keeps the last sweep of 32 databases. With the two above
# and 30 more, every record stays; a sweep in a 33rd database replaces the
# record whose sweep is oldest, the worker's.
extra_databases=()
for i in $(seq 31); do
	extra_databases+=("${database}_extra_$i")
	sql postgres "CREATE DATABASE ${database}_extra_$i TEMPLATE $other_database"
done
for db in "${extra_databases[@]:0:30}"; do
	sql "$db" "SELECT haematite.sweep(0)" >/dev/null
done
check "32 databases keep their last sweeps" \
	equals "$(last_sweep_record "$database")" "$worker_record"
sql "${extra_databases[30]}" "SELECT haematite.sweep(0)" >/dev/null
check "a sweep in a 33rd database replaces the oldest record" \
	returns "$database" "SELECT coalesce(source, 'none') FROM haematite.last_sweep()" none
check "the 32 newer records stay" \
	last_sweeps_are_manual "$other_database" "${extra_databases[@]}"
for db in "${extra_databases[@]}"; do
	sql postgres "DROP DATABASE $db"
done

# A database that accepts no connections: the launcher logs that once and
# starts no worker, so no FATAL line appears, however many rounds pass.
sql postgres "ALTER DATABASE $database WITH ALLOW_CONNECTIONS false"
mark=$(log_mark)
reload_with "haematite.sweep_interval = '1s'"
check "a database without connections is logged" \
	wait_for 30 log_has_lines "$mark" "database \"$database\" does not accept connections" 1
sleep 3
check "a database without connections is logged once" \
	log_has_lines "$mark" "does not accept connections" 1
check "a database without connections gets no sweep worker" \
	log_has_lines "$mark" "FATAL|exited with exit code" 0

mark=$(log_mark)
reload_with "haematite.database = 'template0'"
check "template0 is logged as a database without connections" \
	wait_for 30 log_has_lines "$mark" 'database "template0" does not accept connections' 1
sleep 3
check "template0 is logged once" \
	log_has_lines "$mark" "does not accept connections" 1
check "template0 gets no sweep worker" \
	log_has_lines "$mark" "FATAL|exited with exit code" 0

# A database that an interrupted DROP DATABASE left behind is marked
# invalid with datconnlimit -2 and accepts no connections either.
invalid_database=${database}_invalid
sql postgres "CREATE DATABASE $invalid_database"
sql postgres "UPDATE pg_database SET datconnlimit = -2 WHERE datname = '$invalid_database'"
mark=$(log_mark)
reload_with "haematite.database = '$invalid_database'"
check "an invalid database is logged as a database without connections" \
	wait_for 30 log_has_lines "$mark" "database \"$invalid_database\" does not accept connections" 1
sleep 3
check "an invalid database is logged once" \
	log_has_lines "$mark" "does not accept connections" 1
check "an invalid database gets no sweep worker" \
	log_has_lines "$mark" "FATAL|exited with exit code" 0
sql postgres "DROP DATABASE $invalid_database"

sql postgres "ALTER DATABASE $database WITH ALLOW_CONNECTIONS true"
reload_with "haematite.database = '$database'"
append_expired worker/connections_again 1 5
check "the worker sweeps once the database accepts connections again" \
	wait_for 30 events_under_are worker/connections_again 0

# Settings made with ALTER DATABASE ... SET, which the database owner may
# run, do not stop the worker. This script's own sessions override them.
# The last sweep before them is one by hand.
reload_with "haematite.sweep_interval = 0"
sleep 2
check "sweep by hand before the database's settings" \
	returns "$database" "SELECT haematite.sweep(0)" 0
set_database_setting "default_transaction_read_only = on"
set_database_setting "statement_timeout = '1ms'"
set_database_setting "lock_timeout = '1ms'"
set_database_setting "idle_in_transaction_session_timeout = '1ms'"
set_database_setting "default_transaction_isolation = 'serializable'"
check "the database has the settings" \
	returns postgres "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting
		WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = '$database') AND setrole = 0" \
	"default_transaction_read_only=on,statement_timeout=1ms,lock_timeout=1ms,idle_in_transaction_session_timeout=1ms,default_transaction_isolation=serializable"
export PGOPTIONS="-c default_transaction_read_only=off -c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0"
append_expired worker/settings 20 1000
mark=$(log_mark)
reload_with "haematite.sweep_interval = '1s'"
check "the worker sweeps despite the database's settings" \
	wait_for 60 events_under_are worker/settings 0
check "the worker deleted them all" \
	equals "$(sum_worker_deletions "$mark")" 20000
check "the database's settings cause no worker error" \
	log_has_lines "$mark" "ERROR|FATAL" 0
check "last_sweep reports the worker despite the database's settings" \
	wait_for 30 returns "$database" "SELECT source FROM haematite.last_sweep()" worker
sql postgres "ALTER DATABASE $database RESET ALL"
unset PGOPTIONS

# A round that is terminated part way has its committed batches recorded,
# though it logs no line. The last sweep before it is one by hand, and the
# sweeper is off again before the termination, so no later round can
# overwrite the record. With one event per batch, 20000 events make the
# round last much longer than the few statements before the termination.
reload_with "haematite.sweep_interval = 0" "haematite.sweep_batch_size = 1"
sleep 2
check "sweep by hand before the terminated round" \
	returns "$database" "SELECT haematite.sweep(0)" 0
append_expired worker/terminated 20 1000
mark=$(log_mark)
reload_with "haematite.sweep_interval = '1s'"
wait_until_sweep_started worker/terminated 20000 || true
reload_with "haematite.sweep_interval = 0"
pid=$(sweep_worker_pid)
check "the sweep worker is terminated part way" \
	is_true postgres "SELECT pg_terminate_backend(${pid:-NULL})"
check "the terminated sweep worker exits" wait_for 30 process_gone "$pid"
terminated_left=$(events_under worker/terminated)
check "the terminated round left expired events" test "$terminated_left" -gt 0
check "last_sweep reports what the terminated round deleted" \
	wait_for 10 returns "$database" "SELECT source, deleted FROM haematite.last_sweep()" \
	"worker|$((20000 - terminated_left))"
check "the terminated round logs no deletion" \
	log_has_lines "$mark" "haematite sweep worker deleted" 0

# An interval below one second is kept in milliseconds: 400 ms sweeps.
reload_with "haematite.sweep_interval = '400ms'" "haematite.sweep_batch_size = 1000"
check "pg_settings shows an interval of 400 ms" \
	wait_for 10 returns postgres "SELECT setting || unit FROM pg_settings WHERE name = 'haematite.sweep_interval'" 400ms
append_expired worker/subsecond 1 5
check "an interval of 400 ms sweeps" \
	wait_for 30 events_under_are worker/subsecond 0
check "an interval of 400 ms sweeps what the terminated round left" \
	wait_for 30 events_under_are worker/terminated 0
check "rounds repeat with an interval of 400 ms" wait_for_rounds 3
sql postgres "DROP DATABASE $other_database"

# A hot standby runs no sweeper and logs nothing about it; once promoted,
# it sweeps. The primary stops sweeping so that the standby has expired
# events to delete after promotion.
reload_with "haematite.sweep_interval = 0"
sleep 2
sql "$database" "DELETE FROM haematite.events" >/dev/null
append_expired worker/standby 1 20
runuser -u postgres -- "$HAEMATITE_PGBIN/pg_basebackup" -h "$work_dir" -p "$port" \
	-U postgres -D "$standby_dir" -R -X stream -c fast
runuser -u postgres -- "$HAEMATITE_PGBIN/pg_ctl" -D "$standby_dir" \
	-o "-p $standby_port -c hot_standby=on -c haematite.sweep_interval=1s" \
	-l "$standby_log" -w start >/dev/null
check "the replica is in recovery" \
	standby_returns "SELECT pg_is_in_recovery()" t
sleep 3
check "the replica runs no sweeper" \
	standby_returns "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'haematite%'" 0
check "the replica logs nothing about the sweeper" \
	file_lacks "$standby_log" "haematite sweep|ERROR|FATAL"
check "the replica keeps the expired events" \
	standby_returns "SELECT count(*) FROM haematite.events" 20
runuser -u postgres -- "$HAEMATITE_PGBIN/pg_ctl" -D "$standby_dir" -w promote >/dev/null
check "the promoted replica runs the launcher" \
	wait_for 60 standby_returns "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'haematite sweep launcher'" 1
check "the promoted replica sweeps" \
	wait_for 60 standby_returns "SELECT count(*) FROM haematite.events" 0

echo "worker: $passed passed, $failed failed"
((failed == 0))
