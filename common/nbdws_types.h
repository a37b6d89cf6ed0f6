/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types for the code in common/, which is compiled both into nbdws.ko and
 * into userspace (tools, unit tests, fuzzers) from the same source. It uses
 * the kernel's fixed-width names; userspace gets them from lib/user_types.h.
 * Errno names (EIO, EINVAL, ...) come from <linux/errno.h> in the kernel and
 * from <errno.h> in userspace: on Linux both give the same numbers.
 */
#ifndef _NBDWS_COMMON_TYPES_H
#define _NBDWS_COMMON_TYPES_H

#ifdef __KERNEL__
#include <linux/errno.h>
#include <linux/types.h>
#include <linux/string.h>
#else
#include <errno.h>
#include "user_types.h"	/* lib/: the same names from stdint.h */
#endif

#endif /* _NBDWS_COMMON_TYPES_H */
