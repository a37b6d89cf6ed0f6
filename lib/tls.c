// SPDX-License-Identifier: GPL-2.0
/*
 * OpenSSL sessions, client and server side, that end in kernel TLS (see
 * tls.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "nbd_sock.h"
#include "tls.h"

/* ALPN wire form: length-prefixed protocol names. */
static const unsigned char alpn_http11[] = "\x08http/1.1";

/*
 * TLS 1.2 suites the kernel can run (AES-GCM, ChaCha20-Poly1305), all
 * with forward secrecy. TLS 1.3 suites are all AEAD and left as they are.
 */
static const char ktls_ciphers[] =
	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20";

/*
 * A session that ends in kernel TLS is TLS 1.2, whatever the OpenSSL
 * library and the kernel could do. In TLS 1.3 either peer may send
 * handshake messages at any time after the handshake: a KeyUpdate moves
 * the sender to a new key, which nobody can follow once the socket is in
 * nbdws.ko (the traffic secret stays in OpenSSL, which is freed at the
 * hand-over, and kTLS on 6.1 and 6.12 cannot change a receive key at
 * all), and a server's NewSessionTicket is a handshake record where the
 * module expects application data. Either ends the connection, at a time
 * the peer chooses. TLS 1.2 has no post-handshake messages once
 * renegotiation is off. (OpenSSL before 3.2 also offloads only the send
 * direction of TLS 1.3.) Sessions that stay in userspace may use 1.3.
 */
#define TLS_MIN_VERSION		TLS1_2_VERSION
#define TLS_KTLS_MAX_VERSION	TLS1_2_VERSION

/* Said when a handshake restricted for kTLS fails. */
static const char ktls_offer_note[] =
	" (to end in kernel TLS only TLS 1.2 with AES-GCM or ChaCha20-Poly1305 suites was offered)";

/*
 * What both sides set: the versions above and, for kTLS, the ciphers
 * the kernel implements. SSL_OP_CLEANSE_PLAINTEXT: OpenSSL wipes the
 * plaintext it has returned from its buffers, since they carry the
 * upgrade's credentials and, in the relay's fallback, disk data. No
 * renegotiation: it would be a handshake on a socket the kernel owns.
 * The caller's @opts are added.
 */
static int version_policy(SSL_CTX *ctx, bool want_ktls, uint64_t opts)
{
	opts |= SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
		SSL_OP_CLEANSE_PLAINTEXT;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS_MIN_VERSION))
		return -1;
	if (want_ktls) {
		opts |= SSL_OP_ENABLE_KTLS;
		if (!SSL_CTX_set_cipher_list(ctx, ktls_ciphers) ||
		    !SSL_CTX_set_max_proto_version(ctx, TLS_KTLS_MAX_VERSION))
			return -1;
	}
	SSL_CTX_set_options(ctx, opts);
	return 0;
}

/*
 * OpenSSL writes to the socket with write(), so a peer that went away
 * would raise SIGPIPE and kill a tool that did not ignore it. Block the
 * signal around OpenSSL calls and discard one raised meanwhile; the
 * failure itself comes back as EPIPE.
 */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pending);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	const struct timespec zero = { 0 };
	int saved = errno;	/* the caller looks at OpenSSL's errno */
	sigset_t set;

	if (!g->was_pending) {
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		while (sigtimedwait(&set, NULL, &zero) > 0)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = saved;
}

/* OpenSSL's error queue as one line (drains it). */
static void ssl_errors(char *buf, size_t size)
{
	unsigned long e;
	size_t used = 0;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0 && used + 2 < size) {
		if (used) {
			memcpy(buf + used, "; ", 3);
			used += 2;
		}
		ERR_error_string_n(e, buf + used, size - used);
		used += strlen(buf + used);
	}
	if (!used)
		snprintf(buf, size, "no detail from OpenSSL");
}

static bool is_ip_literal(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, addr) == 1 ||
	       inet_pton(AF_INET6, host, addr) == 1;
}

/*
 * The client's certificate chain and key, checked to belong together, so
 * that a wrong pair fails here with the file names instead of as a
 * refusal from the server.
 */
static int client_cert(struct tls_conn *t, const struct tls_opts *o,
		       struct nbdws_err *err)
{
	const char *key = o->key_file ? o->key_file : o->cert_file;
	char detail[256];

	if (SSL_CTX_use_certificate_chain_file(t->ctx, o->cert_file) != 1) {
		ssl_errors(detail, sizeof(detail));
		return nbdws_err_set(err, -EINVAL,
				     "cannot load client certificate %s: %s",
				     o->cert_file, detail);
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_errors(detail, sizeof(detail));
		return nbdws_err_set(err, -EINVAL,
				     "cannot load the private key %s: %s",
				     key, detail);
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		ERR_clear_error();
		return nbdws_err_set(err, -EINVAL,
				     "the private key %s does not belong to the certificate %s",
				     key, o->cert_file);
	}
	return 0;
}

static int setup_ctx(struct tls_conn *t, const struct tls_opts *o,
		     struct nbdws_err *err)
{
	char detail[256];

	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx)
		return nbdws_err_set(err, -ENOMEM, "cannot create a TLS context");
	/* No tickets: the client never resumes a session. */
	if (version_policy(t->ctx, o->want_ktls, SSL_OP_NO_TICKET))
		goto openssl_fail;
	if (o->cert_file) {
		int rc = client_cert(t, o, err);

		if (rc)
			return rc;
	}
	if (o->insecure) {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	if (o->ca_file) {
		if (!SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL)) {
			ssl_errors(detail, sizeof(detail));
			return nbdws_err_set(err, -EINVAL,
					     "cannot load CA file %s: %s",
					     o->ca_file, detail);
		}
	} else if (!SSL_CTX_set_default_verify_paths(t->ctx)) {
		goto openssl_fail;
	}
	return 0;

openssl_fail:
	ssl_errors(detail, sizeof(detail));
	return nbdws_err_set(err, -ENOMEM, "TLS setup failed: %s", detail);
}

/* Keep the first alert: it usually says why a handshake failed. */
static void on_info(const SSL *ssl, int where, int ret)
{
	struct tls_conn *t = SSL_get_app_data(ssl);

	if (!(where & SSL_CB_ALERT) || !t || t->alert[0])
		return;
	snprintf(t->alert, sizeof(t->alert), "%s %s alert \"%s\"",
		 (where & SSL_CB_READ) ? "received" : "sent",
		 SSL_alert_type_string_long(ret),
		 SSL_alert_desc_string_long(ret));
}

static int setup_ssl(struct tls_conn *t, const struct tls_opts *o,
		     struct nbdws_err *err)
{
	char detail[256];

	t->ssl = SSL_new(t->ctx);
	if (!t->ssl)
		goto openssl_fail;
	SSL_set_app_data(t->ssl, t);
	SSL_set_info_callback(t->ssl, on_info);
	/* SSL_set_alpn_protos() returns 0 on success. */
	if (SSL_set_alpn_protos(t->ssl, alpn_http11, sizeof(alpn_http11) - 1))
		goto openssl_fail;
	if (!o->server_name || !*o->server_name)
		return o->insecure ? 0 :
			nbdws_err_set(err, -EINVAL,
				      "TLS needs a server name to verify");
	if (is_ip_literal(o->server_name)) {
		/* RFC 6066: no SNI for addresses; check the IP SAN instead. */
		if (!o->insecure &&
		    !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl),
						   o->server_name))
			goto openssl_fail;
		return 0;
	}
	if (!SSL_set_tlsext_host_name(t->ssl, o->server_name))
		goto openssl_fail;
	if (!o->insecure && !SSL_set1_host(t->ssl, o->server_name))
		goto openssl_fail;
	return 0;

openssl_fail:
	ssl_errors(detail, sizeof(detail));
	return nbdws_err_set(err, -ENOMEM, "TLS setup failed: %s", detail);
}

static void release(struct tls_conn *t)
{
	if (t->fd >= 0 && t->fd_flags >= 0)
		fcntl(t->fd, F_SETFL, t->fd_flags);
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	t->ssl = NULL;
	t->ctx = NULL;
}

/* Explain a failed SSL_connect(). */
static int handshake_error(struct tls_conn *t, int ssl_err,
			   struct nbdws_err *err)
{
	const struct tls_opts *o = &t->opts;
	long verify = SSL_get_verify_result(t->ssl);
	char detail[256];
	int saved = errno;

	if (!o->insecure && (verify == X509_V_ERR_HOSTNAME_MISMATCH ||
			     verify == X509_V_ERR_IP_ADDRESS_MISMATCH)) {
		ERR_clear_error();
		return nbdws_err_set(err, -ECONNREFUSED,
				     "the TLS certificate of the server is not valid for %s (%s): use a host name or address that the certificate carries",
				     o->server_name,
				     X509_verify_cert_error_string(verify));
	}
	if (!o->insecure && verify != X509_V_OK) {
		ERR_clear_error();
		return nbdws_err_set(err, -ECONNREFUSED,
				     "the TLS certificate of %s was not accepted: %s; give the CA that signed it with the CA file option%s",
				     o->server_name ? o->server_name : "the server",
				     X509_verify_cert_error_string(verify),
				     " (or skip verification with the insecure option, for tests only)");
	}
	/* With SSL_OP_IGNORE_UNEXPECTED_EOF a bare EOF reads as ZERO_RETURN. */
	if (ssl_err == SSL_ERROR_ZERO_RETURN ||
	    (ssl_err == SSL_ERROR_SYSCALL && !ERR_peek_error()))
		return nbdws_err_set(err, -ECONNRESET,
				     "the server closed the connection during the TLS handshake%s%s%s%s (is it a TLS endpoint? use ws:// for plain WebSocket)",
				     saved ? ": " : "", saved ? strerror(saved) : "",
				     t->alert[0] ? "; " : "", t->alert);
	ssl_errors(detail, sizeof(detail));
	return nbdws_err_set(err, -ECONNREFUSED, "TLS handshake failed: %s%s%s%s",
			     detail, t->alert[0] ? "; " : "", t->alert,
			     o->want_ktls ? ktls_offer_note : "");
}

int tls_prepare(struct tls_conn *t, const struct tls_opts *o,
		struct nbdws_err *err)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->fd_flags = -1;
	t->opts = *o;
	rc = setup_ctx(t, o, err);
	if (!rc)
		rc = setup_ssl(t, o, err);
	if (rc)
		release(t);
	return rc;
}

static int accept_error(struct tls_conn *t, int ssl_err,
			struct nbdws_err *err);

/*
 * The non-blocking handshake loop of both sides: every wait is
 * nbd_sock_wait() against the deadline (a fiber's yield in the relay).
 * On failure the session is freed and @fd is left as it was.
 */
static int handshake(struct tls_conn *t, int fd, int timeout_ms, bool server,
		     struct nbdws_err *err)
{
	int rc = 0;

	t->fd = fd;
	t->deadline_ms = nbd_now_ms() + timeout_ms;
	t->fd_flags = fcntl(fd, F_GETFL);
	if (t->fd_flags < 0)
		rc = nbdws_err_set(err, -errno, "bad socket: %s",
				   strerror(errno));
	else if (fcntl(fd, F_SETFL, t->fd_flags | O_NONBLOCK) < 0)
		rc = nbdws_err_set(err, -errno, "fcntl: %s", strerror(errno));
	else if (!SSL_set_fd(t->ssl, fd))
		rc = nbdws_err_set(err, -ENOMEM, "SSL_set_fd failed");
	while (!rc) {
		struct sigpipe_guard g;
		int r, e;

		ERR_clear_error();
		errno = 0;
		sigpipe_block(&g);
		r = server ? SSL_accept(t->ssl) : SSL_connect(t->ssl);
		sigpipe_restore(&g);
		if (r == 1)
			return 0;
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			rc = nbd_sock_wait(fd, POLLIN, t->deadline_ms);
		else if (e == SSL_ERROR_WANT_WRITE)
			rc = nbd_sock_wait(fd, POLLOUT, t->deadline_ms);
		else if (server)
			rc = accept_error(t, e, err);
		else
			rc = handshake_error(t, e, err);
		if (rc == -ETIMEDOUT)
			rc = nbdws_err_set(err, rc,
					   "the TLS handshake did not finish in time");
		else if (rc && rc != -ECONNREFUSED && rc != -ECONNRESET)
			rc = nbdws_err_set(err, rc, "TLS handshake: %s",
					   strerror(-rc));
	}
	release(t);
	return rc;
}

int tls_connect(struct tls_conn *t, int fd, int timeout_ms,
		struct nbdws_err *err)
{
	return handshake(t, fd, timeout_ms, false, err);
}

/* Wait for what OpenSSL asked for, or explain why it failed. */
static int io_retry(struct tls_conn *t, int ret, bool *eof)
{
	int e = SSL_get_error(t->ssl, ret);
	char detail[256];

	*eof = false;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return nbd_sock_wait(t->fd, POLLIN, t->deadline_ms);
	case SSL_ERROR_WANT_WRITE:
		return nbd_sock_wait(t->fd, POLLOUT, t->deadline_ms);
	case SSL_ERROR_ZERO_RETURN:
		*eof = true;
		return 0;
	case SSL_ERROR_SYSCALL:
		if (!ERR_peek_error()) {
			if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
				*eof = true;
				return 0;
			}
			nbdws_err_set(&t->err, -errno, "TLS: %s",
				      strerror(errno));
			return -errno;
		}
		/* fall through */
	default:
		ssl_errors(detail, sizeof(detail));
		nbdws_err_set(&t->err, -EPROTO, "TLS error: %s", detail);
		return -EPROTO;
	}
}

static ssize_t tls_io_read(void *ctx, void *buf, size_t len)
{
	struct tls_conn *t = ctx;

	for (;;) {
		struct sigpipe_guard g;
		size_t got = 0;
		bool eof;
		int r, rc;

		ERR_clear_error();
		errno = 0;
		sigpipe_block(&g);
		r = SSL_read_ex(t->ssl, buf, len, &got);
		sigpipe_restore(&g);
		if (r == 1)
			return (ssize_t)got;
		rc = io_retry(t, r, &eof);
		if (eof)
			return 0;
		if (rc)
			return rc;
	}
}

static int tls_io_write(void *ctx, const void *buf, size_t len)
{
	struct tls_conn *t = ctx;
	const u8 *p = buf;

	while (len) {
		struct sigpipe_guard g;
		size_t done = 0;
		bool eof;
		int r, rc;

		ERR_clear_error();
		errno = 0;
		sigpipe_block(&g);
		r = SSL_write_ex(t->ssl, p, len, &done);
		sigpipe_restore(&g);
		if (r == 1) {
			p += done;
			len -= done;
			continue;
		}
		rc = io_retry(t, r, &eof);
		if (eof)
			return -ECONNRESET;
		if (rc)
			return rc;
	}
	return 0;
}

void tls_io(struct tls_conn *t, struct ws_io *io)
{
	io->ctx = t;
	io->read = tls_io_read;
	io->write = tls_io_write;
}

void tls_describe(struct tls_conn *t, char *buf, size_t size)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);

	snprintf(buf, size, "%s %s", SSL_get_version(t->ssl),
		 c ? SSL_CIPHER_get_name(c) : "(no cipher)");
}

bool tls_kernel_has_ulp(void)
{
	char line[256] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
	char *tok, *save = NULL;

	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	for (tok = strtok_r(line, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save))
		if (!strcmp(tok, "tls"))
			return true;
	return false;
}

int tls_ktls_check(struct tls_conn *t, struct nbdws_err *err)
{
	bool tx = BIO_get_ktls_send(SSL_get_wbio(t->ssl));
	bool rx = BIO_get_ktls_recv(SSL_get_rbio(t->ssl));
	char what[128];

	if (tx && rx)
		return 0;
	tls_describe(t, what, sizeof(what));
	return nbdws_err_set(err, -EOPNOTSUPP,
			     "kernel TLS not available for this cipher/kernel: %s, send offload %s, receive offload %s; %s",
			     what, tx ? "on" : "off", rx ? "on" : "off",
			     tls_kernel_has_ulp() ?
			     "the kernel has the tls ULP but refused the session keys: its crypto for this cipher is missing (load gcm/aes or chacha20poly1305; module autoloading may not work in this environment) or the cipher cannot be offloaded (the server must offer AES-GCM or ChaCha20-Poly1305)" :
			     "the kernel has no \"tls\" TCP ULP (load the tls module: modprobe tls; it needs CONFIG_TLS)");
}

int tls_drain(struct tls_conn *t, u8 **out, size_t *out_len,
	      struct nbdws_err *err)
{
	u8 *buf = NULL;
	size_t have = 0;
	int pending;

	*out = NULL;
	*out_len = 0;
	/* Records OpenSSL decrypted but the caller has not read yet. */
	while ((pending = SSL_pending(t->ssl)) > 0) {
		u8 *nbuf = realloc(buf, have + (size_t)pending);
		size_t got = 0;

		if (!nbuf) {
			free(buf);
			return nbdws_err_set(err, -ENOMEM, "out of memory");
		}
		buf = nbuf;
		if (SSL_read_ex(t->ssl, buf + have, (size_t)pending, &got) != 1) {
			free(buf);
			return nbdws_err_set(err, -EPROTO,
					     "cannot drain OpenSSL's buffered TLS data");
		}
		have += got;
	}
	/*
	 * Anything OpenSSL still holds is a record it read from the socket
	 * but has not processed: more data, an alert, or a NewSessionTicket
	 * or KeyUpdate of TLS 1.3. The kernel would never see it and its
	 * record stream would have a hole: refuse instead of losing it.
	 */
	if (SSL_has_pending(t->ssl) || BIO_pending(SSL_get_rbio(t->ssl)) > 0) {
		free(buf);
		return nbdws_err_set(err, -EPROTO,
				     "OpenSSL holds TLS records it has not processed (%s); the connection cannot be handed to the kernel",
				     SSL_get_version(t->ssl));
	}
	*out = buf;
	*out_len = have;
	return 0;
}

int tls_detach(struct tls_conn *t, u8 **out, size_t *out_len,
	       struct nbdws_err *err)
{
	int rc;

	*out = NULL;
	*out_len = 0;
	rc = tls_ktls_check(t, err);
	if (!rc)
		rc = tls_drain(t, out, out_len, err);
	if (rc)
		return rc;
	/* No SSL_shutdown(): the session goes on, in the kernel. */
	release(t);
	return 0;
}

void tls_free(struct tls_conn *t)
{
	struct sigpipe_guard g;

	if (!t->ssl)
		return;
	ERR_clear_error();
	if (t->fd >= 0 && SSL_is_init_finished(t->ssl)) {
		sigpipe_block(&g);
		SSL_shutdown(t->ssl);	/* best effort; never waits */
		sigpipe_restore(&g);
	}
	ERR_clear_error();
	release(t);
}

/* ---- server side ---- */

struct tls_server {
	SSL_CTX *ctx;
	bool want_ktls;
	bool verify_client;	/* a client CA is set: certificates are asked */
};

/*
 * ALPN (RFC 7301): take http/1.1 when offered. A client offering only
 * other protocols (h2) gets no ALPN answer rather than a fatal alert, and
 * browsers then speak HTTP/1.1, which is what the upgrade needs anyway.
 */
static int alpn_select(SSL *ssl, const unsigned char **out,
		       unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	unsigned char *sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, alpn_http11,
				  sizeof(alpn_http11) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int server_policy(SSL_CTX *ctx, const struct tls_server_opts *o)
{
	/* Resumption is off (below), so tickets are too. */
	if (version_policy(ctx, o->want_ktls,
			   SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET))
		return -1;
	/*
	 * No TLS 1.3 tickets either: OpenSSL writes them on its own after
	 * the handshake, as handshake records, and nothing that is not
	 * application data may be between the handshake and the hand-over
	 * unless it is certain to have been written first. Resumption is of
	 * no use here (a relay's clients reconnect rarely, and kTLS sessions
	 * are TLS 1.2 anyway, see TLS_KTLS_MAX_VERSION; this is for the
	 * fallback's). SSL_OP_NO_TICKET alone still sends a stateful ticket
	 * in TLS 1.3; a count of zero sends none.
	 */
	if (!SSL_CTX_set_num_tickets(ctx, 0))
		return -1;
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* DHE suites need parameters; the built-in ones match the key size. */
	if (!SSL_CTX_set_dh_auto(ctx, 1))
		return -1;
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	return 0;
}

static int server_cert(SSL_CTX *ctx, const struct tls_server_opts *o,
		       struct nbdws_err *err)
{
	char detail[256];

	if (!o->cert_file || !o->key_file)
		return nbdws_err_set(err, -EINVAL,
				     "TLS needs both a certificate and a key file");
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
		ssl_errors(detail, sizeof(detail));
		return nbdws_err_set(err, -EINVAL,
				     "cannot load the TLS certificate %s (PEM, the certificate then its chain): %s",
				     o->cert_file, detail);
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file,
					SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_last_error();

		/* OpenSSL checks the pair as it loads the key. */
		if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
		    (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
		     ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH))
			goto mismatch;
		ssl_errors(detail, sizeof(detail));
		return nbdws_err_set(err, -EINVAL,
				     "cannot load the TLS key %s (PEM): %s",
				     o->key_file, detail);
	}
	if (SSL_CTX_check_private_key(ctx) == 1)
		return 0;
mismatch:
	ERR_clear_error();
	return nbdws_err_set(err, -EINVAL,
			     "the TLS key %s does not belong to the certificate %s",
			     o->key_file, o->cert_file);
}

static int server_client_ca(SSL_CTX *ctx, const struct tls_server_opts *o,
			    struct nbdws_err *err)
{
	STACK_OF(X509_NAME) *names;
	char detail[256];
	int mode = SSL_VERIFY_PEER;

	if (!o->client_ca_file) {
		if (o->require_client_cert)
			return nbdws_err_set(err, -EINVAL,
					     "requiring client certificates needs a client CA file to verify them");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	if (!SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL)) {
		ssl_errors(detail, sizeof(detail));
		return nbdws_err_set(err, -EINVAL,
				     "cannot load the client CA file %s: %s",
				     o->client_ca_file, detail);
	}
	/* The CA names go in the request, so browsers offer matching certs. */
	names = SSL_load_client_CA_file(o->client_ca_file);
	if (!names) {
		ssl_errors(detail, sizeof(detail));
		return nbdws_err_set(err, -EINVAL,
				     "cannot read CA names from %s: %s",
				     o->client_ca_file, detail);
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	if (o->require_client_cert)
		mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	return 0;
}

int tls_server_new(struct tls_server **srv, const struct tls_server_opts *o,
		   struct nbdws_err *err)
{
	struct tls_server *s;
	char detail[256];
	int rc;

	*srv = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return nbdws_err_set(err, -ENOMEM, "out of memory");
	s->want_ktls = o->want_ktls;
	s->verify_client = o->client_ca_file != NULL;
	ERR_clear_error();
	s->ctx = SSL_CTX_new(TLS_server_method());
	if (!s->ctx) {
		free(s);
		return nbdws_err_set(err, -ENOMEM,
				     "cannot create a TLS context");
	}
	if (server_policy(s->ctx, o)) {
		ssl_errors(detail, sizeof(detail));
		rc = nbdws_err_set(err, -ENOMEM, "TLS setup failed: %s", detail);
	} else {
		rc = server_cert(s->ctx, o, err);
		if (!rc)
			rc = server_client_ca(s->ctx, o, err);
	}
	if (rc) {
		tls_server_free(s);
		return rc;
	}
	*srv = s;
	return 0;
}

void tls_server_free(struct tls_server *srv)
{
	if (!srv)
		return;
	SSL_CTX_free(srv->ctx);
	free(srv);
}

/* Explain a failed SSL_accept(). */
static int accept_error(struct tls_conn *t, int ssl_err,
			struct nbdws_err *err)
{
	long verify = SSL_get_verify_result(t->ssl);
	unsigned long e = ERR_peek_error();
	char detail[256];
	int saved = errno;

	if (verify != X509_V_OK) {
		ERR_clear_error();
		return nbdws_err_set(err, -ECONNREFUSED,
				     "the client's TLS certificate was not accepted: %s",
				     X509_verify_cert_error_string(verify));
	}
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		ERR_clear_error();
		return nbdws_err_set(err, -ECONNREFUSED,
				     "the client sent no TLS certificate, and one is required");
	}
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    (ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST ||
	     ERR_GET_REASON(e) == SSL_R_HTTPS_PROXY_REQUEST)) {
		ERR_clear_error();
		return nbdws_err_set(err, -ECONNREFUSED,
				     "the client spoke plain HTTP to a TLS listener (use wss://, or a listener without TLS)");
	}
	if (ssl_err == SSL_ERROR_ZERO_RETURN ||
	    (ssl_err == SSL_ERROR_SYSCALL && !e))
		return nbdws_err_set(err, -ECONNRESET,
				     "the client closed the connection during the TLS handshake%s%s%s%s",
				     saved ? ": " : "", saved ? strerror(saved) : "",
				     t->alert[0] ? "; " : "", t->alert);
	ssl_errors(detail, sizeof(detail));
	return nbdws_err_set(err, -ECONNREFUSED, "TLS handshake failed: %s%s%s%s",
			     detail, t->alert[0] ? "; " : "", t->alert,
			     t->opts.want_ktls ? ktls_offer_note : "");
}

int tls_accept(struct tls_conn *t, struct tls_server *srv, int fd,
	       int timeout_ms, struct nbdws_err *err)
{
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->fd_flags = -1;
	/* The session holds its own reference: tls_free() drops it. */
	if (!SSL_CTX_up_ref(srv->ctx))
		return nbdws_err_set(err, -ENOMEM, "SSL_CTX_up_ref failed");
	t->ctx = srv->ctx;
	t->opts.want_ktls = srv->want_ktls;	/* for the messages */
	ERR_clear_error();
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl) {
		char detail[256];

		ssl_errors(detail, sizeof(detail));
		release(t);
		return nbdws_err_set(err, -ENOMEM, "TLS setup failed: %s",
				     detail);
	}
	SSL_set_app_data(t->ssl, t);
	SSL_set_info_callback(t->ssl, on_info);
	return handshake(t, fd, timeout_ms, true, err);
}

int tls_peer_cert_sha256(struct tls_conn *t, u8 out[32])
{
	X509 *cert;
	unsigned int n = 0;

	if (!t->ssl || !(SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) ||
	    SSL_get_verify_result(t->ssl) != X509_V_OK)
		return -ENOENT;
	cert = SSL_get0_peer_certificate(t->ssl);
	if (!cert)
		return -ENOENT;
	/* X509_digest() hashes the certificate's DER encoding. */
	if (!X509_digest(cert, EVP_sha256(), out, &n) || n != 32) {
		ERR_clear_error();
		return -ENOMEM;
	}
	return 0;
}
