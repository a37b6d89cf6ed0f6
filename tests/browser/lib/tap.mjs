// SPDX-License-Identifier: GPL-2.0
//
// TAP for the browser tests: numbered results, diagnostics as comments,
// skips that say why. A check is an async function that throws (or
// returns false) to fail, or throws Skip to be skipped with its reason:
// never a pass for what did not run.

export class Skip extends Error {}

export class Tap {
	constructor() {
		this.n = 0;
		this.failed = 0;
	}

	plan(count) {
		console.log('TAP version 13');
		console.log(`1..${count}`);
	}

	note(text) {
		console.log(String(text).trimEnd().replace(/^/gm, '# '));
	}

	result(ok, desc, diag = '') {
		this.n++;
		console.log(`${ok ? 'ok' : 'not ok'} ${this.n} ${desc}`);
		if (!ok) {
			this.failed++;
			for (const line of String(diag).trimEnd().split('\n').slice(-40))
				console.log(`# ${line}`);
		}
		return ok;
	}

	skip(desc, reason) {
		this.n++;
		console.log(`ok ${this.n} ${desc} # SKIP ${reason}`);
		return false;
	}

	// check(DESC, async fn): true if it passed.
	async check(desc, fn) {
		try {
			const r = await fn();
			return this.result(r !== false, desc);
		} catch (e) {
			if (e instanceof Skip)
				return this.skip(desc, e.message);
			return this.result(false, desc, e.stack && !e.message.includes('\n') ?
				e.stack : e.message);
		}
	}

	// Results up to number END that an early stop left unprinted fail.
	fill(end, why = 'not run: an earlier step failed') {
		while (this.n < end)
			this.result(false, why);
	}
}
