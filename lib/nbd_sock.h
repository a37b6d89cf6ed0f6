/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Opening the stream sockets an NBD connection runs on: TCP or a unix
 * socket, with a deadline. The sockets come back blocking, close-on-exec,
 * and for TCP with TCP_NODELAY and keepalive set, ready to be handed to
 * nbdws.ko.
 *
 * TCP tries every address the name resolves to, as RFC 8305 ("Happy
 * Eyeballs v2") describes: IPv6 and IPv4 addresses alternate, starting
 * with the family getaddrinfo() put first; each address gets 250 ms to
 * connect before the next is started alongside it (at once when it
 * fails), and the first connection made wins. One address that never
 * answers (a firewall dropping SYNs) thus delays the connect by 250 ms
 * instead of using up the deadline, which bounds the whole attempt.
 */
#ifndef _NBDWS_NBD_SOCK_H
#define _NBDWS_NBD_SOCK_H

#include <stddef.h>

#include "nbd_uri.h"
#include "nbdws_err.h"

/* Addresses of one name tried at most; the rest are ignored. */
#define NBD_SOCK_MAX_ADDRS	16

struct addrinfo;

/*
 * Returns a connected fd or a negative errno with a message in @err that
 * names every address tried and how it failed. The deadline of
 * @timeout_ms covers the name lookup too (nbd_resolve.h). -ETIMEDOUT when
 * the deadline ended it, else the last address's error.
 */
int nbd_sock_connect_tcp(const char *host, const char *port, int timeout_ms,
			 struct nbdws_err *err);

/*
 * nbd_sock_connect_tcp() after name resolution: connect to one of the
 * addresses in @list (a getaddrinfo() result; @host names them in
 * messages).
 */
int nbd_sock_connect_addrs(const struct addrinfo *list, const char *host,
			   int timeout_ms, struct nbdws_err *err);

/*
 * The order in which the addresses of @list are tried: at most @max
 * pointers into @list, stored in @out; returns how many.
 */
size_t nbd_sock_order(const struct addrinfo *list,
		      const struct addrinfo **out, size_t max);
int nbd_sock_connect_unix(const char *path, int timeout_ms,
			  struct nbdws_err *err);

/*
 * Connect to where @uri points: unix socket for nbd+unix, TCP otherwise
 * (for ws/wss only the TCP part; the upgrade is the caller's job).
 */
int nbd_sock_connect_uri(const struct nbd_uri *uri, int timeout_ms,
			 struct nbdws_err *err);

/* Milliseconds on CLOCK_MONOTONIC, for deadlines. */
long long nbd_now_ms(void);

/*
 * A duration for a message, in tenths of a second rounded to the nearest
 * ("%lld.%lld s" of t / 10, t % 10): a 1 s deadline that left 999 ms
 * reads 1.0 s, not 0.9.
 */
static inline long long nbd_ms_tenths(long long ms)
{
	return (ms + 50) / 100;
}

/*
 * Wait until @fd is ready for @events (POLLIN, POLLOUT) or @deadline_ms
 * (nbd_now_ms() clock) passes: 0 or -ETIMEDOUT / -errno. POLLERR and
 * POLLHUP also end the wait; the next socket call reports them.
 */
int nbd_sock_wait(int fd, short events, long long deadline_ms);

/*
 * nbd_sock_wait() without the hook: poll() until ready or @deadline_ms.
 * A hook calls it for the waits it does not take over itself.
 */
int nbd_sock_poll_wait(int fd, short events, long long deadline_ms);

/*
 * Process-wide: have nbd_sock_wait() call @hook instead of poll(), or
 * restore poll() with NULL. A program that multiplexes many connections
 * on one thread (nbdws-relay's fibers) makes every wait in this library
 * (TLS, upgrade, framing, NBD handshake) yield to its event loop. The
 * hook returns what nbd_sock_wait() would. Set it before any I/O.
 */
typedef int (*nbd_sock_wait_fn)(int fd, short events, long long deadline_ms);
void nbd_sock_set_wait_hook(nbd_sock_wait_fn hook);

/* Send all of @buf before @deadline_ms: 0, -ETIMEDOUT or -errno. */
int nbd_sock_send_all(int fd, const void *buf, size_t len,
		      long long deadline_ms);

#endif /* _NBDWS_NBD_SOCK_H */
