// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile servers: the in-process scripted server serves a device
 * correctly, then answers one chosen request wrongly (bad magic, unknown
 * cookie, duplicate reply, reply on the other connection, truncated
 * header or data, too much data, no reply, or it stops reading). The
 * module must end that connection with a CONN_DEAD event carrying the
 * right reason, complete the I/O (EIO, or the right data where the reply
 * was good before the violation) in bounded time, and still disconnect.
 * The harness checks dmesg for oops/WARN afterwards.
 */
#include "kselftest_harness.h"
#include "nbdws_test_genl.h"
#include "nbdws_test_server.h"

#define IMG_SIZE	(64 * TU_MIB)
#define IMG_SEED	0x686f7374696c65ULL
#define TRIG_OFF	(32 * TU_MIB)	/* nothing but the test touches it */
#define TIMEOUT_MS	3000
#define DEAD_TIMEOUT_MS	3000
/* Generous bounds: TCG is slow, but nothing here may take minutes. */
#define EVENT_WAIT_MS	45000
#define IO_WAIT_MS	60000

#define R(x)		(1U << NBDWS_REASON_##x)

FIXTURE(hostile) {
	struct nl nl, ev;
	struct ts_server srv;
	uint32_t index;
	bool connected;
	char path[64];
};

FIXTURE_VARIANT(hostile) {
	enum ts_mode mode;
	int nconns;
	int trig_type;		/* NBDP_CMD_READ or NBDP_CMD_WRITE */
	int expect_io;		/* 0: right data; else the errno */
	unsigned int reasons;	/* acceptable CONN_DEAD reasons */
};

FIXTURE_VARIANT_ADD(hostile, bad_magic) {
	.mode = TS_BAD_MAGIC, .nconns = 1, .trig_type = NBDP_CMD_READ,
	.expect_io = EIO, .reasons = R(PROTOCOL),
};

FIXTURE_VARIANT_ADD(hostile, unknown_cookie) {
	.mode = TS_UNKNOWN_COOKIE, .nconns = 1, .trig_type = NBDP_CMD_READ,
	.expect_io = EIO, .reasons = R(PROTOCOL),
};

/* The first reply is good (the read gets its data), the second is not. */
FIXTURE_VARIANT_ADD(hostile, duplicate_reply) {
	.mode = TS_DUP_REPLY, .nconns = 1, .trig_type = NBDP_CMD_READ,
	.expect_io = 0, .reasons = R(PROTOCOL),
};

/*
 * The reply to a request of connection A arrives on B: B dies of it
 * (protocol), A's request is never answered (timeout), nothing is left
 * to requeue on, so the read fails.
 */
FIXTURE_VARIANT_ADD(hostile, reply_on_wrong_connection) {
	.mode = TS_WRONG_CONN, .nconns = 2, .trig_type = NBDP_CMD_READ,
	.expect_io = EIO, .reasons = R(PROTOCOL),
};

FIXTURE_VARIANT_ADD(hostile, truncated_header) {
	.mode = TS_TRUNC_HEADER, .nconns = 1, .trig_type = NBDP_CMD_READ,
	.expect_io = EIO,
	.reasons = R(PEER_CLOSED) | R(PROTOCOL) | R(SOCKET_ERROR),
};

FIXTURE_VARIANT_ADD(hostile, truncated_data) {
	.mode = TS_TRUNC_DATA, .nconns = 1, .trig_type = NBDP_CMD_READ,
	.expect_io = EIO,
	.reasons = R(PEER_CLOSED) | R(PROTOCOL) | R(SOCKET_ERROR),
};

/* Right data then garbage where the next header should be. */
FIXTURE_VARIANT_ADD(hostile, read_data_too_long) {
	.mode = TS_LONG_DATA, .nconns = 1, .trig_type = NBDP_CMD_READ,
	.expect_io = 0, .reasons = R(PROTOCOL),
};

FIXTURE_VARIANT_ADD(hostile, no_reply) {
	.mode = TS_NO_REPLY, .nconns = 1, .trig_type = NBDP_CMD_READ,
	.expect_io = EIO, .reasons = R(TIMEOUT),
};

/* Stops reading: the sender fills the socket and blocks; timeout fires. */
FIXTURE_VARIANT_ADD(hostile, stops_reading) {
	.mode = TS_STOP_READING, .nconns = 1, .trig_type = NBDP_CMD_WRITE,
	.expect_io = EIO, .reasons = R(TIMEOUT),
};

FIXTURE_SETUP(hostile)
{
	struct nbdws_connect_args a;
	int i, cfd = -1, sfd = -1;

	ASSERT_EQ(0, nl_open(&self->nl));
	ASSERT_EQ(0, nl_open_events(&self->ev));
	ASSERT_EQ(0, ts_init(&self->srv, IMG_SIZE, IMG_SEED));
	ts_arm(&self->srv, variant->mode, variant->trig_type, TRIG_OFF);
	nbdws_connect_defaults(&a, IMG_SIZE);
	a.timeout_ms = TIMEOUT_MS;
	a.dead_timeout_ms = DEAD_TIMEOUT_MS;
	a.max_req = 1024 * 1024;
	for (i = 0; i < variant->nconns; i++) {
		ASSERT_EQ(0, tu_tcp_pair(&cfd, &sfd));
		ASSERT_EQ(0, ts_add_conn(&self->srv, sfd));
		a.fds[a.nfds++] = cfd;
	}
	ASSERT_EQ(0, nbdws_connect(&self->nl, &a, &self->index))
		TH_LOG("CONNECT: %s", self->nl.extack);
	self->connected = true;
	for (i = 0; i < a.nfds; i++)
		close(a.fds[i]);
	nbdws_dev_path(self->index, self->path, sizeof(self->path));
	ASSERT_EQ(0, tu_wait_path(self->path, true, 10000));
}

FIXTURE_TEARDOWN(hostile)
{
	if (self->connected)
		nbdws_teardown_dev(&self->nl, self->index);
	ts_stop(&self->srv);
	nl_close(&self->ev);
	nl_close(&self->nl);
}

struct io_arg {
	const char *path;
	uint64_t off;
	size_t len;
	bool write;
};

/* O_DIRECT read (checked against the pattern) or write; 0 or errno. */
static int io_child(void *p)
{
	struct io_arg *a = p;
	void *buf;
	int fd, ret;

	if (posix_memalign(&buf, 4096, a->len))
		return ENOMEM;
	fd = open(a->path, (a->write ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0)
		return errno;
	if (a->write) {
		tu_pattern(buf, a->off, a->len, ~IMG_SEED);
		ret = tu_pwrite_full(fd, buf, a->len, a->off);
	} else {
		ret = tu_pread_full(fd, buf, a->len, a->off);
		if (!ret && tu_pattern_check(buf, a->off, a->len, IMG_SEED) != -1)
			ret = EILSEQ;
	}
	close(fd);
	return ret;
}

static const char *reason_name(uint32_t r)
{
	static const char * const n[] = {
		"none", "timeout", "peer_closed", "socket_error", "protocol",
		"ws_close", "ws_protocol", "ws_ping_timeout", "user",
	};

	return r < sizeof(n) / sizeof(n[0]) ? n[r] : "?";
}

TEST_F_TIMEOUT(hostile, connection_ends_cleanly, 240)
{
	struct io_arg trig = { .path = self->path, .off = TRIG_OFF,
			       .len = 65536,
			       .write = variant->trig_type == NBDP_CMD_WRITE };
	struct io_arg flood[3];
	pid_t trig_pid, flood_pid[3] = { 0 };
	struct nbdws_event_info ev = { 0 };
	long long t0 = tu_now_ms();
	int res = -1, i, ret;

	trig_pid = tu_child_start(io_child, &trig);
	ASSERT_LT(0, trig_pid);

	if (variant->mode == TS_STOP_READING) {
		/*
		 * Once the server has stopped reading, pile up more than
		 * the socket buffers hold so that the sender blocks too.
		 */
		for (i = 0; i < 300 && !atomic_load(&self->srv.triggered); i++)
			tu_msleep(100);
		ASSERT_TRUE(atomic_load(&self->srv.triggered));
		for (i = 0; i < 3; i++) {
			flood[i] = (struct io_arg){ .path = self->path,
				.off = (uint64_t)i * 8 * TU_MIB,
				.len = 8 * TU_MIB, .write = true };
			flood_pid[i] = tu_child_start(io_child, &flood[i]);
		}
	}

	ret = nl_wait_event(&self->ev, self->index, NBDWS_EVENT_CONN_DEAD,
			    EVENT_WAIT_MS, &ev);
	EXPECT_EQ(0, ret) TH_LOG("no CONN_DEAD; events seen: %s",
				 self->ev.events_seen);
	if (!ret) {
		EXPECT_TRUE(ev.has_reason);
		EXPECT_TRUE(variant->reasons & (1U << ev.reason))
			TH_LOG("CONN_DEAD reason %u (%s)", ev.reason,
			       reason_name(ev.reason));
	}

	ASSERT_EQ(0, tu_child_wait(trig_pid, IO_WAIT_MS, &res))
		TH_LOG("I/O still stuck %lld ms after it started",
		       tu_now_ms() - t0);
	EXPECT_EQ(variant->expect_io, res) TH_LOG("I/O result: %s",
						  strerror(res));
	for (i = 0; i < 3; i++) {
		if (!flood_pid[i])
			continue;
		ASSERT_EQ(0, tu_child_wait(flood_pid[i], IO_WAIT_MS, &res))
			TH_LOG("flood writer %d stuck", i);
		EXPECT_EQ(EIO, res) TH_LOG("flood writer %d: %s", i,
					   strerror(res));
	}

	/* The device can still be taken down, promptly. */
	ASSERT_EQ(0, nbdws_disconnect(&self->nl, self->index))
		TH_LOG("DISCONNECT: %s", self->nl.extack);
	ASSERT_EQ(0, nbdws_wait_gone(self->index, 30000));
	self->connected = false;
}

TEST_HARNESS_MAIN
