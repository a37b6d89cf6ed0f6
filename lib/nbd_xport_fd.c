// SPDX-License-Identifier: GPL-2.0
/*
 * nbd_xport over a plain stream socket, bounded by a deadline.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "nbd_sock.h"
#include "nbd_xport.h"

static int fd_read(void *ctx, void *buf, size_t len)
{
	struct nbd_fd_xport *fx = ctx;
	char *p = buf;

	while (len) {
		ssize_t n;
		int rc = nbd_sock_wait(fx->fd, POLLIN, fx->deadline_ms);

		if (rc)
			return rc;
		n = recv(fx->fd, p, len, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fd_write(void *ctx, const void *buf, size_t len)
{
	struct nbd_fd_xport *fx = ctx;

	return nbd_sock_send_all(fx->fd, buf, len, fx->deadline_ms);
}

void nbd_fd_xport_init(struct nbd_xport *x, struct nbd_fd_xport *fx, int fd,
		       int timeout_ms)
{
	fx->fd = fd;
	fx->deadline_ms = nbd_now_ms() + timeout_ms;
	x->ctx = fx;
	x->read = fd_read;
	x->write = fd_write;
}
