/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: fetching and decoding NBDWS_CMD_STATUS replies, used by list,
 * status, disconnect --all, reconfigure and connect --persist.
 */
#ifndef _NBDCTL_DEVSTATUS_H
#define _NBDCTL_DEVSTATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/nbdws.h>

#include "genl.h"

struct conn_status {
	uint32_t id;
	uint32_t transport;
	uint32_t state;
	uint32_t reason;
	bool has_stats;
	uint64_t stats[NBDWS_STAT_A_MAX + 1];
};

struct dev_status {
	uint64_t have;			/* bit per NBDWS_A_* present */
	uint32_t index;
	char disk[32];
	char backend[256];
	uint64_t size;
	uint32_t block_min, block_pref, block_max, max_req;
	uint32_t server_flags, client_flags;
	uint32_t timeout_ms, dead_timeout_ms, queue_depth, state;
	unsigned int nconns;
	struct conn_status conns[NBDWS_MAX_CONNS];
};

#define DEV_HAS(d, attr) (((d)->have >> (attr)) & 1)

struct dev_list {
	struct dev_status *v;
	unsigned int n;
};

/* STATUS of one device: 0 or -errno (-ENODEV/-ENOENT: no such device). */
int dev_status_get(struct nbdctl_nl *nl, uint32_t index, struct dev_status *d);
/* Dump all devices, sorted by index. */
int dev_status_dump(struct nbdctl_nl *nl, struct dev_list *list);
void dev_list_free(struct dev_list *list);

#endif /* _NBDCTL_DEVSTATUS_H */
