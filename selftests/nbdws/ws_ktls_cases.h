/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wss:// bursts through a send buffer shrunk with SO_SNDBUF (issue 17,
 * item 2: kTLS must not stall a connection). One case, three programs,
 * each defining KTLS_SNDBUF (what SO_SNDBUF asks for; the kernel doubles
 * it), and optionally KTLS_PEER_RCVBUF (the peer's SO_RCVBUF, a string),
 * before including this file:
 *
 * ws_ktls_burst.c, 64 KiB: guards the wss:// send path with a buffer that
 *   a burst fills. Bursts of 4 KiB to 2 MiB complete in seconds.
 * ws_ktls_cork.c, 4 KiB: a stall this found. kTLS pushes a record with
 *   our MSG_MORE, so TCP holds the record's tail (less than loopback's MSS)
 *   corked; the buffer is then over its limit with nothing in flight, so
 *   kTLS refuses our next piece (-EAGAIN) without pushing that tail, no
 *   ACK comes, and no sk_write_space. Only TCP's probe timer moved data,
 *   8 KiB per probe: a 1 MiB write took longer than the 30 s timeout,
 *   until the sender pushed what TCP holds after every -EAGAIN (kmod/tx.c).
 * ws_ktls_held.c, 4 KiB, the peer's SO_RCVBUF 16 KiB (issue 17 item 2):
 *   kTLS keeps the rest of a record only when TCP refuses it at a new
 *   skb, which TCP starts every size_goal bytes (half the peer's largest
 *   window). The peer's small receive buffer brings size_goal down to
 *   about the send buffer's 8 KiB (6.1) or below one 16 KiB record
 *   (6.12), so a record crossing a cut finds the buffer over its limit
 *   and kTLS holds its rest for its own write_space. Without the chain to
 *   it the first 64 KiB write timed out (EIO after 31-33 s) on both
 *   kernels; with it, 42 operations took 3-6 s.
 *
 * kTLS keeps a record it could not hand to a full TCP buffer and pushes it
 * from its own write_space callback; nbdws.ko installs its own over kTLS's
 * and must pass the call on (commit 9b76d2d), or the tail of the last
 * request of a burst waits in kTLS for the next request or the timeout.
 * Neither program tells that apart: with the call removed both pass, on
 * 6.1 and 6.12 (Documentation/testing.md, issue 17, item 2, says why).
 *
 * The peer is the bench's C NBD server (bench/ws_nbd_peer.c, memory
 * backend) with kernel TLS on its side too: it keeps up even under TCG, so
 * an operation that takes long is one that waited for something. The test
 * dials it as nbdctl does (lib/ws_dial: TLS, upgrade, NBD handshake, kTLS),
 * shrinks the socket's send buffer and hands it over. Every write and read
 * below is a burst whose last request has nothing behind it to push it
 * out. The request timeout is 30 s; each operation must finish within half
 * of that, no request may time out (the connection's TIMEOUTS counter, no
 * CONN_DEAD event) and what is read back must be what was written.
 */
#ifndef _NBDWS_WS_KTLS_CASES_H
#define _NBDWS_WS_KTLS_CASES_H

#ifndef KTLS_SNDBUF
#error "define KTLS_SNDBUF (bytes asked for with SO_SNDBUF)"
#endif

#include <sys/mman.h>

#include "kselftest_harness.h"
#include "ws_util.h"

#define IMG_SIZE	(64 * TU_MIB)
#define W_SEED		0x6b746c73627572ULL
#define TIMEOUT_MS	30000
#define DEAD_TIMEOUT_MS	1000
/* A request that waited for its timeout took 30 s: twice this. */
#define OP_LIMIT_MS	(TIMEOUT_MS / 2)
#define ROUNDS		3
/* Wide enough for a stall or two: each ends in the timeout plus the hold. */
#define IO_WAIT_MS	240000

/* Burst sizes: one record, several, and requests the block layer splits. */
static const size_t burst_len[] = {
	4096, 65536, 1048576, 20480, 2097152, 262144, 1048576,
};
#define MAX_BURST	2097152
#define NBURSTS	(ROUNDS * (sizeof(burst_len) / sizeof(burst_len[0])))

/* What the I/O child found, in memory the parent shares. */
struct burst_report {
	int done;			/* operations that finished in time */
	int failed;			/* the operation that failed, or -1 */
	int err;			/* its errno; ETIME if merely slow */
	char what[16];			/* "write" or "read" */
	size_t len;			/* its length */
	long long worst_ms;		/* slowest operation */
	char worst_what[16];
	size_t worst_len;
	long long total_ms;
};

FIXTURE(ktls) {
	struct ws_ktls_dev d;
	struct burst_report *rep;
};

FIXTURE_SETUP(ktls)
{
#ifdef KTLS_PEER_RCVBUF
	const char *extra[] = { "--rcvbuf", KTLS_PEER_RCVBUF, NULL };
#else
	const char *const *extra = NULL;
#endif

	ASSERT_EQ(0, ws_ktls_dev_open(&self->d, "ktls", IMG_SIZE, extra))
		TH_LOG("%s", self->d.why);
	self->rep = mmap(NULL, sizeof(*self->rep), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->rep);
}

FIXTURE_TEARDOWN(ktls)
{
	EXPECT_EQ(0, ws_ktls_dev_close(&self->d));
	if (self->rep && self->rep != MAP_FAILED)
		munmap(self->rep, sizeof(*self->rep));
}

/* One timed operation; false (with the report filled in) if it failed. */
static bool burst_op(struct burst_report *r, int fd, bool write, void *buf,
		     size_t len, uint64_t off)
{
	long long t0 = tu_now_ms(), ms;
	int ret = write ? tu_pwrite_full(fd, buf, len, off) :
			  tu_pread_full(fd, buf, len, off);

	ms = tu_now_ms() - t0;
	if (ms > r->worst_ms) {
		r->worst_ms = ms;
		r->worst_len = len;
		snprintf(r->worst_what, sizeof(r->worst_what), "%s",
			 write ? "write" : "read");
	}
	if (!ret && ms > OP_LIMIT_MS)
		ret = ETIME;
	if (ret) {
		r->failed = r->done;
		r->err = ret;
		r->len = len;
		snprintf(r->what, sizeof(r->what), "%s",
			 write ? "write" : "read");
		return false;
	}
	r->done++;
	return true;
}

struct burst_arg {
	const char *dev;
	struct burst_report *rep;
};

/*
 * Write a pattern in bursts of every size, one after the other, then read
 * each region back the same way and check it. O_DIRECT: each operation
 * is exactly the requests that carry it, nothing else follows them.
 */
static int burst_child(void *p)
{
	struct burst_arg *a = p;
	struct burst_report *r = a->rep;
	size_t max = MAX_BURST;
	long long t0 = tu_now_ms();
	uint64_t off;
	unsigned int i;
	void *buf;
	int fd;

	r->failed = -1;
	if (posix_memalign(&buf, 4096, max))
		return ENOMEM;
	fd = open(a->dev, O_RDWR | O_DIRECT);
	if (fd < 0)
		return errno;
	for (i = 0, off = 0; i < NBURSTS; i++) {
		size_t len = burst_len[i % (sizeof(burst_len) / sizeof(burst_len[0]))];

		tu_pattern(buf, off, len, W_SEED);
		if (!burst_op(r, fd, true, buf, len, off))
			goto out;
		off += len;
	}
	for (i = 0, off = 0; i < NBURSTS; i++) {
		size_t len = burst_len[i % (sizeof(burst_len) / sizeof(burst_len[0]))];

		memset(buf, 0, len);
		if (!burst_op(r, fd, false, buf, len, off))
			goto out;
		if (tu_pattern_check(buf, off, len, W_SEED) != -1) {
			r->failed = r->done - 1;
			r->err = EILSEQ;
			r->len = len;
			snprintf(r->what, sizeof(r->what), "compare");
			goto out;
		}
		off += len;
	}
out:
	r->total_ms = tu_now_ms() - t0;
	close(fd);
	free(buf);
	return r->err;
}

TEST_F_TIMEOUT(ktls, bursts_complete, 600)
{
	struct nbdws_dev_status st = { 0 };
	struct burst_arg a = { self->d.dev, self->rep };
	struct burst_report *r = self->rep;
	int sndbuf = KTLS_SNDBUF, res = -1, rc;
	socklen_t sl = sizeof(sndbuf);
	char peer_tail[1024];

	/*
	 * Locked (SOCK_SNDBUF_LOCK): TCP will not grow it, so large
	 * requests meet a full buffer.
	 */
	ASSERT_EQ(0, setsockopt(self->d.h.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
				sizeof(sndbuf)));
	ASSERT_EQ(0, getsockopt(self->d.h.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
				&sl));
	ASSERT_GE(2 * KTLS_SNDBUF, sndbuf);

	rc = ws_ktls_dev_connect(&self->d, TIMEOUT_MS, DEAD_TIMEOUT_MS);
	ASSERT_EQ(0, rc) TH_LOG("CONNECT: %s", self->d.nl.extack);

	rc = tu_child_run(burst_child, &a, IO_WAIT_MS, &res);
	ws_file_tail(self->d.peer.out, peer_tail, sizeof(peer_tail));
	ASSERT_EQ(0, rc) TH_LOG("I/O still running after %d s", IO_WAIT_MS / 1000);
	EXPECT_EQ(0, res)
		TH_LOG("%s of %zu bytes (operation %d) failed: %s; slowest %s of %zu bytes took %lld ms; peer: %s",
		       r->what, r->len, r->failed, strerror(res),
		       r->worst_what, r->worst_len, r->worst_ms, peer_tail);
	EXPECT_EQ(2 * (int)NBURSTS, r->done);
	TH_LOG("%d operations in %lld ms, slowest %s of %zu bytes: %lld ms",
	       r->done, r->total_ms, r->worst_what, r->worst_len, r->worst_ms);

	/* No request timed out, and the connection is the one we gave. */
	ASSERT_EQ(0, nbdws_status(&self->d.nl, self->d.index, &st));
	ASSERT_EQ(1, st.nconns);
	EXPECT_EQ(NBDWS_CONN_ALIVE, st.conns[0].state)
		TH_LOG("connection died, reason %u", st.conns[0].reason);
	EXPECT_EQ(0, st.conns[0].stat[NBDWS_STAT_A_TIMEOUTS]);
	EXPECT_EQ(-ETIMEDOUT, nl_wait_event(&self->d.ev, self->d.index,
					    NBDWS_EVENT_CONN_DEAD, 500, NULL))
		TH_LOG("events: %s", self->d.ev.events_seen);
}

TEST_HARNESS_MAIN

#endif /* _NBDWS_WS_KTLS_CASES_H */
