// SPDX-License-Identifier: GPL-2.0
/* Probe: blk_mq_ops.init_request takes the NUMA node as an int (7.x). */
#include <linux/blk-mq.h>

static int nbdws_probe_init(struct blk_mq_tag_set *set, struct request *rq,
			    unsigned int hctx_idx, int numa_node)
{
	return 0;
}

const struct blk_mq_ops nbdws_probe_ops = {
	.init_request = nbdws_probe_init,
};
