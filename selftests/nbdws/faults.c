// SPDX-License-Identifier: GPL-2.0
/*
 * Faults: a server that returns errors, one slower than the request
 * timeout, one that dies in the middle of I/O, one connection of two
 * that stops answering, and a server that comes back and is handed to
 * the device again with RECONFIGURE (by hand and by `nbdctl connect
 * --persist`). Every wait is bounded; after a reconnect every write that
 * was acknowledged (fsync returned) must still be there.
 */
#include "kselftest_harness.h"
#include "nbdws_test_genl.h"
#include "nbdws_test_peers.h"
#include "nbdws_test_dev.h"
#include "nbdws_test_server.h"

#define IMG_SIZE	(64 * TU_MIB)
#define SEED_A		0x6661756c7473ULL
#define SEED_B		0x61636b6564ULL

#define R(x)		(1U << NBDWS_REASON_##x)

struct io_arg {
	char path[64];
	uint64_t off;
	size_t len;
	uint64_t seed;
	bool write;
	int loops;		/* writes: repeat until an error, this often */
};

/*
 * O_DIRECT read (checked against pattern @seed) or write of pattern @seed
 * followed by fsync. Returns 0 or the errno of the first failure.
 */
static int io_child(void *p)
{
	struct io_arg *a = p;
	size_t chunk = a->len < TU_MIB ? a->len : TU_MIB;
	void *buf;
	uint64_t off;
	int fd, ret = 0, loop;

	if (posix_memalign(&buf, 4096, chunk))
		return ENOMEM;
	fd = open(a->path, (a->write ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0)
		return errno;
	for (loop = 0; loop < (a->loops ? a->loops : 1) && !ret; loop++) {
		for (off = a->off; off < a->off + a->len && !ret;
		     off += chunk) {
			if (a->write) {
				tu_pattern(buf, off, chunk, a->seed);
				ret = tu_pwrite_full(fd, buf, chunk, off);
			} else {
				ret = tu_pread_full(fd, buf, chunk, off);
				if (!ret && tu_pattern_check(buf, off, chunk,
							     a->seed) != -1)
					ret = EILSEQ;
			}
		}
		if (!ret && a->write && fsync(fd))
			ret = errno;
	}
	close(fd);
	return ret;
}

static int run_io(struct __test_metadata *_metadata, int index, uint64_t off,
		  size_t len, uint64_t seed, bool write)
{
	struct io_arg a = { .off = off, .len = len, .seed = seed,
			    .write = write };
	int res = -1;

	nbdws_dev_path(index, a.path, sizeof(a.path));
	EXPECT_EQ(0, tu_child_run(io_child, &a, 120000, &res))
		TH_LOG("%s at %llu hung", write ? "write" : "read",
		       (unsigned long long)off);
	return res;
}

static bool reason_in(uint32_t r, unsigned int set)
{
	return r < 32 && (set & (1U << r));
}

FIXTURE(faults) {
	struct peer peer;
	struct nl nl, ev;
	int index;
	pid_t helper;		/* nbdctl monitor / --persist */
	char helper_out[400];
};

FIXTURE_SETUP(faults)
{
	self->index = -1;
	ASSERT_EQ(0, nl_open(&self->nl));
	ASSERT_EQ(0, nl_open_events(&self->ev));
}

FIXTURE_TEARDOWN(faults)
{
	if (self->helper > 0)
		tu_kill_reap(self->helper);
	force_disconnect(&self->index);
	peer_stop(&self->peer);
	nl_close(&self->ev);
	nl_close(&self->nl);
}

/* Start a helper (nbdctl monitor/--persist) with output to a file. */
static pid_t start_helper(FIXTURE_DATA(faults) *self, char *const argv[])
{
	int fd;

	snprintf(self->helper_out, sizeof(self->helper_out), "%s/helper.out",
		 self->peer.dir);
	fd = open(self->helper_out, O_WRONLY | O_CREAT | O_TRUNC |
		      O_CLOEXEC, 0644);
	pid_t pid = tu_spawn(argv, fd);

	close(fd);
	return pid;
}

static void read_helper_out(FIXTURE_DATA(faults) *self, char *out,
			    size_t len)
{
	tu_sh(10000, out, len, "cat '%s'", self->helper_out);
}

/* ---- server errors ---------------------------------------------------------- */

TEST_F_TIMEOUT(faults, error_filter_fails_reads_only, 240)
{
	const char *pre[] = { "--filter=error", NULL };
	char trigger[400], arg[420];
	const char *plug[] = { "memory", "64M", "error-pread=EIO",
			       "error-pread-rate=100%", arg, NULL };
	const char *opts[] = { "-t", "20", NULL };
	struct nbdws_dev_status st;
	int fd;

	ASSERT_EQ(0, peer_scratch(&self->peer));
	snprintf(trigger, sizeof(trigger), "%s/inject-errors",
		 self->peer.dir);
	snprintf(arg, sizeof(arg), "error-pread-file=%s", trigger);
	ASSERT_EQ(0, peer_start_nbdkit(&self->peer, false, pre, plug));
	ASSERT_EQ(0, connect_dev(_metadata, opts, self->peer.uri,
				 &self->index));
	ASSERT_EQ(0, run_io(_metadata, self->index, 8 * TU_MIB, 4 * TU_MIB,
			    SEED_B, true));

	/* Now every read the server gets fails. */
	fd = open(trigger, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(EIO, run_io(_metadata, self->index, 8 * TU_MIB, 65536,
			      SEED_B, false));
	ASSERT_EQ(0, run_io(_metadata, self->index, 20 * TU_MIB, 65536,
			    SEED_B, true));
	/* An error reply is not a dead connection. */
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	ASSERT_EQ(1, st.nconns);
	ASSERT_EQ(NBDWS_CONN_ALIVE, st.conns[0].state);
	ASSERT_EQ(NBDWS_DEV_RUNNING, st.state);
	ASSERT_LE(1, st.conns[0].stat[NBDWS_STAT_A_ERRORS]);

	unlink(trigger);
	ASSERT_EQ(0, run_io(_metadata, self->index, 8 * TU_MIB, 4 * TU_MIB,
			    SEED_B, false));
	ASSERT_EQ(0, run_io(_metadata, self->index, 20 * TU_MIB, 65536,
			    SEED_B, false));
	disconnect_dev(_metadata, &self->index);
}

/* ---- a server slower than the timeout ------------------------------------- */

TEST_F_TIMEOUT(faults, delay_beyond_timeout, 240)
{
	const char *pre[] = { "--filter=delay", NULL };
	const char *plug[] = { "memory", "64M", "delay-write=8", NULL };
	const char *opts[] = { "-t", "2", "--dead-timeout", "3", NULL };
	char *mon[] = { (char *)tu_nbdctl(), "-j", "monitor", NULL };
	char out[16384], check[4096];
	struct nbdws_event_info ev = { 0 };
	long long t0, took;
	int ret;

	ASSERT_EQ(0, peer_scratch(&self->peer));
	ASSERT_EQ(0, peer_start_nbdkit(&self->peer, false, pre, plug));
	self->helper = start_helper(self, mon);
	ASSERT_LT(0, self->helper);
	tu_msleep(500);		/* let the monitor subscribe */
	ASSERT_EQ(0, connect_dev(_metadata, opts, self->peer.uri,
				 &self->index));

	/* Reads are quick (the partition scan needs them), writes are not. */
	t0 = tu_now_ms();
	ASSERT_EQ(EIO, run_io(_metadata, self->index, TU_MIB, 65536, SEED_B,
			      true));
	took = tu_now_ms() - t0;
	/* 2 s timeout + 3 s dead hold; anything near a minute is a hang. */
	EXPECT_GT(45000, took) TH_LOG("EIO took %lld ms", took);
	ret = nl_wait_event(&self->ev, self->index, NBDWS_EVENT_CONN_DEAD,
			    10000, &ev);
	ASSERT_EQ(0, ret) TH_LOG("events: %s", self->ev.events_seen);
	ASSERT_EQ(NBDWS_REASON_TIMEOUT, ev.reason);

	/* nbdctl monitor -j saw it too. */
	tu_msleep(500);
	tu_kill_reap(self->helper);
	self->helper = 0;
	read_helper_out(self, out, sizeof(out));
	ret = tu_sh(30000, check, sizeof(check),
		    "/usr/bin/python3 -c '"
		    "import json,sys\n"
		    "evs=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]\n"
		    "assert any(e[\"event\"]==\"conn-dead\" and e[\"index\"]==%d "
		    "and e.get(\"reason\")==\"timeout\" for e in evs), evs' '%s'",
		    self->index, self->helper_out);
	ASSERT_EQ(0, ret) TH_LOG("monitor output: %s / %s", out, check);

	/* A dead device still goes away on request. */
	disconnect_dev(_metadata, &self->index);
}

/*
 * Error replies become block statuses the server cannot choose: ENOSPC
 * and ENOTSUP keep their meaning, everything else is EIO (NBD_ENOMEM
 * would otherwise read as the block layer's own BLK_STS_RESOURCE, and
 * NBD_EOVERFLOW as a zoned-device status). The connection stays up.
 */
TEST_F_TIMEOUT(faults, error_replies_map_to_block_statuses, 180)
{
	static const struct {
		uint32_t nbd;
		bool write;
		int want;
	} c[] = {
		{ NBDP_ENOMEM, false, EIO },
		{ NBDP_ENOMEM, true, EIO },
		{ NBDP_EOVERFLOW, false, EIO },
		{ NBDP_EPERM, true, EIO },
		{ NBDP_EINVAL, false, EIO },
		{ NBDP_ESHUTDOWN, false, EIO },
		{ 1234, false, EIO },
		{ NBDP_ENOSPC, true, ENOSPC },
		{ NBDP_ENOTSUP, true, EOPNOTSUPP },
	};
	struct nbdws_connect_args a;
	struct nbdws_dev_status st;
	struct ts_server srv;
	uint32_t index;
	int cfd = -1, sfd = -1, res;
	size_t i;

	ASSERT_EQ(0, ts_init(&srv, IMG_SIZE, SEED_A));
	srv.mode = TS_ERR_REPLY;
	ASSERT_EQ(0, tu_tcp_pair(&cfd, &sfd));
	ASSERT_EQ(0, ts_add_conn(&srv, sfd));
	nbdws_connect_defaults(&a, IMG_SIZE);
	a.nfds = 1;
	a.fds[0] = cfd;
	ASSERT_EQ(0, nbdws_connect(&self->nl, &a, &index))
		TH_LOG("%s", self->nl.extack);
	self->index = index;
	close(cfd);

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint64_t off = (uint64_t)(i + 1) * TU_MIB;

		srv.err = c[i].nbd;
		ts_arm(&srv, TS_ERR_REPLY,
		       c[i].write ? NBDP_CMD_WRITE : NBDP_CMD_READ, off);
		res = run_io(_metadata, index, off, 65536, SEED_A,
			     c[i].write);
		EXPECT_TRUE(atomic_load(&srv.triggered))
			TH_LOG("case %zu: the request never came", i);
		EXPECT_EQ(c[i].want, res)
			TH_LOG("case %zu: NBD error %u gave %s, want %s", i,
			       c[i].nbd, strerror(res), strerror(c[i].want));
	}
	ASSERT_EQ(0, nbdws_status(&self->nl, index, &st));
	EXPECT_EQ(NBDWS_CONN_ALIVE, st.conns[0].state);
	disconnect_dev(_metadata, &self->index);
	ts_stop(&srv);
}

/* ---- one of two connections stops answering: requeue ---------------------- */

TEST_F_TIMEOUT(faults, requeue_to_live_connection, 240)
{
	struct nbdws_connect_args a;
	struct nbdws_event_info ev = { 0 };
	struct nbdws_dev_status st;
	struct ts_server srv;
	uint32_t index;
	int i, cfd = -1, sfd = -1, res, alive = 0;

	ASSERT_EQ(0, ts_init(&srv, IMG_SIZE, SEED_A));
	/* The first read at 40 MiB is swallowed; the retry is answered. */
	ts_arm(&srv, TS_NO_REPLY, NBDP_CMD_READ, 40 * TU_MIB);
	nbdws_connect_defaults(&a, IMG_SIZE);
	a.timeout_ms = 2000;
	a.dead_timeout_ms = 20000;
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, tu_tcp_pair(&cfd, &sfd));
		ASSERT_EQ(0, ts_add_conn(&srv, sfd));
		a.fds[a.nfds++] = cfd;
	}
	ASSERT_EQ(0, nbdws_connect(&self->nl, &a, &index))
		TH_LOG("%s", self->nl.extack);
	self->index = index;
	for (i = 0; i < a.nfds; i++)
		close(a.fds[i]);

	res = run_io(_metadata, index, 40 * TU_MIB, 65536, SEED_A, false);
	EXPECT_EQ(0, res) TH_LOG("requeued read: %s", strerror(res));
	ASSERT_EQ(0, nl_wait_event(&self->ev, index, NBDWS_EVENT_CONN_DEAD,
				   20000, &ev))
		TH_LOG("events: %s", self->ev.events_seen);
	EXPECT_EQ(NBDWS_REASON_TIMEOUT, ev.reason);
	ASSERT_EQ(0, nbdws_status(&self->nl, index, &st));
	ASSERT_EQ(2, st.nconns);
	for (i = 0; i < 2; i++)
		alive += st.conns[i].state == NBDWS_CONN_ALIVE;
	ASSERT_EQ(1, alive);
	ASSERT_EQ(NBDWS_DEV_RUNNING, st.state);
	/* And the survivor keeps serving. */
	ASSERT_EQ(0, run_io(_metadata, index, 0, TU_MIB, SEED_A, false));
	ASSERT_EQ(0, nbdws_teardown_dev(&self->nl, index));
	self->index = -1;
	ts_stop(&srv);
}

/* ---- the server dies in the middle of I/O ------------------------------------ */

TEST_F_TIMEOUT(faults, server_killed_mid_io, 240)
{
	const char *plug[] = { "memory", "64M", NULL };
	const char *opts[] = { "-t", "5", "--dead-timeout", "3", NULL };
	struct io_arg w = { .off = 0, .len = 32 * TU_MIB, .seed = SEED_B,
			    .write = true, .loops = 50 };
	struct nbdws_event_info ev = { 0 };
	int res = -1;
	pid_t pid;

	ASSERT_EQ(0, peer_scratch(&self->peer));
	ASSERT_EQ(0, peer_start_nbdkit(&self->peer, false, NULL, plug));
	ASSERT_EQ(0, connect_dev(_metadata, opts, self->peer.uri,
				 &self->index));
	nbdws_dev_path(self->index, w.path, sizeof(w.path));
	pid = tu_child_start(io_child, &w);
	ASSERT_LT(0, pid);
	tu_msleep(1500);
	kill(self->peer.pid, SIGKILL);
	tu_wait_pid(self->peer.pid, 5000, NULL);
	self->peer.pid = 0;

	ASSERT_EQ(0, nl_wait_event(&self->ev, self->index,
				   NBDWS_EVENT_CONN_DEAD, 30000, &ev))
		TH_LOG("events: %s", self->ev.events_seen);
	EXPECT_TRUE(reason_in(ev.reason, R(PEER_CLOSED) | R(SOCKET_ERROR)))
		TH_LOG("reason %u", ev.reason);
	ASSERT_EQ(0, tu_child_wait(pid, 60000, &res))
		TH_LOG("writer hung after the server died");
	ASSERT_EQ(EIO, res) TH_LOG("writer: %s", strerror(res));
	disconnect_dev(_metadata, &self->index);
}

/* ---- reconnect -------------------------------------------------------------------- */

static int restart_nbdkit_file(struct peer *p)
{
	char port[16];
	char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-i",
			 "127.0.0.1", "-p", port, "file", p->image, NULL };

	snprintf(port, sizeof(port), "%d", p->port);
	p->pid = peer_spawn_logged(p, argv);
	if (p->pid < 0)
		return -errno;
	return tu_wait_listen(p->port, 30000);
}

static void kill_server(struct peer *p)
{
	kill(p->pid, SIGKILL);
	tu_wait_pid(p->pid, 5000, NULL);
	p->pid = 0;
}

/*
 * Acknowledged writes before the server dies and while it is away (held),
 * checked through the device after the reconnect and in the backing file
 * after the disconnect.
 */
static void check_after_reconnect(struct __test_metadata *_metadata,
				  FIXTURE_DATA(faults) *self)
{
	uint8_t *expect = malloc(IMG_SIZE);
	long long diff;

	ASSERT_EQ(0, run_io(_metadata, self->index, 4 * TU_MIB, 4 * TU_MIB,
			    SEED_B, false));
	ASSERT_EQ(0, run_io(_metadata, self->index, 16 * TU_MIB, TU_MIB,
			    SEED_B, false));
	ASSERT_EQ(0, run_io(_metadata, self->index, 32 * TU_MIB, TU_MIB,
			    SEED_B, true));
	disconnect_dev(_metadata, &self->index);
	tu_pattern(expect, 0, IMG_SIZE, SEED_A);
	tu_pattern(expect + 4 * TU_MIB, 4 * TU_MIB, 4 * TU_MIB, SEED_B);
	tu_pattern(expect + 16 * TU_MIB, 16 * TU_MIB, TU_MIB, SEED_B);
	tu_pattern(expect + 32 * TU_MIB, 32 * TU_MIB, TU_MIB, SEED_B);
	diff = file_vs_buf(self->peer.image, expect, IMG_SIZE);
	ASSERT_EQ(-1, diff) TH_LOG("backing file differs at %lld", diff);
	free(expect);
}

TEST_F_TIMEOUT(faults, reconnect_with_reconfigure, 300)
{
	const char *opts[] = { "-t", "3", "--dead-timeout", "90", NULL };
	struct io_arg held = { .off = 16 * TU_MIB, .len = TU_MIB,
			       .seed = SEED_B, .write = true };
	struct nbdws_event_info ev = { 0 };
	char dev[64], out[4096];
	int res = -1, rc;
	pid_t pid;

	ASSERT_EQ(0, peer_start(&self->peer, PEER_NBDKIT_FILE, IMG_SIZE,
				SEED_A));
	ASSERT_EQ(0, connect_dev(_metadata, opts, self->peer.uri,
				 &self->index));
	nbdws_dev_path(self->index, dev, sizeof(dev));
	ASSERT_EQ(0, run_io(_metadata, self->index, 4 * TU_MIB, 4 * TU_MIB,
			    SEED_B, true));

	/* The kernel sees the EOF without any I/O to provoke it. */
	kill_server(&self->peer);
	ASSERT_EQ(0, nl_wait_event(&self->ev, self->index,
				   NBDWS_EVENT_CONN_DEAD, 30000, &ev))
		TH_LOG("events: %s", self->ev.events_seen);

	/* A write issued while no connection is alive is held... */
	strcpy(held.path, dev);
	pid = tu_child_start(io_child, &held);
	ASSERT_LT(0, pid);
	tu_msleep(1000);
	ASSERT_EQ(0, waitpid(pid, NULL, WNOHANG))
		TH_LOG("held write finished before the reconnect");

	/* ...and completes on the connection RECONFIGURE brings. */
	ASSERT_EQ(0, restart_nbdkit_file(&self->peer));
	rc = tu_sh(120000, out, sizeof(out), "%s reconfigure %s --add '%s'",
		   tu_nbdctl(), dev, self->peer.uri);
	ASSERT_EQ(0, rc) TH_LOG("nbdctl reconfigure: %s", out);
	ASSERT_EQ(0, nl_wait_event(&self->ev, self->index,
				   NBDWS_EVENT_RECONNECTED, 30000, &ev))
		TH_LOG("events: %s", self->ev.events_seen);
	ASSERT_EQ(0, tu_child_wait(pid, 60000, &res));
	ASSERT_EQ(0, res) TH_LOG("held write: %s", strerror(res));
	check_after_reconnect(_metadata, self);
}

TEST_F_TIMEOUT(faults, persist_reconnects, 300)
{
	char *argv[16];
	char out[4096], dev[64];
	struct nbdws_event_info ev = { 0 };
	long long end;
	int i = 0, res = -1;

	ASSERT_EQ(0, peer_start(&self->peer, PEER_NBDKIT_FILE, IMG_SIZE,
				SEED_A));
	argv[i++] = (char *)tu_nbdctl();
	argv[i++] = "connect";
	argv[i++] = "--persist";
	argv[i++] = "-t";
	argv[i++] = "3";
	argv[i++] = "--dead-timeout";
	argv[i++] = "90";
	argv[i++] = self->peer.uri;
	argv[i] = NULL;
	self->helper = start_helper(self, argv);
	ASSERT_LT(0, self->helper);
	/* It prints the device, then stays to keep it connected. */
	end = tu_deadline(120000);
	do {
		tu_msleep(200);
		read_helper_out(self, out, sizeof(out));
		self->index = tu_find_disk_index(out);
	} while (self->index < 0 && tu_now_ms() < end &&
		 waitpid(self->helper, NULL, WNOHANG) == 0);
	ASSERT_LE(0, self->index) TH_LOG("nbdctl --persist: %s", out);
	nbdws_dev_path(self->index, dev, sizeof(dev));
	ASSERT_EQ(0, tu_wait_path(dev, true, 10000));
	ASSERT_EQ(0, run_io(_metadata, self->index, 4 * TU_MIB, 4 * TU_MIB,
			    SEED_B, true));

	kill_server(&self->peer);
	ASSERT_EQ(0, nl_wait_event(&self->ev, self->index,
				   NBDWS_EVENT_CONN_DEAD, 30000, &ev))
		TH_LOG("events: %s", self->ev.events_seen);
	ASSERT_EQ(0, restart_nbdkit_file(&self->peer));
	ASSERT_EQ(0, nl_wait_event(&self->ev, self->index,
				   NBDWS_EVENT_RECONNECTED, 60000, &ev))
		TH_LOG("nbdctl --persist did not reconnect; events: %s",
		       self->ev.events_seen);
	ASSERT_EQ(0, run_io(_metadata, self->index, 16 * TU_MIB, TU_MIB,
			    SEED_B, true));
	check_after_reconnect(_metadata, self);
	/* The device is gone: --persist has nothing left to do. */
	ASSERT_EQ(0, tu_wait_pid(self->helper, 30000, &res))
		TH_LOG("nbdctl --persist still running after disconnect");
	self->helper = 0;
}

TEST_HARNESS_MAIN
