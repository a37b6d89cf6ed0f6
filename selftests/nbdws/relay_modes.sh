#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdws-relay's slot modes and endings over ws://, with python3-websockets
# (lib/relay_browser.py) as the browser: a read-only export and a
# read-only slot give a read-only /dev/nbdwsN whose writes fail with
# EPERM/EROFS and leave the server's file untouched; a failing start hook
# refuses the client with close 1011 "start hook failed", removes the
# device and runs no stop hook; SIGTERM disconnects every device (the
# browser gets 1001 "relay shutting down"), runs the stop hooks and exits
# 0; an --insecure relay (logged) serves a page-style client with no
# credential and no subprotocol at "/", the default slot (the socket it
# hands over gets a receive buffer above tcp_rmem's maximum), and answers a
# client that offers its token as the only subprotocol (webui-vue) with
# that subprotocol, as a browser requires. No token in the log, no
# device left.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
. "$(dirname "$0")/lib/relay_lib.sh"

relay_prereqs
echo "1..25"
four_slot_setup

relay_port=$(free_port)
relay_start "$tmp/relay.json"
ok $? "relay listens on 127.0.0.1:$relay_port" "$tmp/relay.log"
url=ws://127.0.0.1:$relay_port
d0=/dev/nbdws3
make_image "$tmp/img0" 32
nbdkit_start srv0 file "$tmp/img0"

# --- read-only export: read-only disk, writes fail ------------------------
make_image "$tmp/img1" 32
cp "$tmp/img1" "$tmp/img1.orig"
nbdkit_start srv1 -r file "$tmp/img1"
serve b4 "$url/disk1" srv1 disk1 --header "Authorization: Bearer $tok_b"
rc=$?
ok $rc "read-only export: serving on $dev" "$tmp/serve.out"
d1=$dev
ro_check() {	# ro_check DEV: read-only, a write fails EPERM/EROFS, reads work
	local ro
	ro=$(blockdev --getro "$1")
	[ "$ro" = 1 ] || { echo "blockdev --getro: $ro"; return 1; }
	if dd if="$tmp/pat" of="$1" bs=4k count=1 oflag=direct status=none 2> "$tmp/ro.err"; then
		echo "a write to a read-only device succeeded"
		return 1
	fi
	grep -Eq 'Operation not permitted|Read-only file system' "$tmp/ro.err" || {
		cat "$tmp/ro.err"; return 1; }
	dd if="$1" of="$tmp/rb" bs=1M skip=16 count=4 iflag=direct status=none &&
	cmp "$tmp/old" "$tmp/rb"
}
ro_check "$d1" > "$tmp/ro.out" 2>&1
ok $? "read-only export: getro 1, write fails EPERM/EROFS, reads right" "$tmp/ro.out"
stop_browser b4 TERM
dev_gone "$d1" 15 > "$tmp/gone.out" 2>&1 && cmp "$tmp/img1" "$tmp/img1.orig" >> "$tmp/gone.out" 2>&1
ok $? "read-only export: gone after close, server's file untouched" "$tmp/gone.out"

# --- read-only slot over a writable export --------------------------------
make_image "$tmp/img2" 32
cp "$tmp/img2" "$tmp/img2.orig"
nbdkit_start srv2 file "$tmp/img2"
serve b5 "$url/ro" srv2 ro --header "Authorization: Bearer $tok_all"
rc=$?
ro_check "$dev" > "$tmp/ro.out" 2>&1 || rc=1
[ "$(status_get 'slots[name=ro].read_only')" = true ] || { rc=1; echo "read_only not true" >> "$tmp/ro.out"; }
ok $rc "read-only slot: getro 1, write fails, /status read_only true" "$tmp/serve.out" "$tmp/ro.out"
stop_browser b5 TERM
dev_gone "$dev" 15 > "$tmp/gone.out" 2>&1 && cmp "$tmp/img2" "$tmp/img2.orig" >> "$tmp/gone.out" 2>&1
ok $? "read-only slot: gone after close, server's file untouched" "$tmp/gone.out"

# --- a failing start hook: close 1011, no stop hook, slot idle ------------
echo hookfail > "$tmp/hook.fail"
: > "$tmp/hook.log"
browser b6 "$url/hookfail" srv2 --header "Authorization: Bearer $tok_all"
wait_event b6 '^(closed|error)' 60 > "$tmp/hf.out" 2>&1
rc=$?
grep -q '^closed code=1011 reason=start hook failed by=server' "$tmp/b6.ev" ||
	{ rc=1; cat "$tmp/b6.ev" >> "$tmp/hf.out"; }
{ wait_state hookfail idle 15 && dev_gone /dev/nbdws6 15; } >> "$tmp/hf.out" 2>&1 || rc=1
ok $rc "start hook fails: client closed 1011 \"start hook failed\", slot idle, no device" \
	"$tmp/hf.out" "$tmp/relay.log"
sleep 1
ok_cmd "start hook fails: the stop hook did not run" \
	hook_log_is "start hookfail /dev/nbdws6 6"

# --- SIGTERM: every device disconnected (1001), stop hooks, exit 0 --------
: > "$tmp/hook.log"
make_image "$tmp/img0" 32
serve b7 "$url/disk0" srv0 disk0 --header "Authorization: Bearer $tok_a"
ok $? "serving on $dev before SIGTERM" "$tmp/serve.out"
rpid=$relay_pid
relay_stop > "$tmp/term.out" 2>&1
rc=$?
[ $rc = 0 ] || echo "relay exit status $rc" >> "$tmp/term.out"
dev_gone "$d0" 15 >> "$tmp/term.out" 2>&1 || rc=1
wait_event b7 '^(closed|error)' 15 >> "$tmp/term.out" 2>&1 || rc=1
grep -q '^closed code=1001 reason=relay shutting down by=server' "$tmp/b7.ev" ||
	{ rc=1; cat "$tmp/b7.ev" >> "$tmp/term.out"; }
ok $rc "SIGTERM: exit 0, device gone, browser got 1001 \"relay shutting down\"" \
	"$tmp/term.out" "$tmp/relay.log"
ok_cmd "SIGTERM: start and stop hooks ran" \
	hook_log_is "start disk0 /dev/nbdws3 3" "stop disk0 /dev/nbdws3 3"
ok_cmd "no token in the relay's log" no_token_logged
mv "$tmp/relay.log" "$tmp/relay1.log"

# --- --insecure: the page-style client, "/" to the default slot ----------
cat > "$tmp/insecure.json" <<EOF
{ "slots": { "disk0": { "index": 3, "default": true }, "disk1": { "index": 4 } } }
EOF
relay_start "$tmp/insecure.json" --insecure
ok $? "--insecure relay without tokens starts" "$tmp/relay.log"
grep -qi 'insecure' "$tmp/relay.log"
ok $? "--insecure is logged as a warning" "$tmp/relay.log"
make_image "$tmp/img0" 32
serve b8 "$url/" srv0 disk0
rc=$?
ok $rc "page-style client (no subprotocol, no credential) at / gets the default slot: $dev" \
	"$tmp/serve.out"
ok_cmd "page-style client: no subprotocol chosen" grep -qx "open subprotocol=-" "$tmp/b8.ev"
{ [ $rc = 0 ] && write_pattern "$dev" && read_back "$dev"; } > "$tmp/io.out" 2>&1
ok $? "page-style client: write + read back" "$tmp/io.out"
# The driver fixed the handed-over socket's receive buffer for the reads
# it may have in flight, past what autotuning reaches (driver.md, "High-
# latency links"); autotuning alone never exceeds tcp_rmem's maximum.
ss -tmnH state established "( sport = :$relay_port )" > "$tmp/ss.out" 2>&1
grep -q skmem "$tmp/ss.out" ||
	echo "ss printed no socket memory: does the kernel have INET_DIAG (tcp_diag)?" >> "$tmp/ss.out"
rb=$(grep -o 'rb[0-9]*' "$tmp/ss.out" | tr -d rb | sort -n | tail -n 1)
rmax=$(cut -f3 /proc/sys/net/ipv4/tcp_rmem)
[ -n "$rb" ] && [ "$rb" -gt "$rmax" ]
ok $? "handed-over socket: receive buffer ${rb:-?} above tcp_rmem's maximum $rmax" \
	"$tmp/ss.out"
stop_browser b8 TERM
dev_gone "$d0" 15 > "$tmp/gone.out" 2>&1 && check_backing "$tmp/img0" >> "$tmp/gone.out" 2>&1
ok $? "page-style client: gone after close 1000, server's file byte for byte" "$tmp/gone.out"

# The token as the only subprotocol: nothing checks it under --insecure,
# but a browser fails a handshake whose offered subprotocol is not
# answered. (python3-websockets accepts no answer: the event line tells.)
serve b9 "$url/disk1" srv0 disk1 --subprotocol "$tok_c"
rc=$?
ok $rc "--insecure, token as the only subprotocol: served at /disk1: $dev" \
	"$tmp/serve.out"
ok_cmd "--insecure, token as the only subprotocol: echoed as the chosen one" \
	grep -qx "open subprotocol=$tok_c" "$tmp/b9.ev"
stop_browser b9 TERM
dev_gone /dev/nbdws4 15 > "$tmp/gone.out" 2>&1
ok $? "--insecure, token as the only subprotocol: gone after close 1000" \
	"$tmp/gone.out"

relay_stop > "$tmp/term.out" 2>&1
ok $? "relay exits 0 on SIGTERM" "$tmp/term.out" "$tmp/relay.log"
ok_cmd "--insecure: the echoed token is not in the relay's log" no_token_logged
ok_cmd "no nbdws device left" no_devices
[ $failed = 0 ]
