#!/bin/bash
# Crash safety: SIGKILL the server while clients append, restart it, and
# check that every acknowledged event and value survived (with
# synchronous_commit = on, and with it off once flush() has returned).
# Runs on its own throwaway cluster; see test/reliability/crash.py.
set -euo pipefail
reliability_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../reliability" && pwd)
source "$reliability_dir/common.sh"
require_psycopg2
exec "$RELIABILITY_PYTHON" "$reliability_dir/crash.py"
