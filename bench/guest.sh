#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The bench's VM job (bench/run.sh writes a job file that sets the
# environment below and runs this). Starts nbdkit servers on loopback,
# connects nbd.ko (nbd-client) and nbdws (nbdctl) to the same server with
# the same connection count, runs every row of rows.txt on both
# devices back to back and appends one JSON record per measurement (or per
# row that could not run, with the reason) to $BENCH_OUT/records.jsonl.
#
# The WebSocket clients (nbdws-plain, nbdws-ws-server, nbdws-ws-client,
# nbdws-wss) are all nbdws.ko against the bench's own NBD server
# (build/ws_nbd_peer, same backend forms as nbdkit's), so their ratios to
# nbdws-plain measure the transport alone. See README.md.
#
# Environment: NBDWS_TOP, BENCH_SCRIPTS (where run.sh put its snapshot of
# guest.sh, measure.py and rows.txt), BENCH_OUT, BENCH_RUNTIME (s),
# BENCH_SIZE (fio region), BENCH_CLIENTS ("nbd nbdws"), BENCH_SERVERS
# ("memory null"), BENCH_CONNS ("1 4"), BENCH_TRANSPORT (tcp | unix),
# BENCH_ROWS (row names, empty = all), BENCH_REPEAT (runs of the whole row
# sequence, default 1), BENCH_PERF (non-empty: profile every row with
# perf record, see measure.py), NBDWS_KO (module file), NBDCTL, NBDWS_UNAVAILABLE
# (why nbdws cannot run, as found on the host; empty when it can).
# WebSocket clients: BENCH_PEER, BENCH_ATTACH (programs), BENCH_TLS_DIR
# (cert.pem, key.pem for wss), PEER_UNAVAILABLE (why they cannot run).
# Relay rows (issue 14; the C peer plays the browser): relay-ws and
# relay-wss (nbdws-relay's fast path into nbdws.ko), relay-fb-ws and
# relay-fb-wss (its userspace framing, --fallback), proxy-ws and
# proxy-wss (build/ws_proxy, the nbd-proxy shape, into nbd.ko through a
# unix socket with nbd-client -L). BENCH_RELAY, BENCH_PROXY (programs),
# BENCH_LATENCY (non-empty: the 25 ms netem row at the end).
set -u

cd "$NBDWS_TOP" || exit 1
export PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/tmp
py=/usr/bin/python3
out=$BENCH_OUT
rec="$out/records.jsonl"
log="$out/guest.log"
: > "$rec"
: > "$log"

declare -A port=([memory]=10809 [null]=10810)
# The C peer's ports per form: plain NBD, ws://, wss://.
declare -A pport=([memory]=10811 [null]=10821)
# Servers are keyed KIND:FORM, KIND nbdkit or peer.
declare -A srvpid=() srvuri=() srvsock=() srvwhy=() clientwhy=()
failed=0

# Which server a client runs against.
server_kind() {
	case "$1" in nbd|nbdws) echo nbdkit ;; *) echo peer ;; esac
}
# Relay rows: each client has its own device index and listen port.
declare -A relay_idx=([relay-ws]=20 [relay-wss]=21 [relay-fb-ws]=22
	[relay-fb-wss]=23 [proxy-ws]=1 [proxy-wss]=2)
# Their pids are in files: they are started inside $(...), a subshell.
relay_pidfile() { echo "/tmp/bench-relay-$1.pid"; }
needs() { # KIND: is any requested client served by it?
	local c
	for c in $BENCH_CLIENTS; do
		[ "$(server_kind "$c")" = "$1" ] && return 0
	done
	return 1
}

# Progress goes to the console and to guest.log (the chroot has no
# /dev/fd, so no process substitution).
say() { echo "$(date +%T) bench: $*" | tee -a "$log"; }

# record KEY=VALUE...: append one JSON object (values kept as strings,
# except numbers given as KEY:=NUMBER).
record() {
	"$py" -c '
import json, sys
r = {}
for a in sys.argv[1:]:
    if ":=" in a:
        k, v = a.split(":=", 1)
        r[k] = json.loads(v)
    else:
        k, v = a.split("=", 1)
        r[k] = v
print(json.dumps(r))' "$@" >> "$rec"
}

# Rows, from rows.txt, filtered by BENCH_ROWS.
rows=()
while read -r name rw bs qd; do
	case "$name" in ''|'#'*) continue ;; esac
	if [ -n "${BENCH_ROWS:-}" ] && [[ " $BENCH_ROWS " != *" $name "* ]]; then
		continue
	fi
	rows+=("$name $rw $bs $qd")
done < "$BENCH_SCRIPTS/rows.txt"

# Every requested row of CLIENT in this group is reported as not run.
rows_not_run() {
	local client=$1 server=$2 conns=$3 why=$4 r
	for r in "${rows[@]}"; do
		record kind=row status=not-run client="$client" server="$server" \
			conns:="$conns" row="${r%% *}" reason="$why"
	done
}

# ---- environment facts ------------------------------------------------
ip link set lo up
echo 120 > /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
# The kernel's AES-GCM (kTLS: every wss row's kernel side) on the CPU's
# instructions, as OpenSSL in ws_proxy and the peer use them: without
# this the VM, which has no udev, ran the generic C AES.
. "$NBDWS_TOP/selftests/vm/crypto.sh"
guest_crypto_load 2> "$out/crypto.err" ||
	say "crypto drivers: $(tr '\n' ' ' < "$out/crypto.err")"
record kind=meta kernel="$(uname -r)" cpus:="$(nproc)" \
	mem_kib:="$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)" \
	fio="$(fio --version)" nbdkit="$(nbdkit --version)" \
	openssl="$(openssl version)" \
	nbd_client="$(nbd-client -V 2>&1 | head -n 1)" \
	runtime_s:="$BENCH_RUNTIME" size="$BENCH_SIZE" \
	repeat:="${BENCH_REPEAT:-1}" \
	transport="$BENCH_TRANSPORT"

# ---- clients' kernel side ---------------------------------------------
nbdws_loaded='' nbdws_why=''
load_nbdws() { # once for all nbdws clients; the reason in nbdws_why
	[ -z "$nbdws_loaded" ] || { [ -z "$nbdws_why" ]; return; }
	nbdws_loaded=1
	if [ -n "${NBDWS_UNAVAILABLE:-}" ]; then
		nbdws_why=$NBDWS_UNAVAILABLE
	elif [ ! -x "$NBDCTL" ]; then
		nbdws_why="$NBDCTL is missing (make tools)"
	elif ! insmod "$NBDWS_KO" 2> "$out/insmod-nbdws.err"; then
		nbdws_why="insmod nbdws.ko failed: $(cat "$out/insmod-nbdws.err")"
	fi
	[ -z "$nbdws_why" ]
}
for c in $BENCH_CLIENTS; do
	case "$c" in
	nbd|proxy-ws|proxy-wss)
		# nbd0 for nbd-client, nbd1 and nbd2 for the proxy rows, nbd3
		# for the latency row.
		if ! modprobe nbd nbds_max=4 2> "$out/modprobe-nbd.err"; then
			clientwhy[$c]="modprobe nbd failed: $(cat "$out/modprobe-nbd.err")"
		elif [ "$c" != nbd ] && [ -n "${PEER_UNAVAILABLE:-}" ]; then
			clientwhy[$c]=$PEER_UNAVAILABLE
		elif [ "$c" = proxy-wss ] &&
		     ! modprobe tls 2> "$out/modprobe-tls.err"; then
			clientwhy[$c]="modprobe tls failed: $(cat "$out/modprobe-tls.err")"
		fi ;;
	nbdws|nbdws-plain|nbdws-ws-server|nbdws-ws-client|nbdws-wss|relay-*)
		if ! load_nbdws; then
			clientwhy[$c]=$nbdws_why
		elif [ "$c" != nbdws ] && [ -n "${PEER_UNAVAILABLE:-}" ]; then
			clientwhy[$c]=$PEER_UNAVAILABLE
		elif case "$c" in *wss) true ;; *) false ;; esac &&
		     ! modprobe tls 2> "$out/modprobe-tls.err"; then
			# Both ends need the kernel's TLS for kTLS.
			clientwhy[$c]="modprobe tls failed: $(cat "$out/modprobe-tls.err")"
		fi ;;
	*)
		clientwhy[$c]="unknown client '$c'" ;;
	esac
	if [ -n "${clientwhy[$c]:-}" ]; then
		say "$c unavailable: ${clientwhy[$c]}"
		record kind=setup status=error client="$c" reason="${clientwhy[$c]}"
		failed=1
	fi
done

# ---- servers ----------------------------------------------------------
# Wait until an NBD server answers on URI and save what it offers.
server_up() {
	local key=$1 uri=$2 pid=$3
	for _ in $(seq 300); do
		nbdinfo --can connect "$uri" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	nbdinfo --json "$uri" > "$out/nbdinfo-${key/:/-}.json"
}

# The bench's C peer for FORM: plain NBD, ws:// and wss:// listeners on
# consecutive ports, and a control FIFO on which it is told to dial
# ws_attach for the ws-server rows: one process and one backend for all
# four clients.
start_peer() {
	local form=$1 key=peer:$1 p=${pport[$1]:-}
	[ -n "$p" ] || { srvwhy[$key]="unknown server form '$form'"; return 1; }
	rm -f "/tmp/bench-peer-$form.ctl"
	mkfifo "/tmp/bench-peer-$form.ctl" || {
		srvwhy[$key]="mkfifo /tmp/bench-peer-$form.ctl failed"; return 1; }
	"$BENCH_PEER" --size 1G --backend "$form" \
		--control "/tmp/bench-peer-$form.ctl" \
		--plain "127.0.0.1:$p" --ws "127.0.0.1:$((p + 1))" \
		--wss "127.0.0.1:$((p + 2))" \
		--cert "$BENCH_TLS_DIR/cert.pem" --key "$BENCH_TLS_DIR/key.pem" \
		2> "$out/peer-$form.err" &
	srvpid[$key]=$!
	srvuri[$key]="nbd://127.0.0.1:$p/"
	if ! server_up "$key" "${srvuri[$key]}" "${srvpid[$key]}"; then
		srvwhy[$key]="ws_nbd_peer $form did not come up on ${srvuri[$key]}: $(tail -c 500 "$out/peer-$form.err")"
		return 1
	fi
}

start_server() {
	local form=$1 args
	case "$form" in
	# allocator=malloc: one flat buffer, so every read is a memcpy in
	# the server (the default sparse allocator answers reads of
	# never-written blocks with a memset). Untouched pages read as the
	# kernel's zero page, which costs the same under TCG (no cache
	# model); filling or mlocking 1 GiB first would take a minute.
	memory) args=(memory 1G allocator=malloc) ;;
	null) args=(null 1G) ;;
	*) srvwhy[nbdkit:$form]="unknown server form '$form'"; return 1 ;;
	esac
	local key=nbdkit:$form
	if [ "$BENCH_TRANSPORT" = unix ]; then
		srvsock[$key]=/tmp/bench-$form.sock
		srvuri[$key]="nbd+unix:///?socket=${srvsock[$key]}"
		nbdkit -f -U "${srvsock[$key]}" "${args[@]}" &
	else
		srvuri[$key]="nbd://127.0.0.1:${port[$form]}/"
		nbdkit -f -i 127.0.0.1 -p "${port[$form]}" "${args[@]}" &
	fi
	srvpid[$key]=$!
	if ! server_up "$key" "${srvuri[$key]}" "${srvpid[$key]}"; then
		srvwhy[$key]="nbdkit $form did not come up on ${srvuri[$key]}"
		return 1
	fi
}

multi_conn() {
	"$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("true" if d["exports"][0]["can_multi_conn"] else "false")' "$1"
}

for s in $BENCH_SERVERS; do
	for kind in nbdkit peer; do
		needs "$kind" || continue
		say "starting $kind $s"
		if case "$kind" in
		   nbdkit) start_server "$s" ;;
		   peer) start_peer "$s" ;;
		   esac; then
			record kind=server status=ok server="$s" software="$kind" \
				uri="${srvuri[$kind:$s]}" \
				can_multi_conn:="$(multi_conn "$out/nbdinfo-$kind-$s.json")"
		else
			say "$kind $s: ${srvwhy[$kind:$s]}"
			record kind=server status=error server="$s" software="$kind" \
				reason="${srvwhy[$kind:$s]}"
			failed=1
		fi
	done
done

# ---- clients: connect / disconnect --------------------------------------
connect_nbd() { # conns -> device on stdout
	local form=$1 conns=$2 where
	if [ "$BENCH_TRANSPORT" = unix ]; then
		where=(-unix "${srvsock[nbdkit:$form]}")
	else
		where=(127.0.0.1 "${port[$form]}")
	fi
	timeout 60 nbd-client "${where[@]}" /dev/nbd0 -N '' -C "$conns" \
		-b 4096 -t 60 >&2 || return
	echo /dev/nbd0
}

# nbdctl connect [OPTIONS...] -c CONNS URI -> device on stdout
connect_nbdctl() {
	local conns=$1 dev
	shift
	dev=$(timeout 60 "$NBDCTL" --module "$NBDWS_KO" connect -c "$conns" \
		"$@") || return
	dev=${dev##*$'\n'}
	case "$dev" in /dev/*) ;; *) dev=/dev/$dev ;; esac
	[ -b "$dev" ] || { echo "nbdctl printed '$dev', not a block device" >&2; return 1; }
	echo "$dev"
}

connect_nbdws() {
	connect_nbdctl "$2" "${srvuri[nbdkit:$1]}"
}

# The ws-server role: ws_attach listens and hands the sockets to the
# kernel; the form's peer dials it N times as a WebSocket client.
connect_ws_server() {
	local form=$1 conns=$2 pf="$out/attach.port" apid wport dev
	rm -f "$pf"
	timeout 90 "$BENCH_ATTACH" --listen 127.0.0.1:0 --conns "$conns" \
		--port-file "$pf" > "$out/attach.out" &
	apid=$!
	for _ in $(seq 200); do
		[ -s "$pf" ] && break
		kill -0 "$apid" 2>/dev/null || break
		sleep 0.1
	done
	wport=$(cat "$pf" 2>/dev/null) || { wait "$apid"; return 1; }
	echo "127.0.0.1:$wport $conns" > "/tmp/bench-peer-$form.ctl"
	wait "$apid" || { tail -c 1000 "$out/peer-$form.err" >&2; return 1; }
	dev=$(tail -n 1 "$out/attach.out")
	[ -b "$dev" ] || { echo "ws_attach printed '$dev', not a block device" >&2; return 1; }
	echo "$dev"
}

# Until TCP PORT listens in this namespace (PID must live meanwhile).
wait_listen() {
	local lport=$1 pid=$2
	for _ in $(seq 300); do
		ss -Hltn "sport = :$lport" | grep -q . && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Until block device DEV has a size.
wait_dev() {
	local q
	q=/sys/block/$(basename "$1")/size
	for _ in $(seq 300); do
		[ -b "$1" ] && [ "$(cat "$q" 2>/dev/null || echo 0)" -gt 0 ] &&
			return 0
		sleep 0.1
	done
	echo "$1 did not come up" >&2
	return 1
}

# nbdws-relay with one slot, device index IDX, listening on ADDR; the peer
# reading control FIFO CTL dials it as the browser. Its pid goes to
# relaypid[KEY]. CLIENT IDX ADDR CTL KEY -> device
connect_relay() {
	local client=$1 idx=$2 addr=$3 ctl=$4 key=$5 lport scheme=ws cfg
	local args=()
	lport=$((12000 + idx))
	case "$client" in relay-fb-*) args+=(--fallback) ;; esac
	case "$client" in
	*wss) scheme=wss
		args+=(--tls-cert "$BENCH_TLS_DIR/cert.pem"
		       --tls-key "$BENCH_TLS_DIR/key.pem") ;;
	esac
	cfg=/tmp/bench-relay-$key.json
	# The relay's 10 s from accept to hand-over is for a real link; a
	# TCG guest on a starved host has taken longer for the TLS handshake
	# alone (ECDHE and ECDSA in software), as generous as nbd-client -t 60.
	echo "{\"slots\": {\"bench\": {\"index\": $idx}}," \
		"\"limits\": {\"handshake-timeout\": 60}}" > "$cfg"
	# stdout not to the $(...) pipe, which would wait for the relay's end
	"$BENCH_RELAY" --config "$cfg" --listen "$addr:$lport" --insecure \
		"${args[@]}" > /dev/null 2> "$out/relay-$key.err" &
	echo $! > "$(relay_pidfile "$key")"
	if ! wait_listen "$lport" "$!" ||
	   ! echo "$scheme://$addr:$lport/bench 1" > "$ctl" ||
	   ! wait_dev "/dev/nbdws$idx"; then
		tail -c 1000 "$out/relay-$key.err" >&2
		return 1
	fi
	echo "/dev/nbdws$idx"
}

# The nbd-proxy shape: ws_proxy on ADDR, the peer dials it, and
# nbd-client gives /dev/nbdIDX to nbd.ko through the proxy's unix socket
# as nbd-proxy runs it (-L: the ioctl interface). CLIENT IDX ADDR CTL KEY
connect_proxy() {
	local client=$1 idx=$2 addr=$3 ctl=$4 key=$5 lport scheme=ws sock
	local args=()
	lport=$((12100 + idx))
	sock=/tmp/bench-proxy-$idx.sock
	case "$client" in
	*wss) scheme=wss
		args+=(--cert "$BENCH_TLS_DIR/cert.pem"
		       --key "$BENCH_TLS_DIR/key.pem") ;;
	esac
	"$BENCH_PROXY" --listen "$addr:$lport" --unix "$sock" "${args[@]}" \
		> /dev/null 2> "$out/proxy-$key.err" &
	echo $! > "$(relay_pidfile "$key")"
	if ! wait_listen "$lport" "$!" ||
	   ! echo "$scheme://$addr:$lport/ 1" > "$ctl" ||
	   ! timeout 60 nbd-client -unix "$sock" "/dev/nbd$idx" -N '' \
		-b 4096 -t 60 -L > /dev/null 2>&1 < /dev/null ||
	   ! wait_dev "/dev/nbd$idx"; then
		tail -c 1000 "$out/proxy-$key.err" >&2
		return 1
	fi
	echo "/dev/nbd$idx"
}

# End what connect_relay or connect_proxy started under KEY.
stop_relay() {
	local f pid rc=0
	f=$(relay_pidfile "$1")
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	rm -f "$f"
	# The relay disconnects its devices on SIGTERM and exits. Not our
	# child (started in a subshell): its exit status is in its log.
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "pid $pid did not exit on SIGTERM" >&2
	kill -KILL "$pid" 2>/dev/null
	rc=1
	return "$rc"
}

connect_peer_client() { # CLIENT FORM CONNS -> device
	local p=${pport[$2]}
	case "$1" in
	relay-*) connect_relay "$1" "${relay_idx[$1]}" 127.0.0.1 \
		"/tmp/bench-peer-$2.ctl" "$1" ;;
	proxy-*) connect_proxy "$1" "${relay_idx[$1]}" 127.0.0.1 \
		"/tmp/bench-peer-$2.ctl" "$1" ;;
	nbdws-plain) connect_nbdctl "$3" "nbd://127.0.0.1:$p/" ;;
	nbdws-ws-client) connect_nbdctl "$3" "ws://127.0.0.1:$((p + 1))/" ;;
	nbdws-wss) connect_nbdctl "$3" --cafile "$BENCH_TLS_DIR/cert.pem" \
		"wss://127.0.0.1:$((p + 2))/" ;;
	nbdws-ws-server) connect_ws_server "$2" "$3" ;;
	esac
}

# A device that answers with wrong data would make every figure
# meaningless: write 4 MiB of random bytes and read them back (memory),
# or check that the null backend reads zeros after that write.
data_check() {
	local dev=$1 form=$2 f=/tmp/bench-check.bin want
	want=$f
	[ "$form" != null ] || want=/dev/zero
	if ! head -c 4M /dev/urandom > "$f" ||
	   ! dd if="$f" of="$dev" bs=1M oflag=direct status=none ||
	   ! dd if="$dev" of="$f.back" bs=1M count=4 iflag=direct status=none; then
		echo "data check on $dev: I/O failed" >&2
		return 1
	fi
	if ! cmp -s -n 4M "$want" "$f.back"; then
		echo "data check on $dev failed: the 4 MiB read back are not what was written (memory) or not zeros (null)" >&2
		return 1
	fi
}

disconnect() {
	local client=$1 dev=$2
	case "$client" in
	nbd) timeout 60 nbd-client -d "$dev" ;;
	relay-*) stop_relay "$client" ;;
	proxy-*) timeout 60 nbd-client -d "$dev" && stop_relay "$client" ;;
	*) timeout 60 "$NBDCTL" disconnect "$dev" ;;
	esac
}

# Describe a connected device: queues and request limits explain figures.
device_record() {
	local client=$1 server=$2 conns=$3 dev=$4 q
	q=/sys/block/$(basename "$dev")
	record kind=device client="$client" server="$server" conns:="$conns" \
		device="$dev" size_bytes:="$(( $(cat "$q/size") * 512 ))" \
		hw_queues:="$(find "$q/mq" -mindepth 1 -maxdepth 1 -type d | wc -l)" \
		nr_requests:="$(cat "$q/queue/nr_requests")" \
		max_sectors_kb:="$(cat "$q/queue/max_sectors_kb")" \
		scheduler="$(sed 's/.*\[\(.*\)\].*/\1/' "$q/queue/scheduler")" \
		logical_block_size:="$(cat "$q/queue/logical_block_size")"
}

# ---- the runs -----------------------------------------------------------
for s in $BENCH_SERVERS; do
	for n in $BENCH_CONNS; do
		declare -A dev=()
		active=()
		for c in $BENCH_CLIENTS; do
			k=$(server_kind "$c")
			if [ -n "${clientwhy[$c]:-}" ]; then
				rows_not_run "$c" "$s" "$n" "${clientwhy[$c]}"
				continue
			fi
			if [ -n "${srvwhy[$k:$s]:-}" ]; then
				rows_not_run "$c" "$s" "$n" "server: ${srvwhy[$k:$s]}"
				continue
			fi
			if [ "$n" -gt 1 ] &&
			   [ "$(multi_conn "$out/nbdinfo-$k-$s.json")" != true ]; then
				rows_not_run "$c" "$s" "$n" "server does not advertise multi-conn"
				failed=1
				continue
			fi
			say "connecting $c to $s with $n connection(s)"
			crc=0
			case "$c" in
			nbd) d=$(connect_nbd "$s" "$n" 2> "$out/connect.err") || crc=$? ;;
			nbdws) d=$(connect_nbdws "$s" "$n" 2> "$out/connect.err") || crc=$? ;;
			*) d=$(connect_peer_client "$c" "$s" "$n" 2> "$out/connect.err") || crc=$? ;;
			esac
			if [ "$crc" = 0 ] && [ "$k" = peer ]; then
				data_check "$d" "$s" 2>> "$out/connect.err" || crc=$?
				[ "$crc" = 0 ] || disconnect "$c" "$d" >/dev/null 2>&1
			fi
			if [ "$crc" = 0 ]; then
				cat "$out/connect.err"
				dev[$c]=$d
				active+=("$c")
				device_record "$c" "$s" "$n" "$d"
			else
				why="connect failed (exit $crc): $(tail -c 1500 "$out/connect.err")"
				say "$c: $why"
				record kind=setup status=error client="$c" server="$s" \
					conns:="$n" reason="$why"
				rows_not_run "$c" "$s" "$n" "$why"
				failed=1
			fi
		done

		if [ "${#active[@]}" -gt 0 ]; then
			devargs=()
			for c in "${active[@]}"; do
				devargs+=(--device "$c=${dev[$c]}")
			done
			# Every server process the group's devices talk to.
			for k in nbdkit peer; do
				[ -z "${srvpid[$k:$s]:-}" ] ||
					devargs+=(--server-pid "${srvpid[$k:$s]}")
			done
			say "$s, $n connection(s): ${#rows[@]} rows x ${active[*]}" \
				"x ${BENCH_REPEAT:-1}, ${BENCH_RUNTIME}s each"
			work="$out/fio-$s-$n"
			"$py" "$BENCH_SCRIPTS/measure.py" "${devargs[@]}" \
				--rows "$BENCH_SCRIPTS/rows.txt" \
				--only "${BENCH_ROWS:-}" --runtime "$BENCH_RUNTIME" \
				--repeat "${BENCH_REPEAT:-1}" \
				${BENCH_PERF:+--perf} \
				--size "$BENCH_SIZE" \
				--workdir "$work" --label server="$s" --label conns="$n" \
				> "$work.jsonl" 2> "$work.err" || failed=1
			cat "$work.jsonl" >> "$rec"
			if ! grep -q '"kind": "row"' "$work.jsonl"; then
				why="measure.py: $(tail -c 1500 "$work.err")"
				say "$why"
				for c in "${active[@]}"; do
					rows_not_run "$c" "$s" "$n" "$why"
				done
				failed=1
			fi
			"$py" -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("status") == "ok":
        print("bench:   %d %-18s %-15s %8.0f IOPS %7.1f MiB/s %8.1f CPU-s/GiB" %
              (r["rep"], r["row"], r["client"], r["iops"], r["mib_s"],
               r["cpu_s_per_gib"]))
    else:
        print("bench:   %-18s %-15s FAILED: %s" % (r.get("row", ""),
              r.get("client", ""), r.get("reason")))' "$work.jsonl" | tee -a "$log"
		fi

		for c in "${active[@]}"; do
			if ! disconnect "$c" "${dev[$c]}" > "$out/disconnect.err" 2>&1; then
				why="disconnect of ${dev[$c]} failed: $(tail -c 1500 "$out/disconnect.err")"
				say "$c: $why"
				record kind=setup status=error client="$c" server="$s" \
					conns:="$n" reason="$why"
				failed=1
			fi
		done
		unset dev
	done
done

# ---- the high-latency row (issue 14) ------------------------------------
# 256 MiB read sequentially, fio bs=1m iodepth=8, through a veth pair
# with 25 ms netem delay each way: the peer in a network namespace of its
# own, the relay (a) or the proxy (c) in ours. Each driver keeps its own
# defaults (request size, queue depth).
# Sample, every half second until stopped, what caps a read over the
# slow link: the device's requests in flight, and the TCP state of the
# peer's socket (the sender, in bpeer) and of the relay's or proxy's
# (the receiver, ours). DEVICE FILE; the sampler's pid in $sampler.
sample_start() {
	local d
	d=$(basename "$1")
	( while :; do
		echo "T $(date +%s.%N)"
		echo "I $(cat "/sys/block/$d/inflight")"
		ip netns exec bpeer ss -tinmH state established \
			dst 10.77.0.1 | tr '\n' ' ' | sed 's/^/P /'; echo
		ss -tinmH state established src 10.77.0.1 | tr '\n' ' ' |
			sed 's/^/R /'; echo
		sleep 0.5
	done ) > "$2" 2>&1 &
	sampler=$!
}

sample_stop() {
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null
}

# The device's queue limits that decide how much a read has in flight.
queue_words() { # DEVICE
	local q f
	q=/sys/block/$(basename "$1")/queue
	for f in max_sectors_kb max_hw_sectors_kb nr_requests read_ahead_kb; do
		printf '%s:=%s ' "$f" "$(cat "$q/$f")"
	done
}

latency_fio() { # CLIENT DEVICE
	local c=$1 ldev=$2 j="$out/latency-$1.json" smp="$out/latency-$1.samples"
	sample_start "$ldev" "$smp"
	if ! fio --name=latency --filename="$ldev" --rw=read --bs=1m \
		--iodepth=8 --ioengine=libaio --direct=1 --size=256M \
		--output-format=json --output="$j" > "$out/latency-$c.err" 2>&1; then
		sample_stop
		record kind=latency status=error client="$c" \
			reason="fio failed: $(tail -c 500 "$out/latency-$c.err")"
		failed=1
		return
	fi
	sample_stop
	# shellcheck disable=SC2046
	record kind=latency status=ok client="$c" device="$ldev" \
		$(queue_words "$ldev") \
		$("$py" "$BENCH_SCRIPTS/latency_sample.py" "$smp") \
		$("$py" -c '
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
s = r["runtime"] / 1000.0
print("mib_s:=%.3f seconds:=%.3f bytes:=%d" %
      (r["io_bytes"] / 1048576.0 / s, s, r["io_bytes"]))' "$j")
}

# What a person does: a buffered sequential read with dd, the page cache
# dropped first, so the device's readahead window decides how much is in
# flight (fio above sets that with its queue depth instead).
latency_dd() { # CLIENT DEVICE
	local c=$1 ldev=$2 smp="$out/latency-dd-$1.samples" t0 t1
	sync
	echo 3 > /proc/sys/vm/drop_caches
	sample_start "$ldev" "$smp"
	t0=$(date +%s.%N)
	if ! dd if="$ldev" of=/dev/null bs=1M count=256 \
		> "$out/latency-dd-$c.err" 2>&1; then
		sample_stop
		record kind=latency-dd status=error client="$c" \
			reason="dd failed: $(tail -c 500 "$out/latency-dd-$c.err")"
		failed=1
		return
	fi
	t1=$(date +%s.%N)
	sample_stop
	# shellcheck disable=SC2046
	record kind=latency-dd status=ok client="$c" device="$ldev" \
		$(queue_words "$ldev") \
		$("$py" "$BENCH_SCRIPTS/latency_sample.py" "$smp") \
		$("$py" -c '
import sys
s = float(sys.argv[2]) - float(sys.argv[1])
print("mib_s:=%.3f seconds:=%.3f bytes:=%d" % (256 / s, s, 256 << 20))' \
		"$t0" "$t1")
}

latency_row() {
	local ctl=/tmp/bench-latency.ctl ppid c ldev crc
	say "latency row: 25 ms netem each way, 256 MiB sequential read"
	if ! { ip netns add bpeer && ip link add bvr type veth peer name bvp &&
	       ip link set bvp netns bpeer &&
	       ip addr add 10.77.0.1/24 dev bvr && ip link set bvr up &&
	       ip netns exec bpeer ip addr add 10.77.0.2/24 dev bvp &&
	       ip netns exec bpeer ip link set bvp up &&
	       ip netns exec bpeer ip link set lo up &&
	       tc qdisc add dev bvr root netem delay 25ms limit 100000 &&
	       ip netns exec bpeer tc qdisc add dev bvp root netem \
		delay 25ms limit 100000; } 2> "$out/latency-setup.err"; then
		for c in relay-ws proxy-ws; do
			record kind=latency status=error client="$c" \
				reason="netns/netem setup failed: $(tail -c 500 "$out/latency-setup.err")"
		done
		failed=1
		return
	fi
	rm -f "$ctl"
	mkfifo "$ctl"
	ip netns exec bpeer "$BENCH_PEER" --size 256M --backend memory \
		--control "$ctl" 2> "$out/peer-latency.err" &
	ppid=$!
	for c in relay-ws proxy-ws; do
		crc=0
		case "$c" in
		relay-ws) ldev=$(connect_relay relay-ws 24 10.77.0.1 "$ctl" \
			latency-relay 2> "$out/connect.err") || crc=$? ;;
		proxy-ws) ldev=$(connect_proxy proxy-ws 3 10.77.0.1 "$ctl" \
			latency-proxy 2> "$out/connect.err") || crc=$? ;;
		esac
		if [ "$crc" != 0 ]; then
			record kind=latency status=error client="$c" \
				reason="connect failed: $(tail -c 1000 "$out/connect.err")"
			failed=1
		else
			latency_fio "$c" "$ldev"
			latency_dd "$c" "$ldev"
		fi
		case "$c" in
		relay-ws) stop_relay latency-relay ;;
		proxy-ws) timeout 60 nbd-client -d /dev/nbd3 > /dev/null 2>&1
			stop_relay latency-proxy ;;
		esac
	done
	kill "$ppid" 2>/dev/null
	wait "$ppid" 2>/dev/null
	ip netns del bpeer 2>/dev/null
}
[ -z "${BENCH_LATENCY:-}" ] || latency_row

for f in /tmp/bench-relay-*.pid; do
	[ -f "$f" ] || continue
	f=${f#/tmp/bench-relay-}
	stop_relay "${f%.pid}"
done
for s in "${!srvpid[@]}"; do
	kill "${srvpid[$s]}" 2>/dev/null
done
wait "${srvpid[@]}" 2>/dev/null
# What the kernel's TLS ran on (gcm(aes) is listed once kTLS asked).
record kind=crypto aes="$(guest_crypto_driver aes)" \
	gcm_aes="$(guest_crypto_driver 'gcm(aes)')"
dmesg > "$out/dmesg.txt"
echo "$failed" > "$out/guest.rc"
sync
exit "$failed"
