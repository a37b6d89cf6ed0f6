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

#include "nbd_resolve.h"
#include "nbd_sock.h"

/*
 * Keepalive settings: a peer that vanished without a FIN (laptop lid
 * closed, NAT state lost) is noticed within about a minute and a half
 * even when no I/O is pending.
 */
#define KEEPALIVE_IDLE_S	60
#define KEEPALIVE_INTVL_S	10
#define KEEPALIVE_CNT		3

/*
 * RFC 8305's Connection Attempt Delay (its recommended value): how long
 * one address has to connect before the next one is started alongside
 * it. A blackholed address, which never answers, costs this much rather
 * than the whole connect timeout.
 */
#define ATTEMPT_DELAY_MS	250

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

size_t nbd_sock_order(const struct addrinfo *list,
		      const struct addrinfo **out, size_t max)
{
	const struct addrinfo *first_fam, *other;
	int fam;
	size_t n = 0;

	if (!list)
		return 0;
	/*
	 * RFC 8305 section 4: keep the resolver's (RFC 6724) order within
	 * each family, but alternate the families, starting with the one
	 * the resolver put first, so that a broken path for one family
	 * delays the other by one attempt only.
	 */
	fam = list->ai_family;
	first_fam = list;
	for (other = list; other && other->ai_family == fam;)
		other = other->ai_next;
	while (n < max && (first_fam || other)) {
		if (first_fam) {
			out[n++] = first_fam;
			do
				first_fam = first_fam->ai_next;
			while (first_fam && first_fam->ai_family != fam);
		}
		if (other && n < max) {
			out[n++] = other;
			do
				other = other->ai_next;
			while (other && other->ai_family == fam);
		}
	}
	return n;
}

/* One address being tried. */
struct attempt {
	const struct addrinfo *ai;
	int fd;			/* -1 once finished (or never opened) */
	int err;		/* 0 while in flight, or how it failed */
	long long started_ms;
};

static void attempt_start(struct attempt *a)
{
	const struct addrinfo *ai = a->ai;

	a->started_ms = nbd_now_ms();
	a->fd = socket(ai->ai_family,
		       ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       ai->ai_protocol);
	if (a->fd < 0) {
		a->err = -errno;
		return;
	}
	if (connect(a->fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
	    errno == EINPROGRESS)
		return;
	a->err = -errno;
	close(a->fd);
	a->fd = -1;
}

/* A connect() that poll() reported on: 0 connected, else failed. */
static int attempt_result(struct attempt *a)
{
	socklen_t len = sizeof(int);
	int soerr = 0;

	if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (!soerr)
		return 0;
	a->err = -soerr;
	close(a->fd);
	a->fd = -1;
	return a->err;
}

/*
 * "cannot connect to HOST: [::1]:10809 timed out after 2.0 s,
 * 127.0.0.1:10809 connection refused": every address tried, and how.
 */
static int connect_error(const char *host, const struct attempt *a,
			 size_t tried, size_t total, int rc,
			 struct nbdws_err *err)
{
	char list[sizeof(err->msg)], where[NI_MAXHOST + NI_MAXSERV + 4];
	size_t used = 0, i;

	list[0] = '\0';
	for (i = 0; i < tried && used < sizeof(list); i++) {
		long long ds = nbd_ms_tenths(nbd_now_ms() - a[i].started_ms);
		int n;

		addr_text(a[i].ai, where, sizeof(where));
		if (a[i].err == -ETIMEDOUT)
			n = snprintf(list + used, sizeof(list) - used,
				     "%s%s timed out after %lld.%lld s",
				     i ? ", " : "", where, ds / 10, ds % 10);
		else
			n = snprintf(list + used, sizeof(list) - used,
				     "%s%s %s", i ? ", " : "", where,
				     strerror(-a[i].err));
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (tried < total && used < sizeof(list))
		snprintf(list + used, sizeof(list) - used,
			 "; %zu more address%s not tried before the deadline",
			 total - tried, total - tried > 1 ? "es" : "");
	return nbdws_err_set(err, rc, "cannot connect to %s: %s", host, list);
}

int nbd_sock_connect_addrs(const struct addrinfo *list, const char *host,
			   int timeout_ms, struct nbdws_err *err)
{
	const struct addrinfo *order[NBD_SOCK_MAX_ADDRS];
	struct attempt a[NBD_SOCK_MAX_ADDRS];
	struct pollfd pfd[NBD_SOCK_MAX_ADDRS];
	size_t idx[NBD_SOCK_MAX_ADDRS];
	long long deadline = nbd_now_ms() + timeout_ms, next_start = 0;
	size_t n, started = 0, i;
	int rc = -ETIMEDOUT, fd = -1;

	n = nbd_sock_order(list, order, NBD_SOCK_MAX_ADDRS);
	if (!n)
		return nbdws_err_set(err, -EHOSTUNREACH,
				     "'%s' resolved to no address", host);
	for (i = 0; i < n; i++)
		a[i] = (struct attempt){ .ai = order[i], .fd = -1 };
	/*
	 * RFC 8305 section 5: start the next address when the one before
	 * fails or has had ATTEMPT_DELAY_MS without an answer, keeping the
	 * earlier ones in flight; the first to connect wins.
	 */
	while (fd < 0) {
		long long now = nbd_now_ms();
		size_t inflight = 0;
		long long wait;
		int ready;

		for (i = 0; i < started; i++)
			if (a[i].fd >= 0) {
				pfd[inflight] = (struct pollfd){
					.fd = a[i].fd, .events = POLLOUT };
				idx[inflight++] = i;
			}
		if (started < n && now < deadline &&
		    (!inflight || now >= next_start)) {
			attempt_start(&a[started++]);
			next_start = nbd_now_ms() + ATTEMPT_DELAY_MS;
			continue;
		}
		if (!inflight) {
			rc = started < n ? -ETIMEDOUT : a[started - 1].err;
			break;
		}
		if (now >= deadline) {
			for (i = 0; i < inflight; i++) {
				close(pfd[i].fd);
				a[idx[i]].fd = -1;
				a[idx[i]].err = -ETIMEDOUT;
			}
			rc = -ETIMEDOUT;
			break;
		}
		wait = deadline - now;
		if (started < n && next_start - now < wait)
			wait = next_start - now;
		ready = poll(pfd, inflight, (int)(wait > 60000 ? 60000 : wait));
		if (ready < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		for (i = 0; ready > 0 && i < inflight; i++) {
			if (!pfd[i].revents)
				continue;
			if (!attempt_result(&a[idx[i]])) {
				fd = a[idx[i]].fd;
				a[idx[i]].fd = -1;
				break;
			}
			/* Failed outright: no reason to wait for the next. */
			next_start = 0;
		}
	}
	for (i = 0; i < started; i++)
		if (a[i].fd >= 0)
			close(a[i].fd);
	if (fd < 0)
		return connect_error(host, a, started, n, rc, err);
	rc = set_blocking(fd, true);
	if (!rc)
		rc = tune_tcp(fd);
	if (rc) {
		close(fd);
		return nbdws_err_set(err, rc, "cannot set up the socket to %s: %s",
				     host, strerror(-rc));
	}
	return fd;
}

int nbd_sock_connect_tcp(const char *host, const char *port, int timeout_ms,
			 struct nbdws_err *err)
{
	long long deadline = nbd_now_ms() + timeout_ms, left;
	struct addrinfo *res;
	int rc;

	/* One deadline for the name lookup and the connect together. */
	rc = nbd_resolve(host, port, deadline, &res, err);
	if (rc)
		return rc;
	left = deadline - nbd_now_ms();
	rc = nbd_sock_connect_addrs(res, host, left > 0 ? (int)left : 0, err);
	freeaddrinfo(res);
	return rc;
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
