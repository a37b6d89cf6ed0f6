// SPDX-License-Identifier: GPL-2.0
/* Probe: page_frag_cache_drain() (newer kernels hide the cache's fields). */
#include <linux/gfp.h>

void nbdws_probe(struct page_frag_cache *nc);
void nbdws_probe(struct page_frag_cache *nc)
{
	page_frag_cache_drain(nc);
}
