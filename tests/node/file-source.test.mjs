// SPDX-License-Identifier: GPL-2.0
/*
 * web/file-source.js: a File (here a Blob) read-only, and the writable
 * source over a stand-in for a File System Access handle that behaves as
 * Chromium's does where it matters: createWritable() writes a swap copy
 * that replaces the file on close(), and a File taken before that fails
 * to read afterwards.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { fileSource, WritableFileSource } from '../../web/file-source.js';
import { NbdServer } from '../../web/nbd-server.js';
import { NBD, Session, request, pattern } from './nbd-client.mjs';

const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms));

/* The file's bytes and a generation bumped by every committed writable. */
function fakeHandle(bytes, { gate = null } = {}) {
	const store = { bytes, gen: 0, writables: 0 };
	const snapshot = () => {
		const gen = store.gen;

		return {
			size: store.bytes.length,
			slice: (a, b) => ({
				arrayBuffer: async () => {
					await tick();
					await gate?.promise;
					if (gen !== store.gen)
						throw new Error('NotReadableError: the file changed');
					return store.bytes.slice(a, b).buffer;
				},
			}),
		};
	};

	return {
		store,
		getFile: async () => snapshot(),
		createWritable: async ({ keepExistingData }) => {
			assert.equal(keepExistingData, true);
			const swap = store.bytes.slice();

			store.writables++;
			return {
				write: async ({ type, position, data }) => {
					assert.equal(type, 'write');
					await tick();
					swap.set(data, position);
				},
				close: async () => {
					await tick();
					store.bytes = swap;
					store.gen++;
				},
				abort: async () => {},
			};
		},
	};
}

test('fileSource reads a Blob exactly, tail included', async () => {
	const img = pattern(3000, 1);
	const src = fileSource(new Blob([img]));

	assert.equal(src.size, 3000);
	assert.deepEqual(await src.read(0, 3000), img);
	assert.deepEqual(await src.read(2560, 440), img.slice(2560));
	assert.equal(typeof src.write, 'undefined');
});

test('writes show in reads at once and reach the file on flush', async () => {
	const img = pattern(5 * 4096 + 100, 2);
	const want = img.slice();
	const h = fakeHandle(img.slice());
	const src = await WritableFileSource.open(h);
	const a = pattern(50, 3), b = pattern(9000, 4), c = pattern(60, 5);

	await src.write(100, a);		/* inside one page */
	await src.write(4000, b);		/* across three pages */
	await src.write(5 * 4096 + 40, c);	/* the short last page */
	want.set(a, 100);
	want.set(b, 4000);
	want.set(c, 5 * 4096 + 40);
	assert.deepEqual(await src.read(0, want.length), want);
	assert.deepEqual(await src.read(4001, 3), want.slice(4001, 4004));
	assert.deepEqual(h.store.bytes, img, 'nothing written before flush');
	await src.flush();
	assert.deepEqual(h.store.bytes, want);
	assert.equal(src.pendingBytes, 0);
	assert.equal(src.commits, 1);
	assert.deepEqual(await src.read(0, want.length), want);
	await src.flush();
	assert.equal(h.store.writables, 1, 'an empty flush writes nothing');
});

test('writeZeroes over several chunks', async () => {
	const size = 3 * 1024 * 1024;
	const h = fakeHandle(pattern(size, 6));
	const src = await WritableFileSource.open(h);

	await src.writeZeroes(1000, 2.5 * 1024 * 1024);
	await src.flush();
	const got = h.store.bytes;

	assert.ok(got.subarray(1000, 1000 + 2.5 * 1024 * 1024)
		.every((x) => x === 0));
	assert.deepEqual(got.subarray(0, 1000), pattern(size, 6).subarray(0, 1000));
	assert.notEqual(got[1000 + 2.5 * 1024 * 1024], undefined);
});

test('reads running across a commit retry on the new snapshot', async () => {
	const img = pattern(64 * 1024, 7);
	/* Reads held until the commit is done: they end on a stale snapshot. */
	const gate = {};

	gate.promise = new Promise((r) => {
		gate.open = r;
	});
	const h = fakeHandle(img.slice(), { gate });
	const src = await WritableFileSource.open(h);
	const d = pattern(8192, 8);
	const want = img.slice();

	want.set(d, 8192);
	gate.open();
	await src.write(8192, d);
	gate.promise = new Promise((r) => {
		gate.open = r;
	});
	let stale = 0;
	const file = src.file;
	const slice = file.slice;

	file.slice = (a, b) => {
		const sl = slice(a, b);

		return { arrayBuffer: () => sl.arrayBuffer().catch((e) => {
			stale++;
			throw e;
		}) };
	};
	/* Reads started on the old snapshot, a commit while they run. */
	const reads = [];

	for (let i = 0; i < 16; i++)
		reads.push(src.read(i * 4096, 4096));
	const f = src.flush();

	for (let i = 0; i < 16; i++)
		reads.push(src.read(i * 4096, 4096));
	await f;
	gate.open();
	const got = await Promise.all(reads);

	for (let i = 0; i < 32; i++)
		assert.deepEqual(got[i], want.slice((i % 16) * 4096,
						    (i % 16 + 1) * 4096), `read ${i}`);
	assert.equal(h.store.gen, 1);
	assert.equal(stale, 32, 'every read met a stale snapshot');
});

test('pending writes past the limit are committed on their own', async () => {
	const h = fakeHandle(new Uint8Array(64 * 4096));
	const src = await WritableFileSource.open(h, { commitBytes: 8 * 4096 });

	await src.write(0, new Uint8Array(7 * 4096).fill(1));
	assert.equal(h.store.gen, 0);
	await src.write(7 * 4096, new Uint8Array(4096).fill(2));
	assert.equal(h.store.gen, 1);
	assert.equal(src.pendingBytes, 0);
	assert.equal(h.store.bytes[8 * 4096 - 1], 2);
});

test('a failed commit keeps the writes and reports the error', async () => {
	const h = fakeHandle(new Uint8Array(8192));
	const src = await WritableFileSource.open(h);

	await src.write(0, new Uint8Array(10).fill(9));
	h.createWritable = async () => {
		throw new Error('NoModificationAllowedError');
	};
	await assert.rejects(src.flush(), /NoModificationAllowedError/);
	assert.deepEqual(await src.read(0, 10), new Uint8Array(10).fill(9));
	assert.equal(src.pendingBytes, 4096);
});

test('NbdServer over the writable source: WRITE, READ, FLUSH', async () => {
	const img = pattern(3 * 4096 + 7, 9);
	const h = fakeHandle(img.slice());
	const src = await WritableFileSource.open(h);
	const s = new Session(src);

	await s.hello();
	const r = await s.go();

	assert.equal(r.at(-1).type, NBD.REP_ACK);
	assert.equal(s.ready.flags & NBD.FLAG_READ_ONLY, 0);
	assert.ok(s.ready.flags & NBD.FLAG_SEND_FLUSH);
	const d = pattern(4103, 10);

	s.send(request(NBD.CMD_WRITE, 1, 8192, 4103, { data: d }));
	assert.equal((await s.reply()).error, 0);
	s.send(request(NBD.CMD_READ, 2, 8000, 4295));
	const rd = await s.reply(4295);
	const want = img.slice();

	want.set(d, 8192);
	assert.deepEqual(rd.data, want.slice(8000));
	s.send(request(NBD.CMD_FLUSH, 3, 0, 0));
	assert.equal((await s.reply()).error, 0);
	assert.deepEqual(h.store.bytes, want);
	assert.ok(s.srv instanceof NbdServer);
});

test('NbdServer over the writable source offers TRIM and WRITE_ZEROES; TRIM keeps the bytes', async () => {
	const img = pattern(4 * 4096, 11);
	const h = fakeHandle(img.slice());
	const src = await WritableFileSource.open(h);
	const s = new Session(src);

	await s.hello();
	await s.go();
	assert.ok(s.ready.flags & NBD.FLAG_SEND_TRIM);
	assert.ok(s.ready.flags & NBD.FLAG_SEND_WRITE_ZEROES);
	s.send(request(NBD.CMD_TRIM, 1, 4096, 8192));
	assert.equal((await s.reply()).error, 0);
	/* Nothing kept in the page and nothing written to the file. */
	assert.equal(src.pendingBytes, 0);
	s.send(request(NBD.CMD_FLUSH, 2, 0, 0));
	assert.equal((await s.reply()).error, 0);
	assert.equal(h.store.writables, 0);
	s.send(request(NBD.CMD_READ, 3, 0, img.length));
	assert.deepEqual((await s.reply(img.length)).data, img);
	/* Past the end is still refused. */
	s.send(request(NBD.CMD_TRIM, 4, 3 * 4096, 8192));
	assert.equal((await s.reply()).error, NBD.EINVAL);
	s.send(request(NBD.CMD_WRITE_ZEROES, 5, 100, 5000));
	assert.equal((await s.reply()).error, 0);
	s.send(request(NBD.CMD_FLUSH, 6, 0, 0));
	assert.equal((await s.reply()).error, 0);
	const want = img.slice();

	want.fill(0, 100, 5100);
	assert.deepEqual(h.store.bytes, want);
	assert.equal(s.srv.stats.trims, 1);
});
