// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: the command line. Only syntax is checked here; what the
 * options mean together with the configuration file is config.c's job.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cli.h"
#include "config.h"

#ifndef NBDWS_VERSION
#define NBDWS_VERSION "unknown"
#endif

static const char usage_text[] =
	"usage: nbdws-relay [--config FILE] [--listen ADDR]... [--web DIR]\n"
	"                   [--state-hook PATH] [--tokens FILE]\n"
	"                   [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n"
	"                   [--module PATH] [--insecure] [--fallback] [--metadata]\n"
	"                   [-v]... [--help] [--version]\n";

static const char help_text[] =
	"\n"
	"Accept WebSocket connections from NBD servers (browsers) and turn each\n"
	"into an nbdws block device, /dev/nbdwsN.\n"
	"\n"
	"  --config FILE        JSON configuration; default: " RELAY_DEFAULT_CONFIG "\n"
	"                       if it exists. jsnbd nbd-proxy's config.json works\n"
	"  --listen ADDR        HOST:PORT, [V6]:PORT, :PORT or unix:PATH; repeat for\n"
	"                       more; replaces the file's \"listen\"\n"
	"  --web DIR            also serve the static files under DIR\n"
	"  --state-hook PATH    run `PATH start|stop SLOT` as devices come and go\n"
	"  --tokens FILE        bearer tokens, one per line (mode 600)\n"
	"  --tls-cert FILE      serve wss:// with this certificate chain (PEM)\n"
	"  --tls-key FILE       and this private key\n"
	"  --tls-client-ca FILE accept client certificates issued by this CA\n"
	"  --module PATH        nbdws.ko to load when the module is missing\n"
	"  --insecure           let clients in without any credential\n"
	"  --fallback           frame WebSocket in userspace, never in the kernel\n"
	"  --metadata           print the slots' metadata as JSON and exit\n"
	"  -v                   more log lines (repeat for more)\n"
	"\n"
	"exit status: 0 ok, 1 configuration or runtime failure, 2 bad command line\n"
	"See nbdws-relay(8).\n";

enum {
	OPT_CONFIG = 256, OPT_LISTEN, OPT_WEB, OPT_STATE_HOOK, OPT_TOKENS,
	OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CLIENT_CA, OPT_MODULE,
	OPT_INSECURE, OPT_FALLBACK, OPT_METADATA, OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "web", required_argument, NULL, OPT_WEB },
	{ "state-hook", required_argument, NULL, OPT_STATE_HOOK },
	{ "tokens", required_argument, NULL, OPT_TOKENS },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA },
	{ "module", required_argument, NULL, OPT_MODULE },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "fallback", no_argument, NULL, OPT_FALLBACK },
	{ "metadata", no_argument, NULL, OPT_METADATA },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static enum cli_result usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static enum cli_result usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("nbdws-relay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage_text, stderr);
	return CLI_USAGE;
}

/*
 * An option that takes a file or directory: given once, and not empty
 * (an empty string is never a path the operator meant).
 */
static enum cli_result set_path(const char **slot, const char *opt,
				const char *arg)
{
	if (*slot)
		return usage_error("%s given twice", opt);
	if (!*arg)
		return usage_error("%s needs a non-empty argument", opt);
	*slot = arg;
	return CLI_OK;
}

/* The text of the option getopt_long() stopped at, for the message. */
static const char *bad_option(char **argv, int optind_now)
{
	static char short_opt[3];

	if (optopt > 0 && optopt < 128) {
		short_opt[0] = '-';
		short_opt[1] = (char)optopt;
		short_opt[2] = '\0';
		return short_opt;
	}
	return argv[optind_now - 1];
}

static enum cli_result cli_option(struct relay_cli *cli, int c)
{
	switch (c) {
	case OPT_CONFIG:
		return set_path(&cli->config_file, "--config", optarg);
	case OPT_LISTEN: {
		struct relay_listen l;
		const char *why;
		int rc;

		if (cli->n_listen == RELAY_MAX_LISTEN)
			return usage_error("at most %d --listen addresses",
					   RELAY_MAX_LISTEN);
		rc = cli_listen_parse(&l, optarg, &why);
		if (rc == -ENOMEM)
			return usage_error("out of memory");
		if (rc)
			return usage_error("--listen %s: %s", optarg, why);
		cli_listen_free(&l);
		cli->listen[cli->n_listen++] = optarg;
		return CLI_OK;
	}
	case OPT_WEB:
		return set_path(&cli->web_dir, "--web", optarg);
	case OPT_STATE_HOOK:
		return set_path(&cli->state_hook, "--state-hook", optarg);
	case OPT_TOKENS:
		return set_path(&cli->tokens_file, "--tokens", optarg);
	case OPT_TLS_CERT:
		return set_path(&cli->tls_cert, "--tls-cert", optarg);
	case OPT_TLS_KEY:
		return set_path(&cli->tls_key, "--tls-key", optarg);
	case OPT_TLS_CLIENT_CA:
		return set_path(&cli->tls_client_ca, "--tls-client-ca", optarg);
	case OPT_MODULE:
		return set_path(&cli->module_path, "--module", optarg);
	case OPT_INSECURE:
		cli->insecure = true;
		return CLI_OK;
	case OPT_FALLBACK:
		cli->fallback = true;
		return CLI_OK;
	case OPT_METADATA:
		cli->metadata = true;
		return CLI_OK;
	case 'v':
		if (cli->verbose < 8)
			cli->verbose++;
		return CLI_OK;
	default:
		return CLI_USAGE;
	}
}

enum cli_result cli_parse(struct relay_cli *cli, int argc, char **argv)
{
	enum cli_result r;
	int c;

	memset(cli, 0, sizeof(*cli));
	/* Our own messages: "unknown option --foo" and the usage line. */
	opterr = 0;
	optind = 1;
	for (;;) {
		optopt = 0;
		c = getopt_long(argc, argv, ":hv", long_opts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			return CLI_DONE;
		case OPT_VERSION:
			puts("nbdws-relay " NBDWS_VERSION);
			return CLI_DONE;
		case ':':
			return usage_error("%s needs an argument",
					   bad_option(argv, optind));
		case '?': {
			const char *a = argv[optind - 1];
			const char *eq = strchr(a, '=');

			/* A known long option given "=VALUE" it does not take. */
			if (optopt && !strncmp(a, "--", 2) && eq)
				return usage_error("%.*s takes no argument",
						   (int)(eq - a), a);
			return usage_error("unknown option %s",
					   bad_option(argv, optind));
		}
		default:
			r = cli_option(cli, c);
			if (r != CLI_OK)
				return r;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s' (slots are chosen by URL path, not on the command line)",
				   argv[optind]);
	return CLI_OK;
}

/* 1..65535, decimal. Service names are not accepted: say what you mean. */
static bool valid_port(const char *p)
{
	unsigned long v;
	char *end;

	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	v = strtoul(p, &end, 10);
	return !errno && !*end && v >= 1 && v <= 65535;
}

/* A host name or IPv4 literal: letters, digits, '-', '.'; at most 253. */
static bool valid_host(const char *h, size_t len)
{
	size_t i;

	if (len > 253)
		return false;
	for (i = 0; i < len; i++) {
		char ch = h[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
			return false;
	}
	return true;
}

int cli_listen_parse(struct relay_listen *l, const char *spec,
		     const char **why)
{
	const char *host, *port;
	size_t host_len;

	memset(l, 0, sizeof(*l));
	if (!strncmp(spec, "unix:", 5)) {
		const char *path = spec + 5;

		if (!*path) {
			*why = "unix: needs a socket path";
			return -EINVAL;
		}
		if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
			*why = "the socket path is longer than 107 bytes";
			return -EINVAL;
		}
		l->kind = RELAY_LISTEN_UNIX;
		l->path = strdup(path);
		l->spec = strdup(spec);
		if (!l->path || !l->spec) {
			cli_listen_free(l);
			return -ENOMEM;
		}
		return 0;
	}

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		char addr[INET6_ADDRSTRLEN];
		struct in6_addr a6;

		host = spec + 1;
		host_len = close ? (size_t)(close - host) : 0;
		if (!close || close[1] != ':' || !host_len ||
		    host_len >= sizeof(addr)) {
			*why = "write an IPv6 address as [ADDRESS]:PORT";
			return -EINVAL;
		}
		memcpy(addr, host, host_len);
		addr[host_len] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1) {
			*why = "not an IPv6 address between the brackets";
			return -EINVAL;
		}
		port = close + 2;
	} else {
		const char *colon = strrchr(spec, ':');

		if (!colon) {
			*why = "expected HOST:PORT, [V6]:PORT, :PORT or unix:PATH";
			return -EINVAL;
		}
		host = spec;
		host_len = (size_t)(colon - spec);
		if (memchr(host, ':', host_len)) {
			*why = "write an IPv6 address in brackets: [ADDRESS]:PORT";
			return -EINVAL;
		}
		if (!valid_host(host, host_len)) {
			*why = "not a host name or IPv4 address";
			return -EINVAL;
		}
		port = colon + 1;
	}
	if (!valid_port(port)) {
		*why = "the port must be a number from 1 to 65535";
		return -EINVAL;
	}
	l->kind = RELAY_LISTEN_TCP;
	l->host = strndup(host, host_len);
	l->port = strdup(port);
	l->spec = strdup(spec);
	if (!l->host || !l->port || !l->spec) {
		cli_listen_free(l);
		return -ENOMEM;
	}
	return 0;
}

void cli_listen_free(struct relay_listen *l)
{
	free(l->host);
	free(l->port);
	free(l->path);
	free(l->spec);
	memset(l, 0, sizeof(*l));
}
