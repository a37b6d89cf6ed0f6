// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl: output formatting (see output.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <linux/nbdws.h>

#include "nbd_handshake.h"
#include "output.h"

void fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes / 1024;
	int u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
}

void fmt_tflags(uint16_t flags, char *buf, size_t len)
{
	size_t off = 0;
	unsigned int bit;

	buf[0] = '\0';
	for (bit = 1; bit < 16; bit++) {
		const char *n = nbd_tflag_name(bit);
		int w;

		if (!(flags & (1U << bit)))
			continue;
		if (n)
			w = snprintf(buf + off, len - off, "%s%s", off ? " " : "", n);
		else
			w = snprintf(buf + off, len - off, "%sbit%u", off ? " " : "", bit);
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
	if (!off)
		snprintf(buf, len, "-");
}

static const char *const cflag_names[] = { "read-only", "keep", "no-timeout" };

void fmt_cflags(uint32_t flags, char *buf, size_t len)
{
	size_t off = 0, i;

	buf[0] = '\0';
	for (i = 0; i < sizeof(cflag_names) / sizeof(cflag_names[0]); i++) {
		int w;

		if (!(flags & (1U << i)))
			continue;
		w = snprintf(buf + off, len - off, "%s%s", off ? " " : "",
			     cflag_names[i]);
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
	if (!off)
		snprintf(buf, len, "-");
}

json_object *json_tflags(uint16_t flags)
{
	json_object *a = json_object_new_array();
	unsigned int bit;

	for (bit = 1; bit < 16; bit++) {
		const char *n = nbd_tflag_name(bit);
		char tmp[16];

		if (!(flags & (1U << bit)))
			continue;
		if (!n) {
			snprintf(tmp, sizeof(tmp), "bit%u", bit);
			n = tmp;
		}
		json_object_array_add(a, json_object_new_string(n));
	}
	return a;
}

json_object *json_cflags(uint32_t flags)
{
	json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < sizeof(cflag_names) / sizeof(cflag_names[0]); i++)
		if (flags & (1U << i))
			json_object_array_add(a, json_object_new_string(cflag_names[i]));
	return a;
}

json_object *json_u64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

void json_print(json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(obj);
}

static const char *lookup(const char *const *table, size_t n, uint32_t v)
{
	return v < n && table[v] ? table[v] : "unknown";
}

#define NAME(table, v) lookup(table, sizeof(table) / sizeof((table)[0]), v)

const char *dev_state_name(uint32_t state)
{
	static const char *const t[] = {
		[NBDWS_DEV_RUNNING] = "running",
		[NBDWS_DEV_DEAD_WAIT] = "dead-wait",
		[NBDWS_DEV_DISCONNECTED] = "disconnected",
	};

	return NAME(t, state);
}

const char *conn_state_name(uint32_t state)
{
	static const char *const t[] = {
		[NBDWS_CONN_ALIVE] = "alive",
		[NBDWS_CONN_DEAD] = "dead",
	};

	return NAME(t, state);
}

const char *transport_name(uint32_t transport)
{
	static const char *const t[] = {
		[NBDWS_TRANSPORT_PLAIN] = "plain",
		[NBDWS_TRANSPORT_WS_SERVER] = "ws-server",
		[NBDWS_TRANSPORT_WS_CLIENT] = "ws-client",
	};

	return NAME(t, transport);
}

const char *reason_name(uint32_t reason)
{
	static const char *const t[] = {
		[NBDWS_REASON_NONE] = "none",
		[NBDWS_REASON_TIMEOUT] = "timeout",
		[NBDWS_REASON_PEER_CLOSED] = "peer-closed",
		[NBDWS_REASON_SOCKET_ERROR] = "socket-error",
		[NBDWS_REASON_PROTOCOL] = "protocol-error",
		[NBDWS_REASON_WS_CLOSE] = "ws-close",
		[NBDWS_REASON_WS_PROTOCOL] = "ws-protocol-error",
		[NBDWS_REASON_WS_PING_TIMEOUT] = "ws-ping-timeout",
		[NBDWS_REASON_USER] = "user",
	};

	return NAME(t, reason);
}

const char *event_name(uint32_t event)
{
	static const char *const t[] = {
		[NBDWS_EVENT_CONNECTED] = "connected",
		[NBDWS_EVENT_CONN_DEAD] = "conn-dead",
		[NBDWS_EVENT_RECONNECTED] = "reconnected",
		[NBDWS_EVENT_DISCONNECTED] = "disconnected",
		[NBDWS_EVENT_DEAD_TIMEOUT] = "dead-timeout",
	};

	return NAME(t, event);
}
