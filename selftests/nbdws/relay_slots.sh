#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Eight nbdws-relay slots serving at once: eight python3-websockets
# browsers connect together, each to its own slot (four with a fixed
# device index, four taking the lowest free one), each serving its own
# export of one nbdkit (file plugin, dir= mode: the slot's "export" names
# the file). Then I/O on all eight devices at the same time, each a
# different random pattern, read back through each device; every slot
# closed with 1000, every device gone, the hooks ran start before stop
# for every slot, and every server file holds its own pattern.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
. "$(dirname "$0")/lib/relay_lib.sh"

nslots=8
relay_prereqs
echo "1..$((nslots + 11))"
write_hook
write_tokens "$tok_all"
mkdir -p "$tmp/exports"
{
	echo '{ "state-hook": "'"$tmp/hook"'",'
	echo '  "auth": { "tokens-file": "'"$tmp/tokens"'" },'
	echo '  "limits": { "handshakes": 4 },'
	echo '  "slots": {'
	for i in $(seq 0 $((nslots - 1))); do
		if [ "$i" -lt 4 ]; then idx="\"index\": $((10 + i)), "; else idx=; fi
		printf '    "s%d": { %s"export": "img%d" }%s\n' "$i" "$idx" "$i" \
			"$([ "$i" -lt $((nslots - 1)) ] && echo ,)"
	done
	echo '  } }'
} > "$tmp/relay.json"
for i in $(seq 0 $((nslots - 1))); do
	truncate -s 16M "$tmp/exports/img$i"
	dd if=/dev/urandom of="$tmp/pat$i" bs=1M count=4 status=none
done

relay_start "$tmp/relay.json"
ok $? "relay with $nslots slots listens on 127.0.0.1:$relay_port" \
	"$tmp/relay.log" "$tmp/relay.json"
url=ws://127.0.0.1:$relay_port
nbdkit_start srv file dir="$tmp/exports"
ok $? "one nbdkit serving $nslots exports (file plugin, dir=)" "$tmp/srv.nbdkit.log"

# All browsers at once (more than the 4 concurrent handshakes allowed:
# the rest wait in the backlog).
for i in $(seq 0 $((nslots - 1))); do
	browser "b$i" "$url/s$i" srv --subprotocol "$tok_all"
done
rc=0
: > "$tmp/serve.out"
for i in $(seq 0 $((nslots - 1))); do
	wait_state "s$i" serving 120 >> "$tmp/serve.out" 2>&1 || rc=1
done
status_get $(for i in $(seq 0 $((nslots - 1))); do
	echo "slots[name=s$i].device"; done) > "$tmp/devs" 2>> "$tmp/serve.out"
mapfile -t devs < "$tmp/devs"
[ "${#devs[@]}" = $nslots ] || rc=1
[ "$(sort -u "$tmp/devs" | grep -c '^/dev/nbdws')" = $nslots ] || rc=1
for i in 0 1 2 3; do
	[ "${devs[$i]:-}" = "/dev/nbdws$((10 + i))" ] || rc=1
done
ok $rc "all $nslots slots serving on distinct devices: ${devs[*]:-}" \
	"$tmp/serve.out" "$tmp/devs" "$tmp/relay.log"
for d in "${devs[@]}"; do
	for _ in $(seq 100); do [ -b "$d" ] && break; sleep 0.1; done
done

status_get $(for i in $(seq 0 $((nslots - 1))); do
	echo "slots[name=s$i].path"; done) > "$tmp/paths" 2>&1
[ "$(grep -cx kernel "$tmp/paths")" = $nslots ]
ok $? "all $nslots on the kernel path" "$tmp/paths"

# Writes on all eight at once, then reads on all eight at once.
pids_io=()
for i in $(seq 0 $((nslots - 1))); do
	dd if="$tmp/pat$i" of="${devs[$i]:-/nonexistent}" bs=64k seek=16 \
		oflag=direct conv=fsync status=none 2> "$tmp/w$i.err" &
	pids_io+=($!)
done
rc=0
for p in "${pids_io[@]}"; do wait "$p" || rc=1; done
ok $rc "4 MiB written to each of the $nslots devices at the same time" \
	$(for i in $(seq 0 $((nslots - 1))); do echo "$tmp/w$i.err"; done)
pids_io=()
for i in $(seq 0 $((nslots - 1))); do
	dd if="${devs[$i]:-/nonexistent}" of="$tmp/rb$i" bs=256k skip=4 count=16 \
		iflag=direct status=none 2> "$tmp/r$i.err" &
	pids_io+=($!)
done
for p in "${pids_io[@]}"; do wait "$p"; done
for i in $(seq 0 $((nslots - 1))); do
	cmp "$tmp/pat$i" "$tmp/rb$i" > "$tmp/cmp$i" 2>&1
	ok $? "s$i: read back its own pattern through ${devs[$i]:-?}" \
		"$tmp/r$i.err" "$tmp/cmp$i"
done

for i in $(seq 0 $((nslots - 1))); do
	kill -TERM "${br_pid[b$i]}" 2>/dev/null
done
rc=0
: > "$tmp/gone.out"
for d in "${devs[@]}"; do dev_gone "$d" 30 >> "$tmp/gone.out" 2>&1 || rc=1; done
for i in $(seq 0 $((nslots - 1))); do
	grep -q '^closed code=1000' "$tmp/b$i.ev" ||
		{ rc=1; echo "b$i: $(cat "$tmp/b$i.ev")" >> "$tmp/gone.out"; }
done
ok $rc "close 1000 on all: every device gone" "$tmp/gone.out"

wait_hook_lines $((2 * nslots)) 60
rc=0
for i in $(seq 0 $((nslots - 1))); do
	grep " s$i " "$tmp/hook.log" | awk '{ print $1 }' | tr '\n' ' ' > "$tmp/h"
	[ "$(cat "$tmp/h")" = "start stop " ] ||
		{ rc=1; echo "s$i: $(cat "$tmp/h")" >> "$tmp/hooks.out"; }
done
ok $rc "hooks: start then stop once for every slot" "$tmp/hooks.out" "$tmp/hook.log"

rc=0
for i in $(seq 0 $((nslots - 1))); do
	cmp -i $((1 << 20)):0 -n $((4 << 20)) "$tmp/exports/img$i" "$tmp/pat$i" \
		>> "$tmp/backing.out" 2>&1 || rc=1
done
ok $rc "every server file holds its own pattern" "$tmp/backing.out"

ok_cmd "no token in the relay's log" no_token_logged
relay_stop > "$tmp/term.out" 2>&1
ok $? "relay exits 0 on SIGTERM" "$tmp/term.out" "$tmp/relay.log"
ok_cmd "no nbdws device left" no_devices
[ $failed = 0 ]
