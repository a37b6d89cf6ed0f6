// SPDX-License-Identifier: GPL-2.0
/*
 * Probe: page_frag_cache_drain() (newer kernels hide the cache's fields).
 * Declared by gfp.h up to 6.12, by page_frag_cache.h (from skbuff.h) later.
 */
#include <linux/skbuff.h>

void nbdws_probe(struct page_frag_cache *nc);
void nbdws_probe(struct page_frag_cache *nc)
{
	page_frag_cache_drain(nc);
}
