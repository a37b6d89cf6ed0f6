// SPDX-License-Identifier: GPL-2.0
/*
 * web/nbd-server.js under a scripted client: every option, the
 * EXPORT_NAME path, hostile clients, out-of-order completions, read-only
 * and writable exports, and a size that is not a multiple of 512.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { NbdServer, BLOCK_MAX, OPT_MAX } from '../../web/nbd-server.js';
import { NBD, Session, concat, u32, option, goData, request, pattern,
	 memSource, parseInfo, text } from './nbd-client.mjs';

const FIXED = NBD.FLAG_C_FIXED_NEWSTYLE;
const BOTH = NBD.FLAG_C_FIXED_NEWSTYLE | NBD.FLAG_C_NO_ZEROES;
const RO = NBD.FLAG_HAS_FLAGS | NBD.FLAG_READ_ONLY;

async function goSession(bytes, opts = {}, srcOpts = {}) {
	const s = new Session(memSource(bytes, srcOpts), opts);

	await s.hello();
	const r = await s.go();

	assert.equal(r.at(-1).type, NBD.REP_ACK);
	assert.equal(s.srv.state, 'transmission');
	return s;
}

test('greeting: NBDMAGIC, IHAVEOPT, fixed newstyle and no zeroes', async () => {
	const s = new Session(memSource(new Uint8Array(512)));
	const g = await s.greeting();

	assert.equal(g.passwd, NBD.INIT_PASSWD);
	assert.equal(g.magic, NBD.IHAVEOPT);
	assert.equal(g.flags, NBD.FLAG_FIXED_NEWSTYLE | NBD.FLAG_NO_ZEROES);
	assert.ok(await s.quiet());
});

test('NBD_OPT_GO: export, name, description, block sizes, ACK', async () => {
	const img = pattern(8192);
	const s = new Session(memSource(img), { name: 'disk.img',
						description: 'a test image' });

	await s.hello();
	const r = await s.go('', [NBD.INFO_NAME, NBD.INFO_DESCRIPTION,
				  NBD.INFO_BLOCK_SIZE]);

	assert.equal(r.length, 5);
	for (const x of r) {
		assert.equal(x.magic, NBD.OPT_REPLY_MAGIC);
		assert.equal(x.opt, NBD.OPT_GO);
	}
	assert.deepEqual(r.slice(0, 4).map((x) => x.type),
			 [NBD.REP_INFO, NBD.REP_INFO, NBD.REP_INFO, NBD.REP_INFO]);
	assert.deepEqual(parseInfo(r[0].data),
			 { type: NBD.INFO_EXPORT, size: 8192, flags: RO });
	assert.deepEqual(parseInfo(r[1].data),
			 { type: NBD.INFO_NAME, text: 'disk.img' });
	assert.deepEqual(parseInfo(r[2].data),
			 { type: NBD.INFO_DESCRIPTION, text: 'a test image' });
	assert.deepEqual(parseInfo(r[3].data),
			 { type: NBD.INFO_BLOCK_SIZE, min: 1, pref: 4096,
			   max: 32 << 20 });
	assert.equal(r[4].type, NBD.REP_ACK);
	assert.equal(r[4].len, 0);
	assert.deepEqual(s.ready, { size: 8192, flags: RO, name: 'disk.img' });

	s.send(request(NBD.CMD_READ, 7, 4096, 100));
	const rep = await s.reply(100);

	assert.equal(rep.magic, NBD.SIMPLE_REPLY_MAGIC);
	assert.equal(rep.error, 0);
	assert.equal(rep.handle, 7);
	assert.deepEqual(rep.data, img.slice(4096, 4196));
});

test('NBD_OPT_GO without info requests sends only the export and ACK', async () => {
	const s = new Session(memSource(new Uint8Array(4096)), { name: 'x' });

	await s.hello();
	const r = await s.go('x');

	assert.deepEqual(r.map((x) => x.type), [NBD.REP_INFO, NBD.REP_ACK]);
	assert.equal(parseInfo(r[0].data).type, NBD.INFO_EXPORT);
});

test('NBD_OPT_INFO stays in negotiation; LIST; ABORT ends it', async () => {
	const s = new Session(memSource(new Uint8Array(1536)),
			      { name: 'img', description: 'desc' });

	await s.hello();
	s.send(option(NBD.OPT_INFO, goData('img', [NBD.INFO_BLOCK_SIZE])));
	const r = await s.optReplies();

	assert.deepEqual(r.map((x) => x.type),
			 [NBD.REP_INFO, NBD.REP_INFO, NBD.REP_ACK]);
	assert.ok(r.every((x) => x.opt === NBD.OPT_INFO));
	assert.equal(parseInfo(r[0].data).size, 1536);
	assert.equal(s.srv.state, 'options');
	assert.equal(s.ready, null);

	s.send(option(NBD.OPT_LIST));
	const l = await s.optReplies();

	assert.deepEqual(l.map((x) => x.type), [NBD.REP_SERVER, NBD.REP_ACK]);
	assert.deepEqual(l[0].data, concat(u32(3),
		new TextEncoder().encode('imgdesc')));

	s.send(option(NBD.OPT_ABORT));
	const a = await s.optReply();

	assert.equal(a.opt, NBD.OPT_ABORT);
	assert.equal(a.type, NBD.REP_ACK);
	assert.equal(s.closed.reason, 'abort');
	assert.equal(s.closed.code, 1000);
	/* Nothing is taken after the end. */
	s.send(option(NBD.OPT_LIST));
	assert.ok(await s.quiet());
});

test('NBD_OPT_EXPORT_NAME with NO_ZEROES: size and flags, 10 bytes', async () => {
	const img = pattern(2048);
	const s = new Session(memSource(img));

	await s.hello(BOTH);
	s.send(option(NBD.OPT_EXPORT_NAME, new TextEncoder().encode('anything')));
	const b = await s.read(10);
	const v = new DataView(b.buffer);

	assert.equal(Number(v.getBigUint64(0)), 2048);
	assert.equal(v.getUint16(8), RO);
	assert.ok(await s.quiet());
	assert.equal(s.srv.state, 'transmission');
	s.send(request(NBD.CMD_READ, 1, 0, 2048));
	assert.deepEqual((await s.reply(2048)).data, img);
});

test('NBD_OPT_EXPORT_NAME without NO_ZEROES: 124 zero bytes follow', async () => {
	const s = new Session(memSource(new Uint8Array(4096)));

	await s.hello(FIXED);
	s.send(option(NBD.OPT_EXPORT_NAME));
	const b = await s.read(134);

	assert.equal(Number(new DataView(b.buffer).getBigUint64(0)), 4096);
	assert.ok(b.subarray(10).every((c) => c === 0));
	assert.ok(await s.quiet());
});

test('EXPORT_NAME after GO was refused (the C client fallback)', async () => {
	/* A server that knows no GO, as browser pages of old. */
	class OldServer extends NbdServer {
		handleOption(opt, data) {
			if (opt === NBD.OPT_GO || opt === NBD.OPT_INFO)
				return this.optError(opt, NBD.REP_ERR_UNSUP, 'no');
			return super.handleOption(opt, data);
		}
	}
	const s = new Session(memSource(new Uint8Array(512)),
			      { Server: OldServer });

	await s.hello();
	const r = await s.go('', [NBD.INFO_BLOCK_SIZE]);

	assert.deepEqual(r.map((x) => x.type), [NBD.REP_ERR_UNSUP]);
	s.send(option(NBD.OPT_EXPORT_NAME));
	const b = await s.read(10);

	assert.equal(Number(new DataView(b.buffer).getBigUint64(0)), 512);
	assert.equal(s.srv.state, 'transmission');
});

test('unknown options get NBD_REP_ERR_UNSUP and negotiation goes on', async () => {
	const s = new Session(memSource(new Uint8Array(512)));

	await s.hello();
	for (const opt of [NBD.OPT_STARTTLS, NBD.OPT_STRUCTURED_REPLY, 4, 9,
			   10, 0x7fffffff, 0xffffffff]) {
		s.send(option(opt, new Uint8Array([1, 2, 3])));
		const r = await s.optReply();

		assert.equal(r.opt, opt);
		assert.equal(r.type, NBD.REP_ERR_UNSUP);
		assert.match(text(r.data), /not supported/);
	}
	const g = await s.go();

	assert.equal(g.at(-1).type, NBD.REP_ACK);
});

test('an option over 64 KiB: NBD_REP_ERR_TOO_BIG, its data skipped', async () => {
	const s = new Session(memSource(new Uint8Array(512)));

	await s.hello();
	const len = OPT_MAX + 1;

	/* Header alone first: the reply must not wait for the data. */
	s.send(option(NBD.OPT_GO, new Uint8Array(0), len));
	const r = await s.optReply();

	assert.equal(r.opt, NBD.OPT_GO);
	assert.equal(r.type, NBD.REP_ERR_TOO_BIG);
	/* The data, in odd pieces, with a real option right behind it. */
	s.sendSplit(concat(new Uint8Array(len).fill(0x49),
			   option(NBD.OPT_LIST)), 9973);
	const l = await s.optReplies();

	assert.deepEqual(l.map((x) => x.type), [NBD.REP_SERVER, NBD.REP_ACK]);
	assert.equal(s.closed, null);
});

test('an export name over 64 KiB ends the session (1008)', async () => {
	const s = new Session(memSource(new Uint8Array(512)));

	await s.hello();
	s.send(option(NBD.OPT_EXPORT_NAME, new Uint8Array(0), 1 << 20));
	assert.ok(await s.quiet());
	assert.equal(s.closed.reason, 'protocol');
	assert.equal(s.closed.code, 1008);
});

test('malformed GO data and LIST with data: NBD_REP_ERR_INVALID', async () => {
	const s = new Session(memSource(new Uint8Array(512)));

	await s.hello();
	const cases = [
		new Uint8Array(3),				/* too short */
		concat(u32(100), new Uint8Array(2)),		/* name past end */
		concat(goData('', [1]), new Uint8Array(1)),	/* trailing byte */
		goData('', [1, 2]).subarray(0, 8),		/* info list cut */
	];

	for (const d of cases) {
		s.send(option(NBD.OPT_GO, d));
		const r = await s.optReply();

		assert.equal(r.type, NBD.REP_ERR_INVALID, `data ${d}`);
	}
	s.send(option(NBD.OPT_LIST, new Uint8Array(1)));
	assert.equal((await s.optReply()).type, NBD.REP_ERR_INVALID);
	assert.equal(s.srv.state, 'options');
});

test('strictName: unknown names refused, "" and the name accepted', async () => {
	const opts = { name: 'disk', strictName: true };
	let s = new Session(memSource(new Uint8Array(512)), opts);

	await s.hello();
	assert.deepEqual((await s.go('other')).map((x) => x.type),
			 [NBD.REP_ERR_UNKNOWN]);
	s.send(option(NBD.OPT_INFO, goData('disk')));
	assert.equal((await s.optReplies()).at(-1).type, NBD.REP_ACK);
	assert.equal((await s.go('')).at(-1).type, NBD.REP_ACK);

	s = new Session(memSource(new Uint8Array(512)), opts);
	await s.hello();
	s.send(option(NBD.OPT_EXPORT_NAME, new TextEncoder().encode('other')));
	assert.ok(await s.quiet());
	assert.equal(s.closed.reason, 'refused');
});

test('hostile negotiation: bad option magic, unknown client flags', async () => {
	let s = new Session(memSource(new Uint8Array(512)));

	await s.hello();
	const bad = option(NBD.OPT_LIST);

	bad[0] ^= 0xff;
	s.send(bad);
	assert.ok(await s.quiet());
	assert.equal(s.closed.reason, 'protocol');
	assert.equal(s.closed.code, 1002);

	s = new Session(memSource(new Uint8Array(512)));
	await s.hello(FIXED | 0x100);
	assert.ok(await s.quiet());
	assert.equal(s.closed.reason, 'protocol');
});

test('a client without fixed newstyle: an unknown option ends it', async () => {
	let s = new Session(memSource(new Uint8Array(512)));

	await s.hello(0);
	s.send(option(NBD.OPT_STRUCTURED_REPLY));
	assert.ok(await s.quiet());
	assert.equal(s.closed.reason, 'refused');

	s = new Session(memSource(new Uint8Array(512)));
	await s.hello(0);
	s.send(option(NBD.OPT_EXPORT_NAME));
	assert.equal((await s.read(134)).length, 134);
	assert.equal(s.srv.state, 'transmission');
});

test('hostile transmission: bad request magic stops with 1002', async () => {
	const s = await goSession(pattern(4096));

	s.send(request(NBD.CMD_READ, 1, 0, 512, { magic: 0x25609514 }));
	assert.ok(await s.quiet());
	assert.equal(s.closed.reason, 'protocol');
	assert.equal(s.closed.code, 1002);
	s.send(request(NBD.CMD_READ, 2, 0, 512));
	assert.ok(await s.quiet());
});

test('hostile transmission: READ or WRITE over 32 MiB stops at once', async () => {
	for (const type of [NBD.CMD_READ, NBD.CMD_WRITE]) {
		const s = await goSession(pattern(4096), {},
					  { writable: true });
		let reads = 0;

		s.srv.source.read = async () => {
			reads++;
			return new Uint8Array(0);
		};
		/* The header alone: a WRITE must not wait for 32 MiB first. */
		s.send(request(type, 1, 0, BLOCK_MAX + 1));
		assert.ok(await s.quiet());
		assert.equal(s.closed.reason, 'protocol');
		assert.equal(s.closed.code, 1008);
		assert.equal(reads, 0);
	}
});

test('unknown commands, CACHE and unknown flags: EINVAL, then go on', async () => {
	const img = pattern(4096);
	const s = await goSession(img);

	s.send(request(9, 1, 0, 512),
	       request(NBD.CMD_CACHE, 2, 0, 512),
	       request(0xffff, 3, 0, 0),
	       request(NBD.CMD_READ, 4, 0, 512, { flags: 0x4 }),
	       request(NBD.CMD_READ, 5, 512, 512));
	for (const h of [1, 2, 3, 4]) {
		const r = await s.reply();

		assert.equal(r.handle, h);
		assert.equal(r.error, NBD.EINVAL);
	}
	const r = await s.reply(512);

	assert.equal(r.handle, 5);
	assert.equal(r.error, 0);
	assert.deepEqual(r.data, img.slice(512, 1024));
	assert.equal(s.srv.stats.errors, 4);
	assert.equal(s.srv.stats.requests, 5);
});

test('reads beyond the end: EINVAL; offsets near 2^64 too', async () => {
	const s = await goSession(pattern(4096));

	s.send(request(NBD.CMD_READ, 1, 4096, 1),
	       request(NBD.CMD_READ, 2, 3584, 1024),
	       request(NBD.CMD_READ, 3, 0xfffffffffffffe00n, 512),
	       request(NBD.CMD_READ, 4, 0x20000000000000n, 512));
	for (const h of [1, 2, 3, 4]) {
		const r = await s.reply();

		assert.equal(r.handle, h);
		assert.equal(r.error, NBD.EINVAL);
	}
});

test('out-of-order completions: replies in completion order, handles and bytes right', async () => {
	const img = pattern(64 * 1024, 7);
	const pending = [];
	const src = {
		size: img.length,
		read(offset, length) {
			return new Promise((resolve) => pending.push(() =>
				resolve(img.slice(offset, offset + length))));
		},
	};
	const s = new Session(src);

	await s.hello();
	await s.go();
	const n = 8;
	/* Distinct offsets and lengths, handles with high bits set. */
	const reqs = [];

	for (let i = 0; i < n; i++) {
		reqs.push({ handle: 0xa5a5000000000000n + BigInt(i),
			    offset: i * 7000, length: 512 + i * 100 });
		s.send(request(NBD.CMD_READ, reqs[i].handle, reqs[i].offset,
			       reqs[i].length));
	}
	assert.equal(pending.length, n, 'every read started at once');
	assert.equal(s.srv.inflight, n);
	assert.ok(await s.quiet());
	/* Complete in reverse order; each reply must follow its completion. */
	for (let i = n - 1; i >= 0; i--) {
		pending[i]();
		const h = new DataView((await s.read(16)).buffer);

		assert.equal(h.getUint32(0), NBD.SIMPLE_REPLY_MAGIC);
		assert.equal(h.getUint32(4), 0);
		assert.equal(h.getBigUint64(8), reqs[i].handle);
		assert.deepEqual(await s.read(reqs[i].length),
				 img.slice(reqs[i].offset,
					   reqs[i].offset + reqs[i].length));
	}
	assert.equal(s.srv.stats.inflightPeak, n);
	assert.equal(s.srv.stats.reads, n);
});

test('maxInflight: requests past the limit wait for a free slot', async () => {
	const pending = [];
	const src = {
		size: 4096,
		read: (o, l) => new Promise((r) => pending.push(() =>
			r(new Uint8Array(l)))),
	};
	const s = new Session(src, { maxInflight: 2 });

	await s.hello();
	await s.go();
	s.send(request(NBD.CMD_READ, 1, 0, 8), request(NBD.CMD_READ, 2, 0, 8),
	       request(NBD.CMD_READ, 3, 0, 8), request(NBD.CMD_READ, 4, 0, 8));
	assert.equal(pending.length, 2);
	pending[1]();
	assert.equal((await s.reply(8)).handle, 2);
	assert.equal(pending.length, 3);
	pending[0]();
	pending[2]();
	assert.equal((await s.reply(8)).handle, 1);
	assert.equal((await s.reply(8)).handle, 3);
	pending[3]();
	assert.equal((await s.reply(8)).handle, 4);
});

test('a byte stream: requests split anywhere or merged in one message', async () => {
	const img = pattern(16384, 3);
	const s = await goSession(img);
	const reqs = concat(request(NBD.CMD_READ, 1, 0, 100),
			    request(NBD.CMD_READ, 2, 100, 3000),
			    request(NBD.CMD_READ, 3, 16000, 384));

	s.sendSplit(reqs, 1);
	s.send(reqs);
	s.sendSplit(reqs, 5);
	for (let k = 0; k < 3; k++) {
		const got = new Map();

		for (let i = 0; i < 3; i++) {
			const len = [100, 3000, 384][i];
			const r = await s.reply(len);

			got.set(r.handle, r.data);
		}
		assert.deepEqual(got.get(1), img.slice(0, 100));
		assert.deepEqual(got.get(2), img.slice(100, 3100));
		assert.deepEqual(got.get(3), img.slice(16000, 16384));
	}
});

test('read-only: WRITE, TRIM, WRITE_ZEROES get EPERM, the image is untouched', async () => {
	const img = pattern(8192, 5);
	const orig = img.slice();
	const log = [];
	const s = await goSession(img, {}, { log });

	/* read-only source: memSource without writable has no write(). */
	assert.equal(s.ready.flags, RO);
	s.send(request(NBD.CMD_WRITE, 1, 0, 1000,
		       { data: new Uint8Array(1000).fill(0xee) }),
	       request(NBD.CMD_TRIM, 2, 0, 4096),
	       request(NBD.CMD_WRITE_ZEROES, 3, 0, 4096),
	       request(NBD.CMD_FLUSH, 4, 0, 0),
	       request(NBD.CMD_READ, 5, 0, 1000));
	for (const [h, e] of [[1, NBD.EPERM], [2, NBD.EPERM],
			      [3, NBD.EPERM], [4, 0]]) {
		const r = await s.reply();

		assert.equal(r.handle, h);
		assert.equal(r.error, e);
	}
	const r = await s.reply(1000);

	/* The WRITE's payload was consumed, not taken for a request. */
	assert.equal(r.handle, 5);
	assert.deepEqual(r.data, orig.slice(0, 1000));
	assert.deepEqual(img, orig);
	assert.deepEqual(log, [['read', 0, 1000]]);
});

test('writable: WRITE, FUA, FLUSH, TRIM, WRITE_ZEROES reach the source', async () => {
	const img = pattern(8192, 9);
	const log = [];
	const s = await goSession(img, {}, { writable: true, log });
	const flags = NBD.FLAG_HAS_FLAGS | NBD.FLAG_SEND_FLUSH |
		NBD.FLAG_SEND_FUA | NBD.FLAG_SEND_TRIM |
		NBD.FLAG_SEND_WRITE_ZEROES;
	const data = pattern(1500, 11);

	assert.equal(s.ready.flags, flags);
	/* Split in the middle of the payload. */
	s.sendSplit(request(NBD.CMD_WRITE, 1, 1000, 1500, { data }), 700);
	assert.equal((await s.reply()).error, 0);
	s.send(request(NBD.CMD_READ, 2, 1000, 1500));
	assert.deepEqual((await s.reply(1500)).data, data);

	s.send(request(NBD.CMD_WRITE, 3, 0, 4,
		       { flags: NBD.CMD_FLAG_FUA, data: u32(0xdeadbeef) }));
	assert.equal((await s.reply()).error, 0);
	assert.deepEqual(img.slice(0, 4), u32(0xdeadbeef));

	s.send(request(NBD.CMD_WRITE_ZEROES, 4, 4096, 4096),
	       request(NBD.CMD_TRIM, 5, 0, 512),
	       request(NBD.CMD_FLUSH, 6, 0, 0));
	for (const h of [4, 5, 6])
		assert.equal((await s.reply()).error, 0, `handle ${h}`);
	assert.ok(img.subarray(4096).every((c) => c === 0));
	assert.deepEqual(log.filter((x) => x[0] !== 'read'), [
		['write', 1000, 1500], ['write', 0, 4], ['flush'],
		['zero', 4096, 4096], ['trim', 0, 512], ['flush'],
	]);

	/* Past the end: ENOSPC for writes, EINVAL for trim. */
	s.send(request(NBD.CMD_WRITE, 7, 8000, 200,
		       { data: new Uint8Array(200) }),
	       request(NBD.CMD_WRITE_ZEROES, 8, 8192, 1),
	       request(NBD.CMD_TRIM, 9, 8191, 2));
	assert.equal((await s.reply()).error, NBD.ENOSPC);
	assert.equal((await s.reply()).error, NBD.ENOSPC);
	assert.equal((await s.reply()).error, NBD.EINVAL);

	const st = s.srv.stats;

	assert.equal(st.writes, 2);
	assert.equal(st.bytesWritten, 1504);
	assert.equal(st.flushes, 1);
	assert.equal(st.trims, 1);
	assert.equal(st.zeroes, 1);
	assert.equal(s.srv.bytes, 1504 + 1500);
});

test('a writable source without trim or zeroes does not offer them', async () => {
	const img = new Uint8Array(4096);
	const src = { size: 4096, read: async (o, l) => img.slice(o, o + l),
		      write: async (o, d) => img.set(d, o) };
	const s = new Session(src);

	await s.hello();
	const r = await s.go();

	assert.equal(parseInfo(r[0].data).flags, NBD.FLAG_HAS_FLAGS);
	s.send(request(NBD.CMD_TRIM, 1, 0, 512),
	       request(NBD.CMD_WRITE_ZEROES, 2, 0, 512),
	       request(NBD.CMD_FLUSH, 3, 0, 0));
	assert.equal((await s.reply()).error, NBD.EINVAL);
	assert.equal((await s.reply()).error, NBD.EINVAL);
	assert.equal((await s.reply()).error, 0);
});

test('a failing source: EIO for that request, the session goes on', async () => {
	const img = pattern(4096);
	const errors = [];
	const src = {
		size: 4096,
		read: async (o, l) => {
			if (o === 0)
				throw new Error('NotReadableError');
			if (o === 512)
				return new Uint8Array(l - 1);	/* short */
			return img.slice(o, o + l);
		},
	};
	const s = new Session(src, { onError: (e) => errors.push(e.message) });

	await s.hello();
	await s.go();
	s.send(request(NBD.CMD_READ, 1, 0, 512));
	assert.equal((await s.reply()).error, NBD.EIO);
	s.send(request(NBD.CMD_READ, 2, 512, 512));
	assert.equal((await s.reply()).error, NBD.EIO);
	s.send(request(NBD.CMD_READ, 3, 1024, 512));
	assert.deepEqual((await s.reply(512)).data, img.slice(1024, 1536));
	assert.deepEqual(errors, ['NotReadableError',
				  'short read: 511 of 512 bytes']);
	assert.equal(s.srv.stats.errors, 2);
	assert.equal(s.srv.stats.reads, 1);
});

test('a size that is not a multiple of 512: the tail is served exactly', async () => {
	const size = 3 * 512 + 123;
	const img = pattern(size, 13);
	const s = new Session(memSource(img));

	await s.hello();
	const r = await s.go('', [NBD.INFO_BLOCK_SIZE]);

	assert.equal(parseInfo(r[0].data).size, size);
	assert.equal(parseInfo(r[1].data).min, 1);
	/* One at a time: an EINVAL reply overtakes a read in flight. */
	s.send(request(NBD.CMD_READ, 1, 1536, 123));
	const a = await s.reply(123);

	assert.equal(a.handle, 1);
	assert.deepEqual(a.data, img.slice(1536));
	s.send(request(NBD.CMD_READ, 2, 1536, 512));
	const b = await s.reply();

	assert.equal(b.handle, 2);
	assert.equal(b.error, NBD.EINVAL);
	s.send(request(NBD.CMD_READ, 3, size, 0));
	const c = await s.reply(0);

	assert.equal(c.handle, 3);
	assert.equal(c.error, 0);
	s.send(request(NBD.CMD_READ, 4, size - 1, 1));
	const d = await s.reply(1);

	assert.equal(d.handle, 4);
	assert.deepEqual(d.data, img.slice(size - 1));
});

test('DISC: replies in flight still go out, then the session ends', async () => {
	const img = pattern(4096);
	const pending = [];
	const src = {
		size: 4096,
		read: (o, l) => new Promise((r) => pending.push(() =>
			r(img.slice(o, o + l)))),
	};
	const s = new Session(src);

	await s.hello();
	await s.go();
	s.send(request(NBD.CMD_READ, 1, 0, 64), request(NBD.CMD_DISC, 2, 0, 0),
	       request(NBD.CMD_READ, 3, 0, 64));
	assert.equal(pending.length, 1, 'nothing after DISC is started');
	assert.equal(s.closed, null);
	pending[0]();
	const r = await s.reply(64);

	assert.equal(r.handle, 1);
	assert.deepEqual(r.data, img.slice(0, 64));
	assert.equal(s.closed.reason, 'disc');
	assert.equal(s.closed.code, 1000);
	assert.ok(await s.quiet());
});

test('close(): replies of reads still running are dropped', async () => {
	const pending = [];
	const src = {
		size: 4096,
		read: (o, l) => new Promise((r) => pending.push(() =>
			r(new Uint8Array(l)))),
	};
	const s = new Session(src);

	await s.hello();
	await s.go();
	s.send(request(NBD.CMD_READ, 1, 0, 64));
	s.srv.close();
	pending[0]();
	assert.ok(await s.quiet());
	assert.equal(s.closed.reason, 'closed');
});

test('counters: requests and bytes served', async () => {
	const s = await goSession(pattern(65536));

	for (let i = 0; i < 10; i++)
		s.send(request(NBD.CMD_READ, i, i * 4096, 4096));
	for (let i = 0; i < 10; i++)
		await s.reply(4096);
	assert.equal(s.srv.stats.requests, 10);
	assert.equal(s.srv.stats.bytesRead, 40960);
	assert.equal(s.srv.bytes, 40960);
});

test('long names and descriptions are cut to 4096 bytes of whole characters', async () => {
	const s = new Session(memSource(new Uint8Array(512)),
			      { name: 'é'.repeat(3000), description: 'd' });

	await s.hello();
	const r = await s.go('', [NBD.INFO_NAME]);
	const name = parseInfo(r[1].data).text;

	assert.equal(name, 'é'.repeat(2048));
});

test('constructor checks its source and callbacks', () => {
	assert.throws(() => new NbdServer({ size: 1 }, { send() {} }));
	assert.throws(() => new NbdServer({ size: -1, read() {} },
					  { send() {} }));
	assert.throws(() => new NbdServer({ size: 1, read() {} }, {}));
});
