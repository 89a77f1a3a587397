# pgbench runs, medians and the memory probe for bench/run.sh (sourced).
#
# Every pgbench run appends one row to $rounds_csv:
#   comparison,contender,database,synchronous_commit,round,tps,transactions,
#   appends_per_s,conflicts_per_s,status
# and the report_* functions read that file back, so the CSV is the only
# record the tables are computed from.

# Print the median of the numbers on standard input, or "nan" when there
# are none.
median() {
	sort -g | awk '
		{ value[NR] = $1 }
		END {
			if (NR == 0) print "nan"
			else if (NR % 2) print value[(NR + 1) / 2]
			else print (value[NR / 2] + value[NR / 2 + 1]) / 2
		}'
}

# Print the pgbench variables for database $1: the key range of its
# pre-filled read streams and of its scan prefixes.
database_variables() {
	local streams=${read_stream_count[$1]:-1}
	local scan=${scan_stream_count[$1]:-10}

	echo "-Dfirst=100000 -Dlast=$((100000 + streams - 1))" \
		"-Dscan_first=100000 -Dscan_last=$((100000 + scan / 10 - 1))"
}

# Run one pgbench run and append its row to $rounds_csv.
# Arguments: comparison id, contender label, database, script path,
# synchronous_commit, round number, and "hot" to count the appends on the
# stream keyed by the run's base (the hot-stream workload).
# A CHECKPOINT first gives every run the same clean start. A failed run is
# recorded with status "error" and its log is kept; it does not stop the
# benchmark.
pgbench_run() {
	local comparison=$1 label=$2 database=$3 script=$4 sync=$5 round=$6
	local hot=${7:-}
	local base log tps transactions failed status=ok
	local appends='' appends_per_s='' conflicts_per_s='' heads

	run_id=$((run_id + 1))
	base=$((10000000 + run_id * 10000))
	log=$results_dir/logs/$(printf '%04d' "$run_id")-$comparison-$label.log

	run_psql "$database" -c CHECKPOINT
	# shellcheck disable=SC2046 # database_variables prints separate options
	if ! PGOPTIONS="-c synchronous_commit=$sync" "$PG_BIN/pgbench" \
		-h "$work_dir" -p "$port" -U postgres -n -M prepared \
		-c "$clients" -j "$threads" -T "$seconds" \
		-D base="$base" -D n=0 -D from=0 -D count="$read_count" \
		-D payload="$payload" -D batch="$batch" \
		$(database_variables "$database") \
		-f "$script" "$database" >"$log" 2>&1; then
		status=error
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log")
	transactions=$(sed -n \
		's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
	if [[ -z $tps || -z $transactions ]]; then
		status=error tps=0 transactions=0
	elif [[ -n $failed && $failed != 0 ]]; then
		status=error
	fi

	if [[ $hot == hot && $status == ok ]]; then
		heads=haematite.stream_heads
		[[ $label == plpgsql ]] && heads=bench.sql_heads
		appends=$(run_psql "$database" -At -c \
			"SELECT coalesce((SELECT next_seq FROM $heads WHERE stream_key = '$base'::bytea), 0)")
		appends_per_s=$(awk -v t="$tps" -v a="$appends" -v n="$transactions" \
			'BEGIN { printf "%.1f", (n > 0) ? t * a / n : 0 }')
		conflicts_per_s=$(awk -v t="$tps" -v s="$appends_per_s" \
			'BEGIN { printf "%.1f", t - s }')
	fi

	echo "$comparison,$label,$database,$sync,$round,$tps,$transactions,$appends_per_s,$conflicts_per_s,$status" \
		>>"$rounds_csv"
	printf '%-22s round %2d/%d  %-10s %10.1f tps  %s\n' "$comparison" \
		"$round" "$rounds" "$label" "$tps" "$([[ $status == ok ]] || echo "ERROR: see $log")"
}

# Run the rounds of one comparison: every round runs each contender once, in
# the order given, so that the contenders are interleaved (A B A B ...).
# Arguments: comparison id, synchronous_commit, an optional "hot", then one
# "label|database|script" per contender (a script name without a slash is
# taken from bench/scripts).
compare() {
	local comparison=$1 sync=$2
	local hot='' round spec label database script
	shift 2
	if [[ $1 == hot ]]; then
		hot=hot
		shift
	fi

	for ((round = 1; round <= rounds; round++)); do
		for spec in "$@"; do
			IFS='|' read -r label database script <<<"$spec"
			[[ $script == */* ]] || script=$bench_dir/scripts/$script
			pgbench_run "$comparison" "$label" "$database" "$script" \
				"$sync" "$round" "$hot"
		done
	done
}

# Print the median of column $3 of the successful rounds of contender $2 in
# comparison $1.
median_of() {
	awk -F, -v c="$1" -v l="$2" -v col="$3" \
		'$1 == c && $2 == l && $10 == "ok" { print $col }' "$rounds_csv" | median
}

# Add one row to the ratio table: the median over rounds of the ratio of
# contender $3's rate to contender $4's rate in comparison $1, described by
# $2, judged against target $5 (the lowest passing ratio; empty for none).
report_ratio() {
	local comparison=$1 description=$2 numerator=$3 denominator=$4 target=$5
	local ratios count median_ratio low high result

	ratios=$(awk -F, -v c="$comparison" -v a="$numerator" -v b="$denominator" '
		$1 == c && $10 == "ok" && $2 == a { num[$5] = $6 }
		$1 == c && $10 == "ok" && $2 == b { den[$5] = $6 }
		END {
			for (r in num)
				if ((r in den) && den[r] > 0) printf "%.4f\n", num[r] / den[r]
		}' "$rounds_csv")
	count=$(grep -c . <<<"$ratios" || true)
	median_ratio=$(median <<<"$ratios")
	low=$(sort -g <<<"$ratios" | head -n 1)
	high=$(sort -g <<<"$ratios" | tail -n 1)

	if ((count == 0)); then
		result=ERROR median_ratio=nan low=nan high=nan
	elif [[ -z $target ]]; then
		result=-
	else
		result=$(awk -v m="$median_ratio" -v t="$target" \
			'BEGIN { print (m >= t) ? "PASS" : "FAIL" }')
	fi

	echo "$comparison,$numerator,$denominator,$count,$median_ratio,$low,$high,$(median_of "$comparison" "$numerator" 6),$(median_of "$comparison" "$denominator" 6),$target,$result" \
		>>"$summary_csv"
	printf '| %s | %s / %s | %.0f | %.0f | %.3f | %.3f–%.3f | %s | %s |\n' \
		"$description" "$numerator" "$denominator" \
		"$(median_of "$comparison" "$denominator" 6)" \
		"$(median_of "$comparison" "$numerator" 6)" \
		"$median_ratio" "$low" "$high" \
		"${target:+≥ $target}" "$result" >>"$ratio_table"
}

# Add one row to the hot-stream table: medians over the rounds of contender
# $3 in comparison $1 (described by $2) of attempts, successful appends and
# sequence conflicts per second.
report_hot() {
	local comparison=$1 description=$2 label=$3
	local attempts appends conflicts

	attempts=$(median_of "$comparison" "$label" 6)
	appends=$(median_of "$comparison" "$label" 8)
	conflicts=$(median_of "$comparison" "$label" 9)
	echo "$comparison,$label,$attempts,$appends,$conflicts" >>"$hot_csv"
	printf '| %s | %s | %.0f | %.0f | %.0f |\n' "$description" "$label" \
		"$attempts" "$appends" "$conflicts" >>"$hot_table"
}

# Run query $2 on database $3 in a psql session that sends its rows to
# /dev/null, and add a row for form $1 to the memory tables. While the query
# runs, the backend's RssAnon (private memory) is sampled every 20 ms. Its
# VmHWM (peak resident memory, shared buffers included) is read at the end.
# $4 is "judge" to judge the RssAnon peak against work_mem + 32 MB.
measure_memory() {
	local form=$1 query=$2 database=$3 judge=${4:-}
	local dir=$work_dir/memory-$form psql_pid backend key value _
	local peak_anon=0 hwm=0 work_mem_kb limit_kb result=- started elapsed

	mkdir -p "$dir"
	cat >"$dir/script.sql" <<-SQL
		SELECT pg_backend_pid() \g $dir/pid
		SELECT setting FROM pg_settings WHERE name = 'work_mem' \g $dir/work_mem
		$query \g /dev/null
		SELECT 1 \g $dir/done
		\! while [ ! -e $dir/stop ]; do sleep 0.1; done
	SQL
	run_psql "$database" -At -f "$dir/script.sql" \
		>"$results_dir/logs/memory-$form.log" 2>&1 &
	psql_pid=$!

	while [[ ! -s $dir/pid ]] && kill -0 "$psql_pid" 2>/dev/null; do
		sleep 0.02
	done
	backend=$(cat "$dir/pid" 2>/dev/null || true)
	started=$(date +%s.%N)
	while [[ -n $backend && ! -s $dir/done ]] && kill -0 "$psql_pid" 2>/dev/null; do
		while read -r key value _; do
			if [[ $key == RssAnon: ]] && ((value > peak_anon)); then
				peak_anon=$value
			fi
		done <"/proc/$backend/status" 2>/dev/null || true
		sleep 0.02
	done
	elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	if [[ -n $backend && -s $dir/done ]]; then
		while read -r key value _; do
			if [[ $key == RssAnon: ]] && ((value > peak_anon)); then
				peak_anon=$value
			elif [[ $key == VmHWM: ]]; then
				hwm=$value
			fi
		done <"/proc/$backend/status"
	else
		result=ERROR
	fi
	touch "$dir/stop"
	wait "$psql_pid" || result=ERROR

	work_mem_kb=$(cat "$dir/work_mem" 2>/dev/null || echo 0)
	limit_kb=$((work_mem_kb + 32 * 1024))
	if [[ $result != ERROR && $judge == judge ]]; then
		result=FAIL
		if ((peak_anon < limit_kb)); then
			result=PASS
		fi
	fi

	echo "$form,$work_mem_kb,$peak_anon,$hwm,$limit_kb,$elapsed,$result" \
		>>"$memory_csv"
	printf '| `%s` | %d MB | %.1f MB | %.1f MB | %s | %s s | %s |\n' "$query" \
		$((work_mem_kb / 1024)) "$(awk -v k="$peak_anon" 'BEGIN { print k / 1024 }')" \
		"$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" \
		"$([[ $judge == judge ]] && echo "< $((limit_kb / 1024)) MB" || echo -)" \
		"$elapsed" "$result" >>"$memory_table"
}
