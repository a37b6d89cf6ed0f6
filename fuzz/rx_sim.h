/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A userspace model of nbdws.ko's receive path, used by the fuzz targets
 * and by tests/unit/test_rx_stream.c.
 *
 * It drives common/ws_frame.c and common/nbd_wire.c exactly the way the
 * kernel does: the NBD side says where the next bytes must go (the reply
 * header buffer, or the destination of a read at its current offset), the
 * transport copies at most that many bytes there, and in the WebSocket case
 * unmasks them in place at the destination with ws_dec_data_done(). Replies
 * are matched against a small in-flight table: cookie = RX_COOKIE_BASE |
 * slot, each slot expecting a fixed number of read bytes (0: a write or
 * flush, whose reply carries no payload). A slot is re-armed with the same
 * cookie once it completes, so a stream may complete it again.
 *
 * Everything the model observes is folded into struct rx_outcome so that
 * two feeds of the same bytes, split differently, can be compared.
 */
#ifndef _NBDWS_FUZZ_RX_SIM_H
#define _NBDWS_FUZZ_RX_SIM_H

#include <stdlib.h>
#include <string.h>

#include "nbd_wire.h"
#include "ws_frame.h"

#define RX_SLOTS	8
#define RX_COOKIE_BASE	0x6e62647700000000ULL	/* "nbdw" << 32 */
#define RX_FNV_BASIS	2166136261u		/* FNV-1a offset basis */

/* Read sizes per slot: 0 = no payload (write, flush, trim). */
static const u32 rx_slot_len[RX_SLOTS] = {
	0, 1, 3, 512, 4096, 4097, 65536, 1 << 20,
};

struct rx_outcome {
	u64 consumed;		/* stream bytes taken by the transport */
	u64 completed;		/* replies matched to a slot */
	u64 failed;		/* of which carried an NBD error */
	u64 data_bytes;		/* payload bytes that landed in a slot */
	u32 hash;		/* FNV-1a over completions and payload */
	u32 ws_hash;		/* FNV-1a over WebSocket events */
	int end;		/* 0 running, 1 peer close, 2 ws error, 3 nbd */
	u16 close_code;
};

struct rx_sim {
	struct nbd_reply_parser parser;
	u8 hdr[NBDP_SIMPLE_REPLY_SIZE];	/* header bytes land here */
	u8 *dst[RX_SLOTS];		/* exact-size read destinations */
	int cur;			/* slot receiving payload, or -1 */
	u32 off;			/* payload offset within cur */
	int last_errno[RX_SLOTS];
	u64 done[RX_SLOTS];		/* completions per slot */
	struct rx_outcome out;
};

static inline void rx_hash_into(u32 *h, const void *p, size_t n)
{
	const u8 *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		*h = (*h ^ b[i]) * 16777619u;
}

static inline void rx_hash(struct rx_outcome *o, const void *p, size_t n)
{
	rx_hash_into(&o->hash, p, n);
}

static inline void rx_ws_hash(struct rx_outcome *o, const void *p, size_t n)
{
	rx_hash_into(&o->ws_hash, p, n);
}

/* The model and its destination buffers (allocated once, reused). */
static inline void rx_sim_init(struct rx_sim *r)
{
	static u8 *bufs[RX_SLOTS];
	int i;

	memset(r, 0, sizeof(*r));
	/*
	 * Seeded here, once: seeding lazily on a zero hash restarted the hash
	 * wherever a running value happened to be 0 between two calls, so the
	 * same bytes fed in different pieces could hash differently.
	 */
	r->out.hash = RX_FNV_BASIS;
	r->out.ws_hash = RX_FNV_BASIS;
	nbd_reply_parser_init(&r->parser);
	r->cur = -1;
	for (i = 0; i < RX_SLOTS; i++) {
		if (!bufs[i] && rx_slot_len[i])
			bufs[i] = malloc(rx_slot_len[i]);
		r->dst[i] = bufs[i];
	}
}

/*
 * Where the next stream bytes must go, and how many of them at most.
 * Returns 0 once the connection is dead.
 */
static inline size_t rx_want(struct rx_sim *r, u8 **where)
{
	if (r->out.end)
		return 0;
	if (r->cur >= 0) {
		*where = r->dst[r->cur] + r->off;
		return rx_slot_len[r->cur] - r->off;
	}
	*where = r->hdr;
	return NBDP_SIMPLE_REPLY_SIZE - r->parser.have;
}

static inline void rx_complete(struct rx_sim *r, int slot, int err)
{
	r->out.completed++;
	if (err)
		r->out.failed++;
	r->last_errno[slot] = err;
	r->done[slot]++;
	rx_hash(&r->out, &slot, sizeof(slot));
	rx_hash(&r->out, &err, sizeof(err));
}

/* @n bytes (<= rx_want()) have landed, unmasked, where rx_want() said. */
static inline void rx_got(struct rx_sim *r, size_t n)
{
	struct nbd_wire_reply rep;
	size_t used = 0;
	int rc, slot;

	if (r->cur >= 0) {
		r->out.consumed += n;
		rx_hash(&r->out, r->dst[r->cur] + r->off, n);
		r->out.data_bytes += n;
		r->off += (u32)n;
		if (r->off == rx_slot_len[r->cur]) {
			rx_complete(r, r->cur, 0);
			r->cur = -1;
		}
		return;
	}

	rc = nbd_reply_parse(&r->parser, r->hdr, n, &used, &rep);
	/* Count what the parser took, so that the outcome of a bad magic
	 * does not depend on how the bytes were cut.
	 */
	r->out.consumed += used;
	if (rc == NBD_REPLY_BAD_MAGIC) {
		r->out.end = 3;
		return;
	}
	/* rx_want() never offers more than the header still needs. */
	if (used != n)
		abort();
	if (rc == NBD_REPLY_MORE)
		return;

	slot = (int)(rep.cookie & (RX_SLOTS - 1));
	if (rep.cookie != (RX_COOKIE_BASE | (u64)slot)) {
		r->out.end = 3;		/* unknown cookie: kill connection */
		return;
	}
	if (rep.error) {
		int err = nbd_wire_errno(rep.error);

		if (err >= 0)
			abort();
		rx_complete(r, slot, err);
	} else if (!rx_slot_len[slot]) {
		rx_complete(r, slot, 0);
	} else {
		r->cur = slot;
		r->off = 0;
	}
}

/* Plain transport: the stream is NBD replies and payload as is. */
static inline void rx_plain_chunk(struct rx_sim *r, const u8 *c, size_t n)
{
	size_t off = 0;

	while (off < n) {
		u8 *where;
		size_t k = rx_want(r, &where);

		if (!k)
			return;
		if (k > n - off)
			k = n - off;
		memcpy(where, c + off, k);
		rx_got(r, k);
		off += k;
	}
}

/* Bytes the transport consumed from the stream, not only payload. */
struct rx_ws {
	struct ws_dec dec;
	struct rx_sim sim;
	u64 stream;		/* stream bytes consumed by the decoder */
	u64 pings;
	/* Optional copy of every unmasked payload byte handed to NBD. */
	u8 *tap;
	size_t tap_len;
	size_t tap_cap;
};

static inline void rx_ws_tap(struct rx_ws *w, const u8 *p, size_t n)
{
	if (!w->tap_cap)
		return;
	if (w->tap_len + n > w->tap_cap)
		abort();
	memcpy(w->tap + w->tap_len, p, n);
	w->tap_len += n;
}

static inline void rx_ws_init(struct rx_ws *w, bool server_role)
{
	memset(w, 0, sizeof(*w));
	ws_dec_init(&w->dec, server_role);
	rx_sim_init(&w->sim);
}

/*
 * WebSocket transport: decode frames, answer nothing (the model only
 * records control frames), move data payload straight to where the NBD
 * side wants it and unmask it there. Every decoder contract is checked:
 * a broken one aborts, which the fuzzer reports as a crash.
 */
static inline void rx_ws_chunk(struct rx_ws *w, const u8 *c, size_t n)
{
	struct rx_outcome *o = &w->sim.out;
	size_t off = 0;

	while (!o->end) {
		struct ws_event ev;
		size_t u = ws_dec_parse(&w->dec, c + off, n - off, &ev);

		if (u > n - off)
			abort();
		off += u;
		w->stream += u;
		switch (ev.type) {
		case WS_EV_NEED_MORE:
			if (off != n)
				abort();
			return;
		case WS_EV_DATA:
			if (!ws_dec_data_left(&w->dec))
				abort();
			while (off < n && ws_dec_data_left(&w->dec)) {
				u8 *where;
				size_t k = rx_want(&w->sim, &where);
				u64 left = ws_dec_data_left(&w->dec);

				if (!k)
					return;
				if (k > left)
					k = (size_t)left;
				if (k > n - off)
					k = n - off;
				memcpy(where, c + off, k);
				ws_dec_data_done(&w->dec, where, k);
				rx_ws_tap(w, where, k);
				rx_got(&w->sim, k);
				off += k;
				w->stream += k;
			}
			if (off == n)
				return;
			break;
		case WS_EV_PING:
		case WS_EV_PONG:
			if (ev.payload_len > WS_MAX_CONTROL || !ev.payload)
				abort();
			w->pings++;
			rx_ws_hash(o, &ev.type, sizeof(ev.type));
			rx_ws_hash(o, ev.payload, ev.payload_len);
			break;
		case WS_EV_CLOSE:
		case WS_EV_ERROR: {
			struct ws_event again;

			if (!ev.reason || ev.reason[ev.reason_len] != 0)
				abort();
			if (ev.type == WS_EV_ERROR &&
			    ev.close_code != WS_CLOSE_PROTOCOL &&
			    ev.close_code != WS_CLOSE_INVALID_DATA)
				abort();
			if (ev.type == WS_EV_CLOSE && ev.close_code != 1005 &&
			    (ev.close_code < 1000 || ev.close_code > 4999))
				abort();
			/* Terminal events repeat and consume nothing. */
			if (ws_dec_parse(&w->dec, c + off, n - off, &again) ||
			    again.type != ev.type ||
			    again.close_code != ev.close_code)
				abort();
			o->end = ev.type == WS_EV_CLOSE ? 1 : 2;
			o->close_code = ev.close_code;
			rx_ws_hash(o, &ev.close_code, sizeof(ev.close_code));
			rx_ws_hash(o, ev.reason, ev.reason_len);
			return;
		}
		default:
			abort();
		}
	}
}

#endif /* _NBDWS_FUZZ_RX_SIM_H */
