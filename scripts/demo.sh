#!/bin/bash
# Run the haematite demo on this machine's dpkg log.
#
# As root, from the repository root:  bash scripts/demo.sh
#
# Installs what is missing and builds haematite (scripts/setup.sh), starts a
# throwaway PostgreSQL 15 server (scripts/cluster.sh), creates a database with
# the extension, and runs demo/demo.sql with the log on standard input. The
# server and its data are deleted when the script ends, so every run starts
# from an empty cluster and the demo can be run any number of times.
#
# Environment:
#   HAEMATITE_DPKG_LOG   the log to import (default /var/log/dpkg.log)
#   HAEMATITE_PORT       port of the throwaway server (default 54329)
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dpkg_log=${HAEMATITE_DPKG_LOG:-/var/log/dpkg.log}

bash "$repo_root/scripts/setup.sh"

# Checked after setup, because on a fresh machine apt-get writes the log.
if [[ ! -s $dpkg_log ]]; then
	echo "The dpkg log $dpkg_log is missing or empty, so there is nothing to import." >&2
	echo "Set HAEMATITE_DPKG_LOG to another dpkg log to run the demo on it." >&2
	exit 1
fi

source "$repo_root/scripts/cluster.sh"
start_cluster

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE haematite_demo'
psql -X -q -v ON_ERROR_STOP=1 -d haematite_demo -c 'CREATE EXTENSION haematite'

echo "Importing $dpkg_log"
psql -X -v ON_ERROR_STOP=1 -d haematite_demo -f "$repo_root/demo/demo.sql" <"$dpkg_log"
