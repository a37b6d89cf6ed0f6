#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM (scripts/check.sh makes it the VM's job): loads
# nbdws.ko, runs every selftest, unloads the module and saves dmesg. Each
# test's TAP goes to $NBDWS_OUT/results/NAME.tap and its exit status to
# NAME.rc; the runner's own checks (load, unload) go to runner.tap. The
# host judges the results, dmesg included.
#
# Environment: NBDWS_TOP, NBDWS_KVER, NBDWS_KO, NBDWS_OUT, and optionally
# NBDWS_TESTS (space-separated test names to run; default all),
# NBDWS_TEST_TIMEOUT (seconds per test, default 900) and
# NBDWS_TIMEOUT_SCALE (integer, default 1: the debug kernel is several
# times slower; the per-test limit is multiplied by it and the tests see
# it too, see Documentation/testing.md), NBDWS_SOAK (long: the soak
# selftest's long run, which NBDWS_SOAK_TIMEOUT then bounds instead of
# NBDWS_TEST_TIMEOUT).
#
# On a kernel with kmemleak (the debug kernel) the suspects of boot are
# cleared before the module loads, and after the suite and the unload two
# scans, a pause apart, leave what is still unreferenced in
# $NBDWS_OUT/results/kmemleak.txt (empty: no leak).
set -u

cd "$NBDWS_TOP" || exit 1
res="$NBDWS_OUT/results"
rm -rf "$res"
mkdir -p "$res"
export NBDCTL="$NBDWS_TOP/build/nbdctl" TMPDIR=/tmp
export PATH="$NBDWS_TOP/build:$PATH"

ip link set lo up
# A test that leaves a task blocked should show up as a hung task.
echo 60 > /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null

n=0
tap="$res/runner.tap"
: > "$tap"
check() {
	local desc=$1
	shift
	n=$((n + 1))
	if "$@" >> "$res/runner.log" 2>&1; then
		echo "ok $n $desc" >> "$tap"
	else
		echo "not ok $n $desc" >> "$tap"
	fi
}
module_absent() { [ ! -e /sys/module/nbdws ]; }

scale=${NBDWS_TIMEOUT_SCALE:-1}
export NBDWS_TIMEOUT_SCALE=$scale

kml=/sys/kernel/debug/kmemleak
if [ -w "$kml" ]; then
	# What boot left (9p, early allocations) is not ours to judge.
	echo scan > "$kml"
	echo clear > "$kml"
fi

check "insmod nbdws.ko" insmod "$NBDWS_KO"
# kTLS on the CPU's AES-GCM, as on a machine udev booted. Not a check:
# a kernel built without the drivers (the debug kernel) tests the
# generic code instead; crypto.txt says which ran.
. selftests/vm/crypto.sh
guest_crypto_load >> "$res/runner.log" 2>&1
# Where the module's text was: reports made after rmmod print its
# addresses raw, this maps them back to nbdws.ko.
cat /sys/module/nbdws/sections/.text > "$res/nbdws.text" 2>/dev/null

wanted() {
	[ -z "${NBDWS_TESTS:-}" ] && return 0
	local t
	for t in $NBDWS_TESTS; do
		[ "$t" = "$1" ] && return 0
	done
	return 1
}

# Written ahead of their feature: reported as skipped, not run.
pending_reason() {
	awk -v n="$1" '$1 == n { $1 = ""; sub(/^ +/, ""); print; exit }' \
		selftests/vm/pending.conf
}

for t in build/selftests/* selftests/nbdws/*.sh; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "${t%.sh}")
	wanted "$name" || continue
	reason=$(pending_reason "$name")
	if [ -n "$reason" ]; then
		printf 'ok 1 %s # SKIP pending: %s\n1..1\n' "$name" "$reason" \
			> "$res/$name.tap"
		continue
	fi
	echo "nbdws-vm: running $name"
	limit=${NBDWS_TEST_TIMEOUT:-900}
	[ "$name" = soak ] && [ -n "${NBDWS_SOAK_TIMEOUT:-}" ] &&
		limit=$NBDWS_SOAK_TIMEOUT
	timeout -k 10 $(( limit * scale )) "$t" > "$res/$name.tap" 2>&1
	echo $? > "$res/$name.rc"
done

# Tests clean up after themselves; a device left behind is their bug, but
# the module must still go away cleanly.
check "rmmod nbdws" rmmod nbdws
check "module gone after rmmod" module_absent
echo "1..$n" >> "$tap"

if [ -w "$kml" ]; then
	# A scan flags objects older than 5 s that nothing points to; the
	# file lists those the latest scan still found unreferenced. A
	# pointer in flight (a register, an RCU callback, a deferred free)
	# can make a live object look lost once: the second scan, after a
	# pause, clears such an object again.
	echo scan > "$kml"
	sleep 10
	echo scan > "$kml"
	cat "$kml" > "$res/kmemleak.txt"
fi

# The implementations the tests' kTLS used (gcm(aes) exists once one did).
{
	echo "aes $(guest_crypto_driver aes)"
	echo "gcm(aes) $(guest_crypto_driver 'gcm(aes)')"
} > "$res/crypto.txt"

dmesg > "$NBDWS_OUT/dmesg.txt"
sync
