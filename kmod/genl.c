// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: the "nbdws" generic netlink family (see uapi/linux/nbdws.h).
 */
#include <net/genetlink.h>
#include <linux/nbdws.h>

#include "nbdws.h"

static const struct genl_multicast_group nbdws_mcgrps[] = {
	{ .name = NBDWS_GENL_MCGRP_EVENTS, },
};

static struct genl_family nbdws_genl_family __ro_after_init = {
	.name		= NBDWS_GENL_NAME,
	.version	= NBDWS_GENL_VERSION,
	.maxattr	= NBDWS_A_MAX,
	.netnsok	= false,
	.module		= THIS_MODULE,
	.mcgrps		= nbdws_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(nbdws_mcgrps),
};

int __init nbdws_genl_init(void)
{
	return genl_register_family(&nbdws_genl_family);
}

void nbdws_genl_exit(void)
{
	genl_unregister_family(&nbdws_genl_family);
}
