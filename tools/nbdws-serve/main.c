// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve: start, the dial and reconnect loop, and how it all ends
 * (see serve.h).
 *
 * A connection that drops without a close frame leaves the relay holding
 * the device for its client, so we dial again, 0.5 s after the drop and
 * then with the wait doubling up to 8 s, until --hold has passed since
 * the drop. A refusal (HTTP 401, 403, 404, ...) ends it: dialing again
 * would be refused again. A slot still busy with our old connection
 * (409) or a relay not listening yet is worth another try.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "nbd_sock.h"
#include "serve.h"

static int g_sigfd = -1;

void serve_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "nbdws-serve: ");
	va_start(ap, fmt);
	(void)vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

const char *serve_signame(int signo)
{
	return signo == SIGINT ? "SIGINT" : "SIGTERM";
}

bool serve_take_signal(struct serve_ctx *ctx)
{
	struct signalfd_siginfo si;

	if (read(ctx->sigfd, &si, sizeof(si)) != sizeof(si))
		return false;
	ctx->signo = (int)si.ssi_signo;
	return true;
}

enum conn_end serve_peer_close(const struct wsc *c, char *why, size_t size)
{
	const char *r = c->close_reason;
	const char *sep = *r ? " " : "";
	u16 code = c->close_code;

	if (code == WS_CLOSE_NORMAL || code == WS_CLOSE_NO_STATUS ||
	    (code == WS_CLOSE_GOING_AWAY && !strcmp(r, "relay shutting down"))) {
		snprintf(why, size, "the relay closed the connection (%u%s%s)",
			 code, sep, r);
		return END_PEER_CLOSED;
	}
	if (code == WS_CLOSE_GOING_AWAY) {
		snprintf(why, size,
			 "the relay dropped the connection (1001%s%s: a request timed out or a ping went unanswered)",
			 sep, r);
		return END_DROPPED;
	}
	snprintf(why, size, "the relay closed the connection with %u%s%s",
		 code, sep, r);
	return END_FAILED;
}

/* Every wait inside lib/ (TCP, TLS, upgrade) also ends on a signal. */
static int wait_or_signal(int fd, short events, long long deadline_ms)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = events },
		{ .fd = g_sigfd, .events = POLLIN },
	};

	for (;;) {
		long long left = deadline_ms - nbd_now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(p, 2, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (p[1].revents & POLLIN)
			return -EINTR;
		if (n > 0)
			return 0;
	}
}

/* Sleep @ms unless a signal comes: false then. */
static bool nap(struct serve_ctx *ctx, int ms)
{
	struct pollfd p = { .fd = ctx->sigfd, .events = POLLIN };

	return poll(&p, 1, ms) <= 0 || !(p.revents & POLLIN);
}

static bool dial_retryable(enum wsc_stage stage, int status, int rc)
{
	switch (stage) {
	case WSC_STAGE_TCP:
		return true;
	case WSC_STAGE_TLS:
		return rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EPIPE;
	case WSC_STAGE_HTTP:
		return !status || status == 408 || status == 409 ||
		       status == 429 || status >= 500;
	default:
		return false;
	}
}

static const char *dial_hint(enum wsc_stage stage, int status, int rc,
			     const char *msg)
{
	if (status == 401)
		return "give the slot's token with --token or --token-file";
	if (status == 403)
		return "the token is not valid for this slot, or the relay does not accept this --origin";
	if (status == 404)
		return "the relay has no such slot: the URL's path names it";
	if (status == 409)
		return "another client is serving this slot";
	if (stage == WSC_STAGE_TLS && rc == -ECONNREFUSED &&
	    strstr(msg, "certificate"))
		return "give the CA that signed the relay's certificate with --cafile, or --insecure (tests only)";
	return NULL;
}

static void report_dial(const char *what, enum wsc_stage stage, int status,
			int rc, const char *msg)
{
	const char *hint = dial_hint(stage, status, rc, msg);

	serve_log("%s: %s", what, msg);
	if (hint)
		serve_log("hint: %s", hint);
}

static enum conn_end run_conn(struct serve_ctx *ctx, struct wsc *c)
{
	return ctx->o->src_is_nbd ? serve_bridge_conn(ctx, c) :
				    serve_file_conn(ctx, c);
}

/* Reconnect after a drop: 0 connected, else an exit status. */
static int redial(struct serve_ctx *ctx, struct wsc *c, long long drop_at)
{
	const struct serve_opts *o = ctx->o;
	int backoff = SERVE_BACKOFF_MIN_MS;

	for (;;) {
		long long left = drop_at + o->hold_ms - nbd_now_ms();
		struct nbdws_err err = { { 0 } };
		enum wsc_stage stage;
		int status, rc;

		if (left <= 0)
			return SERVE_EXIT_FAIL;
		if (!nap(ctx, backoff < left ? backoff : (int)left)) {
			serve_take_signal(ctx);
			serve_log("stopped by %s while reconnecting",
				  serve_signame(ctx->signo));
			return SERVE_EXIT_OK;
		}
		backoff = backoff * 2 > SERVE_BACKOFF_MAX_MS ?
			  SERVE_BACKOFF_MAX_MS : backoff * 2;
		rc = wsc_dial(c, &o->relay_uri, &o->ws, o->connect_timeout_ms,
			      &stage, &status, &err);
		if (!rc)
			return 0;
		if (rc == -EINTR && serve_take_signal(ctx)) {
			serve_log("stopped by %s while reconnecting",
				  serve_signame(ctx->signo));
			return SERVE_EXIT_OK;
		}
		if (!dial_retryable(stage, status, rc)) {
			report_dial("the relay refused the reconnection", stage,
				    status, rc, err.msg);
			return SERVE_EXIT_FAIL;
		}
		if (drop_at + o->hold_ms - nbd_now_ms() <= 0) {
			serve_log("no connection to the relay within --hold %.1f s of the drop; the last attempt: %s",
				  o->hold_ms / 1000.0, err.msg);
			return SERVE_EXIT_FAIL;
		}
		if (o->verbose)
			serve_log("reconnecting: %s", err.msg);
	}
}

static int run(struct serve_ctx *ctx)
{
	const struct serve_opts *o = ctx->o;
	struct nbdws_err err = { { 0 } };
	enum wsc_stage stage;
	struct wsc c;
	int status, rc;

	rc = wsc_dial(&c, &o->relay_uri, &o->ws, o->connect_timeout_ms,
		      &stage, &status, &err);
	if (rc == -EINTR && serve_take_signal(ctx)) {
		serve_log("stopped by %s while connecting",
			  serve_signame(ctx->signo));
		return SERVE_EXIT_OK;
	}
	if (rc) {
		report_dial("cannot connect to the relay", stage, status, rc,
			    err.msg);
		return SERVE_EXIT_FAIL;
	}
	ctx->connected = true;
	for (;;) {
		enum conn_end end;

		if (o->verbose)
			serve_log("connected to %s%s%s", o->relay,
				  c.tls_desc[0] ? " with " : "", c.tls_desc);
		end = run_conn(ctx, &c);
		wsc_free(&c);
		switch (end) {
		case END_STOPPED:
		case END_DONE:
		case END_PEER_CLOSED:
			serve_log("%s", ctx->why);
			return SERVE_EXIT_OK;
		case END_FAILED:
			serve_log("%s", ctx->why);
			return SERVE_EXIT_FAIL;
		case END_DROPPED:
			break;
		}
		if (!o->hold_ms) {
			serve_log("connection lost: %s (--hold 0: not reconnecting)",
				  ctx->why);
			return SERVE_EXIT_FAIL;
		}
		serve_log("connection lost: %s; reconnecting for up to %.1f s",
			  ctx->why, o->hold_ms / 1000.0);
		rc = redial(ctx, &c, nbd_now_ms());
		if (rc)
			return rc;
		serve_log("reconnected to %s", o->relay);
	}
}

static void report_stats(const struct serve_ctx *ctx)
{
	const struct serve_stats *s = &ctx->stats;

	if (ctx->o->src_is_nbd)
		serve_log("relayed %.1f MiB to the relay and %.1f MiB from it",
			  (double)s->bytes_read / 1048576.0,
			  (double)s->bytes_written / 1048576.0);
	else
		serve_log("served %llu requests: %.1f MiB read, %.1f MiB written",
			  (unsigned long long)s->requests,
			  (double)s->bytes_read / 1048576.0,
			  (double)s->bytes_written / 1048576.0);
}

static int setup_signals(void)
{
	sigset_t set;

	/* Peers that vanish must show as EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	g_sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return g_sigfd < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	struct serve_ctx ctx = { .sigfd = -1 };
	struct nbdws_err err = { { 0 } };
	struct serve_opts o;
	struct src src = { .fd = -1 };
	struct pool pool;
	bool have_pool = false;
	int rc;

	rc = serve_parse_args(&o, argc, argv);
	if (rc) {
		serve_opts_free(&o);
		return rc == SERVE_ARGS_DONE ? SERVE_EXIT_OK : rc;
	}
	ctx.o = &o;
	if (setup_signals()) {
		serve_log("cannot set up signal handling: %s", strerror(errno));
		serve_opts_free(&o);
		return SERVE_EXIT_FAIL;
	}
	ctx.sigfd = g_sigfd;
	nbd_sock_set_wait_hook(wait_or_signal);
	if (!o.src_is_nbd) {
		rc = src_open(&src, o.source, o.writable, &err);
		if (!rc) {
			rc = pool_start(&pool, &src, o.threads, &err);
			have_pool = !rc;
		}
		if (rc) {
			serve_log("%s", err.msg);
			src_close(&src);
			serve_opts_free(&o);
			close(g_sigfd);
			return SERVE_EXIT_FAIL;
		}
		ctx.src = &src;
		ctx.pool = &pool;
		if (o.verbose)
			serve_log("serving %s (%llu bytes, %s) to %s", o.source,
				  (unsigned long long)src.size,
				  o.writable ? "writable" : "read-only",
				  o.relay);
	}
	rc = run(&ctx);
	if (ctx.connected)
		report_stats(&ctx);
	if (have_pool)
		pool_stop(&pool);
	src_close(&src);
	serve_opts_free(&o);
	close(g_sigfd);
	return rc;
}
