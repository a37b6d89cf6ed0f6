/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: decoding NBDWS_CMD_EVENT multicast messages (monitor, --persist).
 */
#ifndef _NBDCTL_EVENT_H
#define _NBDCTL_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include <netlink/attr.h>

struct nbdctl_event {
	uint32_t index;
	uint32_t event;
	uint32_t reason;
	bool has_reason;
	bool has_conn;
	uint32_t conn_id;
	bool has_ws_close;
	uint16_t ws_close_code;
	char ws_close_reason[128];
	char disk[32];
};

/* Returns 0 if @attrs hold an event (NBDWS_A_INDEX and NBDWS_A_EVENT). */
int nbdctl_event_parse(struct nlattr *attrs, int len, struct nbdctl_event *ev);

#endif /* _NBDCTL_EVENT_H */
