#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdws-relay end to end over ws://, the fast path: a WebSocket client
# nobody here wrote (python3-websockets, lib/relay_browser.py) plays the
# browser and serves nbdkit's export through the relay, which hands the
# socket to nbdws.ko in the ws-server role.
#
# Token by each method (Authorization: Bearer, ?token= over a unix-socket
# listener, the token as the subprotocol, which must be echoed); write/
# read-back checksums through /dev/nbdwsN and the server's file compared
# byte for byte after the disconnect; mkfs.ext4 + mount + checksums;
# /status JSON; nbdctl status shows the device in the ws-server role; the
# state hook ran start/stop in order with NBDWS_DEVICE/NBDWS_INDEX; close
# code 1000 (a page's Stop) removes the device at once, whatever the hold;
# --metadata. No token ever in the relay's log, no device left. (Read-only
# disks, a failing start hook, SIGTERM and --insecure: relay_modes.sh.)
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
. "$(dirname "$0")/lib/relay_lib.sh"

relay_prereqs
echo "1..20"
four_slot_setup

# --metadata: jsnbd's contract, slot name -> metadata (null when none).
"$relay_bin" --config "$tmp/relay.json" --metadata > "$tmp/meta.out" 2>&1
rc=$?
[ $rc = 0 ] && $python - "$tmp/meta.out" > "$tmp/meta.chk" 2>&1 <<'EOF' || rc=1
import json, sys
m = json.load(open(sys.argv[1]))
want = {"disk0": {"description": "selftest disk0"}, "disk1": None,
        "ro": None, "hookfail": None}
assert m == want, "got %r" % m
EOF
ok $rc "--metadata prints every slot's metadata (null if none) as one JSON object" \
	"$tmp/meta.out" "$tmp/meta.chk"

ws=ws://127.0.0.1
relay_port=$(free_port)
relay_start "$tmp/relay.json" --listen "unix:$tmp/relay.sock"
ok $? "relay listens on 127.0.0.1:$relay_port and unix:$tmp/relay.sock" \
	"$tmp/relay.log"
url=$ws:$relay_port

# --- Bearer token, data through the device, backing file byte for byte --
make_image "$tmp/img0" 32
nbdkit_start srv0 file "$tmp/img0"
serve b1 "$url/disk0" srv0 disk0 --header "Authorization: Bearer $tok_a"
ok $? "Bearer token: slot disk0 serving on $dev" "$tmp/serve.out"
d0=$dev

status_get relay.version \
	"slots[name=disk0].state" "slots[name=disk0].path" \
	"slots[name=disk0].device" "slots[name=disk0].index" \
	"slots[name=disk0].default" "slots[name=disk0].read_only" \
	"slots[name=disk0].reconnects" "slots[name=disk0].metadata.description" \
	"slots[name=disk0].kernel.state" "slots[name=disk0].kernel.size" \
	"slots[name=disk0].kernel.conns[0].transport" \
	"slots[name=disk0].kernel.conns[0].state" \
	"slots[name=disk1].state" "slots[name=disk1].device" \
	"slots[name=disk1].kernel" > "$tmp/st.out" 2> "$tmp/st.err"
rc=$?
printf '%s\n' serving kernel /dev/nbdws3 3 true false 0 "selftest disk0" \
	running 33554432 ws-server alive idle null null > "$tmp/st.want"
tail -n +2 "$tmp/st.out" | diff -u "$tmp/st.want" - >> "$tmp/st.err" || rc=1
[ -n "$(head -n 1 "$tmp/st.out")" ] || rc=1
c=$(status_get "slots[name=disk0].client" "slots[name=disk0].since")
case "$c" in 127.0.0.1:*) ;; *) rc=1; echo "client/since: $c" >> "$tmp/st.err" ;; esac
[ "$(echo "$c" | sed -n 2p)" -gt 1600000000 ] 2>/dev/null || rc=1
ok $rc "/status: state, path kernel, device, index, default, metadata, kernel conn ws-server" \
	"$tmp/st.err" "$tmp/st.out"

"$nbdctl" -j status "$d0" > "$tmp/nbdctl.st" 2>&1
$python - "$tmp/nbdctl.st" > "$tmp/nbdctl.chk" 2>&1 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["device"].endswith("nbdws3"), d["device"]
assert d["state"] == "running", d["state"]
assert "nbdws-relay disk0" in d.get("backend", ""), d.get("backend")
assert [c["transport"] for c in d["conns"]] == ["ws-server"], d["conns"]
assert d["dead_timeout_ms"] == 60000, d.get("dead_timeout_ms")
EOF
ok $? "nbdctl status: the relay's device, ws-server, backend, dead timeout = hold" \
	"$tmp/nbdctl.chk" "$tmp/nbdctl.st"

{ write_pattern "$d0" && read_back "$d0"; } > "$tmp/io.out" 2>&1
ok $? "Bearer: random writes (5 request sizes) + flush + read back" "$tmp/io.out"

# The page's Stop: close 1000 ends the slot at once (hold is 60 s).
t0=$SECONDS
stop_browser b1 TERM
{ dev_gone "$d0" 15 && wait_state disk0 idle 15; } > "$tmp/stop.out" 2>&1
rc=$?
grep -q 'closed code=1000' "$tmp/b1.ev" || { rc=1; cat "$tmp/b1.ev" >> "$tmp/stop.out"; }
ok $rc "close 1000: device gone and slot idle in $((SECONDS - t0)) s, no hold" \
	"$tmp/stop.out" "$tmp/relay.log"
wait_hook_lines 2 30
ok_cmd "hooks ran: start disk0, then stop disk0, with NBDWS_DEVICE and NBDWS_INDEX" \
	hook_log_is "start disk0 /dev/nbdws3 3" "stop disk0 /dev/nbdws3 3"
ok_cmd "server's file after the disconnect: byte for byte" check_backing "$tmp/img0"

# --- token as the subprotocol, echoed; mkfs + mount ---------------------
serve b2 "$url/disk0" srv0 disk0 --subprotocol "$tok_a"
rc=$?
ok $rc "token as subprotocol: serving on $dev" "$tmp/serve.out"
ok_cmd "token as subprotocol: echoed as the chosen subprotocol" \
	grep -qx "open subprotocol=$tok_a" "$tmp/b2.ev"
if [ $rc = 0 ]; then
	fs_check "$dev" > "$tmp/fs.out" 2>&1
	ok $? "token as subprotocol: mkfs.ext4 + mount + copy + remount + checksum" "$tmp/fs.out"
else
	ok 1 "token as subprotocol: mkfs.ext4 (not run: no device)"
fi
stop_browser b2 TERM
dev_gone "$d0" 15 > "$tmp/gone.out" 2>&1
ok $? "token as subprotocol: gone after close 1000" "$tmp/gone.out"

# --- ?token= with "binary" offered; a unix-socket listener ----------------
make_image "$tmp/img0" 32
serve b3 "ws://localhost/disk0?token=$tok_a" srv0 disk0 \
	--unix "$tmp/relay.sock" --subprotocol binary
rc=$?
ok $rc "?token= over the unix-socket listener: serving on $dev" "$tmp/serve.out"
ok_cmd "no token among the subprotocols: \"binary\" chosen" \
	grep -qx "open subprotocol=binary" "$tmp/b3.ev"
{ [ $rc = 0 ] && write_pattern "$dev" && read_back "$dev"; } > "$tmp/io.out" 2>&1
ok $? "?token=: write + read back" "$tmp/io.out"
stop_browser b3 TERM
dev_gone "$d0" 15 > "$tmp/gone.out" 2>&1 && check_backing "$tmp/img0" >> "$tmp/gone.out" 2>&1
ok $? "?token=: gone after close 1000, server's file byte for byte" "$tmp/gone.out"

ok_cmd "no token in the relay's log" no_token_logged
relay_stop > "$tmp/term.out" 2>&1
ok $? "relay exits 0 on SIGTERM" "$tmp/term.out" "$tmp/relay.log"
ok_cmd "no nbdws device left" no_devices
[ $failed = 0 ]
