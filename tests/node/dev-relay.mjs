// SPDX-License-Identifier: GPL-2.0
/*
 * A stand-in for nbdws-relay to work on the page where the module cannot
 * load: it serves web/, answers GET /slots, accepts the page's WebSocket
 * and, instead of handing it to the kernel, pairs it with the next NBD
 * client that connects to a TCP port. So any NBD client (nbdcopy,
 * nbdinfo, nbdctl info) reads the file a browser serves:
 *
 *   node tests/node/dev-relay.mjs [--port 8080] [--nbd-port 10809] [--token T]
 *   open http://127.0.0.1:8080/, pick a file, Serve
 *   nbdcopy nbd://127.0.0.1:10809 copy.img
 *
 * It logs each WebSocket's close code. Not a relay: no TLS, no hold, no
 * devices; a test and development tool only.
 */
import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TYPES = { html: 'text/html; charset=utf-8', js: 'text/javascript',
		css: 'text/css', png: 'image/png' };

/* Server-side WebSocket framing over @sock: binary out, masked in. */
class WsConn {
	constructor(sock, onData, onClose) {
		this.sock = sock;
		this.buf = Buffer.alloc(0);
		this.onData = onData;
		this.onClose = onClose;
		this.closeCode = null;
		sock.on('data', (d) => this.parse(d));
		sock.on('close', () => this.onClose(this.closeCode ?? 1006));
		sock.on('error', () => {});
	}

	frame(op, payload) {
		const n = payload.length;
		let h;

		if (n < 126) {
			h = Buffer.from([0x80 | op, n]);
		} else if (n < 65536) {
			h = Buffer.alloc(4);
			h[0] = 0x80 | op;
			h[1] = 126;
			h.writeUInt16BE(n, 2);
		} else {
			h = Buffer.alloc(10);
			h[0] = 0x80 | op;
			h[1] = 127;
			h.writeBigUInt64BE(BigInt(n), 2);
		}
		this.sock.write(Buffer.concat([h, payload]));
	}

	send(bytes) {
		if (!this.sock.destroyed)
			this.frame(2, Buffer.from(bytes));
	}

	close(code, reason = '') {
		const p = Buffer.alloc(2 + Buffer.byteLength(reason));

		p.writeUInt16BE(code, 0);
		p.write(reason, 2);
		this.closeCode = code;
		this.frame(8, p);
		this.sock.end();
	}

	parse(d) {
		this.buf = Buffer.concat([this.buf, d]);
		for (;;) {
			const b = this.buf;

			if (b.length < 2)
				return;
			const op = b[0] & 0x0f;
			let len = b[1] & 0x7f, o = 2;

			if (len === 126) {
				if (b.length < 4)
					return;
				len = b.readUInt16BE(2);
				o = 4;
			} else if (len === 127) {
				if (b.length < 10)
					return;
				len = Number(b.readBigUInt64BE(2));
				o = 10;
			}
			if (b.length < o + 4 + len)
				return;
			const mask = b.subarray(o, o + 4);
			const p = Buffer.from(b.subarray(o + 4, o + 4 + len));

			for (let i = 0; i < p.length; i++)
				p[i] ^= mask[i & 3];
			this.buf = b.subarray(o + 4 + len);
			if (op === 2 || op === 0) {
				this.onData(p);
			} else if (op === 8) {
				this.closeCode = p.length >= 2 ? p.readUInt16BE(0) : 1005;
				this.closeReason = p.subarray(2).toString();
				this.frame(8, p.subarray(0, 2));
				this.sock.end();
			} else if (op === 9) {
				this.frame(10, p);
			}
		}
	}
}

/*
 * Start it. Resolves to { port, nbdPort, closes, stop(), dropAll() }:
 * closes lists { code, reason } of every WebSocket that ended.
 */
export async function startDevRelay(o = {}) {
	const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
				 '../..');
	const web = path.join(top, 'web');
	const slots = o.slots ?? [{ name: 'disk0', default: true,
				    read_only: false, state: 'idle',
				    metadata: { description: 'Virtual media' } }];
	const closes = [];
	const waiting = [];	/* WebSockets without an NBD client yet */
	const clients = [];	/* NBD clients without a WebSocket yet */
	const live = new Set();
	const authorized = (req) => {
		if (!o.token)
			return true;
		const url = new URL(req.url, 'http://x');
		const sp = (req.headers['sec-websocket-protocol'] ?? '')
			.split(',').map((s) => s.trim());

		return req.headers.authorization === `Bearer ${o.token}` ||
			url.searchParams.get('token') === o.token ||
			sp.includes(o.token);
	};

	const httpd = http.createServer(async (req, res) => {
		const url = new URL(req.url, 'http://x');

		if (url.pathname === '/slots') {
			if (!authorized(req)) {
				res.writeHead(401).end('invalid credential\n');
				return;
			}
			res.writeHead(200, { 'Content-Type': 'application/json' })
				.end(JSON.stringify(slots));
			return;
		}
		const name = url.pathname === '/' ? 'index.html' :
			url.pathname.slice(1);

		if (name.includes('..') || name.includes('/')) {
			res.writeHead(404).end();
			return;
		}
		try {
			const body = await fs.readFile(path.join(web, name));

			res.writeHead(200, { 'Content-Type':
				TYPES[name.split('.').pop()] ?? 'application/octet-stream' })
				.end(body);
		} catch {
			res.writeHead(404).end('not found\n');
		}
	});

	httpd.on('upgrade', (req, sock) => {
		if (!authorized(req)) {
			sock.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
			return;
		}
		const accept = crypto.createHash('sha1')
			.update(req.headers['sec-websocket-key'] + GUID)
			.digest('base64');
		const sp = req.headers['sec-websocket-protocol'];
		const chosen = sp ? sp.split(',')[0].trim() : null;

		sock.write('HTTP/1.1 101 Switching Protocols\r\n' +
			   'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
			   `Sec-WebSocket-Accept: ${accept}\r\n` +
			   (chosen ? `Sec-WebSocket-Protocol: ${chosen}\r\n` : '') +
			   '\r\n');
		sock.setNoDelay(true);
		const ent = { pending: [], tcp: null, ws: null };

		ent.ws = new WsConn(sock, (d) => {
			if (ent.tcp)
				ent.tcp.write(d);
			else
				ent.pending.push(d);
		}, (code) => {
			closes.push({ code, reason: ent.ws.closeReason ?? '' });
			live.delete(ent);
			const i = waiting.indexOf(ent);

			if (i >= 0)
				waiting.splice(i, 1);
			ent.tcp?.end();
		});
		live.add(ent);
		if (clients.length)
			pair(ent, clients.shift());
		else
			waiting.push(ent);
	});

	/* Join a WebSocket and an NBD client, whichever came first. */
	const pair = (ent, c) => {
		ent.tcp = c;
		for (const d of ent.pending)
			c.write(d);
		ent.pending = [];
		c.removeAllListeners('data');
		for (const d of c.early ?? [])
			ent.ws.send(d);
		c.on('data', (d) => ent.ws.send(d));
		/*
		 * The NBD client left. The page closes after DISC itself;
		 * end the WebSocket only if it does not.
		 */
		c.on('close', () => setTimeout(() => ent.ws.sock.end(), 2000)
			.unref());
	};
	const nbd = net.createServer((c) => {
		c.setNoDelay(true);
		c.on('error', () => {});
		const ent = waiting.shift();

		if (ent) {
			pair(ent, c);
			return;
		}
		/* Early: keep what it sends until a page connects. */
		const early = [];

		c.early = early;
		c.on('data', (d) => early.push(d));
		c.on('close', () => {
			const i = clients.indexOf(c);

			if (i >= 0)
				clients.splice(i, 1);
		});
		clients.push(c);
	});

	await new Promise((r) => httpd.listen(o.port ?? 0, '127.0.0.1', r));
	await new Promise((r) => nbd.listen(o.nbdPort ?? 0, '127.0.0.1', r));
	return {
		port: httpd.address().port,
		nbdPort: nbd.address().port,
		closes,
		/* Cut every WebSocket without a close frame: a network drop. */
		dropAll() {
			for (const e of live) {
				e.ws.sock.destroy();
				e.tcp?.destroy();
			}
		},
		connections: () => live.size,
		async stop() {
			for (const e of live) {
				e.ws.sock.destroy();
				e.tcp?.destroy();
			}
			await new Promise((r) => httpd.close(r));
			await new Promise((r) => nbd.close(r));
		},
	};
}

async function main(argv) {
	const o = {};

	for (let i = 0; i < argv.length; i += 2) {
		if (argv[i] === '--port')
			o.port = Number(argv[i + 1]);
		else if (argv[i] === '--nbd-port')
			o.nbdPort = Number(argv[i + 1]);
		else if (argv[i] === '--token')
			o.token = argv[i + 1];
		else {
			console.error('usage: dev-relay.mjs [--port N] [--nbd-port N] [--token T]');
			process.exit(2);
		}
	}
	const r = await startDevRelay({ port: 8080, nbdPort: 10809, ...o });

	console.log(`page: http://127.0.0.1:${r.port}/  NBD: nbd://127.0.0.1:${r.nbdPort}`);
}

if (import.meta.url === `file://${process.argv[1]}`)
	main(process.argv.slice(2)).catch((e) => {
		console.error(e.message);
		process.exit(1);
	});
