#!/bin/bash
# Run haematite's regression suite and a short randomized run against a
# PostgreSQL 15 server under Valgrind memcheck, and report every Valgrind
# error whose stack passes through haematite.
#
# As root, from anywhere:  bash test/reliability/memcheck.sh
#
# Takes 4 to 6 minutes on a 2-core machine (Valgrind slows the server
# down about 20 times), so scripts/test.sh does not run it.
#
# Steps:
#   1. build and install haematite from this checkout (make, make install);
#   2. start a throwaway cluster under Valgrind, with the postmaster and
#      every backend traced;
#   3. run `make installcheck` over sql/*.sql;
#   4. run test/reliability/fuzz.py with HAEMATITE_MEMCHECK_FUZZ_CALLS calls
#      (default 1000);
#   5. let the background sweeper delete expired events in two databases
#      and read last_sweep() and stats() (the server preloads haematite);
#   6. stop the server and summarise the logs with valgrind_report.py.
# The isolation specs are left out because their lock and deadlock timeouts
# assume normal speed, and so are sql/17_stats.sql, sql/18_worker.sql and
# sql/19_reference.sql, which expect a server without haematite preloaded.
#
# Exit status: 0 when the suites passed and no Valgrind error involves
# haematite; 1 otherwise. Errors from PostgreSQL alone are listed but do not
# fail the run: Debian's server is built without Valgrind support, so
# Valgrind cannot see palloc's chunk boundaries and reports some padding as
# uninitialised (valgrind.supp suppresses the known cases).
#
# Environment:
#   HAEMATITE_MEMCHECK_PORT        port of the cluster (default HAEMATITE_PORT + 22)
#   HAEMATITE_MEMCHECK_FUZZ_CALLS  calls of the randomized run; 0 skips it
#   HAEMATITE_MEMCHECK_KEEP=1      keep the cluster directory and its logs
set -euo pipefail

readonly PGBIN=/usr/lib/postgresql/15/bin
readonly PG_CONFIG=$PGBIN/pg_config
reliability_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$reliability_dir/../.." && pwd)
port=${HAEMATITE_MEMCHECK_PORT:-$((${HAEMATITE_PORT:-54329} + 22))}
fuzz_calls=${HAEMATITE_MEMCHECK_FUZZ_CALLS:-1000}
source "$reliability_dir/common.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "memcheck.sh must run as root (it installs packages and runs the server as postgres)" >&2
	exit 1
fi
if ! command -v valgrind >/dev/null; then
	echo "Installing valgrind"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends valgrind >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends valgrind >/dev/null; }
fi
require_psycopg2

echo "Building and installing haematite from $repo_root"
make -s -C "$repo_root" PG_CONFIG="$PG_CONFIG"
make -s -C "$repo_root" PG_CONFIG="$PG_CONFIG" install >/dev/null

work=$(mktemp -d /tmp/haematite-memcheck.XXXXXXXX)
mkdir "$work/logs"
chown -R postgres:postgres "$work"
data=$work/data

# Stop the server and delete the directory however the script ends.
cleanup() {
	if [[ -f $data/postmaster.pid ]]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" stop -m immediate -w >/dev/null 2>&1 || true
	fi
	if [[ ${HAEMATITE_MEMCHECK_KEEP:-0} == 1 ]]; then
		echo "Kept $work"
	else
		rm -rf -- "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

runuser -u postgres -- "$PGBIN/initdb" --pgdata="$data" --username=postgres \
	--auth=trust --encoding=UTF8 --locale=C >/dev/null
cat >>"$data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$work'
# Under Valgrind a backend starts in seconds; give clients time.
authentication_timeout = '5min'
shared_preload_libraries = 'haematite'
haematite.database = 'haematite_memcheck_sweep'
haematite.sweep_interval = '1s'
haematite.sweep_batch_size = 50
CONF

echo "Starting the server under Valgrind (logs in $work/logs)"
started=$SECONDS
runuser -u postgres -- valgrind --tool=memcheck --leak-check=no \
	--trace-children=yes --num-callers=40 --error-limit=no \
	--suppressions="$reliability_dir/valgrind.supp" \
	--log-file="$work/logs/valgrind.%p.log" \
	"$PGBIN/postgres" -D "$data" >"$work/server.log" 2>&1 &
for _ in $(seq 300); do
	if "$PGBIN/pg_isready" -q -h "$work" -p "$port"; then
		break
	fi
	sleep 1
done
"$PGBIN/pg_isready" -q -h "$work" -p "$port" || {
	echo "The server did not start under Valgrind; its log follows." >&2
	cat "$work/server.log" >&2
	exit 1
}

export PGHOST=$work PGPORT=$port PGUSER=postgres
status=0

echo "Running the regression suite (make installcheck over sql/*.sql)"
regress_status=0
regress_files=$(cd "$repo_root/sql" && ls *.sql | sed 's/\.sql$//' | grep -v -x -e 17_stats -e 18_worker -e 19_reference | tr '\n' ' ')
make -C "$repo_root" installcheck PG_CONFIG="$PG_CONFIG" ISOLATION= \
	REGRESS="$regress_files" \
	REGRESS_OPTS="--outputdir=$work/regress --dbname=contrib_regression" ||
	regress_status=$?
if [[ $regress_status -ne 0 ]]; then
	cat "$work/regress/regression.diffs" 2>/dev/null || true
	status=1
fi

fuzz_status=0
if [[ $fuzz_calls -gt 0 ]]; then
	echo "Running $fuzz_calls randomized calls (test/reliability/fuzz.py)"
	HAEMATITE_FUZZ_CALLS=$fuzz_calls "$RELIABILITY_PYTHON" "$reliability_dir/fuzz.py" ||
		fuzz_status=$?
	if [[ $fuzz_status -ne 0 ]]; then
		status=1
	fi
fi

# The background sweeper deletes 500 expired events in the database it
# serves, in batches of 50.  Then a sweep by hand runs in a second database,
# and each database reads its own last sweep.
echo "Running the background sweeper"
sweeper_status=0
for database in haematite_memcheck_sweep haematite_memcheck_other; do
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $database"
	psql -X -q -v ON_ERROR_STOP=1 -d "$database" -c 'CREATE EXTENSION haematite' \
		-c "SELECT count(haematite.append('memcheck/' || i, '\\x01', 0, ttl => '0'))
		    FROM generate_series(1, 500) AS i" >/dev/null
done
swept=false
for _ in $(seq 600); do
	if [[ $(psql -X -At -d haematite_memcheck_sweep -c 'SELECT count(*) FROM haematite.events') == 0 ]]; then
		swept=true
		break
	fi
	sleep 1
done
psql -X -At -d haematite_memcheck_other -c 'SELECT haematite.sweep()' >/dev/null
sweep_source=$(psql -X -At -d haematite_memcheck_sweep -c 'SELECT last_sweep_source FROM haematite.stats()')
other_source=$(psql -X -At -d haematite_memcheck_other -c 'SELECT source FROM haematite.last_sweep()')
if ! $swept || [[ $sweep_source != worker || $other_source != manual ]]; then
	echo "The sweeper run failed: swept=$swept, sources '$sweep_source' and '$other_source'"
	sweeper_status=1
	status=1
fi

echo "Stopping the server"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" stop -m fast -w -t 600 >/dev/null

report_status=0
"$RELIABILITY_PYTHON" "$reliability_dir/valgrind_report.py" "$work/logs" "$repo_root/src" ||
	report_status=$?
if [[ $report_status -ne 0 ]]; then
	status=1
fi

echo "memcheck: regression suite $( ((regress_status == 0)) && echo passed || echo FAILED )," \
	"randomized run $( ((fuzz_calls == 0)) && echo skipped || { ((fuzz_status == 0)) && echo passed || echo FAILED; } )," \
	"background sweeper $( ((sweeper_status == 0)) && echo passed || echo FAILED )," \
	"Valgrind errors in haematite: $( ((report_status == 0)) && echo none || echo FOUND )," \
	"$((SECONDS - started)) s under Valgrind"
exit "$status"
