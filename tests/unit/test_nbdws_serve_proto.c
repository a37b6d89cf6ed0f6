// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve's NBD server machine (tools/nbdws-serve/nbdsrv.c) on its
 * own, fed scripted client bytes in pieces of every size: the greeting,
 * each option and its replies byte for byte (GO and INFO with their
 * information requests, EXPORT_NAME with and without the zeroes, LIST,
 * ABORT, unsupported options), a hostile client (bad magic, flags,
 * oversized options and writes, an endless option loop), request checks
 * (bounds, read-only, unknown commands, a refused write's payload still
 * consumed), and replies completed in reverse order, decoded as the
 * relay would: masked frames, a fresh key each, the right cookie and data.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "nbd_be.h"
#include "nbd_proto.h"
#include "nbd_wire.h"
#include "nbdsrv.h"
#include "ws_frame.h"

#define SIZE		((10U << 20) + 7)

struct rec {
	u8 out[65536];		/* handshake replies, concatenated */
	size_t out_len;
	unsigned int msgs;	/* one per send() */
	struct sreq *reqs[64];
	unsigned int nreq;
};

static int rec_send(void *ctx, const void *msg, size_t len)
{
	struct rec *r = ctx;

	if (r->out_len + len > sizeof(r->out))
		return -ENOSPC;
	memcpy(r->out + r->out_len, msg, len);
	r->out_len += len;
	r->msgs++;
	return 0;
}

static void rec_submit(void *ctx, struct sreq *q)
{
	struct rec *r = ctx;

	if (r->nreq < 64)
		r->reqs[r->nreq++] = q;
	else
		sreq_free(q);
}

/* Feed @len bytes in pieces of @piece; the first error, or 0. */
static int feed(struct nbdsrv *s, const void *buf, size_t len, size_t piece)
{
	const u8 *p = buf;

	while (len) {
		u8 *dst;
		size_t n = nbdsrv_want(s, &dst);
		int rc;

		if (!n)
			return -EPIPE;	/* the machine takes nothing more */
		if (n > piece)
			n = piece;
		if (n > len)
			n = len;
		memcpy(dst, p, n);
		rc = nbdsrv_input(s, n);
		if (rc)
			return rc;
		p += n;
		len -= n;
	}
	return 0;
}

static size_t opt_msg(u8 *out, u32 opt, const void *data, u32 len)
{
	put_be64(out, NBDP_IHAVEOPT);
	put_be32(out + 8, opt);
	put_be32(out + 12, len);
	if (len)
		memcpy(out + 16, data, len);
	return 16 + (size_t)len;
}

/* GO/INFO data: name, then @n info requests. */
static u32 go_data(u8 *out, const char *name, const u16 *req, u16 n)
{
	u32 nlen = (u32)strlen(name), i;

	put_be32(out, nlen);
	memcpy(out + 4, name, nlen);
	put_be16(out + 4 + nlen, n);
	for (i = 0; i < n; i++)
		put_be16(out + 6 + nlen + 2 * i, req[i]);
	return 6 + nlen + 2U * n;
}

/* One option reply at *off: checks its header, returns its data. */
static const u8 *opt_reply(struct rec *r, size_t *off, u32 opt, u32 type,
			   u32 *len)
{
	const u8 *p = r->out + *off;

	if (*off + 20 > r->out_len || get_be64(p) != NBDP_OPT_REPLY_MAGIC ||
	    get_be32(p + 8) != opt || get_be32(p + 12) != type)
		return NULL;
	*len = get_be32(p + 16);
	*off += 20 + *len;
	return *off <= r->out_len ? p + 20 : NULL;
}

FIXTURE(m) {
	struct nbdsrv s;
	struct rec r;
	struct nbdsrv_export exp;
};

FIXTURE_SETUP(m)
{
	struct nbdsrv_ops ops = {
		.ctx = &self->r, .send = rec_send, .submit = rec_submit,
	};

	memset(&self->r, 0, sizeof(self->r));
	self->exp.size = SIZE;
	self->exp.tflags = NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_SEND_FLUSH;
	ASSERT_EQ(0, nbdsrv_start(&self->s, &self->exp, &ops));
}

FIXTURE_TEARDOWN(m)
{
	unsigned int i;

	for (i = 0; i < self->r.nreq; i++)
		sreq_free(self->r.reqs[i]);
	nbdsrv_free(&self->s);
}

/* Greeting checked and consumed, client flags sent. */
static void begin(struct __test_metadata *_metadata,
		  FIXTURE_DATA(m) *self, u32 cflags)
{
	u8 f[4];

	ASSERT_EQ(18, self->r.out_len);
	ASSERT_EQ(NBDP_INIT_PASSWD, get_be64(self->r.out));
	ASSERT_EQ(NBDP_IHAVEOPT, get_be64(self->r.out + 8));
	ASSERT_EQ(NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES,
		  get_be16(self->r.out + 16));
	self->r.out_len = 0;
	self->r.msgs = 0;
	put_be32(f, cflags);
	ASSERT_EQ(0, feed(&self->s, f, 4, 1));
}

#define BEGIN(fl)	begin(_metadata, self, (fl))
#define CFLAGS		(NBDP_FLAG_C_FIXED_NEWSTYLE | NBDP_FLAG_C_NO_ZEROES)

TEST_F(m, go_answers_what_was_asked_byte_by_byte)
{
	static const u16 want[] = {
		NBDP_INFO_BLOCK_SIZE, NBDP_INFO_NAME, NBDP_INFO_DESCRIPTION,
	};
	u8 d[64], msg[128];
	size_t off = 0;
	const u8 *p;
	u32 len;

	BEGIN(CFLAGS);
	ASSERT_EQ(0, feed(&self->s, msg,
			  opt_msg(msg, NBDP_OPT_GO, d, go_data(d, "disk", want, 3)),
			  1));
	/* EXPORT, BLOCK_SIZE, NAME, ACK: four messages, no description. */
	EXPECT_EQ(4, self->r.msgs);
	p = opt_reply(&self->r, &off, NBDP_OPT_GO, NBDP_REP_INFO, &len);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(12, len);
	EXPECT_EQ(NBDP_INFO_EXPORT, get_be16(p));
	EXPECT_EQ(SIZE, get_be64(p + 2));
	EXPECT_EQ(self->exp.tflags, get_be16(p + 10));
	p = opt_reply(&self->r, &off, NBDP_OPT_GO, NBDP_REP_INFO, &len);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(14, len);
	EXPECT_EQ(NBDP_INFO_BLOCK_SIZE, get_be16(p));
	EXPECT_EQ(1, get_be32(p + 2));
	EXPECT_EQ(4096, get_be32(p + 6));
	EXPECT_EQ(32U << 20, get_be32(p + 10));
	p = opt_reply(&self->r, &off, NBDP_OPT_GO, NBDP_REP_INFO, &len);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(6, len);
	EXPECT_EQ(NBDP_INFO_NAME, get_be16(p));
	EXPECT_EQ(0, memcmp(p + 2, "disk", 4));
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_GO, NBDP_REP_ACK,
				  &len));
	EXPECT_EQ(0, len);
	EXPECT_EQ(self->r.out_len, off);
	EXPECT_TRUE(self->s.transmission);
	EXPECT_EQ(NBDSRV_REQ, self->s.state);
}

TEST_F(m, info_stays_in_negotiation_then_go)
{
	u8 d[64], msg[128];
	size_t off = 0;
	u32 len;

	BEGIN(CFLAGS);
	ASSERT_EQ(0, feed(&self->s, msg,
			  opt_msg(msg, NBDP_OPT_INFO, d, go_data(d, "", NULL, 0)),
			  7));
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_INFO, NBDP_REP_INFO,
				  &len));
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_INFO, NBDP_REP_ACK,
				  &len));
	EXPECT_FALSE(self->s.transmission);
	EXPECT_EQ(NBDSRV_OPT_HDR, self->s.state);
	ASSERT_EQ(0, feed(&self->s, msg,
			  opt_msg(msg, NBDP_OPT_GO, d, go_data(d, "", NULL, 0)),
			  7));
	EXPECT_TRUE(self->s.transmission);
}

TEST_F(m, export_name_with_zeroes)
{
	u8 msg[64];

	/* Without NO_ZEROES the reply carries 124 zero bytes. */
	BEGIN(NBDP_FLAG_C_FIXED_NEWSTYLE);
	ASSERT_EQ(0, feed(&self->s, msg,
			  opt_msg(msg, NBDP_OPT_EXPORT_NAME, "any", 3), 5));
	ASSERT_EQ(134, self->r.out_len);
	EXPECT_EQ(SIZE, get_be64(self->r.out));
	EXPECT_EQ(self->exp.tflags, get_be16(self->r.out + 8));
	EXPECT_EQ(NBDSRV_REQ, self->s.state);
}

TEST_F(m, export_name_without_zeroes)
{
	u8 msg[64];

	BEGIN(CFLAGS);
	ASSERT_EQ(0, feed(&self->s, msg,
			  opt_msg(msg, NBDP_OPT_EXPORT_NAME, NULL, 0), 64));
	EXPECT_EQ(10, self->r.out_len);
	EXPECT_TRUE(self->s.transmission);
}

TEST_F(m, list_unsupported_abort)
{
	static const u32 unsup[] = {
		NBDP_OPT_STARTTLS, NBDP_OPT_STRUCTURED_REPLY, 9, 99, 0x7fffffff,
	};
	u8 msg[64];
	size_t off = 0;
	const u8 *p;
	u32 len, i;

	BEGIN(CFLAGS);
	ASSERT_EQ(0, feed(&self->s, msg, opt_msg(msg, NBDP_OPT_LIST, NULL, 0),
			  3));
	p = opt_reply(&self->r, &off, NBDP_OPT_LIST, NBDP_REP_SERVER, &len);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(4, len);
	EXPECT_EQ(0, get_be32(p));	/* the default export, "" */
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_LIST, NBDP_REP_ACK,
				  &len));
	/* LIST takes no data. */
	ASSERT_EQ(0, feed(&self->s, msg, opt_msg(msg, NBDP_OPT_LIST, "x", 1),
			  3));
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_LIST,
				  NBDP_REP_ERR_INVALID, &len));
	for (i = 0; i < sizeof(unsup) / sizeof(unsup[0]); i++) {
		ASSERT_EQ(0, feed(&self->s, msg,
				  opt_msg(msg, unsup[i], "abc", 3), 2));
		ASSERT_NE(NULL, opt_reply(&self->r, &off, unsup[i],
					  NBDP_REP_ERR_UNSUP, &len));
	}
	EXPECT_EQ(NBDSRV_OPT_HDR, self->s.state);
	ASSERT_EQ(0, feed(&self->s, msg, opt_msg(msg, NBDP_OPT_ABORT, NULL, 0),
			  16));
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_ABORT, NBDP_REP_ACK,
				  &len));
	EXPECT_EQ(NBDSRV_END, self->s.state);
	EXPECT_FALSE(self->s.disc);
	EXPECT_EQ(-EPIPE, feed(&self->s, msg, 1, 1));
}

TEST_F(m, malformed_go_is_invalid)
{
	u8 d[64], msg[128];
	size_t off = 0;
	u32 len, n;

	BEGIN(CFLAGS);
	/* Name length past the data. */
	n = go_data(d, "abc", NULL, 0);
	put_be32(d, 200);
	ASSERT_EQ(0, feed(&self->s, msg, opt_msg(msg, NBDP_OPT_GO, d, n), 4));
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_GO,
				  NBDP_REP_ERR_INVALID, &len));
	/* More info requests announced than sent. */
	n = go_data(d, "abc", NULL, 0);
	put_be16(d + 7, 3);
	ASSERT_EQ(0, feed(&self->s, msg, opt_msg(msg, NBDP_OPT_GO, d, n), 4));
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_GO,
				  NBDP_REP_ERR_INVALID, &len));
	/* Too short to hold anything. */
	ASSERT_EQ(0, feed(&self->s, msg, opt_msg(msg, NBDP_OPT_GO, d, 3), 4));
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_GO,
				  NBDP_REP_ERR_INVALID, &len));
	EXPECT_FALSE(self->s.transmission);
}

TEST_F(m, oversized_option_skipped_or_fatal)
{
	u8 hdr[16], *junk = calloc(1, 100000);
	size_t off = 0;
	u32 len;

	ASSERT_NE(NULL, junk);
	BEGIN(CFLAGS);
	/* 100000 bytes: read past, answered TOO_BIG, negotiation goes on. */
	opt_msg(hdr, NBDP_OPT_GO, NULL, 0);
	put_be32(hdr + 12, 100000);
	ASSERT_EQ(0, feed(&self->s, hdr, 16, 16));
	ASSERT_EQ(0, feed(&self->s, junk, 100000, 4099));
	ASSERT_NE(NULL, opt_reply(&self->r, &off, NBDP_OPT_GO,
				  NBDP_REP_ERR_TOO_BIG, &len));
	EXPECT_EQ(NBDSRV_OPT_HDR, self->s.state);
	/* Over 1 MiB: not worth reading, the connection ends. */
	put_be32(hdr + 12, (1U << 20) + 1);
	EXPECT_EQ(-EPROTO, feed(&self->s, hdr, 16, 16));
	EXPECT_NE(NULL, strstr(self->s.err.msg, "bytes of data"));
	free(junk);
}

TEST_F(m, hostile_negotiation)
{
	u8 msg[32];

	BEGIN(CFLAGS);
	opt_msg(msg, NBDP_OPT_LIST, NULL, 0);
	msg[0] ^= 1;
	EXPECT_EQ(-EPROTO, feed(&self->s, msg, 16, 16));
	EXPECT_NE(NULL, strstr(self->s.err.msg, "bad magic"));
}

TEST_F(m, client_without_fixed_newstyle)
{
	u8 f[4];

	put_be32(f, 0);
	EXPECT_EQ(-EPROTO, feed(&self->s, f, 4, 4));
	EXPECT_NE(NULL, strstr(self->s.err.msg, "fixed newstyle"));
}

TEST_F(m, client_with_unknown_flags)
{
	u8 f[4];

	put_be32(f, NBDP_FLAG_C_FIXED_NEWSTYLE | 0x100);
	EXPECT_EQ(-EPROTO, feed(&self->s, f, 4, 4));
}

TEST_F(m, endless_options_are_cut)
{
	u8 msg[16];
	int i, rc = 0;

	BEGIN(CFLAGS);
	opt_msg(msg, 99, NULL, 0);
	for (i = 0; i <= NBDSRV_MAX_OPTIONS && !rc; i++) {
		self->r.out_len = 0;
		rc = feed(&self->s, msg, 16, 16);
	}
	EXPECT_EQ(-EPROTO, rc);
	EXPECT_EQ(NBDSRV_MAX_OPTIONS + 1, i);
}

static size_t req_msg(u8 *out, u16 type, u16 flags, u64 cookie, u64 off,
		      u32 len)
{
	struct nbd_wire_request rq = {
		.type = type, .flags = flags, .cookie = cookie,
		.offset = off, .length = len,
	};

	nbd_wire_encode_request(out, &rq);
	return NBDP_REQUEST_SIZE;
}

/* Into transmission with @tflags. */
static void go(struct __test_metadata *_metadata, FIXTURE_DATA(m) *self,
	       u16 tflags)
{
	u8 d[16], msg[64];

	self->s.exp.tflags = tflags;
	begin(_metadata, self, CFLAGS);
	ASSERT_EQ(0, feed(&self->s, msg,
			  opt_msg(msg, NBDP_OPT_GO, d, go_data(d, "", NULL, 0)),
			  64));
	ASSERT_EQ(NBDSRV_REQ, self->s.state);
}

TEST_F(m, requests_checked)
{
	u8 msg[64], data[1000];
	struct sreq *q;

	memset(data, 0x77, sizeof(data));
	go(_metadata, self, NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_READ_ONLY);
	/* In range: to the backend, buffer in place for the reply. */
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_READ, 0, 1, SIZE - 7, 7), 5));
	/* Past the end, by one byte and by wrapping around. */
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_READ, 0, 2, SIZE - 7, 8), 5));
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_READ, 0, 3, ~0ULL, 2), 5));
	/* A write on a read-only export: EPERM, its payload consumed. */
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_WRITE, 0, 4, 0, 1000), 5));
	ASSERT_EQ(0, feed(&self->s, data, 1000, 333));
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_CACHE, 0, 5, 0, 512), 28));
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_TRIM, 0, 6, 0, 512), 28));
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_FLUSH, 0, 7, 0, 0), 28));
	ASSERT_EQ(7, self->r.nreq);

	q = self->r.reqs[0];
	EXPECT_EQ(1, q->cookie);
	EXPECT_FALSE(q->done_early);
	EXPECT_NE(NULL, q->data);
	EXPECT_EQ(NBDP_EINVAL, self->r.reqs[1]->error);
	EXPECT_TRUE(self->r.reqs[1]->done_early);
	EXPECT_EQ(NBDP_EINVAL, self->r.reqs[2]->error);
	EXPECT_EQ(NBDP_EPERM, self->r.reqs[3]->error);
	EXPECT_EQ(4, self->r.reqs[3]->cookie);
	EXPECT_EQ(NBDP_EINVAL, self->r.reqs[4]->error);
	EXPECT_EQ(NBDP_EPERM, self->r.reqs[5]->error);
	EXPECT_EQ(0, self->r.reqs[6]->error);
	EXPECT_FALSE(self->r.reqs[6]->done_early);

	/* DISC ends it. */
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_DISC, 0, 8, 0, 0), 28));
	EXPECT_EQ(NBDSRV_END, self->s.state);
	EXPECT_TRUE(self->s.disc);
}

TEST_F(m, writable_write_reaches_backend_whole)
{
	u8 msg[64], data[5000];
	int i;

	for (i = 0; i < 5000; i++)
		data[i] = (u8)(i * 13);
	go(_metadata, self, NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_SEND_FUA);
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_WRITE, NBDP_CMD_FLAG_FUA, 9, 100,
				  5000), 28));
	EXPECT_EQ(0, self->r.nreq);	/* not before its payload */
	ASSERT_EQ(0, feed(&self->s, data, 5000, 1));
	ASSERT_EQ(1, self->r.nreq);
	EXPECT_EQ(0, self->r.reqs[0]->error);
	EXPECT_EQ(NBDP_CMD_FLAG_FUA, self->r.reqs[0]->flags);
	EXPECT_EQ(0, memcmp(self->r.reqs[0]->data, data, 5000));
	/* Past the end: ENOSPC. */
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_WRITE, 0, 10, SIZE, 1), 28));
	ASSERT_EQ(0, feed(&self->s, data, 1, 1));
	EXPECT_EQ(NBDP_ENOSPC, self->r.reqs[1]->error);
}

TEST_F(m, hostile_transmission)
{
	u8 msg[64];

	go(_metadata, self, NBDP_FLAG_HAS_FLAGS);
	/* A write larger than we said we take cannot be skipped safely. */
	EXPECT_EQ(-EPROTO, feed(&self->s, msg,
				req_msg(msg, NBDP_CMD_WRITE, 0, 1, 0,
					(32U << 20) + 1), 28));
	EXPECT_NE(NULL, strstr(self->s.err.msg, "more than"));
}

TEST_F(m, hostile_request_magic)
{
	u8 msg[64];

	go(_metadata, self, NBDP_FLAG_HAS_FLAGS);
	req_msg(msg, NBDP_CMD_READ, 0, 1, 0, 512);
	put_be32(msg, NBDP_SIMPLE_REPLY_MAGIC);
	EXPECT_EQ(-EPROTO, feed(&self->s, msg, 28, 3));
}

/* Decode one masked binary frame from @p: payload unmasked into @out. */
static size_t unframe(const u8 *p, size_t avail, u8 *out, size_t *plen,
		      u8 key[4])
{
	struct ws_dec d;
	struct ws_event ev;
	size_t used;

	ws_dec_init(&d, true);
	used = ws_dec_parse(&d, p, avail, &ev);
	if (ev.type != WS_EV_DATA)
		return 0;
	memcpy(key, d.mask, 4);
	*plen = (size_t)ws_dec_data_left(&d);
	if (used + *plen > avail)
		return 0;
	ws_dec_data_copy(&d, out, p + used, *plen);
	return used + *plen;
}

TEST_F(m, replies_in_any_order_masked)
{
	u8 msg[64], out[4096], keys[4][4];
	int i;

	go(_metadata, self, NBDP_FLAG_HAS_FLAGS);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, feed(&self->s, msg,
				  req_msg(msg, NBDP_CMD_READ, 0, 100 + i,
					  (u64)i * 1000, 1000), 28));
	ASSERT_EQ(0, feed(&self->s, msg,
			  req_msg(msg, NBDP_CMD_READ, 0, 200, SIZE, 1), 28));
	ASSERT_EQ(4, self->r.nreq);
	/* Complete the last first, as a slow disk would. */
	for (i = 3; i >= 0; i--) {
		struct sreq *q = self->r.reqs[i];
		size_t plen, used;

		if (!q->error)
			memset(sreq_read_buf(q), 'a' + i, q->len);
		ASSERT_EQ(0, sreq_reply(q));
		used = unframe(q->tx.data, q->tx.len, out, &plen, keys[i]);
		ASSERT_EQ(q->tx.len, used);
		ASSERT_EQ(NBDP_SIMPLE_REPLY_MAGIC, get_be32(out));
		EXPECT_EQ(q->cookie, get_be64(out + 8));
		if (i == 3) {
			/* Refused: header only, with the error. */
			EXPECT_EQ(16, plen);
			EXPECT_EQ(NBDP_EINVAL, get_be32(out + 4));
			continue;
		}
		ASSERT_EQ(16 + 1000, plen);
		EXPECT_EQ(0, get_be32(out + 4));
		EXPECT_EQ('a' + i, out[16]);
		EXPECT_EQ('a' + i, out[16 + 999]);
	}
	/* A fresh mask key per frame. */
	EXPECT_NE(0, memcmp(keys[0], keys[1], 4));
	EXPECT_NE(0, memcmp(keys[1], keys[2], 4));
	EXPECT_NE(0, memcmp(keys[2], keys[3], 4));
}

TEST_HARNESS_MAIN
