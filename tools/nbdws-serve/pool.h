/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-serve: the worker threads. Requests are queued in arrival order;
 * a few threads take them, do the blocking file I/O, build the reply
 * frame (masking included, so that work is spread over the cores too)
 * and put it on the completion list in the order they finish. An
 * eventfd tells the event loop that completions are waiting.
 */
#ifndef _NBDWS_SERVE_POOL_H
#define _NBDWS_SERVE_POOL_H

#include <pthread.h>
#include <stdbool.h>

#include "nbdsrv.h"
#include "src.h"

#define POOL_MAX_THREADS	16

struct pool {
	struct src *src;
	pthread_t th[POOL_MAX_THREADS];
	unsigned int nth;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sreq *q_head, **q_tail;		/* to do */
	struct sreq *done_head, **done_tail;	/* replies built */
	bool stop;
	int efd;				/* readable: done list not empty */
};

/* Start @nth workers on @src. 0 or a negative errno with @err set. */
int pool_start(struct pool *p, struct src *src, unsigned int nth,
	       struct nbdws_err *err);

/* Queue @r for a worker. */
void pool_submit(struct pool *p, struct sreq *r);

/* Take every finished request, in completion order (NULL: none). */
struct sreq *pool_take_done(struct pool *p);

/* Stop the workers (after the queued work) and free the pool. */
void pool_stop(struct pool *p);

#endif /* _NBDWS_SERVE_POOL_H */
