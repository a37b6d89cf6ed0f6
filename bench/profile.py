#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Compare where the CPU went per GiB moved, client against client.

Reads a profiled bench run (run.sh --perf): records.jsonl and the flat
per-job profiles measure.py wrote. For every (server, connections, row)
group it sums each symbol's samples over the repetitions of each client,
turns them into CPU milliseconds per GiB moved (one sample is 1/HZ s of
one CPU) and prints the symbols whose cost differs most between the
first client and each other one. Per GiB, because the clients move
different amounts of data in the same time: a percentage of a profile
says where one client's time went, not what one client costs more than
another.

    profile.py [--top N] BENCH_OUT_DIR
"""
import argparse
import collections
import json
import os
import re
import sys

# "  35.75%   1829  [kernel.kallsyms]  [k] copy_user_enhanced_fast_string"
LINE = re.compile(r"^\s*[\d.]+%\s+(\d+)\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$")
# The guest's idle loop: samples here are waiting, not work.
IDLE = {"native_safe_halt", "pv_native_safe_halt", "default_idle",
        "amd_e400_idle", "acpi_idle_do_entry", "cpu_idle_poll",
        "mwait_idle_with_hints"}
# perf names the kernel's object [kernel.kallsyms] or [kernel.vmlinux].
KERNEL = ("[kernel.kallsyms]", "[kernel.vmlinux]")


def load_profile(path):
    """{(dso, symbol): samples} of one flat profile."""
    samples = collections.Counter()
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                n, dso, _, sym = m.groups()
                samples[(os.path.basename(dso), sym)] += int(n)
    return samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=15,
                    help="symbols per comparison (default 15)")
    ap.add_argument("out", help="build/bench/TAG of a run.sh --perf run")
    args = ap.parse_args()

    # The first client of the run is the base of every comparison; the
    # records alternate the clients' order from row to row.
    order = []
    try:
        with open(os.path.join(args.out, "host.json")) as f:
            order = json.load(f).get("clients", [])
    except (OSError, ValueError):
        pass
    groups = collections.OrderedDict()
    hz = None
    with open(os.path.join(args.out, "records.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("kind") != "row" or r.get("status") != "ok" or \
                    not r.get("profile"):
                continue
            hz = hz or r.get("perf_hz")
            key = (r["server"], r["conns"], r["row"])
            g = groups.setdefault(key, collections.OrderedDict())
            c = g.setdefault(r["client"], [collections.Counter(), 0])
            c[0].update(load_profile(os.path.join(args.out, r["profile"])))
            c[1] += r["io_bytes"]
    if not groups or not hz:
        sys.exit("%s: no profiled rows (run bench/run.sh with --perf)"
                 % args.out)

    for (server, conns, row), clients in groups.items():
        names = sorted(clients, key=lambda c: (order.index(c)
                                               if c in order else len(order)))
        print("%s, %s connection(s), %s: CPU ms per GiB moved, summed over "
              "the repetitions (one sample = %.1f ms)"
              % (server, conns, row, 1000.0 / hz))
        cost = {}
        for c in names:
            samples, nbytes = clients[c]
            per_gib = 1000.0 / hz / (nbytes / 2**30)
            cost[c] = {k: n * per_gib for k, n in samples.items()}
        base = names[0]
        for other in names[1:]:
            a, b = cost[base], cost[other]
            print("  %-44s %10s %10s %9s" % ("symbol", base[:10], other[:10],
                                             "delta"))
            for label, pick in (("all work", lambda k: k[1] not in IDLE),
                                ("idle", lambda k: k[1] in IDLE)):
                sa = sum(v for k, v in a.items() if pick(k))
                sb = sum(v for k, v in b.items() if pick(k))
                print("  %-44s %10.0f %10.0f %+9.0f" % ("= " + label, sa, sb,
                                                        sb - sa))
            keys = sorted((k for k in set(a) | set(b) if k[1] not in IDLE),
                          key=lambda k: -abs(b.get(k, 0) - a.get(k, 0)))
            for k in keys[:args.top]:
                name = "%s %s" % (k[1], "" if k[0] in KERNEL
                                  else "(%s)" % k[0])
                print("  %-44s %10.0f %10.0f %+9.0f"
                      % (name.strip()[:44], a.get(k, 0), b.get(k, 0),
                         b.get(k, 0) - a.get(k, 0)))
        print()


if __name__ == "__main__":
    main()
