// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve: the WebSocket client connection, dial and non-blocking
 * framing (see wsc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>

#include "nbd_sock.h"
#include "peer_text.h"
#include "ws_io.h"
#include "ws_upgrade.h"
#include "wsc.h"

/* Frames handed to one sendmsg(): small replies go out together. */
#define WSC_IOV_MAX	64

/*
 * Mask keys come from getrandom(), a few hundred at a time per thread:
 * one system call per reply would show at 100k replies a second.
 */
#define KEY_POOL	256

static __thread u8 key_pool[KEY_POOL];
static __thread size_t key_left;

static int mask_key(u8 key[4])
{
	if (key_left < 4) {
		size_t have = 0;

		while (have < KEY_POOL) {
			ssize_t n = getrandom(key_pool + have, KEY_POOL - have,
					      0);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			have += (size_t)n;
		}
		key_left = KEY_POOL;
	}
	memcpy(key, key_pool + KEY_POOL - key_left, 4);
	key_left -= 4;
	return 0;
}

u8 *wsc_frame_in_place(u8 *payload, size_t len, u8 opcode)
{
	u8 hdr[WS_MAX_HEADER], key[4];
	size_t hlen;

	if (mask_key(key))
		return NULL;
	hlen = ws_frame_header(hdr, opcode, true, len, key);
	if (!hlen)
		return NULL;
	ws_mask_copy(payload, payload, len, key, 0);
	memcpy(payload - hlen, hdr, hlen);
	return payload - hlen;
}

/* "host[:port]" for the Host header; the port only when not the default. */
static int host_header(const struct nbd_uri *uri, char *buf, size_t size)
{
	const char *def = uri->scheme == NBD_URI_WSS ? "443" : "80";
	const char *l = uri->host_is_ipv6 ? "[" : "";
	const char *r = uri->host_is_ipv6 ? "]" : "";
	int n;

	if (!strcmp(uri->port, def))
		n = snprintf(buf, size, "%s%s%s", l, uri->host, r);
	else
		n = snprintf(buf, size, "%s%s%s:%s", l, uri->host, r,
			     uri->port);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int time_left(long long deadline)
{
	long long left = deadline - nbd_now_ms();

	return left > 0 ? (int)left : 1;
}

static int dial_tls(struct wsc *c, const struct nbd_uri *uri,
		    const struct wsc_opts *o, struct nbdws_err *err)
{
	struct tls_opts to = {
		.server_name = uri->host,
		.ca_file = o->ca_file,
		.insecure = o->insecure,
		.cert_file = o->cert_file,
		.key_file = o->key_file,
	};
	int rc;

	/* OpenSSL setup before the connect: servers drop silent clients. */
	rc = tls_prepare(&c->tls, &to, err);
	if (!rc)
		c->is_tls = true;
	return rc;
}

int wsc_dial(struct wsc *c, const struct nbd_uri *uri,
	     const struct wsc_opts *o, int timeout_ms, enum wsc_stage *stage,
	     int *status, struct nbdws_err *err)
{
	long long deadline = nbd_now_ms() + timeout_ms;
	struct ws_upgrade_opts uo = {
		.resource = uri->ws_resource && *uri->ws_resource ?
			    uri->ws_resource : "/",
		.subprotocol = o->subprotocol,
		.authorization = o->authorization,
		.origin = o->origin,
	};
	struct ws_upgrade_result res = { 0 };
	char host[NBD_MAX_STRING + 16];
	struct ws_fd_io fio;
	struct ws_io io;
	int rc, fl;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->tx_tail = &c->tx_head;
	*stage = WSC_STAGE_SETUP;
	*status = 0;
	ws_dec_init(&c->dec, false);
	if (host_header(uri, host, sizeof(host)))
		return nbdws_err_set(err, -ENAMETOOLONG, "host name too long");
	uo.host = host;
	c->rx = malloc(WSC_RX_BUF);
	if (!c->rx)
		return nbdws_err_set(err, -ENOMEM, "out of memory");
	if (uri->scheme == NBD_URI_WSS) {
		rc = dial_tls(c, uri, o, err);
		if (rc)
			goto fail;
	}

	*stage = WSC_STAGE_TCP;
	c->fd = nbd_sock_connect_tcp(uri->host, uri->port,
				     time_left(deadline), err);
	if (c->fd < 0) {
		rc = c->fd;
		goto fail;
	}
	if (c->is_tls) {
		*stage = WSC_STAGE_TLS;
		rc = tls_connect(&c->tls, c->fd, time_left(deadline), err);
		if (rc) {
			c->is_tls = false;	/* tls_connect() freed it */
			goto fail;
		}
		tls_describe(&c->tls, c->tls_desc, sizeof(c->tls_desc));
		/* Retries may then pass what is left of a buffer, or another. */
		SSL_set_mode(c->tls.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
			     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		tls_io(&c->tls, &io);
	} else {
		ws_fd_io_init(&io, &fio, c->fd, time_left(deadline));
	}

	*stage = WSC_STAGE_HTTP;
	rc = ws_upgrade_client(&io, &uo, &res, err);
	*status = res.status;
	if (rc) {
		if (c->is_tls && c->tls.err.msg[0])
			nbdws_err_prefix(err, rc, "%s", c->tls.err.msg);
		goto fail;
	}
	/* The first frames may have come with the response. */
	if (res.preread_len > WSC_RX_BUF) {
		ws_upgrade_result_free(&res);
		rc = nbdws_err_set(err, -EPROTO, "oversized upgrade response");
		goto fail;
	}
	if (res.preread_len)
		memcpy(c->rx, res.preread, res.preread_len);
	c->rx_end = res.preread_len;
	ws_upgrade_result_free(&res);

	fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		rc = nbdws_err_set(err, -errno, "fcntl: %s", strerror(errno));
		goto fail;
	}
	return 0;

fail:
	wsc_free(c);
	return rc;
}

void wsc_free(struct wsc *c)
{
	while (c->tx_head) {
		struct wsc_tx *tx = c->tx_head;

		c->tx_head = tx->next;
		if (tx->release)
			tx->release(tx);
	}
	c->tx_tail = &c->tx_head;
	c->tx_bytes = 0;
	if (c->is_tls)
		tls_free(&c->tls);
	c->is_tls = false;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->rx);
	c->rx = NULL;
}

/* What a failed SSL_read_ex()/SSL_write_ex() means: 0 = wait. */
static int tls_result(struct wsc *c, int r, bool reading)
{
	int e = SSL_get_error(c->tls.ssl, r);
	char detail[256];

	switch (e) {
	case SSL_ERROR_WANT_READ:
		if (!reading)
			c->tls_write_wants_read = true;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		if (reading)
			c->tls_read_wants_write = true;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return nbdws_err_set(&c->err, -ECONNRESET,
				     "the relay ended the TLS session");
	case SSL_ERROR_SYSCALL:
		if (!ERR_peek_error()) {
			int en = errno ? errno : ECONNRESET;

			if (en == EPIPE)
				en = ECONNRESET;
			return nbdws_err_set(&c->err, -en,
					     "the connection to the relay failed: %s",
					     strerror(en));
		}
		/* fall through */
	default:
		ERR_error_string_n(ERR_get_error(), detail, sizeof(detail));
		ERR_clear_error();
		return nbdws_err_set(&c->err, -EPROTO, "TLS error: %s",
				     detail);
	}
}

int wsc_read(struct wsc *c)
{
	size_t space;

	if (c->rx_start == c->rx_end) {
		c->rx_start = 0;
		c->rx_end = 0;
	} else if (c->rx_start && c->rx_end == WSC_RX_BUF) {
		memmove(c->rx, c->rx + c->rx_start, c->rx_end - c->rx_start);
		c->rx_end -= c->rx_start;
		c->rx_start = 0;
	}
	space = WSC_RX_BUF - c->rx_end;
	if (!space)
		return 0;
	if (c->is_tls) {
		size_t got = 0;
		int r;

		ERR_clear_error();
		errno = 0;
		c->tls_read_wants_write = false;
		r = SSL_read_ex(c->tls.ssl, c->rx + c->rx_end, space, &got);
		if (r == 1) {
			c->rx_end += got;
			return 1;
		}
		return tls_result(c, r, true);
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->rx + c->rx_end, space, 0);

		if (n > 0) {
			c->rx_end += (size_t)n;
			return 1;
		}
		if (n == 0)
			return nbdws_err_set(&c->err, -ECONNRESET,
					     "the relay closed the TCP connection without a WebSocket close");
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return nbdws_err_set(&c->err, -errno,
				     "reading from the relay: %s",
				     strerror(errno));
	}
}

bool wsc_has_rx(const struct wsc *c)
{
	return c->rx_start != c->rx_end ||
	       (c->is_tls && c->tls.ssl && SSL_has_pending(c->tls.ssl));
}

/* The peer's close reason, made printable (lib/peer_text.h). */
static void keep_reason(struct wsc *c, const char *reason, size_t len)
{
	peer_text(c->close_reason, sizeof(c->close_reason), reason, len);
}

ssize_t wsc_payload(struct wsc *c, u8 *dst, size_t max)
{
	u8 code[2];

	for (;;) {
		size_t avail = c->rx_end - c->rx_start;
		u64 left = ws_dec_data_left(&c->dec);
		struct ws_event ev;
		size_t used;

		if (left) {
			size_t n = avail;

			if (!n)
				return 0;
			if (n > max)
				n = max;
			if (n > left)
				n = (size_t)left;
			ws_dec_data_copy(&c->dec, dst, c->rx + c->rx_start, n);
			c->rx_start += n;
			return (ssize_t)n;
		}
		if (c->close_rcvd)
			return -ESHUTDOWN;
		used = ws_dec_parse(&c->dec, c->rx + c->rx_start, avail, &ev);
		c->rx_start += used;
		switch (ev.type) {
		case WS_EV_NEED_MORE:
			return 0;
		case WS_EV_PING:
			if (wsc_queue_frame(c, WS_OP_PONG, ev.payload,
					    ev.payload_len))
				return nbdws_err_set(&c->err, -ENOMEM,
						     "cannot answer a ping: out of memory");
			break;
		case WS_EV_CLOSE:
			c->close_rcvd = true;
			c->close_code = ev.close_code;
			keep_reason(c, ev.reason ? ev.reason : "",
				    ev.reason_len);
			/* Echo the code, as RFC 6455 5.5.1 asks. */
			if (!c->close_sent) {
				c->close_sent = true;
				wsc_queue_frame(c, WS_OP_CLOSE, code,
						ev.close_code == WS_CLOSE_NO_STATUS ?
						0 : ws_close_payload(code, ev.close_code));
			}
			return -ESHUTDOWN;
		case WS_EV_ERROR:
			wsc_queue_close(c, ev.close_code,
					ev.close_code == WS_CLOSE_INVALID_DATA ?
					"invalid data" : "protocol error");
			return nbdws_err_set(&c->err, -EPROTO,
					     "WebSocket protocol error from the relay: %s",
					     ev.reason ? ev.reason : "unknown");
		default:	/* DATA: loop to copy it; PONG: nothing */
			break;
		}
	}
}

void wsc_queue(struct wsc *c, struct wsc_tx *tx)
{
	tx->next = NULL;
	tx->off = 0;
	*c->tx_tail = tx;
	c->tx_tail = &tx->next;
	c->tx_bytes += tx->len;
}

struct small_tx {
	struct wsc_tx tx;
	u8 frame[];
};

static void small_release(struct wsc_tx *tx)
{
	free(tx);
}

int wsc_queue_frame(struct wsc *c, u8 opcode, const void *payload,
		    size_t len)
{
	struct small_tx *s;
	u8 *frame;

	/* Nothing goes after our close frame (RFC 6455 5.5.1). */
	if (c->close_sent && opcode != WS_OP_CLOSE)
		return 0;
	s = malloc(sizeof(*s) + WS_MAX_HEADER + len);
	if (!s)
		return -ENOMEM;
	if (len)
		memcpy(s->frame + WS_MAX_HEADER, payload, len);
	frame = wsc_frame_in_place(s->frame + WS_MAX_HEADER, len, opcode);
	if (!frame) {
		free(s);
		return -EIO;
	}
	s->tx.data = frame;
	s->tx.len = (size_t)(s->frame + WS_MAX_HEADER + len - frame);
	s->tx.release = small_release;
	wsc_queue(c, &s->tx);
	return 0;
}

int wsc_queue_close(struct wsc *c, u16 code, const char *reason)
{
	u8 payload[WS_MAX_CONTROL];
	size_t len;

	if (c->close_sent)
		return 0;
	c->close_sent = true;
	len = ws_close_payload(payload, code);
	/* The reason is ours (ASCII), cut to what a control frame holds. */
	while (reason && *reason && len < WS_MAX_CONTROL)
		payload[len++] = (u8)*reason++;
	return wsc_queue_frame(c, WS_OP_CLOSE, payload, len);
}

/* Drop the head of the queue once it is all sent. */
static void tx_done(struct wsc *c)
{
	struct wsc_tx *tx = c->tx_head;

	c->tx_head = tx->next;
	if (!c->tx_head)
		c->tx_tail = &c->tx_head;
	if (tx->release)
		tx->release(tx);
}

static int flush_plain(struct wsc *c)
{
	while (c->tx_head) {
		struct iovec iov[WSC_IOV_MAX];
		struct msghdr mh = { .msg_iov = iov };
		struct wsc_tx *tx;
		ssize_t n;

		for (tx = c->tx_head; tx && mh.msg_iovlen < WSC_IOV_MAX;
		     tx = tx->next) {
			iov[mh.msg_iovlen].iov_base = (void *)(tx->data + tx->off);
			iov[mh.msg_iovlen].iov_len = tx->len - tx->off;
			mh.msg_iovlen++;
		}
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return nbdws_err_set(&c->err,
					     errno == EPIPE ? -ECONNRESET : -errno,
					     "sending to the relay: %s",
					     strerror(errno));
		}
		c->tx_bytes -= (size_t)n;
		while (n > 0 && c->tx_head) {
			size_t left = c->tx_head->len - c->tx_head->off;

			if ((size_t)n < left) {
				c->tx_head->off += (size_t)n;
				break;
			}
			n -= (ssize_t)left;
			tx_done(c);
		}
	}
	return 0;
}

static int flush_tls(struct wsc *c)
{
	c->tls_write_wants_read = false;
	while (c->tx_head) {
		struct wsc_tx *tx = c->tx_head;
		size_t done = 0;
		int r;

		ERR_clear_error();
		errno = 0;
		r = SSL_write_ex(c->tls.ssl, tx->data + tx->off,
				 tx->len - tx->off, &done);
		if (r != 1)
			return tls_result(c, r, false);
		tx->off += done;
		c->tx_bytes -= done;
		if (tx->off == tx->len)
			tx_done(c);
	}
	return 0;
}

int wsc_flush(struct wsc *c)
{
	return c->is_tls ? flush_tls(c) : flush_plain(c);
}

short wsc_events(const struct wsc *c, bool want_read)
{
	short ev = 0;

	if (want_read || c->tls_write_wants_read)
		ev |= POLLIN;
	if (c->tx_head || c->tls_read_wants_write)
		ev |= POLLOUT;
	return ev;
}
