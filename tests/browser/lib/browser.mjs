// SPDX-License-Identifier: GPL-2.0
//
// Debian's Chromium, headless, driven by playwright-core (installed by
// scripts/install-deps.sh into build/npm; it never downloads a browser),
// and the page's DOM contract (web/, Documentation of issue 15): what a
// person does with the page, as functions.

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

// A fresh profile each time; no network but what the page asks for.
export async function launch(top, { profileDir }) {
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
		context,
		async close() {
			await context.close().catch(() => {});
			fs.rmSync(profileDir, { recursive: true, force: true });
		},
	};
}

// One tab on the page, with what it logged kept for diagnostics.
export class PageUser {
	constructor(page) {
		this.page = page;
		this.console = [];
		page.on('console', (m) => this.console.push(`${m.type()}: ${m.text()}`));
		page.on('pageerror', (e) => this.console.push(`pageerror: ${e.message}`));
	}

	static async open(context, url) {
		const u = new PageUser(await context.newPage());
		await u.page.goto(url, { waitUntil: 'load' });
		return u;
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

	// Pick a file in #file, as the file dialog would.
	async pick(file) {
		await this.page.setInputFiles('#file', file);
	}

	// Choose SLOT in #slot once the page has it from GET /slots.
	async selectSlot(slot, timeout = 30000) {
		await this.page.waitForSelector(`#slot option[value="${slot}"]`,
			{ state: 'attached', timeout });
		await this.page.selectOption('#slot', slot);
	}

	async serve() {
		await this.page.click('#serve');
	}

	async stop() {
		await this.page.click('#stop');
	}

	// Wait until #state is one of STATES (a string or an array).
	async waitState(states, timeout = 60000) {
		const want = [].concat(states);
		try {
			await this.page.waitForFunction((w) => {
				const e = document.getElementById('state');
				return e && w.includes(e.textContent.trim());
			}, want, { timeout, polling: 100 });
		} catch (e) {
			const s = await this.read().catch(() => ({}));
			throw new Error(`#state is '${s.state}' (reason '${s.reason}'), ` +
				`waited ${timeout / 1000} s for ${want.join('|')}\n` +
				this.console.slice(-15).join('\n'));
		}
		return (await this.read()).state;
	}

	async screenshot(file) {
		fs.mkdirSync(path.dirname(file), { recursive: true });
		await this.page.screenshot({ path: file, fullPage: true });
		return file;
	}
}
