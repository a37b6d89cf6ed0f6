/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Name resolution for a dial, bounded by the dial's deadline.
 *
 * getaddrinfo() cannot be interrupted: with an unreachable DNS server it
 * blocks for the resolver's own timeouts (resolv.conf(5): 5 s times the
 * attempts times the servers by default, far more with "options
 * timeout:30"), whatever deadline the caller has. glibc's asynchronous
 * getaddrinfo_a() runs the same lookup on a resolver thread, and
 * gai_suspend() waits for it with a timeout, so the caller can give up
 * at its deadline.
 *
 * A lookup given up on is cancelled. One the resolver thread has already
 * started cannot be (gai_cancel() says EAI_NOTCANCELED) and goes on using
 * its request block: such blocks are kept on a list and freed by a later
 * call once glibc reports them done, never while the thread may still
 * write to them.
 *
 * The wait blocks the calling thread (it does not go through
 * nbd_sock_wait()'s hook): no caller on an event loop resolves names.
 */
#ifndef _NBDWS_NBD_RESOLVE_H
#define _NBDWS_NBD_RESOLVE_H

#include "nbdws_err.h"

struct addrinfo;

/*
 * Resolve @host and the numeric @port for a TCP connect (any family) by
 * @deadline_ms (nbd_now_ms() clock). 0 with *@res set (freeaddrinfo()
 * it), or a negative errno with a message in @err: -ETIMEDOUT when the
 * deadline came first, -EHOSTUNREACH when the name does not resolve.
 * Address literals are converted at once, without a lookup.
 */
int nbd_resolve(const char *host, const char *port, long long deadline_ms,
		struct addrinfo **res, struct nbdws_err *err);

/*
 * How many lookups given up on are still held for their resolver thread
 * (after freeing those that have finished): for tests and diagnostics.
 */
unsigned int nbd_resolve_pending(void);

#endif /* _NBDWS_NBD_RESOLVE_H */
