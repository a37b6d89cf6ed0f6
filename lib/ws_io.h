/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A byte stream under the WebSocket layers (HTTP upgrade, message framing):
 * either a plain connected socket or a TLS session (lib/tls.h). Unlike
 * nbd_xport, whose read() wants an exact count, read() here returns what
 * is available, because the HTTP upgrade cannot know in advance where the
 * response header ends and must never block waiting for bytes that are
 * not coming.
 *
 * Contract for implementations:
 * - read() returns the number of bytes stored (> 0), 0 when the peer ended
 *   the stream, -ETIMEDOUT past the deadline, or another negative errno.
 * - write() sends all @len bytes and returns 0, or a negative errno
 *   (-ECONNRESET when the peer is gone, -ETIMEDOUT past the deadline).
 * Both honour one deadline set when the stream was set up, so a peer that
 * trickles bytes cannot hold a handshake forever.
 */
#ifndef _NBDWS_WS_IO_H
#define _NBDWS_WS_IO_H

#include <stddef.h>
#include <sys/types.h>

struct ws_io {
	void *ctx;
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	int (*write)(void *ctx, const void *buf, size_t len);
};

/* A plain connected stream socket with one deadline for the exchange. */
struct ws_fd_io {
	int fd;
	long long deadline_ms;		/* CLOCK_MONOTONIC, see nbd_now_ms() */
};

/* Set up @io over @fd; everything must finish within @timeout_ms. */
void ws_fd_io_init(struct ws_io *io, struct ws_fd_io *fio, int fd,
		   int timeout_ms);

#endif /* _NBDWS_WS_IO_H */
