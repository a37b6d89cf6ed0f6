// SPDX-License-Identifier: GPL-2.0
/*
 * One "Serve" of the page: the WebSocket to the relay, an NbdServer per
 * connection, and reconnecting within the relay's hold. No DOM: node's
 * tests give it a stand-in WebSocket and clock.
 *
 * States: connecting -> serving -> (reconnecting -> serving)* -> stopped.
 *   - A connection counts as up once the relay finished its NBD handshake
 *     with us (onReady): the device exists.
 *   - Our Stop closes with 1000 "stopped": the relay disconnects the device.
 *   - The relay closing with a code of its own (1000, 1001 shutting down,
 *     1008 export changed, 1011 start hook failed, ...) or an NBD protocol
 *     error ends it: retrying would not help.
 *   - Any other end (1006: the network, a reloaded relay, a refused
 *     upgrade) after the device existed is a drop: the relay holds the
 *     device for `hold` seconds, so we retry with backoff until then.
 *   - The first connection failing before the device existed is not
 *     retried: that is a refusal (wrong token, busy slot) or no relay.
 */
import { NbdServer } from './nbd-server.js';

export const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

/* Close codes after which a retry can work (RFC 6455 section 7.4.1). */
const RETRY_CODES = new Set([1005, 1006, 1012, 1013, 1014]);

const CODE_TEXT = {
	1000: 'closed normally',
	1001: 'going away',
	1002: 'protocol error',
	1003: 'unsupported data',
	1005: 'no close code',
	1006: 'connection lost',
	1007: 'invalid data',
	1008: 'policy violation',
	1009: 'message too big',
	1011: 'server error',
	1012: 'service restart',
	1013: 'try again later',
};

/* Peer text is shown in the page: printable, short. */
export function clean(s, max = 200) {
	const t = String(s ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

	return t.length > max ? t.slice(0, max) + '…' : t;
}

export function describeClose(code, reason) {
	const what = CODE_TEXT[code] ?? 'closed';
	const r = clean(reason);

	return `${code} ${what}${r ? `: ${r}` : ''}`;
}

export class ServeSession {
	/*
	 * o.url, o.protocols     the WebSocket to open
	 * o.source               for NbdServer (see nbd-server.js)
	 * o.name, o.description  the export's name and description
	 * o.hold                 seconds the relay holds a dropped device
	 * o.onState(state, reason)
	 * o.WebSocket, o.now, o.setTimeout, o.clearTimeout: stand-ins
	 */
	constructor(o) {
		this.o = o;
		this.WS = o.WebSocket ?? globalThis.WebSocket;
		this.now = o.now ?? (() => Date.now());
		this.setTimer = o.setTimeout ?? ((f, ms) => setTimeout(f, ms));
		this.clearTimer = o.clearTimeout ?? ((t) => clearTimeout(t));
		this.holdMs = (o.hold ?? 60) * 1000;
		this.state = 'idle';
		this.reason = '';
		this.ws = null;
		this.srv = null;
		this.timer = null;
		this.served = false;	/* the device existed at some point */
		this.droppedAt = null;	/* when the current outage began */
		this.attempt = 0;
		this.connections = 0;
		this.done = { bytes: 0, requests: 0, errors: 0 };
	}

	/* Totals over every connection of this session. */
	get stats() {
		const s = this.srv?.stats;

		return {
			bytes: this.done.bytes + (s ? s.bytesRead + s.bytesWritten : 0),
			requests: this.done.requests + (s ? s.requests : 0),
			errors: this.done.errors + (s ? s.errors : 0),
		};
	}

	set(state, reason = '') {
		this.state = state;
		this.reason = reason;
		this.o.onState?.(state, reason);
	}

	start() {
		if (this.state !== 'idle')
			throw new Error('a session starts once');
		this.set('connecting');
		this.connect();
	}

	connect() {
		this.timer = null;
		let ws;

		try {
			ws = new this.WS(this.o.url, this.o.protocols ?? []);
		} catch (e) {
			this.end(`cannot connect: ${clean(e.message)}`);
			return;
		}
		this.connections++;
		this.ws = ws;
		ws.binaryType = 'arraybuffer';
		const srv = new NbdServer(this.o.source, {
			name: this.o.name,
			description: this.o.description,
			send: (b) => {
				if (ws.readyState === 1)
					ws.send(b);
			},
			onReady: () => this.ready(ws),
			onClose: (why) => this.nbdClosed(ws, why),
			onError: (e) => this.o.onSourceError?.(e),
		});

		this.srv = srv;
		ws.onopen = () => srv.start();
		ws.onmessage = (e) => {
			if (typeof e.data === 'string') {
				this.fail(ws, 1003, 'text message in an NBD stream');
				return;
			}
			srv.receive(new Uint8Array(e.data));
		};
		ws.onclose = (e) => this.closed(ws, e.code, e.reason);
		/* An error is always followed by close, which says more. */
		ws.onerror = () => {};
	}

	ready(ws) {
		if (ws !== this.ws)
			return;
		this.served = true;
		this.droppedAt = null;
		this.attempt = 0;
		this.set('serving');
	}

	/* The NBD session ended by itself: DISC, ABORT or a protocol error. */
	nbdClosed(ws, why) {
		if (ws !== this.ws || why.reason === 'closed')
			return;
		if (why.reason === 'disc') {
			this.finish(ws, 1000, 'disconnected',
				    'the remote machine disconnected the device');
			return;
		}
		if (why.reason === 'abort') {
			/* The relay gave up the handshake; its close says why. */
			return;
		}
		this.fail(ws, why.code, why.message);
	}

	/* Close @ws for a reason of ours and stop. */
	fail(ws, code, message) {
		this.finish(ws, code, message.slice(0, 120),
			    `NBD error: ${clean(message)}`);
	}

	finish(ws, code, wsReason, reason) {
		this.fold();
		this.ws = null;
		try {
			ws.close(code, wsReason);
		} catch {
			ws.close();
		}
		this.end(reason);
	}

	/* Keep the finished connection's counters in the totals. */
	fold() {
		const s = this.srv?.stats;

		if (s) {
			this.done.bytes += s.bytesRead + s.bytesWritten;
			this.done.requests += s.requests;
			this.done.errors += s.errors;
		}
		this.srv?.close();
		this.srv = null;
	}

	closed(ws, code, reason) {
		if (ws !== this.ws)
			return;
		this.fold();
		this.ws = null;
		const text = describeClose(code, reason);

		if (!RETRY_CODES.has(code)) {
			this.end(`closed by the relay (${text})`);
			return;
		}
		if (!this.served) {
			this.end(`could not connect (${text}): the relay refused the connection or cannot be reached; check the token and that the slot is free`);
			return;
		}
		if (this.droppedAt === null)
			this.droppedAt = this.now();
		this.retry(text);
	}

	retry(text) {
		const left = this.droppedAt + this.holdMs - this.now();

		if (left <= 0) {
			this.end(`the connection was lost (${text}) and did not come back within the relay's hold of ${this.holdMs / 1000} s`);
			return;
		}
		const ms = Math.min(BACKOFF_MS[Math.min(this.attempt,
							BACKOFF_MS.length - 1)], left);

		this.attempt++;
		this.set('reconnecting',
			 `connection lost (${text}); attempt ${this.attempt} in ${(ms / 1000).toFixed(1)} s`);
		this.timer = this.setTimer(() => this.connect(), ms);
	}

	end(reason) {
		if (this.timer !== null) {
			this.clearTimer(this.timer);
			this.timer = null;
		}
		this.set('stopped', reason);
	}

	/* The Stop button. */
	stop() {
		if (this.state === 'stopped' || this.state === 'idle')
			return;
		const ws = this.ws;

		if (ws) {
			this.finish(ws, 1000, 'stopped', 'stopped');
			return;
		}
		/* Between attempts: nothing to close; the relay's hold runs out. */
		this.end(this.served ?
			 'stopped while reconnecting: the relay keeps the device until its hold runs out' :
			 'stopped');
	}
}
