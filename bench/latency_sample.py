#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise what bench/guest.sh sampled during a latency-row read.

The sample file has blocks of lines, one block per sample:
  T <seconds>                 when
  I <reads> <writes>          /sys/block/DEV/inflight (requests in flight)
  P <ss -tinmH line>          the peer's socket (sender of the data)
  R <ss -tinmH line>          the relay's or proxy's socket (receiver)
Prints key:=value words for guest.sh's record(): the peaks of requests
in flight, of the sender's congestion window and unacknowledged bytes,
of the bytes queued on either socket, and of the receiver's buffer and
window, so the report can say which of them capped the throughput.
"""
import re
import sys

KV = re.compile(r"\b([a-z_]+):([0-9]+)\b")
SKMEM = re.compile(r"skmem:\(([^)]*)\)")


def main():
    peak = {}

    def up(k, v):
        if v is not None and v > peak.get(k, -1):
            peak[k] = v

    samples = 0
    with open(sys.argv[1]) as f:
        for line in f:
            tag, _, rest = line.partition(" ")
            if tag == "T":
                samples += 1
            elif tag == "I":
                parts = rest.split()
                if parts and parts[0].isdigit():
                    up("inflight_reads", int(parts[0]))
            elif tag in ("P", "R"):
                side = "peer" if tag == "P" else "recv"
                cols = rest.split()
                # Recv-Q Send-Q local peer ... (one state: no State column)
                if len(cols) >= 2 and cols[0].isdigit() and cols[1].isdigit():
                    up(side + "_recvq", int(cols[0]))
                    up(side + "_sendq", int(cols[1]))
                kv = dict((k, int(v)) for k, v in KV.findall(rest))
                m = SKMEM.search(rest)
                if m:
                    for part in m.group(1).split(","):
                        mm = re.match(r"([a-z]+)([0-9]+)$", part)
                        if mm and mm.group(1) in ("rb", "tb"):
                            up(side + "_" + mm.group(1), int(mm.group(2)))
                mss = kv.get("mss")
                if side == "peer":
                    up("peer_cwnd", kv.get("cwnd"))
                    if mss and "unacked" in kv:
                        up("peer_unacked_bytes", kv["unacked"] * mss)
                    up("peer_snd_wnd", kv.get("snd_wnd"))
                else:
                    up("recv_rcv_ssthresh", kv.get("rcv_ssthresh"))
                    up("recv_rcv_space", kv.get("rcv_space"))
                if mss:
                    up(side + "_mss", mss)
    words = ["samples:=%d" % samples]
    words += ["%s:=%d" % (k, v) for k, v in sorted(peak.items())]
    print(" ".join(words))


if __name__ == "__main__":
    main()
