// SPDX-License-Identifier: GPL-2.0
//
// Debian's Chromium, headless, driven by playwright-core over the DevTools
// protocol (installed by scripts/install-deps.sh into build/npm; it never
// downloads a browser). Gives lib/browser.mjs the few page operations it
// needs, in the same shape as lib/firefox.mjs.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

export const CHROMIUM = process.env.NBDWS_CHROMIUM || '/usr/bin/chromium';

function playwright(top) {
	const require = createRequire(path.join(top, 'build/npm/package.json'));
	try {
		return require('playwright-core');
	} catch (e) {
		throw new Error('playwright-core is not installed in build/npm: ' +
			'run scripts/install-deps.sh (' + e.message + ')');
	}
}

class ChromiumPage {
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

	// Before any script of the page, on every load of this tab.
	addInitScript(fn, arg) {
		return this.page.addInitScript(fn, arg);
	}

	async waitFor(fn, arg, timeout) {
		await this.page.waitForFunction(fn, arg, { timeout, polling: 100 });
	}

	setFile(selector, file) {
		return this.page.setInputFiles(selector, file);
	}

	select(selector, value) {
		return this.page.selectOption(selector, value);
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

// A fresh profile each time; no network but what the page asks for.
export async function launchChromium(top, { profileDir }) {
	const { chromium } = playwright(top);
	fs.rmSync(profileDir, { recursive: true, force: true });
	fs.mkdirSync(profileDir, { recursive: true });
	const context = await chromium.launchPersistentContext(profileDir, {
		executablePath: CHROMIUM,
		headless: true,
		viewport: { width: 1024, height: 760 },
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
			'--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'],
	});
	return {
		name: 'chromium',
		async newPage() {
			return new ChromiumPage(await context.newPage());
		},
		async close() {
			await context.close().catch(() => {});
			fs.rmSync(profileDir, { recursive: true, force: true });
		},
	};
}
