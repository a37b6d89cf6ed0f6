// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl connect --persist: keep a device's connections alive.
 *
 * Events say when a connection died, but multicast can overflow and lose
 * them, so the kernel's STATUS is the truth: every event for our device
 * and a periodic timer trigger a STATUS query, and every connection slot
 * reported dead is re-established (fresh handshake, same export) and
 * handed over with RECONFIGURE naming that slot. Failed attempts back off
 * exponentially, and while the device holds requests each attempt gets at
 * most half its dead timeout (backoff.h). The loop ends when the device
 * disappears.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "backoff.h"
#include "connect.h"
#include "conns.h"
#include "genl.h"
#include "nbd_sock.h"
#include "nbdctl.h"

/* How often STATUS is checked when no event arrives. */
#define STATUS_PERIOD_MS	5000

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

struct persist_state {
	const struct persist_target *t;
	bool check;		/* an event asks for a STATUS check */
	bool gone;		/* DISCONNECTED event for our device */
};

static int event_cb(struct nl_msg *msg, void *arg)
{
	struct persist_state *st = arg;
	struct nbdws_nl_event ev;

	if (nbdws_nl_event_from_msg(msg, &ev) || ev.index != st->t->index)
		return NL_OK;
	if (ev.event == NBDWS_EVENT_DISCONNECTED)
		st->gone = true;
	else
		st->check = true;
	return NL_OK;
}

/*
 * Re-establish slot @id, dialing for at most @timeout_ms; 0 on success,
 * -1 to retry later.
 */
static int revive(struct nbdws_nl *req, const struct persist_target *t,
		  uint32_t id, int timeout_ms)
{
	struct nbd_export_info info;
	struct nbdctl_conn c;
	struct nlattr *conns;
	struct nl_msg *msg;
	int rc;

	if (conns_open(t->conn, 1, timeout_ms, &c, &info))
		return -1;
	rc = conns_check_same(&info, t->size, t->flags, 1);
	nbd_export_info_free(&info);
	if (rc) {
		conns_close(&c, 1);
		return -1;
	}
	msg = nbdws_nl_msg(req, NBDWS_CMD_RECONFIGURE, 0);
	conns = NULL;
	if (msg && nla_put_u32(msg, NBDWS_A_INDEX, t->index) == 0)
		conns = nbdws_nl_nest_start(msg, NBDWS_A_CONNS);
	if (!conns || conns_put(msg, &c, t->conn->ping_ms, id)) {
		nlmsg_free(msg);
		conns_close(&c, 1);
		nbdctl_err("out of memory");
		return -1;
	}
	nla_nest_end(msg, conns);
	rc = nbdws_nl_request(req, msg, NULL, NULL);
	conns_close(&c, 1);
	if (rc) {
		nbdctl_nl_perror(req, rc, "RECONFIGURE refused the new connection");
		return -1;
	}
	nbdctl_warn("%s%u: connection %u re-established", NBDWS_DISK_NAME,
		    t->index, id);
	return 0;
}

int persist_run(struct nbdws_nl *req, struct nbdws_nl *events,
		const struct persist_target *t)
{
	struct persist_state st = { .t = t };
	struct sigaction sa = { .sa_handler = on_signal };
	int backoff = BACKOFF_MIN_MS;
	long long next_action = 0, hold_end = 0;
	bool in_backoff = false;
	struct pollfd pfd;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	nl_socket_modify_cb(events->sk, NL_CB_VALID, NL_CB_CUSTOM, event_cb, &st);
	nl_socket_set_nonblocking(events->sk);
	pfd.fd = nl_socket_get_fd(events->sk);
	pfd.events = POLLIN;

	while (!stop_signal) {
		long long now = nbd_now_ms();
		struct nbdws_dev_status d;
		bool failed = false;
		uint32_t dead_ms;
		unsigned int i;
		int rc, attempt_ms;

		/* An event is acted on at once, unless we are backing off. */
		if (now < next_action && !(st.check && !in_backoff)) {
			if (poll(&pfd, 1, (int)(next_action - now)) > 0)
				nl_recvmsgs_default(events->sk);
			if (st.gone)
				break;
			continue;
		}
		st.check = false;
		next_action = now + STATUS_PERIOD_MS;
		rc = nbdws_dev_status_get(req, t->index, &d);
		if (rc == -ENODEV || rc == -ENOENT)
			break;
		if (rc) {
			nbdctl_nl_perror(req, rc, "status");
			continue;
		}
		if (NBDWS_DEV_HAS(&d, NBDWS_A_STATE) && d.state == NBDWS_DEV_DISCONNECTED)
			break;
		dead_ms = NBDWS_DEV_HAS(&d, NBDWS_A_DEAD_TIMEOUT_MS) ?
			  d.dead_timeout_ms : 0;
		/*
		 * The kernel started the hold when the last connection died,
		 * before this STATUS answered: the end estimated from now is
		 * late if anything, which keeps attempts short a little longer.
		 */
		if (!NBDWS_DEV_HAS(&d, NBDWS_A_STATE) || d.state != NBDWS_DEV_DEAD_WAIT)
			hold_end = 0;
		else if (!hold_end)
			hold_end = nbd_now_ms() + dead_ms;
		attempt_ms = persist_attempt_ms(t->timeout_ms, dead_ms,
						nbd_now_ms() < hold_end);
		for (i = 0; i < d.nconns && !failed; i++) {
			if (d.conns[i].state != NBDWS_CONN_DEAD)
				continue;
			failed = revive(req, t, d.conns[i].id, attempt_ms) != 0;
			/* One connection back ends the hold. */
			if (!failed)
				attempt_ms = t->timeout_ms;
		}
		if (failed) {
			in_backoff = true;
			next_action = nbd_now_ms() + backoff;
			nbdctl_warn("%s%u: retrying in %d.%03d s", NBDWS_DISK_NAME,
				    t->index, backoff / 1000, backoff % 1000);
			backoff = persist_next_backoff(backoff, dead_ms);
		} else {
			in_backoff = false;
			backoff = BACKOFF_MIN_MS;
		}
	}
	if (stop_signal)
		nbdctl_warn("stopping on signal %d; %s%u stays connected",
			    (int)stop_signal, NBDWS_DISK_NAME, t->index);
	return NBDCTL_EXIT_OK;
}
