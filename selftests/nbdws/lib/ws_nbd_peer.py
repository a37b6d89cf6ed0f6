#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A scripted NBD server behind RFC 6455 WebSocket, for the nbdws selftests.

It plays the far end of a connection whose transmission phase the kernel
runs, in either WebSocket role:

  --role server  The peer listens (--listen HOST:PORT), accepts the HTTP/1.1
                 upgrade from our client (nbdctl, or the selftests through
                 lib/ws_dial), sends unmasked frames and requires masked
                 ones. The kernel side is then NBDWS_TRANSPORT_WS_CLIENT.
  --role client  The peer connects (--connect HOST:PORT) or is handed a
                 connected socket (--fd N), sends the upgrade request, masks
                 every frame it sends and requires unmasked ones. The kernel
                 side is then NBDWS_TRANSPORT_WS_SERVER. This is the browser
                 case: a WebSocket client that is the NBD *server*.

In both roles the peer is the NBD server: fixed newstyle handshake (OPT_GO
with INFO_EXPORT and INFO_BLOCK_SIZE, OPT_INFO, OPT_LIST, EXPORT_NAME; with
--export-name-only every other option gets NBD_REP_ERR_UNSUP), then simple
replies for READ, WRITE, FLUSH, TRIM, WRITE_ZEROES and DISC over an
in-memory (--size) or file-backed (--file) export.

How replies are put on the wire is chosen by flags (the stream of NBD bytes
is the same; only its WebSocket shape changes):

  default                   one binary message (one frame) per reply
  --coalesce                all replies ready at once share one frame
  --split random            reply bytes cut at random points into frames
                            and messages (continuation frames), ignoring
                            reply boundaries
  --ping-between-fragments  ping (or unsolicited pong) frames between the
                            fragments of a message (implies --split random)
  --expect-pong             a ping with a random payload before each batch
                            of replies; every pong must echo one of them

--no-pong (or --no-pong-after N) leaves the kernel's keepalive pings
unanswered (after the first N), as a dead peer would.

and one protocol violation per --violation MODE, sent instead of the reply
to the request after --after N requests: rsv, opcode, text,
control-too-long, control-fragmented, bad-mask, len64-topbit,
cont-without-start. --close-after N sends a close frame (--close-code,
--close-reason) instead of reply N+1. After either, the peer waits for the
kernel's close frame and records its code.

--plain drops WebSocket altogether (plain NBD on the socket), so that a
test's own logic can be dry-run against the plain transport; a close then
is a TCP shutdown.

--log FILE records what the peer saw, one "key value..." line per event,
flushed at once so a test can poll it (close-received code=1002 ...,
ping-received ..., pong-ok, violation-sent ..., summary ...). The peer is
strict about what the kernel sends: any framing error by the kernel is
logged as "kernel-violation" and the peer exits with status 3.

Standard library only: it must run with Debian's /usr/bin/python3 inside
the test VM.
"""

import argparse
import base64
import hashlib
import os
import random
import select
import signal
import socket
import struct
import sys
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
DATA_OPS = (OP_CONT, OP_TEXT, OP_BINARY)
CONTROL_OPS = (OP_CLOSE, OP_PING, OP_PONG)

NBD_INIT_PASSWD = 0x4E42444D41474943
NBD_IHAVEOPT = 0x49484156454F5054
NBD_OPT_REPLY_MAGIC = 0x0003E889045565A9
NBD_FLAG_FIXED_NEWSTYLE = 1
NBD_FLAG_NO_ZEROES = 2
NBD_FLAG_C_NO_ZEROES = 2
NBD_OPT_EXPORT_NAME, NBD_OPT_ABORT, NBD_OPT_LIST = 1, 2, 3
NBD_OPT_INFO, NBD_OPT_GO = 6, 7
NBD_REP_ACK, NBD_REP_SERVER, NBD_REP_INFO = 1, 2, 3
NBD_REP_ERR_UNSUP = 0x80000001
NBD_REP_ERR_INVALID = 0x80000003
NBD_REP_ERR_UNKNOWN = 0x80000006
NBD_INFO_EXPORT, NBD_INFO_BLOCK_SIZE = 0, 3
NBD_TF_HAS_FLAGS, NBD_TF_READ_ONLY, NBD_TF_SEND_FLUSH = 0x1, 0x2, 0x4
NBD_TF_SEND_FUA, NBD_TF_SEND_TRIM, NBD_TF_SEND_WRITE_ZEROES = 0x8, 0x20, 0x40
NBD_REQUEST_MAGIC = 0x25609513
NBD_SIMPLE_REPLY_MAGIC = 0x67446698
NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_DISC = 0, 1, 2
NBD_CMD_FLUSH, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES = 3, 4, 6
NBD_EPERM, NBD_EIO, NBD_EINVAL = 1, 5, 22
CMD_NAMES = {0: "read", 1: "write", 2: "disc", 3: "flush", 4: "trim",
             6: "write-zeroes"}

MAX_HTTP_HEADER = 8192
MAX_OPTION = 64 * 1024
MAX_PAYLOAD = 64 * 1024 * 1024

VIOLATIONS = ("rsv", "opcode", "text", "control-too-long",
              "control-fragmented", "bad-mask", "len64-topbit",
              "cont-without-start")

# Exit statuses the tests may assert on.
EXIT_OK, EXIT_USAGE, EXIT_PEER_ERROR, EXIT_KERNEL_VIOLATION = 0, 2, 1, 3
EXIT_IDLE, EXIT_PONG_MISMATCH = 4, 5


class KernelViolation(Exception):
    """The other end (the kernel, or our userspace) broke RFC 6455 or NBD."""


class PeerClosed(Exception):
    """TCP end, or the WebSocket closing handshake finished."""


class Terminated(PeerClosed):
    """SIGTERM from the test: stop, but still write the summary."""


def on_sigterm(*_):
    raise Terminated("SIGTERM")


def mask_bytes(data, key):
    """XOR @data with the 4-byte @key repeated (RFC 6455 5.3), fast."""
    n = len(data)
    if not n:
        return b""
    rep = (key * (n // 4 + 1))[:n]
    x = int.from_bytes(data, "little") ^ int.from_bytes(rep, "little")
    return x.to_bytes(n, "little")


def frame_header(opcode, fin, length, mask_key=None, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask_key is not None else 0
    if length < 126:
        hdr = struct.pack("!BB", b0, mbit | length)
    elif length < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, length)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, length)
    if mask_key is not None:
        hdr += mask_key
    return hdr


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else None

    def __call__(self, *words):
        line = " ".join(str(w) for w in words)
        if self.f:
            self.f.write(line + "\n")
            self.f.flush()
        if os.environ.get("WS_PEER_DEBUG"):
            sys.stderr.write("ws_nbd_peer: " + line + "\n")


class Export:
    """The export's bytes: a bytearray, or a file used with pread/pwrite."""

    def __init__(self, args):
        self.fd = None
        if args.file:
            self.fd = os.open(args.file, os.O_RDWR)
            self.size = args.size or os.fstat(self.fd).st_size
        else:
            self.size = args.size or 64 * 1024 * 1024
            self.mem = bytearray(self.size)

    def read(self, off, n):
        if self.fd is not None:
            out = bytearray()
            while len(out) < n:
                b = os.pread(self.fd, n - len(out), off + len(out))
                if not b:  # past EOF of a short file: zeroes
                    out += bytes(n - len(out))
                    break
                out += b
            return bytes(out)
        return bytes(self.mem[off:off + n])

    def write(self, off, data):
        if self.fd is not None:
            done = 0
            view = memoryview(data)
            while done < len(data):
                done += os.pwrite(self.fd, view[done:], off + done)
        else:
            self.mem[off:off + len(data)] = data

    def zero(self, off, n):
        chunk = bytes(min(n, 1 << 20))
        while n > 0:
            c = min(n, len(chunk))
            self.write(off, chunk[:c])
            off += c
            n -= c

    def flush(self):
        if self.fd is not None:
            os.fsync(self.fd)


class Peer:
    def __init__(self, args, sock, export, log):
        self.a = args
        self.sock = sock
        self.export = export
        self.log = log
        self.rnd = random.Random(args.seed)
        self.server = args.role == "server"
        self.rbuf = bytearray()      # raw bytes not yet parsed as frames
        self.stream = bytearray()    # message payload not yet consumed
        self.in_message = False      # inside a fragmented message from them
        self.closing = False         # we sent a close frame
        self.close_code = None       # close code the other end sent
        self.pings_sent = []         # payloads of unanswered pings
        self.last_rx = time.monotonic()
        self.mask_keys = set()
        self.c = dict(frames_rx=0, frames_tx=0, requests=0, replies=0,
                      pings_rx=0, pongs_tx=0, pings_tx=0, pongs_ok=0,
                      pong_mismatch=0, unsolicited_pongs_tx=0,
                      cont_frames_tx=0, multi_reply_frames=0,
                      messages_tx=0, reply_split_messages=0,
                      mask_key_repeats=0, read_bytes=0, write_bytes=0)

    # ---- raw socket ------------------------------------------------------

    def send_raw(self, data):
        # MSG_NOSIGNAL: the kernel may close TCP right after its close
        # frame (RFC 6455 7.1.7); our echo then meets a reset socket.
        try:
            self.sock.sendall(data, socket.MSG_NOSIGNAL)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise PeerClosed("send: %s" % e)

    def recv_some(self, timeout):
        """Read what is there within @timeout; False if nothing came."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        try:
            b = self.sock.recv(1 << 20)
        except ConnectionResetError:
            b = b""
        if not b:
            self.log("eof", "close_seen=%s" % (self.close_code is not None))
            raise PeerClosed("eof")
        self.rbuf += b
        self.last_rx = time.monotonic()
        return True

    # ---- frames out --------------------------------------------------------

    def send_frame(self, opcode, payload, fin=True, rsv=0, force_mask=None):
        """Frame @payload in our role: the client masks, the server not."""
        if self.a.plain:
            if opcode in DATA_OPS:
                self.c["frames_tx"] += 1
                self.send_raw(payload)
            return
        masked = (not self.server) if force_mask is None else force_mask
        key = os.urandom(4) if masked else None
        hdr = frame_header(opcode, fin, len(payload), key, rsv)
        body = mask_bytes(payload, key) if masked else payload
        self.c["frames_tx"] += 1
        self.send_raw(hdr + body)

    def send_close(self, code, reason=b""):
        if self.a.plain:
            # No close frame without WebSocket: end our half of the TCP
            # connection instead.
            self.closing = True
            self.log("close-sent", "plain-shutdown")
            self.sock.shutdown(socket.SHUT_WR)
            return
        payload = struct.pack("!H", code) + reason if code else b""
        self.send_frame(OP_CLOSE, payload)
        self.closing = True
        self.log("close-sent", "code=%d" % code,
                 "reason=%s" % reason.decode(errors="replace"))

    def send_ping(self, payload):
        self.pings_sent.append(bytes(payload))
        self.c["pings_tx"] += 1
        self.send_frame(OP_PING, payload)

    # ---- frames in ---------------------------------------------------------

    def parse_frames(self):
        """Decode every complete frame in rbuf, strictly."""
        if self.a.plain:
            self.stream += self.rbuf
            self.rbuf.clear()
            return
        while True:
            buf = self.rbuf
            if len(buf) < 2:
                return
            b0, b1 = buf[0], buf[1]
            fin, rsv, op = b0 >> 7, (b0 >> 4) & 7, b0 & 15
            masked, ln = b1 >> 7, b1 & 127
            pos = 2
            if ln == 126:
                if len(buf) < 4:
                    return
                ln = struct.unpack_from("!H", buf, 2)[0]
                pos = 4
                if ln < 126:
                    raise KernelViolation("non-minimal 16-bit length %d" % ln)
            elif ln == 127:
                if len(buf) < 10:
                    return
                ln = struct.unpack_from("!Q", buf, 2)[0]
                pos = 10
                if ln >> 63:
                    raise KernelViolation("64-bit length with top bit set")
                if ln < 65536:
                    raise KernelViolation("non-minimal 64-bit length %d" % ln)
            if rsv:
                raise KernelViolation("reserved bits 0x%x set" % rsv)
            if op not in DATA_OPS + CONTROL_OPS:
                raise KernelViolation("unknown opcode 0x%x" % op)
            if self.server and not masked:
                raise KernelViolation("unmasked frame to the server role")
            if not self.server and masked:
                raise KernelViolation("masked frame to the client role")
            if ln > MAX_PAYLOAD:
                raise KernelViolation("frame of %d bytes" % ln)
            key = None
            if masked:
                if len(buf) < pos + 4:
                    return
                key = bytes(buf[pos:pos + 4])
                pos += 4
            if len(buf) < pos + ln:
                return
            payload = bytes(buf[pos:pos + ln])
            del self.rbuf[:pos + ln]
            if key is not None:
                if key in self.mask_keys:
                    self.c["mask_key_repeats"] += 1
                if len(self.mask_keys) < 100000:
                    self.mask_keys.add(key)
                payload = mask_bytes(payload, key)
            self.c["frames_rx"] += 1
            self.on_frame(fin, op, payload)

    def on_frame(self, fin, op, payload):
        if op in CONTROL_OPS:
            if not fin:
                raise KernelViolation("fragmented control frame")
            if len(payload) > 125:
                raise KernelViolation("control frame of %d bytes" %
                                      len(payload))
            if op == OP_PING:
                self.c["pings_rx"] += 1
                self.log("ping-received", "len=%d" % len(payload),
                         "n=%d" % self.c["pings_rx"])
                answer = (not self.a.no_pong and
                          (self.a.no_pong_after is None or
                           self.c["pings_rx"] <= self.a.no_pong_after))
                if answer and not self.closing:
                    self.c["pongs_tx"] += 1
                    self.send_frame(OP_PONG, payload)
            elif op == OP_PONG:
                self.on_pong(payload)
            else:
                self.on_close(payload)
            return
        if op == OP_TEXT:
            raise KernelViolation("text frame")
        if op == OP_CONT and not self.in_message:
            raise KernelViolation("continuation without a start")
        if op == OP_BINARY and self.in_message:
            raise KernelViolation("new message inside a fragmented one")
        if self.closing:
            # Data the other end sent before it saw our close: dropped.
            return
        self.in_message = not fin
        self.stream += payload

    def on_pong(self, payload):
        if payload in self.pings_sent:
            # A pong may answer only the latest of several pings (RFC 6455
            # 5.5.3): everything up to the one it echoes is settled.
            i = self.pings_sent.index(payload)
            del self.pings_sent[:i + 1]
            self.c["pongs_ok"] += 1
            self.log("pong-ok", "len=%d" % len(payload))
        else:
            self.c["pong_mismatch"] += 1
            self.log("pong-mismatch", "len=%d" % len(payload),
                     "payload=%s" % payload.hex())

    def on_close(self, payload):
        if len(payload) == 1:
            raise KernelViolation("close frame with a 1-byte payload")
        code = struct.unpack("!H", payload[:2])[0] if payload else 1005
        reason = payload[2:].decode("utf-8", errors="replace")
        self.close_code = code
        self.log("close-received", "code=%d" % code, "reason=%s" % reason)
        if not self.closing:
            # Echo the code (RFC 6455 5.5.1), then the TCP connection ends.
            self.send_close(code if payload else 0)
        raise PeerClosed("close %d" % code)

    def pump(self, timeout):
        """One read (bounded by @timeout) plus frame decoding."""
        got = self.recv_some(timeout)
        self.parse_frames()
        return got

    def need(self, n, what):
        deadline = time.monotonic() + self.a.handshake_timeout
        while len(self.stream) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise KernelViolation("timed out waiting for %s" % what)
            self.pump(left)
        out = bytes(self.stream[:n])
        del self.stream[:n]
        return out

    # ---- NBD handshake (we are the NBD server) -----------------------------

    def send_msg(self, data):
        """A handshake message: one binary message, one frame."""
        self.send_frame(OP_BINARY, data)

    def opt_reply(self, opt, rtype, data=b""):
        self.send_msg(struct.pack("!QIII", NBD_OPT_REPLY_MAGIC, opt, rtype,
                                  len(data)) + data)

    def tflags(self):
        f = (NBD_TF_HAS_FLAGS | NBD_TF_SEND_FLUSH | NBD_TF_SEND_FUA |
             NBD_TF_SEND_TRIM | NBD_TF_SEND_WRITE_ZEROES)
        if self.a.read_only:
            f |= NBD_TF_READ_ONLY
        return f

    def handshake(self):
        self.send_msg(struct.pack("!QQH", NBD_INIT_PASSWD, NBD_IHAVEOPT,
                                  NBD_FLAG_FIXED_NEWSTYLE |
                                  NBD_FLAG_NO_ZEROES))
        cflags = struct.unpack("!I", self.need(4, "client flags"))[0]
        no_zeroes = bool(cflags & NBD_FLAG_C_NO_ZEROES)
        while True:
            magic, opt, ln = struct.unpack("!QII", self.need(16, "option"))
            if magic != NBD_IHAVEOPT:
                raise KernelViolation("bad option magic 0x%x" % magic)
            if ln > MAX_OPTION:
                raise KernelViolation("option of %d bytes" % ln)
            data = self.need(ln, "option data") if ln else b""
            self.log("option", opt, "len=%d" % ln)
            if opt == NBD_OPT_EXPORT_NAME:
                self.check_name(data)
                reply = struct.pack("!QH", self.export.size, self.tflags())
                if not no_zeroes:
                    reply += bytes(124)
                self.send_msg(reply)
                self.log("handshake-done", "via=export-name",
                         "size=%d" % self.export.size)
                return
            if opt == NBD_OPT_ABORT:
                self.opt_reply(opt, NBD_REP_ACK)
                self.log("handshake-abort")
                raise PeerClosed("abort")
            if self.a.export_name_only:
                self.opt_reply(opt, NBD_REP_ERR_UNSUP)
                continue
            if opt == NBD_OPT_LIST:
                name = self.a.export_name.encode()
                self.opt_reply(opt, NBD_REP_SERVER,
                               struct.pack("!I", len(name)) + name)
                self.opt_reply(opt, NBD_REP_ACK)
                continue
            if opt in (NBD_OPT_GO, NBD_OPT_INFO):
                if len(data) < 6:
                    self.opt_reply(opt, NBD_REP_ERR_INVALID)
                    continue
                nlen = struct.unpack_from("!I", data)[0]
                if 4 + nlen + 2 > len(data):
                    self.opt_reply(opt, NBD_REP_ERR_INVALID)
                    continue
                if not self.check_name(data[4:4 + nlen], opt):
                    continue
                self.opt_reply(opt, NBD_REP_INFO,
                               struct.pack("!HQH", NBD_INFO_EXPORT,
                                           self.export.size, self.tflags()))
                self.opt_reply(opt, NBD_REP_INFO,
                               struct.pack("!HIII", NBD_INFO_BLOCK_SIZE,
                                           self.a.block_min, 4096,
                                           32 * 1024 * 1024))
                self.opt_reply(opt, NBD_REP_ACK)
                if opt == NBD_OPT_GO:
                    self.log("handshake-done", "via=go",
                             "size=%d" % self.export.size)
                    return
                continue
            self.opt_reply(opt, NBD_REP_ERR_UNSUP)

    def check_name(self, name, opt=None):
        want = self.a.export_name.encode()
        if name in (want, b""):
            return True
        if opt is None:
            raise KernelViolation("unknown export %r" % name)
        self.opt_reply(opt, NBD_REP_ERR_UNKNOWN)
        return False

    # ---- transmission --------------------------------------------------------

    def take_request(self):
        """One complete request from the stream, or None."""
        if len(self.stream) < 28:
            return None
        magic, flags, typ, cookie, off, ln = struct.unpack_from(
            "!IHHQQI", self.stream)
        if magic != NBD_REQUEST_MAGIC:
            raise KernelViolation("bad request magic 0x%x" % magic)
        need = 28 + (ln if typ == NBD_CMD_WRITE else 0)
        if typ == NBD_CMD_WRITE and ln > MAX_PAYLOAD:
            raise KernelViolation("write of %d bytes" % ln)
        if len(self.stream) < need:
            return None
        data = bytes(self.stream[28:need])
        del self.stream[:need]
        return flags, typ, cookie, off, ln, data

    def serve(self, flags, typ, cookie, off, ln, data):
        """Do the request; return its reply bytes (None for DISC)."""
        if self.a.verbose:
            self.log("request", CMD_NAMES.get(typ, typ), "off=%d" % off,
                     "len=%d" % ln, "flags=0x%x" % flags)
        err, payload = 0, b""
        in_range = off + ln <= self.export.size
        if typ == NBD_CMD_DISC:
            self.log("disc-received")
            return None
        if typ == NBD_CMD_READ:
            if in_range:
                payload = self.export.read(off, ln)
                self.c["read_bytes"] += ln
            else:
                err = NBD_EINVAL
        elif typ in (NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES):
            if self.a.read_only:
                err = NBD_EPERM
            elif not in_range:
                err = NBD_EINVAL
            elif typ == NBD_CMD_WRITE:
                self.export.write(off, data)
                self.c["write_bytes"] += ln
            else:
                self.export.zero(off, ln)
            if not err and flags & 1:       # FUA
                self.export.flush()
        elif typ == NBD_CMD_FLUSH:
            self.export.flush()
        else:
            err = NBD_EINVAL
        hdr = struct.pack("!IIQ", NBD_SIMPLE_REPLY_MAGIC, err, cookie)
        self.c["replies"] += 1
        return hdr + (payload if typ == NBD_CMD_READ and not err else b"")

    def send_replies(self, replies):
        """Put a batch of replies on the wire in the chosen shape."""
        if not replies:
            return
        if self.a.expect_pong:
            self.send_ping(os.urandom(self.rnd.choice((0, 1, 8, 125))))
        if self.a.split:
            self.send_split(replies)
        elif self.a.coalesce:
            if len(replies) > 1:
                self.c["multi_reply_frames"] += 1
            self.c["messages_tx"] += 1
            self.send_frame(OP_BINARY, b"".join(replies))
        else:
            for r in replies:
                self.c["messages_tx"] += 1
                self.send_frame(OP_BINARY, r)

    def cut(self):
        """A random fragment size: many tiny ones, some large."""
        r = self.rnd.random()
        if r < 0.4:
            return self.rnd.randint(1, 16)
        if r < 0.7:
            return self.rnd.randint(17, 1024)
        return self.rnd.randint(1025, 65536)

    def send_split(self, replies):
        """Cut the batch at random points into frames, and the frames into
        messages of random frame counts: replies end up split across
        frames and across messages, and several share a frame."""
        data = b"".join(replies)
        ends = set()
        pos = 0
        for r in replies:
            pos += len(r)
            ends.add(pos)
        pos = 0
        frames_left = 0
        while pos < len(data):
            if frames_left == 0:
                frames_left = self.rnd.randint(1, 5)
                first = True
            n = min(self.cut(), len(data) - pos)
            frames_left -= 1
            last_of_data = pos + n == len(data)
            fin = frames_left == 0 or last_of_data
            op = OP_BINARY if first else OP_CONT
            if not first:
                self.c["cont_frames_tx"] += 1
            if sum(1 for e in ends if pos < e < pos + n) > 0:
                self.c["multi_reply_frames"] += 1
            self.send_frame(op, data[pos:pos + n], fin=fin)
            pos += n
            first = False
            if fin:
                self.c["messages_tx"] += 1
                frames_left = 0
                if pos not in ends:
                    self.c["reply_split_messages"] += 1
            elif self.a.ping_between_fragments:
                # A control frame between two fragments of one message.
                if self.rnd.random() < 0.7:
                    self.send_ping(os.urandom(self.rnd.randint(0, 125)))
                else:
                    self.c["unsolicited_pongs_tx"] += 1
                    self.send_frame(OP_PONG, os.urandom(
                        self.rnd.randint(0, 125)))

    def send_violation(self, mode, reply):
        """The frame that breaks RFC 6455, instead of @reply."""
        if mode == "rsv":
            self.send_frame(OP_BINARY, reply, rsv=4)
        elif mode == "opcode":
            self.send_frame(0x3, reply)
        elif mode == "text":
            self.send_frame(OP_TEXT, reply)
        elif mode == "control-too-long":
            self.send_frame(OP_PING, b"p" * 126)
        elif mode == "control-fragmented":
            self.send_frame(OP_PING, b"frag", fin=False)
        elif mode == "bad-mask":
            # The wrong way round for our role: masked from the server,
            # unmasked from the client.
            self.send_frame(OP_BINARY, reply, force_mask=self.server)
        elif mode == "len64-topbit":
            b1 = 127 | (0 if self.server else 0x80)
            hdr = struct.pack("!BBQ", 0x80 | OP_BINARY, b1,
                              (1 << 63) | len(reply))
            if not self.server:
                hdr += os.urandom(4)
            self.send_raw(hdr + reply)
        elif mode == "cont-without-start":
            self.send_frame(OP_CONT, reply)
        self.log("violation-sent", mode)

    def transmission(self):
        a = self.a
        idle_deadline = time.monotonic() + a.idle_timeout
        while True:
            left = idle_deadline - time.monotonic()
            if left <= 0:
                self.log("idle-timeout")
                return EXIT_IDLE
            if not self.pump(min(left, 0.5)):
                continue
            idle_deadline = time.monotonic() + a.idle_timeout
            if a.coalesce:
                # Hold briefly so that requests sent together are answered
                # together (several replies in one frame).
                hold = time.monotonic() + 0.005
                while time.monotonic() < hold and self.pump(0.002):
                    pass
            replies = []
            while True:
                req = self.take_request()
                if req is None:
                    break
                self.c["requests"] += 1
                n = self.c["requests"]
                if a.close_after is not None and n > a.close_after:
                    self.send_replies(replies)
                    self.log("close-after", "request=%d" % n)
                    self.send_close(a.close_code, a.close_reason.encode())
                    return self.drain_after_close()
                if a.violation and n > a.after:
                    self.send_replies(replies)
                    reply = self.serve(*req) or b""
                    self.send_violation(a.violation, reply)
                    return self.drain_after_close()
                reply = self.serve(*req)
                if reply is None:   # DISC: the kernel closes next
                    self.send_replies(replies)
                    return self.drain_after_close()
                replies.append(reply)
            self.send_replies(replies)

    def drain_after_close(self):
        """Wait (bounded) for the kernel's close frame, or the TCP end.
        Its frames must stay valid meanwhile (a KernelViolation goes up);
        requests it sent before it saw our close are dropped."""
        deadline = time.monotonic() + self.a.close_wait
        while time.monotonic() < deadline:
            try:
                self.pump(deadline - time.monotonic())
            except PeerClosed:
                return EXIT_OK
            self.stream.clear()
        self.log("close-wait-timeout")
        return EXIT_OK

    def summary(self):
        self.log("summary", " ".join("%s=%d" % kv for kv in
                                     sorted(self.c.items())),
                 "pings_unanswered=%d" % len(self.pings_sent),
                 "close_code=%s" % self.close_code)


# ---- HTTP upgrade -------------------------------------------------------------

def read_http_header(sock, rbuf, timeout):
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in rbuf:
        if len(rbuf) > MAX_HTTP_HEADER:
            raise KernelViolation("HTTP header over %d bytes" %
                                  MAX_HTTP_HEADER)
        left = deadline - time.monotonic()
        r, _, _ = select.select([sock], [], [], max(left, 0))
        if not r:
            raise KernelViolation("timed out reading the HTTP header")
        b = sock.recv(4096)
        if not b:
            raise PeerClosed("eof in HTTP header")
        rbuf += b
    end = rbuf.index(b"\r\n\r\n") + 4
    head = bytes(rbuf[:end]).decode("latin-1")
    del rbuf[:end]
    lines = head.split("\r\n")[:-2]
    hdrs = {}
    for line in lines[1:]:
        if ":" not in line:
            raise KernelViolation("malformed header line %r" % line)
        k, v = line.split(":", 1)
        k = k.strip().lower()
        hdrs[k] = (hdrs[k] + ", " + v.strip()) if k in hdrs else v.strip()
    return lines[0], hdrs


def has_token(value, token):
    return token.lower() in [t.strip().lower() for t in value.split(",")]


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()
                            ).decode()


def server_upgrade(sock, rbuf, args, log):
    """Validate the client's upgrade request and answer 101 (or 4xx)."""
    line, h = read_http_header(sock, rbuf, args.handshake_timeout)
    parts = line.split(" ")
    problem = None
    key = h.get("sec-websocket-key", "")
    try:
        raw_key = base64.b64decode(key, validate=True)
    except ValueError:
        raw_key = b""
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        problem = "bad request line %r" % line
    elif args.path is not None and parts[1] != args.path:
        problem = "path %r, wanted %r" % (parts[1], args.path)
    elif "host" not in h:
        problem = "no Host header"
    elif not has_token(h.get("upgrade", ""), "websocket"):
        problem = "Upgrade is not websocket"
    elif not has_token(h.get("connection", ""), "upgrade"):
        problem = "Connection lacks upgrade"
    elif h.get("sec-websocket-version") != "13":
        problem = "Sec-WebSocket-Version %r" % h.get("sec-websocket-version")
    elif len(raw_key) != 16:
        problem = "Sec-WebSocket-Key %r is not 16 bytes of base64" % key
    elif args.auth is not None and h.get("authorization") != args.auth:
        log("upgrade-rejected", "authorization")
        sock.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
                     b"WWW-Authenticate: Basic realm=\"nbdws\"\r\n\r\n")
        raise PeerClosed("401")
    if problem:
        log("upgrade-rejected", problem)
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        raise PeerClosed("400")
    resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
            % accept_for(key))
    offered = h.get("sec-websocket-protocol")
    chosen = None
    if offered and args.subprotocol:
        if has_token(offered, args.subprotocol):
            chosen = args.subprotocol
            resp += "Sec-WebSocket-Protocol: %s\r\n" % chosen
    sock.sendall((resp + "\r\n").encode())
    log("upgrade-done", "role=server", "path=%s" % parts[1],
        "subprotocol=%s" % chosen)


def client_upgrade(sock, rbuf, args, log):
    """Send the upgrade request and check the 101 answer strictly."""
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n" % (args.path or "/",
                                               args.host_header, key))
    if args.subprotocol:
        req += "Sec-WebSocket-Protocol: %s\r\n" % args.subprotocol
    sock.sendall((req + "\r\n").encode())
    line, h = read_http_header(sock, rbuf, args.handshake_timeout)
    parts = line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "HTTP/1.1" or parts[1] != "101":
        raise KernelViolation("upgrade answered %r" % line)
    if not has_token(h.get("upgrade", ""), "websocket"):
        raise KernelViolation("101 without Upgrade: websocket")
    if not has_token(h.get("connection", ""), "upgrade"):
        raise KernelViolation("101 without Connection: Upgrade")
    if h.get("sec-websocket-accept") != accept_for(key):
        raise KernelViolation("wrong Sec-WebSocket-Accept %r" %
                              h.get("sec-websocket-accept"))
    log("upgrade-done", "role=client")


# ---- main ---------------------------------------------------------------------

def host_port(text):
    host, _, port = text.rpartition(":")
    return (host or "127.0.0.1", int(port))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--role", choices=("server", "client"), required=True)
    p.add_argument("--listen", type=host_port, help="server role")
    p.add_argument("--port-file", help="server role: write the bound port")
    p.add_argument("--accept", type=int, default=1,
                   help="server role: connections to serve, one by one")
    p.add_argument("--connect", type=host_port, help="client role")
    p.add_argument("--fd", type=int, help="client role: connected socket")
    p.add_argument("--path", help="request path (server: required value)")
    p.add_argument("--host-header", default="localhost")
    p.add_argument("--subprotocol")
    p.add_argument("--auth", help="server role: required Authorization")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--file")
    p.add_argument("--export-name", default="")
    p.add_argument("--export-name-only", action="store_true")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--block-min", type=int, default=512)
    p.add_argument("--split", choices=("random",))
    p.add_argument("--coalesce", action="store_true")
    p.add_argument("--ping-between-fragments", action="store_true")
    p.add_argument("--expect-pong", action="store_true")
    p.add_argument("--no-pong", action="store_true",
                   help="never answer the kernel's pings")
    p.add_argument("--no-pong-after", type=int,
                   help="answer that many pings, then stop answering")
    p.add_argument("--close-after", type=int)
    p.add_argument("--close-code", type=int, default=1001)
    p.add_argument("--close-reason", default="peer going away")
    p.add_argument("--violation", choices=VIOLATIONS)
    p.add_argument("--after", type=int, default=1,
                   help="requests served before the violation")
    p.add_argument("--plain", action="store_true",
                   help="no WebSocket at all: plain NBD on the socket, to "
                   "dry-run a test against the plain transport")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--log")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--handshake-timeout", type=float, default=60)
    p.add_argument("--idle-timeout", type=float, default=300)
    p.add_argument("--close-wait", type=float, default=60)
    a = p.parse_args(argv)
    if a.ping_between_fragments:
        a.split = "random"
    if a.plain and (a.split or a.coalesce or a.expect_pong or a.violation):
        p.error("--plain has no frames to shape or break")
    if a.role == "server" and not a.listen:
        p.error("--role server needs --listen")
    if a.role == "client" and (a.connect is None) == (a.fd is None):
        p.error("--role client needs exactly one of --connect, --fd")
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "little")
    return a


def run_one(args, sock, export, log):
    peer = Peer(args, sock, export, log)
    status = EXIT_OK
    try:
        if args.plain:
            pass
        elif args.role == "server":
            server_upgrade(sock, peer.rbuf, args, log)
        else:
            client_upgrade(sock, peer.rbuf, args, log)
        peer.parse_frames()
        peer.handshake()
        status = peer.transmission()
    except Terminated:
        log("terminated")
        status = EXIT_PEER_ERROR
    except PeerClosed as e:
        log("closed", str(e))
    except KernelViolation as e:
        log("kernel-violation", str(e))
        try:
            peer.send_close(1002, b"protocol error")
        except (OSError, PeerClosed):
            pass
        status = EXIT_KERNEL_VIOLATION
    except OSError as e:
        log("socket-error", str(e))
        status = EXIT_PEER_ERROR
    peer.summary()
    if status == EXIT_OK and peer.c["pong_mismatch"]:
        status = EXIT_PONG_MISMATCH
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
    return status


def main(argv):
    args = parse_args(argv)
    log = Log(args.log)
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    export = Export(args)
    log("start", "role=%s" % args.role, "seed=%d" % args.seed,
        "size=%d" % export.size)
    if args.role == "client":
        if args.fd is not None:
            sock = socket.socket(fileno=args.fd)
        else:
            sock = socket.create_connection(args.connect, timeout=30)
            sock.settimeout(None)
        return run_one(args, sock, export, log)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(args.listen)
    lsock.listen(4)
    port = lsock.getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    log("listening", "port=%d" % port)
    status = EXIT_OK
    for _ in range(args.accept):
        sock, _ = lsock.accept()
        status = run_one(args, sock, export, log) or status
    lsock.close()
    return status


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Terminated:
        sys.exit(EXIT_PEER_ERROR)
