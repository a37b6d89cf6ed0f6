// SPDX-License-Identifier: GPL-2.0
/* Probe: extack messages can be formatted (NL_SET_ERR_MSG_FMT, 6.3+). */
#include <linux/netlink.h>

void nbdws_probe(struct netlink_ext_ack *extack, int n);
void nbdws_probe(struct netlink_ext_ack *extack, int n)
{
	NL_SET_ERR_MSG_FMT(extack, "probe %d", n);
}
