// SPDX-License-Identifier: GPL-2.0
//
// Debian's Chromium, headless, driven by playwright-core over the DevTools
// protocol (installed by scripts/install-deps.sh into build/npm; it never
// downloads a browser). Gives lib/browser.mjs the few page operations it
// needs, in the same shape as lib/firefox.mjs.

import { DriverPage, freshProfile, removeProfile, requireDriver } from './driver.mjs';

export const CHROMIUM = process.env.NBDWS_CHROMIUM || '/usr/bin/chromium';

class ChromiumPage extends DriverPage {
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
}

// A fresh profile each time; no network but what the page asks for.
export async function launchChromium(top, { profileDir }) {
	const { chromium } = requireDriver(top, 'playwright-core');
	freshProfile(profileDir);
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
			removeProfile(profileDir);
		},
	};
}
