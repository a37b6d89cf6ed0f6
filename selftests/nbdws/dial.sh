#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdctl dialling a name with several addresses, one of them blackholed
# (lib/nbd_sock.c, nbdctl(8) --connect-timeout). In a private mount
# namespace /etc/hosts gives multi.test two addresses, ::1 first (as
# getaddrinfo() sorts them): on [::1]:PORT a listener whose accept queue
# is full drops every SYN unanswered, as a firewall would; nbdkit serves
# on 127.0.0.1:PORT. nbdctl info and connect must reach the export
# through the second address (before this, the first address's timeout
# ended the attempt) and the device must read back the image. With
# nbdkit gone, --connect-timeout 2 must bound the attempt and the error
# must name both addresses and how each failed.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
export PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH

top=${NBDWS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
nbdctl=${NBDCTL:-$top/build/nbdctl}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dial.XXXXXX")
pids=()
dev=
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/procs.sh"

cleanup() {
	exec 2> /dev/null
	[ -n "$dev" ] && timeout 60 "$nbdctl" disconnect "$dev" > /dev/null 2>&1
	stop_pids "${pids[@]}"
	rm -rf "$tmp"
}
trap cleanup EXIT

# Upper time bounds are multiplied on slow (debug) kernels.
scale=${NBDWS_TIMEOUT_SCALE:-1}

# in_ns CMD...: CMD (bounded) with /etc/hosts replaced by $tmp/hosts.
in_ns() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout 90 unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' \
		"$tmp/hosts" "$@"
}

# timed OUT CMD...: run CMD, output to OUT; $ms: how long it took.
timed() {
	local out=$1 t0 rc
	shift
	t0=$(date +%s%N)
	"$@" > "$out" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	return $rc
}

for tool in nbdkit unshare python3 cmp; do
	command -v "$tool" > /dev/null || { echo "1..0 # SKIP needs $tool"; exit 0; }
done
[ -x "$nbdctl" ] || { echo "1..0 # SKIP no nbdctl at $nbdctl"; exit 0; }
ip -6 addr show dev lo 2> /dev/null | grep -q 'inet6 ::1/' ||
	{ echo "1..0 # SKIP no ::1 on lo"; exit 0; }

# The blackhole: backlog 0 queues one connection (made here, never
# accepted); the kernel drops the SYNs of every later one.
python3 -c '
import socket, sys, time
l = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
l.bind(("::1", 0))
l.listen(0)
f = socket.create_connection(("::1", l.getsockname()[1]), timeout=5)
print(l.getsockname()[1], flush=True)
time.sleep(3600)
' > "$tmp/port" 2> "$tmp/hole.log" &
pids+=("$!")
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")
[ -n "$port" ] || { echo "1..0 # SKIP no blackhole listener"; cat "$tmp/hole.log"; exit 1; }

echo "1..8"

printf '::1 multi.test\n127.0.0.1 multi.test\n' > "$tmp/hosts"
head -c $((8 << 20)) /dev/urandom > "$tmp/img"
nbdkit -f -i 127.0.0.1 -p "$port" file "$tmp/img" > "$tmp/nbdkit.log" 2>&1 &
nbdkit_pid=$!
pids+=("$nbdkit_pid")
for _ in $(seq 100); do
	timeout 5 "$nbdctl" info --connect-timeout 2 "nbd://127.0.0.1:$port/" \
		> /dev/null 2>&1 && break
	sleep 0.1
done

# 1: the blackhole answers nothing; --connect-timeout bounds the wait.
timed "$tmp/out" timeout 90 "$nbdctl" info --connect-timeout 1 "nbd://[::1]:$port/"
rc=$?
[ $rc = 1 ] && [ $ms -ge 900 ] && [ $ms -lt $((5000 * scale)) ] &&
	grep -q "\[::1\]:$port timed out after [01]\.[0-9] s" "$tmp/out"
ok $? "[::1]:$port drops SYNs: info --connect-timeout 1 fails (exit $rc) after $ms ms" "$tmp/out"

# 2: the name's first address is the blackholed one.
in_ns getent ahosts multi.test > "$tmp/getent" 2>&1
[ "$(awk 'NR == 1 { print $1 }' "$tmp/getent")" = ::1 ] &&
	grep -q '^127\.0\.0\.1 ' "$tmp/getent"
ok $? "multi.test resolves to ::1, then 127.0.0.1" "$tmp/getent"

# 3: info through the second address, within a connect timeout the
# blackhole alone would use up.
timed "$tmp/out" in_ns "$nbdctl" -j info --connect-timeout $((20 * scale)) \
	"nbd://multi.test:$port/"
rc=$?
[ $rc = 0 ] &&
	grep -q "\"size\":$((8 << 20))" "$tmp/out"
ok $? "info nbd://multi.test:$port/ through 127.0.0.1 in $ms ms" "$tmp/out"

# 4, 5: a device through the second address, and its data.
timed "$tmp/out" in_ns "$nbdctl" connect --connect-timeout $((20 * scale)) \
	"nbd://multi.test:$port/"
rc=$?
dev=$(grep -o '^/dev/nbdws[0-9]*$' "$tmp/out")
[ $rc = 0 ] && [ -n "$dev" ] && [ -b "$dev" ]
ok $? "connect nbd://multi.test:$port/ gives ${dev:-no device} in $ms ms" "$tmp/out"
timeout 120 head -c $((8 << 20)) "$dev" > "$tmp/r.bin" 2>&1 &&
	cmp -s "$tmp/r.bin" "$tmp/img"
ok $? "${dev:-the device} reads back the image"
timeout 60 "$nbdctl" disconnect "$dev" > "$tmp/out" 2>&1
ok $? "disconnect $dev" "$tmp/out"
dev=

# 6, 7: nobody answers at all: the deadline, and each address's failure.
# The name's lookup counts against the deadline too, so the first
# address is given what is left of the 2 s: under 2 s on a slow guest.
kill -TERM "$nbdkit_pid"
wait "$nbdkit_pid" 2> /dev/null
timed "$tmp/out" in_ns "$nbdctl" connect --connect-timeout 2 \
	"nbd://multi.test:$port/"
rc=$?
[ $rc = 1 ] && [ $ms -ge 1900 ] && [ $ms -lt $((8000 * scale)) ]
ok $? "connect --connect-timeout 2 with no server fails (exit $rc) after $ms ms" "$tmp/out"
grep -q "cannot connect to multi.test: \[::1\]:$port timed out after [12]\.[0-9] s, 127\.0\.0\.1:$port Connection refused" "$tmp/out"
ok $? "the error names both addresses and how each failed" "$tmp/out"
sed 's/^/# /' "$tmp/out"

[ $failed = 0 ]
