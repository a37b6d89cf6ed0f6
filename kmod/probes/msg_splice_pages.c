// SPDX-License-Identifier: GPL-2.0
/*
 * Probe: sendmsg() can splice pages (MSG_SPLICE_PAGES). Asks for
 * skb_splice_from_iter(), the code TCP uses to honour the flag (6.5+), not
 * the flag itself: Debian's 6.1 defines MSG_SPLICE_PAGES without it.
 */
#include <linux/skbuff.h>
#include <linux/socket.h>
#include <linux/uio.h>

ssize_t nbdws_probe(struct sk_buff *skb, struct iov_iter *iter);
ssize_t nbdws_probe(struct sk_buff *skb, struct iov_iter *iter)
{
	return skb_splice_from_iter(skb, iter, MSG_SPLICE_PAGES, 0);
}
