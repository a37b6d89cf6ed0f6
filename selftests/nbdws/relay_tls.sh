#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdws-relay over wss:// and its userspace framing fallback. A throwaway
# CA made here with the openssl CLI signs the relay's certificate (the
# browser verifies it: no "insecure" shortcut); a second CA signs client
# certificates the relay trusts, a third one a client certificate it must
# not trust.
#
# wss:// with a token: the session ends in kernel TLS and the socket goes
# to the kernel (/status "path": "kernel", nbdctl status ws-server), data
# written and read back, the server's file byte for byte, mkfs + mount; a
# TLS client certificate alone authenticates; one from an unknown CA is
# refused and the slot stays idle. Then --fallback, over ws:// and wss://:
# /status says "userspace", the kernel's connection is PLAIN (the
# socketpair), and the same data checks pass through the relay's framing.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
set -u
. "$(dirname "$0")/lib/relay_lib.sh"

relay_prereqs
echo "1..33"
make_data
write_hook
write_tokens "$tok_a disk0" "$tok_all"

# --- certificates -----------------------------------------------------------
pki() {
	local d=$tmp/pki ca
	mkdir -p "$d" || return 1
	printf '%s\n' "basicConstraints=CA:FALSE" \
		"subjectAltName=IP:127.0.0.1,DNS:localhost" \
		"extendedKeyUsage=serverAuth" > "$d/srv.ext"
	printf '%s\n' "basicConstraints=CA:FALSE" \
		"extendedKeyUsage=clientAuth" > "$d/cli.ext"
	for ca in ca clientca rogueca; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -days 1 -subj "/CN=nbdws selftest $ca" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" \
			-keyout "$d/$ca.key" -out "$d/$ca.pem" || return 1
	done
	# sign NAME CA EXT SUBJECT
	sign() {
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-subj "$4" -keyout "$d/$1.key" -out "$d/$1.csr" &&
		openssl x509 -req -in "$d/$1.csr" -CA "$d/$2.pem" \
			-CAkey "$d/$2.key" -CAcreateserial -days 1 \
			-extfile "$d/$3.ext" -out "$d/$1.pem"
	}
	sign srv ca srv /CN=127.0.0.1 &&
	sign client clientca cli /CN=selftest-client &&
	sign rogue rogueca cli /CN=selftest-client
}
pki > "$tmp/pki.log" 2>&1
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
plain_config() {
	cat > "$1" <<EOF
{
  "state-hook": "$tmp/hook",
  "auth": { "tokens-file": "$tmp/tokens" },
  "slots": { "disk0": { "index": 3 }, "disk1": { "index": 4 } }
}
EOF
}

# path_check SLOT PATH TRANSPORT: /status path and nbdctl's transport.
path_check() {
	local path tr
	path=$(status_get "slots[name=$1].path")
	[ "$path" = "$2" ] || { echo "/status path: '$path', want '$2'"; return 1; }
	tr=$("$nbdctl" -j status "$dev" | $python -c \
		'import json, sys; print(" ".join(c["transport"] for c in json.load(sys.stdin)["conns"]))')
	[ "$tr" = "$3" ] || { echo "nbdctl status transport: '$tr', want '$3'"; return 1; }
}

# data_round NAME URL SLOT PATH TRANSPORT [BROWSER OPTIONS]: serve, check
# /status path and the kernel's transport, write +
# read back, close 1000, backing file; then serve again for mkfs + mount.
data_round() {
	local name=$1 url=$2 slot=$3 path=$4 tr=$5 rc d
	shift 5
	make_image "$tmp/img0" 32
	serve "$name" "$url/$slot" srv0 "$slot" "$@"
	rc=$?
	d=$dev
	ok $rc "$name: serving on $d" "$tmp/serve.out" "$tmp/relay.log"
	if [ $rc != 0 ]; then
		for _ in 1 2 3 4; do ok 1 "$name: (not run: no device)"; done
		stop_browser "$name" KILL
		return
	fi
	path_check "$slot" "$path" "$tr" > "$tmp/path.out" 2>&1
	ok $? "$name: /status path \"$path\", kernel connection $tr" "$tmp/path.out" \
		"$tmp/relay.log"
	{ write_pattern "$d" && read_back "$d"; } > "$tmp/io.out" 2>&1
	ok $? "$name: random writes + flush + read back" "$tmp/io.out"
	stop_browser "$name" TERM
	{ dev_gone "$d" 15 && check_backing "$tmp/img0"; } > "$tmp/gone.out" 2>&1
	ok $? "$name: close 1000, device gone, server's file byte for byte" \
		"$tmp/gone.out"
	rc=1
	if serve "$name-fs" "$url/$slot" srv0 "$slot" "$@"; then
		fs_check "$dev" > "$tmp/fs.out" 2>&1
		rc=$?
		stop_browser "$name-fs" TERM
		dev_gone "$dev" 15 >> "$tmp/fs.out" 2>&1 || rc=1
	else
		cp "$tmp/serve.out" "$tmp/fs.out"
	fi
	ok $rc "$name: mkfs.ext4 + mount + copy + remount + checksum" "$tmp/fs.out"
}

nbdkit_start srv0 file "$tmp/img0"
make_image "$tmp/img0" 32

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
mv "$tmp/relay.log" "$tmp/relay-tls.log"
status_tls=

# --- --fallback over ws:// ----------------------------------------------------
plain_config "$tmp/plain.json"
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
data_round fb-wss "$wss" disk0 userspace plain --cafile "$p/ca.pem" \
	--subprotocol "$tok_a"
relay_stop > "$tmp/term.out" 2>&1
ok $? "--fallback TLS relay exits 0 on SIGTERM" "$tmp/term.out" "$tmp/relay.log"
ok_cmd "no token in the fallback relays' logs" no_token_logged
ok_cmd "no nbdws device left" no_devices
[ $failed = 0 ]
