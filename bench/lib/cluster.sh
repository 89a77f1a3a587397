# Packages, build and the throwaway cluster for bench/run.sh (sourced).
#
# Expects PG_BIN, PG_CONFIG, port, repo_dir, work_dir and results_dir to be
# set by the caller. Every server command runs as the postgres OS user,
# because PostgreSQL refuses to run as root.

# Install with apt-get whatever the benchmark needs and is missing: the
# server and pgbench (postgresql-15), psql and PGXS (postgresql-client-15 and
# postgresql-server-dev-15), and a C toolchain.
install_packages() {
	local missing=()

	[[ -x $PG_BIN/postgres && -x $PG_BIN/pgbench ]] || missing+=(postgresql-15)
	[[ -x $PG_BIN/psql ]] || missing+=(postgresql-client-15)
	[[ -f $(dirname "$PG_BIN")/lib/pgxs/src/makefiles/pgxs.mk &&
		-d /usr/include/postgresql/15/server ]] ||
		missing+=(postgresql-server-dev-15)
	command -v make >/dev/null && command -v gcc >/dev/null ||
		missing+=(build-essential)
	if ((${#missing[@]} == 0)); then
		return
	fi

	echo "installing ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}"
}

# Build and install haematite from a copy of the work tree, so that a build
# running in the tree at the same time is neither disturbed nor picked up
# half-done. Keeps a private copy of the library in $work_dir (see
# create_database).
build_extension() {
	local build_dir=$work_dir/build

	mkdir -p "$build_dir"
	tar -C "$repo_dir" --exclude=.git --exclude=bench/results \
		--exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . |
		tar -C "$build_dir" -xf -
	if ! make -C "$build_dir" PG_CONFIG="$PG_CONFIG" install \
		>"$results_dir/build.log" 2>&1; then
		tail -n 30 "$results_dir/build.log" >&2
		echo "bench: building haematite failed; see $results_dir/build.log" >&2
		return 1
	fi
	install -m 0755 "$build_dir/haematite.so" "$work_dir/haematite.so"
}

# Create the cluster in $work_dir/data with its socket in $work_dir and
# start it. The server listens on the Unix socket only.
start_cluster() {
	chown postgres:postgres "$work_dir"
	runuser -u postgres -- "$PG_BIN/initdb" -D "$work_dir/data" -U postgres \
		--auth=trust --encoding=UTF8 --no-locale >"$results_dir/initdb.log"
	cat "$bench_dir/postgresql.conf" >>"$work_dir/data/postgresql.conf"
	cat >>"$work_dir/data/postgresql.conf" <<-CONF
		port = $port
		listen_addresses = ''
		unix_socket_directories = '$work_dir'
	CONF
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work_dir/data" \
		-l "$work_dir/server.log" -w -t 120 start >/dev/null
}

# Stop the cluster if it runs, keep its log, and remove $work_dir.
# Used as the EXIT trap, so it must not fail.
stop_cluster() {
	if [[ -f $work_dir/data/postmaster.pid ]]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work_dir/data" \
			-m fast -w -t 60 stop >/dev/null 2>&1 ||
			runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work_dir/data" \
				-m immediate stop >/dev/null 2>&1 || true
	fi
	if [[ -f $work_dir/server.log && -d $results_dir ]]; then
		cp "$work_dir/server.log" "$results_dir/server.log" || true
	fi
	rm -rf "$work_dir"
}

# Run psql as the superuser on database $1; further arguments go to psql.
run_psql() {
	local database=$1
	shift
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work_dir" -p "$port" \
		-U postgres -d "$database" "$@"
}

# Create database $1 with the baselines and, unless only the baselines are
# measured, the extension.
create_database() {
	local database=$1

	run_psql postgres -c "CREATE DATABASE $database"
	if ((with_haematite)); then
		run_psql "$database" -c "CREATE EXTENSION haematite"
		# Every pgbench run opens new connections, which would load a
		# haematite.so that another build installs meanwhile. Pointing the
		# functions at the private copy keeps one build for the whole run.
		run_psql "$database" -c "
			UPDATE pg_catalog.pg_proc SET probin = '$work_dir/haematite.so'
			WHERE probin = '\$libdir/haematite'" >/dev/null
	fi
	run_psql "$database" -c "CREATE EXTENSION pg_prewarm"
	run_psql "$database" -f "$bench_dir/sql/baselines.sql" >/dev/null
}

# Load the tables and indexes of schemas haematite and bench of database $1
# into shared buffers.
prewarm() {
	run_psql "$1" -At -c "
		SELECT sum(pg_prewarm(c.oid))
		FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
		WHERE n.nspname IN ('haematite', 'bench') AND c.relkind IN ('r', 'i')" >/dev/null
}

# Pre-fill database $1 with $3 streams of $4 events each, keys numbered from
# $2; $5 is true to fill the baseline tables as well. Prints the time taken.
fill_streams() {
	local database=$1 first=$2 streams=$3 events=$4 baselines=$5
	local started=$SECONDS haematite=false

	((with_haematite)) && haematite=true
	run_psql "$database" -v first="$first" -v streams="$streams" \
		-v events="$events" -v payload_bytes="$payload_bytes" \
		-v haematite="$haematite" -v baselines="$baselines" \
		-f "$bench_dir/sql/fill.sql"
	echo "filled $database: $streams streams x $events events in $((SECONDS - started)) s"
}
