/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Vector XOR masking for userspace builds of common/ws_frame.c.
 *
 * ws_mask_copy() is shared with nbdws.ko, which may not touch vector
 * registers in its copy paths, so its own loop works a 64-bit word at a
 * time. Userspace has no such rule, and there the masking loop is the one
 * per-byte cost a WebSocket client adds to every message it sends (the
 * bench's peer in the ws-server rows masks each 1 MiB read reply, on the
 * same vCPUs as the kernel under test). Browsers mask with vector code;
 * this lets ours do the same on CPUs that have AVX2.
 */
#ifndef _NBDWS_WS_MASK_VEC_H
#define _NBDWS_WS_MASK_VEC_H

#include <stddef.h>

#include "nbdws_types.h"

/*
 * XOR the leading whole 64-byte blocks of @src with @kw (the four key
 * bytes in the phase of @src[0], twice) into @dst, and return how many
 * bytes that was: a multiple of 64, so the key phase after them is that of
 * @src[0], or 0 when the CPU has no AVX2 or @len is under one block. The
 * caller masks the rest. @dst may equal @src.
 */
size_t ws_mask_vec(u8 *dst, const u8 *src, size_t len, u64 kw);

#endif /* _NBDWS_WS_MASK_VEC_H */
