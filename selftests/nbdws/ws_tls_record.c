// SPDX-License-Identifier: GPL-2.0
/*
 * A TLS record that is not application data, after the hand-over to
 * kernel TLS (issue 17, "Receive layering"): a fatal alert, a close_notify
 * and a TLS 1.3 KeyUpdate message. From 6.3 on nbdws.ko reads kTLS through
 * read_sock, which stops at such a record; the driver must then look at it
 * with recvmsg and end the connection: a fatal alert or a handshake
 * message (kTLS cannot rekey) as a socket error with a dmesg line naming
 * the record type, close_notify as the peer's orderly close. Never a hang,
 * never a WARN (the harness checks dmesg).
 *
 * The peer is the bench's C server (bench/ws_nbd_peer.c) with kernel TLS
 * on its side, which sends the record with TLS_SET_RECORD_TYPE when it
 * reads the read request at REC_OFF and leaves that request unanswered.
 * Before, a megabyte is written and read back through the same session:
 * data records keep flowing through the new read path. The read at
 * REC_OFF must then fail with EIO once the connection is dead and the
 * dead-connection timeout has passed, in seconds, with a CONN_DEAD event
 * of the expected reason.
 */
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "ws_util.h"

#define IMG_SIZE	(64 * TU_MIB)
#define REC_OFF		(32 * TU_MIB)
#define DATA_LEN	TU_MIB
#define W_SEED		0x746c737265636fULL
#define TIMEOUT_MS	30000
#define DEAD_TIMEOUT_MS	1000
/* Far below the request timeout: the record, not a timeout, ends it. */
#define FAIL_LIMIT_MS	(TIMEOUT_MS / 2)

FIXTURE(rec) {
	struct nl nl, ev;
	struct ws_handover h;
	uint32_t index;
	bool connected;
	pid_t peer;
	char dir[256], peer_out[300];
	char dev[64];
};

FIXTURE_VARIANT(rec) {
	const char *kind;	/* ws_nbd_peer --tls-record KIND@... */
	uint32_t reason;	/* of the CONN_DEAD event */
	const char *dmesg;	/* the line that names the record, or NULL */
};

FIXTURE_VARIANT_ADD(rec, alert) {
	.kind = "alert",
	.reason = NBDWS_REASON_SOCKET_ERROR,
	.dmesg = "TLS record of type 21 (2 10) instead of data",
};

FIXTURE_VARIANT_ADD(rec, keyupdate) {
	.kind = "keyupdate",
	.reason = NBDWS_REASON_SOCKET_ERROR,
	.dmesg = "TLS record of type 22 (24 0) instead of data",
};

FIXTURE_VARIANT_ADD(rec, close_notify) {
	.kind = "close",
	.reason = NBDWS_REASON_PEER_CLOSED,
	.dmesg = NULL,
};

static void peer_path(char *out, size_t len)
{
	const char *top = getenv("NBDWS_TOP");

	snprintf(out, len, "%s%sbuild/ws_nbd_peer", top && *top ? top : "",
		 top && *top ? "/" : "");
}

/* How many times the kernel log has @line so far. */
static int dmesg_count(const char *line)
{
	char out[64];

	if (tu_sh(10000, out, sizeof(out), "dmesg | grep -c -F '%s'", line) < 0)
		return -1;
	return atoi(out);
}

FIXTURE_SETUP(rec)
{
	char out[2048], prog[300], cert[300], key[300], listen_at[64];
	char rec[64];
	int fd, port, rc;

	self->h.fd = -1;
	ASSERT_EQ(0, nl_open(&self->nl));
	ASSERT_EQ(0, nl_open_events(&self->ev));
	snprintf(self->dir, sizeof(self->dir), "%s/nbdws-tlsrec.XXXXXX",
		 tu_tmpdir());
	ASSERT_NE(NULL, mkdtemp(self->dir));

	rc = tu_sh(30000, out, sizeof(out), "modprobe tls");
	ASSERT_EQ(0, rc) TH_LOG("modprobe tls: %s", out);
	snprintf(cert, sizeof(cert), "%s/cert.pem", self->dir);
	snprintf(key, sizeof(key), "%s/key.pem", self->dir);
	rc = tu_sh(60000, out, sizeof(out),
		   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 -keyout '%s' -out '%s'",
		   key, cert);
	ASSERT_EQ(0, rc) TH_LOG("openssl: %s", out);

	peer_path(prog, sizeof(prog));
	port = tu_free_port();
	ASSERT_LT(0, port);
	snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", port);
	snprintf(rec, sizeof(rec), "%s@%llu", variant->kind,
		 (unsigned long long)REC_OFF);
	snprintf(self->peer_out, sizeof(self->peer_out), "%s/peer.out",
		 self->dir);
	{
		char *argv[] = { prog, "--size", "64M", "--wss", listen_at,
				 "--cert", cert, "--key", key,
				 "--tls-record", rec, NULL };

		fd = open(self->peer_out, O_WRONLY | O_CREAT | O_TRUNC |
			  O_CLOEXEC, 0644);
		ASSERT_LE(0, fd);
		self->peer = tu_spawn(argv, fd);
		close(fd);
	}
	ASSERT_LT(0, self->peer);
	ASSERT_EQ(0, tu_wait_listen(port, 30000))
		TH_LOG("%s did not listen on %s", prog, listen_at);

	/* Dial as nbdctl connect --insecure wss://... would. */
	{
		struct ws_dial_opts o = { .insecure = true };
		struct nbdws_err err = { { 0 } };
		struct nbd_uri uri;
		struct ws_conn conn;
		char text[96];

		snprintf(text, sizeof(text), "wss://%s/", listen_at);
		ASSERT_EQ(0, nbd_uri_parse(text, &uri, &err)) TH_LOG("%s", err.msg);
		memset(&conn, 0, sizeof(conn));
		conn.fd = -1;
		rc = ws_dial(&uri, &o, NBD_DIAL_GO, WS_HANDSHAKE_MS,
			     &self->h.info, &conn, &err);
		nbd_uri_free(&uri);
		ASSERT_LE(0, rc) TH_LOG("ws_dial %s: %s", text, err.msg);
		self->h.fd = conn.fd;
		self->h.preread = conn.preread;
		self->h.preread_len = conn.preread_len;
		conn.preread = NULL;
		ASSERT_TRUE(conn.ktls) TH_LOG("kTLS is not active: %s",
					      conn.tls_desc);
		ws_conn_free(&conn);
	}
	ASSERT_EQ(IMG_SIZE, self->h.info.size);
}

FIXTURE_TEARDOWN(rec)
{
	if (self->connected)
		EXPECT_EQ(0, nbdws_teardown_dev(&self->nl, self->index));
	ws_handover_free(&self->h);
	tu_kill_reap(self->peer);
	nl_close(&self->ev);
	nl_close(&self->nl);
	if (self->dir[0]) {
		char out[256];

		tu_sh(10000, out, sizeof(out), "rm -rf '%s'", self->dir);
	}
}

struct io_arg {
	const char *dev;
	bool at_record;		/* read at REC_OFF instead */
};

/* Write DATA_LEN at 0 and read it back, or read 4 KiB at REC_OFF. */
static int io_child(void *p)
{
	struct io_arg *a = p;
	void *buf;
	int fd, ret;

	if (posix_memalign(&buf, 4096, DATA_LEN))
		return ENOMEM;
	fd = open(a->dev, O_RDWR | O_DIRECT);
	if (fd < 0)
		return errno;
	if (a->at_record) {
		ret = tu_pread_full(fd, buf, 4096, REC_OFF);
		goto out;
	}
	tu_pattern(buf, 0, DATA_LEN, W_SEED);
	ret = tu_pwrite_full(fd, buf, DATA_LEN, 0);
	if (!ret) {
		memset(buf, 0, DATA_LEN);
		ret = tu_pread_full(fd, buf, DATA_LEN, 0);
	}
	if (!ret && tu_pattern_check(buf, 0, DATA_LEN, W_SEED) != -1)
		ret = EILSEQ;
out:
	close(fd);
	free(buf);
	return ret;
}

TEST_F_TIMEOUT(rec, connection_ends, 300)
{
	struct nbdws_connect_args base;
	struct nbdws_event_info ev = { 0 };
	struct io_arg a = { self->dev, false };
	int before = 0, res = -1, rc;
	char peer_tail[1024];
	long long t0, ms;

	nbdws_connect_defaults(&base, IMG_SIZE);
	base.timeout_ms = TIMEOUT_MS;
	base.dead_timeout_ms = DEAD_TIMEOUT_MS;
	rc = ws_connect_dev(&self->nl, &self->h, NBDWS_TRANSPORT_WS_CLIENT, 0,
			    &base, &self->index);
	ASSERT_EQ(0, rc) TH_LOG("CONNECT: %s", self->nl.extack);
	self->connected = true;
	close(self->h.fd);
	self->h.fd = -1;
	nbdws_dev_path(self->index, self->dev, sizeof(self->dev));
	ASSERT_EQ(0, tu_wait_path(self->dev, true, 10000));

	/* Application data still flows both ways. */
	rc = tu_child_run(io_child, &a, 120000, &res);
	ASSERT_EQ(0, rc) TH_LOG("write and read back still running after 120 s");
	ASSERT_EQ(0, res) TH_LOG("write and read back: %s", strerror(res));

	if (variant->dmesg) {
		before = dmesg_count(variant->dmesg);
		ASSERT_LE(0, before);
	}
	a.at_record = true;
	t0 = tu_now_ms();
	rc = tu_child_run(io_child, &a, 120000, &res);
	ms = tu_now_ms() - t0;
	ws_file_tail(self->peer_out, peer_tail, sizeof(peer_tail));
	ASSERT_EQ(0, rc) TH_LOG("read at the record still running after 120 s; peer: %s",
				peer_tail);
	EXPECT_EQ(EIO, res) TH_LOG("read at the record: %s; peer: %s",
				   strerror(res), peer_tail);
	EXPECT_GT(FAIL_LIMIT_MS, ms) TH_LOG("the read failed only after %lld ms", ms);
	TH_LOG("%s: read failed after %lld ms", variant->kind, ms);

	ASSERT_EQ(0, nl_wait_event(&self->ev, self->index,
				   NBDWS_EVENT_CONN_DEAD, 10000, &ev))
		TH_LOG("events: %s", self->ev.events_seen);
	EXPECT_EQ(variant->reason, ev.reason);
	if (variant->dmesg)
		EXPECT_LT(before, dmesg_count(variant->dmesg))
			TH_LOG("no \"%s\" in dmesg", variant->dmesg);
}

TEST_HARNESS_MAIN
