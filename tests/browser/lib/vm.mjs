// SPDX-License-Identifier: GPL-2.0
//
// The host's half of the host <-> guest coordination (the guest's is
// tests/browser/vm-agent.sh): boots a test VM with scripts/vm.sh, the
// host's 127.0.0.1:PORT forwarded into it, and runs bash commands in the
// guest by dropping files into a folder of the tree, which the guest sees
// at the same path.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A deadline that does not keep node running once nothing else does.
const deadline = (ms) => new Promise((r) => setTimeout(() => r('timeout'), ms).unref());

// A port free on the host's loopback right now (qemu binds it next).
export function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// VMs still running when this process is told to stop (make's Ctrl-C,
// check.sh's timeout): their process groups go with it.
const running = new Set();
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
	process.on(sig, () => {
		for (const pid of running) {
			try {
				process.kill(-pid, 'SIGTERM');
			} catch {
				// gone already
			}
		}
		process.exit(sig === 'SIGINT' ? 130 : 143);
	});
}

export class TestVM {
	// top: the tree; kernel: NAME or KVER (kernels.list); port: forwarded;
	// dir: where the VM's files go (console log, commands, results).
	constructor({ top, kernel, port, dir, timeout = 1800, log = () => {} }) {
		this.top = top;
		this.kernel = kernel;
		this.port = port;
		this.dir = dir;
		this.sync = path.join(dir, 'sync');
		this.timeout = timeout;
		this.log = log;
		this.n = 0;
		this.proc = null;
		this.exited = null;
	}

	// Boot; resolves once the agent takes commands.
	async start(bootTimeout = 600) {
		fs.rmSync(this.sync, { recursive: true, force: true });
		fs.mkdirSync(this.sync, { recursive: true });
		const kver = this.kver();
		const ko = path.join(this.top, 'build/kernels', kver, 'src/nbdws.ko');
		const job = path.join(this.dir, 'agent-job.sh');
		fs.writeFileSync(job, [
			`export NBDWS_TOP='${this.top}' NBDWS_KVER='${kver}'`,
			`export NBDWS_KO='${ko}' AGENT_DIR='${this.sync}'`,
			`exec bash '${this.top}/tests/browser/vm-agent.sh'`, ''].join('\n'));
		const args = ['--kernel', kver, '--forward', String(this.port),
			'--job', job, '--timeout', String(this.timeout),
			'--out', path.join(this.dir, 'vm')];
		const out = fs.openSync(path.join(this.dir, 'vm.sh.log'), 'w');
		// Its own process group: stop() can end qemu with it.
		this.proc = spawn(path.join(this.top, 'scripts/vm.sh'), args, {
			cwd: this.top, detached: true, stdio: ['ignore', out, out],
		});
		fs.closeSync(out);
		const pid = this.proc.pid;
		running.add(pid);
		this.exited = new Promise((resolve) => {
			this.proc.on('exit', (code, sig) => {
				running.delete(pid);
				resolve(code ?? sig);
			});
		});
		const ready = path.join(this.sync, 'ready');
		const end = Date.now() + bootTimeout * 1000;
		let status = null;
		this.exited.then((s) => { status = s; });
		while (!fs.existsSync(ready)) {
			if (status !== null)
				throw new Error(`the VM ended before it was ready (${status}):\n` +
					this.tail());
			if (Date.now() > end) {
				await this.kill();
				throw new Error(`the VM was not ready within ${bootTimeout} s:\n` +
					this.tail());
			}
			await sleep(200);
		}
		const r = fs.readFileSync(ready, 'utf8').trim();
		if (!r.startsWith('ok')) {
			await this.stop();
			throw new Error(`the guest is not ready: ${r}\n${this.tail()}`);
		}
		return r.slice(3);
	}

	kver() {
		const list = fs.readFileSync(path.join(this.top, 'build/kernels.list'), 'utf8');
		for (const line of list.split('\n')) {
			const [name, kver] = line.trim().split(/\s+/);
			if (kver && (!this.kernel || name === this.kernel || kver === this.kernel))
				return kver;
		}
		throw new Error(`unknown kernel '${this.kernel}' (build/kernels.list)`);
	}

	consoleLog() {
		return path.join(this.dir, 'vm', 'console.log');
	}

	tail(lines = 30) {
		const out = [];
		for (const f of [path.join(this.dir, 'vm.sh.log'), this.consoleLog()]) {
			try {
				const t = fs.readFileSync(f, 'utf8').trimEnd().split('\n');
				out.push(`--- ${f}`, ...t.slice(-lines));
			} catch {
				// not there (yet)
			}
		}
		return out.join('\n');
	}

	put(file, text) {
		fs.writeFileSync(file + '.tmp', text);
		fs.renameSync(file + '.tmp', file);
	}

	// Run bash in the guest: { rc, out }. rc is null on a timeout (the
	// command may still be running in the guest then).
	async run(cmd, { timeout = 300 } = {}) {
		if (!this.proc || this.proc.exitCode !== null)
			throw new Error('the VM is not running');
		const n = ++this.n;
		this.put(path.join(this.sync, `cmd.${n}`), cmd + '\n');
		const rcf = path.join(this.sync, `rc.${n}`);
		const end = Date.now() + timeout * 1000;
		while (!fs.existsSync(rcf)) {
			if (this.proc.exitCode !== null || this.proc.signalCode !== null)
				throw new Error(`the VM ended during: ${cmd}\n${this.tail()}`);
			if (Date.now() > end)
				return { rc: null, out: this.output(n) +
					`\n(no answer within ${timeout} s)` };
			await sleep(100);
		}
		return { rc: Number(fs.readFileSync(rcf, 'utf8')), out: this.output(n) };
	}

	output(n) {
		try {
			return fs.readFileSync(path.join(this.sync, `out.${n}`), 'utf8');
		} catch {
			return '';
		}
	}

	// run(), but a failure throws with the command's output.
	async sh(cmd, opts) {
		const { rc, out } = await this.run(cmd, opts);
		if (rc !== 0)
			throw new Error(`in the VM, exit status ${rc}: ${cmd}\n${out}`);
		return out;
	}

	// Ask the agent to end (the VM powers off); kill it if it will not.
	async stop(timeout = 120) {
		if (!this.proc)
			return null;
		if (this.proc.exitCode === null && this.proc.signalCode === null) {
			this.put(path.join(this.sync, `cmd.${++this.n}`), 'quit\n');
			if (await Promise.race([this.exited, deadline(timeout * 1000)]) === 'timeout')
				await this.kill();
		}
		return this.exited;
	}

	async kill() {
		try {
			process.kill(-this.proc.pid, 'SIGTERM');
		} catch {
			// gone already
		}
		if (await Promise.race([this.exited, deadline(10000)]) === 'timeout') {
			try {
				process.kill(-this.proc.pid, 'SIGKILL');
			} catch {
				// gone already
			}
		}
		return this.exited;
	}
}
