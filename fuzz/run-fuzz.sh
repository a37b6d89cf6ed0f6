#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run each libFuzzer target for a bounded time, or a number of executions,
# and summarise:
#   run-fuzz.sh BUILD_DIR SECONDS TARGET...
#   run-fuzz.sh BUILD_DIR --runs N TARGET...
# A time bound suits a quick look; an execution count is what a claim like
# "10 million executions with no crash" needs, whatever the machine's speed.
# Each target starts from the generated seeds (BUILD_DIR/corpus/T) plus
# what earlier runs found (BUILD_DIR/work/T). Prints executions and
# whether a crash (a sanitizer report or a broken codec contract) was
# found; exits 1 if any target crashed, with the reproducer kept in
# BUILD_DIR/crashes/ (re-run it: BUILD_DIR/T BUILD_DIR/crashes/FILE).
set -uo pipefail

usage() {
	echo "usage: run-fuzz.sh BUILD_DIR SECONDS|--runs N TARGET..." >&2
	exit 2
}
[ $# -ge 3 ] || usage
dir=$1
shift
if [ "$1" = --runs ]; then
	runs=$2
	shift 2
	[[ $runs =~ ^[1-9][0-9]*$ ]] || usage
	bound=(-runs="$runs")
	what="executions"
else
	secs=$1
	shift
	[[ $secs =~ ^[1-9][0-9]*$ ]] || usage
	bound=(-max_total_time="$secs")
	what="${secs}s"
fi
[ $# -ge 1 ] || usage
mkdir -p "$dir/crashes"
status=0
total=0

for t in "$@"; do
	mkdir -p "$dir/work/$t"
	log="$dir/$t.log"
	before=$(ls "$dir/crashes" | grep -c "^$t-" || true)
	# The HTTP readers stop at 8 KiB (WS_HTTP_MAX_HEADER): longer
	# requests, responses or URIs only slow the search down.
	case $t in
	fuzz_http_*|fuzz_uri) max_len=8192 ;;
	*) max_len=70000 ;;
	esac
	start=$(date +%s)
	"$dir/$t" "${bound[@]}" -max_len=$max_len -timeout=20 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/crashes/$t-" \
		"$dir/work/$t" "$dir/corpus/$t" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	after=$(ls "$dir/crashes" | grep -c "^$t-" || true)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	corpus=$(ls "$dir/work/$t" | wc -l)
	execs=${execs:-0}
	total=$((total + execs))
	if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
		echo "fuzz: $t: CRASH after $execs executions (exit $rc), see $log and $dir/crashes/" >&2
		grep -m 5 -E 'ERROR|runtime error|round trip:|differ' "$log" >&2
		status=1
	else
		echo "fuzz: $t: $execs executions in ${took}s ($what bound), $cov, corpus $corpus, no crash"
	fi
done
echo "fuzz: total $total executions, $([ $status -eq 0 ] && echo "no crashes" || echo "CRASHES FOUND")"
exit $status
