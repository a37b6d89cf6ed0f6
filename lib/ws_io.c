// SPDX-License-Identifier: GPL-2.0
/*
 * ws_io over a plain socket (see ws_io.h).
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "nbd_sock.h"
#include "ws_io.h"

int ws_io_wait(int fd, short events, long long deadline_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		long long left = deadline_ms - nbd_now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
		if (n < 0 && errno != EINTR)
			return -errno;
		/* POLLERR/POLLHUP also end the wait: the next call reports it. */
		if (n > 0)
			return 0;
	}
}

static ssize_t fd_io_read(void *ctx, void *buf, size_t len)
{
	struct ws_fd_io *fio = ctx;

	for (;;) {
		ssize_t n;
		int rc = ws_io_wait(fio->fd, POLLIN, fio->deadline_ms);

		if (rc)
			return rc;
		n = recv(fio->fd, buf, len, MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

static int fd_io_write(void *ctx, const void *buf, size_t len)
{
	struct ws_fd_io *fio = ctx;
	const char *p = buf;

	while (len) {
		ssize_t n;
		int rc = ws_io_wait(fio->fd, POLLOUT, fio->deadline_ms);

		if (rc)
			return rc;
		n = send(fio->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
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

void ws_fd_io_init(struct ws_io *io, struct ws_fd_io *fio, int fd,
		   int timeout_ms)
{
	fio->fd = fd;
	fio->deadline_ms = nbd_now_ms() + timeout_ms;
	io->ctx = fio;
	io->read = fd_io_read;
	io->write = fd_io_write;
}
