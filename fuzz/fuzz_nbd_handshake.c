// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: the NBD client handshake (lib/nbd_handshake.c)
 * against a hostile server whose whole transcript is the fuzz input.
 *
 * Input: byte 0 picks
 *   bits 0-1  the call: nbd_handshake_go, _info, _list, _go again;
 *   bits 2-3  the transport: 0, 1 a plain nbd_xport serving the input;
 *             2 a client ws_stream reading the input as raw WebSocket
 *             frames; 3 the same, with the harness framing the input
 *             into unmasked binary frames (cut by byte 1) with pings
 *             between them, so that plain transcripts reach the
 *             handshake through lib/ws_stream.c too;
 *   bit 4     the export name: "" or "disk";
 *   bit 5     writes fail after (byte 1 & 7) of them succeeded.
 * Byte 1 seeds the cuts; the rest is what the server sends. Writes are
 * discarded (but counted). Contracts checked:
 *   - the result is 0 or an errno the header documents (or the injected
 *     write error), with a message free of control bytes;
 *   - no call reads or writes without bound (libFuzzer's timeout is the
 *     hang detector; the write count is checked too);
 *   - on success the export is sane: size within the block layer's
 *     signed range, block sizes powers of two in order and within the
 *     NBD limits, a name, strings without control bytes;
 *   - a listing has at most NBD_MAX_REPLIES entries, all printable.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "nbd_handshake.h"
#include "nbd_uri.h"
#include "ws_frame.h"
#include "ws_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct server {
	const u8 *p;		/* what the server sends */
	size_t len, pos;
	unsigned int rng;
	unsigned int writes, fail_after;
	bool fail_writes;
};

static int xp_read(void *ctx, void *buf, size_t len)
{
	struct server *s = ctx;

	if (len > s->len - s->pos) {
		s->pos = s->len;
		return -ECONNRESET;
	}
	memcpy(buf, s->p + s->pos, len);
	s->pos += len;
	return 0;
}

static int count_write(struct server *s, size_t len)
{
	fz_check(len > 0 && len <= WS_MAX_HEADER + WS_STREAM_MAX_SEND,
		 "write length");
	/* Greeting answer, options, abort, DISC, pongs and close: bounded. */
	fz_check(++s->writes <= 64 + 2 * s->len, "unbounded writes");
	if (s->fail_writes && s->writes > s->fail_after)
		return -EPIPE;
	return 0;
}

static int xp_write(void *ctx, const void *buf, size_t len)
{
	(void)buf;
	return count_write(ctx, len);
}

/* ws_io read: what is left, in pieces of 1..64 bytes. */
static ssize_t io_read(void *ctx, void *buf, size_t len)
{
	struct server *s = ctx;
	size_t n = 1 + fz_xorshift(&s->rng) % 64;

	if (s->pos == s->len)
		return 0;
	if (n > len)
		n = len;
	if (n > s->len - s->pos)
		n = s->len - s->pos;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	return (ssize_t)n;
}

static int io_write(void *ctx, const void *buf, size_t len)
{
	(void)buf;
	return count_write(ctx, len);
}

/* Frame @in as a server would: unmasked binary frames with pings. */
static u8 *frame_all(const u8 *in, size_t len, unsigned int seed,
		     size_t *out_len)
{
	u8 *out = malloc(len + (len + 1) * (2 * WS_MAX_HEADER + 4));
	unsigned int rng = seed | 1;
	size_t o = 0, off = 0;

	if (!out)
		return NULL;
	while (off < len) {
		size_t n = 1 + fz_xorshift(&rng) % (1 + (seed & 0xff));

		if (n > len - off)
			n = len - off;
		o += ws_frame_header(out + o, WS_OP_BINARY, true, n, NULL);
		memcpy(out + o, in + off, n);
		o += n;
		off += n;
		if (fz_xorshift(&rng) % 4 == 0) {
			o += ws_frame_header(out + o, WS_OP_PING, true, 2, NULL);
			memcpy(out + o, "hb", 2); /* NOLINT(bugprone-not-null-terminated-result) */
			o += 2;
		}
	}
	*out_len = o;
	return out;
}

static int message_ok(const char *m)
{
	for (; *m; m++)
		if ((unsigned char)*m < 0x20 || *m == 0x7f)
			return 0;
	return 1;
}

static void check_info(const struct nbd_export_info *i)
{
	fz_check(i->size <= (u64)INT64_MAX, "export size");
	fz_check(i->block_min && !(i->block_min & (i->block_min - 1)) &&
		 i->block_min <= 65536, "minimum block size");
	fz_check(i->block_pref && !(i->block_pref & (i->block_pref - 1)) &&
		 i->block_pref >= i->block_min &&
		 i->block_pref <= (64U << 20), "preferred block size");
	fz_check(i->block_max >= i->block_min, "maximum block size");
	fz_check(i->block_size_given ||
		 (i->block_min == NBD_DEFAULT_BLOCK_MIN &&
		  i->block_pref == NBD_DEFAULT_BLOCK_PREF &&
		  i->block_max == NBD_DEFAULT_BLOCK_MAX), "default block sizes");
	fz_check(i->name && strlen(i->name) <= NBD_MAX_STRING &&
		 message_ok(i->name), "export name");
	fz_check(!i->description || (strlen(i->description) <= NBD_MAX_STRING &&
				     message_ok(i->description)),
		 "export description");
}

static int known_error(int rc)
{
	switch (rc) {
	case -ENOENT: case -EACCES: case -EOPNOTSUPP: case -EPROTO:
	case -ECONNRESET: case -EINVAL: case -ESHUTDOWN: case -E2BIG:
	case -ENOMEM: case -EPIPE:
		return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server srv = { 0 };
	struct nbdws_err err = { "" };
	struct nbd_export_info info;
	struct nbd_export_list list;
	struct nbd_xport x;
	struct ws_stream ws;
	struct ws_io io;
	const char *export;
	u8 *framed = NULL, *copy;
	int call, mode, rc;

	if (size < 2)
		return 0;
	call = data[0] & 3;
	mode = (data[0] >> 2) & 3;
	export = data[0] & 0x10 ? "disk" : "";
	srv.fail_writes = data[0] & 0x20;
	srv.fail_after = data[1] & 7;
	srv.rng = 0x9e3779b9u ^ data[1];
	/* An exact-size copy, so ASan sees any read past the transcript. */
	copy = malloc(size - 2 + 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 2, size - 2);
	srv.p = copy;
	srv.len = size - 2;
	if (mode == 3) {
		framed = frame_all(copy, srv.len, data[1], &srv.len);
		if (!framed) {
			free(copy);
			return 0;
		}
		srv.p = framed;
	}

	if (mode < 2) {
		x.ctx = &srv;
		x.read = xp_read;
		x.write = xp_write;
	} else {
		io.ctx = &srv;
		io.read = io_read;
		io.write = io_write;
		fz_check(!ws_stream_init(&ws, &io, WS_ROLE_CLIENT, NULL, 0),
			 "ws_stream_init");
		ws_stream_xport(&ws, &x);
	}

	if (call == 2) {
		rc = nbd_handshake_list(&x, &list, &err);
		if (!rc) {
			size_t i;

			fz_check(list.n <= NBD_MAX_REPLIES + 1, "list length");
			for (i = 0; i < list.n; i++)
				fz_check(list.v[i].name && list.v[i].description &&
					 strlen(list.v[i].name) <= NBD_MAX_STRING &&
					 strlen(list.v[i].description) <= NBD_MAX_STRING &&
					 message_ok(list.v[i].name) &&
					 message_ok(list.v[i].description),
					 "list entry");
			nbd_export_list_free(&list);
		}
	} else {
		rc = (call == 1 ? nbd_handshake_info : nbd_handshake_go)
			(&x, export, &info, &err);
		if (!rc) {
			check_info(&info);
			nbd_export_info_free(&info);
		}
	}
	fz_check(rc == 0 || known_error(rc), "result");
	fz_check(!rc || (err.msg[0] && message_ok(err.msg)),
		 "message missing or holds control bytes");

	if (mode >= 2) {
		u8 *rest = NULL;
		size_t rest_len = 0;
		int d = ws_stream_detach(&ws, &rest, &rest_len);

		fz_check(d == 0 || d == -EPROTO || d == -ENOMEM, "detach");
		fz_check(d || rest_len <= WS_STREAM_BUF, "detached length");
		fz_check(!d || !rest, "detach failed but handed bytes");
		free(rest);
		ws_stream_free(&ws);
	}
	free(framed);
	free(copy);
	return 0;
}
