/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws: the one place that knows about kernel API differences.
 *
 * Every difference is detected by a compile probe (kmod/probes/NAME.c ->
 * NBDWS_HAVE_NAME), never by LINUX_VERSION_CODE: distribution kernels carry
 * backports that make version numbers lie (Debian's 6.1 defines
 * MSG_SPLICE_PAGES although its TCP still only zero-copies via sendpage).
 */
#ifndef _NBDWS_COMPAT_H
#define _NBDWS_COMPAT_H

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/netlink.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include <net/sock.h>

/* Request merging became the default (flag removed) in newer kernels. */
#ifdef NBDWS_HAVE_MQ_SHOULD_MERGE
#define NBDWS_MQ_F_MERGE	BLK_MQ_F_SHOULD_MERGE
#else
#define NBDWS_MQ_F_MERGE	0
#endif

/*
 * A workqueue without WQ_UNBOUND has always been per-CPU. Kernels that know
 * WQ_PERCPU want it stated (7.x logs a warning for every workqueue that
 * says neither) and are moving the default to unbound; older ones have no
 * such flag, and per-CPU is what they give anyway.
 */
#ifdef NBDWS_HAVE_WQ_PERCPU
#define NBDWS_WQ_PERCPU		WQ_PERCPU
#else
#define NBDWS_WQ_PERCPU		0
#endif

/* The type of blk_mq_ops.init_request's NUMA node, signed since 7.x. */
#ifdef NBDWS_HAVE_INIT_REQUEST_INT_NODE
#define NBDWS_NUMA_NODE_T	int
#else
#define NBDWS_NUMA_NODE_T	unsigned int
#endif

/* Limits of the disk: set at creation, changed only on a reused device. */
struct nbdws_limits {
	unsigned int logical_block_size;
	unsigned int physical_block_size;
	unsigned int io_opt;
	unsigned int max_hw_sectors;
	unsigned int max_segments;
	unsigned int max_discard_sectors;
	unsigned int max_write_zeroes_sectors;
	bool write_cache;
	bool fua;
	bool rotational;
};

#ifndef NBDWS_HAVE_QUEUE_LIMITS_FEATURES
/* Before features moved into queue_limits they were queue flags. */
static inline void nbdws_apply_queue_flags(struct request_queue *q,
					   const struct nbdws_limits *l)
{
	blk_queue_write_cache(q, l->write_cache, l->write_cache && l->fua);
	if (l->rotational)
		blk_queue_flag_clear(QUEUE_FLAG_NONROT, q);
	else
		blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
}
#endif

#ifdef NBDWS_HAVE_QUEUE_LIMITS_ALLOC
/* Write @l into @lim, a fresh or a current set of limits of the queue. */
static inline void nbdws_fill_queue_limits(struct queue_limits *lim,
					   const struct nbdws_limits *l)
{
	lim->logical_block_size = l->logical_block_size;
	lim->physical_block_size = l->physical_block_size;
	/* Set, not left to validation, which only ever raises it. */
	lim->io_min = l->physical_block_size;
	lim->io_opt = l->io_opt;
	lim->max_hw_sectors = l->max_hw_sectors;
	lim->max_segments = l->max_segments;
	lim->max_hw_discard_sectors = l->max_discard_sectors;
	lim->max_write_zeroes_sectors = l->max_write_zeroes_sectors;
	lim->discard_granularity = l->max_discard_sectors ?
				   l->logical_block_size : 0;
#ifdef NBDWS_HAVE_QUEUE_LIMITS_FEATURES
	lim->features &= ~(BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA |
			   BLK_FEAT_ROTATIONAL);
	if (l->write_cache) {
		lim->features |= BLK_FEAT_WRITE_CACHE;
		if (l->fua)
			lim->features |= BLK_FEAT_FUA;
	}
	if (l->rotational)
		lim->features |= BLK_FEAT_ROTATIONAL;
#endif
}
#else
static inline void nbdws_set_queue_limits(struct request_queue *q,
					  const struct nbdws_limits *l)
{
	blk_queue_logical_block_size(q, l->logical_block_size);
	blk_queue_physical_block_size(q, l->physical_block_size);
	blk_queue_io_min(q, l->physical_block_size);
	blk_queue_io_opt(q, l->io_opt);
	blk_queue_max_hw_sectors(q, l->max_hw_sectors);
	blk_queue_max_segments(q, l->max_segments);
	blk_queue_max_discard_sectors(q, l->max_discard_sectors);
	blk_queue_max_write_zeroes_sectors(q, l->max_write_zeroes_sectors);
	q->limits.discard_granularity = l->max_discard_sectors ?
					l->logical_block_size : 0;
	nbdws_apply_queue_flags(q, l);
}
#endif

static inline struct gendisk *nbdws_alloc_disk(struct blk_mq_tag_set *set,
					       const struct nbdws_limits *l,
					       void *queuedata)
{
	struct gendisk *disk;
#ifdef NBDWS_HAVE_QUEUE_LIMITS_ALLOC
	struct queue_limits lim = { };

	nbdws_fill_queue_limits(&lim, l);
	disk = blk_mq_alloc_disk(set, &lim, queuedata);
	if (IS_ERR(disk))
		return disk;
#ifndef NBDWS_HAVE_QUEUE_LIMITS_FEATURES
	nbdws_apply_queue_flags(disk->queue, l);
#endif
#else
	disk = blk_mq_alloc_disk(set, queuedata);
	if (IS_ERR(disk))
		return disk;
	nbdws_set_queue_limits(disk->queue, l);
#endif
	return disk;
}

/*
 * Freezing a queue also puts the task into memalloc_noio scope on newer
 * kernels, which hand the saved flags back to restore at unfreeze.
 */
#ifdef NBDWS_HAVE_FREEZE_QUEUE_MEMFLAGS
static inline unsigned int nbdws_freeze_queue(struct request_queue *q)
{
	return blk_mq_freeze_queue(q);
}

static inline void nbdws_unfreeze_queue(struct request_queue *q,
					unsigned int memflags)
{
	blk_mq_unfreeze_queue(q, memflags);
}

/* End a freeze begun by blk_freeze_queue_start(), which saves no flags. */
static inline void nbdws_unfreeze_queue_started(struct request_queue *q)
{
	blk_mq_unfreeze_queue_nomemrestore(q);
}
#else
static inline unsigned int nbdws_freeze_queue(struct request_queue *q)
{
	blk_mq_freeze_queue(q);
	return 0;
}

static inline void nbdws_unfreeze_queue(struct request_queue *q,
					unsigned int memflags)
{
	blk_mq_unfreeze_queue(q);
}

static inline void nbdws_unfreeze_queue_started(struct request_queue *q)
{
	blk_mq_unfreeze_queue(q);
}
#endif

/*
 * Give a live disk new limits (a kept device connected to another export).
 * The queue is frozen meanwhile, so no request sees half of them. Callers
 * make sure nobody has the disk open when the block size changes.
 */
static inline int nbdws_update_limits(struct gendisk *disk,
				      const struct nbdws_limits *l)
{
	struct request_queue *q = disk->queue;
	unsigned int memflags;
	int ret = 0;
#ifdef NBDWS_HAVE_QUEUE_LIMITS_ALLOC
	struct queue_limits lim = queue_limits_start_update(q);

	nbdws_fill_queue_limits(&lim, l);
	memflags = nbdws_freeze_queue(q);
	ret = queue_limits_commit_update(q, &lim);
#ifndef NBDWS_HAVE_QUEUE_LIMITS_FEATURES
	if (!ret)
		nbdws_apply_queue_flags(q, l);
#endif
#else
	memflags = nbdws_freeze_queue(q);
	nbdws_set_queue_limits(q, l);
#endif
	nbdws_unfreeze_queue(q, memflags);
	return ret;
}

/*
 * An extack message naming something; kernels without formatted extack
 * messages get the fixed @plain text instead.
 */
#ifdef NBDWS_HAVE_EXTACK_MSG_FMT
#define NBDWS_ERR_MSG_FMT(extack, plain, fmt, ...) \
	NL_SET_ERR_MSG_FMT(extack, fmt, ##__VA_ARGS__)
#else
#define NBDWS_ERR_MSG_FMT(extack, plain, fmt, ...) \
	NL_SET_ERR_MSG(extack, plain)
#endif

/*
 * Sockets used from the block I/O path must not allocate through the
 * calling task's page fragment: the task may be in reclaim already.
 */
static inline void nbdws_sock_no_task_frag(struct sock *sk)
{
#ifdef NBDWS_HAVE_SK_USE_TASK_FRAG
	sk->sk_use_task_frag = false;
#endif
}

/* Whether @sk may use the task's page fragment, to restore it later. */
static inline bool nbdws_sock_task_frag(const struct sock *sk)
{
#ifdef NBDWS_HAVE_SK_USE_TASK_FRAG
	return sk->sk_use_task_frag;
#else
	return false;
#endif
}

static inline void nbdws_sock_set_task_frag(struct sock *sk, bool on)
{
#ifdef NBDWS_HAVE_SK_USE_TASK_FRAG
	sk->sk_use_task_frag = on;
#endif
}

/* Give back what a page fragment cache still holds, and reset it. */
static inline void nbdws_page_frag_cache_drain(struct page_frag_cache *nc)
{
#ifdef NBDWS_HAVE_PAGE_FRAG_CACHE_DRAIN
	page_frag_cache_drain(nc);
#else
	if (nc->va)
		__page_frag_cache_drain(virt_to_head_page(nc->va),
					nc->pagecnt_bias);
#endif
	memset(nc, 0, sizeof(*nc));
}

/*
 * Send bytes described by a bio_vec iterator, non-blocking, and advance the
 * iterator by what was sent. With @zcopy the pages are handed to the socket
 * by reference: sendpage, one page per call, where the kernel still has it;
 * otherwise one sendmsg with MSG_SPLICE_PAGES for the whole iterator.
 * Without @zcopy (pages that cannot be spliced) the bytes are copied.
 */
static inline int nbdws_send_bvec(struct socket *sock, struct iov_iter *iter,
				  int flags, bool zcopy)
{
	struct msghdr msg = { };
	int ret;

#ifdef NBDWS_HAVE_KERNEL_SENDPAGE
	if (zcopy) {
		const struct bio_vec *bv = iter->bvec;
		size_t off = bv->bv_offset + iter->iov_offset;
		struct page *page = bv->bv_page + (off >> PAGE_SHIFT);
		size_t len;

		off &= ~PAGE_MASK;
		len = min3(bv->bv_len - iter->iov_offset, PAGE_SIZE - off,
			   iov_iter_count(iter));
		if (len < iov_iter_count(iter))
			flags |= MSG_MORE | MSG_SENDPAGE_NOTLAST;
		ret = kernel_sendpage(sock, page, off, len, flags);
		if (ret > 0)
			iov_iter_advance(iter, ret);
		return ret;
	}
#elif defined(NBDWS_HAVE_MSG_SPLICE_PAGES)
	if (zcopy)
		flags |= MSG_SPLICE_PAGES;
#endif
	msg.msg_flags = flags;
	msg.msg_iter = *iter;
	ret = sock_sendmsg(sock, &msg);
	if (ret > 0)
		iov_iter_advance(iter, ret);
	return ret;
}

#endif /* _NBDWS_COMPAT_H */
