// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: encoder round trips through the shared codec.
 *
 * The input is a recipe, not a stream: it describes a valid sequence of
 * WebSocket frames (data frames of any length form, fragmented messages,
 * pings and pongs between fragments, a final close), which is encoded with
 * ws_frame_header() and ws_mask_copy() (masked in two pieces, so the key
 * phase must carry over) and decoded again in the matching role, cut into
 * pieces. The decoded payload and control events must equal the recipe.
 * The first bytes also give an NBD request, which is encoded and read back
 * by hand, and a reply header, which is parsed cut at every position.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_wire.h"
#include "ws_frame.h"

#define MAX_STREAM	(1 << 20)
#define MAX_EVENTS	4096

struct recipe_ev {
	enum ws_ev_type type;
	u8 len;
	u8 p[WS_MAX_CONTROL];
	u16 code;
};

struct state {
	u8 *stream;
	size_t slen;
	u8 *data;		/* expected payload */
	size_t dlen;
	struct recipe_ev ev[MAX_EVENTS];
	int nev;
	u32 rng;
};

static struct state st, got;

static u32 rnd(struct state *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 17;
	s->rng ^= s->rng << 5;
	return s->rng;
}

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "round trip: %s\n", what);
		abort();
	}
}

static void emit(struct state *s, u8 opcode, bool fin, const u8 *p, size_t n,
		 bool masked)
{
	u8 key[4];
	size_t hl, cut;
	u32 k = rnd(s);

	memcpy(key, &k, 4);
	hl = ws_frame_header(s->stream + s->slen, opcode, fin, n,
			     masked ? key : NULL);
	check(hl >= 2 && hl <= WS_MAX_HEADER, "header length");
	s->slen += hl;
	if (!masked) {
		memcpy(s->stream + s->slen, p, n);
	} else {
		cut = n ? rnd(s) % (n + 1) : 0;
		ws_mask_copy(s->stream + s->slen, p, cut, key, 0);
		/* Second piece in place, at its own phase. */
		memcpy(s->stream + s->slen + cut, p + cut, n - cut);
		ws_mask_copy(s->stream + s->slen + cut,
			     s->stream + s->slen + cut, n - cut, key, cut);
	}
	s->slen += n;
}

static void add_ev(struct state *s, enum ws_ev_type t, const u8 *p, u8 n,
		   u16 code)
{
	struct recipe_ev *e;

	check(s->nev < MAX_EVENTS, "too many events");
	e = &s->ev[s->nev++];
	e->type = t;
	e->len = n;
	e->code = code;
	if (n)
		memcpy(e->p, p, n);
}

/* Decode st.stream into got, cut into pieces picked by @seed. */
static void decode(bool role, u8 seed)
{
	struct ws_dec d;
	size_t pos = 0;
	u32 rng = 0x2545f491u ^ seed;

	u8 *chunk = malloc(st.slen);

	ws_dec_init(&d, role);
	got.dlen = 0;
	got.nev = 0;
	while (pos < st.slen) {
		size_t n = 1, off = 0;
		u8 *c;

		rng ^= rng << 13;
		rng ^= rng >> 17;
		rng ^= rng << 5;
		/*
		 * Byte by byte only where that stays cheap: a 64 KiB stream
		 * fed a byte at a time costs ~50 ms under ASan and coverage,
		 * which keeps a run from ever reaching millions of inputs.
		 * Large streams still get cut at arbitrary offsets.
		 */
		if (seed & 1)
			n = 1 + rng % (1 + (size_t)seed * 64);
		else if (st.slen > 8192)
			n = 1 + rng % (256 + (size_t)seed * 64);
		if (n > st.slen - pos)
			n = st.slen - pos;
		/* At the very end of a heap block: ASan sees any overread. */
		c = chunk + st.slen - n;
		memcpy(c, st.stream + pos, n);
		for (;;) {
			struct ws_event ev;
			size_t u = ws_dec_parse(&d, c + off, n - off, &ev);

			check(u <= n - off, "consumed too much");
			off += u;
			if (ev.type == WS_EV_NEED_MORE)
				break;
			if (ev.type == WS_EV_DATA) {
				u64 left = ws_dec_data_left(&d);
				size_t k = n - off;

				check(left > 0, "DATA with nothing left");
				if (!k)
					break;
				if (k > left)
					k = (size_t)left;
				/* Both ways the kernel moves payload. */
				if (seed & 2) {
					ws_dec_data_copy(&d,
							 got.data + got.dlen,
							 c + off, k);
				} else {
					memcpy(got.data + got.dlen, c + off, k);
					ws_dec_data_done(&d, got.data + got.dlen,
							 k);
				}
				got.dlen += k;
				off += k;
				continue;
			}
			check(ev.type != WS_EV_ERROR, "error on a valid stream");
			add_ev(&got, ev.type, ev.type == WS_EV_CLOSE ?
			       (const u8 *)ev.reason : ev.payload,
			       ev.type == WS_EV_CLOSE ? ev.reason_len :
			       ev.payload_len, ev.close_code);
			if (ev.type == WS_EV_CLOSE) {
				check(pos + off == st.slen,
				      "close is not the last frame");
				break;
			}
		}
		pos += off;
		if (got.nev && got.ev[got.nev - 1].type == WS_EV_CLOSE)
			break;
	}
	free(chunk);
	check(pos == st.slen, "stream not consumed");
}

static void nbd_round_trip(const u8 *d, size_t size)
{
	struct nbd_wire_request req;
	struct nbd_reply_parser p;
	struct nbd_wire_reply r;
	u8 in[28] = { 0 }, out[NBDP_REQUEST_SIZE], rep[16];
	size_t i, cut, used;
	u64 v;

	memcpy(in, d, size < sizeof(in) ? size : sizeof(in));
	memcpy(&req.flags, in, 2);
	memcpy(&req.type, in + 2, 2);
	memcpy(&req.cookie, in + 4, 8);
	memcpy(&req.offset, in + 12, 8);
	memcpy(&req.length, in + 20, 4);
	nbd_wire_encode_request(out, &req);
	for (v = 0, i = 0; i < 4; i++)
		v = v << 8 | out[i];
	check(v == NBDP_REQUEST_MAGIC, "request magic");
	check((u16)(out[4] << 8 | out[5]) == req.flags, "request flags");
	check((u16)(out[6] << 8 | out[7]) == req.type, "request type");
	for (v = 0, i = 8; i < 16; i++)
		v = v << 8 | out[i];
	check(v == req.cookie, "request cookie");
	for (v = 0, i = 16; i < 24; i++)
		v = v << 8 | out[i];
	check(v == req.offset, "request offset");
	for (v = 0, i = 24; i < 28; i++)
		v = v << 8 | out[i];
	check(v == req.length, "request length");

	/* Reply header: request magic swapped for the reply magic. */
	memcpy(rep, out + 8, 16);
	rep[0] = 0x67;
	rep[1] = 0x44;
	rep[2] = 0x66;
	rep[3] = 0x98;
	for (cut = 0; cut <= 16; cut++) {
		int rc;

		nbd_reply_parser_init(&p);
		rc = nbd_reply_parse(&p, rep, cut, &used, &r);
		check(used == cut && rc == (cut == 16), "reply first part");
		if (cut < 16) {
			rc = nbd_reply_parse(&p, rep + cut, 16 - cut, &used, &r);
			check(used == 16 - cut && rc == NBD_REPLY_DONE,
			      "reply second part");
		}
		for (v = 0, i = 4; i < 8; i++)
			v = v << 8 | rep[i];
		check(r.error == v, "reply error");
		for (v = 0, i = 8; i < 16; i++)
			v = v << 8 | rep[i];
		check(r.cookie == v, "reply cookie");
		check(nbd_wire_errno(r.error) <= 0, "errno sign");
		check(!nbd_wire_errno(r.error) == !r.error, "errno zero");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const u16 codes[] = { 1000, 1001, 1002, 1003, 1007, 1008,
				     1009, 1010, 1011, 3000, 4000, 4999 };
	u8 ctl[WS_MAX_CONTROL + 2], *payload;
	bool role, in_msg = false;
	size_t i = 2, n, k;
	int e;

	if (size < 2)
		return 0;
	if (!st.stream) {
		st.stream = malloc(MAX_STREAM + 4096);
		st.data = malloc(MAX_STREAM);
		got.data = malloc(MAX_STREAM);
	}
	nbd_round_trip(data, size);

	role = data[0] & 1;
	st.rng = 0x1234567u ^ data[1] ^ (u32)size << 8;
	st.slen = 0;
	st.dlen = 0;
	st.nev = 0;

	while (i < size && st.slen < 65536) {
		u8 op = data[i++];

		switch (op & 3) {
		case 0:
		case 1: {
			bool fin = op & 0x40;

			/* 7-bit lengths mostly, 16-bit often, 64-bit rarely. */
			n = i < size ? data[i++] : 0;
			if ((op & 0xe0) == 0xe0)
				n = n * 300 + (i < size ? data[i++] : 0);
			else if (op & 0x80)
				n = n * 4 + (i < size ? data[i++] : 0);
			payload = st.data + st.dlen;
			for (k = 0; k < n; k++)
				payload[k] = (u8)rnd(&st);
			emit(&st, in_msg ? WS_OP_CONT : WS_OP_BINARY, fin,
			     payload, n, role);
			st.dlen += n;
			in_msg = !fin;
			break;
		}
		default:
			n = (i < size ? data[i++] : 0) % (WS_MAX_CONTROL + 1);
			for (k = 0; k < n; k++)
				ctl[k] = (u8)rnd(&st);
			emit(&st, (op & 3) == 2 ? WS_OP_PING : WS_OP_PONG,
			     true, ctl, n, role);
			add_ev(&st, (op & 3) == 2 ? WS_EV_PING : WS_EV_PONG,
			       ctl, (u8)n, 0);
			break;
		}
	}
	/* Close with a valid code and an ASCII reason. */
	n = ws_close_payload(ctl, codes[data[1] % (sizeof(codes) / sizeof(codes[0]))]);
	k = data[0] >> 1;
	if (k > WS_MAX_CONTROL - 2)
		k = WS_MAX_CONTROL - 2;
	memset(ctl + n, 'r', k);
	emit(&st, WS_OP_CLOSE, true, ctl, n + k, role);
	add_ev(&st, WS_EV_CLOSE, ctl + n, (u8)k,
	       codes[data[1] % (sizeof(codes) / sizeof(codes[0]))]);

	decode(role, data[1]);

	check(got.dlen == st.dlen, "payload length");
	check(!memcmp(got.data, st.data, st.dlen), "payload bytes");
	check(got.nev == st.nev, "event count");
	for (e = 0; e < st.nev; e++) {
		check(got.ev[e].type == st.ev[e].type, "event type");
		check(got.ev[e].len == st.ev[e].len, "event length");
		check(!memcmp(got.ev[e].p, st.ev[e].p, st.ev[e].len),
		      "event payload");
		check(got.ev[e].code == st.ev[e].code, "close code");
	}
	return 0;
}
