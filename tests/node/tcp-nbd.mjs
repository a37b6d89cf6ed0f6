// SPDX-License-Identifier: GPL-2.0
/*
 * web/nbd-server.js over plain TCP, so real NBD clients (nbdctl, nbdinfo,
 * nbd-client) can talk to it: one NbdServer per connection, the socket's
 * bytes in, its replies out. Also usable by hand:
 *
 *   node tests/node/tcp-nbd.mjs [--writable] [--port N] FILE
 *
 * prints "listening on 127.0.0.1:PORT" and serves FILE until killed.
 */
import net from 'node:net';
import fs from 'node:fs/promises';
import { NbdServer } from '../../web/nbd-server.js';

/* A source over an open file (FileHandle), read-only unless @writable. */
export async function fileSource(path, writable = false) {
	const fh = await fs.open(path, writable ? 'r+' : 'r');
	const { size } = await fh.stat();
	const src = {
		size,
		async read(offset, length) {
			const buf = new Uint8Array(length);
			let got = 0;

			while (got < length) {
				const { bytesRead } = await fh.read(buf, got,
					length - got, offset + got);

				if (!bytesRead)
					throw new Error('unexpected end of file');
				got += bytesRead;
			}
			return buf;
		},
		close: () => fh.close(),
	};
	if (writable) {
		src.write = async (offset, bytes) => {
			let done = 0;

			while (done < bytes.length) {
				const { bytesWritten } = await fh.write(bytes, done,
					bytes.length - done, offset + done);

				done += bytesWritten;
			}
		};
		src.flush = () => fh.sync();
	}
	return src;
}

/*
 * Listen on 127.0.0.1 (port 0: any) and serve @source to every client.
 * Resolves to { port, server, sessions, servers }: sessions collects
 * each connection's onClose result, servers each connection's NbdServer.
 * opts go to the NbdServer; opts.Server replaces its class (a test's
 * variant).
 */
export function serveTcp(source, opts = {}) {
	const sessions = [], servers = [];
	const server = net.createServer((sock) => {
		sock.setNoDelay(true);
		const Server = opts.Server ?? NbdServer;
		const nbd = new Server(source, {
			...opts,
			send: (b) => sock.write(b),
			onClose: (why) => {
				sessions.push(why);
				sock.end();
			},
		});

		servers.push(nbd);
		sock.on('data', (d) => nbd.receive(d));
		sock.on('close', () => nbd.close());
		sock.on('error', () => nbd.close());
		nbd.start();
	});

	return new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(opts.port ?? 0, '127.0.0.1', () =>
			resolve({ port: server.address().port, server, sessions,
				  servers }));
	});
}

async function main(argv) {
	let writable = false, port = 0, file = null;

	for (let i = 0; i < argv.length; i++) {
		if (argv[i] === '--writable')
			writable = true;
		else if (argv[i] === '--port')
			port = Number(argv[++i]);
		else
			file = argv[i];
	}
	if (!file) {
		console.error('usage: tcp-nbd.mjs [--writable] [--port N] FILE');
		process.exit(2);
	}
	const src = await fileSource(file, writable);
	const { port: p } = await serveTcp(src, { port, name: file });

	console.log(`listening on 127.0.0.1:${p}`);
}

if (import.meta.url === `file://${process.argv[1]}`)
	main(process.argv.slice(2)).catch((e) => {
		console.error(e.message);
		process.exit(1);
	});
