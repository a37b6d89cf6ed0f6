// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: the event loop (see loop.h).
 *
 * Every callback may add, change or delete any watch, timer or deferred
 * call, its own included, and may free the memory they live in once it
 * has deleted them. So the loop never touches a watch, timer or deferred
 * call after its callback unless it is still registered:
 *  - watches: loop_watch_del() clears the not yet dispatched events of the
 *    current epoll_wait() batch that point at the watch;
 *  - timers: the due ones move to a list of their own before any runs,
 *    and each is unlinked before its callback (so one that re-arms itself
 *    for "now" runs in the next round, not in a loop here);
 *  - deferred calls: the queue is taken whole before any runs, and calls
 *    queued meanwhile run in the next round; cancel looks in both lists.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"
#include "nbd_sock.h"

#define LOOP_MAX_EVENTS	64

static int epfd = -1;
static bool stopping;
static int stop_code;

/* The batch being dispatched; loop_watch_del() clears entries in it. */
static struct epoll_event evs[LOOP_MAX_EVENTS];
static int n_evs, cur_ev;

static struct loop_timer *timers;	/* armed, sorted by when_ms */
static struct loop_timer *due;		/* this round's, being run */

static struct loop_defer *defer_head, **defer_tail = &defer_head;
static struct loop_defer *defer_run;	/* this round's, being run */

int loop_init(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -errno;
	stopping = false;
	stop_code = 0;
	timers = due = NULL;
	defer_head = defer_run = NULL;
	defer_tail = &defer_head;
	n_evs = cur_ev = 0;
	return 0;
}

void loop_fini(void)
{
	if (epfd >= 0)
		close(epfd);
	epfd = -1;
}

/* ---- watches --------------------------------------------------------- */

/*
 * A watch with no events is kept out of epoll altogether: epoll would
 * still report EPOLLERR/EPOLLHUP for it, level-triggered, and spin.
 */
static int watch_ctl(struct loop_watch *w, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(epfd, op, w->fd, &ev) < 0 ? -errno : 0;
}

int loop_watch_add(struct loop_watch *w, int fd, uint32_t events,
		   loop_fd_fn fn, void *arg)
{
	int rc = 0;

	if (w->active)
		loop_watch_del(w);
	w->fd = fd;
	w->events = events;
	w->fn = fn;
	w->arg = arg;
	if (events)
		rc = watch_ctl(w, EPOLL_CTL_ADD, events);
	w->active = !rc;
	return rc;
}

int loop_watch_mod(struct loop_watch *w, uint32_t events)
{
	int rc = 0;

	if (!w->active)
		return -EINVAL;
	if (w->events && events)
		rc = watch_ctl(w, EPOLL_CTL_MOD, events);
	else if (events)
		rc = watch_ctl(w, EPOLL_CTL_ADD, events);
	else if (w->events)
		rc = watch_ctl(w, EPOLL_CTL_DEL, 0);
	if (!rc)
		w->events = events;
	return rc;
}

void loop_watch_del(struct loop_watch *w)
{
	int i;

	if (!w->active)
		return;
	if (w->events)
		(void)watch_ctl(w, EPOLL_CTL_DEL, 0);
	w->active = false;
	for (i = cur_ev + 1; i < n_evs; i++)
		if (evs[i].data.ptr == w)
			evs[i].data.ptr = NULL;
}

/* ---- timers ---------------------------------------------------------- */

static bool unlink_timer(struct loop_timer **list, struct loop_timer *t)
{
	struct loop_timer **pp;

	for (pp = list; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			t->next = NULL;
			return true;
		}
	}
	return false;
}

void loop_timer_cancel(struct loop_timer *t)
{
	if (!t->armed)
		return;
	if (!unlink_timer(&timers, t))
		unlink_timer(&due, t);
	t->armed = false;
}

void loop_timer_arm(struct loop_timer *t, long long when_ms, loop_fn fn,
		    void *arg)
{
	struct loop_timer **pp;

	loop_timer_cancel(t);
	t->when_ms = when_ms;
	t->fn = fn;
	t->arg = arg;
	/* After every timer due at the same time: they run in arm order. */
	for (pp = &timers; *pp && (*pp)->when_ms <= when_ms; pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
	t->armed = true;
}

static void run_timers(void)
{
	long long now = nbd_now_ms();
	struct loop_timer **pp = &timers;

	if (!timers || timers->when_ms > now)
		return;
	while (*pp && (*pp)->when_ms <= now)
		pp = &(*pp)->next;
	due = timers;
	timers = *pp;
	*pp = NULL;
	while (due && !stopping) {
		struct loop_timer *t = due;

		due = t->next;
		t->next = NULL;
		t->armed = false;
		t->fn(t->arg);
	}
	/* Left over when stopping: back in front, still in order. */
	while (due) {
		struct loop_timer *t = due;

		due = t->next;
		t->armed = false;
		loop_timer_arm(t, t->when_ms, t->fn, t->arg);
	}
}

/* ---- deferred calls -------------------------------------------------- */

void loop_defer(struct loop_defer *d, loop_fn fn, void *arg)
{
	d->fn = fn;
	d->arg = arg;
	if (d->queued)
		return;
	d->next = NULL;
	*defer_tail = d;
	defer_tail = &d->next;
	d->queued = true;
}

void loop_defer_cancel(struct loop_defer *d)
{
	struct loop_defer **pp;

	if (!d->queued)
		return;
	d->queued = false;
	for (pp = &defer_run; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			return;
		}
	}
	for (pp = &defer_head; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			if (defer_tail == &d->next)
				defer_tail = pp;
			return;
		}
	}
}

static void run_deferred(void)
{
	defer_run = defer_head;
	defer_head = NULL;
	defer_tail = &defer_head;
	while (defer_run && !stopping) {
		struct loop_defer *d = defer_run;

		defer_run = d->next;
		d->queued = false;
		d->fn(d->arg);
	}
	/* Left over when stopping: queue them again, in front. */
	if (defer_run) {
		struct loop_defer **pp = &defer_run;

		while (*pp)
			pp = &(*pp)->next;
		*pp = defer_head;
		if (!defer_head)
			defer_tail = pp;
		defer_head = defer_run;
		defer_run = NULL;
	}
}

/* ---- the loop -------------------------------------------------------- */

static int next_timeout(void)
{
	long long left;

	if (defer_head)
		return 0;
	if (!timers)
		return -1;
	left = timers->when_ms - nbd_now_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static void dispatch(void)
{
	for (cur_ev = 0; cur_ev < n_evs && !stopping; cur_ev++) {
		struct loop_watch *w = evs[cur_ev].data.ptr;
		uint32_t events = evs[cur_ev].events;

		/* Deleted, or changed to want none of it, since the wait. */
		if (!w || !w->active)
			continue;
		events &= w->events | EPOLLERR | EPOLLHUP;
		if (!events || !w->events)
			continue;
		w->fn(w->arg, events);
	}
	n_evs = cur_ev = 0;
}

int loop_run(void)
{
	int rc;

	while (!stopping) {
		run_deferred();
		if (stopping)
			break;
		n_evs = epoll_wait(epfd, evs, LOOP_MAX_EVENTS, next_timeout());
		if (n_evs < 0) {
			n_evs = 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		dispatch();
		if (!stopping)
			run_timers();
	}
	/* A later loop_run() (tests) starts afresh. */
	rc = stop_code;
	stopping = false;
	stop_code = 0;
	return rc;
}

void loop_stop(int code)
{
	stopping = true;
	stop_code = code;
}

bool loop_stopping(void)
{
	return stopping;
}
