// SPDX-License-Identifier: GPL-2.0
/*
 * Server side of the RFC 6455 opening handshake (see ws_accept.h).
 *
 * Strict like the client side: whatever is not exactly a WebSocket
 * upgrade is refused with a status and a message that says why, because
 * the usual client mistakes (a plain HTTP GET, a proxy that dropped the
 * Upgrade header, an old draft version) should be visible at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "secret.h"
#include "ws_accept.h"

static bool is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * RFC 6455 4.1: the key is 16 random bytes in base64, which is always 22
 * alphabet characters and "==".
 */
static bool key_ok(const char *k)
{
	int i;

	if (strlen(k) != WS_KEY_LEN || k[22] != '=' || k[23] != '=')
		return false;
	for (i = 0; i < 22; i++)
		if (!is_b64(k[i]))
			return false;
	return true;
}

/* True if the comma lists of every field @name hold @token (any case). */
static bool has_token(const struct http_request *req, const char *name,
		      const char *token)
{
	const char *cursor = NULL;
	unsigned int field = 0;
	char tok[64];

	while (http_next_token(req, name, &field, &cursor, tok, sizeof(tok)))
		if (!strcasecmp(tok, token))
			return true;
	return false;
}

int ws_check_upgrade(const struct http_request *req,
		     char accept[WS_ACCEPT_LEN + 1], struct nbdws_err *err)
{
	const char *version = http_get(req, "Sec-WebSocket-Version");
	const char *key = http_get(req, "Sec-WebSocket-Key");
	unsigned int n_host = http_count(req, "Host");
	unsigned int n_version = http_count(req, "Sec-WebSocket-Version");

	accept[0] = '\0';
	if (!has_token(req, "Upgrade", "websocket"))
		return nbdws_err_set(err, -ENOTCONN,
				     "not a WebSocket upgrade request (no Upgrade: websocket)");
	if (strcmp(req->method, "GET") != 0)
		return nbdws_err_set(err, -EPROTO,
				     "the upgrade request is not a GET");
	/* RFC 6455 4.1: HTTP/1.1 or a later 1.x (the upgrade is 1.x only). */
	if (req->version_minor < 1)
		return nbdws_err_set(err, -EPROTO,
				     "the upgrade request is not HTTP/1.1");
	if (n_host != 1)
		return nbdws_err_set(err, -EPROTO,
				     "the upgrade request has %u Host headers, not one",
				     n_host);
	if (!has_token(req, "Connection", "upgrade"))
		return nbdws_err_set(err, -EPROTO,
				     "not a WebSocket upgrade request (Upgrade: websocket and Connection: upgrade are required)");
	if (!version || n_version != 1 || strcmp(version, "13") != 0)
		return nbdws_err_set(err, -EPROTONOSUPPORT,
				     "WebSocket version '%.8s' is not 13",
				     version && n_version == 1 ? version : "?");
	if (!key || http_count(req, "Sec-WebSocket-Key") != 1 || !key_ok(key))
		return nbdws_err_set(err, -EPROTO,
				     "the request has no valid Sec-WebSocket-Key");
	if (ws_accept_for_key(key, accept))
		return nbdws_err_set(err, -ENOMEM,
				     "cannot compute Sec-WebSocket-Accept");
	return 0;
}

/* A subprotocol must fit in a header value on its own: no list, no CTL. */
static bool protocol_ok(const char *p)
{
	if (!*p)
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == ',')
			return false;
	return true;
}

size_t ws_build_accept(const char *accept, const char *protocol, char *out,
		       size_t size)
{
	int n;

	if (protocol && !protocol_ok(protocol))
		return 0;
	n = snprintf(out, size,
		     "HTTP/1.1 101 Switching Protocols\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: %s\r\n"
		     "%s%s%s\r\n",
		     accept,
		     protocol ? "Sec-WebSocket-Protocol: " : "",
		     protocol ? protocol : "",
		     protocol ? "\r\n" : "");
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

int ws_parse_request(const char *hdr, size_t len,
		     const struct ws_accept_opts *o, struct ws_request *req,
		     struct nbdws_err *err)
{
	struct http_request hr;
	bool offered = false;
	size_t target_len;
	int rc;

	memset(req, 0, sizeof(*req));
	/*
	 * Every refusal of the HTTP layer is a 400 here (the callers of
	 * this API answer 400 or 426 only); the request line may be as
	 * long as the header, the target is limited below.
	 */
	rc = http_parse_request(hdr, len, WS_HTTP_MAX_HEADER, &hr, err);
	if (rc)
		return rc == 500 ? -ENOMEM : -EPROTO;
	rc = ws_check_upgrade(&hr, req->accept, err);
	if (rc == -ENOTCONN)
		rc = -EPROTO;
	target_len = rc ? 0 : strlen(hr.target);
	if (target_len > WS_ACCEPT_MAX_TARGET)
		rc = nbdws_err_set(err, -EPROTO,
				   "the request target is longer than %d bytes",
				   WS_ACCEPT_MAX_TARGET);
	if (!rc && o && o->subprotocol) {
		offered = has_token(&hr, "Sec-WebSocket-Protocol",
				    o->subprotocol);
		if (o->require_subprotocol && !offered)
			rc = nbdws_err_set(err, -ENOENT,
					   "the client does not offer the subprotocol '%s'",
					   o->subprotocol);
	}
	if (!rc) {
		memcpy(req->target, hr.target, target_len + 1);
		req->subprotocol_chosen = offered;
	} else {
		req->accept[0] = '\0';
	}
	http_request_free(&hr);
	return rc;
}

size_t ws_build_response(int rc, const struct ws_request *req,
			 const struct ws_accept_opts *o, char *out,
			 size_t size)
{
	if (!rc)
		return ws_build_accept(req->accept, req->subprotocol_chosen ?
				       o->subprotocol : NULL, out, size);
	/* RFC 6455 4.4: say which version we speak. */
	if (rc == -EPROTONOSUPPORT)
		return http_build_response(out, size, 426,
					   "Sec-WebSocket-Version: 13\r\n",
					   NULL, NULL, 0);
	return http_build_response(out, size, 400, NULL, NULL, NULL, 0);
}

int ws_accept(const struct ws_io *io, const struct ws_accept_opts *o,
	      struct ws_accept_result *res, struct nbdws_err *err)
{
	char resp[512];
	size_t have = 0, hend = 0, rlen;
	u8 *buf;
	int rc, wrc;

	memset(res, 0, sizeof(*res));
	buf = malloc(WS_HTTP_MAX_HEADER);
	if (!buf)
		return nbdws_err_set(err, -ENOMEM, "out of memory");
	rc = http_read_header(io, buf, WS_HTTP_MAX_HEADER, &have, &hend, err);
	if (rc)
		goto out;
	rc = ws_parse_request((const char *)buf, hend, o, &res->req, err);
	rlen = ws_build_response(rc, &res->req, o, resp, sizeof(resp));
	/* The refusal is best effort; the parse error is what we report. */
	wrc = rlen ? io->write(io->ctx, resp, rlen) : -EOVERFLOW;
	if (rc)
		goto out;
	if (wrc) {
		rc = nbdws_err_set(err, wrc, "sending the 101 response: %s",
				   strerror(-wrc));
		goto out;
	}
	if (have > hend) {
		res->preread = malloc(have - hend);
		if (!res->preread) {
			rc = nbdws_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		memcpy(res->preread, buf + hend, have - hend);
		res->preread_len = have - hend;
	}
out:
	/* The request may hold an Authorization value or a ?token=. */
	secret_free(buf, WS_HTTP_MAX_HEADER);
	if (rc)
		ws_accept_result_free(res);
	return rc;
}

void ws_accept_result_free(struct ws_accept_result *res)
{
	free(res->preread);
	res->preread = NULL;
	res->preread_len = 0;
}
