// SPDX-License-Identifier: GPL-2.0
//
// End-to-end tests in real browsers: Debian's Chromium (playwright-core)
// and Firefox ESR (puppeteer-core over WebDriver BiDi), headless on this
// machine, work the page (web/) served by nbdws-relay in a test VM of one
// target kernel, whose port is forwarded to 127.0.0.1 here; the VM checks
// what the kernel's device holds (tests/browser/guest.sh, through
// tests/browser/vm-agent.sh). One VM boot serves both browsers, one
// browser at a time:
//
//   chromium: the read-only checks (readonly.mjs), then the writable
//             switch over an origin-private file (writable.mjs)
//   firefox:  the same read-only checks, then that the page offers no
//             writable switch and says why
//
//   node tests/browser/e2e.mjs [--kernel NAME|KVER] [--out DIR]
//                              [--browser chromium|firefox]...
//
// Prints TAP. Screenshots and logs stay in DIR (build/browser/KVER), one
// folder per browser.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestVM, freePort } from './lib/vm.mjs';
import { launch, BROWSERS } from './lib/browser.mjs';
import { Tap } from './lib/tap.mjs';
import { makeExt4, sampleFiles } from './lib/images.mjs';
import { readOnly, READONLY_CHECKS } from './readonly.mjs';
import { writable, noWritable, WRITABLE_CHECKS, NO_WRITABLE_CHECKS } from './writable.mjs';

const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const argv = process.argv.slice(2);
const opt = (name) => {
	const i = argv.indexOf(name);
	return i >= 0 ? argv[i + 1] : '';
};
const optAll = (name) => argv.flatMap((a, i) => (a === name ? [argv[i + 1]] : []));
const kernel = opt('--kernel');
const browsers = optAll('--browser').length ? optAll('--browser') : BROWSERS;
for (const b of browsers) {
	if (!BROWSERS.includes(b)) {
		console.error(`e2e.mjs: unknown browser '${b}' (${BROWSERS.join(', ')})`);
		process.exit(2);
	}
}

// What each browser runs after the read-only checks, and how many results.
const SUITES = {
	chromium: { extra: writable, checks: READONLY_CHECKS + WRITABLE_CHECKS },
	firefox: { extra: noWritable, checks: READONLY_CHECKS + NO_WRITABLE_CHECKS },
};
const PLAN = 2 + browsers.reduce((n, b) => n + SUITES[b].checks, 0) + 2;
const tap = new Tap();

async function main() {
	tap.plan(PLAN);
	const port = await freePort();
	// The VM lives through both browsers' runs: 24 to 38 min measured
	// on a loaded host; check.sh's 45 min is the hang catcher, this the
	// same.
	const vm = new TestVM({ top, kernel, port, dir: '', timeout: 2700 });
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
		if (!await tap.check(`${kver}: the VM boots with 127.0.0.1:${port} forwarded, nbdws.ko loaded`,
			async () => { tap.note(`guest ${await vm.start()}`); vmUp = true; }))
			return;
		if (!await tap.check('nbdws-relay starts in the VM with the page (--web web/) and a token',
			() => vm.sh(`${gs} relay-start ${port} ${top}/web ${token} 120 ${token1}`)))
			return;
		const url = `http://127.0.0.1:${port}/`;

		// The files every browser serves.
		const ext4 = makeExt4(out, 'e2e-ext4', sampleFiles(kver), 24);
		const img = { path: ext4, size: fs.statSync(ext4).size,
			files: path.join(out, 'e2e-ext4.files'), sums: path.join(out, 'e2e-ext4.sha256') };
		const odd = path.join(out, 'odd-size.bin');
		fs.writeFileSync(odd, crypto.randomBytes((3 << 20) + 300));
		const big = path.join(out, 'reload.bin');
		fs.writeFileSync(big, crypto.randomBytes(16 << 20));

		for (const name of browsers) {
			const end = tap.n + SUITES[name].checks;
			const dir = path.join(out, name);
			fs.mkdirSync(dir, { recursive: true });
			try {
				browser = await launch(top, { browser: name,
					profileDir: path.join(out, `${name}-profile`) });
				const ctx = { tap, vm, gs, st, browser, url, token, token1,
					out: dir, img, odd, big };
				await readOnly(ctx);
				await SUITES[name].extra(ctx);
			} catch (e) {
				tap.note(`${name}: ${e.stack || e.message}`);
			} finally {
				await browser?.close();
				browser = null;
			}
			tap.fill(end, `${name}: not run: an earlier step failed (see above)`);
			// A browser that failed halfway may have left a device.
			await vm.sh(`for d in 0 1; do ${st('wait-state disk$d idle 30')} || exit 1; done`)
				.catch((e) => tap.note(e.message));
		}

		// Clean end
		await tap.check('VM: the relay exits 0 on SIGTERM; no device left; rmmod nbdws', () =>
			vm.sh(`${gs} relay-stop && ${gs} no-devices && rmmod nbdws && ! [ -e /sys/module/nbdws ]`));
		await tap.check('VM: the guest kernel log is clean (no oops, BUG, WARNING, hung task)', async () => {
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
			if (tap.failed && r)
				tap.note('relay log:\n' + r.out);
			await vm.stop(60);
		}
		tap.fill(PLAN);
	}
}

try {
	await main();
} catch (e) {
	tap.note(e.stack || e.message);
	tap.failed++;
}
process.exitCode = tap.failed ? 1 : 0;
