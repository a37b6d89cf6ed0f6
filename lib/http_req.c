// SPDX-License-Identifier: GPL-2.0
/*
 * Strict HTTP/1.1 request parsing (see http_req.h). The grammar is RFC
 * 9112's, with none of the leniencies its section 2.2 allows a server
 * (bare LF line ends, leading empty lines, whitespace before the colon,
 * obsolete line folding): each of them is a way for a proxy in front and
 * this parser to disagree about where a request or a field ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_req.h"
#include "pct.h"
#include "secret.h"

/* RFC 9110 5.6.2: tchar, the characters of a token. */
static bool is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field value bytes (RFC 9110 5.5): VCHAR, obs-text, SP and HTAB. */
static bool is_value_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool all_tchar(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return n > 0;
}

/*
 * The request target in origin-form (RFC 9112 3.2.1): absolute-path
 * [ "?" query ]. Only visible ASCII; a fragment ('#') is never sent.
 */
static bool target_ok(const char *t, size_t n)
{
	size_t i;

	if (!n || t[0] != '/')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c <= 0x20 || c >= 0x7f || c == '#')
			return false;
	}
	return true;
}

/*
 * Split @line (NUL-terminated, no CRLF) into method, target and version.
 * Returns 0 or the status to refuse with.
 */
static int request_line(char *line, size_t n, size_t max_line,
			struct http_request *req, char *target_copy,
			struct nbdws_err *err)
{
	char *sp1, *sp2, *q;
	const char *v;

	if (n > max_line)
		return nbdws_err_set(err, 414,
				     "the request line is longer than %zu bytes",
				     max_line);
	if (!n)
		return nbdws_err_set(err, 400,
				     "the request starts with an empty line");
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strchr(sp2 + 1, ' '))
		return nbdws_err_set(err, 400,
				     "the request line is not \"METHOD TARGET HTTP/1.1\"");
	if (!all_tchar(line, (size_t)(sp1 - line)))
		return nbdws_err_set(err, 400,
				     "the request method is not a token");
	if (!target_ok(sp1 + 1, (size_t)(sp2 - sp1 - 1)))
		return nbdws_err_set(err, 400,
				     "the request target is not a path starting with '/' in visible ASCII");
	v = sp2 + 1;
	/* RFC 9112 2.3: "HTTP/" DIGIT "." DIGIT, exactly. */
	if (strncmp(v, "HTTP/1.", 7) != 0 || v[7] < '0' || v[7] > '9' || v[8])
		return nbdws_err_set(err, 505,
				     "the request is not HTTP/1.x");
	*sp1 = '\0';
	*sp2 = '\0';
	req->method = line;
	req->target = sp1 + 1;
	req->version_minor = (unsigned int)(v[7] - '0');
	/* The path is a prefix of the target: give it a string of its own. */
	memcpy(target_copy, req->target, (size_t)(sp2 - sp1));
	q = strchr(target_copy, '?');
	if (q) {
		*q = '\0';
		req->query = q + 1;
	}
	req->path = target_copy;
	return 0;
}

/* One field line (NUL-terminated, no CRLF). 0 or the status to refuse with. */
static int field_line(char *line, struct http_request *req,
		      struct nbdws_err *err)
{
	char *colon = strchr(line, ':'), *v, *end;
	struct http_field *f;

	if (is_ows(*line))
		return nbdws_err_set(err, 400,
				     "obsolete line folding in the request header");
	if (!colon || !all_tchar(line, (size_t)(colon - line)))
		return nbdws_err_set(err, 400,
				     "a header field name is not a token followed by ':'");
	for (v = colon + 1; *v; v++)
		if (!is_value_byte((unsigned char)*v))
			return nbdws_err_set(err, 400,
					     "a header field value holds a control byte");
	if (req->n_fields == HTTP_MAX_FIELDS)
		return nbdws_err_set(err, 431,
				     "the request has more than %d header fields",
				     HTTP_MAX_FIELDS);
	*colon = '\0';
	for (v = colon + 1; is_ows(*v); v++)
		;
	for (end = v + strlen(v); end > v && is_ows(end[-1]); end--)
		;
	*end = '\0';
	f = &req->fields[req->n_fields++];
	f->name = line;
	f->value = v;
	return 0;
}

int http_parse_request(const char *hdr, size_t len, size_t max_line,
		       struct http_request *req, struct nbdws_err *err)
{
	char *line, *end, *cr, *target_copy;
	bool first = true;
	int rc = 0;

	memset(req, 0, sizeof(*req));
	if (len < 4 || memcmp(hdr + len - 4, "\r\n\r\n", 4) != 0)
		return nbdws_err_set(err, 400,
				     "the request header is not complete");
	if (memchr(hdr, '\0', len))
		return nbdws_err_set(err, 400,
				     "the request header holds a NUL byte");
	/* The header, then room for the path as a string of its own. */
	req->buf_size = 2 * len + 2;
	req->buf = malloc(req->buf_size);
	if (!req->buf)
		return nbdws_err_set(err, 500, "out of memory");
	memcpy(req->buf, hdr, len);
	req->buf[len] = '\0';
	target_copy = req->buf + len + 1;
	end = req->buf + len - 2;	/* the final CRLF */
	for (line = req->buf; !rc && line < end; line = cr + 2) {
		char *lf = strchr(line, '\n');

		cr = strchr(line, '\r');
		/* Every line ends in CRLF; no CR or LF anywhere else. */
		if (cr[1] != '\n' || (lf && lf < cr)) {
			rc = nbdws_err_set(err, 400,
					   "the request header has a line not ended by CRLF");
			break;
		}
		*cr = '\0';
		if (first)
			rc = request_line(line, (size_t)(cr - line), max_line,
					  req, target_copy, err);
		else
			rc = field_line(line, req, err);
		first = false;
	}
	if (rc)
		http_request_free(req);
	return rc;
}

void http_request_free(struct http_request *req)
{
	/* Authorization, a ?token= or a token offered as subprotocol. */
	secret_free(req->buf, req->buf_size);
	memset(req, 0, sizeof(*req));
}

const char *http_get(const struct http_request *req, const char *name)
{
	unsigned int i;

	for (i = 0; i < req->n_fields; i++)
		if (!strcasecmp(req->fields[i].name, name))
			return req->fields[i].value;
	return NULL;
}

unsigned int http_count(const struct http_request *req, const char *name)
{
	unsigned int i, n = 0;

	for (i = 0; i < req->n_fields; i++)
		if (!strcasecmp(req->fields[i].name, name))
			n++;
	return n;
}

bool http_next_token(const struct http_request *req, const char *name,
		     unsigned int *field, const char **cursor,
		     char *out, size_t size)
{
	while (*field < req->n_fields) {
		const struct http_field *f = &req->fields[*field];

		if (strcasecmp(f->name, name) != 0) {
			(*field)++;
			*cursor = NULL;
			continue;
		}
		if (!*cursor)
			*cursor = f->value;
		while (**cursor) {
			const char *s = *cursor, *e = strchr(s, ',');

			if (!e)
				e = s + strlen(s);
			*cursor = *e ? e + 1 : e;
			while (s < e && is_ows(*s))
				s++;
			while (e > s && is_ows(e[-1]))
				e--;
			if (e == s || (size_t)(e - s) >= size)
				continue;
			memcpy(out, s, (size_t)(e - s));
			out[e - s] = '\0';
			return true;
		}
		(*field)++;
		*cursor = NULL;
	}
	return false;
}

/* Percent-decode @n bytes of @s into @out (@size bytes with the NUL). */
static bool pct_decode(const char *s, size_t n, char *out, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return false;
			hi = pct_hex_digit(s[i + 1]);
			lo = pct_hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return false;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = c;
	}
	if (!size)
		return false;
	out[o] = '\0';
	return true;
}

bool http_query_param(const char *query, const char *name, char *out,
		      size_t size)
{
	size_t name_len = strlen(name);
	const char *p = query;

	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t n = amp ? (size_t)(amp - p) : strlen(p);

		if (n >= name_len && !strncmp(p, name, name_len) &&
		    (n == name_len || p[name_len] == '=')) {
			const char *v = p + name_len + (n > name_len);

			return pct_decode(v, n - (size_t)(v - p), out, size);
		}
		p = amp ? amp + 1 : NULL;
	}
	return false;
}

int http_read_header(const struct ws_io *io, u8 *buf, size_t max,
		     size_t *have, size_t *hend, struct nbdws_err *err)
{
	*have = 0;
	*hend = 0;
	for (;;) {
		size_t from = *have > 3 ? *have - 3 : 0;
		const u8 *end;
		ssize_t n;

		if (*have == max)
			return nbdws_err_set(err, -EMSGSIZE,
					     "the request header is larger than %zu bytes",
					     max);
		n = io->read(io->ctx, buf + *have, max - *have);
		if (n == 0)
			return nbdws_err_set(err, -ECONNRESET,
					     "the client closed the connection before its request was complete (%zu bytes)",
					     *have);
		if (n < 0)
			return nbdws_err_set(err, (int)n,
					     "reading the request: %s",
					     n == -ETIMEDOUT ? "timed out" :
					     strerror((int)-n));
		*have += (size_t)n;
		/* Only the new bytes (and 3 before them) can complete it. */
		end = memmem(buf + from, *have - from, "\r\n\r\n", 4);
		if (end) {
			*hend = (size_t)(end - buf) + 4;
			return 0;
		}
	}
}

const char *http_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

size_t http_build_response(char *out, size_t size, int status,
			   const char *extra_headers, const char *content_type,
			   const void *body, size_t body_len)
{
	/* RFC 9110 8.6: no Content-Length on 1xx and 204. */
	bool no_length = (status >= 100 && status < 200) || status == 204;
	char length[48] = "";
	int n;

	if (status < 100 || status > 999)
		return 0;
	if (!no_length)
		snprintf(length, sizeof(length), "Content-Length: %zu\r\n",
			 body_len);
	n = snprintf(out, size, "HTTP/1.1 %d %s\r\n%s%s%s%s%sConnection: close\r\n\r\n",
		     status, http_reason(status),
		     extra_headers ? extra_headers : "",
		     content_type ? "Content-Type: " : "",
		     content_type ? content_type : "",
		     content_type ? "\r\n" : "", length);
	if (n < 0 || (size_t)n >= size || body_len >= size - (size_t)n)
		return 0;
	if (body_len)
		memcpy(out + n, body, body_len);
	return (size_t)n + body_len;
}
