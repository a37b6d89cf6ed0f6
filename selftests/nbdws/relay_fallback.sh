#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdws-relay's userspace framing (--fallback), over ws:// and wss://:
# the kernel gets one end of a socketpair as a PLAIN connection and the
# relay frames between it and the browser's WebSocket (the shape of
# nbd-proxy). /status says "path": "userspace", nbdctl status shows the
# kernel's connection as plain, and the data checks of the fast path pass
# through it: writes in five request sizes read back, the server's file
# byte for byte after close 1000, mkfs.ext4 + mount + checksums. The
# fallback is logged; no token in the log.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
. "$(dirname "$0")/lib/relay_lib.sh"

relay_prereqs
echo "1..18"
make_data
write_hook
write_tokens "$tok_a disk0" "$tok_all"
relay_pki > "$tmp/pki.log" 2>&1
ok $? "throwaway CA and server certificate (openssl CLI)" "$tmp/pki.log"
p=$tmp/pki
chmod 600 "$p"/*.key
cat > "$tmp/plain.json" <<EOF
{
  "state-hook": "$tmp/hook",
  "auth": { "tokens-file": "$tmp/tokens" },
  "slots": { "disk0": { "index": 3 }, "disk1": { "index": 4 } }
}
EOF
cat > "$tmp/tls.json" <<EOF
{
  "state-hook": "$tmp/hook",
  "auth": { "tokens-file": "$tmp/tokens" },
  "tls": { "cert": "$p/srv.pem", "key": "$p/srv.key" },
  "slots": { "disk0": { "index": 3 }, "disk1": { "index": 4 } }
}
EOF
make_image "$tmp/img0" 32
nbdkit_start srv0 file "$tmp/img0"

# --- --fallback over ws:// ----------------------------------------------------
relay_start "$tmp/plain.json" --fallback
ok $? "--fallback relay (ws://) listens" "$tmp/relay.log"
data_round fb-ws "ws://127.0.0.1:$relay_port" disk0 userspace plain \
	--header "Authorization: Bearer $tok_a"
relay_stop > "$tmp/term.out" 2>&1
ok $? "--fallback relay exits 0 on SIGTERM" "$tmp/term.out" "$tmp/relay.log"
grep -qi 'fallback\|userspace' "$tmp/relay.log"
ok $? "the fallback is logged" "$tmp/relay.log"
mv "$tmp/relay.log" "$tmp/relay-fb.log"

# --- --fallback over wss:// ---------------------------------------------------
relay_start "$tmp/tls.json" --fallback
ok $? "--fallback relay (wss://) listens" "$tmp/relay.log"
status_tls=$p/ca.pem
data_round fb-wss "wss://127.0.0.1:$relay_port" disk0 userspace plain \
	--cafile "$p/ca.pem" --subprotocol "$tok_a"
relay_stop > "$tmp/term.out" 2>&1
ok $? "--fallback TLS relay exits 0 on SIGTERM" "$tmp/term.out" "$tmp/relay.log"
ok_cmd "no token in the fallback relays' logs" no_token_logged
ok_cmd "no nbdws device left" no_devices
[ $failed = 0 ]
