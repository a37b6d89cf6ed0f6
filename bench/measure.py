#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Run every bench row on every client's device in one fio invocation.

Runs inside the bench VM, once per (server, connection count) group. One
fio process runs all (row, client) pairs as stonewalled jobs: row by row,
the clients back to back in alternating order, so a drift in the host's
load hits both alike and fio's own start-up (seconds under TCG) is paid
once per group rather than once per row.

CPU time is read from /proc/stat (all CPUs) by each job's exec_prerun and
exec_postrun, which fio runs right before a job's clock starts and right
after its last I/O completed: the CPU window and the bytes fio counts
cover the same run (no ramp_time, whose bytes fio leaves out of its
totals). The servers' own CPU time (/proc/PID/stat, summed over every
--server-pid) is read in the same hooks, so the JSON can tell the
servers' cost from the rest. The TCP counters of /proc/net/snmp are
read in the same hooks: segments per GiB tell one transport's traffic
pattern from another's (all the clients' traffic is on loopback, where
every segment is counted once sent and once received).

With --repeat N the whole sequence runs N times; every run is a record
of its own (field "rep") and the report takes the median.

With --perf every job also runs under a system-wide "perf record" (the
cpu-clock software event: TCG guests have no PMU), started before the
job's first CPU snapshot and stopped after its last one, and after fio a
flat per-symbol profile of each job is written next to its snapshots
(record field "profile"). The sampling costs CPU inside the window, so a
profiled run answers "where does the time go", never "how fast".

Prints one JSON record per (repetition, row, client) on stdout, status
"ok" or "error" with a reason. Exits 1 when any record is an error.
"""
import argparse
import json
import os
import signal
import stat
import subprocess
import sys

# /proc/stat "cpu" fields, in order (proc(5)).
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq",
               "steal")
# Time the CPUs spent working. idle and iowait are waiting; the guest
# fields that follow steal are already included in user and nice.
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")
WARMUP_S = 1
# Samples per second and CPU: enough for a flat profile of a 5 s row
# without the sampler itself dominating an emulated guest.
PERF_HZ = 499
PERF_DIR = "/tmp/nbdws-bench-perf"


def load_rows(path, only):
    rows = []
    with open(path) as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if fields and (not only or fields[0] in only):
                name, rw, bs, qd = fields
                rows.append((name, rw, bs, int(qd)))
    return rows


def parse_snapshot(path):
    """/proc/stat, /proc/net/snmp and the servers' /proc/PID/stat, as cat
    wrote them; the servers' times are summed. Returns the cpu fields,
    the servers' ticks and the Tcp counters (a dict by name)."""
    cpu, server, tcp_names, tcp = None, None, None, {}
    with open(path) as f:
        for line in f:
            if line.startswith("Tcp:"):
                # A line of names, then a line of values.
                if tcp_names is None:
                    tcp_names = line.split()[1:]
                else:
                    tcp = dict(zip(tcp_names, (int(v) for v in
                                               line.split()[1:])))
            elif line.startswith("cpu "):
                cpu = dict(zip(STAT_FIELDS,
                               (int(v) for v in line.split()[1:9])))
            elif ")" in line:
                # comm may contain spaces: fields start after the last ')'.
                fields = line[line.rindex(")") + 2:].split()
                # utime, stime, cutime, cstime: fields 14-17 of stat.
                server = (server or 0) + sum(int(v) for v in fields[11:15])
    if cpu is None:
        raise ValueError("no cpu line in %s" % path)
    return cpu, server, tcp


def job_section(name, dev, rw, bs, qd, runtime, prerun, postrun):
    return ("[%s]\nfilename=%s\nrw=%s\nbs=%s\niodepth=%d\nruntime=%d\n"
            "exec_prerun=%s\nexec_postrun=%s\n\n"
            % (name, dev, rw, bs, qd, runtime, prerun, postrun))


# fio reads ';' in a job file as the start of a comment, so a hook that
# needs more than one command runs as a script. $1 is start or stop, $2
# the job's name, the rest the files of the CPU snapshot. perf cannot
# mmap its output on the 9p share the work folder lives on, so the
# recording goes to the guest's own /tmp (perf_dir()). perf takes ~10 s
# to start in an emulated guest, so it starts with its events off and
# the hooks switch them on and off through its control FIFOs, each
# acknowledged: the window sampled is the one the CPU snapshots bound.
# A perf that never answers (it failed to start) would block the FIFOs'
# open for good, hence the timeout: 600 s, since on a host busy with
# other VMs perf once took more than 120 s to come up (it reads every
# process's maps and the kernel's symbols); the start hook then prints perf's
# messages instead of the snapshot, and the row fails with them.
# Stopping sends SIGINT (so it writes a complete file) and waits.
PERF_HOOK = """#!/bin/sh
what=$1 base=%s/$2
shift 2
ctl() {
	timeout 600 sh -c 'echo "$1" > "$2" && read -r ack < "$3"' \\
		ctl "$1" "$base.ctl" "$base.ack"
}
if [ "$what" = start ]; then
	mkfifo "$base.ctl" "$base.ack" || exit 1
	perf record -a -g -F %d -e cpu-clock -D -1 \\
		--control "fifo:$base.ctl,$base.ack" -o "$base.data" \\
		> "$base.log" 2>&1 < /dev/null &
	echo $! > "$base.pid"
	if ! ctl enable; then
		echo "perf record did not start:"
		cat "$base.log"
		exit 1
	fi
	exec cat "$@"
fi
cat "$@"
ctl disable
p=$(cat "$base.pid")
kill -INT "$p"
while kill -0 "$p" 2> /dev/null; do
	sleep 0.2
done
"""


def perf_dir(workdir):
    """Where the recordings of one work folder's jobs go: job names
    repeat from one (server, connections) group to the next."""
    return os.path.join(PERF_DIR, os.path.basename(os.path.normpath(workdir)))


def write_perf_hook(workdir):
    """The hook script and the recordings' folder; returns the script."""
    script = os.path.join(workdir, "perf-hook.sh")
    os.makedirs(perf_dir(workdir), exist_ok=True)
    with open(script, "w") as f:
        f.write(PERF_HOOK % (perf_dir(workdir), PERF_HZ))
    return script


def perf_report(workdir, job):
    """Profiles of one job into the work folder: flat by symbol with its
    object (JOB.perf.txt), and the call chains into the symbols above 1%
    (JOB.perf-calls.txt). Returns the flat file's name, or None when
    there is no usable recording (the reason is in the file then)."""
    data = os.path.join(perf_dir(workdir), job + ".data")
    flat = os.path.join(workdir, job + ".perf.txt")
    with open(flat, "w") as out:
        if not os.path.exists(data):
            out.write("no recording: %s\n" % data)
            return None
        rc = subprocess.call(["perf", "report", "-i", data, "--stdio",
                              "--no-children", "-g", "none", "-n",
                              "--sort", "dso,sym", "--percent-limit", "0.05"],
                             stdout=out, stderr=subprocess.STDOUT)
    with open(os.path.join(workdir, job + ".perf-calls.txt"), "w") as out:
        subprocess.call(["perf", "report", "-i", data, "--stdio",
                         "--no-children", "-g", "caller,0.5,callee",
                         "--sort", "sym", "--percent-limit", "1"],
                        stdout=out, stderr=subprocess.STDOUT)
    try:
        with open(os.path.join(perf_dir(workdir), job + ".log")) as log:
            said = log.read()
    except OSError as e:
        said = str(e)
    with open(flat, "a") as out:
        out.write("\n# perf record said:\n" + said)
    # Relative to the bench's output folder, where records.jsonl is.
    return (os.path.join(os.path.basename(os.path.normpath(workdir)),
                         os.path.basename(flat)) if rc == 0 else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", action="append", required=True,
                    metavar="CLIENT=DEV")
    ap.add_argument("--rows", required=True, help="bench/rows.txt")
    ap.add_argument("--only", default="", help="row names to run")
    ap.add_argument("--runtime", type=int, required=True)
    ap.add_argument("--size", required=True,
                    help="region of each device the rows touch")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the whole row sequence this many times")
    ap.add_argument("--server-pid", type=int, action="append", default=[],
                    help="a server process (repeat for several)")
    ap.add_argument("--workdir", required=True,
                    help="job file, fio output and hook snapshots go here")
    ap.add_argument("--label", action="append", default=[],
                    metavar="KEY=VALUE", help="copied into every record")
    ap.add_argument("--perf", action="store_true",
                    help="profile every job with perf record (see above)")
    args = ap.parse_args()

    devices = [d.split("=", 1) for d in args.device]
    for client, dev in devices:
        # fio would happily create a regular file in place of a missing
        # device and "measure" the page cache.
        try:
            is_blk = stat.S_ISBLK(os.stat(dev).st_mode)
        except OSError:
            is_blk = False
        if not is_blk:
            sys.exit("%s: %s is not a block device" % (client, dev))
    rows = load_rows(args.rows, args.only.split())
    hz = os.sysconf("SC_CLK_TCK")
    labels = {}
    for kv in args.label:
        k, _, v = kv.partition("=")
        labels[k] = int(v) if v.isdigit() else v

    files = " ".join(["/proc/stat", "/proc/net/snmp"] +
                     ["/proc/%d/stat" % pid for pid in args.server_pid])
    hook = "cat " + files
    os.makedirs(args.workdir, exist_ok=True)
    if args.perf:
        perf_hook = "sh %s %%s %%s %s" % (write_perf_hook(args.workdir),
                                          files)
    jobfile = os.path.join(args.workdir, "bench.fio")
    plan = []
    with open(jobfile, "w") as f:
        f.write("[global]\nioengine=libaio\ndirect=1\nnumjobs=1\n"
                "time_based\nstonewall\nnorandommap\nrandrepeat=0\n"
                "size=%s\n\n" % args.size)
        # Unmeasured warm-up: each device's first requests, and the
        # first start of the job machinery, land in no row.
        for client, dev in devices:
            f.write("[warmup-%s]\nfilename=%s\nrw=randread\nbs=4k\n"
                    "iodepth=8\nruntime=%d\n\n" % (client, dev, WARMUP_S))
        # Repetitions run the whole sequence again, so the samples of one
        # row are spread over time rather than taken back to back.
        for rep in range(args.repeat):
            for i, (name, rw, bs, qd) in enumerate(rows):
                order = devices if (i + rep) % 2 == 0 else devices[::-1]
                for client, dev in order:
                    job = "%d-%d-%s-%s" % (rep, i, name, client)
                    plan.append((job, rep, name, client, dev))
                    pre, post = ((perf_hook % ("start", job),
                                  perf_hook % ("stop", job))
                                 if args.perf else (hook, hook))
                    f.write(job_section(job, dev, rw, bs, qd, args.runtime,
                                        pre, post))

    runs = len(plan) + len(devices)
    limit = 120 + runs * (args.runtime + (90 if args.perf else 30))
    fio_out = os.path.join(args.workdir, "fio.json")
    with open(fio_out, "w") as out, \
            open(os.path.join(args.workdir, "fio.err"), "w") as err:
        p = subprocess.Popen(["fio", "--output-format=json", jobfile],
                             cwd=args.workdir, stdout=out, stderr=err,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=limit)
            failure = None if rc == 0 else "fio exited with status %d" % rc
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            failure = "fio did not finish within %d s (a hung device?)" % limit
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                failure += "; it could not even be killed"
    with open(os.path.join(args.workdir, "fio.err")) as f:
        fio_err = " ".join(f.read().split())[-1500:]

    jobs = {}
    try:
        with open(fio_out) as f:
            text = f.read()
        # fio prints the hooks' "Saving output" notes before the JSON.
        for j in json.loads(text[text.index("{"):])["jobs"]:
            jobs[j["jobname"]] = j
    except (OSError, ValueError, KeyError) as e:
        failure = (failure + "; " if failure else "") + \
            "no usable fio JSON (%s)" % e

    bad = False
    for job, rep, name, client, dev in plan:
        rec = dict(labels, kind="row", row=name, client=client, device=dev,
                   rep=rep)
        why = None
        j = jobs.get(job)
        if j is None:
            why = failure or "fio reported nothing for this job"
        elif j.get("error"):
            why = "fio error %s (%s) on %s" % (
                j["error"], os.strerror(j["error"]), dev)
        if why is None:
            try:
                c0, s0, t0 = parse_snapshot(os.path.join(
                    args.workdir, job + ".prerun.txt"))
                c1, s1, t1 = parse_snapshot(os.path.join(
                    args.workdir, job + ".postrun.txt"))
            except (OSError, ValueError) as e:
                why = "CPU snapshots missing: %s" % e
        if why is None:
            rd, wr = j["read"], j["write"]
            io_bytes = rd["io_bytes"] + wr["io_bytes"]
            if io_bytes <= 0:
                why = "fio moved no data on %s" % dev
        if why is not None:
            if fio_err:
                why += "; fio: " + fio_err
            rec.update(status="error", reason=why)
            bad = True
        else:
            delta = {k: c1[k] - c0[k] for k in STAT_FIELDS}
            busy = sum(delta[k] for k in BUSY_FIELDS)
            total = sum(delta.values())
            gib = io_bytes / 2**30
            rec.update({
                "status": "ok",
                "fio": {"rw": j["job options"].get("rw"),
                        "bs": j["job options"].get("bs"),
                        "iodepth": int(j["job options"].get("iodepth")),
                        "runtime_s": args.runtime, "size": args.size},
                "iops": rd["iops"] + wr["iops"],
                "mib_s": (rd["bw_bytes"] + wr["bw_bytes"]) / 2**20,
                "io_bytes": io_bytes,
                "lat_mean_us": max(rd["lat_ns"]["mean"],
                                   wr["lat_ns"]["mean"]) / 1e3,
                "fio_runtime_ms": max(rd["runtime"], wr["runtime"]),
                "cpu_busy_s": busy / hz,
                "cpu_s_per_gib": busy / hz / gib,
                "cpu_busy_frac": busy / total if total else None,
                "cpu_ticks": delta,
                "clk_tck": hz,
                "fio_usr_cpu_pct": j.get("usr_cpu"),
                "fio_sys_cpu_pct": j.get("sys_cpu"),
                "server_cpu_s": ((s1 - s0) / hz
                                 if s0 is not None and s1 is not None
                                 else None),
                "tcp": {k: t1[k] - t0[k] for k in
                        ("OutSegs", "InSegs", "RetransSegs")
                        if k in t0 and k in t1},
            })
            if args.perf:
                rec["profile"] = perf_report(args.workdir, job)
                rec["perf_hz"] = PERF_HZ
        print(json.dumps(rec))
    if failure and not bad:
        print(json.dumps(dict(labels, kind="setup", status="error",
                              reason=failure + ("; fio: " + fio_err
                                                if fio_err else ""))))
    sys.exit(1 if bad or failure else 0)


if __name__ == "__main__":
    main()
