// SPDX-License-Identifier: GPL-2.0
/*
 * URI parsing for nbd://, nbd+unix://, ws:// and wss:// (see nbd_uri.h).
 *
 * Written as a small hand parser rather than with a generic URI library:
 * the grammar we accept is tiny, and being strict (no user info, no
 * fragments, no unknown query parameters) turns typos into clear errors
 * instead of connections to the wrong place.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nbd_uri.h"
#include "pct.h"

struct scheme_entry {
	const char *name;
	int scheme;		/* enum nbd_uri_scheme, or -1: unsupported */
	const char *why;	/* message for unsupported schemes */
};

static const struct scheme_entry schemes[] = {
	{ "nbd", NBD_URI_TCP, NULL },
	{ "nbd+unix", NBD_URI_UNIX, NULL },
	{ "ws", NBD_URI_WS, NULL },
	{ "wss", NBD_URI_WSS, NULL },
	{ "nbds", -1, "NBD over TLS (nbds://) is not supported yet; use nbd:// or wss://" },
	{ "nbds+unix", -1, "NBD over TLS (nbds+unix://) is not supported yet; use nbd+unix://" },
	{ "nbd+vsock", -1, "NBD over vsock is not supported" },
	{ "nbds+vsock", -1, "NBD over vsock is not supported" },
};

const char *nbd_uri_scheme_name(enum nbd_uri_scheme scheme)
{
	switch (scheme) {
	case NBD_URI_TCP:
		return "nbd";
	case NBD_URI_UNIX:
		return "nbd+unix";
	case NBD_URI_WS:
		return "ws";
	case NBD_URI_WSS:
		return "wss";
	}
	return "?";
}

int nbd_uri_pct_decode(const char *in, size_t len, char **out)
{
	char *s = malloc(len + 1);
	size_t i, o = 0;

	if (!s)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		if (in[i] == '%') {
			int hi, lo;

			if (len - i < 3)
				goto bad;
			hi = pct_hex_digit(in[i + 1]);
			lo = pct_hex_digit(in[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			s[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (in[i] == '\0') {
			goto bad;
		} else {
			s[o++] = in[i];
		}
	}
	s[o] = '\0';
	*out = s;
	return 0;
bad:
	free(s);
	return -EINVAL;
}

/* Control characters and spaces never belong in what we accept. */
static bool has_bad_chars(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

static int parse_port(const char *p, size_t len, char **out,
		      struct nbdws_err *err)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5)
		goto bad;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			goto bad;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		goto bad;
	*out = strndup(p, len);
	return *out ? 0 : -ENOMEM;
bad:
	return nbdws_err_set(err, -EINVAL, "bad port '%.*s': expected 1..65535",
			     (int)len, p);
}

static int parse_authority(const char *a, size_t len, struct nbd_uri *uri,
			   struct nbdws_err *err)
{
	const char *port = NULL;
	size_t host_len, port_len = 0;
	const char *host = a;
	int rc;

	if (memchr(a, '@', len))
		return nbdws_err_set(err, -EINVAL,
				     "user names in URIs are not supported");
	if (len && a[0] == '[') {
		const char *end = memchr(a, ']', len);
		size_t i;

		if (!end)
			return nbdws_err_set(err, -EINVAL,
					     "IPv6 address without closing ']'");
		host = a + 1;
		host_len = (size_t)(end - host);
		for (i = 0; i < host_len; i++) {
			char c = host[i];

			if (pct_hex_digit(c) < 0 && c != ':' && c != '.' && c != '%')
				break;
		}
		/* Allow a zone id ("%25eth0") after the address itself. */
		if (host_len == 0 || !memchr(host, ':', host_len) ||
		    (i < host_len && !memchr(host, '%', i + 1)))
			return nbdws_err_set(err, -EINVAL,
					     "bad IPv6 address '[%.*s]'",
					     (int)host_len, host);
		uri->host_is_ipv6 = true;
		if (end + 1 < a + len) {
			if (end[1] != ':')
				return nbdws_err_set(err, -EINVAL,
						     "unexpected text after ']'");
			port = end + 2;
			port_len = len - (size_t)(port - a);
		}
	} else {
		const char *colon = memchr(a, ':', len);

		host_len = colon ? (size_t)(colon - a) : len;
		if (colon) {
			port = colon + 1;
			port_len = len - host_len - 1;
			if (memchr(port, ':', port_len))
				return nbdws_err_set(err, -EINVAL,
						     "IPv6 addresses must be written in brackets, e.g. nbd://[::1]/");
		}
	}
	if (host_len == 0)
		return nbdws_err_set(err, -EINVAL, "the URI has no host");
	rc = nbd_uri_pct_decode(host, host_len, &uri->host);
	if (rc)
		return nbdws_err_set(err, rc, "bad host '%.*s'",
				     (int)host_len, host);
	if (has_bad_chars(uri->host, strlen(uri->host)) ||
	    strchr(uri->host, '/'))
		return nbdws_err_set(err, -EINVAL, "bad host '%.*s'",
				     (int)host_len, host);
	/* An empty port ("host:") means the default, as in RFC 3986. */
	if (port && port_len)
		return parse_port(port, port_len, &uri->port, err);
	return 0;
}

/* Handle one "key=value" query item for nbd+unix / nbd. */
static int parse_query_item(const char *item, size_t len, struct nbd_uri *uri,
			    struct nbdws_err *err)
{
	const char *eq = memchr(item, '=', len);
	size_t klen = eq ? (size_t)(eq - item) : len;
	int rc;

	if (klen == 6 && !memcmp(item, "socket", 6) && eq &&
	    uri->scheme == NBD_URI_UNIX) {
		free(uri->socket_path);
		uri->socket_path = NULL;
		rc = nbd_uri_pct_decode(eq + 1, len - klen - 1,
					&uri->socket_path);
		if (rc)
			return nbdws_err_set(err, rc,
					     "bad percent-encoding in socket path");
		return 0;
	}
	return nbdws_err_set(err, -EINVAL,
			     "unsupported query parameter '%.*s' in %s:// URI",
			     (int)klen, item, nbd_uri_scheme_name(uri->scheme));
}

static int parse_nbd_query(const char *q, size_t len, struct nbd_uri *uri,
			   struct nbdws_err *err)
{
	while (len) {
		const char *amp = memchr(q, '&', len);
		size_t ilen = amp ? (size_t)(amp - q) : len;
		int rc;

		if (ilen) {
			rc = parse_query_item(q, ilen, uri, err);
			if (rc)
				return rc;
		}
		if (!amp)
			break;
		q += ilen + 1;
		len -= ilen + 1;
	}
	return 0;
}

static int parse_nbd_path(const char *path, size_t len, struct nbd_uri *uri,
			  struct nbdws_err *err)
{
	int rc;

	/* The export name is the path without its leading '/'. */
	if (len)
		path++, len--;
	rc = nbd_uri_pct_decode(path, len, &uri->export_name);
	if (rc)
		return nbdws_err_set(err, rc,
				     "bad percent-encoding in export name");
	if (strlen(uri->export_name) > NBD_MAX_STRING)
		return nbdws_err_set(err, -EINVAL,
				     "export name longer than %d bytes",
				     NBD_MAX_STRING);
	return 0;
}

static int parse_rest(const char *rest, struct nbd_uri *uri,
		      struct nbdws_err *err)
{
	size_t auth_len = strcspn(rest, "/?");
	const char *path = rest + auth_len;
	size_t path_len = strcspn(path, "?");
	const char *query = path[path_len] == '?' ? path + path_len + 1 : NULL;
	size_t query_len = query ? strlen(query) : 0;
	int rc;

	if (uri->scheme == NBD_URI_UNIX) {
		if (auth_len)
			return nbdws_err_set(err, -EINVAL,
					     "nbd+unix:// URIs have no host: write nbd+unix:///EXPORT?socket=PATH");
	} else {
		rc = parse_authority(rest, auth_len, uri, err);
		if (rc)
			return rc;
	}

	if (uri->scheme == NBD_URI_WS || uri->scheme == NBD_URI_WSS) {
		size_t rlen = path_len + (query ? 1 + query_len : 0);

		if (!uri->port)
			uri->port = strdup(uri->scheme == NBD_URI_WS ? "80" : "443");
		if (has_bad_chars(path, rlen) || rlen > 8192)
			return nbdws_err_set(err, -EINVAL,
					     "bad characters in WebSocket path");
		if (path_len == 0) {
			/* "ws://h?x" still means the resource "/?x". */
			if (asprintf(&uri->ws_resource, "/%.*s", (int)rlen, path) < 0)
				uri->ws_resource = NULL;
		} else {
			uri->ws_resource = strndup(path, rlen);
		}
		uri->export_name = strdup("");
		if (!uri->port || !uri->ws_resource || !uri->export_name)
			return -ENOMEM;
		return 0;
	}

	rc = parse_nbd_path(path, path_len, uri, err);
	if (rc)
		return rc;
	rc = parse_nbd_query(query ? query : "", query_len, uri, err);
	if (rc)
		return rc;
	if (uri->scheme == NBD_URI_UNIX) {
		if (!uri->socket_path || !uri->socket_path[0])
			return nbdws_err_set(err, -EINVAL,
					     "nbd+unix:// URI without ?socket=PATH");
		return 0;
	}
	if (!uri->port)
		uri->port = strdup(NBD_URI_DEFAULT_PORT);
	return uri->port ? 0 : -ENOMEM;
}

int nbd_uri_parse(const char *text, struct nbd_uri *uri, struct nbdws_err *err)
{
	const char *sep = strstr(text, "://");
	size_t slen, i;
	int rc;

	memset(uri, 0, sizeof(*uri));
	if (!sep)
		return nbdws_err_set(err, -EINVAL,
				     "'%s' is not a URI: expected nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH or ws[s]://HOST[:PORT]/PATH",
				     text);
	if (strchr(text, '#'))
		return nbdws_err_set(err, -EINVAL,
				     "fragments ('#') are not allowed in NBD URIs");
	slen = (size_t)(sep - text);
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strlen(schemes[i].name) == slen &&
		    !strncasecmp(text, schemes[i].name, slen))
			break;
	}
	if (i == sizeof(schemes) / sizeof(schemes[0]))
		return nbdws_err_set(err, -EINVAL,
				     "unknown URI scheme '%.*s': use nbd, nbd+unix, ws or wss",
				     (int)slen, text);
	if (schemes[i].scheme < 0)
		return nbdws_err_set(err, -EPROTONOSUPPORT, "%s",
				     schemes[i].why);
	uri->scheme = (enum nbd_uri_scheme)schemes[i].scheme;

	rc = parse_rest(sep + 3, uri, err);
	if (rc) {
		if (rc == -ENOMEM)
			nbdws_err_set(err, rc, "out of memory");
		nbd_uri_free(uri);
	}
	return rc;
}

void nbd_uri_free(struct nbd_uri *uri)
{
	free(uri->host);
	free(uri->port);
	free(uri->export_name);
	free(uri->socket_path);
	free(uri->ws_resource);
	memset(uri, 0, sizeof(*uri));
}

char *nbd_uri_public(const char *text, const struct nbd_uri *uri)
{
	const char *sep = strstr(text, "://");

	if (sep && (uri->scheme == NBD_URI_WS || uri->scheme == NBD_URI_WSS))
		return strndup(text, (size_t)(sep + 3 - text) +
				     strcspn(sep + 3, "?"));
	return strdup(text);
}
