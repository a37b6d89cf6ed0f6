/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One strict HTTP/1.1 request parser (RFC 9112) for everything in this
 * project that answers HTTP: the WebSocket upgrade (ws_accept.h) and the
 * relay's plain requests (/status, /slots, static files).
 *
 * Strict on purpose. The relay sits in front of a block device and is
 * often reached through proxies; a request that two parsers could read
 * two ways (bare LF or CR line ends, obsolete line folding, whitespace
 * before the colon, control bytes) is the raw material of request
 * smuggling, so it is refused rather than guessed at. Every refusal comes
 * with the status to answer and a sentence saying why.
 *
 * The parser works on a private copy of the header, split in place: the
 * strings in struct http_request point into req->buf and live until
 * http_request_free().
 */
#ifndef _NBDWS_HTTP_REQ_H
#define _NBDWS_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "nbdws_types.h"
#include "nbdws_err.h"
#include "ws_io.h"

/* More header fields than this: 431. */
#define HTTP_MAX_FIELDS 64

struct http_field {
	const char *name;	/* as sent; compare without regard to case */
	const char *value;	/* optional whitespace around it removed */
};

struct http_request {
	char *buf;			/* private copy, split in place */
	size_t buf_size;		/* wiped on free: it holds credentials */
	const char *method;		/* "GET" */
	const char *target;		/* as sent: "/path?query" */
	const char *path;		/* target before '?' (not decoded) */
	const char *query;		/* after '?', or NULL */
	unsigned int version_minor;	/* HTTP/1.x */
	struct http_field fields[HTTP_MAX_FIELDS];
	unsigned int n_fields;
};

/*
 * Parse the complete request header @hdr (@len bytes, ending with the
 * blank line "\r\n\r\n"; the bytes after it are not looked at). A request
 * line longer than @max_line bytes (CRLF not counted) is refused with 414.
 *
 * Returns 0 with @req filled (release with http_request_free()), or the
 * HTTP status to refuse with: 400 malformed (bare CR or LF, NUL or other
 * control bytes, a method that is not a token, a target not in origin
 * form, a bad field line, obsolete line folding), 414 request line too
 * long, 431 more than HTTP_MAX_FIELDS fields, 505 not HTTP/1.x; or 500
 * when out of memory. @err says why. On refusal @req holds nothing to
 * free (http_request_free() on it is harmless).
 */
int http_parse_request(const char *hdr, size_t len, size_t max_line,
		       struct http_request *req, struct nbdws_err *err);

void http_request_free(struct http_request *req);

/* Value of the first field named @name (any case), or NULL. */
const char *http_get(const struct http_request *req, const char *name);

/* How many fields are named @name (any case). */
unsigned int http_count(const struct http_request *req, const char *name);

/*
 * Iterate over the elements of a comma-separated list (RFC 9110 5.6.1)
 * spread over every field named @name, in order: optional whitespace
 * around each element is trimmed and empty elements are skipped. Start
 * with *field = 0 and *cursor = NULL. Each call copies the next element
 * into @out (NUL-terminated) and returns true; false at the end. An
 * element that does not fit in @size bytes is skipped (it cannot be one
 * the caller is looking for).
 */
bool http_next_token(const struct http_request *req, const char *name,
		     unsigned int *field, const char **cursor,
		     char *out, size_t size);

/*
 * Query parameter @name of @query (the part after '?', may be NULL),
 * percent-decoded into @out (NUL-terminated). '+' is kept as '+' (it is
 * a base64 character in tokens, not a space). Returns false if the
 * parameter is absent, has a bad escape or an escaped NUL, or does not
 * fit in @size bytes. The first occurrence counts.
 */
bool http_query_param(const char *query, const char *name, char *out,
		      size_t size);

/*
 * Read a request header from @io into @buf (at most @max bytes), until
 * the blank line. Returns 0 with *hend the header's length (terminator
 * included) and *have the bytes read in all: the ones past *hend arrived
 * with the header and belong to what follows (WebSocket frames). Errors,
 * with @err set: -EMSGSIZE no header end within @max bytes (answer 431),
 * -ECONNRESET the peer closed before the header was complete,
 * -ETIMEDOUT @io's deadline passed (answer 408), other transport errors.
 */
int http_read_header(const struct ws_io *io, u8 *buf, size_t max,
		     size_t *have, size_t *hend, struct nbdws_err *err);

/*
 * A whole response in @out: status line (HTTP/1.1, http_reason()), the
 * @extra_headers given (already "Name: value\r\n" lines, or NULL),
 * Content-Type if @content_type is not NULL, Content-Length: @body_len
 * (not for 1xx and 204, which RFC 9110 8.6 forbids it on), Connection:
 * close, the blank line, then @body_len bytes of @body (@body may be NULL
 * when @body_len is 0; a HEAD answer passes the length with no body by
 * building the GET answer and sending only its header).
 * Returns the length, or 0 if it does not fit in @size (never a
 * truncated response).
 */
size_t http_build_response(char *out, size_t size, int status,
			   const char *extra_headers, const char *content_type,
			   const void *body, size_t body_len);

/* Reason phrase of @status ("Not Found"), "Unknown" for one not known. */
const char *http_reason(int status);

#endif /* _NBDWS_HTTP_REQ_H */
