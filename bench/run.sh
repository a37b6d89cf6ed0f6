#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nbdws vs nbd.ko benchmark (issue 3): boots one VM for one kernel, runs
# bench/guest.sh in it and prints the table, also written to
# build/bench/results-KVER.txt and .json. See bench/README.md.
#
#   run.sh [--kernel NAME|KVER] [--runtime SEC] [--size SIZE]
#          [--clients "nbd nbdws"] [--servers "memory null"] [--conns "1 4"]
#          [--rows "NAME ..."] [--repeat N] [--transport tcp|unix]
#          [--timeout SEC] [--ws] [--relay] [--latency] [--perf] [--report-only]
#   --ws = --clients "nbdws-plain nbdws-ws-server nbdws-ws-client nbdws-wss"
#   --relay = --clients "relay-ws relay-fb-ws proxy-ws relay-wss
#          relay-fb-wss proxy-wss" --conns 1 (issue 14); --latency adds
#          the 25 ms netem row (relay fast path vs the nbd-proxy shape)
#   --perf profiles every row with perf record (where the CPU goes; the
#          sampling distorts the figures, so never a run to compare speed)
#
# Not a test: nothing here asserts a timing. It exits non-zero when a
# client, a server or a row could not be set up or fio failed.
# BENCH_NBDCTL=PATH benchmarks another nbdctl build (default build/nbdctl).
set -euo pipefail

# The whole script is one compound command: bash parses it completely
# before running it, so editing this file during a run cannot break it.
{
top=$(cd "$(dirname "$0")/.." && pwd)
kernel='' runtime=10 size=256M clients="nbd nbdws" servers="memory null"
conns="1 4" rows='' repeat=1 transport=tcp timeout='' report_only='' perf=''
latency=''
usage() {
	sed -n '7,17p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || case "$1" in --report-only|--ws|--relay|--latency|--perf) ;; *) usage ;; esac
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--clients) clients=${2//,/ }; shift 2 ;;
	--servers) servers=${2//,/ }; shift 2 ;;
	--conns) conns=${2//,/ }; shift 2 ;;
	--rows) rows=${2//,/ }; shift 2 ;;
	--repeat) repeat=$2; shift 2 ;;
	--transport) transport=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--report-only) report_only=1; shift ;;
	--perf) perf=1; shift ;;
	--ws) clients="nbdws-plain nbdws-ws-server nbdws-ws-client nbdws-wss"
		shift ;;
	--relay) clients="relay-ws relay-fb-ws proxy-ws relay-wss relay-fb-wss proxy-wss"
		conns=1; shift ;;
	--latency) latency=1; shift ;;
	*) usage ;;
	esac
done
case "$transport" in tcp|unix) ;; *) usage ;; esac
# The guest runs the host's perf (the host's root is its root).
if [ -n "$perf" ] && ! command -v perf > /dev/null; then
	echo "bench: --perf needs perf (apt-get install linux-perf)" >&2
	exit 2
fi
[[ "$runtime" =~ ^[1-9][0-9]*$ ]] || usage
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || usage
# nbdws-*: nbdws.ko against the bench's C peer (build/ws_nbd_peer), TCP only.
peer_clients=''
for c in $clients; do
	case "$c" in
	nbd|nbdws) ;;
	nbdws-plain|nbdws-ws-server|nbdws-ws-client|nbdws-wss)
		peer_clients="$peer_clients $c" ;;
	relay-ws|relay-wss|relay-fb-ws|relay-fb-wss|proxy-ws|proxy-wss)
		peer_clients="$peer_clients $c" relay_clients=1 ;;
	*) usage ;;
	esac
done
# One WebSocket per relay slot (and per nbd-proxy): one connection.
if [ -n "${relay_clients:-}" ] && [ "$conns" != 1 ]; then
	echo "bench: the relay rows take one connection (--conns 1)" >&2
	exit 2
fi
if [ -n "$latency" ] && [ -z "${relay_clients:-}" ]; then
	echo "bench: --latency goes with the relay rows (--relay)" >&2
	exit 2
fi
if [ -n "$peer_clients" ] && [ "$transport" != tcp ]; then
	echo "bench: the nbdws-* clients run over TCP only (no --transport unix)" >&2
	exit 2
fi
for s in $servers; do case "$s" in memory|null) ;; *) usage ;; esac; done
for n in $conns; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || usage; done

list="$top/build/kernels.list"
[ -f "$list" ] || "$top/scripts/install-deps.sh"
kver=$(awk -v k="$kernel" 'k == "" || $1 == k || $2 == k { print $2; exit }' "$list")
[ -n "$kver" ] || { echo "bench: unknown kernel '$kernel' (see $list)" >&2; exit 2; }

# Runs with the WebSocket clients keep their own folder and results, so
# they never replace the nbd.ko-vs-nbdws results of the same kernel.
tag=$kver
[ -z "$peer_clients" ] || tag=$kver-ws
[ -z "${relay_clients:-}" ] || tag=$kver-relay
out="$top/build/bench/$tag"
py=/usr/bin/python3
report() {
	"$py" "$top/bench/report.py" --records "$out/records.jsonl" \
		--rows "$out/scripts/rows.txt" --host-meta "$out/host.json" \
		--txt "$top/build/bench/results-$tag.txt" \
		--json "$top/build/bench/results-$tag.json"
}
if [ -n "$report_only" ]; then
	[ -f "$out/host.json" ] || { echo "bench: no run for $tag to report" >&2; exit 1; }
	report
	exit
fi

rm -rf "$out"
mkdir -p "$out/scripts"
# The guest runs a snapshot of the bench scripts: bash reads a script as
# it goes, so editing bench/ during a run would otherwise break it.
cp "$top/bench/guest.sh" "$top/bench/measure.py" "$top/bench/rows.txt" \
	"$top/bench/latency_sample.py" \
	"$out/scripts/"

# The bench measures the tree as it is: make rebuilds whatever is older
# than its sources (nbdctl, the peer and ws_attach), and a failed build
# stops the run rather than let it measure a stale binary.
if ! make -C "$top" -s tools bench-tools > "$out/make.log" 2>&1; then
	echo "bench: make tools bench-tools failed (build/bench/$tag/make.log)" >&2
	exit 1
fi

# nbdws.ko, built in a staging folder of the bench's own so a build here
# never races one for the selftests. A module that does not build (or a
# missing nbdctl) makes the nbdws rows "not run", and the bench fail.
unavailable=
ko="$out/module/src/nbdws.ko"
nbdctl=${BENCH_NBDCTL:-$top/build/nbdctl}
case " $clients " in
*" nbdws"*|*" relay-"*)
	if [ ! -x "$nbdctl" ]; then
		unavailable="$nbdctl is missing (make tools)"
	elif ! "$top/scripts/build-module.sh" --kdir "/lib/modules/$kver/build" \
		--out "$out/module" --log "$out/module-build.log" >/dev/null 2>&1 ||
	     [ ! -f "$ko" ]; then
		unavailable="nbdws.ko did not build for $kver (build/bench/$tag/module-build.log)"
	fi
	[ -z "$unavailable" ] || echo "bench: nbdws unavailable: $unavailable" >&2
	;;
esac

# The WebSocket clients' server side: the bench's own NBD peer, the
# ws-server attach program and, for wss, a throwaway certificate for
# 127.0.0.1 (nbdctl verifies it with --cafile).
peer=$top/build/ws_nbd_peer attach=$top/build/ws_attach
peer_unavailable=
if [ -n "$peer_clients" ]; then
	# make bench-tools above built $peer and $attach.
	if ! mkdir -p "$out/tls" || ! openssl req -x509 -newkey ec \
		-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$out/tls/key.pem" -out "$out/tls/cert.pem" \
		> "$out/tls/openssl.log" 2>&1; then
		peer_unavailable="openssl could not make the wss certificate (build/bench/$tag/tls/openssl.log)"
	fi
	[ -z "$peer_unavailable" ] || echo "bench: WebSocket clients unavailable: $peer_unavailable" >&2
fi

nrows=$(grep -cv -e '^#' -e '^[[:space:]]*$' "$out/scripts/rows.txt")
[ -z "$rows" ] || nrows=$(wc -w <<< "$rows")
groups=$(( $(wc -w <<< "$servers") * $(wc -w <<< "$conns") ))
runs=$(( groups * nrows * $(wc -w <<< "$clients") * repeat ))
# Generous for TCG on a busy host: 20 s per fio job on top of its
# runtime, a minute per group for connecting, five for boot and servers.
# A profiled row also starts and stops perf and writes its report.
perf_s=0
[ -z "$perf" ] || perf_s=60
# The latency row reads 256 MiB four times over a 50 ms round trip
# (fio and dd on each device; dd on nbd.ko took 94 s under load).
lat_s=0
[ -z "$latency" ] || lat_s=600
timeout=${timeout:-$(( 300 + groups * 60 * (1 + $(wc -w <<< "$peer_clients")) +
	runs * (runtime + 20 + perf_s) + lat_s ))}

# What was asked for, for the report (values through the environment,
# never pasted into the program).
B_KVER=$kver B_RUNTIME=$runtime B_SIZE=$size B_TRANSPORT=$transport \
B_REPEAT=$repeat B_ROWS=$rows B_CLIENTS=$clients B_SERVERS=$servers \
B_CONNS=$conns B_PERF=$perf B_UNAVAILABLE=$unavailable B_PEER_UNAVAILABLE=$peer_unavailable \
B_ACCEL_FILE="$top/build/vm/accel" \
"$py" - "$out/host.json" <<'PYEOF'
import json, os, sys, time
e = os.environ
accel = "?"
if os.path.exists(e["B_ACCEL_FILE"]):
    accel = open(e["B_ACCEL_FILE"]).read().strip()
json.dump({"kver": e["B_KVER"], "accel": accel,
           "loadavg_before": open("/proc/loadavg").read().split()[0],
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "runtime_s": int(e["B_RUNTIME"]), "size": e["B_SIZE"],
           "transport": e["B_TRANSPORT"], "repeat": int(e["B_REPEAT"]),
           "rows": e["B_ROWS"].split(), "clients": e["B_CLIENTS"].split(),
           "servers": e["B_SERVERS"].split(),
           "conns": [int(c) for c in e["B_CONNS"].split()],
           "profiled": bool(e["B_PERF"]),
           "nbdws_unavailable": e["B_UNAVAILABLE"] or None,
           "peer_unavailable": e["B_PEER_UNAVAILABLE"] or None},
          open(sys.argv[1], "w"), indent=1)
PYEOF

{
	echo "export NBDWS_TOP='$top' NBDWS_KO='$ko' NBDCTL='$nbdctl'"
	echo "export BENCH_OUT='$out' BENCH_RUNTIME='$runtime' BENCH_SIZE='$size'"
	echo "export BENCH_CLIENTS='$clients' BENCH_SERVERS='$servers'"
	echo "export BENCH_CONNS='$conns' BENCH_ROWS='$rows' BENCH_TRANSPORT='$transport'"
	echo "export BENCH_REPEAT='$repeat' BENCH_PERF='$perf' BENCH_LATENCY='$latency'"
	echo "export BENCH_RELAY='$top/build/nbdws-relay' BENCH_PROXY='$top/build/ws_proxy'"
	printf 'export NBDWS_UNAVAILABLE=%q\n' "$unavailable"
	echo "export BENCH_PEER='$peer' BENCH_ATTACH='$attach' BENCH_TLS_DIR='$out/tls'"
	printf 'export PEER_UNAVAILABLE=%q\n' "$peer_unavailable"
	echo "export BENCH_SCRIPTS='$out/scripts'"
	echo "exec bash '$out/scripts/guest.sh'"
} > "$out/job.sh"

echo "bench: $kver: $runs fio runs of ${runtime}s in one VM (limit ${timeout}s);" \
	"progress in build/bench/$tag/guest.log" >&2
# How much of the host's CPU went to other work while the VM ran: the
# host's busy time from /proc/stat minus what our children (qemu) used.
host_cpu() {
	echo "$(date +%s.%N) $(head -n 1 /proc/stat | cut -d' ' -f2-)" \
		"$(cut -d' ' -f16,17 /proc/$$/stat)"
}
cpu_before=$(host_cpu)
vm_rc=0
"$top/scripts/vm.sh" --kernel "$kver" --no-module --mem 4096 \
	--timeout "$timeout" --job "$out/job.sh" --out "$out/vm" || vm_rc=$?
cpu_after=$(host_cpu)

"$py" - "$out/host.json" "$cpu_before" "$cpu_after" <<'PYEOF'
import json, os, sys
h = json.load(open(sys.argv[1]))
h["loadavg_after"] = open("/proc/loadavg").read().split()[0]
b, a = ([float(v) for v in x.split()] for x in sys.argv[2:4])
hz = os.sysconf("SC_CLK_TCK")
# user nice system idle iowait irq softirq steal, then our children's
# utime and stime.
busy = lambda v: sum(v[i] for i in (1, 2, 3, 6, 7, 8))
wall = a[0] - b[0]
vm = (sum(a[-2:]) - sum(b[-2:])) / hz
host_busy = (busy(a) - busy(b)) / hz
h["host_cpu"] = {"wall_s": round(wall, 1), "cores": os.cpu_count(),
                 "busy_s": round(host_busy, 1), "vm_s": round(vm, 1),
                 "others_s": round(max(host_busy - vm, 0), 1)}
json.dump(h, open(sys.argv[1], "w"), indent=1)
PYEOF

rc=0
report || rc=$?
if [ "$vm_rc" != 0 ] || [ ! -f "$out/guest.rc" ]; then
	echo "bench: the VM did not complete the bench (vm.sh exit $vm_rc;" \
		"console: build/bench/$tag/vm/console.log)" >&2
	rc=1
fi
if grep -q -E 'BUG|WARNING:|Oops|Call Trace|hung_task|blocked for more' \
	"$out/dmesg.txt" 2>/dev/null; then
	echo "bench: the guest's dmesg has a kernel warning or oops (build/bench/$tag/dmesg.txt)" >&2
	rc=1
fi
exit "$rc"
}
