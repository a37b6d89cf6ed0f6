// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: Network Block Device client with an in-kernel WebSocket transport.
 *
 * Module entry points: bring up the parts in dependency order and take
 * them down in reverse.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

#include "nbdws.h"

static int __init nbdws_init(void)
{
	int ret;

	ret = nbdws_genl_init();
	if (ret) {
		pr_err("cannot register generic netlink family: %d\n", ret);
		return ret;
	}
	return 0;
}

static void __exit nbdws_exit(void)
{
	nbdws_genl_exit();
}

module_init(nbdws_init);
module_exit(nbdws_exit);

MODULE_DESCRIPTION("NBD client block device with WebSocket transport");
MODULE_LICENSE("GPL");
MODULE_VERSION(NBDWS_VERSION);
