/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: opening handshaken NBD connections for connect, reconfigure
 * and --persist, and putting them into netlink requests.
 */
#ifndef _NBDCTL_CONNS_H
#define _NBDCTL_CONNS_H

#include <stdint.h>

#include <netlink/msg.h>

#include "nbd_handshake.h"
#include "nbd_uri.h"

/*
 * Open @n connections to @uri, each through NBD_OPT_GO, within @timeout_ms
 * each. On success fds[0..n-1] are in transmission and @info describes the
 * export (all connections must agree). Prints errors; returns 0 or -1.
 */
int conns_open(const struct nbd_uri *uri, unsigned int n, int timeout_ms,
	       int *fds, struct nbd_export_info *info);
void conns_close(int *fds, unsigned int n);

/*
 * Check that a new connection reaches the export a device was set up
 * with: same size (compared in whole @block units, as the kernel rounds
 * the device down), same flags. Prints why not; returns 0 or -1.
 */
int conns_check_same(const struct nbd_export_info *info, uint64_t size,
		     uint32_t flags, uint32_t block);

/* Append NBDWS_A_CONN {FD, TRANSPORT plain, ID if id >= 0} to @msg. */
int conns_put(struct nl_msg *msg, int fd, int64_t id);

#endif /* _NBDCTL_CONNS_H */
