/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types for the code in common/, which is compiled both into nbdws.ko and
 * into userspace (tools, unit tests, fuzzers) from the same source. It uses
 * the kernel's fixed-width names; userspace gets them here from stdint.h.
 */
#ifndef _NBDWS_COMMON_TYPES_H
#define _NBDWS_COMMON_TYPES_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int32_t s32;
#endif

#endif /* _NBDWS_COMMON_TYPES_H */
