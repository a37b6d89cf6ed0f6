// SPDX-License-Identifier: GPL-2.0
//
// The browsers the page is tested in, and the page's DOM contract (web/,
// issue 15): what a person does with the page, as functions that work
// the same in either browser.
//
//   chromium: Debian's chromium, playwright-core (lib/chromium.mjs)
//   firefox:  Debian's firefox-esr, puppeteer-core over WebDriver BiDi
//             (lib/firefox.mjs)

import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from './chromium.mjs';
import { launchFirefox } from './firefox.mjs';

export const BROWSERS = ['chromium', 'firefox'];

// launch(TOP, { browser, profileDir }): { name, open(url, opts), close() }
export async function launch(top, { browser = 'chromium', profileDir }) {
	let b;

	if (browser === 'chromium')
		b = await launchChromium(top, { profileDir });
	else if (browser === 'firefox')
		b = await launchFirefox(top, { profileDir });
	else
		throw new Error(`unknown browser '${browser}' (${BROWSERS.join(', ')})`);
	return {
		name: b.name,
		// A new tab on URL; opts.init = [fn, arg] runs before the
		// page's own scripts on every load of the tab.
		open: (url, opts) => PageUser.open(b, url, opts),
		close: () => b.close(),
	};
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One tab on the page, with what it logged kept for diagnostics.
export class PageUser {
	constructor(page) {
		this.page = page;
		this.console = [];
		page.onConsole((line) => this.console.push(line));
	}

	static async open(browser, url, { init = null } = {}) {
		const u = new PageUser(await browser.newPage());
		if (init)
			await u.page.addInitScript(...init);
		await u.page.goto(url);
		return u;
	}

	url() {
		return this.page.url();
	}

	evaluate(fn, arg) {
		return this.page.evaluate(fn, arg);
	}

	sleep(ms) {
		return sleep(ms);
	}

	reload() {
		return this.page.reload();
	}

	close() {
		return this.page.close();
	}

	// The trimmed text of the element with id ID (null if none).
	text(id) {
		return this.page.evaluate((i) => {
			const e = document.getElementById(i);
			return e ? e.textContent.trim() : null;
		}, id);
	}

	// The page's visible state: #state, #reason and the counters.
	async read() {
		return this.page.evaluate(() => {
			const t = (id) => {
				const e = document.getElementById(id);
				return e ? e.textContent.trim() : null;
			};
			return {
				state: t('state'), reason: t('reason'), bytes: t('bytes'),
				requests: t('requests'), throughput: t('throughput'),
				bodyState: document.body.dataset.state ?? null,
			};
		});
	}

	// The writable switch and the button for a file with write access.
	async writableUi() {
		return this.page.evaluate(() => {
			const w = document.getElementById('writable');
			const p = document.getElementById('pick');
			return {
				disabled: w.disabled, checked: w.checked, pickHidden: p.hidden,
				info: document.getElementById('writable-info').textContent
					.replace(/\s+/g, ' ').trim(),
				api: typeof window.showOpenFilePicker,
			};
		});
	}

	// Pick a file in #file, as the file dialog would.
	async pick(file) {
		await this.page.setFile('#file', file);
	}

	// Choose SLOT in #slot once the page has it from GET /slots.
	async selectSlot(slot, timeout = 30000) {
		await this.waitFor((s) => !!document.querySelector(`#slot option[value="${s}"]`),
			slot, timeout, `slot ${slot} in #slot`);
		await this.page.select('#slot', slot);
	}

	click(selector) {
		return this.page.click(selector);
	}

	async serve() {
		await this.page.click('#serve');
	}

	async stop() {
		await this.page.click('#stop');
	}

	// Wait until FN(ARG) is true in the page; WHAT says what for.
	async waitFor(fn, arg, timeout, what) {
		try {
			await this.page.waitFor(fn, arg, timeout);
		} catch (e) {
			const s = await this.read().catch(() => ({}));
			throw new Error(`waited ${timeout / 1000} s for ${what}: ${e.message}; ` +
				`#state is '${s.state}' (reason '${s.reason}')\n` +
				this.console.slice(-15).join('\n'));
		}
	}

	// Wait until #state is one of STATES (a string or an array).
	async waitState(states, timeout = 60000) {
		const want = [].concat(states);
		await this.waitFor((w) => {
			const e = document.getElementById('state');
			return !!e && w.includes(e.textContent.trim());
		}, want, timeout, `#state ${want.join('|')}`);
		return (await this.read()).state;
	}

	async screenshot(file) {
		fs.mkdirSync(path.dirname(file), { recursive: true });
		await this.page.screenshot(file);
		return file;
	}
}
