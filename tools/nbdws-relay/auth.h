/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: who may use a slot. Credentials are bearer tokens from a
 * file the operator controls (one per line, each with the slots it opens)
 * or a TLS client certificate verified against tls.client-ca. A token is
 * never kept in memory as such, only its SHA-256, and is compared in
 * constant time; it never appears in a log line or a response.
 *
 * A client's identity is the SHA-256 of its token or certificate (DER);
 * a held slot is given back only to the identity that had it.
 */
#ifndef _RELAY_AUTH_H
#define _RELAY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http_req.h"
#include "nbdws_err.h"
#include "relay.h"

#define AUTH_TOKEN_MIN		16
#define AUTH_TOKEN_MAX		256
/* Tokens in one file; more is certainly a mistake. */
#define AUTH_MAX_TOKENS		4096

struct auth_id {
	bool anonymous;		/* --insecure client without a credential */
	u8 sha[32];		/* SHA-256 of the token or certificate */
};

struct auth_entry {
	u8 sha[32];		/* SHA-256 of the token */
	bool all_slots;		/* no slot named on its line */
	u64 slots;		/* bit n: relay_cfg->slots[n] */
};

struct auth_set {
	struct auth_entry *v;
	unsigned int n;
};

/*
 * Load the token file at @path into @set (free with auth_set_free()).
 * The file must be a regular file owned by root or by @uid and not
 * accessible to group or others; slot names must exist in @cfg.
 * 0 or -errno with @err naming the file and line (never the token).
 */
int auth_set_load(const char *path, uid_t uid, const struct relay_config *cfg,
		  struct auth_set *set, struct nbdws_err *err);
void auth_set_free(struct auth_set *set);

/*
 * At start: load relay_cfg->tokens_file if set; refuse to run when no
 * credential could ever be accepted and --insecure was not given.
 * 0 or -errno after logging why.
 */
int auth_init(void);
void auth_fini(void);
/* SIGHUP: 0, or -errno and the old set stays (logged). */
int auth_reload(void);

/* Outcome of auth_check(). */
struct auth_result {
	int status;		/* 0: allowed; else 400, 401 or 403 */
	const char *why;	/* for the log and the response body */
	struct auth_id id;	/* status 0: who it is */
	/* Subprotocol to answer with: an offered token, "binary", or "" */
	char protocol[AUTH_TOKEN_MAX + 1];
};

/*
 * Decide on a request for slot @slot (index into @cfg->slots, or -1 for
 * "any slot", as /status asks) against @set. @cert_sha: SHA-256 of a
 * verified TLS client certificate, or NULL. Pure: no I/O, no logging.
 */
void auth_check(const struct auth_set *set, const struct relay_config *cfg,
		const struct http_request *req, const u8 *cert_sha, int slot,
		struct auth_result *res);

/* The same with the token set in force. */
void auth_check_request(const struct http_request *req, const u8 *cert_sha,
			int slot, struct auth_result *res);

/*
 * Origin allowlist of @sc: true if the slot has none, the request has no
 * Origin (not a browser), or Origin matches one entry (scheme and host
 * case-insensitively, the rest exactly).
 */
bool auth_origin_ok(const struct relay_slot_cfg *sc,
		    const struct http_request *req);

bool auth_id_equal(const struct auth_id *a, const struct auth_id *b);

#endif /* _RELAY_AUTH_H */
