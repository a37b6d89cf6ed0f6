/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ws:// and wss:// in the client role, end to end: TCP connect, TLS (wss),
 * the HTTP/1.1 upgrade, and the NBD handshake carried in WebSocket binary
 * messages. In NBD_DIAL_GO mode the result is what nbdws.ko needs to take
 * the connection in the ws-client transport: the fd (kTLS active for wss)
 * and the bytes already read past the handshake, which the kernel must
 * consume before reading the socket itself.
 */
#ifndef _NBDWS_WS_DIAL_H
#define _NBDWS_WS_DIAL_H

#include <stdbool.h>
#include <stddef.h>

#include "nbdws_types.h"
#include "nbd_dial.h"
#include "nbd_handshake.h"
#include "nbd_uri.h"
#include "nbdws_err.h"

struct ws_dial_opts {
	const char *subprotocol;	/* Sec-WebSocket-Protocol, or NULL */
	const char *authorization;	/* Authorization header value, or NULL */
	const char *origin;		/* Origin header value, or NULL */
	const char *ca_file;		/* wss: CA bundle instead of the system's */
	bool insecure;			/* wss: skip certificate verification */
};

/* A negotiated connection ready for the kernel (NBD_DIAL_GO). */
struct ws_conn {
	int fd;				/* -1 when none */
	u8 *preread;			/* WebSocket bytes read past the handshake */
	size_t preread_len;
	char *subprotocol;		/* what the server chose, or NULL */
	bool ktls;			/* wss: record layer is in the kernel */
	char tls_desc[96];		/* wss: "TLSv1.2 ECDHE-..." (GO, INFO) */
};

/*
 * Dial @uri (NBD_URI_WS or NBD_URI_WSS) and negotiate its export within
 * @timeout_ms. GO: returns the fd (>= 0, also in @conn, which the caller
 * frees with ws_conn_free(); the fd is then the caller's to close or hand
 * over). For wss, GO requires kTLS in both directions (checked right
 * after the TLS handshake, -EOPNOTSUPP otherwise) because the session goes
 * to the kernel; INFO and LIST stay in userspace and do not need it.
 * INFO: returns 0 and closes everything. Failures return a negative
 * errno with @err set (see ws_upgrade.h, tls.h, nbd_handshake.h).
 */
int ws_dial(const struct nbd_uri *uri, const struct ws_dial_opts *o,
	    enum nbd_dial_mode mode, int timeout_ms,
	    struct nbd_export_info *info, struct ws_conn *conn,
	    struct nbdws_err *err);

/* NBD_OPT_LIST over @uri. */
int ws_dial_list(const struct nbd_uri *uri, const struct ws_dial_opts *o,
		 int timeout_ms, struct nbd_export_list *list,
		 struct nbdws_err *err);

/* Free what @conn holds; does not close conn->fd. */
void ws_conn_free(struct ws_conn *conn);

#endif /* _NBDWS_WS_DIAL_H */
