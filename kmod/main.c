// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: Network Block Device client with an in-kernel WebSocket transport.
 *
 * Module entry points: bring up the parts in dependency order and take
 * them down in reverse.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "nbdws.h"

/*
 * Send, receive and teardown work of every connection. It sits on the
 * block I/O path, so it must make progress under memory pressure
 * (WQ_MEM_RECLAIM), and latency matters more than fairness (WQ_HIGHPRI).
 * Per-CPU, as it has always been: work runs where it was queued, next to
 * the request or socket data it touches.
 */
struct workqueue_struct *nbdws_wq;

static int __init nbdws_init(void)
{
	int ret;

	nbdws_wq = alloc_workqueue("nbdws", WQ_MEM_RECLAIM | WQ_HIGHPRI |
				   NBDWS_WQ_PERCPU, 0);
	if (!nbdws_wq)
		return -ENOMEM;
	nbdws_debugfs_init();
	ret = nbdws_genl_init();
	if (ret) {
		pr_err("cannot register generic netlink family: %d\n", ret);
		goto err_debugfs;
	}
	return 0;

err_debugfs:
	nbdws_debugfs_exit();
	nbdws_dev_exit();
	destroy_workqueue(nbdws_wq);
	return ret;
}

static void __exit nbdws_exit(void)
{
	/*
	 * Devices first, while their events still have a family to go out
	 * through; CONNECT creates no new one meanwhile.
	 */
	nbdws_dev_remove_all();
	nbdws_genl_exit();
	nbdws_debugfs_exit();
	nbdws_dev_exit();
	destroy_workqueue(nbdws_wq);
}

module_init(nbdws_init);
module_exit(nbdws_exit);

MODULE_DESCRIPTION("NBD client block device with WebSocket transport");
MODULE_LICENSE("GPL");
MODULE_VERSION(NBDWS_VERSION);
