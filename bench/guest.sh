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
# Environment: NBDWS_TOP, BENCH_SCRIPTS (where run.sh put its snapshot of
# guest.sh, measure.py and rows.txt), BENCH_OUT, BENCH_RUNTIME (s),
# BENCH_SIZE (fio region), BENCH_CLIENTS ("nbd nbdws"), BENCH_SERVERS
# ("memory null"), BENCH_CONNS ("1 4"), BENCH_TRANSPORT (tcp | unix),
# BENCH_ROWS (row names, empty = all), BENCH_REPEAT (runs of the whole row
# sequence, default 1), NBDWS_KO (module file), NBDCTL, NBDWS_UNAVAILABLE
# (why nbdws cannot run, as found on the host; empty when it can).
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
declare -A srvpid=() srvuri=() srvsock=() srvwhy=() clientwhy=()
failed=0

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
record kind=meta kernel="$(uname -r)" cpus:="$(nproc)" \
	mem_kib:="$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)" \
	fio="$(fio --version)" nbdkit="$(nbdkit --version)" \
	nbd_client="$(nbd-client -V 2>&1 | head -n 1)" \
	runtime_s:="$BENCH_RUNTIME" size="$BENCH_SIZE" \
	repeat:="${BENCH_REPEAT:-1}" \
	transport="$BENCH_TRANSPORT"

# ---- clients' kernel side ---------------------------------------------
for c in $BENCH_CLIENTS; do
	case "$c" in
	nbd)
		if ! modprobe nbd nbds_max=2 2> "$out/modprobe-nbd.err"; then
			clientwhy[nbd]="modprobe nbd failed: $(cat "$out/modprobe-nbd.err")"
		fi ;;
	nbdws)
		if [ -n "${NBDWS_UNAVAILABLE:-}" ]; then
			clientwhy[nbdws]=$NBDWS_UNAVAILABLE
		elif [ ! -x "$NBDCTL" ]; then
			clientwhy[nbdws]="$NBDCTL is missing (make tools)"
		elif ! insmod "$NBDWS_KO" 2> "$out/insmod-nbdws.err"; then
			clientwhy[nbdws]="insmod nbdws.ko failed: $(cat "$out/insmod-nbdws.err")"
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
	*) srvwhy[$form]="unknown server form '$form'"; return 1 ;;
	esac
	if [ "$BENCH_TRANSPORT" = unix ]; then
		srvsock[$form]=/tmp/bench-$form.sock
		srvuri[$form]="nbd+unix:///?socket=${srvsock[$form]}"
		nbdkit -f -U "${srvsock[$form]}" "${args[@]}" &
	else
		srvuri[$form]="nbd://127.0.0.1:${port[$form]}/"
		nbdkit -f -i 127.0.0.1 -p "${port[$form]}" "${args[@]}" &
	fi
	srvpid[$form]=$!
	for _ in $(seq 300); do
		nbdinfo --can connect "${srvuri[$form]}" 2>/dev/null && break
		kill -0 "${srvpid[$form]}" 2>/dev/null || break
		sleep 0.5
	done
	if ! nbdinfo --json "${srvuri[$form]}" > "$out/nbdinfo-$form.json"; then
		srvwhy[$form]="nbdkit $form did not come up on ${srvuri[$form]}"
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
	say "starting nbdkit $s"
	if start_server "$s"; then
		record kind=server status=ok server="$s" uri="${srvuri[$s]}" \
			can_multi_conn:="$(multi_conn "$out/nbdinfo-$s.json")"
	else
		say "server $s: ${srvwhy[$s]}"
		record kind=server status=error server="$s" reason="${srvwhy[$s]}"
		failed=1
	fi
done

# ---- clients: connect / disconnect --------------------------------------
connect_nbd() { # conns -> device on stdout
	local form=$1 conns=$2 where
	if [ "$BENCH_TRANSPORT" = unix ]; then
		where=(-unix "${srvsock[$form]}")
	else
		where=(127.0.0.1 "${port[$form]}")
	fi
	timeout 60 nbd-client "${where[@]}" /dev/nbd0 -N '' -C "$conns" \
		-b 4096 -t 60 >&2 || return
	echo /dev/nbd0
}

connect_nbdws() {
	local form=$1 conns=$2 dev
	dev=$(timeout 60 "$NBDCTL" --module "$NBDWS_KO" connect -c "$conns" \
		"${srvuri[$form]}") || return
	dev=${dev##*$'\n'}
	case "$dev" in /dev/*) ;; *) dev=/dev/$dev ;; esac
	[ -b "$dev" ] || { echo "nbdctl printed '$dev', not a block device" >&2; return 1; }
	echo "$dev"
}

disconnect() {
	local client=$1 dev=$2
	case "$client" in
	nbd) timeout 60 nbd-client -d "$dev" ;;
	nbdws) timeout 60 "$NBDCTL" disconnect "$dev" ;;
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
			if [ -n "${clientwhy[$c]:-}" ]; then
				rows_not_run "$c" "$s" "$n" "${clientwhy[$c]}"
				continue
			fi
			if [ -n "${srvwhy[$s]:-}" ]; then
				rows_not_run "$c" "$s" "$n" "server: ${srvwhy[$s]}"
				continue
			fi
			if [ "$n" -gt 1 ] &&
			   [ "$(multi_conn "$out/nbdinfo-$s.json")" != true ]; then
				rows_not_run "$c" "$s" "$n" "server does not advertise multi-conn"
				failed=1
				continue
			fi
			say "connecting $c to $s with $n connection(s)"
			crc=0
			case "$c" in
			nbd) d=$(connect_nbd "$s" "$n" 2> "$out/connect.err") || crc=$? ;;
			nbdws) d=$(connect_nbdws "$s" "$n" 2> "$out/connect.err") || crc=$? ;;
			esac
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
			say "$s, $n connection(s): ${#rows[@]} rows x ${active[*]}" \
				"x ${BENCH_REPEAT:-1}, ${BENCH_RUNTIME}s each"
			work="$out/fio-$s-$n"
			"$py" "$BENCH_SCRIPTS/measure.py" "${devargs[@]}" \
				--rows "$BENCH_SCRIPTS/rows.txt" \
				--only "${BENCH_ROWS:-}" --runtime "$BENCH_RUNTIME" \
				--repeat "${BENCH_REPEAT:-1}" \
				--size "$BENCH_SIZE" --server-pid "${srvpid[$s]}" \
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
        print("bench:   %d %-18s %-6s %8.0f IOPS %7.1f MiB/s %8.1f CPU-s/GiB" %
              (r["rep"], r["row"], r["client"], r["iops"], r["mib_s"],
               r["cpu_s_per_gib"]))
    else:
        print("bench:   %-18s %-6s FAILED: %s" % (r.get("row", ""),
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

for s in "${!srvpid[@]}"; do
	kill "${srvpid[$s]}" 2>/dev/null
done
wait "${srvpid[@]}" 2>/dev/null
dmesg > "$out/dmesg.txt"
echo "$failed" > "$out/guest.rc"
sync
exit "$failed"
