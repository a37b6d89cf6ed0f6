/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: opening handshaken NBD connections (nbd://, nbd+unix://, ws://,
 * wss://) for connect, reconfigure and --persist, and putting them into
 * netlink requests with the transport the kernel must use.
 */
#ifndef _NBDCTL_CONNS_H
#define _NBDCTL_CONNS_H

#include <stddef.h>
#include <stdint.h>

#include <netlink/msg.h>

#include "nbd_handshake.h"
#include "nbd_uri.h"
#include "ws_dial.h"

/* One connection in the transmission phase, ready for the kernel. */
struct nbdctl_conn {
	int fd;				/* -1 when none */
	uint32_t transport;		/* enum nbdws_transport */
	uint8_t *preread;		/* ws: bytes read past the handshake */
	size_t preread_len;
};

/* Where connections go, and how. */
struct conn_target {
	const struct nbd_uri *uri;
	const struct ws_dial_opts *ws;	/* ws/wss options; NULL: defaults */
	uint32_t ping_ms;		/* ws keepalive for the kernel; 0: off */
};

/*
 * Open @n connections to @t, each through NBD_OPT_GO, within @timeout_ms
 * each. On success c[0..n-1] are in transmission and @info describes the
 * export (all connections must agree). Prints errors; returns 0 or -1.
 */
int conns_open(const struct conn_target *t, unsigned int n, int timeout_ms,
	       struct nbdctl_conn *c, struct nbd_export_info *info);
/* Close the fds still held and free the pre-read bytes. */
void conns_close(struct nbdctl_conn *c, unsigned int n);

/*
 * Check that a new connection reaches the export a device was set up
 * with: same size (compared in whole @block units, as the kernel rounds
 * the device down), same flags. Prints why not; returns 0 or -1.
 */
int conns_check_same(const struct nbd_export_info *info, uint64_t size,
		     uint32_t flags, uint32_t block);

/*
 * Append NBDWS_A_CONN {FD, TRANSPORT, PREREAD if any, PING_MS for ws
 * transports when @ping_ms, ID if id >= 0} to @msg.
 */
int conns_put(struct nl_msg *msg, const struct nbdctl_conn *c,
	      uint32_t ping_ms, int64_t id);

#endif /* _NBDCTL_CONNS_H */
