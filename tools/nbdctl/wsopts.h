/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: the WebSocket options shared by connect, info and list-exports
 * (--ws-protocol, --authorization, --auth-file, --origin, --cafile,
 * --insecure, --ping), their checks, and the hints added to WebSocket
 * and TLS errors so that each one says which option fixes it.
 */
#ifndef _NBDCTL_WSOPTS_H
#define _NBDCTL_WSOPTS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "nbd_uri.h"
#include "ws_dial.h"

enum {
	OPT_WS_PROTOCOL = 512, OPT_WS_AUTH, OPT_WS_AUTH_FILE, OPT_WS_ORIGIN,
	OPT_WS_CAFILE, OPT_WS_INSECURE, OPT_WS_PING,
};

/* Entries for a getopt_long() table; --ping only where it makes sense. */
#define WSOPTS_LONG_OPTIONS \
	{ "ws-protocol", required_argument, NULL, OPT_WS_PROTOCOL }, \
	{ "authorization", required_argument, NULL, OPT_WS_AUTH }, \
	{ "auth-file", required_argument, NULL, OPT_WS_AUTH_FILE }, \
	{ "origin", required_argument, NULL, OPT_WS_ORIGIN }, \
	{ "cafile", required_argument, NULL, OPT_WS_CAFILE }, \
	{ "insecure", no_argument, NULL, OPT_WS_INSECURE }
#define WSOPTS_PING_OPTION \
	{ "ping", required_argument, NULL, OPT_WS_PING }

/* Longest Authorization value nbdctl accepts (from the line or a file). */
#define WSOPTS_MAX_AUTH		4096

struct wsopts {
	struct ws_dial_opts dial;
	char *auth_buf;			/* --auth-file content (owned) */
	const char *auth_file;
	uint32_t ping_ms;		/* 0: no keepalive */
	bool ping_given;
	bool any;			/* some WebSocket option was given */
	bool tls_any;			/* --cafile or --insecure was given */
};

/*
 * Handle option @c of command @cmd with @arg if it is a WebSocket option.
 * Returns -1 when @c is not one, 0 when it was taken, or an exit code
 * (usage error, unreadable --auth-file) after printing why.
 */
int wsopts_handle(struct wsopts *w, const char *cmd, int c, const char *arg);

/*
 * Check the options against the parsed @uri once the command line is
 * complete (WebSocket options need ws:// or wss://, TLS options wss://),
 * and read --auth-file (refused when group or others may access it).
 * Warns about credentials that would travel in clear text and about
 * --insecure. Returns 0 or an exit code after printing why.
 */
int wsopts_finish(struct wsopts *w, const char *cmd, const struct nbd_uri *uri);

void wsopts_free(struct wsopts *w);

/*
 * Warn on stderr when @uri is a ws:// URI whose query looks like it holds
 * a credential (?token=...): it would travel in clear text. Done by
 * wsopts_finish(), along with the warnings for an Authorization value
 * over ws:// and for --insecure.
 */
void wsopts_warn_uri(const struct nbd_uri *uri);

/*
 * Print a dial failure (@rc, @msg) for @uri, followed by what to do when
 * an nbdctl option or the system can fix it. @prefix (may be NULL) goes
 * in front, e.g. "connection 2 of 4".
 */
void wsopts_report(const struct nbd_uri *uri, int rc, const char *msg,
		   const char *prefix);

#endif /* _NBDCTL_WSOPTS_H */
