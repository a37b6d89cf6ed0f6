// SPDX-License-Identifier: GPL-2.0
/*
 * An NBD server (fixed newstyle negotiation, simple replies) for one
 * export, with no DOM and no I/O of its own: the page runs it over a
 * WebSocket, node's tests run it over TCP or a script.
 *
 *   const srv = new NbdServer(source, { send, name, onReady, onClose });
 *   srv.start();                 // sends the greeting
 *   ws.onmessage = (e) => srv.receive(new Uint8Array(e.data));
 *
 * source: { size, read(offset, length) -> Promise<Uint8Array> } and, for
 * a writable export, write(offset, bytes) plus optional flush(),
 * trim(offset, length), writeZeroes(offset, length).
 *
 * The input is a byte stream: message boundaries carry no meaning, so a
 * request may arrive split over messages or several in one. Requests are
 * started as soon as they are parsed and answered in the order they
 * complete, each reply carrying its request's handle. A malformed stream
 * (bad magic, a READ or WRITE longer than the maximum block size, unknown
 * client flags) is not answered: the server stops and onClose tells the
 * caller which WebSocket close code to use.
 */

export const NBD = Object.freeze({
	INIT_PASSWD: 0x4e42444d41474943n,	/* "NBDMAGIC" */
	IHAVEOPT: 0x49484156454f5054n,		/* "IHAVEOPT" */
	OPT_REPLY_MAGIC: 0x0003e889045565a9n,
	REQUEST_MAGIC: 0x25609513,
	SIMPLE_REPLY_MAGIC: 0x67446698,

	FLAG_FIXED_NEWSTYLE: 0x1,
	FLAG_NO_ZEROES: 0x2,
	FLAG_C_FIXED_NEWSTYLE: 0x1,
	FLAG_C_NO_ZEROES: 0x2,

	OPT_EXPORT_NAME: 1,
	OPT_ABORT: 2,
	OPT_LIST: 3,
	OPT_STARTTLS: 5,
	OPT_INFO: 6,
	OPT_GO: 7,
	OPT_STRUCTURED_REPLY: 8,

	REP_ACK: 1,
	REP_SERVER: 2,
	REP_INFO: 3,
	REP_ERR_UNSUP: 0x80000001,
	REP_ERR_POLICY: 0x80000002,
	REP_ERR_INVALID: 0x80000003,
	REP_ERR_UNKNOWN: 0x80000006,
	REP_ERR_TOO_BIG: 0x80000009,

	INFO_EXPORT: 0,
	INFO_NAME: 1,
	INFO_DESCRIPTION: 2,
	INFO_BLOCK_SIZE: 3,

	FLAG_HAS_FLAGS: 0x1,
	FLAG_READ_ONLY: 0x2,
	FLAG_SEND_FLUSH: 0x4,
	FLAG_SEND_FUA: 0x8,
	FLAG_SEND_TRIM: 0x20,
	FLAG_SEND_WRITE_ZEROES: 0x40,

	CMD_READ: 0,
	CMD_WRITE: 1,
	CMD_DISC: 2,
	CMD_FLUSH: 3,
	CMD_TRIM: 4,
	CMD_CACHE: 5,
	CMD_WRITE_ZEROES: 6,
	CMD_FLAG_FUA: 0x1,
	CMD_FLAG_NO_HOLE: 0x2,

	EPERM: 1,
	EIO: 5,
	EINVAL: 22,
	ENOSPC: 28,

	REQUEST_SIZE: 28,
	REPLY_SIZE: 16,
});

/* Block sizes announced: any byte range works, 4 KiB is best, 32 MiB most. */
export const BLOCK_MIN = 1;
export const BLOCK_PREF = 4096;
export const BLOCK_MAX = 32 * 1024 * 1024;
/* Option payloads above this are refused (NBD_REP_ERR_TOO_BIG) unread. */
export const OPT_MAX = 64 * 1024;
/* Names and descriptions are at most this many bytes (the NBD spec's limit). */
const STR_MAX = 4096;
/* Bytes of padding after the EXPORT_NAME reply unless NO_ZEROES. */
const EXPORT_NAME_ZEROES = 124;

/* WebSocket close codes onClose suggests. */
export const WS_NORMAL = 1000;
export const WS_PROTOCOL_ERROR = 1002;
export const WS_POLICY = 1008;

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

/* UTF-8 bytes of @s, cut to at most STR_MAX bytes on a character boundary. */
function strBytes(s) {
	let b = enc.encode(String(s ?? ''));

	if (b.length > STR_MAX) {
		let n = STR_MAX;

		while (n > 0 && (b[n] & 0xc0) === 0x80)
			n--;
		b = b.slice(0, n);
	}
	return b;
}

/*
 * Incoming bytes: a list of chunks read from the front. Chunks are kept
 * as given (no copy) until a read spans two of them.
 */
class ByteQueue {
	constructor() {
		this.chunks = [];
		this.head = 0;		/* bytes already consumed of chunks[0] */
		this.length = 0;
	}

	push(u8) {
		if (u8.length) {
			this.chunks.push(u8);
			this.length += u8.length;
		}
	}

	/* Remove and return @n bytes; the caller checked length >= n. */
	take(n) {
		const first = this.chunks[0];

		if (n === 0)
			return new Uint8Array(0);
		if (first.length - this.head >= n) {
			const out = first.subarray(this.head, this.head + n);

			this.head += n;
			this.length -= n;
			if (this.head === first.length) {
				this.chunks.shift();
				this.head = 0;
			}
			return out;
		}
		const out = new Uint8Array(n);
		let got = 0;

		while (got < n) {
			const c = this.chunks[0];
			const m = Math.min(c.length - this.head, n - got);

			out.set(c.subarray(this.head, this.head + m), got);
			got += m;
			this.head += m;
			if (this.head === c.length) {
				this.chunks.shift();
				this.head = 0;
			}
		}
		this.length -= n;
		return out;
	}

	/* Drop up to @n bytes; returns how many were dropped. */
	skip(n) {
		let left = Math.min(n, this.length);
		const dropped = left;

		while (left > 0) {
			const c = this.chunks[0];
			const m = Math.min(c.length - this.head, left);

			left -= m;
			this.head += m;
			if (this.head === c.length) {
				this.chunks.shift();
				this.head = 0;
			}
		}
		this.length -= dropped;
		return dropped;
	}
}

function view(u8) {
	return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

function toU8(data) {
	if (data instanceof Uint8Array)
		return data;
	if (data instanceof ArrayBuffer)
		return new Uint8Array(data);
	if (ArrayBuffer.isView(data))
		return new Uint8Array(data.buffer, data.byteOffset,
				      data.byteLength);
	throw new TypeError('expected bytes (Uint8Array or ArrayBuffer)');
}

export class NbdServer {
	/*
	 * opts.send(Uint8Array)  required: bytes for the peer
	 * opts.name              the export's name (NBD_OPT_LIST, INFO_NAME)
	 * opts.description       shown by NBD_OPT_LIST and INFO_DESCRIPTION
	 * opts.strictName        refuse names other than "" and opts.name
	 *                        (default: any name is this export, as a
	 *                        page serving one file wants)
	 * opts.maxInflight       requests started at once (default 64)
	 * opts.onReady(info)     transmission begins: { size, flags, name }
	 * opts.onClose(why)      the session ended: { reason, message, code }
	 *                        reason: 'disc' | 'abort' | 'protocol' |
	 *                        'refused' | 'closed'; code: the WebSocket
	 *                        close code to use
	 * opts.onError(err, req) a source call failed (answered EIO)
	 */
	constructor(source, opts = {}) {
		if (!source || typeof source.read !== 'function' ||
		    !Number.isSafeInteger(source.size) || source.size < 0)
			throw new TypeError('source needs a size and read()');
		if (typeof opts.send !== 'function')
			throw new TypeError('opts.send is required');
		this.source = source;
		this.size = source.size;
		this.opts = opts;
		this.sendFn = opts.send;
		this.nameBytes = strBytes(opts.name ?? '');
		this.name = dec.decode(this.nameBytes);
		this.descBytes = strBytes(opts.description ?? '');
		this.maxInflight = opts.maxInflight ?? 64;
		this.writable = typeof source.write === 'function';
		this.flags = this.computeFlags();

		this.q = new ByteQueue();
		this.state = 'new';	/* new flags options skip transmission closed */
		this.fixed = false;
		this.noZeroes = false;
		this.skipLeft = 0;
		this.optHdr = null;	/* a parsed option waiting for its data */
		this.pendingReq = null;	/* a parsed WRITE waiting for its payload */
		this.draining = false;	/* DISC seen: finish what is in flight */
		this.inflight = 0;
		this.stats = {
			requests: 0, reads: 0, writes: 0, flushes: 0, trims: 0,
			zeroes: 0, errors: 0, bytesRead: 0, bytesWritten: 0,
			inflightPeak: 0,
		};
	}

	computeFlags() {
		const s = this.source;
		let f = NBD.FLAG_HAS_FLAGS;

		if (!this.writable)
			return f | NBD.FLAG_READ_ONLY;
		if (typeof s.flush === 'function')
			f |= NBD.FLAG_SEND_FLUSH | NBD.FLAG_SEND_FUA;
		if (typeof s.trim === 'function')
			f |= NBD.FLAG_SEND_TRIM;
		if (typeof s.writeZeroes === 'function')
			f |= NBD.FLAG_SEND_WRITE_ZEROES;
		return f;
	}

	/* Bytes served: read by the peer plus written by it. */
	get bytes() {
		return this.stats.bytesRead + this.stats.bytesWritten;
	}

	start() {
		if (this.state !== 'new')
			return;
		const b = new Uint8Array(18);
		const v = view(b);

		v.setBigUint64(0, NBD.INIT_PASSWD);
		v.setBigUint64(8, NBD.IHAVEOPT);
		v.setUint16(16, NBD.FLAG_FIXED_NEWSTYLE | NBD.FLAG_NO_ZEROES);
		this.state = 'flags';
		this.send(b);
	}

	/* Stop without a word (the connection went away); replies are dropped. */
	close() {
		this.finish('closed', 'closed by the caller', WS_NORMAL);
	}

	receive(data) {
		if (this.state === 'closed')
			return;
		if (this.state === 'new')
			throw new Error('receive() before start()');
		this.q.push(toU8(data));
		this.process();
	}

	send(bytes) {
		if (this.state !== 'closed')
			this.sendFn(bytes);
	}

	finish(reason, message, code) {
		if (this.state === 'closed')
			return;
		this.state = 'closed';
		this.q = new ByteQueue();
		this.opts.onClose?.({ reason, message, code });
	}

	protocolError(message, code = WS_PROTOCOL_ERROR) {
		this.finish('protocol', message, code);
	}

	/* Consume whatever complete units the queue holds. */
	process() {
		for (;;) {
			const before = this.q.length;
			const st = this.state;

			switch (st) {
			case 'flags':
				this.doFlags();
				break;
			case 'options':
				this.doOption();
				break;
			case 'skip':
				this.skipLeft -= this.q.skip(this.skipLeft);
				if (!this.skipLeft)
					this.state = 'options';
				break;
			case 'transmission':
				if (this.draining ||
				    this.inflight >= this.maxInflight)
					return;
				this.doRequest();
				break;
			default:
				return;
			}
			if (this.state === st && this.q.length === before)
				return;
		}
	}

	doFlags() {
		if (this.q.length < 4)
			return;
		const f = view(this.q.take(4)).getUint32(0);

		if (f & ~(NBD.FLAG_C_FIXED_NEWSTYLE | NBD.FLAG_C_NO_ZEROES)) {
			this.protocolError(`unknown client flags 0x${f.toString(16)}`);
			return;
		}
		this.fixed = !!(f & NBD.FLAG_C_FIXED_NEWSTYLE);
		this.noZeroes = !!(f & NBD.FLAG_C_NO_ZEROES);
		this.state = 'options';
	}

	optReply(opt, type, payload = null) {
		const len = payload ? payload.length : 0;
		const b = new Uint8Array(20 + len);
		const v = view(b);

		v.setBigUint64(0, NBD.OPT_REPLY_MAGIC);
		v.setUint32(8, opt);
		v.setUint32(12, type >>> 0);
		v.setUint32(16, len);
		if (len)
			b.set(payload, 20);
		this.send(b);
	}

	/*
	 * An error reply with a message for the client's user. A client
	 * without fixed newstyle cannot take one: the spec says disconnect.
	 */
	optError(opt, type, message) {
		if (!this.fixed) {
			this.finish('refused', message, WS_POLICY);
			return;
		}
		this.optReply(opt, type, strBytes(message));
	}

	doOption() {
		if (!this.optHdr) {
			if (this.q.length < 16)
				return;
			const h = view(this.q.take(16));

			if (h.getBigUint64(0) !== NBD.IHAVEOPT) {
				this.protocolError('bad option magic');
				return;
			}
			this.optHdr = { opt: h.getUint32(8), len: h.getUint32(12) };
		}
		const { opt, len } = this.optHdr;

		if (len > OPT_MAX) {
			this.optHdr = null;
			if (opt === NBD.OPT_EXPORT_NAME) {
				/* No error reply exists for it: just leave. */
				this.protocolError(`export name of ${len} bytes`,
						   WS_POLICY);
				return;
			}
			this.optError(opt, NBD.REP_ERR_TOO_BIG,
				      `option payload of ${len} bytes is over the ${OPT_MAX} allowed`);
			if (this.state === 'options') {
				this.skipLeft = len;
				this.state = 'skip';
			}
			return;
		}
		if (this.q.length < len)
			return;
		this.optHdr = null;
		this.handleOption(opt, this.q.take(len));
	}

	/* Is @nameBytes (UTF-8) this export? */
	knowsName(nameBytes) {
		if (!this.opts.strictName || nameBytes.length === 0)
			return true;
		const n = this.nameBytes;

		return nameBytes.length === n.length &&
			nameBytes.every((c, i) => c === n[i]);
	}

	handleOption(opt, data) {
		switch (opt) {
		case NBD.OPT_EXPORT_NAME:
			this.optExportName(data);
			break;
		case NBD.OPT_ABORT:
			this.optReply(opt, NBD.REP_ACK);
			this.finish('abort', 'the client ended the negotiation',
				    WS_NORMAL);
			break;
		case NBD.OPT_LIST:
			this.optList(data);
			break;
		case NBD.OPT_INFO:
		case NBD.OPT_GO:
			this.optInfoGo(opt, data);
			break;
		default:
			this.optError(opt, NBD.REP_ERR_UNSUP,
				      `option ${opt} is not supported`);
			break;
		}
	}

	optExportName(data) {
		if (data.length > STR_MAX || !this.knowsName(data)) {
			this.finish('refused', 'the client asked for an unknown export',
				    WS_POLICY);
			return;
		}
		const b = new Uint8Array(10 + (this.noZeroes ? 0 : EXPORT_NAME_ZEROES));
		const v = view(b);

		v.setBigUint64(0, BigInt(this.size));
		v.setUint16(8, this.flags);
		this.send(b);
		this.enterTransmission();
	}

	optList(data) {
		if (data.length) {
			this.optError(NBD.OPT_LIST, NBD.REP_ERR_INVALID,
				      'NBD_OPT_LIST takes no data');
			return;
		}
		const n = this.nameBytes, d = this.descBytes;
		const p = new Uint8Array(4 + n.length + d.length);

		view(p).setUint32(0, n.length);
		p.set(n, 4);
		p.set(d, 4 + n.length);
		this.optReply(NBD.OPT_LIST, NBD.REP_SERVER, p);
		this.optReply(NBD.OPT_LIST, NBD.REP_ACK);
	}

	optInfoGo(opt, data) {
		const v = view(data);

		if (data.length < 6) {
			this.optError(opt, NBD.REP_ERR_INVALID, 'option data too short');
			return;
		}
		const nlen = v.getUint32(0);

		if (nlen > data.length - 6 || nlen > STR_MAX ||
		    data.length !== 6 + nlen + 2 * v.getUint16(4 + nlen)) {
			this.optError(opt, NBD.REP_ERR_INVALID,
				      'option data length does not match its contents');
			return;
		}
		if (!this.knowsName(data.subarray(4, 4 + nlen))) {
			this.optError(opt, NBD.REP_ERR_UNKNOWN,
				      'no export of that name');
			return;
		}
		const nreq = v.getUint16(4 + nlen);
		const asked = new Set();

		for (let i = 0; i < nreq; i++)
			asked.add(v.getUint16(6 + nlen + 2 * i));

		const exp = new Uint8Array(12);
		const ev = view(exp);

		ev.setUint16(0, NBD.INFO_EXPORT);
		ev.setBigUint64(2, BigInt(this.size));
		ev.setUint16(10, this.flags);
		this.optReply(opt, NBD.REP_INFO, exp);
		if (asked.has(NBD.INFO_NAME))
			this.optReply(opt, NBD.REP_INFO,
				      this.infoString(NBD.INFO_NAME, this.nameBytes));
		if (asked.has(NBD.INFO_DESCRIPTION) && this.descBytes.length)
			this.optReply(opt, NBD.REP_INFO,
				      this.infoString(NBD.INFO_DESCRIPTION,
						      this.descBytes));
		if (asked.has(NBD.INFO_BLOCK_SIZE)) {
			const bs = new Uint8Array(14);
			const bv = view(bs);

			bv.setUint16(0, NBD.INFO_BLOCK_SIZE);
			bv.setUint32(2, BLOCK_MIN);
			bv.setUint32(6, BLOCK_PREF);
			bv.setUint32(10, BLOCK_MAX);
			this.optReply(opt, NBD.REP_INFO, bs);
		}
		this.optReply(opt, NBD.REP_ACK);
		if (opt === NBD.OPT_GO)
			this.enterTransmission();
	}

	infoString(type, bytes) {
		const p = new Uint8Array(2 + bytes.length);

		view(p).setUint16(0, type);
		p.set(bytes, 2);
		return p;
	}

	enterTransmission() {
		this.state = 'transmission';
		this.opts.onReady?.({ size: this.size, flags: this.flags,
				      name: this.name });
	}

	/* Parse one request (and a WRITE's payload) and start it. */
	doRequest() {
		let req = this.pendingReq;

		if (!req) {
			if (this.q.length < NBD.REQUEST_SIZE)
				return;
			const raw = this.q.take(NBD.REQUEST_SIZE);
			const v = view(raw);

			if (v.getUint32(0) !== NBD.REQUEST_MAGIC) {
				this.protocolError(`bad request magic 0x${v.getUint32(0).toString(16)}`);
				return;
			}
			req = {
				flags: v.getUint16(4),
				type: v.getUint16(6),
				handle: raw.slice(8, 16),
				/* Exact below 2^53; anything above is out of range anyway. */
				offset: Number(v.getBigUint64(16)),
				length: v.getUint32(24),
			};
			if ((req.type === NBD.CMD_READ || req.type === NBD.CMD_WRITE) &&
			    req.length > BLOCK_MAX) {
				this.protocolError(`request of ${req.length} bytes is over the ${BLOCK_MAX} allowed`,
						   WS_POLICY);
				return;
			}
			if (req.type === NBD.CMD_WRITE)
				this.pendingReq = req;
		}
		if (req.type === NBD.CMD_WRITE) {
			if (this.q.length < req.length)
				return;
			this.pendingReq = null;
			req.data = this.q.take(req.length);
		}
		this.dispatch(req);
	}

	dispatch(req) {
		if (req.type === NBD.CMD_DISC) {
			this.draining = true;
			this.maybeDrained();
			return;
		}
		const err = this.check(req);

		if (err) {
			this.reply(req, err);
			return;
		}
		this.inflight++;
		if (this.inflight > this.stats.inflightPeak)
			this.stats.inflightPeak = this.inflight;
		this.run(req).then(
			(data) => this.complete(req, 0, data),
			(e) => {
				this.stats.errors++;
				this.opts.onError?.(e, req);
				this.complete(req, NBD.EIO, null);
			});
	}

	/* NBD error for a request that must not reach the source, or 0. */
	check(req) {
		const s = this.source;
		const known = NBD.CMD_FLAG_FUA | NBD.CMD_FLAG_NO_HOLE;
		const end = req.offset + req.length;

		if (req.flags & ~known)
			return NBD.EINVAL;
		switch (req.type) {
		case NBD.CMD_READ:
			return end > this.size ? NBD.EINVAL : 0;
		case NBD.CMD_FLUSH:
			return 0;
		case NBD.CMD_WRITE:
		case NBD.CMD_WRITE_ZEROES:
		case NBD.CMD_TRIM:
			if (!this.writable)
				return NBD.EPERM;
			if (req.type === NBD.CMD_TRIM && typeof s.trim !== 'function')
				return NBD.EINVAL;
			if (req.type === NBD.CMD_WRITE_ZEROES &&
			    typeof s.writeZeroes !== 'function')
				return NBD.EINVAL;
			if (end > this.size)
				return req.type === NBD.CMD_TRIM ? NBD.EINVAL : NBD.ENOSPC;
			return 0;
		default:
			return NBD.EINVAL;
		}
	}

	async run(req) {
		const s = this.source;

		switch (req.type) {
		case NBD.CMD_READ: {
			if (!req.length)
				return new Uint8Array(0);
			const data = toU8(await s.read(req.offset, req.length));

			if (data.length !== req.length)
				throw new Error(`short read: ${data.length} of ${req.length} bytes`);
			return data;
		}
		case NBD.CMD_WRITE:
			if (req.length)
				await s.write(req.offset, req.data);
			break;
		case NBD.CMD_WRITE_ZEROES:
			if (req.length)
				await s.writeZeroes(req.offset, req.length);
			break;
		case NBD.CMD_TRIM:
			if (req.length)
				await s.trim(req.offset, req.length);
			break;
		case NBD.CMD_FLUSH:
			/* Read-only: nothing is ever pending, so nothing to do. */
			if (this.writable && typeof s.flush === 'function')
				await s.flush();
			return null;
		}
		if ((req.flags & NBD.CMD_FLAG_FUA) && typeof s.flush === 'function')
			await s.flush();
		return null;
	}

	complete(req, err, data) {
		this.inflight--;
		this.reply(req, err, data);
		this.maybeDrained();
		/* A slot came free: parse what waited for it. */
		if (this.state === 'transmission' && !this.draining)
			this.process();
	}

	reply(req, err, data = null) {
		if (this.state === 'closed')
			return;
		const st = this.stats;
		const len = !err && data ? data.length : 0;
		const b = new Uint8Array(NBD.REPLY_SIZE + len);
		const v = view(b);

		v.setUint32(0, NBD.SIMPLE_REPLY_MAGIC);
		v.setUint32(4, err);
		b.set(req.handle, 8);
		if (len)
			b.set(data, NBD.REPLY_SIZE);
		st.requests++;
		if (!err) {
			switch (req.type) {
			case NBD.CMD_READ:
				st.reads++;
				st.bytesRead += req.length;
				break;
			case NBD.CMD_WRITE:
				st.writes++;
				st.bytesWritten += req.length;
				break;
			case NBD.CMD_FLUSH:
				st.flushes++;
				break;
			case NBD.CMD_TRIM:
				st.trims++;
				break;
			case NBD.CMD_WRITE_ZEROES:
				st.zeroes++;
				break;
			}
		} else if (err !== NBD.EIO) {
			/* EIO was counted where the source failed. */
			st.errors++;
		}
		this.send(b);
	}

	maybeDrained() {
		if (this.draining && this.inflight === 0)
			this.finish('disc', 'the client disconnected', WS_NORMAL);
	}
}
