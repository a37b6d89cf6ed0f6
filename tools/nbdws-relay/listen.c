// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: listening sockets and accepting (see listen.h).
 *
 * Addresses: "HOST:PORT", "[V6]:PORT", ":PORT" (config.c keeps the host
 * as written, brackets or not). Any address (":PORT", "[::]:PORT") is one
 * IPv6 socket with IPV6_V6ONLY off, so it takes IPv4 too (0.0.0.0 where
 * the host has no IPv6); a specific IPv6 address is IPv6 only, so the
 * same port may be bound for IPv4 next to it. A host name binds every
 * address it resolves to that can be bound.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"
#include "loop.h"
#include "nbd_sock.h"
#include "relay.h"
#include "session.h"

#define LISTEN_BACKLOG		128
#define MAX_LISTENERS		(RELAY_MAX_LISTEN * 4)
/* Paused for the limits, look again this often (a missed wake-up heals). */
#define PAUSE_RECHECK_MS	200
/* Out of fds: try again after this long rather than spin. */
#define EMFILE_BACKOFF_MS	1000

/* Keepalive as lib/nbd_sock.c sets it for the fast path. */
#define KEEPALIVE_IDLE_S	60
#define KEEPALIVE_INTVL_S	10
#define KEEPALIVE_CNT		3

struct listener {
	int fd;
	bool tcp;
	bool tls;
	char *unix_path;	/* unlinked at the end */
	struct loop_watch watch;
};

static struct listener listeners[MAX_LISTENERS];
static unsigned int n_listeners;
static unsigned int n_conns;
static bool paused;
static struct loop_timer recheck;

static bool over_limits(void)
{
	unsigned int max_conns = relay_cfg->max_conns ?
				 relay_cfg->max_conns : RELAY_DEF_MAX_CONNS;
	unsigned int max_hs = relay_cfg->max_handshakes ?
			      relay_cfg->max_handshakes :
			      RELAY_DEF_MAX_HANDSHAKES;

	return n_conns >= max_conns || session_handshakes() >= max_hs;
}

static void set_accepting(bool on)
{
	unsigned int i;
	int rc;

	for (i = 0; i < n_listeners; i++) {
		rc = loop_watch_mod(&listeners[i].watch, on ? EPOLLIN : 0);
		if (rc)
			relay_log(RELAY_LOG_ERR, "epoll: %s", strerror(-rc));
	}
}

static void on_recheck(void *arg);

static void pause_accepting(long long for_ms)
{
	if (!paused) {
		paused = true;
		set_accepting(false);
		relay_log(RELAY_LOG_DEBUG, "not accepting: %u connections, %u handshakes",
			  n_conns, session_handshakes());
	}
	loop_timer_arm(&recheck, nbd_now_ms() + for_ms, on_recheck, NULL);
}

static void maybe_resume(void)
{
	if (!paused || !n_listeners)
		return;
	if (over_limits()) {
		if (!recheck.armed)
			pause_accepting(PAUSE_RECHECK_MS);
		return;
	}
	paused = false;
	loop_timer_cancel(&recheck);
	set_accepting(true);
	relay_log(RELAY_LOG_DEBUG, "accepting again");
}

static void on_recheck(void *arg)
{
	(void)arg;
	maybe_resume();
}

static void tune_tcp(int fd)
{
	int one = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_INTVL_S;
	int cnt = KEEPALIVE_CNT;

	/* Best effort: a socket without them still works, only slower. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
			 sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void on_accept(void *arg, uint32_t events)
{
	struct listener *l = arg;

	(void)events;
	while (!over_limits()) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
				 SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				relay_log(RELAY_LOG_WARN,
					  "accept: %s; not accepting for a second",
					  strerror(errno));
				pause_accepting(EMFILE_BACKOFF_MS);
				return;
			}
			/* ECONNABORTED and the like: that client is gone. */
			if (errno != EINTR)
				relay_log(RELAY_LOG_DEBUG, "accept: %s",
					  strerror(errno));
			continue;
		}
		if (l->tcp)
			tune_tcp(fd);
		n_conns++;
		session_start(fd, (struct sockaddr *)&ss, len, l->tls);
		if (loop_stopping() || !n_listeners)
			return;		/* listen_fini() from in there */
	}
	pause_accepting(PAUSE_RECHECK_MS);
}

/* "127.0.0.1:8080", "[::1]:8080" of what @fd is bound to. */
static void describe(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	socklen_t len = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, size, "?");
		return;
	}
	snprintf(out, size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
}

static int add_listener(int fd, bool tcp, const char *unix_path,
			const char *what)
{
	struct listener *l = &listeners[n_listeners];
	int rc;

	if (n_listeners == MAX_LISTENERS) {
		relay_log(RELAY_LOG_ERR, "%s: too many listening sockets",
			  what);
		return -EMFILE;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		rc = -errno;
		relay_log(RELAY_LOG_ERR, "listen on %s: %s", what,
			  strerror(-rc));
		return rc;
	}
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->tcp = tcp;
	l->tls = tcp && relay_cfg->tls.cert_file;
	if (unix_path) {
		l->unix_path = strdup(unix_path);
		if (!l->unix_path)
			return -ENOMEM;
	}
	rc = loop_watch_add(&l->watch, fd, paused ? 0 : EPOLLIN, on_accept, l);
	if (rc) {
		relay_log(RELAY_LOG_ERR, "epoll: %s", strerror(-rc));
		free(l->unix_path);
		l->unix_path = NULL;
		return rc;
	}
	n_listeners++;
	if (tcp) {
		char addr[NI_MAXHOST + NI_MAXSERV + 4];

		describe(fd, addr, sizeof(addr));
		relay_log(RELAY_LOG_INFO, "listening on %s (%s)", addr,
			  l->tls ? "wss" : "ws");
	} else {
		relay_log(RELAY_LOG_INFO, "listening on unix:%s (ws)",
			  unix_path);
	}
	return 0;
}

/* One bound TCP socket for @ai, or -errno (logged by the caller). */
static int bind_tcp(const struct addrinfo *ai, bool v6only)
{
	int one = 1, v6 = v6only;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			SOCK_CLOEXEC, ai->ai_protocol);

	if (fd < 0)
		return -errno;
	/* A restarted relay must not wait for TIME_WAIT to end. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (ai->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof(v6))) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

static int listen_tcp(const struct relay_listen *rl)
{
	struct addrinfo hints = {
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	char host[NI_MAXHOST];
	struct addrinfo *res, *ai;
	const char *h = rl->host;
	bool any = false;
	int rc, first_err = 0, bound = 0;
	size_t n;

	n = h ? strlen(h) : 0;
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		snprintf(host, sizeof(host), "%.*s", (int)(n - 2), h + 1);
		h = host;
	}
	if (!h || !*h || !strcmp(h, "::")) {
		/* Any address: IPv6 first, it takes IPv4 too. */
		any = true;
		h = "::";
		hints.ai_flags |= AI_NUMERICHOST;
	}
	rc = getaddrinfo(h, rl->port, &hints, &res);
	if (rc && any) {
		h = "0.0.0.0";
		rc = getaddrinfo(h, rl->port, &hints, &res);
	}
	if (rc) {
		relay_log(RELAY_LOG_ERR, "listen %s: %s", rl->spec,
			  gai_strerror(rc));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = bind_tcp(ai, !any);

		if (fd == -EAFNOSUPPORT && any) {
			struct addrinfo *v4;

			/* No IPv6 on this host: the IPv4 any address. */
			hints.ai_flags |= AI_NUMERICHOST;
			if (getaddrinfo("0.0.0.0", rl->port, &hints, &v4))
				break;
			fd = bind_tcp(v4, false);
			freeaddrinfo(v4);
		}
		if (fd < 0) {
			if (!first_err)
				first_err = fd;
			continue;
		}
		rc = add_listener(fd, true, NULL, rl->spec);
		if (rc) {
			close(fd);
			freeaddrinfo(res);
			return rc;
		}
		bound++;
	}
	freeaddrinfo(res);
	if (bound)
		return 0;
	if (!first_err)
		first_err = -EADDRNOTAVAIL;
	relay_log(RELAY_LOG_ERR, "cannot listen on %s: %s%s", rl->spec,
		  strerror(-first_err), first_err == -EADDRINUSE ?
		  " (another program, or another relay, has it)" :
		  first_err == -EACCES ? " (ports below 1024 need root)" : "");
	return first_err;
}

static int listen_unix(const struct relay_listen *rl)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(rl->path) >= sizeof(sa.sun_path)) {
		relay_log(RELAY_LOG_ERR, "listen %s: path longer than %zu bytes",
			  rl->spec, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, rl->path, strlen(rl->path) + 1);
	/* A socket left by a relay that died; never anything else. */
	if (!lstat(rl->path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			relay_log(RELAY_LOG_ERR,
				  "listen %s: %s exists and is not a socket",
				  rl->spec, rl->path);
			return -EEXIST;
		}
		if (unlink(rl->path) < 0 && errno != ENOENT) {
			rc = -errno;
			relay_log(RELAY_LOG_ERR, "listen %s: unlink: %s",
				  rl->spec, strerror(-rc));
			return rc;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		relay_log(RELAY_LOG_ERR, "socket: %s", strerror(-rc));
		return rc;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(rl->path, 0660) < 0) {
		rc = -errno;
		relay_log(RELAY_LOG_ERR, "cannot listen on %s: %s", rl->spec,
			  strerror(-rc));
		close(fd);
		return rc;
	}
	rc = add_listener(fd, false, rl->path, rl->spec);
	if (rc) {
		unlink(rl->path);
		close(fd);
	}
	return rc;
}

int listen_init(void)
{
	unsigned int i;
	int rc = 0;

	paused = false;
	for (i = 0; i < relay_cfg->n_listen && !rc; i++) {
		const struct relay_listen *rl = &relay_cfg->listen[i];

		rc = rl->kind == RELAY_LISTEN_UNIX ? listen_unix(rl) :
						     listen_tcp(rl);
	}
	if (rc)
		listen_fini();
	return rc;
}

void listen_fini(void)
{
	unsigned int i;

	for (i = 0; i < n_listeners; i++) {
		struct listener *l = &listeners[i];

		loop_watch_del(&l->watch);
		close(l->fd);
		if (l->unix_path) {
			unlink(l->unix_path);
			free(l->unix_path);
		}
	}
	n_listeners = 0;
	loop_timer_cancel(&recheck);
}

void listen_conn_closed(void)
{
	if (n_conns)
		n_conns--;
	maybe_resume();
}

unsigned int listen_conns(void)
{
	return n_conns;
}
