// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: fibers on ucontext (see fiber.h).
 *
 * A fiber is entered from whoever resumes it (the loop's callbacks, or
 * fiber_start() in a fiber or in the loop) and always switches back to
 * that same context when it waits or ends. Waits register the fiber's own
 * watch, timer and deferred call with the loop; whichever fires first
 * ends the wait and the others are withdrawn before the fiber goes on, so
 * a fiber never has more than one way back in. A fiber that ends is freed
 * from a deferred call: its struct stays valid until the callback that
 * saw it end has returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "fiber.h"
#include "loop.h"
#include "nbd_sock.h"
#include "relay.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FIBER_ASAN 1
#else
#define FIBER_ASAN 0
#endif

/* No wait in progress: fiber.wait_result holds no result yet. */
#define WAIT_PENDING	1

struct fiber {
	ucontext_t ctx;		/* the fiber's, while it is switched out */
	ucontext_t caller;	/* whoever resumed it, while it runs */
	void *map;		/* guard page + stack */
	size_t map_len;
	fiber_fn fn;
	void *arg;

	bool waiting;		/* switched out in a wait */
	bool cancelled;
	bool done;
	int wait_result;
	struct fiber_cond *cond;	/* waited on, or NULL */

	struct loop_watch watch;
	struct loop_timer timer;
	struct loop_defer kick;		/* cancel / cond signal, from the loop */
	struct loop_defer reap;

	/* AddressSanitizer's view of the stacks we switch between. */
	void *fake_stack;
	const void *caller_bottom;
	size_t caller_size;
};

/* Per thread: kernel.c's worker never runs in a fiber. */
static __thread struct fiber *current;

static void asan_start(void **fake, const void *bottom, size_t size)
{
#if FIBER_ASAN
	__sanitizer_start_switch_fiber(fake, bottom, size);
#else
	(void)fake;
	(void)bottom;
	(void)size;
#endif
}

static void asan_finish(void *fake, const void **bottom, size_t *size)
{
#if FIBER_ASAN
	__sanitizer_finish_switch_fiber(fake, bottom, size);
#else
	(void)fake;
	(void)bottom;
	(void)size;
#endif
}

static size_t page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? (size_t)ps : 4096;
}

static void fiber_free(void *arg)
{
	struct fiber *f = arg;

	loop_defer_cancel(&f->kick);
	munmap(f->map, f->map_len);
	free(f);
}

/* Switch from the running fiber back to whoever resumed it. */
static void yield(struct fiber *f)
{
	asan_start(f->done ? NULL : &f->fake_stack, f->caller_bottom,
		   f->caller_size);
	swapcontext(&f->ctx, &f->caller);
	/* Resumed: by a possibly different caller than last time. */
	asan_finish(f->fake_stack, &f->caller_bottom, &f->caller_size);
}

/* Run @f until it waits or ends. */
static void resume(struct fiber *f)
{
	struct fiber *prev = current;
	void *fake = NULL;

	current = f;
	asan_start(&fake, (char *)f->map + page_size(),
		   f->map_len - page_size());
	swapcontext(&f->caller, &f->ctx);
	asan_finish(fake, NULL, NULL);
	current = prev;
	if (f->done)
		loop_defer(&f->reap, fiber_free, f);
}

static void trampoline(void)
{
	struct fiber *f = current;

	asan_finish(NULL, &f->caller_bottom, &f->caller_size);
	f->fn(f->arg);
	f->done = true;
	/* Never returns: resume() sees done and frees the stack later. */
	yield(f);
	abort();
}

/* Apart, because getcontext() "returns twice" for the compiler. */
static int make_context(ucontext_t *ctx, void *stack)
{
	if (getcontext(ctx) < 0)
		return -1;
	ctx->uc_stack.ss_sp = stack;
	ctx->uc_stack.ss_size = (size_t)FIBER_STACK_SIZE;
	ctx->uc_link = NULL;
	makecontext(ctx, trampoline, 0);
	return 0;
}

struct fiber *fiber_start(fiber_fn fn, void *arg)
{
	size_t ps = page_size();
	struct fiber *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->map_len = (size_t)FIBER_STACK_SIZE + ps;
	f->map = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (f->map == MAP_FAILED) {
		free(f);
		return NULL;
	}
	/* Overflow faults on the guard page instead of corrupting memory. */
	if (mprotect(f->map, ps, PROT_NONE) < 0 ||
	    make_context(&f->ctx, (char *)f->map + ps) < 0) {
		munmap(f->map, f->map_len);
		free(f);
		return NULL;
	}
	f->fn = fn;
	f->arg = arg;
	resume(f);
	return f;
}

struct fiber *fiber_self(void)
{
	return current;
}

/* End @f's wait with @result and run it (from a loop callback). */
static void wake(struct fiber *f, int result)
{
	if (!f->waiting)
		return;
	f->waiting = false;
	f->wait_result = result;
	resume(f);
}

static void on_fd(void *arg, uint32_t events)
{
	(void)events;
	wake(arg, 0);
}

static void on_timer(void *arg)
{
	wake(arg, -ETIMEDOUT);
}

/* Cancelled, or the condition waited on was signalled. */
static void on_kick(void *arg)
{
	struct fiber *f = arg;

	if (f->cancelled)
		wake(f, -ECANCELED);
	else if (f->cond && f->cond->signalled)
		wake(f, 0);
}

/*
 * Switch to the loop until the watch (if armed by the caller), the
 * timer (unless @deadline_ms is LLONG_MAX) or a kick ends the wait.
 */
static int park(struct fiber *f, long long deadline_ms)
{
	if (deadline_ms != LLONG_MAX)
		loop_timer_arm(&f->timer, deadline_ms, on_timer, f);
	f->waiting = true;
	f->wait_result = WAIT_PENDING;
	yield(f);
	loop_watch_del(&f->watch);
	loop_timer_cancel(&f->timer);
	return f->wait_result;
}

int fiber_wait_fd(int fd, short events, long long deadline_ms)
{
	struct fiber *f = current;
	struct pollfd pfd = { .fd = fd, .events = events };
	uint32_t ev = 0;
	int dupfd = -1, rc;

	if (!f)
		return nbd_sock_poll_wait(fd, events, deadline_ms);
	if (f->cancelled)
		return -ECANCELED;
	if (deadline_ms - nbd_now_ms() <= 0)
		return -ETIMEDOUT;
	/* Often ready already (lib/ waits before each read): no epoll then. */
	if (poll(&pfd, 1, 0) > 0)
		return 0;
	if (events & POLLIN)
		ev |= EPOLLIN;
	if (events & POLLOUT)
		ev |= EPOLLOUT;
	rc = loop_watch_add(&f->watch, fd, ev, on_fd, f);
	if (rc == -EEXIST) {
		/*
		 * Someone else watches this fd already; epoll tells watches
		 * apart by fd number, so a duplicate can be watched too.
		 */
		dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dupfd < 0)
			return -errno;
		rc = loop_watch_add(&f->watch, dupfd, ev, on_fd, f);
	}
	if (!rc)
		rc = park(f, deadline_ms);
	if (dupfd >= 0)
		close(dupfd);
	return rc;
}

int fiber_sleep_until(long long deadline_ms)
{
	struct fiber *f = current;
	int rc;

	if (!f) {
		long long left;

		while ((left = deadline_ms - nbd_now_ms()) > 0)
			poll(NULL, 0, (int)(left > 60000 ? 60000 : left));
		return 0;
	}
	if (f->cancelled)
		return -ECANCELED;
	if (deadline_ms - nbd_now_ms() <= 0)
		return 0;
	rc = park(f, deadline_ms);
	return rc == -ETIMEDOUT ? 0 : rc;
}

int fiber_cond_wait(struct fiber_cond *c, long long deadline_ms)
{
	struct fiber *f = current;
	int rc;

	if (!f)
		return -EINVAL;
	if (c->signalled)
		return 0;
	if (f->cancelled)
		return -ECANCELED;
	if (deadline_ms - nbd_now_ms() <= 0)
		return -ETIMEDOUT;
	c->waiter = f;
	f->cond = c;
	rc = park(f, deadline_ms);
	f->cond = NULL;
	c->waiter = NULL;
	/* Signalled and timed out in the same round: the signal wins. */
	return c->signalled ? 0 : rc;
}

void fiber_cond_signal(struct fiber_cond *c)
{
	c->signalled = true;
	if (c->waiter)
		loop_defer(&c->waiter->kick, on_kick, c->waiter);
}

void fiber_cancel(struct fiber *f)
{
	if (!f || f->done || f->cancelled)
		return;
	f->cancelled = true;
	/* Not from here: the caller may be walking a list @f is on. */
	if (f->waiting)
		loop_defer(&f->kick, on_kick, f);
}

void fiber_init(void)
{
	nbd_sock_set_wait_hook(fiber_wait_fd);
}
