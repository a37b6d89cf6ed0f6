/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TLS for wss:// (OpenSSL), client and server side, built to end in
 * kernel TLS: the record layer moves into the socket (kTLS) as soon as
 * the handshake is done, so that after the WebSocket upgrade and the NBD
 * handshake the plain fd can be handed to nbdws.ko and the kernel keeps
 * the fast path.
 *
 * Client side:
 *
 * - Verification against the system store by default, or a CA file, or
 *   none (insecure, for tests and self-signed lab setups); the peer name
 *   is checked (DNS name or IP literal); SNI is sent for DNS names.
 * - ALPN offers http/1.1 (the upgrade is an HTTP/1.1 request).
 * - A client certificate is presented when one is given (cert_file,
 *   key_file), for servers that authenticate clients by certificate.
 * - TLS 1.2 or 1.3. With @want_ktls, SSL_OP_ENABLE_KTLS is set before
 *   the handshake, only AEAD ciphers the kernel implements are offered
 *   and the version is TLS 1.2, whatever the OpenSSL library could
 *   offload: TLS 1.3 lets the peer send a KeyUpdate or NewSessionTicket
 *   at any time after the hand-over, which the kernel cannot follow
 *   (tls.c says why in full).
 * - No renegotiation, no session tickets; OpenSSL wipes the plaintext it
 *   has returned (SSL_OP_CLEANSE_PLAINTEXT).
 *
 * The server side (tls_server_new(), tls_accept(), for the relay) makes
 * the same choices: the same versions, ALPN http/1.1 when the client
 * asks for ALPN, the kTLS restrictions with @want_ktls, no tickets at
 * all, and optional client certificates verified against a CA file. A server session is a
 * struct tls_conn like a client one: tls_io(), tls_ktls_check(),
 * tls_describe(), tls_detach() and tls_free() work on both.
 *
 * While the session is in userspace the fd is non-blocking (every wait is
 * a poll() against the deadline); tls_detach() restores it.
 */
#ifndef _NBDWS_TLS_H
#define _NBDWS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "nbdws_types.h"
#include "nbdws_err.h"
#include "ws_io.h"

struct tls_opts {
	/* host from the URI: SNI and name check; must outlive the session */
	const char *server_name;
	const char *ca_file;	/* NULL: the system's default store */
	bool insecure;		/* do not verify the certificate at all */
	bool want_ktls;		/* move the record layer into the kernel */
	/* client certificate (PEM, then its chain), or NULL for none */
	const char *cert_file;
	const char *key_file;	/* its private key; NULL: also in cert_file */
};

struct tls_conn {
	struct tls_opts opts;	/* server session: only want_ktls is set */
	SSL_CTX *ctx;		/* one reference, dropped with the session */
	SSL *ssl;
	int fd;
	int fd_flags;		/* file status flags before we set O_NONBLOCK */
	long long deadline_ms;
	char alert[96];		/* first TLS alert sent or received */
	struct nbdws_err err;	/* detail of the last I/O failure */
};

/*
 * Build the OpenSSL context and session for @o without touching the
 * network. Done before the TCP connect, because loading OpenSSL's
 * configuration and ciphers can take long on a slow machine, and servers
 * (websockify among them) hang up on clients that stay silent for a few
 * seconds after connecting. Returns 0 or a negative errno with @err set
 * (-EINVAL unusable CA file, client certificate or name, -ENOMEM); on
 * failure nothing is left to free. Release with tls_free() (or
 * tls_detach()).
 */
int tls_prepare(struct tls_conn *t, const struct tls_opts *o,
		struct nbdws_err *err);

/*
 * Run the TLS handshake on connected @fd within @timeout_ms. Returns 0, or
 * a negative errno with a message in @err (-ECONNREFUSED certificate or
 * handshake refused, -ETIMEDOUT, -ECONNRESET, -EPROTO); on failure the
 * session is freed and @fd stays open.
 */
int tls_connect(struct tls_conn *t, int fd, int timeout_ms,
		struct nbdws_err *err);

/*
 * The session as a ws_io stream (SSL_read/SSL_write, which go through the
 * kernel when kTLS is on). Deadline: the one given to tls_connect() or
 * tls_accept().
 */
void tls_io(struct tls_conn *t, struct ws_io *io);

/*
 * 0 if kTLS is active in both directions; otherwise -EOPNOTSUPP with
 * "kernel TLS not available for this cipher/kernel: ..." and the details
 * (protocol, cipher, which direction, whether the tls ULP is registered).
 */
int tls_ktls_check(struct tls_conn *t, struct nbdws_err *err);

/* Protocol and cipher in use ("TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384"). */
void tls_describe(struct tls_conn *t, char *buf, size_t size);

/*
 * Take what OpenSSL holds before the session leaves it: the application
 * bytes it has decrypted but not returned go to *out (malloc'd, NULL
 * when none). -EPROTO, with *out NULL, when it also holds records it has
 * read but not processed (data, an alert, a NewSessionTicket or
 * KeyUpdate): they would be lost to the kernel. Records still in the
 * socket are the kernel's to read.
 */
int tls_drain(struct tls_conn *t, u8 **out, size_t *out_len,
	      struct nbdws_err *err);

/*
 * Hand the fd over: kTLS must be active (else -EOPNOTSUPP, the session
 * untouched) and tls_drain() must succeed (else its error, and the
 * session is only good for tls_free()). The bytes tls_drain() takes are
 * moved to *out, the fd is made blocking again and the OpenSSL state is
 * freed without a close_notify. The fd stays open and is the caller's.
 */
int tls_detach(struct tls_conn *t, u8 **out, size_t *out_len,
	       struct nbdws_err *err);

/* End the session (close_notify, best effort) and free it; fd stays open. */
void tls_free(struct tls_conn *t);

/* True if the running kernel has registered the "tls" TCP ULP. */
bool tls_kernel_has_ulp(void);

/* ---- server side ---- */

struct tls_server_opts {
	const char *cert_file;	/* PEM: the certificate, then its chain */
	const char *key_file;	/* PEM: the private key of cert_file */
	const char *client_ca_file;	/* NULL: no client certificates asked */
	bool require_client_cert;	/* refuse clients without one */
	bool want_ktls;		/* sessions are to end in kernel TLS */
};

/* The server's context: certificate, key, policy. Shared by its sessions. */
struct tls_server;

/*
 * Load the certificate chain and key (checked to belong together) and the
 * client CA if given, and set the policy above. Nothing touches the
 * network. Returns 0 with *@srv set, or a negative errno with @err set:
 * -EINVAL a file that cannot be read or used (the message names it and
 * says why), -ENOMEM.
 */
int tls_server_new(struct tls_server **srv, const struct tls_server_opts *o,
		   struct nbdws_err *err);

/*
 * Release the server's reference to its context; sessions still running
 * keep theirs, so this may be called before they end. NULL is fine.
 */
void tls_server_free(struct tls_server *srv);

/*
 * Run the server handshake on accepted @fd within @timeout_ms (also the
 * deadline of tls_io() afterwards). With a client CA the client's
 * certificate, when sent, must verify against it; with
 * require_client_cert it must be sent. Returns 0 with @t a session, or a
 * negative errno with @err set (-ECONNREFUSED handshake or certificate
 * refused, -ETIMEDOUT, -ECONNRESET the client left, -ENOMEM); on failure
 * nothing is left to free and @fd stays open (as with tls_connect()).
 */
int tls_accept(struct tls_conn *t, struct tls_server *srv, int fd,
	       int timeout_ms, struct nbdws_err *err);

/*
 * SHA-256 of the verified client certificate (its DER encoding) into
 * @out: 0, or -ENOENT if the client sent none or it was not verified
 * (possible only without a client CA, where none is asked for).
 */
int tls_peer_cert_sha256(struct tls_conn *t, u8 out[32]);

#endif /* _NBDWS_TLS_H */
