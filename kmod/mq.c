// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: blk-mq operations.
 *
 * queue_rq never waits for the network and allocates nothing of its own
 * (the socket allocates its skbs, GFP_NOIO, when queue_rq sends; the tag
 * set is BLK_MQ_F_BLOCKING only so that it may send on an idle connection
 * itself, under a mutex it merely tries to take): it turns the request
 * into an NBD header in the request's own PDU and hands it to a live
 * connection's send list, preferring the connection of its hardware
 * queue; the end of the dispatch batch (bd->last, or commit_rqs) sends
 * it. When no connection is alive the request is parked on the device's
 * held list until a RECONFIGURE brings a socket back or the
 * dead-connection timeout fails it. A request only ever succeeds after
 * the server's reply, so a reconnect cannot lose an acknowledged write.
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/jiffies.h>

#include "compat.h"
#include "nbdws.h"

static blk_status_t nbdws_map_op(struct nbdws_dev *dev, struct request *rq,
				 u16 *type, u16 *flags)
{
	u32 sf = dev->server_flags;

	*flags = 0;
	/* Read-only: nothing that changes the export goes out. */
	if (op_is_write(req_op(rq)) &&
	    (dev->client_flags & NBDWS_CF_READ_ONLY || sf & NBDP_FLAG_READ_ONLY))
		return BLK_STS_IOERR;
	switch (req_op(rq)) {
	case REQ_OP_READ:
		*type = NBDP_CMD_READ;
		return BLK_STS_OK;
	case REQ_OP_WRITE:
		*type = NBDP_CMD_WRITE;
		if (rq->cmd_flags & REQ_FUA && sf & NBDP_FLAG_SEND_FUA)
			*flags |= NBDP_CMD_FLAG_FUA;
		return BLK_STS_OK;
	case REQ_OP_FLUSH:
		if (!(sf & NBDP_FLAG_SEND_FLUSH))
			return BLK_STS_NOTSUPP;
		*type = NBDP_CMD_FLUSH;
		return BLK_STS_OK;
	case REQ_OP_DISCARD:
		if (!(sf & NBDP_FLAG_SEND_TRIM))
			return BLK_STS_NOTSUPP;
		*type = NBDP_CMD_TRIM;
		return BLK_STS_OK;
	case REQ_OP_WRITE_ZEROES:
		if (!(sf & NBDP_FLAG_SEND_WRITE_ZEROES))
			return BLK_STS_NOTSUPP;
		*type = NBDP_CMD_WRITE_ZEROES;
		if (rq->cmd_flags & REQ_NOUNMAP)
			*flags |= NBDP_CMD_FLAG_NO_HOLE;
		return BLK_STS_OK;
	default:
		return BLK_STS_NOTSUPP;
	}
}

/* Hand @rq to @conn unless it is dead. */
static bool nbdws_conn_enqueue(struct nbdws_conn *conn, struct request *rq)
{
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);
	unsigned long now = jiffies;

	spin_lock_bh(&conn->send_lock);
	if (nbdws_conn_dead(conn)) {
		spin_unlock_bh(&conn->send_lock);
		return false;
	}
	WRITE_ONCE(cmd->conn, conn);
	/* Counted before the release below; see nbdws_stats_inflight(). */
	nbdws_stat_add(conn, NBDWS_CTR_SENT, 1);
	/*
	 * Publishes cmd->conn and the cookie: a reply may be parsed before
	 * the sender is done, without send_lock (nbdws_rx_lookup()).
	 */
	atomic_set_release(&cmd->state, NBDWS_CMD_INFLIGHT);
	list_add_tail(&cmd->node, &conn->send_list);
	/*
	 * Once per jiffy (any other jiffy than the last sample's: no
	 * time_after(), which a long idle time would wrap). peak_sampled
	 * shares send_lock's cache line, so the check costs nothing.
	 */
	if (conn->peak_sampled != now)
		nbdws_stats_sample_peak(conn);
	spin_unlock_bh(&conn->send_lock);
	return true;
}

/*
 * End of a dispatch batch (the last queue_rq of it, or commit_rqs when
 * blk-mq cut it short): send what the batch handed to the connections.
 * Nothing is sent before, so a batch leaves in as few segments as the
 * socket allows, from this context when the connection is idle, without
 * a work item hop per request.
 */
static void nbdws_kick_batch(struct nbdws_dev *dev)
{
	/* Pairs with nbdws_dev_grow(): slots below nr are set up. */
	unsigned int nr = smp_load_acquire(&dev->nr_conns), i;

	for (i = 0; i < nr; i++) {
		struct nbdws_conn *conn = dev->conns[i];

		if (!list_empty_careful(&conn->send_list))
			nbdws_tx_kick(conn, true);
	}
}

static void nbdws_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	nbdws_kick_batch(hctx->queue->queuedata);
}

/*
 * No connection is alive: park @rq. Returns false when a connection came
 * back meanwhile (the caller retries); dev->live is raised before the held
 * list is released, and both are checked under held_lock, so a request can
 * never be parked after the release that should have picked it up.
 */
static bool nbdws_hold(struct nbdws_dev *dev, struct request *rq,
		       blk_status_t *status)
{
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);

	spin_lock_bh(&dev->held_lock);
	if (atomic_read(&dev->live) > 0) {
		spin_unlock_bh(&dev->held_lock);
		return false;
	}
	if (dev->failing) {
		spin_unlock_bh(&dev->held_lock);
		*status = BLK_STS_IOERR;
		return true;
	}
	WRITE_ONCE(cmd->conn, NULL);
	atomic_set(&cmd->state, NBDWS_CMD_HELD);
	list_add_tail(&cmd->node, &dev->held);
	spin_unlock_bh(&dev->held_lock);
	*status = BLK_STS_OK;
	return true;
}

/*
 * The connection to try first. blk-mq creates at most one hardware queue
 * per CPU, so with more connections than queues each queue takes turns
 * among the connections congruent to it. A lost update of the turn counter
 * only skews the spread a little, hence no atomics.
 */
static unsigned int nbdws_pick_conn(struct nbdws_dev *dev,
				    struct blk_mq_hw_ctx *hctx, unsigned int nr)
{
	unsigned int nr_hw = hctx->queue->nr_hw_queues;
	unsigned int q = hctx->queue_num;
	unsigned int turns, turn;

	if (nr <= nr_hw || q >= nr)
		return q % nr;
	turns = (nr - q + nr_hw - 1) / nr_hw;
	turn = READ_ONCE(dev->rr[q]);
	WRITE_ONCE(dev->rr[q], turn + 1);
	return q + nr_hw * (turn % turns);
}

static blk_status_t nbdws_queue_rq(struct blk_mq_hw_ctx *hctx,
				   const struct blk_mq_queue_data *bd)
{
	struct nbdws_dev *dev = hctx->queue->queuedata;
	struct request *rq = bd->rq;
	/* Pairs with nbdws_dev_grow(): slots below nr are set up. */
	unsigned int nr = smp_load_acquire(&dev->nr_conns);
	unsigned int first = nbdws_pick_conn(dev, hctx, nr);
	blk_status_t status;
	u16 type, flags;
	int tries;

	status = nbdws_map_op(dev, rq, &type, &flags);
	if (status)
		goto out;

	nbdws_tx_prepare(dev, rq, type, flags);
	blk_mq_start_request(rq);

	for (tries = 0; tries < 3; tries++) {
		unsigned int i;

		for (i = 0; i < nr; i++) {
			if (nbdws_conn_enqueue(dev->conns[(first + i) % nr],
					       rq)) {
				status = BLK_STS_OK;
				goto out;
			}
		}
		if (nbdws_hold(dev, rq, &status))
			goto out;
	}
	/* Connections are flapping: let blk-mq retry a little later. */
	status = BLK_STS_RESOURCE;
out:
	if (bd->last)
		nbdws_kick_batch(dev);
	return status;
}

/*
 * The block status for the server's error. A peer must not pick
 * block-layer statuses (BLK_STS_RESOURCE for NBD_ENOMEM would read as our
 * own memory shortage, EOVERFLOW maps to a zoned-device status): only
 * "no space" and "not supported" mean the same to the block layer as to
 * the server, everything else is an I/O error.
 */
static blk_status_t nbdws_reply_status(int error)
{
	switch (error) {
	case 0:
		return BLK_STS_OK;
	case -ENOSPC:
		return BLK_STS_NOSPC;
	case -EOPNOTSUPP:
		return BLK_STS_NOTSUPP;
	default:
		return BLK_STS_IOERR;
	}
}

static void nbdws_complete_rq(struct request *rq)
{
	blk_mq_end_request(rq, nbdws_reply_status(nbdws_rq_cmd(rq)->error));
}

/* Called by whichever of send and receive finishes last with @rq. */
void nbdws_cmd_complete(struct request *rq)
{
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);

	nbdws_stat_add(cmd->conn, NBDWS_CTR_RETIRED, 1);
	atomic_set(&cmd->state, 0);
	blk_mq_complete_request(rq);
}

/*
 * A request outlived its timeout: the connection it went out on is
 * declared dead, which requeues it to another connection or parks it.
 * The timer is re-armed in any case: the request is finished by the
 * connection teardown, not by blk-mq.
 */
static enum blk_eh_timer_return nbdws_timeout(struct request *rq)
{
	struct nbdws_dev *dev = rq->q->queuedata;
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);
	struct nbdws_conn *conn;

	if (!READ_ONCE(dev->timeout_ms))
		return BLK_EH_RESET_TIMER;
	if (!(atomic_read(&cmd->state) & NBDWS_CMD_INFLIGHT))
		return BLK_EH_RESET_TIMER;
	conn = READ_ONCE(cmd->conn);
	if (conn && !nbdws_conn_dead(conn)) {
		nbdws_stat_add(conn, NBDWS_CTR_TIMEOUTS, 1);
		dev_warn_ratelimited(disk_to_dev(dev->disk),
				     "request %#llx timed out on connection %u\n",
				     cmd->cookie, conn->id);
		nbdws_conn_mark_dead(conn, NBDWS_REASON_TIMEOUT);
	}
	return BLK_EH_RESET_TIMER;
}

static int nbdws_init_request(struct blk_mq_tag_set *set, struct request *rq,
			      unsigned int hctx_idx, NBDWS_NUMA_NODE_T numa_node)
{
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);

	memset(cmd, 0, sizeof(*cmd));
	INIT_LIST_HEAD(&cmd->node);
	return 0;
}

const struct blk_mq_ops nbdws_mq_ops = {
	.queue_rq	= nbdws_queue_rq,
	.commit_rqs	= nbdws_commit_rqs,
	.complete	= nbdws_complete_rq,
	.timeout	= nbdws_timeout,
	.init_request	= nbdws_init_request,
};

/* A connection is back: send the parked requests through queue_rq again. */
void nbdws_release_held(struct nbdws_dev *dev)
{
	struct nbdws_req *cmd, *tmp;
	LIST_HEAD(list);

	spin_lock_bh(&dev->held_lock);
	dev->state = NBDWS_DEV_RUNNING;
	if (!dev->disconnecting)
		dev->failing = false;
	list_splice_init(&dev->held, &list);
	spin_unlock_bh(&dev->held_lock);
	cancel_delayed_work(&dev->dead_timeout_work);

	if (list_empty(&list))
		return;
	list_for_each_entry_safe(cmd, tmp, &list, node) {
		list_del_init(&cmd->node);
		atomic_set(&cmd->state, 0);
		blk_mq_requeue_request(blk_mq_rq_from_pdu(cmd), false);
	}
	blk_mq_kick_requeue_list(dev->disk->queue);
}

static void nbdws_end_held(struct list_head *list)
{
	struct nbdws_req *cmd, *tmp;

	list_for_each_entry_safe(cmd, tmp, list, node) {
		list_del_init(&cmd->node);
		atomic_set(&cmd->state, 0);
		blk_mq_end_request(blk_mq_rq_from_pdu(cmd), BLK_STS_IOERR);
	}
}

/* The device goes away: fail what waits, and whatever comes later. */
void nbdws_fail_held(struct nbdws_dev *dev)
{
	LIST_HEAD(list);

	spin_lock_bh(&dev->held_lock);
	dev->failing = true;
	list_splice_init(&dev->held, &list);
	spin_unlock_bh(&dev->held_lock);
	nbdws_end_held(&list);
}

/*
 * The dead-connection timeout expired: unless a connection came back,
 * fail what waits and whatever comes until one does. Checked and done in
 * one held_lock section, so a RECONFIGURE that brings a connection back
 * meanwhile (raising live, then releasing the held list under the same
 * lock) either comes first and wins, or finds the device failing and
 * ends that. Returns whether it failed the device.
 */
bool nbdws_fail_held_expired(struct nbdws_dev *dev)
{
	LIST_HEAD(list);
	bool expired;

	spin_lock_bh(&dev->held_lock);
	expired = dev->state == NBDWS_DEV_DEAD_WAIT && !atomic_read(&dev->live);
	if (expired) {
		dev->failing = true;
		list_splice_init(&dev->held, &list);
	}
	spin_unlock_bh(&dev->held_lock);
	nbdws_end_held(&list);
	return expired;
}

struct nbdws_requeue_ctx {
	struct nbdws_conn *conn;
	unsigned int count;
};

static bool nbdws_requeue_one(struct request *rq, void *data)
{
	struct nbdws_requeue_ctx *ctx = data;
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);

	if (READ_ONCE(cmd->conn) != ctx->conn ||
	    !(atomic_read(&cmd->state) & NBDWS_CMD_INFLIGHT))
		return true;
	atomic_set(&cmd->state, 0);
	nbdws_stat_add(ctx->conn, NBDWS_CTR_RETIRED, 1);
	blk_mq_requeue_request(rq, false);
	ctx->count++;
	return true;
}

/*
 * Give every request in flight on a dead, quiesced connection back to
 * blk-mq; queue_rq then sends it on a live connection or parks it.
 */
void nbdws_requeue_conn(struct nbdws_conn *conn)
{
	struct nbdws_requeue_ctx ctx = { .conn = conn };

	down_read(&conn->dev->tags_rwsem);
	blk_mq_tagset_busy_iter(&conn->dev->tag_set, nbdws_requeue_one, &ctx);
	up_read(&conn->dev->tags_rwsem);
	if (ctx.count)
		blk_mq_kick_requeue_list(conn->dev->disk->queue);
}
