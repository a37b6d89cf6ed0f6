// SPDX-License-Identifier: GPL-2.0
/* Probe: kernel_sendpage() exists (removed in 6.5 for MSG_SPLICE_PAGES). */
#include <linux/net.h>

int nbdws_probe(struct socket *sock, struct page *page);
int nbdws_probe(struct socket *sock, struct page *page)
{
	return kernel_sendpage(sock, page, 0, 1, MSG_DONTWAIT);
}
