// SPDX-License-Identifier: GPL-2.0
/*
 * ws_io over a plain socket (see ws_io.h).
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "nbd_sock.h"
#include "ws_io.h"

static ssize_t fd_io_read(void *ctx, void *buf, size_t len)
{
	struct ws_fd_io *fio = ctx;

	for (;;) {
		ssize_t n;
		int rc = nbd_sock_wait(fio->fd, POLLIN, fio->deadline_ms);

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

	return nbd_sock_send_all(fio->fd, buf, len, fio->deadline_ms);
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
