/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The byte transport under the NBD handshake. The handshake code does all
 * its I/O through these two callbacks so the same code runs over a plain
 * socket (nbd_fd_xport below) and, with a framing layer slotted in, over
 * WebSocket messages.
 *
 * Contract for implementations:
 * - read() returns 0 once exactly @len bytes were stored, -ECONNRESET when
 *   the peer ended the stream first, -ETIMEDOUT past the deadline, or
 *   another negative errno.
 * - write() sends all @len bytes or fails the same way. The handshake
 *   passes each protocol message (one option request, the client flags)
 *   in one call, so a message-based layer can map one call to one message.
 */
#ifndef _NBDWS_NBD_XPORT_H
#define _NBDWS_NBD_XPORT_H

#include <stddef.h>

struct nbd_xport {
	void *ctx;
	int (*read)(void *ctx, void *buf, size_t len);
	int (*write)(void *ctx, const void *buf, size_t len);
};

/* A plain stream socket with one deadline for the whole exchange. */
struct nbd_fd_xport {
	int fd;
	long long deadline_ms;		/* CLOCK_MONOTONIC, see nbd_now_ms() */
};

/*
 * Set up @x to run over @fd; every read and write must finish within
 * @timeout_ms from now, so a server that trickles bytes cannot hold the
 * handshake forever.
 */
void nbd_fd_xport_init(struct nbd_xport *x, struct nbd_fd_xport *fx, int fd,
		       int timeout_ms);

#endif /* _NBDWS_NBD_XPORT_H */
