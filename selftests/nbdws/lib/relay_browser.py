#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Play the browser against nbdws-relay: a WebSocket client nobody here
wrote (Debian's python3-websockets) that serves an NBD export.

    relay_browser.py [OPTIONS] WS-URL NBD-UNIX-SOCKET

Connects to WS-URL the way a page does and, once the upgrade is answered,
relays between that WebSocket and the NBD server on NBD-UNIX-SOCKET
(nbdkit -U): every chunk the server writes goes out as one binary
message, every message received goes to the server. The relay runs the
NBD handshake through it as the client and then hands the socket to the
kernel, so after that the peer of this process is nbdws.ko itself.

What a page can send is an option: --subprotocol (repeatable; a token
offered this way must come back as the chosen subprotocol), --header
'Name: value' (Authorization, Cookie ...), --origin, a ?token= in the URL,
and for wss:// --cafile (verification always on) with an optional client
certificate (--cert/--key). --unix PATH connects to a relay listening on
a unix socket instead of TCP.

Signals: SIGTERM or SIGINT closes with code 1000 (a page's Stop button),
SIGUSR1 with 1001 (a tab going away). SIGKILL is a crashed browser.

One line per event on stdout (and --events FILE), for the test to read:
  open subprotocol=NAME|-
  refused status=NNN header=NAME:VALUE ...
  closed code=NNNN reason=TEXT by=server|client after=SECONDS-OPEN
  error TYPE: TEXT
Exit: 0 closed with 1000 (either side), 3 refused by HTTP status,
4 closed by the server with another code, 1 anything else.
--stall opens the WebSocket and never serves NBD: the relay's NBD
handshake must time out and close the WebSocket (1011).
"""
import argparse
import asyncio
import signal
import ssl
import sys
import time

import websockets
import websockets.exceptions as wsx

events = None


def event(line):
    print(line, flush=True)
    if events:
        with open(events, "a") as f:
            f.write(line + "\n")


def printable(s):
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in str(s))


def ssl_context(args):
    if not args.url.startswith("wss://"):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                     cafile=args.cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    return ctx


def headers(args):
    out = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            raise ValueError("--header wants 'Name: value', got %r" % h)
        out.append((name.strip(), value.strip()))
    return out


async def run(args):
    kw = dict(max_size=None, compression=None, ping_interval=None,
              open_timeout=args.open_timeout, close_timeout=10,
              subprotocols=args.subprotocol or None,
              extra_headers=headers(args), origin=args.origin)
    ctx = ssl_context(args)
    if ctx:
        kw["ssl"] = ctx
    if args.unix:
        connect = websockets.unix_connect(args.unix, args.url, **kw)
    else:
        connect = websockets.connect(args.url, **kw)
    ws = await connect
    opened = time.monotonic()
    event("open subprotocol=%s" % (printable(ws.subprotocol)
                                   if ws.subprotocol else "-"))
    loop = asyncio.get_running_loop()
    closing = {"by": "server"}

    def close_with(code, reason):
        closing["by"] = "client"
        asyncio.ensure_future(ws.close(code, reason))

    loop.add_signal_handler(signal.SIGTERM, close_with, 1000, "stop")
    loop.add_signal_handler(signal.SIGINT, close_with, 1000, "stop")
    loop.add_signal_handler(signal.SIGUSR1, close_with, 1001, "going away")

    if args.stall:
        try:
            async for _ in ws:
                pass
        except wsx.ConnectionClosed:
            pass
    else:
        reader, writer = await asyncio.open_unix_connection(args.nbd_socket)

        async def server_to_ws():
            while True:
                data = await reader.read(1 << 20)
                if not data:
                    break
                await ws.send(data)
            # The server ends after NBD_CMD_DISC: the kernel's close frame
            # (with its code) is on its way; close first only if not.
            try:
                await asyncio.wait_for(asyncio.shield(ws.wait_closed()),
                                       args.linger)
            except asyncio.TimeoutError:
                closing["by"] = "client"
                await ws.close(1000, "nbd server gone")

        async def ws_to_server():
            async for msg in ws:
                if isinstance(msg, str):
                    raise RuntimeError("text message from the relay")
                writer.write(msg)
                await writer.drain()

        tasks = [asyncio.create_task(server_to_ws()),
                 asyncio.create_task(ws_to_server())]
        done, pending = await asyncio.wait(
            tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in done:
            try:
                t.result()
            except wsx.ConnectionClosed:
                pass
        writer.close()
    await ws.wait_closed()
    code = ws.close_code if ws.close_code is not None else 1006
    event("closed code=%d reason=%s by=%s after=%.1f" %
          (code, printable(ws.close_reason or ""), closing["by"],
           time.monotonic() - opened))
    if code == 1000:
        return 0
    return 4 if closing["by"] == "server" else 1


def main(argv):
    global events
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("url")
    p.add_argument("nbd_socket", nargs="?")
    p.add_argument("--subprotocol", action="append", default=[])
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--origin")
    p.add_argument("--cafile")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--unix", help="relay's unix socket")
    p.add_argument("--stall", action="store_true")
    p.add_argument("--open-timeout", type=float, default=60)
    p.add_argument("--linger", type=float, default=5,
                   help="seconds to wait for the peer's close frame once "
                   "the NBD server has ended")
    p.add_argument("--events")
    args = p.parse_args(argv[1:])
    events = args.events
    if not args.stall and not args.nbd_socket:
        p.error("NBD-UNIX-SOCKET is required unless --stall")
    try:
        return asyncio.run(run(args))
    except wsx.InvalidStatusCode as e:
        hdrs = " ".join("header=%s:%s" % (k, printable(v))
                        for k, v in e.headers.raw_items()) \
            if getattr(e, "headers", None) else ""
        event("refused status=%d %s" % (e.status_code, hdrs))
        return 3
    except Exception as e:  # noqa: BLE001 - report anything, then fail
        event("error %s: %s" % (type(e).__name__, printable(e)))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
