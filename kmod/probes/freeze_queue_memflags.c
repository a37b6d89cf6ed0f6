// SPDX-License-Identifier: GPL-2.0
/*
 * Probe: blk_mq_freeze_queue() returns the task's saved memalloc flags and
 * blk_mq_unfreeze_queue() takes them back (6.14+).
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>

void nbdws_probe(struct request_queue *q);
void nbdws_probe(struct request_queue *q)
{
	unsigned int memflags = blk_mq_freeze_queue(q);

	blk_mq_unfreeze_queue_nomemrestore(q);
	blk_mq_unfreeze_queue(q, memflags);
}
