// SPDX-License-Identifier: GPL-2.0
/*
 * Probe: sendmsg() knows MSG_SPLICE_PAGES. Only consulted when
 * kernel_sendpage() is gone: some kernels define the flag before their
 * protocols honour it.
 */
#include <linux/socket.h>

int nbdws_probe(void);
int nbdws_probe(void)
{
	return MSG_SPLICE_PAGES;
}
