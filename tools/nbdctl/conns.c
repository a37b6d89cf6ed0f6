// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl: opening connections and describing them to the kernel.
 */
#include <inttypes.h>
#include <unistd.h>

#include <linux/nbdws.h>

#include "conns.h"
#include "genl.h"
#include "nbd_dial.h"
#include "nbd_proto.h"
#include "nbdctl.h"

void conns_close(int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Without NBD_FLAG_HAS_FLAGS the other bits mean nothing (the kernel drops them). */
static uint32_t norm_flags(uint32_t flags)
{
	return flags & NBDP_FLAG_HAS_FLAGS ? flags : 0;
}

int conns_check_same(const struct nbd_export_info *info, uint64_t size,
		     uint32_t flags, uint32_t block)
{
	if (!block)
		block = 1;
	if (info->size - info->size % block != size - size % block) {
		nbdctl_err("the export's size changed from %" PRIu64 " to %" PRIu64
			   " bytes: refusing to mix them on one device", size, info->size);
		return -1;
	}
	if (norm_flags(info->tflags) != norm_flags(flags)) {
		nbdctl_err("the export's flags changed from 0x%04" PRIx32 " to 0x%04x:"
			   " refusing to mix them on one device", flags, info->tflags);
		return -1;
	}
	return 0;
}

int conns_open(const struct nbd_uri *uri, unsigned int n, int timeout_ms,
	       int *fds, struct nbd_export_info *info)
{
	struct nbdws_err err;
	unsigned int i;

	for (i = 0; i < n; i++)
		fds[i] = -1;
	for (i = 0; i < n; i++) {
		struct nbd_export_info more;

		fds[i] = nbd_dial(uri, NBD_DIAL_GO, timeout_ms,
				  i ? &more : info, &err);
		if (fds[i] < 0) {
			if (n > 1)
				nbdctl_err("connection %u of %u: %s", i + 1, n, err.msg);
			else
				nbdctl_err("%s", err.msg);
			goto fail;
		}
		if (!i)
			continue;
		if (conns_check_same(&more, info->size, info->tflags, 1)) {
			nbd_export_info_free(&more);
			goto fail;
		}
		nbd_export_info_free(&more);
	}
	return 0;
fail:
	if (i)
		nbd_export_info_free(info);
	conns_close(fds, n);
	return -1;
}

int conns_put(struct nl_msg *msg, int fd, int64_t id)
{
	struct nlattr *conn = nbdctl_nest_start(msg, NBDWS_A_CONN);

	if (!conn || nla_put_s32(msg, NBDWS_CONN_A_FD, fd) < 0 ||
	    nla_put_u32(msg, NBDWS_CONN_A_TRANSPORT, NBDWS_TRANSPORT_PLAIN) < 0 ||
	    (id >= 0 && nla_put_u32(msg, NBDWS_CONN_A_ID, (uint32_t)id) < 0))
		return -1;
	nla_nest_end(msg, conn);
	return 0;
}
