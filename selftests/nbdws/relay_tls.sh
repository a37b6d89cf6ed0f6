#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdws-relay over wss://. A throwaway CA made here with the openssl CLI
# signs the relay's certificate (the browser verifies it: no "insecure"
# shortcut); a second CA signs client certificates the relay trusts, a
# third one a client certificate it must not trust.
#
# wss:// with a token: the session ends in kernel TLS and the socket goes
# to the kernel (/status "path": "kernel", nbdctl status ws-server), data
# written and read back, the server's file byte for byte, mkfs + mount; a
# TLS client certificate alone authenticates; one from an unknown CA is
# refused and the slot stays idle; no credential at all is 401; plain
# HTTP on the TLS port gets no upgrade. (The userspace framing fallback,
# over ws:// and wss://, is relay_fallback.sh.)
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
. "$(dirname "$0")/lib/relay_lib.sh"

relay_prereqs
echo "1..17"
make_data
write_hook
write_tokens "$tok_a disk0" "$tok_all"

relay_pki > "$tmp/pki.log" 2>&1
ok $? "throwaway CAs, server and client certificates (openssl CLI)" "$tmp/pki.log"
p=$tmp/pki
chmod 600 "$p"/*.key

tls_config() {	# tls_config FILE
	cat > "$1" <<EOF
{
  "state-hook": "$tmp/hook",
  "auth": { "tokens-file": "$tmp/tokens" },
  "tls": { "cert": "$p/srv.pem", "key": "$p/srv.key",
           "client-ca": "$p/clientca.pem" },
  "slots": {
    "disk0": { "index": 3 },
    "disk1": { "index": 4 }
  }
}
EOF
}

make_image "$tmp/img0" 32
nbdkit_start srv0 file "$tmp/img0"

# --- wss://, kernel TLS, fast path ------------------------------------------
tls_config "$tmp/tls.json"
relay_start "$tmp/tls.json"
ok $? "TLS relay listens on 127.0.0.1:$relay_port" "$tmp/relay.log"
status_tls=$p/ca.pem
wss=wss://127.0.0.1:$relay_port
data_round wss-token "$wss" disk0 kernel ws-server --cafile "$p/ca.pem" \
	--header "Authorization: Bearer $tok_a"

# A client certificate from the trusted clients' CA, no token.
make_image "$tmp/img0" 32
serve cert "$wss/disk1" srv0 disk1 --cafile "$p/ca.pem" \
	--cert "$p/client.pem" --key "$p/client.key"
rc=$?
ok $rc "client certificate alone: serving on $dev" "$tmp/serve.out" "$tmp/relay.log"
{ [ $rc = 0 ] && path_check disk1 kernel ws-server && write_pattern "$dev" &&
  read_back "$dev"; } > "$tmp/io.out" 2>&1
ok $? "client certificate: kernel path, written and read back" "$tmp/io.out"
stop_browser cert TERM
dev_gone "$dev" 15 > "$tmp/gone.out" 2>&1
ok $? "client certificate: gone after close 1000" "$tmp/gone.out"

# A certificate from a CA the relay does not trust: never a WebSocket.
browser rogue "$wss/disk1" srv0 --cafile "$p/ca.pem" \
	--cert "$p/rogue.pem" --key "$p/rogue.key"
wait_event rogue '^(refused status=401|error)' 30 > "$tmp/rogue.out" 2>&1
rc=$?
grep -q '^open' "$tmp/rogue.ev" && rc=1
ok $rc "client certificate from an untrusted CA refused: $(head -c 100 "$tmp/rogue.ev")" \
	"$tmp/rogue.out"
wait_state disk1 idle 10 > "$tmp/idle.out" 2>&1
ok $? "untrusted certificate: slot stays idle" "$tmp/idle.out"

# TLS alone is no credential.
probe --tls --cafile "$p/ca.pem" http --upgrade --path /disk1 --expect 401 \
	> "$tmp/p.out" 2>&1
ok $? "wss:// without any credential: 401" "$tmp/p.out"

# Plain HTTP to the TLS port is not served.
probe http --upgrade --path /disk0 --token "$tok_a" > "$tmp/p.out" 2>&1
! grep -q '^status 101' "$tmp/p.out"
ok $? "plain ws:// to the TLS listener gets no upgrade" "$tmp/p.out"

relay_stop > "$tmp/term.out" 2>&1
ok $? "TLS relay exits 0 on SIGTERM" "$tmp/term.out" "$tmp/relay.log"
ok_cmd "no token in the TLS relay's log" no_token_logged

ok_cmd "no nbdws device left" no_devices
[ $failed = 0 ]
