#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdws-relay refuses what it must, each case with its exact HTTP status
# (raw requests from lib/relay_probe.py, the real python3-websockets client
# for one) or WebSocket close code, while a slot keeps serving a device
# through the storm: no token 401 (+ WWW-Authenticate: Bearer), wrong token
# 401, a token of another slot 403, a token in a Cookie 401, two
# credentials that disagree 400, a bad Origin 403, a plain GET 426, a
# wrong WebSocket version 426 (+ Sec-WebSocket-Version: 13), a malformed
# upgrade 400, an oversized header 431, too many header fields 431, an
# overlong request line 414, the busy slot 409, an unknown path 404, POST
# 405 (+ Allow: GET), /status without a credential 401; a client that
# stalls the NBD handshake is closed with 1011 and a slowloris client is
# dropped within the handshake timeout; 500 bad handshakes in a row leave
# the relay with the same fd count and about the same RSS. Afterwards the
# serving device still reads back what was written, its connection never
# dropped, and the idle slot still takes a client.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
. "$(dirname "$0")/lib/relay_lib.sh"

relay_prereqs
echo "1..40"
make_data
write_hook
write_tokens "$tok_a disk0" "$tok_b disk1" "$tok_all"
hs_timeout=3
cat > "$tmp/relay.json" <<EOF
{
  "state-hook": "$tmp/hook",
  "auth": { "tokens-file": "$tmp/tokens" },
  "limits": { "handshake-timeout": $hs_timeout },
  "defaults": { "hold": 30, "origins": [ "https://good.example" ] },
  "slots": {
    "disk0": { "index": 3 },
    "disk1": { "index": 4 }
  }
}
EOF
relay_start "$tmp/relay.json"
ok $? "relay listens on 127.0.0.1:$relay_port" "$tmp/relay.log"
url=ws://127.0.0.1:$relay_port

make_image "$tmp/img0" 32
nbdkit_start srv0 file "$tmp/img0"
serve b0 "$url/disk0" srv0 disk0 --header "Authorization: Bearer $tok_a" \
	--origin https://good.example
rc=$?
d0=$dev
{ [ $rc = 0 ] && write_pattern "$d0" && read_back "$d0"; } > "$tmp/io.out" 2>&1 || rc=1
ok $rc "disk0 serving on $d0 (allowed Origin), written and read back" \
	"$tmp/serve.out" "$tmp/io.out"

# http_case DESCRIPTION PROBE-ARGS...: the probe's own --expect decides.
http_case() {
	local desc=$1
	shift
	probe http "$@" > "$tmp/probe.out" 2>&1
	ok $? "$desc" "$tmp/probe.out"
}
up=(--upgrade --path /disk1)

http_case "no credential: 401 with WWW-Authenticate: Bearer" "${up[@]}" \
	--expect 401 --expect-header "WWW-Authenticate: Bearer"
http_case "wrong token: 401" "${up[@]}" --token wrong-wrong-wrong-wrong-1234 \
	--expect 401
http_case "token of another slot: 403" "${up[@]}" --token "$tok_a" --expect 403
http_case "token in a Cookie (not a credential place): 401" "${up[@]}" \
	--header "Cookie: token=$tok_b" --expect 401
http_case "wrong token as the only subprotocol: 401" "${up[@]}" \
	--header "Sec-WebSocket-Protocol: wrong-wrong-wrong-wrong-1234" --expect 401
http_case "Bearer and ?token= that disagree: 400" --upgrade \
	--path "/disk1?token=$tok_all" --token "$tok_b" --expect 400
http_case "Origin not in the slot's list: 403" "${up[@]}" --token "$tok_b" \
	--header "Origin: https://evil.example" --expect 403
http_case "plain GET of a slot (no --web): 426" --path /disk1 --token "$tok_b" \
	--expect 426
http_case "Sec-WebSocket-Version 8: 426 with Sec-WebSocket-Version: 13" \
	"${up[@]}" --token "$tok_b" --ws-version 8 --expect 426 \
	--expect-header "Sec-WebSocket-Version: 13"
http_case "upgrade without Sec-WebSocket-Key: 400" --path /disk1 \
	--token "$tok_b" --header "Upgrade: websocket" \
	--header "Connection: Upgrade" --header "Sec-WebSocket-Version: 13" \
	--expect 400
http_case "9000-byte header field: 431" "${up[@]}" --token "$tok_b" \
	--pad 9000 --expect 431
http_case "70 extra header fields: 431" "${up[@]}" --token "$tok_b" \
	--fields 70 --expect 431
http_case "3000-byte request line: 414" "${up[@]}" --token "$tok_b" \
	--line 3000 --expect 414
http_case "busy slot: 409" --upgrade --path /disk0 --token "$tok_a" \
	--header "Origin: https://good.example" --expect 409
http_case "unknown slot: 404" --upgrade --path /no-such-slot \
	--token "$tok_all" --expect 404
http_case "no default slot: upgrade at / is 404" --upgrade --path / \
	--token "$tok_all" --expect 404
http_case "POST: 405 with Allow: GET" --method POST --path /disk1 \
	--token "$tok_b" --header "Content-Length: 0" --expect 405 \
	--expect-header "Allow: GET"
http_case "/status without a credential: 401" --path /status --expect 401
http_case "/status with a token of one slot: 200" --path /status \
	--token "$tok_a" --expect 200
http_case "every response says Connection: close" --path /nope --expect 404 \
	--expect-header "Connection: close"

# The real client library sees the refusal too.
browser r1 "$url/disk1" srv0
wait_event r1 '^refused status=401' 30 > "$tmp/r1.out" 2>&1
ok $? "python3-websockets without a credential: refused 401" "$tmp/r1.out"

# Origin matching ignores case in scheme and host; no Origin is allowed.
http_case "Origin HTTPS://GOOD.EXAMPLE (case differs) accepted: 101" \
	"${up[@]}" --token "$tok_b" --header "Origin: HTTPS://GOOD.EXAMPLE" \
	--expect 101
wait_state disk1 idle $((hs_timeout + 15)) > "$tmp/idle.out" 2>&1
ok $? "the walked-away client releases disk1" "$tmp/idle.out"

# A WebSocket that never serves NBD: 1011 once the handshake times out
# (counted from the accept, so at most the timeout after the upgrade).
browser st "$url/disk1" srv0 --stall --header "Authorization: Bearer $tok_b"
wait_event st '^closed code=1011 reason=handshake timed out' $((hs_timeout + 60)) \
	> "$tmp/st.out" 2>&1
rc=$?
el=$(sed -n 's/^closed .* after=\([0-9]*\)\..*/\1/p' "$tmp/st.ev")
[ -n "$el" ] && [ "$el" -le $((hs_timeout + 2)) ] || rc=1
ok $rc "NBD handshake stalled: closed 1011 \"handshake timed out\" ${el:-?}s after the upgrade" \
	"$tmp/st.out" "$tmp/st.ev"
wait_state disk1 idle 10 > "$tmp/idle.out" 2>&1
ok $? "the stalled client releases disk1" "$tmp/idle.out"

probe slowloris --path /disk1 --interval 0.3 --max 60 \
	--expect-within $((hs_timeout + 8)) --expect 408 > "$tmp/slow.out" 2>&1
ok $? "slowloris: $(head -n 1 "$tmp/slow.out")" "$tmp/slow.out"

# --- 500 bad handshakes in a row: same fds, about the same memory --------
fds() { ls "/proc/$relay_pid/fd" | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$relay_pid/status"; }
settle_fds() {	# settle_fds WANT: fds back to WANT within 10 s
	for _ in $(seq 100); do
		[ "$(fds)" -le "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
# Warm up: the allocator's arenas and the first fiber stacks.
probe storm --count 45 --slot disk1 --token "$tok_b" > "$tmp/warm.out" 2>&1
wait_state disk1 idle 15 > /dev/null 2>&1
sleep 1
fd0=$(fds)
rss0=$(rss_kb)
probe storm --count 500 --slot disk1 --token "$tok_b" > "$tmp/storm.out" 2>&1
ok $? "$(tail -n 1 "$tmp/storm.out")" "$tmp/storm.out" "$tmp/relay.log"
wait_state disk1 idle 15 > /dev/null 2>&1
settle_fds "$fd0"
fd1=$(fds)
rss1=$(rss_kb)
ok $([ "$fd1" = "$fd0" ]; echo $?) "relay fds after 500 bad handshakes: $fd1, before: $fd0"
ok $([ "$rss1" -le $((rss0 + 1536)) ]; echo $?) \
	"relay RSS after 500 bad handshakes: $rss1 kB, before: $rss0 kB (+1.5 MiB allowed)"
kill -0 "$relay_pid" 2>/dev/null
ok $? "relay still running"

# --- nothing else disturbed ----------------------------------------------
status_get "slots[name=disk0].state" "slots[name=disk0].reconnects" \
	"slots[name=disk0].kernel.conns[0].state" \
	"slots[name=disk0].kernel.conns[0].stats.errors" \
	"slots[name=disk0].kernel.conns[0].stats.reconnects" \
	"slots[name=disk1].state" > "$tmp/st.out" 2>&1
printf '%s\n' serving 0 alive 0 0 idle | diff -u - "$tmp/st.out" > "$tmp/st.diff"
ok $? "/status: disk0 still serving, connection never dropped, no errors; disk1 idle" \
	"$tmp/st.diff"
read_back "$d0" > "$tmp/io.out" 2>&1
ok $? "disk0 still reads back its data" "$tmp/io.out"
[ "$(grep -c . "$tmp/hook.log")" = 1 ] && grep -qx "start disk0 $d0 3" "$tmp/hook.log"
ok $? "the storm ran no hook" "$tmp/hook.log"

make_image "$tmp/img1" 32
nbdkit_start srv1 file "$tmp/img1"
serve b1 "$url/disk1" srv1 disk1 --header "Authorization: Bearer $tok_b"
rc=$?
d1=$dev
{ [ $rc = 0 ] && write_pattern "$d1" && read_back "$d1"; } > "$tmp/io.out" 2>&1 || rc=1
ok $rc "disk1 still takes a client (no Origin: allowed): written and read back" \
	"$tmp/serve.out" "$tmp/io.out"

stop_browser b0 TERM
stop_browser b1 TERM
{ dev_gone "$d0" 15 && dev_gone "$d1" 15 &&
  check_backing "$tmp/img0" && check_backing "$tmp/img1"; } > "$tmp/gone.out" 2>&1
ok $? "both gone after close 1000; servers' files byte for byte" "$tmp/gone.out"
ok_cmd "no token in the relay's log" no_token_logged
relay_stop > "$tmp/term.out" 2>&1
ok $? "relay exits 0 on SIGTERM" "$tmp/term.out" "$tmp/relay.log"
ok_cmd "no nbdws device left" no_devices
[ $failed = 0 ]
