// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for common/ws_frame.c, the RFC 6455 codec that nbdws.ko runs
 * in its receive path.
 *
 * Frames are built here by a tiny independent encoder (mk_frame) so the
 * decoder is not only checked against its own encoder. Every stream is fed
 * whole, one byte at a time, in random pieces and split at every byte
 * boundary; each feed must give the same events and the same unmasked data
 * as the generator expects. Each piece is a heap copy of exactly its size,
 * so AddressSanitizer catches any read past what the decoder was given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "ws_frame.h"
#include "ws_mask_vec.h"

#define SERVER	true	/* decoder expects masked frames */
#define CLIENT	false	/* decoder expects unmasked frames */

/* ---- independent frame builder ---------------------------------------- */

enum { LEN_AUTO, LEN_7, LEN_16, LEN_64 };

/*
 * Write a frame with first byte @b0 (FIN, RSV, opcode as given) and a
 * length field of form @form holding @len. @payload (may be NULL: header
 * only) is masked with @key when @key is not NULL.
 */
static size_t mk_frame(u8 *out, u8 b0, int form, u64 len, const u8 *key,
		       const u8 *payload)
{
	size_t n = 0;
	u64 i;

	if (form == LEN_AUTO)
		form = len < 126 ? LEN_7 : len < 65536 ? LEN_16 : LEN_64;
	out[n++] = b0;
	if (form == LEN_7) {
		out[n++] = (u8)len;
	} else if (form == LEN_16) {
		out[n++] = 126;
		out[n++] = (u8)(len >> 8);
		out[n++] = (u8)len;
	} else {
		out[n++] = 127;
		for (i = 0; i < 8; i++)
			out[n++] = (u8)(len >> (56 - 8 * i));
	}
	if (key) {
		out[1] |= 0x80;
		memcpy(out + n, key, 4);
		n += 4;
	}
	if (payload) {
		for (i = 0; i < len; i++)
			out[n + i] = payload[i] ^ (key ? key[i % 4] : 0);
		n += len;
	}
	return n;
}

/* ---- recorded outcome of a feed --------------------------------------- */

struct ev_rec {
	enum ws_ev_type type;
	u16 code;
	u8 len;
	u8 payload[WS_MAX_CONTROL + 1];
};

struct run {
	u8 *data;
	size_t data_len;
	size_t data_cap;
	struct ev_rec ev[512];
	int nev;
	size_t consumed;
	const char *problem;	/* driver-detected misbehaviour */
};

static void run_reset(struct run *r)
{
	free(r->data);
	memset(r, 0, sizeof(*r));
}

/* Room for @n more bytes of recorded payload, to be written by the caller. */
static u8 *run_data_room(struct run *r, size_t n)
{
	if (r->data_len + n > r->data_cap) {
		r->data_cap = (r->data_len + n) * 2 + 64;
		r->data = realloc(r->data, r->data_cap);
	}
	/* Nothing recorded yet and nothing to add: no NULL + 0. */
	if (!n)
		return r->data;
	r->data_len += n;
	return r->data + r->data_len - n;
}

static void run_add_data(struct run *r, const u8 *p, size_t n)
{
	u8 *dst = run_data_room(r, n);

	if (n)
		memcpy(dst, p, n);
}

static void run_add_ev(struct run *r, enum ws_ev_type t, u16 code,
		       const u8 *p, u8 len)
{
	struct ev_rec *e = &r->ev[r->nev++];

	e->type = t;
	e->code = code;
	e->len = len;
	if (len)
		memcpy(e->payload, p, len);
}

/*
 * SPLIT_WANT feeds the way nbdws.ko's receive path does: exactly
 * ws_dec_want() bytes while a header or control payload is being read,
 * random pieces of data payload.
 */
enum split { SPLIT_WHOLE, SPLIT_BYTE, SPLIT_RANDOM, SPLIT_WANT, SPLIT_AT };

/*
 * Feed @s to a fresh decoder in pieces chosen by @mode and record what
 * comes out. Data payload moves the two ways the kernel moves it: copied
 * as received and then unmasked in place by ws_dec_data_done() (recvmsg
 * and pre-read sources), or copied and unmasked in one pass by
 * ws_dec_data_copy() (skbs; always for SPLIT_WANT). SPLIT_RANDOM mixes the
 * two over random sub-pieces.
 */
static void feed(bool role, const u8 *s, size_t len, enum split mode,
		 unsigned int seed, size_t at, struct run *r)
{
	struct ws_dec d;
	size_t pos = 0;
	bool stopped = false;

	ws_dec_init(&d, role);
	while (!stopped && (pos < len || len == 0)) {
		bool hdr_piece = mode == SPLIT_WANT && ws_dec_want(&d);
		size_t n, off = 0;
		u8 *c;

		switch (mode) {
		case SPLIT_WHOLE:
			n = len - pos;
			break;
		case SPLIT_BYTE:
			n = 1;
			break;
		case SPLIT_RANDOM:
			n = 1 + (size_t)rand_r(&seed) % (rand_r(&seed) % 8 ?
							 17 : 3000);
			break;
		case SPLIT_WANT: {
			u64 left = ws_dec_data_left(&d);

			n = ws_dec_want(&d);
			if (!n && left)
				n = 1 + (size_t)rand_r(&seed) % 5000;
			if (n > left && left)
				n = (size_t)left;
			if (!n)
				n = 1;	/* stopped: the end event repeats */
			break;
		}
		default:
			n = pos < at ? at - pos : len - pos;
			break;
		}
		if (n > len - pos)
			n = len - pos;
		c = malloc(n ? n : 1);
		memcpy(c, s + pos, n);

		for (;;) {
			struct ws_event ev;
			size_t u = ws_dec_parse(&d, c + off, n - off, &ev);

			if (u > n - off) {
				r->problem = "consumed more than given";
				stopped = true;
				break;
			}
			off += u;
			if (ev.type == WS_EV_NEED_MORE) {
				if (off != n)
					r->problem = "NEED_MORE with input left";
				break;
			}
			if (ev.type == WS_EV_DATA) {
				u64 left = ws_dec_data_left(&d);
				size_t take = n - off;

				if (hdr_piece && take) {
					r->problem = "want() read past a header";
					stopped = true;
					break;
				}
				if (!left) {
					r->problem = "DATA with nothing left";
					stopped = true;
					break;
				}
				if (take > left)
					take = (size_t)left;
				if (!take)
					break;
				while (take) {
					size_t piece = take;

					bool one_pass = mode == SPLIT_WANT;
					u8 *dst;

					if (mode == SPLIT_RANDOM) {
						piece = 1 + (size_t)rand_r(&seed)
							% take;
						one_pass = rand_r(&seed) & 1;
					}
					dst = run_data_room(r, piece);
					if (one_pass) {
						ws_dec_data_copy(&d, dst, c + off,
								 piece);
					} else {
						memcpy(dst, c + off, piece);
						ws_dec_data_done(&d, dst, piece);
					}
					off += piece;
					take -= piece;
				}
				continue;
			}
			if (ev.type == WS_EV_PING || ev.type == WS_EV_PONG) {
				run_add_ev(r, ev.type, 0, ev.payload,
					   ev.payload_len);
				continue;
			}
			/* CLOSE or ERROR: terminal, and repeated as is. */
			run_add_ev(r, ev.type, ev.close_code,
				   (const u8 *)ev.reason, ev.reason_len);
			{
				struct ws_event again;
				size_t u2 = ws_dec_parse(&d, c + off, n - off,
							 &again);

				if (u2 || again.type != ev.type ||
				    again.close_code != ev.close_code)
					r->problem = "terminal event not sticky";
			}
			stopped = true;
			break;
		}
		pos += off;
		free(c);
		if (len == 0)
			break;
	}
	r->consumed = pos;
}

/* Compare two outcomes; returns NULL when equal, else what differs. */
static const char *run_diff(const struct run *a, const struct run *b)
{
	int i;

	if (a->problem || b->problem)
		return a->problem ? a->problem : b->problem;
	if (a->data_len != b->data_len)
		return "data length";
	if (a->data_len && memcmp(a->data, b->data, a->data_len))
		return "data bytes";
	if (a->nev != b->nev)
		return "event count";
	for (i = 0; i < a->nev; i++) {
		const struct ev_rec *x = &a->ev[i], *y = &b->ev[i];

		if (x->type != y->type || x->code != y->code ||
		    x->len != y->len || memcmp(x->payload, y->payload, x->len))
			return "event";
	}
	if (a->consumed != b->consumed)
		return "bytes consumed";
	return NULL;
}

/* Feed @s every way there is and compare each outcome with @want. */
static const char *feed_all_ways(bool role, const u8 *s, size_t len,
				 const struct run *want, bool every_split)
{
	static char msg[160];
	struct run got = { 0 };
	const char *diff;
	unsigned int seed;
	size_t at;

	for (int mode = SPLIT_WHOLE; mode <= SPLIT_WANT; mode++) {
		for (seed = 1; seed <= (mode >= SPLIT_RANDOM ? 40U : 1U);
		     seed++) {
			run_reset(&got);
			feed(role, s, len, mode, seed, 0, &got);
			diff = run_diff(&got, want);
			if (diff) {
				snprintf(msg, sizeof(msg),
					 "mode %d seed %u: %s", mode, seed,
					 diff);
				run_reset(&got);
				return msg;
			}
		}
	}
	for (at = 0; every_split && at <= len; at++) {
		run_reset(&got);
		feed(role, s, len, SPLIT_AT, 0, at, &got);
		diff = run_diff(&got, want);
		if (diff) {
			snprintf(msg, sizeof(msg), "split at %zu: %s", at,
				 diff);
			run_reset(&got);
			return msg;
		}
	}
	run_reset(&got);
	return NULL;
}

/* ---- stream generator ------------------------------------------------- */

struct gen {
	u8 *s;
	size_t len;
	size_t cap;
	struct run want;
	bool role;
	unsigned int seed;
};

static void gen_reserve(struct gen *g, size_t more)
{
	if (g->len + more > g->cap) {
		g->cap = (g->len + more) * 2;
		g->s = realloc(g->s, g->cap);
	}
}

static void gen_fill(struct gen *g, u8 *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (u8)rand_r(&g->seed);
}

/* Append one frame; the peer masks exactly when the decoder expects it. */
static void gen_frame(struct gen *g, u8 b0, u64 len)
{
	u8 key[4], *payload;

	gen_reserve(g, 14 + len);
	payload = malloc(len ? len : 1);
	gen_fill(g, payload, len);
	gen_fill(g, key, 4);
	g->len += mk_frame(g->s + g->len, b0, LEN_AUTO, len,
			   g->role ? key : NULL, payload);
	if ((b0 & 0x0f) < 8)
		run_add_data(&g->want, payload, len);
	else if ((b0 & 0x0f) != WS_OP_CLOSE)
		run_add_ev(&g->want, (b0 & 0x0f) == WS_OP_PING ? WS_EV_PING :
			   WS_EV_PONG, 0, payload, (u8)len);
	free(payload);
}

static u64 gen_len(struct gen *g)
{
	switch (rand_r(&g->seed) % 10) {
	case 0:
		return 0;
	case 1:
		return 126 + rand_r(&g->seed) % 1000;	/* 16-bit form */
	case 2:
		if (rand_r(&g->seed) % 4 == 0)
			return 65536 + rand_r(&g->seed) % 3000; /* 64-bit */
		return 65535;
	default:
		return rand_r(&g->seed) % 126;
	}
}

static void gen_control(struct gen *g)
{
	u8 op = rand_r(&g->seed) % 2 ? WS_OP_PING : WS_OP_PONG;

	gen_frame(g, 0x80 | op, rand_r(&g->seed) % 3 ? rand_r(&g->seed) % 126 :
		  (rand_r(&g->seed) % 2) * 125);
}

/* A random valid stream of @messages messages, ending with a close. */
static void gen_stream(struct gen *g, bool role, unsigned int seed,
		       int messages, bool small)
{
	static const u8 close_pl[] = { 0x03, 0xe8, 'd', 'o', 'n', 'e' };
	u8 key[4] = { 0x11, 0x22, 0x33, 0x44 };
	int m, f, frags;

	memset(g, 0, sizeof(*g));
	g->role = role;
	g->seed = seed;
	for (m = 0; m < messages; m++) {
		if (rand_r(&g->seed) % 4 == 0)
			gen_control(g);
		frags = rand_r(&g->seed) % 3 ? 1 : 2 + rand_r(&g->seed) % 5;
		for (f = 0; f < frags; f++) {
			u8 b0 = f ? WS_OP_CONT : WS_OP_BINARY;
			u64 len = small ? (u64)(rand_r(&g->seed) % 40) :
					 gen_len(g);

			if (f == frags - 1)
				b0 |= 0x80;
			gen_frame(g, b0, len);
			if (f < frags - 1 && rand_r(&g->seed) % 3 == 0)
				gen_control(g);
		}
	}
	gen_reserve(g, 14 + sizeof(close_pl));
	g->len += mk_frame(g->s + g->len, 0x88, LEN_AUTO, sizeof(close_pl),
			   role ? key : NULL, close_pl);
	run_add_ev(&g->want, WS_EV_CLOSE, 1000, (const u8 *)"done", 4);
	g->want.consumed = g->len;
}

static void gen_free(struct gen *g)
{
	free(g->s);
	run_reset(&g->want);
}

/* ---- valid streams ---------------------------------------------------- */

TEST(random_streams_every_feed)
{
	struct gen g;
	unsigned int seed;
	const char *diff;

	for (seed = 1; seed <= 60; seed++) {
		bool role = seed & 1;

		gen_stream(&g, role, seed, 12, false);
		diff = feed_all_ways(role, g.s, g.len, &g.want, false);
		if (diff)
			TH_LOG("seed %u role %d: %s", seed, role, diff);
		ASSERT_EQ(NULL, diff);
		gen_free(&g);
	}
}

/* Small streams, so that splitting at every byte boundary is cheap. */
TEST(small_streams_every_split)
{
	struct gen g;
	unsigned int seed;
	const char *diff;

	for (seed = 100; seed < 140; seed++) {
		bool role = seed & 1;

		gen_stream(&g, role, seed, 10, true);
		diff = feed_all_ways(role, g.s, g.len, &g.want, true);
		if (diff)
			TH_LOG("seed %u role %d: %s", seed, role, diff);
		ASSERT_EQ(NULL, diff);
		gen_free(&g);
	}
}

/* Each length form at its edges, masked and unmasked. */
TEST(length_forms)
{
	static const u64 lens[] = { 0, 1, 125, 126, 127, 65535, 65536,
				    70001, 1 << 20 };
	struct gen g;
	const char *diff;
	size_t i;
	int role;

	for (role = 0; role < 2; role++) {
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			memset(&g, 0, sizeof(g));
			g.role = role;
			g.seed = (unsigned int)i + 7;
			gen_frame(&g, 0x82, lens[i]);
			g.want.consumed = g.len;
			diff = feed_all_ways(role, g.s, g.len, &g.want,
					     lens[i] < 200);
			if (diff)
				TH_LOG("len %llu role %d: %s",
				       (unsigned long long)lens[i], role, diff);
			ASSERT_EQ(NULL, diff);
			gen_free(&g);
		}
	}
}

/*
 * Fragmented message with every control frame type between fragments,
 * empty fragments included; the close frame ends the stream.
 */
TEST(fragments_with_controls)
{
	static const u8 key[4] = { 0xa1, 0xb2, 0xc3, 0xd4 };
	u8 s[512], part[3][7] = { "abcdefg", "", "hijklmn" };
	struct run want = { 0 };
	size_t n = 0;
	const char *diff;

	n += mk_frame(s + n, 0x02, LEN_AUTO, 7, key, part[0]);
	n += mk_frame(s + n, 0x89, LEN_AUTO, 4, key, (const u8 *)"ping");
	n += mk_frame(s + n, 0x00, LEN_AUTO, 0, key, part[1]);
	n += mk_frame(s + n, 0x8a, LEN_AUTO, 0, key, part[1]);
	n += mk_frame(s + n, 0x00, LEN_AUTO, 3, key, part[2]);
	n += mk_frame(s + n, 0x89, LEN_AUTO, 0, key, part[1]);
	n += mk_frame(s + n, 0x80, LEN_AUTO, 4, key, part[2] + 3);
	/* A second message right after, then the close. */
	n += mk_frame(s + n, 0x82, LEN_AUTO, 2, key, (const u8 *)"XY");
	n += mk_frame(s + n, 0x88, LEN_AUTO, 2, key, (const u8 *)"\x03\xe9");

	run_add_data(&want, part[0], 7);
	run_add_ev(&want, WS_EV_PING, 0, (const u8 *)"ping", 4);
	run_add_ev(&want, WS_EV_PONG, 0, NULL, 0);
	run_add_data(&want, part[2], 7);
	run_add_ev(&want, WS_EV_PING, 0, NULL, 0);
	run_add_data(&want, (const u8 *)"XY", 2);
	run_add_ev(&want, WS_EV_CLOSE, 1001, NULL, 0);
	want.consumed = n;

	diff = feed_all_ways(SERVER, s, n, &want, true);
	if (diff)
		TH_LOG("%s", diff);
	ASSERT_EQ(NULL, diff);
	run_reset(&want);
}

TEST(control_payload_125_masked)
{
	static const u8 key[4] = { 0xde, 0xad, 0xbe, 0xef };
	u8 pl[125], s[256];
	struct run want = { 0 };
	size_t n, i;
	const char *diff;

	for (i = 0; i < sizeof(pl); i++)
		pl[i] = (u8)(i * 7 + 3);
	n = mk_frame(s, 0x89, LEN_AUTO, 125, key, pl);
	run_add_ev(&want, WS_EV_PING, 0, pl, 125);
	want.consumed = n;
	diff = feed_all_ways(SERVER, s, n, &want, true);
	ASSERT_EQ(NULL, diff);
	run_reset(&want);
}

/* Data in pieces: DATA is reported with 0 consumed while inside payload. */
TEST(data_event_inside_payload)
{
	static const u8 key[4] = { 1, 2, 3, 4 };
	u8 s[64], pl[40], dst[40];
	struct ws_event ev;
	struct ws_dec d;
	size_t n, i, u;

	for (i = 0; i < sizeof(pl); i++)
		pl[i] = (u8)(0x30 + i);
	n = mk_frame(s, 0x82, LEN_AUTO, 40, key, pl);
	ASSERT_EQ(46, n);

	ws_dec_init(&d, SERVER);
	ASSERT_EQ(0, ws_dec_data_left(&d));
	u = ws_dec_parse(&d, s, n, &ev);
	ASSERT_EQ(6, u);
	ASSERT_EQ(WS_EV_DATA, ev.type);
	ASSERT_EQ(40, ws_dec_data_left(&d));

	/* Pieces of 1, 2, 3, ... bytes: the key phase must follow. */
	for (i = 0, u = 1; i < 40; i += u, u++) {
		if (u > 40 - i)
			u = 40 - i;
		ASSERT_EQ(0, ws_dec_parse(&d, s + 6 + i, n - 6 - i, &ev));
		ASSERT_EQ(WS_EV_DATA, ev.type);
		memcpy(dst + i, s + 6 + i, u);
		ws_dec_data_done(&d, dst + i, u);
		ASSERT_EQ(40 - i - u, ws_dec_data_left(&d));
	}
	ASSERT_EQ(0, memcmp(dst, pl, sizeof(pl)));
	ASSERT_EQ(0, ws_dec_parse(&d, s, 0, &ev));
	ASSERT_EQ(WS_EV_NEED_MORE, ev.type);
}

/* Unmasked frame in the client role; NULL destination drops bytes. */
TEST(client_role_drop_data)
{
	u8 s[16];
	struct ws_event ev;
	struct ws_dec d;
	size_t n;

	n = mk_frame(s, 0x82, LEN_AUTO, 5, NULL, (const u8 *)"hello");
	n += mk_frame(s + n, 0x8a, LEN_AUTO, 1, NULL, (const u8 *)"!");
	ws_dec_init(&d, CLIENT);
	ASSERT_EQ(2, ws_dec_parse(&d, s, n, &ev));
	ASSERT_EQ(WS_EV_DATA, ev.type);
	ws_dec_data_done(&d, NULL, 5);
	ASSERT_EQ(3, ws_dec_parse(&d, s + 7, n - 7, &ev));
	ASSERT_EQ(WS_EV_PONG, ev.type);
	ASSERT_EQ(1, ev.payload_len);
	ASSERT_EQ('!', ev.payload[0]);
}

TEST(data_done_past_frame_end)
{
	u8 s[8], dst[8];
	struct ws_event ev;
	struct ws_dec d;
	size_t n;

	n = mk_frame(s, 0x82, LEN_AUTO, 3, NULL, (const u8 *)"abc");
	ws_dec_init(&d, CLIENT);
	ASSERT_EQ(2, ws_dec_parse(&d, s, n, &ev));
	ws_dec_data_done(&d, dst, 4);
	ASSERT_EQ(0, ws_dec_parse(&d, s + 2, n - 2, &ev));
	ASSERT_EQ(WS_EV_ERROR, ev.type);
	ASSERT_EQ(WS_CLOSE_INTERNAL, ev.close_code);
}

/* data_done() outside payload must not disturb a header or a final state. */
TEST(data_done_outside_payload)
{
	static const u8 s[] = { 0x82, 0x02, 'o', 'k' };
	static const u8 text[] = { 0x81, 0x00 };
	u8 dst[2];
	struct ws_event ev;
	struct ws_dec d;

	ws_dec_init(&d, CLIENT);
	ASSERT_EQ(1, ws_dec_parse(&d, s, 1, &ev));
	ASSERT_EQ(WS_EV_NEED_MORE, ev.type);
	ws_dec_data_done(&d, dst, 0);
	ASSERT_EQ(1, ws_dec_parse(&d, s + 1, 3, &ev));
	ASSERT_EQ(WS_EV_DATA, ev.type);
	ASSERT_EQ(2, ws_dec_data_left(&d));
	memcpy(dst, s + 2, 2);
	ws_dec_data_done(&d, dst, 2);
	ASSERT_EQ(0, ws_dec_data_left(&d));
	ws_dec_data_done(&d, dst, 0);

	/* Nothing revives a failed decoder, and the code stays 1002. */
	ASSERT_EQ(2, ws_dec_parse(&d, text, 2, &ev));
	ASSERT_EQ(WS_EV_ERROR, ev.type);
	ws_dec_data_done(&d, dst, 0);
	ws_dec_data_done(&d, dst, 1);
	ASSERT_EQ(0, ws_dec_parse(&d, s, sizeof(s), &ev));
	ASSERT_EQ(WS_EV_ERROR, ev.type);
	ASSERT_EQ(WS_CLOSE_PROTOCOL, ev.close_code);

	/* Bytes consumed outside payload are a caller bug: 1011. */
	ws_dec_init(&d, CLIENT);
	ws_dec_data_done(&d, dst, 1);
	ASSERT_EQ(0, ws_dec_parse(&d, s, sizeof(s), &ev));
	ASSERT_EQ(WS_EV_ERROR, ev.type);
	ASSERT_EQ(WS_CLOSE_INTERNAL, ev.close_code);
}

/* ---- close frames ----------------------------------------------------- */

struct close_case {
	const char *name;
	u8 len;
	u8 pl[16];
	enum ws_ev_type type;
	u16 code;
};

static const struct close_case close_cases[] = {
	{ "empty", 0, {}, WS_EV_CLOSE, 1005 },
	{ "1000", 2, { 0x03, 0xe8 }, WS_EV_CLOSE, 1000 },
	{ "1000 reason", 5, { 0x03, 0xe8, 'b', 'y', 'e' }, WS_EV_CLOSE, 1000 },
	{ "1003", 2, { 0x03, 0xeb }, WS_EV_CLOSE, 1003 },
	{ "1007", 2, { 0x03, 0xef }, WS_EV_CLOSE, 1007 },
	{ "1011", 2, { 0x03, 0xf3 }, WS_EV_CLOSE, 1011 },
	{ "1014", 2, { 0x03, 0xf6 }, WS_EV_CLOSE, 1014 },
	{ "3000", 2, { 0x0b, 0xb8 }, WS_EV_CLOSE, 3000 },
	{ "4999", 2, { 0x13, 0x87 }, WS_EV_CLOSE, 4999 },
	{ "utf8 reason", 11, { 0x03, 0xe8, 0xc3, 0xa9, 0xe2, 0x82, 0xac,
			       0xf0, 0x9d, 0x84, 0x9e }, WS_EV_CLOSE, 1000 },
	{ "one byte", 1, { 0x03 }, WS_EV_ERROR, 1002 },
	{ "code 0", 2, { 0x00, 0x00 }, WS_EV_ERROR, 1002 },
	{ "code 999", 2, { 0x03, 0xe7 }, WS_EV_ERROR, 1002 },
	{ "code 1004", 2, { 0x03, 0xec }, WS_EV_ERROR, 1002 },
	{ "code 1005", 2, { 0x03, 0xed }, WS_EV_ERROR, 1002 },
	{ "code 1006", 2, { 0x03, 0xee }, WS_EV_ERROR, 1002 },
	{ "code 1015", 2, { 0x03, 0xf7 }, WS_EV_ERROR, 1002 },
	{ "code 1016", 2, { 0x03, 0xf8 }, WS_EV_ERROR, 1002 },
	{ "code 2999", 2, { 0x0b, 0xb7 }, WS_EV_ERROR, 1002 },
	{ "code 5000", 2, { 0x13, 0x88 }, WS_EV_ERROR, 1002 },
	{ "code 65535", 2, { 0xff, 0xff }, WS_EV_ERROR, 1002 },
	{ "overlong", 4, { 0x03, 0xe8, 0xc0, 0x80 }, WS_EV_ERROR, 1007 },
	{ "surrogate", 5, { 0x03, 0xe8, 0xed, 0xa0, 0x80 }, WS_EV_ERROR, 1007 },
	{ "above 10ffff", 6, { 0x03, 0xe8, 0xf4, 0x90, 0x80, 0x80 },
	  WS_EV_ERROR, 1007 },
	{ "truncated", 4, { 0x03, 0xe8, 0xe2, 0x82 }, WS_EV_ERROR, 1007 },
	{ "lone continuation", 3, { 0x03, 0xe8, 0x80 }, WS_EV_ERROR, 1007 },
	{ "0xff", 3, { 0x03, 0xe8, 0xff }, WS_EV_ERROR, 1007 },
};

TEST(close_frames)
{
	static const u8 key[4] = { 0x5a, 0xa5, 0x0f, 0xf0 };
	size_t i;
	int role;

	for (i = 0; i < sizeof(close_cases) / sizeof(close_cases[0]); i++) {
		const struct close_case *c = &close_cases[i];

		for (role = 0; role < 2; role++) {
			struct run want = { 0 };
			u8 s[64];
			size_t n;
			const char *diff;

			n = mk_frame(s, 0x88, LEN_AUTO, c->len,
				     role ? key : NULL, c->pl);
			/* Bytes after a close are never consumed. */
			s[n] = 0x82;
			s[n + 1] = 0x00;
			if (c->type == WS_EV_CLOSE)
				run_add_ev(&want, c->type, c->code,
					   c->len > 2 ? c->pl + 2 : NULL,
					   c->len > 2 ? c->len - 2 : 0);
			else
				want.nev = -1;	/* checked below */
			want.consumed = n;

			if (c->type == WS_EV_CLOSE) {
				diff = feed_all_ways(role, s, n + 2, &want,
						     true);
				if (diff)
					TH_LOG("%s role %d: %s", c->name, role,
					       diff);
				ASSERT_EQ(NULL, diff);
			} else {
				struct run got = { 0 };

				feed(role, s, n + 2, SPLIT_BYTE, 0, 0, &got);
				ASSERT_EQ(NULL, got.problem);
				ASSERT_EQ(1, got.nev);
				ASSERT_EQ(WS_EV_ERROR, got.ev[0].type);
				if (got.ev[0].code != c->code)
					TH_LOG("%s: code %u", c->name,
					       got.ev[0].code);
				ASSERT_EQ(c->code, got.ev[0].code);
				ASSERT_EQ(n, got.consumed);
				run_reset(&got);
			}
			run_reset(&want);
		}
	}
}

/* A longer ping first leaves bytes behind the reason in the buffer. */
TEST(close_reason_is_c_string)
{
	u8 s[32];
	struct ws_event ev;
	struct ws_dec d;
	size_t n, p;

	p = mk_frame(s, 0x89, LEN_AUTO, 10, NULL, (const u8 *)"0123456789");
	n = p + mk_frame(s + p, 0x88, LEN_AUTO, 5, NULL,
			 (const u8 *)"\x0f\xa0" "abc");
	ws_dec_init(&d, CLIENT);
	ASSERT_EQ(p, ws_dec_parse(&d, s, n, &ev));
	ASSERT_EQ(WS_EV_PING, ev.type);
	ASSERT_EQ(n - p, ws_dec_parse(&d, s + p, n - p, &ev));
	ASSERT_EQ(WS_EV_CLOSE, ev.type);
	ASSERT_EQ(4000, ev.close_code);
	ASSERT_EQ(3, ev.reason_len);
	ASSERT_STREQ("abc", ev.reason);
	ASSERT_EQ(5, ev.payload_len);
}

TEST(close_one_byte_reason)
{
	static const u8 s[] = { 0x88, 0x01, 0x03 };
	struct ws_event ev;
	struct ws_dec d;

	ws_dec_init(&d, CLIENT);
	ASSERT_EQ(3, ws_dec_parse(&d, s, sizeof(s), &ev));
	ASSERT_EQ(WS_EV_ERROR, ev.type);
	ASSERT_EQ(WS_CLOSE_PROTOCOL, ev.close_code);
	ASSERT_NE(NULL, strstr(ev.reason, "1-byte"));
}

/* ---- protocol violations ---------------------------------------------- */

struct bad_case {
	const char *name;
	bool role;
	u8 len;
	u8 s[32];
	size_t consumed;	/* bytes eaten when the error is reported */
	u16 code;
};

#define K 0x01, 0x02, 0x03, 0x04	/* a mask key */
#define Z8 0, 0, 0, 0, 0, 0, 0, 0

static const struct bad_case bad_cases[] = {
	{ "rsv1", SERVER, 6, { 0xc2, 0x80, K }, 2, 1002 },
	{ "rsv2", SERVER, 6, { 0xa2, 0x80, K }, 2, 1002 },
	{ "rsv3", SERVER, 6, { 0x92, 0x80, K }, 2, 1002 },
	{ "rsv on control", CLIENT, 2, { 0xc9, 0x00 }, 2, 1002 },
	{ "text", SERVER, 6, { 0x81, 0x80, K }, 2, 1002 },
	{ "text client", CLIENT, 3, { 0x81, 0x01, 'a' }, 2, 1002 },
	{ "ping 126 (16-bit form)", SERVER, 8, { 0x89, 0xfe, 0x00, 0x7e, K },
	  2, 1002 },
	{ "ping 64-bit form", CLIENT, 10, { 0x89, 0x7f, Z8 }, 2, 1002 },
	{ "ping not fin", SERVER, 6, { 0x09, 0x80, K }, 2, 1002 },
	{ "pong not fin", CLIENT, 2, { 0x0a, 0x00 }, 2, 1002 },
	{ "close not fin", CLIENT, 4, { 0x08, 0x02, 0x03, 0xe8 }, 2, 1002 },
	{ "unmasked to server", SERVER, 3, { 0x82, 0x01, 'x' }, 2, 1002 },
	{ "masked to client", CLIENT, 7, { 0x82, 0x81, K, 'x' }, 2, 1002 },
	{ "unmasked ping to server", SERVER, 2, { 0x89, 0x00 }, 2, 1002 },
	{ "continuation first", SERVER, 6, { 0x80, 0x80, K }, 2, 1002 },
	{ "continuation after end", SERVER, 12,
	  { 0x82, 0x80, K, 0x80, 0x80, K }, 8, 1002 },
	{ "binary inside fragmented", SERVER, 13,
	  { 0x02, 0x81, K, 'a', 0x82, 0x80, K }, 9, 1002 },
	{ "binary inside fragmented after ping", CLIENT, 6,
	  { 0x02, 0x00, 0x89, 0x00, 0x02, 0x00 }, 6, 1002 },
	{ "non-minimal 16", CLIENT, 4, { 0x82, 0x7e, 0x00, 0x7d }, 4, 1002 },
	{ "non-minimal 16 zero", CLIENT, 4, { 0x82, 0x7e, 0x00, 0x00 }, 4,
	  1002 },
	{ "non-minimal 64", CLIENT, 10, { 0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff,
	  0xff }, 10, 1002 },
	{ "non-minimal 64 small", SERVER, 14, { 0x82, 0xff, 0, 0, 0, 0, 0, 0,
	  0, 5, K }, 14, 1002 },
	{ "64-bit top bit", CLIENT, 10, { 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0,
	  0 }, 10, 1002 },
	{ "64-bit all ones", CLIENT, 10, { 0x02, 0x7f, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff }, 10, 1002 },
};

static void check_bad(struct __test_metadata *_metadata,
		      const struct bad_case *c)
{
	enum split mode;

	for (mode = SPLIT_WHOLE; mode <= SPLIT_BYTE; mode++) {
		struct run got = { 0 };

		feed(c->role, c->s, c->len, mode, 0, 0, &got);
		if (got.problem || got.nev < 1 ||
		    got.ev[got.nev - 1].type != WS_EV_ERROR ||
		    got.ev[got.nev - 1].code != c->code ||
		    got.consumed != c->consumed)
			TH_LOG("%s mode %d: problem %s nev %d consumed %zu",
			       c->name, mode, got.problem, got.nev,
			       got.consumed);
		ASSERT_EQ(NULL, got.problem);
		ASSERT_LE(1, got.nev);
		ASSERT_EQ(WS_EV_ERROR, got.ev[got.nev - 1].type);
		ASSERT_EQ(c->code, got.ev[got.nev - 1].code);
		ASSERT_EQ(c->consumed, got.consumed);
		run_reset(&got);
	}
}

TEST(violations)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		check_bad(_metadata, &bad_cases[i]);
}

TEST(unknown_opcodes)
{
	static const u8 ops[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };
	size_t i;
	int fin;

	for (i = 0; i < sizeof(ops); i++) {
		for (fin = 0; fin < 2; fin++) {
			struct bad_case c = {
				.name = "unknown opcode", .role = SERVER,
				.len = 6, .s = { (u8)(fin << 7 | ops[i]), 0x80,
						 K },
				.consumed = 2, .code = 1002,
			};

			check_bad(_metadata, &c);
		}
	}
}

/* The error text is static and says what went wrong. */
TEST(error_reason_text)
{
	static const u8 s[] = { 0x81, 0x00 };
	struct ws_event ev;
	struct ws_dec d;

	ws_dec_init(&d, CLIENT);
	ASSERT_EQ(2, ws_dec_parse(&d, s, sizeof(s), &ev));
	ASSERT_EQ(WS_EV_ERROR, ev.type);
	ASSERT_EQ(WS_CLOSE_PROTOCOL, ev.close_code);
	ASSERT_NE(NULL, strstr(ev.reason, "text"));
	ASSERT_EQ(strlen(ev.reason), ev.reason_len);
}

/* ---- encoder ---------------------------------------------------------- */

TEST(header_bytes)
{
	static const u8 key[4] = { 1, 2, 3, 4 };
	static const u8 h5[] = { 0x82, 0x05 };
	static const u8 h125[] = { 0x82, 0x7d };
	static const u8 h126[] = { 0x82, 0x7e, 0x00, 0x7e };
	static const u8 h65535[] = { 0x82, 0x7e, 0xff, 0xff };
	static const u8 h65536[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0 };
	static const u8 h1m_cont_masked[] = { 0x00, 0xff, 0, 0, 0, 0, 0, 0x10,
					      0, 0, 1, 2, 3, 4 };
	static const u8 hmax[] = { 0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff,
				   0xff, 0xff, 0xff };
	static const u8 hclose[] = { 0x88, 0x82, 1, 2, 3, 4 };
	u8 out[WS_MAX_HEADER];

	ASSERT_EQ(2, ws_frame_header(out, WS_OP_BINARY, true, 5, NULL));
	ASSERT_EQ(0, memcmp(out, h5, 2));
	ASSERT_EQ(2, ws_frame_header(out, WS_OP_BINARY, true, 125, NULL));
	ASSERT_EQ(0, memcmp(out, h125, 2));
	ASSERT_EQ(4, ws_frame_header(out, WS_OP_BINARY, true, 126, NULL));
	ASSERT_EQ(0, memcmp(out, h126, 4));
	ASSERT_EQ(4, ws_frame_header(out, WS_OP_BINARY, true, 65535, NULL));
	ASSERT_EQ(0, memcmp(out, h65535, 4));
	ASSERT_EQ(10, ws_frame_header(out, WS_OP_BINARY, true, 65536, NULL));
	ASSERT_EQ(0, memcmp(out, h65536, 10));
	ASSERT_EQ(14, ws_frame_header(out, WS_OP_CONT, false, 1 << 20, key));
	ASSERT_EQ(0, memcmp(out, h1m_cont_masked, 14));
	ASSERT_EQ(10, ws_frame_header(out, WS_OP_BINARY, true,
				      0x7fffffffffffffffULL, NULL));
	ASSERT_EQ(0, memcmp(out, hmax, 10));
	ASSERT_EQ(6, ws_frame_header(out, WS_OP_CLOSE, true, 2, key));
	ASSERT_EQ(0, memcmp(out, hclose, 6));
	ASSERT_EQ(0, ws_frame_header(out, WS_OP_BINARY, true,
				     0x8000000000000000ULL, NULL));
	ASSERT_EQ(0, ws_frame_header(out, 16, true, 1, NULL));

	ASSERT_EQ(2, ws_close_payload(out, 1002));
	ASSERT_EQ(0x03, out[0]);
	ASSERT_EQ(0xea, out[1]);
}

/* Encoder output (header + ws_mask_copy payload) decodes to the input. */
TEST(encode_decode_round_trip)
{
	static const u64 lens[] = { 0, 1, 7, 125, 126, 4096, 65535, 65536,
				    131075 };
	static const u8 key[4] = { 0x9c, 0x31, 0x07, 0xe2 };
	unsigned int seed = 3;
	size_t i, k;
	int role;

	for (role = 0; role < 2; role++) {
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			size_t len = (size_t)lens[i], h;
			u8 *pl = malloc(len + 1), *s = malloc(len + 14);
			struct run want = { 0 };
			const char *diff;

			for (k = 0; k < len; k++)
				pl[k] = (u8)rand_r(&seed);
			h = ws_frame_header(s, WS_OP_BINARY, true, len,
					    role ? key : NULL);
			if (role) {
				/* Mask in two pieces: the phase must carry. */
				ws_mask_copy(s + h, pl, len / 3, key, 0);
				ws_mask_copy(s + h + len / 3, pl + len / 3,
					     len - len / 3, key, len / 3);
			} else {
				memcpy(s + h, pl, len);
			}
			run_add_data(&want, pl, len);
			want.consumed = h + len;
			diff = feed_all_ways(role, s, h + len, &want, len < 130);
			if (diff)
				TH_LOG("len %zu role %d: %s", len, role, diff);
			ASSERT_EQ(NULL, diff);
			run_reset(&want);
			free(pl);
			free(s);
		}
	}
}

TEST(mask_copy_matches_definition)
{
	static const u8 key[4] = { 0x12, 0x34, 0x56, 0x78 };
	static const u64 offs[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11,
				    (1ULL << 40) + 3, ~0ULL };
	/* Up to three 64-byte blocks plus a tail: both loops and the seam. */
	u8 src[216], dst[216], ref[216], inplace[216];
	size_t i, len, algn;

	for (i = 0; i < sizeof(src); i++)
		src[i] = (u8)(i * 31 + 5);
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (len = 0; len <= 208; len++) {
			for (algn = 0; algn < 8; algn++) {
				size_t k;

				for (k = 0; k < len; k++)
					ref[k] = src[algn + k] ^
						 key[(offs[i] + k) % 4];
				memset(dst, 0, sizeof(dst));
				ws_mask_copy(dst + algn, src + algn, len, key,
					     offs[i]);
				ASSERT_EQ(0, memcmp(dst + algn, ref, len));
				/* Nothing written outside [algn, algn+len). */
				for (k = 0; k < algn; k++)
					ASSERT_EQ(0, dst[k]);
				for (k = algn + len; k < sizeof(dst); k++)
					ASSERT_EQ(0, dst[k]);
				memcpy(inplace, src, sizeof(src));
				ws_mask_copy(inplace + algn, inplace + algn,
					     len, key, offs[i]);
				ASSERT_EQ(0, memcmp(inplace + algn, ref, len));
			}
		}
	}
}

/*
 * An empty payload may come without a buffer (an empty close frame):
 * nothing is read or written, and no pointer arithmetic on NULL happens
 * (clang's UBSan, make unit-clang, reports NULL + 0).
 */
TEST(mask_copy_empty_without_buffers)
{
	static const u8 key[4] = { 1, 2, 3, 4 };
	u8 buf[4] = { 9, 9, 9, 9 };

	ws_mask_copy(NULL, NULL, 0, key, 0);
	ws_mask_copy(buf, NULL, 0, key, 3);
	EXPECT_EQ(0, memcmp(buf, "\x09\x09\x09\x09", 4));
}

/*
 * Userspace builds mask whole 64-byte blocks with AVX2 where the CPU has
 * it (lib/ws_mask_vec.c): check it is taken exactly then, and that what it
 * leaves is the tail ws_mask_copy() finishes.
 */
TEST(mask_vec_takes_whole_blocks_with_avx2)
{
	const u64 kw = 0x0403020104030201ULL;
	u8 src[200], dst[200];
	size_t i, want, n;

	for (i = 0; i < sizeof(src); i++)
		src[i] = (u8)(i * 7 + 1);
#if defined(__x86_64__)
	want = __builtin_cpu_supports("avx2") ? 192 : 0;
#else
	want = 0;
#endif
	memset(dst, 0, sizeof(dst));
	n = ws_mask_vec(dst, src, sizeof(src), kw);
	ASSERT_EQ(want, n);
	for (i = 0; i < n; i++)
		ASSERT_EQ(src[i] ^ (u8)(i % 4 + 1), dst[i]);
	for (; i < sizeof(dst); i++)
		ASSERT_EQ(0, dst[i]);
	ASSERT_EQ(0, ws_mask_vec(dst, src, 63, kw));
}

TEST_HARNESS_MAIN
