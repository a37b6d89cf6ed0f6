// SPDX-License-Identifier: GPL-2.0
/*
 * A server that keeps its TCP connection open and stops answering, on a
 * device connected with NBDWS_CF_NO_TIMEOUT so that nothing in the kernel
 * ever gives up on it by itself: no configuration command may wait for
 * that server. CONNECT returns although the partition scan could not read
 * a sector; with I/O stuck on a device, RECONFIGURE (which resizes the
 * tag set), another device's CONNECT and DISCONNECT, and the stuck
 * device's own DISCONNECT all return within seconds and the stuck I/O
 * fails with EIO; the module unloads with such a device connected, and
 * every device's DISCONNECTED event is still delivered.
 *
 * Every command runs in a child with a deadline, so a kernel that does
 * hang fails the test instead of stopping it.
 */
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "nbdws_test_genl.h"
#include "nbdws_test_server.h"

#define IMG_SIZE	(64 * TU_MIB)
#define SEED		0x7374616c6cULL
#define STALL_OFF	(16 * TU_MIB)
/* "Within seconds", with room for TCG. */
#define CMD_DEADLINE_MS	10000

enum stall_cmd {
	SC_CONNECT,
	SC_DISCONNECT,
	SC_RECONFIGURE_ADD,
	SC_STATUS,
};

/* Shared with the child (MAP_SHARED): what to do, and what came back. */
struct stall_arg {
	enum stall_cmd cmd;
	struct nbdws_connect_args a;
	uint32_t index;
	int fd;
	struct nbdws_dev_status st;
	char extack[256];
};

static int cmd_child(void *p)
{
	struct stall_arg *c = p;
	struct nl nl;
	int ret = -EINVAL;

	if (nl_open(&nl))
		return 250;
	switch (c->cmd) {
	case SC_CONNECT:
		ret = nbdws_connect(&nl, &c->a, &c->index);
		break;
	case SC_DISCONNECT:
		ret = nbdws_disconnect(&nl, c->index);
		break;
	case SC_RECONFIGURE_ADD:
		ret = nbdws_reconfigure(&nl, c->index, 1, &c->fd, NULL, 0);
		break;
	case SC_STATUS:
		ret = nbdws_status(&nl, c->index, &c->st);
		break;
	}
	memcpy(c->extack, nl.extack, sizeof(c->extack));
	nl_close(&nl);
	return -ret;
}

/*
 * Run @c->cmd in a child; 0 or a positive errno from the kernel, or
 * ETIMEDOUT when it did not return within the deadline.
 */
static int run_cmd(struct __test_metadata *_metadata, struct stall_arg *c,
		   const char *what)
{
	long long t0 = tu_now_ms();
	int res = -1;

	if (tu_child_run(cmd_child, c, CMD_DEADLINE_MS, &res)) {
		TH_LOG("%s still running after %d ms", what, CMD_DEADLINE_MS);
		return ETIMEDOUT;
	}
	TH_LOG("%s: %s in %lld ms%s%s", what, res ? strerror(res) : "done",
	       tu_now_ms() - t0, c->extack[0] ? ", " : "", c->extack);
	return res;
}

/* One served connection of @srv, the kernel's end returned. */
static int served_fd(struct ts_server *srv)
{
	int cfd = -1, sfd = -1;

	if (tu_tcp_pair(&cfd, &sfd))
		return -1;
	if (ts_add_conn(srv, sfd)) {
		close(cfd);
		close(sfd);
		return -1;
	}
	return cfd;
}

struct io_arg {
	char path[64];
	uint64_t off;
	bool write;
};

/* One 1 MiB O_DIRECT read or write at @off: 0 or errno. */
static int io_child(void *p)
{
	struct io_arg *a = p;
	void *buf;
	int fd, ret;

	if (posix_memalign(&buf, 4096, TU_MIB))
		return ENOMEM;
	tu_pattern(buf, a->off, TU_MIB, SEED);
	fd = open(a->path, (a->write ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0)
		return errno;
	ret = a->write ? tu_pwrite_full(fd, buf, TU_MIB, a->off) :
			 tu_pread_full(fd, buf, TU_MIB, a->off);
	close(fd);
	free(buf);
	return ret;
}

FIXTURE(stall) {
	struct ts_server stuck, good;
	struct stall_arg *c;
	struct nl ev;
	int index[3];
	pid_t io_pid;
};

FIXTURE_SETUP(stall)
{
	int i;

	for (i = 0; i < 3; i++)
		self->index[i] = -1;
	self->io_pid = -1;
	self->c = mmap(NULL, sizeof(*self->c), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->c);
	ASSERT_EQ(0, ts_init(&self->stuck, IMG_SIZE, SEED));
	ASSERT_EQ(0, ts_init(&self->good, IMG_SIZE, SEED));
	ASSERT_EQ(0, nl_open_events(&self->ev));
}

FIXTURE_TEARDOWN(stall)
{
	char out[512];
	int i;

	/* A test that unloaded the module and failed brings it back. */
	if (access("/sys/module/nbdws", F_OK) && getenv("NBDWS_KO")) {
		char *const argv[] = { "insmod", getenv("NBDWS_KO"), NULL };

		tu_run(argv, 30000, out, sizeof(out));
	}
	for (i = 0; i < 3; i++) {
		struct nl nl;

		if (self->index[i] < 0 || nl_open(&nl))
			continue;
		nbdws_teardown_dev(&nl, self->index[i]);
		nl_close(&nl);
	}
	if (self->io_pid > 0)
		tu_child_wait(self->io_pid, 30000, &i);
	ts_stop(&self->stuck);
	ts_stop(&self->good);
	nl_close(&self->ev);
	munmap(self->c, sizeof(*self->c));
}

/* CONNECT one connection of @srv, no timeout at all; the index or -1. */
static int connect_no_timeout(struct __test_metadata *_metadata,
			      FIXTURE_DATA(stall) *self, struct ts_server *srv,
			      const char *what)
{
	struct stall_arg *c = self->c;
	int fd = served_fd(srv), res;

	if (fd < 0)
		return -1;
	memset(c, 0, sizeof(*c));
	c->cmd = SC_CONNECT;
	nbdws_connect_defaults(&c->a, IMG_SIZE);
	c->a.timeout_ms = 0;
	c->a.client_flags = NBDWS_CF_NO_TIMEOUT;
	c->a.dead_timeout_ms = 600000;
	c->a.nfds = 1;
	c->a.fds[0] = fd;
	res = run_cmd(_metadata, c, what);
	close(fd);
	return res ? -1 : (int)c->index;
}

static int disconnect(struct __test_metadata *_metadata,
		      FIXTURE_DATA(stall) *self, int slot, const char *what)
{
	struct stall_arg *c = self->c;
	int res;

	memset(c, 0, sizeof(*c));
	c->cmd = SC_DISCONNECT;
	c->index = self->index[slot];
	res = run_cmd(_metadata, c, what);
	if (!res)
		self->index[slot] = -1;
	return res;
}

/* Start 1 MiB of I/O at STALL_OFF that the stuck server swallows. */
static void start_stuck_io(struct __test_metadata *_metadata,
			   FIXTURE_DATA(stall) *self, int index, bool write)
{
	static struct io_arg io;
	long long end = tu_deadline(20000);

	io = (struct io_arg){ .off = STALL_OFF, .write = write };
	nbdws_dev_path(index, io.path, sizeof(io.path));
	ASSERT_EQ(0, tu_wait_path(io.path, true, 10000));
	self->io_pid = tu_child_start(io_child, &io);
	ASSERT_LT(0, self->io_pid);
	while (!atomic_load(&self->stuck.triggered) && tu_now_ms() < end)
		tu_msleep(20);
	ASSERT_TRUE(atomic_load(&self->stuck.triggered))
		TH_LOG("the request never reached the server");
}

/* The stuck I/O ends, with EIO, within the deadline. */
static void expect_io_failed(struct __test_metadata *_metadata,
			     FIXTURE_DATA(stall) *self)
{
	int res = -1;

	ASSERT_EQ(0, tu_child_wait(self->io_pid, CMD_DEADLINE_MS, &res))
		TH_LOG("stuck I/O still stuck after DISCONNECT");
	self->io_pid = -1;
	EXPECT_EQ(EIO, res) TH_LOG("stuck I/O: %s", strerror(res));
}

/*
 * The debugfs view of device @index: its state line, and a read in
 * flight on connection 0, since the server swallowed it.
 */
static void expect_inflight_read(struct __test_metadata *_metadata,
				 int index)
{
	static const char state[] =
		"# state 0 live 1 failing 0 disconnecting 0 held 0\n";
	char disk[32], path[96], buf[4096];
	size_t len;
	FILE *f;

	nbdws_disk_name(index, disk, sizeof(disk));
	snprintf(path, sizeof(path), "/sys/kernel/debug/nbdws/%s/inflight",
		 disk);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f) TH_LOG("%s: %s", path, strerror(errno));
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	EXPECT_EQ(0, strncmp(buf, state, strlen(state)))
		TH_LOG("%s:\n%s", path, buf);
	EXPECT_NE(NULL, strstr(buf, "\tread\t")) TH_LOG("%s:\n%s", path, buf);
	EXPECT_NE(NULL, strstr(buf, "\tconn0")) TH_LOG("%s:\n%s", path, buf);
}

/*
 * The first read of the device (the partition scan) is swallowed:
 * CONNECT does not wait for it, debugfs shows it in flight, and
 * DISCONNECT ends the opener stuck in that scan.
 */
TEST_F_TIMEOUT(stall, connect_without_partition_scan, 180)
{
	ts_arm(&self->stuck, TS_STOP_READING, NBDP_CMD_READ, 0);
	self->index[0] = connect_no_timeout(_metadata, self, &self->stuck,
					    "CONNECT, first read swallowed");
	ASSERT_LE(0, self->index[0]);
	/* Opening the device scans it: that read is the one swallowed. */
	start_stuck_io(_metadata, self, self->index[0], false);
	expect_inflight_read(_metadata, self->index[0]);
	ASSERT_EQ(0, disconnect(_metadata, self, 0, "DISCONNECT"));
	expect_io_failed(_metadata, self);
}

/*
 * With a write stuck on the device: RECONFIGURE adding a connection,
 * CONNECT and DISCONNECT of a second device, STATUS, and the stuck
 * device's DISCONNECT all return within seconds.
 */
TEST_F_TIMEOUT(stall, commands_with_stuck_io, 240)
{
	struct stall_arg *c = self->c;
	int fd;

	ts_arm(&self->stuck, TS_STOP_READING, NBDP_CMD_WRITE, STALL_OFF);
	self->index[0] = connect_no_timeout(_metadata, self, &self->stuck,
					    "CONNECT");
	ASSERT_LE(0, self->index[0]);
	start_stuck_io(_metadata, self, self->index[0], true);

	/* A new hardware queue needs the queue frozen: bounded. */
	fd = served_fd(&self->stuck);
	ASSERT_LE(0, fd);
	memset(c, 0, sizeof(*c));
	c->cmd = SC_RECONFIGURE_ADD;
	c->index = self->index[0];
	c->fd = fd;
	EXPECT_EQ(0, run_cmd(_metadata, c, "RECONFIGURE adding a connection"));
	close(fd);

	self->index[1] = connect_no_timeout(_metadata, self, &self->good,
					    "CONNECT of a second device");
	ASSERT_LE(0, self->index[1]);

	memset(c, 0, sizeof(*c));
	c->cmd = SC_STATUS;
	c->index = self->index[0];
	ASSERT_EQ(0, run_cmd(_metadata, c, "STATUS"));
	EXPECT_EQ(NBDWS_DEV_RUNNING, c->st.state);
	ASSERT_EQ(2, c->st.nconns);
	EXPECT_EQ(NBDWS_CONN_ALIVE, c->st.conns[0].state);
	EXPECT_EQ(NBDWS_CONN_ALIVE, c->st.conns[1].state);

	EXPECT_EQ(0, disconnect(_metadata, self, 1,
				"DISCONNECT of the second device"));
	ASSERT_EQ(0, disconnect(_metadata, self, 0, "DISCONNECT"));
	expect_io_failed(_metadata, self);
	EXPECT_EQ(0, nbdws_wait_gone(c->index, CMD_DEADLINE_MS));
}

/*
 * Unload with two devices connected, one on the server that stopped
 * answering (after I/O got stuck on another device of it), one idle on a
 * good server: rmmod returns within seconds, and both devices'
 * DISCONNECTED events go out before the family goes away.
 */
TEST_F_TIMEOUT(stall, rmmod_with_stuck_server, 240)
{
	char *const rmmod[] = { "rmmod", "nbdws", NULL };
	const char *ko = getenv("NBDWS_KO");
	char *const insmod[] = { "insmod", (char *)ko, NULL };
	struct nbdws_event_info ev;
	uint32_t left[2];
	char out[512];
	long long t0;
	int i, ret;

	ASSERT_TRUE(ko && *ko) TH_LOG("NBDWS_KO is not set");

	ts_arm(&self->stuck, TS_STOP_READING, NBDP_CMD_WRITE, STALL_OFF);
	self->index[0] = connect_no_timeout(_metadata, self, &self->stuck,
					    "CONNECT");
	ASSERT_LE(0, self->index[0]);
	self->index[1] = connect_no_timeout(_metadata, self, &self->stuck,
					    "CONNECT on the same server");
	ASSERT_LE(0, self->index[1]);
	self->index[2] = connect_no_timeout(_metadata, self, &self->good,
					    "CONNECT on a good server");
	ASSERT_LE(0, self->index[2]);
	/* The I/O must end before the module can go: DISCONNECT ends it. */
	start_stuck_io(_metadata, self, self->index[0], true);
	ASSERT_EQ(0, disconnect(_metadata, self, 0, "DISCONNECT"));
	expect_io_failed(_metadata, self);

	left[0] = self->index[1];
	left[1] = self->index[2];
	t0 = tu_now_ms();
	ret = tu_run(rmmod, CMD_DEADLINE_MS, out, sizeof(out));
	TH_LOG("rmmod: %d in %lld ms: %s", ret, tu_now_ms() - t0, out);
	ASSERT_EQ(0, ret);
	self->index[1] = -1;
	self->index[2] = -1;

	/* Both devices said goodbye before the family went away. */
	for (i = 0; i < 2; i++) {
		ret = nl_wait_event(&self->ev, left[i],
				    NBDWS_EVENT_DISCONNECTED, 5000, &ev);
		EXPECT_EQ(0, ret) TH_LOG("no DISCONNECTED for nbdws%u; seen: %s",
					 left[i], self->ev.events_seen);
	}
	ASSERT_EQ(0, tu_run(insmod, 30000, out, sizeof(out)))
		TH_LOG("insmod: %s", out);
}

TEST_HARNESS_MAIN
