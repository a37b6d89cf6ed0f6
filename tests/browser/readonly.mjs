// SPDX-License-Identifier: GPL-2.0
//
// The page read-only, in one browser, against the relay in the VM (the
// part of tests/browser/e2e.mjs that runs once per browser): an ext4
// image with every file checked in the VM; a size that is not a multiple
// of 512; a tab reloaded while the VM reads; Stop, the device gone and
// the stop hook run; a wrong token and a token for another slot refused
// on the page.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sha256 } from './lib/images.mjs';

export const READONLY_CHECKS = 21;

// ctx: { tap, vm, gs (guest.sh), st (guest.sh with the token and port),
// browser (lib/browser.mjs), url, token, token1, out (this browser's
// folder), img: { path, size, files, sums }, odd, big (paths) }.
export async function readOnly(ctx) {
	const { tap, vm, gs, st, browser, url, token, token1, out, img } = ctx;
	const check = (desc, fn) => tap.check(`${browser.name}: ${desc}`, fn);
	const shot = (u, name) => u.screenshot(path.join(out, name));
	// What this browser's run adds to the relay's log.
	const logFrom = Number((await vm.sh(`${gs} relay-log | wc -l`)).trim()) + 1;
	const relayLog = () => vm.sh(`${gs} relay-log | tail -n +${logFrom}`);
	const hooks = (lines) => vm.sh(`${gs} hook-log${lines ? ` | tail -n ${lines}` : ''}`);
	const hooked = async (want, lines = 0) => {
		const h = await hooks(lines);
		if (h !== want)
			throw new Error(`hook log:\n${h}`);
	};
	const START_STOP = 'start disk0 /dev/nbdws0\nstop disk0 /dev/nbdws0\n';

	await vm.sh(`${gs} hook-reset`);

	// An ext4 image, every file checked read-only
	let user = await browser.open(`${url}?token=${token}`);
	tap.note(`${browser.name}: ${await user.evaluate(() => navigator.userAgent)}`);
	const served = await check('page: pick an ext4 image, slot disk0, Serve -> #state serving', async () => {
		if (user.url().includes(token))
			throw new Error('the token stayed in the address bar: ' + user.url());
		await user.pick(img.path);
		await user.selectSlot('disk0');
		await user.serve();
		await user.waitState('serving', 120000);
	});
	await check('VM: /dev/nbdws0 has the image\'s size and is read-only', async () => {
		const o = await vm.sh(`${gs} wait-dev /dev/nbdws0 60`);
		tap.note(o.trim());
		if (!o.includes(`: ${img.size} bytes, read-only 1`))
			throw new Error(`expected ${img.size} bytes read-only: ${o}`);
	});
	await check('VM: mount read-only; exactly the image\'s files, every SHA-256 right', () =>
		vm.sh(`${gs} check-files /dev/nbdws0 ${img.files} ${img.sums}`, { timeout: 600 }));
	await check('VM: the whole device equals the image byte for byte', async () => {
		const got = (await vm.sh(`${gs} read-sum /dev/nbdws0 ${img.size}`, { timeout: 600 })).trim();
		const want = sha256(fs.readFileSync(img.path));
		if (got !== want)
			throw new Error(`device ${got}\nimage  ${want}`);
	});
	await check('page: counters show the bytes and requests served; screenshot', async () => {
		await user.sleep(400);
		const c = await user.read();
		tap.note(`page: ${JSON.stringify(c)}`);
		await shot(user, 'serving.png');
		if (c.state !== 'serving' || !(Number(c.bytes) >= img.size) ||
		    !(Number(c.requests) > 0) || c.bodyState !== 'serving')
			throw new Error('unexpected counters');
	});

	// Stop: the device goes at once (close 1000), the stop hook ran.
	await check('page: Stop -> #state stopped', async () => {
		if (!served)
			throw new Error('not serving');
		await user.stop();
		await user.waitState('stopped', 60000);
		await shot(user, 'stopped.png');
	});
	await check('VM: after Stop /dev/nbdws0 is gone, slot idle, hooks ran start then stop', async () => {
		await vm.sh(`${gs} dev-gone /dev/nbdws0 30 && ${st('wait-state disk0 idle 30')}`);
		await hooked(START_STOP);
	});

	// A size that is not a multiple of 512, on slot disk1
	const oddData = fs.readFileSync(ctx.odd);
	const exposed = oddData.length - oddData.length % 512;
	await check(`page: a ${oddData.length}-byte file (not a multiple of 512) on slot disk1 -> serving`, async () => {
		await user.reload();
		await user.pick(ctx.odd);
		await user.selectSlot('disk1');
		await user.serve();
		await user.waitState('serving', 120000);
		const info = await user.text('file-info');
		tap.note(`page: ${info}`);
		if (!/not a multiple of 512/.test(info))
			throw new Error('the page does not say the size is not a multiple of 512');
	});
	await check(`VM: /dev/nbdws1 exposes the rounded-down ${exposed} bytes`, async () => {
		const o = await vm.sh(`${gs} wait-dev /dev/nbdws1 60`);
		tap.note(o.trim());
		if (!o.includes(`: ${exposed} bytes,`))
			throw new Error(o);
	});
	await check('VM: the exposed part equals the file\'s first bytes', async () => {
		const got = (await vm.sh(`${gs} read-sum /dev/nbdws1 ${exposed}`, { timeout: 600 })).trim();
		const want = sha256(oddData.subarray(0, exposed));
		if (got !== want)
			throw new Error(`device ${got}\nfile   ${want}`);
	});
	await check('page: Stop -> stopped; VM: /dev/nbdws1 gone, stop hook ran', async () => {
		await user.stop();
		await user.waitState('stopped', 60000);
		await vm.sh(`${gs} dev-gone /dev/nbdws1 30 && ${st('wait-state disk1 idle 30')}`);
		await hooked('start disk1 /dev/nbdws1\nstop disk1 /dev/nbdws1\n', 2);
	});

	// Reload the tab while the VM reads; the read completes.
	const bigData = fs.readFileSync(ctx.big);
	await vm.sh(`${gs} hook-reset`);
	await check(`page: serve a ${bigData.length >> 20} MiB file on disk0 again`, async () => {
		await user.reload();
		await user.pick(ctx.big);
		await user.selectSlot('disk0');
		await user.serve();
		await user.waitState('serving', 120000);
		await vm.sh(`${gs} wait-dev /dev/nbdws0 60`);
	});
	// 4 KiB direct reads: thousands of requests, each through the page.
	await vm.sh('rm -f /tmp/rl.*; (dd if=/dev/nbdws0 bs=4k iflag=direct status=none | ' +
		'sha256sum > /tmp/rl.part; mv /tmp/rl.part /tmp/rl.sum) > /dev/null 2>&1 < /dev/null & ' +
		'echo $! > /tmp/rl.pid');
	let reloadedAt = 0;
	await check('page: reload the tab while the VM\'s read runs', async () => {
		// Some of the read done first: the page has served requests.
		await user.waitFor(() => Number(document.getElementById('requests').textContent) >= 200,
			null, 120000, 'the read to start (200 requests served)');
		await user.reload();
		reloadedAt = Date.now();
		const s = await user.read();
		if (s.state !== 'idle')
			throw new Error(`after the reload #state is ${s.state}`);
	});
	await check('VM: the slot holds the device while the read waits', async () => {
		const o = await vm.sh(`${st('wait-state disk0 held 30')} && ` +
			'[ ! -f /tmp/rl.sum ] && echo "the read is still running"');
		tap.note(o.trim().replace(/\n/g, '; '));
	});
	await check('page: pick the file again, Serve -> serving within the hold', async () => {
		await user.pick(ctx.big);
		await user.selectSlot('disk0');
		await user.serve();
		await user.waitState('serving', 60000);
		tap.note(`back ${((Date.now() - reloadedAt) / 1000).toFixed(1)} s after the reload`);
	});
	await check('VM: the read completes with the file\'s bytes; reconnects 1, no hook ran', async () => {
		const got = (await vm.sh('for i in $(seq 1200); do [ -f /tmp/rl.sum ] && break; ' +
			'sleep 0.5; done; cat /tmp/rl.sum', { timeout: 700 })).split(/\s+/)[0];
		const want = sha256(bigData);
		if (got !== want)
			throw new Error(`read ${got}\nfile ${want}`);
		const r = (await vm.sh(st('status slots[disk0].reconnects slots[disk0].state'))).trim();
		if (r !== '1\nserving')
			throw new Error(`reconnects, state: ${r}`);
		await hooked('start disk0 /dev/nbdws0\n');
	});
	await check('page: Stop -> stopped; VM: device gone, stop hook ran', async () => {
		await user.stop();
		await user.waitState('stopped', 60000);
		await vm.sh(`${gs} dev-gone /dev/nbdws0 30`);
		await hooked(START_STOP);
	});
	await user.close();

	// A wrong token is refused, on the page
	const wrong = 'wrong.' + crypto.randomBytes(12).toString('hex');
	user = await browser.open(`${url}?token=${wrong}`);
	await check('page with a wrong token: Serve -> stopped, the refusal shown', async () => {
		await user.pick(img.path);
		await user.serve();
		await user.waitState('stopped', 60000);
		const s = await user.read();
		tap.note(`#reason: ${s.reason}`);
		await shot(user, 'wrong-token.png');
		if (!/refused/i.test(s.reason) || !/\b40[13]\b/.test(s.reason))
			throw new Error(`#reason does not tell the refusal: ${s.reason}`);
	});
	await check('VM: no device and no hook run for the wrong token; the relay logged a 401', async () => {
		await vm.sh(`${gs} no-devices && ${st('wait-state disk0 idle 5')}`);
		await hooked(START_STOP);
		const log = await relayLog();
		if (!/\b401\b/.test(log))
			throw new Error('no 401 in the relay log:\n' + log.split('\n').slice(-15).join('\n'));
		if (log.includes(token) || log.includes(wrong))
			throw new Error('a token is in the relay\'s log');
	});
	await user.close();

	// A token for disk1 only lists the slots, but the upgrade to disk0 is
	// refused (403): in a browser that is a close 1006.
	const from403 = Number((await vm.sh(`${gs} relay-log | wc -l`)).trim()) + 1;
	user = await browser.open(`${url}?token=${token1}`);
	await check('page with a token for disk1 only: Serve on disk0 -> stopped, could not connect', async () => {
		await user.pick(img.path);
		await user.selectSlot('disk0');
		await user.serve();
		await user.waitState('stopped', 60000);
		const s = await user.read();
		tap.note(`#reason: ${s.reason}`);
		await shot(user, 'other-slot-token.png');
		if (!/could not connect/i.test(s.reason) || !/1006/.test(s.reason))
			throw new Error(`#reason: ${s.reason}`);
	});
	await check('VM: the relay refused that upgrade with 403; no device, no hook', async () => {
		await vm.sh(`${gs} no-devices && ${st('wait-state disk0 idle 5')}`);
		const log = await vm.sh(`${gs} relay-log | tail -n +${from403}`);
		if (!/\b403\b/.test(log))
			throw new Error('no 403 in the relay log:\n' + log.split('\n').slice(-15).join('\n'));
		if (log.includes(token1))
			throw new Error('a token is in the relay\'s log');
		await hooked(START_STOP);
	});
	await user.close();
}
