// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl connect: block and request sizes for the device (see params.h).
 */
#include <inttypes.h>
#include <unistd.h>

#include "nbdctl.h"
#include "params.h"

/*
 * The smallest maximum payload nbdws.ko accepts: a page (its CONNECT
 * refuses less). The kernel's page is this machine's page.
 */
static uint32_t min_payload(void)
{
	long page = sysconf(_SC_PAGESIZE);

	return page > (long)MIN_MAX_REQ ? (uint32_t)page : MIN_MAX_REQ;
}

int derive_params(uint32_t block_size, uint32_t max_req,
		  const struct nbd_export_info *info, struct dev_params *p)
{
	uint32_t server_max = info->block_max;

	if (info->block_min > MAX_LBS) {
		nbdctl_err("the server's minimum block size (%" PRIu32 ") is larger than %u bytes, which Linux block devices cannot use",
			   info->block_min, MAX_LBS);
		return -1;
	}
	if (server_max < min_payload()) {
		nbdctl_err("the server's maximum payload (%" PRIu32 " bytes) is smaller than %" PRIu32 " bytes, the smallest request size nbdws.ko works with (one page): this export cannot be used",
			   server_max, min_payload());
		return -1;
	}
	p->lbs = info->block_min < MIN_LBS ? MIN_LBS : info->block_min;
	if (block_size) {
		if (block_size < info->block_min) {
			nbdctl_err("--block-size %" PRIu32 " is smaller than the server's minimum block size %" PRIu32,
				   block_size, info->block_min);
			return -1;
		}
		p->lbs = block_size;
	}
	p->pref = info->block_pref < p->lbs ? p->lbs : info->block_pref;
	p->max_req = max_req ? max_req : NBDWS_DEFAULT_MAX_REQ_BYTES;
	if (p->max_req > server_max) {
		if (max_req)
			nbdctl_warn("--max-request %" PRIu32 " exceeds the server's maximum of %" PRIu32 " bytes: using the maximum",
				    max_req, server_max);
		p->max_req = server_max;
	}
	/* Whole logical blocks only. */
	p->max_req -= p->max_req % p->lbs;
	if (p->max_req < p->lbs) {
		nbdctl_err("the server's maximum request size (%" PRIu32 ") is smaller than the block size %" PRIu32,
			   server_max, p->lbs);
		return -1;
	}
	p->lost_tail = info->size % p->lbs;
	return 0;
}
