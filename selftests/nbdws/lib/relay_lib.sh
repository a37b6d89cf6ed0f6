# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Sourced by selftests/nbdws/relay_*.sh: start nbdws-relay, nbdkit and the
# browser (lib/relay_browser.py, Debian's python3-websockets) in a scratch
# folder, read the relay's /status, check data through /dev/nbdwsN, and
# clean everything up whatever happens. The scripts print TAP.
#
# A test sets nothing before sourcing; it calls relay_prereqs, writes
# its configuration with relay_config ... and runs relay_start.
export PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH

top=${NBDWS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
nbdctl=${NBDCTL:-$top/build/nbdctl}
relay_bin=${NBDWS_RELAY:-$top/build/nbdws-relay}
python=/usr/bin/python3
browser_py=$top/selftests/nbdws/lib/relay_browser.py
probe_py=$top/selftests/nbdws/lib/relay_probe.py
tmp=$(mktemp -d "${TMPDIR:-/tmp}/relay.XXXXXX")
pids=()
relay_pid=
relay_port=
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"
# RELAY_TIMES=1, the older name of TAP_TIMES=1 (see tap.sh).
TAP_TIMES=${TAP_TIMES:-${RELAY_TIMES:-}}

# Tokens: 16..256 characters; only HTTP token characters so that one can
# also travel as a Sec-WebSocket-Protocol value.
tok_a=tokA.0123456789abcdef-slot-disk0
tok_b=tokB.fedcba9876543210-slot-disk1
tok_all=tokALL.00112233445566778899-any
tok_c=tokC.5555666677778888-anotherone

relay_cleanup() {
	local d
	exec 2> /dev/null
	for d in "$tmp"/mnt*; do umount "$d" 2>/dev/null; done
	# The relay first: on SIGTERM it disconnects what it made.
	if [ -n "$relay_pid" ] && kill -0 "$relay_pid" 2>/dev/null; then
		kill -TERM "$relay_pid"
		for _ in $(seq 100); do
			kill -0 "$relay_pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	stop_pids "${pids[@]}"
	# Whatever a failed step left behind.
	for d in /sys/block/nbdws*; do
		[ -e "$d" ] || continue
		timeout 60 "$nbdctl" disconnect "/dev/${d##*/}" > /dev/null 2>&1
	done
	rm -rf "$tmp"
}
trap relay_cleanup EXIT

# ok_cmd DESCRIPTION CMD... : run CMD, its output the diagnostic.
ok_cmd() {
	local desc=$1 rc
	shift
	"$@" > "$tmp/cmd.out" 2>&1
	rc=$?
	ok $rc "$desc" "$tmp/cmd.out"
	return $rc
}

relay_prereqs() {
	local t
	echo "TAP version 13"
	for t in nbdkit openssl mkfs.ext4 blockdev setsid "$python"; do
		command -v "$t" > /dev/null || { echo "1..0 # SKIP needs $t"; exit 0; }
	done
	$python -c 'import websockets' 2>/dev/null ||
		{ echo "1..0 # SKIP needs python3-websockets"; exit 0; }
	[ -x "$nbdctl" ] || { echo "1..0 # SKIP no nbdctl at $nbdctl"; exit 0; }
	[ -x "$relay_bin" ] || { echo "1..0 # SKIP no $relay_bin"; exit 0; }
	modprobe ext4 2>/dev/null
	modprobe tls 2>/dev/null
	# The relay refuses a tokens file others can read.
	umask 077
	mkdir -p "$tmp/mnt"
}

free_port() {
	$python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {	# wait_port PORT SECONDS
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		$python -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

spawn() {	# spawn LOG CMD... (own process group; $! in last_pid)
	local log=$1
	shift
	setsid "$@" > "$log" 2>&1 &
	last_pid=$!
	pids+=("$last_pid")
}

# The same for a process the test kills on purpose: no "Killed" line from
# bash in the TAP output (nothing waits for its status).
spawn_quiet() {	# spawn_quiet LOG CMD...
	spawn "$@"
	disown "$last_pid"
}

# Tokens file: one "TOKEN [SLOT...]" per line, mode 600.
write_tokens() {	# write_tokens LINE...
	printf '%s\n' "# selftest tokens" "$@" > "$tmp/tokens"
	chmod 600 "$tmp/tokens"
}

# The state hook: appends "ACTION SLOT DEVICE INDEX" to hook.log; fails a
# start for a slot named in hook.fail.
write_hook() {
	cat > "$tmp/hook" <<EOF
#!/bin/sh
echo "\$1 \$2 \${NBDWS_DEVICE:-nodev} \${NBDWS_INDEX:-noindex}" >> "$tmp/hook.log"
[ "\$1" = start ] && grep -qx "\$2" "$tmp/hook.fail" 2>/dev/null && exit 1
exit 0
EOF
	chmod 755 "$tmp/hook"
	: > "$tmp/hook.log"
}

# relay_start CONFIG-FILE [OPTIONS...]: listens on 127.0.0.1:$relay_port
# (set by the caller, or a fresh one); waits until it accepts.
relay_start() {
	local cfg=$1
	shift
	: "${relay_port:=$(free_port)}"
	spawn "$tmp/relay.log" "$relay_bin" --config "$cfg" \
		--listen "127.0.0.1:$relay_port" -v "$@"
	relay_pid=$last_pid
	wait_port "$relay_port" 60 && kill -0 "$relay_pid" 2>/dev/null
}

# relay_stop: SIGTERM, must exit 0 within 30 s.
relay_stop() {
	local rc
	[ -n "$relay_pid" ] || return 1
	kill -TERM "$relay_pid" 2>/dev/null || return 1
	for _ in $(seq 300); do
		kill -0 "$relay_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$relay_pid" 2>/dev/null && return 1
	wait "$relay_pid" 2>/dev/null
	rc=$?
	relay_pid=
	return $rc
}

probe() {	# probe [--tls ...] SUBCOMMAND ...: against the relay's port
	$python "$probe_py" --connect "127.0.0.1:$relay_port" "$@"
}

# status_get SLOT-EXPR... -> values on stdout (token: $status_token)
status_get() {
	local a=() e
	for e in "$@"; do a+=(--get "$e"); done
	probe ${status_tls:+--tls --cafile "$status_tls"} json /status \
		--token "${status_token:-$tok_all}" "${a[@]}"
}

# wait_state SLOT STATE SECONDS
wait_state() {
	local end=$((SECONDS + $3)) s
	while [ $SECONDS -lt $end ]; do
		s=$(status_get "slots[name=$1].state" 2>/dev/null)
		[ "$s" = "$2" ] && return 0
		sleep 0.2
	done
	echo "slot $1: state '$s', waited for '$2'"
	return 1
}

# nbdkit serving FILE (or "memory SIZE") on $tmp/NAME.sock.
nbdkit_start() {	# nbdkit_start NAME [NBDKIT OPTIONS] PLUGIN ARGS...
	local name=$1
	shift
	rm -f "$tmp/$name.sock"
	spawn_quiet "$tmp/$name.nbdkit.log" nbdkit -f -U "$tmp/$name.sock" "$@"
	for _ in $(seq 100); do
		[ -S "$tmp/$name.sock" ] && return 0
		sleep 0.1
	done
	return 1
}

# browser NAME URL NBDKIT-NAME [OPTIONS...]: starts the browser; its
# events go to $tmp/NAME.ev, its pid to br_pid[NAME].
declare -A br_pid
browser() {
	local name=$1 url=$2 srv=$3
	shift 3
	: > "$tmp/$name.ev"
	spawn_quiet "$tmp/$name.br.log" $python "$browser_py" --events "$tmp/$name.ev" \
		"$@" "$url" "$tmp/$srv.sock"
	br_pid[$name]=$last_pid
}

# wait_event NAME REGEX SECONDS: the browser printed a matching line.
wait_event() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt $end ]; do
		grep -Eq "$2" "$tmp/$1.ev" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "browser $1: no event matching '$2' in ${3}s; got:"
	cat "$tmp/$1.ev" "$tmp/$1.br.log" 2>/dev/null
	return 1
}

# wait_relay_log REGEX SECONDS: the relay logged a matching line. For a
# state too short-lived to catch with status probes on a busy host.
wait_relay_log() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		grep -Eq "$1" "$tmp/relay.log" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "relay: no log line matching '$1' in ${2}s; its last lines:"
	tail -n 20 "$tmp/relay.log" 2>/dev/null
	return 1
}

# wait_serving SLOT LOG...: the slot reaches "serving" and its block
# device appears; sets $dev from /status. On failure the LOGs and the
# relay's last lines go to $tmp/serve.out. 0 on success.
wait_serving() {
	local slot=$1 log
	shift
	dev=
	wait_state "$slot" serving 60 > "$tmp/serve.out" 2>&1 || {
		for log in "$@"; do
			cat "$log" >> "$tmp/serve.out"
		done
		tail -n 20 "$tmp/relay.log" >> "$tmp/serve.out"
		return 1
	}
	dev=$(status_get "slots[name=$slot].device")
	for _ in $(seq 100); do
		[ -b "$dev" ] && return 0
		sleep 0.1
	done
	echo "no block device '$dev'" >> "$tmp/serve.out"
	return 1
}

# serve NAME URL NBDKIT-NAME SLOT [OPTIONS]: browser connects and the slot
# reaches "serving"; sets $dev from /status. 0 on success.
serve() {
	local name=$1 url=$2 srv=$3 slot=$4
	shift 4
	browser "$name" "$url" "$srv" "$@"
	wait_serving "$slot" "$tmp/$name.ev" "$tmp/$name.br.log"
}

# stop_browser NAME SIGNAL: signal it and wait for it to exit.
stop_browser() {
	local p=${br_pid[$1]}
	kill -"$2" "$p" 2>/dev/null
	for _ in $(seq 200); do
		kill -0 "$p" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

dev_gone() {	# dev_gone DEV SECONDS
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		[ -e "/sys/block/${1#/dev/}" ] || return 0
		sleep 0.1
	done
	echo "$1 still exists after ${2}s"
	return 1
}

no_devices() {
	local d left=
	for d in /sys/block/nbdws*; do
		[ -e "$d" ] && left="$left ${d##*/}"
	done
	[ -z "$left" ] && return 0
	echo "devices left:$left"
	return 1
}

# Data: 8 MiB random pattern, written O_DIRECT in five request sizes and
# flushed, then read back; the image's "old" 4 MiB at 16 MiB read too.
make_data() {
	dd if=/dev/urandom of="$tmp/pat" bs=1M count=8 status=none
	dd if=/dev/urandom of="$tmp/old" bs=1M count=4 status=none
}

# four_slot_setup: data, hook, tokens ($tok_a for disk0, $tok_b for
# disk1, $tok_all for every slot) and $tmp/relay.json with the slots
# relay_basic.sh and relay_modes.sh share: disk0 (index 3, the default,
# with metadata), disk1 (4), ro (5, read-only) and hookfail (6), held 60 s.
four_slot_setup() {
	make_data
	write_hook
	write_tokens "$tok_a disk0" "$tok_b disk1" "$tok_all"
	cat > "$tmp/relay.json" <<EOF
{
  "state-hook": "$tmp/hook",
  "auth": { "tokens-file": "$tmp/tokens" },
  "defaults": { "hold": 60 },
  "slots": {
    "disk0": { "index": 3, "default": true,
               "metadata": { "description": "selftest disk0" } },
    "disk1": { "index": 4 },
    "ro": { "index": 5, "read-only": true },
    "hookfail": { "index": 6 }
  }
}
EOF
}

make_image() {	# make_image FILE MiB: zeroes, old data at 16 MiB
	truncate -s 0 "$1" && truncate -s "${2}M" "$1" &&
	dd if="$tmp/old" of="$1" bs=1M seek=16 conv=notrunc status=none
}

# [0,1M) in 4 KiB, [1M,3M) in 64 KiB, [3M,7M) in 1 MiB, [7M,7.25M) in
# 512 B, the rest in 256 KiB (fewer small requests than ws_websockify.sh:
# every one crosses the python browser twice, slow under TCG).
write_pattern() {	# write_pattern DEV
	dd if="$tmp/pat" of="$1" bs=4k count=256 oflag=direct status=none &&
	dd if="$tmp/pat" of="$1" bs=64k skip=16 seek=16 count=32 oflag=direct status=none &&
	dd if="$tmp/pat" of="$1" bs=1M skip=3 seek=3 count=4 oflag=direct status=none &&
	dd if="$tmp/pat" of="$1" bs=512 skip=14336 seek=14336 count=512 oflag=direct status=none &&
	dd if="$tmp/pat" of="$1" bs=256k skip=29 seek=29 count=3 oflag=direct conv=fsync status=none
}

read_back() {	# read_back DEV
	dd if="$1" of="$tmp/rb" bs=256k count=32 iflag=direct status=none &&
	cmp "$tmp/pat" "$tmp/rb" &&
	dd if="$1" of="$tmp/rb" bs=1M skip=16 count=4 iflag=direct status=none &&
	cmp "$tmp/old" "$tmp/rb" &&
	rm -f "$tmp/rb"
}

check_backing() {	# check_backing FILE: pattern, zeroes, old, zeroes
	local size
	size=$(stat -c %s "$1")
	cmp -n $((8 << 20)) "$tmp/pat" "$1" &&
	cmp -n $((8 << 20)) -i $((8 << 20)):0 "$1" /dev/zero &&
	cmp -i $((16 << 20)):0 -n $((4 << 20)) "$1" "$tmp/old" &&
	cmp -n $((size - (20 << 20))) -i $((20 << 20)):0 "$1" /dev/zero
}

fs_check() {	# fs_check DEV
	local m=$tmp/mnt
	mkfs.ext4 -q -F "$1" &&
	mount "$1" "$m" &&
	dd if=/dev/urandom of="$m/a" bs=1M count=4 status=none &&
	cp "$m/a" "$m/b" &&
	(cd "$m" && sha256sum a b) > "$tmp/sums" &&
	umount "$m" &&
	echo 3 > /proc/sys/vm/drop_caches &&
	mount -o ro "$1" "$m" &&
	(cd "$m" && sha256sum -c --quiet "$tmp/sums")
	local rc=$?
	umount "$m" 2>/dev/null
	return $rc
}

# The relay must never log a credential.
no_token_logged() {
	local t
	for t in "$tok_a" "$tok_b" "$tok_all" "$tok_c"; do
		if grep -qF "$t" "$tmp"/relay*.log; then
			echo "token ${t:0:5}... found in the relay's log"
			return 1
		fi
	done
	return 0
}

# Expected hook log lines, in order (exact file).
hook_log_is() {	# hook_log_is LINE...
	printf '%s\n' "$@" > "$tmp/hook.want"
	cmp -s "$tmp/hook.want" "$tmp/hook.log" && return 0
	echo "hook log:"; cat "$tmp/hook.log"
	echo "expected:"; cat "$tmp/hook.want"
	return 1
}

wait_hook_lines() {	# wait_hook_lines N SECONDS
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		[ "$(wc -l < "$tmp/hook.log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# Throwaway PKI in $tmp/pki (openssl CLI): ca signs the relay's certificate
# srv (127.0.0.1), clientca signs client, rogueca signs rogue.
relay_pki() {
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
