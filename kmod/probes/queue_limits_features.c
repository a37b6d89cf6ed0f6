// SPDX-License-Identifier: GPL-2.0
/* Probe: write cache, FUA and rotational are queue_limits features. */
#include <linux/blkdev.h>

void nbdws_probe(struct queue_limits *lim);
void nbdws_probe(struct queue_limits *lim)
{
	lim->features |= BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA |
			 BLK_FEAT_ROTATIONAL;
}
