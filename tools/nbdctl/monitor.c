// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl monitor: print nbdws events (device connected, connection dead
 * and why, reconnected, disconnected) one line each until interrupted.
 */
#include <errno.h>
#include <stdlib.h>

#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "genl.h"
#include "nbdctl.h"
#include "output.h"

static void print_event(const struct nbdws_nl_event *ev)
{
	if (nbdctl_opts.json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "device", json_object_new_string(ev->disk));
		json_object_object_add(o, "index", json_object_new_int64(ev->index));
		json_object_object_add(o, "event", json_object_new_string(event_name(ev->event)));
		if (ev->has_conn)
			json_object_object_add(o, "conn", json_object_new_int64(ev->conn_id));
		if (ev->has_reason)
			json_object_object_add(o, "reason",
					       json_object_new_string(reason_name(ev->reason)));
		if (ev->has_ws_close) {
			json_object_object_add(o, "ws_close_code",
					       json_object_new_int(ev->ws_close_code));
			json_object_object_add(o, "ws_close_reason",
					       json_object_new_string(ev->ws_close_reason));
		}
		json_print(o);
		return;
	}
	printf("%s %s", ev->disk, event_name(ev->event));
	if (ev->has_conn)
		printf(" conn %u", ev->conn_id);
	if (ev->has_reason && ev->reason != NBDWS_REASON_NONE)
		printf(" reason %s", reason_name(ev->reason));
	if (ev->has_ws_close)
		printf(" ws-close %u '%s'", ev->ws_close_code, ev->ws_close_reason);
	printf("\n");
	fflush(stdout);
}

static int event_cb(struct nl_msg *msg, void *arg)
{
	struct nbdws_nl_event ev;

	(void)arg;
	if (!nbdws_nl_event_from_msg(msg, &ev))
		print_event(&ev);
	return NL_OK;
}

int cmd_monitor(int argc, char **argv)
{
	struct nbdws_nl nl;
	int rc;

	rc = nbdctl_parse_json_only(argc, argv, 0, 0,
				    "monitor takes no arguments");
	if (rc)
		return rc;
	rc = nbdctl_nl_open(&nl);
	if (rc)
		return rc;
	rc = nbdctl_nl_subscribe(&nl);
	if (rc) {
		nbdws_nl_close(&nl);
		return rc;
	}
	nl_socket_modify_cb(nl.sk, NL_CB_VALID, NL_CB_CUSTOM, event_cb, NULL);
	for (;;) {
		rc = nl_recvmsgs_default(nl.sk);
		if (rc == -NLE_INTR || rc >= 0)
			continue;
		/* libnl reports the socket's ENOBUFS overrun as NLE_NOMEM. */
		if (rc == -NLE_NOMEM) {
			nbdctl_warn("events were lost (receive buffer overrun)");
			continue;
		}
		nbdctl_err("receiving events failed: %s", nl_geterror(rc));
		break;
	}
	nbdws_nl_close(&nl);
	return NBDCTL_EXIT_FAIL;
}
