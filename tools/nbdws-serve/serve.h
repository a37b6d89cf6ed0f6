/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-serve: serve a file or an NBD server to nbdws-relay over one
 * WebSocket connection, as the NBD server of the relay's NBD client.
 *
 *   main.c    signals, the dial and reconnect loop, exit statuses
 *   cli.c     the command line
 *   wsc.c     the WebSocket client connection (dial, frames, TLS)
 *   nbdsrv.c  the NBD server protocol, no I/O
 *   src.c     the file: size, pread/pwrite, flush, trim, zeroes
 *   pool.c    worker threads doing the file I/O, replies in completion
 *             order
 *   session.c one connection serving the file (event loop)
 *   bridge.c  one connection relaying an NBD server's byte stream
 */
#ifndef _NBDWS_SERVE_H
#define _NBDWS_SERVE_H

#include <stdbool.h>

#include "nbd_uri.h"
#include "nbdws_types.h"
#include "pool.h"
#include "src.h"
#include "wsc.h"

#define SERVE_DEFAULT_HOLD_MS		60000
#define SERVE_DEFAULT_TIMEOUT_MS	10000
#define SERVE_DEFAULT_THREADS		4
/* Reconnect backoff: 0.5 s, doubling, at most 8 s. */
#define SERVE_BACKOFF_MIN_MS		500
#define SERVE_BACKOFF_MAX_MS		8000
/* After our close frame, how long the relay has to answer it. */
#define SERVE_CLOSE_WAIT_MS		2000
/* On a signal, how long requests in flight may take to finish. */
#define SERVE_DRAIN_MS			5000

/* Exit statuses. */
enum {
	SERVE_EXIT_OK = 0,
	SERVE_EXIT_FAIL = 1,
	SERVE_EXIT_USAGE = 2,
};

struct serve_opts {
	const char *source;		/* as given */
	const char *relay;		/* as given */
	struct nbd_uri relay_uri;
	struct nbd_uri src_uri;		/* when src_is_nbd */
	bool src_is_nbd;
	struct wsc_opts ws;
	char *token;			/* owned, wiped on exit */
	char *auth;			/* "Bearer TOKEN", owned, wiped */
	char *protocols;		/* owned subprotocol list, or NULL */
	bool token_as_subprotocol;
	bool writable;
	int hold_ms;
	int connect_timeout_ms;
	unsigned int threads;
	int verbose;
};

/* How one connection ended. */
enum conn_end {
	END_STOPPED,		/* a signal: we closed with 1000 */
	END_DONE,		/* the client disconnected (DISC, ABORT) */
	END_PEER_CLOSED,	/* the relay closed normally */
	END_DROPPED,		/* lost without a close: reconnect */
	END_FAILED,		/* a failure reconnecting cannot fix */
};

struct serve_stats {
	u64 requests;
	u64 bytes_read;			/* by the client: sent to it */
	u64 bytes_written;		/* by the client: received from it */
};

/* What a connection loop needs besides the connection. */
struct serve_ctx {
	const struct serve_opts *o;
	struct src *src;		/* file mode */
	struct pool *pool;		/* file mode */
	int sigfd;			/* signalfd for SIGINT and SIGTERM */
	int signo;			/* the signal that stopped us, or 0 */
	struct serve_stats stats;
	bool connected;			/* at least once: stats to report */
	char why[640];			/* how the connection ended */
};

/* serve_parse_args(): --help or --version was done, exit 0. */
#define SERVE_ARGS_DONE		(-1)

/*
 * Parse the command line into @o. 0 to go on, SERVE_ARGS_DONE, or an
 * exit status (a message was printed). serve_opts_free() in every case.
 */
int serve_parse_args(struct serve_opts *o, int argc, char **argv);
void serve_opts_free(struct serve_opts *o);

/* Run one connection serving the file / bridging the NBD server. */
enum conn_end serve_file_conn(struct serve_ctx *ctx, struct wsc *c);
enum conn_end serve_bridge_conn(struct serve_ctx *ctx, struct wsc *c);

/* Read a pending SIGINT/SIGTERM from ctx->sigfd into ctx->signo. */
bool serve_take_signal(struct serve_ctx *ctx);
/* "SIGINT" or "SIGTERM". */
const char *serve_signame(int signo);

/*
 * How a relay's close frame ends the connection, with a sentence in @why:
 * 1000 normal, 1001 from a relay shutting down; a 1001 from the kernel
 * (timeout, no pong) leaves the device held, so it counts as a drop;
 * anything else is a failure.
 */
enum conn_end serve_peer_close(const struct wsc *c, char *why, size_t size);

/* One line to stderr, prefixed "nbdws-serve: ". */
void serve_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* _NBDWS_SERVE_H */
