/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The HTTP/1.1 upgrade that opens a WebSocket connection (RFC 6455
 * section 4.2), server side: read the client's GET request within hard
 * limits, check it, and answer 101 Switching Protocols with the
 * Sec-WebSocket-Accept value (or 400 / 426 when the request is not one we
 * can take). The mirror image of ws_upgrade.h, for everything in this
 * project that lets a WebSocket client connect to it: the bench's attach
 * program and NBD peer, and later the relay in the server role.
 *
 * The parser and the response builder are exported on their own so unit
 * tests can drive them without sockets. Bytes the client sent after its
 * request are its first frames; they come back as preread, to be fed to
 * the frame decoder (or to the kernel) before anything read later.
 */
#ifndef _NBDWS_WS_ACCEPT_H
#define _NBDWS_WS_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>

#include "nbdws_types.h"
#include "nbdws_err.h"
#include "http_req.h"
#include "ws_io.h"
#include "ws_upgrade.h"

/* Longest request target kept (longer ones are refused with 400). */
#define WS_ACCEPT_MAX_TARGET	1024

struct ws_accept_opts {
	/* NULL, or the one subprotocol we speak: chosen if the client offers it */
	const char *subprotocol;
	/* refuse clients that do not offer @subprotocol (else it is optional) */
	bool require_subprotocol;
};

/* What a well-formed upgrade request said. */
struct ws_request {
	char target[WS_ACCEPT_MAX_TARGET + 1];	/* "/path?query" */
	char accept[WS_ACCEPT_LEN + 1];		/* our Sec-WebSocket-Accept */
	bool subprotocol_chosen;		/* opts->subprotocol was offered */
};

struct ws_accept_result {
	struct ws_request req;
	u8 *preread;		/* bytes past the request header (may be NULL) */
	size_t preread_len;
};

/*
 * Check a complete request header (@len bytes, ending with the blank line)
 * against RFC 6455 4.2.1: GET, HTTP/1.1, Host, Upgrade: websocket,
 * Connection: upgrade, Sec-WebSocket-Key of 16 base64 bytes, version 13,
 * no header repeated that must be single. Fills @req. Returns 0, or
 * -EPROTO (a malformed or non-WebSocket request; answer 400), -EPROTONOSUPPORT
 * (another WebSocket version; answer 426), -ENOENT (the required
 * subprotocol was not offered; answer 400), with a message in @err.
 */
int ws_parse_request(const char *hdr, size_t len,
		     const struct ws_accept_opts *o, struct ws_request *req,
		     struct nbdws_err *err);

/*
 * The response for a parse result @rc (0 or an error from
 * ws_parse_request()) into @out: 101 with the accept value (and the chosen
 * subprotocol) on success, else 400 or 426. Returns its length, or 0 if
 * @size is too small.
 */
size_t ws_build_response(int rc, const struct ws_request *req,
			 const struct ws_accept_opts *o, char *out,
			 size_t size);

/*
 * Run the server side of the upgrade over @io: read the request (at most
 * WS_HTTP_MAX_HEADER bytes, within @io's deadline), answer it. Returns 0
 * with @res filled (free it with ws_accept_result_free()), or a negative
 * errno with @err set: the parse errors above (after the refusal was
 * sent), -EMSGSIZE a header larger than WS_HTTP_MAX_HEADER, -ECONNRESET
 * the client left before the request was complete, and transport errors.
 */
int ws_accept(const struct ws_io *io, const struct ws_accept_opts *o,
	      struct ws_accept_result *res, struct nbdws_err *err);

void ws_accept_result_free(struct ws_accept_result *res);

/*
 * For servers that parse the request themselves (http_parse_request())
 * and decide on paths, credentials and subprotocols on their own (the
 * relay): check that @req is a WebSocket upgrade by RFC 6455 4.2.1 (GET,
 * HTTP/1.1 or later, one Host, Upgrade: websocket, Connection: upgrade,
 * one Sec-WebSocket-Key of 16 base64 bytes, one Sec-WebSocket-Version).
 * Returns 0 with @accept set to the Sec-WebSocket-Accept value, or with
 * @err set:
 * -ENOTCONN        not an upgrade request at all (no Upgrade: websocket):
 *                  a plain HTTP request, for the caller to route;
 * -EPROTO          a malformed upgrade (answer 400);
 * -EPROTONOSUPPORT a WebSocket version other than 13 (answer 426 with
 *                  "Sec-WebSocket-Version: 13").
 * "No Upgrade: websocket" is checked first, then the method: an upgrade
 * with another method than GET is -EPROTO, so a caller that answers 405
 * to those looks at req->method before calling this.
 */
int ws_check_upgrade(const struct http_request *req,
		     char accept[WS_ACCEPT_LEN + 1], struct nbdws_err *err);

/*
 * The 101 Switching Protocols response for @accept, with
 * "Sec-WebSocket-Protocol: @protocol" when @protocol is not NULL (it must
 * be one the client offered: RFC 6455 4.1 makes the client fail
 * otherwise). Returns its length, or 0 if it does not fit in @size or
 * @protocol holds bytes not allowed in a header value.
 */
size_t ws_build_accept(const char *accept, const char *protocol, char *out,
		       size_t size);

#endif /* _NBDWS_WS_ACCEPT_H */
