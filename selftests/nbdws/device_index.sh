#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# CONNECT with a requested device index, and reuse of a kept device
# (Documentation/netlink.md, CONNECT): nbdctl connect URI /dev/nbdws5 must
# give exactly that device; a second connect to the same index is refused
# while it is connected; an index above 1048575 is ERANGE. A device
# connected with --keep stays after disconnect with capacity 0, and the
# next connect to its index reuses it for another export of another size:
# what reads back must be the new export, not the old one's pages still in
# the page cache (so the old export is read in full first), and a direct
# write must land in the new backing file. Kept again, it needs two
# disconnects to go away.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
export PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH

top=${NBDWS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
nbdctl=${NBDCTL:-$top/build/nbdctl}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/device-index.XXXXXX")
idx=5
dev=/dev/nbdws$idx
sysdir=/sys/block/nbdws$idx
pids=()
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/procs.sh"
a_mib=64
b_mib=96

cleanup() {
	exec 2> /dev/null
	# A device a failed step left behind; a kept one needs a second
	# disconnect to go away.
	for _ in 1 2; do
		[ -e "$sysdir" ] &&
			timeout 60 "$nbdctl" disconnect "$dev" > /dev/null 2>&1
	done
	stop_pids "${pids[@]}"
	rm -rf "$tmp"
}
trap cleanup EXIT

start_server() {	# start_server SOCKET IMAGE
	nbdkit -f -U "$1" file "$2" > "$tmp/nbdkit.log" 2>&1 &
	pids+=("$!")
	local i
	for i in $(seq 100); do
		[ -S "$1" ] && return 0
		sleep 0.1
	done
	echo "# nbdkit did not create $1 within 10 s (tried $i times)"
	return 1
}

nbd() {	# nbd ARGS...: nbdctl with a bound, output to $tmp/out
	timeout 60 "$nbdctl" "$@" > "$tmp/out" 2>&1
}

for tool in nbdkit blockdev cmp; do
	command -v "$tool" > /dev/null || { echo "1..0 # SKIP needs $tool"; exit 0; }
done
[ -x "$nbdctl" ] || { echo "1..0 # SKIP no nbdctl at $nbdctl"; exit 0; }
[ -e "$sysdir" ] && { echo "1..0 # SKIP $dev already exists"; exit 0; }
echo "1..13"

head -c $((a_mib << 20)) /dev/urandom > "$tmp/a.img"
head -c $((b_mib << 20)) /dev/urandom > "$tmp/b.img"
uri_a="nbd+unix:///?socket=$tmp/a.sock"
uri_b="nbd+unix:///?socket=$tmp/b.sock"
if ! start_server "$tmp/a.sock" "$tmp/a.img" ||
   ! start_server "$tmp/b.sock" "$tmp/b.img"; then
	sed 's/^/# /' "$tmp/nbdkit.log"
	exit 1
fi

# 1: the requested index, and its data.
nbd connect "$uri_a" "$dev"
rc=$?
[ $rc = 0 ] && [ -b "$dev" ] && [ -e "$sysdir" ]
ok $? "connect to $dev gives $dev" "$tmp/out"
timeout 120 head -c $((a_mib << 20)) "$dev" > "$tmp/r.bin" 2>&1 &&
	cmp -s "$tmp/r.bin" "$tmp/a.img"
ok $? "$dev reads back export A"

# 2: the same index again while connected.
nbd connect "$uri_b" "$dev"
rc=$?
[ $rc = 1 ] && grep -qiE "in use|busy" "$tmp/out"
ok $? "second connect to $dev refused: exit $rc, in use/busy" "$tmp/out"
sed 's/^/# /' "$tmp/out"

nbd disconnect "$dev"
rc=$?
for _ in $(seq 50); do [ -e "$sysdir" ] || break; sleep 0.1; done
[ $rc = 0 ] && [ ! -e "$sysdir" ]
ok $? "disconnect removes $dev" "$tmp/out"

# 3: out of range index.
nbd connect "$uri_a" /dev/nbdws1048576
rc=$?
[ $rc != 0 ] && grep -qiE "ERANGE|out of range" "$tmp/out" &&
	[ ! -e /sys/block/nbdws1048576 ]
ok $? "index 1048576 refused with ERANGE (exit $rc)" "$tmp/out"
sed 's/^/# /' "$tmp/out"

# 4: --keep, fill the page cache with A, disconnect: the device stays.
nbd connect --keep "$uri_a" "$dev"
ok $? "connect --keep to $dev" "$tmp/out"
timeout 120 head -c $((a_mib << 20)) "$dev" > "$tmp/r.bin" 2>&1 &&
	cmp -s "$tmp/r.bin" "$tmp/a.img"
ok $? "kept $dev reads back export A (page cache now holds A)"
nbd disconnect "$dev"
rc=$?
[ $rc = 0 ] && [ -e "$sysdir" ] && [ "$(cat "$sysdir/size")" = 0 ]
ok $? "disconnect keeps $dev with capacity 0" "$tmp/out"

# 5: reuse for export B, larger, kept again.
nbd connect --keep "$uri_b" "$dev"
rc=$?
size=$(blockdev --getsize64 "$dev" 2>/dev/null)
[ $rc = 0 ] && [ "$size" = $((b_mib << 20)) ]
ok $? "connect reuses kept $dev for export B (size ${size:-?})" "$tmp/out"
timeout 120 head -c $((b_mib << 20)) "$dev" > "$tmp/r.bin" 2>&1 &&
	cmp -s "$tmp/r.bin" "$tmp/b.img"
ok $? "reused $dev reads back export B, not cached A"

# 6: a direct write reaches B's backing file. nocreat: with no device
# node dd would make a regular file of that name in /dev (tmpfs takes
# O_DIRECT since 6.6), and every later test using the index would find
# the file, not its disk.
head -c $((1 << 20)) /dev/urandom > "$tmp/w.bin"
timeout 60 dd if="$tmp/w.bin" of="$dev" bs=1M seek=50 oflag=direct \
	conv=fsync,nocreat status=none &&
	dd if="$tmp/b.img" of="$tmp/r.bin" bs=1M skip=50 count=1 status=none &&
	cmp -s "$tmp/r.bin" "$tmp/w.bin"
ok $? "direct write to reused $dev lands in export B's file"

# 7: kept again, so the first disconnect leaves an empty disk and the
# second removes it.
nbd disconnect "$dev"
rc=$?
[ $rc = 0 ] && [ -e "$sysdir" ] && [ "$(cat "$sysdir/size")" = 0 ]
ok $? "first disconnect keeps reused $dev with capacity 0" "$tmp/out"
nbd disconnect "$dev"
rc=$?
for _ in $(seq 50); do [ -e "$sysdir" ] || break; sleep 0.1; done
[ $rc = 0 ] && [ ! -e "$sysdir" ]
ok $? "second disconnect removes $dev" "$tmp/out"

[ $failed = 0 ]
