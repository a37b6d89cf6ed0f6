#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdctl connect ws:// and wss:// end to end, against a WebSocket server
# nobody here wrote: websockify (Debian) in front of nbdkit's file plugin,
# plain and with TLS (a throwaway self-signed certificate made here, which
# nbdctl verifies with --cafile: no "insecure" shortcut), and
# against our scripted peer (lib/ws_nbd_peer.py, replies split at random
# into frames and messages). The kernel runs the connection in the
# ws-client role; for wss it gets a kTLS socket. Then the browser case, the
# kernel in the ws-server role, against a WebSocket client nobody here
# wrote: Debian's python3-websockets (lib/ws_client_bridge.py) connects to
# build/ws_attach, which answers the upgrade, runs the NBD handshake
# through it and hands the socket over; the bridge relays to nbdkit.
#
# Per target: random data written at several offsets with several request
# sizes and flushed, read back through the device, data the image already
# had read back, then after disconnect the server's backing file compared
# byte for byte; then a second connection, mkfs.ext4, mount, file copy,
# remount after dropping caches, checksums. Last, nbdctl's --ping: the
# peer must see keepalive pings on an idle device.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
export PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH

top=${NBDWS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
nbdctl=${NBDCTL:-$top/build/nbdctl}
python=/usr/bin/python3
peer=$top/selftests/nbdws/lib/ws_nbd_peer.py
bridge=$top/selftests/nbdws/lib/ws_client_bridge.py
attach=$top/build/ws_attach
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ws-websockify.XXXXXX")
pids=()
dev=
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/procs.sh"
img_mib=64

cleanup() {
	# No job-control chatter ("Killed") in the TAP output.
	exec 2> /dev/null
	umount "$tmp/mnt" 2>/dev/null
	# A device this script left behind (a failed step).
	[ -n "${dev:-}" ] && [ -e "/sys/block/${dev#/dev/}" ] &&
		timeout 60 "$nbdctl" disconnect "$dev" > /dev/null 2>&1
	stop_pids "${pids[@]}"
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	$python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {	# wait_port PORT SECONDS
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		$python -c "import socket, sys; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

# Start a daemon in its own process group so cleanup takes its children too.
spawn() {	# spawn LOG CMD...
	local log=$1
	shift
	setsid "$@" > "$log" 2>&1 &
	pids+=($!)
}

# The device named in a connect tool's output FILE -> $dev, once its node
# exists; 0 on success.
dev_from() {	# dev_from FILE
	local name
	name=$(grep -o 'nbdws[0-9][0-9]*' "$1" | head -n 1)
	[ -n "$name" ] || return 1
	dev=/dev/$name
	for _ in $(seq 100); do
		[ -b "$dev" ] && return 0
		sleep 0.1
	done
	return 1
}

# nbdctl connect [OPTIONS...] URI -> sets $dev (/dev/nbdwsN); 0 on success.
connect() {
	local out=$tmp/connect.out
	dev=
	timeout 120 "$nbdctl" connect "$@" > "$out" 2>&1 || return 1
	dev_from "$out"
}

# The ws-server role: ws_attach listens, the third-party client connects
# and relays to the NBD server on the unix socket given as the "URI".
attach_connect() {	# attach_connect SOCKET -> sets $dev; 0 on success.
	local out=$tmp/connect.out
	dev=
	rm -f "$tmp/attach.port"
	timeout 120 "$attach" --listen 127.0.0.1:0 --port-file "$tmp/attach.port" \
		--conns 1 > "$out" 2>&1 &
	local apid=$!
	for _ in $(seq 300); do [ -s "$tmp/attach.port" ] && break; sleep 0.1; done
	spawn "$tmp/bridge.log" $python "$bridge" \
		"ws://127.0.0.1:$(cat "$tmp/attach.port" 2>/dev/null)/nbd" "$1"
	wait "$apid" || { cat "$tmp/bridge.log" >> "$out"; return 1; }
	dev_from "$out"
}
connect_fn=connect

disconnect() {
	timeout 60 "$nbdctl" disconnect "$dev" > "$tmp/disconnect.out" 2>&1 || return 1
	for _ in $(seq 300); do
		[ -e "/sys/block/${dev#/dev/}" ] || return 0
		sleep 0.1
	done
	return 1
}

# A fresh backing image: zeroes, with 8 MiB of random "old" data at 32 MiB.
# Rewritten in place: a server may keep the file open between connections.
make_image() {	# make_image FILE
	truncate -s 0 "$1" &&
	truncate -s ${img_mib}M "$1" &&
	dd if="$tmp/old" of="$1" bs=1M seek=32 conv=notrunc status=none
}

# The 8 MiB pattern written (O_DIRECT) with four request sizes, flushed:
# [0,2M) in 4 KiB, [2M,4M) in 64 KiB, [4M,7M) in 1 MiB, [7M,8M) in 512 B.
write_pattern() {
	dd if="$tmp/pat" of="$dev" bs=4k count=512 oflag=direct status=none &&
	dd if="$tmp/pat" of="$dev" bs=64k skip=32 seek=32 count=32 oflag=direct status=none &&
	dd if="$tmp/pat" of="$dev" bs=1M skip=4 seek=4 count=3 oflag=direct status=none &&
	dd if="$tmp/pat" of="$dev" bs=512 skip=14336 seek=14336 count=2048 oflag=direct conv=fsync status=none
}

# The device's first 8 MiB must be the pattern, 32..40 MiB the old data.
# (Through files: the guest has no /dev/fd for process substitution.)
read_back() {
	dd if="$dev" of="$tmp/rb" bs=256k count=32 iflag=direct status=none &&
	cmp "$tmp/pat" "$tmp/rb" &&
	dd if="$dev" of="$tmp/rb" bs=1M skip=32 count=8 iflag=direct status=none &&
	cmp "$tmp/old" "$tmp/rb" &&
	rm -f "$tmp/rb"
}

# The backing file after disconnect: pattern, zeroes, old data, zeroes.
check_backing() {	# check_backing FILE
	cmp -n $((8 << 20)) "$tmp/pat" "$1" &&
	cmp -n $((24 << 20)) -i $((8 << 20)):0 "$1" /dev/zero &&
	cmp -i $((32 << 20)):0 -n $((8 << 20)) "$1" "$tmp/old" &&
	cmp -n $((24 << 20)) -i $((40 << 20)):0 "$1" /dev/zero
}

fs_check() {
	local m=$tmp/mnt
	mkdir -p "$m" &&
	mkfs.ext4 -q -F "$dev" &&
	mount "$dev" "$m" &&
	dd if=/dev/urandom of="$m/a" bs=1M count=4 status=none &&
	cp "$m/a" "$m/b" &&
	(cd "$m" && sha256sum a b) > "$tmp/sums" &&
	umount "$m" &&
	echo 3 > /proc/sys/vm/drop_caches &&
	mount -o ro "$dev" "$m" &&
	(cd "$m" && sha256sum -c --quiet "$tmp/sums")
	local rc=$?
	umount "$m" 2>/dev/null
	return $rc
}

# The whole suite against one URI whose server keeps its data in FILE,
# with extra nbdctl connect OPTIONS.
suite() {	# suite NAME URI FILE [OPTIONS...]
	local name=$1 uri=$2 file=$3 rc
	shift 3
	$connect_fn "$@" "$uri"
	rc=$?
	ok $rc "$name: connect $uri" "$tmp/connect.out"
	if [ $rc != 0 ]; then
		ok 1 "$name: data integrity (not run: no device)"
		ok 1 "$name: mkfs.ext4 + mount + checksum (not run: no device)"
		return
	fi
	{ write_pattern && read_back; } > "$tmp/io.out" 2>&1
	rc=$?
	disconnect >> "$tmp/io.out" 2>&1 || rc=1
	[ $rc = 0 ] && { check_backing "$file" >> "$tmp/io.out" 2>&1 || rc=1; }
	ok $rc "$name: random writes + flush + read back + backing file byte for byte" "$tmp/io.out"

	make_image "$file"
	rc=1
	if $connect_fn "$@" "$uri"; then
		fs_check > "$tmp/fs.out" 2>&1
		rc=$?
		disconnect >> "$tmp/fs.out" 2>&1 || rc=1
	else
		cp "$tmp/connect.out" "$tmp/fs.out"
	fi
	ok $rc "$name: mkfs.ext4 + mount + copy + remount + checksum" "$tmp/fs.out"
}

echo "TAP version 13"
for tool in /usr/bin/websockify /usr/sbin/nbdkit /usr/bin/openssl; do
	[ -x "$tool" ] || [ -x "/usr/bin/${tool##*/}" ] || { echo "1..0 # SKIP needs ${tool##*/}"; exit 0; }
done
[ -x "$nbdctl" ] || { echo "1..0 # SKIP no nbdctl at $nbdctl"; exit 0; }
[ -x "$attach" ] || { echo "1..0 # SKIP no $attach (make bench-tools)"; exit 0; }
echo "1..13"

dd if=/dev/urandom of="$tmp/pat" bs=1M count=8 status=none
dd if=/dev/urandom of="$tmp/old" bs=1M count=8 status=none
# kTLS for wss:// (CONFIG_TLS=m in Debian's kernels); ext4 is a module
# too, and the guest may not autoload either.
modprobe tls 2>/dev/null
modprobe ext4 2>/dev/null

# --- websockify in front of nbdkit, ws:// --------------------------------
make_image "$tmp/nbdkit.img"
spawn "$tmp/nbdkit.log" nbdkit -f -U "$tmp/nbd.sock" file "$tmp/nbdkit.img"
for _ in $(seq 100); do [ -S "$tmp/nbd.sock" ] && break; sleep 0.1; done
wsport=$(free_port)
spawn "$tmp/websockify.log" $python /usr/bin/websockify \
	--unix-target="$tmp/nbd.sock" "127.0.0.1:$wsport"
wait_port "$wsport" 60
suite "websockify+nbdkit ws://" "ws://127.0.0.1:$wsport/" "$tmp/nbdkit.img"

# --- the same behind TLS, wss:// ------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" > "$tmp/openssl.log" 2>&1
make_image "$tmp/nbdkit.img"
tlsport=$(free_port)
spawn "$tmp/websockify-tls.log" $python /usr/bin/websockify --ssl-only \
	--cert="$tmp/cert.pem" --key="$tmp/key.pem" \
	--unix-target="$tmp/nbd.sock" "127.0.0.1:$tlsport"
wait_port "$tlsport" 60
# Verification on, against the throwaway certificate only.
suite "websockify(TLS)+nbdkit wss://" "wss://127.0.0.1:$tlsport/" \
	"$tmp/nbdkit.img" --cafile "$tmp/cert.pem"

# --- our scripted peer, replies split at random ---------------------------
make_image "$tmp/peer.img"
spawn "$tmp/peer.out" $python "$peer" --role server \
	--listen 127.0.0.1:0 --port-file "$tmp/peer.port" --accept 100 \
	--file "$tmp/peer.img" --split random --log "$tmp/peer.log"
for _ in $(seq 300); do [ -s "$tmp/peer.port" ] && break; sleep 0.1; done
pport=$(cat "$tmp/peer.port" 2>/dev/null)
suite "ws_nbd_peer --split random ws://" "ws://127.0.0.1:${pport:-1}/nbd" \
	"$tmp/peer.img"

# --- keepalive set through nbdctl: pings reach the peer on an idle device
make_image "$tmp/peer.img"
count_pings() { grep -c '^ping-received' "$tmp/peer.log" 2>/dev/null || true; }
before=$(count_pings)
pings=0
rc=1
if connect --ping 1 "ws://127.0.0.1:${pport:-1}/nbd"; then
	sleep 5
	pings=$(( $(count_pings) - ${before:-0} ))
	[ "$pings" -ge 2 ] && rc=0
	disconnect || rc=1
fi
ok $rc "nbdctl connect --ping 1: the peer saw pings on the idle device ($pings in 5 s)" "$tmp/connect.out"

# --- the kernel as ws-server: a third-party WebSocket client -------------
make_image "$tmp/nbdkit.img"
connect_fn=attach_connect
suite "python3-websockets client -> kernel ws-server" "$tmp/nbd.sock" \
	"$tmp/nbdkit.img"
connect_fn=connect

[ $failed = 0 ]
