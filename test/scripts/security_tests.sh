#!/bin/bash
# haematite's security tests, against a running throwaway PostgreSQL 15
# server whose superuser this script may use freely.
#
# Usage: PGHOST=... PGPORT=... PGUSER=postgres test/scripts/security_tests.sh
#
# 1. Runs the pgTAP files test/security/*.sql with pg_prove in a new database
#    haematite_security: privileges and grant recipes, search_path and object
#    hijacking, SQL-looking keys, the batch size limit, row-level security,
#    default privileges, and the cursors behind the reads.
# 2. Runs the checks that need more than one database or a login as an
#    unprivileged role:
#    - CREATE EXTENSION works in a second database and creates no role;
#    - CREATE EXTENSION refuses a schema haematite that another role made;
#    - a role cannot raise haematite.max_batch_bytes through connection
#      options, a SET before the module is loaded, ALTER ROLE or ALTER
#      DATABASE.
#
# The server must let the roles created here log in over the socket without
# a password (trust), as the throwaway cluster of scripts/test.sh does.
# Every database and role created here is dropped on exit; their names start
# with haematite_security and haematite_sec_.  The script exits non-zero if
# any test failed.
set -euo pipefail

: "${PGHOST:?set PGHOST to the server's socket directory or host}"
: "${PGPORT:?set PGPORT to the server's port}"
: "${PGUSER:?set PGUSER to a superuser}"

security_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../security" && pwd)
readonly security_dir
readonly main_db=haematite_security
readonly second_db=haematite_security_second
readonly squat_db=haematite_security_squat
readonly login_role=haematite_sec_login
readonly squatter_role=haematite_sec_squatter

source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

# Run psql as the superuser, stopping at the first error; quiet, unaligned.
sql() {
	psql -X -q -v ON_ERROR_STOP=1 -At "$@"
}

# Print "failed" when the exit status in $1 is not 0, else "succeeded".
outcome() {
	if [[ $1 -ne 0 ]]; then
		echo failed
	else
		echo succeeded
	fi
}

# Drop what this script creates; also run at start, after an interrupted run.
cleanup() {
	local db role
	for db in "$main_db" "$second_db" "$squat_db"; do
		sql -d postgres -c 'SET client_min_messages = warning' \
			-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" ||
			echo "warning: could not drop database $db" >&2
	done
	for role in "$login_role" "$squatter_role"; do
		sql -d postgres -c 'SET client_min_messages = warning' \
			-c "DROP ROLE IF EXISTS $role" ||
			echo "warning: could not drop role $role" >&2
	done
}

# Install pgTAP and pg_prove when missing (Debian 12, as root).
install_pgtap() {
	local extension_dir
	extension_dir=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension
	if command -v pg_prove >/dev/null && [[ -f $extension_dir/pgtap.control ]]; then
		return 0
	fi
	if [[ $(id -u) -ne 0 ]]; then
		echo "pgTAP or pg_prove is missing; install postgresql-15-pgtap and" \
			"libtap-parser-sourcehandler-pgtap-perl, or run this script as root" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends postgresql-15-pgtap \
		libtap-parser-sourcehandler-pgtap-perl
}

install_pgtap
cleanup
trap cleanup EXIT

#
# 1. The pgTAP files.
#

echo "# pgTAP files in $security_dir"
sql -d postgres -c "CREATE DATABASE $main_db"
sql -d "$main_db" -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION haematite'
pgtap_status=0
pg_prove --dbname "$main_db" "$security_dir"/*.sql || pgtap_status=$?

#
# 2. Checks across databases and logins.
#

echo "# checks across databases and logins"

# A second database gets its own copy of the extension, and no role is
# created by either CREATE EXTENSION.
roles_before=$(sql -d postgres -c 'SELECT count(*) FROM pg_roles')
sql -d postgres -c "CREATE DATABASE $second_db"
second_status=0
sql -d "$second_db" -c 'CREATE EXTENSION haematite' || second_status=$?
check "CREATE EXTENSION haematite works in a second database" \
	equals "$(outcome "$second_status")" succeeded
check "the second database's streams are its own" \
	equals "$(sql -d "$second_db" -c "SELECT haematite.append('second/s', '\x01', 0)" \
		-c "SELECT haematite.next_seq('second/s')")|$(sql -d "$main_db" \
		-c "SELECT haematite.next_seq('second/s')")" "1
1|0"
check "CREATE EXTENSION created no role" \
	equals "$(sql -d postgres -c 'SELECT count(*) FROM pg_roles')" "$roles_before"

# A role that may create schemas in a database makes schema haematite
# before a superuser runs CREATE EXTENSION there.  Had the extension used
# that schema, its owner could rename it and put tables of its own, with
# triggers, under the old name.  The SECURITY DEFINER functions would then
# run those triggers as a superuser.
sql -d postgres -c "CREATE ROLE $squatter_role" -c "CREATE DATABASE $squat_db" \
	-c "GRANT CREATE ON DATABASE $squat_db TO $squatter_role"
sql -d "$squat_db" -c "SET ROLE $squatter_role" -c 'CREATE SCHEMA haematite'
squat_status=0
sql -d "$squat_db" -c 'CREATE EXTENSION haematite' 2>/dev/null || squat_status=$?
check "CREATE EXTENSION fails when another role owns schema haematite" \
	equals "$(outcome "$squat_status")|$(sql -d "$squat_db" \
		-c "SELECT count(*) FROM pg_extension WHERE extname = 'haematite'")" "failed|0"
check "no haematite function lives in a schema a non-superuser owns" \
	equals "$(sql -d "$squat_db" -c "SELECT count(*) FROM pg_proc AS p
		JOIN pg_namespace AS n ON n.oid = p.pronamespace
		JOIN pg_roles AS r ON r.oid = n.nspowner
		WHERE p.proname IN ('append', 'read', 'cas') AND NOT r.rolsuper")" 0

# An unprivileged role cannot raise haematite.max_batch_bytes.  Each attempt
# starts a new session, so the setting is given before the module is loaded;
# PostgreSQL then keeps the value as a placeholder and must discard it when
# haematite defines the setting.
sql -d postgres -c "CREATE ROLE $login_role LOGIN"
sql -d "$main_db" -c "GRANT USAGE ON SCHEMA haematite TO $login_role" \
	-c "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA haematite TO $login_role"

# Start a session as the login role with PGOPTIONS set to the first
# argument, run the other arguments (psql options), load haematite and show
# haematite.max_batch_bytes.  Succeed when the setting was refused or ended
# at its default: either psql printed 0 and 64MB, or it failed with
# "permission denied to set parameter" (the outcome when haematite is in
# shared_preload_libraries).
max_batch_bytes_unchanged() {
	local options=$1 output status=0
	shift
	output=$(PGOPTIONS=$options psql -X -q -At -U "$login_role" -d "$main_db" "$@" \
		-c "SELECT haematite.next_seq('login/s')" \
		-c 'SHOW haematite.max_batch_bytes' 2>&1) || status=$?
	if [[ $status -eq 0 && $output == *$'0\n64MB' ]]; then
		return 0
	fi
	if [[ $status -ne 0 && $output == *'permission denied to set parameter'* ]]; then
		return 0
	fi
	echo "#   psql exit status $status, output: $output"
	return 1
}

check "connection option -c haematite.max_batch_bytes=1GB is ignored" \
	max_batch_bytes_unchanged '-c haematite.max_batch_bytes=1GB'
check "SET before the module is loaded is discarded when it loads" \
	max_batch_bytes_unchanged '' -c "SET haematite.max_batch_bytes = '1GB'"
alter_role_status=0
sql -U "$login_role" -d "$main_db" \
	-c "ALTER ROLE $login_role SET haematite.max_batch_bytes = '1GB'" \
	2>/dev/null || alter_role_status=$?
check "ALTER ROLE ... SET haematite.max_batch_bytes by the role itself fails" \
	equals "$(outcome "$alter_role_status")|$(sql -d postgres -c "SELECT count(*)
		FROM pg_db_role_setting WHERE setrole = '$login_role'::regrole")" "failed|0"
alter_database_status=0
sql -U "$login_role" -d "$main_db" \
	-c "ALTER DATABASE $main_db SET haematite.max_batch_bytes = '1GB'" \
	2>/dev/null || alter_database_status=$?
check "ALTER DATABASE ... SET haematite.max_batch_bytes by the role fails" \
	equals "$(outcome "$alter_database_status")|$(sql -d postgres -c "SELECT count(*)
		FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database
		WHERE datname = '$main_db')")" "failed|0"

#
# Summary.
#

if [[ $pgtap_status -eq 0 ]]; then
	pgtap_result=passed
else
	pgtap_result="FAILED (pg_prove exit status $pgtap_status)"
fi
echo "security: pgTAP files $pgtap_result; checks across databases and logins:" \
	"$passed passed, $failed failed"
if [[ $pgtap_status -ne 0 || $failed -ne 0 ]]; then
	exit 1
fi
