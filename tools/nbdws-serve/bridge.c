// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve: one connection relaying an NBD server. The relay is the
 * NBD client and the NBD server behind the URI is the server; we carry
 * the byte stream both ways unchanged, handshake included: WebSocket
 * payload goes to the server's socket, and what the server sends goes
 * back in binary messages, one per read, masked.
 *
 * Every WebSocket connection gets a connection of its own to the NBD
 * server, so after a reconnect the relay's new handshake meets a server
 * at the start of its negotiation.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd_sock.h"
#include "serve.h"

#define UP_BUF		(1U << 20)	/* relay bytes waiting for the server */
#define CHUNK		(256U << 10)	/* server bytes per message */
#define TX_MAX		(8U << 20)	/* queued to the relay, at most */
/* After the server hung up, how long the relay has to close first. */
#define UP_EOF_WAIT_MS	1000

struct chunk {
	struct wsc_tx tx;
	u8 buf[];
};

struct bsess {
	struct serve_ctx *ctx;
	struct wsc *c;
	int up;
	u8 *ubuf;
	size_t ustart, uend;
	struct chunk *spare;
	bool up_eof;
	long long up_eof_deadline;
	bool planned_set;
	enum conn_end planned;
};

static void plan(struct bsess *b, enum conn_end e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void plan(struct bsess *b, enum conn_end e, const char *fmt, ...)
{
	va_list ap;

	if (b->planned_set)
		return;
	b->planned_set = true;
	b->planned = e;
	va_start(ap, fmt);
	vsnprintf(b->ctx->why, sizeof(b->ctx->why), fmt, ap);
	va_end(ap);
}

static void chunk_release(struct wsc_tx *tx)
{
	free(tx);
}

/* WebSocket payload into the buffer for the server. */
static void from_relay(struct bsess *b)
{
	u8 scratch[4096];

	if (b->ustart == b->uend) {
		b->ustart = 0;
		b->uend = 0;
	} else if (b->ustart && b->uend == UP_BUF) {
		memmove(b->ubuf, b->ubuf + b->ustart, b->uend - b->ustart);
		b->uend -= b->ustart;
		b->ustart = 0;
	}
	for (;;) {
		bool drop = b->planned_set;
		u8 *dst = drop ? scratch : b->ubuf + b->uend;
		size_t room = drop ? sizeof(scratch) : UP_BUF - b->uend;
		ssize_t got;

		if (!room)
			return;
		got = wsc_payload(b->c, dst, room);
		if (got == 0)
			return;
		if (got == -ESHUTDOWN) {
			char why[sizeof(b->ctx->why)];
			enum conn_end e = serve_peer_close(b->c, why,
							   sizeof(why));

			plan(b, e, "%s", why);
			return;
		}
		if (got < 0) {
			plan(b, END_FAILED, "%s", b->c->err.msg);
			return;
		}
		if (!drop) {
			b->uend += (size_t)got;
			b->ctx->stats.bytes_written += (u64)got;
		}
	}
}

static int to_server(struct bsess *b)
{
	while (b->ustart < b->uend) {
		ssize_t n = send(b->up, b->ubuf + b->ustart,
				 b->uend - b->ustart, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		b->ustart += (size_t)n;
	}
	return 0;
}

/* Server bytes into one masked message each. */
static int from_server(struct bsess *b)
{
	while (!b->up_eof && b->c->tx_bytes < TX_MAX) {
		struct chunk *k = b->spare;
		ssize_t n;

		if (!k) {
			k = malloc(sizeof(*k) + WS_MAX_HEADER + CHUNK);
			if (!k)
				return -ENOMEM;
		}
		b->spare = k;
		n = recv(b->up, k->buf + WS_MAX_HEADER, CHUNK, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		if (n == 0) {
			b->up_eof = true;
			b->up_eof_deadline = nbd_now_ms() + UP_EOF_WAIT_MS;
			return 0;
		}
		k->tx.data = wsc_frame_in_place(k->buf + WS_MAX_HEADER,
						(size_t)n, WS_OP_BINARY);
		if (!k->tx.data)
			return -EIO;
		k->tx.len = (size_t)(k->buf + WS_MAX_HEADER + n - k->tx.data);
		k->tx.release = chunk_release;
		b->spare = NULL;
		wsc_queue(b->c, &k->tx);
		b->ctx->stats.bytes_read += (u64)n;
	}
	return 0;
}

static int connect_server(struct bsess *b)
{
	const struct serve_opts *o = b->ctx->o;
	struct nbdws_err err = { { 0 } };
	int fl;

	b->up = nbd_sock_connect_uri(&o->src_uri, o->connect_timeout_ms, &err);
	if (b->up < 0) {
		plan(b, END_FAILED, "cannot reach the NBD server %s: %s",
		     o->source, err.msg);
		return b->up;
	}
	fl = fcntl(b->up, F_GETFL);
	if (fl < 0 || fcntl(b->up, F_SETFL, fl | O_NONBLOCK) < 0) {
		plan(b, END_FAILED, "fcntl: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int timeout_until(long long deadline, long long now)
{
	return deadline > now ? (int)(deadline - now) : 0;
}

static enum conn_end bridge_loop(struct bsess *b)
{
	struct wsc *c = b->c;
	long long close_deadline = 0;
	int rc;

	for (;;) {
		struct pollfd pfd[3];
		bool want_read, up_in;
		int timeout = -1;
		long long now = nbd_now_ms();

		if (b->up_eof && !b->planned_set && now >= b->up_eof_deadline)
			plan(b, END_FAILED,
			     "the NBD server %s closed the connection",
			     b->ctx->o->source);
		if (b->planned_set && !c->close_sent)
			wsc_queue_close(c, WS_CLOSE_NORMAL,
					b->planned == END_STOPPED ? "stopped" :
					"NBD server closed the connection");
		if (c->close_sent && !close_deadline)
			close_deadline = now + SERVE_CLOSE_WAIT_MS;

		want_read = !c->close_rcvd &&
			    (b->planned_set || b->uend < UP_BUF ||
			     b->ustart > 0);
		if (want_read) {
			if (wsc_read(c) < 0)
				goto transport;
			from_relay(b);
		}
		rc = to_server(b);
		if (!rc && !b->planned_set)
			rc = from_server(b);
		if (rc && !b->planned_set) {
			plan(b, END_FAILED, "the NBD server %s: %s",
			     b->ctx->o->source, strerror(-rc));
			continue;
		}
		if (wsc_flush(c))
			goto transport;
		if (c->close_sent && !c->tx_head &&
		    (c->close_rcvd || now >= close_deadline))
			return b->planned_set ? b->planned : END_FAILED;

		if (close_deadline)
			timeout = timeout_until(close_deadline, now);
		else if (b->up_eof)
			timeout = timeout_until(b->up_eof_deadline, now);
		if (want_read && wsc_has_rx(c))
			timeout = 0;
		up_in = !b->up_eof && !b->planned_set && c->tx_bytes < TX_MAX;
		pfd[0].fd = c->fd;
		pfd[0].events = wsc_events(c, want_read);
		pfd[1].fd = b->up;
		pfd[1].events = (short)((up_in ? POLLIN : 0) |
				       (b->ustart < b->uend ? POLLOUT : 0));
		pfd[2].fd = b->ctx->sigfd;
		pfd[2].events = POLLIN;
		if (poll(pfd, 3, timeout) < 0 && errno != EINTR) {
			plan(b, END_FAILED, "poll: %s", strerror(errno));
			return END_FAILED;
		}
		if ((pfd[2].revents & POLLIN) && serve_take_signal(b->ctx))
			plan(b, END_STOPPED, "stopped by %s",
			     serve_signame(b->ctx->signo));
	}

transport:
	if (b->planned_set)
		return b->planned;
	snprintf(b->ctx->why, sizeof(b->ctx->why), "%s", c->err.msg);
	return END_DROPPED;
}

enum conn_end serve_bridge_conn(struct serve_ctx *ctx, struct wsc *c)
{
	struct bsess b = { .ctx = ctx, .c = c, .up = -1 };
	enum conn_end end;

	b.ubuf = malloc(UP_BUF);
	if (!b.ubuf) {
		snprintf(ctx->why, sizeof(ctx->why), "out of memory");
		return END_FAILED;
	}
	if (connect_server(&b)) {
		/* Tell the relay why, as the loop would. */
		wsc_queue_close(c, WS_CLOSE_INTERNAL, "NBD server unreachable");
		wsc_flush(c);
		end = END_FAILED;
	} else {
		end = bridge_loop(&b);
	}
	if (b.up >= 0)
		close(b.up);
	free(b.spare);
	free(b.ubuf);
	return end;
}
