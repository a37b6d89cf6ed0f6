// SPDX-License-Identifier: GPL-2.0
//
// Debian's Firefox ESR, headless, driven by puppeteer-core over WebDriver
// BiDi (installed by scripts/install-deps.sh into build/npm; puppeteer-core
// never downloads a browser). Gives lib/browser.mjs the same few page
// operations as lib/chromium.mjs.

import { DriverPage, freshProfile, removeProfile, requireDriver } from './driver.mjs';

export const FIREFOX = process.env.NBDWS_FIREFOX || '/usr/bin/firefox-esr';

// On top of puppeteer's own test preferences (no updates, telemetry, safe
// browsing, ...): the services that would still reach out to the network
// on their own. Only the page's relay on 127.0.0.1 is ever contacted.
const QUIET = {
	'network.captive-portal-service.enabled': false,
	'network.connectivity-service.enabled': false,
	'network.dns.disablePrefetch': true,
	'network.prefetch-next': false,
	'browser.region.network.url': '',
	'browser.aboutHomeSnippets.updateUrl': '',
	'extensions.blocklist.enabled': false,
	'toolkit.telemetry.enabled': false,
	'toolkit.telemetry.server': '',
	'dom.push.connection.enabled': false,
};

class FirefoxPage extends DriverPage {
	constructor(page) {
		super(page);
		// TCG VMs and a loaded host: puppeteer's 30 s is too short for
		// a navigation while the page serves a busy device.
		page.setDefaultTimeout(120000);
	}

	addInitScript(fn, arg) {
		return this.page.evaluateOnNewDocument(fn, arg);
	}

	async waitFor(fn, arg, timeout) {
		await this.page.waitForFunction(fn, { timeout, polling: 100 }, arg);
	}

	// input.setFiles of WebDriver BiDi: the input gets the file and its
	// change event, as if picked in the file dialog.
	async setFile(selector, file) {
		const input = await this.page.$(selector);

		if (!input)
			throw new Error(`no ${selector} on the page`);
		try {
			await input.uploadFile(file);
		} finally {
			await input.dispose();
		}
	}

	select(selector, value) {
		return this.page.select(selector, value);
	}
}

// A fresh profile each time.
export async function launchFirefox(top, { profileDir }) {
	const pp = requireDriver(top, 'puppeteer-core');
	freshProfile(profileDir);
	const browser = await pp.launch({
		browser: 'firefox',
		executablePath: FIREFOX,
		protocol: 'webDriverBiDi',
		headless: true,
		userDataDir: profileDir,
		defaultViewport: { width: 1024, height: 760 },
		extraPrefsFirefox: QUIET,
		// Firefox's first start in a new profile takes a while on a
		// loaded host (20 s measured with two TCG VMs running).
		timeout: 180000,
	});
	return {
		name: 'firefox',
		async newPage() {
			return new FirefoxPage(await browser.newPage());
		},
		async close() {
			await browser.close().catch(() => {});
			removeProfile(profileDir);
		},
	};
}
