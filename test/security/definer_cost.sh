#!/bin/bash
# Measure what SECURITY DEFINER costs a call of haematite.next_seq(text).
# A measurement, not a test: it asserts nothing and no suite runs it.
#
# Usage: PGHOST=... PGPORT=... PGUSER=postgres test/security/definer_cost.sh
#
# Works in a scratch database haematite_definer_cost, dropped at the end, on
# a stream 'x' that has one event.  Two methods, each with 5 rounds of
# 200,000 calls per variant through pgbench -n -M prepared -c 1:
#
#   alternating  one run with the function as installed (SECURITY DEFINER),
#                one after ALTER FUNCTION ... SECURITY INVOKER, the order
#                swapped every round; ratio = tps(invoker) / tps(definer).
#   mixed        one run per round that picks, for each call, either
#                haematite.next_seq or a SECURITY INVOKER copy of it (same C
#                symbol) at random, so both see the same machine load;
#                ratio = mean latency(definer) / mean latency(invoker), from
#                the per-transaction log (microseconds).
#
# A ratio above 1 is the slowdown SECURITY DEFINER causes.  On a machine
# shared with other work, the alternating ratios spread widely; the mixed
# ones do not.
set -euo pipefail

: "${PGHOST:?set PGHOST}" "${PGPORT:?set PGPORT}" "${PGUSER:?set PGUSER to a superuser}"

readonly db=haematite_definer_cost
readonly rounds=5
readonly calls=200000
work_dir=$(mktemp -d)
readonly work_dir

cleanup() {
	psql -X -q -d postgres -c 'SET client_min_messages = warning' \
		-c "DROP DATABASE IF EXISTS $db" || true
	rm -rf -- "$work_dir"
}
trap cleanup EXIT

# Print the median of the numbers given as arguments.
median() {
	printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Run pgbench, one client, prepared statements, on the scratch database.
bench() {
	pgbench -n -M prepared -c 1 "$@" "$db"
}

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'SET client_min_messages = warning' \
	-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
	-c 'CREATE EXTENSION haematite' \
	-c "SELECT haematite.append('x', '\\x01', 0)" \
	-c "CREATE FUNCTION public.next_seq_invoker(stream_key text) RETURNS bigint
		AS '\$libdir/haematite', 'next_seq'
		LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER" >/dev/null
echo "SELECT haematite.next_seq('x');" >"$work_dir/definer.sql"
echo "SELECT public.next_seq_invoker('x');" >"$work_dir/invoker.sql"

# Print the tps of $calls calls, with next_seq(text) set to SECURITY $1.
alternating_tps() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
		-c "ALTER FUNCTION haematite.next_seq(text) SECURITY $1"
	bench -t "$calls" -f "$work_dir/definer.sql" |
		grep -oP 'tps = \K[0-9.]+(?= \(without)'
}

echo "alternating: ALTER FUNCTION between runs of $calls calls"
alternating_tps DEFINER >/dev/null # warm-up
alternating_ratios=()
for ((round = 1; round <= rounds; round++)); do
	if ((round % 2)); then
		definer=$(alternating_tps DEFINER)
		invoker=$(alternating_tps INVOKER)
	else
		invoker=$(alternating_tps INVOKER)
		definer=$(alternating_tps DEFINER)
	fi
	ratio=$(awk -v d="$definer" -v i="$invoker" 'BEGIN {printf "%.4f", i / d}')
	alternating_ratios+=("$ratio")
	echo "  round $round: definer $definer tps, invoker $invoker tps, ratio $ratio"
done
psql -X -q -d "$db" -c 'ALTER FUNCTION haematite.next_seq(text) SECURITY DEFINER'
echo "  median ratio $(median "${alternating_ratios[@]}")"

echo "mixed: both variants at random in one run of $((2 * calls)) calls"
mixed_ratios=()
for ((round = 1; round <= rounds; round++)); do
	rm -f "$work_dir"/pgbench_log.*
	(cd "$work_dir" && bench -t $((2 * calls)) -l \
		-f "$work_dir/definer.sql@1" -f "$work_dir/invoker.sql@1" >/dev/null)
	# Log columns: client, transaction, latency (us), script number, ...
	line=$(awk '{n[$4]++; sum[$4] += $3} END {
		printf "%.2f %.2f %.4f", sum[0] / n[0], sum[1] / n[1], (sum[0] / n[0]) / (sum[1] / n[1]) }' \
		"$work_dir"/pgbench_log.*)
	read -r definer invoker ratio <<<"$line"
	mixed_ratios+=("$ratio")
	echo "  round $round: definer mean ${definer} us, invoker mean ${invoker} us, ratio $ratio"
done
echo "  median ratio $(median "${mixed_ratios[@]}")"
