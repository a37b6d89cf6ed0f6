// SPDX-License-Identifier: GPL-2.0
//
// make demo, the host's side (demo/run.sh installs and builds, then runs
// this): a test VM with nbdws.ko and nbdws-relay, the relay's port
// forwarded to 127.0.0.1 here, and headless Chromium on this machine
// serving a disk image from the page exactly as a person would; then
// nbdws-serve serving a writable image. The VM's side is demo/guest.sh.
//
//   node demo/demo.mjs [--kernel NAME|KVER]
//
// Prints each step; exits non-zero at the first one that fails.

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestVM, freePort } from '../tests/browser/lib/vm.mjs';
import { launch } from '../tests/browser/lib/browser.mjs';

const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(top, 'build/demo');
const args = process.argv.slice(2);
const kernel = args[0] === '--kernel' ? args[1] : '';
const t0 = Date.now();
let stepNo = 0;

const secs = () => ((Date.now() - t0) / 1000).toFixed(0).padStart(4);
function step(text) {
	console.log(`\n==> [${secs()} s] ${++stepNo}. ${text}`);
}
function show(text) {
	const t = String(text).trimEnd();
	if (t)
		console.log(t.replace(/^/gm, '    '));
}
function sha256(file) {
	return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
function run(cmd, argv) {
	return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

// A folder of files and the ext4 image made from it (no root needed:
// mkfs.ext4 -d), with the list and SHA-256 of its files for the VM.
function makeImage(name, files, sizeMiB) {
	const dir = path.join(out, `${name}.d`);
	const img = path.join(out, `${name}.img`);
	fs.rmSync(dir, { recursive: true, force: true });
	for (const [rel, data] of Object.entries(files)) {
		fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
		fs.writeFileSync(path.join(dir, rel), data);
	}
	fs.rmSync(img, { force: true });
	run('mkfs.ext4', ['-q', '-F', '-L', name, '-d', dir, img, `${sizeMiB}M`]);
	const rels = Object.keys(files).map((r) => `./${r}`).sort();
	fs.writeFileSync(path.join(out, `${name}.files`), rels.join('\n') + '\n');
	fs.writeFileSync(path.join(out, `${name}.sha256`), rels.map((r) =>
		`${sha256(path.join(dir, r))}  ${r}`).join('\n') + '\n');
	return img;
}

const token = 'demo.' + crypto.randomBytes(18).toString('base64url').replace(/[^A-Za-z0-9]/g, 'x');
let vm = null;
let browser = null;
let serveProc = null;

async function main() {
	fs.mkdirSync(out, { recursive: true });
	const ds = path.join(top, 'tests/browser/guest.sh');
	const dg = path.join(top, 'demo/guest.sh');

	step('a 32 MiB ext4 image with a few files, made on this machine');
	const img = makeImage('demo-disk', {
		'README.txt': 'This disk image lives on the host. A browser page serves it;\n' +
			'the VM mounts it as /dev/nbdws0 through nbdws-relay and nbdws.ko.\n',
		'photos/sunrise.raw': crypto.randomBytes(3 << 20),
		'photos/harbour.raw': crypto.randomBytes(2 << 20),
		'docs/notes.md': '# Notes\n\nEvery file here is checked by its SHA-256 in the VM.\n',
		'data/blob.bin': crypto.randomBytes(5 << 20),
	}, 32);
	show(`${img}: ${fs.statSync(img).size} bytes`);
	show(fs.readFileSync(path.join(out, 'demo-disk.sha256'), 'utf8'));

	step('boot the test VM (nbdws.ko loaded; the relay\'s port forwarded to 127.0.0.1)');
	const port = await freePort();
	vm = new TestVM({ top, kernel, port, dir: path.join(out, 'vm') });
	fs.mkdirSync(vm.dir, { recursive: true });
	show(`guest kernel ${await vm.start()}, forwarded 127.0.0.1:${port} -> guest :${port}`);

	step('start nbdws-relay in the VM: slots disk0 and disk1, a token, the page from web/');
	show(await vm.sh(`bash ${ds} relay-start ${port} ${top}/web ${token}`));

	step('open the page in headless Chromium, pick the image, choose disk0, click Serve');
	browser = await launch(top, { browser: 'chromium', profileDir: path.join(out, 'chromium-profile') });
	const url = `http://127.0.0.1:${port}/`;
	const user = await browser.open(`${url}?token=${token}`);
	show(`opened ${url}?token=(the token) -> the page now shows ${user.url()}`);
	await user.pick(img);
	await user.selectSlot('disk0');
	await user.serve();
	await user.waitState('serving', 120000);
	show(`#state: ${(await user.read()).state}`);

	step('in the VM: /dev/nbdws0 appears; mount it read-only, list the files, check their SHA-256');
	show(await vm.sh(`bash ${ds} wait-dev /dev/nbdws0 60`));
	show(await vm.sh(`bash ${ds} check-files /dev/nbdws0 ${out}/demo-disk.files ${out}/demo-disk.sha256`,
		{ timeout: 600 }));

	step('in the VM: nbdctl status nbdws0');
	show(await vm.sh('build/nbdctl status nbdws0'));

	step('in the VM: read the whole device; meanwhile, the page\'s counters and a screenshot');
	await vm.sh('rm -f /tmp/whole.sha256; (dd if=/dev/nbdws0 bs=256k iflag=direct status=none | ' +
		'sha256sum > /tmp/whole.sha256.part && mv /tmp/whole.sha256.part /tmp/whole.sha256) ' +
		'> /dev/null 2>&1 < /dev/null & disown');
	// The page's throughput is over its last two seconds: let the read
	// run that long once it shows.
	let c;
	for (let i = 0; i < 40; i++) {
		await user.sleep(250);
		c = await user.read();
		if (/[1-9]/.test(c.throughput ?? '')) {
			await user.sleep(2000);
			c = await user.read();
			break;
		}
	}
	show(`state ${c.state}; served ${c.bytes} bytes in ${c.requests} requests; throughput ${c.throughput}`);
	show(await user.screenshot(path.join(out, 'page-serving.png')));
	const whole = (await vm.sh('for i in $(seq 600); do [ -f /tmp/whole.sha256 ] && break; ' +
		'sleep 0.5; done; cat /tmp/whole.sha256', { timeout: 400 })).split(/\s+/)[0];
	show(`SHA-256 of /dev/nbdws0 in the VM ${whole}\nSHA-256 of the image here       ${sha256(img)}`);
	if (whole !== sha256(img))
		throw new Error('the device in the VM does not hold the image');
	c = await user.read();
	show(`the page: served ${c.bytes} bytes in ${c.requests} requests`);
	if (!(Number(c.bytes) >= fs.statSync(img).size && Number(c.requests) > 0))
		throw new Error('the page\'s counters do not show the whole image served');

	step('click Stop on the page; in the VM the device goes and the stop hook runs');
	await user.stop();
	await user.waitState('stopped', 60000);
	show(`#state: stopped (${(await user.read()).reason})`);
	show(await vm.sh(`bash ${ds} dev-gone /dev/nbdws0 60 && ` +
		`bash ${ds} wait-state ${token} ${port} disk0 idle 60 && ` +
		`echo "state hook log:" && bash ${ds} hook-log && ` +
		`bash ${ds} hook-log | grep -qx 'stop disk0 /dev/nbdws0'`));
	await browser.close();
	browser = null;

	step('a second image, served writable by nbdws-serve on this machine to slot disk1');
	const wimg = makeImage('demo-writable', {
		'README.txt': 'Served by nbdws-serve --writable; the VM writes a file here.\n',
		'data/before.bin': crypto.randomBytes(1 << 20),
	}, 32);
	const tokFile = path.join(out, 'token');
	fs.writeFileSync(tokFile, token + '\n', { mode: 0o600 });
	const serveLog = path.join(out, 'nbdws-serve.log');
	const logFd = fs.openSync(serveLog, 'w');
	const serveArgs = ['--writable', '--token-file', tokFile, wimg,
		`ws://127.0.0.1:${port}/disk1`];
	show(`build/nbdws-serve ${serveArgs.join(' ')}`);
	serveProc = spawn(path.join(top, 'build/nbdws-serve'), serveArgs,
		{ stdio: ['ignore', logFd, logFd] });
	fs.closeSync(logFd);
	const served = new Promise((resolve) => serveProc.on('exit', (code, sig) => resolve(code ?? sig)));
	show(await vm.sh(`bash ${ds} wait-state ${token} ${port} disk1 serving 120 && ` +
		`bash ${ds} wait-dev /dev/nbdws1 60`));

	step('in the VM: check the files, then mount read-write and write a new one');
	show(await vm.sh(`bash ${ds} check-files /dev/nbdws1 ${out}/demo-writable.files ${out}/demo-writable.sha256`));
	show(await vm.sh(`bash ${dg} write-new /dev/nbdws1 written-in-the-vm.txt ${out}/written.sha256`));

	step('stop nbdws-serve (SIGTERM: it closes with 1000); the device goes, the stop hook runs');
	serveProc.kill('SIGTERM');
	const st = await Promise.race([served,
		new Promise((r) => setTimeout(() => r('timeout'), 30000).unref())]);
	show(fs.readFileSync(serveLog, 'utf8'));
	if (st !== 0)
		throw new Error(`nbdws-serve ended with ${st}`);
	serveProc = null;
	show('nbdws-serve exited 0');
	show(await vm.sh(`bash ${ds} dev-gone /dev/nbdws1 60 && ` +
		`bash ${ds} wait-state ${token} ${port} disk1 idle 60 && ` +
		`bash ${ds} hook-log | tail -n 2 && ` +
		`bash ${ds} hook-log | grep -qx 'stop disk1 /dev/nbdws1'`));

	step('on this machine: the image file has the new file (debugfs, no mount)');
	const got = path.join(out, 'written-in-the-vm.txt');
	fs.rmSync(got, { force: true });
	run('debugfs', ['-R', `dump /written-in-the-vm.txt ${got}`, wimg]);
	const want = fs.readFileSync(path.join(out, 'written.sha256'), 'utf8').split(/\s+/)[0];
	const have = sha256(got);
	show(`${fs.readFileSync(got).subarray(0, 200).toString('latin1').split('\n').slice(0, 2).join('\n')}`);
	show(`SHA-256 in the VM ${want}\nSHA-256 here      ${have}`);
	if (want !== have)
		throw new Error('the file in the image is not what the VM wrote');
	show(run('e2fsck', ['-fn', wimg]).trim().split('\n').pop());

	step('stop the relay; the guest kernel\'s log is clean');
	show(await vm.sh(`bash ${ds} relay-stop && bash ${ds} no-devices && bash ${dg} kernel-clean`));
	await vm.stop();
	vm = null;
	console.log(`\ndemo passed in ${secs().trim()} s; screenshot: build/demo/page-serving.png`);
}

try {
	await main();
} catch (e) {
	console.error(`\ndemo FAILED at step ${stepNo}: ${e.message}`);
	if (vm) {
		const r = await vm.run(`bash ${top}/tests/browser/guest.sh relay-log | tail -n 30`,
			{ timeout: 30 }).catch(() => null);
		if (r)
			console.error('--- the relay\'s log (last lines)\n' + r.out);
		console.error(vm.tail(20));
	}
	process.exitCode = 1;
} finally {
	if (serveProc)
		serveProc.kill('SIGKILL');
	if (browser)
		await browser.close();
	if (vm)
		await vm.stop(60);
}
