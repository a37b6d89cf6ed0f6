// SPDX-License-Identifier: GPL-2.0
//
// What lib/chromium.mjs and lib/firefox.mjs share: loading their driver
// from build/npm, a fresh profile folder, and the page operations whose
// calls are the same in playwright-core and puppeteer-core.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

// @name from build/npm, where scripts/install-deps.sh installs it.
export function requireDriver(top, name) {
	const require = createRequire(path.join(top, 'build/npm/package.json'));
	try {
		return require(name);
	} catch (e) {
		throw new Error(`${name} is not installed in build/npm: ` +
			'run scripts/install-deps.sh (' + e.message + ')');
	}
}

// An empty profile folder: each launch starts from a new profile.
export function freshProfile(dir) {
	fs.rmSync(dir, { recursive: true, force: true });
	fs.mkdirSync(dir, { recursive: true });
}

export function removeProfile(dir) {
	fs.rmSync(dir, { recursive: true, force: true });
}

// A page of either driver; the subclasses add the calls that differ.
export class DriverPage {
	constructor(page) {
		this.page = page;
	}

	goto(url) {
		return this.page.goto(url, { waitUntil: 'load' });
	}

	url() {
		return this.page.url();
	}

	evaluate(fn, arg) {
		return this.page.evaluate(fn, arg);
	}

	click(selector) {
		return this.page.click(selector);
	}

	reload() {
		return this.page.reload({ waitUntil: 'load' });
	}

	screenshot(file) {
		return this.page.screenshot({ path: file, fullPage: true });
	}

	onConsole(log) {
		this.page.on('console', (m) => log(`${m.type()}: ${m.text()}`));
		this.page.on('pageerror', (e) => log(`pageerror: ${e.message}`));
	}

	close() {
		return this.page.close();
	}
}
