#!/bin/bash
# Randomized calls with hostile input (keys of every byte value, huge and
# empty payloads and arrays, out-of-range seqs and TTLs, NULL everywhere),
# each checked against a model of the contract, with the tables compared to
# the model as it goes. Prints its seed; HAEMATITE_FUZZ_SEED replays a run.
# Uses the server that PGHOST and PGPORT name, or its own throwaway cluster;
# see test/reliability/fuzz.py.
set -euo pipefail
reliability_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../reliability" && pwd)
source "$reliability_dir/common.sh"
require_psycopg2
exec "$RELIABILITY_PYTHON" "$reliability_dir/fuzz.py"
