// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: start, run the loop, stop (relay.h has the overview).
 *
 * Start order: configuration, then the signals the loop reads are blocked
 * before anything can start a thread (kernel.c's worker inherits the mask
 * and so never takes them), then loop, fibers, kernel, sessions, slots and
 * last the listeners, so that nothing is accepted before every part is
 * ready. SIGTERM/SIGINT stop gracefully: listeners close, handshakes are
 * cancelled, every device the relay made is disconnected and its stop
 * hook run; a second signal exits at once. SIGHUP reloads the tokens.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "fiber.h"
#include "hook.h"
#include "kernel.h"
#include "listen.h"
#include "loop.h"
#include "nbd_sock.h"
#include "relay.h"
#include "session.h"
#include "slot.h"

/* Shutdown waits this often for the last hooks to end. */
#define HOOK_DRAIN_POLL_MS	50

const struct relay_config *relay_cfg;

static int sigfd = -1;
static struct loop_watch sig_watch;
static struct loop_timer drain_timer;
static bool shutting_down;

static void drain_hooks(void *arg)
{
	(void)arg;
	if (hook_pending()) {
		loop_timer_arm(&drain_timer, nbd_now_ms() + HOOK_DRAIN_POLL_MS,
			       drain_hooks, NULL);
		return;
	}
	loop_stop(0);
}

/* slots_shutdown() is done: devices gone; let their stop hooks finish. */
static void shutdown_done(void)
{
	drain_hooks(NULL);
}

static void on_signal(void *arg, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)arg;
	(void)events;
	while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			relay_log(RELAY_LOG_INFO, "SIGHUP: reloading tokens");
			/* auth.c logs why a reload failed; the old set stays. */
			(void)auth_reload();
			break;
		case SIGTERM:
		case SIGINT:
			if (shutting_down) {
				relay_log(RELAY_LOG_WARN,
					  "SIG%s again: exiting now, devices left as they are",
					  sigabbrev_np((int)si.ssi_signo));
				_exit(1);
			}
			shutting_down = true;
			relay_log(RELAY_LOG_INFO, "SIG%s: shutting down",
				  sigabbrev_np((int)si.ssi_signo));
			listen_fini();
			session_cancel_all();
			slots_shutdown(shutdown_done);
			break;
		}
	}
}

static int signals_init(void)
{
	sigset_t set;

	/* A client that goes away mid-write is an error return, not death. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return sigfd < 0 ? -errno : 0;
}

static int run(void)
{
	int rc;

	rc = signals_init();
	if (rc) {
		relay_log(RELAY_LOG_ERR, "signals: %s", strerror(-rc));
		return 1;
	}
	rc = loop_init();
	if (!rc)
		rc = loop_watch_add(&sig_watch, sigfd, EPOLLIN, on_signal, NULL);
	if (rc) {
		relay_log(RELAY_LOG_ERR, "epoll: %s", strerror(-rc));
		return 1;
	}
	fiber_init();
	/* Each of these logs what failed and what to do about it. */
	if (kernel_init(slots_on_event))
		goto out_loop;
	if (session_init())
		goto out_kernel;
	if (slots_init())
		goto out_session;
	if (listen_init())
		goto out_slots;
	relay_log(RELAY_LOG_INFO, "ready");

	rc = loop_run();
	if (rc < 0)
		relay_log(RELAY_LOG_ERR, "event loop: %s", strerror(-rc));
	listen_fini();
	slots_fini();
	session_fini();
	kernel_fini();
	loop_watch_del(&sig_watch);
	loop_fini();
	return rc ? 1 : 0;

out_slots:
	slots_fini();
out_session:
	session_fini();
out_kernel:
	kernel_fini();
out_loop:
	loop_watch_del(&sig_watch);
	loop_fini();
	return 1;
}

int main(int argc, char **argv)
{
	static struct relay_config cfg;
	enum config_action action = CONFIG_RUN;
	struct nbdws_err err = { .msg = "" };
	int rc;

	rc = config_load(&cfg, argc, argv, &action, &err);
	if (rc) {
		if (err.msg[0])
			relay_log(RELAY_LOG_ERR, "%s", err.msg);
		return rc == 2 ? 2 : 1;
	}
	relay_cfg = &cfg;
	switch (action) {
	case CONFIG_HELP:
		rc = 0;
		break;
	case CONFIG_METADATA:
		rc = config_print_metadata(&cfg, stdout) ? 1 : 0;
		break;
	case CONFIG_RUN:
		if (cfg.insecure)
			relay_log(RELAY_LOG_WARN,
				  "authentication is off for every slot (--insecure)");
		rc = run();
		break;
	}
	relay_cfg = NULL;
	config_free(&cfg);
	if (sigfd >= 0)
		close(sigfd);
	return rc;
}
