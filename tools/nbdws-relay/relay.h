/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: what every part of the daemon shares: the configuration
 * (filled by config.c from the JSON file and the command line), logging,
 * and the limits that bound what a client can make the relay hold.
 *
 * The daemon in one paragraph: one process, one epoll loop (loop.c).
 * Every accepted connection runs its whole life before the hand-over
 * (TLS accept, HTTP request, authentication, NBD handshake over WebSocket,
 * CONNECT or RECONFIGURE) as a fiber (fiber.c): a small stack of its own
 * that yields to the loop whenever a socket would block, so the blocking
 * library code that nbdctl runs (lib/) runs here unchanged, without a
 * thread per connection. Generic netlink commands, which may block in the
 * kernel for as long as a device takes to appear or go, run on one worker
 * thread (kernel.c); the loop never waits for the kernel. After the
 * hand-over the relay keeps no data-path fd of a fast-path connection;
 * it follows the device through the module's multicast events (slot.c).
 */
#ifndef _NBDWS_RELAY_H
#define _NBDWS_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/nbdws.h>

#include "nbdws_types.h"

/* Hard limits on what a client may make the relay hold. */
#define RELAY_MAX_HEADER_BYTES	8192	/* request line + fields + CRLFs */
#define RELAY_MAX_HEADER_FIELDS	64
#define RELAY_MAX_REQUEST_LINE	2048
#define RELAY_MAX_SLOTS		64
#define RELAY_MAX_LISTEN	16
#define RELAY_MAX_ORIGINS	16

/* Defaults of the configuration (config.c documents each key). */
#define RELAY_DEF_MAX_CONNS		256	/* open client sockets */
#define RELAY_DEF_MAX_HANDSHAKES	32	/* before hand-over at once */
#define RELAY_DEF_HANDSHAKE_MS		10000	/* accept to hand-over */
#define RELAY_DEF_HOOK_MS		30000	/* one state hook run */
#define RELAY_DEF_HOLD_MS		60000	/* dead-connection hold */

enum relay_listen_kind {
	RELAY_LISTEN_TCP,	/* host:port or [v6]:port */
	RELAY_LISTEN_UNIX,	/* unix:PATH */
};

struct relay_listen {
	enum relay_listen_kind kind;
	char *host;		/* TCP: NULL or "" means any address */
	char *port;		/* TCP: service */
	char *path;		/* UNIX */
	char *spec;		/* as written, for messages */
};

struct relay_slot_cfg {
	char *name;		/* served at /NAME: [A-Za-z0-9._-]{1,64} */
	bool is_default;	/* also served at / */
	int index;		/* N of /dev/nbdwsN, -1: the lowest free */
	bool read_only;		/* device read-only whatever the export says */
	char *export_name;	/* asked for in the NBD handshake ("" default) */
	char *metadata_json;	/* "metadata" object as JSON text, or NULL */
	char *origins[RELAY_MAX_ORIGINS];	/* allowlist; none: any */
	unsigned int n_origins;
	u32 hold_ms;		/* dead-connection hold (kernel dead timeout) */
	u32 timeout_ms;		/* per-request timeout; 0: module default */
	u32 max_req_bytes;	/* largest request; 0: module default */
	u32 queue_depth;	/* 0: module default */
	u32 ping_ms;		/* WebSocket keepalive, 0: off */
};

struct relay_tls_cfg {
	char *cert_file;	/* PEM chain; set means TLS is on */
	char *key_file;
	char *client_ca_file;	/* verify client certificates against this */
	bool require_client_cert; /* refuse TLS clients without one */
};

struct relay_config {
	struct relay_listen listen[RELAY_MAX_LISTEN];
	unsigned int n_listen;
	char *web_dir;		/* static files, or NULL */
	char *state_hook;	/* HOOK start|stop SLOT, or NULL */
	char *tokens_file;	/* one token per line (auth.c), or NULL */
	char *module_path;	/* nbdws.ko to load if missing, or NULL */
	bool insecure;		/* slots may go without authentication */
	bool fallback;		/* always frame in userspace */
	int verbose;		/* -v count */
	struct relay_tls_cfg tls;
	unsigned int max_conns;
	unsigned int max_handshakes;
	u32 handshake_ms;
	u32 hook_ms;
	struct relay_slot_cfg slots[RELAY_MAX_SLOTS];
	unsigned int n_slots;
};

/* The configuration in force; set once at start by main.c. */
extern const struct relay_config *relay_cfg;

enum relay_log_level {
	RELAY_LOG_ERR,
	RELAY_LOG_WARN,
	RELAY_LOG_INFO,
	RELAY_LOG_DEBUG,	/* -v */
};

/*
 * One line to stderr ("nbdws-relay: " + message; journald adds time and
 * level). Text that came from a peer must go through relay_printable()
 * first. Never pass a token or any other credential.
 */
void relay_log(enum relay_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Copy @in (@len bytes, not necessarily NUL-terminated) into @out (@size
 * bytes, NUL-terminated) with every control (C0, DEL, C1) and every
 * ill-formed UTF-8 sequence replaced by '?', for logging what a peer
 * sent: lib/peer_text.h's sanitiser, which the tools share.
 */
void relay_printable(const char *in, size_t len, char *out, size_t size);

#endif /* _NBDWS_RELAY_H */
