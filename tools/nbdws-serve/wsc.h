/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-serve: the WebSocket connection to the relay, client role. The
 * dial (TCP, TLS, HTTP upgrade) runs with lib/'s blocking helpers and one
 * deadline; after the upgrade the connection is driven by the caller's
 * poll loop: raw bytes are read when the socket is readable, message
 * payload is taken out of them as a byte stream (pings answered, a close
 * noted and echoed), and whole frames queued for sending go out when the
 * socket is writable. TLS stays in userspace (OpenSSL, non-blocking).
 *
 * Every frame we send is masked with a fresh key (RFC 6455 5.3); frames
 * built elsewhere (reply frames made by the workers) must be masked too.
 */
#ifndef _NBDWS_SERVE_WSC_H
#define _NBDWS_SERVE_WSC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "nbdws_types.h"
#include "nbdws_err.h"
#include "nbd_uri.h"
#include "tls.h"
#include "ws_frame.h"

/* Raw bytes read from the socket at most at once. */
#define WSC_RX_BUF	(256U << 10)

struct wsc_opts {
	const char *authorization;	/* Authorization value, or NULL */
	const char *subprotocol;	/* Sec-WebSocket-Protocol, or NULL */
	const char *origin;		/* Origin, or NULL */
	const char *ca_file;		/* wss: CA bundle, NULL: the system's */
	const char *cert_file;		/* wss: client certificate, or NULL */
	const char *key_file;		/* wss: its key, NULL: in cert_file */
	bool insecure;			/* wss: no certificate check */
};

/* Where a dial failed, which decides whether trying again can help. */
enum wsc_stage {
	WSC_STAGE_SETUP,	/* options, TLS context: never retried */
	WSC_STAGE_TCP,		/* connect(): the relay is not there */
	WSC_STAGE_TLS,		/* TLS handshake */
	WSC_STAGE_HTTP,		/* the upgrade request and its answer */
};

/* One frame (or several) waiting to be sent, owned by whoever queued it. */
struct wsc_tx {
	struct wsc_tx *next;
	const u8 *data;
	size_t len;
	size_t off;			/* bytes already sent */
	void (*release)(struct wsc_tx *tx);	/* after sending or dropping */
};

struct wsc {
	int fd;
	bool is_tls;
	struct tls_conn tls;
	struct ws_dec dec;
	u8 *rx;
	size_t rx_start, rx_end;
	struct wsc_tx *tx_head, **tx_tail;
	size_t tx_bytes;		/* queued, not yet sent */
	bool tls_read_wants_write;	/* SSL_read() asked for POLLOUT */
	bool tls_write_wants_read;	/* SSL_write() asked for POLLIN */
	bool close_sent;
	bool close_rcvd;
	u16 close_code;			/* the peer's (1005: none) */
	char close_reason[WS_MAX_CONTROL + 1];	/* printable */
	char tls_desc[96];
	struct nbdws_err err;
};

/*
 * Connect to @uri (ws:// or wss://) and run the upgrade within
 * @timeout_ms. Returns 0 with @c ready for the poll loop (socket
 * non-blocking), or a negative errno with @err set, *@stage saying how
 * far it got and *@status the HTTP status if a response came (else 0).
 */
int wsc_dial(struct wsc *c, const struct nbd_uri *uri,
	     const struct wsc_opts *o, int timeout_ms, enum wsc_stage *stage,
	     int *status, struct nbdws_err *err);

/* Drop queued frames (releasing them), close the socket, free @c. */
void wsc_free(struct wsc *c);

/*
 * Read what the socket has into the receive buffer. Returns 1 when bytes
 * came, 0 when none are there now (or the buffer is full), -ECONNRESET
 * when the peer ended the stream, another negative errno on failure;
 * c->err says why.
 */
int wsc_read(struct wsc *c);

/*
 * Take up to @max bytes of message payload out of the receive buffer into
 * @dst. Returns the count, 0 when the buffer holds no payload yet (read
 * more), -ESHUTDOWN once the peer's close frame came (echoed; see
 * close_code), -EPROTO on a protocol violation (answered with a close
 * frame). Pings are answered on the way.
 */
ssize_t wsc_payload(struct wsc *c, u8 *dst, size_t max);

/* True if the receive buffer holds bytes not yet parsed. */
bool wsc_has_rx(const struct wsc *c);

/* Queue @tx (one or more whole frames) behind what is queued. */
void wsc_queue(struct wsc *c, struct wsc_tx *tx);

/*
 * Frame @len bytes of @payload as one masked frame with @opcode and queue
 * it (copied). 0 or -ENOMEM / the getrandom() error.
 */
int wsc_queue_frame(struct wsc *c, u8 opcode, const void *payload,
		    size_t len);

/*
 * Queue a close frame with @code and @reason (ASCII, <= 123 bytes) unless
 * one was sent already; nothing is sent or read after it.
 */
int wsc_queue_close(struct wsc *c, u16 code, const char *reason);

/*
 * Send what the socket takes now. Returns 0 (the queue may not be empty:
 * poll for wsc_events()), or a negative errno with c->err set.
 */
int wsc_flush(struct wsc *c);

/* The poll events to wait for; @want_read: the caller can take input. */
short wsc_events(const struct wsc *c, bool want_read);

/*
 * Build a masked frame header for a @len byte payload that sits at
 * @payload, right in front of it (the caller leaves WS_MAX_HEADER bytes
 * of room there), and mask the payload in place with a fresh key.
 * Returns the frame's start (payload - header length), or NULL if
 * getrandom() failed. Thread-safe: the workers call it.
 */
u8 *wsc_frame_in_place(u8 *payload, size_t len, u8 opcode);

#endif /* _NBDWS_SERVE_WSC_H */
