// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for nbdws-relay's runtime: the event loop (timer order,
 * callbacks that delete what is being dispatched), fibers (resumption on
 * data, deadlines, cancellation, many at once, lib/'s blocking socket code
 * run cooperatively through nbd_sock_wait()'s hook) and the state hook
 * (environment, per-slot ordering, timeout kill) and the listeners
 * (TCP and unix, stale sockets, the connection limit). Built with
 * tools/nbdws-relay/{loop,fiber,hook,listen,log}.c linked in, under
 * ASan/UBSan; the sessions listen.c hands sockets to are stubs here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "fiber.h"
#include "hook.h"
#include "listen.h"
#include "loop.h"
#include "nbd_sock.h"
#include "relay.h"
#include "ws_io.h"

const struct relay_config *relay_cfg;
static struct relay_config test_cfg;

static void setup_loop(void)
{
	memset(&test_cfg, 0, sizeof(test_cfg));
	relay_cfg = &test_cfg;
	if (loop_init())
		abort();
	fiber_init();
}

/* Bound every test's loop: a hang is a failure, not a stuck run. */
static struct loop_timer watchdog;

static void on_watchdog(void *arg)
{
	(void)arg;
	loop_stop(-ETIMEDOUT);
}

static int run_loop(int max_ms)
{
	int rc;

	loop_timer_arm(&watchdog, nbd_now_ms() + max_ms, on_watchdog, NULL);
	rc = loop_run();
	loop_timer_cancel(&watchdog);
	return rc;
}

static void stop_cb(void *arg)
{
	(void)arg;
	loop_stop(0);
}

/* ---- the loop -------------------------------------------------------- */

static char order[32];
static size_t n_order;
static struct loop_timer t_a, t_b, t_c, t_d, t_e, t_stop;

static void note(void *arg)
{
	order[n_order++] = *(const char *)arg;
}

static void note_and_cancel_d(void *arg)
{
	note(arg);
	loop_timer_cancel(&t_d);
}

static int rearms;

static void note_and_rearm(void *arg)
{
	note(arg);
	/* Due at once again: must run in a later round, not loop here. */
	if (++rearms < 3)
		loop_timer_arm(&t_e, nbd_now_ms(), note_and_rearm, arg);
}

TEST(timers_fire_in_order)
{
	long long now;

	setup_loop();
	n_order = 0;
	now = nbd_now_ms();
	loop_timer_arm(&t_a, now + 30, note, "c");
	loop_timer_arm(&t_b, now + 10, note, "a");
	loop_timer_arm(&t_c, now + 20, note_and_cancel_d, "b");
	loop_timer_arm(&t_d, now + 25, note, "X");
	loop_timer_arm(&t_e, now + 40, note_and_rearm, "e");
	/* Re-arming moves a timer: "a" then goes after "c". */
	loop_timer_arm(&t_b, now + 35, note, "d");
	loop_timer_arm(&t_stop, now + 80, stop_cb, NULL);
	EXPECT_EQ(0, run_loop(2000));
	order[n_order] = '\0';
	EXPECT_STREQ("bcdeee", order);
	EXPECT_FALSE(t_d.armed);
	EXPECT_FALSE(t_e.armed);
	loop_fini();
}

TEST(equal_deadlines_run_in_arm_order_and_defers_first)
{
	static struct loop_defer d1, d2;
	long long when;

	setup_loop();
	n_order = 0;
	when = nbd_now_ms() + 5;
	loop_timer_arm(&t_a, when, note, "1");
	loop_timer_arm(&t_b, when, note, "2");
	loop_timer_arm(&t_c, when, note, "3");
	loop_timer_arm(&t_stop, when, stop_cb, NULL);
	loop_defer(&d1, note, "a");
	loop_defer(&d2, note, "X");
	loop_defer_cancel(&d2);
	EXPECT_EQ(0, run_loop(2000));
	order[n_order] = '\0';
	EXPECT_STREQ("a123", order);
	loop_fini();
}

struct two_watches {
	struct loop_watch *w[2];
	int fds[2][2];
	int calls[2];
};

static struct two_watches tw;

/* The first to run deletes and frees the other: ASan sees any later use. */
static void on_ready_delete_other(void *arg, uint32_t events)
{
	int me = (int)(long)arg, other = !me;

	(void)events;
	tw.calls[me]++;
	if (tw.w[other]) {
		loop_watch_del(tw.w[other]);
		free(tw.w[other]);
		tw.w[other] = NULL;
	}
	loop_watch_del(tw.w[me]);
	free(tw.w[me]);
	tw.w[me] = NULL;
	loop_timer_arm(&t_stop, nbd_now_ms() + 20, stop_cb, NULL);
}

TEST(callback_may_free_a_watch_still_in_the_batch)
{
	int i;

	setup_loop();
	memset(&tw, 0, sizeof(tw));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, tw.fds[i]));
		ASSERT_EQ(1, write(tw.fds[i][1], "x", 1));
		tw.w[i] = calloc(1, sizeof(*tw.w[i]));
		ASSERT_EQ(0, loop_watch_add(tw.w[i], tw.fds[i][0], EPOLLIN,
					    on_ready_delete_other,
					    (void *)(long)i));
	}
	EXPECT_EQ(0, run_loop(2000));
	/* Both were ready in one epoll_wait(); exactly one ran. */
	EXPECT_EQ(1, tw.calls[0] + tw.calls[1]);
	for (i = 0; i < 2; i++) {
		close(tw.fds[i][0]);
		close(tw.fds[i][1]);
	}
	loop_fini();
}

static int paused_calls;

static void count_and_pause(void *arg, uint32_t events)
{
	(void)events;
	paused_calls++;
	loop_watch_mod(arg, 0);
	loop_timer_arm(&t_stop, nbd_now_ms() + 50, stop_cb, NULL);
}

TEST(watch_with_no_events_is_not_reported)
{
	struct loop_watch w = { 0 };
	int sv[2];

	setup_loop();
	paused_calls = 0;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	/* Readable and hung up: level-triggered, would spin if reported. */
	ASSERT_EQ(1, write(sv[1], "x", 1));
	close(sv[1]);
	ASSERT_EQ(0, loop_watch_add(&w, sv[0], EPOLLIN, count_and_pause, &w));
	EXPECT_EQ(0, run_loop(2000));
	EXPECT_EQ(1, paused_calls);
	EXPECT_TRUE(w.active);
	loop_watch_del(&w);
	EXPECT_FALSE(w.active);
	loop_watch_del(&w);	/* idempotent */
	close(sv[0]);
	loop_fini();
}

/* ---- fibers ---------------------------------------------------------- */

struct reader {
	int fd;
	long long deadline;
	int rc;
	char buf[64];
	ssize_t got;
	bool done;
};

static void read_fiber(void *arg)
{
	struct reader *r = arg;

	r->rc = fiber_wait_fd(r->fd, POLLIN, r->deadline);
	if (!r->rc)
		r->got = read(r->fd, r->buf, sizeof(r->buf));
	r->done = true;
}

static int write_fd;

static void write_hello(void *arg)
{
	(void)arg;
	if (write(write_fd, "hello", 5) != 5)
		abort();
}

static void stop_when_done(void *arg)
{
	struct reader *r = arg;

	if (r->done)
		loop_stop(0);
	else
		loop_timer_arm(&t_stop, nbd_now_ms() + 5, stop_when_done, r);
}

TEST(fiber_resumes_with_data)
{
	struct reader r = { 0 };
	int sv[2];

	setup_loop();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	r.fd = sv[0];
	r.deadline = nbd_now_ms() + 5000;
	write_fd = sv[1];
	ASSERT_NE(NULL, fiber_start(read_fiber, &r));
	/* It is parked, not blocked: we are back before any data. */
	EXPECT_FALSE(r.done);
	EXPECT_EQ(NULL, fiber_self());
	loop_timer_arm(&t_a, nbd_now_ms() + 20, write_hello, NULL);
	loop_timer_arm(&t_stop, nbd_now_ms() + 1, stop_when_done, &r);
	EXPECT_EQ(0, run_loop(3000));
	EXPECT_TRUE(r.done);
	EXPECT_EQ(0, r.rc);
	ASSERT_EQ(5, r.got);
	EXPECT_EQ(0, memcmp(r.buf, "hello", 5));
	close(sv[0]);
	close(sv[1]);
	loop_fini();
}

TEST(fiber_wait_deadline_times_out)
{
	struct reader r = { 0 };
	long long t0;
	int sv[2];

	setup_loop();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	t0 = nbd_now_ms();
	r.fd = sv[0];
	r.deadline = t0 + 60;
	ASSERT_NE(NULL, fiber_start(read_fiber, &r));
	loop_timer_arm(&t_stop, nbd_now_ms() + 1, stop_when_done, &r);
	EXPECT_EQ(0, run_loop(3000));
	EXPECT_TRUE(r.done);
	EXPECT_EQ(-ETIMEDOUT, r.rc);
	EXPECT_GE(nbd_now_ms() - t0, 60);
	EXPECT_LT(nbd_now_ms() - t0, 1000);
	close(sv[0]);
	close(sv[1]);
	loop_fini();
}

struct canceller {
	int fd;
	int rc_wait, rc_again, rc_sleep, rc_cond;
	bool done;
};

static void cancelled_fiber(void *arg)
{
	struct canceller *c = arg;
	struct fiber_cond cond;

	fiber_cond_init(&cond);
	c->rc_wait = fiber_wait_fd(c->fd, POLLIN, LLONG_MAX);
	/* Every later wait too, even on a ready fd. */
	c->rc_again = fiber_wait_fd(c->fd, POLLOUT, nbd_now_ms() + 5000);
	c->rc_sleep = fiber_sleep_until(nbd_now_ms() + 5000);
	c->rc_cond = fiber_cond_wait(&cond, nbd_now_ms() + 5000);
	c->done = true;
}

static struct fiber *to_cancel;

static void cancel_it(void *arg)
{
	(void)arg;
	fiber_cancel(to_cancel);
	fiber_cancel(to_cancel);	/* twice is harmless */
}

static void stop_when_cancelled(void *arg)
{
	struct canceller *c = arg;

	if (c->done)
		loop_stop(0);
	else
		loop_timer_arm(&t_stop, nbd_now_ms() + 5, stop_when_cancelled,
			       c);
}

TEST(cancel_ends_waits_with_ecanceled)
{
	struct canceller c = { 0 };
	long long t0 = nbd_now_ms();
	int sv[2];

	setup_loop();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	c.fd = sv[0];
	to_cancel = fiber_start(cancelled_fiber, &c);
	ASSERT_NE(NULL, to_cancel);
	loop_timer_arm(&t_a, nbd_now_ms() + 20, cancel_it, NULL);
	loop_timer_arm(&t_stop, nbd_now_ms() + 1, stop_when_cancelled, &c);
	EXPECT_EQ(0, run_loop(3000));
	EXPECT_TRUE(c.done);
	EXPECT_EQ(-ECANCELED, c.rc_wait);
	EXPECT_EQ(-ECANCELED, c.rc_again);
	EXPECT_EQ(-ECANCELED, c.rc_sleep);
	EXPECT_EQ(-ECANCELED, c.rc_cond);
	EXPECT_LT(nbd_now_ms() - t0, 1000);
	close(sv[0]);
	close(sv[1]);
	loop_fini();
}

struct condwait {
	struct fiber_cond cond;
	long long deadline;
	int rc;
	bool done;
};

static void cond_fiber(void *arg)
{
	struct condwait *w = arg;

	w->rc = fiber_cond_wait(&w->cond, w->deadline);
	w->done = true;
}

static void signal_it(void *arg)
{
	fiber_cond_signal(arg);
}

static void stop_when_both(void *arg)
{
	struct condwait *w = arg;

	if (w[0].done && w[1].done)
		loop_stop(0);
	else
		loop_timer_arm(&t_stop, nbd_now_ms() + 5, stop_when_both, w);
}

TEST(cond_signal_wakes_and_deadline_times_out)
{
	struct condwait w[2];

	setup_loop();
	memset(w, 0, sizeof(w));
	fiber_cond_init(&w[0].cond);
	fiber_cond_init(&w[1].cond);
	w[0].deadline = nbd_now_ms() + 5000;
	w[1].deadline = nbd_now_ms() + 40;
	ASSERT_NE(NULL, fiber_start(cond_fiber, &w[0]));
	ASSERT_NE(NULL, fiber_start(cond_fiber, &w[1]));
	loop_timer_arm(&t_a, nbd_now_ms() + 20, signal_it, &w[0].cond);
	loop_timer_arm(&t_stop, nbd_now_ms() + 1, stop_when_both, w);
	EXPECT_EQ(0, run_loop(3000));
	EXPECT_EQ(0, w[0].rc);
	EXPECT_EQ(-ETIMEDOUT, w[1].rc);
	EXPECT_EQ(NULL, w[0].cond.waiter);
	loop_fini();
}

/* 200 fibers parked at once, each then echoing what it is sent. */
#define N_MANY	200

struct echo {
	int fd;
	int rc;
	bool done;
};

static unsigned int echoes_done;

static void echo_fiber(void *arg)
{
	struct echo *e = arg;
	char buf[32];
	ssize_t n;

	e->rc = fiber_wait_fd(e->fd, POLLIN, nbd_now_ms() + 5000);
	if (!e->rc) {
		/* A deep-ish frame on the fiber's stack, as lib/ has. */
		char big[16384];

		memset(big, 0xa5, sizeof(big));
		n = read(e->fd, buf, sizeof(buf));
		if (n > 0 && big[sizeof(big) - 1] == (char)0xa5)
			e->rc = nbd_sock_send_all(e->fd, buf, (size_t)n,
						  nbd_now_ms() + 5000);
		else
			e->rc = -EIO;
	}
	e->done = true;
	if (++echoes_done == N_MANY)
		loop_stop(0);
}

TEST(two_hundred_fibers)
{
	static struct echo e[N_MANY];
	static int sv[N_MANY][2];
	unsigned int i;

	setup_loop();
	echoes_done = 0;
	for (i = 0; i < N_MANY; i++) {
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					0, sv[i]));
		e[i].fd = sv[i][0];
		e[i].done = false;
		ASSERT_NE(NULL, fiber_start(echo_fiber, &e[i]));
	}
	EXPECT_EQ(0, echoes_done);
	for (i = 0; i < N_MANY; i++) {
		char msg[16];
		int len = snprintf(msg, sizeof(msg), "n%u", i);

		ASSERT_EQ(len, write(sv[i][1], msg, (size_t)len));
	}
	EXPECT_EQ(0, run_loop(10000));
	EXPECT_EQ(N_MANY, echoes_done);
	for (i = 0; i < N_MANY; i++) {
		char msg[16], back[16] = "";
		int len = snprintf(msg, sizeof(msg), "n%u", i);

		EXPECT_EQ(0, e[i].rc);
		EXPECT_EQ(len, read(sv[i][1], back, sizeof(back)));
		EXPECT_EQ(0, memcmp(msg, back, (size_t)len));
		close(sv[i][0]);
		close(sv[i][1]);
	}
	loop_fini();
}

/*
 * lib/'s own blocking code in two fibers over one socketpair. The
 * reader starts first and must park (no data yet); the writer sleeps
 * before it sends. Were nbd_sock_wait() still poll(), the reader would
 * hold the only thread until its deadline and the exchange would fail.
 */
#define PINGPONG_ROUNDS	500

struct pp {
	int fd;
	bool first;		/* sends first */
	int rc;
	unsigned int rounds;
};

static unsigned int pp_done;

static int pp_read_exact(struct ws_io *io, char *buf, size_t len)
{
	while (len) {
		ssize_t n = io->read(io->ctx, buf, len);

		if (n <= 0)
			return n ? (int)n : -ECONNRESET;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void pp_fiber(void *arg)
{
	struct pp *p = arg;
	struct ws_fd_io fio;
	struct ws_io io;
	unsigned int i;
	char out[8], in[8];

	ws_fd_io_init(&io, &fio, p->fd, 3000);
	if (p->first)
		p->rc = fiber_sleep_until(nbd_now_ms() + 30);
	for (i = 0; i < PINGPONG_ROUNDS && !p->rc; i++) {
		snprintf(out, sizeof(out), "%c%06u", p->first ? 'A' : 'B', i);
		if (p->first) {
			p->rc = io.write(io.ctx, out, sizeof(out));
			if (!p->rc)
				p->rc = pp_read_exact(&io, in, sizeof(in));
		} else {
			p->rc = pp_read_exact(&io, in, sizeof(in));
			if (!p->rc)
				p->rc = io.write(io.ctx, out, sizeof(out));
		}
		/* What the other sent in this round, exactly. */
		if (!p->rc && (in[0] != (p->first ? 'B' : 'A') ||
			       strtoul(in + 1, NULL, 10) != i))
			p->rc = -EPROTO;
		if (!p->rc)
			p->rounds++;
	}
	if (++pp_done == 2)
		loop_stop(0);
}

TEST(lib_io_in_fibers_does_not_block_the_loop)
{
	struct pp a = { .first = true }, b = { .first = false };
	long long t0;
	int sv[2];

	setup_loop();
	pp_done = 0;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	a.fd = sv[0];
	b.fd = sv[1];
	t0 = nbd_now_ms();
	ASSERT_NE(NULL, fiber_start(pp_fiber, &b));
	/* b waits in lib's ws_fd_io read: parked, so we are back at once. */
	EXPECT_LT(nbd_now_ms() - t0, 500);
	EXPECT_EQ(0, b.rounds);
	ASSERT_NE(NULL, fiber_start(pp_fiber, &a));
	EXPECT_EQ(0, run_loop(10000));
	EXPECT_EQ(0, a.rc);
	EXPECT_EQ(0, b.rc);
	EXPECT_EQ(PINGPONG_ROUNDS, a.rounds);
	EXPECT_EQ(PINGPONG_ROUNDS, b.rounds);
	close(sv[0]);
	close(sv[1]);
	loop_fini();
}

TEST(wait_outside_a_fiber_polls)
{
	long long t0;
	int sv[2];

	setup_loop();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	t0 = nbd_now_ms();
	/* Through the hook, as lib/ calls it: no fiber, so poll(). */
	EXPECT_EQ(-ETIMEDOUT, nbd_sock_wait(sv[0], POLLIN, t0 + 50));
	EXPECT_GE(nbd_now_ms() - t0, 50);
	ASSERT_EQ(1, write(sv[1], "x", 1));
	EXPECT_EQ(0, nbd_sock_wait(sv[0], POLLIN, nbd_now_ms() + 1000));
	EXPECT_EQ(0, fiber_wait_fd(sv[0], POLLIN, nbd_now_ms() + 1000));
	close(sv[0]);
	close(sv[1]);
	loop_fini();
}

/* ---- the state hook -------------------------------------------------- */

struct hook_env {
	char dir[64];
	char script[128];
	char log[128];
};

/* A hook script that logs begin/end of every run and its environment. */
static void make_hook(struct hook_env *h, const char *body)
{
	FILE *f;

	snprintf(h->dir, sizeof(h->dir), "/tmp/relay_hook.XXXXXX");
	if (!mkdtemp(h->dir))
		abort();
	snprintf(h->script, sizeof(h->script), "%s/hook", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/log", h->dir);
	f = fopen(h->script, "w");
	if (!f)
		abort();
	fprintf(f, "#!/bin/sh\nLOG=%s\n%s\n", h->log, body);
	fclose(f);
	chmod(h->script, 0755);
	test_cfg.state_hook = h->script;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static void drop_hook(struct hook_env *h)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", h->dir);
	if (system(cmd))
		return;
}

struct hook_result {
	char tag;
	int result;
};

static struct hook_result results[8];
static unsigned int n_results, expect_results;

static void hook_done(void *arg, int result)
{
	results[n_results].tag = *(const char *)arg;
	results[n_results].result = result;
	if (++n_results == expect_results)
		loop_stop(0);
}

static int result_of(char tag, unsigned int *pos)
{
	unsigned int i;

	for (i = 0; i < n_results; i++) {
		if (results[i].tag == tag) {
			*pos = i;
			return results[i].result;
		}
	}
	*pos = UINT_MAX;
	return INT_MIN;
}

TEST(hook_runs_serialise_per_slot)
{
	struct hook_env h;
	const char *log, *p_sa_end, *p_stop_a, *p_sb;
	unsigned int pos1, pos2, pos3;

	setup_loop();
	/* Not for the hook: it gets NBDWS_* and PATH only. */
	setenv("RELAY_TEST_LEAK", "leaked", 1);
	make_hook(&h,
		  "echo \"begin $1 $2 $NBDWS_SLOT $NBDWS_DEVICE $NBDWS_INDEX ${RELAY_TEST_LEAK:-clean}\" >> $LOG\n"
		  "sleep 0.3\n"
		  "echo \"end $1 $2\" >> $LOG\n"
		  "[ \"$2\" = b ] && exit 3\nexit 0");
	n_results = 0;
	expect_results = 3;
	ASSERT_EQ(0, hook_run("start", "a", "/dev/nbdws0", 0, hook_done, "1"));
	ASSERT_EQ(0, hook_run("stop", "a", "/dev/nbdws0", 0, hook_done, "2"));
	ASSERT_EQ(0, hook_run("start", "b", "/dev/nbdws7", 7, hook_done, "3"));
	EXPECT_EQ(3, hook_pending());
	/* Nothing ran from inside hook_run(). */
	EXPECT_EQ(0, n_results);
	EXPECT_EQ(0, run_loop(10000));
	ASSERT_EQ(3, n_results);
	EXPECT_EQ(0, hook_pending());
	log = slurp(h.log);
	ASSERT_NE(NULL, strstr(log, "begin start a a /dev/nbdws0 0 clean\n"));
	p_sa_end = strstr(log, "end start a\n");
	p_stop_a = strstr(log, "begin stop a a /dev/nbdws0 0 clean\n");
	p_sb = strstr(log, "begin start b b /dev/nbdws7 7 clean\n");
	ASSERT_NE(NULL, p_sa_end);
	ASSERT_NE(NULL, p_stop_a);
	ASSERT_NE(NULL, p_sb);
	/* Slot a: start ran to its end before stop began. */
	EXPECT_LT(p_sa_end, p_stop_a);
	/* Slot b did not wait for slot a. */
	EXPECT_LT(p_sb, p_sa_end);
	/* Exit 0 is success, b's exit 3 a failure; a's in order. */
	EXPECT_EQ(0, result_of('1', &pos1));
	EXPECT_EQ(0, result_of('2', &pos2));
	EXPECT_EQ(-1, result_of('3', &pos3));
	EXPECT_LT(pos1, pos2);
	unsetenv("RELAY_TEST_LEAK");
	drop_hook(&h);
	loop_fini();
}

TEST(hook_past_timeout_is_killed_with_its_children)
{
	struct hook_env h;
	long long t0;
	char path[64];
	int child;

	setup_loop();
	test_cfg.hook_ms = 300;
	make_hook(&h, "sleep 20 &\necho $! > $LOG\nwait");
	n_results = 0;
	expect_results = 1;
	t0 = nbd_now_ms();
	ASSERT_EQ(0, hook_run("start", "slow", "/dev/nbdws1", 1, hook_done,
			      "k"));
	EXPECT_EQ(0, run_loop(10000));
	ASSERT_EQ(1, n_results);
	EXPECT_EQ(-1, results[0].result);
	EXPECT_GE(nbd_now_ms() - t0, 300);
	EXPECT_LT(nbd_now_ms() - t0, 3000);
	/* The hook's own child went with it (gone, or a zombie not yet reaped). */
	child = atoi(slurp(h.log));
	ASSERT_GT(child, 0);
	snprintf(path, sizeof(path), "/proc/%d/stat", child);
	usleep(100 * 1000);
	{
		char *stat = slurp(path);
		char *rp = strrchr(stat, ')');

		EXPECT_TRUE(!*stat || (rp && rp[2] == 'Z'));
	}
	drop_hook(&h);
	loop_fini();
}

TEST(no_hook_and_missing_hook)
{
	unsigned int pos;

	setup_loop();
	/* No hook configured: success, but still from the loop. */
	test_cfg.state_hook = NULL;
	n_results = 0;
	expect_results = 1;
	ASSERT_EQ(0, hook_run("start", "a", "/dev/nbdws0", 0, hook_done, "n"));
	EXPECT_EQ(0, n_results);
	EXPECT_EQ(0, run_loop(2000));
	EXPECT_EQ(0, result_of('n', &pos));

	/* A hook that cannot run fails, and the slot's next run still goes. */
	test_cfg.state_hook = "/nonexistent/hook";
	n_results = 0;
	expect_results = 2;
	ASSERT_EQ(0, hook_run("start", "a", "/dev/nbdws0", 0, hook_done, "m"));
	ASSERT_EQ(0, hook_run("stop", "a", "/dev/nbdws0", 0, hook_done, "o"));
	EXPECT_EQ(0, run_loop(2000));
	EXPECT_EQ(-1, result_of('m', &pos));
	EXPECT_EQ(0, pos);
	EXPECT_EQ(-1, result_of('o', &pos));
	EXPECT_EQ(1, pos);
	EXPECT_EQ(0, hook_pending());
	loop_fini();
}

struct hw {
	const char *action;
	int rc;
	bool done;
};

static void hook_wait_fiber(void *arg)
{
	struct hw *w = arg;

	w->rc = hook_run_wait(w->action, "w", "/dev/nbdws2", 2);
	w->done = true;
}

static struct fiber *hw_fiber;

static void stop_when_hooks_done(void *arg)
{
	struct hw *w = arg;

	if (w[0].done && w[1].done && !hook_pending())
		loop_stop(0);
	else
		loop_timer_arm(&t_stop, nbd_now_ms() + 10, stop_when_hooks_done,
			       w);
}

static void cancel_hw(void *arg)
{
	(void)arg;
	fiber_cancel(hw_fiber);
}

TEST(hook_run_wait_in_fibers)
{
	struct hw w[2] = { { .action = "start" }, { .action = "stop" } };
	struct hook_env h;

	setup_loop();
	make_hook(&h, "sleep 0.2\n[ \"$1\" = start ]");
	ASSERT_NE(NULL, fiber_start(hook_wait_fiber, &w[0]));
	hw_fiber = fiber_start(hook_wait_fiber, &w[1]);
	ASSERT_NE(NULL, hw_fiber);
	/* The second waiter goes away; its run still happens, unheard. */
	loop_timer_arm(&t_a, nbd_now_ms() + 50, cancel_hw, NULL);
	loop_timer_arm(&t_stop, nbd_now_ms() + 10, stop_when_hooks_done, w);
	EXPECT_EQ(0, run_loop(10000));
	EXPECT_EQ(0, w[0].rc);
	EXPECT_EQ(-ECANCELED, w[1].rc);
	EXPECT_EQ(0, hook_pending());
	drop_hook(&h);
	loop_fini();
}

/* ---- listeners ------------------------------------------------------ */

/* session.h, as listen.c sees it: record what was accepted. */
#define MAX_ACCEPTED	8

static int accepted[MAX_ACCEPTED];
static bool accepted_tls[MAX_ACCEPTED];
static int accepted_family[MAX_ACCEPTED];
static unsigned int n_accepted;

void session_start(int fd, const struct sockaddr *peer, socklen_t peer_len,
		   bool tls)
{
	(void)peer_len;
	if (n_accepted == MAX_ACCEPTED)
		abort();
	accepted_family[n_accepted] = peer->sa_family;
	accepted_tls[n_accepted] = tls;
	accepted[n_accepted++] = fd;
}

unsigned int session_handshakes(void)
{
	return 0;
}

/* A port nobody listens on right now. */
static char *free_port(char *buf, size_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		abort();
	close(fd);
	snprintf(buf, size, "%u", ntohs(sa.sin_port));
	return buf;
}

static int dial_tcp(const char *port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)atoi(port)),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	return fd;
}

static int dial_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	return fd;
}

static void run_for(int ms)
{
	loop_timer_arm(&t_stop, nbd_now_ms() + ms, stop_cb, NULL);
	if (loop_run())
		abort();
}

TEST(listeners_accept_up_to_the_limit)
{
	char port[16], dir[64], path[96], cert[] = "cert.pem";
	struct relay_listen *l = test_cfg.listen;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int stale, c[4], nodelay = 0;
	socklen_t len = sizeof(nodelay);
	struct stat st;
	unsigned int i;

	setup_loop();
	n_accepted = 0;
	snprintf(dir, sizeof(dir), "/tmp/relay_listen.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/relay.sock", dir);
	/* A socket left behind by a relay that died: replaced. */
	stale = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ASSERT_EQ(0, bind(stale, (struct sockaddr *)&sa, sizeof(sa)));
	close(stale);

	l[0] = (struct relay_listen){ .kind = RELAY_LISTEN_TCP,
		.host = "127.0.0.1", .port = free_port(port, sizeof(port)),
		.spec = "127.0.0.1:P" };
	l[1] = (struct relay_listen){ .kind = RELAY_LISTEN_UNIX,
		.path = path, .spec = "unix:PATH" };
	test_cfg.n_listen = 2;
	test_cfg.max_conns = 3;
	test_cfg.tls.cert_file = cert;
	ASSERT_EQ(0, listen_init());
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(0660, st.st_mode & 0777);

	c[0] = dial_tcp(port);
	c[1] = dial_unix(path);
	c[2] = dial_tcp(port);
	c[3] = dial_tcp(port);	/* the kernel's backlog holds it */
	for (i = 0; i < 4; i++)
		ASSERT_LE(0, c[i]);
	run_for(150);
	ASSERT_EQ(3, n_accepted);
	EXPECT_EQ(3, listen_conns());
	/* TLS is for TCP listeners only; TCP sockets get TCP_NODELAY. */
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(accepted_family[i] == AF_INET, accepted_tls[i]);
		if (accepted_family[i] == AF_INET) {
			ASSERT_EQ(0, getsockopt(accepted[i], IPPROTO_TCP,
						TCP_NODELAY, &nodelay, &len));
			EXPECT_NE(0, nodelay);
		}
	}
	/* One closes: the fourth is taken. */
	close(accepted[0]);
	listen_conn_closed();
	EXPECT_EQ(2, listen_conns());
	run_for(150);
	EXPECT_EQ(4, n_accepted);
	EXPECT_EQ(3, listen_conns());

	listen_fini();
	/* Our socket file goes with us; nobody listens any more. */
	EXPECT_NE(0, stat(path, &st));
	EXPECT_GT(0, dial_tcp(port));
	for (i = 0; i < 4; i++)
		close(c[i]);
	for (i = 1; i < n_accepted; i++)
		close(accepted[i]);
	rmdir(dir);
	test_cfg.tls.cert_file = NULL;
	loop_fini();
}

TEST(listeners_refuse_what_they_must_not_take)
{
	char port[16], dir[64], path[96];
	struct relay_listen *l = test_cfg.listen;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct stat st;
	int busy, fd;

	setup_loop();
	snprintf(dir, sizeof(dir), "/tmp/relay_listen.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/not-a-socket", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ASSERT_LE(0, fd);
	close(fd);

	/* A file that is not a socket is never unlinked. */
	l[0] = (struct relay_listen){ .kind = RELAY_LISTEN_UNIX,
		.path = path, .spec = "unix:FILE" };
	test_cfg.n_listen = 1;
	EXPECT_EQ(-EEXIST, listen_init());
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));

	/* A port in use is an error, and nothing stays bound. */
	busy = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(free_port(port, sizeof(port))));
	ASSERT_EQ(0, bind(busy, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, listen(busy, 1));
	l[0] = (struct relay_listen){ .kind = RELAY_LISTEN_UNIX,
		.path = path, .spec = "unix:FILE" };
	snprintf(path + strlen(dir), sizeof(path) - strlen(dir), "/ok.sock");
	l[1] = (struct relay_listen){ .kind = RELAY_LISTEN_TCP,
		.host = "127.0.0.1", .port = port, .spec = "127.0.0.1:P" };
	test_cfg.n_listen = 2;
	EXPECT_EQ(-EADDRINUSE, listen_init());
	/* The unix listener bound before the failure was undone. */
	EXPECT_NE(0, stat(path, &st));
	close(busy);
	snprintf(path, sizeof(path), "%s/not-a-socket", dir);
	unlink(path);
	rmdir(dir);
	loop_fini();
}

TEST_HARNESS_MAIN
