#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdws-serve, the command-line client of the relay, end to end: it
# serves a writable image (token from a file) to the relay, which hands
# the socket to nbdws.ko; data written through /dev/nbdwsN reads back and
# lands in the image byte for byte. Frozen (SIGSTOP) while a dd writes,
# it misses the slot's pings, nbdws.ko closes with 1001 and holds the
# device; resumed, nbdws-serve takes the 1001 for a drop, reconnects, the
# relay reattaches it and the dd completes. SIGTERM closes with 1000: the
# device goes at once and nbdws-serve exits 0. A read-only ext4 image
# whose size is not a multiple of 512 mounts and its files check out;
# writes fail. An nbd+unix:// source (nbdkit) is bridged. A wrong token
# exits 1 with the 401. No token in any log, no device left.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
. "$(dirname "$0")/lib/relay_lib.sh"

serve_bin=${NBDWS_SERVE:-$top/build/nbdws-serve}

relay_prereqs
[ -x "$serve_bin" ] || { echo "1..0 # SKIP no $serve_bin"; exit 0; }
echo "1..18"
make_data
write_hook
write_tokens "$tok_a disk0 ro bridge" "$tok_all"
printf '%s\n' "$tok_a" > "$tmp/tok_a"
printf '%s\n' "$tok_c" > "$tmp/tok_c"
cat > "$tmp/relay.json" <<EOF
{
  "state-hook": "$tmp/hook",
  "auth": { "tokens-file": "$tmp/tokens" },
  "slots": {
    "disk0": { "index": 3, "hold": 60, "ping": 1 },
    "ro": { "index": 4 },
    "bridge": { "index": 5 }
  }
}
EOF
relay_start "$tmp/relay.json"
ok $? "relay listens on 127.0.0.1:$relay_port" "$tmp/relay.log"
url=ws://127.0.0.1:$relay_port

# serve_file NAME SLOT [OPTIONS] SOURCE: nbdws-serve in the background,
# its log $tmp/NAME.log; waits for the slot to serve and sets $dev.
declare -A sv_pid
serve_file() {
	local name=$1 slot=$2
	shift 2
	spawn "$tmp/$name.log" "$serve_bin" -v --token-file "$tmp/tok_a" \
		"$@" "$url/$slot"
	sv_pid[$name]=$last_pid
	wait_serving "$slot" "$tmp/$name.log"
}

# stop_serve NAME SIGNAL: signal it; its exit status (124: did not exit
# within 30 s).
stop_serve() {
	local p=${sv_pid[$1]}
	kill -"$2" "$p" 2>/dev/null
	for _ in $(seq 300); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$p" 2>/dev/null && return 124
	wait "$p"
}

# --- writable image, token from a file ---------------------------------
make_image "$tmp/img0" 32
serve_file w disk0 --writable "$tmp/img0"
ok $? "nbdws-serve --writable: slot disk0 serving on $dev" "$tmp/serve.out"
d0=$dev
size=$(blockdev --getsize64 "$d0" 2>&1)
ro=$(blockdev --getro "$d0" 2>&1)
[ "$size" = $((32 << 20)) ] && [ "$ro" = 0 ]
ok $? "the device has the image's size ($size) and is writable (ro=$ro)"

{ write_pattern "$d0" && read_back "$d0"; } > "$tmp/io.out" 2>&1
ok $? "random writes (5 request sizes) + flush + read back" "$tmp/io.out"

# Frozen while writing: the kernel's pings go unanswered, it closes with
# 1001 and holds; resumed, nbdws-serve reconnects and the dd completes.
dd if=/dev/urandom of="$tmp/big" bs=1M count=8 status=none
dd if="$tmp/big" of="$d0" bs=1M seek=20 count=8 oflag=direct conv=fsync \
	> "$tmp/dd.out" 2>&1 &
dd_pid=$!
sleep 0.5
kill -STOP "${sv_pid[w]}"
wait_state disk0 held 30 > "$tmp/held.out" 2>&1
rc=$?
kill -CONT "${sv_pid[w]}"
ok $rc "SIGSTOP: no pong, the relay holds disk0" "$tmp/held.out" "$tmp/relay.log"
wait_state disk0 serving 60 > "$tmp/back.out" 2>&1
rc=$?
grep -q "reconnected" "$tmp/w.log" || { rc=1; cat "$tmp/w.log" >> "$tmp/back.out"; }
ok $rc "SIGCONT: nbdws-serve takes the 1001 for a drop and reconnects" \
	"$tmp/back.out" "$tmp/relay.log"
wait $dd_pid
rc=$?
[ $rc = 0 ] && dd if="$d0" of="$tmp/big.rb" bs=1M skip=20 count=8 iflag=direct \
	status=none && cmp "$tmp/big.rb" "$tmp/big" >> "$tmp/dd.out" 2>&1 || rc=1
ok $rc "the dd written across the freeze completed without error, data reads back" \
	"$tmp/dd.out"
[ "$(status_get "slots[name=disk0].device")" = "$d0" ]
ok $? "the same device $d0 (attached again, not made anew)"

stop_serve w TERM
rc=$?
echo "exit status $rc" > "$tmp/stop.out"
{ dev_gone "$d0" 15 && wait_state disk0 idle 15; } >> "$tmp/stop.out" 2>&1 || rc=1
grep -q "stopped by SIGTERM" "$tmp/w.log" || rc=1
ok $rc "SIGTERM: close 1000, device gone at once, nbdws-serve exited 0" \
	"$tmp/stop.out" "$tmp/w.log"
{ cmp -n $((8 << 20)) "$tmp/pat" "$tmp/img0" &&
  cmp -i $((16 << 20)):0 -n $((4 << 20)) "$tmp/img0" "$tmp/old" &&
  cmp -i $((20 << 20)):0 -n $((8 << 20)) "$tmp/img0" "$tmp/big"; } > "$tmp/bk.out" 2>&1
ok $? "the image holds every byte written, the old data untouched" "$tmp/bk.out"

# --- read-only ext4 image, size not a multiple of 512 -------------------
mkdir -p "$tmp/files"
dd if=/dev/urandom of="$tmp/files/one" bs=1k count=700 status=none
echo "hello from nbdws-serve" > "$tmp/files/two.txt"
(cd "$tmp/files" && sha256sum one two.txt) > "$tmp/files.sums"
{ mkfs.ext4 -q -F -d "$tmp/files" "$tmp/ro.img" 8M &&
  truncate -s $(((8 << 20) + 300)) "$tmp/ro.img"; } > "$tmp/mk.out" 2>&1
ok $? "an 8 MiB + 300 B ext4 image with two files" "$tmp/mk.out"
cp "$tmp/ro.img" "$tmp/ro.orig"
serve_file r ro "$tmp/ro.img"
rc=$?
dr=$dev
[ "$(blockdev --getro "$dr" 2>/dev/null)" = 1 ] || rc=1
ok $rc "read-only by default: $dr is read-only" "$tmp/serve.out"
(mount -o ro "$dr" "$tmp/mnt" && cd "$tmp/mnt" && sha256sum -c --quiet "$tmp/files.sums"
 r=$?; cd / && umount "$tmp/mnt"; exit $r) > "$tmp/fs.out" 2>&1
ok $? "mount -o ro: every file's SHA-256 checks out" "$tmp/fs.out"
{ ! dd if=/dev/zero of="$dr" bs=4k count=1 oflag=direct status=none &&
  cmp "$tmp/ro.img" "$tmp/ro.orig"; } > "$tmp/rw.out" 2>&1
ok $? "a write to the read-only device fails, the image is unchanged" "$tmp/rw.out"
stop_serve r INT
rc=$?
echo "exit status $rc" > "$tmp/stop2.out"
dev_gone "$dr" 15 >> "$tmp/stop2.out" 2>&1 || rc=1
ok $rc "SIGINT: exit 0, device gone" "$tmp/stop2.out" "$tmp/r.log"

# --- an NBD server as the source ------------------------------------------
make_image "$tmp/img1" 32
nbdkit_start srv1 file "$tmp/img1"
serve_file b bridge "nbd+unix:///?socket=$tmp/srv1.sock"
rc=$?
db=$dev
{ [ $rc = 0 ] && write_pattern "$db" && read_back "$db"; } > "$tmp/br.out" 2>&1 || rc=1
stop_serve b TERM || rc=1
{ dev_gone "$db" 15 && check_backing "$tmp/img1"; } >> "$tmp/br.out" 2>&1 || rc=1
ok $rc "nbd+unix:// bridged to nbdkit: data through the device lands in its file" \
	"$tmp/br.out" "$tmp/b.log" "$tmp/serve.out"

# --- refusal and hygiene ------------------------------------------------
"$serve_bin" --token-file "$tmp/tok_c" "$tmp/img0" "$url/disk0" \
	> "$tmp/bad.log" 2>&1
rc=$?
[ $rc = 1 ] && grep -q 401 "$tmp/bad.log"
ok $? "a wrong token: exit 1 (got $rc) with the 401 and a hint" "$tmp/bad.log"

rc=0
for t in "$tok_a" "$tok_c"; do
	grep -qF "$t" "$tmp"/*.log && { rc=1; echo "token ${t:0:5}... logged"; }
done > "$tmp/tok.out"
no_devices >> "$tmp/tok.out" || rc=1
ok $rc "no token in any log, no device left" "$tmp/tok.out"
