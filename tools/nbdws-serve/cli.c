// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve: the command line (see serve.h and nbdws-serve(1)).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secret.h"
#include "serve.h"

#ifndef NBDWS_VERSION
#define NBDWS_VERSION "unknown"
#endif

/* Longest token taken, from the line or a file. */
#define TOKEN_MAX	4096

static const char usage_line[] =
	"usage: nbdws-serve [options] SOURCE ws[s]://HOST[:PORT]/SLOT\n";

static const char help_text[] =
	"Serve SOURCE (a file or block device, or nbd:// / nbd+unix:// NBD\n"
	"server) to nbdws-relay's slot SLOT over one WebSocket connection.\n"
	"\n"
	"  -w, --writable            let the client write (files; default read-only)\n"
	"      --hold SECONDS        reconnect for this long after a drop (60; 0: never)\n"
	"      --token TOKEN         send \"Authorization: Bearer TOKEN\"\n"
	"      --token-file FILE     the same, TOKEN read from FILE (first line)\n"
	"      --token-as-subprotocol  offer the token as the WebSocket subprotocol\n"
	"                            instead (as OpenBMC's web UI does)\n"
	"      --subprotocol P       offer subprotocol P (comma-separated list)\n"
	"      --origin URL          send an Origin header\n"
	"      --cafile FILE         wss: verify the relay against this CA\n"
	"      --cert FILE           wss: client certificate (PEM)\n"
	"      --key FILE            wss: its private key (default: in --cert)\n"
	"      --insecure            wss: do not verify the relay's certificate\n"
	"      --connect-timeout SECONDS  for each connection attempt (10)\n"
	"      --threads N           I/O threads for a file (1-16, 4)\n"
	"  -v, --verbose             say more\n"
	"      --version             print the version\n"
	"  -h, --help                this text\n"
	"\n"
	"Exit status: 0 stopped (SIGINT/SIGTERM) or closed normally, 1 failure,\n"
	"2 bad command line.\n";

enum {
	OPT_HOLD = 256, OPT_TOKEN, OPT_TOKEN_FILE, OPT_TOKEN_SUBPROTO,
	OPT_SUBPROTO, OPT_ORIGIN, OPT_CAFILE, OPT_CERT, OPT_KEY,
	OPT_INSECURE, OPT_TIMEOUT, OPT_THREADS, OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "writable", no_argument, NULL, 'w' },
	{ "hold", required_argument, NULL, OPT_HOLD },
	{ "token", required_argument, NULL, OPT_TOKEN },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "token-as-subprotocol", no_argument, NULL, OPT_TOKEN_SUBPROTO },
	{ "subprotocol", required_argument, NULL, OPT_SUBPROTO },
	{ "origin", required_argument, NULL, OPT_ORIGIN },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "connect-timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("nbdws-serve: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage_line, stderr);
	return SERVE_EXIT_USAGE;
}

/* Seconds as a number, fractions allowed, within [min, max]. */
static int parse_seconds(const char *arg, double min, double max, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*ms = (int)(v * 1000.0 + 0.5);
	return 0;
}

/* RFC 7230 tchar: what a subprotocol token may hold. */
static bool is_tchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool protocol_list_ok(const char *v)
{
	const char *p;

	if (!*v || *v == ',')
		return false;
	for (p = v; *p; p++)
		if (!is_tchar(*p) && *p != ',')
			return false;
	return p[-1] != ',' && !strstr(v, ",,");
}

/* Visible ASCII without spaces: what fits after "Bearer ". */
static bool token_ok(const char *t)
{
	size_t n = strlen(t);

	if (!n || n > TOKEN_MAX)
		return false;
	for (; *t; t++)
		if (*t <= 0x20 || *t >= 0x7f)
			return false;
	return true;
}

static bool token_is_tchars(const char *t)
{
	for (; *t; t++)
		if (!is_tchar(*t))
			return false;
	return true;
}

/*
 * The token from @path: its first line. Read as ssh reads a private key
 * (secret_file_read()): a file others may read is refused, since its
 * token must be taken as known to them, and a read error is an error.
 */
static int read_token_file(struct serve_opts *o, const char *path)
{
	struct nbdws_err err = { { 0 } };
	char *buf, *nl;
	int rc;

	rc = secret_file_read(path, TOKEN_MAX, &buf, &err);
	/* Too long is a bad value; anything else, a file we will not use. */
	if (rc == -EFBIG)
		return usage_error("--token-file: %s", err.msg);
	if (rc) {
		fprintf(stderr, "nbdws-serve: --token-file: %s\n", err.msg);
		return SERVE_EXIT_FAIL;
	}
	/* The rest of the file is no business of ours: wipe it too. */
	nl = strpbrk(buf, "\r\n");
	if (nl)
		explicit_bzero(nl, strlen(nl));
	if (!token_ok(buf)) {
		secret_free_str(buf);
		return usage_error("--token-file %s must hold the token on its first line: 1 to %d visible characters without spaces",
				   path, TOKEN_MAX);
	}
	o->token = buf;
	return 0;
}

/*
 * Say when a choice on the command line gives the token or the whole
 * connection away: a warning, since tests and labs do this on purpose.
 */
static void warn_exposure(const struct serve_opts *o)
{
	if (o->token && o->relay_uri.scheme == NBD_URI_WS)
		fputs("nbdws-serve: warning: the token goes over ws:// in clear text: anyone on the path can read and reuse it; use wss://\n",
		      stderr);
	if (o->ws.insecure)
		fputs("nbdws-serve: warning: --insecure: the relay's certificate is not checked, so anyone on the path can pose as the relay and read the token and the data\n",
		      stderr);
}

/* Where the token goes, and the subprotocol list. */
static int build_credentials(struct serve_opts *o, const char *subproto)
{
	size_t n;

	if (o->token_as_subprotocol && !o->token)
		return usage_error("--token-as-subprotocol needs --token or --token-file");
	if (o->token && o->token_as_subprotocol) {
		/* Do not echo the token in the message: it is a secret. */
		if (!token_is_tchars(o->token))
			return usage_error("this token cannot be sent as a subprotocol: a subprotocol holds only letters, digits and !#$%%&'*+-.^_`|~ (send it as a header: drop --token-as-subprotocol)");
		n = strlen(o->token) + (subproto ? strlen(subproto) + 2 : 0) + 1;
		o->protocols = malloc(n);
		if (!o->protocols)
			return usage_error("out of memory");
		snprintf(o->protocols, n, "%s%s%s", o->token,
			 subproto ? ", " : "", subproto ? subproto : "");
		o->ws.subprotocol = o->protocols;
		return 0;
	}
	o->ws.subprotocol = subproto;
	if (o->token) {
		n = strlen(o->token) + sizeof("Bearer ");
		o->auth = malloc(n);
		if (!o->auth)
			return usage_error("out of memory");
		snprintf(o->auth, n, "Bearer %s", o->token);
		o->ws.authorization = o->auth;
	}
	return 0;
}

static int parse_positional(struct serve_opts *o, int argc, char **argv)
{
	struct nbdws_err err = { { 0 } };
	int rc;

	if (argc - optind != 2)
		return usage_error(argc - optind < 2 ?
				   "give SOURCE and the relay's ws:// or wss:// URL" :
				   "too many arguments");
	o->source = argv[optind];
	o->relay = argv[optind + 1];
	rc = nbd_uri_parse(o->relay, &o->relay_uri, &err);
	if (rc)
		return usage_error("relay URL %s", err.msg);
	if (o->relay_uri.scheme != NBD_URI_WS &&
	    o->relay_uri.scheme != NBD_URI_WSS)
		return usage_error("the relay's URL must be ws:// or wss://, not %s://",
				   nbd_uri_scheme_name(o->relay_uri.scheme));
	if (!strstr(o->source, "://"))
		return 0;
	rc = nbd_uri_parse(o->source, &o->src_uri, &err);
	if (rc)
		return usage_error("SOURCE %s", err.msg);
	o->src_is_nbd = true;
	if (o->src_uri.scheme != NBD_URI_TCP &&
	    o->src_uri.scheme != NBD_URI_UNIX)
		return usage_error("SOURCE must be a file or an nbd:// or nbd+unix:// URI");
	return 0;
}

/* Checks between options, once all are known. */
static int check_combinations(struct serve_opts *o, bool tls_any)
{
	if (o->src_is_nbd && o->writable)
		return usage_error("--writable is for files; an NBD server decides that itself");
	if (tls_any && o->relay_uri.scheme != NBD_URI_WSS)
		return usage_error("--cafile, --cert, --key and --insecure need a wss:// URL");
	if (o->ws.key_file && !o->ws.cert_file)
		return usage_error("--key needs --cert");
	if (o->ws.ca_file && o->ws.insecure)
		return usage_error("--cafile and --insecure exclude each other");
	return 0;
}

static int readable_file(const char *opt, const char *arg)
{
	if (!*arg || access(arg, R_OK))
		return usage_error("%s %s: not a readable file", opt, arg);
	return 0;
}

int serve_parse_args(struct serve_opts *o, int argc, char **argv)
{
	const char *token_file = NULL, *subproto = NULL;
	bool tls_any = false;
	int c, rc;
	char *end;
	long n;

	memset(o, 0, sizeof(*o));
	o->hold_ms = SERVE_DEFAULT_HOLD_MS;
	o->connect_timeout_ms = SERVE_DEFAULT_TIMEOUT_MS;
	o->threads = SERVE_DEFAULT_THREADS;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":wvh", long_opts, NULL)) != -1) {
		const char *arg = optarg ? optarg : "";

		rc = 0;
		switch (c) {
		case 'w':
			o->writable = true;
			break;
		case OPT_HOLD:
			if (parse_seconds(arg, 0, 86400, &o->hold_ms))
				rc = usage_error("--hold must be a number of seconds from 0 to 86400");
			break;
		case OPT_TOKEN:
			if (o->token || token_file)
				rc = usage_error("give one of --token and --token-file, once");
			else if (!token_ok(arg))
				rc = usage_error("--token must be 1 to %d visible characters without spaces",
						 TOKEN_MAX);
			else if (!(o->token = strdup(arg)))
				rc = usage_error("out of memory");
			break;
		case OPT_TOKEN_FILE:
			if (o->token || token_file)
				rc = usage_error("give one of --token and --token-file, once");
			token_file = arg;
			break;
		case OPT_TOKEN_SUBPROTO:
			o->token_as_subprotocol = true;
			break;
		case OPT_SUBPROTO:
			if (!protocol_list_ok(arg))
				rc = usage_error("--subprotocol must be a token or a comma-separated list of tokens (letters, digits, !#$%%&'*+-.^_`|~)");
			subproto = arg;
			break;
		case OPT_ORIGIN:
			if (!token_ok(arg))
				rc = usage_error("--origin must be a URL such as https://host");
			o->ws.origin = arg;
			break;
		case OPT_CAFILE:
			rc = readable_file("--cafile", arg);
			o->ws.ca_file = arg;
			tls_any = true;
			break;
		case OPT_CERT:
			rc = readable_file("--cert", arg);
			o->ws.cert_file = arg;
			tls_any = true;
			break;
		case OPT_KEY:
			rc = readable_file("--key", arg);
			o->ws.key_file = arg;
			tls_any = true;
			break;
		case OPT_INSECURE:
			o->ws.insecure = true;
			tls_any = true;
			break;
		case OPT_TIMEOUT:
			if (parse_seconds(arg, 0.1, 3600,
					  &o->connect_timeout_ms))
				rc = usage_error("--connect-timeout must be a number of seconds from 0.1 to 3600");
			break;
		case OPT_THREADS:
			errno = 0;
			n = strtol(arg, &end, 10);
			if (errno || end == arg || *end || n < 1 ||
			    n > POOL_MAX_THREADS)
				rc = usage_error("--threads must be a number from 1 to %d",
						 POOL_MAX_THREADS);
			else
				o->threads = (unsigned int)n;
			break;
		case 'v':
			o->verbose++;
			break;
		case OPT_VERSION:
			printf("nbdws-serve %s\n", NBDWS_VERSION);
			return SERVE_ARGS_DONE;
		case 'h':
			fputs(usage_line, stdout);
			fputs(help_text, stdout);
			return SERVE_ARGS_DONE;
		case '?':
			if (optopt)
				rc = usage_error("unknown option -%c", optopt);
			else
				rc = usage_error("unknown option %s",
						 argv[optind - 1]);
			break;
		case ':':
		default:
			rc = usage_error("%s needs an argument", argv[optind - 1]);
			break;
		}
		if (rc)
			return rc;
	}
	rc = parse_positional(o, argc, argv);
	if (!rc)
		rc = check_combinations(o, tls_any);
	if (!rc && token_file)
		rc = read_token_file(o, token_file);
	if (!rc)
		rc = build_credentials(o, subproto);
	if (!rc)
		warn_exposure(o);
	return rc;
}

void serve_opts_free(struct serve_opts *o)
{
	secret_free_str(o->token);
	secret_free_str(o->auth);
	secret_free_str(o->protocols);
	o->token = o->auth = o->protocols = NULL;
	if (o->relay_uri.export_name)
		nbd_uri_free(&o->relay_uri);
	if (o->src_uri.export_name)
		nbd_uri_free(&o->src_uri);
}
