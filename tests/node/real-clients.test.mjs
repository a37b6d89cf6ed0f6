// SPDX-License-Identifier: GPL-2.0
/*
 * web/nbd-server.js against real NBD clients over TCP on 127.0.0.1:
 * our own C client (build/nbdctl info, lib/nbd_handshake.c, the code the
 * relay runs) and libnbd's nbdinfo and nbdcopy, which keep many requests
 * in flight. The server runs in this process, so every client is run
 * asynchronously.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NbdServer, NBD } from '../../web/nbd-server.js';
import { fileSource, serveTcp } from './tcp-nbd.mjs';
import { pattern } from './nbd-client.mjs';

const run = promisify(execFile);
const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
			 '../..');
const nbdctl = path.join(top, 'build/nbdctl');
let dir;

test.before(async () => {
	dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nbdws-node-'));
});

test.after(async () => {
	await fs.rm(dir, { recursive: true, force: true });
});

async function image(name, size, seed) {
	const p = path.join(dir, name);

	await fs.writeFile(p, pattern(size, seed));
	return p;
}

async function serve(file, opts = {}, writable = false) {
	const src = await fileSource(file, writable);
	const s = await serveTcp(src, opts);

	s.uri = `nbd://127.0.0.1:${s.port}`;
	s.stop = async () => {
		await new Promise((r) => s.server.close(r));
		await src.close();
	};
	return s;
}

test('nbdctl info: size not a multiple of 512, read-only, block sizes', async () => {
	const s = await serve(await image('tail.img', 1000, 1),
			      { name: 'tail.img' });

	try {
		const { stdout } = await run(nbdctl, ['-j', 'info', s.uri],
					     { timeout: 20000 });
		const j = JSON.parse(stdout);

		assert.equal(j.size, 1000);
		assert.equal(j.flags_raw, NBD.FLAG_HAS_FLAGS | NBD.FLAG_READ_ONLY);
		assert.deepEqual(j.flags, ['read-only']);
		assert.equal(j.export, 'tail.img');
		assert.equal(j.block_size_min, 1);
		assert.equal(j.block_size_preferred, 4096);
		assert.equal(j.block_size_max, 32 << 20);
		assert.equal(j.block_size_from_server, true);
		assert.equal(j.negotiation, 'info');
		/* INFO then ABORT: the session ended the clean way. */
		await new Promise((r) => setTimeout(r, 100));
		assert.deepEqual(s.sessions.map((x) => x.reason), ['abort']);
	} finally {
		await s.stop();
	}
});

test('nbdctl info falls back to EXPORT_NAME when GO is refused', async () => {
	class OldServer extends NbdServer {
		handleOption(opt, data) {
			if (opt === NBD.OPT_GO || opt === NBD.OPT_INFO)
				return this.optError(opt, NBD.REP_ERR_UNSUP,
						     'only EXPORT_NAME');
			return super.handleOption(opt, data);
		}
	}
	const file = await image('old.img', 4096 + 7, 2);
	const src = await fileSource(file, true);
	const s = await serveTcp(src, { Server: OldServer });

	try {
		const { stdout } = await run(nbdctl,
			['-j', 'info', `nbd://127.0.0.1:${s.port}`],
			{ timeout: 20000 });
		const j = JSON.parse(stdout);

		assert.equal(j.size, 4103);
		assert.equal(j.negotiation, 'export-name');
		assert.equal(j.flags_raw, NBD.FLAG_HAS_FLAGS |
			     NBD.FLAG_SEND_FLUSH | NBD.FLAG_SEND_FUA);
		assert.equal(j.block_size_from_server, false);
		/* EXPORT_NAME put it in transmission: it left with DISC. */
		await new Promise((r) => setTimeout(r, 100));
		assert.deepEqual(s.sessions.map((x) => x.reason), ['disc']);
	} finally {
		await new Promise((r) => s.server.close(r));
		await src.close();
	}
});

test('nbdinfo --list names the one export', async () => {
	const s = await serve(await image('list.img', 512, 3),
			      { name: 'list.img', description: 'from node' });

	try {
		const { stdout } = await run('nbdinfo', ['--json', '--list',
			s.uri], { timeout: 20000 });
		const j = JSON.parse(stdout);

		assert.equal(j.exports.length, 1);
		assert.equal(j.exports[0]['export-name'], 'list.img');
		assert.equal(j.exports[0].description, 'from node');
		assert.equal(j.exports[0]['export-size'], 512);
	} finally {
		await s.stop();
	}
});

test('nbdcopy reads the whole export, many requests in flight', async () => {
	const size = 5 * 1024 * 1024 + 123;
	const file = await image('copy.img', size, 4);
	const out = path.join(dir, 'copy.out');
	const s = await serve(file);

	try {
		await run('nbdcopy', ['--requests=16', '--request-size=65536',
				      s.uri, out], { timeout: 60000 });
		assert.deepEqual(await fs.readFile(out), await fs.readFile(file));
		const st = s.servers.map((x) => x.stats);

		assert.equal(st.reduce((a, x) => a + x.bytesRead, 0), size);
		assert.ok(Math.max(...st.map((x) => x.inflightPeak)) > 1,
			  'reads overlapped');
	} finally {
		await s.stop();
	}
});

test('nbdcopy writes through a writable export', async () => {
	const size = 2 * 1024 * 1024 + 511;
	const target = await image('target.img', size, 5);
	const from = await image('from.img', size, 6);
	const s = await serve(target, {}, true);

	try {
		await run('nbdcopy', ['--flush', from, s.uri],
			  { timeout: 60000 });
		assert.deepEqual(await fs.readFile(target),
				 await fs.readFile(from));
	} finally {
		await s.stop();
	}
});

test('nbdcopy cannot write to a read-only export', async () => {
	const target = await image('ro.img', 65536, 7);
	const from = await image('ro-from.img', 65536, 8);
	const before = await fs.readFile(target);
	const s = await serve(target);

	try {
		await assert.rejects(run('nbdcopy', [from, s.uri],
					 { timeout: 20000 }));
		assert.deepEqual(await fs.readFile(target), before);
	} finally {
		await s.stop();
	}
});
