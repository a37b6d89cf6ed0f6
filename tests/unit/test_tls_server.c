// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for the server side of lib/tls.c: tls_accept() in this
 * thread against a client in another, over a socketpair. The client is
 * our own tls_connect() where it needs no certificate, and plain OpenSSL
 * where it presents one (tls_connect() has no client certificates).
 * Certificates are made at test time with the openssl CLI: a server
 * certificate for localhost, a CA with a client certificate it signed, a
 * self-signed client certificate nobody trusts, and a key that belongs to
 * none of them.
 *
 * Kernel TLS cannot be switched on here (the host has no tls ULP); the
 * VM selftests hand server sessions to the kernel. What can be checked
 * here is everything before: the TLS version each side settles on (1.2
 * for a session meant for kTLS, on either side, whatever the peer
 * offers), no session tickets from the server, and tls_drain(), which
 * must hand over the bytes OpenSSL decrypted and refuse when it holds
 * records it has not processed (a KeyUpdate behind data).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "kselftest_harness.h"

#include "tls.h"

#define TIMEOUT_MS	5000

static const char make_certs[] =
	"set -e; cd '%s'; ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';"
	"openssl req -x509 $ec -days 1 -subj /CN=localhost"
	" -addext subjectAltName=DNS:localhost -keyout srv.key -out srv.pem;"
	"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out other.key;"
	"openssl req -x509 $ec -days 1 -subj /CN=test-client-ca"
	" -addext basicConstraints=critical,CA:true"
	" -addext keyUsage=critical,keyCertSign -keyout ca.key -out ca.pem;"
	"openssl req -new $ec -subj /CN=alice -keyout cli.key -out cli.csr;"
	"printf 'extendedKeyUsage=clientAuth\\n' > cli.ext;"
	"openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
	" -days 1 -extfile cli.ext -out cli.pem;"
	"openssl req -x509 $ec -days 1 -subj /CN=mallory"
	" -addext extendedKeyUsage=clientAuth -keyout rogue.key -out rogue.pem";

/* OpenSSL's writes to a peer that left must not kill the test. */
__attribute__((constructor)) static void ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

FIXTURE(srv)
{
	char dir[64];
	int sv[2];
	struct tls_server *srv;
	struct tls_conn conn;
};

/* @name in @dir, formatted into @buf. */
static const char *path_in(const char *dir, const char *name, char *buf,
			   size_t size)
{
	snprintf(buf, size, "%s/%s", dir, name);
	return buf;
}

FIXTURE_SETUP(srv)
{
	char script[2048], cmd[2200];

	snprintf(self->dir, sizeof(self->dir), "/tmp/nbdws-tls-srv.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(script, sizeof(script), make_certs, self->dir);
	snprintf(cmd, sizeof(cmd), "(%s) >'%s/openssl.log' 2>&1", script,
		 self->dir);
	ASSERT_EQ(0, system(cmd)) TH_LOG("making certificates failed: %s",
					 self->dir);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				self->sv));
	self->srv = NULL;
	memset(&self->conn, 0, sizeof(self->conn));
}

FIXTURE_TEARDOWN(srv)
{
	char cmd[128];

	tls_free(&self->conn);
	tls_server_free(self->srv);
	close(self->sv[0]);
	close(self->sv[1]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", self->dir);
}

/* Server options with the fixture's files; NULL names leave a field out. */
static int new_server(const char *dir, const char *cert, const char *key,
		      const char *ca, bool require, bool ktls,
		      struct tls_server **srv, struct nbdws_err *err)
{
	char c[128], k[128], a[128];
	struct tls_server_opts o = {
		.cert_file = cert ? path_in(dir, cert, c, sizeof(c)) : NULL,
		.key_file = key ? path_in(dir, key, k, sizeof(k)) : NULL,
		.client_ca_file = ca ? path_in(dir, ca, a, sizeof(a)) : NULL,
		.require_client_cert = require,
		.want_ktls = ktls,
	};

	return tls_server_new(srv, &o, err);
}

/* ---- clients, in a thread of their own ---- */

enum client_kind {
	CLIENT_LIB,		/* tls_connect(), no certificate */
	CLIENT_OPENSSL,		/* plain OpenSSL, optional certificate */
	CLIENT_HTTP,		/* plain HTTP, no TLS at all */
	CLIENT_SILENT,		/* connects and says nothing */
	CLIENT_HANGUP,		/* closes at once */
	CLIENT_KEYUPDATE,	/* OpenSSL: data, a KeyUpdate, data; no close */
};

struct client {
	enum client_kind kind;
	int fd;
	char dir[64];
	const char *cert, *key;	/* CLIENT_OPENSSL: file names in dir */
	size_t echo_len;	/* send this many bytes, expect them back */
	bool ktls;		/* CLIENT_LIB: want_ktls (the kTLS policy) */
	int min_version;	/* OpenSSL clients: lowest version, 0 any */
	/* results */
	int rc;			/* 0: every step as expected */
	int tickets;		/* OpenSSL clients: session tickets received */
	char alpn[16];
	char msg[512];
	pthread_t thread;
};

static u8 pattern(size_t i)
{
	return (u8)(i * 131 + (i >> 8));
}

/* Send echo_len bytes of the pattern, then read them back and compare. */
static int echo_lib(struct client *c, struct tls_conn *t)
{
	struct ws_io io;
	u8 *buf = malloc(c->echo_len);
	size_t i, got = 0;
	int rc;

	if (!buf)
		return -ENOMEM;
	for (i = 0; i < c->echo_len; i++)
		buf[i] = pattern(i);
	tls_io(t, &io);
	rc = io.write(io.ctx, buf, c->echo_len);
	memset(buf, 0, c->echo_len);
	while (!rc && got < c->echo_len) {
		ssize_t n = io.read(io.ctx, buf + got, c->echo_len - got);

		rc = n > 0 ? 0 : n == 0 ? -ECONNRESET : (int)n;
		got += n > 0 ? (size_t)n : 0;
	}
	for (i = 0; !rc && i < c->echo_len; i++)
		if (buf[i] != pattern(i))
			rc = -EILSEQ;
	free(buf);
	return rc;
}

static void run_lib_client(struct client *c)
{
	char ca[128];
	struct tls_opts o = {
		.server_name = "localhost",
		.ca_file = path_in(c->dir, "srv.pem", ca, sizeof(ca)),
		.want_ktls = c->ktls,
	};
	struct nbdws_err err = { { 0 } };
	struct tls_conn t;
	const unsigned char *alpn;
	unsigned int alpn_len;

	c->rc = tls_prepare(&t, &o, &err);
	if (!c->rc)
		c->rc = tls_connect(&t, c->fd, TIMEOUT_MS, &err);
	if (c->rc) {
		snprintf(c->msg, sizeof(c->msg), "%s", err.msg);
		return;
	}
	SSL_get0_alpn_selected(t.ssl, &alpn, &alpn_len);
	snprintf(c->alpn, sizeof(c->alpn), "%.*s", (int)alpn_len, alpn);
	c->rc = echo_lib(c, &t);
	tls_free(&t);
}

/* Count the session tickets the server sends (they arrive in SSL_read). */
static int count_ticket(SSL *ssl, SSL_SESSION *sess)
{
	struct client *c = SSL_get_app_data(ssl);

	(void)sess;
	c->tickets++;
	return 0;	/* not kept: OpenSSL frees it */
}

/*
 * After the handshake: 10 bytes, a KeyUpdate, 3 bytes, each its own
 * record, all written before the server reads anything.
 */
static int send_keyupdate(SSL *ssl)
{
	if (SSL_version(ssl) != TLS1_3_VERSION ||
	    SSL_write(ssl, "0123456789", 10) != 10 ||
	    SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1 ||
	    SSL_write(ssl, "abc", 3) != 3)
		return -EPROTO;
	return 0;
}

static void run_openssl_client(struct client *c)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char f[128];
	SSL *ssl = NULL;
	u8 buf[64];
	int n;

	c->rc = -EPROTO;
	if (!ctx || !SSL_CTX_load_verify_locations(ctx, path_in(c->dir,
			"srv.pem", f, sizeof(f)), NULL))
		goto out;
	if (c->min_version &&
	    !SSL_CTX_set_min_proto_version(ctx, c->min_version))
		goto out;
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	SSL_CTX_sess_set_new_cb(ctx, count_ticket);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (c->cert &&
	    (SSL_CTX_use_certificate_file(ctx, path_in(c->dir, c->cert, f,
			sizeof(f)), SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, path_in(c->dir, c->key, f,
			sizeof(f)), SSL_FILETYPE_PEM) != 1))
		goto out;
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, c->fd) ||
	    !SSL_set1_host(ssl, "localhost"))
		goto out;
	SSL_set_app_data(ssl, c);
	if (SSL_connect(ssl) != 1) {
		snprintf(c->msg, sizeof(c->msg), "SSL_connect failed");
		goto out;
	}
	if (c->kind == CLIENT_KEYUPDATE) {
		c->rc = send_keyupdate(ssl);
		goto out;
	}
	/* With TLS 1.3 a refused certificate shows here, as an alert. */
	if (SSL_write(ssl, "hello", 5) != 5)
		goto out;
	n = SSL_read(ssl, buf, sizeof(buf));
	if (n == 5 && !memcmp(buf, "hello", 5))
		c->rc = 0;
	else
		snprintf(c->msg, sizeof(c->msg), "no echo (%d)", n);
	SSL_shutdown(ssl);
out:
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	char buf[256];

	switch (c->kind) {
	case CLIENT_LIB:
		run_lib_client(c);
		break;
	case CLIENT_OPENSSL:
	case CLIENT_KEYUPDATE:
		run_openssl_client(c);
		break;
	case CLIENT_HTTP:
		c->rc = write(c->fd, http, sizeof(http) - 1) ==
			(ssize_t)sizeof(http) - 1 ? 0 : -EIO;
		/* Wait until the server hangs up. */
		while (read(c->fd, buf, sizeof(buf)) > 0)
			;
		break;
	case CLIENT_SILENT:
		while (read(c->fd, buf, sizeof(buf)) > 0)
			;
		break;
	case CLIENT_HANGUP:
		shutdown(c->fd, SHUT_RDWR);
		break;
	}
	/* Let the server see the end (its accept may still be waiting). */
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

static void client_start(struct client *c, enum client_kind kind,
			 const char *dir, int fd)
{
	c->kind = kind;
	c->fd = fd;
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	if (pthread_create(&c->thread, NULL, client_main, c))
		abort();
}

/* The server's echo: read @len bytes through the session, write them back. */
static int serve_echo(struct tls_conn *t, size_t len)
{
	struct ws_io io;
	u8 *buf = malloc(len);
	size_t got = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	tls_io(t, &io);
	while (!rc && got < len) {
		ssize_t n = io.read(io.ctx, buf + got, len - got);

		rc = n > 0 ? 0 : n == 0 ? -ECONNRESET : (int)n;
		got += n > 0 ? (size_t)n : 0;
	}
	if (!rc)
		rc = io.write(io.ctx, buf, len);
	free(buf);
	return rc;
}

/* The SHA-256 of a PEM certificate's DER, computed independently. */
static int cert_file_sha256(const char *path, u8 out[32])
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	unsigned int n = 0;
	int len, rc = -1;

	if (f)
		fclose(f);
	len = x ? i2d_X509(x, &der) : -1;
	if (len > 0 && EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(),
				  NULL) && n == 32)
		rc = 0;
	OPENSSL_free(der);
	X509_free(x);
	return rc;
}

/* ---- tests ---- */

TEST_F(srv, handshake_and_data_both_ways)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { .echo_len = 300000 };
	char what[128];
	u8 hash[32];

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", NULL, false,
				false, &self->srv, &err)) TH_LOG("%s", err.msg);
	client_start(&c, CLIENT_LIB, self->dir, self->sv[1]);
	ASSERT_EQ(0, tls_accept(&self->conn, self->srv, self->sv[0],
				TIMEOUT_MS, &err)) TH_LOG("%s", err.msg);
	/* Sessions keep the context: the server may go first. */
	tls_server_free(self->srv);
	self->srv = NULL;
	/* More than one TLS record each way. */
	EXPECT_EQ(0, serve_echo(&self->conn, c.echo_len));
	pthread_join(c.thread, NULL);
	EXPECT_EQ(0, c.rc) TH_LOG("client: %s", c.msg);
	EXPECT_STREQ("http/1.1", c.alpn);
	tls_describe(&self->conn, what, sizeof(what));
	EXPECT_EQ(0, strncmp(what, "TLSv1.", 6)) TH_LOG("%s", what);
	/* No client CA: no certificate asked, none to hash. */
	EXPECT_EQ(-ENOENT, tls_peer_cert_sha256(&self->conn, hash));
	/* Without want_ktls the session stays in userspace. */
	EXPECT_EQ(-EOPNOTSUPP, tls_ktls_check(&self->conn, &err));
	EXPECT_NE(NULL, strstr(err.msg, "kernel TLS not available"));
}

TEST_F(srv, ktls_policy_offers_only_kernel_ciphers)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { .echo_len = 1000 };
	u8 *pre = NULL;
	size_t pre_len = 1;
	char what[128];

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", NULL, false,
				true, &self->srv, &err)) TH_LOG("%s", err.msg);
	client_start(&c, CLIENT_LIB, self->dir, self->sv[1]);
	ASSERT_EQ(0, tls_accept(&self->conn, self->srv, self->sv[0],
				TIMEOUT_MS, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(0, serve_echo(&self->conn, c.echo_len));
	tls_describe(&self->conn, what, sizeof(what));
	/* The client offered 1.3 too; kTLS sessions are 1.2 everywhere. */
	EXPECT_EQ(0, strncmp(what, "TLSv1.2 ", 8)) TH_LOG("%s", what);
	EXPECT_TRUE(strstr(what, "GCM") || strstr(what, "CHACHA20"))
		TH_LOG("%s", what);
	/* A socketpair cannot take the tls ULP: detach refuses, keeps it. */
	EXPECT_EQ(-EOPNOTSUPP, tls_detach(&self->conn, &pre, &pre_len, &err));
	EXPECT_EQ(NULL, pre);
	EXPECT_EQ(0, pre_len);
	pthread_join(c.thread, NULL);
	EXPECT_EQ(0, c.rc) TH_LOG("client: %s", c.msg);
}

/* The kTLS policy on the client side: 1.2 against a server offering 1.3. */
TEST_F(srv, ktls_client_is_tls12)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { .echo_len = 100, .ktls = true };
	char what[128];

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", NULL, false,
				false, &self->srv, &err)) TH_LOG("%s", err.msg);
	client_start(&c, CLIENT_LIB, self->dir, self->sv[1]);
	ASSERT_EQ(0, tls_accept(&self->conn, self->srv, self->sv[0],
				TIMEOUT_MS, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(0, serve_echo(&self->conn, c.echo_len));
	pthread_join(c.thread, NULL);
	EXPECT_EQ(0, c.rc) TH_LOG("client: %s", c.msg);
	tls_describe(&self->conn, what, sizeof(what));
	EXPECT_EQ(0, strncmp(what, "TLSv1.2 ", 8)) TH_LOG("%s", what);
}

/* Sessions that stay in userspace take TLS 1.3, and get no tickets. */
TEST_F(srv, userspace_sessions_tls13_without_tickets)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { 0 };
	char what[128];

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", NULL, false,
				false, &self->srv, &err)) TH_LOG("%s", err.msg);
	client_start(&c, CLIENT_OPENSSL, self->dir, self->sv[1]);
	ASSERT_EQ(0, tls_accept(&self->conn, self->srv, self->sv[0],
				TIMEOUT_MS, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(0, serve_echo(&self->conn, 5));
	pthread_join(c.thread, NULL);
	EXPECT_EQ(0, c.rc) TH_LOG("client: %s", c.msg);
	tls_describe(&self->conn, what, sizeof(what));
	EXPECT_EQ(0, strncmp(what, "TLSv1.3 ", 8)) TH_LOG("%s", what);
	/* The client read the echo: any ticket would have come before it. */
	EXPECT_EQ(0, c.tickets);
}

/*
 * What OpenSSL decrypted but nobody read goes with the hand-over; a
 * KeyUpdate still in the socket stays there (the kernel's to read).
 */
TEST_F(srv, drain_takes_decrypted_bytes)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { 0 };
	struct ws_io io;
	u8 buf[16], *pre = NULL;
	size_t pre_len = 0;

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", NULL, false,
				false, &self->srv, &err)) TH_LOG("%s", err.msg);
	client_start(&c, CLIENT_KEYUPDATE, self->dir, self->sv[1]);
	ASSERT_EQ(0, tls_accept(&self->conn, self->srv, self->sv[0],
				TIMEOUT_MS, &err)) TH_LOG("%s", err.msg);
	pthread_join(c.thread, NULL);
	ASSERT_EQ(0, c.rc) TH_LOG("client: %s", c.msg);
	tls_io(&self->conn, &io);
	ASSERT_EQ(4, io.read(io.ctx, buf, 4));
	ASSERT_EQ(0, tls_drain(&self->conn, &pre, &pre_len, &err))
		TH_LOG("%s", err.msg);
	ASSERT_EQ(6, pre_len);
	EXPECT_EQ(0, memcmp(pre, "456789", 6));
	free(pre);
	/* Still a working session: OpenSSL itself follows the KeyUpdate. */
	ASSERT_EQ(3, io.read(io.ctx, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "abc", 3));
}

/*
 * OpenSSL read ahead (as a BIO or the record layer may): the KeyUpdate
 * and the data behind it are in its buffer, unprocessed. Handing the
 * socket over would lose them: refused, and nothing is returned.
 */
TEST_F(srv, drain_refuses_unprocessed_records)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { 0 };
	struct ws_io io;
	u8 buf[16], *pre = (u8 *)"x";
	size_t pre_len = 1;

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", NULL, false,
				false, &self->srv, &err)) TH_LOG("%s", err.msg);
	client_start(&c, CLIENT_KEYUPDATE, self->dir, self->sv[1]);
	ASSERT_EQ(0, tls_accept(&self->conn, self->srv, self->sv[0],
				TIMEOUT_MS, &err)) TH_LOG("%s", err.msg);
	pthread_join(c.thread, NULL);
	ASSERT_EQ(0, c.rc) TH_LOG("client: %s", c.msg);
	SSL_set_read_ahead(self->conn.ssl, 1);
	tls_io(&self->conn, &io);
	ASSERT_EQ(4, io.read(io.ctx, buf, 4));
	EXPECT_EQ(-EPROTO, tls_drain(&self->conn, &pre, &pre_len, &err));
	EXPECT_NE(NULL, strstr(err.msg, "has not processed (TLSv1.3)"))
		TH_LOG("%s", err.msg);
	EXPECT_EQ(NULL, pre);
	EXPECT_EQ(0, pre_len);
}

TEST_F(srv, client_cert_verified_and_hashed)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { .cert = "cli.pem", .key = "cli.key" };
	char path[128];
	u8 hash[32], want[32];

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", "ca.pem",
				true, false, &self->srv, &err))
		TH_LOG("%s", err.msg);
	client_start(&c, CLIENT_OPENSSL, self->dir, self->sv[1]);
	ASSERT_EQ(0, tls_accept(&self->conn, self->srv, self->sv[0],
				TIMEOUT_MS, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(0, serve_echo(&self->conn, 5));
	pthread_join(c.thread, NULL);
	EXPECT_EQ(0, c.rc) TH_LOG("client: %s", c.msg);
	ASSERT_EQ(0, tls_peer_cert_sha256(&self->conn, hash));
	ASSERT_EQ(0, cert_file_sha256(path_in(self->dir, "cli.pem", path,
					      sizeof(path)), want));
	EXPECT_EQ(0, memcmp(hash, want, sizeof(hash)));
	/* ... and not the CA's. */
	ASSERT_EQ(0, cert_file_sha256(path_in(self->dir, "ca.pem", path,
					      sizeof(path)), want));
	EXPECT_NE(0, memcmp(hash, want, sizeof(hash)));
}

TEST_F(srv, client_cert_optional)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { 0 };
	u8 hash[32];

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", "ca.pem",
				false, false, &self->srv, &err))
		TH_LOG("%s", err.msg);
	client_start(&c, CLIENT_OPENSSL, self->dir, self->sv[1]);
	ASSERT_EQ(0, tls_accept(&self->conn, self->srv, self->sv[0],
				TIMEOUT_MS, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(0, serve_echo(&self->conn, 5));
	pthread_join(c.thread, NULL);
	EXPECT_EQ(0, c.rc) TH_LOG("client: %s", c.msg);
	EXPECT_EQ(-ENOENT, tls_peer_cert_sha256(&self->conn, hash));
}

/* A refused handshake: the error, and the fd back as it was. */
static void expect_refused(struct __test_metadata *_metadata,
			   FIXTURE_DATA(srv) *self, struct client *c,
			   enum client_kind kind, int timeout_ms, int want_rc,
			   const char *want_msg)
{
	struct nbdws_err err = { { 0 } };
	int rc;

	client_start(c, kind, self->dir, self->sv[1]);
	rc = tls_accept(&self->conn, self->srv, self->sv[0], timeout_ms, &err);
	/* The fd is ours again: wake the client up. */
	shutdown(self->sv[0], SHUT_RDWR);
	pthread_join(c->thread, NULL);
	EXPECT_EQ(want_rc, rc) TH_LOG("%s", err.msg);
	EXPECT_NE(NULL, strstr(err.msg, want_msg)) TH_LOG("%s", err.msg);
	EXPECT_EQ(NULL, self->conn.ssl);
	EXPECT_EQ(NULL, self->conn.ctx);
	/* fd flags restored (blocking again). */
	EXPECT_EQ(0, fcntl(self->sv[0], F_GETFL) & O_NONBLOCK);
}

TEST_F(srv, client_cert_required_but_missing)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { 0 };

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", "ca.pem",
				true, false, &self->srv, &err));
	expect_refused(_metadata, self, &c, CLIENT_OPENSSL, TIMEOUT_MS,
		       -ECONNREFUSED, "sent no TLS certificate");
	EXPECT_NE(0, c.rc);
}

TEST_F(srv, untrusted_client_cert_refused)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { .cert = "rogue.pem", .key = "rogue.key" };

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", "ca.pem",
				true, false, &self->srv, &err));
	expect_refused(_metadata, self, &c, CLIENT_OPENSSL, TIMEOUT_MS,
		       -ECONNREFUSED, "certificate was not accepted");
	EXPECT_NE(0, c.rc);
}

/* Optional means "none is fine", not "any is fine". */
TEST_F(srv, untrusted_client_cert_refused_when_optional)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { .cert = "rogue.pem", .key = "rogue.key" };

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", "ca.pem",
				false, false, &self->srv, &err));
	expect_refused(_metadata, self, &c, CLIENT_OPENSSL, TIMEOUT_MS,
		       -ECONNREFUSED, "certificate was not accepted");
	EXPECT_NE(0, c.rc);
}

TEST_F(srv, plain_http_silent_and_gone_clients)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { 0 };

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", NULL, false,
				false, &self->srv, &err));
	expect_refused(_metadata, self, &c, CLIENT_HTTP, TIMEOUT_MS,
		       -ECONNREFUSED, "plain HTTP");
	close(self->sv[0]);
	close(self->sv[1]);

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, self->sv));
	expect_refused(_metadata, self, &c, CLIENT_SILENT, 200, -ETIMEDOUT,
		       "did not finish in time");
	close(self->sv[0]);
	close(self->sv[1]);

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, self->sv));
	expect_refused(_metadata, self, &c, CLIENT_HANGUP, TIMEOUT_MS,
		       -ECONNRESET, "closed the connection");
}

TEST_F(srv, bad_configurations_refused)
{
	struct nbdws_err err = { { 0 } };
	static char sentinel;
	struct tls_server *s = (struct tls_server *)&sentinel;	/* reset? */

	/* A key that is not the certificate's. */
	EXPECT_EQ(-EINVAL, new_server(self->dir, "srv.pem", "other.key", NULL,
				      false, false, &s, &err));
	EXPECT_NE(NULL, strstr(err.msg, "does not belong to the certificate"))
		TH_LOG("%s", err.msg);
	EXPECT_EQ(NULL, s);
	EXPECT_EQ(-EINVAL, new_server(self->dir, "cli.pem", "srv.key", NULL,
				      false, false, &s, &err));
	/* Missing files are named. */
	EXPECT_EQ(-EINVAL, new_server(self->dir, "nope.pem", "srv.key", NULL,
				      false, false, &s, &err));
	EXPECT_NE(NULL, strstr(err.msg, "nope.pem")) TH_LOG("%s", err.msg);
	EXPECT_EQ(-EINVAL, new_server(self->dir, "srv.pem", "nope.key", NULL,
				      false, false, &s, &err));
	EXPECT_NE(NULL, strstr(err.msg, "nope.key")) TH_LOG("%s", err.msg);
	EXPECT_EQ(-EINVAL, new_server(self->dir, "srv.pem", "srv.key",
				      "nope-ca.pem", false, false, &s, &err));
	EXPECT_NE(NULL, strstr(err.msg, "nope-ca.pem")) TH_LOG("%s", err.msg);
	/* A key is not a certificate. */
	EXPECT_EQ(-EINVAL, new_server(self->dir, "srv.key", "srv.key", NULL,
				      false, false, &s, &err));
	EXPECT_EQ(-EINVAL, new_server(self->dir, "srv.pem", NULL, NULL,
				      false, false, &s, &err));
	/* Requiring certificates without a CA to check them. */
	EXPECT_EQ(-EINVAL, new_server(self->dir, "srv.pem", "srv.key", NULL,
				      true, false, &s, &err));
	EXPECT_NE(NULL, strstr(err.msg, "client CA")) TH_LOG("%s", err.msg);
	EXPECT_EQ(NULL, s);
	/* And the good one, for contrast. */
	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", "ca.pem",
				true, true, &s, &err)) TH_LOG("%s", err.msg);
	EXPECT_NE(NULL, s);
	tls_server_free(s);
}

/* A client that speaks only TLS 1.3 cannot get a kTLS session. */
TEST_F(srv, ktls_server_refuses_tls13_only_client)
{
	struct nbdws_err err = { { 0 } };
	struct client c = { .min_version = TLS1_3_VERSION };

	ASSERT_EQ(0, new_server(self->dir, "srv.pem", "srv.key", NULL, false,
				true, &self->srv, &err)) TH_LOG("%s", err.msg);
	expect_refused(_metadata, self, &c, CLIENT_OPENSSL, TIMEOUT_MS,
		       -ECONNREFUSED, "only TLS 1.2 with AES-GCM");
	EXPECT_NE(0, c.rc);
}

TEST_HARNESS_MAIN
