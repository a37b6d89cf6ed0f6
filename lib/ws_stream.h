/* SPDX-License-Identifier: GPL-2.0 */
/*
 * WebSocket message framing in userspace, over a ws_io byte stream, for
 * the part of a connection that runs before the kernel takes the socket:
 * the NBD handshake. Each write is sent as one binary message in one
 * frame; reads return message payload as a byte stream, whatever the
 * frame and message boundaries (NBD does not care about them), while
 * pings are answered, pongs dropped and a close is echoed.
 *
 * Role: the client masks every frame it sends with a fresh random key
 * (getrandom) and requires unmasked frames from the server; the server
 * role is the mirror image (used by the relay).
 *
 * When the handshake is over, ws_stream_detach() hands back the bytes read
 * from the socket but not yet parsed; they begin at a frame boundary and
 * the kernel must consume them before anything it reads itself.
 */
#ifndef _NBDWS_WS_STREAM_H
#define _NBDWS_WS_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "nbdws_types.h"
#include "nbdws_err.h"
#include "nbd_xport.h"
#include "ws_frame.h"
#include "ws_io.h"

/* Raw bytes buffered from the stream; also the most handed back. */
#define WS_STREAM_BUF		16384
/* Largest message ws_stream_send() frames (the handshake sends < 5 KiB). */
#define WS_STREAM_MAX_SEND	(1U << 20)

enum ws_role {
	WS_ROLE_CLIENT,		/* we connected: mask, expect unmasked */
	WS_ROLE_SERVER,		/* peer connected: no mask, expect masked */
};

struct ws_stream {
	const struct ws_io *io;
	enum ws_role role;
	struct ws_dec dec;
	u8 *buf;		/* WS_STREAM_BUF bytes */
	size_t start, end;	/* unparsed bytes are buf[start..end) */
	bool ended;		/* close seen or sent, or protocol error */
	u16 peer_close_code;	/* CLOSE from peer (1005: no code) */
	unsigned int pings;	/* pings answered */
	unsigned int pongs;	/* pongs received (keepalive bookkeeping) */
	struct nbdws_err err;	/* why the last call failed */
};

/*
 * Set up @s over @io in @role. @preread (may be NULL) holds bytes already
 * read from the stream, e.g. those that followed the upgrade response;
 * at most WS_STREAM_BUF (-EMSGSIZE beyond). Returns 0 or -ENOMEM.
 */
int ws_stream_init(struct ws_stream *s, const struct ws_io *io,
		   enum ws_role role, const u8 *preread, size_t preread_len);
void ws_stream_free(struct ws_stream *s);

/*
 * Send @len bytes as one binary message (one FIN frame). Returns 0 or a
 * negative errno with the reason in s->err.
 */
int ws_stream_send(struct ws_stream *s, const void *buf, size_t len);

/*
 * Read exactly @len bytes of message payload. Returns 0, -ECONNRESET when
 * the peer closed (WebSocket close, echoed, or TCP end), -EPROTO on a
 * protocol violation (a close with the matching code is sent), or a
 * transport error; s->err says which.
 */
int ws_stream_read(struct ws_stream *s, void *buf, size_t len);

/*
 * Send a close frame with @code (0: no code) unless the stream already
 * ended. Best effort: returns 0 or the transport error.
 */
int ws_stream_close(struct ws_stream *s, u16 code);

/*
 * Hand the connection over: the unparsed bytes (malloc'd into *out, NULL
 * when none) become the caller's. Fails with -EPROTO if the stream has
 * ended or is inside a frame or a fragmented message, because the new
 * owner would have to start mid-frame.
 */
int ws_stream_detach(struct ws_stream *s, u8 **out, size_t *out_len);

/*
 * Expose @s as an nbd_xport, so the NBD handshake runs over WebSocket
 * messages: each write() becomes one message, read() reads payload.
 */
void ws_stream_xport(struct ws_stream *s, struct nbd_xport *x);

#endif /* _NBDWS_WS_STREAM_H */
