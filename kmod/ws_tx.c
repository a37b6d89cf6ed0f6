// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: the sending half of the WebSocket transport (RFC 6455).
 *
 * Every NBD request is one binary message of one frame: frame header, NBD
 * header and write payload. The frame header is built when the sender
 * picks the request up, in the bytes reserved in front of the NBD header,
 * so header and NBD header still leave in one send call.
 *
 * ws-server role: frames go out unmasked and the write payload pages are
 * spliced into the socket exactly as on the plain transport.
 *
 * ws-client role: RFC 6455 requires every frame we send to be masked with
 * a fresh unpredictable key, so the payload cannot be sent by reference.
 * It is masked in one pass from the bio pages into page fragments that
 * are then spliced into the socket (the socket takes its own page
 * references), so each payload byte is read and written once, where a
 * staging buffer plus sendmsg would copy it twice. Fragments come from a
 * per-connection page_frag_cache: one page allocation per 32 KiB sent, not
 * one per request, the same as the socket's own copying path allocates.
 * Should that allocation fail (memory pressure during writeback), a page
 * set aside at attach time is used instead, with a copying send, so the
 * connection never stalls for memory.
 *
 * Control frames (pong, keepalive ping, close) are built here and sent by
 * the sender between two request frames; RFC 6455 allows them between
 * the frames of a message but never inside a frame.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <net/sock.h>

#include "compat.h"
#include "nbdws.h"

/* A ping carries its sequence number, so a pong can be matched to it. */
#define NBDWS_PING_LEN	8

static void nbdws_ws_ping_work(struct work_struct *work);

/* Set the connection up for @transport; undone by nbdws_ws_release(). */
int nbdws_ws_attach(struct nbdws_conn *conn, u32 transport, u32 ping_ms)
{
	struct nbdws_ws *ws = &conn->ws;

	ws->on = transport != NBDWS_TRANSPORT_PLAIN;
	ws->mask = transport == NBDWS_TRANSPORT_WS_CLIENT;
	ws->ping_ms = ws->on ? ping_ms : 0;
	ws->pong_pending = false;
	ws->ping_pending = false;
	ws->ping_outstanding = false;
	ws->ctl_len = 0;
	ws->ctl_off = 0;
	ws->end_reason = 0;
	ws->close_code = 0;
	ws->end_code = 0;
	ws->end_text[0] = 0;
	ws_dec_init(&ws->dec, transport == NBDWS_TRANSPORT_WS_SERVER);
	INIT_DELAYED_WORK(&ws->ping_work, nbdws_ws_ping_work);
	if (ws->mask && !ws->spare) {
		ws->spare = alloc_page(GFP_KERNEL);
		if (!ws->spare)
			return -ENOMEM;
	}
	return 0;
}

/* The connection is alive: start the keepalive clock. */
void nbdws_ws_start(struct nbdws_conn *conn)
{
	if (conn->ws.ping_ms)
		queue_delayed_work(nbdws_wq, &conn->ws.ping_work,
				   msecs_to_jiffies(conn->ws.ping_ms));
}

/* The connection is being quiesced: no more pings. */
void nbdws_ws_stop(struct nbdws_conn *conn)
{
	if (conn->ws.on)
		cancel_delayed_work_sync(&conn->ws.ping_work);
}

/* The socket is gone and nothing sends any more. */
void nbdws_ws_release(struct nbdws_conn *conn)
{
	struct page_frag_cache *nc = &conn->ws.frag;

	nbdws_page_frag_cache_drain(nc);
	if (conn->ws.spare) {
		__free_page(conn->ws.spare);
		conn->ws.spare = NULL;
	}
}

/*
 * Build a complete frame with a small (<= 125 bytes, or an NBD header)
 * payload into @out, masked in the client role. Returns its length.
 */
size_t nbdws_ws_small_frame(struct nbdws_conn *conn, u8 *out, u8 opcode,
			    const void *data, size_t len)
{
	u32 key = get_random_u32();
	size_t n;

	n = ws_frame_header(out, opcode, true, len,
			    conn->ws.mask ? (const u8 *)&key : NULL);
	if (conn->ws.mask)
		ws_mask_copy(out + n, data, len, (const u8 *)&key, 0);
	else
		memcpy(out + n, data, len);
	return n + len;
}

/*
 * @cmd is about to be sent on @conn: put its frame header in front of the
 * NBD header and, in the client role, mask the NBD header in place (a
 * requeued request gets a fresh header from nbdws_tx_prepare()).
 */
void nbdws_ws_tx_begin(struct nbdws_conn *conn, struct nbdws_req *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	u64 len = NBDP_REQUEST_SIZE + (cmd->tx_bio ? blk_rq_bytes(rq) : 0);
	u8 fh[WS_MAX_HEADER];
	const u8 *key = NULL;
	size_t n;

	if (conn->ws.mask) {
		u32 k = get_random_u32();

		memcpy(cmd->mask_key, &k, sizeof(k));
		key = cmd->mask_key;
		ws_mask_copy(nbdws_req_nbd_hdr(cmd), nbdws_req_nbd_hdr(cmd),
			     NBDP_REQUEST_SIZE, key, 0);
		cmd->mask_pos = NBDP_REQUEST_SIZE;
	}
	n = ws_frame_header(fh, WS_OP_BINARY, true, len, key);
	cmd->hdr_start = WS_MAX_HEADER - n;
	memcpy(cmd->hdr + cmd->hdr_start, fh, n);
}

/* Give back the masked bytes a request holds (it is requeued or done). */
void nbdws_ws_tx_drop(struct nbdws_req *cmd)
{
	if (cmd->mfrag && !cmd->mfrag_spare)
		page_frag_free(cmd->mfrag);
	cmd->mfrag = NULL;
}

/* Send what is left of the masked piece; 0 once it is all in the socket. */
static int nbdws_ws_tx_mfrag(struct nbdws_conn *conn, struct nbdws_req *cmd,
			     bool more)
{
	while (cmd->mfrag_off < cmd->mfrag_len) {
		u8 *p = cmd->mfrag + cmd->mfrag_off;
		size_t len = cmd->mfrag_len - cmd->mfrag_off;
		struct bio_vec bv;
		struct iov_iter it;
		int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
		int ret;

		if (more)
			flags |= MSG_MORE;
		bvec_set_page(&bv, virt_to_page(p), len, offset_in_page(p));
		iov_iter_bvec(&it, ITER_SOURCE, &bv, 1, len);
		ret = nbdws_send_bvec(conn->sock, &it, flags,
				      !cmd->mfrag_spare);
		if (ret <= 0)
			return ret ? ret : -EAGAIN;
		cmd->mfrag_off += ret;
	}
	nbdws_ws_tx_drop(cmd);
	return 0;
}

/*
 * Mask the next piece of payload (at most a page, within one source page)
 * into a fresh fragment, advancing the payload iterator.
 */
static void nbdws_ws_tx_mask_next(struct nbdws_conn *conn,
				  struct nbdws_req *cmd)
{
	struct iov_iter *it = &cmd->tx_iter;
	const struct bio_vec *bv = it->bvec;
	size_t off = bv->bv_offset + it->iov_offset;
	struct page *page = bv->bv_page + (off >> PAGE_SHIFT);
	size_t len;
	u8 *src;

	off &= ~PAGE_MASK;
	len = min3((size_t)bv->bv_len - it->iov_offset, PAGE_SIZE - off,
		   iov_iter_count(it));
	cmd->mfrag = page_frag_alloc(&conn->ws.frag, len,
				     GFP_NOIO | __GFP_NOWARN);
	cmd->mfrag_spare = !cmd->mfrag;
	if (!cmd->mfrag)
		cmd->mfrag = page_address(conn->ws.spare);
	src = kmap_local_page(page);
	ws_mask_copy(cmd->mfrag, src + off, len, cmd->mask_key, cmd->mask_pos);
	kunmap_local(src);
	cmd->mfrag_len = len;
	cmd->mfrag_off = 0;
	cmd->mask_pos += len;
	iov_iter_advance(it, len);
}

/*
 * Client role: send the (rest of the) write payload of @cmd masked. Same
 * contract as the plain payload loop in tx.c: 0 when all of it is in the
 * socket, -EAGAIN when the socket is full, another -errno on failure.
 */
int nbdws_ws_tx_payload(struct nbdws_conn *conn, struct nbdws_req *cmd,
			bool more)
{
	int ret;

	for (;;) {
		if (cmd->mfrag) {
			bool last = !cmd->tx_bio->bi_next &&
				    !iov_iter_count(&cmd->tx_iter);

			ret = nbdws_ws_tx_mfrag(conn, cmd, more || !last);
			if (ret)
				return ret;
		}
		if (!iov_iter_count(&cmd->tx_iter)) {
			cmd->tx_bio = cmd->tx_bio->bi_next;
			if (!cmd->tx_bio)
				return 0;
			nbdws_bio_iter(cmd->tx_bio, ITER_SOURCE, &cmd->tx_iter);
			continue;
		}
		nbdws_ws_tx_mask_next(conn, cmd);
	}
}

/* Is a control frame waiting for the sender? */
bool nbdws_ws_tx_pending(struct nbdws_conn *conn)
{
	struct nbdws_ws *ws = &conn->ws;

	return ws->on && (READ_ONCE(ws->pong_pending) ||
			  READ_ONCE(ws->ping_pending) ||
			  READ_ONCE(ws->ctl_off) < READ_ONCE(ws->ctl_len));
}

/* Send the control frame in progress; 0 once it is all in the socket. */
static int nbdws_ws_tx_ctl(struct nbdws_conn *conn)
{
	struct nbdws_ws *ws = &conn->ws;

	return nbdws_tx_buf(conn->sock, ws->ctl, ws->ctl_len, &ws->ctl_off, 0);
}

/*
 * Between two request frames (caller holds tx_mutex): send the control
 * frames that are owed, the pong before a ping. 0 when none is left,
 * -EAGAIN when the socket is full, another -errno on failure.
 */
int nbdws_ws_tx_control(struct nbdws_conn *conn)
{
	struct nbdws_ws *ws = &conn->ws;
	int ret;

	for (;;) {
		ret = nbdws_ws_tx_ctl(conn);
		if (ret)
			return ret;

		spin_lock_bh(&conn->send_lock);
		if (ws->pong_pending) {
			ws->ctl_len = nbdws_ws_small_frame(conn, ws->ctl,
							   WS_OP_PONG,
							   ws->pong_data,
							   ws->pong_len);
			ws->pong_pending = false;
		} else if (ws->ping_pending) {
			__be64 seq = cpu_to_be64(ws->ping_seq);

			ws->ctl_len = nbdws_ws_small_frame(conn, ws->ctl,
							   WS_OP_PING, &seq,
							   sizeof(seq));
			ws->ping_pending = false;
		} else {
			ws->ctl_len = 0;
		}
		WRITE_ONCE(ws->ctl_off, 0);
		spin_unlock_bh(&conn->send_lock);
		if (!ws->ctl_len)
			return 0;
	}
}

/*
 * A ping came in (receive path, maybe in softirq): answer with its
 * payload. Only the latest of several unanswered pings needs its pong
 * (RFC 6455 5.5.3).
 */
void nbdws_ws_queue_pong(struct nbdws_conn *conn, const u8 *data, u8 len)
{
	struct nbdws_ws *ws = &conn->ws;

	spin_lock_bh(&conn->send_lock);
	memcpy(ws->pong_data, data, len);
	ws->pong_len = len;
	ws->pong_pending = true;
	spin_unlock_bh(&conn->send_lock);
	queue_work(nbdws_wq, &conn->tx_work);
}

/* A pong came in: it settles our ping if it echoes the latest one. */
void nbdws_ws_got_pong(struct nbdws_conn *conn, const u8 *data, u8 len)
{
	struct nbdws_ws *ws = &conn->ws;
	__be64 seq;

	if (len != NBDWS_PING_LEN)
		return;		/* unsolicited: ignored, as RFC 6455 allows */
	spin_lock_bh(&conn->send_lock);
	seq = cpu_to_be64(ws->ping_seq);
	if (!memcmp(&seq, data, sizeof(seq)))
		WRITE_ONCE(ws->ping_outstanding, false);
	spin_unlock_bh(&conn->send_lock);
}

/*
 * Keepalive: every interval, a ping. If the previous one is still
 * unanswered by then, the peer is gone (or is not reading): the
 * connection dies, and its requests go to another connection or wait
 * for a RECONFIGURE.
 */
static void nbdws_ws_ping_work(struct work_struct *work)
{
	struct nbdws_ws *ws = container_of(to_delayed_work(work),
					   struct nbdws_ws, ping_work);
	struct nbdws_conn *conn = container_of(ws, struct nbdws_conn, ws);

	if (nbdws_conn_dead(conn))
		return;
	if (READ_ONCE(ws->ping_outstanding)) {
		dev_warn_ratelimited(disk_to_dev(conn->dev->disk),
				     "connection %u: no pong within %u ms\n",
				     conn->id, ws->ping_ms);
		nbdws_conn_mark_dead(conn, NBDWS_REASON_WS_PING_TIMEOUT);
		return;
	}
	spin_lock_bh(&conn->send_lock);
	ws->ping_seq++;
	ws->ping_pending = true;
	WRITE_ONCE(ws->ping_outstanding, true);
	spin_unlock_bh(&conn->send_lock);
	queue_work(nbdws_wq, &conn->tx_work);
	queue_delayed_work(nbdws_wq, &ws->ping_work,
			   msecs_to_jiffies(ws->ping_ms));
}

/* The close code our close frame carries for a connection ending so. */
static u16 nbdws_ws_close_code(struct nbdws_conn *conn, u32 reason)
{
	struct nbdws_ws *ws = &conn->ws;

	if (ws->close_code)
		return ws->close_code;
	switch (reason) {
	case NBDWS_REASON_USER:
		if (conn->dev->disc_code)
			return conn->dev->disc_code;
		return WS_CLOSE_NORMAL;
	case NBDWS_REASON_PROTOCOL:
		return WS_CLOSE_PROTOCOL;
	case NBDWS_REASON_TIMEOUT:
	case NBDWS_REASON_WS_PING_TIMEOUT:
		return WS_CLOSE_GOING_AWAY;
	default:
		/* The peer or the socket is gone: nobody to tell. */
		return 0;
	}
}

/*
 * The connection is dead and about to be shut down: say goodbye with a
 * close frame, best effort and without waiting. A frame half sent cannot
 * be interrupted, so then there is no close frame, only the TCP end.
 */
void nbdws_ws_send_close(struct nbdws_conn *conn, u32 reason)
{
	struct nbdws_ws *ws = &conn->ws;
	u8 payload[WS_MAX_CONTROL];
	u8 frame[WS_MAX_HEADER + WS_MAX_CONTROL];
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	struct kvec kv = { .iov_base = frame };
	size_t len = 0, tlen;
	u16 code;

	code = nbdws_ws_close_code(conn, reason);
	if (!ws->on || !code)
		return;
	if (code != WS_CLOSE_NO_STATUS) {
		const char *text = NULL;

		len = ws_close_payload(payload, code);
		if (ws->end_reason == NBDWS_REASON_WS_PROTOCOL)
			text = ws->end_text;
		else if (!ws->close_code && reason == NBDWS_REASON_USER &&
			 conn->dev->disc_code)
			text = conn->dev->disc_text;
		if (text) {
			tlen = strnlen(text, WS_MAX_CONTROL - 2);
			memcpy(payload + len, text, tlen);
			len += tlen;
		}
	}

	mutex_lock(&conn->tx_mutex);
	if ((!conn->tx_cur || !conn->tx_cur->hdr_off) &&
	    !nbdws_ws_tx_ctl(conn)) {
		kv.iov_len = nbdws_ws_small_frame(conn, frame, WS_OP_CLOSE,
						  payload, len);
		kernel_sendmsg(conn->sock, &msg, &kv, 1, kv.iov_len);
	}
	mutex_unlock(&conn->tx_mutex);
}
