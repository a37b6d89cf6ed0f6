// SPDX-License-Identifier: GPL-2.0
/* Probe: BLK_MQ_F_SHOULD_MERGE still exists. */
#include <linux/blk-mq.h>

unsigned int nbdws_probe(void);
unsigned int nbdws_probe(void)
{
	return BLK_MQ_F_SHOULD_MERGE;
}
