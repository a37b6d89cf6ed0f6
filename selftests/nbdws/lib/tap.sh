# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# TAP results for the shell selftests, sourced by them (and by their
# libraries). $n counts results, $failed the failed ones; the caller
# prints the plan and decides its exit status from $failed.

n=0
failed=0

# ok STATUS DESCRIPTION [diagnostic file...]: STATUS 0 is "ok"; otherwise
# "not ok" followed by the last lines of each non-empty diagnostic file.
# TAP_TIMES=1: a TAP comment per result with the seconds elapsed, to see
# where a slow run spends its time.
ok() {
	local f
	n=$((n + 1))
	[ -n "${TAP_TIMES:-}" ] && echo "# at ${SECONDS}s"
	if [ "$1" = 0 ]; then
		echo "ok $n $2"
	else
		failed=$((failed + 1))
		echo "not ok $n $2"
		shift 2
		for f in "$@"; do
			[ -s "$f" ] || continue
			echo "# --- ${f##*/}"
			sed 's/^/# /' "$f" | tail -n 30
		done
	fi
}
