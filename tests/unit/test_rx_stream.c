// SPDX-License-Identifier: GPL-2.0
/*
 * The codec pair as the kernel's receive path uses it: NBD replies (with
 * read payload) carried in WebSocket frames cut at arbitrary places, with
 * several replies per frame, replies spanning frames and messages, and
 * control frames between fragments. The model in fuzz/rx_sim.h moves each
 * byte straight to its destination and unmasks it there; the tests check
 * that every read buffer holds exactly the bytes the server sent, that
 * error replies complete with the right errno, and that WebSocket and
 * plain transports agree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "../../fuzz/rx_sim.h"

struct buf {
	u8 *p;
	size_t len;
	size_t cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = realloc(b->p, b->cap);
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static u8 pattern(int slot, u32 i)
{
	return (u8)(i * 7 + slot * 31 + (i >> 8));
}

/* Reply header for @slot (hand-written big-endian), then its payload. */
static void reply(struct buf *b, int slot, u32 error)
{
	u64 cookie = RX_COOKIE_BASE | (u64)slot;
	u8 h[16] = { 0x67, 0x44, 0x66, 0x98 };
	u32 i;
	int k;

	for (k = 0; k < 4; k++)
		h[4 + k] = (u8)(error >> (24 - 8 * k));
	for (k = 0; k < 8; k++)
		h[8 + k] = (u8)(cookie >> (56 - 8 * k));
	put(b, h, 16);
	for (i = 0; !error && i < rx_slot_len[slot]; i++) {
		u8 v = pattern(slot, i);

		put(b, &v, 1);
	}
}

/* Replies for slots 0..6 (up to 64 KiB reads) and two error replies. */
static void nbd_stream(struct buf *b)
{
	int s;

	for (s = 0; s < 7; s++)
		reply(b, s, 0);
	reply(b, 3, NBDP_ENOSPC);
	reply(b, 5, 12345);	/* not an NBD error number */
}

static void frame(struct buf *b, u8 op, bool fin, const u8 *p, size_t n,
		  bool masked, unsigned int *seed)
{
	u8 h[WS_MAX_HEADER], key[4], *m = malloc(n + 1);
	int k;

	for (k = 0; k < 4; k++)
		key[k] = (u8)rand_r(seed);
	put(b, h, ws_frame_header(h, op, fin, n, masked ? key : NULL));
	if (masked)
		ws_mask_copy(m, p, n, key, 0);
	else if (n)
		memcpy(m, p, n);
	put(b, m, n);
	free(m);
}

/* Cut @nbd into random frames and messages, pings and pongs between. */
static void ws_wrap(struct buf *out, const struct buf *nbd, bool masked,
		    unsigned int seed)
{
	size_t off = 0;
	bool in_msg = false;

	while (off < nbd->len) {
		size_t n = (size_t)rand_r(&seed) % (rand_r(&seed) % 4 ? 40 :
						     70000);
		bool fin = rand_r(&seed) % 3 == 0;

		if (n > nbd->len - off)
			n = nbd->len - off;
		if (off + n == nbd->len)
			fin = true;
		frame(out, in_msg ? WS_OP_CONT : WS_OP_BINARY, fin,
		      nbd->p + off, n, masked, &seed);
		in_msg = !fin;
		off += n;
		if (rand_r(&seed) % 4 == 0)
			frame(out, rand_r(&seed) % 2 ? WS_OP_PING : WS_OP_PONG,
			      true, (const u8 *)"keepalive", 9, masked, &seed);
	}
}

/* Feed in random pieces (each at the end of a heap block, for ASan). */
static void feed(struct rx_ws *w, struct rx_sim *plain, const struct buf *s,
		 unsigned int seed)
{
	u8 *block = malloc(s->len + 1);
	size_t pos = 0;

	while (pos < s->len) {
		size_t n = 1 + (size_t)rand_r(&seed) % (seed % 2 ? 9 : 5000);
		u8 *c;

		if (n > s->len - pos)
			n = s->len - pos;
		c = block + s->len - n;
		memcpy(c, s->p + pos, n);
		if (w)
			rx_ws_chunk(w, c, n);
		else
			rx_plain_chunk(plain, c, n);
		pos += n;
	}
	free(block);
}

/* What nbd_stream() must leave behind. */
static const char *check_sim(const struct rx_sim *r)
{
	u32 i;
	int s;

	if (r->out.end)
		return "connection ended";
	if (r->out.completed != 9 || r->out.failed != 2)
		return "completions";
	for (s = 1; s < 7; s++)
		for (i = 0; i < rx_slot_len[s]; i++)
			if (r->dst[s][i] != pattern(s, i))
				return "payload bytes";
	if (r->done[0] != 1 || r->done[3] != 2 || r->done[5] != 2)
		return "per-slot completions";
	if (r->last_errno[3] != -ENOSPC || r->last_errno[5] != -EIO)
		return "errno";
	return NULL;
}

static struct rx_ws ws;
static struct rx_sim plain;

TEST(plain_stream)
{
	struct buf nbd = { 0 };
	unsigned int seed;

	nbd_stream(&nbd);
	for (seed = 1; seed <= 20; seed++) {
		rx_sim_init(&plain);
		feed(NULL, &plain, &nbd, seed);
		ASSERT_EQ(NULL, check_sim(&plain));
		ASSERT_EQ(nbd.len, plain.out.consumed);
	}
	free(nbd.p);
}

TEST(ws_stream_both_roles)
{
	struct buf nbd = { 0 };
	unsigned int seed;
	struct rx_outcome ref;

	nbd_stream(&nbd);
	rx_sim_init(&plain);
	rx_plain_chunk(&plain, nbd.p, nbd.len);
	ref = plain.out;

	for (seed = 1; seed <= 60; seed++) {
		bool role = seed & 1;
		struct buf s = { 0 };
		const char *why;

		ws_wrap(&s, &nbd, role, seed * 7919);
		rx_ws_init(&ws, role);
		feed(&ws, NULL, &s, seed);
		why = check_sim(&ws.sim);
		if (why)
			TH_LOG("seed %u: %s", seed, why);
		ASSERT_EQ(NULL, why);
		ASSERT_EQ(s.len, ws.stream);
		ASSERT_EQ(ref.hash, ws.sim.out.hash);
		ASSERT_EQ(ref.consumed, ws.sim.out.consumed);
		free(s.p);
	}
	free(nbd.p);
}

/* A close frame in the middle of a read payload ends the stream there. */
TEST(close_mid_read)
{
	static const u8 cl[] = { 0x03, 0xe9, 'g', 'o', 'n', 'e' };
	struct buf nbd = { 0 }, s = { 0 };
	unsigned int seed = 5;

	reply(&nbd, 4, 0);			/* 4096-byte read */
	frame(&s, WS_OP_BINARY, false, nbd.p, 1000, true, &seed);
	frame(&s, WS_OP_CLOSE, true, cl, sizeof(cl), true, &seed);
	frame(&s, WS_OP_CONT, true, nbd.p + 1000, nbd.len - 1000, true,
	      &seed);

	rx_ws_init(&ws, true);
	feed(&ws, NULL, &s, 3);
	ASSERT_EQ(1, ws.sim.out.end);
	ASSERT_EQ(1001, ws.sim.out.close_code);
	ASSERT_EQ(0, ws.sim.out.completed);
	ASSERT_EQ(1000, ws.sim.out.consumed);
	ASSERT_EQ(4, ws.sim.cur);
	free(nbd.p);
	free(s.p);
}

/* A protocol violation between two replies: the first one completes. */
TEST(violation_after_reply)
{
	static const u8 text[] = { 0x81, 0x00 };
	struct buf nbd = { 0 }, s = { 0 };
	unsigned int seed = 9;

	reply(&nbd, 2, 0);
	frame(&s, WS_OP_BINARY, true, nbd.p, nbd.len, false, &seed);
	put(&s, text, sizeof(text));
	reply(&s, 1, 0);			/* never reached */

	rx_ws_init(&ws, false);
	feed(&ws, NULL, &s, 4);
	ASSERT_EQ(2, ws.sim.out.end);
	ASSERT_EQ(WS_CLOSE_PROTOCOL, ws.sim.out.close_code);
	ASSERT_EQ(1, ws.sim.out.completed);
	ASSERT_EQ(pattern(2, 2), ws.sim.dst[2][2]);
	free(nbd.p);
	free(s.p);
}

/* Bad NBD magic inside valid frames kills the NBD side, not the codec. */
TEST(bad_magic_inside_frames)
{
	struct buf nbd = { 0 }, s = { 0 };
	unsigned int seed = 11;

	reply(&nbd, 1, 0);
	reply(&nbd, 2, 0);
	nbd.p[17 + 1] ^= 0xff;		/* second reply's magic */
	ws_wrap(&s, &nbd, true, 77);
	rx_ws_init(&ws, true);
	feed(&ws, NULL, &s, seed);
	ASSERT_EQ(3, ws.sim.out.end);
	ASSERT_EQ(1, ws.sim.out.completed);
	ASSERT_EQ(17 + 4, ws.sim.out.consumed);
	free(nbd.p);
	free(s.p);
}

/* A reply whose cookie is not in flight kills the connection. */
TEST(unknown_cookie)
{
	struct buf nbd = { 0 };

	reply(&nbd, 1, 0);
	nbd.p[8] ^= 1;			/* cookie high byte */
	rx_sim_init(&plain);
	rx_plain_chunk(&plain, nbd.p, nbd.len);
	ASSERT_EQ(3, plain.out.end);
	ASSERT_EQ(0, plain.out.completed);
	free(nbd.p);
}

TEST_HARNESS_MAIN
