#!/bin/bash
# Run every haematite test suite on a throwaway PostgreSQL 15 server.
#
# As root, from the repository root:  bash scripts/test.sh
#
# Installs what is missing and builds haematite (scripts/setup.sh), starts a
# throwaway server (scripts/cluster.sh), then runs these suites in order:
#
#   regression   make installcheck over sql/*.sql (pg_regress)
#   isolation    make installcheck over test/isolation/specs/*.spec
#   pgtap        pg_prove over test/pgtap/*.sql, in a database that has the
#                pgtap and haematite extensions
#   <name>       each executable test/scripts/<name>.sh
#
# A suite with no files is reported as skipped. Every other suite runs even
# when an earlier one failed. A test script gets PGHOST, PGPORT, PGUSER,
# HAEMATITE_PGDATA (data directory), HAEMATITE_PGBIN (bin directory) and
# HAEMATITE_PGLOG (server log). It may stop or restart the server. If it
# leaves the server down, the server is started again before the next suite.
#
# The last line printed is "N passed, N failed", counting suites; the exit
# status is non-zero when any suite failed.
#
# Environment:
#   HAEMATITE_PORT       port of the throwaway server (default 54329)
set -euo pipefail

readonly PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

passed=0
failed=0
failed_suites=()

# Record the outcome of one suite from its exit status.
record_result() {
	local suite=$1 status=$2

	if [[ $status -eq 0 ]]; then
		echo "--- $suite: passed"
		passed=$((passed + 1))
	else
		echo "--- $suite: FAILED (exit status $status)"
		failed=$((failed + 1))
		failed_suites+=("$suite")
	fi
}

# Print a pg_regress diff file if the run left one.
print_diffs() {
	local diffs=$1

	if [[ -s $diffs ]]; then
		echo "--- $diffs:"
		cat "$diffs"
	fi
}

# Start the server again if a test script left it stopped or crashed.
# A postmaster killed a moment ago can still count as running (pg_ctl status)
# until its parent reaps it, and a restarted one may still be in crash
# recovery, so this polls for up to 30 seconds before it gives up.
ensure_server_running() {
	local _

	for _ in {1..30}; do
		if "$HAEMATITE_PGBIN/pg_isready" -q; then
			return 0
		fi
		if ! pg_ctl_as_postgres status >/dev/null 2>&1; then
			echo "The server is not running after the last suite; starting it again."
			pg_ctl_as_postgres start -w -l "$HAEMATITE_PGLOG" >/dev/null
			return
		fi
		sleep 1
	done
	return 1
}

bash "$repo_root/scripts/setup.sh"

source "$repo_root/scripts/cluster.sh"
start_cluster

shopt -s nullglob
regression_files=(sql/*.sql)
isolation_specs=(test/isolation/specs/*.spec)
pgtap_files=(test/pgtap/*.sql)
test_scripts=(test/scripts/*.sh)
shopt -u nullglob

# pg_regress suite. ISOLATION= on the command line keeps make from running
# the isolation specs here, so each suite is reported on its own.
echo
echo "=== regression (${#regression_files[@]} files in sql/)"
if ((${#regression_files[@]} == 0)); then
	echo "--- regression: skipped, no files"
else
	rm -f regression.diffs
	status=0
	make installcheck PG_CONFIG="$PG_CONFIG" ISOLATION= || status=$?
	if [[ $status -ne 0 ]]; then
		print_diffs regression.diffs
	fi
	record_result regression "$status"
fi

# Isolation suite. REGRESS= skips the pg_regress files, which ran above.
echo
echo "=== isolation (${#isolation_specs[@]} specs in test/isolation/specs/)"
if ((${#isolation_specs[@]} == 0)); then
	echo "--- isolation: skipped, no files"
else
	rm -f output_iso/regression.diffs
	status=0
	make installcheck PG_CONFIG="$PG_CONFIG" REGRESS= || status=$?
	if [[ $status -ne 0 ]]; then
		print_diffs output_iso/regression.diffs
	fi
	record_result isolation "$status"
fi

# pgTAP suite, in its own database.
echo
echo "=== pgtap (${#pgtap_files[@]} files in test/pgtap/)"
if ((${#pgtap_files[@]} == 0)); then
	echo "--- pgtap: skipped, no files"
else
	status=0
	{
		psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE haematite_pgtap' &&
			psql -X -q -v ON_ERROR_STOP=1 -d haematite_pgtap \
				-c 'CREATE EXTENSION pgtap' \
				-c 'CREATE EXTENSION haematite' &&
			pg_prove --dbname haematite_pgtap "${pgtap_files[@]}"
	} || status=$?
	record_result pgtap "$status"
fi

# Script suites (crash recovery, security, ...), one suite per script. A
# script after which the server cannot be started again fails, and so does
# every script that could not run for that reason.
echo
echo "=== scripts (${#test_scripts[@]} files in test/scripts/)"
if ((${#test_scripts[@]} == 0)); then
	echo "--- scripts: skipped, no files"
fi
server_down=false
for script in "${test_scripts[@]}"; do
	name=$(basename "$script" .sh)
	if [[ ! -x $script ]]; then
		echo "--- $name: skipped, $script is not executable"
		continue
	fi
	if $server_down; then
		echo "--- $name: not run, because the server is down"
		record_result "$name" 1
		continue
	fi
	echo
	echo "=== $name ($script)"
	status=0
	"$script" || status=$?
	if ! ensure_server_running; then
		echo "The server could not be started again after $name; the end of its log follows."
		tail -n 50 "$HAEMATITE_PGLOG" || true
		server_down=true
		if [[ $status -eq 0 ]]; then
			status=1
		fi
	fi
	record_result "$name" "$status"
done

echo
if ((failed > 0)); then
	echo "Failed suites: ${failed_suites[*]}"
fi
echo "$passed passed, $failed failed"
if ((failed > 0)); then
	exit 1
fi
