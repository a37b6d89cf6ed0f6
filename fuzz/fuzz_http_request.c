// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: the strict HTTP/1.1 request parser every server side
 * of nbdws uses (lib/http_req.c), the helpers that read what it parsed
 * (http_get, http_count, http_next_token, http_query_param), and the
 * WebSocket upgrade check on top of it (lib/ws_accept.c).
 *
 * Input: byte 0 picks the request-line limit (bits 0-2) and whether the
 * blank line is appended (bit 3), so that random bytes reach the line
 * parser instead of failing the "complete header" test; the rest is the
 * header. Contracts checked:
 *   - a refusal is one of 400, 414, 431, 500, 505, with a message, and
 *     leaves nothing to free;
 *   - a success has method, target, path, query and every field name and
 *     value inside the input, in the shapes the header file promises
 *     (token method, origin-form target no longer than the limit, no
 *     whitespace around values, no control bytes);
 *   - the list and query helpers return bounded, trimmed, terminated
 *     strings;
 *   - ws_check_upgrade() and ws_parse_request() return only their
 *     documented errors and agree with each other.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http_req.h"
#include "ws_accept.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Field value bytes: HTAB, SP, VCHAR and obs-text. */
static int value_ok(const char *v)
{
	for (; *v; v++)
		if (*v != '\t' && ((unsigned char)*v < 0x20 || *v == 0x7f))
			return 0;
	return 1;
}

static size_t line_len(const char *hdr, size_t len)
{
	const char *cr = memchr(hdr, '\r', len);

	return cr ? (size_t)(cr - hdr) : len;
}

static void check_tokens(const struct http_request *req, const char *name,
			 size_t len)
{
	const char *cursor = NULL;
	unsigned int field = 0, n = 0;
	char tok[16];

	while (http_next_token(req, name, &field, &cursor, tok, sizeof(tok))) {
		size_t tl = strlen(tok);

		fz_check(tl > 0 && tl < sizeof(tok), "token length");
		fz_check(!strchr(tok, ','), "comma in a list element");
		fz_check(!is_ows(tok[0]) && !is_ows(tok[tl - 1]),
			 "list element not trimmed");
		fz_check(++n <= len, "more list elements than bytes");
	}
	fz_check(field == req->n_fields, "token iteration stopped early");
}

static void check_query(const char *query)
{
	char name[32], out[64], small[4];
	size_t nl;

	/* The first parameter's name, and one that is usually absent. */
	nl = strcspn(query, "=&");
	if (nl >= sizeof(name))
		nl = sizeof(name) - 1;
	memcpy(name, query, nl);
	name[nl] = '\0';
	if (http_query_param(query, name, out, sizeof(out)))
		fz_check(strlen(out) < sizeof(out), "query value length");
	if (http_query_param(query, name, small, sizeof(small)))
		fz_check(strlen(small) < sizeof(small), "query value length");
	if (http_query_param(query, "token", out, sizeof(out)))
		fz_check(strlen(out) < sizeof(out), "query value length");
	fz_check(!http_query_param(query, name, out, 0), "zero-size output");
}

static int in_buf(const struct http_request *req, size_t len, const char *p)
{
	return p >= req->buf && p < req->buf + 2 * len + 2;
}

static void check_parsed(const struct http_request *req, const char *hdr,
			 size_t len, size_t max_line)
{
	size_t ml = strlen(req->method), tl = strlen(req->target);
	unsigned int i;

	fz_check(req->buf && in_buf(req, len, req->method) &&
		 in_buf(req, len, req->target) && in_buf(req, len, req->path),
		 "strings outside the request's buffer");
	fz_check(ml > 0 && memcmp(hdr, req->method, ml) == 0 &&
		 hdr[ml] == ' ', "method is not the start of the request");
	fz_check(tl > 0 && tl <= max_line && req->target[0] == '/' &&
		 memcmp(hdr + ml + 1, req->target, tl) == 0 &&
		 hdr[ml + 1 + tl] == ' ', "target is not the request's");
	fz_check(req->version_minor <= 9, "version");
	if (req->query) {
		size_t pl = strlen(req->path);

		fz_check(in_buf(req, len, req->query) &&
			 req->target[pl] == '?' &&
			 !strcmp(req->target + pl + 1, req->query),
			 "path and query do not make up the target");
		check_query(req->query);
	} else {
		fz_check(!strcmp(req->path, req->target) &&
			 !strchr(req->target, '?'), "path is not the target");
	}
	fz_check(req->n_fields <= HTTP_MAX_FIELDS, "too many fields");
	for (i = 0; i < req->n_fields; i++) {
		const struct http_field *f = &req->fields[i];
		size_t vl = strlen(f->value);

		fz_check(in_buf(req, len, f->name) &&
			 in_buf(req, len, f->value), "field outside the buffer");
		fz_check(*f->name && fz_within(hdr, len, f->name) &&
			 fz_within(hdr, len, f->value), "field not in the input");
		fz_check(!strpbrk(f->name, ": \t\r\n"), "field name");
		fz_check(!vl || (!is_ows(f->value[0]) &&
				 !is_ows(f->value[vl - 1])),
			 "field value not trimmed");
		fz_check(value_ok(f->value), "control byte in a field value");
		fz_check(http_get(req, f->name) &&
			 http_count(req, f->name) >= 1, "field not found");
		/* The list walk visits every field: the first few suffice. */
		if (i < 4)
			check_tokens(req, f->name, len);
	}
	check_tokens(req, "Connection", len);
}

/*
 * The upgrade check on what was parsed (@prc, @req), and, when the parse
 * used the limit ws_parse_request() uses, that function on the same
 * bytes: the two must agree.
 */
static void check_upgrade(const char *hdr, size_t len, int prc,
			  const struct http_request *req, size_t max_line)
{
	struct ws_accept_opts o = { .subprotocol = "nbd" };
	struct ws_request wr;
	struct nbdws_err err = { "" };
	char accept[WS_ACCEPT_LEN + 1] = "", out[512];
	int rc, up = -EPROTO;

	if (!prc) {
		up = ws_check_upgrade(req, accept, &err);
		fz_check(up == 0 || up == -ENOTCONN || up == -EPROTO ||
			 up == -EPROTONOSUPPORT || up == -ENOMEM,
			 "ws_check_upgrade() result");
		fz_check(up || strlen(accept) == WS_ACCEPT_LEN,
			 "accept value length");
		fz_check(!up || !accept[0], "accept value set on refusal");
		if (!up)
			fz_check(ws_build_accept(accept, NULL, out, sizeof(out)),
				 "101 response does not fit");
	}
	if (max_line != WS_HTTP_MAX_HEADER)
		return;

	o.require_subprotocol = len & 1;
	err.msg[0] = '\0';
	rc = ws_parse_request(hdr, len, &o, &wr, &err);
	fz_check(rc == 0 || rc == -EPROTO || rc == -EPROTONOSUPPORT ||
		 rc == -ENOENT || rc == -ENOMEM, "ws_parse_request() result");
	if (!rc) {
		fz_check(!prc && !up && !strcmp(wr.accept, accept) &&
			 !strcmp(wr.target, req->target),
			 "ws_parse_request() and ws_check_upgrade() disagree");
		fz_check(!o.require_subprotocol || wr.subprotocol_chosen,
			 "required subprotocol not chosen");
	} else {
		fz_check(!wr.accept[0] && err.msg[0], "refusal without message");
		fz_check(prc || up || rc == -ENOENT ||
			 strlen(req->target) > WS_ACCEPT_MAX_TARGET,
			 "ws_parse_request() refused what passed the check");
	}
	fz_check(ws_build_response(rc, &wr, &o, out, sizeof(out)) > 0,
		 "no response for a parse result");
	if (!rc)
		fz_check(strstr(out, accept) != NULL, "accept not in 101");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request req;
	struct nbdws_err err = { "" };
	size_t len, max_line;
	char *hdr;
	int rc;

	if (size < 1)
		return 0;
	max_line = (data[0] & 7) == 7 ? WS_HTTP_MAX_HEADER :
		   (size_t)8 << (data[0] & 7);
	len = size - 1;
	/* An exact-size copy: ASan sees any read past the header. */
	hdr = malloc(len + 4);
	if (!hdr)
		return 0;
	memcpy(hdr, data + 1, len);
	if (data[0] & 8) {
		/* Bytes on the wire: no terminator. */
		memcpy(hdr + len, "\r\n\r\n", 4); /* NOLINT(bugprone-not-null-terminated-result) */
		len += 4;
	}

	rc = http_parse_request(hdr, len, max_line, &req, &err);
	if (rc) {
		fz_check(rc == 400 || rc == 414 || rc == 431 || rc == 500 ||
			 rc == 505, "refusal status");
		fz_check(err.msg[0] != '\0', "refusal without message");
		fz_check(!req.buf && !req.method && !req.n_fields,
			 "refusal left something behind");
		fz_check(rc != 414 || line_len(hdr, len) > max_line,
			 "414 for a short request line");
	} else {
		fz_check(memchr(hdr, '\r', len) &&
			 memcmp(hdr + len - 4, "\r\n\r\n", 4) == 0,
			 "accepted an incomplete header");
		check_parsed(&req, hdr, len, max_line);
	}
	check_upgrade(hdr, len, rc, &req, max_line);
	http_request_free(&req);
	http_request_free(&req);	/* twice: must be harmless */
	free(hdr);
	return 0;
}
