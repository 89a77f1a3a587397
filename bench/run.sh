#!/usr/bin/env bash
# Benchmark haematite against plain-SQL baselines with pgbench.
#
#   bash bench/run.sh
#
# Runs as root: it installs missing packages with apt-get, installs the
# extension with make, and starts a throwaway cluster as the postgres user
# under /tmp, which it stops and removes on exit. Results go to
# bench/results/<date-time>/. The settings below are environment variables;
# bench/README.md describes the workloads and the method.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config

port=${BENCH_PORT:-54340}
rounds=${BENCH_ROUNDS:-5}
seconds=${BENCH_SECONDS:-6}
read_streams=${BENCH_READ_STREAMS:-1000}
large_events=${BENCH_LARGE_EVENTS:-10000000}
scan_streams=${BENCH_SCAN_STREAMS:-1000000}
memory_events=${BENCH_MEMORY_EVENTS:-5000000}
workloads=" ${BENCH_WORKLOADS:-w1 w2 w3 w4 w5 w6 memory} "
profile=${BENCH_PROFILE:-0}
with_haematite=1
if [[ ${BENCH_BASELINES_ONLY:-0} == 1 ]]; then
	with_haematite=0
fi

# Fixed by the workload definitions, so that every contender gets the same.
clients=8
threads=2
payload_bytes=100
batch_size=100
read_count=100

source "$bench_dir/lib/cluster.sh"
source "$bench_dir/lib/measure.sh"

# Check the settings before anything is installed or started.
for setting in port rounds seconds read_streams large_events scan_streams \
	memory_events; do
	if ! [[ ${!setting} =~ ^[1-9][0-9]*$ ]]; then
		echo "bench: $setting must be a positive integer, got '${!setting}'" >&2
		exit 2
	fi
done
if ((large_events % read_count != 0 || large_events / read_count > 900000)); then
	echo "bench: BENCH_LARGE_EVENTS must be a multiple of $read_count up to 90000000, got $large_events" >&2
	exit 2
fi
if ((read_streams > 900000)); then
	echo "bench: BENCH_READ_STREAMS must be at most 900000, got $read_streams" >&2
	exit 2
fi
if ((scan_streams % 10 != 0 || scan_streams > 9000000)); then
	echo "bench: BENCH_SCAN_STREAMS must be a multiple of 10 up to 9000000, got $scan_streams" >&2
	exit 2
fi
if ((EUID != 0)); then
	echo "bench: run as root; it installs packages and the extension and starts the cluster as postgres" >&2
	exit 2
fi

# Return success when workload $1 was selected with BENCH_WORKLOADS.
selected() {
	[[ $workloads == *" $1 "* ]]
}

results_dir=$bench_dir/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$results_dir/logs"
rounds_csv=$results_dir/rounds.csv
summary_csv=$results_dir/summary.csv
hot_csv=$results_dir/hot_stream.csv
memory_csv=$results_dir/memory.csv
ratio_table=$results_dir/ratios.md
hot_table=$results_dir/hot_stream.md
memory_table=$results_dir/memory.md
echo "comparison,contender,database,synchronous_commit,round,tps,transactions,appends_per_s,conflicts_per_s,status" >"$rounds_csv"
echo "comparison,numerator,denominator,rounds,median_ratio,min_ratio,max_ratio,median_numerator_tps,median_denominator_tps,target,result" >"$summary_csv"
echo "comparison,contender,median_attempts_per_s,median_appends_per_s,median_conflicts_per_s" >"$hot_csv"
echo "form,work_mem_kb,peak_rss_anon_kb,vm_hwm_kb,limit_kb,seconds,result" >"$memory_csv"
printf '| workload | contender / baseline | baseline /s | contender /s | median ratio | min–max | target | result |\n|---|---|---|---|---|---|---|---|\n' >"$ratio_table"
printf '| workload | contender | attempts /s | appends /s | SE001 conflicts /s |\n|---|---|---|---|---|\n' >"$hot_table"
printf '| query | work_mem | peak RssAnon | VmHWM | limit | time | result |\n|---|---|---|---|---|---|---|\n' >"$memory_table"

printf -v payload '%*s' "$payload_bytes" ''
payload=${payload// /x}
batch=$(printf "$payload,%.0s" $(seq "$batch_size"))
batch="{${batch%,}}"
run_id=0
declare -A read_stream_count scan_stream_count

work_dir=$(mktemp -d /tmp/haematite-bench.XXXXXX)
trap stop_cluster EXIT
trap 'exit 130' INT TERM

# Install, build and start.
install_packages
if ((with_haematite)); then
	build_extension
fi
start_cluster
echo "cluster on port $port, socket in $work_dir; results in $results_dir"

# Record the machine and the cluster settings next to the results.
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "haematite commit: $(git -C "$repo_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
		[[ -n $(git -C "$repo_dir" status --porcelain -- . ':!bench' 2>/dev/null) ]] &&
			echo ' plus uncommitted changes')"
	if ((with_haematite)); then
		echo "haematite.so md5: $(md5sum "$work_dir/haematite.so" | cut -d ' ' -f 1)"
	fi
	echo "cpu: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
	echo "memory: $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "kernel: $(uname -r)"
	echo "data directory filesystem: $(df -T /tmp | awk 'NR == 2 { print $2 }') ($(df -T /tmp | awk 'NR == 2 { print $1 }'))"
	echo "server: $(run_psql postgres -At -c 'SELECT version()')"
	echo "pgbench: -n -M prepared -c $clients -j $threads -T $seconds, $rounds rounds, CHECKPOINT before each run"
	echo "payload: $payload_bytes bytes; batch: $batch_size payloads; reads: $read_count events from seq 0"
	echo "sizes: read streams $read_streams x $read_count events; growth table $large_events events; scan $scan_streams streams; memory stream $memory_events events"
	echo "settings:"
	run_psql postgres -At -F ' = ' -c "
		SELECT name, current_setting(name)
		FROM pg_settings
		WHERE name IN ('shared_buffers', 'effective_cache_size', 'work_mem',
			'maintenance_work_mem', 'wal_level', 'wal_buffers', 'max_wal_size',
			'min_wal_size', 'checkpoint_timeout', 'checkpoint_completion_target',
			'fsync', 'full_page_writes', 'synchronous_commit', 'wal_sync_method',
			'random_page_cost', 'autovacuum', 'max_connections')
		ORDER BY name" | sed 's/^/  /'
} >"$results_dir/setup.txt"
cat "$results_dir/setup.txt"

# Databases: bench for W1-W4, bench_small and bench_large for the two sides
# of W5 (bench itself grows by millions of events in W1 and W3), bench_scan
# for W6, bench_memory for the memory probe.
create_database bench
fill_streams bench 100000 "$read_streams" "$read_count" true
read_stream_count[bench]=$read_streams
if ((with_haematite)) && selected w5; then
	create_database bench_small
	fill_streams bench_small 100000 "$read_streams" "$read_count" false
	read_stream_count[bench_small]=$read_streams
	create_database bench_large
	fill_streams bench_large 100000 $((large_events / read_count)) "$read_count" false
	read_stream_count[bench_large]=$((large_events / read_count))
fi
if ((with_haematite)) && selected w6; then
	create_database bench_scan
	fill_streams bench_scan 1000000 "$scan_streams" 1 false
	scan_stream_count[bench_scan]=$scan_streams
fi
if ((with_haematite)) && selected memory; then
	create_database bench_memory
	fill_streams bench_memory 100000 1 "$memory_events" false
fi
if ((!with_haematite)); then
	echo "BENCH_BASELINES_ONLY=1: haematite is not built; W5, W6 and the memory probe are skipped"
fi

# Check that the contenders of W2 and W6 return the same rows, so that the
# ratios compare the same job.
same_rows() {
	local database=$1 description=$2 first_rows second_rows

	first_rows=$(run_psql "$database" -At -c "$3")
	second_rows=$(run_psql "$database" -At -c "$4")
	if [[ -z $first_rows || "$first_rows" != "$second_rows" ]]; then
		echo "bench: WARNING: $description return different rows" >&2
	fi
}
same_rows bench "W2 floor and PL/pgSQL" \
	"SELECT seq, payload FROM bench.floor_events WHERE stream_key = '100000' AND seq >= 0 ORDER BY seq LIMIT 100" \
	"SELECT seq, payload FROM bench.sql_read_from('100000', 0, 100)"
if ((with_haematite)); then
	same_rows bench "W2 floor and haematite" \
		"SELECT seq, payload FROM bench.floor_events WHERE stream_key = '100000' AND seq >= 0 ORDER BY seq LIMIT 100" \
		"SELECT seq, payload FROM haematite.read_from('100000'::bytea, 0, 100)"
	if selected w6; then
		same_rows bench_scan "W6 range query and scan" \
			"SELECT stream_key, next_seq FROM haematite.stream_heads WHERE stream_key >= '100000' AND stream_key < '100001' ORDER BY stream_key" \
			"SELECT * FROM haematite.scan('100000'::bytea)"
	fi
fi

# W5 and W6 run first, while their databases are still in shared buffers:
# W1 and W3 add millions of events to database bench, which would evict
# them. Both sides are also loaded into shared buffers with pg_prewarm.
# W5: W1 (bytea, sync off) and W2 (bytea) on the large event table against
# the same workloads on the small one.
if ((with_haematite)) && selected w5; then
	prewarm bench_small
	prewarm bench_large
	compare w5-append off "small|bench_small|w1_haematite_bytea.sql" \
		"large|bench_large|w1_haematite_bytea.sql"
	report_ratio w5-append "W5 append, $large_events events vs $((read_streams * read_count))" large small 0.9
	compare w5-read on "small|bench_small|w2_haematite_bytea.sql" \
		"large|bench_large|w2_haematite_bytea.sql"
	report_ratio w5-read "W5 read_from 100, $large_events events vs $((read_streams * read_count))" large small 0.9
fi

# W6: scan of a prefix matching 10 streams out of $scan_streams.
if ((with_haematite)) && selected w6; then
	prewarm bench_scan
	compare w6 on "range|bench_scan|w6_range.sql" \
		"haematite|bench_scan|w6_haematite.sql"
	report_ratio w6 "W6 scan 10 of $scan_streams streams" haematite range 0.9
fi

# W1: single appends, each client on its own streams, bytea and untyped
# (text) keys, synchronous_commit off and on.
if selected w1; then
	for key_type in bytea text; do
		for sync in off on; do
			id=w1-$key_type-sync-$sync
			contenders=("floor|bench|w1_floor.sql")
			((with_haematite)) && contenders+=("haematite|bench|w1_haematite_$key_type.sql")
			[[ $key_type == bytea ]] && contenders+=("plpgsql|bench|w1_sql.sql")
			compare "$id" "$sync" "${contenders[@]}"

			target=0.95
			[[ $sync == off ]] && target=0.85
			if ((with_haematite)); then
				report_ratio "$id" "W1 append, $key_type key, sync $sync" haematite floor "$target"
			fi
			if [[ $key_type == bytea ]]; then
				if ((with_haematite)); then
					sql_target=''
					[[ $sync == off ]] && sql_target=1.3
					report_ratio "$id" "W1 append, $key_type key, sync $sync" haematite plpgsql "$sql_target"
				fi
				report_ratio "$id" "W1 append, $key_type key, sync $sync" plpgsql floor ''
			fi
		done
	done
fi

# W2: read_from(key, 0, 100) of random pre-filled streams.
if selected w2; then
	for key_type in bytea text; do
		id=w2-$key_type
		contenders=("floor|bench|w2_floor.sql")
		((with_haematite)) && contenders+=("haematite|bench|w2_haematite_$key_type.sql")
		[[ $key_type == bytea ]] && contenders+=("plpgsql|bench|w2_sql.sql")
		compare "$id" on "${contenders[@]}"
		if ((with_haematite)); then
			report_ratio "$id" "W2 read_from 100, $key_type key" haematite floor 1.0
		fi
		if [[ $key_type == bytea ]]; then
			((with_haematite)) && report_ratio "$id" "W2 read_from 100, $key_type key" haematite plpgsql ''
			report_ratio "$id" "W2 read_from 100, $key_type key" plpgsql floor ''
		fi
	done
fi

# W3: append_batch of 100 payloads against one prepared 100-row INSERT.
if selected w3; then
	# pgbench sends at most 255 parameters a statement, too few for key, seq
	# and payload on each of 100 rows. So the client sends the key and the
	# first seq once and one payload a row, and the server numbers the rows.
	{
		echo "-- W3 floor: one prepared multi-row INSERT of $batch_size events."
		echo "\\set stream :base + :client_id * 1000 + :n % 100"
		echo "\\set seq (:n / 100) * $batch_size"
		printf 'INSERT INTO bench.floor_events (stream_key, seq, payload, appended_at) SELECT :stream::bytea, :seq::bigint + v.ordinality, v.payload, now() FROM (VALUES (0, :payload::bytea)'
		for ((i = 1; i < batch_size; i++)); do
			printf ', (%d, :payload)' "$i"
		done
		echo ") AS v (ordinality, payload);"
		echo "\\set n :n + 1"
	} >"$work_dir/w3_floor.sql"
	contenders=("floor|bench|$work_dir/w3_floor.sql")
	((with_haematite)) && contenders+=("haematite|bench|w3_haematite.sql")
	contenders+=("plpgsql|bench|w3_sql.sql")
	compare w3 on "${contenders[@]}"
	if ((with_haematite)); then
		report_ratio w3 "W3 batch of 100, sync on" haematite floor 0.95
		report_ratio w3 "W3 batch of 100, sync on" haematite plpgsql ''
	fi
	report_ratio w3 "W3 batch of 100, sync on" plpgsql floor ''
fi

# W4: one hot stream that all clients append to, reading next_seq first.
if selected w4; then
	for sync in on off; do
		id=w4-sync-$sync
		contenders=()
		((with_haematite)) && contenders+=("haematite|bench|w4_haematite.sql")
		contenders+=("plpgsql|bench|w4_sql.sql")
		compare "$id" "$sync" hot "${contenders[@]}"
		((with_haematite)) && report_hot "$id" "W4 hot stream, sync $sync" haematite
		report_hot "$id" "W4 hot stream, sync $sync" plpgsql
	done
fi

# Memory: the backend's peak while read() streams one long stream to a
# client that discards it.
if ((with_haematite)) && selected memory; then
	measure_memory from "SELECT * FROM haematite.read('100000'::bytea)" bench_memory judge
	measure_memory select-list "SELECT haematite.read('100000'::bytea)" bench_memory judge
	measure_memory plain-select "SELECT seq, payload, appended_at FROM haematite.events WHERE stream_key = '100000'::bytea ORDER BY seq" bench_memory
fi

# Profile: where a backend spends its time during W1 appends (bytea, sync
# off), sampled with perf across all CPUs and reported for postgres only.
if ((with_haematite)) && [[ $profile == 1 ]]; then
	if command -v perf >/dev/null; then
		PGOPTIONS="-c synchronous_commit=off" "$PG_BIN/pgbench" \
			-h "$work_dir" -p "$port" -U postgres -n -M prepared \
			-c "$clients" -j "$threads" -T "$seconds" -D base=90000000 \
			-D n=0 -D payload="$payload" -f "$bench_dir/scripts/w1_haematite_bytea.sql" \
			bench >"$results_dir/logs/profile-pgbench.log" 2>&1 &
		profile_pgbench=$!
		sleep 1
		perf record -F 999 -a -o "$work_dir/perf.data" -- sleep $((seconds > 3 ? seconds - 2 : 1)) \
			>"$results_dir/logs/perf-record.log" 2>&1 || true
		wait "$profile_pgbench" || true
		perf report -i "$work_dir/perf.data" --stdio --comm postgres \
			--percentage relative --sort dso,symbol --percent-limit 0.5 \
			>"$results_dir/profile.txt" 2>/dev/null || true
		echo "profile of W1 appends written to $results_dir/profile.txt"
	else
		echo "BENCH_PROFILE=1 needs perf (Debian package linux-perf); profile skipped"
	fi
fi

# Print the tables and keep them with the CSV files.
{
	echo "## Median ratios over $rounds interleaved rounds of $seconds s"
	echo
	# Rows were added in run order; list them by workload (W1 to W6).
	head -n 2 "$ratio_table"
	tail -n +3 "$ratio_table" | sort -s -k2,2
	if selected w4; then
		echo
		echo "## Hot stream (W4): medians over $rounds rounds of $seconds s"
		echo
		cat "$hot_table"
	fi
	if ((with_haematite)) && selected memory; then
		echo
		echo "## Backend memory while read() streams $memory_events events"
		echo
		cat "$memory_table"
	fi
} >"$results_dir/table.md"
echo
cat "$results_dir/table.md"
echo
echo "CSV files and logs: $results_dir"
