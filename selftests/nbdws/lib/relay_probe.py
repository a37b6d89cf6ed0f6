#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Raw HTTP probes of nbdws-relay for the selftests: exact status lines,
headers, /status JSON, slow and abusive clients. Standard library only.

    relay_probe.py [CONNECT] http [REQUEST OPTIONS] [--expect NNN]
                   [--expect-header 'Name: value'] [--expect-body TEXT]
    relay_probe.py [CONNECT] json PATH [--token T] [--get EXPR]...
                   [--check EXPR=JSON]...
    relay_probe.py [CONNECT] slowloris [--interval S] [--max S]
                   [--expect-within S]
    relay_probe.py [CONNECT] storm --count N [--token T] [--slot NAME]

CONNECT: --connect HOST:PORT (default 127.0.0.1:8080) or --unix PATH, and
--tls with --cafile F [--cert F --key F] for wss.

http builds a request (--method, --path, --header 'Name: v' repeatable,
--upgrade for a WebSocket upgrade with version --ws-version, --token for
a Bearer header, --pad N for one extra header N bytes long, --fields N for
N extra header fields, --line N for a request target N bytes long) and
prints the response: "status NNN", then "header Name: value" lines, then
"body TEXT". Exit 0 when every --expect* matches, else 1 (what came is
printed either way).

json GETs PATH, requires 200 and a JSON body, and prints each --get EXPR's
value as JSON on a line of its own (strings bare); --check EXPR=JSON
compares. EXPR: dotted keys, [N] indexes and [key=value] selectors:
"slots[name=disk0].kernel.conns[0].transport".

slowloris sends a valid-looking request one header byte every --interval
seconds and never finishes it; prints "closed after S s: STATUS-LINE" and
exits 0 if the relay closed within --expect-within seconds.

storm sends N bad handshakes in a row (kinds rotate: no token, bad token,
wrong version, garbage, oversized header, cut-off header, a valid upgrade
closed at once, POST, unknown path) and requires each to be refused
with its status or closed; prints a tally, exits 1 on any surprise.
"""
import argparse
import base64
import json
import os
import socket
import ssl
import sys
import time


def printable(b):
    if isinstance(b, bytes):
        b = b.decode("latin-1")
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in b)


class Conn:
    def __init__(self, args, timeout=30):
        if args.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(args.unix)
        else:
            host, _, port = args.connect.rpartition(":")
            s = socket.create_connection((host.strip("[]"), int(port)),
                                         timeout)
        if args.tls:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=args.cafile)
            if args.cert:
                ctx.load_cert_chain(args.cert, args.key)
            s = ctx.wrap_socket(s, server_hostname=args.connect.rpartition(
                ":")[0].strip("[]") if not args.unix else "localhost")
        self.s = s

    def send(self, data):
        self.s.sendall(data)

    def read_all(self, limit=1 << 20):
        """Everything until the peer closes (responses carry Connection:
        close). Returns (bytes, closed_cleanly)."""
        out = b""
        try:
            while len(out) < limit:
                d = self.s.recv(65536)
                if not d:
                    return out, True
                out += d
                # A 101 keeps the connection: the head is all there is.
                if out.startswith(b"HTTP/1.1 101 ") and b"\r\n\r\n" in out:
                    return out, False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return out, False
        return out, False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def build_request(a, host):
    target = a.path
    if a.line:
        pad = "x" * max(0, a.line - len(target) - 3)
        target += ("&" if "?" in target else "?") + "p=" + pad
    h = ["%s %s HTTP/1.1" % (a.method, target), "Host: %s" % host]
    if a.upgrade:
        h += ["Upgrade: websocket", "Connection: Upgrade",
              "Sec-WebSocket-Key: %s" % ws_key(),
              "Sec-WebSocket-Version: %s" % a.ws_version]
    if a.token:
        h.append("Authorization: Bearer %s" % a.token)
    h += a.header
    for i in range(a.fields):
        h.append("X-Field-%d: %d" % (i, i))
    if a.pad:
        h.append("X-Pad: " + "p" * a.pad)
    return ("\r\n".join(h) + "\r\n\r\n").encode()


def parse_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = None
    if lines and lines[0].startswith("HTTP/1.1 "):
        try:
            status = int(lines[0].split(" ")[1])
        except ValueError:
            pass
    hdrs = []
    for ln in lines[1:]:
        name, sep, value = ln.partition(":")
        if sep:
            hdrs.append((name.strip(), value.strip()))
    return status, lines[0] if lines else "", hdrs, body


def request(args, raw):
    c = Conn(args)
    try:
        c.send(raw)
        data, _ = c.read_all()
    finally:
        c.close()
    return parse_response(data)


def cmd_http(a):
    status, line, hdrs, body = request(a, build_request(a, a.connect))
    print("status %s" % (status if status is not None else
                         "none (%s)" % printable(line)))
    for k, v in hdrs:
        print("header %s: %s" % (printable(k), printable(v)))
    print("body %s" % printable(body.strip()))
    ok = True
    if a.expect is not None and status != a.expect:
        print("# expected status %d" % a.expect)
        ok = False
    for want in a.expect_header:
        name, _, value = want.partition(":")
        got = [v for k, v in hdrs if k.lower() == name.strip().lower()]
        if value.strip().lower() not in [g.lower() for g in got]:
            print("# expected header %s, got %s" % (want, got))
            ok = False
    for name in a.expect_no_header:
        if any(k.lower() == name.lower() for k, _ in hdrs):
            print("# header %s should be absent" % name)
            ok = False
    if a.expect_body is not None and a.expect_body not in \
            body.decode("latin-1"):
        print("# expected %r in the body" % a.expect_body)
        ok = False
    return 0 if ok else 1


def lookup(obj, expr):
    """Walk EXPR (see the module doc) through obj."""
    i = 0
    while i < len(expr):
        if expr[i] == ".":
            i += 1
            continue
        if expr[i] == "[":
            j = expr.index("]", i)
            sel = expr[i + 1:j]
            i = j + 1
            if "=" in sel:
                k, _, v = sel.partition("=")
                match = [o for o in obj if isinstance(o, dict) and
                         str(o.get(k)) == v]
                if len(match) != 1:
                    raise KeyError("%s matches %d entries" % (sel, len(match)))
                obj = match[0]
            else:
                obj = obj[int(sel)]
            continue
        j = i
        while j < len(expr) and expr[j] not in ".[":
            j += 1
        obj = obj[expr[i:j]]
        i = j
    return obj


def split_check(chk):
    """"EXPR=JSON" at the first '=' outside [...] selectors."""
    depth = 0
    for i, c in enumerate(chk):
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "=" and depth == 0:
            return chk[:i], chk[i + 1:]
    raise ValueError("--check wants EXPR=JSON, got %r" % chk)


def cmd_json(a):
    a.method, a.upgrade, a.fields, a.pad, a.line = "GET", False, 0, 0, 0
    a.ws_version = "13"
    status, line, _, body = request(a, build_request(a, a.connect))
    if status != 200:
        print("# GET %s: %s %s" % (a.path, printable(line),
                                  printable(body.strip())), file=sys.stderr)
        return 1
    try:
        doc = json.loads(body)
    except ValueError as e:
        print("# GET %s: not JSON (%s): %s" % (a.path, e,
                                              printable(body[:200])),
              file=sys.stderr)
        return 1
    if a.dump:
        print(json.dumps(doc, indent=1, sort_keys=True), file=sys.stderr)
    rc = 0
    for expr in a.get:
        try:
            v = lookup(doc, expr)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            print("# %s: %s" % (expr, e), file=sys.stderr)
            rc = 1
            print("")
            continue
        print(v if isinstance(v, str) else json.dumps(v))
    for chk in a.check:
        expr, want = split_check(chk)
        if expr.endswith("!"):
            expr, negate = expr[:-1], True
        else:
            negate = False
        try:
            v = lookup(doc, expr)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            print("# %s: %s" % (expr, e), file=sys.stderr)
            rc = 1
            continue
        if (v == json.loads(want)) == negate:
            print("# %s is %s, expected %s%s" % (expr, json.dumps(v),
                                                "not " if negate else "",
                                                want), file=sys.stderr)
            rc = 1
    return rc


def cmd_slowloris(a):
    c = Conn(a)
    t0 = time.monotonic()
    c.s.settimeout(a.interval)
    req = ("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\n" % a.path).encode()
    got = b""
    closed = False
    try:
        c.send(req)
        drip = b"X-Slow-%d: drip\r\n"
        i = 0
        while time.monotonic() - t0 < a.max:
            for b in drip % i:
                c.send(bytes([b]))
                try:
                    d = c.s.recv(4096)
                    if not d:
                        closed = True
                        break
                    got += d
                except socket.timeout:
                    continue
            if closed:
                break
            i += 1
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        closed = True
    finally:
        c.close()
    el = time.monotonic() - t0
    line = got.split(b"\r\n")[0]
    print("closed after %.1f s: %s" % (el, printable(line) if line
                                       else "(no response)") if closed else
          "still open after %.1f s" % el)
    if not closed or el > a.expect_within:
        return 1
    if a.expect is not None and line and \
            not line.startswith(b"HTTP/1.1 %d " % a.expect):
        print("# expected status %d or no response" % a.expect)
        return 1
    return 0


def storm_kinds(a):
    slot = a.slot
    good = "Authorization: Bearer %s\r\n" % a.token if a.token else ""
    up = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: %s\r\n" % ws_key())
    return [
        ("no-token", 401, "GET /%s HTTP/1.1\r\nHost: x\r\n%s"
         "Sec-WebSocket-Version: 13\r\n\r\n" % (slot, up)),
        ("bad-token", 401, "GET /%s HTTP/1.1\r\nHost: x\r\n%s"
         "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer "
         "wrongwrongwrongwrong\r\n\r\n" % (slot, up)),
        ("version", 426, "GET /%s HTTP/1.1\r\nHost: x\r\n%s%s"
         "Sec-WebSocket-Version: 7\r\n\r\n" % (slot, up, good)),
        ("garbage", 400, "\x16\x03\x01\x02\x00garbage\r\n\r\n"),
        ("oversized", 431, "GET /%s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n"
         % (slot, "b" * 9000)),
        ("cut-off", None, "GET /%s HTTP/1.1\r\nHost: x\r\nUpgr" % slot),
        ("upgrade-then-close", None, "GET /%s HTTP/1.1\r\nHost: x\r\n%s%s"
         "Sec-WebSocket-Version: 13\r\n\r\n" % (slot, up, good)),
        ("post", 405, "POST /%s HTTP/1.1\r\nHost: x\r\n%s"
         "Content-Length: 0\r\n\r\n" % (slot, good)),
        ("unknown", 404, "GET /no-such-slot HTTP/1.1\r\nHost: x\r\n%s%s"
         "Sec-WebSocket-Version: 13\r\n\r\n" % (up, good)),
    ]


def cmd_storm(a):
    tally = {}
    surprises = 0
    t0 = time.monotonic()
    for i in range(a.count):
        kinds = storm_kinds(a)
        name, want, raw = kinds[i % len(kinds)]
        if name == "upgrade-then-close" and not a.token:
            name, want, raw = kinds[0]
        try:
            c = Conn(a, timeout=a.timeout)
        except OSError as e:
            print("# %d %s: connect: %s" % (i, name, e))
            surprises += 1
            continue
        try:
            c.send(raw.encode("latin-1"))
            if want is None:
                # Cut off / walk away: close without reading.
                c.s.shutdown(socket.SHUT_RDWR)
                tally[name] = tally.get(name, 0) + 1
                continue
            data, _ = c.read_all()
            status, line, _, _ = parse_response(data)
            if status != want:
                surprises += 1
                print("# %d %s: got %s, expected %d" %
                      (i, name, printable(line) or "nothing", want))
            tally[name] = tally.get(name, 0) + 1
        except (OSError, ssl.SSLError) as e:
            surprises += 1
            print("# %d %s: %s: %s" % (i, name, type(e).__name__, e))
        finally:
            c.close()
    print("storm: %d requests in %.1f s, %d surprises: %s" %
          (a.count, time.monotonic() - t0, surprises,
           " ".join("%s=%d" % kv for kv in sorted(tally.items()))))
    return 1 if surprises else 0


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--connect", default="127.0.0.1:8080")
    p.add_argument("--unix")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--cafile")
    p.add_argument("--cert")
    p.add_argument("--key")
    sub = p.add_subparsers(dest="cmd", required=True)

    h = sub.add_parser("http")
    h.add_argument("--method", default="GET")
    h.add_argument("--path", default="/")
    h.add_argument("--header", action="append", default=[])
    h.add_argument("--upgrade", action="store_true")
    h.add_argument("--ws-version", default="13")
    h.add_argument("--token")
    h.add_argument("--pad", type=int, default=0)
    h.add_argument("--fields", type=int, default=0)
    h.add_argument("--line", type=int, default=0)
    h.add_argument("--expect", type=int)
    h.add_argument("--expect-header", action="append", default=[])
    h.add_argument("--expect-no-header", action="append", default=[])
    h.add_argument("--expect-body")

    j = sub.add_parser("json")
    j.add_argument("path")
    j.add_argument("--token")
    j.add_argument("--header", action="append", default=[])
    j.add_argument("--get", action="append", default=[])
    j.add_argument("--check", action="append", default=[])
    j.add_argument("--dump", action="store_true")

    s = sub.add_parser("slowloris")
    s.add_argument("--path", default="/")
    s.add_argument("--interval", type=float, default=0.5)
    s.add_argument("--max", type=float, default=60)
    s.add_argument("--expect-within", type=float, default=30)
    s.add_argument("--expect", type=int)

    st = sub.add_parser("storm")
    st.add_argument("--count", type=int, default=500)
    st.add_argument("--token")
    st.add_argument("--slot", default="disk0")
    st.add_argument("--timeout", type=float, default=30)

    a = p.parse_args(argv[1:])
    try:
        return {"http": cmd_http, "json": cmd_json,
                "slowloris": cmd_slowloris, "storm": cmd_storm}[a.cmd](a)
    except (OSError, ssl.SSLError) as e:
        print("error %s: %s" % (type(e).__name__, e))
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
