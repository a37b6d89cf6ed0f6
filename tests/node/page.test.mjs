// SPDX-License-Identifier: GPL-2.0
/*
 * The page in Debian's Chromium (driven by playwright-core from
 * build/npm, as scripts/install-deps.sh installs it) against
 * tests/node/dev-relay.mjs, which pairs the page's WebSocket with an NBD
 * client over TCP: nbdcopy reads the whole file through the browser.
 * The real relay and the kernel are the browser tests' part
 * (tests/browser, in the VMs); this checks the page itself on the host.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import net from 'node:net';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startDevRelay } from './dev-relay.mjs';
import { pattern } from './nbd-client.mjs';

const run = promisify(execFile);
const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
			 '../..');
const pw = path.join(top, 'build/npm/node_modules/playwright-core/index.mjs');
const TOKEN = 'tok-123';
let browser, page, relay, dir, errors;

const state = () => page.textContent('#state');
const waitState = (s, timeout = 20000) => page.waitForFunction(
	(want) => document.querySelector('#state').textContent === want, s,
	{ timeout });

/* Screenshots are kept as artifacts in build/screenshots. */
async function shot(name) {
	const d = path.join(top, 'build/screenshots');

	await fs.mkdir(d, { recursive: true });
	await page.screenshot({ path: path.join(d, name), fullPage: true });
}

/* The NBD handshake of a client that then stays, as the kernel does. */
function stayingClient(port) {
	const c = net.connect(port, '127.0.0.1');
	const go = Buffer.alloc(22);

	c.on('data', () => {});
	c.on('error', () => {});
	go.writeBigUInt64BE(0x49484156454f5054n, 0);
	go.writeUInt32BE(7, 8);
	go.writeUInt32BE(6, 12);
	c.write(Buffer.concat([Buffer.from([0, 0, 0, 3]), go]));
	return c;
}

test.before(async () => {
	const { chromium } = await import(pathToFileURL(pw).href).catch(() => {
		throw new Error(`${pw} is missing: run scripts/install-deps.sh`);
	});

	dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nbdws-page-'));
	relay = await startDevRelay({ token: TOKEN });
	browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
					  args: ['--no-sandbox'] });
	page = await browser.newPage();
	errors = [];
	page.on('pageerror', (e) => errors.push(e.message));
	await page.goto(`http://127.0.0.1:${relay.port}/?token=${TOKEN}`);
});

test.after(async () => {
	await browser?.close();
	await relay?.stop();
	if (dir)
		await fs.rm(dir, { recursive: true, force: true });
});

test('the token leaves the address bar; the slots are listed', async () => {
	assert.equal(new URL(page.url()).search, '');
	assert.equal(await page.inputValue('#token'), TOKEN);
	await page.waitForFunction(() =>
		document.querySelector('#slot').value === 'disk0');
	assert.equal(await state(), 'idle');
	assert.equal(await page.getAttribute('body', 'data-state'), 'idle');
	assert.equal(await page.isDisabled('#serve'), true, 'no file yet');
	assert.equal(await page.isDisabled('#stop'), true);
});

test('nbdcopy reads the file through the page; DISC stops it', async () => {
	const size = 3 * 1024 * 1024 + 300;
	const file = path.join(dir, 'disk.img');
	const out = path.join(dir, 'copy.img');

	await fs.writeFile(file, pattern(size, 31));
	await page.setInputFiles('#file', file);
	assert.match(await page.textContent('#file-info'),
		     /3146028 bytes.*not a multiple of 512.*last 300 bytes/);
	await page.click('#serve');
	const copy = run('nbdcopy', ['--requests=16',
		`nbd://127.0.0.1:${relay.nbdPort}`, out], { timeout: 60000 });

	await waitState('serving');
	await copy;
	assert.deepEqual(await fs.readFile(out), await fs.readFile(file));
	await waitState('stopped');
	assert.match(await page.textContent('#reason'), /disconnected the device/);
	await page.waitForFunction((n) =>
		document.querySelector('#bytes').textContent === String(n), size);
	assert.ok(Number(await page.textContent('#requests')) >= size / (32 << 20));
	assert.equal(relay.closes.at(-1).code, 1000);
});

test('a drop while serving: reconnecting, then serving again; Stop closes 1000', async () => {
	await page.click('#serve');
	const c1 = stayingClient(relay.nbdPort);

	await waitState('serving');
	assert.equal(await page.isDisabled('#serve'), true);
	assert.equal(await page.isDisabled('#stop'), false);
	assert.equal(await page.isDisabled('#file'), true);
	await shot('page-serving.png');
	relay.dropAll();
	c1.destroy();
	await waitState('reconnecting');
	assert.match(await page.textContent('#reason'), /1006/);
	const c2 = stayingClient(relay.nbdPort);

	await waitState('serving');
	assert.equal(relay.connections(), 1);
	await page.click('#stop');
	await waitState('stopped');
	assert.equal(await page.textContent('#reason'), 'stopped');
	for (let i = 0; i < 50 && relay.closes.at(-1)?.reason !== 'stopped'; i++)
		await new Promise((r) => setTimeout(r, 50));
	assert.deepEqual(relay.closes.at(-1), { code: 1000, reason: 'stopped' });
	c2.destroy();
});

test('a wrong token is refused on the page, before any WebSocket', async () => {
	const before = relay.closes.length;

	await page.fill('#token', 'wrong');
	await page.click('#serve');
	await waitState('stopped');
	assert.match(await page.textContent('#reason'),
		     /refused the token \(HTTP 401/);
	assert.equal(relay.closes.length, before);
	assert.equal(relay.connections(), 0);
	assert.deepEqual(errors, []);
	await shot('page-refused.png');
});
