// SPDX-License-Identifier: GPL-2.0
/*
 * The "nbdws" generic netlink contract, checked with raw messages built
 * by hand (libmnl): who may call what, what a valid CONNECT answers,
 * which events it raises, and that every malformed request is refused
 * with a specific errno plus an extack message and leaves no device
 * behind. The NBD peer is the in-process scripted server (served
 * correctly here), so these tests need no external program.
 */
#include <grp.h>
#include <sched.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/fs.h>

#include "kselftest_harness.h"
#include "nbdws_test_genl.h"
#include "nbdws_test_server.h"

#define IMG_SIZE	(64 * TU_MIB)
#define IMG_SEED	0x6e6c696e6bULL

/* ---- fixtures ------------------------------------------------------------ */

/* A served connection ready to hand to the kernel. */
static int served_fd(struct ts_server *srv)
{
	int cfd = -1, sfd = -1, ret = tu_tcp_pair(&cfd, &sfd);

	if (ret)
		return ret;
	ret = ts_add_conn(srv, sfd);
	if (ret) {
		close(cfd);
		close(sfd);
		return ret;
	}
	return cfd;
}

/*
 * CONNECT @a over one freshly served connection (the kernel keeps its
 * own reference to the socket); the new device's index and disk name
 * come back. 0 or -errno, the extack message in nl->extack.
 */
static int connect_served(struct nl *nl, struct ts_server *srv,
			  struct nbdws_connect_args *a, uint32_t *index,
			  char *disk, size_t len)
{
	int ret;

	a->nfds = 1;
	a->fds[0] = served_fd(srv);
	if (a->fds[0] < 0)
		return a->fds[0];
	ret = nbdws_connect(nl, a, index);
	close(a->fds[0]);
	if (!ret)
		nbdws_disk_name(*index, disk, len);
	return ret;
}

/* Rejection tests: a netlink socket and a server, no device. */
FIXTURE(reject) {
	struct nl nl;
	struct ts_server srv;
	int ndev_before;
};

FIXTURE_SETUP(reject)
{
	struct nbdws_dev_status st;

	ASSERT_EQ(0, nl_open(&self->nl));
	ASSERT_EQ(0, ts_init(&self->srv, IMG_SIZE, IMG_SEED));
	ASSERT_EQ(0, nbdws_status_all(&self->nl, &st));
	self->ndev_before = st.ndevices;
}

FIXTURE_TEARDOWN(reject)
{
	struct nbdws_dev_status st;
	int i;

	/* A CONNECT that wrongly succeeded must not outlive the test. */
	if (!nbdws_status_all(&self->nl, &st) &&
	    st.ndevices > self->ndev_before)
		for (i = 0; i < st.ndevices && i < 64; i++)
			nbdws_teardown_dev(&self->nl, st.indices[i]);
	ts_stop(&self->srv);
	nl_close(&self->nl);
}

/* One live device on the scripted server. */
FIXTURE(dev) {
	struct nl nl;
	struct ts_server srv;
	struct nbdws_connect_args args;
	uint32_t index;
	bool connected;
	char path[64], disk[32];
};

FIXTURE_SETUP(dev)
{
	int fd;

	ASSERT_EQ(0, nl_open(&self->nl));
	ASSERT_EQ(0, ts_init(&self->srv, IMG_SIZE, IMG_SEED));
	fd = served_fd(&self->srv);
	ASSERT_LE(0, fd);
	nbdws_connect_defaults(&self->args, IMG_SIZE);
	self->args.nfds = 1;
	self->args.fds[0] = fd;
	ASSERT_EQ(0, nbdws_connect(&self->nl, &self->args, &self->index))
		TH_LOG("CONNECT: %s", self->nl.extack);
	self->connected = true;
	close(fd);	/* the kernel holds its own reference */
	nbdws_dev_path(self->index, self->path, sizeof(self->path));
	nbdws_disk_name(self->index, self->disk, sizeof(self->disk));
	ASSERT_EQ(0, tu_wait_path(self->path, true, 10000))
		TH_LOG("%s did not appear", self->path);
}

FIXTURE_TEARDOWN(dev)
{
	if (self->connected)
		EXPECT_EQ(0, nbdws_teardown_dev(&self->nl, self->index));
	ts_stop(&self->srv);
	nl_close(&self->nl);
}

/* Read 64 KiB at @off through the device in a child; 0 or errno. */
struct read_arg {
	const char *path;
	uint64_t off;
};

static int read_check_child(void *p)
{
	struct read_arg *a = p;
	void *buf;
	int fd, ret;

	if (posix_memalign(&buf, 4096, 65536))
		return ENOMEM;
	fd = open(a->path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return errno;
	ret = tu_pread_full(fd, buf, 65536, a->off);
	close(fd);
	if (!ret && tu_pattern_check(buf, a->off, 65536, IMG_SEED) != -1)
		ret = EILSEQ;	/* wrong bytes */
	return ret;
}

/* ---- privileges ------------------------------------------------------------ */

enum drop_mode {
	DROP_ALL_CAPS,		/* uid 0, empty capability sets */
	DROP_KEEP_NET_ADMIN,	/* uid 0, only CAP_NET_ADMIN */
	DROP_TO_NOBODY,		/* uid/gid 65534, no capabilities */
};

static int drop_privileges(enum drop_mode mode)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2] = { { 0 } };

	if (mode == DROP_TO_NOBODY) {
		if (prctl(PR_SET_KEEPCAPS, 0) || setgroups(0, NULL) ||
		    setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			return -1;
	} else {
		if (mode == DROP_KEEP_NET_ADMIN) {
			d[0].effective = 1U << CAP_NET_ADMIN;
			d[0].permitted = 1U << CAP_NET_ADMIN;
		}
		if (syscall(SYS_capset, &h, d))
			return -1;
	}
	/* Make sure the drop took: no CAP_SYS_ADMIN left. */
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d))
		return -1;
	return d[0].effective & (1U << CAP_SYS_ADMIN) ? -1 : 0;
}

struct priv_arg {
	enum drop_mode mode;
	int cmd;
	uint32_t index;
	int fd;			/* CONNECT / RECONFIGURE socket */
};

/* In a child: drop privileges, then try @cmd; returns the errno seen. */
static int priv_child(void *p)
{
	struct priv_arg *a = p;
	struct nbdws_connect_args args;
	struct nbdws_dev_status st;
	struct nl nl;
	uint32_t idx;
	int ret;

	if (drop_privileges(a->mode))
		return 250;
	if (nl_open(&nl))
		return 251;
	switch (a->cmd) {
	case NBDWS_CMD_CONNECT:
		nbdws_connect_defaults(&args, IMG_SIZE);
		args.nfds = 1;
		args.fds[0] = a->fd;
		ret = nbdws_connect(&nl, &args, &idx);
		break;
	case NBDWS_CMD_DISCONNECT:
		ret = nbdws_disconnect(&nl, a->index);
		break;
	case NBDWS_CMD_RECONFIGURE:
		ret = nbdws_reconfigure(&nl, a->index, a->fd >= 0,
					&a->fd, NULL, 7000);
		break;
	case NBDWS_CMD_STATUS:
		ret = nbdws_status(&nl, a->index, &st);
		if (!ret && (!st.has_index || st.index != a->index ||
			     st.size != IMG_SIZE))
			ret = -EBADMSG;
		break;
	default:
		ret = -EINVAL;
	}
	nl_close(&nl);
	return -ret;
}

static void run_priv(struct __test_metadata *_metadata, struct priv_arg *a,
		     int expected)
{
	int res = -1;

	ASSERT_EQ(0, tu_child_run(priv_child, a, 60000, &res));
	ASSERT_NE(250, res) TH_LOG("could not drop privileges");
	ASSERT_NE(251, res) TH_LOG("netlink socket unusable without caps");
	ASSERT_EQ(expected, res) TH_LOG("cmd %d mode %d: got %s", a->cmd,
					a->mode, strerror(res));
}

/* A mutating command refused must not have changed the device. */
static void assert_dev_intact(struct __test_metadata *_metadata,
			      FIXTURE_DATA(dev) *self)
{
	struct nbdws_dev_status st;

	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	ASSERT_EQ(1, st.nconns);
	ASSERT_EQ(NBDWS_CONN_ALIVE, st.conns[0].state);
	ASSERT_EQ(NBDWS_DEV_RUNNING, st.state);
	ASSERT_TRUE(tu_disk_exists(self->disk));
}

TEST_F_TIMEOUT(reject, connect_needs_cap_sys_admin, 120)
{
	struct priv_arg a = { .cmd = NBDWS_CMD_CONNECT };
	struct nbdws_dev_status st;

	a.fd = served_fd(&self->srv);
	ASSERT_LE(0, a.fd);
	a.mode = DROP_ALL_CAPS;
	run_priv(_metadata, &a, EPERM);
	a.mode = DROP_KEEP_NET_ADMIN;
	run_priv(_metadata, &a, EPERM);
	a.mode = DROP_TO_NOBODY;
	run_priv(_metadata, &a, EPERM);
	ASSERT_EQ(0, nbdws_status_all(&self->nl, &st));
	ASSERT_EQ(self->ndev_before, st.ndevices);
	close(a.fd);
}

TEST_F_TIMEOUT(dev, disconnect_needs_cap_sys_admin, 120)
{
	struct priv_arg a = { .cmd = NBDWS_CMD_DISCONNECT, .fd = -1,
			      .index = self->index };

	a.mode = DROP_ALL_CAPS;
	run_priv(_metadata, &a, EPERM);
	a.mode = DROP_KEEP_NET_ADMIN;
	run_priv(_metadata, &a, EPERM);
	a.mode = DROP_TO_NOBODY;
	run_priv(_metadata, &a, EPERM);
	assert_dev_intact(_metadata, self);
}

TEST_F_TIMEOUT(dev, reconfigure_needs_cap_sys_admin, 120)
{
	struct priv_arg a = { .cmd = NBDWS_CMD_RECONFIGURE,
			      .index = self->index };

	a.fd = served_fd(&self->srv);
	ASSERT_LE(0, a.fd);
	a.mode = DROP_ALL_CAPS;
	run_priv(_metadata, &a, EPERM);
	a.mode = DROP_KEEP_NET_ADMIN;
	run_priv(_metadata, &a, EPERM);
	a.mode = DROP_TO_NOBODY;
	run_priv(_metadata, &a, EPERM);
	close(a.fd);
	assert_dev_intact(_metadata, self);
}

TEST_F_TIMEOUT(dev, status_allowed_unprivileged, 120)
{
	struct priv_arg a = { .cmd = NBDWS_CMD_STATUS, .fd = -1,
			      .index = self->index };

	a.mode = DROP_ALL_CAPS;
	run_priv(_metadata, &a, 0);
	a.mode = DROP_TO_NOBODY;
	run_priv(_metadata, &a, 0);
}

/* ---- a valid CONNECT ------------------------------------------------------ */

TEST_F_TIMEOUT(dev, connect_reply_and_status, 120)
{
	struct nbdws_dev_status st, all;
	struct read_arg ra = { .path = self->path, .off = 3 * TU_MIB };
	int res = -1;
	bool found = false;
	int i;

	ASSERT_EQ(IMG_SIZE, tu_sysfs_size(self->disk));
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st))
		TH_LOG("STATUS: %s", self->nl.extack);
	ASSERT_TRUE(st.has_index);
	ASSERT_EQ(self->index, st.index);
	ASSERT_EQ(IMG_SIZE, st.size);
	ASSERT_EQ(NBDWS_DEV_RUNNING, st.state);
	ASSERT_EQ(0, strcmp(st.disk, self->disk)) TH_LOG("disk '%s'", st.disk);
	ASSERT_EQ(1, st.nconns);
	ASSERT_EQ(NBDWS_CONN_ALIVE, st.conns[0].state);
	ASSERT_TRUE(st.conns[0].has_stats);

	/* Data really comes from the server, and the counters see it. */
	ASSERT_EQ(0, tu_child_run(read_check_child, &ra, 60000, &res));
	ASSERT_EQ(0, res) TH_LOG("read: %s", strerror(res));
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	ASSERT_LE(1, st.conns[0].stat[NBDWS_STAT_A_READS]);
	ASSERT_LE(65536, st.conns[0].stat[NBDWS_STAT_A_READ_BYTES]);
	ASSERT_EQ(0, st.conns[0].stat[NBDWS_STAT_A_ERRORS]);

	/* The dump lists it too. */
	ASSERT_EQ(0, nbdws_status_all(&self->nl, &all));
	for (i = 0; i < all.ndevices && i < 64; i++)
		found |= all.indices[i] == self->index;
	ASSERT_TRUE(found);
}

/*
 * Known I/O from each CPU in turn (so that per-CPU counters are summed),
 * one read of them answered with an error. PASS_* are the requests each
 * pass sends; the NBD request that carries each is deterministic for
 * O_DIRECT I/O one call at a time.
 */
#define PASS_READS	4
#define PASS_WRITES	2
#define IO_LEN		8192
#define ERR_OFF		(40 * TU_MIB)
#define MAX_PASSES	2

struct known_io_arg {
	const char *path;
	int passes;
};

static int known_io_child(void *p)
{
	struct known_io_arg *a = p;
	void *buf;
	int fd, pass, i, ret = 0;

	if (posix_memalign(&buf, 4096, IO_LEN))
		return ENOMEM;
	fd = open(a->path, O_RDWR | O_DIRECT);
	if (fd < 0)
		return errno;
	for (pass = 0; pass < a->passes && !ret; pass++) {
		uint64_t base = (uint64_t)(8 + pass) * TU_MIB;
		uint64_t range[2] = { base + TU_MIB / 2, 4096 };
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(pass, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			ret = errno;
			break;
		}
		for (i = 0; i < PASS_READS && !ret; i++) {
			ret = tu_pread_full(fd, buf, IO_LEN, base + i * IO_LEN);
			if (!ret && tu_pattern_check(buf, base + i * IO_LEN,
						     IO_LEN, IMG_SEED) != -1)
				ret = EILSEQ;
		}
		for (i = 0; i < PASS_WRITES && !ret; i++) {
			memset(buf, 0x40 + i, IO_LEN);
			ret = tu_pwrite_full(fd, buf, IO_LEN,
					     base + TU_MIB / 4 + i * IO_LEN);
		}
		if (!ret && fdatasync(fd))
			ret = errno;
		if (!ret && ioctl(fd, BLKDISCARD, range))
			ret = errno;
		range[0] += 4096;
		if (!ret && ioctl(fd, BLKZEROOUT, range))
			ret = errno;
	}
	/* The server answers this one with an error: EIO, counted. */
	if (!ret) {
		ssize_t n = pread(fd, buf, 4096, ERR_OFF);

		ret = n < 0 && errno == EIO ? 0 : EPROTO;
	}
	close(fd);
	free(buf);
	return ret;
}

/* Requests of @type the scripted server has been sent on connection 0. */
static uint64_t served(struct ts_server *srv, int type)
{
	return atomic_load(&srv->conns[0].reqs[type]);
}

TEST_F_TIMEOUT(dev, status_counts_each_request, 120)
{
	static const struct {
		int stat, type;
	} by_type[] = {
		{ NBDWS_STAT_A_READS, NBDP_CMD_READ },
		{ NBDWS_STAT_A_WRITES, NBDP_CMD_WRITE },
		{ NBDWS_STAT_A_FLUSHES, NBDP_CMD_FLUSH },
		{ NBDWS_STAT_A_TRIMS, NBDP_CMD_TRIM },
		{ NBDWS_STAT_A_WRITE_ZEROES, NBDP_CMD_WRITE_ZEROES },
	};
	struct read_arg ra = { .path = self->path, .off = 0 };
	struct known_io_arg ka = { .path = self->path };
	uint64_t srv0[ARRAY_SIZE(by_type)];
	struct nbdws_dev_status st0, st1;
	const uint64_t *s0, *s1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int res = -1;
	unsigned int i;

	/* The first open scans for partitions: get that out of the way. */
	ASSERT_EQ(0, tu_child_run(read_check_child, &ra, 60000, &res));
	ASSERT_EQ(0, res) TH_LOG("read: %s", strerror(res));

	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st0));
	for (i = 0; i < ARRAY_SIZE(by_type); i++)
		srv0[i] = served(&self->srv, by_type[i].type);
	self->srv.mode = TS_ERR_REPLY;
	self->srv.trig_type = NBDP_CMD_READ;
	self->srv.trig_off = ERR_OFF;
	self->srv.err = NBDP_EIO;

	ka.passes = ncpu < MAX_PASSES ? 1 : MAX_PASSES;
	ASSERT_EQ(0, tu_child_run(known_io_child, &ka, 60000, &res));
	ASSERT_EQ(0, res) TH_LOG("I/O: %s", strerror(res));
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st1));
	s0 = st0.conns[0].stat;
	s1 = st1.conns[0].stat;

	/* Every request the server was sent is counted, by its type... */
	for (i = 0; i < ARRAY_SIZE(by_type); i++)
		EXPECT_EQ(served(&self->srv, by_type[i].type) - srv0[i],
			  s1[by_type[i].stat] - s0[by_type[i].stat])
			TH_LOG("stat %d", by_type[i].stat);
	/* ... and is exactly what the test did, error reply included. */
	EXPECT_EQ(ka.passes * PASS_READS + 1,
		  s1[NBDWS_STAT_A_READS] - s0[NBDWS_STAT_A_READS]);
	EXPECT_EQ(ka.passes * PASS_WRITES,
		  s1[NBDWS_STAT_A_WRITES] - s0[NBDWS_STAT_A_WRITES]);
	EXPECT_LE(ka.passes, s1[NBDWS_STAT_A_FLUSHES] - s0[NBDWS_STAT_A_FLUSHES]);
	EXPECT_EQ(ka.passes, s1[NBDWS_STAT_A_TRIMS] - s0[NBDWS_STAT_A_TRIMS]);
	EXPECT_EQ(ka.passes,
		  s1[NBDWS_STAT_A_WRITE_ZEROES] - s0[NBDWS_STAT_A_WRITE_ZEROES]);
	/* Bytes that moved: the failed read moved none. */
	EXPECT_EQ((uint64_t)ka.passes * PASS_READS * IO_LEN,
		  s1[NBDWS_STAT_A_READ_BYTES] - s0[NBDWS_STAT_A_READ_BYTES]);
	EXPECT_EQ((uint64_t)ka.passes * PASS_WRITES * IO_LEN,
		  s1[NBDWS_STAT_A_WRITE_BYTES] - s0[NBDWS_STAT_A_WRITE_BYTES]);
	EXPECT_EQ(1, s1[NBDWS_STAT_A_ERRORS] - s0[NBDWS_STAT_A_ERRORS]);
	EXPECT_EQ(0, s1[NBDWS_STAT_A_TIMEOUTS]);
	EXPECT_EQ(0, s1[NBDWS_STAT_A_RECONNECTS]);
	/* All of it completed; the peak saw at least one request. */
	EXPECT_EQ(0, s1[NBDWS_STAT_A_INFLIGHT]);
	EXPECT_LE(1, s1[NBDWS_STAT_A_INFLIGHT_PEAK]);
	EXPECT_LE(s0[NBDWS_STAT_A_INFLIGHT_PEAK],
		  s1[NBDWS_STAT_A_INFLIGHT_PEAK]);
	EXPECT_EQ(NBDWS_CONN_ALIVE, st1.conns[0].state);
}

TEST_F_TIMEOUT(dev, second_device_gets_another_index, 120)
{
	struct nbdws_connect_args a = self->args;
	uint32_t idx2 = ~0U;
	char disk2[32];

	ASSERT_EQ(0, connect_served(&self->nl, &self->srv, &a, &idx2, disk2,
				    sizeof(disk2)))
		TH_LOG("%s", self->nl.extack);
	EXPECT_NE(self->index, idx2);
	EXPECT_TRUE(tu_disk_exists(disk2));
	ASSERT_EQ(0, nbdws_teardown_dev(&self->nl, idx2));
	ASSERT_FALSE(tu_disk_exists(disk2));
	ASSERT_TRUE(tu_disk_exists(self->disk));
}

/*
 * What the export advertises shapes the queue: block sizes become the
 * logical and physical block size, ROTATIONAL and READ_ONLY are honoured,
 * and a non-rotational export gets no elevator while a rotational one
 * keeps the block layer's default (mq-deadline for one connection).
 */
/*
 * Queue limits follow the export; a read-only device, whether the server
 * or the client says so, advertises neither discard nor write zeroes.
 */
TEST_F_TIMEOUT(reject, queue_follows_export, 120)
{
	static const struct {
		uint32_t bs_min, bs_pref, flags, client_flags;
		const char *lbs, *pbs, *rot, *ro, *sched;
	} c[] = {
		{ 512, 4096, 0, 0, "512", "4096", "0", "0", "[none]" },
		{ 4096, 16384, NBDP_FLAG_ROTATIONAL | NBDP_FLAG_READ_ONLY, 0,
		  "4096", "16384", "1", "1", "[mq-deadline]" },
		{ 512, 4096, 0, NBDWS_CF_READ_ONLY,
		  "512", "4096", "0", "1", "[none]" },
	};
	static const char *const wr_limits[] = {
		"queue/discard_max_bytes", "queue/discard_max_hw_bytes",
		"queue/write_zeroes_max_bytes",
	};
	struct nbdws_connect_args a;
	char disk[32], text[256];
	uint32_t index;
	size_t i, k;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		nbdws_connect_defaults(&a, IMG_SIZE);
		a.bs_min = c[i].bs_min;
		a.bs_pref = c[i].bs_pref;
		a.server_flags |= c[i].flags;
		a.client_flags = c[i].client_flags;
		ASSERT_EQ(0, connect_served(&self->nl, &self->srv, &a, &index,
					    disk, sizeof(disk)))
			TH_LOG("CONNECT: %s", self->nl.extack);

		ASSERT_EQ(0, tu_disk_attr(disk, "queue/logical_block_size",
					  text, sizeof(text)));
		EXPECT_STREQ(c[i].lbs, text);
		ASSERT_EQ(0, tu_disk_attr(disk, "queue/physical_block_size",
					  text, sizeof(text)));
		EXPECT_STREQ(c[i].pbs, text);
		ASSERT_EQ(0, tu_disk_attr(disk, "queue/rotational", text,
					  sizeof(text)));
		EXPECT_STREQ(c[i].rot, text);
		ASSERT_EQ(0, tu_disk_attr(disk, "queue/scheduler", text,
					  sizeof(text)));
		EXPECT_NE(NULL, strstr(text, c[i].sched))
			TH_LOG("scheduler: %s", text);
		ASSERT_EQ(0, tu_disk_attr(disk, "ro", text, sizeof(text)));
		EXPECT_STREQ(c[i].ro, text);
		/* TRIM and WRITE_ZEROES are offered by the server each time. */
		for (k = 0; k < sizeof(wr_limits) / sizeof(wr_limits[0]); k++) {
			ASSERT_EQ(0, tu_disk_attr(disk, wr_limits[k], text,
						  sizeof(text)));
			if (!strcmp(c[i].ro, "1")) {
				EXPECT_STREQ("0", text)
					TH_LOG("case %zu: %s", i, wr_limits[k]);
			} else {
				EXPECT_STRNE("0", text)
					TH_LOG("case %zu: %s", i, wr_limits[k]);
			}
		}
		ASSERT_EQ(0, nbdws_teardown_dev(&self->nl, index));
	}
}

TEST_F_TIMEOUT(reject, events_connected_and_disconnected, 120)
{
	struct nbdws_connect_args a;
	struct nbdws_event_info ev = { 0 };
	struct nl evs;
	uint32_t idx;
	int ret;

	ASSERT_EQ(0, nl_open_events(&evs));
	nbdws_connect_defaults(&a, IMG_SIZE);
	a.nfds = 1;
	a.fds[0] = served_fd(&self->srv);
	ASSERT_LE(0, a.fds[0]);
	ASSERT_EQ(0, nbdws_connect(&self->nl, &a, &idx));
	close(a.fds[0]);
	ret = nl_wait_event(&evs, idx, NBDWS_EVENT_CONNECTED, 20000, &ev);
	EXPECT_EQ(0, ret) TH_LOG("no CONNECTED event; seen: %s",
				 evs.events_seen);
	ASSERT_EQ(0, nbdws_disconnect(&self->nl, idx));
	ret = nl_wait_event(&evs, idx, NBDWS_EVENT_DISCONNECTED, 20000, &ev);
	EXPECT_EQ(0, ret) TH_LOG("no DISCONNECTED event; seen: %s",
				 evs.events_seen);
	ASSERT_EQ(0, nbdws_wait_gone(idx, 20000));
	/* DISCONNECT of a device that is gone: ENODEV, said why. */
	ASSERT_EQ(-ENODEV, nbdws_disconnect(&self->nl, idx));
	ASSERT_TRUE(self->nl.has_extack);
	nl_close(&evs);
}

/* ---- RECONFIGURE on a live device ------------------------------------------- */

TEST_F_TIMEOUT(dev, reconfigure_timeout, 120)
{
	struct nbdws_dev_status st;

	ASSERT_EQ(0, nbdws_reconfigure(&self->nl, self->index, 0, NULL, NULL,
				       7000)) TH_LOG("%s", self->nl.extack);
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	ASSERT_EQ(7000, st.timeout_ms);
}

TEST_F_TIMEOUT(dev, reconfigure_adds_connection, 120)
{
	struct read_arg ra = { .path = self->path };
	struct nbdws_dev_status st;
	int fd = served_fd(&self->srv), res = -1, i;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, nbdws_reconfigure(&self->nl, self->index, 1, &fd, NULL,
				       0)) TH_LOG("%s", self->nl.extack);
	close(fd);
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	ASSERT_EQ(2, st.nconns);
	ASSERT_EQ(NBDWS_CONN_ALIVE, st.conns[0].state);
	ASSERT_EQ(NBDWS_CONN_ALIVE, st.conns[1].state);
	/* Both still serve correct data. */
	for (i = 0; i < 8; i++) {
		ra.off = (uint64_t)i * 4 * TU_MIB;
		ASSERT_EQ(0, tu_child_run(read_check_child, &ra, 60000, &res));
		ASSERT_EQ(0, res) TH_LOG("read at %llu: %s",
					 (unsigned long long)ra.off,
					 strerror(res));
	}
}

/*
 * Only a dead connection may be replaced: a live one is refused (with a
 * reason), a dead one is taken over by the new socket and I/O resumes.
 */
TEST_F_TIMEOUT(dev, reconfigure_replaces_connection, 120)
{
	struct read_arg ra = { .path = self->path, .off = 5 * TU_MIB };
	struct nbdws_dev_status st;
	int fd = served_fd(&self->srv), id, res = -1, ret;
	long long end;
	uint64_t before;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	id = st.conns[0].id;
	ret = nbdws_reconfigure(&self->nl, self->index, 1, &fd, &id, 0);
	ASSERT_EQ(-EBUSY, ret) TH_LOG("replacing a live connection: %d %s",
				      ret, self->nl.extack);
	ASSERT_TRUE(self->nl.has_extack);

	/* The server hangs up on the device's connection. */
	shutdown(self->srv.conns[0].fd, SHUT_RDWR);
	end = tu_deadline(20000);
	do {
		tu_msleep(20);
		ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	} while (st.conns[0].state != NBDWS_CONN_DEAD && tu_now_ms() < end);
	ASSERT_EQ(NBDWS_CONN_DEAD, st.conns[0].state);
	EXPECT_EQ(NBDWS_REASON_PEER_CLOSED, st.conns[0].reason);

	ASSERT_EQ(0, nbdws_reconfigure(&self->nl, self->index, 1, &fd, &id,
				       0)) TH_LOG("%s", self->nl.extack);
	close(fd);
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	ASSERT_EQ(1, st.nconns);
	ASSERT_EQ(NBDWS_CONN_ALIVE, st.conns[0].state);
	/* I/O now goes through the new socket (server conn #1). */
	before = atomic_load(&self->srv.conns[1].reqs[NBDP_CMD_READ]);
	ASSERT_EQ(0, tu_child_run(read_check_child, &ra, 60000, &res));
	ASSERT_EQ(0, res) TH_LOG("read: %s", strerror(res));
	ASSERT_LT(before, atomic_load(&self->srv.conns[1].reqs[NBDP_CMD_READ]));
}

/* ---- DISCONNECT's close frame ------------------------------------------- */

/* Expect -@err with an extack message; the device must be untouched. */
#define ASSERT_DISC_REJECTED(self, err, code, reason, len, extra) do {	\
	int __r = nbdws_disconnect_close(&(self)->nl, (self)->index,	\
					 (code), (reason), (len),	\
					 (extra));			\
	ASSERT_EQ(-(err), __r) TH_LOG("code %u: got %d (%s), extack '%s'", \
		(code), __r, strerror(-__r), (self)->nl.extack);	\
	ASSERT_TRUE((self)->nl.has_extack)				\
		TH_LOG("errno right but no extack message");		\
	assert_dev_intact(_metadata, self);				\
} while (0)

/*
 * Close codes an endpoint must not send, reasons that are too long or not
 * UTF-8 text, a reason without a code, an attribute DISCONNECT does not
 * take: each refused, and the device keeps running.
 */
TEST_F_TIMEOUT(dev, disconnect_close_frame_rejected, 120)
{
	static const uint16_t out_of_range[] = { 1, 999, 5000, 65535 };
	static const uint16_t reserved[] = { 1004, 1005, 1006, 1015, 1016,
					     2999 };
	char long_reason[125];
	unsigned int i;

	for (i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++)
		ASSERT_DISC_REJECTED(self, ERANGE, out_of_range[i], NULL, 0, 0);
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		ASSERT_DISC_REJECTED(self, EINVAL, reserved[i], NULL, 0, 0);

	/* 124 bytes of text, with and without the NUL. */
	memset(long_reason, 'x', sizeof(long_reason));
	long_reason[124] = 0;
	ASSERT_DISC_REJECTED(self, ERANGE, 4000, long_reason, 125, 0);
	ASSERT_DISC_REJECTED(self, ERANGE, 4000, long_reason, 124, 0);

	/* An overlong "/", a lone continuation byte, a surrogate, a NUL. */
	ASSERT_DISC_REJECTED(self, EINVAL, 4000, "bad \xc0\xaf", 7, 0);
	ASSERT_DISC_REJECTED(self, EINVAL, 4000, "bad \x80", 5, 0);
	ASSERT_DISC_REJECTED(self, EINVAL, 4000, "\xed\xa0\x80", 3, 0);
	ASSERT_DISC_REJECTED(self, EINVAL, 4000, "a\0b", 4, 0);

	ASSERT_DISC_REJECTED(self, EINVAL, 0, "no code", 8, 0);
	ASSERT_DISC_REJECTED(self, EINVAL, 4000, NULL, 0, NBDWS_A_TIMEOUT_MS);
}

/*
 * The largest valid close frame, on a device with a plain connection:
 * accepted, and ignored there (plain connections have no close frame).
 */
TEST_F_TIMEOUT(dev, disconnect_close_frame_plain, 120)
{
	char reason[124];
	int ret;

	memset(reason, 'r', sizeof(reason));
	/* Two-byte characters: still 123 bytes. */
	memcpy(reason, "\xc3\xa9\xc3\xa9", 4);
	reason[123] = 0;
	ret = nbdws_disconnect_close(&self->nl, self->index, 4999, reason,
				     sizeof(reason), 0);
	ASSERT_EQ(0, ret) TH_LOG("DISCONNECT: %s (%s)", strerror(-ret),
				 self->nl.extack);
	ASSERT_EQ(0, nbdws_wait_gone(self->index, 30000));
	self->connected = false;
}

/* ---- malformed requests ----------------------------------------------------- */

/* Expect -@err with an extack message, and no device created. */
#define ASSERT_REJECTED(ret, self, err) do {				\
	struct nbdws_dev_status __st;					\
	ASSERT_EQ(-(err), (ret)) TH_LOG("got %d (%s), extack '%s'",	\
		(ret), strerror(-(ret)), (self)->nl.extack);		\
	ASSERT_TRUE((self)->nl.has_extack)				\
		TH_LOG("errno right but no extack message");		\
	ASSERT_EQ(0, nbdws_status_all(&(self)->nl, &__st));		\
	ASSERT_EQ((self)->ndev_before, __st.ndevices);			\
} while (0)

/* If the kernel named a missing attribute, it must be this one. */
#define ASSERT_MISSING(self, attr)					\
	ASSERT_TRUE((self)->nl.miss_type == -1 ||			\
		    (self)->nl.miss_type == (attr))			\
		TH_LOG("missing attribute reported: %d, expected %d",	\
		       (self)->nl.miss_type, (attr))

/* Build a CONNECT from @a, let @tweak damage it, send it. */
static int send_connect(FIXTURE_DATA(reject) *self,
			const struct nbdws_connect_args *a,
			void (*tweak)(struct nlmsghdr *nlh))
{
	char *buf = calloc(1, 8192);
	struct nlmsghdr *nlh = nl_cmd(&self->nl, buf, NBDWS_CMD_CONNECT);
	int ret;

	nbdws_put_connect_attrs(nlh, a);
	if (tweak)
		tweak(nlh);
	ret = nl_transact(&self->nl, nlh, NULL, NULL);
	free(buf);
	return ret;
}

static void args_one_fd(struct nbdws_connect_args *a, int fd)
{
	nbdws_connect_defaults(a, IMG_SIZE);
	a->nfds = 1;
	a->fds[0] = fd;
}

TEST_F_TIMEOUT(reject, connect_without_size, 60)
{
	struct nbdws_connect_args a;

	args_one_fd(&a, served_fd(&self->srv));
	a.size = 0;
	ASSERT_REJECTED(send_connect(self, &a, NULL), self, EINVAL);
	ASSERT_MISSING(self, NBDWS_A_SIZE_BYTES);
}

TEST_F_TIMEOUT(reject, connect_without_conns, 60)
{
	struct nbdws_connect_args a;

	nbdws_connect_defaults(&a, IMG_SIZE);
	ASSERT_REJECTED(send_connect(self, &a, NULL), self, EINVAL);
	ASSERT_MISSING(self, NBDWS_A_CONNS);
}

static void tweak_empty_conn(struct nlmsghdr *nlh)
{
	struct nlattr *conns = mnl_attr_nest_start(nlh, NBDWS_A_CONNS);
	struct nlattr *c = mnl_attr_nest_start(nlh, NBDWS_A_CONN);

	mnl_attr_put_u32(nlh, NBDWS_CONN_A_TRANSPORT, NBDWS_TRANSPORT_PLAIN);
	mnl_attr_nest_end(nlh, c);
	mnl_attr_nest_end(nlh, conns);
}

TEST_F_TIMEOUT(reject, connect_conn_without_fd, 60)
{
	struct nbdws_connect_args a;

	nbdws_connect_defaults(&a, IMG_SIZE);
	ASSERT_REJECTED(send_connect(self, &a, tweak_empty_conn), self,
			EINVAL);
}

static void tweak_short_u32(struct nlmsghdr *nlh)
{
	uint16_t two = 2;

	mnl_attr_put(nlh, NBDWS_A_QUEUE_DEPTH, sizeof(two), &two);
}

TEST_F_TIMEOUT(reject, connect_u32_with_two_bytes, 60)
{
	struct nbdws_connect_args a;

	args_one_fd(&a, served_fd(&self->srv));
	a.queue_depth = 0;	/* sent malformed by the tweak instead */
	ASSERT_REJECTED(send_connect(self, &a, tweak_short_u32), self, EINVAL);
}

static void tweak_size_as_u32(struct nlmsghdr *nlh)
{
	mnl_attr_put_u32(nlh, NBDWS_A_SIZE_BYTES, IMG_SIZE);
}

TEST_F_TIMEOUT(reject, connect_u64_with_four_bytes, 60)
{
	struct nbdws_connect_args a;

	args_one_fd(&a, served_fd(&self->srv));
	a.size = 0;
	ASSERT_REJECTED(send_connect(self, &a, tweak_size_as_u32), self,
			EINVAL);
}

static void tweak_unknown_attr(struct nlmsghdr *nlh)
{
	mnl_attr_put_u32(nlh, NBDWS_A_MAX + 7, 1);
}

TEST_F_TIMEOUT(reject, connect_unknown_attribute, 60)
{
	struct nbdws_connect_args a;

	args_one_fd(&a, served_fd(&self->srv));
	ASSERT_REJECTED(send_connect(self, &a, tweak_unknown_attr), self,
			EINVAL);
}

static void tweak_unknown_conn_attr(struct nlmsghdr *nlh)
{
	struct nlattr *conns = mnl_attr_nest_start(nlh, NBDWS_A_CONNS);
	struct nlattr *c = mnl_attr_nest_start(nlh, NBDWS_A_CONN);

	mnl_attr_put_u32(nlh, NBDWS_CONN_A_FD, 0);
	mnl_attr_put_u32(nlh, NBDWS_CONN_A_MAX + 3, 1);
	mnl_attr_nest_end(nlh, c);
	mnl_attr_nest_end(nlh, conns);
}

TEST_F_TIMEOUT(reject, connect_unknown_conn_attribute, 60)
{
	struct nbdws_connect_args a;

	nbdws_connect_defaults(&a, IMG_SIZE);
	ASSERT_REJECTED(send_connect(self, &a, tweak_unknown_conn_attr), self,
			EINVAL);
}

/* Strict parsing: a nest without NLA_F_NESTED is refused. */
static void tweak_unflagged_nest(struct nlmsghdr *nlh)
{
	struct nlattr *conns = mnl_attr_nest_start(nlh, NBDWS_A_CONNS);
	struct nlattr *c = mnl_attr_nest_start(nlh, NBDWS_A_CONN);

	mnl_attr_put_u32(nlh, NBDWS_CONN_A_FD, 0);
	mnl_attr_nest_end(nlh, c);
	mnl_attr_nest_end(nlh, conns);
	conns->nla_type &= ~NLA_F_NESTED;
}

TEST_F_TIMEOUT(reject, connect_nest_without_flag, 60)
{
	struct nbdws_connect_args a;

	nbdws_connect_defaults(&a, IMG_SIZE);
	ASSERT_REJECTED(send_connect(self, &a, tweak_unflagged_nest), self,
			EINVAL);
}

/* Four bytes after the last attribute that are no attribute. */
static void tweak_trailing_junk(struct nlmsghdr *nlh)
{
	memset((char *)nlh + nlh->nlmsg_len, 0xff, 4);
	nlh->nlmsg_len += 4;
}

TEST_F_TIMEOUT(reject, connect_trailing_bytes, 60)
{
	struct nbdws_connect_args a;

	args_one_fd(&a, served_fd(&self->srv));
	ASSERT_REJECTED(send_connect(self, &a, tweak_trailing_junk), self,
			EINVAL);
}

TEST_F_TIMEOUT(reject, connect_block_size_not_power_of_two, 60)
{
	struct nbdws_connect_args a;

	args_one_fd(&a, served_fd(&self->srv));
	a.bs_min = 1000;
	ASSERT_REJECTED(send_connect(self, &a, NULL), self, EINVAL);
}

/* A preferred block size beyond the largest request: ERANGE. */
TEST_F_TIMEOUT(reject, connect_block_size_pref_too_big, 60)
{
	struct nbdws_connect_args a;
	int fd = served_fd(&self->srv);

	ASSERT_LE(0, fd);
	args_one_fd(&a, fd);
	a.bs_pref = 64U << 20;
	ASSERT_REJECTED(send_connect(self, &a, NULL), self, ERANGE);
	close(fd);
}

TEST_F_TIMEOUT(reject, connect_queue_depth_too_big, 60)
{
	struct nbdws_connect_args a;
	int ret;

	args_one_fd(&a, served_fd(&self->srv));
	a.queue_depth = NBDWS_MAX_QUEUE_DEPTH + 1;
	ret = send_connect(self, &a, NULL);
	/* A policy range check answers ERANGE, a hand-written one EINVAL. */
	if (ret == -ERANGE)
		ASSERT_REJECTED(ret, self, ERANGE);
	else
		ASSERT_REJECTED(ret, self, EINVAL);
}

TEST_F_TIMEOUT(reject, connect_too_many_conns, 60)
{
	struct nbdws_connect_args a;
	int i, ret;

	nbdws_connect_defaults(&a, IMG_SIZE);
	a.nfds = NBDWS_MAX_CONNS + 1;
	for (i = 0; i < a.nfds; i++) {
		a.fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		ASSERT_LE(0, a.fds[i]);
	}
	ret = send_connect(self, &a, NULL);
	for (i = 0; i < a.nfds; i++)
		close(a.fds[i]);
	ASSERT_REJECTED(ret, self, EINVAL);
}

/*
 * ---- fds that are not connected stream sockets ----------------------------
 * sockfd_lookup() decides ENOTSOCK and EBADF; every socket that is the
 * wrong kind (datagram, listening, unconnected) is EINVAL, told apart by
 * the extack message.
 */

TEST_F_TIMEOUT(reject, connect_fd_pipe, 60)
{
	struct nbdws_connect_args a;
	int p[2], ret;

	ASSERT_EQ(0, pipe(p));
	args_one_fd(&a, p[0]);
	ret = send_connect(self, &a, NULL);
	close(p[0]);
	close(p[1]);
	ASSERT_REJECTED(ret, self, ENOTSOCK);
}

TEST_F_TIMEOUT(reject, connect_fd_regular_file, 60)
{
	struct nbdws_connect_args a;
	char path[256];
	int fd, ret;

	snprintf(path, sizeof(path), "%s/nbdws-netlink-file", tu_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	unlink(path);
	args_one_fd(&a, fd);
	ret = send_connect(self, &a, NULL);
	close(fd);
	ASSERT_REJECTED(ret, self, ENOTSOCK);
}

TEST_F_TIMEOUT(reject, connect_fd_closed, 60)
{
	struct nbdws_connect_args a;
	int fd = dup(0);

	ASSERT_LE(0, fd);
	close(fd);	/* a number that is certainly not open now */
	args_one_fd(&a, fd);
	ASSERT_REJECTED(send_connect(self, &a, NULL), self, EBADF);
}

TEST_F_TIMEOUT(reject, connect_fd_listening_socket, 60)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct nbdws_connect_args a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ret;

	ASSERT_LE(0, fd);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, listen(fd, 1));
	args_one_fd(&a, fd);
	ret = send_connect(self, &a, NULL);
	close(fd);
	ASSERT_REJECTED(ret, self, EINVAL);
}

/* CONNECT with a stream socket of @family that never connected. */
static int send_unconnected(FIXTURE_DATA(reject) *self, int family)
{
	struct nbdws_connect_args a;
	int fd = socket(family, SOCK_STREAM, 0), ret;

	if (fd < 0)
		return -errno;
	args_one_fd(&a, fd);
	ret = send_connect(self, &a, NULL);
	close(fd);
	return ret;
}

TEST_F_TIMEOUT(reject, connect_fd_unconnected_tcp, 60)
{
	int ret = send_unconnected(self, AF_INET);

	ASSERT_REJECTED(ret, self, EINVAL);
}

TEST_F_TIMEOUT(reject, connect_fd_udp_socket, 60)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct nbdws_connect_args a;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ret;

	ASSERT_LE(0, fd);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Connected, so only "not a stream" is wrong with it. */
	ASSERT_EQ(0, connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	args_one_fd(&a, fd);
	ret = send_connect(self, &a, NULL);
	close(fd);
	ASSERT_REJECTED(ret, self, EINVAL);
}

TEST_F_TIMEOUT(reject, connect_fd_unconnected_unix, 60)
{
	int ret = send_unconnected(self, AF_UNIX);

	/* Before ASSERT_REJECTED, whose STATUS request clears the extack. */
	EXPECT_NE(NULL, strstr(self->nl.extack, "unix socket is not connected"))
		TH_LOG("extack '%s'", self->nl.extack);
	ASSERT_REJECTED(ret, self, EINVAL);
}

/*
 * A unix stream connection made with connect() and accept(): nbdctl dials
 * nbd+unix:// so, and nbdws-relay takes clients on a unix listener.
 */
static int unix_connected_pair(int *client, int *server)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ret = 0;

	if (lfd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/nbdws-netlink.sock",
		 tu_tmpdir());
	unlink(sa.sun_path);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1)) {
		ret = -errno;
		goto out;
	}
	ret = tu_pair_accept(lfd, tu_unix_connect(sa.sun_path), client, server);
out:
	unlink(sa.sun_path);
	close(lfd);
	return ret;
}

/*
 * Every way userspace gets a connected unix stream socket is accepted:
 * the connecting end, the accepted end, one of a socketpair() (the
 * relay's userspace framing). 7.x no longer sets SS_CONNECTED in
 * sock->state for any of them, which the kernel side once asked for.
 */
TEST_F_TIMEOUT(reject, connect_fd_unix_connected, 120)
{
	static const char *const how[] = {
		"connect() end", "accept() end", "socketpair()",
	};
	struct nbdws_connect_args a;
	int fd[2], ret, i, k;
	uint32_t index;

	for (i = 0; i < 3; i++) {
		if (i < 2)
			ret = unix_connected_pair(&fd[0], &fd[1]);
		else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd))
			ret = -errno;
		else
			ret = 0;
		ASSERT_EQ(0, ret) TH_LOG("%s: %s", how[i], strerror(-ret));
		/* The kernel gets fd[k], the scripted server the other. */
		k = i == 1;
		ret = ts_add_conn(&self->srv, fd[!k]);
		if (ret) {
			close(fd[0]);
			close(fd[1]);
			ASSERT_EQ(0, ret);
		}
		args_one_fd(&a, fd[k]);
		ret = nbdws_connect(&self->nl, &a, &index);
		close(fd[k]);
		ASSERT_EQ(0, ret)
			TH_LOG("%s: CONNECT: %s", how[i], self->nl.extack);
		ASSERT_EQ(0, nbdws_teardown_dev(&self->nl, index));
	}
}

TEST_F_TIMEOUT(dev, connect_fd_already_in_use, 120)
{
	struct nbdws_connect_args a = self->args;
	uint32_t idx2 = ~0U, idx3 = ~0U;
	int ret;

	/* A socket another device already drives, passed again. */
	a.fds[0] = served_fd(&self->srv);
	ASSERT_LE(0, a.fds[0]);
	ASSERT_EQ(0, nbdws_connect(&self->nl, &a, &idx2))
		TH_LOG("%s", self->nl.extack);
	ret = nbdws_connect(&self->nl, &a, &idx3);
	if (!ret)
		nbdws_teardown_dev(&self->nl, idx3);
	EXPECT_EQ(-EBUSY, ret) TH_LOG("%s", self->nl.extack);
	EXPECT_TRUE(self->nl.has_extack);
	close(a.fds[0]);
	ASSERT_EQ(0, nbdws_teardown_dev(&self->nl, idx2));
}

/*
 * The socket is given back as it came: the kernel turns Nagle off while
 * it carries block I/O, and on again (as the caller had it) afterwards.
 */
TEST_F_TIMEOUT(reject, socket_settings_given_back, 120)
{
	struct nbdws_connect_args a;
	socklen_t len = sizeof(int);
	uint32_t index;
	int fd, on = -1;

	fd = served_fd(&self->srv);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len));
	ASSERT_EQ(0, on);
	args_one_fd(&a, fd);
	ASSERT_EQ(0, nbdws_connect(&self->nl, &a, &index))
		TH_LOG("CONNECT: %s", self->nl.extack);
	ASSERT_EQ(0, getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len));
	EXPECT_NE(0, on) TH_LOG("Nagle still on while the kernel sends");
	ASSERT_EQ(0, nbdws_teardown_dev(&self->nl, index));
	ASSERT_EQ(0, getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len));
	EXPECT_EQ(0, on) TH_LOG("TCP_NODELAY not given back");
	close(fd);
}

/*
 * SO_RCVLOWAT set on the socket before the hand-over (1 MiB here) does
 * not hold replies back: TCP wakes the reader only once that much is
 * queued, and a 64 KiB reply would wait for the request timeout. The
 * kernel reads every byte while it drives the socket and gives the
 * caller's value back afterwards.
 */
TEST_F_TIMEOUT(reject, rcvlowat_does_not_stall_replies, 120)
{
	struct read_arg ra = { .off = 5 * TU_MIB };
	int fd, lowat = 1 << 20, v = -1, res = -1;
	socklen_t len = sizeof(int);
	struct nbdws_connect_args a;
	long long t0, ms;
	char path[64];
	uint32_t index;

	fd = served_fd(&self->srv);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat,
				sizeof(lowat)));
	ASSERT_EQ(0, getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len));
	ASSERT_EQ(lowat, v);
	args_one_fd(&a, fd);
	a.timeout_ms = 5000;
	ASSERT_EQ(0, nbdws_connect(&self->nl, &a, &index))
		TH_LOG("CONNECT: %s", self->nl.extack);
	nbdws_dev_path(index, path, sizeof(path));
	ASSERT_EQ(0, tu_wait_path(path, true, 10000));
	ra.path = path;
	t0 = tu_now_ms();
	/* Well within the request timeout, or it waited for it. */
	EXPECT_EQ(0, tu_child_run(read_check_child, &ra, 2500, &res))
		TH_LOG("a 64 KiB read took longer than 2.5 s");
	ms = tu_now_ms() - t0;
	EXPECT_EQ(0, res) TH_LOG("read: %s", strerror(res));
	TH_LOG("64 KiB read in %lld ms", ms);
	ASSERT_EQ(0, nbdws_teardown_dev(&self->nl, index));
	ASSERT_EQ(0, getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len));
	EXPECT_EQ(lowat, v) TH_LOG("SO_RCVLOWAT not given back");
	close(fd);
}

/* Two CONNECTs racing with one socket, released together (a pipe). */
struct race_arg {
	struct nbdws_connect_args a;
	int go, go_w;		/* pipe: EOF on go means go */
	int ret[2];		/* each child's result (shared memory) */
	uint32_t index[2];
};

struct race_child_arg {
	struct race_arg *r;
	int who;
};

static int race_child(void *p)
{
	struct race_child_arg *c = p;
	struct race_arg *r = c->r;
	struct nl nl;
	char b;

	close(r->go_w);		/* or EOF never comes */
	if (nl_open(&nl))
		return 250;
	if (read(r->go, &b, 1) < 0)
		return 251;
	r->ret[c->who] = nbdws_connect(&nl, &r->a, &r->index[c->who]);
	nl_close(&nl);
	return 0;
}

/*
 * Commands run in parallel: two CONNECTs handed the same socket at the
 * same moment must not both attach it. Exactly one wins, the other gets
 * EBUSY; repeated, since the window is narrow.
 */
TEST_F_TIMEOUT(reject, connect_same_fd_racing, 180)
{
	struct race_arg *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct race_child_arg ca[2] = { { r, 0 }, { r, 1 } };
	int round, k, res, p[2], fd;
	pid_t pid[2];

	ASSERT_NE(MAP_FAILED, r);
	for (round = 0; round < 10; round++) {
		int won = 0;

		fd = served_fd(&self->srv);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, pipe(p));
		memset(r, 0, sizeof(*r));
		args_one_fd(&r->a, fd);
		r->go = p[0];
		r->go_w = p[1];
		for (k = 0; k < 2; k++) {
			r->ret[k] = 1;
			pid[k] = tu_child_start(race_child, &ca[k]);
			ASSERT_LT(0, pid[k]);
		}
		/* Both are waiting on the pipe (or about to): go. */
		tu_msleep(100);
		close(p[1]);
		for (k = 0; k < 2; k++) {
			ASSERT_EQ(0, tu_child_wait(pid[k], 30000, &res));
			ASSERT_EQ(0, res);
		}
		close(p[0]);
		close(fd);
		for (k = 0; k < 2; k++) {
			if (!r->ret[k]) {
				won++;
				nbdws_teardown_dev(&self->nl, r->index[k]);
			} else {
				EXPECT_EQ(-EBUSY, r->ret[k])
					TH_LOG("round %d: %s", round,
					       strerror(-r->ret[k]));
			}
		}
		ASSERT_EQ(1, won) TH_LOG("round %d: %d CONNECTs got the socket",
					 round, won);
	}
	munmap(r, sizeof(*r));
}

/*
 * A CONNECT with two sockets (A) racing a CONNECT that wants A's second
 * one (B). When B claims that socket after A passed the fd checks and
 * before A attached it, A fails with the first socket taken already: it
 * must then leave that one as it came (not shut down), raise no event
 * and, on a kept device, leave the device as it was, as any refused
 * command does. The window is narrow and B needs longer to get to its
 * claim than A, so one of the two starts later, by a delay each round
 * moves towards the window (see claim_race_rounds()). Both wait for the
 * start spinning, so that neither pays for a wakeup.
 */
struct claim_race {
	struct nbdws_connect_args a[2];
	uint32_t want;			/* the index A asks for */
	int ready, go;			/* atomics: both ready, start */
	long delay_us[2];		/* after go, before the command */
	int ret[2];
	uint32_t index[2];
	char extack[2][256];
};

static void spin_us(long us)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000L +
		 (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

struct claim_child_arg {
	struct claim_race *r;
	int who;
};

static int claim_child(void *p)
{
	struct claim_child_arg *c = p;
	struct claim_race *r = c->r;
	struct nbdws_reply_index ri = { 0 };
	char *buf = calloc(1, 8192);
	struct nlmsghdr *nlh;
	struct nl nl;

	if (!buf || nl_open(&nl))
		return 250;
	nlh = nl_cmd(&nl, buf, NBDWS_CMD_CONNECT);
	nbdws_put_connect_attrs(nlh, &r->a[c->who]);
	if (!c->who)
		mnl_attr_put_u32(nlh, NBDWS_A_INDEX, r->want);
	__atomic_add_fetch(&r->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
		;
	spin_us(r->delay_us[c->who]);
	r->ret[c->who] = nl_transact(&nl, nlh, nbdws_index_cb, &ri);
	r->index[c->who] = ri.index;
	snprintf(r->extack[c->who], sizeof(r->extack[0]), "%s", nl.extack);
	nl_close(&nl);
	free(buf);
	return 0;
}

/* Read every event that comes within @ms (into ev->events_seen). */
static void drain_events(struct nl *ev, int ms)
{
	ev->events_seen[0] = 0;
	nl_wait_event(ev, ~0U, ~0U, ms, NULL);
}

#define CLAIM_ROUNDS	400
#define CLAIM_MS	60000
#define CLAIM_HITS	3
#define CLAIM_INDEX	4000

/*
 * What a kept device shows of its export: STATUS and sysfs. Two exports
 * that differ in all of it; A always asks for the one the device does
 * not have.
 */
struct kept_view {
	uint64_t size;
	uint32_t client_flags;
	long long ro, lbs;
};

static void kept_export(struct nbdws_connect_args *a, int which)
{
	nbdws_connect_defaults(a, which ? IMG_SIZE / 2 : IMG_SIZE);
	a->client_flags = NBDWS_CF_KEEP_DEVICE;
	if (which) {
		a->client_flags |= NBDWS_CF_READ_ONLY;
		a->bs_min = 4096;
	}
}

static int get_kept_view(struct nl *nl, uint32_t index, struct kept_view *v)
{
	struct nbdws_dev_status st = { 0 };
	int ret = nbdws_status(nl, index, &st);

	if (ret)
		return ret;
	v->size = st.size;
	v->client_flags = st.client_flags;
	v->ro = tu_disk_attr_num(st.disk, "ro");
	v->lbs = tu_disk_attr_num(st.disk, "queue/logical_block_size");
	return 0;
}

/*
 * Rounds of the race until A lost its second socket CLAIM_HITS times,
 * for at most CLAIM_ROUNDS rounds and CLAIM_MS. With @kept, A connects a
 * kept device (the relay's hold and re-attach), else it creates one.
 * Each round moves the start of the later of the two towards the window:
 * A that got both sockets started too early, A refused at its fd checks
 * too late. A kept device's window is short (its claims come before
 * anything slow), so B rarely wins there; should it never win in time,
 * the test says so and skips.
 */
static void claim_race_rounds(struct __test_metadata *_metadata,
			      struct nl *nl, bool kept)
{
	struct ts_server *srv = calloc(1, sizeof(*srv));
	struct claim_race *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct claim_child_arg ca[2] = { { r, 0 }, { r, 1 } };
	int round, k, res, s1, s2, hits = 0, cur = 0;
	long long start = tu_now_ms(), wait;
	long delay = 0, step = 400;	/* > 0: A later, < 0: B later */
	int last_dir = 0;
	struct nbdws_connect_args keep;
	struct kept_view before, after;
	uint32_t kept_index, got;
	struct nl ev;
	pid_t pid[2];
	char b;

	ASSERT_NE(MAP_FAILED, r);
	ASSERT_NE(NULL, srv);
	ASSERT_EQ(0, nl_open_events(&ev));
	/* The scripted server serves TS_MAX_CONNS sockets: one per round. */
	ASSERT_EQ(0, ts_init(srv, IMG_SIZE, IMG_SEED));
	if (kept) {
		/* Two slots, kept empty after DISCONNECT. */
		kept_export(&keep, cur);
		keep.nfds = 2;
		keep.fds[0] = served_fd(srv);
		keep.fds[1] = served_fd(srv);
		ASSERT_LE(0, keep.fds[0]);
		ASSERT_LE(0, keep.fds[1]);
		ASSERT_EQ(0, nbdws_connect(nl, &keep, &kept_index))
			TH_LOG("CONNECT: %s", nl->extack);
		ASSERT_EQ(0, nbdws_disconnect(nl, kept_index));
		close(keep.fds[0]);
		close(keep.fds[1]);
	}

	for (round = 0; round < CLAIM_ROUNDS && hits < CLAIM_HITS &&
	     tu_now_ms() - start < CLAIM_MS; round++) {
		int dir = 0;

		if (round) {
			ts_stop(srv);
			ASSERT_EQ(0, ts_init(srv, IMG_SIZE, IMG_SEED));
		}
		s1 = served_fd(srv);
		s2 = served_fd(srv);
		ASSERT_LE(0, s1);
		ASSERT_LE(0, s2);
		memset(r, 0, sizeof(*r));
		nbdws_connect_defaults(&r->a[0], IMG_SIZE);
		if (kept) {
			kept_export(&r->a[0], !cur);
			ASSERT_EQ(0, get_kept_view(nl, kept_index, &before));
		}
		r->a[0].nfds = 2;
		r->a[0].fds[0] = s1;
		r->a[0].fds[1] = s2;
		nbdws_connect_defaults(&r->a[1], IMG_SIZE);
		r->a[1].nfds = 1;
		r->a[1].fds[0] = s2;
		r->want = kept ? kept_index : CLAIM_INDEX;
		r->delay_us[0] = delay > 0 ? delay : 0;
		r->delay_us[1] = delay < 0 ? -delay : 0;
		drain_events(&ev, 20);
		for (k = 0; k < 2; k++) {
			r->ret[k] = 1;
			pid[k] = tu_child_start(claim_child, &ca[k]);
			ASSERT_LT(0, pid[k]);
		}
		for (wait = 0; wait < 10000 &&
		     __atomic_load_n(&r->ready, __ATOMIC_ACQUIRE) < 2; wait++)
			usleep(1000);
		__atomic_store_n(&r->go, 1, __ATOMIC_RELEASE);
		for (k = 0; k < 2; k++) {
			ASSERT_EQ(0, tu_child_wait(pid[k], 30000, &res));
			ASSERT_EQ(0, res);
		}

		if (r->ret[0]) {
			EXPECT_EQ(-EBUSY, r->ret[0])
				TH_LOG("round %d: %s", round, r->extack[0]);
			EXPECT_NE(0, r->extack[0][0]);
			/*
			 * Lost after the fd checks (their refusal names the
			 * socket as already in use), with s1 in hand: a hit,
			 * whatever A's message says.
			 */
			if (!strstr(r->extack[0], "already in use"))
				hits++;
			else if (strstr(r->extack[0], "in use by the kernel"))
				dir = -1;
			/* s1 is neither shut down nor otherwise used up. */
			errno = 0;
			EXPECT_EQ(-1, recv(s1, &b, 1, MSG_PEEK | MSG_DONTWAIT))
				TH_LOG("round %d: A's first socket was shut down",
				       round);
			EXPECT_EQ(EAGAIN, errno);
			/* No event about A's device. */
			EXPECT_EQ(-ETIMEDOUT,
				  nl_wait_event(&ev, r->want,
						NBDWS_EVENT_CONN_DEAD, 300, NULL))
				TH_LOG("round %d: events %s", round,
				       ev.events_seen);
			/* The kept device still has the export it had. */
			if (kept) {
				ASSERT_EQ(0, get_kept_view(nl, kept_index, &after));
				EXPECT_EQ(before.size, after.size)
					TH_LOG("round %d: size %llu, was %llu",
					       round,
					       (unsigned long long)after.size,
					       (unsigned long long)before.size);
				EXPECT_EQ(before.client_flags,
					  after.client_flags)
					TH_LOG("round %d: client flags", round);
				EXPECT_EQ(before.ro, after.ro)
					TH_LOG("round %d: ro %lld, was %lld",
					       round, after.ro, before.ro);
				EXPECT_EQ(before.lbs, after.lbs)
					TH_LOG("round %d: logical block size %lld, was %lld",
					       round, after.lbs, before.lbs);
			}
		} else {
			dir = 1;
			if (kept) {
				cur = !cur;
				EXPECT_EQ(0, nbdws_disconnect(nl, r->want));
			} else {
				EXPECT_EQ(0, nbdws_teardown_dev(nl,
								r->index[0]));
			}
		}
		if (!r->ret[1]) {
			EXPECT_EQ(0, nbdws_teardown_dev(nl, r->index[1]));
		} else {
			EXPECT_EQ(-EBUSY, r->ret[1])
				TH_LOG("round %d: %s", round, r->extack[1]);
		}
		close(s1);
		close(s2);
		/* Halve the step at each turn, down to 10 us. */
		if (dir && last_dir && dir != last_dir && step > 10)
			step /= 2;
		if (dir)
			last_dir = dir;
		delay += dir * step;
	}
	if (kept) {
		struct read_arg ra = { .off = 3 * TU_MIB };
		char path[64];

		/* Connected as it should be, the kept device serves again. */
		kept_export(&keep, 0);
		keep.nfds = 1;
		keep.fds[0] = served_fd(srv);
		ASSERT_LE(0, keep.fds[0]);
		/* udev may be probing it after the last round: not for long. */
		for (k = 0; k < 50; k++) {
			res = nbdws_connect_at(nl, &keep, kept_index, &got);
			if (res != -EBUSY)
				break;
			tu_msleep(100);
		}
		ASSERT_EQ(0, res) TH_LOG("CONNECT: %s", nl->extack);
		EXPECT_EQ(kept_index, got);
		close(keep.fds[0]);
		ASSERT_EQ(0, get_kept_view(nl, kept_index, &after));
		EXPECT_EQ(IMG_SIZE, after.size);
		EXPECT_EQ(0, after.ro);
		EXPECT_EQ(512, after.lbs);
		nbdws_dev_path(kept_index, path, sizeof(path));
		ra.path = path;
		ASSERT_EQ(0, tu_child_run(read_check_child, &ra, 20000, &res));
		EXPECT_EQ(0, res) TH_LOG("read: %s", strerror(res));
		/* DISCONNECT keeps it; the second one removes it. */
		EXPECT_EQ(0, nbdws_disconnect(nl, kept_index));
		EXPECT_EQ(0, nbdws_teardown_dev(nl, kept_index));
	}
	ts_stop(srv);
	free(srv);
	nl_close(&ev);
	munmap(r, sizeof(*r));
	TH_LOG("%d rounds, A lost its second socket in %d (last delay %ld us)",
	       round, hits, delay);
	/* SKIP marks the test passed: never over a failure. */
	if (!hits && _metadata->passed)
		SKIP(return, "B never took the socket between A's checks and its attach in %d rounds",
		     round);
}

TEST_F_TIMEOUT(reject, connect_partial_claim_racing, 300)
{
	claim_race_rounds(_metadata, &self->nl, false);
}

TEST_F_TIMEOUT(reject, connect_kept_partial_claim_racing, 300)
{
	claim_race_rounds(_metadata, &self->nl, true);
}

/* ---- device indexes ------------------------------------------------------ */

TEST_F_TIMEOUT(reject, unknown_index, 60)
{
	struct nbdws_dev_status st;
	int fd;

	ASSERT_REJECTED(nbdws_disconnect(&self->nl, 99999), self, ENODEV);
	ASSERT_REJECTED(nbdws_status(&self->nl, 99999, &st), self, ENODEV);
	ASSERT_REJECTED(nbdws_reconfigure(&self->nl, 99999, 0, NULL, NULL,
					  5000), self, ENODEV);
	fd = served_fd(&self->srv);
	ASSERT_LE(0, fd);
	ASSERT_REJECTED(nbdws_reconfigure(&self->nl, 99999, 1, &fd, NULL, 0),
			self, ENODEV);
	close(fd);
}

TEST_F_TIMEOUT(reject, disconnect_without_index, 60)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_cmd(&self->nl, buf, NBDWS_CMD_DISCONNECT);

	ASSERT_REJECTED(nl_transact(&self->nl, nlh, NULL, NULL), self, EINVAL);
	ASSERT_MISSING(self, NBDWS_A_INDEX);
}

TEST_F_TIMEOUT(reject, reconfigure_without_index, 60)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_cmd(&self->nl, buf, NBDWS_CMD_RECONFIGURE);

	mnl_attr_put_u32(nlh, NBDWS_A_TIMEOUT_MS, 5000);
	ASSERT_REJECTED(nl_transact(&self->nl, nlh, NULL, NULL), self, EINVAL);
	ASSERT_MISSING(self, NBDWS_A_INDEX);
}

/* The event command is the kernel's to send, not a request. */
TEST_F(reject, event_is_not_a_request)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_cmd(&self->nl, buf, NBDWS_CMD_EVENT);

	ASSERT_EQ(-EOPNOTSUPP, nl_transact(&self->nl, nlh, NULL, NULL));
}

/* RECONFIGURE never silently ignores a socket it cannot use. */
TEST_F_TIMEOUT(dev, reconfigure_rejects_bad_fds, 120)
{
	int p[2], fd, ret;

	ASSERT_EQ(0, pipe(p));
	ret = nbdws_reconfigure(&self->nl, self->index, 1, &p[0], NULL, 0);
	close(p[0]);
	close(p[1]);
	ASSERT_EQ(-ENOTSOCK, ret) TH_LOG("%s", self->nl.extack);
	ASSERT_TRUE(self->nl.has_extack);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	ret = nbdws_reconfigure(&self->nl, self->index, 1, &fd, NULL, 0);
	close(fd);
	ASSERT_EQ(-EINVAL, ret) TH_LOG("%s", self->nl.extack);
	ASSERT_TRUE(self->nl.has_extack);
	assert_dev_intact(_metadata, self);
}

TEST_HARNESS_MAIN
