// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl: configure nbdws block devices. This file holds the global
 * options, the usage texts and the dispatch to one file per command.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nbdctl.h"
#include "nbdws_nl.h"

#ifndef NBDWS_VERSION
#define NBDWS_VERSION "unknown"
#endif

struct nbdctl_opts nbdctl_opts;

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "connect", cmd_connect,
	  "connect [-c N] [-t SEC|--no-timeout] [--dead-timeout SEC] [-r] [-b BYTES]\n"
	  "                [--max-request BYTES] [--queue-depth N] [--backend ID]\n"
	  "                [--persist] [--keep] [--connect-timeout SEC] [WS-OPTIONS]\n"
	  "                [--ping SEC] URI [DEVICE]" },
	{ "disconnect", cmd_disconnect, "disconnect DEVICE... | --all" },
	{ "list", cmd_list, "list" },
	{ "status", cmd_status, "status DEVICE" },
	{ "monitor", cmd_monitor, "monitor" },
	{ "reconfigure", cmd_reconfigure,
	  "reconfigure DEVICE [-t SEC] [--dead-timeout SEC] [--connect-timeout SEC]\n"
	  "                [--add URI]..." },
	{ "info", cmd_info, "info [--connect-timeout SEC] [WS-OPTIONS] URI" },
	{ "list-exports", cmd_list_exports,
	  "list-exports [--connect-timeout SEC] [WS-OPTIONS] URI" },
	{ "version", cmd_version, "version" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void vmsg(const char *level, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "nbdctl: %s", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void nbdctl_verbose(const char *fmt, ...)
{
	va_list ap;

	if (!nbdctl_opts.verbose)
		return;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void nbdctl_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void nbdctl_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void nbdctl_usage(FILE *f, const char *cmd)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++) {
		if (cmd && strcmp(cmd, commands[i].name) != 0)
			continue;
		fprintf(f, "%s nbdctl [-j] %s\n", cmd ? "usage:" : "      ",
			commands[i].usage);
	}
}

int nbdctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vmsg("", fmt, ap);
		va_end(ap);
	}
	nbdctl_usage(stderr, cmd);
	return NBDCTL_EXIT_USAGE;
}

/*
 * getopt_long() with nbdctl's own messages: getopt's would lack our
 * wording and be followed by no usage line. A leading ':' in the option
 * string makes a missing value come back as ':' rather than '?'.
 */
int nbdctl_getopt(int argc, char **argv, const char *optstring,
		  const struct option *longopts)
{
	bool stop = optstring[0] == '+';
	const char *arg;
	char spec[64];
	size_t len;
	int c;

	opterr = 0;
	snprintf(spec, sizeof(spec), "%s:%s", stop ? "+" : "", optstring + stop);
	c = getopt_long(argc, argv, spec, longopts, NULL);
	if (c != '?' && c != ':')
		return c;
	/* A long option is the word itself (without any "=VALUE"). */
	arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	len = strncmp(arg, "--", 2) ? 0 : strcspn(arg, "=");
	if (c == ':' && len)
		nbdctl_err("option '%.*s' needs a value", (int)len, arg);
	else if (c == ':')
		nbdctl_err("option '-%c' needs a value", optopt);
	else if (len && optopt)
		nbdctl_err("option '%.*s' takes no value", (int)len, arg);
	else if (len)
		nbdctl_err("unknown or ambiguous option '%.*s'", (int)len, arg);
	else
		nbdctl_err("unknown option '-%c'", optopt);
	return '?';
}

int nbdctl_parse_json_only(int argc, char **argv, int min_args, int max_args,
			   const char *count_msg)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	while ((c = nbdctl_getopt(argc, argv, "jh", opts)) != -1) {
		switch (c) {
		case 'j':
			nbdctl_opts.json = true;
			break;
		case 'h':
			nbdctl_usage(stdout, argv[0]);
			exit(NBDCTL_EXIT_OK);
		default:
			return nbdctl_usage_error(argv[0], NULL);
		}
	}
	if (argc - optind < min_args || argc - optind > max_args)
		return nbdctl_usage_error(argv[0], "%s", count_msg);
	return 0;
}

static void print_version(void)
{
	if (nbdctl_opts.json)
		printf("{\"version\":\"%s\"}\n", NBDWS_VERSION);
	else
		printf("nbdctl %s\n", NBDWS_VERSION);
}

int cmd_version(int argc, char **argv)
{
	int rc = nbdctl_parse_json_only(argc, argv, 0, 0,
					"no arguments expected");

	if (rc)
		return rc;
	print_version();
	return NBDCTL_EXIT_OK;
}

static void help(FILE *f)
{
	fprintf(f,
		"usage: nbdctl [-j|--json] [-v|--verbose] [--module PATH] COMMAND [ARGS]\n"
		"       nbdctl --version\n"
		"  -j  JSON output   -v  libkmod's own messages when it loads nbdws.ko,\n"
		"      the TLS version and cipher of wss:// connections\n"
		"commands:\n");
	nbdctl_usage(f, NULL);
	fprintf(f,
		"URI: nbd://HOST[:PORT]/EXPORT | nbd+unix:///EXPORT?socket=PATH\n"
		"     | ws://HOST[:PORT]/PATH | wss://HOST[:PORT]/PATH\n"
		"WS-OPTIONS: [--ws-protocol NAME] [--authorization VALUE | --auth-file PATH]\n"
		"            [--origin URL] [--cafile PATH | --insecure]\n"
		"DEVICE: /dev/nbdwsN | nbdwsN | N\n"
		"exit status: 0 ok, 1 operation failed, 2 usage error,\n"
		"             3 nbdws module not available\n"
		"see nbdctl(8)\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "module", required_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *cmd;
	size_t i;
	int c;

	nbdctl_opts.module_path = getenv("NBDWS_MODULE_PATH");
	if (nbdctl_opts.module_path && !*nbdctl_opts.module_path)
		nbdctl_opts.module_path = NULL;
	/* '+': stop at the command name, its options are its own. */
	while ((c = nbdctl_getopt(argc, argv, "+jvh", longopts)) != -1) {
		switch (c) {
		case 'j':
			nbdctl_opts.json = true;
			break;
		case 'M':
			nbdctl_opts.module_path = optarg;
			break;
		case 'v':
			/* libkmod's own lines, when it loads the module. */
			nbdws_nl_kmod_log(true);
			nbdctl_opts.verbose = true;
			break;
		case 'V':
			print_version();
			return NBDCTL_EXIT_OK;
		case 'h':
			help(stdout);
			return NBDCTL_EXIT_OK;
		default:
			help(stderr);
			return NBDCTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		nbdctl_err("no command given");
		help(stderr);
		return NBDCTL_EXIT_USAGE;
	}
	cmd = argv[optind];
	if (!strcmp(cmd, "help")) {
		help(stdout);
		return NBDCTL_EXIT_OK;
	}
	for (i = 0; i < N_COMMANDS; i++) {
		if (!strcmp(cmd, commands[i].name)) {
			int pos = optind;

			/* Let the command's getopt start from scratch. */
			optind = 0;
			return commands[i].fn(argc - pos, argv + pos);
		}
	}
	nbdctl_err("unknown command '%s'", cmd);
	help(stderr);
	return NBDCTL_EXIT_USAGE;
}
