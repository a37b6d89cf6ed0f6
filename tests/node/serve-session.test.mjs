// SPDX-License-Identifier: GPL-2.0
/*
 * web/serve-session.js with a stand-in WebSocket and clock: the states
 * the page shows, which closes end a session and which are retried, the
 * backoff and the hold, and the counters across reconnections.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { ServeSession, BACKOFF_MS, describeClose, clean }
	from '../../web/serve-session.js';
import { NBD, concat, u32, option, goData, request, pattern, memSource }
	from './nbd-client.mjs';

/* A WebSocket the test drives from the relay's side. */
class FakeWS {
	static all = [];

	constructor(url, protocols) {
		this.url = url;
		this.protocols = protocols;
		this.readyState = 0;
		this.sent = [];
		this.closedWith = null;
		FakeWS.all.push(this);
	}

	send(b) {
		assert.equal(this.readyState, 1);
		this.sent.push(b.slice());
	}

	close(code, reason) {
		this.closedWith = { code, reason };
		this.readyState = 3;
	}

	/* Relay side. */
	open() {
		this.readyState = 1;
		this.onopen?.({});
	}

	deliver(bytes) {
		const ab = bytes.buffer.slice(bytes.byteOffset,
					      bytes.byteOffset + bytes.length);

		this.onmessage({ data: ab });
	}

	drop(code = 1006, reason = '') {
		this.readyState = 3;
		this.onerror?.({});
		this.onclose({ code, reason });
	}

	/* The relay's NBD handshake: flags and GO, as lib/ does it. */
	handshake() {
		this.open();
		assert.equal(concat(...this.sent).length, 18);
		this.sent = [];
		this.deliver(concat(u32(NBD.FLAG_C_FIXED_NEWSTYLE |
					NBD.FLAG_C_NO_ZEROES),
				    option(NBD.OPT_GO, goData('', [3]))));
	}

	output() {
		const b = concat(...this.sent);

		this.sent = [];
		return b;
	}
}

class Clock {
	constructor() {
		this.t = 1000000;
		this.timers = [];
	}

	now = () => this.t;

	setTimeout = (f, ms) => {
		const t = { at: this.t + ms, f, ms };

		this.timers.push(t);
		return t;
	};

	clearTimeout = (t) => {
		this.timers = this.timers.filter((x) => x !== t);
	};

	/* Run the next timer; returns its delay. */
	next() {
		assert.equal(this.timers.length, 1, 'one timer pending');
		const t = this.timers.shift();

		this.t = t.at;
		t.f();
		return t.ms;
	}
}

function session(extra = {}) {
	FakeWS.all = [];
	const clock = new Clock();
	const states = [];
	const img = pattern(65536, 21);
	const s = new ServeSession({
		url: 'ws://relay/disk0',
		protocols: ['tok123'],
		source: memSource(img),
		name: 'disk.img',
		hold: 60,
		WebSocket: FakeWS,
		now: clock.now,
		setTimeout: clock.setTimeout,
		clearTimeout: clock.clearTimeout,
		onState: (st, why) => states.push([st, why]),
		...extra,
	});

	return { s, clock, states, img };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

test('connecting, serving once the handshake is done, Stop closes 1000', async () => {
	const { s, states } = session();

	s.start();
	assert.equal(s.state, 'connecting');
	const ws = FakeWS.all[0];

	assert.equal(ws.url, 'ws://relay/disk0');
	assert.deepEqual(ws.protocols, ['tok123']);
	assert.equal(ws.binaryType, 'arraybuffer');
	ws.open();
	assert.equal(s.state, 'connecting', 'open is not yet serving');
	ws.sent = [];
	ws.deliver(concat(u32(3), option(NBD.OPT_GO, goData('', [3]))));
	assert.equal(s.state, 'serving');
	assert.ok(ws.output().length > 0);
	s.stop();
	assert.deepEqual(ws.closedWith, { code: 1000, reason: 'stopped' });
	assert.equal(s.state, 'stopped');
	assert.deepEqual(states.map((x) => x[0]),
			 ['connecting', 'serving', 'stopped']);
	/* A late close event of the socket we closed changes nothing. */
	ws.onclose({ code: 1000, reason: '' });
	assert.equal(states.length, 3);
});

test('a drop while serving: reconnect with backoff, counters add up', async () => {
	const { s, clock, img } = session();

	s.start();
	const ws1 = FakeWS.all[0];

	ws1.handshake();
	ws1.output();
	ws1.deliver(request(NBD.CMD_READ, 1, 0, 4096));
	await tick();
	assert.equal(ws1.output().length, 16 + 4096);
	assert.deepEqual(s.stats, { bytes: 4096, requests: 1, errors: 0 });

	ws1.drop(1006);
	assert.equal(s.state, 'reconnecting');
	assert.match(s.reason, /1006 connection lost/);
	/* Two failed attempts, then one that works. */
	assert.equal(clock.next(), 500);
	FakeWS.all[1].drop(1006);
	assert.equal(s.state, 'reconnecting');
	assert.equal(clock.next(), 1000);
	const ws3 = FakeWS.all[2];

	ws3.handshake();
	assert.equal(s.state, 'serving');
	ws3.output();
	ws3.deliver(request(NBD.CMD_READ, 2, 8192, 100));
	await tick();
	assert.deepEqual(ws3.output().subarray(16), img.slice(8192, 8292));
	assert.deepEqual(s.stats, { bytes: 4196, requests: 2, errors: 0 });

	/* A new outage starts the backoff over. */
	ws3.drop(1006);
	assert.equal(clock.next(), 500);
});

test('retries stop when the hold has passed since the drop', async () => {
	const { s, clock } = session({ hold: 20 });

	s.start();
	FakeWS.all[0].handshake();
	FakeWS.all[0].drop(1006);
	const delays = [];

	while (s.state === 'reconnecting') {
		delays.push(clock.next());
		FakeWS.all.at(-1).drop(1006);
	}
	/* 0.5+1+2+4+8 = 15.5 s, then the 4.5 s left of the 20 s hold. */
	assert.deepEqual(delays, [...BACKOFF_MS, 4500]);
	assert.equal(s.state, 'stopped');
	assert.match(s.reason, /did not come back within the relay's hold of 20 s/);
	assert.equal(clock.timers.length, 0);
});

test('the first connection refused: stopped, no retry', () => {
	const { s, clock } = session();

	s.start();
	FakeWS.all[0].drop(1006);
	assert.equal(s.state, 'stopped');
	assert.match(s.reason, /could not connect \(1006 connection lost\)/);
	assert.equal(clock.timers.length, 0);
	assert.equal(FakeWS.all.length, 1);
});

test('the relay\'s own close codes end it, whatever the state', () => {
	for (const [code, reason] of [[1008, 'export changed'],
				      [1011, 'start hook failed'],
				      [1001, 'relay shutting down'],
				      [1000, '']]) {
		const { s, clock } = session();

		s.start();
		FakeWS.all[0].handshake();
		FakeWS.all[0].drop(1006);
		clock.next();
		FakeWS.all[1].open();
		FakeWS.all[1].drop(code, reason);
		assert.equal(s.state, 'stopped', `code ${code}`);
		assert.match(s.reason, new RegExp(`closed by the relay \\(${code}`));
		if (reason)
			assert.ok(s.reason.includes(reason));
		assert.equal(clock.timers.length, 0);
	}
});

test('DISC from the relay: close 1000 and stopped', async () => {
	const { s } = session();

	s.start();
	const ws = FakeWS.all[0];

	ws.handshake();
	ws.deliver(request(NBD.CMD_DISC, 1, 0, 0));
	assert.deepEqual(ws.closedWith, { code: 1000, reason: 'disconnected' });
	assert.equal(s.state, 'stopped');
	assert.match(s.reason, /remote machine disconnected/);
});

test('NBD protocol errors close with the server\'s code, no retry', () => {
	let { s, clock } = session();

	s.start();
	let ws = FakeWS.all[0];

	ws.handshake();
	ws.deliver(request(NBD.CMD_READ, 1, 0, 512, { magic: 1 }));
	assert.equal(ws.closedWith.code, 1002);
	assert.equal(s.state, 'stopped');
	assert.match(s.reason, /NBD error: bad request magic/);
	assert.equal(clock.timers.length, 0);

	({ s } = session());
	s.start();
	ws = FakeWS.all[0];
	ws.handshake();
	ws.onmessage({ data: 'hello' });
	assert.equal(ws.closedWith.code, 1003);
	assert.equal(s.state, 'stopped');
});

test('Stop between attempts: stopped, nothing more is opened', () => {
	const { s, clock } = session();

	s.start();
	FakeWS.all[0].handshake();
	FakeWS.all[0].drop(1006);
	assert.equal(s.state, 'reconnecting');
	s.stop();
	assert.equal(s.state, 'stopped');
	assert.match(s.reason, /hold runs out/);
	assert.equal(clock.timers.length, 0);
	assert.equal(FakeWS.all.length, 1);
});

test('a WebSocket that cannot be made (bad subprotocol) stops at once', () => {
	class Throws {
		constructor() {
			throw new SyntaxError('invalid subprotocol');
		}
	}
	const { s } = session({ WebSocket: Throws });

	s.start();
	assert.equal(s.state, 'stopped');
	assert.match(s.reason, /invalid subprotocol/);
});

test('close reasons from the peer are cleaned before they are shown', () => {
	assert.equal(describeClose(1008, 'bad\u0000\u001b[31m'),
		     '1008 policy violation: bad??[31m');
	assert.equal(clean('x'.repeat(300)).length, 201);
	assert.equal(describeClose(4321, ''), '4321 closed');
});
