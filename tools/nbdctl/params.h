/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl connect: the device's block sizes and request size, derived
 * from what the server allows, what the user asked for and what Linux
 * and nbdws.ko can work with, checked here so that an export the module
 * would refuse gets a sentence that names the reason before any CONNECT.
 */
#ifndef _NBDCTL_PARAMS_H
#define _NBDCTL_PARAMS_H

#include <stdint.h>

#include "nbd_handshake.h"

/* Linux cannot use logical block sizes outside 512 .. page size. */
#define MIN_LBS		512U
#define MAX_LBS		4096U
/* nbdws.ko's limits on the request size: a page .. 32 MiB (kmod/genl.c). */
#define MIN_MAX_REQ	4096U
#define MAX_MAX_REQ	(32U << 20)

/* What the device gets. */
struct dev_params {
	uint32_t lbs, pref, max_req;
	uint64_t lost_tail;	/* bytes past the last whole block */
};

/*
 * Fill @p for the export @info with the user's --block-size @block_size
 * and --max-request @max_req (0: not given). Returns 0, or -1 after
 * printing why the export cannot become a device.
 */
int derive_params(uint32_t block_size, uint32_t max_req,
		  const struct nbd_export_info *info, struct dev_params *p);

#endif /* _NBDCTL_PARAMS_H */
