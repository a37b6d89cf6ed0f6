// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: per-connection counters, as STATUS reports them.
 *
 * A request is queued on one CPU and usually completed on another (the
 * one that took the reply in softirq). Shared counters would make each
 * request write its connection's counter cache line from both, with an
 * atomic read-modify-write each time, plus a compare-and-swap loop for
 * the peak. So every counter is per CPU and summed when STATUS asks, as
 * the network stack does with its device statistics.
 *
 * Requests in flight are not a counter of their own but SENT - RETIRED:
 * SENT counts on the queueing CPU, RETIRED (completion or requeue) on
 * the completing one. Both only grow, so the difference is exact however
 * the two CPUs' copies are read, provided RETIRED is read first (below).
 *
 * The peak cannot be kept exactly without a shared write per request, so
 * it is sampled: when a request is handed to the connection and no sample
 * was taken in this jiffy yet, and on every STATUS. A burst that comes and
 * goes between two samples is missed; a load that lasts longer than a few
 * jiffies is seen at its level.
 */
#include <linux/blk-mq.h>
#include <linux/jiffies.h>
#include <linux/percpu.h>

#include "nbdws.h"

int nbdws_stats_alloc(struct nbdws_conn *conn)
{
	int cpu;

	conn->stats = alloc_percpu(struct nbdws_conn_stats);
	if (!conn->stats)
		return -ENOMEM;
	for_each_possible_cpu(cpu)
		u64_stats_init(&per_cpu_ptr(conn->stats, cpu)->syncp);
	return 0;
}

void nbdws_stats_free(struct nbdws_conn *conn)
{
	free_percpu(conn->stats);
	conn->stats = NULL;
}

/*
 * The reply to @rq came in: count the request by type, and the bytes it
 * moved (none when the server answered with an error).
 */
void nbdws_stats_replied(struct nbdws_conn *conn, struct request *rq)
{
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);
	unsigned int bytes = cmd->error ? 0 : blk_rq_bytes(rq);

	switch (cmd->nbd_type) {
	case NBDP_CMD_READ:
		nbdws_stat_add(conn, NBDWS_CTR_READS, 1);
		nbdws_stat_add(conn, NBDWS_CTR_READ_BYTES, bytes);
		break;
	case NBDP_CMD_WRITE:
		nbdws_stat_add(conn, NBDWS_CTR_WRITES, 1);
		nbdws_stat_add(conn, NBDWS_CTR_WRITE_BYTES, bytes);
		break;
	case NBDP_CMD_FLUSH:
		nbdws_stat_add(conn, NBDWS_CTR_FLUSHES, 1);
		break;
	case NBDP_CMD_TRIM:
		nbdws_stat_add(conn, NBDWS_CTR_TRIMS, 1);
		break;
	case NBDP_CMD_WRITE_ZEROES:
		nbdws_stat_add(conn, NBDWS_CTR_WRITE_ZEROES, 1);
		break;
	}
	if (cmd->error)
		nbdws_stat_add(conn, NBDWS_CTR_ERRORS, 1);
}

/* The sum of counter @c over every CPU's copy. */
static u64 nbdws_stats_sum(struct nbdws_conn *conn, enum nbdws_ctr c)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu) {
		const struct nbdws_conn_stats *s = per_cpu_ptr(conn->stats,
							       cpu);
		unsigned int start;
		u64 v;

		do {
			start = u64_stats_fetch_begin(&s->syncp);
			v = u64_stats_read(&s->ctr[c]);
		} while (u64_stats_fetch_retry(&s->syncp, start));
		sum += v;
	}
	return sum;
}

/*
 * Requests in flight on @conn now. A request's SENT is counted before it
 * is published with a release (nbdws_conn_enqueue()); its RETIRED only
 * by a path that saw it published: the receive path's acquire in
 * nbdws_rx_lookup(), the fully ordered atomic_fetch_or() before
 * nbdws_cmd_complete(), or the teardown, which took send_lock after it.
 * So a reader that sees a request's RETIRED and then, after smp_rmb(),
 * reads SENT sees its SENT too: the difference is never negative.
 */
static u64 nbdws_stats_inflight(struct nbdws_conn *conn)
{
	u64 retired = nbdws_stats_sum(conn, NBDWS_CTR_RETIRED);

	/* RETIRED before SENT, as explained above. */
	smp_rmb();
	return nbdws_stats_sum(conn, NBDWS_CTR_SENT) - retired;
}

/*
 * Sample the in-flight count for the peak and return it. Caller holds
 * send_lock, which orders the samples: the peak only ever grows.
 */
u64 nbdws_stats_sample_peak(struct nbdws_conn *conn)
{
	u64 now = nbdws_stats_inflight(conn);

	lockdep_assert_held(&conn->send_lock);
	conn->peak_sampled = jiffies;
	if (now > conn->inflight_peak)
		conn->inflight_peak = now;
	return now;
}

/* Fill @out, indexed by enum nbdws_stat_attr, with what STATUS reports. */
void nbdws_stats_read(struct nbdws_conn *conn, u64 *out)
{
	static const u8 attr[NBDWS_CTR_NR] = {
		[NBDWS_CTR_READS] = NBDWS_STAT_A_READS,
		[NBDWS_CTR_WRITES] = NBDWS_STAT_A_WRITES,
		[NBDWS_CTR_FLUSHES] = NBDWS_STAT_A_FLUSHES,
		[NBDWS_CTR_TRIMS] = NBDWS_STAT_A_TRIMS,
		[NBDWS_CTR_WRITE_ZEROES] = NBDWS_STAT_A_WRITE_ZEROES,
		[NBDWS_CTR_READ_BYTES] = NBDWS_STAT_A_READ_BYTES,
		[NBDWS_CTR_WRITE_BYTES] = NBDWS_STAT_A_WRITE_BYTES,
		[NBDWS_CTR_ERRORS] = NBDWS_STAT_A_ERRORS,
		[NBDWS_CTR_TIMEOUTS] = NBDWS_STAT_A_TIMEOUTS,
		[NBDWS_CTR_RECONNECTS] = NBDWS_STAT_A_RECONNECTS,
	};
	int c;

	for (c = 0; c < NBDWS_CTR_NR; c++) {
		if (attr[c])
			out[attr[c]] = nbdws_stats_sum(conn, c);
	}
	/* One sample for both, so that the peak is never below "now". */
	spin_lock_bh(&conn->send_lock);
	out[NBDWS_STAT_A_INFLIGHT] = nbdws_stats_sample_peak(conn);
	out[NBDWS_STAT_A_INFLIGHT_PEAK] = conn->inflight_peak;
	spin_unlock_bh(&conn->send_lock);
}
