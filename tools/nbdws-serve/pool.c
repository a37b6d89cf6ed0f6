// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve: the worker threads (see pool.h).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pool.h"

static void finish(struct pool *p, struct sreq *r)
{
	u64 one = 1;
	bool was_empty;

	if (!r->done_early)
		r->error = src_exec(p->src, r);
	/* Without randomness for a mask there is no frame to send. */
	if (sreq_reply(r)) {
		r->error = NBDP_EIO;
		r->tx.data = NULL;
		r->tx.len = 0;
	}
	pthread_mutex_lock(&p->lock);
	was_empty = !p->done_head;
	r->next = NULL;
	*p->done_tail = r;
	p->done_tail = &r->next;
	pthread_mutex_unlock(&p->lock);
	/* One wakeup per batch: the loop takes the whole list. */
	if (was_empty && write(p->efd, &one, sizeof(one)) < 0)
		return;
}

static void *worker(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		struct sreq *r;

		pthread_mutex_lock(&p->lock);
		while (!p->q_head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		r = p->q_head;
		if (!r) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		p->q_head = r->next;
		if (!p->q_head)
			p->q_tail = &p->q_head;
		pthread_mutex_unlock(&p->lock);
		finish(p, r);
	}
}

int pool_start(struct pool *p, struct src *src, unsigned int nth,
	       struct nbdws_err *err)
{
	sigset_t all, old;
	unsigned int i;
	int rc = EAGAIN;

	memset(p, 0, sizeof(*p));
	p->src = src;
	p->q_tail = &p->q_head;
	p->done_tail = &p->done_head;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0)
		return nbdws_err_set(err, -errno, "eventfd: %s",
				     strerror(errno));
	if (nth > POOL_MAX_THREADS)
		nth = POOL_MAX_THREADS;
	/* Signals are the main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < nth; i++) {
		rc = pthread_create(&p->th[i], NULL, worker, p);
		if (rc)
			break;
		p->nth++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!p->nth) {
		close(p->efd);
		return nbdws_err_set(err, -rc, "cannot start worker threads: %s",
				     strerror(rc));
	}
	return 0;
}

void pool_submit(struct pool *p, struct sreq *r)
{
	if (r->done_early) {
		/* Refused in parsing: no I/O, straight to the done list. */
		finish(p, r);
		return;
	}
	pthread_mutex_lock(&p->lock);
	r->next = NULL;
	*p->q_tail = r;
	p->q_tail = &r->next;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

struct sreq *pool_take_done(struct pool *p)
{
	struct sreq *list;
	u64 v;

	/* Drain the counter first: a finish() after this wakes us again. */
	if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return NULL;
	pthread_mutex_lock(&p->lock);
	list = p->done_head;
	p->done_head = NULL;
	p->done_tail = &p->done_head;
	pthread_mutex_unlock(&p->lock);
	return list;
}

void pool_stop(struct pool *p)
{
	struct sreq *r;
	unsigned int i;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	while ((r = p->done_head)) {
		p->done_head = r->next;
		sreq_free(r);
	}
	close(p->efd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
}
