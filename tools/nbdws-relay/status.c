// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: /status and /slots (see status.h).
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "kernel.h"
#include "listen.h"
#include "session.h"
#include "slot.h"
#include "status.h"

#ifndef NBDWS_VERSION
#define NBDWS_VERSION "unknown"
#endif

static json_object *metadata(const struct slot *sl)
{
	json_object *m = NULL;

	if (sl->cfg->metadata_json)
		m = json_tokener_parse(sl->cfg->metadata_json);
	return m ? m : json_object_new_object();
}

static void add_common(json_object *o, const struct slot *sl)
{
	json_object_object_add(o, "name",
			       json_object_new_string(sl->cfg->name));
	json_object_object_add(o, "default",
			       json_object_new_boolean(sl->cfg->is_default));
	json_object_object_add(o, "read_only",
			       json_object_new_boolean(sl->cfg->read_only));
	json_object_object_add(o, "state",
			       json_object_new_string(slot_state_name(sl->state)));
	/* Seconds: how long a client that dropped may take to come back. */
	json_object_object_add(o, "hold",
			       json_object_new_double(sl->cfg->hold_ms / 1000.0));
}

static const char *transport_name(u32 t)
{
	switch (t) {
	case NBDWS_TRANSPORT_PLAIN: return "plain";
	case NBDWS_TRANSPORT_WS_SERVER: return "ws-server";
	case NBDWS_TRANSPORT_WS_CLIENT: return "ws-client";
	default: return "unknown";
	}
}

static const char *dev_state_name(u32 s)
{
	switch (s) {
	case NBDWS_DEV_RUNNING: return "running";
	case NBDWS_DEV_DEAD_WAIT: return "dead-wait";
	case NBDWS_DEV_DISCONNECTED: return "disconnected";
	default: return "unknown";
	}
}

static const char *reason_name(u32 r)
{
	static const char *const names[] = {
		[NBDWS_REASON_NONE] = NULL,
		[NBDWS_REASON_TIMEOUT] = "timeout",
		[NBDWS_REASON_PEER_CLOSED] = "peer-closed",
		[NBDWS_REASON_SOCKET_ERROR] = "socket-error",
		[NBDWS_REASON_PROTOCOL] = "protocol",
		[NBDWS_REASON_WS_CLOSE] = "ws-close",
		[NBDWS_REASON_WS_PROTOCOL] = "ws-protocol",
		[NBDWS_REASON_WS_PING_TIMEOUT] = "ws-ping-timeout",
		[NBDWS_REASON_USER] = "user",
	};

	return r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

static json_object *conn_stats(const struct nbdws_conn_status *c)
{
	static const struct {
		const char *name;
		int attr;
	} stats[] = {
		{ "reads", NBDWS_STAT_A_READS },
		{ "writes", NBDWS_STAT_A_WRITES },
		{ "flushes", NBDWS_STAT_A_FLUSHES },
		{ "trims", NBDWS_STAT_A_TRIMS },
		{ "write_zeroes", NBDWS_STAT_A_WRITE_ZEROES },
		{ "read_bytes", NBDWS_STAT_A_READ_BYTES },
		{ "write_bytes", NBDWS_STAT_A_WRITE_BYTES },
		{ "inflight", NBDWS_STAT_A_INFLIGHT },
		{ "inflight_peak", NBDWS_STAT_A_INFLIGHT_PEAK },
		{ "errors", NBDWS_STAT_A_ERRORS },
		{ "timeouts", NBDWS_STAT_A_TIMEOUTS },
		{ "reconnects", NBDWS_STAT_A_RECONNECTS },
	};
	json_object *o = json_object_new_object();
	size_t i;

	for (i = 0; i < sizeof(stats) / sizeof(stats[0]); i++)
		json_object_object_add(o, stats[i].name,
				       json_object_new_int64((int64_t)c->stats[stats[i].attr]));
	return o;
}

static json_object *kernel_part(const struct nbdws_dev_status *d)
{
	json_object *k = json_object_new_object();
	json_object *conns = json_object_new_array();
	const char *reason;
	unsigned int i;

	json_object_object_add(k, "state",
			       json_object_new_string(dev_state_name(d->state)));
	json_object_object_add(k, "size",
			       json_object_new_int64((int64_t)d->size));
	for (i = 0; i < d->nconns && i < NBDWS_MAX_CONNS; i++) {
		const struct nbdws_conn_status *c = &d->conns[i];
		json_object *o = json_object_new_object();

		json_object_object_add(o, "id", json_object_new_int64(c->id));
		json_object_object_add(o, "transport",
				       json_object_new_string(transport_name(c->transport)));
		json_object_object_add(o, "state", json_object_new_string(
			c->state == NBDWS_CONN_ALIVE ? "alive" : "dead"));
		reason = reason_name(c->reason);
		json_object_object_add(o, "reason", reason ?
				       json_object_new_string(reason) : NULL);
		json_object_object_add(o, "stats", c->has_stats ?
				       conn_stats(c) : NULL);
		json_object_array_add(conns, o);
	}
	json_object_object_add(k, "conns", conns);
	return k;
}

static json_object *slot_status(struct slot *sl)
{
	json_object *o = json_object_new_object();
	json_object *kernel = NULL;
	struct kernel_op op;
	bool dev = sl->have_device;

	add_common(o, sl);
	json_object_object_add(o, "path", dev ? json_object_new_string(
		sl->userspace ? "userspace" : "kernel") : NULL);
	json_object_object_add(o, "device", dev ?
			       json_object_new_string(sl->device) : NULL);
	json_object_object_add(o, "index", dev ?
			       json_object_new_int64(sl->index) :
			       sl->cfg->index >= 0 ?
			       json_object_new_int64(sl->cfg->index) : NULL);
	json_object_object_add(o, "client", sl->client[0] ?
			       json_object_new_string(sl->client) : NULL);
	json_object_object_add(o, "since", sl->state != SLOT_IDLE ?
			       json_object_new_int64((int64_t)sl->since) :
			       NULL);
	json_object_object_add(o, "reconnects",
			       json_object_new_int64(sl->reconnects));
	json_object_object_add(o, "metadata", metadata(sl));
	if (dev) {
		memset(&op, 0, sizeof(op));
		op.cmd = KERNEL_STATUS;
		op.index = (int)sl->index;
		/* The slot may have moved on while we waited: say what was. */
		if (!kernel_call(&op))
			kernel = kernel_part(&op.status);
	}
	json_object_object_add(o, "kernel", kernel);
	return o;
}

static char *to_text(json_object *root)
{
	const char *s;
	char *out;

	s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
					   JSON_C_TO_STRING_NOSLASHESCAPE);
	out = s ? strdup(s) : NULL;
	json_object_put(root);
	return out;
}

char *status_json(void)
{
	json_object *root = json_object_new_object();
	json_object *relay = json_object_new_object();
	json_object *arr = json_object_new_array();
	struct slot *sl;
	unsigned int i;

	json_object_object_add(relay, "version",
			       json_object_new_string(NBDWS_VERSION));
	json_object_object_add(relay, "connections",
			       json_object_new_int64(listen_conns()));
	json_object_object_add(relay, "handshakes",
			       json_object_new_int64(session_handshakes()));
	json_object_object_add(root, "relay", relay);
	for (i = 0; (sl = slot_get(i)); i++)
		json_object_array_add(arr, slot_status(sl));
	json_object_object_add(root, "slots", arr);
	return to_text(root);
}

char *status_slots_json(void)
{
	json_object *arr = json_object_new_array();
	struct slot *sl;
	unsigned int i;

	for (i = 0; (sl = slot_get(i)); i++) {
		json_object *o = json_object_new_object();

		add_common(o, sl);
		json_object_object_add(o, "metadata", metadata(sl));
		json_object_array_add(arr, o);
	}
	return to_text(arr);
}
