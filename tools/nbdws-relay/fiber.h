/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: fibers. A client connection's handshakes are sequential
 * code in lib/ (TLS, HTTP upgrade, WebSocket framing, NBD negotiation)
 * written against blocking sockets with deadlines. Each connection runs
 * that code on a stack of its own (ucontext); lib/'s one blocking
 * primitive, nbd_sock_wait(), is hooked so that inside a fiber it parks
 * the fiber on the event loop instead of calling poll(). One process, no
 * thread per connection, and the library code nbdctl runs is the code
 * the relay runs.
 *
 * Stacks are mmap'd with a guard page below them; the number of live
 * fibers is bounded by the relay's connection limits.
 */
#ifndef _RELAY_FIBER_H
#define _RELAY_FIBER_H

#include <stdbool.h>
#include <stddef.h>

struct fiber;

typedef void (*fiber_fn)(void *arg);

/* Stack per fiber: OpenSSL's handshake and lib/'s 8 KiB buffers fit. */
#define FIBER_STACK_SIZE	(256 * 1024)

/*
 * Hook lib/'s nbd_sock_wait() (see nbd_sock.h) so that it yields when
 * called inside a fiber; call once at start, after loop_init().
 */
void fiber_init(void);

/*
 * Start @fn(@arg) on a new fiber; it runs at once until it first waits
 * (or ends). The fiber's resources go when @fn returns. NULL on ENOMEM.
 */
struct fiber *fiber_start(fiber_fn fn, void *arg);

/* The running fiber, or NULL in the loop's own context. */
struct fiber *fiber_self(void);

/*
 * Inside a fiber: wait until @fd is ready for @events (POLLIN/POLLOUT;
 * error and hang-up end the wait too) or @deadline_ms passes. 0,
 * -ETIMEDOUT, or -ECANCELED after fiber_cancel().
 */
int fiber_wait_fd(int fd, short events, long long deadline_ms);

/* Inside a fiber: sleep until @deadline_ms. 0 or -ECANCELED. */
int fiber_sleep_until(long long deadline_ms);

/*
 * A one-shot signal from loop context (or from kernel.c's completion
 * handling, which runs in the loop) to one waiting fiber.
 */
struct fiber_cond {
	struct fiber *waiter;
	bool signalled;
};

static inline void fiber_cond_init(struct fiber_cond *c)
{
	c->waiter = NULL;
	c->signalled = false;
}

/* Inside a fiber: 0 once signalled, -ETIMEDOUT, or -ECANCELED. */
int fiber_cond_wait(struct fiber_cond *c, long long deadline_ms);
/* From the loop: wake the waiter (it resumes from the loop, soon). */
void fiber_cond_signal(struct fiber_cond *c);

/*
 * Make @f's current and every later wait return -ECANCELED (shutdown,
 * a slot that stops while its client is still negotiating).
 */
void fiber_cancel(struct fiber *f);

#endif /* _RELAY_FIBER_H */
