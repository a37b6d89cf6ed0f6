#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Check ws_nbd_peer.py against a WebSocket implementation nobody here
wrote (python3-websockets), without the kernel.

For each role the peer can play and each reply shape, an NBD client built
here runs inside python3-websockets: it does the handshake (OPT_GO), keeps
several requests in flight, writes random data at random offsets and reads
everything back against a model of the export. For each violation mode it
checks that python3-websockets itself rejects what the peer sent (so the
frames are real RFC 6455 violations, not only violations of our parser)
and that the peer logged the close code websockets sent back. For
--close-after it checks that websockets saw the peer's code and reason.

Prints TAP; exit status 0 when everything passed. Host only (needs Debian's
python3-websockets); run with /usr/bin/python3.
"""

import asyncio
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "ws_nbd_peer.py")
SIZE = 8 * 1024 * 1024
MAX_SIZE = 1 << 25

NBD_OPT_GO = 7
NBD_REQUEST_MAGIC = 0x25609513
NBD_SIMPLE_REPLY_MAGIC = 0x67446698
NBD_OPT_REPLY_MAGIC = 0x0003E889045565A9
NBD_IHAVEOPT = 0x49484156454F5054


class Stream:
    """NBD bytes out of WebSocket messages, whatever their boundaries."""

    def __init__(self, ws):
        self.ws = ws
        self.buf = bytearray()
        self.messages = 0

    async def read(self, n):
        while len(self.buf) < n:
            m = await self.ws.recv()
            if isinstance(m, str):
                raise AssertionError("text message from the peer")
            self.messages += 1
            self.buf += m
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


async def nbd_client(ws, rnd, nreq=200):
    """Handshake, then pipelined random I/O checked against a model."""
    s = Stream(ws)
    magic, opt, hflags = struct.unpack("!QQH", await s.read(18))
    assert magic == 0x4E42444D41474943 and opt == NBD_IHAVEOPT, "greeting"
    await ws.send(struct.pack("!I", 3))
    await ws.send(struct.pack("!QII", NBD_IHAVEOPT, NBD_OPT_GO, 6) +
                  struct.pack("!IH", 0, 0))
    size = None
    while True:
        m, o, rtype, ln = struct.unpack("!QIII", await s.read(20))
        assert m == NBD_OPT_REPLY_MAGIC and o == NBD_OPT_GO, "opt reply"
        data = await s.read(ln)
        if rtype == 3 and struct.unpack_from("!H", data)[0] == 0:
            size = struct.unpack_from("!Q", data, 2)[0]
        if rtype == 1:
            break
        assert rtype == 3, "option reply type %#x" % rtype
    assert size == SIZE, "size %r" % size
    model = bytearray(SIZE)
    cookie = 0
    for _ in range(nreq // 8):
        pending = {}
        for _ in range(8):             # 8 requests in flight
            cookie += 1
            ln = rnd.choice((512, 4096, 65536, 300000, 1 << 20))
            off = rnd.randrange(0, SIZE - ln) & ~511
            if rnd.random() < 0.5:
                data = os.urandom(ln)
                model[off:off + ln] = data
                await ws.send(struct.pack("!IHHQQI", NBD_REQUEST_MAGIC, 0, 1,
                                          cookie, off, ln) + data)
                pending[cookie] = None
            else:
                await ws.send(struct.pack("!IHHQQI", NBD_REQUEST_MAGIC, 0, 0,
                                          cookie, off, ln))
                pending[cookie] = bytes(model[off:off + ln])
        while pending:
            m, err, c = struct.unpack("!IIQ", await s.read(16))
            assert m == NBD_SIMPLE_REPLY_MAGIC and err == 0, "reply"
            want = pending.pop(c)
            if want is not None:
                got = await s.read(len(want))
                assert got == want, "read data differs (cookie %d)" % c
    await ws.send(struct.pack("!IHHQQI", NBD_REQUEST_MAGIC, 0, 3, 0, 0, 0))
    m, err, c = struct.unpack("!IIQ", await s.read(16))
    assert err == 0 and c == 0, "flush"
    return s.messages


async def expect_failure(ws, rnd):
    """Run I/O until websockets fails the connection; return its code."""
    try:
        await nbd_client(ws, rnd, nreq=64)
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None, e.sent.code if e.sent else None
    except AssertionError as e:
        return "assert: %s" % e, None
    return None, None


def log_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def start_peer(role, extra, log, port=None, port_file=None):
    cmd = [sys.executable, PEER, "--role", role, "--size", str(SIZE),
           "--log", log, "--seed", "7", "--idle-timeout", "30",
           "--close-wait", "10"]
    if role == "server":
        cmd += ["--listen", "127.0.0.1:0", "--port-file", port_file]
    else:
        cmd += ["--connect", "127.0.0.1:%d" % port]
    return subprocess.Popen(cmd + extra)


async def wait_file(path, timeout=10):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise AssertionError("peer did not start")
        await asyncio.sleep(0.05)
    with open(path) as f:
        return int(f.read())


async def run_case(role, extra, body, tmp, ws_opts=None):
    """Start the peer in @role with @extra flags; run @body(ws) on the
    python3-websockets side; return (body result, peer status, log)."""
    log = os.path.join(tmp, "peer.log")
    if os.path.exists(log):
        os.unlink(log)
    pf = os.path.join(tmp, "port")
    if os.path.exists(pf):
        os.unlink(pf)
    result = {}
    opts = dict(max_size=MAX_SIZE, compression=None, ping_interval=None)
    opts.update(ws_opts or {})
    if role == "server":
        p = start_peer("server", extra, log, port_file=pf)
        port = await wait_file(pf)
        async with websockets.connect("ws://127.0.0.1:%d/nbd" % port,
                                      **opts) as ws:
            result["r"] = await body(ws)
    else:
        done = asyncio.get_running_loop().create_future()

        async def handler(ws, path):
            try:
                result["r"] = await body(ws)
            except Exception as e:      # reported by the caller
                result["r"] = e
            finally:
                if not done.done():
                    done.set_result(True)

        server = await websockets.serve(handler, "127.0.0.1", 0, **opts)
        port = server.sockets[0].getsockname()[1]
        p = start_peer("client", extra, log, port=port)
        await asyncio.wait_for(done, 120)
        server.close()
        await server.wait_closed()
        if isinstance(result["r"], Exception):
            raise result["r"]
    rc = await asyncio.get_running_loop().run_in_executor(None, p.wait, 30)
    return result["r"], rc, log_lines(log)


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%sok %d %s" % ("" if cond else "not ", self.n, desc))
        if not cond and diag:
            for line in str(diag).splitlines()[-15:]:
                print("# " + line)
        sys.stdout.flush()


VIOLATIONS = ("rsv", "opcode", "control-too-long", "control-fragmented",
              "bad-mask", "len64-topbit", "cont-without-start")


async def main():
    tap = Tap()
    rnd = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        for role in ("server", "client"):
            for name, extra in (("one message per reply", []),
                                ("split random", ["--split", "random"]),
                                ("coalesce", ["--coalesce"]),
                                ("ping between fragments",
                                 ["--ping-between-fragments"]),
                                ("expect pong", ["--expect-pong"])):
                desc = "%s role, %s: data correct" % (role, name)
                try:
                    msgs, rc, log = await run_case(
                        role, extra, lambda ws: nbd_client(ws, rnd), tmp)
                    summ = [x for x in log if x.startswith("summary")]
                    tap.ok(rc == 0 and summ, desc, "\n".join(log))
                    s = dict(w.split("=", 1) for w in summ[0].split()[1:]
                             if "=" in w) if summ else {}
                    if name == "split random":
                        tap.ok(int(s.get("cont_frames_tx", 0)) > 0 and
                               int(s.get("reply_split_messages", 0)) > 0 and
                               int(s.get("multi_reply_frames", 0)) > 0,
                               "%s role, split: continuation frames, "
                               "replies across messages, several per "
                               "frame" % role, summ)
                    if name == "coalesce":
                        tap.ok(int(s.get("multi_reply_frames", 0)) > 0,
                               "%s role, coalesce: several replies in one "
                               "frame" % role, summ)
                    if name in ("ping between fragments", "expect pong"):
                        tap.ok(int(s.get("pongs_ok", 0)) > 0 and
                               int(s.get("pong_mismatch", 1)) == 0,
                               "%s role, %s: websockets answered the "
                               "pings with matching pongs" % (role, name),
                               summ)
                except Exception as e:
                    tap.ok(False, desc, repr(e))
            # A close frame mid-I/O: websockets must see code and reason.
            desc = "%s role, close-after 5: code 1001 and reason" % role
            try:
                async def body(ws):
                    try:
                        await nbd_client(ws, rnd, nreq=64)
                    except websockets.ConnectionClosed as e:
                        return e.rcvd.code, e.rcvd.reason
                    return None
                r, rc, log = await run_case(
                    role, ["--close-after", "5", "--close-reason", "bye now"],
                    body, tmp)
                tap.ok(r == (1001, "bye now") and rc == 0 and
                       any(x.startswith("close-received code=1001")
                           for x in log), desc, "%r\n%s" % (r, "\n".join(log)))
            except Exception as e:
                tap.ok(False, desc, repr(e))
            for v in VIOLATIONS:
                desc = "%s role, violation %s: websockets fails the " \
                       "connection and the peer logs its close code" % (role, v)
                try:
                    r, rc, log = await run_case(
                        role, ["--violation", v, "--after", "3"],
                        lambda ws: expect_failure(ws, rnd), tmp)
                    # websockets closes with 1002 on protocol errors; a
                    # 2^63-byte frame is, to it, first of all too big (1009).
                    want = (1002, 1009) if v == "len64-topbit" else (1002,)
                    sent = r[1]
                    logged = [x for x in log if
                              x.startswith("close-received code=%s" % sent)]
                    tap.ok(sent in want and logged and
                           any(x == "violation-sent " + v for x in log),
                           desc, "%r\n%s" % (r, "\n".join(log)))
                except Exception as e:
                    tap.ok(False, desc, repr(e))
            # Text frames are valid RFC 6455, only not NBD: websockets must
            # hand the text message up, or fail it with 1007 because the
            # NBD reply in it is not UTF-8; either way it was a text frame.
            desc = "%s role, violation text: websockets sees a text " \
                   "message" % role
            try:
                r, rc, log = await run_case(
                    role, ["--violation", "text", "--after", "3",
                           "--close-wait", "2"],
                    lambda ws: expect_failure(ws, rnd), tmp)
                tap.ok(r[0] == "assert: text message from the peer" or
                       r[1] == 1007, desc,
                       "%r\n%s" % (r, "\n".join(log)))
            except Exception as e:
                tap.ok(False, desc, repr(e))
            # Keepalive from the other side: websockets pings every 0.2 s
            # and gives up when the peer stops answering (after 3).
            desc = "%s role, no-pong-after 3: websockets' keepalive " \
                   "times out" % role
            try:
                async def pinged(ws):
                    try:
                        await asyncio.wait_for(ws.wait_closed(), 30)
                    except asyncio.TimeoutError:
                        return "still open"
                    return ws.close_code
                r, rc, log = await run_case(
                    role, ["--no-pong-after", "3"], pinged, tmp,
                    ws_opts=dict(ping_interval=0.2, ping_timeout=1))
                pings = [x for x in log if x.startswith("ping-received")]
                # websockets fails the connection with 1011 without
                # waiting for the echo (its own close_code reads 1006);
                # the peer's log has the code it sent.
                tap.ok(r != "still open" and len(pings) > 3 and
                       any(x.startswith("close-received code=1011")
                           for x in log), desc,
                       "%r\n%s" % (r, "\n".join(log)))
            except Exception as e:
                tap.ok(False, desc, repr(e))
    print("1..%d" % tap.n)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
