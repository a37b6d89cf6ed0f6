/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Parsing of the URIs nbdws tools accept:
 *
 *   nbd://host[:port][/export]            NBD over TCP (port 10809)
 *   nbd+unix:///[export]?socket=PATH      NBD over a unix socket
 *   ws://host[:port][/path[?query]]       NBD inside WebSocket (port 80)
 *   wss://host[:port][/path[?query]]      ... over TLS (port 443)
 *
 * The nbd forms follow libnbd's URI conventions: the export name is the
 * path without its leading slash, percent-decoded. Hosts may be IPv6
 * literals in brackets ([::1]). TLS forms of NBD (nbds://) are recognised
 * so that the user gets a clear "not supported" instead of "bad URI".
 */
#ifndef _NBDWS_NBD_URI_H
#define _NBDWS_NBD_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "nbdws_err.h"

#define NBD_URI_DEFAULT_PORT	"10809"
/* Longest export name the NBD protocol allows (bytes, not counting NUL). */
#define NBD_MAX_STRING		4096

enum nbd_uri_scheme {
	NBD_URI_TCP,		/* nbd:// */
	NBD_URI_UNIX,		/* nbd+unix:// */
	NBD_URI_WS,		/* ws:// */
	NBD_URI_WSS,		/* wss:// */
};

struct nbd_uri {
	enum nbd_uri_scheme scheme;
	char *host;		/* decoded, brackets removed; NULL for unix */
	char *port;		/* decimal string; NULL for unix */
	char *export_name;	/* decoded; "" when absent; never NULL */
	char *socket_path;	/* nbd+unix only */
	char *ws_resource;	/* ws/wss: raw "/path?query" for the request */
	bool host_is_ipv6;	/* host was a bracketed literal */
};

/*
 * Parse @text into @uri. On success returns 0 and @uri owns heap strings
 * (release with nbd_uri_free()); on failure returns -EINVAL (malformed),
 * -EPROTONOSUPPORT (recognised but unsupported scheme) or -ENOMEM, with a
 * message in @err, and @uri holds nothing to free.
 */
int nbd_uri_parse(const char *text, struct nbd_uri *uri, struct nbdws_err *err);

void nbd_uri_free(struct nbd_uri *uri);

/*
 * @text, which parsed into @uri, as a device's default backend identifier:
 * that is public (sysfs, and STATUS answers any user), so a ws:// or
 * wss:// query, where tokens often travel, is left out. User info and
 * fragments never get this far: nbd_uri_parse() refuses them, and an NBD
 * query can only be nbd+unix's socket path. Returns a malloc'd string,
 * NULL when out of memory.
 */
char *nbd_uri_public(const char *text, const struct nbd_uri *uri);

/* "nbd", "nbd+unix", "ws" or "wss". */
const char *nbd_uri_scheme_name(enum nbd_uri_scheme scheme);

/*
 * Percent-decode @len bytes of @in into a new NUL-terminated string.
 * Rejects malformed escapes and escapes of NUL (-EINVAL).
 */
int nbd_uri_pct_decode(const char *in, size_t len, char **out);

#endif /* _NBDWS_NBD_URI_H */
