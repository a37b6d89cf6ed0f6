// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: the state hook (see hook.h).
 *
 * Every run waits in one FIFO; a run starts once no run for the same slot
 * is ahead of it, so runs for one slot are strictly ordered while slots
 * do not wait for each other. The child gets its own process group (a
 * hook that forks is killed whole at the timeout), default signal
 * dispositions and an empty signal mask (the relay blocks the signals it
 * reads through a signalfd, and ignores SIGPIPE), stdin on /dev/null and
 * a small environment of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber.h"
#include "hook.h"
#include "nbd_sock.h"
#include "relay.h"

struct hook_run {
	char action[8];		/* "start" / "stop" */
	const char *slot;	/* outlives the run (hook.h) */
	char device[64];
	unsigned int index;
	hook_done_fn done;
	void *arg;

	bool started;
	bool killed;
	pid_t pid;
	int pidfd;
	long long t0;
	struct loop_watch watch;
	struct loop_timer timer;
	struct hook_run *next;
};

static struct hook_run *runs, **runs_tail = &runs;
static unsigned int n_runs;
static struct loop_defer kick;

static void schedule(void *arg);

static u32 hook_timeout_ms(void)
{
	return relay_cfg && relay_cfg->hook_ms ? relay_cfg->hook_ms :
						 RELAY_DEF_HOOK_MS;
}

/* Take @r off the queue, tell its owner, free it, look for the next. */
static void finish(struct hook_run *r, int result)
{
	struct hook_run **pp;

	for (pp = &runs; *pp != r; pp = &(*pp)->next)
		;
	*pp = r->next;
	if (runs_tail == &r->next)
		runs_tail = pp;
	n_runs--;
	loop_watch_del(&r->watch);
	loop_timer_cancel(&r->timer);
	if (r->pidfd >= 0)
		close(r->pidfd);
	loop_defer(&kick, schedule, NULL);
	if (r->done)
		r->done(r->arg, result);
	free(r);
}

static void on_exit_fd(void *arg, uint32_t events)
{
	struct hook_run *r = arg;
	long long ms = nbd_now_ms() - r->t0;
	int status, result = -1;
	pid_t p;

	(void)events;
	p = waitpid(r->pid, &status, WNOHANG);
	if (p == 0)
		return;		/* not yet: the pidfd says so only at exit */
	if (p < 0) {
		relay_log(RELAY_LOG_ERR, "hook %s %s: waitpid: %s", r->action,
			  r->slot, strerror(errno));
	} else if (WIFEXITED(status)) {
		result = WEXITSTATUS(status) ? -1 : 0;
		relay_log(result ? RELAY_LOG_WARN : RELAY_LOG_INFO,
			  "hook %s %s: exit status %d after %lld ms",
			  r->action, r->slot, WEXITSTATUS(status), ms);
	} else if (r->killed) {
		relay_log(RELAY_LOG_WARN,
			  "hook %s %s: killed after %u ms (hook-timeout)",
			  r->action, r->slot, hook_timeout_ms());
	} else {
		relay_log(RELAY_LOG_WARN, "hook %s %s: killed by signal %d",
			  r->action, r->slot, WTERMSIG(status));
	}
	finish(r, result);
}

static void on_timeout(void *arg)
{
	struct hook_run *r = arg;

	r->killed = true;
	/* The whole group: whatever the hook started goes too. */
	if (kill(-r->pid, SIGKILL) < 0)
		kill(r->pid, SIGKILL);
}

static int spawn(struct hook_run *r)
{
	const char *path = getenv("PATH");
	char e_slot[128], e_dev[96], e_index[32], e_path[4096];
	char *argv[] = { relay_cfg->state_hook, r->action, (char *)r->slot,
			 NULL };
	char *envp[] = { e_slot, e_dev, e_index, e_path, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	int rc;

	snprintf(e_slot, sizeof(e_slot), "NBDWS_SLOT=%s", r->slot);
	snprintf(e_dev, sizeof(e_dev), "NBDWS_DEVICE=%s", r->device);
	snprintf(e_index, sizeof(e_index), "NBDWS_INDEX=%u", r->index);
	snprintf(e_path, sizeof(e_path), "PATH=%s",
		 path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");

	sigemptyset(&none);
	sigfillset(&dfl);
	sigdelset(&dfl, SIGKILL);
	sigdelset(&dfl, SIGSTOP);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
					 O_RDONLY, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	rc = posix_spawn(&r->pid, relay_cfg->state_hook, &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc) {
		relay_log(RELAY_LOG_ERR, "hook %s %s: cannot run %s: %s",
			  r->action, r->slot, relay_cfg->state_hook,
			  strerror(rc));
		return -rc;
	}
	r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
	if (r->pidfd < 0) {
		rc = -errno;
		relay_log(RELAY_LOG_ERR, "hook %s %s: pidfd_open: %s",
			  r->action, r->slot, strerror(-rc));
		kill(-r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		return rc;
	}
	rc = loop_watch_add(&r->watch, r->pidfd, EPOLLIN, on_exit_fd, r);
	if (rc) {
		kill(-r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		return rc;
	}
	r->t0 = nbd_now_ms();
	loop_timer_arm(&r->timer, r->t0 + hook_timeout_ms(), on_timeout, r);
	relay_log(RELAY_LOG_INFO, "hook %s %s: running %s (pid %d)",
		  r->action, r->slot, relay_cfg->state_hook, (int)r->pid);
	return 0;
}

static bool slot_busy_before(const struct hook_run *r)
{
	const struct hook_run *p;

	for (p = runs; p != r; p = p->next)
		if (!strcmp(p->slot, r->slot))
			return true;
	return false;
}

/* Start every run that no earlier run of its slot holds back. */
static void schedule(void *arg)
{
	struct hook_run *r;

	(void)arg;
again:
	for (r = runs; r; r = r->next) {
		if (r->started || slot_busy_before(r))
			continue;
		r->started = true;
		if (!relay_cfg || !relay_cfg->state_hook) {
			finish(r, 0);
			goto again;	/* @done may have queued more */
		}
		if (spawn(r)) {
			finish(r, -1);
			goto again;
		}
	}
}

int hook_run(const char *action, const char *slot_name, const char *device,
	     unsigned int index, hook_done_fn done, void *arg)
{
	struct hook_run *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	snprintf(r->action, sizeof(r->action), "%s", action);
	r->slot = slot_name;
	snprintf(r->device, sizeof(r->device), "%s", device ? device : "");
	r->index = index;
	r->done = done;
	r->arg = arg;
	r->pidfd = -1;
	*runs_tail = r;
	runs_tail = &r->next;
	n_runs++;
	/* Never from here: @done must not run before we return. */
	loop_defer(&kick, schedule, NULL);
	return 0;
}

struct hook_wait {
	struct fiber_cond cond;
	int result;
};

static void wait_done(void *arg, int result)
{
	struct hook_wait *w = arg;

	w->result = result;
	fiber_cond_signal(&w->cond);
}

/* The waiter is going away: its run goes on, unheard. */
static void forget(void *arg)
{
	struct hook_run *r;

	for (r = runs; r; r = r->next) {
		if (r->arg == arg && r->done == wait_done) {
			r->done = NULL;
			r->arg = NULL;
		}
	}
}

int hook_run_wait(const char *action, const char *slot_name,
		  const char *device, unsigned int index)
{
	struct hook_wait w = { .result = -1 };
	int rc;

	fiber_cond_init(&w.cond);
	rc = hook_run(action, slot_name, device, index, wait_done, &w);
	if (rc)
		return -1;
	rc = fiber_cond_wait(&w.cond, LLONG_MAX);
	if (rc) {
		forget(&w);
		return rc;
	}
	return w.result;
}

unsigned int hook_pending(void)
{
	return n_runs;
}
