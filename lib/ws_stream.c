// SPDX-License-Identifier: GPL-2.0
/*
 * WebSocket message framing over a byte stream (see ws_stream.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "peer_text.h"
#include "ws_stream.h"

int ws_stream_init(struct ws_stream *s, const struct ws_io *io,
		   enum ws_role role, const u8 *preread, size_t preread_len)
{
	memset(s, 0, sizeof(*s));
	if (preread_len > WS_STREAM_BUF)
		return -EMSGSIZE;
	s->buf = malloc(WS_STREAM_BUF);
	if (!s->buf)
		return -ENOMEM;
	s->io = io;
	s->role = role;
	ws_dec_init(&s->dec, role == WS_ROLE_SERVER);
	if (preread_len)
		memcpy(s->buf, preread, preread_len);
	s->end = preread_len;
	s->peer_close_code = 0;
	return 0;
}

void ws_stream_free(struct ws_stream *s)
{
	free(s->buf);
	s->buf = NULL;
}

static int random_key(u8 key[4])
{
	size_t have = 0;

	while (have < 4) {
		ssize_t n = getrandom(key + have, 4 - have, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		have += (size_t)n;
	}
	return 0;
}

/* One frame: header and (masked) payload leave in one write. */
static int send_frame(struct ws_stream *s, u8 opcode, const void *payload,
		      size_t len)
{
	u8 key[4], *frame;
	size_t hlen;
	int rc;

	if (s->role == WS_ROLE_CLIENT) {
		rc = random_key(key);
		if (rc)
			return nbdws_err_set(&s->err, rc,
					     "getrandom() failed for a WebSocket mask key");
	}
	frame = malloc(WS_MAX_HEADER + len);
	if (!frame)
		return nbdws_err_set(&s->err, -ENOMEM, "out of memory");
	hlen = ws_frame_header(frame, opcode, true, len,
			       s->role == WS_ROLE_CLIENT ? key : NULL);
	if (s->role == WS_ROLE_CLIENT)
		ws_mask_copy(frame + hlen, payload, len, key, 0);
	else if (len)
		memcpy(frame + hlen, payload, len);
	rc = s->io->write(s->io->ctx, frame, hlen + len);
	free(frame);
	if (rc)
		return nbdws_err_set(&s->err, rc,
				     "sending a WebSocket frame: %s",
				     strerror(-rc));
	return 0;
}

int ws_stream_send(struct ws_stream *s, const void *buf, size_t len)
{
	if (s->ended)
		return nbdws_err_set(&s->err, -ECONNRESET,
				     "the WebSocket connection has ended");
	if (len > WS_STREAM_MAX_SEND)
		return nbdws_err_set(&s->err, -EMSGSIZE,
				     "WebSocket message of %zu bytes is too large",
				     len);
	return send_frame(s, WS_OP_BINARY, buf, len);
}

int ws_stream_close(struct ws_stream *s, u16 code)
{
	u8 payload[2];

	if (s->ended)
		return 0;
	s->ended = true;
	return send_frame(s, WS_OP_CLOSE, payload,
			  code ? ws_close_payload(payload, code) : 0);
}

/* Read more raw bytes into the buffer, compacting it first. */
static int fill(struct ws_stream *s)
{
	ssize_t n;

	if (s->start == s->end) {
		s->start = 0;
		s->end = 0;
	} else if (s->start) {
		memmove(s->buf, s->buf + s->start, s->end - s->start);
		s->end -= s->start;
		s->start = 0;
	}
	/*
	 * The decoder consumes every header byte it is given, so the buffer
	 * is empty here; a full one would be a bug, not a reason to block.
	 */
	if (s->end == WS_STREAM_BUF)
		return nbdws_err_set(&s->err, -EOVERFLOW,
				     "WebSocket receive buffer full");
	n = s->io->read(s->io->ctx, s->buf + s->end, WS_STREAM_BUF - s->end);
	if (n == 0) {
		s->ended = true;
		return nbdws_err_set(&s->err, -ECONNRESET,
				     "the WebSocket peer closed the connection without a close frame");
	}
	if (n < 0)
		return nbdws_err_set(&s->err, (int)n,
				     "reading from the WebSocket peer: %s",
				     n == -ETIMEDOUT ? "timed out" :
				     strerror((int)-n));
	s->end += (size_t)n;
	return 0;
}

/* React to a control event; returns 0 to go on or a negative errno. */
static int on_control(struct ws_stream *s, const struct ws_event *ev)
{
	char reason[WS_MAX_CONTROL + 1];
	u8 code[2];
	int rc;

	switch (ev->type) {
	case WS_EV_PING:
		/* RFC 6455 5.5.3: the pong carries the ping's payload. */
		s->pings++;
		return send_frame(s, WS_OP_PONG, ev->payload, ev->payload_len);
	case WS_EV_PONG:
		s->pongs++;
		return 0;
	case WS_EV_CLOSE:
		s->peer_close_code = ev->close_code;
		/* Echo the code (none if the peer sent none), then stop. */
		if (ev->close_code == WS_CLOSE_NO_STATUS)
			send_frame(s, WS_OP_CLOSE, NULL, 0);
		else
			send_frame(s, WS_OP_CLOSE, code,
				   ws_close_payload(code, ev->close_code));
		s->ended = true;
		/* The reason is the peer's text: it must not reach a tty raw. */
		peer_text(reason, sizeof(reason), ev->reason ? ev->reason : "",
			  ev->reason ? ev->reason_len : 0);
		return nbdws_err_set(&s->err, -ECONNRESET,
				     "the WebSocket peer closed the connection (code %u%s%s)",
				     ev->close_code, reason[0] ? ": " : "",
				     reason);
	case WS_EV_ERROR:
		rc = send_frame(s, WS_OP_CLOSE, code,
				ws_close_payload(code, ev->close_code));
		(void)rc;	/* the protocol error is what matters */
		s->ended = true;
		return nbdws_err_set(&s->err, -EPROTO,
				     "WebSocket protocol error from the peer: %s (closed with %u)",
				     ev->reason ? ev->reason : "unknown",
				     ev->close_code);
	default:
		return 0;
	}
}

int ws_stream_read(struct ws_stream *s, void *buf, size_t len)
{
	u8 *dst = buf;
	int rc;

	if (s->ended)
		return nbdws_err_set(&s->err, -ECONNRESET,
				     "the WebSocket connection has ended");
	while (len) {
		struct ws_event ev;
		u64 left = ws_dec_data_left(&s->dec);
		size_t used;

		if (left) {
			size_t n = s->end - s->start;

			if (!n) {
				rc = fill(s);
				if (rc)
					return rc;
				continue;
			}
			if (n > len)
				n = len;
			if (n > left)
				n = (size_t)left;
			memcpy(dst, s->buf + s->start, n);
			ws_dec_data_done(&s->dec, dst, n);
			s->start += n;
			dst += n;
			len -= n;
			continue;
		}
		used = ws_dec_parse(&s->dec, s->buf + s->start,
				    s->end - s->start, &ev);
		s->start += used;
		if (ev.type == WS_EV_NEED_MORE) {
			rc = fill(s);
			if (rc)
				return rc;
			continue;
		}
		rc = on_control(s, &ev);
		if (rc)
			return rc;
	}
	return 0;
}

int ws_stream_detach(struct ws_stream *s, u8 **out, size_t *out_len)
{
	size_t n = s->end - s->start;

	*out = NULL;
	*out_len = 0;
	if (s->ended)
		return nbdws_err_set(&s->err, -EPROTO,
				     "the WebSocket connection has ended");
	if (ws_dec_data_left(&s->dec) || s->dec.hdr_have || s->dec.in_message)
		return nbdws_err_set(&s->err, -EPROTO,
				     "the WebSocket peer sent data past the end of the NBD handshake");
	if (n) {
		*out = malloc(n);
		if (!*out)
			return nbdws_err_set(&s->err, -ENOMEM, "out of memory");
		memcpy(*out, s->buf + s->start, n);
		*out_len = n;
	}
	s->start = s->end;
	return 0;
}

static int xport_read(void *ctx, void *buf, size_t len)
{
	return ws_stream_read(ctx, buf, len);
}

static int xport_write(void *ctx, const void *buf, size_t len)
{
	return ws_stream_send(ctx, buf, len);
}

void ws_stream_xport(struct ws_stream *s, struct nbd_xport *x)
{
	x->ctx = s;
	x->read = xport_read;
	x->write = xport_write;
}
