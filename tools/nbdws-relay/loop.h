/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: the one event loop (epoll), its timers and deferred calls.
 * Single-threaded: every function here is called from the loop's thread
 * only (kernel.c's worker talks to the loop through an eventfd).
 */
#ifndef _RELAY_LOOP_H
#define _RELAY_LOOP_H

#include <stdbool.h>
#include <stdint.h>

/* Called with the epoll events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP). */
typedef void (*loop_fd_fn)(void *arg, uint32_t events);
typedef void (*loop_fn)(void *arg);

struct loop_watch {
	int fd;
	uint32_t events;
	loop_fd_fn fn;
	void *arg;
	bool active;
};

struct loop_timer {
	long long when_ms;	/* nbd_now_ms() clock */
	loop_fn fn;
	void *arg;
	bool armed;
	struct loop_timer *next;	/* loop.c's sorted list */
};

struct loop_defer {
	loop_fn fn;
	void *arg;
	bool queued;
	struct loop_defer *next;
};

int loop_init(void);
void loop_fini(void);

/* Watch @fd for @events (level-triggered). 0 or -errno. */
int loop_watch_add(struct loop_watch *w, int fd, uint32_t events,
		   loop_fd_fn fn, void *arg);
int loop_watch_mod(struct loop_watch *w, uint32_t events);
/* Safe on a watch that is not active; call before closing the fd. */
void loop_watch_del(struct loop_watch *w);

/* (Re)arm @t to run @fn(@arg) once at @when_ms; cancel is idempotent. */
void loop_timer_arm(struct loop_timer *t, long long when_ms, loop_fn fn,
		    void *arg);
void loop_timer_cancel(struct loop_timer *t);

/* Run @fn(@arg) from the loop soon, after the current callback returns. */
void loop_defer(struct loop_defer *d, loop_fn fn, void *arg);
void loop_defer_cancel(struct loop_defer *d);

/* Run until loop_stop(); returns the code given to it. */
int loop_run(void);
void loop_stop(int code);
bool loop_stopping(void);

#endif /* _RELAY_LOOP_H */
