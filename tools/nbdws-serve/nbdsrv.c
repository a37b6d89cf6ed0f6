// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve: the NBD server state machine (see nbdsrv.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_be.h"
#include "nbd_uri.h"
#include "nbdsrv.h"

#define GREETING_LEN	18	/* NBDMAGIC, IHAVEOPT, handshake flags */
#define OPT_HDR_LEN	16	/* IHAVEOPT, option, length */
#define OPT_REPLY_LEN	20	/* magic, option, type, length */
#define EXPORT_NAME_REPLY_ZEROES 124

static int send_msg(struct nbdsrv *s, const void *msg, size_t len)
{
	int rc = s->ops.send(s->ops.ctx, msg, len);

	if (rc)
		return nbdws_err_set(&s->err, rc,
				     "sending a handshake reply failed: %s",
				     strerror(-rc));
	return 0;
}

int nbdsrv_start(struct nbdsrv *s, const struct nbdsrv_export *exp,
		 const struct nbdsrv_ops *ops)
{
	u8 greet[GREETING_LEN];

	memset(s, 0, sizeof(*s));
	s->exp = *exp;
	s->ops = *ops;
	s->state = NBDSRV_CFLAGS;
	s->opt_buf = malloc(NBDSRV_OPT_MAX);
	if (!s->opt_buf)
		return nbdws_err_set(&s->err, -ENOMEM, "out of memory");
	put_be64(greet, NBDP_INIT_PASSWD);
	put_be64(greet + 8, NBDP_IHAVEOPT);
	put_be16(greet + 16, NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES);
	return send_msg(s, greet, sizeof(greet));
}

void sreq_free(struct sreq *r)
{
	if (!r)
		return;
	free(r->data);
	free(r);
}

void nbdsrv_free(struct nbdsrv *s)
{
	sreq_free(s->cur);
	s->cur = NULL;
	free(s->opt_buf);
	s->opt_buf = NULL;
}

size_t nbdsrv_want(struct nbdsrv *s, u8 **dst)
{
	switch (s->state) {
	case NBDSRV_CFLAGS:
		*dst = s->hdr + s->have;
		return 4 - s->have;
	case NBDSRV_OPT_HDR:
		*dst = s->hdr + s->have;
		return OPT_HDR_LEN - s->have;
	case NBDSRV_OPT_DATA:
		*dst = s->opt_buf + s->have;
		return s->opt_len - s->have;
	case NBDSRV_OPT_SKIP:
		/* Dropped bytes go to the option buffer, overwritten. */
		*dst = s->opt_buf;
		return s->skip_left < NBDSRV_OPT_MAX ? s->skip_left :
						       NBDSRV_OPT_MAX;
	case NBDSRV_REQ:
		*dst = s->hdr + s->have;
		return NBDP_REQUEST_SIZE - s->have;
	case NBDSRV_WDATA:
		*dst = s->cur->data + s->have;
		return s->cur->len - s->have;
	default:
		*dst = NULL;
		return 0;
	}
}

static int opt_reply(struct nbdsrv *s, u32 type, const void *data, u32 len)
{
	u8 buf[OPT_REPLY_LEN + 4 + NBD_MAX_STRING];

	if (len > sizeof(buf) - OPT_REPLY_LEN)
		return nbdws_err_set(&s->err, -EOVERFLOW, "reply too large");
	put_be64(buf, NBDP_OPT_REPLY_MAGIC);
	put_be32(buf + 8, s->opt);
	put_be32(buf + 12, type);
	put_be32(buf + 16, len);
	if (len)
		memcpy(buf + OPT_REPLY_LEN, data, len);
	return send_msg(s, buf, OPT_REPLY_LEN + (size_t)len);
}

static int reply_info_export(struct nbdsrv *s)
{
	u8 d[12];

	put_be16(d, NBDP_INFO_EXPORT);
	put_be64(d + 2, s->exp.size);
	put_be16(d + 10, s->exp.tflags);
	return opt_reply(s, NBDP_REP_INFO, d, sizeof(d));
}

static int reply_info_block_size(struct nbdsrv *s)
{
	u8 d[14];

	put_be16(d, NBDP_INFO_BLOCK_SIZE);
	put_be32(d + 2, NBDSRV_BLOCK_MIN);
	put_be32(d + 6, NBDSRV_BLOCK_PREF);
	put_be32(d + 10, NBDSRV_BLOCK_MAX);
	return opt_reply(s, NBDP_REP_INFO, d, sizeof(d));
}

static int reply_info_name(struct nbdsrv *s, const u8 *name, u32 nlen)
{
	u8 d[2 + NBD_MAX_STRING];

	put_be16(d, NBDP_INFO_NAME);
	memcpy(d + 2, name, nlen);
	return opt_reply(s, NBDP_REP_INFO, d, 2 + nlen);
}

/* NBD_OPT_GO and NBD_OPT_INFO: name, info requests; INFOs, then ACK. */
static int opt_go_info(struct nbdsrv *s)
{
	const u8 *d = s->opt_buf;
	bool want_bs = false, want_name = false;
	u32 nlen, i;
	u16 nreq;
	int rc;

	if (s->opt_len < 6)
		return opt_reply(s, NBDP_REP_ERR_INVALID, NULL, 0);
	nlen = get_be32(d);
	if (nlen > NBD_MAX_STRING || (u64)nlen + 6 > s->opt_len)
		return opt_reply(s, NBDP_REP_ERR_INVALID, NULL, 0);
	nreq = get_be16(d + 4 + nlen);
	if ((u64)nlen + 6 + 2ULL * nreq != s->opt_len)
		return opt_reply(s, NBDP_REP_ERR_INVALID, NULL, 0);
	for (i = 0; i < nreq; i++) {
		u16 t = get_be16(d + 6 + nlen + (size_t)2 * i);

		if (t == NBDP_INFO_BLOCK_SIZE)
			want_bs = true;
		else if (t == NBDP_INFO_NAME)
			want_name = true;
		/* Others (description) we have nothing for: ignored. */
	}
	rc = reply_info_export(s);
	if (!rc && want_bs)
		rc = reply_info_block_size(s);
	if (!rc && want_name)
		rc = reply_info_name(s, d + 4, nlen);
	if (!rc)
		rc = opt_reply(s, NBDP_REP_ACK, NULL, 0);
	if (!rc && s->opt == NBDP_OPT_GO) {
		s->transmission = true;
		s->state = NBDSRV_REQ;
	}
	return rc;
}

static int opt_export_name(struct nbdsrv *s)
{
	u8 d[10 + EXPORT_NAME_REPLY_ZEROES] = { 0 };

	/* No error reply exists for EXPORT_NAME: a bad one ends it all. */
	if (s->opt_len > NBD_MAX_STRING)
		return nbdws_err_set(&s->err, -EPROTO,
				     "the client sent an export name of %u bytes",
				     s->opt_len);
	put_be64(d, s->exp.size);
	put_be16(d + 8, s->exp.tflags);
	s->transmission = true;
	s->state = NBDSRV_REQ;
	return send_msg(s, d, s->no_zeroes ? 10 : sizeof(d));
}

/* LIST: the one export there is, under the default name "". */
static int opt_list(struct nbdsrv *s)
{
	u8 d[4] = { 0 };
	int rc;

	if (s->opt_len)
		return opt_reply(s, NBDP_REP_ERR_INVALID, NULL, 0);
	rc = opt_reply(s, NBDP_REP_SERVER, d, sizeof(d));
	return rc ? rc : opt_reply(s, NBDP_REP_ACK, NULL, 0);
}

static int do_option(struct nbdsrv *s)
{
	int rc;

	s->state = NBDSRV_OPT_HDR;
	s->have = 0;
	switch (s->opt) {
	case NBDP_OPT_EXPORT_NAME:
		return opt_export_name(s);
	case NBDP_OPT_GO:
	case NBDP_OPT_INFO:
		return opt_go_info(s);
	case NBDP_OPT_LIST:
		return opt_list(s);
	case NBDP_OPT_ABORT:
		rc = opt_reply(s, NBDP_REP_ACK, NULL, 0);
		s->state = NBDSRV_END;
		return rc;
	default:
		return opt_reply(s, NBDP_REP_ERR_UNSUP, NULL, 0);
	}
}

static int opt_header(struct nbdsrv *s)
{
	u64 magic = get_be64(s->hdr);

	if (magic != NBDP_IHAVEOPT)
		return nbdws_err_set(&s->err, -EPROTO,
				     "the client sent an option with bad magic 0x%016llx",
				     (unsigned long long)magic);
	if (++s->options > NBDSRV_MAX_OPTIONS)
		return nbdws_err_set(&s->err, -EPROTO,
				     "the client sent more than %d options",
				     NBDSRV_MAX_OPTIONS);
	s->opt = get_be32(s->hdr + 8);
	s->opt_len = get_be32(s->hdr + 12);
	s->have = 0;
	if (s->opt_len > NBDSRV_OPT_SKIP_MAX)
		return nbdws_err_set(&s->err, -EPROTO,
				     "the client sent option %u with %u bytes of data",
				     s->opt, s->opt_len);
	if (s->opt_len > NBDSRV_OPT_MAX) {
		s->skip_left = s->opt_len;
		s->state = NBDSRV_OPT_SKIP;
		return 0;
	}
	if (!s->opt_len)
		return do_option(s);
	s->state = NBDSRV_OPT_DATA;
	return 0;
}

static int client_flags(struct nbdsrv *s)
{
	u32 f = get_be32(s->hdr);

	if (!(f & NBDP_FLAG_C_FIXED_NEWSTYLE))
		return nbdws_err_set(&s->err, -EPROTO,
				     "the client does not speak fixed newstyle NBD");
	if (f & ~(u32)(NBDP_FLAG_C_FIXED_NEWSTYLE | NBDP_FLAG_C_NO_ZEROES))
		return nbdws_err_set(&s->err, -EPROTO,
				     "the client sent unknown flags 0x%x", f);
	s->no_zeroes = f & NBDP_FLAG_C_NO_ZEROES;
	s->state = NBDSRV_OPT_HDR;
	s->have = 0;
	return 0;
}

static struct sreq *new_req(struct nbdsrv *s)
{
	struct sreq *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->flags = get_be16(s->hdr + 4);
	r->type = get_be16(s->hdr + 6);
	r->cookie = get_be64(s->hdr + 8);
	r->offset = get_be64(s->hdr + 16);
	r->len = get_be32(s->hdr + 24);
	return r;
}

static bool in_bounds(const struct nbdsrv *s, const struct sreq *r)
{
	return r->offset <= s->exp.size && r->len <= s->exp.size - r->offset;
}

/* The NBD error a request gets before any I/O, or 0 to do it. */
static u32 check_req(const struct nbdsrv *s, const struct sreq *r)
{
	bool ro = s->exp.tflags & NBDP_FLAG_READ_ONLY;

	switch (r->type) {
	case NBDP_CMD_READ:
		if (!r->len || r->len > NBDSRV_BLOCK_MAX)
			return NBDP_EINVAL;
		return in_bounds(s, r) ? 0 : NBDP_EINVAL;
	case NBDP_CMD_WRITE:
		if (ro)
			return NBDP_EPERM;
		return in_bounds(s, r) ? 0 : NBDP_ENOSPC;
	case NBDP_CMD_FLUSH:
		return 0;
	case NBDP_CMD_TRIM:
		if (ro)
			return NBDP_EPERM;
		return in_bounds(s, r) ? 0 : NBDP_EINVAL;
	case NBDP_CMD_WRITE_ZEROES:
		if (ro)
			return NBDP_EPERM;
		return in_bounds(s, r) ? 0 : NBDP_ENOSPC;
	default:
		return NBDP_EINVAL;
	}
}

static int submit(struct nbdsrv *s, struct sreq *r)
{
	s->requests++;
	s->ops.submit(s->ops.ctx, r);
	return 0;
}

static int request(struct nbdsrv *s)
{
	u32 magic = get_be32(s->hdr);
	struct sreq *r;

	s->have = 0;
	if (magic != NBDP_REQUEST_MAGIC)
		return nbdws_err_set(&s->err, -EPROTO,
				     "the client sent a request with bad magic 0x%08x",
				     magic);
	if (get_be16(s->hdr + 6) == NBDP_CMD_DISC) {
		s->disc = true;
		s->state = NBDSRV_END;
		return 0;
	}
	r = new_req(s);
	if (!r)
		return nbdws_err_set(&s->err, -ENOMEM, "out of memory");
	/* A payload too large to buffer cannot be skipped safely either. */
	if (r->type == NBDP_CMD_WRITE && r->len > NBDSRV_BLOCK_MAX) {
		u32 len = r->len;

		free(r);
		return nbdws_err_set(&s->err, -EPROTO,
				     "the client sent a write of %u bytes, more than the %u announced",
				     len, NBDSRV_BLOCK_MAX);
	}
	r->error = check_req(s, r);
	if (r->type == NBDP_CMD_READ && !r->error) {
		r->data = malloc(WS_MAX_HEADER + NBDP_SIMPLE_REPLY_SIZE +
				 (size_t)r->len);
		if (!r->data)
			r->error = NBDP_ENOMEM;
	}
	if (r->type == NBDP_CMD_WRITE && r->len) {
		/* Read even when refused: the payload follows regardless. */
		r->data = malloc(r->len);
		if (!r->data) {
			free(r);
			return nbdws_err_set(&s->err, -ENOMEM,
					     "out of memory for a write of %u bytes",
					     get_be32(s->hdr + 24));
		}
		s->cur = r;
		s->state = NBDSRV_WDATA;
		return 0;
	}
	r->done_early = r->error != 0;
	return submit(s, r);
}

int nbdsrv_input(struct nbdsrv *s, size_t n)
{
	struct sreq *r;

	switch (s->state) {
	case NBDSRV_CFLAGS:
		s->have += n;
		return s->have == 4 ? client_flags(s) : 0;
	case NBDSRV_OPT_HDR:
		s->have += n;
		return s->have == OPT_HDR_LEN ? opt_header(s) : 0;
	case NBDSRV_OPT_DATA:
		s->have += n;
		return s->have == s->opt_len ? do_option(s) : 0;
	case NBDSRV_OPT_SKIP:
		s->skip_left -= (u32)n;
		if (s->skip_left)
			return 0;
		s->state = NBDSRV_OPT_HDR;
		s->have = 0;
		return opt_reply(s, NBDP_REP_ERR_TOO_BIG, NULL, 0);
	case NBDSRV_REQ:
		s->have += n;
		return s->have == NBDP_REQUEST_SIZE ? request(s) : 0;
	case NBDSRV_WDATA:
		s->have += n;
		if (s->have < s->cur->len)
			return 0;
		r = s->cur;
		s->cur = NULL;
		s->have = 0;
		s->state = NBDSRV_REQ;
		r->done_early = r->error != 0;
		return submit(s, r);
	default:
		return 0;
	}
}

static void reply_release(struct wsc_tx *tx)
{
	sreq_free((struct sreq *)tx);
}

int sreq_reply(struct sreq *r)
{
	bool with_data = r->type == NBDP_CMD_READ && !r->error;
	u8 *hdr = with_data ? r->data + WS_MAX_HEADER :
			      r->small + WS_MAX_HEADER;
	size_t plen = NBDP_SIMPLE_REPLY_SIZE + (with_data ? r->len : 0);
	u8 *frame;

	put_be32(hdr, NBDP_SIMPLE_REPLY_MAGIC);
	put_be32(hdr + 4, r->error);
	put_be64(hdr + 8, r->cookie);
	frame = wsc_frame_in_place(hdr, plen, WS_OP_BINARY);
	if (!frame)
		return -EIO;
	r->tx.data = frame;
	r->tx.len = (size_t)(hdr + plen - frame);
	r->tx.release = reply_release;
	return 0;
}

u32 nbdsrv_errno_to_nbd(int err)
{
	switch (-err) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
	case EACCES:
		return NBDP_EPERM;
	case ENOMEM:
		return NBDP_ENOMEM;
	case EINVAL:
		return NBDP_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBDP_ENOSPC;
	case EOVERFLOW:
		return NBDP_EOVERFLOW;
	case EOPNOTSUPP:
		return NBDP_ENOTSUP;
	default:
		return NBDP_EIO;
	}
}
