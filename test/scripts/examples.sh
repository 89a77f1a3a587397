#!/bin/bash
# Client examples: run the producers and consumers in examples/ (Python with
# psycopg, Node.js with node-postgres, C with libpq) against a running server
# and check what they print and what they leave in the stream.
#
# Usage: PGHOST=... PGPORT=... PGUSER=postgres test/scripts/examples.sh
#
# scripts/test.sh runs it against its throwaway server; PGUSER must be a
# superuser, and the server must let the role created here log in over the
# socket without a password (trust), as that server does. It needs what
# scripts/setup.sh installs (python3-psycopg, nodejs, npm, libpq-dev, make),
# runs `npm ci` in examples/node and `make` in examples/c.
#
# For each language, in a new database with the extension, as a login role
# that has only the writer grants from the README:
#   1. This script opens a transaction that appends the stream's first event
#      and keeps the stream locked. Two producers start, and the script
#      waits until pg_stat_activity shows both blocked on that lock, then
#      commits. Each producer's first append therefore fails with SE001, so
#      every producer must report at least one retried conflict; more follow
#      while the two race.
#   2. The stream must hold exactly 1 + 2 * PRODUCER_EVENTS events, with
#      sequences 0 to next_seq - 1, each once, and each producer's events
#      in the order it appended them.
#   3. The consumer runs with --max-events, stopping part way, then again to
#      the end, then a third time, which must find nothing. The events of
#      the first two runs together must equal the stream, line for line and
#      in order, and the stored cursor must match each run's position.
#   4. A consumer under a new name starts while a transaction of this script
#      creates its cursor. The consumer's cas must fail with SE002 once that
#      transaction commits, and the consumer must stop without overwriting
#      the cursor.
#
# Every database and role created here is dropped on exit; their names start
# with haematite_examples. The script exits non-zero if any check failed.
set -euo pipefail

: "${PGHOST:?set PGHOST to the server's socket directory or host}"
: "${PGPORT:?set PGPORT to the server's port}"
: "${PGUSER:?set PGUSER to a superuser}"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly repo_root
readonly writer_role=haematite_examples_writer
readonly stream=orders/examples
readonly consumer_name=mailer
readonly cursor_key="cursors/$consumer_name/$stream"
readonly producer_events=200
readonly total_events=$((1 + 2 * producer_events))
readonly first_run_events=170
readonly first_run_page_size=40
# Seconds one example program may run; each takes well under 10 here.
readonly example_timeout=300
# The python3 that Debian's python3-psycopg is installed for; a python3
# earlier in PATH (pyenv, a virtualenv) may not have psycopg.
readonly python=/usr/bin/python3

readonly languages=(python node c)

work_dir=$(mktemp -d /tmp/haematite-examples.XXXXXX)
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

# Drop the databases and the role of this script, including those an
# interrupted earlier run left behind. The role goes last, because its
# grants in a database keep it from being dropped.
drop_databases_and_role() {
	local language

	for language in "${languages[@]}"; do
		psql -X -q -d postgres -c "DROP DATABASE IF EXISTS haematite_examples_$language WITH (FORCE)" \
			>/dev/null 2>&1 || true
	done
	psql -X -q -d postgres -c "DROP ROLE IF EXISTS $writer_role" >/dev/null 2>&1 || true
}

cleanup() {
	drop_databases_and_role
	rm -rf "$work_dir"
}
trap cleanup EXIT

# Run psql as the superuser, stopping at the first error; quiet, unaligned.
superuser_sql() {
	local database=$1
	shift
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$database" "$@"
}

# Succeed when two files are equal; otherwise print the start of their diff.
files_equal() {
	if ! diff -u "$2" "$1" >"$work_dir/diff" 2>&1; then
		head -n 40 "$work_dir/diff" >&2
		return 1
	fi
}

# Succeed when the command exited with status 0; otherwise print the end
# of its output.
exited_cleanly() {
	local status=$1 output_file=$2
	if [[ $status -ne 0 ]]; then
		echo "  exit status $status; the last lines of its output follow" >&2
		tail -n 20 "$output_file" | sed 's/^/  | /' >&2
		return 1
	fi
}

# Succeed when a producer's output ends with its summary line and reports
# at least one retried conflict.
reported_conflicts() {
	local output_file=$1 producer_id=$2
	local pattern="^producer $producer_id: appended $producer_events events, retried ([0-9]+) conflicts\$"
	local summary

	summary=$(tail -n 1 "$output_file")
	if [[ ! $summary =~ $pattern ]]; then
		echo "  unexpected summary: $summary" >&2
		return 1
	fi
	if ((BASH_REMATCH[1] < 1)); then
		echo "  no conflict retried: $summary" >&2
		return 1
	fi
}

# Poll (at most 60 seconds) until the query returns the expected text.
wait_for() {
	local database=$1 query=$2 expected=$3
	local _

	for _ in $(seq 600); do
		if [[ $(superuser_sql "$database" -c "$query") == "$expected" ]]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Print the command line that runs one example program of a language.
# Usage: example_command LANGUAGE PROGRAM, where PROGRAM is producer or consumer.
example_command() {
	case $1 in
		python) echo "$python $repo_root/examples/python/$2.py" ;;
		node) echo "node $repo_root/examples/node/$2.js" ;;
		c) echo "$repo_root/examples/c/$2" ;;
	esac
}

# Run an example program as the writer role in the given database. A program
# still running after example_timeout seconds is killed (exit status 124),
# so one that loops cannot hang the test run.
# Usage: run_example DATABASE LANGUAGE PROGRAM ARGUMENTS...
run_example() {
	local database=$1 language=$2 program=$3
	shift 3
	# shellcheck disable=SC2046 # the command line is split into words on purpose
	PGUSER=$writer_role PGDATABASE=$database timeout --kill-after=10 "$example_timeout" \
		$(example_command "$language" "$program") "$@"
}

# Build the C example and install the Node.js example's dependencies.
prepare_examples() {
	echo "Building examples/c and running npm ci in examples/node"
	make -s -C "$repo_root/examples/c" >"$work_dir/make.log" 2>&1 ||
		{ cat "$work_dir/make.log"; return 1; }
	(cd "$repo_root/examples/node" && npm ci --no-audit --no-fund --loglevel=error) \
		>"$work_dir/npm.log" 2>&1 ||
		{ cat "$work_dir/npm.log"; return 1; }
}

# Create the database of one language: the extension, and the writer grants
# from the README for the writer role.
create_database() {
	local database=$1

	superuser_sql postgres -c "CREATE DATABASE $database"
	superuser_sql "$database" \
		-c "CREATE EXTENSION haematite" \
		-c "GRANT USAGE ON SCHEMA haematite TO $writer_role" \
		-c "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA haematite TO $writer_role"
}

# Open a gate: a superuser transaction that runs the given statement and
# stays open, holding the locks the statement took, until close_gate.
# psql reads from a FIFO, so the transaction lasts until this script writes
# COMMIT. Sets gate_fd and gate_pid. Fails if the statement failed.
# Usage: open_gate DATABASE NAME STATEMENT
open_gate() {
	local database=$1 name=$2 statement=$3
	local fifo=$work_dir/$name.fifo output=$work_dir/$name.out

	mkfifo "$fifo"
	superuser_sql "$database" <"$fifo" >"$output" 2>&1 &
	gate_pid=$!
	exec {gate_fd}>"$fifo"
	printf 'BEGIN;\n%s;\n\\echo gate-open\n' "$statement" >&"$gate_fd"
	for _ in $(seq 600); do
		if grep -qx gate-open "$output" || ! kill -0 "$gate_pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if ! grep -qx gate-open "$output"; then
		sed 's/^/  | /' "$output" >&2
		close_gate
		return 1
	fi
}

# Commit the gate's transaction and wait for its psql to exit.
close_gate() {
	if kill -0 "$gate_pid" 2>/dev/null; then
		echo 'COMMIT;' >&"$gate_fd" || true
	fi
	exec {gate_fd}>&-
	wait "$gate_pid" || true
}

# Succeed once the given number of the writer role's sessions in the
# database wait for a lock.
sessions_wait_for_lock() {
	local database=$1 count=$2
	wait_for "$database" "SELECT count(*) FROM pg_stat_activity
		WHERE datname = '$database' AND usename = '$writer_role'
		AND wait_event_type = 'Lock'" "$count"
}

# Run two producers of one language against a stream that a transaction of
# this script holds locked, release it once both wait, and check them.
run_producers() {
	local database=$1 language=$2
	local id
	local -A producer_pids=() producer_status=()

	local gate_opened=true
	open_gate "$database" "$language-producer-gate" \
		"SELECT haematite.append('$stream', convert_to('{\"producer\":\"gate\",\"n\":1}', 'UTF8'), 0)" ||
		gate_opened=false
	check "$language: the gate transaction appended event 0" "$gate_opened"
	if ! $gate_opened; then
		return 1
	fi

	for id in p1 p2; do
		run_example "$database" "$language" producer "$stream" \
			--producer-id "$id" --count "$producer_events" \
			>"$work_dir/$language-$id.out" 2>&1 &
		producer_pids[$id]=$!
	done

	check "$language: both producers wait for the stream's lock" \
		sessions_wait_for_lock "$database" 2
	close_gate

	for id in p1 p2; do
		producer_status[$id]=0
		wait "${producer_pids[$id]}" || producer_status[$id]=$?
		check "$language: producer $id exits with status 0" \
			exited_cleanly "${producer_status[$id]}" "$work_dir/$language-$id.out"
		check "$language: producer $id retried at least one conflict" \
			reported_conflicts "$work_dir/$language-$id.out" "$id"
		echo "# $(tail -n 1 "$work_dir/$language-$id.out")"
	done
}

# Check the stream's contents after the producers ran.
check_stream() {
	local database=$1 language=$2
	local id

	check "$language: next_seq counts every event" \
		equals "$(superuser_sql "$database" -c "SELECT haematite.next_seq('$stream')")" \
		"$total_events"
	check "$language: sequences 0 to next_seq - 1, each once" \
		equals "$(superuser_sql "$database" -c "SELECT count(*) || ',' || count(DISTINCT seq)
			|| ',' || min(seq) || ',' || max(seq) FROM haematite.read('$stream')")" \
		"$total_events,$total_events,0,$((total_events - 1))"
	for id in p1 p2; do
		check "$language: producer $id's events, in its order" \
			equals "$(superuser_sql "$database" -c "SELECT string_agg(event ->> 'n', ',' ORDER BY seq)
				FROM (SELECT seq, convert_from(payload, 'UTF8')::json AS event
					  FROM haematite.read('$stream')) e
				WHERE event ->> 'producer' = '$id'")" \
			"$(seq -s , 1 "$producer_events")"
	done
}

# Run the consumer three times and check that it processed every event
# once, in order, across the runs.
run_consumers() {
	local database=$1 language=$2
	local run status

	for run in 1 2 3; do
		local output=$work_dir/$language-consumer-$run.out
		local -a options=(--name "$consumer_name")
		local expected_processed=0 expected_position=$total_events
		status=0

		case $run in
			1)
				options+=(--page-size "$first_run_page_size" --max-events "$first_run_events")
				expected_processed=$first_run_events
				expected_position=$first_run_events
				;;
			2) expected_processed=$((total_events - first_run_events)) ;;
		esac

		run_example "$database" "$language" consumer "$stream" "${options[@]}" \
			>"$output" 2>&1 || status=$?
		check "$language: consumer run $run exits with status 0" \
			exited_cleanly "$status" "$output"
		check "$language: consumer run $run reports its count and position" \
			equals "$(tail -n 1 "$output")" \
			"consumer $consumer_name: processed $expected_processed events, position $expected_position"
		check "$language: consumer run $run printed $expected_processed events" \
			equals "$(grep -c '^event ' "$output" || true)" "$expected_processed"
		check "$language: cursor stored after consumer run $run" \
			equals "$(superuser_sql "$database" -c "SELECT haematite.read_value('$cursor_key')")" \
			"$expected_position"
	done

	superuser_sql "$database" -c "SELECT 'event ' || seq || ' ' || convert_from(payload, 'UTF8')
		FROM haematite.read('$stream') ORDER BY seq" >"$work_dir/$language-expected-events"
	grep -h '^event ' "$work_dir/$language-consumer-1.out" "$work_dir/$language-consumer-2.out" \
		>"$work_dir/$language-consumed-events" || true
	check "$language: consumer runs processed every event once, in order" \
		files_equal "$work_dir/$language-consumed-events" "$work_dir/$language-expected-events"
}

# Run a consumer while a transaction of this script sets the same cursor:
# the consumer reads the cursor as absent, prints its first page, and its
# cas waits for that transaction. Once it commits, the cas must fail with
# SE002, the consumer must exit non-zero, and the cursor must keep the value
# this script set.
run_competing_consumer() {
	local database=$1 language=$2
	local name=auditor
	local key="cursors/$name/$stream"
	local output=$work_dir/$language-competing-consumer.out
	local consumer_pid status=0

	local gate_opened=true
	open_gate "$database" "$language-cursor-gate" "SELECT haematite.cas('$key', NULL, 100)" ||
		gate_opened=false
	check "$language: the gate transaction set the cursor" "$gate_opened"
	if ! $gate_opened; then
		return 1
	fi

	run_example "$database" "$language" consumer "$stream" --name "$name" >"$output" 2>&1 &
	consumer_pid=$!
	check "$language: the competing consumer waits for the cursor's lock" \
		sessions_wait_for_lock "$database" 1
	close_gate

	wait "$consumer_pid" || status=$?
	check "$language: the competing consumer exits with an error" \
		test "$status" -ne 0 -a "$status" -ne 124
	check "$language: the competing consumer reports SE002" \
		grep -q 'SE002' "$output"
	check "$language: the other process's cursor value stays" \
		equals "$(superuser_sql "$database" -c "SELECT haematite.read_value('$key')")" 100
}

if ! prepare_examples; then
	echo "not ok - build the examples and install their dependencies"
	echo "examples: $passed passed, 1 failed"
	exit 1
fi

drop_databases_and_role
superuser_sql postgres -c "CREATE ROLE $writer_role LOGIN"
check "the examples' role is not a superuser" \
	equals "$(superuser_sql postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = '$writer_role'")" f

for language in "${languages[@]}"; do
	database=haematite_examples_$language
	echo "# $language"
	create_database "$database"
	if ! run_producers "$database" "$language"; then
		continue
	fi
	check_stream "$database" "$language"
	run_consumers "$database" "$language"
	run_competing_consumer "$database" "$language"
done

echo "examples: $passed passed, $failed failed"
((failed == 0))
