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

#include "ws_accept.h"

/* What the parser keeps from the header fields it cares about. */
struct req_fields {
	int n_host, n_key, n_version;
	bool upgrade_ws, connection_upgrade, offered;
	char key[WS_KEY_LEN + 2];	/* one byte more: longer keys show */
	char version[8];
};

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

/* One "Name: value" line, NUL-terminated, without its CRLF. */
static int field(char *line, const struct ws_accept_opts *o,
		 struct req_fields *f, struct nbdws_err *err)
{
	char *colon = strchr(line, ':'), *v;

	/* RFC 7230 3.2.4: obsolete line folding; no name; space before ':' */
	if (*line == ' ' || *line == '\t' || !colon || colon == line ||
	    colon[-1] == ' ' || colon[-1] == '\t')
		return nbdws_err_set(err, -EPROTO,
				     "malformed header line in the upgrade request");
	v = ws_http_field_value(colon);
	if (!strcasecmp(line, "Host")) {
		f->n_host++;
	} else if (!strcasecmp(line, "Upgrade")) {
		if (ws_http_list_has(v, "websocket"))
			f->upgrade_ws = true;
	} else if (!strcasecmp(line, "Connection")) {
		if (ws_http_list_has(v, "upgrade"))
			f->connection_upgrade = true;
	} else if (!strcasecmp(line, "Sec-WebSocket-Key")) {
		f->n_key++;
		snprintf(f->key, sizeof(f->key), "%s", v);
	} else if (!strcasecmp(line, "Sec-WebSocket-Version")) {
		f->n_version++;
		snprintf(f->version, sizeof(f->version), "%s", v);
	} else if (!strcasecmp(line, "Sec-WebSocket-Protocol")) {
		if (o && o->subprotocol && ws_http_list_has(v, o->subprotocol))
			f->offered = true;
	}
	return 0;
}

/* "GET target HTTP/1.x": copies the target into @req. */
static int request_line(const char *line, struct ws_request *req,
			struct nbdws_err *err)
{
	const char *t, *sp;

	if (strncmp(line, "GET ", 4) != 0)
		return nbdws_err_set(err, -EPROTO,
				     "the upgrade request is not a GET");
	t = line + 4;
	sp = strchr(t, ' ');
	if (!sp || sp == t || *t != '/')
		return nbdws_err_set(err, -EPROTO,
				     "the upgrade request has no origin-form target");
	if ((size_t)(sp - t) > WS_ACCEPT_MAX_TARGET)
		return nbdws_err_set(err, -EPROTO,
				     "the request target is longer than %d bytes",
				     WS_ACCEPT_MAX_TARGET);
	/* RFC 6455 4.1: HTTP/1.1 or a later 1.x (the upgrade is 1.x only). */
	if (strncmp(sp + 1, "HTTP/1.", 7) != 0 || !sp[8] ||
	    strspn(sp + 8, "0123456789") != strlen(sp + 8) ||
	    !strcmp(sp + 8, "0"))
		return nbdws_err_set(err, -EPROTO,
				     "the upgrade request is not HTTP/1.1");
	memcpy(req->target, t, (size_t)(sp - t));
	req->target[sp - t] = '\0';
	return 0;
}

static int check_fields(const struct req_fields *f,
			const struct ws_accept_opts *o, struct nbdws_err *err)
{
	if (f->n_host != 1)
		return nbdws_err_set(err, -EPROTO,
				     "the upgrade request has %d Host headers, not one",
				     f->n_host);
	if (!f->upgrade_ws || !f->connection_upgrade)
		return nbdws_err_set(err, -EPROTO,
				     "not a WebSocket upgrade request (Upgrade: websocket and Connection: upgrade are required)");
	if (f->n_version != 1 || strcmp(f->version, "13") != 0)
		return nbdws_err_set(err, -EPROTONOSUPPORT,
				     "WebSocket version '%s' is not 13",
				     f->n_version == 1 ? f->version : "?");
	if (f->n_key != 1 || !key_ok(f->key))
		return nbdws_err_set(err, -EPROTO,
				     "the request has no valid Sec-WebSocket-Key");
	if (o && o->subprotocol && o->require_subprotocol && !f->offered)
		return nbdws_err_set(err, -ENOENT,
				     "the client does not offer the subprotocol '%s'",
				     o->subprotocol);
	return 0;
}

int ws_parse_request(const char *hdr, size_t len,
		     const struct ws_accept_opts *o, struct ws_request *req,
		     struct nbdws_err *err)
{
	struct req_fields f;
	char *copy, *line, *eol;
	int rc;

	memset(req, 0, sizeof(*req));
	memset(&f, 0, sizeof(f));
	if (len < 4 || memcmp(hdr + len - 4, "\r\n\r\n", 4) != 0 ||
	    memchr(hdr, '\0', len))
		return nbdws_err_set(err, -EPROTO,
				     "the upgrade request header is not complete");
	copy = malloc(len + 1);
	if (!copy)
		return nbdws_err_set(err, -ENOMEM, "out of memory");
	memcpy(copy, hdr, len);
	copy[len] = '\0';
	line = copy;
	eol = strstr(line, "\r\n");
	*eol = '\0';
	rc = request_line(line, req, err);
	for (line = eol + 2; !rc && strncmp(line, "\r\n", 2) != 0; line = eol + 2) {
		eol = strstr(line, "\r\n");
		*eol = '\0';
		rc = field(line, o, &f, err);
	}
	free(copy);
	if (!rc)
		rc = check_fields(&f, o, err);
	if (rc)
		return rc;
	if (ws_accept_for_key(f.key, req->accept))
		return nbdws_err_set(err, -ENOMEM,
				     "cannot compute Sec-WebSocket-Accept");
	req->subprotocol_chosen = o && o->subprotocol && f.offered;
	return 0;
}

size_t ws_build_response(int rc, const struct ws_request *req,
			 const struct ws_accept_opts *o, char *out,
			 size_t size)
{
	int n;

	if (!rc)
		n = snprintf(out, size,
			     "HTTP/1.1 101 Switching Protocols\r\n"
			     "Upgrade: websocket\r\n"
			     "Connection: Upgrade\r\n"
			     "Sec-WebSocket-Accept: %s\r\n"
			     "%s%s%s\r\n",
			     req->accept,
			     req->subprotocol_chosen ? "Sec-WebSocket-Protocol: " : "",
			     req->subprotocol_chosen ? o->subprotocol : "",
			     req->subprotocol_chosen ? "\r\n" : "");
	else if (rc == -EPROTONOSUPPORT)
		/* RFC 6455 4.4: say which version we speak. */
		n = snprintf(out, size,
			     "HTTP/1.1 426 Upgrade Required\r\n"
			     "Sec-WebSocket-Version: 13\r\n"
			     "Content-Length: 0\r\nConnection: close\r\n\r\n");
	else
		n = snprintf(out, size,
			     "HTTP/1.1 400 Bad Request\r\n"
			     "Content-Length: 0\r\nConnection: close\r\n\r\n");
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* Read until the header ends; *have bytes in @buf, *hend past the header. */
static int read_header(const struct ws_io *io, u8 *buf, size_t *have,
		       size_t *hend, struct nbdws_err *err)
{
	while (!*hend) {
		ssize_t n;

		if (*have == WS_HTTP_MAX_HEADER)
			return nbdws_err_set(err, -EMSGSIZE,
					     "the upgrade request header is larger than %d bytes",
					     WS_HTTP_MAX_HEADER);
		n = io->read(io->ctx, buf + *have, WS_HTTP_MAX_HEADER - *have);
		if (n == 0)
			return nbdws_err_set(err, -ECONNRESET,
					     "the client closed the connection before its upgrade request was complete (%zu bytes)",
					     *have);
		if (n < 0)
			return nbdws_err_set(err, (int)n,
					     "reading the upgrade request: %s",
					     n == -ETIMEDOUT ? "timed out" :
					     strerror((int)-n));
		*have += (size_t)n;
		*hend = ws_http_header_end(buf, *have);
	}
	return 0;
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
	rc = read_header(io, buf, &have, &hend, err);
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
	free(buf);
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
