// SPDX-License-Identifier: GPL-2.0
/*
 * Name resolution with a deadline (see nbd_resolve.h).
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nbd_resolve.h"
#include "nbd_sock.h"

/* One getaddrinfo_a() request and everything it points to. */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	struct lookup *next;	/* on the abandoned list */
	char names[];		/* host, then port, NUL-terminated */
};

/*
 * Lookups given up on while a resolver thread ran them. Static, so that
 * they stay reachable (for LeakSanitizer too) until reap_abandoned()
 * frees them.
 */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lookup *abandoned;

static void lookup_free(struct lookup *l)
{
	if (l->cb.ar_result)
		freeaddrinfo(l->cb.ar_result);
	free(l);
}

/*
 * Free the abandoned lookups glibc is done with. gai_cancel() answers
 * under glibc's request lock: anything but EAI_NOTCANCELED means the
 * request is no longer on glibc's list (finished, or just cancelled
 * before a thread took it), so nothing touches the block any more.
 */
static void reap_abandoned(void)
{
	struct lookup **pp, *l;

	pthread_mutex_lock(&abandoned_lock);
	for (pp = &abandoned; (l = *pp);) {
		if (gai_cancel(&l->cb) == EAI_NOTCANCELED) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		lookup_free(l);
	}
	pthread_mutex_unlock(&abandoned_lock);
}

unsigned int nbd_resolve_pending(void)
{
	unsigned int n = 0;
	struct lookup *l;

	reap_abandoned();
	pthread_mutex_lock(&abandoned_lock);
	for (l = abandoned; l; l = l->next)
		n++;
	pthread_mutex_unlock(&abandoned_lock);
	return n;
}

/* Stop waiting for @l: cancel it, or leave it for reap_abandoned(). */
static void give_up(struct lookup *l)
{
	if (gai_cancel(&l->cb) != EAI_NOTCANCELED) {
		lookup_free(l);
		return;
	}
	pthread_mutex_lock(&abandoned_lock);
	l->next = abandoned;
	abandoned = l;
	pthread_mutex_unlock(&abandoned_lock);
}

static int gai_error_set(struct nbdws_err *err, const char *host, int rc,
			 int sys_errno)
{
	return nbdws_err_set(err, -EHOSTUNREACH, "cannot resolve '%s': %s", host,
			     rc == EAI_SYSTEM ? strerror(sys_errno) :
			     gai_strerror(rc));
}

static struct lookup *lookup_new(const char *host, const char *port)
{
	size_t hl = strlen(host) + 1, pl = strlen(port) + 1;
	struct lookup *l = calloc(1, sizeof(*l) + hl + pl);

	if (!l)
		return NULL;
	memcpy(l->names, host, hl);
	memcpy(l->names + hl, port, pl);
	l->hints.ai_family = AF_UNSPEC;
	l->hints.ai_socktype = SOCK_STREAM;
	l->hints.ai_flags = AI_NUMERICSERV;
	l->cb.ar_name = l->names;
	l->cb.ar_service = l->names + hl;
	l->cb.ar_request = &l->hints;
	return l;
}

/* Wait for @l until @deadline_ms: its gai_error(), EAI_INPROGRESS if late. */
static int lookup_wait(struct lookup *l, long long deadline_ms)
{
	const struct gaicb *list[1] = { &l->cb };
	int rc;

	/* gai_suspend() also returns on signals and on other requests. */
	while ((rc = gai_error(&l->cb)) == EAI_INPROGRESS) {
		long long left = deadline_ms - nbd_now_ms();
		struct timespec ts;

		if (left <= 0)
			break;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = left % 1000 * 1000000;
		gai_suspend(list, 1, &ts);
	}
	return rc;
}

int nbd_resolve(const char *host, const char *port, long long deadline_ms,
		struct addrinfo **res, struct nbdws_err *err)
{
	struct addrinfo numeric = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST,
	};
	long long start = nbd_now_ms();
	struct gaicb *list[1];
	struct lookup *l;
	int rc;

	reap_abandoned();
	/* An address literal needs no lookup, and no resolver thread. */
	rc = getaddrinfo(host, port, &numeric, res);
	if (rc != EAI_NONAME)
		return rc ? gai_error_set(err, host, rc, errno) : 0;

	l = lookup_new(host, port);
	if (!l)
		return nbdws_err_set(err, -ENOMEM, "cannot resolve '%s': out of memory",
				     host);
	list[0] = &l->cb;
	rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc) {
		rc = gai_error_set(err, host, rc, errno);
		free(l);
		return rc;
	}
	rc = lookup_wait(l, deadline_ms);
	if (rc == EAI_INPROGRESS) {
		long long ds = nbd_ms_tenths(nbd_now_ms() - start);

		give_up(l);
		return nbdws_err_set(err, -ETIMEDOUT,
				     "cannot resolve '%s': no answer after %lld.%lld s (DNS unreachable?)",
				     host, ds / 10, ds % 10);
	}
	if (rc) {
		/* gai_error() has no errno of its own for EAI_SYSTEM. */
		rc = gai_error_set(err, host, rc, EIO);
		lookup_free(l);
		return rc;
	}
	*res = l->cb.ar_result;
	l->cb.ar_result = NULL;
	lookup_free(l);
	return 0;
}
