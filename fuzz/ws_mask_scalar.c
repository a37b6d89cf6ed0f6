// SPDX-License-Identifier: GPL-2.0
/*
 * Linked instead of lib/ws_mask_vec.c into the *_scalar fuzz targets:
 * no vector loop, so ws_mask_copy() in common/ws_frame.c masks with the
 * word loops alone, exactly as nbdws.ko runs it (the kernel build of
 * ws_frame.c has the same stub inline).
 */
#include "ws_mask_vec.h"

size_t ws_mask_vec(u8 *dst, const u8 *src, size_t len, u64 kw)
{
	(void)dst;
	(void)src;
	(void)len;
	(void)kw;
	return 0;
}
