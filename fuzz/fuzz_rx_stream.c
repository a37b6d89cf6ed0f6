// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: arbitrary bytes through the receive path of nbdws.ko,
 * modelled in rx_sim.h on top of the shared codec (common/ws_frame.c and
 * common/nbd_wire.c, the very files the module is built from).
 *
 * Input: byte 0 picks the WebSocket role (bit 0) and how the stream is cut
 * into pieces (bits 1-2); byte 1 seeds the piece sizes; the rest is the
 * stream. Each input is run:
 *   1. through the WebSocket path, whole, recording the payload handed on;
 *   2. through the WebSocket path again, cut into pieces: the outcome must
 *      be identical (events, replies, payload bytes, bytes consumed);
 *   3. through the plain path (no WebSocket), whole and cut, which must
 *      agree with each other;
 *   4. the payload recorded in 1 through the plain path: the NBD outcome
 *      must be the same as the WebSocket path's.
 * Any difference, or any broken decoder contract, aborts: a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rx_sim.h"

static u32 xorshift(u32 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Size of the next piece for cut pattern @pat. */
static size_t piece(int pat, u32 *rng, size_t pos, size_t len, u8 seed)
{
	switch (pat) {
	case 0:
		return 1;
	case 1:
		return 1 + xorshift(rng) % (1 + seed);
	case 2: {
		size_t at = len * seed / 256;

		return pos < at ? at - pos : len - pos;
	}
	default:
		return 1 + xorshift(rng) % 3;
	}
}

/*
 * Feed @s in pieces, each copied to the very end of a heap block of the
 * stream's size, so that ASan catches any read past a piece.
 */
static void feed_cut(struct rx_ws *w, struct rx_sim *plain, const u8 *s,
		     size_t len, int pat, u8 seed)
{
	u32 rng = 0x9e3779b9u ^ seed;
	u8 *block = malloc(len ? len : 1);
	size_t pos = 0;

	while (pos < len) {
		size_t n = piece(pat, &rng, pos, len, seed);
		u8 *c;

		/*
		 * Odd seeds read frame headers and control payloads the way
		 * nbdws.ko does: exactly the bytes the decoder asks for.
		 */
		if (w && (seed & 1) && ws_dec_want(&w->dec))
			n = ws_dec_want(&w->dec);

		if (n > len - pos)
			n = len - pos;
		c = block + len - n;
		memcpy(c, s + pos, n);
		if (w)
			rx_ws_chunk(w, c, n);
		else
			rx_plain_chunk(plain, c, n);
		pos += n;
	}
	free(block);
}

static int same_nbd(const struct rx_outcome *a, const struct rx_outcome *b)
{
	return a->consumed == b->consumed && a->completed == b->completed &&
	       a->failed == b->failed && a->data_bytes == b->data_bytes &&
	       a->hash == b->hash;
}

static int same_all(const struct rx_outcome *a, const struct rx_outcome *b)
{
	return same_nbd(a, b) && a->end == b->end &&
	       a->close_code == b->close_code && a->ws_hash == b->ws_hash;
}

static struct rx_ws whole, cut;
static struct rx_sim plain_whole, plain_cut, plain_tap;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const u8 *s;
	size_t len;
	bool role;
	int pat;
	u8 seed;

	if (size < 2)
		return 0;
	role = data[0] & 1;
	pat = (data[0] >> 1) & 3;
	seed = data[1];
	s = data + 2;
	len = size - 2;
	if (pat == 0 && len > 4096)
		pat = 1;	/* byte by byte only where that stays cheap */

	/* 1. WebSocket, whole, with a tap on the payload. */
	rx_ws_init(&whole, role);
	whole.tap = malloc(len + 1);
	whole.tap_cap = len + 1;
	if (len)
		rx_ws_chunk(&whole, s, len);

	/* 2. WebSocket, cut. */
	rx_ws_init(&cut, role);
	feed_cut(&cut, NULL, s, len, pat, seed);
	if (!same_all(&whole.sim.out, &cut.sim.out) ||
	    whole.pings != cut.pings ||
	    /* How far a dead NBD stream was read depends on the cuts. */
	    (whole.sim.out.end != 3 && whole.stream != cut.stream)) {
		fprintf(stderr, "ws whole/cut differ\n");
		abort();
	}

	/* 3. Plain, whole and cut. */
	rx_sim_init(&plain_whole);
	rx_plain_chunk(&plain_whole, s, len);
	rx_sim_init(&plain_cut);
	feed_cut(NULL, &plain_cut, s, len, pat, seed);
	if (!same_all(&plain_whole.out, &plain_cut.out)) {
		fprintf(stderr, "plain whole/cut differ\n");
		abort();
	}

	/* 4. The WebSocket payload, unframed, through the plain path. */
	rx_sim_init(&plain_tap);
	rx_plain_chunk(&plain_tap, whole.tap, whole.tap_len);
	if (!same_nbd(&whole.sim.out, &plain_tap.out) ||
	    (whole.sim.out.end == 3) != (plain_tap.out.end == 3)) {
		fprintf(stderr, "ws payload and plain path differ\n");
		abort();
	}
	free(whole.tap);
	return 0;
}
