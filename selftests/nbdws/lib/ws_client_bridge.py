#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A WebSocket client written by someone else, in front of an NBD server.

    ws_client_bridge.py WS-URL UNIX-SOCKET

Connects to WS-URL with the `websockets` library (Debian's
python3-websockets, an independent RFC 6455 implementation: it masks what
it sends and checks what it receives) and relays between that WebSocket
and the NBD server on UNIX-SOCKET: every chunk the server writes goes out
as one binary message, every message received goes to the server. This
puts nbdws.ko in the browser case, the ws-server role, against a peer
that nobody in this project wrote. Exits 0 when either side closes
normally, 1 on an error (a text message included: NBD is binary).
"""
import asyncio
import sys

import websockets


async def relay(url, sock_path):
    async with websockets.connect(url, max_size=None, compression=None,
                                  ping_interval=None,
                                  open_timeout=60) as ws:
        reader, writer = await asyncio.open_unix_connection(sock_path)

        async def server_to_ws():
            while True:
                data = await reader.read(1 << 20)
                if not data:
                    break
                await ws.send(data)
            await ws.close()

        async def ws_to_server():
            async for msg in ws:
                if isinstance(msg, str):
                    raise RuntimeError("text message from the kernel")
                writer.write(msg)
                await writer.drain()
            writer.close()

        tasks = [asyncio.create_task(server_to_ws()),
                 asyncio.create_task(ws_to_server())]
        done, pending = await asyncio.wait(
            tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in done:
            t.result()


def main(argv):
    if len(argv) != 3:
        print("usage: ws_client_bridge.py WS-URL UNIX-SOCKET", file=sys.stderr)
        return 2
    try:
        asyncio.run(relay(argv[1], argv[2]))
    except websockets.exceptions.ConnectionClosedOK:
        pass
    except Exception as e:  # noqa: BLE001 - report anything, then fail
        print("ws_client_bridge: %s: %s" % (type(e).__name__, e),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
