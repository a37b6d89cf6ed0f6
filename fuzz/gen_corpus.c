// SPDX-License-Identifier: GPL-2.0
/*
 * Writes the seed corpus of the fuzz targets (nothing binary is committed):
 *   gen_corpus RX_DIR RT_DIR
 * RX_DIR gets streams for fuzz_rx_stream (2 control bytes, then the
 * stream): valid NBD replies for every in-flight slot, plain and inside
 * WebSocket frames of every length form, split across frames and
 * fragments with control frames between them, in both roles, plus every
 * protocol violation the decoder knows. RT_DIR gets a few inputs for
 * fuzz_codec_roundtrip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rx_sim.h"

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
		if (!b->p)
			exit(1);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_byte(struct buf *b, u8 v)
{
	put(b, &v, 1);
}

static int nseed;

static void save(const char *dir, const char *name, u8 mode, u8 seed,
		 const struct buf *b)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%03d-%s", dir, nseed++, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputc(mode, f);
	fputc(seed, f);
	if (b->len && fwrite(b->p, 1, b->len, f) != b->len)
		exit(1);
	fclose(f);
}

/* A simple reply for @slot, followed by its read payload if any. */
static void nbd_reply(struct buf *b, int slot, u32 error)
{
	u8 h[NBDP_SIMPLE_REPLY_SIZE];
	u64 cookie = RX_COOKIE_BASE | (u64)slot;
	u32 i;
	int k;

	for (k = 0; k < 4; k++) {
		h[k] = (u8)(NBDP_SIMPLE_REPLY_MAGIC >> (24 - 8 * k));
		h[4 + k] = (u8)(error >> (24 - 8 * k));
	}
	for (k = 0; k < 8; k++)
		h[8 + k] = (u8)(cookie >> (56 - 8 * k));
	put(b, h, sizeof(h));
	if (error)
		return;
	for (i = 0; i < rx_slot_len[slot]; i++)
		put_byte(b, (u8)(i * 13 + slot));
}

/* Frame @n bytes of @p; masked when @masked (the peer is a client). */
static void frame(struct buf *b, u8 opcode, bool fin, const u8 *p, size_t n,
		  bool masked)
{
	static const u8 key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	u8 h[WS_MAX_HEADER];
	size_t hl = ws_frame_header(h, opcode, fin, n, masked ? key : NULL);
	u8 *m = malloc(n + 1);

	put(b, h, hl);
	if (masked)
		ws_mask_copy(m, p, n, key, 0);
	else if (n)
		memcpy(m, p, n);
	put(b, m, n);
	free(m);
}

/* @nbd as binary messages of frames of at most @fsz bytes, @per_msg
 * frames per message, with a ping after every @ping_every frames.
 */
static void wrap(struct buf *b, const struct buf *nbd, size_t fsz,
		 int per_msg, int ping_every, bool masked)
{
	size_t off = 0;
	int f = 0;

	while (off < nbd->len) {
		size_t n = nbd->len - off < fsz ? nbd->len - off : fsz;
		bool first = f % per_msg == 0;
		bool fin = (f % per_msg == per_msg - 1) || off + n == nbd->len;

		frame(b, first ? WS_OP_BINARY : WS_OP_CONT, fin, nbd->p + off,
		      n, masked);
		off += n;
		f++;
		if (fin)
			f = 0;
		else if (ping_every && f % ping_every == 0)
			frame(b, WS_OP_PING, true, (const u8 *)"hb", 2, masked);
	}
}

static void close_frame(struct buf *b, u16 code, bool masked)
{
	u8 p[8];
	size_t n = ws_close_payload(p, code);

	p[n++] = 'b';
	p[n++] = 'y';
	p[n++] = 'e';
	frame(b, WS_OP_CLOSE, true, p, n, masked);
}

static void rx_seeds(const char *dir)
{
	static const u8 bad[][8] = {
		{ 0xc2, 0x80, 1, 2, 3, 4 },		/* rsv1 */
		{ 0x81, 0x80, 1, 2, 3, 4 },		/* text */
		{ 0x83, 0x80, 1, 2, 3, 4 },		/* opcode 3 */
		{ 0x8b, 0x80, 1, 2, 3, 4 },		/* opcode 0xb */
		{ 0x09, 0x80, 1, 2, 3, 4 },		/* ping, no fin */
		{ 0x89, 0xfe, 0, 126, 1, 2, 3, 4 },	/* ping 126 */
		{ 0x80, 0x80, 1, 2, 3, 4 },		/* lone continuation */
		{ 0x82, 0x00 },				/* unmasked */
		{ 0x88, 0x81, 1, 2, 3, 4, 5 },		/* close 1 byte */
		{ 0x82, 0xfe, 0, 5, 1, 2, 3, 4 },	/* non-minimal 16 */
	};
	static const u8 top_bit[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0,
				      1, 2, 3, 4 };
	struct buf nbd = { 0 }, b = { 0 };
	size_t i;
	int s, role;

	/* Every slot up to 4097 bytes, success and error, as one stream. */
	for (s = 0; s < 6; s++) {
		nbd_reply(&nbd, s, 0);
		nbd_reply(&nbd, s, s ? NBDP_EIO : NBDP_ENOSPC);
	}

	save(dir, "plain-replies", 0x04, 7, &nbd);
	for (role = 0; role < 2; role++) {
		bool masked = role;

		b.len = 0;
		wrap(&b, &nbd, 1 << 20, 1, 0, masked);
		close_frame(&b, 1000, masked);
		save(dir, "ws-one-frame", (u8)(role | 0x02), 31, &b);

		b.len = 0;
		wrap(&b, &nbd, 7, 5, 2, masked);
		save(dir, "ws-fragments-pings", (u8)(role | 0x06), 3, &b);

		b.len = 0;
		wrap(&b, &nbd, 300, 2, 1, masked);
		frame(&b, WS_OP_PONG, true, NULL, 0, masked);
		save(dir, "ws-16bit-frames", (u8)(role | 0x00), 200, &b);

		b.len = 0;
		frame(&b, WS_OP_BINARY, false, NULL, 0, masked);
		frame(&b, WS_OP_CONT, true, nbd.p, 16, masked);
		close_frame(&b, 1001, masked);
		save(dir, "ws-empty-first", (u8)(role | 0x02), 1, &b);
	}

	/* A 64 KiB read: the 64-bit length form. */
	b.len = 0;
	nbd.len = 0;
	nbd_reply(&nbd, 6, 0);
	wrap(&b, &nbd, 1 << 20, 1, 0, true);
	save(dir, "ws-64bit-frame", 0x03, 77, &b);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b.len = 0;
		put(&b, bad[i], sizeof(bad[i]));
		save(dir, "ws-violation", 0x01, (u8)i, &b);
	}
	b.len = 0;
	put(&b, top_bit, sizeof(top_bit));
	save(dir, "ws-top-bit", 0x01, 0, &b);

	free(nbd.p);
	free(b.p);
}

static void rt_seeds(const char *dir)
{
	struct buf b = { 0 };
	int i, k;

	for (i = 0; i < 8; i++) {
		b.len = 0;
		for (k = 0; k < 64 + 40 * i; k++)
			put_byte(&b, (u8)(k * (i + 3) + i));
		save(dir, "roundtrip", (u8)i, (u8)(i * 37), &b);
	}
	free(b.p);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s RX_DIR RT_DIR\n", argv[0]);
		return 2;
	}
	rx_seeds(argv[1]);
	rt_seeds(argv[2]);
	return 0;
}
