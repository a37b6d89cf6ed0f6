/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The HTTP/1.1 upgrade that opens a WebSocket connection (RFC 6455
 * section 4), client side: build the GET request, read the response within
 * hard limits, and check it strictly. The pieces are exported on their own
 * (key, accept value, request text, response parser) so that unit tests can
 * drive them without sockets, and so that the server side (the relay) can
 * reuse the accept computation and the header helpers from a sibling file.
 *
 * Bytes the server sent after the response header are the first WebSocket
 * frames; they are returned to the caller, which must feed them to the
 * frame decoder before anything read later (the kernel takes them as
 * pre-read bytes of the connection).
 */
#ifndef _NBDWS_WS_UPGRADE_H
#define _NBDWS_WS_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "nbdws_types.h"
#include "nbdws_err.h"
#include "ws_io.h"

/* Largest HTTP header accepted from the peer, terminator included. */
#define WS_HTTP_MAX_HEADER	8192
/* Base64 of 16 random bytes, plus NUL. */
#define WS_KEY_LEN		24
/* Base64 of a SHA-1 digest, plus NUL. */
#define WS_ACCEPT_LEN		28

struct ws_upgrade_opts {
	const char *host;	/* Host header value: "host[:port]" */
	const char *resource;	/* request target, "/path[?query]" */
	const char *subprotocol; /* NULL, or one or more comma-separated tokens */
	const char *authorization; /* NULL, or the Authorization header value */
	const char *origin;	/* NULL, or the Origin header value */
};

struct ws_upgrade_result {
	int status;		/* HTTP status code of the response */
	char *subprotocol;	/* chosen by the server; NULL if none asked */
	u8 *preread;		/* bytes past the header (may be NULL) */
	size_t preread_len;
};

/*
 * Run the client side of the upgrade over @io: send the request, read and
 * check the response. Returns 0 with @res filled (free it with
 * ws_upgrade_result_free()), or a negative errno with a message in @err:
 * -EACCES the server wants (other) credentials (401, 403, 407),
 * -ECONNREFUSED any other non-101 status (the message quotes the status
 * line), -EPROTO a malformed or non-conforming response, -EMSGSIZE a
 * header larger than WS_HTTP_MAX_HEADER, -EINVAL bad options, and
 * transport errors (-ETIMEDOUT, -ECONNRESET, ...). On failure @res holds
 * nothing to free, except that res->status is set when a status line was
 * read.
 */
int ws_upgrade_client(const struct ws_io *io, const struct ws_upgrade_opts *o,
		      struct ws_upgrade_result *res, struct nbdws_err *err);

/* Wipes the subprotocol: a server may answer with a token offered as one. */
void ws_upgrade_result_free(struct ws_upgrade_result *res);

/* A fresh Sec-WebSocket-Key: 16 bytes from getrandom(), base64. */
int ws_make_key(char key[WS_KEY_LEN + 1], struct nbdws_err *err);

/*
 * Sec-WebSocket-Accept for @key: base64(SHA-1(key + RFC 6455 GUID)).
 * Returns 0, or -EINVAL if @key is not a 24-character value, -ENOMEM if
 * the digest could not be computed.
 */
int ws_accept_for_key(const char *key, char out[WS_ACCEPT_LEN + 1]);

/*
 * The request text for @o and @key (malloc'd, NUL-terminated, *len bytes;
 * it holds the Authorization value: release it with secret_free(*out,
 * *len)). Header values must not contain CR, LF or other control
 * characters, so a caller cannot smuggle extra headers (-EINVAL).
 */
int ws_build_request(const struct ws_upgrade_opts *o, const char *key,
		     char **out, size_t *len, struct nbdws_err *err);

/*
 * Offset just past the "\r\n\r\n" ending an HTTP header in @buf, or 0 if
 * the terminator is not there yet.
 */
size_t ws_http_header_end(const u8 *buf, size_t len);

/*
 * Check a complete response header (@len bytes, ending with the blank
 * line) against the request made with @key and @subprotocol. On success
 * sets *chosen to the server's subprotocol (malloc'd) or NULL. *status is
 * set as soon as the status line parses. Errors as for ws_upgrade_client().
 */
int ws_parse_response(const char *hdr, size_t len, const char *key,
		      const char *subprotocol, int *status, char **chosen,
		      struct nbdws_err *err);

/*
 * True if the comma-separated @list holds @token, compared without regard
 * to ASCII case (Connection: keep-alive, Upgrade).
 */
bool ws_http_list_has(const char *list, const char *token);

/*
 * Split a "Name: value" header line in place at its @colon: the name ends
 * there, and the value, without the optional whitespace around it (RFC
 * 7230 3.2), is returned.
 */
char *ws_http_field_value(char *colon);

#endif /* _NBDWS_WS_UPGRADE_H */
