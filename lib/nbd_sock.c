// SPDX-License-Identifier: GPL-2.0
/*
 * TCP and unix socket connection with deadlines (see nbd_sock.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "nbd_sock.h"

/*
 * Keepalive settings: a peer that vanished without a FIN (laptop lid
 * closed, NAT state lost) is noticed within about a minute and a half
 * even when no I/O is pending.
 */
#define KEEPALIVE_IDLE_S	60
#define KEEPALIVE_INTVL_S	10
#define KEEPALIVE_CNT		3

long long nbd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_blocking(int fd, bool blocking)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* Wait for a non-blocking connect() to finish; returns 0 or -errno. */
static int finish_connect(int fd, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int soerr = 0;

	for (;;) {
		long long left = deadline - nbd_now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	return -soerr;
}

static int tune_tcp(int fd)
{
	int one = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_INTVL_S;
	int cnt = KEEPALIVE_CNT;

	/* NBD requests are small and latency-bound: never batch them. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)))
		return -errno;
	return 0;
}

static void addr_text(const struct addrinfo *ai, char *buf, size_t len)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host),
			serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, len, "?");
		return;
	}
	if (ai->ai_family == AF_INET6)
		snprintf(buf, len, "[%s]:%s", host, serv);
	else
		snprintf(buf, len, "%s:%s", host, serv);
}

int nbd_sock_connect_tcp(const char *host, const char *port, int timeout_ms,
			 struct nbdws_err *err)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	long long deadline = nbd_now_ms() + timeout_ms;
	struct addrinfo *res, *ai;
	char where[NI_MAXHOST + NI_MAXSERV + 4] = "";
	int rc, fd = -1, last = -ECONNREFUSED;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc)
		return nbdws_err_set(err, -EHOSTUNREACH,
				     "cannot resolve '%s': %s", host,
				     rc == EAI_SYSTEM ? strerror(errno) :
				     gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		addr_text(ai, where, sizeof(where));
		if (fd < 0) {
			last = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			rc = 0;
		else if (errno == EINPROGRESS)
			rc = finish_connect(fd, deadline);
		else
			rc = -errno;
		if (!rc)
			rc = set_blocking(fd, true);
		if (!rc)
			rc = tune_tcp(fd);
		if (!rc)
			break;
		last = rc;
		close(fd);
		fd = -1;
		if (rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return nbdws_err_set(err, last, "cannot connect to %s (%s): %s",
				     host, where, strerror(-last));
	return fd;
}

int nbd_sock_connect_unix(const char *path, int timeout_ms,
			  struct nbdws_err *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	long long deadline = nbd_now_ms() + timeout_ms;
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path))
		return nbdws_err_set(err, -ENAMETOOLONG,
				     "unix socket path too long (max %zu bytes): %s",
				     sizeof(sun.sun_path) - 1, path);
	memcpy(sun.sun_path, path, strlen(path));

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return nbdws_err_set(err, -errno, "socket: %s", strerror(errno));
	/*
	 * A full listen backlog makes a non-blocking unix connect fail with
	 * EAGAIN rather than wait: retry briefly until the deadline.
	 */
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			rc = 0;
			break;
		}
		rc = -errno;
		if (rc == -EINPROGRESS) {
			rc = finish_connect(fd, deadline);
			break;
		}
		if (rc != -EAGAIN || nbd_now_ms() >= deadline)
			break;
		usleep(10000);
	}
	if (!rc)
		rc = set_blocking(fd, true);
	if (rc) {
		close(fd);
		return nbdws_err_set(err, rc, "cannot connect to unix socket %s: %s",
				     path, strerror(-rc));
	}
	return fd;
}

int nbd_sock_connect_uri(const struct nbd_uri *uri, int timeout_ms,
			 struct nbdws_err *err)
{
	if (uri->scheme == NBD_URI_UNIX)
		return nbd_sock_connect_unix(uri->socket_path, timeout_ms, err);
	return nbd_sock_connect_tcp(uri->host, uri->port, timeout_ms, err);
}

static nbd_sock_wait_fn wait_hook;

void nbd_sock_set_wait_hook(nbd_sock_wait_fn hook)
{
	wait_hook = hook;
}

int nbd_sock_wait(int fd, short events, long long deadline_ms)
{
	if (wait_hook)
		return wait_hook(fd, events, deadline_ms);
	return nbd_sock_poll_wait(fd, events, deadline_ms);
}

int nbd_sock_poll_wait(int fd, short events, long long deadline_ms)
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
		if (n > 0)
			return 0;
	}
}

int nbd_sock_send_all(int fd, const void *buf, size_t len,
		      long long deadline_ms)
{
	const char *p = buf;

	while (len) {
		ssize_t n;
		int rc = nbd_sock_wait(fd, POLLOUT, deadline_ms);

		if (rc)
			return rc;
		n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
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
