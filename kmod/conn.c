// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: connection life cycle.
 *
 * A connection slot is alive from nbdws_conn_start() until something
 * declares it dead (receive error or EOF, send error, request timeout,
 * protocol violation, DISCONNECT). Declaring death is cheap and may happen
 * in any context; the teardown runs in dead_work: restore the socket's
 * callbacks, shut it down, wait for send and receive work to stop, then
 * requeue what was in flight so another connection (or a later RECONFIGURE)
 * serves it. When the last connection dies, requests are held for the
 * dead-connection timeout and then failed.
 */
#include <linux/file.h>
#include <linux/in.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/tcp.h>
#include <linux/un.h>
#include <net/genetlink.h>
#include <net/inet_connection_sock.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "compat.h"
#include "nbdws.h"

static void nbdws_sk_data_ready(struct sock *sk)
{
	struct nbdws_conn *conn;

	read_lock_bh(&sk->sk_callback_lock);
	conn = sk->sk_user_data;
	if (conn && !nbdws_conn_dead(conn) && !nbdws_rx_direct(conn))
		queue_work(nbdws_wq, &conn->rx_work);
	read_unlock_bh(&sk->sk_callback_lock);
}

/* EOF and errors are noticed by rx_work once the queued data is parsed. */
static void nbdws_sk_state_change(struct sock *sk)
{
	struct nbdws_conn *conn;

	read_lock_bh(&sk->sk_callback_lock);
	conn = sk->sk_user_data;
	if (conn && !nbdws_conn_dead(conn))
		queue_work(nbdws_wq, &conn->rx_work);
	read_unlock_bh(&sk->sk_callback_lock);
}

static void nbdws_sk_write_space(struct sock *sk)
{
	struct nbdws_conn *conn;

	read_lock_bh(&sk->sk_callback_lock);
	conn = sk->sk_user_data;
	/*
	 * Only a stalled send needs waking; unix sockets call this for every
	 * buffer the peer consumes. A request queued after the check kicks
	 * the sender itself.
	 */
	if (conn && !nbdws_conn_dead(conn) &&
	    (READ_ONCE(conn->tx_cur) || !list_empty_careful(&conn->send_list) ||
	     nbdws_ws_tx_pending(conn))) {
		clear_bit(SOCK_NOSPACE, &sk->sk_socket->flags);
		queue_work(nbdws_wq, &conn->tx_work);
	}
	/*
	 * kTLS may hold a record it could not push when TCP's buffer was
	 * full, although our send of it succeeded; its own write_space
	 * pushes it. Without the chain the last request of a burst would
	 * wait for the next request, or its timeout. (kTLS replaces only
	 * data_ready besides, which we need not chain: recvmsg checks the
	 * stream for complete records itself.)
	 */
	if (conn && conn->ktls)
		conn->saved_write_space(sk);
	read_unlock_bh(&sk->sk_callback_lock);
}

static bool nbdws_sock_is_tcp(const struct sock *sk)
{
	return (sk->sk_family == AF_INET || sk->sk_family == AF_INET6) &&
	       sk->sk_protocol == IPPROTO_TCP;
}

/*
 * Largest TCP window a connection sizes its receive buffer for: what a
 * window scale of 10 can carry, far above what any connection here needs.
 */
#define NBDWS_RCV_WINDOW_MAX	(64U << 20)

/*
 * Let TCP offer a window as large as the reads this connection may have
 * asked for. Receive autotuning grows the buffer to what it measures
 * arriving per round trip, but never past net.ipv4.tcp_rmem's maximum
 * (6 MiB on Debian, a window of 3 MiB): on a 50 ms round trip that
 * caps a reader at 60 MiB/s, however many requests are in flight. The
 * driver knows better than an estimate: it never has more than depth
 * requests of max_req bytes outstanding, and reads its socket as data
 * arrives (in softirq), so the buffer is a limit it does not fill. Hence
 * a fixed buffer for that, bounded by the window scale agreed at the
 * connection's start (the 16-bit window field times 2^wscale: 8 MiB
 * with Debian's defaults) and counted twice for the sk_buff overhead, as
 * SO_RCVBUF does. Where autotuning can reach it anyway, or userspace set
 * SO_RCVBUF itself, the socket is left alone. nbdws_conn_quiesce() gives
 * the old settings back.
 */
static void nbdws_sock_size_rcvbuf(struct nbdws_conn *conn, struct sock *sk)
{
	const struct nbdws_dev *dev = conn->dev;
	struct tcp_sock *tp = tcp_sk(sk);
	u64 window;

	conn->saved_rcvbuf = 0;
	if (!nbdws_sock_is_tcp(sk))
		return;
	lock_sock(sk);
	window = min3((u64)dev->depth * dev->max_req,
		      (u64)U16_MAX << tp->rx_opt.rcv_wscale,
		      (u64)NBDWS_RCV_WINDOW_MAX);
	if (!(sk->sk_userlocks & SOCK_RCVBUF_LOCK) &&
	    2 * window > (u64)max(READ_ONCE(sk->sk_rcvbuf),
				  READ_ONCE(sock_net(sk)->ipv4.sysctl_tcp_rmem[2]))) {
		conn->saved_rcvbuf = sk->sk_rcvbuf;
		conn->saved_window_clamp = tp->window_clamp;
		sk->sk_userlocks |= SOCK_RCVBUF_LOCK;
		WRITE_ONCE(sk->sk_rcvbuf, 2 * window);
		/* Autotuning raised the clamp with the buffer; it is off now. */
		WRITE_ONCE(tp->window_clamp, max_t(u32, tp->window_clamp, window));
	}
	release_sock(sk);
}

/* Under lock_sock: undo nbdws_sock_size_rcvbuf(). */
static void nbdws_sock_restore_rcvbuf(struct nbdws_conn *conn,
				      struct sock *sk)
{
	struct tcp_sock *tp;

	if (!conn->saved_rcvbuf)
		return;
	tp = tcp_sk(sk);
	sk->sk_userlocks &= ~SOCK_RCVBUF_LOCK;
	WRITE_ONCE(sk->sk_rcvbuf, conn->saved_rcvbuf);
	WRITE_ONCE(tp->window_clamp, conn->saved_window_clamp);
	tp->rcv_ssthresh = min(tp->rcv_ssthresh, tp->window_clamp);
}

/*
 * Whether @sock's read_sock hands over the plaintext stream. Under kTLS
 * the socket's ops are kTLS's; from 6.3 on their read_sock is kTLS's own,
 * before that it is still TCP's, which would hand over ciphertext. The
 * function is private to kTLS, so no build probe can ask for it: compare
 * with TCP's instead.
 */
static bool nbdws_read_sock_plain(const struct socket *sock, bool ktls)
{
	if (!sock->ops->read_sock)
		return false;
	return !ktls || sock->ops->read_sock != tcp_read_sock;
}

/*
 * Look up the socket behind @fd and check it is a connected stream socket
 * nobody else drives. On success the caller owns a file reference.
 */
int nbdws_sock_lookup(int fd, struct socket **sockp,
		      struct netlink_ext_ack *extack, const struct nlattr *attr)
{
	struct socket *sock;
	struct sock *sk;
	int err;

	sock = sockfd_lookup(fd, &err);
	if (!sock) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "fd is not an open socket");
		return err;
	}
	sk = sock->sk;
	err = -EINVAL;
	if (sk->sk_type != SOCK_STREAM) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "socket is not a stream socket");
		goto fail;
	}
	if (sk->sk_state == TCP_LISTEN) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "socket is listening, not connected");
		goto fail;
	}
	if (nbdws_sock_is_tcp(sk)) {
		if (sk->sk_state != TCP_ESTABLISHED) {
			NL_SET_ERR_MSG_ATTR(extack, attr, "TCP socket is not connected");
			goto fail;
		}
	} else if (sk->sk_family == AF_UNIX) {
		/*
		 * sk_state, as for TCP: AF_UNIX sets it to TCP_ESTABLISHED on
		 * both ends of connect()/accept() and of socketpair(), and
		 * checks it itself. sock->state is not SS_CONNECTED for any
		 * of them on 7.2.
		 */
		if (READ_ONCE(sk->sk_state) != TCP_ESTABLISHED) {
			NL_SET_ERR_MSG_ATTR(extack, attr, "unix socket is not connected");
			goto fail;
		}
	} else {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "only TCP and unix stream sockets are supported");
		goto fail;
	}
	if (READ_ONCE(sk->sk_user_data)) {
		NL_SET_ERR_MSG_ATTR(extack, attr, "socket is already in use by the kernel");
		err = -EBUSY;
		goto fail;
	}
	*sockp = sock;
	return 0;

fail:
	sockfd_put(sock);
	return err;
}

static void nbdws_conn_dead_work(struct work_struct *work);

struct nbdws_conn *nbdws_conn_alloc(struct nbdws_dev *dev, unsigned int id)
{
	struct nbdws_conn *conn;

	conn = kzalloc(sizeof(*conn), GFP_KERNEL);
	if (!conn)
		return NULL;
	if (nbdws_stats_alloc(conn)) {
		kfree(conn);
		return NULL;
	}
	conn->dev = dev;
	conn->id = id;
	/* Dead until a socket is attached: queue_rq skips it. */
	set_bit(NBDWS_CONN_F_DEAD, &conn->flags);
	spin_lock_init(&conn->send_lock);
	INIT_LIST_HEAD(&conn->send_list);
	mutex_init(&conn->tx_mutex);
	INIT_WORK(&conn->tx_work, nbdws_tx_work);
	INIT_WORK(&conn->rx_work, nbdws_rx_work);
	INIT_WORK(&conn->dead_work, nbdws_conn_dead_work);
	nbdws_rx_reset(conn);
	return conn;
}

void nbdws_conn_free(struct nbdws_conn *conn)
{
	if (!conn)
		return;
	nbdws_conn_release_sock(conn);
	nbdws_stats_free(conn);
	kfree(conn);
}

/*
 * Claim @sk for @conn: sk_user_data says who drives a socket, and commands
 * run in parallel, so two of them handed the same socket must not both
 * get it. Checked and set under sk_callback_lock; the lookup's check
 * only gives the early, friendlier error.
 */
static int nbdws_sock_claim(struct sock *sk, struct nbdws_conn *conn)
{
	int ret = 0;

	write_lock_bh(&sk->sk_callback_lock);
	if (sk->sk_user_data)
		ret = -EBUSY;
	else
		sk->sk_user_data = conn;
	write_unlock_bh(&sk->sk_callback_lock);
	return ret;
}

static void nbdws_sock_unclaim(struct sock *sk)
{
	write_lock_bh(&sk->sk_callback_lock);
	sk->sk_user_data = NULL;
	write_unlock_bh(&sk->sk_callback_lock);
}

/*
 * First half of giving the (dead, quiesced, socketless) slot @conn the
 * socket in @p: everything that can fail, so that CONNECT and RECONFIGURE
 * can prepare all their connections before they change anything. Undone by
 * nbdws_conn_unprepare(); nbdws_conn_start() completes it.
 */
int nbdws_conn_prepare(struct nbdws_conn *conn,
		       const struct nbdws_conn_params *p)
{
	struct sock *sk = p->sock->sk;
	int ret;

	ret = nbdws_sock_claim(sk, conn);
	if (ret)
		return ret;
	ret = nbdws_ws_attach(conn, p->transport, p->ping_ms);
	if (ret)
		nbdws_sock_unclaim(sk);
	return ret;
}

void nbdws_conn_unprepare(struct nbdws_conn *conn,
			  const struct nbdws_conn_params *p)
{
	nbdws_sock_unclaim(p->sock->sk);
}

/*
 * Second half: make the prepared slot alive on its socket; cannot fail.
 * The slot owns the socket reference from here on.
 */
void nbdws_conn_start(struct nbdws_conn *conn,
		      const struct nbdws_conn_params *p)
{
	struct nbdws_dev *dev = conn->dev;
	struct socket *sock = p->sock;
	struct sock *sk = sock->sk;
	int rx_err;

	conn->transport = p->transport;
	conn->sock = sock;
	conn->ktls = nbdws_sock_is_tcp(sk) && inet_csk(sk)->icsk_ulp_ops;
	conn->use_read_sock = nbdws_sock_is_tcp(sk) &&
			      nbdws_read_sock_plain(sock, conn->ktls);
	/* kTLS reads (and decrypts) under the socket lock only. */
	conn->rx_softirq = conn->use_read_sock && !conn->ktls;
	conn->tx_cur = NULL;
	nbdws_rx_reset(conn);
	/* Before anything reads the socket: these bytes came first. */
	rx_err = nbdws_rx_preread(conn, p->preread, p->preread_len);

	/* The socket now carries block I/O: no allocation may recurse. */
	conn->saved_allocation = sk->sk_allocation;
	conn->saved_task_frag = nbdws_sock_task_frag(sk);
	conn->saved_nodelay = !nbdws_sock_is_tcp(sk) ||
			      tcp_sk(sk)->nonagle & TCP_NAGLE_OFF;
	conn->saved_rcvlowat = READ_ONCE(sk->sk_rcvlowat);
	sk->sk_allocation = GFP_NOIO;
	/*
	 * Every byte is worth reading at once: TCP calls sk_data_ready only
	 * once SO_RCVLOWAT bytes are queued, and a reply may be shorter.
	 */
	WRITE_ONCE(sk->sk_rcvlowat, 1);
	nbdws_sock_no_task_frag(sk);
	if (nbdws_sock_is_tcp(sk))
		tcp_sock_set_nodelay(sk);
	nbdws_sock_size_rcvbuf(conn, sk);

	write_lock_bh(&sk->sk_callback_lock);
	conn->saved_data_ready = sk->sk_data_ready;
	conn->saved_state_change = sk->sk_state_change;
	conn->saved_write_space = sk->sk_write_space;
	sk->sk_data_ready = nbdws_sk_data_ready;
	sk->sk_state_change = nbdws_sk_state_change;
	sk->sk_write_space = nbdws_sk_write_space;
	write_unlock_bh(&sk->sk_callback_lock);
	set_bit(NBDWS_CONN_F_SOCK, &conn->flags);

	spin_lock_bh(&conn->send_lock);
	WRITE_ONCE(conn->reason, NBDWS_REASON_NONE);
	/* The first request on the new socket is sampled for the peak. */
	conn->peak_sampled = jiffies - 1;
	clear_bit(NBDWS_CONN_F_DEAD, &conn->flags);
	spin_unlock_bh(&conn->send_lock);
	atomic_inc(&dev->live);
	nbdws_ws_start(conn);

	if (rx_err) {
		nbdws_rx_end(conn, rx_err);
		return;
	}
	/* A pong for a ping in the pre-read bytes waited for us to be live. */
	if (conn->ws.pong_pending)
		queue_work(nbdws_wq, &conn->tx_work);
	/* Data (or EOF) may have arrived before the callbacks were set. */
	queue_work(nbdws_wq, &conn->rx_work);
}

/* Declare @conn dead; safe in any context, only the first call counts. */
void nbdws_conn_mark_dead(struct nbdws_conn *conn, u32 reason)
{
	if (test_and_set_bit(NBDWS_CONN_F_DEAD, &conn->flags))
		return;
	WRITE_ONCE(conn->reason, reason);
	atomic_dec(&conn->dev->live);
	queue_work(nbdws_wq, &conn->dead_work);
}

/*
 * Detach from the socket and stop all work on it. Afterwards nothing but
 * the caller touches the connection's requests.
 */
void nbdws_conn_quiesce(struct nbdws_conn *conn)
{
	struct sock *sk;

	if (!test_and_clear_bit(NBDWS_CONN_F_SOCK, &conn->flags))
		return;
	sk = conn->sock->sk;
	write_lock_bh(&sk->sk_callback_lock);
	sk->sk_user_data = NULL;
	sk->sk_data_ready = conn->saved_data_ready;
	sk->sk_state_change = conn->saved_state_change;
	sk->sk_write_space = conn->saved_write_space;
	write_unlock_bh(&sk->sk_callback_lock);
	kernel_sock_shutdown(conn->sock, SHUT_RDWR);
	/* Userspace still has the socket: give it back as it came. */
	lock_sock(sk);
	sk->sk_allocation = conn->saved_allocation;
	nbdws_sock_set_task_frag(sk, conn->saved_task_frag);
	if (!conn->saved_nodelay)
		tcp_sk(sk)->nonagle &= ~TCP_NAGLE_OFF;
	WRITE_ONCE(sk->sk_rcvlowat, conn->saved_rcvlowat);
	nbdws_sock_restore_rcvbuf(conn, sk);
	release_sock(sk);

	nbdws_ws_stop(conn);
	cancel_work_sync(&conn->rx_work);
	cancel_work_sync(&conn->tx_work);

	/*
	 * A sender in queue_rq may still be inside a drain; once we hold
	 * tx_mutex it is out, and later ones see the connection dead. Past
	 * send_lock, queue_rq does not hand this connection anything.
	 */
	mutex_lock(&conn->tx_mutex);
	spin_lock_bh(&conn->send_lock);
	INIT_LIST_HEAD(&conn->send_list);
	spin_unlock_bh(&conn->send_lock);
	if (conn->tx_cur)
		nbdws_ws_tx_drop(conn->tx_cur);
	conn->tx_cur = NULL;
	mutex_unlock(&conn->tx_mutex);
	nbdws_rx_reset(conn);
}

void nbdws_conn_release_sock(struct nbdws_conn *conn)
{
	nbdws_conn_quiesce(conn);
	if (conn->sock) {
		sockfd_put(conn->sock);
		conn->sock = NULL;
	}
	nbdws_ws_release(conn);
}

/*
 * DISCONNECT: end @conn with a polite NBD_CMD_DISC if it is alive and
 * idle (best effort, never blocks). It is declared dead under tx_mutex
 * first, so no request can follow the DISC: a sender that gets tx_mutex
 * afterwards sees the connection dead, and what it had not sent is
 * requeued by the teardown.
 */
void nbdws_conn_disconnect(struct nbdws_conn *conn)
{
	struct nbd_wire_request w = { .type = NBDP_CMD_DISC };
	u8 hdr[NBDP_REQUEST_SIZE];
	u8 frame[WS_MAX_HEADER + NBDP_REQUEST_SIZE];
	struct kvec kv = { .iov_base = hdr, .iov_len = sizeof(hdr) };
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	bool alive;

	nbd_wire_encode_request(hdr, &w);
	mutex_lock(&conn->tx_mutex);
	alive = !nbdws_conn_dead(conn);
	nbdws_conn_mark_dead(conn, NBDWS_REASON_USER);
	if (conn->ws.on) {
		kv.iov_base = frame;
		kv.iov_len = nbdws_ws_small_frame(conn, frame, WS_OP_BINARY,
						  hdr, sizeof(hdr));
	}
	if (alive && !conn->tx_cur && conn->ws.ctl_off == conn->ws.ctl_len)
		kernel_sendmsg(conn->sock, &msg, &kv, 1, kv.iov_len);
	mutex_unlock(&conn->tx_mutex);
}

static void nbdws_conn_dead_work(struct work_struct *work)
{
	struct nbdws_conn *conn = container_of(work, struct nbdws_conn,
					       dead_work);
	struct nbdws_dev *dev = conn->dev;
	u32 reason = READ_ONCE(conn->reason);
	bool wait = false, fail = false;
	char ws_text[sizeof(conn->ws.end_text)];
	u16 ws_code = 0;

	if (test_bit(NBDWS_CONN_F_SOCK, &conn->flags))
		nbdws_ws_send_close(conn, reason);
	if (reason == NBDWS_REASON_WS_CLOSE ||
	    reason == NBDWS_REASON_WS_PROTOCOL) {
		ws_code = conn->ws.end_code;
		strscpy(ws_text, conn->ws.end_text, sizeof(ws_text));
	}
	nbdws_conn_quiesce(conn);
	if (reason != NBDWS_REASON_USER)
		dev_warn(disk_to_dev(dev->disk), "connection %u dead (reason %u)\n",
			 conn->id, reason);
	nbdws_requeue_conn(conn);

	spin_lock_bh(&dev->held_lock);
	if (!atomic_read(&dev->live) && dev->state == NBDWS_DEV_RUNNING) {
		dev->state = NBDWS_DEV_DEAD_WAIT;
		if (dev->disconnecting || !dev->dead_timeout_ms)
			fail = true;
		else
			wait = true;
	}
	spin_unlock_bh(&dev->held_lock);
	if (fail)
		nbdws_fail_held(dev);
	else if (wait)
		mod_delayed_work(nbdws_wq, &dev->dead_timeout_work,
				 msecs_to_jiffies(dev->dead_timeout_ms));

	if (ws_code)
		nbdws_event_ws(dev, NBDWS_EVENT_CONN_DEAD, conn->id, reason,
			       ws_code, ws_text);
	else
		nbdws_event(dev, NBDWS_EVENT_CONN_DEAD, conn->id, reason);
}

void nbdws_dead_timeout_work(struct work_struct *work)
{
	struct nbdws_dev *dev = container_of(to_delayed_work(work),
					     struct nbdws_dev,
					     dead_timeout_work);

	if (!nbdws_fail_held_expired(dev))
		return;
	dev_warn(disk_to_dev(dev->disk),
		 "no connection came back in time: failing requests\n");
	nbdws_event(dev, NBDWS_EVENT_DEAD_TIMEOUT, -1, NBDWS_REASON_NONE);
}
