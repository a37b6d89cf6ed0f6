// SPDX-License-Identifier: GPL-2.0
/*
 * NBD newstyle negotiation, client side (see nbd_handshake.h).
 *
 * The server is not trusted: every reply header is checked against the
 * option it answers, payload lengths are bounded before anything is
 * allocated, and sizes/block sizes that make no sense are refused here so
 * that nbdws.ko never sees them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_be.h"
#include "nbd_handshake.h"
#include "nbd_proto.h"
#include "nbd_uri.h"
#include "nbd_wire.h"
#include "peer_text.h"

/* Export name and description are strings of at most this many bytes. */
#define NBD_MAX_STR		NBD_MAX_STRING
/* A preferred block size above this is nonsense, not a tuning hint. */
#define NBD_MAX_BLOCK_PREF	(64U << 20)
/* NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE payload lengths, type included. */
#define INFO_EXPORT_LEN		12
#define INFO_BLOCK_SIZE_LEN	14
/* Bytes of padding after the EXPORT_NAME reply without NO_ZEROES. */
#define EXPORT_NAME_ZEROES	124

struct hs {
	const struct nbd_xport *x;
	struct nbdws_err *err;
	u16 hs_flags;
	bool fixed;			/* fixed newstyle: options may be refused */
	bool no_zeroes;
	bool refused;			/* last option got an error reply */
};

struct opt_reply {
	u32 type;
	u32 len;
	u8 *data;			/* len bytes, NULL when len == 0 */
};

static const char *const tflag_names[16] = {
	[0] = "has-flags",
	[1] = "read-only",
	[2] = "flush",
	[3] = "fua",
	[4] = "rotational",
	[5] = "trim",
	[6] = "write-zeroes",
	[7] = "df",
	[8] = "multi-conn",
	[9] = "resize",
	[10] = "cache",
	[11] = "fast-zero",
};

const char *nbd_tflag_name(unsigned int bit)
{
	return bit < 16 ? tflag_names[bit] : NULL;
}

static const char *opt_name(u32 opt)
{
	switch (opt) {
	case NBDP_OPT_EXPORT_NAME:
		return "NBD_OPT_EXPORT_NAME";
	case NBDP_OPT_ABORT:
		return "NBD_OPT_ABORT";
	case NBDP_OPT_LIST:
		return "NBD_OPT_LIST";
	case NBDP_OPT_INFO:
		return "NBD_OPT_INFO";
	case NBDP_OPT_GO:
		return "NBD_OPT_GO";
	}
	return "option";
}

static int io_fail(struct hs *h, int rc, const char *what)
{
	if (rc == -ECONNRESET)
		return nbdws_err_set(h->err, rc,
				     "the server closed the connection while %s",
				     what);
	if (rc == -ETIMEDOUT)
		return nbdws_err_set(h->err, rc,
				     "timed out while %s: the server stopped answering",
				     what);
	return nbdws_err_set(h->err, rc, "error while %s: %s", what,
			     strerror(-rc));
}

static int hs_read(struct hs *h, void *buf, size_t len, const char *what)
{
	int rc = h->x->read(h->x->ctx, buf, len);

	return rc ? io_fail(h, rc, what) : 0;
}

static int hs_write(struct hs *h, const void *buf, size_t len,
		    const char *what)
{
	int rc = h->x->write(h->x->ctx, buf, len);

	return rc ? io_fail(h, rc, what) : 0;
}

static int greet(struct hs *h)
{
	u8 buf[18], cflags[4];
	u64 magic;
	u32 c = 0;
	int rc;

	rc = hs_read(h, buf, 16, "reading the server greeting");
	if (rc)
		return rc;
	magic = get_be64(buf);
	if (magic != NBDP_INIT_PASSWD)
		return nbdws_err_set(h->err, -EPROTO,
				     "not an NBD server (greeting starts with 0x%016" PRIx64 ", not NBDMAGIC)",
				     magic);
	magic = get_be64(buf + 8);
	if (magic == NBDP_OLDSTYLE_MAGIC)
		return nbdws_err_set(h->err, -EPROTO,
				     "the server speaks the oldstyle NBD handshake, which nbdws does not support: configure the server for newstyle negotiation");
	if (magic != NBDP_IHAVEOPT)
		return nbdws_err_set(h->err, -EPROTO,
				     "unknown NBD handshake magic 0x%016" PRIx64,
				     magic);
	rc = hs_read(h, buf + 16, 2, "reading the server handshake flags");
	if (rc)
		return rc;
	h->hs_flags = get_be16(buf + 16);
	h->fixed = h->hs_flags & NBDP_FLAG_FIXED_NEWSTYLE;
	h->no_zeroes = h->hs_flags & NBDP_FLAG_NO_ZEROES;
	if (h->fixed)
		c |= NBDP_FLAG_C_FIXED_NEWSTYLE;
	if (h->no_zeroes)
		c |= NBDP_FLAG_C_NO_ZEROES;
	put_be32(cflags, c);
	return hs_write(h, cflags, sizeof(cflags), "sending the client flags");
}

/* Send one option request as a single write (one message). */
static int send_option(struct hs *h, u32 opt, const u8 *data, u32 len)
{
	u8 *buf = malloc(16 + (size_t)len);
	int rc;

	if (!buf)
		return nbdws_err_set(h->err, -ENOMEM, "out of memory");
	put_be64(buf, NBDP_IHAVEOPT);
	put_be32(buf + 8, opt);
	put_be32(buf + 12, len);
	if (len)
		memcpy(buf + 16, data, len);
	rc = hs_write(h, buf, 16 + (size_t)len, "sending an option request");
	free(buf);
	return rc;
}

/*
 * Tell the server we are leaving (best effort: the outcome is already
 * decided, so a failure here must not replace the message in h->err).
 */
static void send_abort(const struct hs *h)
{
	struct hs quiet = *h;

	quiet.err = NULL;
	send_option(&quiet, NBDP_OPT_ABORT, NULL, 0);
}

/* Name length + name + info requests, as NBD_OPT_GO and _INFO take it. */
static int send_go_or_info(struct hs *h, u32 opt, const char *name)
{
	static const u16 reqs[] = {
		NBDP_INFO_NAME, NBDP_INFO_DESCRIPTION, NBDP_INFO_BLOCK_SIZE,
	};
	size_t nlen = strlen(name), i;
	size_t len = 4 + nlen + 2 + 2 * sizeof(reqs) / sizeof(reqs[0]);
	u8 *data, *p;
	int rc;

	if (nlen > NBD_MAX_STR)
		return nbdws_err_set(h->err, -EINVAL,
				     "export name longer than %d bytes",
				     NBD_MAX_STR);
	data = malloc(len);
	if (!data)
		return nbdws_err_set(h->err, -ENOMEM, "out of memory");
	put_be32(data, (u32)nlen);
	/* Names travel without a terminator: length-prefixed. */
	memcpy(data + 4, name, nlen); /* NOLINT(bugprone-not-null-terminated-result) */
	p = data + 4 + nlen;
	put_be16(p, sizeof(reqs) / sizeof(reqs[0]));
	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		put_be16(p + 2 + 2 * i, reqs[i]);
	rc = send_option(h, opt, data, (u32)len);
	free(data);
	return rc;
}

/* Read one option reply for @opt; caller frees r->data. */
static int read_reply(struct hs *h, u32 opt, struct opt_reply *r)
{
	u8 hdr[20];
	u64 magic;
	u32 ropt;
	int rc;

	r->data = NULL;
	rc = hs_read(h, hdr, sizeof(hdr), "reading an option reply");
	if (rc)
		return rc;
	magic = get_be64(hdr);
	ropt = get_be32(hdr + 8);
	r->type = get_be32(hdr + 12);
	r->len = get_be32(hdr + 16);
	if (magic != NBDP_OPT_REPLY_MAGIC)
		return nbdws_err_set(h->err, -EPROTO,
				     "bad option reply magic 0x%016" PRIx64 " from the server",
				     magic);
	if (ropt != opt)
		return nbdws_err_set(h->err, -EPROTO,
				     "the server answered option %" PRIu32 " to %s",
				     ropt, opt_name(opt));
	if (r->len > NBD_MAX_OPT_REPLY)
		return nbdws_err_set(h->err, -EPROTO,
				     "option reply of %" PRIu32 " bytes is larger than the %d allowed",
				     r->len, NBD_MAX_OPT_REPLY);
	if (!r->len)
		return 0;
	r->data = malloc(r->len);
	if (!r->data)
		return nbdws_err_set(h->err, -ENOMEM, "out of memory");
	rc = hs_read(h, r->data, r->len, "reading an option reply");
	if (rc) {
		free(r->data);
		r->data = NULL;
	}
	return rc;
}

/* Turn an NBD_REP_ERR_* reply into an errno and a sentence. */
static int reply_error(struct hs *h, u32 opt, const char *export,
		       const struct opt_reply *r)
{
	char *msg = r->len && r->data ? peer_text_dup(r->data, r->len) : NULL;
	const char *what;
	int rc;

	h->refused = true;
	switch (r->type) {
	case NBDP_REP_ERR_UNSUP:
		what = "not supported by the server";
		rc = -EOPNOTSUPP;
		break;
	case NBDP_REP_ERR_POLICY:
		what = "refused by the server's policy";
		rc = -EACCES;
		break;
	case NBDP_REP_ERR_INVALID:
		what = "rejected as invalid by the server";
		rc = -EINVAL;
		break;
	case NBDP_REP_ERR_PLATFORM:
		what = "not supported on the server's platform";
		rc = -EOPNOTSUPP;
		break;
	case NBDP_REP_ERR_TLS_REQD:
		what = "refused: the server requires TLS, which nbdws does not support yet for NBD";
		rc = -EACCES;
		break;
	case NBDP_REP_ERR_UNKNOWN:
		what = "refused: the server has no such export";
		rc = -ENOENT;
		break;
	case NBDP_REP_ERR_SHUTDOWN:
		what = "refused: the server is shutting down";
		rc = -ESHUTDOWN;
		break;
	case NBDP_REP_ERR_BLOCK_SIZE_REQD:
		what = "refused: the server requires block size negotiation";
		rc = -EOPNOTSUPP;
		break;
	case NBDP_REP_ERR_TOO_BIG:
		what = "refused: request too big";
		rc = -E2BIG;
		break;
	default:
		what = "refused with an unknown error";
		rc = -EPROTO;
		break;
	}
	if (export && (opt == NBDP_OPT_GO || opt == NBDP_OPT_INFO))
		nbdws_err_set(h->err, rc, "%s for export '%s' %s (reply 0x%08" PRIx32 ")%s%s",
			      opt_name(opt), export, what, r->type,
			      msg && *msg ? ": " : "", msg ? msg : "");
	else
		nbdws_err_set(h->err, rc, "%s %s (reply 0x%08" PRIx32 ")%s%s",
			      opt_name(opt), what, r->type,
			      msg && *msg ? ": " : "", msg ? msg : "");
	free(msg);
	return rc;
}

static bool is_pow2(u32 v)
{
	return v && !(v & (v - 1));
}

static int check_size(struct hs *h, u64 size)
{
	/* The block layer counts in signed 64-bit bytes. */
	if (size > (u64)INT64_MAX)
		return nbdws_err_set(h->err, -EPROTO,
				     "the server announced an impossible export size (%" PRIu64 " bytes)",
				     size);
	return 0;
}

static int parse_block_size(struct hs *h, const u8 *p,
			    struct nbd_export_info *info)
{
	u32 min = get_be32(p), pref = get_be32(p + 4), max = get_be32(p + 8);

	if (!is_pow2(min) || min > 65536 || !is_pow2(pref) || pref < min ||
	    pref > NBD_MAX_BLOCK_PREF || max < min ||
	    (max != UINT32_MAX && max % min))
		return nbdws_err_set(h->err, -EPROTO,
				     "the server sent invalid block sizes (minimum %" PRIu32 ", preferred %" PRIu32 ", maximum %" PRIu32 ")",
				     min, pref, max);
	info->block_min = min;
	info->block_pref = pref;
	info->block_max = max;
	info->block_size_given = true;
	return 0;
}

/* Apply one NBD_REP_INFO payload to @info. */
static int parse_info(struct hs *h, const struct opt_reply *r,
		      struct nbd_export_info *info, bool *have_export)
{
	u16 type;
	char **dst;
	int rc;

	if (r->len < 2 || !r->data)
		return nbdws_err_set(h->err, -EPROTO,
				     "NBD_REP_INFO reply too short (%" PRIu32 " bytes)",
				     r->len);
	type = get_be16(r->data);
	switch (type) {
	case NBDP_INFO_EXPORT:
		if (r->len != INFO_EXPORT_LEN)
			goto bad_len;
		info->size = get_be64(r->data + 2);
		info->tflags = get_be16(r->data + 10);
		rc = check_size(h, info->size);
		if (rc)
			return rc;
		*have_export = true;
		return 0;
	case NBDP_INFO_BLOCK_SIZE:
		if (r->len != INFO_BLOCK_SIZE_LEN)
			goto bad_len;
		return parse_block_size(h, r->data + 2, info);
	case NBDP_INFO_NAME:
	case NBDP_INFO_DESCRIPTION:
		if (r->len - 2 > NBD_MAX_STR)
			goto bad_len;
		dst = type == NBDP_INFO_NAME ? &info->name : &info->description;
		free(*dst);
		*dst = peer_text_dup(r->data + 2, r->len - 2);
		if (!*dst)
			return nbdws_err_set(h->err, -ENOMEM, "out of memory");
		return 0;
	default:
		/* Information we did not ask for: the spec says ignore it. */
		return 0;
	}
bad_len:
	return nbdws_err_set(h->err, -EPROTO,
			     "NBD_REP_INFO type %u with bad length %" PRIu32,
			     type, r->len);
}

static void info_defaults(struct nbd_export_info *info)
{
	memset(info, 0, sizeof(*info));
	info->block_min = NBD_DEFAULT_BLOCK_MIN;
	info->block_pref = NBD_DEFAULT_BLOCK_PREF;
	info->block_max = NBD_DEFAULT_BLOCK_MAX;
}

/*
 * Run NBD_OPT_GO or NBD_OPT_INFO. Sets *unsup when the server answered
 * NBD_REP_ERR_UNSUP (and returns -EOPNOTSUPP) so the caller can fall back.
 */
static int go_or_info(struct hs *h, u32 opt, const char *export,
		      struct nbd_export_info *info, bool *unsup)
{
	bool have_export = false;
	unsigned int n;
	int rc;

	rc = send_go_or_info(h, opt, export);
	if (rc)
		return rc;
	for (n = 0; n < NBD_MAX_REPLIES; n++) {
		struct opt_reply r;

		rc = read_reply(h, opt, &r);
		if (rc)
			return rc;
		if (r.type & NBDP_REP_FLAG_ERROR) {
			rc = reply_error(h, opt, export, &r);
			*unsup = r.type == NBDP_REP_ERR_UNSUP;
		} else if (r.type == NBDP_REP_INFO) {
			rc = parse_info(h, &r, info, &have_export);
		} else if (r.type == NBDP_REP_ACK) {
			if (r.len)
				rc = nbdws_err_set(h->err, -EPROTO,
						   "NBD_REP_ACK with %" PRIu32 " bytes of payload",
						   r.len);
			else if (!have_export)
				rc = nbdws_err_set(h->err, -EPROTO,
						   "the server acknowledged %s without NBD_INFO_EXPORT",
						   opt_name(opt));
			else
				rc = 1;
		} else {
			rc = nbdws_err_set(h->err, -EPROTO,
					   "unexpected reply type %" PRIu32 " to %s",
					   r.type, opt_name(opt));
		}
		free(r.data);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	return nbdws_err_set(h->err, -EPROTO,
			     "the server sent more than %d replies to %s",
			     NBD_MAX_REPLIES, opt_name(opt));
}

/* NBD_OPT_EXPORT_NAME: no option reply, the server goes to transmission. */
static int export_name(struct hs *h, const char *export,
		       struct nbd_export_info *info)
{
	size_t nlen = strlen(export);
	u8 buf[10 + EXPORT_NAME_ZEROES];
	size_t want = 10 + (h->no_zeroes ? 0 : EXPORT_NAME_ZEROES);
	int rc;

	if (nlen > NBD_MAX_STR)
		return nbdws_err_set(h->err, -EINVAL,
				     "export name longer than %d bytes",
				     NBD_MAX_STR);
	rc = send_option(h, NBDP_OPT_EXPORT_NAME, (const u8 *)export, (u32)nlen);
	if (rc)
		return rc;
	rc = h->x->read(h->x->ctx, buf, want);
	if (rc == -ECONNRESET)
		return nbdws_err_set(h->err, -ENOENT,
				     "the server closed the connection after NBD_OPT_EXPORT_NAME: it probably has no export named '%s'",
				     export);
	if (rc)
		return io_fail(h, rc, "reading the NBD_OPT_EXPORT_NAME reply");
	info->size = get_be64(buf);
	info->tflags = get_be16(buf + 8);
	info->used_export_name = true;
	return check_size(h, info->size);
}

static int finish_info(struct nbd_export_info *info, struct hs *h,
		       const char *export)
{
	info->hs_flags = h->hs_flags;
	if (!info->name) {
		info->name = strdup(export);
		if (!info->name)
			return nbdws_err_set(h->err, -ENOMEM, "out of memory");
	}
	return 0;
}

/* EXPORT_NAME put us in transmission: a query leaves with NBD_CMD_DISC. */
static void send_disc(const struct nbd_xport *x)
{
	struct nbd_wire_request req = { .type = NBDP_CMD_DISC };
	u8 disc[NBDP_REQUEST_SIZE];

	nbd_wire_encode_request(disc, &req);
	x->write(x->ctx, disc, sizeof(disc));
}

static int go_common(const struct nbd_xport *x, const char *export,
		     struct nbd_export_info *out, struct nbdws_err *err,
		     u32 opt)
{
	struct hs h = { .x = x, .err = err };
	struct nbd_export_info info;
	bool unsup = false;
	int rc;

	info_defaults(&info);
	rc = greet(&h);
	if (rc)
		return rc;
	if (h.fixed) {
		rc = go_or_info(&h, opt, export, &info, &unsup);
		if (rc && unsup) {
			/*
			 * Servers that only know EXPORT_NAME (browser ones
			 * among them) say "unsupported" and wait for the next
			 * option: start over with the defaults.
			 */
			nbd_export_info_free(&info);
			info_defaults(&info);
			h.refused = false;
			rc = export_name(&h, export, &info);
		} else if (!rc && opt == NBDP_OPT_INFO) {
			/* Best effort: we are done either way. */
			send_abort(&h);
		}
	} else {
		/* Without fixed newstyle any other option ends the session. */
		rc = export_name(&h, export, &info);
	}
	if (!rc && info.used_export_name && opt == NBDP_OPT_INFO)
		send_disc(x);
	if (!rc)
		rc = finish_info(&info, &h, export);
	if (rc) {
		/* After an error reply the server still negotiates: leave. */
		if (h.refused)
			send_abort(&h);
		nbd_export_info_free(&info);
		return rc;
	}
	*out = info;
	return 0;
}

int nbd_handshake_go(const struct nbd_xport *x, const char *export_name,
		     struct nbd_export_info *info, struct nbdws_err *err)
{
	return go_common(x, export_name, info, err, NBDP_OPT_GO);
}

int nbd_handshake_info(const struct nbd_xport *x, const char *export_name,
		       struct nbd_export_info *info, struct nbdws_err *err)
{
	return go_common(x, export_name, info, err, NBDP_OPT_INFO);
}

static int add_entry(struct hs *h, struct nbd_export_list *list,
		     const struct opt_reply *r)
{
	struct nbd_export_entry *v;
	u32 nlen;

	if (r->len < 4 || !r->data)
		goto bad;
	nlen = get_be32(r->data);
	if (nlen > r->len - 4 || nlen > NBD_MAX_STR ||
	    r->len - 4 - nlen > NBD_MAX_STR)
		goto bad;
	v = realloc(list->v, (list->n + 1) * sizeof(*v));
	if (!v)
		return nbdws_err_set(h->err, -ENOMEM, "out of memory");
	list->v = v;
	v = &list->v[list->n];
	v->name = peer_text_dup(r->data + 4, nlen);
	v->description = peer_text_dup(r->data + 4 + nlen, r->len - 4 - nlen);
	if (!v->name || !v->description) {
		free(v->name);
		free(v->description);
		return nbdws_err_set(h->err, -ENOMEM, "out of memory");
	}
	list->n++;
	return 0;
bad:
	return nbdws_err_set(h->err, -EPROTO,
			     "malformed NBD_REP_SERVER reply (%" PRIu32 " bytes)",
			     r->len);
}

int nbd_handshake_list(const struct nbd_xport *x, struct nbd_export_list *out,
		       struct nbdws_err *err)
{
	struct hs h = { .x = x, .err = err };
	struct nbd_export_list list = { NULL, 0 };
	unsigned int n;
	int rc;

	rc = greet(&h);
	if (rc)
		return rc;
	if (!h.fixed)
		return nbdws_err_set(err, -EOPNOTSUPP,
				     "the server does not speak fixed newstyle NBD, so it cannot list its exports");
	rc = send_option(&h, NBDP_OPT_LIST, NULL, 0);
	if (rc)
		return rc;
	for (n = 0, rc = 0; !rc; n++) {
		struct opt_reply r;

		if (n > NBD_MAX_REPLIES) {
			rc = nbdws_err_set(err, -EPROTO,
					   "the server listed more than %d exports",
					   NBD_MAX_REPLIES);
			break;
		}
		rc = read_reply(&h, NBDP_OPT_LIST, &r);
		if (rc)
			break;
		if (r.type & NBDP_REP_FLAG_ERROR)
			rc = reply_error(&h, NBDP_OPT_LIST, NULL, &r);
		else if (r.type == NBDP_REP_SERVER)
			rc = add_entry(&h, &list, &r);
		else if (r.type == NBDP_REP_ACK)
			rc = r.len ? nbdws_err_set(err, -EPROTO,
						   "NBD_REP_ACK with payload") : 1;
		else
			rc = nbdws_err_set(err, -EPROTO,
					   "unexpected reply type %" PRIu32 " to NBD_OPT_LIST",
					   r.type);
		free(r.data);
	}
	if (rc < 0) {
		if (h.refused)
			send_abort(&h);
		nbd_export_list_free(&list);
		return rc;
	}
	send_abort(&h);
	*out = list;
	return 0;
}

void nbd_export_info_free(struct nbd_export_info *info)
{
	free(info->name);
	free(info->description);
	info->name = NULL;
	info->description = NULL;
}

void nbd_export_list_free(struct nbd_export_list *list)
{
	size_t i;

	for (i = 0; i < list->n; i++) {
		free(list->v[i].name);
		free(list->v[i].description);
	}
	free(list->v);
	list->v = NULL;
	list->n = 0;
}
