# Database helpers shared by the test scripts in test/scripts/ (sourced, not
# run).  They connect as the superuser through PGHOST, PGPORT and PGUSER.

# Run SQL in database $1 as the superuser: quiet, unaligned, tuples only,
# stopping at the first error.
sql() {
	local db=$1
	shift
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@"
}

# Create an empty database $1, dropping an old one of that name first.
new_database() {
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'SET client_min_messages = warning' \
		-c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
}
