// SPDX-License-Identifier: GPL-2.0
/*
 * A scripted NBD client for web/nbd-server.js: it feeds the server bytes
 * exactly as written (split or merged as a test likes) and reads its
 * output as a stream, so a test states each byte it expects.
 */
import { NbdServer, NBD } from '../../web/nbd-server.js';

export { NBD };

function view(u8) {
	return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

export function concat(...parts) {
	const n = parts.reduce((a, p) => a + p.length, 0);
	const out = new Uint8Array(n);
	let o = 0;

	for (const p of parts) {
		out.set(p, o);
		o += p.length;
	}
	return out;
}

export function u32(v) {
	const b = new Uint8Array(4);

	view(b).setUint32(0, v);
	return b;
}

/* An option request: IHAVEOPT, option, length, data. */
export function option(opt, data = new Uint8Array(0), len = data.length) {
	const b = new Uint8Array(16);
	const v = view(b);

	v.setBigUint64(0, NBD.IHAVEOPT);
	v.setUint32(8, opt);
	v.setUint32(12, len);
	return concat(b, data);
}

/* NBD_OPT_GO / NBD_OPT_INFO data: name and the info types asked for. */
export function goData(name = '', infos = []) {
	const n = new TextEncoder().encode(name);
	const b = new Uint8Array(6 + n.length + 2 * infos.length);
	const v = view(b);

	v.setUint32(0, n.length);
	b.set(n, 4);
	v.setUint16(4 + n.length, infos.length);
	infos.forEach((t, i) => v.setUint16(6 + n.length + 2 * i, t));
	return b;
}

/* A transmission request; @handle is a number (64 bits, as BigInt). */
export function request(type, handle, offset, length, { flags = 0,
		data = null, magic = NBD.REQUEST_MAGIC } = {}) {
	const b = new Uint8Array(28);
	const v = view(b);

	v.setUint32(0, magic);
	v.setUint16(4, flags);
	v.setUint16(6, type);
	v.setBigUint64(8, BigInt(handle));
	v.setBigUint64(16, BigInt(offset));
	v.setUint32(24, length);
	return data ? concat(b, data) : b;
}

/* Deterministic bytes: a pattern no two offsets of a small image share. */
export function pattern(size, seed = 1) {
	const b = new Uint8Array(size);
	let x = seed >>> 0 || 1;

	for (let i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >>> 17;
		x ^= x << 5;
		x >>>= 0;
		b[i] = x & 0xff;
	}
	return b;
}

/* A read-only source over @bytes, optionally with a delay per read. */
export function memSource(bytes, { writable = false, log = null } = {}) {
	const src = {
		size: bytes.length,
		async read(offset, length) {
			log?.push(['read', offset, length]);
			return bytes.slice(offset, offset + length);
		},
	};
	if (writable) {
		src.write = async (offset, data) => {
			log?.push(['write', offset, data.length]);
			bytes.set(data, offset);
		};
		src.flush = async () => {
			log?.push(['flush']);
		};
		src.trim = async (offset, length) => {
			log?.push(['trim', offset, length]);
		};
		src.writeZeroes = async (offset, length) => {
			log?.push(['zero', offset, length]);
			bytes.fill(0, offset, offset + length);
		};
	}
	return src;
}

/*
 * One server and its output. read(n) waits (up to @ms) for n bytes of
 * output; quiet() says whether nothing more came within a while.
 */
export class Session {
	constructor(source, opts = {}) {
		this.out = [];
		this.outLen = 0;
		this.waiters = [];
		this.closed = null;
		this.ready = null;
		this.srv = new (opts.Server ?? NbdServer)(source, {
			...opts,
			send: (b) => {
				this.out.push(b.slice());
				this.outLen += b.length;
				this.wake();
			},
			onReady: (info) => {
				this.ready = info;
			},
			onClose: (why) => {
				this.closed = why;
				this.wake();
			},
		});
		this.srv.start();
	}

	wake() {
		const w = this.waiters;

		this.waiters = [];
		w.forEach((f) => f());
	}

	send(...chunks) {
		for (const c of chunks)
			this.srv.receive(c);
	}

	/* Feed @bytes to the server in pieces of @n bytes. */
	sendSplit(bytes, n = 1) {
		for (let i = 0; i < bytes.length; i += n)
			this.srv.receive(bytes.slice(i, i + n));
	}

	async read(n, ms = 2000) {
		const deadline = Date.now() + ms;

		while (this.outLen < n) {
			const left = deadline - Date.now();

			if (left <= 0)
				throw new Error(`timed out waiting for ${n} bytes of output (have ${this.outLen})`);
			await new Promise((resolve) => {
				const t = setTimeout(resolve, left);

				this.waiters.push(() => {
					clearTimeout(t);
					resolve();
				});
			});
		}
		const all = concat(...this.out);

		this.out = [all.slice(n)];
		this.outLen = all.length - n;
		return all.slice(0, n);
	}

	/* Resolves after @ms; true when no output arrived and none is queued. */
	async quiet(ms = 50) {
		await new Promise((r) => setTimeout(r, ms));
		return this.outLen === 0;
	}

	async greeting() {
		const g = view(await this.read(18));

		return { passwd: g.getBigUint64(0), magic: g.getBigUint64(8),
			 flags: g.getUint16(16) };
	}

	/* Greeting, then our client flags. */
	async hello(cflags = NBD.FLAG_C_FIXED_NEWSTYLE | NBD.FLAG_C_NO_ZEROES) {
		const g = await this.greeting();

		this.send(u32(cflags));
		return g;
	}

	async optReply() {
		const h = view(await this.read(20));
		const r = {
			magic: h.getBigUint64(0), opt: h.getUint32(8),
			type: h.getUint32(12), len: h.getUint32(16),
		};

		r.data = await this.read(r.len);
		return r;
	}

	/* Replies to one option up to and including ACK or an error. */
	async optReplies() {
		const all = [];

		for (;;) {
			const r = await this.optReply();

			all.push(r);
			if (r.type === NBD.REP_ACK || r.type & 0x80000000)
				return all;
		}
	}

	async go(name = '', infos = []) {
		this.send(option(NBD.OPT_GO, goData(name, infos)));
		return this.optReplies();
	}

	/* A simple reply; @dataLen bytes of data follow a successful read. */
	async reply(dataLen = 0) {
		const h = view(await this.read(16));
		const r = { magic: h.getUint32(0), error: h.getUint32(4),
			    handle: Number(h.getBigUint64(8)) };

		r.data = r.error ? null : await this.read(dataLen);
		return r;
	}
}

/* Decode an NBD_REP_INFO payload. */
export function parseInfo(data) {
	const v = view(data);
	const type = v.getUint16(0);

	switch (type) {
	case NBD.INFO_EXPORT:
		return { type, size: Number(v.getBigUint64(2)),
			 flags: v.getUint16(10) };
	case NBD.INFO_BLOCK_SIZE:
		return { type, min: v.getUint32(2), pref: v.getUint32(6),
			 max: v.getUint32(10) };
	default:
		return { type, text: new TextDecoder().decode(data.subarray(2)) };
	}
}

export function text(u8) {
	return new TextDecoder().decode(u8);
}
