// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: send path.
 *
 * queue_rq encodes the NBD header into the request's PDU and appends the
 * request to its connection's send list; the list is drained without ever
 * waiting for socket space (MSG_DONTWAIT), by queue_rq itself at the end of
 * a batch when the connection is idle, else by tx_work. The header goes out with MSG_MORE so that
 * header and payload leave together, and the payload pages of a write are
 * handed to the socket by reference (sendpage or MSG_SPLICE_PAGES, see
 * compat.h) in as few calls as the kernel allows. On a WebSocket
 * connection each request is one binary frame (ws_tx.c builds its header
 * in front of the NBD header), and control frames go out between two
 * requests' frames. When the socket is full the position is kept in the
 * PDU, what TCP holds back for the MSG_MORE is pushed, and sk_write_space
 * restarts the work: a partial send never requeues the request.
 */
#include <linux/blk-mq.h>
#include <linux/jiffies.h>
#include <linux/sched/mm.h>
#include <linux/tcp.h>
#include <net/sock.h>

#include "compat.h"
#include "nbdws.h"

/* Time one drain may keep its CPU before it yields to other work. */
#define NBDWS_TX_BUDGET_JIFFIES	max(1UL, msecs_to_jiffies(1))

/* Can every payload page be given to the socket by reference? */
static bool nbdws_rq_zcopy_ok(struct request *rq)
{
	struct req_iterator it;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, it) {
		if (!sendpage_ok(bv.bv_page))
			return false;
	}
	return true;
}

/*
 * Build the wire header of @rq. The cookie carries the hardware queue and
 * tag that find the request again, plus a generation bumped on every
 * dispatch of the tag so that a late or duplicated reply for an earlier
 * use of the tag is recognised as such.
 */
void nbdws_tx_prepare(struct nbdws_dev *dev, struct request *rq, u16 type,
		      u16 flags)
{
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);
	u32 hwq = rq->mq_hctx->queue_num;
	u32 tag = rq->tag;
	u32 gen = ++dev->tag_gen[hwq * dev->depth + tag];
	struct nbd_wire_request w = {
		.flags = flags,
		.type = type,
		.cookie = (u64)gen << 32 | hwq << 16 | tag,
	};

	if (type != NBDP_CMD_FLUSH) {
		w.offset = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
		w.length = blk_rq_bytes(rq);
	}
	nbd_wire_encode_request(nbdws_req_nbd_hdr(cmd), &w);
	cmd->cookie = w.cookie;
	cmd->nbd_type = type;
	cmd->error = 0;
	cmd->hdr_start = WS_MAX_HEADER;
	cmd->hdr_off = 0;
	cmd->mfrag = NULL;
	cmd->queued_at = jiffies;
	cmd->tx_bio = NULL;
	if (type == NBDP_CMD_WRITE && rq->bio) {
		cmd->tx_bio = rq->bio;
		nbdws_bio_iter(rq->bio, ITER_SOURCE, &cmd->tx_iter);
		cmd->zcopy = nbdws_rq_zcopy_ok(rq);
	}
}

/*
 * Send @buf[*@off..@len) without blocking, advancing *@off (read without
 * the sender's lock by sk_write_space, hence WRITE_ONCE). 0 once all of
 * it is in the socket, -EAGAIN when the socket is full, else -errno.
 */
int nbdws_tx_buf(struct socket *sock, const u8 *buf, u8 len, u8 *off,
		 int flags)
{
	while (*off < len) {
		struct kvec kv = {
			.iov_base = (void *)buf + *off,
			.iov_len = len - *off,
		};
		struct msghdr msg = {
			.msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL | flags,
		};
		int ret;

		ret = kernel_sendmsg(sock, &msg, &kv, 1, kv.iov_len);
		if (ret <= 0)
			return ret ? ret : -EAGAIN;
		WRITE_ONCE(*off, *off + ret);
	}
	return 0;
}

/*
 * Send what is left of @cmd. Returns 0 once all of it is in the socket,
 * -EAGAIN when the socket is full, another negative errno on failure.
 * Nothing here touches the bio after the call that sends its last byte:
 * from then on the reply may complete the request at any moment.
 */
static int nbdws_tx_send(struct nbdws_conn *conn, struct nbdws_req *cmd,
			 bool more)
{
	int ret;

	ret = nbdws_tx_buf(conn->sock, cmd->hdr + cmd->hdr_start,
			   sizeof(cmd->hdr) - cmd->hdr_start, &cmd->hdr_off,
			   more || cmd->tx_bio ? MSG_MORE : 0);
	if (ret)
		return ret;
	if (conn->ws.mask && cmd->tx_bio)
		return nbdws_ws_tx_payload(conn, cmd, more);

	while (cmd->tx_bio) {
		struct bio *next = cmd->tx_bio->bi_next;
		int flags = MSG_DONTWAIT | MSG_NOSIGNAL;

		if (!iov_iter_count(&cmd->tx_iter)) {
			cmd->tx_bio = next;
			if (next)
				nbdws_bio_iter(next, ITER_SOURCE, &cmd->tx_iter);
			continue;
		}
		if (next || more)
			flags |= MSG_MORE;
		ret = nbdws_send_bvec(conn->sock, &cmd->tx_iter, flags,
				      cmd->zcopy);
		if (ret <= 0)
			return ret ? ret : -EAGAIN;
	}
	return 0;
}

/*
 * The socket refused a send (-EAGAIN). Make sure something brings the
 * sender back, and say whether it must come back by itself.
 *
 * A full buffer is left to sk_write_space, which TCP calls when ACKs free
 * room: but only data in flight draws ACKs. We send with MSG_MORE, and
 * kTLS hands its records to TCP with our flags, so TCP may be holding
 * the tail of its queue back as a partial segment until the promised rest
 * arrives. The send just refused would have released it, yet neither TCP
 * (tcp_sendmsg when it copied nothing) nor kTLS (it checks the buffer
 * before it calls TCP at all) pushes on the way out. Then nothing is in
 * flight, no ACK and no sk_write_space come, and only TCP's probe timer
 * moves the queue, a segment at a time. So push the queue now, as setting
 * TCP_NODELAY does: an ACK would have sent the same bytes on this
 * no-Nagle socket, it only comes sooner.
 *
 * A send can also fail with room in the buffer: the skb or page fragment
 * allocation failed (GFP_NOIO under memory pressure). No sk_write_space
 * follows that either; the caller runs the sender again.
 */
static bool nbdws_tx_refused(struct nbdws_conn *conn)
{
	struct sock *sk = conn->sock->sk;

	if (sk->sk_family == AF_UNIX)
		return sock_writeable(sk);
	tcp_sock_set_nodelay(sk);
	return sk_stream_is_writeable(sk);
}

/*
 * Send queued requests until the list is empty, the socket is full, or
 * the time budget is spent or memory ran short (then returns true: the
 * caller runs it again later). Caller holds tx_mutex, which keeps the
 * byte stream of one connection in one sender's hands.
 */
static bool nbdws_tx_drain(struct nbdws_conn *conn)
{
	unsigned long deadline = jiffies + NBDWS_TX_BUDGET_JIFFIES;

	while (!nbdws_conn_dead(conn)) {
		struct nbdws_req *cmd = conn->tx_cur;
		bool more, begin = false;
		int ret;

		/* Between two frames: control frames go first. */
		if (!cmd && conn->ws.on) {
			ret = nbdws_ws_tx_control(conn);
			if (ret == -EAGAIN)
				return nbdws_tx_refused(conn);
			if (ret) {
				nbdws_conn_mark_dead(conn,
						     NBDWS_REASON_SOCKET_ERROR);
				return false;
			}
		}

		spin_lock_bh(&conn->send_lock);
		if (!cmd) {
			cmd = list_first_entry_or_null(&conn->send_list,
						       struct nbdws_req, node);
			if (!cmd) {
				spin_unlock_bh(&conn->send_lock);
				return false;
			}
			list_del_init(&cmd->node);
			WRITE_ONCE(conn->tx_cur, cmd);
			begin = true;
		}
		more = !list_empty(&conn->send_list);
		spin_unlock_bh(&conn->send_lock);
		if (begin && conn->ws.on)
			nbdws_ws_tx_begin(conn, cmd);

		ret = nbdws_tx_send(conn, cmd, more);
		if (ret == -EAGAIN)
			return nbdws_tx_refused(conn);
		if (ret) {
			nbdws_conn_mark_dead(conn, NBDWS_REASON_SOCKET_ERROR);
			return false;
		}
		WRITE_ONCE(conn->tx_cur, NULL);
		if (atomic_fetch_or(NBDWS_CMD_TX_DONE, &cmd->state) &
		    NBDWS_CMD_REPLIED)
			nbdws_cmd_complete(blk_mq_rq_from_pdu(cmd));

		if (time_after(jiffies, deadline))
			return true;
	}
	return false;
}

void nbdws_tx_work(struct work_struct *work)
{
	struct nbdws_conn *conn = container_of(work, struct nbdws_conn,
					       tx_work);
	unsigned int noreclaim;
	bool yielded;

	/*
	 * Writeback may depend on this send: allocate from the reserves
	 * rather than fail, as nvme-tcp's io_work does.
	 */
	noreclaim = memalloc_noreclaim_save();
	mutex_lock(&conn->tx_mutex);
	yielded = nbdws_tx_drain(conn);
	mutex_unlock(&conn->tx_mutex);
	memalloc_noreclaim_restore(noreclaim);
	if (yielded)
		queue_work(nbdws_wq, &conn->tx_work);
}

/*
 * New requests are on the send list. With @inline_ok (queue_rq at the end
 * of a batch) send them right here when no one else is sending: this saves
 * a work item hop per batch. Otherwise, or when the budget ran out, the
 * work item does it.
 */
void nbdws_tx_kick(struct nbdws_conn *conn, bool inline_ok)
{
	if (inline_ok && mutex_trylock(&conn->tx_mutex)) {
		bool yielded = nbdws_tx_drain(conn);

		mutex_unlock(&conn->tx_mutex);
		if (!yielded)
			return;
	}
	queue_work(nbdws_wq, &conn->tx_work);
}
