// SPDX-License-Identifier: GPL-2.0
/*
 * ws_nbd_peer: the bench's NBD server, one program for every transport
 * the WebSocket rows compare, so a ratio between two rows measures the
 * kernel's transport and not two different servers.
 *
 *   ws_nbd_peer [--size BYTES] [--backend memory|null]
 *               [--plain HOST:PORT] [--unix PATH] [--ws HOST:PORT]
 *               [--wss HOST:PORT --cert PEM --key PEM]
 *               [--dial HOST:PORT --count N] [--control FIFO] [--path /P]
 *               [--tls-record KIND@OFFSET] [--rcvbuf BYTES]
 *
 * --plain    NBD on TCP (the baseline; nbdctl connect nbd://)
 * --unix     NBD on a unix socket at PATH (nbd+unix:///?socket=PATH), made
 *            here (a stale socket file there is replaced)
 * --ws       WebSocket server: the kernel dials us (ws-client role)
 * --wss      the same inside TLS, with kernel TLS on our side too when
 *            OpenSSL and the kernel allow it (TLS 1.2, AES-GCM), so the
 *            peer's crypto runs in the same kernel code as the client's
 * --dial     WebSocket client, N connections to an attach program that
 *            hands them to the kernel in the ws-server role (the browser
 *            case); the peer is still the NBD server. Exits when they end.
 * --control  read "HOST:PORT N" lines from FIFO and dial like --dial, from
 *            this process: the bench's ws-server rows are then served by
 *            the same process and memory as the plain and ws:// rows.
 *            A line may name a URL instead, "ws://HOST:PORT/PATH N" or
 *            "wss://HOST:PORT/PATH N" (nbdws-relay's slots, the bench's
 *            nbd-proxy stand-in): over TLS the peer is a client that asks
 *            for kernel TLS like our server side does, and does not verify
 *            the certificate (a bench, on loopback).
 *
 * --tls-record  (selftests) on a connection where kernel TLS runs our side,
 *            send one TLS record that is not application data right after
 *            reading the first read request at byte OFFSET, and leave that
 *            request unanswered: KIND is "alert" (fatal unexpected_message),
 *            "close" (close_notify) or "keyupdate" (a TLS 1.3 KeyUpdate
 *            message in a handshake record, whatever the version). The
 *            kernel client must end the connection on it.
 * --rcvbuf   (selftests) SO_RCVBUF of the listening sockets, so of every
 *            connection they accept: a small receive window, which makes
 *            the client's TCP cut its sends into segments of half of it.
 *
 * Backends: memory (one malloc'd buffer; reads copy from it, writes land
 * in it) or null (reads return zeros, writes are dropped). Both advertise
 * multi-conn, flush, FUA, trim and write-zeroes, like nbdkit's.
 *
 * One thread per connection, which reads a request, serves it and sends
 * the reply before reading the next: simple, and the same for every
 * transport. What a transport costs the peer is what it must cost: a
 * WebSocket client has to mask what it sends (one copy of read payload),
 * a server does not (header and payload go out with one writev, as on
 * plain TCP). Payload is read straight into its destination, never
 * through a bounce buffer, on every transport.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/tls.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "nbd_be.h"
#include "nbd_proto.h"
#include "nbd_sock.h"
#include "nbd_xport.h"
#include "ws_accept.h"
#include "ws_frame.h"
#include "ws_stream.h"
#include "ws_upgrade.h"

#define HANDSHAKE_MS	60000
#define MAX_OPT_LEN	4096
/* Largest request served: what nbdkit allows too. */
#define MAX_REQ		(32U << 20)
#define RBUF_SIZE	65536
/* Data payload at least this large is read straight to its destination. */
#define DIRECT_MIN	4096
/* Masking keys drawn from the CSPRNG per refill (4 bytes per message). */
#define KEY_POOL	4096

enum xport { X_PLAIN, X_WS_SERVER, X_WS_CLIENT };

static struct {
	u64 size;
	bool null;
	u8 *mem;		/* memory backend */
	const u8 *zeros;	/* null backend reads: MAX_REQ zero bytes */
	SSL_CTX *tls;
	SSL_CTX *tls_client;	/* wss:// dials, made on first use */
	const char *path;
	/* --tls-record: content type (0: none), body, and at which offset. */
	u8 rec_type;
	u8 rec_body[5];
	size_t rec_len;
	u64 rec_at;
	int rcvbuf;		/* --rcvbuf, 0: the system's */
} cfg = { .size = 1ULL << 30, .path = "/" };

struct conn {
	int fd;
	SSL *ssl;		/* I/O goes through it unless NULL */
	enum xport x;
	char *path;		/* ws-client role: request target, or cfg.path */
	struct ws_dec dec;
	u8 *rbuf;		/* raw bytes read ahead: rbuf[rs..re) */
	size_t rs, re;
	u8 *scratch;		/* dropped writes; masked replies */
	size_t scratch_len;
	u8 keys[KEY_POOL];	/* unused masking keys: keys[KEY_POOL - keys_left..] */
	size_t keys_left;
	bool rec_sent;		/* --tls-record done */
};

static void die(const char *what)
{
	fprintf(stderr, "ws_nbd_peer: %s\n", what);
	exit(1);
}

/* "1G", "256M", "4096": bytes, or 0 if malformed. */
static u64 parse_size(const char *s)
{
	char *end;
	u64 v = strtoull(s, &end, 0);
	int shift = 0;

	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	}
	return *end || v > (~0ULL >> shift) ? 0 : v << shift;
}

/* ---- raw I/O: the socket, or the TLS session until kTLS takes it ------- */

static ssize_t raw_read(struct conn *c, void *buf, size_t len)
{
	for (;;) {
		ssize_t n;

		if (c->ssl) {
			int r = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

			return r > 0 ? r : (SSL_get_error(c->ssl, r) ==
					    SSL_ERROR_ZERO_RETURN ? 0 : -EIO);
		}
		n = recv(c->fd, buf, len, 0);
		if (n >= 0 || errno != EINTR)
			return n < 0 ? -errno : n;
	}
}

static int raw_writev(struct conn *c, struct iovec *iov, int cnt)
{
	while (cnt) {
		ssize_t n;

		if (c->ssl) {
			int r;

			if (!iov->iov_len) {
				iov++;
				cnt--;
				continue;
			}
			r = SSL_write(c->ssl, iov->iov_base, (int)iov->iov_len);
			if (r <= 0)
				return -EIO;
			n = r;
		} else {
			n = writev(c->fd, iov, cnt);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
		}
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (u8 *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* ws_io over the connection, for the upgrade and the NBD handshake. */
static ssize_t io_read(void *ctx, void *buf, size_t len)
{
	return raw_read(ctx, buf, len);
}

static int io_write(void *ctx, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	return raw_writev(ctx, &iov, 1);
}

/* nbd_xport over the plain socket: exact reads for the handshake. */
static int rx_exact(struct conn *c, void *buf, size_t len);

static int xp_read(void *ctx, void *buf, size_t len)
{
	return rx_exact(ctx, buf, len);
}

static int xp_write(void *ctx, const void *buf, size_t len)
{
	return io_write(ctx, buf, len);
}

/* ---- transmission phase: messages over the transport ------------------ */

static int fill(struct conn *c)
{
	ssize_t n;

	if (c->rs == c->re)
		c->rs = c->re = 0;
	if (c->re == RBUF_SIZE) {
		memmove(c->rbuf, c->rbuf + c->rs, c->re - c->rs);
		c->re -= c->rs;
		c->rs = 0;
	}
	n = raw_read(c, c->rbuf + c->re, RBUF_SIZE - c->re);
	if (n <= 0)
		return n ? (int)n : -ECONNRESET;
	c->re += (size_t)n;
	return 0;
}

static int send_frame(struct conn *c, u8 op, const u8 *p, size_t len);

/* Control frames between data: answer pings, echo a close. */
static int on_control(struct conn *c, const struct ws_event *ev)
{
	u8 code[2];

	switch (ev->type) {
	case WS_EV_PING:
		return send_frame(c, WS_OP_PONG, ev->payload, ev->payload_len);
	case WS_EV_CLOSE:
		send_frame(c, WS_OP_CLOSE, code, ev->close_code ==
			   WS_CLOSE_NO_STATUS ? 0 : ws_close_payload(code, ev->close_code));
		return -ECONNRESET;
	case WS_EV_ERROR:
		fprintf(stderr, "ws_nbd_peer: WebSocket protocol error: %s\n",
			ev->reason ? ev->reason : "?");
		send_frame(c, WS_OP_CLOSE, code, ws_close_payload(code, ev->close_code));
		return -EPROTO;
	default:
		return 0;
	}
}

/*
 * Up to @max bytes of the byte stream into @dst: from the read-ahead
 * buffer, or for big pieces straight from the socket. Returns how many
 * bytes were placed, 0 when it only refilled the buffer, or -errno.
 */
static ssize_t rx_some(struct conn *c, u8 *dst, size_t max)
{
	size_t have = c->re - c->rs;
	ssize_t r;

	if (have) {
		size_t n = have < max ? have : max;

		memcpy(dst, c->rbuf + c->rs, n);
		c->rs += n;
		return (ssize_t)n;
	}
	if (max >= DIRECT_MIN) {
		r = raw_read(c, dst, max);
		return r ? r : -ECONNRESET;
	}
	return fill(c);
}

/*
 * Exactly @len bytes of NBD stream into @dst. Over WebSocket only the
 * current data frame's payload is taken at a time (unmasked in place);
 * frame headers and control frames between data are consumed here.
 */
static int rx_exact(struct conn *c, void *buf, size_t len)
{
	u8 *dst = buf;
	int rc;

	while (len) {
		size_t n = len;
		ssize_t r;

		if (c->x != X_PLAIN) {
			u64 left = ws_dec_data_left(&c->dec);

			if (!left) {
				struct ws_event ev;

				c->rs += ws_dec_parse(&c->dec, c->rbuf + c->rs,
						      c->re - c->rs, &ev);
				rc = ev.type == WS_EV_NEED_MORE ? fill(c) :
				     on_control(c, &ev);
				if (rc)
					return rc;
				continue;
			}
			if (left < n)
				n = (size_t)left;
		}
		r = rx_some(c, dst, n);
		if (r < 0)
			return (int)r;
		if (c->x != X_PLAIN && r)
			ws_dec_data_done(&c->dec, dst, (size_t)r);
		dst += r;
		len -= (size_t)r;
	}
	return 0;
}

static u8 *scratch(struct conn *c, size_t len)
{
	if (c->scratch_len < len) {
		free(c->scratch);
		c->scratch = malloc(len);
		c->scratch_len = c->scratch ? len : 0;
	}
	return c->scratch;
}

/*
 * RFC 6455 wants unpredictable keys, not a syscall per message: a browser
 * draws them from a userspace CSPRNG, and so does this peer. OpenSSL's
 * RAND_bytes() is that CSPRNG, but each call pays a method lookup that
 * costs more than masking a 4 KiB reply, so keys are drawn KEY_POOL bytes
 * at a time.
 */
static int next_key(struct conn *c, u8 key[4])
{
	if (c->keys_left < 4) {
		if (RAND_bytes(c->keys, sizeof(c->keys)) != 1)
			return -EIO;
		c->keys_left = sizeof(c->keys);
	}
	memcpy(key, c->keys + sizeof(c->keys) - c->keys_left, 4);
	c->keys_left -= 4;
	return 0;
}

/*
 * One message of @n pieces. Plain: the pieces as they are. WebSocket
 * server: a frame header in front, no copy. Client: header plus a masked
 * copy of everything, in one write.
 */
static int send_msg(struct conn *c, u8 op, struct iovec *iov, int n)
{
	struct iovec out[4];
	u8 hdr[WS_MAX_HEADER], key[4], *buf;
	size_t len = 0, off, hl;
	int i, rc;

	if (c->x == X_PLAIN)
		return raw_writev(c, iov, n);
	for (i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (c->x == X_WS_SERVER) {
		out[0].iov_base = hdr;
		out[0].iov_len = ws_frame_header(hdr, op, true, len, NULL);
		memcpy(out + 1, iov, (size_t)n * sizeof(*iov));
		return raw_writev(c, out, n + 1);
	}
	rc = next_key(c, key);
	if (rc)
		return rc;
	buf = scratch(c, WS_MAX_HEADER + len);
	if (!buf)
		return -ENOMEM;
	hl = ws_frame_header(buf, op, true, len, key);
	for (i = 0, off = 0; i < n; off += iov[i].iov_len, i++)
		ws_mask_copy(buf + hl + off, iov[i].iov_base, iov[i].iov_len,
			     key, off);
	out[0].iov_base = buf;
	out[0].iov_len = hl + len;
	return raw_writev(c, out, 1);
}

static int send_frame(struct conn *c, u8 op, const u8 *p, size_t len)
{
	struct iovec iov = { (void *)p, len };

	return send_msg(c, op, &iov, 1);
}

/* ---- the export ------------------------------------------------------- */

static const u16 tflags = NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_SEND_FLUSH |
	NBDP_FLAG_SEND_FUA | NBDP_FLAG_SEND_TRIM |
	NBDP_FLAG_SEND_WRITE_ZEROES | NBDP_FLAG_CAN_MULTI_CONN;

static int reply(struct conn *c, u32 error, u64 cookie, const void *data,
		 size_t len)
{
	u8 hdr[NBDP_SIMPLE_REPLY_SIZE];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, len } };

	put_be32(hdr, NBDP_SIMPLE_REPLY_MAGIC);
	put_be32(hdr + 4, error);
	put_be64(hdr + 8, cookie);
	return send_msg(c, WS_OP_BINARY, iov, len ? 2 : 1);
}

/* --tls-record: one record of cfg.rec_type, through kernel TLS. */
static int send_tls_record(struct conn *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(u8))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { cfg.rec_body, cfg.rec_len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	if (c->ssl) {
		fprintf(stderr, "ws_nbd_peer: --tls-record needs kernel TLS\n");
		return -EPROTO;
	}
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(u8));
	*CMSG_DATA(cm) = cfg.rec_type;
	if (sendmsg(c->fd, &msg, 0) != (ssize_t)cfg.rec_len)
		return -errno;
	fprintf(stderr, "ws_nbd_peer: sent a TLS record of type %u\n",
		cfg.rec_type);
	return 0;
}

/* Serve requests until DISC or the end of the connection. */
static int transmission(struct conn *c)
{
	for (;;) {
		u8 req[NBDP_REQUEST_SIZE];
		u16 type;
		u64 cookie, off;
		u32 len, err = 0;
		bool bad;
		int rc;

		rc = rx_exact(c, req, sizeof(req));
		if (rc)
			return rc == -ECONNRESET ? 0 : rc;
		if (get_be32(req) != NBDP_REQUEST_MAGIC)
			return -EPROTO;
		if (cfg.rec_type && !c->rec_sent &&
		    get_be16(req + 6) == NBDP_CMD_READ &&
		    get_be64(req + 16) == cfg.rec_at) {
			c->rec_sent = true;
			rc = send_tls_record(c);
			if (rc)
				return rc;
			/* The request stays unanswered; the kernel ends it. */
			continue;
		}
		type = get_be16(req + 6);
		cookie = get_be64(req + 8);
		off = get_be64(req + 16);
		len = get_be32(req + 24);
		bad = len > MAX_REQ || off > cfg.size || len > cfg.size - off;
		switch (type) {
		case NBDP_CMD_READ:
			if (bad) {
				rc = reply(c, NBDP_EINVAL, cookie, NULL, 0);
				break;
			}
			rc = reply(c, 0, cookie, cfg.null ? cfg.zeros : cfg.mem + off, len);
			break;
		case NBDP_CMD_WRITE:
			/* Too big to drain safely: drop the connection. */
			if (len > MAX_REQ)
				return -EPROTO;
			if (bad || cfg.null) {
				u8 *sink = scratch(c, len);

				if (!sink)
					return -ENOMEM;
				rc = rx_exact(c, sink, len);
				err = bad ? NBDP_EINVAL : 0;
			} else {
				rc = rx_exact(c, cfg.mem + off, len);
			}
			if (!rc)
				rc = reply(c, err, cookie, NULL, 0);
			break;
		case NBDP_CMD_WRITE_ZEROES:
			if (!bad && !cfg.null)
				memset(cfg.mem + off, 0, len);
			rc = reply(c, bad ? NBDP_EINVAL : 0, cookie, NULL, 0);
			break;
		case NBDP_CMD_FLUSH:
		case NBDP_CMD_TRIM:	/* advisory: keeping the data is allowed */
			rc = reply(c, bad ? NBDP_EINVAL : 0, cookie, NULL, 0);
			break;
		case NBDP_CMD_DISC:
			return 0;
		default:
			rc = reply(c, NBDP_EINVAL, cookie, NULL, 0);
		}
		if (rc)
			return rc;
	}
}

/* ---- the NBD handshake, server side (fixed newstyle) ------------------ */

static int opt_reply(const struct nbd_xport *x, u32 opt, u32 type,
		     const u8 *data, u32 len)
{
	u8 buf[20 + 64];

	if (len > sizeof(buf) - 20)
		return -EINVAL;
	put_be64(buf, NBDP_OPT_REPLY_MAGIC);
	put_be32(buf + 8, opt);
	put_be32(buf + 12, type);
	put_be32(buf + 16, len);
	if (len)
		memcpy(buf + 20, data, len);
	return x->write(x->ctx, buf, 20 + len);
}

/* INFO/GO: the export and block size infos, then ACK. */
static int opt_info(const struct nbd_xport *x, u32 opt)
{
	u8 e[12], b[14];
	int rc;

	put_be16(e, NBDP_INFO_EXPORT);
	put_be64(e + 2, cfg.size);
	put_be16(e + 10, tflags);
	put_be16(b, NBDP_INFO_BLOCK_SIZE);
	put_be32(b + 2, 1);
	put_be32(b + 6, 4096);
	put_be32(b + 10, MAX_REQ);
	rc = opt_reply(x, opt, NBDP_REP_INFO, e, sizeof(e));
	if (!rc)
		rc = opt_reply(x, opt, NBDP_REP_INFO, b, sizeof(b));
	return rc ? rc : opt_reply(x, opt, NBDP_REP_ACK, NULL, 0);
}

/* Returns 0 when the transmission phase starts, 1 on ABORT, or -errno. */
static int handshake(const struct nbd_xport *x)
{
	u8 greet[18], opt[MAX_OPT_LEN], hdr[16], cflags[4];
	bool no_zeroes;
	int rc;

	put_be64(greet, NBDP_INIT_PASSWD);
	put_be64(greet + 8, NBDP_IHAVEOPT);
	put_be16(greet + 16, NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES);
	rc = x->write(x->ctx, greet, sizeof(greet));
	if (!rc)
		rc = x->read(x->ctx, cflags, sizeof(cflags));
	if (rc)
		return rc;
	no_zeroes = get_be32(cflags) & NBDP_FLAG_C_NO_ZEROES;
	for (;;) {
		u32 o, len;

		rc = x->read(x->ctx, hdr, sizeof(hdr));
		if (rc)
			return rc;
		o = get_be32(hdr + 8);
		len = get_be32(hdr + 12);
		if (get_be64(hdr) != NBDP_IHAVEOPT || len > sizeof(opt))
			return -EPROTO;
		rc = x->read(x->ctx, opt, len);
		if (rc)
			return rc;
		switch (o) {
		case NBDP_OPT_EXPORT_NAME: {
			u8 r[10 + 124] = { 0 };

			put_be64(r, cfg.size);
			put_be16(r + 8, tflags);
			return x->write(x->ctx, r, no_zeroes ? 10 : sizeof(r));
		}
		case NBDP_OPT_GO:
		case NBDP_OPT_INFO:
			rc = opt_info(x, o);
			if (!rc && o == NBDP_OPT_GO)
				return 0;
			break;
		case NBDP_OPT_LIST: {
			u8 name[4] = { 0 };	/* one export, "" */

			rc = opt_reply(x, o, NBDP_REP_SERVER, name, sizeof(name));
			if (!rc)
				rc = opt_reply(x, o, NBDP_REP_ACK, NULL, 0);
			break;
		}
		case NBDP_OPT_ABORT:
			opt_reply(x, o, NBDP_REP_ACK, NULL, 0);
			return 1;
		default:
			rc = opt_reply(x, o, NBDP_REP_ERR_UNSUP, NULL, 0);
		}
		if (rc)
			return rc;
	}
}

/* ---- connections ------------------------------------------------------ */

/*
 * The TLS session ends in the kernel if both directions were offloaded;
 * then our I/O goes to the socket (kTLS) and OpenSSL only holds state.
 * Decrypted bytes OpenSSL still holds are moved to the read-ahead buffer.
 */
static void tls_to_kernel(struct conn *c)
{
	static bool said;

	if (!BIO_get_ktls_send(SSL_get_wbio(c->ssl)) ||
	    !BIO_get_ktls_recv(SSL_get_rbio(c->ssl))) {
		if (!said)
			fprintf(stderr, "ws_nbd_peer: kernel TLS is not active (%s %s): the peer's TLS runs in OpenSSL\n",
				SSL_get_version(c->ssl), SSL_get_cipher(c->ssl));
		said = true;
		return;
	}
	while (SSL_pending(c->ssl) && c->re < RBUF_SIZE) {
		int r = SSL_read(c->ssl, c->rbuf + c->re, (int)(RBUF_SIZE - c->re));

		if (r <= 0)
			break;
		c->re += (size_t)r;
	}
	if (!said)
		fprintf(stderr, "ws_nbd_peer: kernel TLS active (%s %s)\n",
			SSL_get_version(c->ssl), SSL_get_cipher(c->ssl));
	said = true;
	/* The SSL object stays allocated but unused; no close_notify. */
	SSL_free(c->ssl);
	c->ssl = NULL;
}

/* Handshake on a WebSocket: ws_stream carries it, then hands over. */
static int ws_handshake(struct conn *c, const struct ws_io *io,
			const u8 *pre, size_t pre_len)
{
	struct ws_stream s;
	struct nbd_xport x;
	u8 *rest = NULL;
	size_t rest_len = 0;
	int rc;

	rc = ws_stream_init(&s, io, c->x == X_WS_SERVER ? WS_ROLE_SERVER :
			    WS_ROLE_CLIENT, pre, pre_len);
	if (rc)
		return rc;
	ws_stream_xport(&s, &x);
	rc = handshake(&x);
	if (!rc)
		rc = ws_stream_detach(&s, &rest, &rest_len);
	if (rc < 0 && s.err.msg[0])
		fprintf(stderr, "ws_nbd_peer: %s\n", s.err.msg);
	ws_stream_free(&s);
	if (!rc && rest_len) {
		memcpy(c->rbuf, rest, rest_len);	/* <= WS_STREAM_BUF */
		c->re = rest_len;
	}
	free(rest);
	ws_dec_init(&c->dec, c->x == X_WS_SERVER);
	return rc;
}

static int serve_ws_server(struct conn *c)
{
	struct ws_io io = { c, io_read, io_write };
	struct ws_accept_result res;
	struct nbdws_err err;
	int rc;

	rc = ws_accept(&io, NULL, &res, &err);
	if (rc) {
		fprintf(stderr, "ws_nbd_peer: upgrade: %s\n", err.msg);
		return rc;
	}
	rc = ws_handshake(c, &io, res.preread, res.preread_len);
	ws_accept_result_free(&res);
	return rc;
}

static int serve_ws_client(struct conn *c)
{
	struct ws_upgrade_opts o = { .host = "127.0.0.1",
				     .resource = c->path ? c->path : cfg.path };
	struct ws_upgrade_result res;
	struct nbdws_err err;
	struct ws_fd_io fio;
	struct ws_io io;
	int rc;

	/* Over TLS the upgrade goes through the session (no deadline). */
	if (c->ssl) {
		io.ctx = c;
		io.read = io_read;
		io.write = io_write;
	} else {
		ws_fd_io_init(&io, &fio, c->fd, HANDSHAKE_MS);
	}
	rc = ws_upgrade_client(&io, &o, &res, &err);
	if (rc) {
		fprintf(stderr, "ws_nbd_peer: upgrade: %s\n", err.msg);
		return rc;
	}
	rc = ws_handshake(c, &io, res.preread, res.preread_len);
	ws_upgrade_result_free(&res);
	return rc;
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	struct nbd_xport x = { c, xp_read, xp_write };
	int one = 1, rc = 0;

	/* Fails on a unix socket (--unix), which has no Nagle to turn off. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->rbuf = malloc(RBUF_SIZE);
	if (!c->rbuf)
		goto out;
	if (c->ssl) {
		SSL_set_fd(c->ssl, c->fd);
		if ((c->x == X_WS_CLIENT ? SSL_connect(c->ssl) :
		     SSL_accept(c->ssl)) != 1) {
			ERR_print_errors_fp(stderr);
			goto out;
		}
	}
	if (c->x == X_PLAIN)
		rc = handshake(&x);
	else if (c->x == X_WS_SERVER)
		rc = serve_ws_server(c);
	else
		rc = serve_ws_client(c);
	if (!rc && c->ssl)
		tls_to_kernel(c);
	if (!rc)
		rc = transmission(c);
	if (rc < 0)
		fprintf(stderr, "ws_nbd_peer: connection ended: %s\n", strerror(-rc));
out:
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->fd);
	free(c->rbuf);
	free(c->scratch);
	free(c->path);
	free(c);
	return NULL;
}

static void tls_client_setup(void);

static pthread_t start_conn_path(int fd, enum xport x, bool tls,
				 const char *path)
{
	struct conn *c = calloc(1, sizeof(*c));
	pthread_t t;

	if (!c)
		die("out of memory");
	c->fd = fd;
	c->x = x;
	if (path) {
		c->path = strdup(path);
		if (!c->path)
			die("out of memory");
	}
	if (tls) {
		if (x == X_WS_CLIENT)
			tls_client_setup();
		c->ssl = SSL_new(x == X_WS_CLIENT ? cfg.tls_client : cfg.tls);
		if (!c->ssl)
			die("SSL_new failed");
	}
	if (pthread_create(&t, NULL, conn_thread, c))
		die("pthread_create failed");
	return t;
}

static pthread_t start_conn(int fd, enum xport x, bool tls)
{
	return start_conn_path(fd, x, tls, NULL);
}

struct listener {
	int fd;
	enum xport x;
	bool tls;
};

static void *accept_thread(void *arg)
{
	struct listener *l = arg;

	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept failed");
		}
		pthread_detach(start_conn(fd, l->x, l->tls));
	}
	return NULL;
}

static void split_hostport(char *spec, char **host, char **port)
{
	char *colon = strrchr(spec, ':');

	if (!colon)
		die("expected HOST:PORT");
	*colon = '\0';
	*host = spec;
	*port = colon + 1;
}

/*
 * N WebSocket client connections to HOST:PORT or to a ws:// or wss://
 * URL; threads in @t if not NULL.
 */
static int dial_n(char *spec, int n, pthread_t *t)
{
	struct nbdws_err err;
	char *host, *port, *path = NULL, hostport[200];
	bool tls = false;
	int i;

	if (!strncmp(spec, "ws://", 5) || !strncmp(spec, "wss://", 6)) {
		tls = spec[2] == 's';
		spec += tls ? 6 : 5;
		path = strchr(spec, '/');
		if (path) {
			/* HOST:PORT is what comes before the path. */
			snprintf(hostport, sizeof(hostport), "%.*s",
				 (int)(path - spec), spec);
			spec = hostport;
		}
	}
	split_hostport(spec, &host, &port);
	for (i = 0; i < n; i++) {
		int fd = nbd_sock_connect_tcp(host, port, HANDSHAKE_MS, &err);
		pthread_t th;

		if (fd < 0) {
			fprintf(stderr, "ws_nbd_peer: %s\n", err.msg);
			return -1;
		}
		th = start_conn_path(fd, X_WS_CLIENT, tls, path);
		if (t)
			t[i] = th;
		else
			pthread_detach(th);
	}
	return 0;
}

/* --control: one "HOST:PORT N" request per line, for the life of the process. */
static void *control_thread(void *arg)
{
	/* O_RDWR: the FIFO never reports EOF when a writer goes away. */
	FILE *f = fopen(arg, "r+");
	char line[256], spec[200];
	int n;

	if (!f)
		die("cannot open the control FIFO");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%199s %d", spec, &n) != 2 || n < 1 || n > 256) {
			fprintf(stderr, "ws_nbd_peer: bad control line: %s", line);
			continue;
		}
		dial_n(spec, n, NULL);
	}
	return NULL;
}

/* Bind @l's socket to @sa, listen and serve it on an accept thread. */
static void start_listener(struct listener *l, const struct sockaddr *sa,
			   socklen_t len, enum xport x, bool tls, pthread_t *t)
{
	if (bind(l->fd, sa, len) || listen(l->fd, 64))
		die("cannot listen");
	l->x = x;
	l->tls = tls;
	if (pthread_create(t, NULL, accept_thread, l))
		die("pthread_create failed");
}

static void listen_on(char *spec, enum xport x, bool tls, pthread_t *t)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct listener *l = calloc(1, sizeof(*l));
	struct addrinfo *ai;
	char *host, *port;
	int one = 1;

	split_hostport(spec, &host, &port);
	if (!l || getaddrinfo(host, port, &hints, &ai))
		die("cannot resolve a listen address");
	l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		die("cannot listen");
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Before listen(): the window scale offered follows from it. */
	if (cfg.rcvbuf && setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &cfg.rcvbuf,
				     sizeof(cfg.rcvbuf)))
		die("cannot set SO_RCVBUF");
	start_listener(l, ai->ai_addr, ai->ai_addrlen, x, tls, t);
	freeaddrinfo(ai);
}

/* --unix PATH: plain NBD on a unix stream socket. */
static void listen_unix(const char *path, pthread_t *t)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct listener *l = calloc(1, sizeof(*l));

	if (!l || strlen(path) >= sizeof(sun.sun_path))
		die("bad --unix path");
	memcpy(sun.sun_path, path, strlen(path));
	unlink(path);
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		die("cannot listen on the unix socket");
	start_listener(l, (struct sockaddr *)&sun, sizeof(sun), X_PLAIN, false, t);
}

/*
 * kTLS-friendly server context: TLS 1.2 AEAD, kTLS requested, and
 * AES-128-GCM preferred (what browsers pick first): of the suites both
 * ends can offload it is the cheapest, which matters under TCG, where
 * the cipher runs without AES-NI acceleration.
 */
static void tls_setup(const char *cert, const char *key)
{
	if (!cert || !key)
		die("--wss needs --cert and --key");
	cfg.tls = SSL_CTX_new(TLS_server_method());
	if (!cfg.tls ||
	    SSL_CTX_use_certificate_chain_file(cfg.tls, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(cfg.tls, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		die("cannot load the certificate or key");
	}
	SSL_CTX_set_options(cfg.tls, SSL_OP_ENABLE_KTLS);
	/*
	 * OpenSSL before 3.2 offloads only the send direction of TLS 1.3.
	 * (Our client offers only 1.2 for kTLS sessions anyway: lib/tls.c.)
	 */
#if OPENSSL_VERSION_NUMBER < 0x30200000L
	SSL_CTX_set_max_proto_version(cfg.tls, TLS1_2_VERSION);
#endif
	SSL_CTX_set_options(cfg.tls, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_cipher_list(cfg.tls, "ECDHE+AES128+AESGCM:ECDHE+AESGCM:ECDHE+CHACHA20");
}

/*
 * wss:// dials: the same kTLS-friendly choices as the server side, no
 * certificate check (loopback, a throwaway certificate).
 */
static void tls_client_setup(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&lock);
	if (!cfg.tls_client) {
		cfg.tls_client = SSL_CTX_new(TLS_client_method());
		if (!cfg.tls_client)
			die("SSL_CTX_new failed");
		SSL_CTX_set_verify(cfg.tls_client, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_options(cfg.tls_client, SSL_OP_ENABLE_KTLS);
#if OPENSSL_VERSION_NUMBER < 0x30200000L
		SSL_CTX_set_max_proto_version(cfg.tls_client, TLS1_2_VERSION);
#endif
		SSL_CTX_set_cipher_list(cfg.tls_client,
					"ECDHE+AES128+AESGCM:ECDHE+AESGCM:ECDHE+CHACHA20");
	}
	pthread_mutex_unlock(&lock);
}

/* --tls-record KIND@OFFSET */
static void parse_tls_record(const char *arg)
{
	static const struct {
		const char *kind;
		u8 type, len, body[5];
	} kinds[] = {
		/* fatal unexpected_message; warning close_notify */
		{ "alert", 21, 2, { 2, 10 } },
		{ "close", 21, 2, { 1, 0 } },
		/* KeyUpdate (24), length 1, update_not_requested (RFC 8446 4.6.3) */
		{ "keyupdate", 22, 5, { 24, 0, 0, 1, 0 } },
	};
	const char *at = strchr(arg, '@');
	size_t i;

	for (i = 0; at && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strlen(kinds[i].kind) != (size_t)(at - arg) ||
		    strncmp(arg, kinds[i].kind, (size_t)(at - arg)) != 0)
			continue;
		cfg.rec_type = kinds[i].type;
		cfg.rec_len = kinds[i].len;
		memcpy(cfg.rec_body, kinds[i].body, kinds[i].len);
		cfg.rec_at = strtoull(at + 1, NULL, 10);
		return;
	}
	die("--tls-record wants alert@OFFSET, close@OFFSET or keyupdate@OFFSET");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", 1, NULL, 's' }, { "backend", 1, NULL, 'b' },
		{ "plain", 1, NULL, 'p' }, { "unix", 1, NULL, 'u' },
		{ "ws", 1, NULL, 'w' },
		{ "wss", 1, NULL, 'W' }, { "cert", 1, NULL, 'c' },
		{ "key", 1, NULL, 'k' }, { "dial", 1, NULL, 'd' },
		{ "count", 1, NULL, 'n' }, { "path", 1, NULL, 'P' },
		{ "control", 1, NULL, 'C' }, { "tls-record", 1, NULL, 'R' },
		{ "rcvbuf", 1, NULL, 'r' },
		{ NULL, 0, NULL, 0 }
	};
	char *plain = NULL, *unix_path = NULL, *ws = NULL, *wss = NULL, *dial = NULL, *control = NULL;
	const char *cert = NULL, *key = NULL;
	pthread_t lt[5], dt[256];
	int ch, count = 1, nl = 0, i;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': cfg.size = parse_size(optarg); break;
		case 'b': cfg.null = !strcmp(optarg, "null"); break;
		case 'p': plain = optarg; break;
		case 'u': unix_path = optarg; break;
		case 'w': ws = optarg; break;
		case 'W': wss = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'd': dial = optarg; break;
		case 'n': count = atoi(optarg); break;
		case 'P': cfg.path = optarg; break;
		case 'C': control = optarg; break;
		case 'R': parse_tls_record(optarg); break;
		case 'r': {
			u64 v = parse_size(optarg);

			if (!v || v > 1U << 30)
				die("bad --rcvbuf");
			cfg.rcvbuf = (int)v;
			break;
		}
		default: die("bad option (see the comment at the top of ws_nbd_peer.c)");
		}
	}
	if (!cfg.size || count < 1 || count > 256 || !(plain || unix_path || ws || wss || dial || control))
		die("nothing to do or bad --size/--count");
	signal(SIGPIPE, SIG_IGN);
	/* calloc: untouched pages read as the zero page, like nbdkit's malloc allocator. */
	cfg.zeros = calloc(1, MAX_REQ);
	if (!cfg.null)
		cfg.mem = calloc(1, cfg.size);
	if (!cfg.zeros || (!cfg.null && !cfg.mem))
		die("cannot allocate the backend");
	if (wss)
		tls_setup(cert, key);
	if (plain)
		listen_on(plain, X_PLAIN, false, &lt[nl++]);
	if (unix_path)
		listen_unix(unix_path, &lt[nl++]);
	if (ws)
		listen_on(ws, X_WS_SERVER, false, &lt[nl++]);
	if (wss)
		listen_on(wss, X_WS_SERVER, true, &lt[nl++]);
	if (control && pthread_create(&lt[nl++], NULL, control_thread, control))
		die("pthread_create failed");
	if (dial) {
		if (dial_n(dial, count, dt))
			return 1;
		for (i = 0; i < count; i++)
			pthread_join(dt[i], NULL);
		if (!nl)
			return 0;
	}
	pthread_join(lt[0], NULL);
	return 0;
}
