/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: shared declarations between the command files.
 */
#ifndef _NBDCTL_H
#define _NBDCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/nbdws.h>

/* Exit codes, documented in nbdctl(8). */
enum {
	NBDCTL_EXIT_OK = 0,
	NBDCTL_EXIT_FAIL = 1,		/* the operation failed */
	NBDCTL_EXIT_USAGE = 2,		/* bad command line */
	NBDCTL_EXIT_NOMOD = 3,		/* nbdws module/family unavailable */
};

/*
 * Default --connect-timeout, seconds: the deadline of one connection's
 * whole dial (TCP, TLS, WebSocket upgrade, NBD handshake).
 */
#define NBDCTL_CONNECT_TIMEOUT_S	30
/* The same for each reconnection attempt of --persist, by default. */
#define NBDCTL_RECONNECT_TIMEOUT_S	10

struct nbdctl_opts {
	bool json;
	bool verbose;			/* -v */
	const char *module_path;	/* --module or $NBDWS_MODULE_PATH */
};

extern struct nbdctl_opts nbdctl_opts;

/* Print "nbdctl: " + message to stderr. */
void nbdctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nbdctl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same without a level, and only with -v. */
void nbdctl_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print the usage line of @cmd (or all of them) to @f. */
void nbdctl_usage(FILE *f, const char *cmd);
/* Print usage of @cmd to stderr and return NBDCTL_EXIT_USAGE. */
int nbdctl_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * getopt_long() for the commands (@optstring without a leading ':'): on
 * an unknown option or a missing value it prints an "nbdctl: " message
 * itself and returns '?', for the caller to print its usage line.
 */
struct option;
int nbdctl_getopt(int argc, char **argv, const char *optstring,
		  const struct option *longopts);

/*
 * The options of a command that has only -j and -h, then between
 * @min_args and @max_args arguments (else @count_msg as a usage error).
 * -h prints the usage line and exits 0. Returns 0 or NBDCTL_EXIT_USAGE.
 */
int nbdctl_parse_json_only(int argc, char **argv, int min_args, int max_args,
			   const char *count_msg);

/* Command entry points: argv[0] is the command name. */
int cmd_connect(int argc, char **argv);
int cmd_disconnect(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_reconfigure(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_list_exports(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* args.c: argument parsing helpers; 0 on success, -1 if malformed. */
int parse_device(const char *arg, uint32_t *index);
int parse_seconds_ms(const char *arg, uint32_t *ms);
int parse_bytes(const char *arg, uint32_t *bytes);
int parse_uint(const char *arg, uint32_t min, uint32_t max, uint32_t *v);

/*
 * --connect-timeout, taken by every command that dials: a getopt_long()
 * table entry, and its parser, which prints the usage error itself and
 * returns NBDCTL_EXIT_USAGE, or 0 with *@ms set.
 */
#define NBDCTL_OPT_CONNECT_TIMEOUT	768
#define NBDCTL_CONNECT_TIMEOUT_OPTION \
	{ "connect-timeout", required_argument, NULL, NBDCTL_OPT_CONNECT_TIMEOUT }
int parse_connect_timeout(const char *cmd, const char *arg, uint32_t *ms);

#endif /* _NBDCTL_H */
