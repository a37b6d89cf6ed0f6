// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve: one connection serving the file. One thread runs this
 * loop: it reads frames when the socket is readable, feeds their payload
 * to the NBD server machine, queues parsed requests for the workers,
 * queues their reply frames as they complete (in that order, which is not
 * the order of the requests) and sends when the socket takes it.
 *
 * Input stops while too much is in flight or waiting to be sent, so a
 * client that sends faster than the disk or the link cannot make us
 * buffer without bound; TCP then pushes back on it.
 */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "nbd_sock.h"
#include "serve.h"

/* Past these, no more input is taken until some of it is done. */
#define INFLIGHT_BYTES_MAX	(64U << 20)
#define TX_BYTES_MAX		(32U << 20)

struct fsess {
	struct serve_ctx *ctx;
	struct wsc *c;
	struct nbdsrv ns;
	size_t inflight;
	u64 inflight_bytes;
	int fail;			/* a send failed inside a callback */
	bool planned_set;		/* the first reason to end wins */
	enum conn_end planned;
	long long drain_deadline;
};

static int hs_send(void *arg, const void *msg, size_t len)
{
	struct fsess *f = arg;
	int rc = wsc_queue_frame(f->c, WS_OP_BINARY, msg, len);

	if (rc)
		f->fail = rc;
	return rc;
}

static void do_submit(void *arg, struct sreq *r)
{
	struct fsess *f = arg;

	f->inflight++;
	f->inflight_bytes += r->len;
	pool_submit(f->ctx->pool, r);
}

/* Decide how the connection ends, unless that is decided already. */
static void plan(struct fsess *f, enum conn_end e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void plan(struct fsess *f, enum conn_end e, const char *fmt, ...)
{
	va_list ap;

	if (f->planned_set)
		return;
	f->planned_set = true;
	f->planned = e;
	f->drain_deadline = nbd_now_ms() + SERVE_DRAIN_MS;
	va_start(ap, fmt);
	vsnprintf(f->ctx->why, sizeof(f->ctx->why), fmt, ap);
	va_end(ap);
}

/* Queue the replies that are ready, or drop them once we closed. */
static int take_done(struct fsess *f)
{
	struct sreq *r = pool_take_done(f->ctx->pool);
	struct serve_stats *st = &f->ctx->stats;
	int rc = 0;

	while (r) {
		struct sreq *next = r->next;

		f->inflight--;
		f->inflight_bytes -= r->len;
		st->requests++;
		if (!r->error && r->type == NBDP_CMD_READ)
			st->bytes_read += r->len;
		else if (!r->error && r->type == NBDP_CMD_WRITE)
			st->bytes_written += r->len;
		if (!r->tx.len)
			rc = -EIO;
		if (f->c->close_sent || !r->tx.len)
			sreq_free(r);
		else
			wsc_queue(f->c, &r->tx);
		r = next;
	}
	return rc;
}

/*
 * Feed what the receive buffer holds to the NBD machine. Once the end is
 * decided, payload is dropped but control frames still count: the
 * relay's close frame is what we wait for.
 */
static void parse_input(struct fsess *f)
{
	u8 scratch[4096];

	for (;;) {
		u8 *dst = NULL;
		size_t want = f->planned_set ? 0 : nbdsrv_want(&f->ns, &dst);
		ssize_t got;
		int rc;

		if (!want) {
			dst = scratch;
			want = sizeof(scratch);
		}
		got = wsc_payload(f->c, dst, want);
		if (got == 0)
			return;
		if (got == -ESHUTDOWN) {
			char why[sizeof(f->ctx->why)];
			enum conn_end e = serve_peer_close(f->c, why,
							   sizeof(why));

			plan(f, e, "%s", why);
			return;
		}
		if (got < 0) {
			plan(f, END_FAILED, "%s", f->c->err.msg);
			return;
		}
		if (dst == scratch)
			continue;
		rc = nbdsrv_input(&f->ns, (size_t)got);
		if (!rc && f->fail)
			rc = nbdws_err_set(&f->ns.err, f->fail,
					   "cannot queue a reply: %s",
					   strerror(-f->fail));
		if (!rc && f->ns.state == NBDSRV_END)
			plan(f, END_DONE, "%s", f->ns.disc ?
			     "the client disconnected the device" :
			     "the client ended the handshake");
		if (rc) {
			plan(f, END_FAILED, "%s", f->ns.err.msg);
			wsc_queue_close(f->c, rc == -EPROTO ? WS_CLOSE_PROTOCOL :
					WS_CLOSE_INTERNAL,
					rc == -EPROTO ? "NBD protocol error" :
					"server error");
			return;
		}
	}
}

/* Wait for the workers to finish what they have, dropping the replies. */
static void drain(struct fsess *f)
{
	f->c->close_sent = true;	/* take_done() drops the replies */
	while (f->inflight) {
		struct pollfd pfd = { .fd = f->ctx->pool->efd, .events = POLLIN };

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			break;
		take_done(f);
	}
}

static int timeout_until(long long deadline, long long now)
{
	return deadline > now ? (int)(deadline - now) : 0;
}

/* The socket failed or ended: as planned if closing, else a drop. */
static enum conn_end transport_end(struct fsess *f)
{
	if (f->planned_set)
		return f->planned;
	snprintf(f->ctx->why, sizeof(f->ctx->why), "%s", f->c->err.msg);
	return END_DROPPED;
}

enum conn_end serve_file_conn(struct serve_ctx *ctx, struct wsc *c)
{
	struct fsess f = { .ctx = ctx, .c = c };
	struct nbdsrv_ops ops = {
		.ctx = &f, .send = hs_send, .submit = do_submit,
	};
	struct nbdsrv_export exp;
	long long close_deadline = 0;
	enum conn_end end;
	int rc;

	src_export(ctx->src, &exp);
	rc = nbdsrv_start(&f.ns, &exp, &ops);
	if (rc) {
		snprintf(ctx->why, sizeof(ctx->why), "%s", f.ns.err.msg);
		nbdsrv_free(&f.ns);
		return END_FAILED;
	}
	for (;;) {
		struct pollfd pfd[3];
		bool want_read;
		int timeout = -1;
		long long now;

		if (take_done(&f)) {
			plan(&f, END_FAILED,
			     "no randomness for WebSocket mask keys");
			wsc_queue_close(c, WS_CLOSE_INTERNAL, "server error");
		}
		now = nbd_now_ms();
		/* Replies still due go out before our close. */
		if (f.planned_set && !c->close_sent &&
		    (!f.inflight || now >= f.drain_deadline))
			wsc_queue_close(c, WS_CLOSE_NORMAL,
					f.planned == END_STOPPED ? "stopped" :
					"disconnected");
		if (c->close_sent && !close_deadline)
			close_deadline = now + SERVE_CLOSE_WAIT_MS;

		want_read = !c->close_rcvd &&
			    (f.planned_set ||
			     (f.inflight_bytes < INFLIGHT_BYTES_MAX &&
			      c->tx_bytes < TX_BYTES_MAX));
		if (want_read) {
			if (wsc_read(c) < 0) {
				end = transport_end(&f);
				break;
			}
			parse_input(&f);
		}
		if (wsc_flush(c)) {
			end = transport_end(&f);
			break;
		}
		if (c->close_sent && !c->tx_head &&
		    (c->close_rcvd || now >= close_deadline)) {
			end = f.planned_set ? f.planned : END_FAILED;
			break;
		}
		if (close_deadline)
			timeout = timeout_until(close_deadline, now);
		else if (f.planned_set)
			timeout = timeout_until(f.drain_deadline, now);
		/* Input may have decided the end: act on it at once. */
		if ((want_read && wsc_has_rx(c)) ||
		    (f.planned_set && !c->close_sent && !f.inflight))
			timeout = 0;

		pfd[0].fd = c->fd;
		pfd[0].events = wsc_events(c, want_read);
		pfd[1].fd = ctx->pool->efd;
		pfd[1].events = POLLIN;
		pfd[2].fd = ctx->sigfd;
		pfd[2].events = POLLIN;
		if (poll(pfd, 3, timeout) < 0 && errno != EINTR) {
			plan(&f, END_FAILED, "poll: %s", strerror(errno));
			end = END_FAILED;
			break;
		}
		if ((pfd[2].revents & POLLIN) && serve_take_signal(ctx))
			plan(&f, END_STOPPED, "stopped by %s",
			     serve_signame(ctx->signo));
	}
	drain(&f);
	nbdsrv_free(&f.ns);
	return end;
}
