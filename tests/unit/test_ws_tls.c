// SPDX-License-Identifier: GPL-2.0
/*
 * wss:// against a scripted TLS WebSocket NBD server (OpenSSL server in a
 * child process, certificate made at test time): SNI and ALPN as the
 * server sees them, the handshake over TLS, and the hand-over.
 *
 * The hand-over needs kernel TLS. Where the kernel has no "tls" ULP (the
 * host), GO must fail with the "kernel TLS not available" message. Where
 * it has (the test VMs, with the tls and gcm modules loaded), the fd must
 * come back with kTLS on, the bytes the server sent behind its last reply
 * as pre-read bytes, and plain read()/write() on the fd must carry frames
 * both ways (the server echoes one through its OpenSSL session, so record
 * sequence numbers continued correctly in both directions).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kselftest_harness.h"

#include "nbd_test_servers.h"
#include "nbd_uri.h"
#include "tls.h"
#include "ws_dial.h"
#include "ws_test_server.h"

enum { SRV_SNI = 30, SRV_ALPN, SRV_TLS };

/* Blocking ws_io over the server's OpenSSL session. */
static ssize_t srv_tls_read(void *ctx, void *buf, size_t len)
{
	int n = SSL_read(ctx, buf, (int)len);

	if (n > 0)
		return n;
	return SSL_get_error(ctx, n) == SSL_ERROR_ZERO_RETURN ? 0 : -EIO;
}

static int srv_tls_write(void *ctx, const void *buf, size_t len)
{
	return SSL_write(ctx, buf, (int)len) == (int)len ? 0 : -EIO;
}

static bool alpn_offered;

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (inlen == 9 && !memcmp(in, "\x08http/1.1", 9)) {
		alpn_offered = true;
		*out = in + 1;
		*outlen = 8;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

FIXTURE(tls)
{
	char dir[64];
	char cert[128];
	char key[128];
	pid_t pid;
	unsigned short port;
};

FIXTURE_SETUP(tls)
{
	char cmd[1024];

	self->pid = 0;
	make_tmpdir(self->dir, sizeof(self->dir));
	snprintf(self->cert, sizeof(self->cert), "%s/cert.pem", self->dir);
	snprintf(self->key, sizeof(self->key), "%s/key.pem", self->dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout %s -out %s >/dev/null 2>&1",
		 self->key, self->cert);
	ASSERT_EQ(0, system(cmd));
}

FIXTURE_TEARDOWN(tls)
{
	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	remove_tree(self->dir);
}

/* Fork the TLS server; it serves one connection as @sc says. */
static void start_server(FIXTURE_DATA(tls) *self, const struct srv_script *sc)
{
	int lfd = listen_loopback(&self->port);

	self->pid = fork();
	if (self->pid == 0) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
		struct ws_io io;
		const char *sni;
		SSL *ssl;
		int fd;

		must(ctx && SSL_CTX_use_certificate_chain_file(ctx, self->cert) == 1 &&
		     SSL_CTX_use_PrivateKey_file(ctx, self->key, SSL_FILETYPE_PEM) == 1,
		     SRV_TLS);
		SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
		fd = accept(lfd, NULL, NULL);
		must(fd >= 0, SRV_IO);
		ssl = SSL_new(ctx);
		must(ssl && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1, SRV_TLS);
		sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
		must(sni && !strcmp(sni, "localhost"), SRV_SNI);
		must(alpn_offered, SRV_ALPN);
		io.ctx = ssl;
		io.read = srv_tls_read;
		io.write = srv_tls_write;
		serve_ws_nbd(&io, self->port, sc);
	}
	close(lfd);
}

static int server_exit(FIXTURE_DATA(tls) *self)
{
	int st = 0;

	waitpid(self->pid, &st, 0);
	self->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int dial(FIXTURE_DATA(tls) *self, enum nbd_dial_mode mode,
		struct nbd_export_info *info, struct ws_conn *c,
		struct nbdws_err *err)
{
	struct ws_dial_opts o = {
		.subprotocol = "nbd", .authorization = "Bearer t0k",
		.origin = "https://bmc.example", .ca_file = self->cert,
	};
	struct nbd_uri u;
	char text[128];
	int rc;

	snprintf(text, sizeof(text), "wss://localhost:%u/nbd/disk?token=abc",
		 self->port);
	if (nbd_uri_parse(text, &u, err))
		return -999;
	rc = ws_dial(&u, &o, mode, 10000, info, c, err);
	nbd_uri_free(&u);
	return rc;
}

TEST_F(tls, info_over_tls)
{
	struct srv_script sc = { .host_fmt = "localhost:%u" };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_conn c;

	start_server(self, &sc);
	ASSERT_EQ(0, dial(self, NBD_DIAL_INFO, &info, &c, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	EXPECT_EQ(EXPORT_FLAGS, info.tflags);
	nbd_export_info_free(&info);
	/* INFO ends with the client leaving: the server saw a clean run. */
	EXPECT_EQ(SRV_OK, server_exit(self));
}

TEST_F(tls, go_hands_over_to_ktls)
{
	struct srv_script sc = { .ping_after_ack = true, .host_fmt = "localhost:%u" };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_fd_io fio;
	struct ws_stream s;
	struct ws_io io;
	struct ws_conn c;
	char echo[5] = "";
	int fd;

	start_server(self, &sc);
	fd = dial(self, NBD_DIAL_GO, &info, &c, &err);
	if (fd < 0 && !tls_kernel_has_ulp()) {
		EXPECT_EQ(-EOPNOTSUPP, fd);
		EXPECT_EQ(0, strncmp(err.msg, "kernel TLS not available for this cipher/kernel: ",
				     strlen("kernel TLS not available for this cipher/kernel: ")));
		SKIP(return, "no kTLS in this kernel: %s", err.msg);
	}
	ASSERT_GE(fd, 0) TH_LOG("%s", err.msg);
	EXPECT_TRUE(c.ktls);
	TH_LOG("%s, %zu pre-read bytes", c.tls_desc, c.preread_len);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	ASSERT_EQ(sizeof(ping_hi), c.preread_len);
	EXPECT_EQ(0, memcmp(ping_hi, c.preread, sizeof(ping_hi)));

	/* Plain read()/write() from here on: the kernel does the TLS. */
	ws_fd_io_init(&io, &fio, fd, 10000);
	ASSERT_EQ(0, ws_stream_init(&s, &io, WS_ROLE_CLIENT, c.preread, c.preread_len));
	ASSERT_EQ(0, ws_stream_send(&s, "abcd", 4));
	ASSERT_EQ(0, ws_stream_read(&s, echo, 4)) TH_LOG("%s", s.err.msg);
	EXPECT_STREQ("abcd", echo);
	EXPECT_EQ(1, s.pings);
	ws_stream_free(&s);
	close(fd);
	EXPECT_EQ(SRV_OK, server_exit(self));
	ws_conn_free(&c);
	nbd_export_info_free(&info);
}

TEST_HARNESS_MAIN
