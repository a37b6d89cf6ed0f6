/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: what a parsed request is for (DESIGN: routes). Pure: the
 * session acts on the answer, route.c only decides, so the decisions are
 * unit-tested without sockets.
 */
#ifndef _RELAY_ROUTE_H
#define _RELAY_ROUTE_H

#include <stdbool.h>

#include "http_req.h"
#include "relay.h"
#include "ws_accept.h"

enum route_kind {
	ROUTE_REFUSE,		/* answer @status and close */
	ROUTE_UPGRADE,		/* WebSocket for slot @slot */
	ROUTE_STATUS,		/* GET /status */
	ROUTE_SLOTS,		/* GET /slots */
	ROUTE_FILE,		/* GET or HEAD under --web */
};

struct route {
	enum route_kind kind;
	int status;		/* ROUTE_REFUSE */
	const char *headers;	/* ROUTE_REFUSE: extra "Name: v\r\n" lines */
	const char *why;	/* ROUTE_REFUSE: one line for log and body */
	int slot;		/* ROUTE_UPGRADE: index in cfg->slots */
	bool head;		/* ROUTE_FILE: HEAD, no body */
	char accept[WS_ACCEPT_LEN + 1];	/* ROUTE_UPGRADE */
};

/* Slot served at URL path @path ("/" is the default slot), or -1. */
int route_slot(const struct relay_config *cfg, const char *path);

void route_request(const struct relay_config *cfg,
		   const struct http_request *req, struct route *r);

#endif /* _RELAY_ROUTE_H */
