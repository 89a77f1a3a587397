# Throwaway PostgreSQL 15 cluster for the demo and the tests.
#
# Source this file from a bash script that runs as root, then call
# start_cluster. It creates a new cluster in a fresh directory under /tmp and
# starts it as the postgres OS user. Its EXIT trap stops the server and
# deletes the directory however the calling script ends: success, failure,
# Ctrl-C or SIGTERM.
#
# The server listens on a Unix socket in that directory only
# (listen_addresses is empty). The port number only names the socket file in
# that private directory, so it cannot collide with a server elsewhere on the
# machine. The port is $HAEMATITE_PORT, 54329 by default.
#
# After start_cluster these are exported:
#   PGHOST, PGPORT, PGUSER   for psql, pg_regress, pg_prove and other clients
#                            (PGUSER=postgres, the superuser; auth is trust)
#   HAEMATITE_PGDATA         the data directory
#   HAEMATITE_PGBIN          the PostgreSQL 15 bin directory (pg_ctl, initdb)
#   HAEMATITE_PGLOG          the server log file
# A test may stop, kill or restart the server itself, as long as it uses
# that data directory and the postgres OS user (see pg_ctl_as_postgres).

HAEMATITE_PGBIN=/usr/lib/postgresql/15/bin
cluster_dir=''

# Run pg_ctl on the throwaway cluster as the postgres OS user.
# Arguments are passed through, for example: pg_ctl_as_postgres status
pg_ctl_as_postgres() {
	runuser -u postgres -- "$HAEMATITE_PGBIN/pg_ctl" -D "$HAEMATITE_PGDATA" "$@"
}

# Stop the server if it runs and delete the cluster directory.
# This is the EXIT trap. Every failure in it is caught and reported, so the
# script ends with its own exit status.
stop_cluster() {
	if [[ -z $cluster_dir ]]; then
		return 0
	fi
	if pg_ctl_as_postgres status >/dev/null 2>&1; then
		pg_ctl_as_postgres stop -m fast -w >/dev/null 2>&1 ||
			pg_ctl_as_postgres stop -m immediate -w >/dev/null 2>&1 ||
			echo "warning: could not stop the server in $HAEMATITE_PGDATA" >&2
	fi
	rm -rf -- "$cluster_dir" ||
		echo "warning: could not delete $cluster_dir" >&2
	cluster_dir=''
}

# Create, configure and start the cluster, and arrange its removal on exit.
# If initdb or the server start fails, the calling script exits (set -e) and
# the trap cleans up. A failed start also prints the server log.
start_cluster() {
	local port=${HAEMATITE_PORT:-54329}

	cluster_dir=$(mktemp -d /tmp/haematite-cluster.XXXXXXXX)
	chown postgres:postgres "$cluster_dir"
	trap stop_cluster EXIT
	# An interrupted script exits through the EXIT trap with the usual status.
	trap 'exit 130' INT
	trap 'exit 143' TERM

	export HAEMATITE_PGBIN
	export HAEMATITE_PGDATA=$cluster_dir/data
	export HAEMATITE_PGLOG=$cluster_dir/server.log

	runuser -u postgres -- "$HAEMATITE_PGBIN/initdb" --pgdata="$HAEMATITE_PGDATA" \
		--username=postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null

	# Settings go into postgresql.conf, so a test that restarts the server
	# with pg_ctl gets the same ones.
	cat >>"$HAEMATITE_PGDATA/postgresql.conf" <<-EOF

		# Throwaway cluster for haematite's demo and tests.
		port = $port
		listen_addresses = ''
		unix_socket_directories = '$cluster_dir'
		fsync = on
		shared_preload_libraries = ''
	EOF

	if ! pg_ctl_as_postgres start -w -l "$HAEMATITE_PGLOG" >/dev/null; then
		echo "The throwaway PostgreSQL server failed to start; its log follows." >&2
		cat "$HAEMATITE_PGLOG" >&2 || true
		return 1
	fi

	export PGHOST=$cluster_dir
	export PGPORT=$port
	export PGUSER=postgres
	echo "Started a throwaway PostgreSQL 15 server: socket in $PGHOST, port $PGPORT."
}
