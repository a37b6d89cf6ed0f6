// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: receive path.
 *
 * On TCP, replies are parsed right in sk_data_ready when it runs in
 * softirq with the socket not owned by a task (the common case): the
 * skbs are consumed there, so a reply costs no wakeup of a worker and no
 * context switch, much as iscsi_tcp and siw read their sockets. Otherwise
 * (the socket is owned, a RECONFIGURE is resizing the tag set, the softirq
 * used up its budget, or the socket is not plain TCP) sk_data_ready
 * queues rx_work, which drains the socket without blocking. Either way the
 * socket lock serialises the readers, so the parser state below has one
 * owner at a time. Every reader has a budget (rx_quota, in bytes, a reply
 * counting as NBDWS_RX_REPLY_COST): when it runs out, the rest is left to
 * rx_work, which requeues itself likewise, so a fast peer can keep
 * neither a softirq nor a worker thread.
 *
 * Bytes come from a "source": the skbs handed to a read_sock actor (TCP,
 * and kTLS where it has read_sock of its own: no intermediate copy),
 * non-blocking recvmsg (unix sockets, kTLS before 6.3), or, once at
 * attach, the bytes userspace read past the handshake. The reply parser
 * sees only headers; read payload goes straight from the source into the
 * request's bio pages, and only after the header was matched to a request
 * in flight on this very connection with the current generation. Anything
 * else ends the connection (and only it). The WebSocket layer (ws_rx.c)
 * is a source that wraps another source.
 *
 * kTLS hands only application data to read_sock; at any other record
 * (an alert such as the peer's close_notify, a handshake message such as
 * a KeyUpdate or NewSessionTicket) it stops with -EINVAL and keeps the
 * record for recvmsg, which reports its type in a control message. The
 * reader then takes one recvmsg pass, which ends the connection on such a
 * record. Before 6.3 kTLS has no read_sock (TCP's would hand over
 * ciphertext), so there recvmsg reads everything.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/jiffies.h>
#include <linux/skbuff.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <net/tls.h>

#include "nbdws.h"
#include "rx_src.h"

/* TLS record content types (RFC 8446 5.1) that kTLS hands to recvmsg. */
#define NBDWS_TLS_CT_ALERT	21
#define NBDWS_TLS_CT_DATA	23
#define NBDWS_TLS_ALERT_CLOSE_NOTIFY	0

/*
 * Budgets of one pass, in bytes parsed. A reply also costs as much as a
 * page of data: completing it is the expensive part of a small reply. In
 * softirq a pass normally sees the one skb that just arrived; the budget
 * bounds a backlog (an skb train, WebSocket control frames). rx_work
 * yields its CPU after its budget and requeues itself.
 */
#define NBDWS_RX_REPLY_COST	PAGE_SIZE
#define NBDWS_RX_SOFTIRQ_QUOTA	(256 * 1024)
#define NBDWS_RX_WORK_QUOTA	(1024 * 1024)

struct nbdws_skb_src {
	struct nbdws_rx_src src;
	struct sk_buff *skb;
	unsigned int offset;
	size_t len;
};

static int nbdws_skb_pull(struct nbdws_rx_src *src, struct iov_iter *to)
{
	struct nbdws_skb_src *s = container_of(src, struct nbdws_skb_src, src);
	size_t n = min(s->len, iov_iter_count(to));

	if (!n)
		return 0;
	if (skb_copy_datagram_iter(s->skb, s->offset, to, n))
		return -EFAULT;
	s->offset += n;
	s->len -= n;
	return n;
}

/*
 * The WebSocket layer's one-pass path: walk the skb's head, page frags and
 * frag list in place and let the decoder copy (and unmask) each piece into
 * the destination. skb_copy_datagram_iter() has no hook for a transform,
 * and a copy followed by an unmask would read and write the data twice.
 */
static int nbdws_skb_pull_ws(struct nbdws_rx_src *src, struct iov_iter *to,
			     struct ws_dec *dec)
{
	struct nbdws_skb_src *s = container_of(src, struct nbdws_skb_src, src);
	size_t n = min(s->len, iov_iter_count(to));
	struct skb_seq_state st;
	size_t done = 0;

	if (!n)
		return 0;
	skb_prepare_seq_read(s->skb, s->offset, s->offset + n, &st);
	while (done < n) {
		const u8 *p;
		size_t len = skb_seq_read(done, &p, &st);

		/* A piece may run past the end asked for. */
		len = min(len, n - done);
		if (!len)
			break;
		nbdws_ws_copy_to_iter(dec, p, len, to);
		done += len;
	}
	skb_abort_seq_read(&st);
	if (!done)
		return -EFAULT;
	s->offset += done;
	s->len -= done;
	return done;
}

struct nbdws_sock_src {
	struct nbdws_rx_src src;
	struct nbdws_conn *conn;
};

struct nbdws_peek {
	u8 *out;
	size_t have;
};

static void nbdws_peek_piece(void *arg, u8 *p, size_t len)
{
	struct nbdws_peek *pk = arg;

	memcpy(pk->out + pk->have, p, len);
	pk->have += len;
}

/*
 * recvmsg on a kTLS socket returned @n bytes of a record of type @type,
 * written at @dst. Application data is stream; a close_notify alert is the
 * peer's orderly end; anything else (other alerts, renegotiation) ends
 * the connection.
 */
static int nbdws_tls_record(struct nbdws_sock_src *s, u8 type,
			    const struct iov_iter *dst, int n)
{
	u8 alert[2] = { 0, 0xff };
	struct nbdws_peek pk = { .out = alert };

	if (type == NBDWS_TLS_CT_DATA)
		return n;
	nbdws_iter_each(dst, min_t(int, n, sizeof(alert)), nbdws_peek_piece,
			&pk);
	if (type == NBDWS_TLS_CT_ALERT &&
	    alert[1] == NBDWS_TLS_ALERT_CLOSE_NOTIFY)
		return -ESHUTDOWN;
	dev_warn_ratelimited(disk_to_dev(s->conn->dev->disk),
			     "connection %u: TLS record of type %u (%u %u) instead of data\n",
			     s->conn->id, type, alert[0], alert[1]);
	return -ECONNRESET;
}

static int nbdws_sock_pull(struct nbdws_rx_src *src, struct iov_iter *to)
{
	struct nbdws_sock_src *s = container_of(src, struct nbdws_sock_src,
						src);
	u8 cbuf[CMSG_SPACE(sizeof(u8))] __aligned(8);
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT };
	struct cmsghdr *cm = (struct cmsghdr *)cbuf;
	int ret;

	msg.msg_iter = *to;
	if (s->conn->ktls) {
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
	}
	ret = sock_recvmsg(s->conn->sock, &msg, MSG_DONTWAIT);
	if (ret == -EAGAIN)
		return 0;
	if (!ret)
		return -ESHUTDOWN;
	if (ret > 0 && s->conn->ktls && msg.msg_controllen < sizeof(cbuf) &&
	    cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
		ret = nbdws_tls_record(s, *(u8 *)CMSG_DATA(cm), to, ret);
	if (ret > 0)
		iov_iter_advance(to, ret);
	return ret;
}

struct nbdws_buf_src {
	struct nbdws_rx_src src;
	const u8 *buf;
	size_t len;
};

static int nbdws_buf_pull(struct nbdws_rx_src *src, struct iov_iter *to)
{
	struct nbdws_buf_src *s = container_of(src, struct nbdws_buf_src, src);
	size_t n = min(s->len, iov_iter_count(to));

	if (!n)
		return 0;
	if (copy_to_iter(s->buf, n, to) != n)
		return -EFAULT;
	s->buf += n;
	s->len -= n;
	return n;
}

/* The reply to @rq is complete; finish it unless the send side still runs. */
static void nbdws_rx_done(struct nbdws_conn *conn, struct request *rq)
{
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);

	nbdws_stats_replied(conn, rq);
	conn->rx_quota -= NBDWS_RX_REPLY_COST;
	if (atomic_fetch_or(NBDWS_CMD_REPLIED, &cmd->state) & NBDWS_CMD_TX_DONE)
		nbdws_cmd_complete(rq);
}

/* Find the request a reply belongs to; NULL if the reply is not valid. */
static struct request *nbdws_rx_lookup(struct nbdws_conn *conn, u64 cookie)
{
	struct blk_mq_tag_set *set = &conn->dev->tag_set;
	u32 hwq = (cookie >> 16) & 0xffff;
	u32 tag = cookie & 0xffff;
	struct nbdws_req *cmd;
	struct request *rq;
	int state;

	if (hwq >= set->nr_hw_queues || tag >= set->queue_depth)
		return NULL;
	rq = blk_mq_tag_to_rq(set->tags[hwq], tag);
	if (!rq)
		return NULL;
	cmd = nbdws_rq_cmd(rq);
	/* Pairs with atomic_set_release() in nbdws_conn_enqueue(). */
	state = atomic_read_acquire(&cmd->state);
	if (!(state & NBDWS_CMD_INFLIGHT) || state & NBDWS_CMD_REPLIED)
		return NULL;
	if (READ_ONCE(cmd->conn) != conn || cmd->cookie != cookie)
		return NULL;
	return rq;
}

static int nbdws_rx_reply(struct nbdws_conn *conn,
			  const struct nbd_wire_reply *reply)
{
	struct nbdws_req *cmd;
	struct request *rq;

	rq = nbdws_rx_lookup(conn, reply->cookie);
	if (!rq) {
		dev_warn_ratelimited(disk_to_dev(conn->dev->disk),
				     "connection %u: reply with unknown cookie %#llx\n",
				     conn->id, reply->cookie);
		return -EPROTO;
	}
	cmd = nbdws_rq_cmd(rq);
	cmd->error = nbd_wire_errno(reply->error);
	if (cmd->nbd_type == NBDP_CMD_READ && !cmd->error && rq->bio) {
		conn->rx_rq = rq;
		conn->rx_bio = rq->bio;
		nbdws_bio_iter(rq->bio, ITER_DEST, &conn->rx_iter);
		return 0;
	}
	nbdws_rx_done(conn, rq);
	return 0;
}

static int nbdws_rx_header(struct nbdws_conn *conn, struct nbdws_rx_src *src)
{
	u8 buf[NBDP_SIMPLE_REPLY_SIZE];
	struct kvec kv = {
		.iov_base = buf,
		.iov_len = NBDP_SIMPLE_REPLY_SIZE - conn->parser.have,
	};
	struct nbd_wire_reply reply;
	struct iov_iter it;
	size_t used;
	int n, ret;

	iov_iter_kvec(&it, ITER_DEST, &kv, 1, kv.iov_len);
	n = src->pull(src, &it);
	if (n <= 0)
		return n;
	ret = nbd_reply_parse(&conn->parser, buf, n, &used, &reply);
	if (ret == NBD_REPLY_BAD_MAGIC) {
		dev_warn_ratelimited(disk_to_dev(conn->dev->disk),
				     "connection %u: bad reply magic %#x\n",
				     conn->id,
				     nbd_reply_parser_magic(&conn->parser));
		return -EPROTO;
	}
	if (ret == NBD_REPLY_DONE) {
		ret = nbdws_rx_reply(conn, &reply);
		if (ret)
			return ret;
	}
	return n;
}

static int nbdws_rx_payload(struct nbdws_conn *conn, struct nbdws_rx_src *src)
{
	struct request *rq = conn->rx_rq;
	int n = 0;

	if (iov_iter_count(&conn->rx_iter)) {
		n = src->pull(src, &conn->rx_iter);
		if (n <= 0 || iov_iter_count(&conn->rx_iter))
			return n;
	}
	/* This bio is full: on to the next one, or the read is done. */
	conn->rx_bio = conn->rx_bio->bi_next;
	if (conn->rx_bio) {
		nbdws_bio_iter(conn->rx_bio, ITER_DEST, &conn->rx_iter);
		return n ? n : 1;
	}
	conn->rx_rq = NULL;
	nbdws_rx_done(conn, rq);
	return n ? n : 1;
}

/*
 * Consume what @src has, within conn->rx_quota. Returns 0 when @src is
 * drained or the quota is used up (the caller tells which), or -errno.
 */
static int nbdws_rx_parse(struct nbdws_conn *conn, struct nbdws_rx_src *src)
{
	int ret;

	do {
		if (conn->rx_rq)
			ret = nbdws_rx_payload(conn, src);
		else
			ret = nbdws_rx_header(conn, src);
		if (ret > 0)
			conn->rx_quota -= ret;
	} while (ret > 0 && conn->rx_quota > 0);
	return min(ret, 0);
}

/* Same, through the WebSocket layer when the connection has one. */
static int nbdws_rx_feed(struct nbdws_conn *conn, struct nbdws_rx_src *src)
{
	struct nbdws_ws_src ws;

	if (!conn->ws.on)
		return nbdws_rx_parse(conn, src);
	nbdws_ws_src_init(&ws, conn, src);
	return nbdws_rx_parse(conn, &ws.src);
}

static int nbdws_rx_actor(read_descriptor_t *desc, struct sk_buff *skb,
			  unsigned int offset, size_t len)
{
	struct nbdws_conn *conn = desc->arg.data;
	struct nbdws_skb_src s = {
		.src.pull = nbdws_skb_pull,
		.src.pull_ws = nbdws_skb_pull_ws,
		.skb = skb,
		.offset = offset,
		.len = len,
	};
	int ret;

	/* The quota ran out: read_sock may offer the rest of an skb. */
	if (!desc->count)
		return 0;
	ret = nbdws_rx_feed(conn, &s.src);
	if (ret < 0) {
		desc->error = ret;
		desc->count = 0;
		return ret;
	}
	if (conn->rx_quota <= 0)
		desc->count = 0;
	return len - s.len;
}

/*
 * Drain a socket through the read_sock actor, within conn->rx_quota; the
 * caller holds the socket. Returns 0 when the socket is drained or the
 * quota used up, -EINVAL when kTLS holds a record that is not data, or
 * another -errno that ends the connection.
 */
static int nbdws_rx_read_sock(struct nbdws_conn *conn)
{
	struct socket *sock = conn->sock;
	struct sock *sk = sock->sk;
	read_descriptor_t desc = {
		.arg.data = conn,
		.count = 1,
	};
	int ret;

	/*
	 * kTLS returns the data before a record that is not data: ask
	 * again, to hear of that record now rather than at the next
	 * sk_data_ready, which may not come.
	 */
	do {
		ret = sock->ops->read_sock(sk, &desc, nbdws_rx_actor);
	} while (ret > 0 && desc.count && conn->ktls);
	if (desc.error)
		return desc.error;
	if (!desc.count)
		return 0;
	if (ret < 0 && ret != -EAGAIN)
		return ret;
	if (READ_ONCE(sk->sk_err))
		return sock_error(sk) ?: -EIO;
	if (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN &&
	    skb_queue_empty_lockless(&sk->sk_receive_queue))
		return -ESHUTDOWN;
	return 0;
}

/* Parse by recvmsg, within conn->rx_quota; the socket is not held. */
static int nbdws_rx_recvmsg(struct nbdws_conn *conn)
{
	struct nbdws_sock_src s = {
		.src.pull = nbdws_sock_pull,
		.conn = conn,
	};

	return nbdws_rx_feed(conn, &s.src);
}

/*
 * Parse the @len bytes at @buf that userspace read past the handshake, as
 * if they had come first from the socket. Called at attach, before the
 * socket's callbacks are installed, so nothing reads the socket yet. No
 * request was sent on the socket when they were read: a complete reply
 * in them is a protocol violation, but a partial one, WebSocket control
 * frames (a ping is answered once the connection is live) or a close
 * frame are not. Returns 0, or the -errno that ends the connection.
 */
int nbdws_rx_preread(struct nbdws_conn *conn, const void *buf, size_t len)
{
	struct nbdws_buf_src s = {
		.src.pull = nbdws_buf_pull,
		.buf = buf,
		.len = len,
	};
	int ret;

	if (!len)
		return 0;
	conn->rx_quota = INT_MAX;
	down_read(&conn->dev->tags_rwsem);
	ret = nbdws_rx_feed(conn, &s.src);
	up_read(&conn->dev->tags_rwsem);
	return ret;
}

static u32 nbdws_rx_reason(int err)
{
	switch (err) {
	case -EPROTO:
		return NBDWS_REASON_PROTOCOL;
	case -ESHUTDOWN:
		return NBDWS_REASON_PEER_CLOSED;
	default:
		return NBDWS_REASON_SOCKET_ERROR;
	}
}

/* Declare @conn dead for the receive error @err, or the WebSocket end. */
void nbdws_rx_end(struct nbdws_conn *conn, int err)
{
	nbdws_conn_mark_dead(conn, conn->ws.end_reason ?:
				   nbdws_rx_reason(err));
}

/*
 * sk_data_ready, under sk_callback_lock: parse what arrived right here if
 * that is safe, else leave it to rx_work. Returns false for the latter.
 *
 * In softirq with the socket not owned by a task, TCP holds the socket's
 * spinlock around sk_data_ready, so no task reads it meanwhile. Everything
 * the parser does from here is atomic-safe: copies into bio pages,
 * blk_mq_complete_request(), and queue_work() for the sender (pong) and
 * the teardown. In process context (backlog processing in release_sock)
 * the task that owned the socket may be a sender inside queue_rq: not a
 * place to complete requests from, so rx_work takes it. A softirq pass
 * that used up its budget leaves the socket to rx_work until rx_work has
 * had a pass of its own.
 */
bool nbdws_rx_direct(struct nbdws_conn *conn)
{
	struct sock *sk = conn->sock->sk;
	int ret;

	if (!conn->rx_softirq || !in_serving_softirq() ||
	    sock_owned_by_user_nocheck(sk) || conn->rx_deferred)
		return false;
	rcu_read_lock();
	/* Pairs with the synchronize_rcu() in nbdws_rx_pause(). */
	if (READ_ONCE(conn->dev->rx_paused)) {
		rcu_read_unlock();
		return false;
	}
	conn->rx_quota = NBDWS_RX_SOFTIRQ_QUOTA;
	ret = nbdws_rx_read_sock(conn);
	rcu_read_unlock();
	if (ret < 0) {
		nbdws_rx_end(conn, ret);
		return true;
	}
	/* Out of budget: the rest goes to rx_work, queued by our caller. */
	conn->rx_deferred = conn->rx_quota <= 0;
	return !conn->rx_deferred;
}

/*
 * Keep the softirq parser away from the tag set while it is reallocated:
 * afterwards sk_data_ready hands everything to rx_work, which waits for
 * tags_rwsem.
 */
void nbdws_rx_pause(struct nbdws_dev *dev)
{
	WRITE_ONCE(dev->rx_paused, true);
	synchronize_rcu();
}

void nbdws_rx_resume(struct nbdws_dev *dev)
{
	WRITE_ONCE(dev->rx_paused, false);
}

void nbdws_rx_work(struct work_struct *work)
{
	struct nbdws_conn *conn = container_of(work, struct nbdws_conn,
					       rx_work);
	struct sock *sk;
	bool more;
	int ret;

	if (nbdws_conn_dead(conn))
		return;
	sk = conn->sock->sk;

	down_read(&conn->dev->tags_rwsem);
	if (conn->use_read_sock) {
		/* The softirq parser, too, uses these under the lock. */
		lock_sock(sk);
		conn->rx_deferred = false;
		conn->rx_quota = NBDWS_RX_WORK_QUOTA;
		ret = nbdws_rx_read_sock(conn);
		more = conn->rx_quota <= 0;
		release_sock(sk);
		/*
		 * kTLS keeps a record that is not data for recvmsg. Should
		 * recvmsg find data instead, read_sock resumes next time.
		 */
		if (ret == -EINVAL && conn->ktls) {
			int quota = conn->rx_quota;

			ret = nbdws_rx_recvmsg(conn);
			more = conn->rx_quota != quota;
		}
	} else {
		conn->rx_quota = NBDWS_RX_WORK_QUOTA;
		ret = nbdws_rx_recvmsg(conn);
		more = conn->rx_quota <= 0;
	}
	up_read(&conn->dev->tags_rwsem);
	if (ret < 0)
		nbdws_rx_end(conn, ret);
	else if (more)
		queue_work(nbdws_wq, &conn->rx_work);
}

/* Forget any partial reply: the connection is quiesced or new. */
void nbdws_rx_reset(struct nbdws_conn *conn)
{
	nbd_reply_parser_init(&conn->parser);
	conn->rx_rq = NULL;
	conn->rx_bio = NULL;
	conn->rx_deferred = false;
}
