#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the bench's guest records into the results table and JSON.

Reads the JSON-lines records bench/guest.sh wrote (one per measurement,
per row that could not run, per device and server) and the host's facts
(host.json: what was asked for, load, CPU used by other work), prints the
table, writes it to --txt and everything to --json. With repetitions
each figure is the median of its runs and the spread column shows how far
they were apart. Exits 1 when any requested client or row could not run
or failed, so `make bench` fails loudly; the table still shows everything
that did run.
"""
import argparse
import json
import os
import statistics
import sys

CLIENT_NAMES = {"nbd": "nbd.ko", "nbdws": "nbdws",
                "nbdws-plain": "plain", "nbdws-ws-server": "ws server",
                "nbdws-ws-client": "ws client", "nbdws-wss": "wss kTLS",
                "relay-ws": "(a) relay ws", "relay-fb-ws": "(b) fallback ws",
                "proxy-ws": "(c) proxy ws", "relay-wss": "(a) relay wss",
                "relay-fb-wss": "(b) fallback wss",
                "proxy-wss": "(c) proxy wss"}
# The clients served by nbdkit (nbd.ko vs nbdws table) and those served by
# the bench's C peer (transport table: ratios to nbdws-plain).
NBDKIT_CLIENTS = ("nbd", "nbdws")
PEER_BASE = "nbdws-plain"
# Issue 4's target for ws-server/plain IOPS, shown, never asserted.
TARGET_WS_SERVER = 0.9
# Issue 3's targets for nbdws/nbd.ko IOPS, shown, never asserted.
TARGET_QD32 = 1.3
TARGET_OTHER = 1.0
# Issue 14's relay rows: (a) the relay's fast path into nbdws.ko, (b) its
# userspace framing into nbdws.ko, (c) the nbd-proxy shape into nbd.ko.
# Ratios (a)/(c) against issue 14's targets, and (a)/(b), per scheme.
RELAY_CLIENTS = ("relay-ws", "relay-fb-ws", "proxy-ws",
                 "relay-wss", "relay-fb-wss", "proxy-wss")
TARGET_RELAY_1M = 2.5	# (a)/(c) throughput, 1 MiB reads
TARGET_RELAY_4K = 2.0	# (a)/(c) IOPS, 4 KiB QD32
TARGET_RELAY_LATENCY = 4.0	# (a)/(c), 256 MiB read over 25 ms netem

# Above this share of the host's CPU going to other work, say that the
# figures are not to be trusted.
BUSY_HOST_SHARE = 0.25


def load_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if fields:
                name, rw, bs, qd = fields
                rows.append({"name": name, "rw": rw, "bs": bs,
                             "iodepth": int(qd),
                             "label": "%s %s QD%s" % (bs, rw, qd)})
    return rows


def load_records(path):
    recs = []
    if os.path.exists(path):
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    recs.append({"kind": "setup", "status": "error",
                                 "reason": "unreadable record line %d" % n})
    return recs


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


class Notes:
    """Numbered footnotes for the reasons a cell is empty."""

    def __init__(self):
        self.items = []

    def ref(self, text):
        text = " ".join(text.split())
        if text not in self.items:
            self.items.append(text)
        return "(%d)" % (self.items.index(text) + 1)


def summarize(runs):
    """Median of each figure over the repetitions, and their IOPS spread."""
    med = {k: statistics.median(r[k] for r in runs)
           for k in ("iops", "mib_s", "cpu_s_per_gib")}
    iops = [r["iops"] for r in runs]
    med["runs"] = len(runs)
    med["iops_all"] = iops
    med["cpu_s_per_gib_all"] = [r["cpu_s_per_gib"] for r in runs]
    # (max - min) / median, in percent.
    med["iops_spread_pct"] = (100 * (max(iops) - min(iops)) / med["iops"]
                              if med["iops"] else None)
    return med


def paired_ratios(a_runs, b_runs):
    """nbdws/nbd.ko ratios: the median, over repetitions, of the ratio
    within each repetition. The two clients of one repetition ran back to
    back, so they saw about the same host load; a ratio of medians would
    mix runs from different moments."""
    a = {r.get("rep", 0): r for r in a_runs if r.get("status") == "ok"}
    b = {r.get("rep", 0): r for r in b_runs if r.get("status") == "ok"}
    reps = sorted(set(a) & set(b))
    iops = [ratio(a[k]["iops"], b[k]["iops"]) for k in reps]
    cpu = [ratio(a[k]["cpu_s_per_gib"], b[k]["cpu_s_per_gib"]) for k in reps]
    iops = [v for v in iops if v is not None]
    cpu = [v for v in cpu if v is not None]
    return (statistics.median(iops) if iops else None,
            statistics.median(cpu) if cpu else None)


def header(meta, host):
    out = []
    g = lambda k, d="?": meta.get(k, host.get(k, d))
    out.append("nbdws bench: fio libaio direct=1, %s s per row%s, region %s, "
               "transport %s" % (g("runtime_s"),
                                 (", median of %s runs" % g("repeat"))
                                 if int(g("repeat", 1)) > 1 else "",
                                 g("size"), g("transport")))
    out.append("guest: kernel %s, %s vCPUs, %s MiB, accel %s; %s; %s"
               % (g("kernel", host.get("kver", "?")), meta.get("cpus", "?"),
                  meta["mem_kib"] // 1024 if "mem_kib" in meta else "?",
                  host.get("accel", "?"), meta.get("fio", "fio ?"),
                  meta.get("nbdkit", "nbdkit ?")))
    crypto = meta.get("crypto")
    if crypto:
        out.append("guest kernel crypto (/proc/crypto): aes %s, gcm(aes) %s"
                   % (crypto.get("aes", "?"), crypto.get("gcm_aes", "?")))
    hc = host.get("host_cpu")
    if hc:
        out.append("host: %s cores, load average %s before, %s after; "
                   "during the run the VM used %.0f CPU-s and other work "
                   "%.0f CPU-s of %.0f available" %
                   (hc["cores"], host.get("loadavg_before", "?"),
                    host.get("loadavg_after", "?"), hc["vm_s"],
                    hc["others_s"], hc["cores"] * hc["wall_s"]))
        share = hc["others_s"] / (hc["cores"] * hc["wall_s"] or 1)
        if share > BUSY_HOST_SHARE:
            out.append("WARNING: other work took %.0f%% of the host's CPU "
                       "during the run; the VM's vCPUs were starved and "
                       "the figures are noisy: rerun on a quiet host "
                       "(or with --repeat) before trusting a ratio"
                       % (100 * share))
    if host.get("profiled"):
        out.append("PROFILED: perf record sampled every row (profiles: "
                   "fio-SERVER-CONNS/*.perf.txt); its cost is inside the "
                   "figures, which say where the CPU went, not how fast")
    out.append("CPU-s/GiB: guest CPU seconds (all vCPUs: user+nice+system+"
               "irq+softirq+steal) per GiB moved; lower is better")
    clients = host.get("clients", list(NBDKIT_CLIENTS))
    rep_note = ("; with repetitions, the median of each repetition's "
                "ratio" if int(g("repeat", 1)) > 1 else "")
    if any(c in NBDKIT_CLIENTS for c in clients):
        out.append("ratios: nbdws/nbd.ko; IOPS x > 1 and CPU x < 1 favour "
                   "nbdws" + rep_note)
    if any(c not in NBDKIT_CLIENTS for c in clients):
        out.append("transport tables: nbdws.ko against the bench's C NBD "
                   "peer (ws_nbd_peer) over plain TCP, WebSocket (kernel "
                   "as ws server / ws client) and wss with kTLS; ratios "
                   "x are to plain in the same group" + rep_note)
    return out


def cell_runs(ctx, s, n, row, c):
    """(summary or None, text for a cell that has no figures)."""
    notes = ctx["notes"]
    runs = ctx["groups"].get((s, n, row, c), [])
    bad = [r for r in runs if r.get("status") != "ok"]
    if not runs:
        return None, "missing " + notes.ref("no record: the guest stopped "
                                            "before this row")
    if bad:
        word = "FAILED" if any(r.get("status") == "error" for r in bad) \
            else "not run"
        return None, word + " " + notes.ref("%s: %s" % (
            c, bad[0].get("reason", "?")))
    if len(runs) < ctx["repeat"]:
        return None, "missing " + notes.ref("fewer runs than asked for: "
                                            "the guest stopped early")
    ctx["measured"][c] += 1
    return summarize(runs), None


def devices_text(devs):
    """What explains many differences between two clients' rows: each
    device's hardware queues, request size limit and I/O scheduler (each
    driver's own default; nbdws attaches none to a non-rotational export)."""
    return "; ".join("%s %s: %s hw queues, max_sectors_kb %s, scheduler %s" %
                     (CLIENT_NAMES.get(d["client"], d["client"]),
                      d["device"], d["hw_queues"], d["max_sectors_kb"],
                      d.get("scheduler", "?"))
                     for d in devs)


def peer_group(ctx, s, n, clients):
    """One transport table: each client's IOPS and CPU-s/GiB, and for
    every client but plain its ratios to plain (same peer, same conns)."""
    out = [""]
    devs = [d for d in ctx["devices"] if d.get("server") == s and
            int(d.get("conns", 0)) == n and d["client"] in clients]
    devtxt = devices_text(devs)
    out.append("C peer %s, %d connection%s, nbdws.ko%s" %
               (s, n, "" if n == 1 else "s",
                (" (" + devtxt + ")") if devtxt else ""))
    spread_col = ctx["repeat"] > 1
    base = PEER_BASE in clients
    widths = {c: 18 if c == PEER_BASE or not base else 32 for c in clients}
    out.append("%-19s %s%s" % ("", " ".join(
        "| %-*s" % (widths[c], CLIENT_NAMES.get(c, c)) for c in clients),
        " | ws server" if base and "nbdws-ws-server" in clients else ""))
    sub = []
    for c in clients:
        t = "%8s %9s" % ("IOPS", "CPU-s/GiB")
        if widths[c] > 18:
            t += " %6s %6s" % ("IOPS x", "CPU x")
        sub.append("| %-*s" % (widths[c], t))
    out.append("%-19s %s%s%s" % (
        "row", " ".join(sub),
        " | target  " if base and "nbdws-ws-server" in clients else "",
        " spread" if spread_col else ""))
    for row in ctx["rows"]:
        vals, cells, ratios = {}, [], {}
        for c in clients:
            vals[c], why = cell_runs(ctx, s, n, row["name"], c)
            if vals[c] is None:
                cells.append("| %-*s" % (widths[c], why))
                continue
            t = "%8.0f %9.2f" % (vals[c]["iops"], vals[c]["cpu_s_per_gib"])
            if widths[c] > 18:
                ix, cx = (None, None)
                if vals.get(PEER_BASE) is not None:
                    ix, cx = paired_ratios(
                        ctx["groups"].get((s, n, row["name"], c), []),
                        ctx["groups"].get((s, n, row["name"], PEER_BASE), []))
                ratios[c] = {"iops_ratio": ix, "cpu_per_gib_ratio": cx}
                t += " %6s %6s" % (fmt(ix, ".2f"), fmt(cx, ".2f"))
            cells.append("| %-*s" % (widths[c], t))
        target = ""
        if base and "nbdws-ws-server" in clients:
            ix = ratios.get("nbdws-ws-server", {}).get("iops_ratio")
            target = " | -"
            if ix is not None:
                ok = ix >= TARGET_WS_SERVER
                target = " | >=%.1f %s" % (TARGET_WS_SERVER,
                                           "ok" if ok else "SHORT")
                if not ok:
                    ctx["short"].append("ws-server %s/%d/%s" %
                                        (s, n, row["name"]))
            target = "%-11s" % target
        spread = ""
        if spread_col:
            sp = [v["iops_spread_pct"] for v in vals.values()
                  if v and v["iops_spread_pct"] is not None]
            spread = " %5.0f%%" % max(sp) if sp else "      -"
        out.append("%-19s %s%s%s" % (row["label"], " ".join(cells), target,
                                     spread))
        ctx["table"].append({"server": s, "conns": n, "row": row["name"],
                             "label": row["label"], "peer": True,
                             "clients": vals, "ratios_to_plain": ratios,
                             "ws_server_iops_target": TARGET_WS_SERVER})
    return out


def relay_group(ctx, s, n, clients):
    """The relay table: each client's IOPS, MiB/s, CPU-s/GiB, then per
    scheme the ratios (a)/(c) with issue 14's targets and (a)/(b)."""
    out = [""]
    devs = [d for d in ctx["devices"] if d.get("server") == s and
            int(d.get("conns", 0)) == n and d["client"] in clients]
    devtxt = devices_text(devs)
    out.append("relay rows, C peer %s as the browser, %d connection%s%s" %
               (s, n, "" if n == 1 else "s",
                (" (" + devtxt + ")") if devtxt else ""))
    out.append("%-19s %s" % ("", " ".join("| %-31s" % CLIENT_NAMES.get(c, c)
                                          for c in clients)))
    out.append("%-19s %s" % ("row", " ".join(
        "| %8s %8s %11s  " % ("IOPS", "MiB/s", "CPU-s/GiB")
        for _ in clients)))
    ratio_lines = []
    for row in ctx["rows"]:
        vals, cells = {}, []
        for c in clients:
            vals[c], why = cell_runs(ctx, s, n, row["name"], c)
            if vals[c] is None:
                cells.append("| %-31s" % why)
                continue
            cells.append("| %8.0f %8.1f %11.2f  " % (
                vals[c]["iops"], vals[c]["mib_s"], vals[c]["cpu_s_per_gib"]))
        out.append("%-19s %s" % (row["label"], " ".join(cells)))
        ratios = {}
        for scheme in ("ws", "wss"):
            a, b, c = ("relay-" + scheme, "relay-fb-" + scheme,
                       "proxy-" + scheme)
            for name, x, y in (("a/c", a, c), ("a/b", a, b)):
                if vals.get(x) is None or vals.get(y) is None:
                    continue
                ix, cx = paired_ratios(
                    ctx["groups"].get((s, n, row["name"], x), []),
                    ctx["groups"].get((s, n, row["name"], y), []))
                verdict = ""
                if name == "a/c" and ix is not None and \
                        row["name"] in ("1m-read-qd8", "4k-randread-qd32"):
                    t = TARGET_RELAY_1M if row["bs"] == "1m" \
                        else TARGET_RELAY_4K
                    verdict = " target >=%.1f %s" % (
                        t, "ok" if ix >= t else "SHORT")
                    if ix < t:
                        ctx["short_relay"].append("%s %s %s" % (
                            scheme, name, row["name"]))
                ratios["%s %s" % (scheme, name)] = {
                    "iops_ratio": ix, "cpu_per_gib_ratio": cx}
                ratio_lines.append("%-19s %-3s %s: IOPS x %s, CPU x %s%s" % (
                    row["label"], scheme, name, fmt(ix, ".2f"),
                    fmt(cx, ".2f"), verdict))
        ctx["table"].append({"server": s, "conns": n, "row": row["name"],
                             "label": row["label"], "relay": True,
                             "clients": vals, "ratios": ratios})
    if ratio_lines:
        out.append("")
        out.extend(ratio_lines)
    return out


def limits_text(r):
    """What capped a latency-row read: the queue limits and the peaks of
    requests in flight and of the TCP state sampled during it."""
    def kib(k):
        v = r.get(k)
        return "?" if v is None else "%d" % (int(v) // 1024)
    return ("      queue: max_sectors_kb %s, nr_requests %s, read_ahead_kb "
            "%s; peaks: %s requests in flight, sender cwnd %s x mss %s, "
            "unacked %s KiB, window offered %s KiB, receiver Recv-Q %s KiB"
            % (r.get("max_sectors_kb", "?"), r.get("nr_requests", "?"),
               r.get("read_ahead_kb", "?"), r.get("inflight_reads", "?"),
               r.get("peer_cwnd", "?"), r.get("peer_mss", "?"),
               kib("peer_unacked_bytes"), kib("peer_snd_wnd"),
               kib("recv_recvq")))


def latency_lines(recs):
    """The high-latency rows: a 256 MiB sequential read over netem, with
    fio (direct, bs=1m, iodepth=8) and with a buffered dd (readahead)."""
    out = []
    for kind, what in (("latency", "fio direct bs=1m iodepth=8"),
                       ("latency-dd", "buffered dd bs=1M count=256, page "
                        "cache dropped: the readahead window decides")):
        lat = [r for r in recs if r.get("kind") == kind]
        if not lat:
            continue
        out += ["", "high latency: 25 ms netem each way between peer and "
                "relay (network namespaces), 256 MiB sequential read, " +
                what]
        vals = {}
        for r in lat:
            if r.get("status") == "ok":
                vals[r["client"]] = r
                out.append("  %-18s %8.1f MiB/s %7.1f s  (%s)" % (
                    CLIENT_NAMES.get(r["client"], r["client"]), r["mib_s"],
                    r["seconds"], r.get("device", "?")))
                out.append(limits_text(r))
            else:
                out.append("  %-18s FAILED: %s" % (
                    CLIENT_NAMES.get(r.get("client"), r.get("client")),
                    " ".join(str(r.get("reason", "?")).split())))
        a, c = vals.get("relay-ws"), vals.get("proxy-ws")
        if a and c and c["mib_s"]:
            x = a["mib_s"] / c["mib_s"]
            out.append("  (a)/(c): %.2fx (target >= %.1f %s)" % (
                x, TARGET_RELAY_LATENCY,
                "ok" if x >= TARGET_RELAY_LATENCY else "SHORT"))
    return out


def build(args):
    rows = load_rows(args.rows)
    recs = load_records(args.records)
    host = json.load(open(args.host_meta)) if args.host_meta else {}
    clients = host.get("clients", ["nbd", "nbdws"])
    servers = host.get("servers", ["memory", "null"])
    conns = host.get("conns", [1, 4])
    only = host.get("rows") or []
    repeat = int(host.get("repeat", 1))
    wanted_rows = [r for r in rows if not only or r["name"] in only]

    meta = next((r for r in recs if r.get("kind") == "meta"), {})
    crypto = next((r for r in recs if r.get("kind") == "crypto"), None)
    if crypto:
        meta = dict(meta, crypto=crypto)
    groups = {}
    for r in recs:
        if r.get("kind") == "row":
            key = (r.get("server"), int(r.get("conns", 0)), r.get("row"),
                   r.get("client"))
            groups.setdefault(key, []).append(r)
    devices = [r for r in recs if r.get("kind") == "device"]
    problems = [r for r in recs if r.get("status") == "error"]

    notes = Notes()
    out = header(meta, host)
    table = []
    short_of_target = []
    measured = {c: 0 for c in clients}
    spread_col = repeat > 1
    ctx = {"groups": groups, "devices": devices, "notes": notes,
           "repeat": repeat, "measured": measured, "table": table,
           "short": [], "short_relay": [], "rows": wanted_rows}
    all_clients = clients
    relay_clients = [c for c in RELAY_CLIENTS if c in clients]
    peer_clients = [c for c in clients if c not in NBDKIT_CLIENTS and
                    c not in RELAY_CLIENTS]
    clients = [c for c in clients if c in NBDKIT_CLIENTS]
    for s in servers if clients else []:
        for n in conns:
            out.append("")
            devs = [d for d in devices
                    if d.get("server") == s and int(d.get("conns", 0)) == n]
            devtxt = devices_text(devs)
            out.append("nbdkit %s, %d connection%s%s" %
                       (s, n, "" if n == 1 else "s",
                        (" (" + devtxt + ")") if devtxt else ""))
            out.append("%-19s %s | %s" % (
                "", " ".join("| %-31s" % CLIENT_NAMES.get(c, c)
                             for c in clients), "nbdws/nbd.ko"))
            out.append("%-19s %s | %6s %6s %-9s%s" % (
                "row", " ".join("| %8s %8s %11s  " % ("IOPS", "MiB/s",
                                                      "CPU-s/GiB")
                                for _ in clients),
                "IOPS x", "CPU x", "target", " spread" if spread_col else ""))
            for row in wanted_rows:
                cells = []
                vals = {}
                for c in clients:
                    runs = groups.get((s, n, row["name"], c), [])
                    bad = [r for r in runs if r.get("status") != "ok"]
                    vals[c] = None
                    if not runs:
                        cells.append("| %-31s" % (
                            "missing " + notes.ref("no record: the guest "
                                                   "stopped before this row")))
                    elif bad:
                        word = "FAILED" if any(r.get("status") == "error"
                                               for r in bad) else "not run"
                        cells.append("| %-31s" % (
                            word + " " + notes.ref("%s: %s" % (
                                CLIENT_NAMES.get(c, c),
                                bad[0].get("reason", "?")))))
                    elif len(runs) < repeat:
                        cells.append("| %-31s" % (
                            "missing " + notes.ref(
                                "fewer runs than asked for: the guest "
                                "stopped early")))
                    else:
                        vals[c] = summarize(runs)
                        measured[c] += 1
                        cells.append("| %8.0f %8.1f %11.2f  " % (
                            vals[c]["iops"], vals[c]["mib_s"],
                            vals[c]["cpu_s_per_gib"]))
                iops_x, cpu_x = paired_ratios(
                    groups.get((s, n, row["name"], "nbdws"), []),
                    groups.get((s, n, row["name"], "nbd"), []))
                if vals.get("nbdws") is None or vals.get("nbd") is None:
                    iops_x = cpu_x = None
                target = TARGET_QD32 if (row["bs"] == "4k" and
                                         row["iodepth"] == 32) \
                    else TARGET_OTHER
                verdict = "-"
                if iops_x is not None:
                    ok = iops_x >= target
                    verdict = ">=%.1f %s" % (target, "ok" if ok else "SHORT")
                    if not ok:
                        short_of_target.append("%s/%d/%s" % (s, n,
                                                             row["name"]))
                spread = ""
                if spread_col:
                    sp = [v["iops_spread_pct"] for v in vals.values()
                          if v and v["iops_spread_pct"] is not None]
                    spread = " %5.0f%%" % max(sp) if sp else "      -"
                out.append("%-19s %s | %6s %6s %-9s%s" % (
                    row["label"], " ".join(cells), fmt(iops_x, ".2f"),
                    fmt(cpu_x, ".2f"), verdict, spread))
                table.append({
                    "server": s, "conns": n, "row": row["name"],
                    "label": row["label"], "clients": vals,
                    "iops_ratio": iops_x, "cpu_per_gib_ratio": cpu_x,
                    "iops_target": target,
                })

    for s in servers if peer_clients else []:
        for n in conns:
            out.extend(peer_group(ctx, s, n, peer_clients))

    for s in servers if relay_clients else []:
        for n in conns:
            out.extend(relay_group(ctx, s, n, relay_clients))
    out.extend(latency_lines(recs))

    clients = all_clients
    expected = len(servers) * len(conns) * len(wanted_rows)
    out.append("")
    if spread_col:
        out.append("spread: the larger of the %s' (max - min) / "
                   "median IOPS over the %d runs" %
                   ("two clients" if len(clients) == 2 else "clients",
                    repeat))
    for c in clients:
        out.append("%s: %d of %d rows measured" % (CLIENT_NAMES.get(c, c),
                                                   measured[c], expected))
    if short_of_target:
        out.append("below issue 3's IOPS target: " + ", ".join(
            short_of_target))
    if ctx["short"]:
        out.append("below issue 4's ws-server target (>= %.1fx plain): %s"
                   % (TARGET_WS_SERVER, ", ".join(ctx["short"])))
    if ctx["short_relay"]:
        out.append("below issue 14's relay targets: " +
                   ", ".join(ctx["short_relay"]))
    if notes.items:
        out.append("")
        for i, t in enumerate(notes.items, 1):
            out.append("(%d) %s" % (i, t))
    seen = set()
    for p in problems:
        if p.get("kind") in ("setup", "server"):
            line = "setup error: %s: %s" % (
                p.get("client") or p.get("server") or "?",
                " ".join(str(p.get("reason", "?")).split()))
            if line not in seen:
                seen.add(line)
                out.append(line)

    problems += [r for r in recs if r.get("kind") in ("latency",
                                                      "latency-dd") and
                 r.get("status") != "ok"]
    ok = (not problems and expected > 0
          and all(measured[c] == expected for c in clients))
    result = {"host": host, "guest": meta, "table": table,
              "devices": devices, "records": recs,
              "complete": ok, "notes": notes.items}
    return "\n".join(line.rstrip() for line in out) + "\n", result, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", required=True)
    ap.add_argument("--rows", required=True, help="bench/rows.txt")
    ap.add_argument("--host-meta", help="host.json written by run.sh")
    ap.add_argument("--txt")
    ap.add_argument("--json")
    args = ap.parse_args()

    text, result, ok = build(args)
    sys.stdout.write(text)
    if args.txt:
        with open(args.txt, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    if not ok:
        sys.stderr.write("bench: INCOMPLETE: some client, server or row "
                         "could not run or failed (see above)\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
