// SPDX-License-Identifier: GPL-2.0
//
// The page's "Writable" switch (File System Access API) in a real
// browser, part of tests/browser/e2e.mjs.
//
// Chromium: the page gets its writable file from showOpenFilePicker(),
// the OS file dialog, which automation cannot click. The test replaces
// only that function, before the page's scripts run: it hands back a
// real, writable FileSystemFileHandle of the origin-private file system
// (navigator.storage.getDirectory()) that holds the image. That stands in
// for the dialog and nothing else: the switch, the permission request,
// the WritableFileSource, the NBD server and the commits on flush are the
// page's own code path. The VM then writes through the device (mkfs and
// files, an O_DIRECT pattern, TRIM, WRITE_ZEROES), syncs, and the page
// reads the file back: its SHA-256 must be the device's.
//
// Firefox has no File System Access API: the page must say so and serve
// read-only (the read-only part of the tests serves in Firefox).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sha256, writeTree } from './lib/images.mjs';

export const WRITABLE_CHECKS = 8;
export const NO_WRITABLE_CHECKS = 1;

const MiB = 1 << 20;
const SIZE = 32 * MiB;
const FS_MIB = 16;	/* mkfs on the first 16 MiB; raw I/O above */
const PATTERN = { at: 20 * MiB, len: MiB + 4096 };
const DISCARD = { at: 24 * MiB, len: MiB };
const ZERO = { at: 26 * MiB, len: 512 * 1024 };
const OPFS_NAME = 'nbdws-e2e-writable.img';

// Runs in the page before its own scripts: the stand-in for the OS file
// dialog (see the top of this file).
function standInPicker(name) {
	window.showOpenFilePicker = async () => {
		const dir = await navigator.storage.getDirectory();
		return [await dir.getFileHandle(name)];
	};
}

// Runs in the page: SHA-256 (hex) of the origin-private file NAME and of
// each [key, start, end] of RANGES.
async function opfsSums({ name, ranges }) {
	const dir = await navigator.storage.getDirectory();
	const f = await (await dir.getFileHandle(name)).getFile();
	const hex = async (blob) => [...new Uint8Array(await crypto.subtle.digest('SHA-256',
		await blob.arrayBuffer()))].map((x) => x.toString(16).padStart(2, '0')).join('');
	const out = { size: f.size, whole: await hex(f) };
	for (const [key, a, b] of ranges)
		out[key] = await hex(f.slice(a, b));
	return out;
}

// The device in the VM against the file in the page: { dev, page }.
async function compare(ctx, user) {
	const { vm, gs } = ctx;
	const dev = (await vm.sh(`${gs} read-sum /dev/nbdws0 ${SIZE}`, { timeout: 600 })).trim();
	const page = await user.evaluate(opfsSums, { name: OPFS_NAME, ranges: [
		['pattern', PATTERN.at, PATTERN.at + PATTERN.len],
		['zero', ZERO.at, ZERO.at + ZERO.len],
	] });
	return { dev, page };
}

// Chromium: the switch on, the VM writes, the file holds what it wrote.
export async function writable(ctx) {
	const { tap, vm, gs, st, browser, url, token, out } = ctx;
	const check = (desc, fn) => tap.check(`${browser.name}: ${desc}`, fn);
	const kstat = async (keys) => (await vm.sh(st(`status ${keys.map((k) =>
		`slots[disk0].kernel.conns.0.stats.${k}`).join(' ')}`))).trim().split('\n').map(Number);

	// Random bytes: zeroes and writes show against them.
	const img = path.join(out, 'writable.img');
	fs.writeFileSync(img, crypto.randomBytes(SIZE));
	const pattern = path.join(out, 'pattern.bin');
	const patternData = crypto.randomBytes(PATTERN.len);
	fs.writeFileSync(pattern, patternData);
	const tree = path.join(out, 'written.d');
	writeTree(out, 'written', tree, {
		'note.txt': 'written by the VM into a file the browser holds\n',
		'data/random.bin': crypto.randomBytes(2 * MiB + 123),
		'data/small.bin': crypto.randomBytes(511),
		'empty': '',
	});
	await vm.sh(`${gs} hook-reset`);

	const user = await browser.open(`${url}?token=${token}`,
		{ init: [standInPicker, OPFS_NAME] });
	let serving = false;
	await check('page: Writable is offered; the image copied into the origin-private file system', async () => {
		const ui = await user.writableUi();
		tap.note(`#writable-info: ${ui.info}`);
		if (ui.disabled || ui.pickHidden || ui.api !== 'function')
			throw new Error(`the page does not offer writing: ${JSON.stringify(ui)}`);
		// A file input of our own, only to carry the image into the
		// origin-private file system; the page's #file is not used.
		await user.evaluate(() => {
			const i = document.createElement('input');
			i.type = 'file';
			i.id = 'e2e-seed';
			i.hidden = true;
			document.body.append(i);
		});
		await user.page.setFile('#e2e-seed', img);
		const size = await user.evaluate(async (name) => {
			const i = document.getElementById('e2e-seed');
			const dir = await navigator.storage.getDirectory();
			const h = await dir.getFileHandle(name, { create: true });
			const w = await h.createWritable();
			await w.write(i.files[0]);
			await w.close();
			i.remove();
			return (await h.getFile()).size;
		}, OPFS_NAME);
		if (size !== SIZE)
			throw new Error(`the origin-private file has ${size} bytes, not ${SIZE}`);
	});
	await check('page: "Choose with write access" (the stand-in dialog), Writable on, disk0, Serve -> serving', async () => {
		await user.click('#pick');
		await user.waitFor((n) => document.getElementById('file-info').textContent.includes(n),
			OPFS_NAME, 30000, 'the picked file in #file-info');
		await user.click('#writable');
		// The permission request is asynchronous.
		await user.waitFor(() => document.getElementById('writable').checked &&
			/Writes reach the file/.test(document.getElementById('writable-info').textContent),
			null, 30000, 'Writable switched on');
		await user.selectSlot('disk0');
		await user.serve();
		await user.waitState('serving', 120000);
		serving = true;
		await user.screenshot(path.join(out, 'writable-serving.png'));
	});
	await check('VM: /dev/nbdws0 is writable, with discard (TRIM) and write zeroes', async () => {
		const o = await vm.sh(`${gs} wait-dev /dev/nbdws0 60 && ${gs} dev-limits /dev/nbdws0`);
		tap.note(o.trim());
		if (!o.includes(`: ${SIZE} bytes, read-only 0`))
			throw new Error(`expected ${SIZE} bytes writable`);
		if (/discard_max_bytes 0\b/.test(o) || /write_zeroes_max_bytes 0\b/.test(o))
			throw new Error('no TRIM or no WRITE_ZEROES on the device');
	});
	await check(`VM: mkfs.ext4 (discarding first) on the first ${FS_MIB} MiB, mount, write files, umount; TRIMs answered`, async () => {
		if (!serving)
			throw new Error('not serving');
		const o = await vm.sh(`${gs} write-fs /dev/nbdws0 ${FS_MIB} ${tree}`, { timeout: 600 });
		tap.note(o.trim());
		const [trims, writes, flushes] = await kstat(['trims', 'writes', 'flushes']);
		tap.note(`kernel: ${trims} TRIM, ${writes} WRITE, ${flushes} FLUSH answered`);
		if (!(trims > 0 && writes > 0 && flushes > 0))
			throw new Error('expected TRIM, WRITE and FLUSH');
	});
	await check('VM: an O_DIRECT pattern at 20 MiB, blkdiscard 1 MiB, fallocate -z 512 KiB, sync; all answered', async () => {
		const [t0, z0] = await kstat(['trims', 'write_zeroes']);
		await vm.sh(`set -e; dd if=${pattern} of=/dev/nbdws0 bs=4k seek=${PATTERN.at} ` +
			'oflag=direct,seek_bytes status=none; ' +
			`blkdiscard -o ${DISCARD.at} -l ${DISCARD.len} /dev/nbdws0; ` +
			`fallocate -z -o ${ZERO.at} -l ${ZERO.len} /dev/nbdws0; ` +
			// fsync of the device: the kernel sends FLUSH.
			'sync /dev/nbdws0', { timeout: 600 });
		const [t1, z1] = await kstat(['trims', 'write_zeroes']);
		tap.note(`kernel: ${t1 - t0} TRIM, ${z1 - z0} WRITE_ZEROES answered`);
		if (!(t1 > t0 && z1 > z0))
			throw new Error('blkdiscard sent no TRIM or fallocate -z no WRITE_ZEROES');
	});
	await check('VM: mount read-only: exactly the files written, every SHA-256 right', () =>
		vm.sh(`${gs} check-files /dev/nbdws0 ${out}/written.files ${out}/written.sha256`,
			{ timeout: 600 }));
	let sums = null;
	await check('page: after sync the origin-private file equals the device (SHA-256), pattern and zeroes in place', async () => {
		const { dev, page } = await compare(ctx, user);
		sums = page;
		tap.note(`device ${dev}\nfile   ${page.whole} (${page.size} bytes)`);
		if (page.size !== SIZE || page.whole !== dev)
			throw new Error('the file does not hold what the device has');
		if (page.pattern !== sha256(patternData))
			throw new Error('the pattern is not in the file');
		if (page.zero !== sha256(Buffer.alloc(ZERO.len)))
			throw new Error('the zeroed range is not zero in the file');
		if (dev === sha256(fs.readFileSync(img)))
			throw new Error('the device still holds the original image');
	});
	await check('page: Stop -> stopped, no write lost; VM: device gone, stop hook ran; the file unchanged', async () => {
		await user.stop();
		await user.waitState('stopped', 60000);
		const s = await user.read();
		tap.note(`#reason: ${s.reason}`);
		if (/failed/i.test(s.reason))
			throw new Error(`#reason: ${s.reason}`);
		await vm.sh(`${gs} dev-gone /dev/nbdws0 30 && ${st('wait-state disk0 idle 30')}`);
		const h = await vm.sh(`${gs} hook-log`);
		if (h !== 'start disk0 /dev/nbdws0\nstop disk0 /dev/nbdws0\n')
			throw new Error(`hook log:\n${h}`);
		const now = await user.evaluate(opfsSums, { name: OPFS_NAME, ranges: [] });
		if (!sums || now.whole !== sums.whole)
			throw new Error(`the file changed after sync: ${now.whole}`);
	});
	await user.evaluate(async (name) =>
		(await navigator.storage.getDirectory()).removeEntry(name), OPFS_NAME).catch(() => {});
	await user.close();
}

// A browser without the File System Access API (Firefox): read-only,
// and the page says so.
export async function noWritable(ctx) {
	const { tap, browser, url, token, out } = ctx;
	const user = await browser.open(`${url}?token=${token}`);
	await tap.check(`${browser.name}: page: no File System Access API: Writable off and disabled, says read-only`, async () => {
		const ui = await user.writableUi();
		tap.note(`#writable-info: ${ui.info}`);
		await user.screenshot(path.join(out, 'no-writable.png'));
		if (ui.api === 'function')
			throw new Error('this browser has showOpenFilePicker: test the switch for real');
		if (!ui.disabled || ui.checked || !ui.pickHidden)
			throw new Error(`the switch is offered: ${JSON.stringify(ui)}`);
		if (!/cannot write/.test(ui.info) || !/read-only/.test(ui.info))
			throw new Error('the page does not say it serves read-only');
	});
	await user.close();
}
