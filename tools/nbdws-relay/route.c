// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: request routing (see route.h, DESIGN "Routes").
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "route.h"

int route_slot(const struct relay_config *cfg, const char *path)
{
	unsigned int i;

	if (path[0] != '/')
		return -1;
	for (i = 0; i < cfg->n_slots; i++) {
		if (!path[1] ? cfg->slots[i].is_default :
			       !strcmp(path + 1, cfg->slots[i].name))
			return (int)i;
	}
	return -1;
}

static bool wants_websocket(const struct http_request *req)
{
	const char *cursor = NULL;
	unsigned int field = 0;
	char v[16];

	while (http_next_token(req, "Upgrade", &field, &cursor, v, sizeof(v)))
		if (!strcasecmp(v, "websocket"))
			return true;
	return false;
}

static void refuse(struct route *r, int status, const char *headers,
		   const char *why)
{
	r->kind = ROUTE_REFUSE;
	r->status = status;
	r->headers = headers;
	r->why = why;
}

static void route_upgrade(const struct relay_config *cfg,
			  const struct http_request *req, struct route *r)
{
	struct nbdws_err err;
	int rc;

	if (strcmp(req->method, "GET") != 0) {
		refuse(r, 405, "Allow: GET\r\n",
		       "a WebSocket upgrade must be a GET");
		return;
	}
	rc = ws_check_upgrade(req, r->accept, &err);
	if (rc == -EPROTONOSUPPORT) {
		refuse(r, 426, "Sec-WebSocket-Version: 13\r\n",
		       "only WebSocket version 13 is spoken");
		return;
	}
	if (rc) {
		refuse(r, 400, NULL, "malformed WebSocket upgrade");
		return;
	}
	r->slot = route_slot(cfg, req->path);
	if (r->slot < 0) {
		refuse(r, 404, NULL, strcmp(req->path, "/") ?
		       "no slot is served at this path" : "no default slot");
		return;
	}
	r->kind = ROUTE_UPGRADE;
}

static void route_plain(const struct relay_config *cfg,
			const struct http_request *req, struct route *r)
{
	bool get = !strcmp(req->method, "GET");
	bool head = !strcmp(req->method, "HEAD");

	if (!strcmp(req->path, "/status") || !strcmp(req->path, "/slots")) {
		if (!get) {
			refuse(r, 405, "Allow: GET\r\n", "method not allowed");
			return;
		}
		r->kind = req->path[2] == 't' ? ROUTE_STATUS : ROUTE_SLOTS;
		return;
	}
	if (cfg->web_dir) {
		if (!get && !head) {
			refuse(r, 405, "Allow: GET, HEAD\r\n",
			       "method not allowed");
			return;
		}
		r->kind = ROUTE_FILE;
		r->head = head;
		return;
	}
	if (!get) {
		refuse(r, 405, "Allow: GET\r\n", "method not allowed");
		return;
	}
	if (route_slot(cfg, req->path) >= 0) {
		refuse(r, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
		       "this path is served over WebSocket only");
		return;
	}
	refuse(r, 404, NULL, "not found");
}

void route_request(const struct relay_config *cfg,
		   const struct http_request *req, struct route *r)
{
	memset(r, 0, sizeof(*r));
	r->slot = -1;
	if (wants_websocket(req))
		route_upgrade(cfg, req, r);
	else
		route_plain(cfg, req, r);
}
