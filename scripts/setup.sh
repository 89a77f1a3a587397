#!/bin/bash
# Install what haematite needs on Debian 12, then build and install it.
#
# Run as root from anywhere; it works on the repository that contains it.
# On a fresh machine it runs apt-get update and installs the packages below.
# When every package is already installed it skips apt-get, so repeated runs
# only rebuild (make is incremental) and reinstall the extension.
#
# Note: on a machine that starts services (systemd), installing postgresql-15
# for the first time also creates and starts Debian's default cluster on port
# 5432. The demo and the tests never use it; they start their own cluster.
set -euo pipefail

readonly PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages that the build, the demo and every test suite use:
# the server and its build headers (PGXS, pg_regress, pg_isolation_regress),
# pgTAP with its pg_prove runner, the C toolchain, util-linux for runuser,
# and the client libraries of the examples in examples/ (psycopg 3 for
# Python, libpq's headers for C).
readonly PACKAGES=(
	postgresql-15
	postgresql-server-dev-15
	postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl
	build-essential
	gcc
	make
	util-linux
	python3-psycopg
	libpq-dev
)

# Node.js and npm run examples/node. They come from Debian only when the node
# or npm command is missing, because a machine may already have them from
# elsewhere: NodeSource's nodejs package, for one, includes npm and conflicts
# with Debian's npm package.
node_packages=()
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	node_packages=(nodejs npm)
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "setup.sh must run as root (for example: sudo bash scripts/setup.sh)" >&2
	exit 1
fi

# List the packages that dpkg does not report as fully installed.
missing=()
for package in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
	if [[ $status != installed ]]; then
		missing+=("$package")
	fi
done
missing+=("${node_packages[@]}")

if ((${#missing[@]} > 0)); then
	echo "Installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${PACKAGES[@]}" "${node_packages[@]}"
else
	echo "Debian packages already installed; skipping apt-get."
fi

# Build and install the extension into the PostgreSQL 15 that PG_CONFIG names.
echo "Building haematite in $repo_root"
make -C "$repo_root" PG_CONFIG="$PG_CONFIG"
make -C "$repo_root" PG_CONFIG="$PG_CONFIG" install
