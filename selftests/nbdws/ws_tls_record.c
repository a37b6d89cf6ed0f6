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
	struct ws_ktls_dev d;
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
	char rec[64];
	const char *extra[] = { "--tls-record", rec, NULL };

	snprintf(rec, sizeof(rec), "%s@%llu", variant->kind,
		 (unsigned long long)REC_OFF);
	ASSERT_EQ(0, ws_ktls_dev_open(&self->d, "tlsrec", IMG_SIZE, extra))
		TH_LOG("%s", self->d.why);
}

FIXTURE_TEARDOWN(rec)
{
	EXPECT_EQ(0, ws_ktls_dev_close(&self->d));
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
	struct nbdws_event_info ev = { 0 };
	struct io_arg a = { self->d.dev, false };
	int before = 0, res = -1, rc;
	char peer_tail[1024];
	long long t0, ms;

	rc = ws_ktls_dev_connect(&self->d, TIMEOUT_MS, DEAD_TIMEOUT_MS);
	ASSERT_EQ(0, rc) TH_LOG("CONNECT: %s", self->d.nl.extack);

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
	ws_file_tail(self->d.peer.out, peer_tail, sizeof(peer_tail));
	ASSERT_EQ(0, rc) TH_LOG("read at the record still running after 120 s; peer: %s",
				peer_tail);
	EXPECT_EQ(EIO, res) TH_LOG("read at the record: %s; peer: %s",
				   strerror(res), peer_tail);
	EXPECT_GT(FAIL_LIMIT_MS, ms) TH_LOG("the read failed only after %lld ms", ms);
	TH_LOG("%s: read failed after %lld ms", variant->kind, ms);

	ASSERT_EQ(0, nl_wait_event(&self->d.ev, self->d.index,
				   NBDWS_EVENT_CONN_DEAD, 10000, &ev))
		TH_LOG("events: %s", self->d.ev.events_seen);
	EXPECT_EQ(variant->reason, ev.reason);
	if (variant->dmesg)
		EXPECT_LT(before, dmesg_count(variant->dmesg))
			TH_LOG("no \"%s\" in dmesg", variant->dmesg);
}

TEST_HARNESS_MAIN
