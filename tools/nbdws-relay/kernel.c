// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: the module's generic netlink family (see kernel.h).
 *
 * Every command becomes a job: a private copy of the caller's kernel_op
 * with its strings, its preread and a dup of its fd, so that the worker
 * never reads memory the caller may free and the caller may close its
 * fd as soon as the call returns. Jobs run one at a time, in the order
 * they were queued (a DISCONNECT queued before a CONNECT of the same
 * index happens first), on a worker thread that owns the command socket.
 * Finished jobs go back to the loop through an eventfd; only the loop
 * touches callers' ops, wakes fibers and calls submit callbacks.
 *
 * A fiber that is cancelled while its command runs leaves the job behind
 * (the kernel command cannot be taken back). When such a job was a
 * CONNECT that succeeded, nobody knows about its device, so the loop
 * disconnects it rather than leaving an orphan /dev/nbdwsN.
 *
 * Events arrive on a second socket, non-blocking, read by the loop.
 * Multicast can overflow (ENOBUFS): the loss is logged and flagged for
 * slot.c (kernel_events_lost()), whose STATUS re-checks recover.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <netlink/errno.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "kernel.h"
#include "loop.h"
#include "relay.h"

/*
 * Receive buffers: a STATUS reply of one device is one message of a few
 * KiB; events come in bursts (every device of a dying relay at once).
 */
#define CMD_RCVBUF	(256 * 1024)
#define EVENT_RCVBUF	(1024 * 1024)
/* Event messages read per wake-up before the loop serves others. */
#define EVENT_BATCH	64
/* RFC 6455 1001 "going away": the close of an orphaned device. */
#define WS_CLOSE_GOING_AWAY	1001

struct job {
	struct kernel_op op;		/* the worker's copy, results in it */
	struct kernel_op *caller;	/* NULL: abandoned by a cancelled fiber */
	void (*fn)(struct kernel_op *op, void *arg);	/* kernel_submit() */
	void *arg;
	char *backend;
	char *close_reason;
	u8 *preread;
	int fd;				/* our dup of op->fd, or -1 */
	bool close_dropped;		/* module refused the close code */
	char close_extack[128];		/* ... and said why */
	struct job *next;
};

struct job_queue {
	struct job *head, *tail;
};

static struct {
	bool ready;
	kernel_event_fn on_event;
	struct nbdws_nl cmd;		/* the worker's, once it runs */
	struct nbdws_nl events;		/* the loop's */
	struct loop_watch events_watch;
	int efd;			/* worker -> loop: jobs done */
	struct loop_watch efd_watch;
	pthread_t worker;
	bool worker_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job_queue todo;		/* under lock */
	struct job_queue done;		/* under lock */
	bool stopping;			/* under lock */
	bool events_lost;
	bool close_warned;
	/* kernel_submit() calls that could not even be queued (ENOMEM) */
	struct kernel_op *failed;
	struct loop_defer failed_defer;
} k = { .efd = -1 };

static const char *const cmd_name[] = {
	[KERNEL_CONNECT] = "CONNECT",
	[KERNEL_RECONFIGURE] = "RECONFIGURE",
	[KERNEL_DISCONNECT] = "DISCONNECT",
	[KERNEL_STATUS] = "STATUS",
};

static void queue_put(struct job_queue *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *queue_take_all(struct job_queue *q)
{
	struct job *j = q->head;

	q->head = NULL;
	q->tail = NULL;
	return j;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->backend);
	free(j->close_reason);
	free(j->preread);
	free(j);
}

/* A copy of @op that owns everything the worker will read; NULL: *rc. */
static struct job *job_new(const struct kernel_op *op, int *rc)
{
	bool conn = op->cmd == KERNEL_CONNECT || op->cmd == KERNEL_RECONFIGURE;
	struct job *j;

	*rc = -EINVAL;
	if ((unsigned int)op->cmd > KERNEL_STATUS ||
	    (conn && (op->fd < 0 || op->preread_len > NBDWS_PREREAD_MAX)))
		return NULL;
	*rc = -ENOMEM;
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->fd = -1;
	j->op = *op;
	j->op.backend = NULL;
	j->op.close_reason = NULL;
	j->op.preread = NULL;
	if (conn) {
		j->fd = fcntl(op->fd, F_DUPFD_CLOEXEC, 0);
		if (j->fd < 0) {
			*rc = -errno;
			goto fail;
		}
		if (op->preread_len) {
			j->preread = malloc(op->preread_len);
			if (!j->preread)
				goto fail;
			memcpy(j->preread, op->preread, op->preread_len);
		}
	}
	if (op->cmd == KERNEL_CONNECT && op->backend) {
		j->backend = strdup(op->backend);
		if (!j->backend)
			goto fail;
	}
	if (op->cmd == KERNEL_DISCONNECT && op->close_code && op->close_reason) {
		j->close_reason = strdup(op->close_reason);
		if (!j->close_reason)
			goto fail;
	}
	j->op.backend = j->backend;
	j->op.close_reason = j->close_reason;
	j->op.preread = j->preread;
	j->op.fd = j->fd;
	*rc = 0;
	return j;
fail:
	job_free(j);
	return NULL;
}

/* ---- the worker ---------------------------------------------------------- */

/* The one connection of a CONNECT or RECONFIGURE. */
static int put_conns(struct nl_msg *msg, const struct kernel_op *op, int64_t id)
{
	struct nlattr *conns = nbdws_nl_nest_start(msg, NBDWS_A_CONNS);
	/* The module refuses keepalive pings on a plain stream. */
	u32 ping = op->transport == NBDWS_TRANSPORT_PLAIN ? 0 : op->ping_ms;

	if (!conns || nbdws_nl_put_conn(msg, op->fd, op->transport,
					op->preread, op->preread_len, ping, id))
		return -ENOMEM;
	nla_nest_end(msg, conns);
	return 0;
}

static int put_u32_if(struct nl_msg *msg, int type, u32 v)
{
	return v ? nla_put_u32(msg, type, v) : 0;
}

static struct nl_msg *build_connect(const struct kernel_op *op)
{
	struct nl_msg *msg = nbdws_nl_msg(&k.cmd, NBDWS_CMD_CONNECT, 0);

	if (!msg)
		return NULL;
	if ((op->index >= 0 &&
	     nla_put_u32(msg, NBDWS_A_INDEX, (u32)op->index) < 0) ||
	    nla_put_u64(msg, NBDWS_A_SIZE_BYTES, op->size) < 0 ||
	    nla_put_u32(msg, NBDWS_A_BLOCK_SIZE_MIN, op->block_min) < 0 ||
	    put_u32_if(msg, NBDWS_A_BLOCK_SIZE_PREF, op->block_pref) < 0 ||
	    put_u32_if(msg, NBDWS_A_BLOCK_SIZE_MAX, op->block_max) < 0 ||
	    put_u32_if(msg, NBDWS_A_MAX_REQ_BYTES, op->max_req) < 0 ||
	    nla_put_u32(msg, NBDWS_A_SERVER_FLAGS, op->server_flags) < 0 ||
	    nla_put_u32(msg, NBDWS_A_CLIENT_FLAGS, op->client_flags) < 0 ||
	    put_u32_if(msg, NBDWS_A_TIMEOUT_MS, op->timeout_ms) < 0 ||
	    put_u32_if(msg, NBDWS_A_DEAD_TIMEOUT_MS, op->dead_timeout_ms) < 0 ||
	    put_u32_if(msg, NBDWS_A_QUEUE_DEPTH, op->queue_depth) < 0 ||
	    (op->backend &&
	     nla_put_string(msg, NBDWS_A_BACKEND, op->backend) < 0) ||
	    put_conns(msg, op, -1)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static int run_connect(struct kernel_op *op)
{
	struct nbdws_nl_connect_reply r = { 0 };
	struct nl_msg *msg = build_connect(op);
	int rc;

	if (!msg)
		return -ENOMEM;
	rc = nbdws_nl_request(&k.cmd, msg, nbdws_nl_connect_reply_cb, &r);
	if (rc)
		return rc;
	if (!r.has_index) {
		if (op->index < 0) {
			snprintf(k.cmd.extack, sizeof(k.cmd.extack),
				 "the kernel created a device but did not say which");
			return -EBADMSG;
		}
		r.index = (u32)op->index;
	}
	op->out_index = r.index;
	if (r.disk[0])
		snprintf(op->disk, sizeof(op->disk), "%s", r.disk);
	else
		snprintf(op->disk, sizeof(op->disk), NBDWS_DISK_NAME "%u",
			 r.index);
	return 0;
}

static int run_reconfigure(struct kernel_op *op)
{
	struct nl_msg *msg = nbdws_nl_msg(&k.cmd, NBDWS_CMD_RECONFIGURE, 0);

	/* Slot 0 by name: replace the dead connection, never add one. */
	if (!msg || nla_put_u32(msg, NBDWS_A_INDEX, (u32)op->index) < 0 ||
	    put_conns(msg, op, 0)) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	return nbdws_nl_request(&k.cmd, msg, NULL, NULL);
}

static int disconnect(struct kernel_op *op, bool with_close)
{
	struct nl_msg *msg = nbdws_nl_msg(&k.cmd, NBDWS_CMD_DISCONNECT, 0);

	if (!msg || nla_put_u32(msg, NBDWS_A_INDEX, (u32)op->index) < 0 ||
	    (with_close &&
	     (nla_put_u16(msg, NBDWS_A_WS_CLOSE_CODE, op->close_code) < 0 ||
	      (op->close_reason &&
	       nla_put_string(msg, NBDWS_A_WS_CLOSE_REASON,
			      op->close_reason) < 0)))) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	return nbdws_nl_request(&k.cmd, msg, NULL, NULL);
}

static int run_disconnect(struct job *j)
{
	struct kernel_op *op = &j->op;
	int rc;

	if (!op->close_code)
		return disconnect(op, false);
	rc = disconnect(op, true);
	/*
	 * A module without the close attributes rejects them (EINVAL):
	 * the device must go all the same, so ask again without.
	 */
	if (rc == -EINVAL) {
		j->close_dropped = true;
		relay_printable(k.cmd.extack, strlen(k.cmd.extack),
				j->close_extack, sizeof(j->close_extack));
		rc = disconnect(op, false);
	}
	return rc;
}

static void run_job(struct job *j)
{
	struct kernel_op *op = &j->op;
	int rc;

	k.cmd.extack[0] = '\0';
	switch (op->cmd) {
	case KERNEL_CONNECT:
		rc = run_connect(op);
		break;
	case KERNEL_RECONFIGURE:
		rc = op->index < 0 ? -EINVAL : run_reconfigure(op);
		break;
	case KERNEL_DISCONNECT:
		rc = op->index < 0 ? -EINVAL : run_disconnect(j);
		break;
	case KERNEL_STATUS:
		rc = op->index < 0 ? -EINVAL :
			nbdws_dev_status_get(&k.cmd, (u32)op->index,
					     &op->status);
		break;
	default:
		rc = -EINVAL;
		break;
	}
	op->rc = rc;
	relay_printable(k.cmd.extack, strlen(k.cmd.extack), op->extack,
			sizeof(op->extack));
	/* The kernel took its own reference to the socket, or refused it. */
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	op->fd = -1;
}

static void *worker(void *unused)
{
	const u64 one = 1;
	struct job *j;

	(void)unused;
	pthread_mutex_lock(&k.lock);
	for (;;) {
		while (!k.todo.head && !k.stopping)
			pthread_cond_wait(&k.wake, &k.lock);
		/* Stop only once every queued command has run. */
		j = k.todo.head;
		if (!j)
			break;
		k.todo.head = j->next;
		if (!k.todo.head)
			k.todo.tail = NULL;
		pthread_mutex_unlock(&k.lock);

		run_job(j);

		pthread_mutex_lock(&k.lock);
		queue_put(&k.done, j);
		/*
		 * Only EAGAIN can fail here, on a counter about to overflow:
		 * it is readable then, so the loop comes anyway.
		 */
		if (write(k.efd, &one, sizeof(one)) < 0)
			continue;
	}
	pthread_mutex_unlock(&k.lock);
	return NULL;
}

static void enqueue(struct job *j)
{
	pthread_mutex_lock(&k.lock);
	queue_put(&k.todo, j);
	pthread_cond_signal(&k.wake);
	pthread_mutex_unlock(&k.lock);
}

/* ---- completions, in the loop -------------------------------------------- */

/* Turn the finished CONNECT of a cancelled fiber into its DISCONNECT. */
static void undo_orphan(struct job *j)
{
	relay_log(RELAY_LOG_WARN,
		  "/dev/%s was created for a connection that is gone: disconnecting it",
		  j->op.disk);
	free(j->backend);
	j->backend = NULL;
	free(j->preread);
	j->preread = NULL;
	j->op = (struct kernel_op){
		.cmd = KERNEL_DISCONNECT,
		.index = (int)j->op.out_index,
		.close_code = WS_CLOSE_GOING_AWAY,
		.fd = -1,
	};
	enqueue(j);
}

static void complete(struct job *j)
{
	struct kernel_op *op = j->caller;
	void (*fn)(struct kernel_op *op, void *arg) = j->fn;
	void *arg = j->arg;

	/* Once: with an old module it would be every DISCONNECT. */
	if (j->close_dropped && !k.close_warned) {
		k.close_warned = true;
		relay_log(RELAY_LOG_WARN,
			  "DISCONNECT refused WebSocket close code %u%s%s: disconnected without it (an nbdws.ko older than the relay takes no close code)",
			  j->op.close_code, j->close_extack[0] ? ": " : "",
			  j->close_extack);
	}
	relay_log(RELAY_LOG_DEBUG, "kernel: %s index %d: %s%s%s",
		  cmd_name[j->op.cmd], j->op.cmd == KERNEL_CONNECT && !j->op.rc ?
		  (int)j->op.out_index : j->op.index,
		  j->op.rc ? strerror(-j->op.rc) : "ok",
		  j->op.extack[0] ? ": " : "", j->op.extack);
	if (!op) {
		if (j->op.cmd == KERNEL_CONNECT && !j->op.rc) {
			undo_orphan(j);
			return;
		}
		job_free(j);
		return;
	}
	op->rc = j->op.rc;
	memcpy(op->extack, j->op.extack, sizeof(op->extack));
	if (j->op.cmd == KERNEL_CONNECT) {
		op->out_index = j->op.out_index;
		memcpy(op->disk, j->op.disk, sizeof(op->disk));
	} else if (j->op.cmd == KERNEL_STATUS) {
		op->status = j->op.status;
	}
	job_free(j);
	if (fn)
		fn(op, arg);
	else
		fiber_cond_signal(&op->done);
}

static void on_done(void *unused, uint32_t events)
{
	struct job *j, *next;
	u64 n;

	(void)unused;
	(void)events;
	/* Non-blocking: EAGAIN when a previous round took the jobs already. */
	if (read(k.efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		relay_log(RELAY_LOG_ERR, "kernel: reading the eventfd: %s",
			  strerror(errno));
	pthread_mutex_lock(&k.lock);
	j = queue_take_all(&k.done);
	pthread_mutex_unlock(&k.lock);
	for (; j; j = next) {
		next = j->next;
		complete(j);
	}
}

/* kernel_submit() calls that failed before reaching the worker. */
static void on_failed(void *unused)
{
	struct kernel_op *op;

	(void)unused;
	while ((op = k.failed)) {
		k.failed = op->next;
		op->fn(op, op->arg);
	}
}

int kernel_call(struct kernel_op *op)
{
	struct job *j;
	int rc;

	op->extack[0] = '\0';
	op->fn = NULL;
	op->arg = NULL;
	fiber_cond_init(&op->done);
	j = job_new(op, &rc);
	if (!j) {
		op->rc = rc;
		return rc;
	}
	j->caller = op;
	enqueue(j);
	rc = fiber_cond_wait(&op->done, LLONG_MAX);
	if (rc) {
		/* Not signalled, so the job is still ours to abandon. */
		j->caller = NULL;
		op->rc = rc;
		return rc;
	}
	return op->rc;
}

void kernel_submit(struct kernel_op *op, void (*fn)(struct kernel_op *op,
						    void *arg), void *arg)
{
	struct job *j;
	int rc;

	op->extack[0] = '\0';
	op->fn = fn;
	op->arg = arg;
	j = job_new(op, &rc);
	if (!j) {
		op->rc = rc;
		op->next = k.failed;
		k.failed = op;
		loop_defer(&k.failed_defer, on_failed, NULL);
		return;
	}
	j->caller = op;
	j->fn = fn;
	j->arg = arg;
	enqueue(j);
}

/* ---- events, in the loop ------------------------------------------------- */

static int event_cb(struct nl_msg *msg, void *unused)
{
	struct nbdws_nl_event ev;
	struct kernel_event kev;

	(void)unused;
	if (nbdws_nl_event_from_msg(msg, &ev))
		return NL_OK;
	kev = (struct kernel_event){
		.index = ev.index,
		.event = ev.event,
		.reason = ev.has_reason ? ev.reason : NBDWS_REASON_NONE,
		.has_ws_close = ev.has_ws_close,
		.ws_close_code = ev.ws_close_code,
	};
	relay_printable(ev.ws_close_reason, strlen(ev.ws_close_reason),
			kev.ws_close_reason, sizeof(kev.ws_close_reason));
	if (k.on_event)
		k.on_event(&kev);
	return NL_OK;
}

static void on_events(void *unused, uint32_t events)
{
	unsigned int i;
	int rc;

	(void)unused;
	(void)events;
	for (i = 0; i < EVENT_BATCH; i++) {
		rc = nl_recvmsgs_default(k.events.sk);
		if (rc >= 0 || rc == -NLE_INTR)
			continue;
		if (rc == -NLE_AGAIN)
			return;
		/* libnl reports the socket's ENOBUFS overrun as NLE_NOMEM. */
		if (rc == -NLE_NOMEM) {
			k.events_lost = true;
			relay_log(RELAY_LOG_WARN,
				  "kernel events were lost (netlink receive buffer overrun)");
			continue;
		}
		relay_log(RELAY_LOG_ERR, "receiving kernel events failed: %s",
			  nl_geterror(rc));
		return;
	}
}

bool kernel_events_lost(void)
{
	bool lost = k.events_lost;

	k.events_lost = false;
	return lost;
}

/* ---- setup --------------------------------------------------------------- */

static int open_sockets(void)
{
	const char *path = relay_cfg ? relay_cfg->module_path : NULL;
	struct nbdws_err err;
	int rc;

	rc = nbdws_nl_open(&k.cmd, path, &err);
	if (rc == -NBDWS_NL_ENOMOD) {
		relay_log(RELAY_LOG_ERR,
			  "%s; install it (make install, DKMS) or give its path with --module or \"module\"",
			  err.msg);
		return rc;
	}
	if (rc) {
		relay_log(RELAY_LOG_ERR, "%s", err.msg);
		return rc;
	}
	rc = nbdws_nl_open(&k.events, NULL, &err);
	if (!rc)
		rc = nbdws_nl_subscribe(&k.events, &err);
	if (rc) {
		relay_log(RELAY_LOG_ERR, "kernel events: %s", err.msg);
		return rc;
	}
	rc = nl_socket_set_nonblocking(k.events.sk);
	if (rc < 0) {
		relay_log(RELAY_LOG_ERR, "kernel events: %s", nl_geterror(rc));
		return -EIO;
	}
	/* Best effort: the defaults work, bigger ones lose less. */
	if (nbdws_nl_set_rcvbuf(&k.cmd, CMD_RCVBUF) ||
	    nbdws_nl_set_rcvbuf(&k.events, EVENT_RCVBUF))
		relay_log(RELAY_LOG_DEBUG,
			  "kernel: cannot grow the netlink receive buffers");
	nl_socket_modify_cb(k.events.sk, NL_CB_VALID, NL_CB_CUSTOM, event_cb,
			    NULL);
	return 0;
}

/* The worker takes no signals: they go to the loop's thread. */
static int start_worker(void)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&k.worker, NULL, worker, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		relay_log(RELAY_LOG_ERR, "cannot start the netlink thread: %s",
			  strerror(rc));
		return -rc;
	}
	k.worker_started = true;
	return 0;
}

int kernel_init(kernel_event_fn on_event)
{
	int rc;

	k.on_event = on_event;
	k.efd = -1;
	pthread_mutex_init(&k.lock, NULL);
	pthread_cond_init(&k.wake, NULL);
	k.ready = true;
	rc = open_sockets();
	if (rc)
		goto fail;
	k.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (k.efd < 0) {
		rc = -errno;
		relay_log(RELAY_LOG_ERR, "eventfd: %s", strerror(errno));
		goto fail;
	}
	rc = loop_watch_add(&k.efd_watch, k.efd, EPOLLIN, on_done, NULL);
	if (!rc)
		rc = loop_watch_add(&k.events_watch, nbdws_nl_fd(&k.events),
				    EPOLLIN, on_events, NULL);
	if (rc) {
		relay_log(RELAY_LOG_ERR, "kernel: cannot watch its sockets: %s",
			  strerror(-rc));
		goto fail;
	}
	rc = start_worker();
	if (rc)
		goto fail;
	return 0;
fail:
	kernel_fini();
	return rc;
}

void kernel_fini(void)
{
	struct job *j, *next;

	if (!k.ready)
		return;
	loop_watch_del(&k.events_watch);
	loop_watch_del(&k.efd_watch);
	loop_defer_cancel(&k.failed_defer);
	k.failed = NULL;
	if (k.worker_started) {
		pthread_mutex_lock(&k.lock);
		k.stopping = true;
		pthread_cond_signal(&k.wake);
		pthread_mutex_unlock(&k.lock);
		pthread_join(k.worker, NULL);
		k.worker_started = false;
	}
	/*
	 * The loop is gone: callers are not told any more. A device created
	 * for a connection that no longer exists is still taken down, here
	 * on this thread, now that the worker's socket is free.
	 */
	for (j = queue_take_all(&k.done); j; j = next) {
		next = j->next;
		if (!j->caller && j->op.cmd == KERNEL_CONNECT && !j->op.rc) {
			j->op.index = (int)j->op.out_index;
			j->op.close_code = 0;
			disconnect(&j->op, false);
		}
		job_free(j);
	}
	for (j = queue_take_all(&k.todo); j; j = next) {
		next = j->next;
		job_free(j);
	}
	if (k.efd >= 0)
		close(k.efd);
	k.efd = -1;
	nbdws_nl_close(&k.events);
	nbdws_nl_close(&k.cmd);
	pthread_cond_destroy(&k.wake);
	pthread_mutex_destroy(&k.lock);
	k.stopping = false;
	k.ready = false;
}
