// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: slots and their state machine (see slot.h).
 *
 * The kernel is the truth about a device; the relay learns it from the
 * module's events and, because events may be lost (they are sent with
 * GFP_NOIO), checks with STATUS: every SLOT_AUDIT_MS while a slot has a
 * device, right after a start hook, after a fallback pump ended, and when
 * the same client comes back to a slot that still looks busy.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fiber.h"
#include "hook.h"
#include "nbd_proto.h"
#include "nbd_sock.h"
#include "slot.h"
#include "ws_frame.h"

/* After the kernel's own dead timeout: its DEAD_TIMEOUT event comes first. */
#define SLOT_HOLD_MARGIN_MS	1000
#define SLOT_AUDIT_MS		30000
/* After a pump ended, how soon to ask the kernel if it noticed. */
#define SLOT_FB_RECHECK_MS	2000
/* A returning client finds its slot serving: ask this often, this long. */
#define SLOT_RECLAIM_POLL_MS	200
#define SLOT_RECLAIM_TRIES	5
#define SLOT_MIN_LBS		512U
#define SLOT_MAX_LBS		4096U

static struct slot slots[RELAY_MAX_SLOTS];
static unsigned int n_slots;
static unsigned int claim_gen;
static bool shutting_down;
static void (*shutdown_done)(void);
static struct loop_defer shutdown_defer;

static void stop_async(struct slot *sl, u16 code, const char *reason,
		       bool hook);
static void audit_arm(struct slot *sl, long long delay_ms);

struct slot *slot_get(unsigned int n)
{
	return n < n_slots ? &slots[n] : NULL;
}

unsigned int slots_count(void)
{
	return n_slots;
}

const char *slot_state_name(enum slot_state s)
{
	static const char *const names[] = {
		[SLOT_IDLE] = "idle",
		[SLOT_NEGOTIATING] = "negotiating",
		[SLOT_STARTING] = "starting",
		[SLOT_SERVING] = "serving",
		[SLOT_HELD] = "held",
		[SLOT_STOPPING] = "stopping",
	};

	return (unsigned int)s < sizeof(names) / sizeof(names[0]) ?
	       names[s] : "?";
}

static const char *dead_reason_name(u32 reason)
{
	static const char *const names[] = {
		[NBDWS_REASON_NONE] = "no reason given",
		[NBDWS_REASON_TIMEOUT] = "request timed out",
		[NBDWS_REASON_PEER_CLOSED] = "peer closed",
		[NBDWS_REASON_SOCKET_ERROR] = "socket error",
		[NBDWS_REASON_PROTOCOL] = "NBD protocol violation",
		[NBDWS_REASON_WS_CLOSE] = "WebSocket close",
		[NBDWS_REASON_WS_PROTOCOL] = "WebSocket protocol violation",
		[NBDWS_REASON_WS_PING_TIMEOUT] = "keepalive timed out",
		[NBDWS_REASON_USER] = "removed",
	};

	return reason < sizeof(names) / sizeof(names[0]) && names[reason] ?
	       names[reason] : "unknown reason";
}

static void set_state(struct slot *sl, enum slot_state st)
{
	if (sl->state == st)
		return;
	relay_log(RELAY_LOG_INFO, "slot %s: %s -> %s", sl->cfg->name,
		  slot_state_name(sl->state), slot_state_name(st));
	sl->state = st;
	sl->since = time(NULL);
}

static void check_shutdown_done(void *arg)
{
	void (*done)(void) = shutdown_done;

	(void)arg;
	shutdown_done = NULL;
	if (done)
		done();
}

/* Shutdown is over once no slot has anything left to undo. */
static void check_shutdown(void)
{
	unsigned int i;

	if (!shutting_down || !shutdown_done)
		return;
	for (i = 0; i < n_slots; i++)
		if (slots[i].state != SLOT_IDLE)
			return;
	loop_defer(&shutdown_defer, check_shutdown_done, NULL);
}

/* ---- stopping ------------------------------------------------------------ */

static void stop_hooked(void *arg, int result)
{
	struct slot *sl = arg;

	if (result)
		relay_log(RELAY_LOG_WARN, "slot %s: stop hook failed",
			  sl->cfg->name);
	if (sl->state != SLOT_STOPPING)
		return;
	memset(&sl->owner, 0, sizeof(sl->owner));
	sl->client[0] = '\0';
	sl->expired = false;
	set_state(sl, SLOT_IDLE);
	check_shutdown();
}

static void device_gone(struct slot *sl)
{
	if (!sl->have_device)
		return;
	sl->have_device = false;
	loop_timer_cancel(&sl->audit_timer);
	relay_log(RELAY_LOG_INFO, "slot %s: device %s gone", sl->cfg->name,
		  sl->device);
}

static void stop_disconnected(struct kernel_op *op, void *arg)
{
	struct slot *sl = arg;

	if (op->rc && op->rc != -ENODEV && op->rc != -ENOENT)
		relay_log(RELAY_LOG_WARN, "slot %s: DISCONNECT of %s: %s%s%s",
			  sl->cfg->name, sl->device, strerror(-op->rc),
			  op->extack[0] ? ": " : "", op->extack);
	device_gone(sl);
	if (!sl->stop_hook ||
	    hook_run("stop", sl->cfg->name, sl->device, sl->index,
		     stop_hooked, sl))
		stop_hooked(sl, 0);
}

/*
 * From the loop: the client is done with the slot or the hold ran out.
 * DISCONNECT (with @code/@reason for the client, when it is still there
 * on the fast path), then the stop hook if @hook, then idle.
 */
static void stop_async(struct slot *sl, u16 code, const char *reason,
		       bool hook)
{
	if (sl->state == SLOT_STOPPING || sl->state == SLOT_IDLE)
		return;
	loop_timer_cancel(&sl->hold_timer);
	loop_timer_cancel(&sl->audit_timer);
	sl->claim = 0;
	sl->stop_hook = hook;
	set_state(sl, SLOT_STOPPING);
	if (sl->fb) {
		fallback_stop(sl->fb, code ? code : WS_CLOSE_NORMAL,
			      reason ? reason : "device disconnected");
		sl->fb = NULL;
		code = 0;
	}
	if (!sl->have_device) {
		sl->stop_op.rc = 0;
		stop_disconnected(&sl->stop_op, sl);
		return;
	}
	memset(&sl->stop_op, 0, sizeof(sl->stop_op));
	sl->stop_op.cmd = KERNEL_DISCONNECT;
	sl->stop_op.index = (int)sl->index;
	/* Only set when needed: modules without them refuse nothing else. */
	if (code && !sl->userspace) {
		sl->stop_op.close_code = code;
		sl->stop_op.close_reason = reason;
	}
	kernel_submit(&sl->stop_op, stop_disconnected, sl);
}

static void log_hook_result(void *arg, int result)
{
	struct slot *sl = arg;

	if (result)
		relay_log(RELAY_LOG_WARN, "slot %s: stop hook failed",
			  sl->cfg->name);
}

/* The device went away by someone else's hand (nbdctl disconnect). */
static void slot_gone(struct slot *sl)
{
	switch (sl->state) {
	case SLOT_IDLE:
	case SLOT_STOPPING:
		return;
	case SLOT_NEGOTIATING:
		/* The returning client will get a fresh device. */
		device_gone(sl);
		sl->expired = false;
		if (hook_run("stop", sl->cfg->name, sl->device, sl->index,
			     log_hook_result, sl))
			log_hook_result(sl, -1);
		return;
	default:
		device_gone(sl);
		stop_async(sl, WS_CLOSE_GOING_AWAY, "device disconnected", true);
	}
}

/* ---- events and timers --------------------------------------------------- */

static void hold_expired(void *arg)
{
	struct slot *sl = arg;

	switch (sl->state) {
	case SLOT_HELD:
		relay_log(RELAY_LOG_INFO, "slot %s: nobody came back within %u ms",
			  sl->cfg->name, sl->cfg->hold_ms);
		stop_async(sl, 0, NULL, true);
		break;
	case SLOT_NEGOTIATING:
		/* Its session decides once its handshake is over. */
		sl->expired = true;
		break;
	case SLOT_SERVING:
	case SLOT_STARTING:
		/* DEAD_TIMEOUT after a CONN_DEAD we never heard of. */
		stop_async(sl, 0, NULL, true);
		break;
	default:
		break;
	}
}

static void conn_dead(struct slot *sl, u16 code, const char *why)
{
	switch (sl->state) {
	case SLOT_SERVING:
		if (code == WS_CLOSE_NORMAL) {
			relay_log(RELAY_LOG_INFO,
				  "slot %s: client %s closed with 1000: stopping",
				  sl->cfg->name, sl->client);
			stop_async(sl, 0, NULL, true);
			return;
		}
		relay_log(RELAY_LOG_INFO,
			  "slot %s: connection from %s lost (%s, close code %u): holding %s for %u ms",
			  sl->cfg->name, sl->client, why, code, sl->device,
			  sl->cfg->hold_ms);
		set_state(sl, SLOT_HELD);
		loop_timer_arm(&sl->hold_timer, nbd_now_ms() + sl->cfg->hold_ms +
			       SLOT_HOLD_MARGIN_MS, hold_expired, sl);
		audit_arm(sl, SLOT_AUDIT_MS);
		break;
	case SLOT_STARTING:
		sl->dead_in_start = true;
		sl->dead_code = code;
		break;
	default:
		break;
	}
}

static struct slot *slot_by_index(u32 index)
{
	unsigned int i;

	for (i = 0; i < n_slots; i++)
		if (slots[i].have_device && slots[i].index == index)
			return &slots[i];
	return NULL;
}

/* Events were dropped: ask the kernel about every device we have. */
static void audit_all(void)
{
	unsigned int i;

	for (i = 0; i < n_slots; i++)
		if (slots[i].have_device)
			audit_arm(&slots[i], 0);
}

void slots_on_event(const struct kernel_event *ev)
{
	struct slot *sl = slot_by_index(ev->index);
	u16 code = 0;

	if (kernel_events_lost())
		audit_all();
	/* Devices the relay did not make are someone else's business. */
	if (!sl)
		return;
	switch (ev->event) {
	case NBDWS_EVENT_CONN_DEAD:
		if (ev->has_ws_close)
			code = ev->ws_close_code;
		else if (sl->userspace && sl->fb_ended)
			code = sl->fb_code;
		conn_dead(sl, code, dead_reason_name(ev->reason));
		break;
	case NBDWS_EVENT_DEAD_TIMEOUT:
		hold_expired(sl);
		break;
	case NBDWS_EVENT_DISCONNECTED:
		slot_gone(sl);
		break;
	default:
		break;
	}
}

static void audit_done(struct kernel_op *op, void *arg)
{
	struct slot *sl = arg;

	sl->audit_busy = false;
	if (!sl->have_device || op->index != (int)sl->index ||
	    (sl->state != SLOT_SERVING && sl->state != SLOT_HELD))
		return;
	if (op->rc == -ENODEV || op->rc == -ENOENT) {
		slot_gone(sl);
		return;
	}
	if (!op->rc && op->status.state == NBDWS_DEV_DEAD_WAIT)
		conn_dead(sl, sl->userspace && sl->fb_ended ? sl->fb_code : 0,
			  "found dead by STATUS");
	audit_arm(sl, SLOT_AUDIT_MS);
}

static void audit_fire(void *arg)
{
	struct slot *sl = arg;

	if (!sl->have_device ||
	    (sl->state != SLOT_SERVING && sl->state != SLOT_HELD))
		return;
	if (sl->audit_busy) {
		audit_arm(sl, SLOT_AUDIT_MS);
		return;
	}
	memset(&sl->audit_op, 0, sizeof(sl->audit_op));
	sl->audit_op.cmd = KERNEL_STATUS;
	sl->audit_op.index = (int)sl->index;
	sl->audit_busy = true;
	kernel_submit(&sl->audit_op, audit_done, sl);
}

static void audit_arm(struct slot *sl, long long delay_ms)
{
	loop_timer_arm(&sl->audit_timer, nbd_now_ms() + delay_ms, audit_fire,
		       sl);
}

void slot_fallback_end(void *arg, u16 code, const char *reason)
{
	struct slot *sl = arg;
	char why[128];

	relay_printable(reason ? reason : "", reason ? strlen(reason) : 0,
			why, sizeof(why));
	relay_log(RELAY_LOG_INFO, "slot %s: userspace framing ended (%u %s)",
		  sl->cfg->name, code, why);
	sl->fb = NULL;
	sl->fb_ended = true;
	sl->fb_code = code;
	/* The kernel sees its socketpair end close; make sure we hear it. */
	if (sl->state == SLOT_SERVING)
		audit_arm(sl, SLOT_FB_RECHECK_MS);
}

/* ---- the session's side -------------------------------------------------- */

/* Inside a fiber: STATUS of @sl's device. 0 with *@state, or -errno. */
static int status_sync(struct slot *sl, u32 *state)
{
	struct kernel_op op;
	int rc;

	memset(&op, 0, sizeof(op));
	op.cmd = KERNEL_STATUS;
	op.index = (int)sl->index;
	rc = kernel_call(&op);
	if (!rc)
		*state = op.status.state;
	return rc;
}

/*
 * The client a serving slot belongs to is back. Its old connection may be
 * dead with the event still on its way (or lost): ask the kernel, a few
 * times while a pump that ended says the kernel is about to notice.
 */
static void reclaim_check(struct slot *sl)
{
	unsigned int tries;
	u32 state;
	int rc;

	for (tries = 0; tries < SLOT_RECLAIM_TRIES; tries++) {
		if (sl->state != SLOT_SERVING || !sl->have_device)
			return;
		rc = status_sync(sl, &state);
		if (sl->state != SLOT_SERVING || !sl->have_device)
			return;
		if (rc == -ENODEV || rc == -ENOENT) {
			slot_gone(sl);
			return;
		}
		if (!rc && state == NBDWS_DEV_DEAD_WAIT) {
			conn_dead(sl, 0, "found dead by STATUS");
			return;
		}
		if (rc || fiber_sleep_until(nbd_now_ms() + SLOT_RECLAIM_POLL_MS))
			return;
	}
}

int slot_claim(struct slot *sl, const struct auth_id *id, unsigned int *gen,
	       bool *reconnect)
{
	if (shutting_down)
		return -ESHUTDOWN;
	if (sl->state == SLOT_SERVING && auth_id_equal(id, &sl->owner))
		reclaim_check(sl);
	if (sl->state == SLOT_IDLE) {
		*reconnect = false;
		sl->owner = *id;
		sl->expired = false;
	} else if (sl->state == SLOT_HELD && auth_id_equal(id, &sl->owner)) {
		*reconnect = true;
	} else {
		return -EBUSY;
	}
	if (!++claim_gen)
		claim_gen = 1;
	sl->claim = claim_gen;
	*gen = claim_gen;
	set_state(sl, SLOT_NEGOTIATING);
	return 0;
}

void slot_release(struct slot *sl, unsigned int gen)
{
	if (sl->claim != gen || sl->state != SLOT_NEGOTIATING)
		return;
	sl->claim = 0;
	if (!sl->have_device) {
		memset(&sl->owner, 0, sizeof(sl->owner));
		set_state(sl, SLOT_IDLE);
		check_shutdown();
	} else if (shutting_down) {
		stop_async(sl, WS_CLOSE_GOING_AWAY, "relay shutting down", true);
	} else if (sl->expired) {
		stop_async(sl, 0, NULL, true);
	} else {
		set_state(sl, SLOT_HELD);
	}
}

/*
 * Inside the fiber: the hold ran out while the client was coming back.
 * Its held I/O has failed; it gets a fresh device, after the old one went
 * the usual way (DISCONNECT, stop hook).
 */
static void teardown_sync(struct slot *sl)
{
	struct kernel_op op;
	int rc;

	memset(&op, 0, sizeof(op));
	op.cmd = KERNEL_DISCONNECT;
	op.index = (int)sl->index;
	rc = kernel_call(&op);
	if (rc && rc != -ENODEV && rc != -ENOENT)
		relay_log(RELAY_LOG_WARN, "slot %s: DISCONNECT of %s: %s",
			  sl->cfg->name, sl->device, strerror(-rc));
	if (!sl->have_device)
		return;		/* slot_gone() ran the stop hook meanwhile */
	device_gone(sl);
	if (hook_run_wait("stop", sl->cfg->name, sl->device, sl->index))
		relay_log(RELAY_LOG_WARN, "slot %s: stop hook failed",
			  sl->cfg->name);
}

/* Block sizes and request size as nbdctl derives them. */
static int derive(const struct slot *sl, const struct nbd_export_info *i,
		  struct kernel_op *op)
{
	u32 max_req;

	if (i->block_min > SLOT_MAX_LBS)
		return -EINVAL;
	op->block_min = i->block_min < SLOT_MIN_LBS ? SLOT_MIN_LBS :
						      i->block_min;
	op->block_pref = i->block_pref < op->block_min ? op->block_min :
							 i->block_pref;
	op->block_max = i->block_max;
	max_req = sl->cfg->max_req_bytes ? sl->cfg->max_req_bytes :
					   NBDWS_DEFAULT_MAX_REQ_BYTES;
	if (max_req > i->block_max)
		max_req = i->block_max;
	max_req -= max_req % op->block_min;
	if (max_req < op->block_min)
		return -EINVAL;
	op->max_req = max_req;
	return 0;
}

static int attach_fail(struct slot *sl, unsigned int gen, int rc, u16 *code,
		       const char **reason, u16 c, const char *r)
{
	*code = c;
	*reason = r;
	slot_release(sl, gen);
	return rc;
}

static void conn_ops(struct kernel_op *op, const struct slot_conn *c)
{
	op->fd = c->fd;
	op->transport = c->transport;
	op->preread = c->preread;
	op->preread_len = c->preread_len;
	op->ping_ms = c->ping_ms;
}

static int reconnect(struct slot *sl, unsigned int gen,
		     const struct slot_conn *c, u16 *code,
		     const char **reason)
{
	struct kernel_op op;
	int rc;

	if (c->info->size != sl->size || c->info->tflags != sl->tflags) {
		relay_log(RELAY_LOG_INFO,
			  "slot %s: %s came back with another export (size %llu flags %#x, was %llu %#x)",
			  sl->cfg->name, c->peer,
			  (unsigned long long)c->info->size, c->info->tflags,
			  (unsigned long long)sl->size, sl->tflags);
		return attach_fail(sl, gen, -EINVAL, code, reason, 1008,
				   "export changed");
	}
	memset(&op, 0, sizeof(op));
	op.cmd = KERNEL_RECONFIGURE;
	op.index = (int)sl->index;
	conn_ops(&op, c);
	rc = kernel_call(&op);
	if (sl->claim != gen)
		return attach_fail(sl, gen, -ECANCELED, code, reason,
				   WS_CLOSE_GOING_AWAY, "slot stopped");
	if (rc) {
		relay_log(RELAY_LOG_WARN, "slot %s: RECONFIGURE of %s: %s%s%s",
			  sl->cfg->name, sl->device, strerror(-rc),
			  op.extack[0] ? ": " : "", op.extack);
		if (rc == -ENODEV || rc == -ENOENT)
			slot_gone(sl);
		return attach_fail(sl, gen, rc, code, reason,
				   WS_CLOSE_INTERNAL, "reconnect failed");
	}
	loop_timer_cancel(&sl->hold_timer);
	sl->claim = 0;
	sl->reconnects++;
	sl->userspace = c->userspace;
	snprintf(sl->client, sizeof(sl->client), "%s", c->peer);
	relay_log(RELAY_LOG_INFO, "slot %s: %s reconnected to %s (%s)",
		  sl->cfg->name, c->peer, sl->device,
		  c->userspace ? "userspace framing" : "kernel");
	set_state(sl, SLOT_SERVING);
	audit_arm(sl, SLOT_AUDIT_MS);
	return 0;
}

int slot_attach(struct slot *sl, unsigned int gen, const struct slot_conn *c,
		bool *fresh, u16 *code, const char **reason)
{
	const struct nbd_export_info *i = c->info;
	char backend[160];
	struct kernel_op op;
	int rc;

	*fresh = false;
	if (sl->claim != gen || sl->state != SLOT_NEGOTIATING)
		return attach_fail(sl, gen, -ECANCELED, code, reason,
				   WS_CLOSE_INTERNAL, "slot taken away");
	if (shutting_down)
		return attach_fail(sl, gen, -ESHUTDOWN, code, reason,
				   WS_CLOSE_GOING_AWAY, "relay shutting down");
	if (sl->have_device && sl->expired)
		teardown_sync(sl);
	if (sl->have_device)
		return reconnect(sl, gen, c, code, reason);

	memset(&op, 0, sizeof(op));
	if (derive(sl, i, &op)) {
		relay_log(RELAY_LOG_INFO,
			  "slot %s: %s: export block sizes %u/%u/%u unusable",
			  sl->cfg->name, c->peer, i->block_min, i->block_pref,
			  i->block_max);
		return attach_fail(sl, gen, -EINVAL, code, reason, 1008,
				   "export block size not supported");
	}
	op.cmd = KERNEL_CONNECT;
	op.index = sl->cfg->index;
	op.size = i->size;
	op.server_flags = i->tflags;
	if (sl->cfg->read_only || (i->tflags & NBDP_FLAG_READ_ONLY))
		op.client_flags |= NBDWS_CF_READ_ONLY;
	op.timeout_ms = sl->cfg->timeout_ms;
	op.dead_timeout_ms = sl->cfg->hold_ms;
	op.queue_depth = sl->cfg->queue_depth;
	snprintf(backend, sizeof(backend), "nbdws-relay %s from %s",
		 sl->cfg->name, c->peer);
	op.backend = backend;
	conn_ops(&op, c);
	rc = kernel_call(&op);
	if (rc) {
		relay_log(RELAY_LOG_WARN, "slot %s: CONNECT for %s: %s%s%s",
			  sl->cfg->name, c->peer, strerror(-rc),
			  op.extack[0] ? ": " : "", op.extack);
		return attach_fail(sl, gen, rc, code, reason,
				   WS_CLOSE_INTERNAL,
				   "could not create the device");
	}
	sl->have_device = true;
	sl->index = op.out_index;
	snprintf(sl->device, sizeof(sl->device), "/dev/" NBDWS_DISK_NAME "%u",
		 op.out_index);
	sl->size = i->size;
	sl->tflags = i->tflags;
	sl->userspace = c->userspace;
	sl->dead_in_start = false;
	sl->reconnects = 0;
	snprintf(sl->client, sizeof(sl->client), "%s", c->peer);
	relay_log(RELAY_LOG_INFO,
		  "slot %s: device %s created for %s (%llu bytes%s, %s)",
		  sl->cfg->name, sl->device, c->peer,
		  (unsigned long long)i->size,
		  op.client_flags & NBDWS_CF_READ_ONLY ? ", read-only" : "",
		  c->userspace ? "userspace framing" : "kernel");
	set_state(sl, SLOT_STARTING);
	*fresh = true;
	return 0;
}

void slot_set_fallback(struct slot *sl, unsigned int gen,
		       struct fallback *fb)
{
	(void)gen;
	/* A pump of an earlier connection still running: it is over. */
	if (sl->fb && sl->fb != fb)
		fallback_stop(sl->fb, WS_CLOSE_GOING_AWAY, "replaced");
	sl->fb = fb;
	sl->fb_ended = false;
}

void slot_stop_fallback(struct slot *sl, u16 code, const char *reason)
{
	if (!sl->fb)
		return;
	fallback_stop(sl->fb, code, reason);
	sl->fb = NULL;
}

int slot_start(struct slot *sl, unsigned int gen, u16 *code,
	       const char **reason)
{
	int rc;

	*code = 0;
	*reason = NULL;
	rc = shutting_down ? -ESHUTDOWN :
	     hook_run_wait("start", sl->cfg->name, sl->device, sl->index);
	if (sl->claim != gen || sl->state != SLOT_STARTING)
		return -ECANCELED;	/* the device went meanwhile */
	if (rc) {
		bool shut = shutting_down || rc == -ECANCELED ||
			    rc == -ESHUTDOWN;

		*code = shut ? WS_CLOSE_GOING_AWAY : WS_CLOSE_INTERNAL;
		*reason = shut ? "relay shutting down" : "start hook failed";
		relay_log(RELAY_LOG_WARN, "slot %s: %s: disconnecting %s",
			  sl->cfg->name, *reason, sl->device);
		/*
		 * A start hook cancelled by shutdown may have done its work:
		 * the stop hook (queued behind it) undoes it. One that failed
		 * did nothing to undo.
		 */
		stop_async(sl, *code, *reason, rc == -ECANCELED);
		return -EIO;
	}
	sl->claim = 0;
	set_state(sl, SLOT_SERVING);
	if (sl->dead_in_start) {
		sl->dead_in_start = false;
		conn_dead(sl, sl->dead_code, "lost during the start hook");
	} else {
		/* Events sent before we knew the device's index are lost. */
		audit_arm(sl, 0);
	}
	return 0;
}

/* ---- life ---------------------------------------------------------------- */

int slots_init(void)
{
	unsigned int i;

	n_slots = relay_cfg->n_slots;
	for (i = 0; i < n_slots; i++) {
		memset(&slots[i], 0, sizeof(slots[i]));
		slots[i].cfg = &relay_cfg->slots[i];
		slots[i].n = i;
		slots[i].state = SLOT_IDLE;
		slots[i].since = time(NULL);
		relay_log(RELAY_LOG_INFO, "slot %s: served at /%s%s%s",
			  slots[i].cfg->name, slots[i].cfg->name,
			  slots[i].cfg->is_default ? " and /" : "",
			  slots[i].cfg->read_only ? ", read-only" : "");
	}
	return 0;
}

void slots_shutdown(void (*done)(void))
{
	unsigned int i;

	shutting_down = true;
	shutdown_done = done;
	for (i = 0; i < n_slots; i++) {
		struct slot *sl = &slots[i];

		if (sl->state == SLOT_SERVING || sl->state == SLOT_HELD)
			stop_async(sl, WS_CLOSE_GOING_AWAY,
				   "relay shutting down", true);
		/* negotiating, starting: their cancelled session ends them */
	}
	check_shutdown();
}

void slots_fini(void)
{
	unsigned int i;

	for (i = 0; i < n_slots; i++) {
		loop_timer_cancel(&slots[i].hold_timer);
		loop_timer_cancel(&slots[i].audit_timer);
	}
	loop_defer_cancel(&shutdown_defer);
	n_slots = 0;
}
