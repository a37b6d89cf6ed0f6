// SPDX-License-Identifier: GPL-2.0
/*
 * A server that knows only NBD_OPT_EXPORT_NAME and answers every other
 * option (OPT_GO included) with NBD_REP_ERR_UNSUP, as browser-based
 * servers do. nbdctl must fall back to EXPORT_NAME, and the device must
 * then read and write the server's bytes exactly. The server is the
 * in-process scripted one, so the test can look straight at its memory.
 */
#include "kselftest_harness.h"
#include "nbdws_test_genl.h"
#include "nbdws_test_peers.h"
#include "nbdws_test_dev.h"
#include "nbdws_test_server.h"

#define IMG_SIZE	(64 * TU_MIB)
#define SEED_A		0x6578706f7274ULL
#define SEED_B		0x6e616d65ULL

FIXTURE(eno) {
	struct ts_server srv;
	struct ts_listener l;
	char dir[256], sock[300], uri[400];
	int index;
};

FIXTURE_SETUP(eno)
{
	self->index = -1;
	snprintf(self->dir, sizeof(self->dir), "%s/nbdws-eno.XXXXXX",
		 tu_tmpdir());
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/s.sock", self->dir);
	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///?socket=%s",
		 self->sock);
	ASSERT_EQ(0, ts_init(&self->srv, IMG_SIZE, SEED_A));
	ASSERT_EQ(0, ts_listen_unix(&self->l, &self->srv, self->sock));
}

FIXTURE_TEARDOWN(eno)
{
	force_disconnect(&self->index);
	ts_listener_stop(&self->l);
	ts_stop(&self->srv);
	unlink(self->sock);
	rmdir(self->dir);
}

struct rw_arg {
	char path[64];
};

/* Check known data, then write a pattern at 8..12 MiB and fsync. */
static int rw_child(void *p)
{
	struct rw_arg *a = p;
	uint64_t off;
	void *buf;
	int fd, ret = 0;

	if (posix_memalign(&buf, 4096, TU_MIB))
		return ENOMEM;
	fd = open(a->path, O_RDWR | O_DIRECT);
	if (fd < 0)
		return errno;
	for (off = 0; off < 8 * TU_MIB && !ret; off += TU_MIB) {
		ret = tu_pread_full(fd, buf, TU_MIB, off);
		if (!ret && tu_pattern_check(buf, off, TU_MIB, SEED_A) != -1)
			ret = EILSEQ;
	}
	for (off = 8 * TU_MIB; off < 12 * TU_MIB && !ret; off += TU_MIB) {
		tu_pattern(buf, off, TU_MIB, SEED_B);
		ret = tu_pwrite_full(fd, buf, TU_MIB, off);
	}
	if (!ret && fsync(fd))
		ret = errno;
	close(fd);
	return ret;
}

TEST_F_TIMEOUT(eno, info_falls_back, 120)
{
	char *argv[] = { (char *)tu_nbdctl(), "info", self->uri, NULL };
	char out[4096];
	int rc = tu_run(argv, 60000, out, sizeof(out));

	ASSERT_EQ(0, rc) TH_LOG("nbdctl info: %s", out);
	ASSERT_NE(NULL, strstr(out, "67108864")) TH_LOG("%s", out);
	ASSERT_LE(1, atomic_load(&self->srv.opts_refused));
}

TEST_F_TIMEOUT(eno, device_works, 240)
{
	const char *opts[] = { "-j", "-c", "2", NULL };
	struct rw_arg a;
	char out[4096];
	uint8_t *expect;
	int rc, res = -1;

	rc = nbdctl_connect(opts, self->uri, &self->index, out, sizeof(out));
	ASSERT_EQ(0, rc) TH_LOG("nbdctl connect: %s", out);
	ASSERT_NE(NULL, strstr(out, "export-name"))
		TH_LOG("negotiation not reported as export-name: %s", out);
	/* OPT_GO was asked and refused, on each connection. */
	ASSERT_LE(2, atomic_load(&self->srv.opts_refused));
	ASSERT_EQ(2, atomic_load(&self->l.handshakes));

	nbdws_dev_path(self->index, a.path, sizeof(a.path));
	ASSERT_EQ(0, tu_wait_path(a.path, true, 10000));
	ASSERT_EQ(0, tu_child_run(rw_child, &a, 120000, &res));
	ASSERT_EQ(0, res) TH_LOG("I/O: %s", strerror(res));
	disconnect_dev(_metadata, &self->index);

	/* The server holds exactly the old data plus what was written. */
	expect = malloc(IMG_SIZE);
	ASSERT_NE(NULL, expect);
	tu_pattern(expect, 0, IMG_SIZE, SEED_A);
	tu_pattern(expect + 8 * TU_MIB, 8 * TU_MIB, 4 * TU_MIB, SEED_B);
	pthread_mutex_lock(&self->srv.dlock);
	rc = memcmp(expect, self->srv.data, IMG_SIZE);
	pthread_mutex_unlock(&self->srv.dlock);
	ASSERT_EQ(0, rc);
	free(expect);
}

TEST_HARNESS_MAIN
