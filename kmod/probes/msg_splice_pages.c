// SPDX-License-Identifier: GPL-2.0
/*
 * Probe: sendmsg() can splice pages (MSG_SPLICE_PAGES). Asks for
 * skb_splice_from_iter(), the code TCP uses to honour the flag (6.5+), not
 * the flag itself: Debian's 6.1 defines MSG_SPLICE_PAGES without it. Only
 * its existence matters, not its arguments (7.x dropped the gfp one).
 */
#include <linux/skbuff.h>
#include <linux/socket.h>
#include <linux/uio.h>

int nbdws_probe(void);
int nbdws_probe(void)
{
	return MSG_SPLICE_PAGES && skb_splice_from_iter;
}
