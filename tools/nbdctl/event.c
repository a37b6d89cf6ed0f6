// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl: event message decoding (see event.h).
 */
#include <stdio.h>
#include <string.h>

#include <linux/nbdws.h>

#include "event.h"
#include "genl.h"

int nbdctl_event_parse(struct nlattr *attrs, int len, struct nbdctl_event *ev)
{
	bool has_index = false, has_event = false;
	struct nlattr *a, *c;
	int rem, crem;

	memset(ev, 0, sizeof(*ev));
	nla_for_each_attr(a, attrs, len, rem) {
		switch (nla_type(a)) {
		case NBDWS_A_INDEX:
			has_index = nbdctl_get_u32(a, &ev->index);
			break;
		case NBDWS_A_EVENT:
			has_event = nbdctl_get_u32(a, &ev->event);
			break;
		case NBDWS_A_REASON:
			ev->has_reason = nbdctl_get_u32(a, &ev->reason);
			break;
		case NBDWS_A_WS_CLOSE_CODE:
			ev->has_ws_close = nbdctl_get_u16(a, &ev->ws_close_code);
			break;
		case NBDWS_A_WS_CLOSE_REASON:
			nbdctl_get_str(a, ev->ws_close_reason,
				       sizeof(ev->ws_close_reason));
			break;
		case NBDWS_A_DISK_NAME:
			nbdctl_get_str(a, ev->disk, sizeof(ev->disk));
			break;
		case NBDWS_A_CONN:
			/* The connection concerned. */
			nla_for_each_nested(c, a, crem)
				if (nla_type(c) == NBDWS_CONN_A_ID)
					ev->has_conn = nbdctl_get_u32(c, &ev->conn_id);
			break;
		case NBDWS_A_CONNS:
			/* ... or the same wrapped in a list of one. */
			nla_for_each_nested(c, a, crem) {
				struct nlattr *x;
				int xrem;

				if (nla_type(c) != NBDWS_A_CONN)
					continue;
				nla_for_each_nested(x, c, xrem)
					if (nla_type(x) == NBDWS_CONN_A_ID)
						ev->has_conn = nbdctl_get_u32(x, &ev->conn_id);
			}
			break;
		}
	}
	if (!has_index || !has_event)
		return -1;
	if (!ev->disk[0])
		snprintf(ev->disk, sizeof(ev->disk), NBDWS_DISK_NAME "%u", ev->index);
	return 0;
}
