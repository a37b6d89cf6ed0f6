// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl: WebSocket options, their checks and error hints (see wsopts.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbdctl.h"
#include "secret.h"
#include "wsopts.h"

/*
 * HTTP header values must not carry control characters: a CR or LF
 * would end the header early and let text after it become a header of
 * its own.
 */
static bool header_value_ok(const char *v)
{
	const unsigned char *p = (const unsigned char *)v;

	if (!*p)
		return false;
	for (; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

/* RFC 7230 token characters, or the comma separating several tokens. */
static bool protocol_list_ok(const char *v)
{
	const char *p;

	if (!*v || *v == ',')
		return false;
	for (p = v; *p; p++) {
		if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || strchr("!#$%&'*+-.^_`|~,", *p))
			continue;
		return false;
	}
	return p[-1] != ',';
}

int wsopts_handle(struct wsopts *w, const char *cmd, int c, const char *arg)
{
	switch (c) {
	case OPT_WS_PROTOCOL:
		if (!protocol_list_ok(arg))
			return nbdctl_usage_error(cmd, "--ws-protocol must be a token or a comma-separated list of tokens (letters, digits, !#$%%&'*+-.^_`|~)");
		w->dial.subprotocol = arg;
		break;
	case OPT_WS_AUTH:
		if (w->auth_file)
			return nbdctl_usage_error(cmd, "--authorization and --auth-file exclude each other");
		if (strlen(arg) > WSOPTS_MAX_AUTH || !header_value_ok(arg))
			return nbdctl_usage_error(cmd, "--authorization must be 1..%d characters without control characters, e.g. 'Basic dXNlcjpwYXNz' or 'Bearer TOKEN'",
						  WSOPTS_MAX_AUTH);
		w->dial.authorization = arg;
		break;
	case OPT_WS_AUTH_FILE:
		if (w->dial.authorization)
			return nbdctl_usage_error(cmd, "--authorization and --auth-file exclude each other");
		if (!*arg)
			return nbdctl_usage_error(cmd, "--auth-file needs a path");
		w->auth_file = arg;
		break;
	case OPT_WS_ORIGIN:
		if (strlen(arg) > NBD_MAX_STRING || !header_value_ok(arg))
			return nbdctl_usage_error(cmd, "--origin must be a URL such as https://host without control characters");
		w->dial.origin = arg;
		break;
	case OPT_WS_CAFILE:
		if (w->dial.insecure)
			return nbdctl_usage_error(cmd, "--cafile and --insecure exclude each other");
		if (!*arg || access(arg, R_OK))
			return nbdctl_usage_error(cmd, "--cafile '%s' is not a readable file", arg);
		w->dial.ca_file = arg;
		w->tls_any = true;
		break;
	case OPT_WS_INSECURE:
		if (w->dial.ca_file)
			return nbdctl_usage_error(cmd, "--cafile and --insecure exclude each other");
		w->dial.insecure = true;
		w->tls_any = true;
		break;
	case OPT_WS_PING:
		if (!strcmp(arg, "0"))
			w->ping_ms = 0;
		else if (parse_seconds_ms(arg, &w->ping_ms))
			return nbdctl_usage_error(cmd, "--ping must be a number of seconds (0: no keepalive pings)");
		w->ping_given = true;
		break;
	default:
		return -1;
	}
	w->any = true;
	return 0;
}

/*
 * Read the Authorization value from --auth-file: one line, as ssh reads a
 * private key (see secret_file_read()). A file that others can read is
 * refused rather than used, because its credential must be taken as
 * known to them; a read error is an error, never a shorter value.
 */
static int read_auth_file(struct wsopts *w, const char *cmd)
{
	struct nbdws_err err;
	char *buf;
	int rc;

	rc = secret_file_read(w->auth_file, WSOPTS_MAX_AUTH, &buf, &err);
	/* Too long is a bad value; anything else, a file we will not use. */
	if (rc == -EFBIG) {
		nbdctl_err("--auth-file: %s", err.msg);
		return nbdctl_usage_error(cmd, NULL);
	}
	if (rc) {
		nbdctl_err("--auth-file: %s", err.msg);
		return NBDCTL_EXIT_FAIL;
	}
	if (!header_value_ok(buf)) {
		secret_free_str(buf);
		return nbdctl_usage_error(cmd, "--auth-file '%s' must hold one line of 1..%d characters without control characters: the Authorization header value",
					  w->auth_file, WSOPTS_MAX_AUTH);
	}
	w->auth_buf = buf;
	w->dial.authorization = buf;
	return 0;
}

/*
 * Does the query of a ws:// resource look like it carries a credential?
 * Parameter names are matched loosely (any case, anywhere in the name):
 * a false alarm costs one line on stderr, a miss a secret in clear.
 */
static bool query_has_credential(const char *resource)
{
	static const char *const words[] = {
		"token", "auth", "key", "pass", "secret", "session", "sig",
		"jwt", "cred",
	};
	const char *p = resource ? strchr(resource, '?') : NULL;
	char name[64];
	size_t n, i;

	while (p && *p) {
		p++;
		n = strcspn(p, "=&");
		if (n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
				if (strcasestr(name, words[i]))
					return true;
		}
		p = strchr(p, '&');
	}
	return false;
}

/*
 * Say when a choice on the command line gives credentials or the whole
 * connection away: a warning, not a refusal, since tests and labs do
 * this on purpose.
 */
void wsopts_warn_uri(const struct nbd_uri *uri)
{
	if (uri->scheme == NBD_URI_WS && query_has_credential(uri->ws_resource))
		nbdctl_warn("the URI's query looks like it holds a credential, and it goes over ws:// in clear text: anyone on the path can read and reuse it; use wss://");
}

static void warn_exposure(const struct wsopts *w, const struct nbd_uri *uri)
{
	if (uri->scheme == NBD_URI_WS && w->dial.authorization)
		nbdctl_warn("the Authorization value goes over ws:// in clear text: anyone on the path can read and reuse it; use wss://");
	wsopts_warn_uri(uri);
	if (w->dial.insecure)
		nbdctl_warn("--insecure: the server's certificate is not checked, so anyone on the path can pose as the server and read%s everything, the data included",
			    w->dial.authorization ? " the Authorization value and" : "");
}

int wsopts_finish(struct wsopts *w, const char *cmd, const struct nbd_uri *uri)
{
	bool is_ws = uri->scheme == NBD_URI_WS || uri->scheme == NBD_URI_WSS;
	int rc;

	if (w->any && !is_ws)
		return nbdctl_usage_error(cmd, "WebSocket options (--ws-protocol, --authorization, --auth-file, --origin, --cafile, --insecure, --ping) need a ws:// or wss:// URI");
	if (w->tls_any && uri->scheme != NBD_URI_WSS)
		return nbdctl_usage_error(cmd, "--cafile and --insecure need a wss:// URI");
	if (w->auth_file) {
		rc = read_auth_file(w, cmd);
		if (rc)
			return rc;
	}
	warn_exposure(w, uri);
	return 0;
}

void wsopts_free(struct wsopts *w)
{
	secret_free_str(w->auth_buf);
	w->auth_buf = NULL;
	w->dial.authorization = NULL;
}

/* What the user can do about a WebSocket or TLS failure, or NULL. */
static const char *ws_hint(const struct nbd_uri *uri, int rc, const char *msg)
{
	if (uri->scheme != NBD_URI_WS && uri->scheme != NBD_URI_WSS)
		return NULL;
	if (rc == -EACCES && strstr(msg, "proxy"))
		return NULL;
	if (rc == -EACCES)
		return "give the credentials the server expects with --authorization VALUE (e.g. 'Basic BASE64(user:password)') or --auth-file PATH; check --origin if the server restricts it";
	if (uri->scheme != NBD_URI_WSS)
		return NULL;
	if (rc == -EOPNOTSUPP && strstr(msg, "kernel TLS"))
		return "wss:// hands the TLS session to the kernel (kTLS), so the kernel needs the tls module (CONFIG_TLS; modprobe tls) and the cipher's crypto (gcm(aes) or chacha20poly1305); nbdctl does not relay wss:// traffic in userspace";
	if (rc == -ECONNREFUSED && strstr(msg, "not valid for"))
		return "connect with a host name or address the certificate names, or skip verification with --insecure (tests only)";
	if (rc == -ECONNREFUSED && strstr(msg, "certificate"))
		return "give the CA that signed the server's certificate with --cafile PATH, or skip verification with --insecure (tests only)";
	return NULL;
}

void wsopts_report(const struct nbd_uri *uri, int rc, const char *msg,
		   const char *prefix)
{
	const char *hint = ws_hint(uri, rc, msg);

	if (prefix)
		nbdctl_err("%s: %s", prefix, msg);
	else
		nbdctl_err("%s", msg);
	if (hint)
		nbdctl_err("hint: %s", hint);
}
