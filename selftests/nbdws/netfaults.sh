#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Network faults between nbdws.ko and its server. The server (nbdkit's
# file plugin; behind websockify for ws:// and wss://) lives in a network
# namespace of its own, reached over a veth pair; the device is made by
# `nbdctl connect --persist`. Then, over nbd://, ws:// and wss:// in
# turn, while a 2 MiB O_DIRECT dd (64 KiB writes, then fsync) runs:
#
#   loss     10% packet loss each way (netem): the dd and a read-back
#            succeed, netem really dropped packets both ways;
#   blip     (nbd:// only: the TCP below ws:// and wss:// is the same)
#            a 2 s partition (the server's link down), well inside the
#            request timeout: TCP carries the connection through, no
#            reconnect;
#   part     an 8 s partition with a 2 s request timeout and a 300 s
#            dead-connection timeout: the connection times out, the
#            requests are held, --persist reconnects once the link is
#            back, the dd completes;
#   restart  the server killed and started again 2 s later: --persist
#            reconnects, the dd completes (within the same 300 s);
#   long     a partition outlasting request (2 s) and dead-connection
#            (3 s) timeouts: the dd fails with EIO no sooner than the
#            dead-connection timeout and within 60 s, new I/O fails at
#            once, the device is removed within 30 s while still cut off
#            and --persist exits 0.
#
# After each phase the server's file must hold every write the dd had
# acknowledged (all of it, or for `long` the writes before the error;
# whether the dd completed is a check of its own), and once more at the
# end with the server stopped.
#
# Prints TAP. Runs in the test VM (selftests/vm/guest-run.sh).
# NETFAULTS_KINDS limits the transports (default "nbd ws wss").
set -u
. "$(dirname "$0")/lib/netfault_lib.sh"

kinds=${NETFAULTS_KINDS:-nbd ws wss}
per_kind=12		# checks per transport; nbd:// has 2 more (blip)
req_t=2			# request timeout in the partitions, seconds
part_s=8		# the partition a reconnect heals
# Dead-connection timeout while a reconnect is expected: long, because a
# restarted websockify (python, numpy) can take a minute or more to
# listen again on a loaded TCG host, and nbdctl's backoff adds up to 30 s.
dead_t=300
dead_long=3		# dead-connection timeout of the long partition
dd_kib=2048		# what each phase's dd writes

nf_prereqs
nkinds=$(wc -w <<< "$kinds")
nblip=0
[[ " $kinds " == *" nbd "* ]] && nblip=2
echo "1..$((1 + nkinds * per_kind + nblip + 1))"
echo "netfaults: start" > /dev/kmsg

# 10 MiB of pattern: one 2 MiB region per phase, at the same offset on
# the device; the image (16 MiB of zeroes) keeps what reached it.
dd if=/dev/urandom of="$tmp/pat" bs=1M count=10 status=none
phases="loss blip part restart long"
region() {	# region PHASE -> its first 64 KiB block
	local i=0 p
	for p in $phases; do
		[ "$p" = "$1" ] && { echo $((i * dd_kib / 64)); return; }
		i=$((i + 1))
	done
}

{ nf_net_setup && make_cert; } > "$tmp/setup.out" 2>&1
rc=$?
ok $rc "namespace $ns, veth $veth_c/$veth_s ($ip_c/$ip_s), GSO off" \
	"$tmp/setup.out" "$tmp/openssl.log"
[ $rc = 0 ] || exit 1

# --- the dd and what it leaves ----------------------------------------------

# start_dd PHASE: the phase's region of the pattern to the device, in
# 64 KiB O_DIRECT writes, then fsync; its status to dd.rc, its report
# to dd.err.
start_dd() {
	local b
	b=$(region "$1")
	rm -f "$tmp/dd.rc"
	w0=$(written "$dev")
	rm -f "$tmp/dd.pid"
	( dd if="$tmp/pat" of="$dev" bs=64k count=$((dd_kib / 64)) skip="$b" seek="$b" \
		oflag=direct conv=fsync 2> "$tmp/dd.err" &
	  echo $! > "$tmp/dd.pid"
	  wait $!
	  echo $? > "$tmp/dd.rc" ) &
	dd_pid=$!
}

# wait_written BYTES SECONDS: the dd has written BYTES and is not done.
wait_written() {
	local end=$((SECONDS + $2)) w=0
	while [ $SECONDS -lt $end ]; do
		[ -e "$tmp/dd.rc" ] && { echo "dd ended first: $(cat "$tmp/dd.err")"; return 1; }
		w=$(( $(written "$dev") - w0 ))
		[ "$w" -ge "$1" ] && return 0
		sleep 0.05
	done
	echo "written: $w bytes after $2 s"
	return 1
}

# wait_dd SECONDS: the dd's exit status (124: still running, killed).
wait_dd() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ] && [ ! -s "$tmp/dd.rc" ]; do
		sleep 0.1
	done
	if [ ! -s "$tmp/dd.rc" ]; then
		echo "dd still running after $1 s"
		kill "$(cat "$tmp/dd.pid")" 2>/dev/null
	fi
	wait "$dd_pid" 2>/dev/null
	[ -s "$tmp/dd.rc" ] || return 124
	return "$(cat "$tmp/dd.rc")"
}

# on_server PHASE: the server's file holds what the phase's dd had
# acknowledged, the first acked[PHASE] bytes of its region.
on_server() {
	local off=$(( $(region "$1") * 65536 ))
	echo "$1: ${acked[$1]} bytes acknowledged at $off"
	cmp -n "${acked[$1]}" -i "$off:$off" "$tmp/pat" "$img"
}

# acked_as PHASE: the full 64 KiB records the dd reported written
# (acknowledged: an O_DIRECT write returns after the server's reply),
# in bytes, to acked[PHASE].
declare -A acked
acked_as() {
	local r
	r=$(sed -n 's/^\([0-9]*\)+[0-9]* records out$/\1/p' "$tmp/dd.err")
	acked[$1]=$(( ${r:-0} * 65536 ))
}
all_acked() {	# all_acked PHASE
	[ "${acked[$1]}" = $((dd_kib << 10)) ] && return 0
	echo "$1: ${acked[$1]} of $((dd_kib << 10)) bytes acknowledged"
	return 1
}

# persist_exit SECONDS: the --persist nbdctl has exited 0.
persist_exit() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ] && kill -0 "$persist" 2>/dev/null; do
		sleep 0.2
	done
	kill -0 "$persist" 2>/dev/null && { echo "nbdctl --persist still running after $1 s"; return 1; }
	wait "$persist"
}

# --- one transport ------------------------------------------------------------

# not_run COUNT WHY: the rest of a transport's checks, failed.
not_run() {
	local i
	for i in $(seq "$1"); do ok 1 "$kind: not run: $2"; done
}

# fault_dd PHASE LOG: start the phase's dd and return once it is under
# way (128 KiB written, not finished), for the caller to strike.
fault_dd() {
	start_dd "$1"
	wait_written $((128 << 10)) 60 >> "$2" 2>&1
}

# struck LOG: the dd was still running when the fault took hold (it was
# hit mid-way, not after it had finished).
struck() {
	[ ! -e "$tmp/dd.rc" ] && return 0
	echo "the dd ended before the fault took hold" >> "$1"
	return 1
}

# end_dd PHASE LOG SECONDS: the dd ended 0 within SECONDS and every
# record was acknowledged.
end_dd() {
	local rc
	wait_dd "$3" >> "$2" 2>&1
	rc=$?
	acked_as "$1"
	[ $rc = 0 ] && all_acked "$1" >> "$2" 2>&1
}

# stats_moved LOG BEFORE WANT: the device's "timeouts reconnects" went
# from BEFORE to at least WANT ("-" for "unchanged").
stats_moved() {
	local now b_t b_r w_t w_r n_t n_r
	now=$(conn_stats "$dev")
	read -r b_t b_r <<< "$2"
	read -r w_t w_r <<< "$3"
	read -r n_t n_r <<< "$now"
	echo "timeouts, reconnects: $2 -> $now" >> "$1"
	[ -n "$b_r" ] && [ -n "$n_r" ] || return 1
	if [ "$w_t" = - ]; then
		[ "$n_t" = "$b_t" ] && [ "$n_r" = "$b_r" ]
	else
		[ "$n_t" -ge "$w_t" ] && [ "$n_r" -ge "$w_r" ]
	fi
}

# phase_ok PHASE DESCRIPTION LOG...: the phase's result, then whether
# the server's file has what the dd had acknowledged.
phase_ok() {
	local p=$1 desc=$2 rc=$3
	shift 3
	note "$kind $p: $(tail -n 1 "$1"), $((SECONDS - t0)) s"
	ok "$rc" "$kind: $desc" "$@" "$tmp/dd.err"
	on_server "$p" > "$tmp/srv.out" 2>&1
	ok $? "$kind: $p: the server's file has the $((acked[$p] >> 10)) KiB acknowledged" \
		"$tmp/srv.out"
}

# connect_persist [OPTIONS...] URI: nbdctl connect --persist in the
# background ($persist), its device in $dev. Up to three attempts: the
# first connection is not what this test is about, and on a loaded TCG
# host websockify's forked TLS handshake has outlasted nbdctl's 30 s.
connect_persist() {
	local try
	for try in 1 2 3; do
		echo "attempt $try" >> "$tmp/persist.log"
		spawn "$tmp/persist.try" "$nbdctl" connect --persist "$@"
		persist=$last_pid
		for _ in $(seq 1200); do
			dev=$(grep -o -m 1 '/dev/nbdws[0-9]*' "$tmp/persist.try")
			[ -n "$dev" ] && [ -b "$dev" ] && break
			kill -0 "$persist" 2>/dev/null || break
			sleep 0.1
		done
		if [ -n "$dev" ] && [ -b "$dev" ]; then
			# The live nbdctl keeps writing to the file it has open.
			mv -f "$tmp/persist.try" "$tmp/persist.log"
			[ "$try" = 1 ] || note "$kind: connected at attempt $try"
			return 0
		fi
		kill -TERM -- "-$persist" 2>/dev/null
		cat "$tmp/persist.try" >> "$tmp/persist.log"
		dev=
	done
	return 1
}

run_kind() {
	local rc el b uri opts=()
	kind=$1
	img=$tmp/img-$kind
	truncate -s 16M "$img"
	uri=$(server_uri "$kind")
	[ "$kind" = wss ] && opts=(--cafile "$tmp/cert.pem")
	for p in $phases; do acked[$p]=0; done

	# Connect.
	: > "$tmp/server.log"
	: > "$tmp/persist.log"
	dev=
	server_start "$kind" "$img" > "$tmp/start.out" 2>&1 &&
		connect_persist "${opts[@]}" "$uri"
	[ -n "$dev" ] && [ -b "$dev" ]
	rc=$?
	ok $rc "$kind: nbdctl connect --persist $uri: ${dev:-no device}" \
		"$tmp/start.out" "$tmp/persist.log" "$tmp/server.log"
	if [ $rc != 0 ]; then
		not_run $((per_kind - 1)) "no device"
		server_kill
		return
	fi

	# 10% loss both ways: the dd, then a read-back, under loss.
	t0=$SECONDS
	log=$tmp/loss.out
	loss_on 10 > "$log" 2>&1
	rc=$?
	if [ $rc = 0 ]; then
		start_dd loss
		end_dd loss "$log" 300 || rc=1
		b=$(region loss)
		{ dd if="$dev" of="$tmp/rb" bs=64k count=$((dd_kib / 64)) skip="$b" \
			iflag=direct status=none &&
		  cmp -n $((dd_kib << 10)) -i $((b << 16)):0 "$tmp/pat" "$tmp/rb"; } \
			>> "$log" 2>&1 || rc=1
		read -r d_c s_c d_s s_s <<< "$(loss_counts)"
		echo "netem dropped/sent: client end ${d_c:-?}/${s_c:-?}, server end ${d_s:-?}/${s_s:-?}" >> "$log"
		[ "${d_c:-0}" -gt 0 ] && [ "${d_s:-0}" -gt 0 ] || rc=1
	fi
	loss_off >> "$log" 2>&1
	phase_ok loss "10% packet loss: O_DIRECT write + fsync and read back intact, packets dropped both ways" \
		$rc "$log"

	# A 2 s partition, well inside the request timeout.
	if [ "$kind" = nbd ]; then
		t0=$SECONDS
		log=$tmp/blip.out
		b=$(conn_stats "$dev")
		fault_dd blip "$log"
		rc=$?
		part_on >> "$log" 2>&1 || rc=1
		struck "$log" || rc=1
		sleep 2
		part_off >> "$log" 2>&1 || rc=1
		end_dd blip "$log" 120 || rc=1
		stats_moved "$log" "$b" - || rc=1
		phase_ok blip "2 s partition mid-dd: the dd completes on the same connection" \
			$rc "$log"
	fi

	# A partition past the request timeout: requests held, reconnected.
	t0=$SECONDS
	log=$tmp/part.out
	"$nbdctl" reconfigure "$dev" -t "$req_t" --dead-timeout "$dead_t" > "$log" 2>&1
	rc=$?
	b=$(conn_stats "$dev")
	read -r b_t b_r <<< "$b"
	fault_dd part "$log" || rc=1
	part_on >> "$log" 2>&1 || rc=1
	struck "$log" || rc=1
	sleep "$part_s"
	[ -e "$tmp/dd.rc" ] && { rc=1; echo "dd ended during the partition" >> "$log"; }
	part_off >> "$log" 2>&1 || rc=1
	end_dd part "$log" $((dead_t + 60)) || rc=1
	stats_moved "$log" "$b" "$((${b_t:-0} + 1)) $((${b_r:-0} + 1))" || rc=1
	phase_ok part "$part_s s partition (request timeout $req_t s, dead $dead_t s): timed out, reconnected, the dd completes" \
		$rc "$log" "$tmp/persist.log"

	# The server killed mid-dd, started again 2 s later.
	t0=$SECONDS
	log=$tmp/restart.out
	b=$(conn_stats "$dev")
	read -r b_t b_r <<< "$b"
	fault_dd restart "$log"
	rc=$?
	server_kill
	struck "$log" || rc=1
	sleep 2
	server_start "$kind" "$img" >> "$log" 2>&1 || rc=1
	end_dd restart "$log" $((dead_t + 60)) || rc=1
	stats_moved "$log" "$b" "${b_t:-0} $((${b_r:-0} + 1))" || rc=1
	phase_ok restart "server killed mid-dd, back after 2 s: reconnected, the dd completes" \
		$rc "$log" "$tmp/persist.log" "$tmp/server.log"

	# A partition longer than both timeouts: EIO, in bounded time.
	log=$tmp/long.out
	"$nbdctl" reconfigure "$dev" -t "$req_t" --dead-timeout "$dead_long" > "$log" 2>&1
	rc=$?
	fault_dd long "$log" || rc=1
	part_on >> "$log" 2>&1 || rc=1
	struck "$log" || rc=1
	t0=$SECONDS
	wait_dd 120 >> "$log" 2>&1
	[ $? = 1 ] || rc=1
	el=$((SECONDS - t0))
	acked_as long
	grep -q 'Input/output error' "$tmp/dd.err" || rc=1
	[ $el -ge "$dead_long" ] && [ $el -le 60 ] || rc=1
	echo "the dd failed after $el s" >> "$log"
	phase_ok long "partition past the timeouts ($req_t s + $dead_long s): the dd fails with EIO after $el s (>= $dead_long, <= 60)" \
		$rc "$log"

	t0=$SECONDS
	timeout 30 dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct > "$tmp/eio.out" 2>&1
	rc=$?
	el=$((SECONDS - t0))
	[ $rc = 1 ] && grep -q 'Input/output error' "$tmp/eio.out" && [ $el -le 10 ]
	ok $? "$kind: still cut off: a new read fails with EIO in $el s (<= 10)" "$tmp/eio.out"

	t0=$SECONDS
	{ timeout 60 "$nbdctl" disconnect "$dev" && dev_gone "$dev" 30; } > "$tmp/disc.out" 2>&1
	rc=$?
	el=$((SECONDS - t0))
	[ $el -le 30 ] || rc=1
	persist_exit 30 >> "$tmp/disc.out" 2>&1 || rc=1
	part_off >> "$tmp/disc.out" 2>&1 || rc=1
	ok $rc "$kind: still cut off: the device is removed in $el s (<= 30), nbdctl --persist exits 0" \
		"$tmp/disc.out" "$tmp/persist.log"

	# Afterwards, the server gone: everything acknowledged is in its file.
	server_kill
	b=0
	for p in $phases; do b=$((b + acked[$p])); done
	( for p in $phases; do on_server "$p" || exit 1; done ) > "$tmp/srv.out" 2>&1
	ok $? "$kind: afterwards the server's file holds every acknowledged write ($((b >> 10)) KiB)" \
		"$tmp/srv.out"
}

for kind in $kinds; do
	run_kind "$kind"
done

dmesg | sed -n '/netfaults: start/,$p' |
	grep -E 'blocked for more than|hung_task|WARNING:|BUG[: ]|Call Trace' > "$tmp/dmesg.out"
[ ! -s "$tmp/dmesg.out" ]
ok $? "dmesg: no hung task, warning or BUG during the test" "$tmp/dmesg.out"
[ $failed = 0 ]
