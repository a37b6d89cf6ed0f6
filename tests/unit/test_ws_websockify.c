// SPDX-License-Identifier: GPL-2.0
/*
 * ws:// and wss:// in the client role against a WebSocket server nobody
 * here wrote: websockify (Debian package) in front of nbdkit's memory
 * plugin, on loopback. Covers the upgrade, the NBD handshake carried in
 * WebSocket messages, the hand-over (fd + pre-read bytes) followed by
 * real NBD writes and reads through websockify, subprotocol echo, Basic
 * authorization, TLS with certificate checks, and the kTLS requirement.
 *
 * The TLS certificate is generated at test time with openssl and lives
 * only in the test's temporary directory.
 *
 * kTLS: when the running kernel has no "tls" TCP ULP (the host runs a
 * kernel without modules), ws_dial() in GO mode over wss must fail with
 * the "kernel TLS not available" message; with kTLS it must hand over a
 * socket whose plain read()/write() carry the NBD traffic.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "spawn_util.h"

#include "nbd_test_servers.h"
#include "nbd_uri.h"
#include "nbd_wire.h"
#include "tls.h"
#include "ws_dial.h"
#include "ws_stream.h"

#define WEBSOCKIFY	"/usr/bin/websockify"
#define PYTHON		"/usr/bin/python3"
#define EXPORT_SIZE	(64ULL << 20)
#define TIMEOUT_MS	30000
/* websockify (Python) can take many seconds to start in a TCG guest. */
#define START_MS	60000

/* Start websockify on @port towards nbdkit's socket; extra args in @opt. */
static pid_t start_websockify(const char *dir, const char *nbd_sock,
			      unsigned short port, const char *const *opt)
{
	char listen[32], target[300], log[300];
	char *argv[20];
	int n = 0;

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	snprintf(target, sizeof(target), "--unix-target=%s", nbd_sock);
	snprintf(log, sizeof(log), "%s/websockify-%u.log", dir, port);
	argv[n++] = PYTHON;
	argv[n++] = WEBSOCKIFY;
	argv[n++] = target;
	for (; opt && *opt; opt++)
		argv[n++] = (char *)*opt;
	argv[n++] = listen;
	argv[n] = NULL;
	return spawn_group(argv, log);
}

FIXTURE(ws)
{
	char dir[64];
	char sock[128];
	char cert[128];
	char key[128];
	pid_t nbdkit, plain, tls, auth;
	unsigned short plain_port, tls_port, auth_port;
	bool have_cert;
	bool ready;
};

/* The 6.1 harness runs the test body even when the setup skipped. */
#define NEED_SERVERS() do { \
		if (!self->ready) \
			SKIP(return, "servers not available"); \
	} while (0)

FIXTURE_SETUP(ws)
{
	char log[128];
	char *nbdkit_argv[] = { "/usr/bin/nbdkit", "-f", "--exit-with-parent",
				"-U", self->sock, "memory", "64M", NULL };

	self->nbdkit = self->plain = self->tls = self->auth = 0;
	self->ready = false;
	self->dir[0] = '\0';
	if (access(WEBSOCKIFY, X_OK) || access(PYTHON, X_OK))
		SKIP(return, "needs websockify (apt-get install websockify)");
	if (access("/usr/bin/nbdkit", X_OK))
		SKIP(return, "needs nbdkit");
	make_tmpdir(self->dir, sizeof(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/nbd.sock", self->dir);
	snprintf(log, sizeof(log), "%s/nbdkit.log", self->dir);
	self->nbdkit = spawn_group(nbdkit_argv, log);
	ASSERT_TRUE(wait_unix_listener(self->sock, 5000));

	ASSERT_EQ(0, make_test_cert(self->dir, self->cert, sizeof(self->cert),
				    self->key, sizeof(self->key)));
	self->ready = true;
}

/* websockify in front of nbdkit, started by the tests that use it. */
static unsigned short start_plain(FIXTURE_DATA(ws) *self)
{
	const char *opt[] = { "--heartbeat=1", NULL };

	self->plain_port = free_port();
	self->plain = start_websockify(self->dir, self->sock, self->plain_port, opt);
	return wait_tcp(self->plain_port, START_MS) ? self->plain_port : 0;
}

static unsigned short start_auth(FIXTURE_DATA(ws) *self)
{
	const char *opt[] = { "--auth-plugin=BasicHTTPAuth",
			      "--auth-source=nbd:s3cret", NULL };

	self->auth_port = free_port();
	self->auth = start_websockify(self->dir, self->sock, self->auth_port, opt);
	return wait_tcp(self->auth_port, START_MS) ? self->auth_port : 0;
}

static unsigned short start_tls(FIXTURE_DATA(ws) *self)
{
	char certarg[160], keyarg[160];
	const char *opt[] = { certarg, keyarg, "--ssl-only", NULL };

	snprintf(certarg, sizeof(certarg), "--cert=%s", self->cert);
	snprintf(keyarg, sizeof(keyarg), "--key=%s", self->key);
	self->tls_port = free_port();
	self->tls = start_websockify(self->dir, self->sock, self->tls_port, opt);
	return wait_tcp(self->tls_port, START_MS) ? self->tls_port : 0;
}

FIXTURE_TEARDOWN(ws)
{
	stop_group(self->plain);
	stop_group(self->auth);
	stop_group(self->tls);
	stop_group(self->nbdkit);
	if (self->dir[0] && !getenv("NBDWS_KEEP_TMP"))
		remove_tree(self->dir);
}

static int parse_uri(const char *fmt, unsigned short port, struct nbd_uri *u)
{
	char text[128];

	snprintf(text, sizeof(text), fmt, port);
	return nbd_uri_parse(text, u, NULL);
}

/* One NBD request (+ payload) as one WebSocket message; wait for its reply. */
static int nbd_cmd(struct ws_stream *s, u16 type, u64 cookie, u64 off,
		   u32 len, const u8 *wdata, u8 *rdata)
{
	struct nbd_wire_request rq = { .type = type, .cookie = cookie,
				       .offset = off, .length = len };
	struct nbd_reply_parser rp;
	struct nbd_wire_reply rep;
	u8 hdr[NBDP_SIMPLE_REPLY_SIZE];
	size_t used;
	u8 *msg;
	int rc;

	msg = malloc(NBDP_REQUEST_SIZE + (wdata ? len : 0));
	nbd_wire_encode_request(msg, &rq);
	if (wdata)
		memcpy(msg + NBDP_REQUEST_SIZE, wdata, len);
	rc = ws_stream_send(s, msg, NBDP_REQUEST_SIZE + (wdata ? len : 0));
	free(msg);
	if (rc || type == NBDP_CMD_DISC)
		return rc;
	rc = ws_stream_read(s, hdr, sizeof(hdr));
	if (rc)
		return rc;
	nbd_reply_parser_init(&rp);
	if (nbd_reply_parse(&rp, hdr, sizeof(hdr), &used, &rep) != NBD_REPLY_DONE ||
	    rep.cookie != cookie || rep.error)
		return -EPROTO;
	return rdata ? ws_stream_read(s, rdata, len) : 0;
}

/*
 * Write a pattern, read it back, through the connection handed over.
 * Returns the number of pings answered on the way, or a negative errno.
 */
static int data_round_trip(struct ws_io *io, const struct ws_conn *c)
{
	const u32 len = 256 * 1024;
	u8 *w = malloc(len), *r = malloc(len);
	struct ws_stream s;
	int rc;
	u32 i;

	for (i = 0; i < len; i++)
		w[i] = (u8)(i * 131 + 7);
	rc = ws_stream_init(&s, io, WS_ROLE_CLIENT, c->preread, c->preread_len);
	if (!rc)
		rc = nbd_cmd(&s, NBDP_CMD_WRITE, 1, 1 << 20, len, w, NULL);
	if (!rc)
		rc = nbd_cmd(&s, NBDP_CMD_READ, 2, 1 << 20, len, NULL, r);
	if (!rc && memcmp(w, r, len))
		rc = -EILSEQ;
	if (!rc)
		rc = nbd_cmd(&s, NBDP_CMD_DISC, 3, 0, 0, NULL, NULL);
	if (rc)
		fprintf(stderr, "round trip: %d %s\n", rc, s.err.msg);
	else
		rc = (int)s.pings;
	ws_stream_free(&s);
	free(w);
	free(r);
	return rc;
}

TEST_F_TIMEOUT(ws, plain_info, 300)
{
	struct ws_dial_opts o = { 0 };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_conn c;
	struct nbd_uri u;

	NEED_SERVERS();
	ASSERT_NE(0, start_plain(self));
	ASSERT_EQ(0, parse_uri("ws://127.0.0.1:%u/", self->plain_port, &u));
	ASSERT_EQ(0, ws_dial(&u, &o, NBD_DIAL_INFO, TIMEOUT_MS, &info, &c, &err))
		TH_LOG("%s", err.msg);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	EXPECT_FALSE(info.used_export_name);
	nbd_export_info_free(&info);
	nbd_uri_free(&u);
}

TEST_F_TIMEOUT(ws, plain_list, 300)
{
	struct ws_dial_opts o = { 0 };
	struct nbdws_err err = { "" };
	struct nbd_export_list list;
	struct nbd_uri u;

	NEED_SERVERS();
	ASSERT_NE(0, start_plain(self));
	ASSERT_EQ(0, parse_uri("ws://localhost:%u/any/path?x=1", self->plain_port, &u));
	ASSERT_EQ(0, ws_dial_list(&u, &o, TIMEOUT_MS, &list, &err)) TH_LOG("%s", err.msg);
	EXPECT_GE(list.n, 1);
	nbd_export_list_free(&list);
	nbd_uri_free(&u);
}

/*
 * GO, then use the handed-over fd the way the kernel will: pre-read bytes
 * first, then the socket. websockify pings every second; waiting 1.5 s
 * before the I/O puts a real ping in the stream.
 */
TEST_F_TIMEOUT(ws, plain_go_then_nbd_io, 300)
{
	struct ws_dial_opts o = { .subprotocol = "binary" };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_fd_io fio;
	struct ws_io io;
	struct ws_conn c;
	struct nbd_uri u;
	int fd;

	NEED_SERVERS();
	ASSERT_NE(0, start_plain(self));
	ASSERT_EQ(0, parse_uri("ws://127.0.0.1:%u/", self->plain_port, &u));
	fd = ws_dial(&u, &o, NBD_DIAL_GO, TIMEOUT_MS, &info, &c, &err);
	ASSERT_GE(fd, 0) TH_LOG("%s", err.msg);
	EXPECT_EQ(fd, c.fd);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	ASSERT_NE(NULL, c.subprotocol);
	EXPECT_STREQ("binary", c.subprotocol);
	EXPECT_FALSE(c.ktls);
	TH_LOG("handed over with %zu pre-read bytes", c.preread_len);
	usleep(1500 * 1000);
	ws_fd_io_init(&io, &fio, fd, TIMEOUT_MS);
	EXPECT_GE(data_round_trip(&io, &c), 1) TH_LOG("expected websockify's heartbeat pings");
	ws_conn_free(&c);
	close(fd);
	nbd_export_info_free(&info);
	nbd_uri_free(&u);
}

TEST_F_TIMEOUT(ws, authorization, 300)
{
	struct ws_dial_opts o = { 0 };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_conn c;
	struct nbd_uri u;

	NEED_SERVERS();
	ASSERT_NE(0, start_auth(self));
	ASSERT_EQ(0, parse_uri("ws://127.0.0.1:%u/", self->auth_port, &u));
	EXPECT_EQ(-EACCES, ws_dial(&u, &o, NBD_DIAL_INFO, TIMEOUT_MS, &info, &c, &err));
	TH_LOG("no credentials: %s", err.msg);
	EXPECT_NE(NULL, strstr(err.msg, "401"));
	EXPECT_NE(NULL, strstr(err.msg, "Authorization"));

	o.authorization = "Basic bmJkOndyb25n";	/* nbd:wrong */
	EXPECT_EQ(-EACCES, ws_dial(&u, &o, NBD_DIAL_INFO, TIMEOUT_MS, &info, &c, &err));

	o.authorization = "Basic bmJkOnMzY3JldA==";	/* nbd:s3cret */
	ASSERT_EQ(0, ws_dial(&u, &o, NBD_DIAL_INFO, TIMEOUT_MS, &info, &c, &err))
		TH_LOG("%s", err.msg);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	nbd_export_info_free(&info);
	nbd_uri_free(&u);
}

TEST_F_TIMEOUT(ws, tls_info_verified, 300)
{
	struct ws_dial_opts o = { .ca_file = self->cert };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_conn c;
	struct nbd_uri u;

	/* A DNS name (SNI sent, name checked) and an IP literal (IP SAN). */
	NEED_SERVERS();
	ASSERT_NE(0, start_tls(self));
	ASSERT_EQ(0, parse_uri("wss://localhost:%u/", self->tls_port, &u));
	ASSERT_EQ(0, ws_dial(&u, &o, NBD_DIAL_INFO, TIMEOUT_MS, &info, &c, &err))
		TH_LOG("%s", err.msg);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	nbd_export_info_free(&info);
	nbd_uri_free(&u);

	ASSERT_EQ(0, parse_uri("wss://127.0.0.1:%u/", self->tls_port, &u));
	ASSERT_EQ(0, ws_dial(&u, &o, NBD_DIAL_INFO, TIMEOUT_MS, &info, &c, &err))
		TH_LOG("%s", err.msg);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	nbd_export_info_free(&info);
	nbd_uri_free(&u);
}

TEST_F_TIMEOUT(ws, tls_untrusted_or_wrong_name, 300)
{
	struct ws_dial_opts o = { 0 };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_conn c;
	struct nbd_uri u;

	/* The system store does not know our throwaway CA. */
	NEED_SERVERS();
	ASSERT_NE(0, start_tls(self));
	ASSERT_EQ(0, parse_uri("wss://localhost:%u/", self->tls_port, &u));
	EXPECT_EQ(-ECONNREFUSED, ws_dial(&u, &o, NBD_DIAL_INFO, TIMEOUT_MS, &info, &c, &err));
	TH_LOG("untrusted: %s", err.msg);
	EXPECT_NE(NULL, strstr(err.msg, "certificate"));
	EXPECT_NE(NULL, strstr(err.msg, "CA file"));

	/* Insecure skips verification. */
	o.insecure = true;
	ASSERT_EQ(0, ws_dial(&u, &o, NBD_DIAL_INFO, TIMEOUT_MS, &info, &c, &err))
		TH_LOG("%s", err.msg);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	nbd_export_info_free(&info);
	nbd_uri_free(&u);

	/*
	 * Trusted CA, but an address the certificate does not name: the
	 * IPv4-mapped IPv6 form reaches the same listener and is a different
	 * IP SAN.
	 */
	o.insecure = false;
	o.ca_file = self->cert;
	ASSERT_EQ(0, parse_uri("wss://[::ffff:127.0.0.1]:%u/", self->tls_port, &u));
	EXPECT_EQ(-ECONNREFUSED, ws_dial(&u, &o, NBD_DIAL_INFO, TIMEOUT_MS, &info, &c, &err));
	TH_LOG("wrong name: %s", err.msg);
	EXPECT_NE(NULL, strstr(err.msg, "mismatch"));
	nbd_uri_free(&u);
}

TEST_F_TIMEOUT(ws, scheme_mismatch_fails_cleanly, 300)
{
	struct ws_dial_opts o = { .insecure = true };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_conn c;
	struct nbd_uri u;
	int rc;

	/* wss:// to the plain port: the TLS handshake fails. */
	NEED_SERVERS();
	ASSERT_NE(0, start_plain(self));
	ASSERT_NE(0, start_tls(self));
	ASSERT_EQ(0, parse_uri("wss://127.0.0.1:%u/", self->plain_port, &u));
	rc = ws_dial(&u, &o, NBD_DIAL_INFO, 3000, &info, &c, &err);
	EXPECT_LT(rc, 0);
	TH_LOG("wss to plain: %d %s", rc, err.msg);
	nbd_uri_free(&u);

	/* ws:// to the TLS-only port: no upgrade response. */
	ASSERT_EQ(0, parse_uri("ws://127.0.0.1:%u/", self->tls_port, &u));
	rc = ws_dial(&u, &o, NBD_DIAL_INFO, 3000, &info, &c, &err);
	EXPECT_LT(rc, 0);
	TH_LOG("ws to tls: %d %s", rc, err.msg);
	nbd_uri_free(&u);
}

/*
 * GO over wss hands the session to the kernel, so it needs kTLS both ways.
 * Without the tls ULP the dial must stop right after the TLS handshake
 * with the clean message; with it, the fd must carry NBD in plain
 * read()/write() (the kernel encrypts).
 */
TEST_F_TIMEOUT(ws, tls_go_needs_ktls, 300)
{
	struct ws_dial_opts o = { .ca_file = self->cert };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_fd_io fio;
	struct ws_io io;
	struct ws_conn c;
	struct nbd_uri u;
	int fd;

	NEED_SERVERS();
	ASSERT_NE(0, start_tls(self));
	ASSERT_EQ(0, parse_uri("wss://localhost:%u/", self->tls_port, &u));
	fd = ws_dial(&u, &o, NBD_DIAL_GO, TIMEOUT_MS, &info, &c, &err);
	if (!tls_kernel_has_ulp() && fd < 0) {
		TH_LOG("no tls ULP in this kernel: %s", err.msg);
		EXPECT_EQ(-EOPNOTSUPP, fd);
		EXPECT_EQ(0, strncmp(err.msg, "kernel TLS not available for this cipher/kernel: ",
				     strlen("kernel TLS not available for this cipher/kernel: ")));
		EXPECT_NE(NULL, strstr(err.msg, "TLSv1.2"));
		nbd_uri_free(&u);
		return;
	}
	ASSERT_GE(fd, 0) TH_LOG("%s", err.msg);
	TH_LOG("kTLS active: %s, %zu pre-read bytes", c.tls_desc, c.preread_len);
	EXPECT_TRUE(c.ktls);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	ws_fd_io_init(&io, &fio, fd, TIMEOUT_MS);
	EXPECT_GE(data_round_trip(&io, &c), 0);
	ws_conn_free(&c);
	close(fd);
	nbd_export_info_free(&info);
	nbd_uri_free(&u);
}

TEST_HARNESS_MAIN
