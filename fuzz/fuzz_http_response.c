// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: the client side's parser of the server's answer to
 * the WebSocket upgrade (lib/ws_upgrade.c ws_parse_response), the one
 * piece of HTTP nbdctl reads from an arbitrary server.
 *
 * Input: byte 0 picks the subprotocol we asked for (bits 0-1: none,
 * "nbd", "nbd, nbd-v2", "x") and whether the blank line is appended
 * (bit 2); the rest is the response header, checked against the fixed
 * key of RFC 6455's example (so a seed can carry the right accept value).
 * Contracts checked:
 *   - the result is 0 or one of the documented errors, with a message
 *     free of control bytes (it quotes the server);
 *   - success means status 101 and a subprotocol that was asked for,
 *     exactly one of the offered tokens (NULL when none was asked);
 *   - -EACCES only for 401, 403 and 407, -ECONNREFUSED only for another
 *     status than 101;
 *   - ws_http_header_end() agrees with the parser about completeness.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "ws_upgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char *const protos[] = { NULL, "nbd", "nbd, nbd-v2", "x" };

/* Messages may hold HTAB and obs-text from the peer, never other CTLs. */
static int message_ok(const char *m)
{
	for (; *m; m++)
		if (*m != '\t' && ((unsigned char)*m < 0x20 || *m == 0x7f))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nbdws_err err = { "" };
	const char *proto;
	char *hdr, *chosen = (char *)"unset";
	size_t len, end;
	int rc, status = -1;

	if (size < 1)
		return 0;
	proto = protos[data[0] & 3];
	len = size - 1;
	hdr = malloc(len + 4);
	if (!hdr)
		return 0;
	memcpy(hdr, data + 1, len);
	if (data[0] & 4) {
		/* Bytes on the wire: no terminator. */
		memcpy(hdr + len, "\r\n\r\n", 4); /* NOLINT(bugprone-not-null-terminated-result) */
		len += 4;
	}

	end = ws_http_header_end((const u8 *)hdr, len);
	fz_check(end <= len && (!end || !memcmp(hdr + end - 4, "\r\n\r\n", 4)),
		 "header end");

	rc = ws_parse_response(hdr, len, key, proto, &status, &chosen, &err);
	fz_check(rc == 0 || rc == -EACCES || rc == -ECONNREFUSED ||
		 rc == -EPROTO || rc == -ENOMEM, "result");
	fz_check(status == 0 || (status >= 100 && status <= 599), "status");
	if (rc) {
		fz_check(!chosen, "subprotocol set on failure");
		fz_check(err.msg[0] && message_ok(err.msg),
			 "message missing or holds control bytes");
		if (rc == -EACCES)
			fz_check(status == 401 || status == 403 ||
				 status == 407, "-EACCES for another status");
		if (rc == -ECONNREFUSED)
			fz_check(status && status != 101,
				 "-ECONNREFUSED for 101");
	} else {
		fz_check(status == 101 && end == len, "success without 101");
		if (!proto) {
			fz_check(!chosen, "subprotocol chosen unasked");
		} else {
			fz_check(chosen && *chosen &&
				 !strpbrk(chosen, ", \t") &&
				 ws_http_list_has(proto, chosen),
				 "subprotocol not one of those asked for");
		}
	}
	free(chosen);
	free(hdr);
	return 0;
}
