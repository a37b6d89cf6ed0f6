// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: debugfs view of the requests in flight, one file per device:
 * /sys/kernel/debug/nbdws/nbdwsN/inflight. It shows what a stuck device
 * waits for: which connection, which cookie, for how long.
 */
#include <linux/blk-mq.h>
#include <linux/debugfs.h>
#include <linux/jiffies.h>
#include <linux/seq_file.h>

#include "nbdws.h"

static struct dentry *nbdws_debugfs_root;

static const char *nbdws_cmd_name(u16 type)
{
	switch (type) {
	case NBDP_CMD_READ:
		return "read";
	case NBDP_CMD_WRITE:
		return "write";
	case NBDP_CMD_FLUSH:
		return "flush";
	case NBDP_CMD_TRIM:
		return "trim";
	case NBDP_CMD_WRITE_ZEROES:
		return "write_zeroes";
	default:
		return "?";
	}
}

static bool nbdws_inflight_one(struct request *rq, void *data)
{
	struct nbdws_req *cmd = nbdws_rq_cmd(rq);
	struct nbdws_conn *conn = READ_ONCE(cmd->conn);
	int state = atomic_read(&cmd->state);
	struct seq_file *m = data;

	seq_printf(m, "%u\t%d\t%#llx\t%s\t%llu\t%u\t%u\t",
		   rq->mq_hctx->queue_num, rq->tag, cmd->cookie,
		   nbdws_cmd_name(cmd->nbd_type),
		   (u64)blk_rq_pos(rq) << SECTOR_SHIFT, blk_rq_bytes(rq),
		   jiffies_to_msecs(jiffies - cmd->queued_at));
	if (state & NBDWS_CMD_HELD)
		seq_puts(m, "held\n");
	else if (conn && state & NBDWS_CMD_INFLIGHT)
		seq_printf(m, "conn%u%s%s\n", conn->id,
			   state & NBDWS_CMD_TX_DONE ? " sent" : "",
			   state & NBDWS_CMD_REPLIED ? " replied" : "");
	else
		seq_printf(m, "- (state %#x, conn%d)\n", state,
			   conn ? (int)conn->id : -1);
	return true;
}

static int nbdws_inflight_show(struct seq_file *m, void *unused)
{
	struct nbdws_dev *dev = m->private;
	bool failing, disconnecting, held;
	u32 state;

	spin_lock_bh(&dev->held_lock);
	state = dev->state;
	failing = dev->failing;
	disconnecting = dev->disconnecting;
	held = !list_empty(&dev->held);
	spin_unlock_bh(&dev->held_lock);
	seq_printf(m, "# state %u live %d failing %d disconnecting %d held %d\n",
		   state, atomic_read(&dev->live), failing, disconnecting,
		   held);
	seq_puts(m, "hwq\ttag\tcookie\top\toffset\tlength\tage_ms\twhere\n");
	down_read(&dev->tags_rwsem);
	blk_mq_tagset_busy_iter(&dev->tag_set, nbdws_inflight_one, m);
	up_read(&dev->tags_rwsem);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nbdws_inflight);

void nbdws_debugfs_add(struct nbdws_dev *dev)
{
	if (IS_ERR_OR_NULL(nbdws_debugfs_root))
		return;
	dev->debugfs_dir = debugfs_create_dir(dev->disk->disk_name,
					      nbdws_debugfs_root);
	debugfs_create_file("inflight", 0444, dev->debugfs_dir, dev,
			    &nbdws_inflight_fops);
}

void nbdws_debugfs_remove(struct nbdws_dev *dev)
{
	debugfs_remove_recursive(dev->debugfs_dir);
	dev->debugfs_dir = NULL;
}

void nbdws_debugfs_init(void)
{
	nbdws_debugfs_root = debugfs_create_dir("nbdws", NULL);
}

void nbdws_debugfs_exit(void)
{
	debugfs_remove_recursive(nbdws_debugfs_root);
}
