// SPDX-License-Identifier: GPL-2.0
//
// End-to-end tests in a real browser: Debian's Chromium (headless, driven
// by playwright-core) on this machine works the page (web/) served by
// nbdws-relay in a test VM of one target kernel, whose port is forwarded
// to 127.0.0.1 here; the VM checks what the kernel's device holds
// (tests/browser/guest.sh, through tests/browser/vm-agent.sh).
//
//   node tests/browser/e2e.mjs [--kernel NAME|KVER] [--out DIR]
//
// Prints TAP. Screenshots and logs stay in DIR (build/browser/KVER).

import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestVM, freePort } from './lib/vm.mjs';
import { launch, PageUser } from './lib/browser.mjs';

const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const argv = process.argv.slice(2);
const opt = (name) => {
	const i = argv.indexOf(name);
	return i >= 0 ? argv[i + 1] : '';
};
const kernel = opt('--kernel');
const PLAN = 25;

let n = 0;
let failed = 0;
function result(ok, desc, diag = '') {
	n++;
	console.log(`${ok ? 'ok' : 'not ok'} ${n} ${desc}`);
	if (!ok) {
		failed++;
		const d = String(diag).trimEnd().split('\n').slice(-40);
		for (const line of d)
			console.log(`# ${line}`);
	}
	return ok;
}
const note = (text) => console.log(String(text).trimEnd().replace(/^/gm, '# '));

// check(DESC, async fn): fn throws or returns false to fail; its error
// message is the diagnostic.
async function check(desc, fn) {
	try {
		const r = await fn();
		return result(r !== false, desc);
	} catch (e) {
		return result(false, desc, e.stack && !e.message.includes('\n') ?
			e.stack : e.message);
	}
}

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// An ext4 image with a few files (mkfs.ext4 -d: no root needed), and
// the list and SHA-256 of its files for the VM.
function makeExt4(out, name, files, sizeMiB) {
	const dir = path.join(out, `${name}.d`);
	const img = path.join(out, `${name}.img`);
	fs.rmSync(dir, { recursive: true, force: true });
	for (const [rel, data] of Object.entries(files)) {
		fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
		fs.writeFileSync(path.join(dir, rel), data);
	}
	fs.rmSync(img, { force: true });
	execFileSync('mkfs.ext4', ['-q', '-F', '-L', name, '-d', dir, img, `${sizeMiB}M`],
		{ stdio: ['ignore', 'pipe', 'pipe'] });
	const rels = Object.keys(files).map((r) => `./${r}`).sort();
	fs.writeFileSync(path.join(out, `${name}.files`), rels.join('\n') + '\n');
	fs.writeFileSync(path.join(out, `${name}.sha256`), rels.map((r) =>
		`${sha256(fs.readFileSync(path.join(dir, r)))}  ${r}`).join('\n') + '\n');
	return img;
}

async function main() {
	console.log('TAP version 13');
	console.log(`1..${PLAN}`);
	const port = await freePort();
	const vm = new TestVM({ top, kernel, port, dir: '' });
	const kver = vm.kver();
	const out = path.resolve(opt('--out') || path.join(top, 'build/browser', kver));
	fs.mkdirSync(out, { recursive: true });
	vm.dir = out;
	vm.sync = path.join(out, 'sync');
	const gs = `bash ${top}/tests/browser/guest.sh`;
	const token = 'e2e.' + crypto.randomBytes(18).toString('hex');
	const token1 = 'e2e1.' + crypto.randomBytes(18).toString('hex');
	const st = (args) => `${gs} ${args.replace(/^(\S+)/, `$1 ${token} ${port}`)}`;
	let browser = null;
	let vmUp = false;

	try {
		// 1, 2: the VM and the relay
		if (!await check(`${kver}: the VM boots with 127.0.0.1:${port} forwarded, nbdws.ko loaded`,
			async () => { note(`guest ${await vm.start()}`); vmUp = true; }))
			return;
		if (!await check('nbdws-relay starts in the VM with the page (--web web/) and a token',
			() => vm.sh(`${gs} relay-start ${port} ${top}/web ${token} 120 ${token1}`)))
			return;
		browser = await launch(top, { profileDir: path.join(out, 'chromium-profile') });
		const url = `http://127.0.0.1:${port}/`;

		// 3-9: an ext4 image from the page, every file checked read-only
		const files = {
			'hello.txt': 'served by a browser page\n',
			'empty': '',
			'a/b/c/deep.bin': crypto.randomBytes(700 * 1024 + 3),
			'photos/one.raw': crypto.randomBytes(3 << 20),
			'photos/two.raw': crypto.randomBytes((1 << 20) + 4097),
		};
		for (let i = 0; i < 20; i++)
			files[`many/file-${i}.txt`] = crypto.randomBytes(100 + 517 * i).toString('base64');
		const img = makeExt4(out, 'e2e-ext4', files, 24);
		const imgSize = fs.statSync(img).size;
		let user = await PageUser.open(browser.context, `${url}?token=${token}`);
		const served = await check('page: pick an ext4 image, slot disk0, Serve -> #state serving', async () => {
			if (user.page.url().includes(token))
				throw new Error('the token stayed in the address bar: ' + user.page.url());
			await user.pick(img);
			await user.selectSlot('disk0');
			await user.serve();
			await user.waitState('serving', 120000);
		});
		await check('VM: /dev/nbdws0 has the image\'s size and is read-only', async () => {
			const o = await vm.sh(`${gs} wait-dev /dev/nbdws0 60`);
			note(o.trim());
			if (!o.includes(`: ${imgSize} bytes, read-only 1`))
				throw new Error(`expected ${imgSize} bytes read-only: ${o}`);
		});
		await check('VM: mount read-only; exactly the image\'s files, every SHA-256 right', () =>
			vm.sh(`${gs} check-files /dev/nbdws0 ${out}/e2e-ext4.files ${out}/e2e-ext4.sha256`,
				{ timeout: 600 }));
		await check('VM: the whole device equals the image byte for byte', async () => {
			const got = (await vm.sh(`${gs} read-sum /dev/nbdws0 ${imgSize}`, { timeout: 600 })).trim();
			const want = sha256(fs.readFileSync(img));
			if (got !== want)
				throw new Error(`device ${got}\nimage  ${want}`);
		});
		await check('page: counters show the bytes and requests served; screenshot', async () => {
			await user.page.waitForTimeout(400);
			const c = await user.read();
			note(`page: ${JSON.stringify(c)}`);
			await user.screenshot(path.join(out, 'serving.png'));
			if (c.state !== 'serving' || !(Number(c.bytes) >= imgSize) ||
			    !(Number(c.requests) > 0) || c.bodyState !== 'serving')
				throw new Error('unexpected counters');
		});

		// Stop: the device goes at once (close 1000), the stop hook ran.
		await check('page: Stop -> #state stopped', async () => {
			if (!served)
				throw new Error('not serving');
			await user.stop();
			await user.waitState('stopped', 60000);
			await user.screenshot(path.join(out, 'stopped.png'));
		});
		await check('VM: after Stop /dev/nbdws0 is gone, slot idle, hooks ran start then stop', async () => {
			await vm.sh(`${gs} dev-gone /dev/nbdws0 30 && ${st('wait-state disk0 idle 30')}`);
			const hooks = await vm.sh(`${gs} hook-log`);
			if (hooks !== 'start disk0 /dev/nbdws0\nstop disk0 /dev/nbdws0\n')
				throw new Error(`hook log:\n${hooks}`);
		});

		// 10-13: a size that is not a multiple of 512, on slot disk1
		const odd = path.join(out, 'odd-size.bin');
		const oddData = crypto.randomBytes((3 << 20) + 300);
		fs.writeFileSync(odd, oddData);
		const exposed = oddData.length - oddData.length % 512;
		await check(`page: a ${oddData.length}-byte file (not a multiple of 512) on slot disk1 -> serving`, async () => {
			await user.page.reload();
			await user.pick(odd);
			await user.selectSlot('disk1');
			await user.serve();
			await user.waitState('serving', 120000);
			const info = await user.page.textContent('#file-info');
			note(`page: ${info.trim()}`);
		});
		await check(`VM: /dev/nbdws1 exposes the rounded-down ${exposed} bytes`, async () => {
			const o = await vm.sh(`${gs} wait-dev /dev/nbdws1 60`);
			note(o.trim());
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
			const hooks = await vm.sh(`${gs} hook-log | tail -n 2`);
			if (hooks !== 'start disk1 /dev/nbdws1\nstop disk1 /dev/nbdws1\n')
				throw new Error(`hook log:\n${hooks}`);
		});

		// 14-19: reload the tab while the VM reads; the read completes.
		const big = path.join(out, 'reload.bin');
		const bigData = crypto.randomBytes(16 << 20);
		fs.writeFileSync(big, bigData);
		await vm.sh(`: > /tmp/nbdws-relay/hook.log`);
		await check('page: serve a 16 MiB file on disk0 again', async () => {
			await user.page.reload();
			await user.pick(big);
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
			const end = Date.now() + 120000;
			while (Number((await user.read()).requests) < 200) {
				if (Date.now() > end)
					throw new Error(`the read did not start: ${JSON.stringify(await user.read())}`);
				await user.page.waitForTimeout(100);
			}
			await user.page.reload();
			reloadedAt = Date.now();
			const s = await user.read();
			if (s.state !== 'idle')
				throw new Error(`after the reload #state is ${s.state}`);
		});
		await check('VM: the slot holds the device while the read waits', async () => {
			const o = await vm.sh(`${st('wait-state disk0 held 30')} && ` +
				'[ ! -f /tmp/rl.sum ] && echo "the read is still running"');
			note(o.trim().replace(/\n/g, '; '));
		});
		await check('page: pick the file again, Serve -> serving within the hold', async () => {
			await user.pick(big);
			await user.selectSlot('disk0');
			await user.serve();
			await user.waitState('serving', 60000);
			note(`back ${((Date.now() - reloadedAt) / 1000).toFixed(1)} s after the reload`);
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
			const hooks = await vm.sh(`${gs} hook-log`);
			if (hooks !== 'start disk0 /dev/nbdws0\n')
				throw new Error(`hook log:\n${hooks}`);
		});
		await check('page: Stop -> stopped; VM: device gone, stop hook ran', async () => {
			await user.stop();
			await user.waitState('stopped', 60000);
			await vm.sh(`${gs} dev-gone /dev/nbdws0 30`);
			const hooks = await vm.sh(`${gs} hook-log`);
			if (hooks !== 'start disk0 /dev/nbdws0\nstop disk0 /dev/nbdws0\n')
				throw new Error(`hook log:\n${hooks}`);
		});
		await user.page.close();

		// 20-21: a wrong token is refused, on the page
		const wrong = 'wrong.' + crypto.randomBytes(12).toString('hex');
		user = await PageUser.open(browser.context, `${url}?token=${wrong}`);
		await check('page with a wrong token: Serve -> stopped, the refusal shown', async () => {
			await user.pick(img);
			await user.serve();
			await user.waitState('stopped', 60000);
			const s = await user.read();
			note(`#reason: ${s.reason}`);
			await user.screenshot(path.join(out, 'wrong-token.png'));
			if (!/refused/i.test(s.reason) || !/\b40[13]\b/.test(s.reason))
				throw new Error(`#reason does not tell the refusal: ${s.reason}`);
		});
		await check('VM: no device and no hook run for the wrong token; the relay logged a 401', async () => {
			await vm.sh(`${gs} no-devices && ${st('wait-state disk0 idle 5')}`);
			const hooks = await vm.sh(`${gs} hook-log`);
			if (hooks !== 'start disk0 /dev/nbdws0\nstop disk0 /dev/nbdws0\n')
				throw new Error(`hook log:\n${hooks}`);
			const log = await vm.sh(`${gs} relay-log`);
			if (!/\b401\b/.test(log))
				throw new Error('no 401 in the relay log:\n' + log.split('\n').slice(-15).join('\n'));
			if (log.includes(token) || log.includes(wrong))
				throw new Error('a token is in the relay\'s log');
		});

		// 22-23: a token for disk1 only lists the slots, but the upgrade
		// to disk0 is refused (403): in a browser that is a close 1006.
		await user.page.close();
		user = await PageUser.open(browser.context, `${url}?token=${token1}`);
		await check('page with a token for disk1 only: Serve on disk0 -> stopped, could not connect', async () => {
			await user.pick(img);
			await user.selectSlot('disk0');
			await user.serve();
			await user.waitState('stopped', 60000);
			const s = await user.read();
			note(`#reason: ${s.reason}`);
			await user.screenshot(path.join(out, 'other-slot-token.png'));
			if (!/could not connect/i.test(s.reason) || !/1006/.test(s.reason))
				throw new Error(`#reason: ${s.reason}`);
		});
		await check('VM: the relay refused that upgrade with 403; no device, no hook', async () => {
			await vm.sh(`${gs} no-devices && ${st('wait-state disk0 idle 5')}`);
			const log = await vm.sh(`${gs} relay-log`);
			if (!/\b403\b/.test(log))
				throw new Error('no 403 in the relay log:\n' + log.split('\n').slice(-15).join('\n'));
			if (log.includes(token1))
				throw new Error('a token is in the relay\'s log');
			const hooks = await vm.sh(`${gs} hook-log`);
			if (hooks !== 'start disk0 /dev/nbdws0\nstop disk0 /dev/nbdws0\n')
				throw new Error(`hook log:\n${hooks}`);
		});

		// 24-25: clean end
		await check('VM: the relay exits 0 on SIGTERM; no device left; rmmod nbdws', () =>
			vm.sh(`${gs} relay-stop && ${gs} no-devices && rmmod nbdws && ! [ -e /sys/module/nbdws ]`));
		await browser.close();
		browser = null;
		await check('VM: the guest kernel log is clean (no oops, BUG, WARNING, hung task)', async () => {
			await vm.stop();
			vmUp = false;
			const dmesg = fs.readFileSync(path.join(vm.sync, 'dmesg.txt'), 'utf8');
			const bad = dmesg.split('\n').filter((l) =>
				/Oops|BUG[: ]|WARNING:|Call Trace|general protection|hung_task|blocked for more than|KASAN|UBSAN|refcount_t:|Kernel panic/.test(l));
			if (bad.length)
				throw new Error(bad.join('\n'));
		});
	} finally {
		if (browser)
			await browser.close();
		if (vmUp) {
			const r = await vm.run(`${gs} relay-log | tail -n 30`, { timeout: 30 }).catch(() => null);
			if (failed && r)
				note('relay log:\n' + r.out);
			await vm.stop(60);
		}
		for (; n < PLAN;)
			result(false, 'not run: an earlier step failed');
	}
}

try {
	await main();
} catch (e) {
	note(e.stack || e.message);
	failed++;
}
process.exitCode = failed ? 1 : 0;
