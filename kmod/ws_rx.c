// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: the receiving half of the WebSocket transport (RFC 6455).
 *
 * A source that wraps another one (skbs, recvmsg, pre-read bytes) and
 * yields only binary message payload, so the NBD reply parser above it
 * never knows about frames: replies may be split across frames and
 * messages in any alignment, several may share a frame.
 *
 * Frame headers and control payloads are read in exactly the pieces the
 * decoder asks for (ws_dec_want()), so this layer never reads past a
 * header and needs no buffer of its own: data payload goes from the socket
 * straight to its destination, a bio page for read data. Masked payload
 * (ws-server role) is unmasked on the way: from skbs in the same pass as
 * the copy (ws_dec_data_copy() over each piece of skb and bio page, so
 * every byte is read and written once, as on the plain path); from
 * recvmsg and pre-read bytes, which cannot be seen in place, in the
 * destination right after the copy, while it is still hot in the cache.
 *
 * Pings are answered by the sender (ws_tx.c), pongs settle keepalive
 * pings, a close frame or a protocol violation ends the connection with
 * the code and reason kept for the close frame we answer with and for the
 * CONN_DEAD event.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/string.h>

#include "nbdws.h"
#include "rx_src.h"

static void nbdws_ws_unmask_piece(void *arg, u8 *p, size_t len)
{
	ws_dec_data_done(arg, p, len);
}

/* The decoder stopped: keep how, for the close frame and the event. */
static int nbdws_ws_end(struct nbdws_conn *conn, const struct ws_event *ev,
			u32 reason)
{
	struct nbdws_ws *ws = &conn->ws;

	ws->end_reason = reason;
	ws->end_code = ev->close_code;
	/* Echo the peer's code (an empty close for "no status"), or ours. */
	ws->close_code = ev->close_code;
	strscpy(ws->end_text, ev->reason, sizeof(ws->end_text));
	if (reason == NBDWS_REASON_WS_PROTOCOL)
		dev_warn_ratelimited(disk_to_dev(conn->dev->disk),
				     "connection %u: WebSocket protocol violation: %s\n",
				     conn->id, ev->reason);
	return -EPROTO;
}

/*
 * Read and decode the next piece of frame header or control payload.
 * Returns > 0 on progress, 0 when the source has nothing right now, or
 * -errno when the connection must end.
 */
static int nbdws_ws_step(struct nbdws_ws_src *w)
{
	struct nbdws_conn *conn = w->conn;
	struct ws_dec *d = &conn->ws.dec;
	u8 buf[WS_MAX_CONTROL];
	struct kvec kv = { .iov_base = buf };
	size_t want = ws_dec_want(d);
	struct ws_event ev;
	struct iov_iter it;
	int n = 0;

	if (want) {
		kv.iov_len = min(want, sizeof(buf));
		iov_iter_kvec(&it, ITER_DEST, &kv, 1, kv.iov_len);
		n = w->inner->pull(w->inner, &it);
		if (n <= 0)
			return n;
		conn->rx_quota -= n;
	}
	ws_dec_parse(d, buf, n, &ev);
	switch (ev.type) {
	case WS_EV_NEED_MORE:
	case WS_EV_DATA:
		return 1;
	case WS_EV_PING:
		nbdws_ws_queue_pong(conn, ev.payload, ev.payload_len);
		return 1;
	case WS_EV_PONG:
		nbdws_ws_got_pong(conn, ev.payload, ev.payload_len);
		return 1;
	case WS_EV_CLOSE:
		return nbdws_ws_end(conn, &ev, NBDWS_REASON_WS_CLOSE);
	case WS_EV_ERROR:
	default:
		return nbdws_ws_end(conn, &ev, NBDWS_REASON_WS_PROTOCOL);
	}
}

static int nbdws_ws_pull(struct nbdws_rx_src *src, struct iov_iter *to)
{
	struct nbdws_ws_src *w = container_of(src, struct nbdws_ws_src, src);
	struct ws_dec *d = &w->conn->ws.dec;
	int ret;

	for (;;) {
		u64 left = ws_dec_data_left(d);

		if (left) {
			size_t count = iov_iter_count(to);
			struct iov_iter dst = *to;
			int n;

			iov_iter_truncate(to, min_t(u64, left, count));
			if (d->masked && w->inner->pull_ws) {
				n = w->inner->pull_ws(w->inner, to, d);
				iov_iter_reexpand(to, count - max(n, 0));
				return n;
			}
			n = w->inner->pull(w->inner, to);
			iov_iter_reexpand(to, count - max(n, 0));
			if (n > 0 && d->masked)
				nbdws_iter_each(&dst, n, nbdws_ws_unmask_piece,
						d);
			else if (n > 0)
				ws_dec_data_done(d, NULL, n);
			return n;
		}
		ret = nbdws_ws_step(w);
		if (ret <= 0)
			return ret;
		/* Control frames count against the reader's budget too. */
		if (w->conn->rx_quota <= 0)
			return 0;
	}
}

struct nbdws_ws_copy {
	struct ws_dec *dec;
	const u8 *from;
};

static void nbdws_ws_copy_piece(void *arg, u8 *p, size_t len)
{
	struct nbdws_ws_copy *c = arg;

	ws_dec_data_copy(c->dec, p, c->from, len);
	c->from += len;
}

void nbdws_ws_copy_to_iter(struct ws_dec *dec, const u8 *p, size_t len,
			   struct iov_iter *to)
{
	struct nbdws_ws_copy c = { .dec = dec, .from = p };

	nbdws_iter_each(to, len, nbdws_ws_copy_piece, &c);
	iov_iter_advance(to, len);
}

void nbdws_ws_src_init(struct nbdws_ws_src *w, struct nbdws_conn *conn,
		       struct nbdws_rx_src *inner)
{
	w->src.pull = nbdws_ws_pull;
	w->inner = inner;
	w->conn = conn;
}
