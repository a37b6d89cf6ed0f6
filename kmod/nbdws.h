/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws: internal interfaces between the parts of the module.
 *
 * Object model: a device (struct nbdws_dev) owns a blk-mq tag set with one
 * hardware queue per connection slot (blk-mq caps the count at the number
 * of CPUs; queues then take turns among connections) and a gendisk. Each slot is a struct
 * nbdws_conn that lives as long as the device; its socket may be replaced
 * (RECONFIGURE) once the previous one is dead and quiesced, so pointers to
 * a connection never dangle while the device exists.
 */
#ifndef _NBDWS_H
#define _NBDWS_H

#include <linux/atomic.h>
#include <linux/blk-mq.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/net.h>
#include <linux/percpu.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/u64_stats_sync.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include <linux/nbdws.h>

#include "nbd_wire.h"
#include "ws_frame.h"

struct netlink_ext_ack;
struct nlattr;

#define NBDWS_BACKEND_MAX	256
#define NBDWS_MIN_BLOCK_SIZE	512

/*
 * Request life cycle bits in nbdws_cmd.state. A request handed to a
 * connection is INFLIGHT; the send path sets TX_DONE after its last byte
 * left, the receive path sets REPLIED once the reply (and read payload) is
 * in. Whichever of the two comes second completes the request, so neither
 * side ever touches a completed request, even when a hostile server answers
 * before the request was fully sent.
 */
#define NBDWS_CMD_INFLIGHT	BIT(0)
#define NBDWS_CMD_TX_DONE	BIT(1)
#define NBDWS_CMD_REPLIED	BIT(2)
#define NBDWS_CMD_HELD		BIT(3)	/* parked: no live connection */

/* Per-request data, in the blk-mq command (blk_mq_rq_to_pdu). */
struct nbdws_req {
	struct list_head node;		/* conn send list or dev held list */
	struct nbdws_conn *conn;	/* connection it went out on */
	atomic_t state;
	int error;			/* errno from the reply */
	u64 cookie;
	unsigned long queued_at;	/* jiffies, for debugfs */
	u16 nbd_type;
	bool zcopy;			/* payload pages may be spliced */
	/*
	 * Wire header: the NBD request at hdr + WS_MAX_HEADER, and on a
	 * WebSocket connection the frame header right before it, from
	 * hdr + hdr_start. hdr_off counts the bytes of it already sent.
	 */
	u8 hdr_start;
	u8 hdr_off;
	u8 hdr[WS_MAX_HEADER + NBDP_REQUEST_SIZE];
	struct bio *tx_bio;		/* bio whose payload is being sent */
	struct iov_iter tx_iter;
	/* ws-client role: the frame's mask and the masked payload copy. */
	u8 mask_key[4];
	bool mfrag_spare;		/* mfrag is the connection's spare page */
	u64 mask_pos;			/* frame offset of the next byte */
	u8 *mfrag;			/* masked bytes not yet sent */
	u32 mfrag_len;
	u32 mfrag_off;
};

static inline u8 *nbdws_req_nbd_hdr(struct nbdws_req *cmd)
{
	return cmd->hdr + WS_MAX_HEADER;
}

/* Connection flag bits (nbdws_conn.flags). */
enum {
	NBDWS_CONN_F_DEAD,		/* no new requests; teardown scheduled */
	NBDWS_CONN_F_SOCK,		/* sock is set and callbacks installed */
};

/*
 * WebSocket side of a connection (transport ws-server or ws-client). The
 * decoder belongs to the receive path, the frame being sent to the
 * tx_mutex holder; the requests for control frames pass between them
 * under send_lock.
 */
struct nbdws_ws {
	bool on;			/* WebSocket framing on this socket */
	bool mask;			/* client role: we mask what we send */
	u32 ping_ms;			/* keepalive interval, 0 = off */
	struct ws_dec dec;

	/* Control frames the sender owes; under send_lock. */
	bool pong_pending;
	bool ping_pending;
	u8 pong_len;
	u8 pong_data[WS_MAX_CONTROL];
	u64 ping_seq;			/* payload of the latest ping */
	bool ping_outstanding;		/* sent, no matching pong yet */

	/* The control frame being sent; under tx_mutex. */
	u8 ctl_len;
	u8 ctl_off;
	u8 ctl[WS_MAX_HEADER + WS_MAX_CONTROL];

	struct delayed_work ping_work;

	/*
	 * How the connection ended, set before it is marked dead: the code
	 * our close frame carries (0: derive it from the dead reason) and
	 * what CONN_DEAD reports (the peer's close, or our violation).
	 */
	u32 end_reason;			/* 0 or enum nbdws_dead_reason */
	u16 close_code;
	u16 end_code;
	char end_text[WS_MAX_CONTROL - 1];

	/* Client role: pages the masked payload is copied into. */
	struct page_frag_cache frag;
	struct page *spare;		/* when the frag cache is out of memory */
};

/*
 * Counters of a connection, kept per CPU so that no request writes a
 * cache line shared with other CPUs to count itself (see stats.c). Most
 * are STATUS counters; SENT and RETIRED give the number in flight.
 */
enum nbdws_ctr {
	NBDWS_CTR_READS,
	NBDWS_CTR_WRITES,
	NBDWS_CTR_FLUSHES,
	NBDWS_CTR_TRIMS,
	NBDWS_CTR_WRITE_ZEROES,
	NBDWS_CTR_READ_BYTES,
	NBDWS_CTR_WRITE_BYTES,
	NBDWS_CTR_ERRORS,
	NBDWS_CTR_TIMEOUTS,
	NBDWS_CTR_RECONNECTS,
	NBDWS_CTR_SENT,			/* requests handed to the connection */
	NBDWS_CTR_RETIRED,		/* ... and completed or requeued */

	NBDWS_CTR_NR,
};

struct nbdws_conn_stats {
	u64_stats_t ctr[NBDWS_CTR_NR];
	struct u64_stats_sync syncp;
};

struct nbdws_conn {
	struct nbdws_dev *dev;
	unsigned int id;
	unsigned long flags;
	u32 reason;			/* enum nbdws_dead_reason */
	u32 transport;			/* enum nbdws_transport */
	struct socket *sock;
	bool use_read_sock;		/* a read_sock that yields plaintext */
	bool rx_softirq;		/* replies may be parsed in sk_data_ready */

	void (*saved_data_ready)(struct sock *sk);
	void (*saved_state_change)(struct sock *sk);
	void (*saved_write_space)(struct sock *sk);
	/* Socket settings changed for block I/O, given back as they were. */
	gfp_t saved_allocation;
	bool saved_task_frag;
	bool saved_nodelay;
	int saved_rcvlowat;
	int saved_rcvbuf;		/* 0: the driver did not size it */
	u32 saved_window_clamp;

	/* Send side: queue_rq appends; whoever holds tx_mutex drains. */
	spinlock_t send_lock;
	struct list_head send_list;
	/* The in-flight peak and when it was last sampled; under send_lock. */
	u64 inflight_peak;
	unsigned long peak_sampled;
	struct mutex tx_mutex;		/* one sender at a time */
	struct nbdws_req *tx_cur;	/* under tx_mutex */
	struct work_struct tx_work;

	/*
	 * Receive side: everything below belongs to whoever reads the
	 * socket (see rx.c): rx_work, or sk_data_ready in softirq on TCP.
	 */
	struct work_struct rx_work;
	struct nbd_reply_parser parser;
	struct request *rx_rq;		/* read whose payload is arriving */
	struct bio *rx_bio;
	struct iov_iter rx_iter;
	int rx_quota;			/* bytes this reader may still parse */
	bool rx_deferred;		/* softirq out of budget, rx_work's turn */

	struct work_struct dead_work;
	struct nbdws_conn_stats __percpu *stats;

	bool ktls;			/* a ULP (kTLS) owns the byte stream */
	struct nbdws_ws ws;
};

struct nbdws_dev {
	int index;
	/* Taken by every configuration command on the device (see dev.c). */
	struct mutex lock;
	struct kref ref;
	bool gone;			/* removed; under lock */
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	bool disk_added;
	u32 *tag_gen;			/* per hwq and tag: cookie generation */

	struct nbdws_conn *conns[NBDWS_MAX_CONNS];
	unsigned int nr_conns;		/* grows only; see nbdws_dev_grow() */
	atomic_t live;			/* connections not dead */
	unsigned int rr[NBDWS_MAX_CONNS]; /* per hwq: next connection turn */
	/*
	 * Held for reading by everything that walks the tag set (reply
	 * lookup, requeue, debugfs), for writing while the number of
	 * hardware queues changes.
	 */
	struct rw_semaphore tags_rwsem;
	bool rx_paused;			/* no receiving in softirq, see rx.c */

	/* Configuration, changed only under lock. */
	u64 size;
	u32 block_size;
	u32 block_pref;
	u32 block_max;
	u32 max_req;
	u32 server_flags;
	u32 client_flags;
	u32 timeout_ms;
	u32 dead_timeout_ms;
	u32 depth;
	char backend[NBDWS_BACKEND_MAX];

	/* Requests waiting for a connection; state and failing guard them. */
	spinlock_t held_lock;
	struct list_head held;
	u32 state;			/* enum nbdws_dev_state */
	bool failing;			/* fail instead of holding */
	bool disconnecting;
	struct delayed_work dead_timeout_work;

	/*
	 * The close frame DISCONNECT ends WebSocket connections with; code
	 * 0 means the default (1000, no reason). Set before the connections
	 * are marked dead, read by their teardown.
	 */
	u16 disc_code;
	char disc_text[WS_MAX_CONTROL - 1];

	struct dentry *debugfs_dir;
};

static inline struct nbdws_req *nbdws_rq_cmd(struct request *rq)
{
	return blk_mq_rq_to_pdu(rq);
}

/* Module-wide state (main.c). */
extern struct workqueue_struct *nbdws_wq;

/* dev.c: device life cycle. Callers hold the device's lock. */
struct nbdws_dev_config {
	u64 size;
	u32 block_size;
	u32 block_pref;
	u32 block_max;
	u32 max_req;
	u32 server_flags;
	u32 client_flags;
	u32 timeout_ms;
	u32 dead_timeout_ms;
	u32 depth;
	const char *backend;
	unsigned int nr_conns;
};

struct nbdws_dev *nbdws_dev_create(const struct nbdws_dev_config *cfg,
				   int index);
int nbdws_dev_add(struct nbdws_dev *dev);
void nbdws_dev_start(struct nbdws_dev *dev);
int nbdws_dev_reuse_check(struct nbdws_dev *dev,
			  const struct nbdws_dev_config *cfg,
			  struct netlink_ext_ack *extack);
int nbdws_dev_reuse(struct nbdws_dev *dev, const struct nbdws_dev_config *cfg,
		    struct netlink_ext_ack *extack);
void nbdws_dev_restart(struct nbdws_dev *dev);
void nbdws_dev_disconnect(struct nbdws_dev *dev);
void nbdws_dev_destroy(struct nbdws_dev *dev);
struct nbdws_dev *nbdws_dev_get(int index);
struct nbdws_dev *nbdws_dev_get_next(int *index);
void nbdws_dev_put(struct nbdws_dev *dev);
void nbdws_dev_set_timeout(struct nbdws_dev *dev, u32 timeout_ms);
void nbdws_dev_grow(struct nbdws_dev *dev, unsigned int nr_conns);
void nbdws_dev_update_hw_queues(struct nbdws_dev *dev);
void nbdws_dev_remove_all(void);
void nbdws_dev_exit(void);

/* mq.c: blk-mq operations and request hold/requeue. */
extern const struct blk_mq_ops nbdws_mq_ops;
void nbdws_cmd_complete(struct request *rq);
void nbdws_release_held(struct nbdws_dev *dev);
void nbdws_fail_held(struct nbdws_dev *dev);
bool nbdws_fail_held_expired(struct nbdws_dev *dev);
void nbdws_requeue_conn(struct nbdws_conn *conn);

/* conn.c: connection life cycle. */
struct nbdws_conn_params {
	struct socket *sock;
	u32 transport;
	u32 ping_ms;
	const void *preread;
	size_t preread_len;
};

int nbdws_sock_lookup(int fd, struct socket **sockp,
		      struct netlink_ext_ack *extack,
		      const struct nlattr *attr);
struct nbdws_conn *nbdws_conn_alloc(struct nbdws_dev *dev, unsigned int id);
void nbdws_conn_free(struct nbdws_conn *conn);
int nbdws_conn_prepare(struct nbdws_conn *conn,
		       const struct nbdws_conn_params *p);
void nbdws_conn_unprepare(struct nbdws_conn *conn,
			  const struct nbdws_conn_params *p);
void nbdws_conn_start(struct nbdws_conn *conn,
		      const struct nbdws_conn_params *p);
void nbdws_conn_mark_dead(struct nbdws_conn *conn, u32 reason);
void nbdws_conn_quiesce(struct nbdws_conn *conn);
void nbdws_conn_release_sock(struct nbdws_conn *conn);
void nbdws_conn_disconnect(struct nbdws_conn *conn);
void nbdws_dead_timeout_work(struct work_struct *work);

/*
 * Point @it at the data of @bio (which may be a clone sharing its bio_vec
 * array, starting part-way into it), for @dir ITER_SOURCE or ITER_DEST.
 */
static inline void nbdws_bio_iter(struct bio *bio, unsigned int dir,
				  struct iov_iter *it)
{
	const struct bio_vec *bv = bio->bi_io_vec + bio->bi_iter.bi_idx;
	size_t span = bio->bi_iter.bi_bvec_done + bio->bi_iter.bi_size;
	unsigned long nr = 0;

	while (span) {
		span -= min_t(size_t, span, bv[nr].bv_len);
		nr++;
	}
	iov_iter_bvec(it, dir, bv, nr, bio->bi_iter.bi_size);
	it->iov_offset = bio->bi_iter.bi_bvec_done;
}

static inline bool nbdws_conn_dead(const struct nbdws_conn *conn)
{
	return test_bit(NBDWS_CONN_F_DEAD, &conn->flags);
}

/*
 * Count @v in counter @c of @conn, on this CPU's copy. Any context: the
 * irqsave variant (which does nothing on 64-bit) keeps a softirq from
 * nesting in a process-context update on 32-bit, where the seqcount would
 * otherwise let a reader see a torn value.
 */
static inline void nbdws_stat_add(struct nbdws_conn *conn, enum nbdws_ctr c,
				  unsigned long v)
{
	struct nbdws_conn_stats *s = get_cpu_ptr(conn->stats);
	unsigned long flags = u64_stats_update_begin_irqsave(&s->syncp);

	u64_stats_add(&s->ctr[c], v);
	u64_stats_update_end_irqrestore(&s->syncp, flags);
	put_cpu_ptr(conn->stats);
}

/* stats.c: the counters' life cycle and what STATUS reports of them. */
int nbdws_stats_alloc(struct nbdws_conn *conn);
void nbdws_stats_free(struct nbdws_conn *conn);
void nbdws_stats_replied(struct nbdws_conn *conn, struct request *rq);
u64 nbdws_stats_sample_peak(struct nbdws_conn *conn);
void nbdws_stats_read(struct nbdws_conn *conn, u64 *out);

/* tx.c: send path. */
void nbdws_tx_prepare(struct nbdws_dev *dev, struct request *rq, u16 type,
		      u16 flags);
int nbdws_tx_buf(struct socket *sock, const u8 *buf, u8 len, u8 *off,
		 int flags);
void nbdws_tx_work(struct work_struct *work);
void nbdws_tx_kick(struct nbdws_conn *conn, bool inline_ok);

/* ws_tx.c: WebSocket framing of what we send, control frames, keepalive. */
int nbdws_ws_attach(struct nbdws_conn *conn, u32 transport, u32 ping_ms);
void nbdws_ws_start(struct nbdws_conn *conn);
void nbdws_ws_stop(struct nbdws_conn *conn);
void nbdws_ws_release(struct nbdws_conn *conn);
void nbdws_ws_tx_begin(struct nbdws_conn *conn, struct nbdws_req *cmd);
int nbdws_ws_tx_payload(struct nbdws_conn *conn, struct nbdws_req *cmd,
			bool more);
void nbdws_ws_tx_drop(struct nbdws_req *cmd);
int nbdws_ws_tx_control(struct nbdws_conn *conn);
bool nbdws_ws_tx_pending(struct nbdws_conn *conn);
size_t nbdws_ws_small_frame(struct nbdws_conn *conn, u8 *out, u8 opcode,
			    const void *data, size_t len);
void nbdws_ws_send_close(struct nbdws_conn *conn, u32 reason);
void nbdws_ws_queue_pong(struct nbdws_conn *conn, const u8 *data, u8 len);
void nbdws_ws_got_pong(struct nbdws_conn *conn, const u8 *data, u8 len);

/* rx.c: receive path. */
void nbdws_rx_work(struct work_struct *work);
bool nbdws_rx_direct(struct nbdws_conn *conn);
int nbdws_rx_preread(struct nbdws_conn *conn, const void *buf, size_t len);
void nbdws_rx_end(struct nbdws_conn *conn, int err);
void nbdws_rx_pause(struct nbdws_dev *dev);
void nbdws_rx_resume(struct nbdws_dev *dev);
void nbdws_rx_reset(struct nbdws_conn *conn);

/* genl.c: netlink family and events. */
int nbdws_genl_init(void);
void nbdws_genl_exit(void);
void nbdws_event(struct nbdws_dev *dev, u32 event, int conn_id, u32 reason);
void nbdws_event_ws(struct nbdws_dev *dev, u32 event, int conn_id, u32 reason,
		    u16 ws_code, const char *ws_reason);

/* debugfs.c */
void nbdws_debugfs_init(void);
void nbdws_debugfs_exit(void);
void nbdws_debugfs_add(struct nbdws_dev *dev);
void nbdws_debugfs_remove(struct nbdws_dev *dev);

#endif /* _NBDWS_H */
