// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: the URI parser of nbdctl and the relay's upstream
 * (lib/nbd_uri.c), and a round trip through it: every URI it accepts is
 * written out again in canonical form (explicit port, everything but the
 * unreserved characters percent-encoded) and parsed a second time, which
 * must give the same scheme, host, port, export, socket and resource.
 *
 * Input: the URI text (cut at the first NUL, as a C string would be).
 * Contracts checked besides the round trip: the result is 0, -EINVAL,
 * -EPROTONOSUPPORT or -ENOMEM, a failure has a message and leaves nothing
 * to free, a success has the fields its scheme promises (a host and a
 * port in 1..65535 except for nbd+unix, a socket path for nbd+unix, a
 * resource starting with '/' for ws and wss, an export name of at most
 * NBD_MAX_STRING bytes, never NULL) and nbd_uri_pct_decode() never
 * yields a longer string than its input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "nbd_uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define UNRESERVED "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
		   "0123456789-._~"
#define IPV6_KEEP "0123456789abcdefABCDEF:."

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
};

static void put(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = 2 * (b->len + n + 1);
		b->p = realloc(b->p, b->cap);
		fz_check(b->p != NULL, "out of memory in the fuzzer");
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct sbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

/*
 * Percent-encode @s, keeping the characters of @keep (and NUL never
 * occurs). IPv6 literals keep only hex digits, ':' and '.', so that the
 * parser's check of what is in brackets sees an escape before anything
 * else.
 */
static void put_enc(struct sbuf *b, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (strchr(keep, c))
			put(b, s, 1);
		else
			put(b, e, 3);
	}
}

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void check_fields(const struct nbd_uri *u)
{
	fz_check(u->export_name != NULL &&
		 strlen(u->export_name) <= NBD_MAX_STRING, "export name");
	if (u->scheme == NBD_URI_UNIX) {
		fz_check(!u->host && !u->port && u->socket_path &&
			 *u->socket_path && !u->ws_resource, "nbd+unix fields");
		return;
	}
	fz_check(u->host && *u->host && fz_printable(u->host) &&
		 !strchr(u->host, ' ') && !strchr(u->host, '/'), "host");
	fz_check(u->port && *u->port && strlen(u->port) <= 5 &&
		 strspn(u->port, "0123456789") == strlen(u->port) &&
		 atoi(u->port) >= 1 && atoi(u->port) <= 65535, "port");
	fz_check(!u->socket_path, "socket path outside nbd+unix");
	if (u->scheme == NBD_URI_WS || u->scheme == NBD_URI_WSS)
		fz_check(u->ws_resource && u->ws_resource[0] == '/' &&
			 fz_printable(u->ws_resource) &&
			 !strchr(u->ws_resource, ' ') &&
			 !strchr(u->ws_resource, '#') && !*u->export_name,
			 "WebSocket resource");
	else
		fz_check(!u->ws_resource, "resource outside ws");
}

/* The canonical text of @u, which must parse back to the same fields. */
static void round_trip(const struct nbd_uri *u)
{
	struct nbdws_err err = { "" };
	struct sbuf b = { 0 };
	struct nbd_uri v;
	int rc;

	puts_(&b, nbd_uri_scheme_name(u->scheme));
	puts_(&b, "://");
	if (u->scheme != NBD_URI_UNIX) {
		if (u->host_is_ipv6) {
			puts_(&b, "[");
			put_enc(&b, u->host, IPV6_KEEP);
			puts_(&b, "]");
		} else {
			put_enc(&b, u->host, UNRESERVED);
		}
		puts_(&b, ":");
		puts_(&b, u->port);
	}
	if (u->scheme == NBD_URI_WS || u->scheme == NBD_URI_WSS) {
		puts_(&b, u->ws_resource);
	} else {
		puts_(&b, "/");
		put_enc(&b, u->export_name, UNRESERVED "/");
		if (u->socket_path) {
			puts_(&b, "?socket=");
			put_enc(&b, u->socket_path, UNRESERVED "/");
		}
	}

	rc = nbd_uri_parse(b.p, &v, &err);
	if (rc)
		fprintf(stderr, "round trip: '%s' refused: %s\n", b.p, err.msg);
	fz_check(!rc, "canonical form refused");
	fz_check(v.scheme == u->scheme && same(v.host, u->host) &&
		 same(v.port, u->port) && same(v.export_name, u->export_name) &&
		 same(v.socket_path, u->socket_path) &&
		 same(v.ws_resource, u->ws_resource) &&
		 v.host_is_ipv6 == u->host_is_ipv6,
		 "canonical form parses differently");
	nbd_uri_free(&v);
	free(b.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nbdws_err err = { "" };
	struct nbd_uri u;
	char *text, *dec = NULL;
	int rc;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	rc = nbd_uri_parse(text, &u, &err);
	fz_check(rc == 0 || rc == -EINVAL || rc == -EPROTONOSUPPORT ||
		 rc == -ENOMEM, "result");
	if (rc) {
		fz_check(err.msg[0] != '\0', "refusal without message");
		fz_check(!u.host && !u.port && !u.export_name &&
			 !u.socket_path && !u.ws_resource,
			 "refusal left something to free");
	} else {
		check_fields(&u);
		round_trip(&u);
	}
	nbd_uri_free(&u);

	rc = nbd_uri_pct_decode(text, strlen(text), &dec);
	fz_check(rc == 0 || rc == -EINVAL || rc == -ENOMEM, "decode result");
	if (!rc)
		fz_check(strlen(dec) <= strlen(text), "decoded longer");
	free(dec);
	free(text);
	return 0;
}
