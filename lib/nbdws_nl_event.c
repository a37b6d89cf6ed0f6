// SPDX-License-Identifier: GPL-2.0
/*
 * NBDWS_CMD_EVENT multicast messages decoded (see nbdws_nl.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <netlink/genl/genl.h>

#include "nbdws_nl.h"

/* NBDWS_CONN_A_ID of one NBDWS_A_CONN nest, if present. */
static void conn_id(const struct nlattr *conn, struct nbdws_nl_event *ev)
{
	struct nlattr *x;
	int rem;

	nla_for_each_nested(x, conn, rem)
		if (nla_type(x) == NBDWS_CONN_A_ID)
			ev->has_conn = nbdws_nl_get_u32(x, &ev->conn_id);
}

int nbdws_nl_event_parse(struct nlattr *attrs, int len,
			 struct nbdws_nl_event *ev)
{
	bool has_index = false, has_event = false;
	struct nlattr *a, *c;
	int rem, crem;

	memset(ev, 0, sizeof(*ev));
	nla_for_each_attr(a, attrs, len, rem) {
		switch (nla_type(a)) {
		case NBDWS_A_INDEX:
			has_index = nbdws_nl_get_u32(a, &ev->index);
			break;
		case NBDWS_A_EVENT:
			has_event = nbdws_nl_get_u32(a, &ev->event);
			break;
		case NBDWS_A_REASON:
			ev->has_reason = nbdws_nl_get_u32(a, &ev->reason);
			break;
		case NBDWS_A_WS_CLOSE_CODE:
			ev->has_ws_close = nbdws_nl_get_u16(a, &ev->ws_close_code);
			break;
		case NBDWS_A_WS_CLOSE_REASON:
			nbdws_nl_get_str(a, ev->ws_close_reason,
					 sizeof(ev->ws_close_reason));
			break;
		case NBDWS_A_DISK_NAME:
			nbdws_nl_get_str(a, ev->disk, sizeof(ev->disk));
			break;
		case NBDWS_A_CONN:
			/* The connection concerned. */
			conn_id(a, ev);
			break;
		case NBDWS_A_CONNS:
			/* ... or the same wrapped in a list of one. */
			nla_for_each_nested(c, a, crem)
				if (nla_type(c) == NBDWS_A_CONN)
					conn_id(c, ev);
			break;
		}
	}
	if (!has_index || !has_event)
		return -EINVAL;
	if (!ev->disk[0])
		snprintf(ev->disk, sizeof(ev->disk), NBDWS_DISK_NAME "%u",
			 ev->index);
	return 0;
}

int nbdws_nl_event_from_msg(struct nl_msg *msg, struct nbdws_nl_event *ev)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct genlmsghdr *g;

	if (!genlmsg_valid_hdr(nlh, 0))
		return -EINVAL;
	g = nlmsg_data(nlh);
	if (g->cmd != NBDWS_CMD_EVENT)
		return -EINVAL;
	return nbdws_nl_event_parse(genlmsg_attrdata(g, 0),
				    genlmsg_attrlen(g, 0), ev);
}
