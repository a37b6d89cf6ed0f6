# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Sourced by selftests/nbdws/netfaults.sh: a network namespace holding the
# NBD server (nbdkit, behind websockify for ws:// and wss://), reached
# from the VM's own namespace over a veth pair, and the faults to put on
# that pair: netem packet loss, link down (a partition), the server
# killed. Also the TAP helpers and the clean-up that runs whatever
# happens. Nothing here leaves the VM: the pair is private to it.
export PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH

top=${NBDWS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
nbdctl=${NBDCTL:-$top/build/nbdctl}
python=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/netfaults.XXXXXX")
ns=nbdws-nf$$
veth_c=nfc$$		# the client's end, in the VM's namespace
veth_s=nfs$$		# the server's end, in $ns
ip_c=10.99.0.1
ip_s=10.99.0.2
port=10809
pids=()
srv_pids=()
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

nf_cleanup() {
	local d
	exec 2> /dev/null
	for d in /sys/block/nbdws*; do
		[ -e "$d" ] || continue
		timeout 60 "$nbdctl" disconnect "/dev/${d##*/}" > /dev/null 2>&1
	done
	stop_pids "${pids[@]}" "${srv_pids[@]}"
	# Deleting the namespace deletes its end of the pair, and so both.
	ip netns del "$ns"
	ip link del "$veth_c"
	rm -rf "$tmp"
}
trap nf_cleanup EXIT

# A TAP comment: the figures a run had (time taken, packets dropped).
note() { echo "# $*"; }

# nf_prereqs: the tools and kernel modules, or skip the whole test.
nf_prereqs() {
	local t m
	echo "TAP version 13"
	for t in ip tc ss nbdkit setsid "$python"; do
		command -v "$t" > /dev/null || { echo "1..0 # SKIP needs $t"; exit 0; }
	done
	[ -x "$nbdctl" ] || { echo "1..0 # SKIP no nbdctl at $nbdctl"; exit 0; }
	for m in veth sch_netem; do
		modprobe "$m" 2>/dev/null ||
			{ echo "1..0 # SKIP cannot load kernel module $m"; exit 0; }
	done
	modprobe tls 2>/dev/null
}

# nf_net_setup: the namespace, the pair, the addresses. GSO off on both
# ends (one segment per skb): netem then drops single wire packets, not
# 64 KiB bursts, so "10% loss" means what it says.
nf_net_setup() {
	ip netns add "$ns" &&
	ip link add "$veth_c" type veth peer name "$veth_s" &&
	ip link set "$veth_s" netns "$ns" &&
	ip link set "$veth_c" gso_max_segs 1 &&
	ip -n "$ns" link set "$veth_s" gso_max_segs 1 &&
	ip addr add "$ip_c/24" dev "$veth_c" &&
	ip -n "$ns" addr add "$ip_s/24" dev "$veth_s" &&
	ip link set "$veth_c" up &&
	ip -n "$ns" link set lo up &&
	ip -n "$ns" link set "$veth_s" up
}

# Loss on both directions: each end's egress.
loss_on() {	# loss_on PERCENT
	tc qdisc add dev "$veth_c" root netem loss "$1%" &&
	tc -n "$ns" qdisc add dev "$veth_s" root netem loss "$1%"
}

loss_off() {
	tc qdisc del dev "$veth_c" root
	tc -n "$ns" qdisc del dev "$veth_s" root
}

# Packets netem dropped and sent on the client's end and the server's:
# "DROPPED_C SENT_C DROPPED_S SENT_S".
loss_counts() {
	local c s
	c=$(tc -s qdisc show dev "$veth_c" root)
	s=$(tc -n "$ns" -s qdisc show dev "$veth_s" root)
	printf '%s %s\n' \
		"$(sed -n 's/.*Sent [0-9]* bytes \([0-9]*\) pkt (dropped \([0-9]*\),.*/\2 \1/p' <<< "$c")" \
		"$(sed -n 's/.*Sent [0-9]* bytes \([0-9]*\) pkt (dropped \([0-9]*\),.*/\2 \1/p' <<< "$s")"
}

# The server's cable pulled: its end goes down, so the client's end loses
# carrier and drops what it would send. An established connection hears
# nothing more; a new one fails with "No route to host" once the
# neighbour entry of the server has expired.
part_on() { ip -n "$ns" link set "$veth_s" down; }
part_off() { ip -n "$ns" link set "$veth_s" up; }

# spawn_srv LOG CMD...: a server process in the namespace, in a process
# group of its own (websockify forks per connection), to be killed on
# purpose: no "Killed" line from bash in the TAP (nothing waits for it).
spawn_srv() {
	local log=$1
	shift
	setsid ip netns exec "$ns" "$@" >> "$log" 2>&1 &
	srv_pids+=("$!")
	disown "$!"
}

# spawn LOG CMD...: a helper in the VM's namespace, its own process group.
spawn() {
	local log=$1
	shift
	setsid "$@" > "$log" 2>&1 &
	last_pid=$!
	pids+=("$last_pid")
}

# listening PORT SECONDS: something in the namespace listens on PORT.
# (Asks the kernel rather than connecting: a probe connection would be a
# client of its own that the server has to deal with.)
listening() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		[ -n "$(ip netns exec "$ns" ss -Hltn "sport = :$1")" ] && return 0
		sleep 0.2
	done
	echo "nothing listens on port $1 in $ns after ${2}s"
	return 1
}

# A self-signed certificate for the server's address, verified by
# nbdctl with --cafile (no "insecure" shortcut).
make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -days 1 -subj "/CN=$ip_s" \
		-addext "subjectAltName=IP:$ip_s" \
		-keyout "$tmp/key.pem" -out "$tmp/cert.pem" > "$tmp/openssl.log" 2>&1
}

# server_start KIND IMAGE: nbdkit's file plugin on IMAGE, every write
# delayed 50 ms (so a 2 MiB dd in 64 KiB writes lasts 1.6 s or more and
# a fault lands in the middle of it even when starting `ip` is slow), reached as KIND: nbd (nbdkit on TCP),
# ws or wss (websockify on TCP, nbdkit on a unix socket behind it).
# Returns once the server listens.
server_start() {
	local kind=$1 img=$2 nbdkit=(nbdkit -f --filter=delay)
	srv_pids=()
	case "$kind" in
	nbd)
		spawn_srv "$tmp/server.log" "${nbdkit[@]}" -i "$ip_s" -p "$port" \
			file "$img" wdelay=50ms
		;;
	ws|wss)
		rm -f "$tmp/nbd.sock"
		spawn_srv "$tmp/server.log" "${nbdkit[@]}" -U "$tmp/nbd.sock" \
			file "$img" wdelay=50ms
		local tls=()
		[ "$kind" = wss ] &&
			tls=(--ssl-only "--cert=$tmp/cert.pem" "--key=$tmp/key.pem")
		spawn_srv "$tmp/server.log" "$python" /usr/bin/websockify "${tls[@]}" \
			"--unix-target=$tmp/nbd.sock" "$ip_s:$port"
		;;
	esac
	# websockify imports numpy: over 9p, under TCG, on a loaded host,
	# that alone has taken over a minute.
	listening "$port" 180
}

# server_kill: every server process, at once (SIGKILL: no goodbye to the
# client, as when a server crashes).
server_kill() {
	local p
	for p in "${srv_pids[@]}"; do
		kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
	done
	srv_pids=()
}

# The URI and nbdctl options that reach the server as KIND.
server_uri() {	# server_uri KIND
	case "$1" in
	nbd) echo "nbd://$ip_s:$port" ;;
	ws) echo "ws://$ip_s:$port/" ;;
	wss) echo "wss://$ip_s:$port/" ;;
	esac
}

# Bytes written to DEV and completed, from the block layer's counters.
written() {	# written DEV
	local s
	read -r _ _ _ _ _ _ s _ < "/sys/block/${1#/dev/}/stat" || s=0
	echo $((s * 512))
}

# "TIMEOUTS RECONNECTS" summed over DEV's connections, from nbdctl
# status (the text form: the last two columns of the connection rows);
# nothing when status fails.
conn_stats() {	# conn_stats DEV
	"$nbdctl" status "$1" 2>/dev/null | awk '
		$1 == "CONN" { rows = 1; next }
		rows { t += $(NF - 1); r += $NF }
		END { if (rows) print t, r }'
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
