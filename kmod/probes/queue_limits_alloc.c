// SPDX-License-Identifier: GPL-2.0
/* Probe: blk_mq_alloc_disk() takes the queue limits (6.9+ style). */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>

struct gendisk *nbdws_probe(struct blk_mq_tag_set *set);
struct gendisk *nbdws_probe(struct blk_mq_tag_set *set)
{
	struct queue_limits lim = { .logical_block_size = 512 };

	return blk_mq_alloc_disk(set, &lim, NULL);
}
