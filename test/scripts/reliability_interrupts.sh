#!/bin/bash
# Cancels, timeouts, terminations and errors in the middle of haematite
# calls: nothing partial is written and no lock is left behind. Uses the
# server that PGHOST and PGPORT name, or its own throwaway cluster; see
# test/reliability/interrupts.py.
set -euo pipefail
reliability_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../reliability" && pwd)
source "$reliability_dir/common.sh"
require_psycopg2
exec "$RELIABILITY_PYTHON" "$reliability_dir/interrupts.py"
