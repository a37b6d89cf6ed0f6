// SPDX-License-Identifier: GPL-2.0
/*
 * Interoperability with real NBD servers, driven the way a user drives
 * nbdws: `nbdctl connect URI`, I/O through /dev/nbdwsN, `nbdctl
 * disconnect`. Every check compares bytes: what the device reads against
 * what the server holds, what was written against the server's backing
 * file (or, for nbdkit memory, a copy read by another client) after the
 * device is gone.
 */
#include <sched.h>
#include <sys/mount.h>
#include <sys/uio.h>

#include "kselftest_harness.h"
#include "nbdws_test_genl.h"
#include "nbdws_test_peers.h"
#include "nbdws_test_dev.h"

#define IMG_SIZE	(32 * TU_MIB)	/* TCG is slow: keep it small */
#define SLOT		(IMG_SIZE / 64)
#define SEED_A		0x696e7465726f70ULL	/* initial contents */
#define SEED_B		0x7772697465ULL		/* written by the tests */

/* ---- shared helpers ------------------------------------------------------- */

struct read_all_arg {
	char path[64];
	uint64_t size, seed;
};

/* Read the whole device with O_DIRECT and the first 8 MiB buffered. */
static int read_all_child(void *p)
{
	struct read_all_arg *a = p;
	void *buf;
	uint64_t off;
	int fd, ret = 0;

	if (posix_memalign(&buf, 4096, TU_MIB))
		return ENOMEM;
	fd = open(a->path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return errno;
	for (off = 0; off < a->size && !ret; off += TU_MIB) {
		ret = tu_pread_full(fd, buf, TU_MIB, off);
		if (!ret && tu_pattern_check(buf, off, TU_MIB, a->seed) != -1)
			ret = EILSEQ;
	}
	close(fd);
	if (ret)
		return ret;
	fd = open(a->path, O_RDONLY);
	if (fd < 0)
		return errno;
	for (off = 0; off < 8 * TU_MIB && !ret; off += TU_MIB) {
		ret = tu_pread_full(fd, buf, TU_MIB, off);
		if (!ret && tu_pattern_check(buf, off, TU_MIB, a->seed) != -1)
			ret = EILSEQ;
	}
	close(fd);
	return ret;
}

/*
 * The write plan: 40 of the 64 slots (of SLOT bytes) get one write each, at a
 * 4 KiB-aligned offset inside the slot, of a length that fits, through
 * O_DIRECT, the page cache, or O_DIRECT with RWF_DSYNC (FUA). Slots do
 * not overlap, so the expected image does not depend on the order in
 * which the block layer completes them.
 */
struct wr {
	uint64_t off;
	size_t len;
	int how;	/* 0 direct, 1 buffered, 2 direct + dsync */
};

#define NWRITES	40

static void plan_writes(struct wr *w, uint64_t seed)
{
	static const size_t lens[] = { 4096, 8192, 16384, 65536, 131072,
				       262144, SLOT };
	bool used[64] = { false };
	uint64_t r = seed;
	int i, slot;

	for (i = 0; i < NWRITES; i++) {
		do {
			r = tu_mix64(r);
			slot = r % 64;
		} while (used[slot]);
		used[slot] = true;
		r = tu_mix64(r);
		w[i].len = lens[r % 7];
		r = tu_mix64(r);
		w[i].off = (uint64_t)slot * SLOT +
			   (r % ((SLOT - w[i].len) / 4096 + 1)) * 4096;
		w[i].how = i % 3;
	}
}

struct writes_arg {
	char path[64];
	struct wr w[NWRITES];
};

static int writes_child(void *p)
{
	struct writes_arg *a = p;
	int dfd, bfd, i, ret = 0;
	void *buf;

	if (posix_memalign(&buf, 4096, TU_MIB))
		return ENOMEM;
	dfd = open(a->path, O_WRONLY | O_DIRECT);
	bfd = open(a->path, O_WRONLY);
	if (dfd < 0 || bfd < 0)
		return errno;
	for (i = 0; i < NWRITES && !ret; i++) {
		struct iovec iov = { buf, a->w[i].len };

		tu_pattern(buf, a->w[i].off, a->w[i].len, SEED_B);
		if (a->w[i].how == 0)
			ret = tu_pwrite_full(dfd, buf, a->w[i].len, a->w[i].off);
		else if (a->w[i].how == 1)
			ret = tu_pwrite_full(bfd, buf, a->w[i].len, a->w[i].off);
		else if (pwritev2(dfd, &iov, 1, a->w[i].off, RWF_DSYNC) !=
			 (ssize_t)a->w[i].len)
			ret = errno ? errno : EIO;
	}
	/* Acknowledge everything: flush both paths to the server. */
	if (!ret && (fsync(bfd) || fsync(dfd)))
		ret = errno;
	close(dfd);
	close(bfd);
	return ret;
}

/* ---- per-server tests ----------------------------------------------------- */

FIXTURE(interop) {
	struct peer peer;
	int index;
};

FIXTURE_VARIANT(interop) {
	enum peer_kind kind;
};

FIXTURE_VARIANT_ADD(interop, nbdkit_memory) { .kind = PEER_NBDKIT_MEMORY };
FIXTURE_VARIANT_ADD(interop, nbdkit_file) { .kind = PEER_NBDKIT_FILE };
FIXTURE_VARIANT_ADD(interop, nbd_server) { .kind = PEER_NBD_SERVER };
FIXTURE_VARIANT_ADD(interop, qemu_nbd) { .kind = PEER_QEMU_NBD };

/* nbdctl connect to @peer; the server's log if that fails. */
static int connect_peer_dev(struct __test_metadata *_metadata,
			    struct peer *peer, const char *const opts[],
			    int *index)
{
	char log[4096] = "";
	int ret = connect_dev(_metadata, opts, peer->uri, index);

	if (ret) {
		tu_sh(5000, log, sizeof(log), "cat '%s'", peer->out);
		TH_LOG("server output: %s", log);
	}
	return ret;
}

/*
 * nbd-server -d (one client, then exit) now and then accepts the TCP
 * connection in a loaded TCG guest and never sends its greeting, before
 * nbdws is involved at all. A fresh nbd-server gets one more chance, and
 * says so in the log; anything after the handshake still counts.
 */
static int connect_peer_fixture(struct __test_metadata *_metadata,
				struct peer *peer, enum peer_kind kind,
				const char *const opts[], int *index)
{
	char out[4096], path[64];

	if (kind != PEER_NBD_SERVER)
		return connect_peer_dev(_metadata, peer, opts, index);
	if (nbdctl_connect(opts, peer->uri, index, out, sizeof(out))) {
		if (!strstr(out, "server greeting")) {
			EXPECT_EQ(0, -1) TH_LOG("nbdctl connect %s: %s",
						peer->uri, out);
			return -1;
		}
		TH_LOG("nbd-server did not greet (%s); restarting it once",
		       out);
		peer_stop(peer);
		if (peer_start(peer, kind, IMG_SIZE, SEED_A))
			return -1;
		return connect_peer_dev(_metadata, peer, opts, index);
	}
	nbdws_dev_path(*index, path, sizeof(path));
	EXPECT_EQ(0, tu_wait_path(path, true, 10000))
		TH_LOG("%s did not appear", path);
	return 0;
}

#define connect_peer(_metadata, self, opts) \
	connect_peer_fixture(_metadata, &(self)->peer, (self)->peer.kind, opts, \
			     &(self)->index)

FIXTURE_SETUP(interop)
{
	char out[8192] = "";
	int ret;

	self->index = -1;
	ret = peer_start(&self->peer, variant->kind, IMG_SIZE, SEED_A);
	if (ret && self->peer.out[0])
		tu_sh(5000, out, sizeof(out), "cat '%s'", self->peer.out);
	ASSERT_EQ(0, ret) TH_LOG("server did not start: %s", out);
}

FIXTURE_TEARDOWN(interop)
{
	force_disconnect(&self->index);
	peer_stop(&self->peer);
}

TEST_F_TIMEOUT(interop, read_known_data, 300)
{
	struct read_all_arg a = { .size = IMG_SIZE, .seed = SEED_A };
	char disk[32];
	int res = -1;

	ASSERT_EQ(0, connect_peer(_metadata, self, NULL));
	nbdws_disk_name(self->index, disk, sizeof(disk));
	ASSERT_EQ(IMG_SIZE, tu_sysfs_size(disk));
	nbdws_dev_path(self->index, a.path, sizeof(a.path));
	ASSERT_EQ(0, tu_child_run(read_all_child, &a, 200000, &res))
		TH_LOG("reading the device hung");
	ASSERT_EQ(0, res) TH_LOG("read: %s", strerror(res));
	disconnect_dev(_metadata, &self->index);
}

TEST_F_TIMEOUT(interop, random_writes_reach_server, 300)
{
	struct writes_arg *a = calloc(1, sizeof(*a));
	uint8_t *expect = malloc(IMG_SIZE);
	char snap[400];
	long long diff;
	int res = -1, i;

	ASSERT_TRUE(a && expect);
	tu_pattern(expect, 0, IMG_SIZE, SEED_A);
	plan_writes(a->w, SEED_B ^ variant->kind);
	for (i = 0; i < NWRITES; i++)
		tu_pattern(expect + a->w[i].off, a->w[i].off, a->w[i].len,
			   SEED_B);

	ASSERT_EQ(0, connect_peer(_metadata, self, NULL));
	nbdws_dev_path(self->index, a->path, sizeof(a->path));
	ASSERT_EQ(0, tu_child_run(writes_child, a, 200000, &res))
		TH_LOG("writing hung");
	ASSERT_EQ(0, res) TH_LOG("write: %s", strerror(res));
	disconnect_dev(_metadata, &self->index);
	ASSERT_EQ(-1, self->index);

	ASSERT_EQ(0, peer_snapshot(&self->peer, snap, sizeof(snap)));
	diff = file_vs_buf(snap, expect, IMG_SIZE);
	ASSERT_EQ(-1, diff) TH_LOG("server's image differs at %lld", diff);
	free(expect);
	free(a);
}

/* ---- read-only ---------------------------------------------------------------- */

/* Writing must fail with EROFS or EPERM, at open or at write. */
static int try_write_child(void *p)
{
	const char *path = p;
	char buf[4096];
	int fd = open(path, O_WRONLY | O_DIRECT), ret = 0;
	void *abuf;

	if (fd < 0)
		return errno == EROFS || errno == EPERM || errno == EACCES ?
		       0 : errno;
	if (posix_memalign(&abuf, 4096, 4096))
		return ENOMEM;
	memset(abuf, 0xee, 4096);
	if (pwrite(fd, abuf, 4096, 8192) >= 0)
		ret = 111;	/* the write was accepted */
	else if (errno != EROFS && errno != EPERM)
		ret = errno;
	close(fd);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		memset(buf, 0xee, sizeof(buf));
		if (pwrite(fd, buf, sizeof(buf), 0) >= 0 && !fsync(fd))
			ret = ret ? ret : 112;	/* buffered write stuck */
		close(fd);
	}
	return ret;
}

static void check_read_only(struct __test_metadata *_metadata, int index,
			    struct peer *peer)
{
	char dev[64], disk[32], ro[8] = "";
	uint8_t *expect = malloc(IMG_SIZE);
	int res = -1;
	char snap[400];

	nbdws_dev_path(index, dev, sizeof(dev));
	nbdws_disk_name(index, disk, sizeof(disk));
	ASSERT_EQ(0, tu_disk_attr(disk, "ro", ro, sizeof(ro)));
	ASSERT_STREQ("1", ro) TH_LOG("%s: ro is %s", disk, ro);
	ASSERT_EQ(0, tu_child_run(try_write_child, dev, 60000, &res));
	ASSERT_EQ(0, res) TH_LOG("write to read-only device: %d (%s)", res,
				 res == 111 ? "accepted" :
				 res == 112 ? "buffered write flushed" :
				 strerror(res));
	/* And the server's data did not change. */
	ASSERT_EQ(0, peer_snapshot(peer, snap, sizeof(snap)));
	tu_pattern(expect, 0, IMG_SIZE, SEED_A);
	ASSERT_EQ(-1, file_vs_buf(snap, expect, IMG_SIZE));
	free(expect);
}

FIXTURE(single) {
	struct peer peer;
	int index;
	struct nl nl;
	char mnt[300];
	bool mounted;
};

FIXTURE_SETUP(single)
{
	self->index = -1;
	ASSERT_EQ(0, nl_open(&self->nl));
}

FIXTURE_TEARDOWN(single)
{
	char out[512];

	if (self->mounted)
		tu_sh(30000, out, sizeof(out), "umount -l '%s'", self->mnt);
	force_disconnect(&self->index);
	peer_stop(&self->peer);
	nl_close(&self->nl);
}

TEST_F_TIMEOUT(single, read_only_server, 240)
{
	const char *ro[] = { "-r", NULL };
	const char *args[] = { "file", NULL, NULL };

	ASSERT_EQ(0, peer_scratch(&self->peer));
	ASSERT_EQ(0, tu_make_image(self->peer.image, IMG_SIZE, SEED_A));
	args[1] = self->peer.image;
	ASSERT_EQ(0, peer_start_nbdkit(&self->peer, false, ro, args));
	ASSERT_EQ(0, connect_dev(_metadata, NULL, self->peer.uri,
				 &self->index));
	check_read_only(_metadata, self->index, &self->peer);
	disconnect_dev(_metadata, &self->index);
}

TEST_F_TIMEOUT(single, read_only_option, 240)
{
	const char *opts[] = { "--read-only", NULL };
	struct nbdws_dev_status st;

	ASSERT_EQ(0, peer_start(&self->peer, PEER_NBDKIT_FILE, IMG_SIZE,
				SEED_A));
	ASSERT_EQ(0, connect_dev(_metadata, opts, self->peer.uri,
				 &self->index));
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	ASSERT_TRUE(st.client_flags & NBDWS_CF_READ_ONLY);
	check_read_only(_metadata, self->index, &self->peer);
	disconnect_dev(_metadata, &self->index);
}

/* ---- a filesystem ----------------------------------------------------------- */

/* mkfs, mount, copy, remount, checksum, fsck: a filesystem's worth of I/O. */
static void ext4_copy_checksum(struct __test_metadata *_metadata,
			       FIXTURE_DATA(single) *self)
{
	char dev[64], src[400], dst[400], out[4096], s1[128], s2[128];
	int rc;

	ASSERT_EQ(0, connect_peer(_metadata, self, NULL));
	nbdws_dev_path(self->index, dev, sizeof(dev));
	snprintf(self->mnt, sizeof(self->mnt), "%s/mnt", self->peer.dir);
	snprintf(src, sizeof(src), "%s/src.bin", self->peer.dir);
	snprintf(dst, sizeof(dst), "%s/copy.bin", self->mnt);
	ASSERT_EQ(0, mkdir(self->mnt, 0755));
	ASSERT_EQ(0, tu_make_image(src, 8 * TU_MIB, SEED_B));

	/* ext4 is a module on Debian; the guest may not autoload it. */
	tu_sh(30000, out, sizeof(out), "modprobe ext4");
	rc = tu_sh(120000, out, sizeof(out), "mkfs.ext4 -q -F %s", dev);
	ASSERT_EQ(0, rc) TH_LOG("mkfs.ext4: %s", out);
	ASSERT_EQ(0, mount(dev, self->mnt, "ext4", 0, NULL))
		TH_LOG("mount: %s", strerror(errno));
	self->mounted = true;
	rc = tu_sh(60000, out, sizeof(out), "cp '%s' '%s' && sync", src, dst);
	ASSERT_EQ(0, rc) TH_LOG("cp: %s", out);
	ASSERT_EQ(0, umount(self->mnt));
	self->mounted = false;
	/* Drop what the page cache remembers: the data must come back. */
	tu_sh(10000, out, sizeof(out), "echo 3 > /proc/sys/vm/drop_caches");

	ASSERT_EQ(0, mount(dev, self->mnt, "ext4", MS_RDONLY, NULL))
		TH_LOG("remount: %s", strerror(errno));
	self->mounted = true;
	ASSERT_EQ(0, tu_sh(60000, s1, sizeof(s1), "sha256sum < '%s'", src));
	ASSERT_EQ(0, tu_sh(60000, s2, sizeof(s2), "sha256sum < '%s'", dst))
		TH_LOG("%s", s2);
	ASSERT_STREQ(s1, s2);
	ASSERT_EQ(-1, tu_file_cmp(src, dst, 8 * TU_MIB));
	ASSERT_EQ(0, umount(self->mnt));
	self->mounted = false;
	rc = tu_sh(120000, out, sizeof(out), "e2fsck -fn %s", dev);
	ASSERT_EQ(0, rc) TH_LOG("fsck: %s", out);
	disconnect_dev(_metadata, &self->index);
}

TEST_F_TIMEOUT(single, ext4_on_nbdkit_memory, 300)
{
	ASSERT_EQ(0, peer_start(&self->peer, PEER_NBDKIT_MEMORY, IMG_SIZE,
				SEED_A));
	ext4_copy_checksum(_metadata, self);
}

TEST_F_TIMEOUT(single, ext4_on_qemu_nbd, 300)
{
	ASSERT_EQ(0, peer_start(&self->peer, PEER_QEMU_NBD, IMG_SIZE, SEED_A));
	ext4_copy_checksum(_metadata, self);
}

/* ---- TRIM and WRITE_ZEROES reach the server ------------------------------- */

/*
 * nbdkit's file plugin on a fresh SEED_A image behind its log filter: the
 * log (p->log) shows what the server received, request by request.
 */
static int start_logged_file_peer(struct peer *p)
{
	char logarg[400];
	const char *pre[] = { "--filter=log", NULL };
	const char *plug[] = { "file", p->image, logarg, NULL };
	int ret = peer_scratch(p);

	if (!ret)
		ret = tu_make_image(p->image, IMG_SIZE, SEED_A);
	if (ret)
		return ret;
	snprintf(logarg, sizeof(logarg), "logfile=%s", p->log);
	return peer_start_nbdkit(p, false, pre, plug);
}

struct zero_check_arg {
	char path[64];
	uint64_t off, len;
};

static int read_zero_child(void *p)
{
	struct zero_check_arg *a = p;
	void *buf;
	int fd, ret;

	if (posix_memalign(&buf, 4096, a->len))
		return ENOMEM;
	fd = open(a->path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return errno;
	ret = tu_pread_full(fd, buf, a->len, a->off);
	close(fd);
	if (!ret && !tu_all_zero(buf, a->len))
		ret = EILSEQ;
	return ret;
}

TEST_F_TIMEOUT(single, trim_and_write_zeroes_reach_server, 240)
{
	struct zero_check_arg z = { .off = 12 * TU_MIB, .len = 4 * TU_MIB };
	char dev[64], disk[32], out[8192], *log;
	uint8_t *expect = malloc(IMG_SIZE);
	int rc, res = -1;

	ASSERT_EQ(0, start_logged_file_peer(&self->peer));
	ASSERT_EQ(0, connect_dev(_metadata, NULL, self->peer.uri,
				 &self->index));
	nbdws_dev_path(self->index, dev, sizeof(dev));
	nbdws_disk_name(self->index, disk, sizeof(disk));
	ASSERT_LT(0, tu_disk_attr_num(disk, "queue/discard_max_bytes"));
	ASSERT_LT(0, tu_disk_attr_num(disk, "queue/write_zeroes_max_bytes"));

	rc = tu_sh(60000, out, sizeof(out), "blkdiscard -o %llu -l %llu %s",
		   4 * TU_MIB, 4 * TU_MIB, dev);
	ASSERT_EQ(0, rc) TH_LOG("blkdiscard: %s", out);
	rc = tu_sh(60000, out, sizeof(out), "blkdiscard -z -o %llu -l %llu %s",
		   (unsigned long long)z.off, (unsigned long long)z.len, dev);
	ASSERT_EQ(0, rc) TH_LOG("blkdiscard -z: %s", out);
	snprintf(z.path, sizeof(z.path), "%s", dev);
	ASSERT_EQ(0, tu_child_run(read_zero_child, &z, 60000, &res));
	ASSERT_EQ(0, res) TH_LOG("zeroed range reads back: %s", strerror(res));
	disconnect_dev(_metadata, &self->index);

	/* The server saw the commands themselves, not emulated writes. */
	log = malloc(1 << 20);
	rc = tu_sh(10000, log, 1 << 20, "cat '%s'", self->peer.log);
	ASSERT_EQ(0, rc);
	ASSERT_NE(NULL, strstr(log, " Trim ")) TH_LOG("no Trim in log");
	ASSERT_NE(NULL, strstr(log, " Zero ")) TH_LOG("no Zero in log");
	ASSERT_NE(NULL, strstr(log, "offset=0xc00000"))
		TH_LOG("zero request not at 12 MiB");
	/* Backing file: zeroes where zeroed, old data next to it. */
	tu_pattern(expect, 0, IMG_SIZE, SEED_A);
	memset(expect + z.off, 0, z.len);
	/* Trimmed contents are unspecified: take the file's word for it. */
	{
		int fd = open(self->peer.image, O_RDONLY);

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, tu_pread_full(fd, expect + 4 * TU_MIB,
					   4 * TU_MIB, 4 * TU_MIB));
		close(fd);
	}
	ASSERT_EQ(-1, file_vs_buf(self->peer.image, expect, IMG_SIZE));
	free(log);
	free(expect);
}

/* ---- four connections ------------------------------------------------------- */

/*
 * In a child: run on @cpu only (so its I/O goes through that CPU's
 * hardware queue), open @path with O_DIRECT and get an aligned buffer.
 * 0 or an errno.
 */
static int pinned_open(const char *path, int cpu, int flags, size_t buflen,
		       int *fd, void **buf)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return errno;
	if (posix_memalign(buf, 4096, buflen))
		return ENOMEM;
	*fd = open(path, flags | O_DIRECT);
	if (*fd < 0) {
		int e = errno;

		free(*buf);
		return e;
	}
	return 0;
}

struct pinned_read_arg {
	char path[64];
	int cpu;
	uint64_t off;
};

static int pinned_read_child(void *p)
{
	struct pinned_read_arg *a = p;
	uint64_t off;
	void *buf;
	int fd, ret;

	ret = pinned_open(a->path, a->cpu, O_RDONLY, 256 * 1024, &fd, &buf);
	if (ret)
		return ret;
	for (off = a->off; off < a->off + 8 * TU_MIB && !ret;
	     off += 256 * 1024) {
		ret = tu_pread_full(fd, buf, 256 * 1024, off);
		if (!ret && tu_pattern_check(buf, off, 256 * 1024, SEED_A) != -1)
			ret = EILSEQ;
	}
	close(fd);
	return ret;
}

TEST_F_TIMEOUT(single, four_connections, 240)
{
	const char *opts[] = { "-c", "4", NULL };
	struct pinned_read_arg pa[2];
	struct nbdws_dev_status st;
	int ncpu = sysconf(_SC_NPROCESSORS_ONLN), i, used = 0, res;
	char out[16384];
	pid_t pid[2];
	uint64_t bytes = 0;

	ASSERT_EQ(0, peer_start(&self->peer, PEER_NBDKIT_MEMORY, IMG_SIZE,
				SEED_A));
	ASSERT_EQ(0, connect_dev(_metadata, opts, self->peer.uri,
				 &self->index));
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	ASSERT_EQ(4, st.nconns);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(NBDWS_CONN_ALIVE, st.conns[i].state);

	/* Readers on different CPUs land on different hardware queues. */
	for (i = 0; i < 2; i++) {
		nbdws_dev_path(self->index, pa[i].path, sizeof(pa[i].path));
		pa[i].cpu = i % ncpu;
		pa[i].off = (uint64_t)i * 16 * TU_MIB;
		pid[i] = tu_child_start(pinned_read_child, &pa[i]);
	}
	for (i = 0; i < 2; i++) {
		res = -1;
		ASSERT_EQ(0, tu_child_wait(pid[i], 120000, &res));
		ASSERT_EQ(0, res) TH_LOG("reader %d: %s", i, strerror(res));
	}
	ASSERT_EQ(0, nbdws_status(&self->nl, self->index, &st));
	for (i = 0; i < st.nconns; i++) {
		used += st.conns[i].stat[NBDWS_STAT_A_READS] > 0;
		bytes += st.conns[i].stat[NBDWS_STAT_A_READ_BYTES];
	}
	ASSERT_LE(16 * TU_MIB, bytes);
	ASSERT_LE(ncpu >= 2 ? 2 : 1, used)
		TH_LOG("reads from %d CPUs used %d connection(s)", ncpu, used);

	/* nbdctl tells the same story. */
	ASSERT_EQ(0, tu_sh(30000, out, sizeof(out),
			   "%s -j status /dev/%s%d | /usr/bin/python3 -c '"
			   "import json,sys; d=json.load(sys.stdin); "
			   "d=d[0] if isinstance(d,list) else d; "
			   "assert d[\"connections\"]==4, d; "
			   "assert len(d[\"conns\"])==4, d'",
			   tu_nbdctl(), NBDWS_DISK_NAME, self->index))
		TH_LOG("nbdctl status -j: %s", out);
	disconnect_dev(_metadata, &self->index);
}

/* ---- FLUSH across connections ------------------------------------------ */

#define SEED_F	0x666c757368ULL		/* what the flush test writes */

struct pinned_write_arg {
	char path[64];
	int cpu;
	uint64_t off, len;
};

/* O_DIRECT writes from one CPU, so they go out on that CPU's queue. */
static int pinned_write_child(void *p)
{
	struct pinned_write_arg *a = p;
	uint64_t off;
	void *buf;
	int fd, ret;

	ret = pinned_open(a->path, a->cpu, O_WRONLY, 64 * 1024, &fd, &buf);
	if (ret)
		return ret;
	for (off = a->off; off < a->off + a->len && !ret; off += 64 * 1024) {
		tu_pattern(buf, off, 64 * 1024, SEED_F);
		ret = tu_pwrite_full(fd, buf, 64 * 1024, off);
	}
	close(fd);
	free(buf);
	return ret;
}

/*
 * The NBD spec's rule for CAN_MULTI_CONN servers: a FLUSH covers the
 * writes the server has replied to on any connection before the FLUSH
 * arrived. So the client must not send the FLUSH that fsync() asks for
 * until every write it covers has been replied to, on whichever
 * connection it went. The server's log (one line per request start and
 * end, in order) shows what it saw: the FLUSH must start after the last
 * write returned, and the writes must have used more than one connection.
 */
TEST_F_TIMEOUT(single, flush_after_writes_on_all_connections, 300)
{
	const char *opts[] = { "-c", "4", NULL };
	int ncpu = sysconf(_SC_NPROCESSORS_ONLN), i, rc, res, fd;
	struct pinned_write_arg wa[2];
	char dev[64], *log, *line, *save;
	long last_write_ret = -1, flush_start = -1, n = 0;
	bool conn_seen[64] = { false };
	int conns_used = 0;
	uint8_t *expect;
	pid_t pid[2];

	ASSERT_EQ(0, start_logged_file_peer(&self->peer));
	ASSERT_EQ(0, connect_dev(_metadata, opts, self->peer.uri,
				 &self->index));
	nbdws_dev_path(self->index, dev, sizeof(dev));

	for (i = 0; i < 2; i++) {
		snprintf(wa[i].path, sizeof(wa[i].path), "%s", dev);
		wa[i].cpu = i % ncpu;
		wa[i].off = (uint64_t)i * (IMG_SIZE / 2);
		wa[i].len = IMG_SIZE / 2;
		pid[i] = tu_child_start(pinned_write_child, &wa[i]);
	}
	for (i = 0; i < 2; i++) {
		res = -1;
		ASSERT_EQ(0, tu_child_wait(pid[i], 120000, &res));
		ASSERT_EQ(0, res) TH_LOG("writer %d: %s", i, strerror(res));
	}
	/* Every write is replied to; now the FLUSH. */
	fd = open(dev, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fsync(fd)) TH_LOG("fsync: %s", strerror(errno));
	close(fd);
	disconnect_dev(_metadata, &self->index);

	log = malloc(4 << 20);
	ASSERT_NE(NULL, log);
	rc = tu_sh(10000, log, 4 << 20, "cat '%s'", self->peer.log);
	ASSERT_EQ(0, rc);
	for (line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), n++) {
		const char *c = strstr(line, "connection=");
		int id = c ? atoi(c + 11) : -1;

		/*
		 * The log filter writes "connection=N Write id=K ... ..." when
		 * a request starts and "connection=N ...Write id=K return=R"
		 * when it ends, each line whole and in order.
		 */
		if (strstr(line, " ...Write id=") && strstr(line, "return=")) {
			last_write_ret = n;
			if (id >= 0 && id < 64 && !conn_seen[id]) {
				conn_seen[id] = true;
				conns_used++;
			}
		} else if (strstr(line, " Flush id=")) {
			/* A request's start; its end reads "...Flush id=". */
			flush_start = n;
		}
	}
	free(log);
	ASSERT_LE(0, last_write_ret) TH_LOG("no write in the server's log");
	ASSERT_LE(0, flush_start) TH_LOG("no FLUSH reached the server");
	EXPECT_LT(last_write_ret, flush_start)
		TH_LOG("the last FLUSH (log line %ld) started before the last write returned (line %ld)",
		       flush_start, last_write_ret);
	EXPECT_LE(ncpu >= 2 ? 2 : 1, conns_used)
		TH_LOG("writes from %d CPUs used %d connection(s)", ncpu,
		       conns_used);

	/* And the backing file has every byte. */
	expect = malloc(IMG_SIZE);
	ASSERT_NE(NULL, expect);
	tu_pattern(expect, 0, IMG_SIZE, SEED_F);
	EXPECT_EQ(-1, file_vs_buf(self->peer.image, expect, IMG_SIZE));
	free(expect);
}

TEST_HARNESS_MAIN
