// SPDX-License-Identifier: GPL-2.0
/*
 * nbd_xport over a plain stream socket, bounded by a deadline.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "nbd_sock.h"
#include "nbd_xport.h"

/* Wait until @fd is ready for @events or the deadline passes. */
static int wait_ready(struct nbd_fd_xport *fx, short events)
{
	struct pollfd pfd = { .fd = fx->fd, .events = events };

	for (;;) {
		long long left = fx->deadline_ms - nbd_now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			return 0;
	}
}

static int fd_read(void *ctx, void *buf, size_t len)
{
	struct nbd_fd_xport *fx = ctx;
	char *p = buf;

	while (len) {
		ssize_t n;
		int rc = wait_ready(fx, POLLIN);

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
	const char *p = buf;

	while (len) {
		ssize_t n;
		int rc = wait_ready(fx, POLLOUT);

		if (rc)
			return rc;
		n = send(fx->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == EPIPE ? -ECONNRESET : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
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
