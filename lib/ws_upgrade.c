// SPDX-License-Identifier: GPL-2.0
/*
 * Client side of the RFC 6455 opening handshake (see ws_upgrade.h).
 *
 * The response parser is deliberately strict: a peer that answers with
 * something that is not exactly a WebSocket upgrade (a login page, a proxy
 * error, a plain HTTP server) must fail here with a message that quotes
 * what it said, not later as a confusing NBD protocol error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "peer_text.h"
#include "secret.h"
#include "ws_upgrade.h"

/* RFC 6455 section 1.3: appended to the key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ws_make_key(char key[WS_KEY_LEN + 1], struct nbdws_err *err)
{
	unsigned char raw[16];
	size_t have = 0;

	while (have < sizeof(raw)) {
		ssize_t n = getrandom(raw + have, sizeof(raw) - have, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return nbdws_err_set(err, -errno,
					     "getrandom() failed: %s",
					     strerror(errno));
		}
		have += (size_t)n;
	}
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	return 0;
}

int ws_accept_for_key(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	char buf[WS_KEY_LEN + sizeof(ws_guid)];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	if (strlen(key) != WS_KEY_LEN)
		return -EINVAL;
	memcpy(buf, key, WS_KEY_LEN);
	memcpy(buf + WS_KEY_LEN, ws_guid, sizeof(ws_guid) - 1);
	if (!EVP_Digest(buf, WS_KEY_LEN + sizeof(ws_guid) - 1, md, &md_len,
			EVP_sha1(), NULL) || md_len != 20)
		return -ENOMEM;
	EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
	return 0;
}

/* RFC 7230 tchar: what header names and subprotocol tokens consist of. */
static bool is_tchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A header value we may send: visible ASCII, space and tab, not empty. */
static bool valid_value(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* A comma-separated list of tokens with optional spaces around commas. */
static bool valid_token_list(const char *v)
{
	bool in_token = false, want_token = true;

	for (; *v; v++) {
		if (is_tchar(*v)) {
			if (!in_token && !want_token)
				return false;	/* "a b" */
			in_token = true;
			want_token = false;
		} else if (*v == ' ' || *v == '\t') {
			in_token = false;
		} else if (*v == ',') {
			if (want_token)
				return false;	/* ",a" or "a,,b" */
			in_token = false;
			want_token = true;
		} else {
			return false;
		}
	}
	return !want_token;
}

static bool valid_resource(const char *r)
{
	if (r[0] != '/')
		return false;
	for (; *r; r++)
		if ((unsigned char)*r <= 0x20 || (unsigned char)*r >= 0x7f)
			return false;
	return true;
}

/* The request for @o and @key into @buf (snprintf() semantics). */
static int format_request(char *buf, size_t size,
			  const struct ws_upgrade_opts *o, const char *key)
{
	return snprintf(buf, size, "GET %s HTTP/1.1\r\n"
			"Host: %s\r\n"
			"Upgrade: websocket\r\n"
			"Connection: Upgrade\r\n"
			"Sec-WebSocket-Key: %s\r\n"
			"Sec-WebSocket-Version: 13\r\n"
			"%s%s%s"	/* Sec-WebSocket-Protocol */
			"%s%s%s"	/* Origin */
			"%s%s%s"	/* Authorization */
			"\r\n",
			o->resource, o->host, key,
			o->subprotocol ? "Sec-WebSocket-Protocol: " : "",
			o->subprotocol ? o->subprotocol : "",
			o->subprotocol ? "\r\n" : "",
			o->origin ? "Origin: " : "", o->origin ? o->origin : "",
			o->origin ? "\r\n" : "",
			o->authorization ? "Authorization: " : "",
			o->authorization ? o->authorization : "",
			o->authorization ? "\r\n" : "");
}

int ws_build_request(const struct ws_upgrade_opts *o, const char *key,
		     char **out, size_t *len, struct nbdws_err *err)
{
	char *text;
	size_t size;
	int n;

	*out = NULL;
	*len = 0;
	if (!o->host || !valid_value(o->host) || strpbrk(o->host, " \t"))
		return nbdws_err_set(err, -EINVAL,
				     "bad WebSocket Host value: it must be host[:port] without spaces or control characters");
	if (!o->resource || !valid_resource(o->resource))
		return nbdws_err_set(err, -EINVAL,
				     "bad WebSocket resource '%s': it must start with '/' and hold no spaces or control characters",
				     o->resource ? o->resource : "");
	if (o->subprotocol && !valid_token_list(o->subprotocol))
		return nbdws_err_set(err, -EINVAL,
				     "bad WebSocket subprotocol '%s': give one or more HTTP tokens separated by commas",
				     o->subprotocol);
	if (o->authorization && !valid_value(o->authorization))
		return nbdws_err_set(err, -EINVAL,
				     "bad Authorization value: it must be one line of printable text");
	if (o->origin && !valid_value(o->origin))
		return nbdws_err_set(err, -EINVAL,
				     "bad Origin value: it must be one line of printable text");

	/*
	 * One exact allocation, formatted in place: a growing stream would
	 * leave copies of the Authorization value in the blocks it gave
	 * back on the way, where nobody can wipe them.
	 */
	n = format_request(NULL, 0, o, key);
	if (n < 0)
		return nbdws_err_set(err, -EINVAL, "cannot format the request");
	size = (size_t)n + 1;
	text = malloc(size);
	if (!text)
		return nbdws_err_set(err, -ENOMEM, "out of memory");
	if (format_request(text, size, o, key) != n) {
		secret_free(text, size);
		return nbdws_err_set(err, -EINVAL, "cannot format the request");
	}
	*out = text;
	*len = (size_t)n;
	return 0;
}

size_t ws_http_header_end(const u8 *buf, size_t len)
{
	size_t i;

	for (i = 3; i < len; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' &&
		    buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return i + 1;
	return 0;
}

static bool list_has(const char *list, const char *token, bool nocase)
{
	size_t tlen = strlen(token);
	const char *p = list;

	while (*p) {
		const char *end;
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = p;
		while (*end && *end != ',')
			end++;
		n = (size_t)(end - p);
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tlen && n && !(nocase ? strncasecmp(p, token, n) :
					       strncmp(p, token, n)))
			return true;
		p = end;
	}
	return false;
}

char *ws_http_field_value(char *colon)
{
	char *v = colon + 1, *end;

	*colon = '\0';
	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return v;
}

bool ws_http_list_has(const char *list, const char *token)
{
	return list_has(list, token, true);
}

/* What the parser keeps from the header fields it cares about. */
struct resp_fields {
	int n_upgrade, n_accept, n_protocol;
	bool upgrade_ok, connection_upgrade, extensions;
	char accept[64];
	char protocol[256];
	char location[160];
};

/* Check one "Name: value" line (no CRLF, NUL-terminated value in place). */
static int take_field(struct resp_fields *rf, char *line,
		      struct nbdws_err *err)
{
	char *colon = strchr(line, ':');
	char *v, *end;
	char shown[80];

	if (line[0] == ' ' || line[0] == '\t')
		return nbdws_err_set(err, -EPROTO,
				     "malformed WebSocket upgrade response: folded header line");
	if (!colon || colon == line) {
		peer_text(shown, sizeof(shown), line, strlen(line));
		return nbdws_err_set(err, -EPROTO,
				     "malformed WebSocket upgrade response: header line '%s'",
				     shown);
	}
	for (v = line; v < colon; v++)
		if (!is_tchar(*v))
			return nbdws_err_set(err, -EPROTO,
					     "malformed WebSocket upgrade response: bad header name");
	v = ws_http_field_value(colon);
	for (end = v; *end; end++)
		if (((unsigned char)*end < 0x20 && *end != '\t') ||
		    *end == 0x7f)
			return nbdws_err_set(err, -EPROTO,
					     "malformed WebSocket upgrade response: control character in header '%s'",
					     line);

	if (!strcasecmp(line, "Upgrade")) {
		rf->n_upgrade++;
		rf->upgrade_ok = !strcasecmp(v, "websocket");
	} else if (!strcasecmp(line, "Connection")) {
		if (ws_http_list_has(v, "upgrade"))
			rf->connection_upgrade = true;
	} else if (!strcasecmp(line, "Sec-WebSocket-Accept")) {
		rf->n_accept++;
		snprintf(rf->accept, sizeof(rf->accept), "%s", v);
	} else if (!strcasecmp(line, "Sec-WebSocket-Protocol")) {
		rf->n_protocol++;
		/* A token when valid; shown in messages when not. */
		peer_text(rf->protocol, sizeof(rf->protocol), v, strlen(v));
	} else if (!strcasecmp(line, "Sec-WebSocket-Extensions")) {
		if (*v)
			rf->extensions = true;
	} else if (!strcasecmp(line, "Location")) {
		peer_text(rf->location, sizeof(rf->location), v, strlen(v));
	}
	return 0;
}

/* Parse "HTTP/1.1 NNN reason"; returns the status or -EPROTO. */
static int parse_status_line(const char *line)
{
	int code;

	if (strncmp(line, "HTTP/1.1 ", 9) != 0)
		return -EPROTO;
	line += 9;
	if (line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' || (line[3] && line[3] != ' '))
		return -EPROTO;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	return code;
}

static int refused(int status, const char *line, const struct resp_fields *rf,
		   struct nbdws_err *err)
{
	char shown[160];

	peer_text(shown, sizeof(shown), line, strlen(line));
	switch (status) {
	case 401:
		return nbdws_err_set(err, -EACCES,
				     "the server refused the WebSocket upgrade with \"%s\": it requires authorization; pass credentials with the Authorization header option (or check the ones given)",
				     shown);
	case 407:
		return nbdws_err_set(err, -EACCES,
				     "a proxy refused the WebSocket upgrade with \"%s\": it requires proxy authorization, which is not supported; connect to the server directly",
				     shown);
	case 403:
		return nbdws_err_set(err, -EACCES,
				     "the server refused the WebSocket upgrade with \"%s\": check the Authorization and Origin options and the path",
				     shown);
	case 404:
		return nbdws_err_set(err, -ECONNREFUSED,
				     "the server refused the WebSocket upgrade with \"%s\": check the path in the URI",
				     shown);
	case 200:
		return nbdws_err_set(err, -ECONNREFUSED,
				     "the server answered the WebSocket upgrade with \"%s\": it is a plain HTTP server, not a WebSocket endpoint at this path",
				     shown);
	}
	if (status >= 300 && status < 400 && rf->location[0])
		return nbdws_err_set(err, -ECONNREFUSED,
				     "the server answered the WebSocket upgrade with \"%s\" to %s: redirects are not followed, use that URI",
				     shown, rf->location);
	return nbdws_err_set(err, -ECONNREFUSED,
			     "the server refused the WebSocket upgrade with \"%s\"",
			     shown);
}

/*
 * Is @proto exactly one of the tokens in the comma-separated @offered?
 * Subprotocol names are compared with their case (RFC 6455 4.1).
 */
static bool offered(const char *offered, const char *proto)
{
	return valid_token_list(proto) && !strpbrk(proto, ", \t") &&
	       list_has(offered, proto, false);
}

static int check_upgrade(const struct resp_fields *rf, const char *key,
			 const char *subprotocol, char **chosen,
			 struct nbdws_err *err)
{
	char want[WS_ACCEPT_LEN + 1];

	if (rf->n_upgrade != 1 || !rf->upgrade_ok)
		return nbdws_err_set(err, -EPROTO,
				     "bad WebSocket upgrade response: it needs exactly one \"Upgrade: websocket\" header");
	if (!rf->connection_upgrade)
		return nbdws_err_set(err, -EPROTO,
				     "bad WebSocket upgrade response: no \"Connection: Upgrade\" header");
	if (rf->n_accept != 1)
		return nbdws_err_set(err, -EPROTO,
				     "bad WebSocket upgrade response: it needs exactly one Sec-WebSocket-Accept header");
	if (ws_accept_for_key(key, want))
		return nbdws_err_set(err, -EINVAL, "bad Sec-WebSocket-Key");
	if (strcmp(rf->accept, want) != 0)
		return nbdws_err_set(err, -EPROTO,
				     "bad WebSocket upgrade response: Sec-WebSocket-Accept does not match our key (a proxy or cache in the way?)");
	if (rf->extensions)
		return nbdws_err_set(err, -EPROTO,
				     "bad WebSocket upgrade response: the server selected an extension although none was offered");
	if (rf->n_protocol > 1)
		return nbdws_err_set(err, -EPROTO,
				     "bad WebSocket upgrade response: more than one Sec-WebSocket-Protocol header");
	if (!subprotocol) {
		if (rf->n_protocol)
			return nbdws_err_set(err, -EPROTO,
					     "bad WebSocket upgrade response: the server selected subprotocol '%s' although none was requested",
					     rf->protocol);
		*chosen = NULL;
		return 0;
	}
	if (!rf->n_protocol)
		return nbdws_err_set(err, -EPROTO,
				     "the WebSocket server did not accept subprotocol '%s' (its response names none)",
				     subprotocol);
	if (!offered(subprotocol, rf->protocol))
		return nbdws_err_set(err, -EPROTO,
				     "bad WebSocket upgrade response: the server selected subprotocol '%s', which was not requested",
				     rf->protocol);
	*chosen = strdup(rf->protocol);
	return *chosen ? 0 : nbdws_err_set(err, -ENOMEM, "out of memory");
}

int ws_parse_response(const char *hdr, size_t len, const char *key,
		      const char *subprotocol, int *status, char **chosen,
		      struct nbdws_err *err)
{
	struct resp_fields rf = { 0 };
	char *copy, *line, *next;
	char shown[160];
	int rc, code;

	*status = 0;
	*chosen = NULL;
	if (len < 4 || ws_http_header_end((const u8 *)hdr, len) != len)
		return nbdws_err_set(err, -EPROTO,
				     "malformed WebSocket upgrade response: no header terminator");
	if (memchr(hdr, '\0', len))
		return nbdws_err_set(err, -EPROTO,
				     "malformed WebSocket upgrade response: NUL byte in header");
	copy = malloc(len + 1);
	if (!copy)
		return nbdws_err_set(err, -ENOMEM, "out of memory");
	memcpy(copy, hdr, len);
	copy[len] = '\0';

	line = copy;
	next = strstr(line, "\r\n");
	*next = '\0';
	next += 2;
	code = strpbrk(line, "\r\n") ? -EPROTO : parse_status_line(line);
	if (code < 0) {
		peer_text(shown, sizeof(shown), line, strlen(line));
		rc = nbdws_err_set(err, -EPROTO,
				   "the WebSocket server did not answer with HTTP/1.1 (first line: \"%s\")",
				   shown);
		goto out;
	}
	*status = code;
	for (line = next; *line; line = next) {
		next = strstr(line, "\r\n");
		*next = '\0';
		next += 2;
		if (!*line)
			break;	/* the blank line */
		/* A bare CR or LF inside a line is not HTTP/1.1 framing. */
		if (strpbrk(line, "\r\n")) {
			rc = nbdws_err_set(err, -EPROTO,
					   "malformed WebSocket upgrade response: bare CR or LF in header");
			goto out;
		}
		rc = take_field(&rf, line, err);
		if (rc)
			goto out;
	}
	if (code != 101) {
		rc = refused(code, copy, &rf, err);
		goto out;
	}
	rc = check_upgrade(&rf, key, subprotocol, chosen, err);
out:
	/* The chosen subprotocol may be a token the client offered. */
	secret_free(copy, len + 1);
	return rc;
}

/* Read until the header terminator; *hlen = header bytes, *have = total. */
static int read_header(const struct ws_io *io, u8 *buf, size_t *hlen,
		       size_t *have, struct nbdws_err *err)
{
	*have = 0;
	for (;;) {
		size_t from = *have > 3 ? *have - 3 : 0;
		ssize_t n;

		if (*have == WS_HTTP_MAX_HEADER)
			return nbdws_err_set(err, -EMSGSIZE,
					     "the WebSocket upgrade response header is larger than %d bytes",
					     WS_HTTP_MAX_HEADER);
		n = io->read(io->ctx, buf + *have, WS_HTTP_MAX_HEADER - *have);
		if (n == 0)
			return nbdws_err_set(err, -ECONNRESET,
					     "the server closed the connection during the WebSocket upgrade (after %zu bytes of response)",
					     *have);
		if (n == -ETIMEDOUT)
			return nbdws_err_set(err, -ETIMEDOUT,
					     "no complete WebSocket upgrade response in time (%zu bytes received)",
					     *have);
		if (n < 0)
			return nbdws_err_set(err, (int)n,
					     "reading the WebSocket upgrade response: %s",
					     strerror((int)-n));
		*have += (size_t)n;
		*hlen = ws_http_header_end(buf + from, *have - from);
		if (*hlen) {
			*hlen += from;
			return 0;
		}
	}
}

int ws_upgrade_client(const struct ws_io *io, const struct ws_upgrade_opts *o,
		      struct ws_upgrade_result *res, struct nbdws_err *err)
{
	char key[WS_KEY_LEN + 1];
	size_t req_len = 0, hlen = 0, have = 0;
	char *req = NULL;
	u8 *buf;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = ws_make_key(key, err);
	if (rc)
		return rc;
	rc = ws_build_request(o, key, &req, &req_len, err);
	if (rc)
		return rc;
	rc = io->write(io->ctx, req, req_len);
	secret_free(req, req_len);
	if (rc)
		return nbdws_err_set(err, rc,
				     "sending the WebSocket upgrade request: %s",
				     strerror(-rc));

	buf = malloc(WS_HTTP_MAX_HEADER);
	if (!buf)
		return nbdws_err_set(err, -ENOMEM, "out of memory");
	rc = read_header(io, buf, &hlen, &have, err);
	if (!rc)
		rc = ws_parse_response((const char *)buf, hlen, key,
				       o->subprotocol, &res->status,
				       &res->subprotocol, err);
	if (!rc && have > hlen) {
		res->preread = malloc(have - hlen);
		if (!res->preread) {
			rc = nbdws_err_set(err, -ENOMEM, "out of memory");
		} else {
			memcpy(res->preread, buf + hlen, have - hlen);
			res->preread_len = have - hlen;
		}
	}
	/* The response may echo a token offered as subprotocol. */
	secret_free(buf, WS_HTTP_MAX_HEADER);
	if (rc) {
		int status = res->status;

		ws_upgrade_result_free(res);
		res->status = status;
	}
	return rc;
}

void ws_upgrade_result_free(struct ws_upgrade_result *res)
{
	secret_free_str(res->subprotocol);
	free(res->preread);
	memset(res, 0, sizeof(*res));
}
