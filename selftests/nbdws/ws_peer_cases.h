/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's WebSocket transport against the scripted peer
 * (lib/ws_nbd_peer.py), which serves a file-backed export and shapes its
 * replies, or breaks the protocol, as each variant asks.
 *
 * One set of cases, two programs: ws_peer_kclient.c (the kernel in the
 * ws-client role, the peer is the WebSocket server) and ws_peer_kserver.c
 * (the kernel in the ws-server role, the peer is the WebSocket client and
 * the NBD server, as a browser is), each defining WS_KERNEL_SERVER before
 * including this file. Two programs rather than one so that each stays
 * well within the runner's time limit under TCG. How each connection is
 * negotiated before CONNECT is described in ws_util.h.
 *
 * Valid streams (one message per reply, random split into frames and
 * messages, several replies per frame, pings and pongs between fragments,
 * pings with payloads that must be echoed): random-pattern writes from
 * several processes at once, FLUSH, reads checked against the pattern,
 * reads of data the image had before, the backing file compared byte for
 * byte, and for some shapes mkfs.ext4 + mount + checksum after a remount.
 * The peer itself checks every frame the kernel sends (masking for the
 * role, fresh mask keys, no reserved bits, control frame rules) and the
 * test requires it to exit cleanly.
 *
 * A close frame mid-I/O: CONN_DEAD with NBDWS_REASON_WS_CLOSE and the
 * peer's close code and reason; the kernel echoes the code. Each protocol
 * violation: CONN_DEAD with NBDWS_REASON_WS_PROTOCOL, the kernel sends
 * close 1002, I/O fails in bounded time, the device still disconnects.
 * Keepalive: pings reach the peer on an idle device; a peer that never
 * answers them, or stops answering them, gets the connection killed with
 * NBDWS_REASON_WS_PING_TIMEOUT. DISCONNECT ends the connection with the
 * close code and reason it was given (1000 without).
 * The harness checks dmesg for oops/WARN afterwards.
 */
#ifndef _NBDWS_WS_PEER_CASES_H
#define _NBDWS_WS_PEER_CASES_H

#include "kselftest_harness.h"
#include "ws_util.h"

#ifndef WS_KERNEL_SERVER
#error "define WS_KERNEL_SERVER (0: kernel is the ws-client, 1: ws-server)"
#endif
#define WS_TRANSPORT	(WS_KERNEL_SERVER ? NBDWS_TRANSPORT_WS_SERVER : \
					    NBDWS_TRANSPORT_WS_CLIENT)

#define IMG_SIZE	(48 * TU_MIB)
#define IMG_SEED	0x77732d70656572ULL	/* the image's initial data */
#define W_SEED		0x77732d7772697465ULL	/* what the test writes */
#define W_REGION	(16 * TU_MIB)		/* written at [0, W_REGION) */
#define OLD_OFF		(32 * TU_MIB)		/* read back, never written */
#define OLD_LEN		(8 * TU_MIB)
#define NWORKERS	4
#define TIMEOUT_MS	30000
#define DEAD_TIMEOUT_MS	3000
/* Generous: the peer is Python under TCG. Still, nothing may hang. */
#define IO_WAIT_MS	300000
#define EVENT_WAIT_MS	60000
#define PEER_EXIT_MS	30000

enum ws_kind {
	WK_DATA,		/* valid stream: data must be right */
	WK_CLOSE,		/* the peer sends a close frame mid-I/O */
	WK_VIOLATION,		/* the peer breaks RFC 6455 mid-I/O */
	WK_KEEPALIVE,		/* idle device, kernel pings, peer answers */
	WK_NO_PONG,		/* kernel pings, peer never answers */
	WK_DISC_CLOSE,		/* DISCONNECT's close frame reaches the peer */
};

FIXTURE(ws) {
	struct nl nl, ev;
	struct ws_peer peer;
	struct ws_handover h;
	uint32_t index;
	bool connected;
	char dev[64];
	char img[256];
};

FIXTURE_VARIANT(ws) {
	enum ws_kind kind;
	const char *args[8];	/* peer flags for this variant */
	bool mkfs;
	/* Summary counters of the peer that must end up > 0. */
	const char *counters[3];
	uint32_t ping_ms;
	int min_pings;		/* WK_NO_PONG: pings the peer must have seen */
	uint16_t close_code;	/* WK_CLOSE, WK_DISC_CLOSE */
	const char *close_reason;
	uint16_t disc_code;	/* WK_DISC_CLOSE: 0 = not given */
	const char *disc_reason;
};

FIXTURE_VARIANT_ADD(ws, one_message_per_reply) {
	.kind = WK_DATA, .mkfs = true,
	.counters = { "messages_tx" },
};

/* The handshake falls back to EXPORT_NAME, as with browser servers. */
FIXTURE_VARIANT_ADD(ws, export_name_only) {
	.kind = WK_DATA, .args = { "--export-name-only" },
	.counters = { "messages_tx" },
};

FIXTURE_VARIANT_ADD(ws, split_random) {
	.kind = WK_DATA, .mkfs = true, .args = { "--split", "random" },
	.counters = { "cont_frames_tx", "reply_split_messages",
		      "multi_reply_frames" },
};

FIXTURE_VARIANT_ADD(ws, coalesce) {
	.kind = WK_DATA, .args = { "--coalesce" },
	.counters = { "multi_reply_frames" },
};

/* Pings (to be echoed) and unsolicited pongs between fragments. */
FIXTURE_VARIANT_ADD(ws, ping_between_fragments) {
	.kind = WK_DATA, .args = { "--ping-between-fragments" },
	.counters = { "cont_frames_tx", "pongs_ok", "unsolicited_pongs_tx" },
};

FIXTURE_VARIANT_ADD(ws, expect_pong) {
	.kind = WK_DATA, .args = { "--expect-pong" },
	.counters = { "pongs_ok" },
};

FIXTURE_VARIANT_ADD(ws, close_mid_io) {
	.kind = WK_CLOSE,
	.args = { "--close-after", "40", "--close-code", "1001",
		  "--close-reason", "peer going away" },
	.close_code = 1001, .close_reason = "peer going away",
};

/* An application close code, no reason text. */
FIXTURE_VARIANT_ADD(ws, close_mid_io_4000) {
	.kind = WK_CLOSE,
	.args = { "--close-after", "40", "--close-code", "4000",
		  "--close-reason", "" },
	.close_code = 4000, .close_reason = "",
};

#define WS_VIOLATION(name, mode)					\
	FIXTURE_VARIANT_ADD(ws, violation_##name) {			\
		.kind = WK_VIOLATION,					\
		.args = { "--violation", mode, "--after", "40" },	\
	}

WS_VIOLATION(rsv_bits, "rsv");
WS_VIOLATION(unknown_opcode, "opcode");
WS_VIOLATION(text_frame, "text");
WS_VIOLATION(control_too_long, "control-too-long");
WS_VIOLATION(control_fragmented, "control-fragmented");
WS_VIOLATION(wrong_masking, "bad-mask");
WS_VIOLATION(len64_top_bit, "len64-topbit");
WS_VIOLATION(continuation_without_start, "cont-without-start");

FIXTURE_VARIANT_ADD(ws, keepalive) {
	.kind = WK_KEEPALIVE, .ping_ms = 300,
};

FIXTURE_VARIANT_ADD(ws, keepalive_no_pong) {
	.kind = WK_NO_PONG, .ping_ms = 300, .args = { "--no-pong" },
};

/* Answers the first 5 pings, then goes silent, as a frozen peer would. */
FIXTURE_VARIANT_ADD(ws, keepalive_pongs_stop) {
	.kind = WK_NO_PONG, .ping_ms = 300, .args = { "--no-pong-after", "5" },
	.min_pings = 6,
};

/* DISCONNECT without a close code: 1000, no reason. */
FIXTURE_VARIANT_ADD(ws, disconnect_close_default) {
	.kind = WK_DISC_CLOSE, .close_code = 1000, .close_reason = "",
};

/* DISCONNECT with a close code and the longest reason there may be. */
FIXTURE_VARIANT_ADD(ws, disconnect_close_given) {
	.kind = WK_DISC_CLOSE, .disc_code = 4321,
	.disc_reason = "slot /vm1 handed to another client; "
		       "reconnect in a minute or ask the administrator of "
		       "this BMC why - 123 bytes of reason...",
	.close_code = 4321,
};

/*
 * Only what cannot leak: the harness skips the teardown when the setup
 * fails, so the peer, the image and the device come up in ws_bring_up(),
 * inside the test, where a failed assertion still leads to the teardown.
 */
FIXTURE_SETUP(ws)
{
	self->h.fd = -1;
	ASSERT_EQ(0, nl_open(&self->nl));
	ASSERT_EQ(0, nl_open_events(&self->ev));
}

FIXTURE_TEARDOWN(ws)
{
	if (self->connected)
		nbdws_teardown_dev(&self->nl, self->index);
	ws_peer_stop(&self->peer);
	ws_handover_free(&self->h);
	nl_close(&self->ev);
	nl_close(&self->nl);
	unlink(self->img);
	unlink(self->peer.log);
	unlink(self->peer.out);
	unlink(self->peer.port_file);
}

/* Image, peer, handshake in the variant's role, CONNECT. */
static void ws_bring_up(struct __test_metadata *_metadata,
			FIXTURE_DATA(ws) *self,
			const FIXTURE_VARIANT(ws) *variant)
{
	const char *extra[24];
	struct nbdws_connect_args base;
	int n = 0, i, ret;

	snprintf(self->img, sizeof(self->img), "%s/ws-img-%d", tu_tmpdir(),
		 getpid());
	ASSERT_EQ(0, tu_make_image(self->img, IMG_SIZE, IMG_SEED));

	extra[n++] = "--file";
	extra[n++] = self->img;
	extra[n++] = "--path";
	extra[n++] = "/nbd";
	extra[n++] = "--seed";
	extra[n++] = "4242";
	for (i = 0; i < 8 && variant->args[i]; i++)
		extra[n++] = variant->args[i];
	extra[n] = NULL;

	if (WS_KERNEL_SERVER) {
		int kfd = -1, pfd = -1;

		ASSERT_EQ(0, tu_tcp_pair(&kfd, &pfd));
		ret = ws_peer_start(&self->peer, "ks", pfd, extra);
		close(pfd);
		ASSERT_EQ(0, ret);
		ret = ws_serve_peer(kfd, &self->h);
	} else {
		ASSERT_EQ(0, ws_peer_start(&self->peer, "kc", -1, extra));
		ret = ws_dial_peer(self->peer.port, "/nbd", &self->h);
	}
	ASSERT_EQ(0, ret) TH_LOG("handshake with the peer: %s", self->h.why);
	ASSERT_EQ(IMG_SIZE, self->h.info.size);
	ASSERT_EQ(!!strcmp(variant->args[0] ? variant->args[0] : "",
			   "--export-name-only"),
		  !self->h.info.used_export_name);

	nbdws_connect_defaults(&base, IMG_SIZE);
	base.timeout_ms = TIMEOUT_MS;
	base.dead_timeout_ms = DEAD_TIMEOUT_MS;
	base.max_req = 1024 * 1024;
	base.backend = "ws-selftest";
	ret = ws_connect_dev(&self->nl, &self->h, WS_TRANSPORT,
			     variant->ping_ms, &base, &self->index);
	ASSERT_EQ(0, ret) TH_LOG("CONNECT (transport %u): %s (%s)",
				 WS_TRANSPORT, strerror(-ret),
				 self->nl.extack);
	self->connected = true;
	/* The kernel holds its own reference now. */
	close(self->h.fd);
	self->h.fd = -1;
	nbdws_dev_path(self->index, self->dev, sizeof(self->dev));
	ASSERT_EQ(0, tu_wait_path(self->dev, true, 10000));
}

struct io_job {
	const char *dev;
	uint64_t off, len;	/* region of this worker */
	uint64_t seed;		/* pattern written, or expected */
	bool write;
	int sizes;		/* which size cycle to use */
};

/*
 * O_DIRECT I/O over a region with request sizes that vary (512 B .. 1 MiB)
 * so replies of every size get split and coalesced; reads are checked
 * against the pattern. 0, an errno, or EILSEQ for wrong data.
 */
static int io_worker(void *p)
{
	static const size_t cycles[2][6] = {
		{ 4096, 65536, 12288, 1048576, 512, 131072 },
		{ 65536, 4096, 1048576, 8192, 1536, 262144 },
	};
	const struct io_job *j = p;
	uint64_t off = j->off, end = j->off + j->len;
	void *buf;
	int fd, ret = 0, i = 0;

	if (posix_memalign(&buf, 4096, 1048576))
		return ENOMEM;
	fd = open(j->dev, (j->write ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0)
		return errno;
	while (off < end && !ret) {
		size_t len = cycles[j->sizes][i++ % 6];

		if (len > end - off)
			len = end - off;
		if (j->write) {
			tu_pattern(buf, off, len, j->seed);
			ret = tu_pwrite_full(fd, buf, len, off);
		} else {
			ret = tu_pread_full(fd, buf, len, off);
			if (!ret && tu_pattern_check(buf, off, len, j->seed) != -1)
				ret = EILSEQ;
		}
		off += len;
	}
	if (!ret && j->write && fsync(fd))
		ret = errno;
	close(fd);
	free(buf);
	return ret;
}

/* Run @n jobs in parallel; every result must be 0. */
static int run_jobs(struct __test_metadata *_metadata, struct io_job *jobs,
		    int n)
{
	pid_t pid[8];
	int i, res, bad = 0;

	for (i = 0; i < n; i++)
		pid[i] = tu_child_start(io_worker, &jobs[i]);
	for (i = 0; i < n; i++) {
		if (tu_child_wait(pid[i], IO_WAIT_MS, &res)) {
			TH_LOG("worker %d (%s at %llu) stuck", i,
			       jobs[i].write ? "write" : "read",
			       (unsigned long long)jobs[i].off);
			bad++;
		} else if (res) {
			TH_LOG("worker %d (%s at %llu): %s", i,
			       jobs[i].write ? "write" : "read",
			       (unsigned long long)jobs[i].off,
			       res == EILSEQ ? "wrong data" : strerror(res));
			bad++;
		}
	}
	return bad;
}

/* The backing file, after FLUSH: first offset that is wrong, or -1. */
static long long check_backing_file(const char *img)
{
	int fd = open(img, O_RDONLY);
	char *buf = malloc(TU_MIB);
	long long bad = -1;
	uint64_t off;

	if (fd < 0 || !buf) {
		bad = -2;
		goto out;
	}
	for (off = 0; off < IMG_SIZE && bad == -1; off += TU_MIB) {
		if (tu_pread_full(fd, buf, TU_MIB, off)) {
			bad = -2;
			break;
		}
		bad = tu_pattern_check(buf, off, TU_MIB,
				       off < W_REGION ? W_SEED : IMG_SEED);
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return bad;
}

/* A file system on the device: create, fill, remount, verify. */
static int mkfs_mount_check(const char *dev, char *out, size_t outlen)
{
	char mnt[200], sums[220];

	snprintf(mnt, sizeof(mnt), "%s/ws-mnt-%d", tu_tmpdir(), getpid());
	snprintf(sums, sizeof(sums), "%s.sha256", mnt);
	return tu_sh(IO_WAIT_MS, out, outlen,
		     "export PATH=/usr/sbin:/sbin:$PATH; set -e; "
		     /* ext4 is a module on Debian; the guest may not autoload it. */
		     "modprobe ext4 2>/dev/null || true; "
		     "mkdir -p %s; mkfs.ext4 -q -F %s; mount %s %s; "
		     "dd if=/dev/urandom of=%s/a bs=1M count=6 status=none; "
		     "cp %s/a %s/b; sha256sum %s/a %s/b > %s; "
		     "umount %s; echo 3 > /proc/sys/vm/drop_caches; "
		     "mount -o ro %s %s; sha256sum -c --quiet %s; rc=$?; "
		     "umount %s; rmdir %s; rm -f %s; exit $rc",
		     mnt, dev, dev, mnt, mnt, mnt, mnt, mnt, mnt, sums, mnt,
		     dev, mnt, sums, mnt, mnt, sums);
}

/* Disconnect, then the peer must leave cleanly (it checked every frame). */
static void finish_and_check_peer(struct __test_metadata *_metadata,
				  FIXTURE_DATA(ws) *self)
{
	char tail[1500], out[1000];
	int rc;

	EXPECT_EQ(0, nbdws_disconnect(&self->nl, self->index))
		TH_LOG("DISCONNECT: %s", self->nl.extack);
	EXPECT_EQ(0, nbdws_wait_gone(self->index, 30000));
	self->connected = false;
	rc = ws_peer_wait(&self->peer, PEER_EXIT_MS);
	ws_peer_log_tail(&self->peer, tail, sizeof(tail));
	ws_file_tail(self->peer.out, out, sizeof(out));
	EXPECT_EQ(0, rc) TH_LOG("peer exit %d; its log ends:\n%s\nits output:\n%s",
				rc, tail, out);
	EXPECT_EQ(0, ws_peer_log_count(&self->peer, "kernel-violation"))
		TH_LOG("the kernel sent invalid frames:\n%s", tail);
	EXPECT_EQ(0, ws_peer_summary(&self->peer, "pong_mismatch"))
		TH_LOG("%s", tail);
	/*
	 * Fresh random mask keys (client role): repeats of a 32-bit key are
	 * a few in a billion per pair at these frame counts.
	 */
	EXPECT_GE(3, ws_peer_summary(&self->peer, "mask_key_repeats"))
		TH_LOG("%s", tail);
}

static void test_data(struct __test_metadata *_metadata,
		      FIXTURE_DATA(ws) *self,
		      const FIXTURE_VARIANT(ws) *variant)
{
	struct io_job jobs[NWORKERS + 2];
	char out[4096], tail[1500];
	long long bad;
	int i;

	/* Random-pattern writes from several writers at once, then FLUSH. */
	for (i = 0; i < NWORKERS; i++)
		jobs[i] = (struct io_job){ .dev = self->dev,
			.off = i * (W_REGION / NWORKERS),
			.len = W_REGION / NWORKERS, .seed = W_SEED,
			.write = true, .sizes = i & 1 };
	ASSERT_EQ(0, run_jobs(_metadata, jobs, NWORKERS));

	/* Read back what was written, and data the image had before. */
	for (i = 0; i < NWORKERS; i++)
		jobs[i] = (struct io_job){ .dev = self->dev,
			.off = i * (W_REGION / NWORKERS),
			.len = W_REGION / NWORKERS, .seed = W_SEED,
			.sizes = !(i & 1) };
	for (i = 0; i < 2; i++)
		jobs[NWORKERS + i] = (struct io_job){ .dev = self->dev,
			.off = OLD_OFF + i * (OLD_LEN / 2),
			.len = OLD_LEN / 2, .seed = IMG_SEED, .sizes = i };
	ASSERT_EQ(0, run_jobs(_metadata, jobs, NWORKERS + 2));

	/* FLUSH was answered: the peer's file must hold every byte. */
	bad = check_backing_file(self->img);
	ASSERT_EQ(-1, bad) TH_LOG("backing file wrong at %lld", bad);

	if (variant->mkfs) {
		int rc = mkfs_mount_check(self->dev, out, sizeof(out));

		ASSERT_EQ(0, rc) TH_LOG("mkfs/mount/checksum: %s", out);
	}

	finish_and_check_peer(_metadata, self);
	ws_peer_log_tail(&self->peer, tail, sizeof(tail));
	for (i = 0; i < 3 && variant->counters[i]; i++)
		EXPECT_LT(0, ws_peer_summary(&self->peer, variant->counters[i]))
			TH_LOG("peer counter %s not > 0:\n%s",
			       variant->counters[i], tail);
}

/*
 * Reads until the connection dies under them: the first error ends the
 * worker. The whole export in requests of 512 B to 1 MiB is over 200
 * requests, well past the peer's trigger at 40 (partition scan included).
 */
static pid_t start_reader(FIXTURE_DATA(ws) *self, struct io_job *j)
{
	*j = (struct io_job){ .dev = self->dev, .off = 0, .len = IMG_SIZE,
			      .seed = IMG_SEED, .sizes = 0 };
	return tu_child_start(io_worker, j);
}

static void test_conn_ends(struct __test_metadata *_metadata,
			   FIXTURE_DATA(ws) *self,
			   const FIXTURE_VARIANT(ws) *variant)
{
	bool is_close = variant->kind == WK_CLOSE;
	uint32_t want = is_close ? NBDWS_REASON_WS_CLOSE :
				   NBDWS_REASON_WS_PROTOCOL;
	long long t0 = tu_now_ms();
	char tail[1500], pfx[64];
	struct io_job j;
	struct ws_dead_event w;
	pid_t reader;
	int ret, res = -1;

	reader = start_reader(self, &j);
	ASSERT_LT(0, reader);

	ret = ws_wait_event(&self->ev, self->index, NBDWS_EVENT_CONN_DEAD,
			    EVENT_WAIT_MS, &w);
	ws_peer_log_tail(&self->peer, tail, sizeof(tail));
	EXPECT_EQ(0, ret) TH_LOG("no CONN_DEAD; events seen: %s\npeer:\n%s",
				 self->ev.events_seen, tail);
	if (!ret) {
		EXPECT_TRUE(w.ev.has_reason);
		EXPECT_EQ(want, w.ev.reason)
			TH_LOG("CONN_DEAD reason %u (%s)", w.ev.reason,
			       ws_reason_name(w.ev.reason));
		if (is_close) {
			EXPECT_TRUE(w.has_close_code);
			EXPECT_EQ(variant->close_code, w.close_code);
			EXPECT_STREQ(variant->close_reason, w.close_reason);
		}
	}

	/* The kernel answers with a close frame: the echo, or 1002. */
	snprintf(pfx, sizeof(pfx), "close-received code=%u",
		 is_close ? variant->close_code : 1002);
	EXPECT_TRUE(ws_peer_log_has(&self->peer, pfx, 20000))
		TH_LOG("peer never got '%s':\n%s", pfx, tail);

	/* I/O ends in bounded time: nothing left to serve it. */
	ASSERT_EQ(0, tu_child_wait(reader, IO_WAIT_MS, &res))
		TH_LOG("reader still stuck %lld ms later", tu_now_ms() - t0);
	EXPECT_EQ(EIO, res) TH_LOG("reader: %s", strerror(res));

	finish_and_check_peer(_metadata, self);
	if (!is_close)
		EXPECT_EQ(1, ws_peer_log_count(&self->peer, "violation-sent"));
}

static void test_keepalive(struct __test_metadata *_metadata,
			   FIXTURE_DATA(ws) *self)
{
	struct io_job j = { .dev = self->dev, .off = OLD_OFF, .len = TU_MIB,
			    .seed = IMG_SEED };
	struct ws_dead_event w;
	char tail[1500];
	int ret, res = -1, pings;

	/* Idle for 5 s: ~16 pings at 300 ms; TCG may slow the timer. */
	ret = ws_wait_event(&self->ev, self->index, NBDWS_EVENT_CONN_DEAD,
			    5000, &w);
	EXPECT_EQ(-ETIMEDOUT, ret) TH_LOG("connection died: reason %u (%s)",
					  w.ev.reason,
					  ws_reason_name(w.ev.reason));
	pings = ws_peer_log_count(&self->peer, "ping-received");
	ws_peer_log_tail(&self->peer, tail, sizeof(tail));
	EXPECT_LE(3, pings) TH_LOG("%d pings in 5 s:\n%s", pings, tail);

	/* Still serving after all that. */
	ASSERT_EQ(0, tu_child_run(io_worker, &j, IO_WAIT_MS, &res));
	EXPECT_EQ(0, res) TH_LOG("read after idle: %s", strerror(res));
	finish_and_check_peer(_metadata, self);
}

static void test_no_pong(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ws) *self,
			 const FIXTURE_VARIANT(ws) *variant)
{
	struct io_job j = { .dev = self->dev, .off = OLD_OFF, .len = TU_MIB,
			    .seed = IMG_SEED };
	long long t0 = tu_now_ms();
	struct ws_dead_event w;
	char tail[1500];
	int ret, res = -1;

	ret = ws_wait_event(&self->ev, self->index, NBDWS_EVENT_CONN_DEAD,
			    EVENT_WAIT_MS, &w);
	ws_peer_log_tail(&self->peer, tail, sizeof(tail));
	ASSERT_EQ(0, ret) TH_LOG("no CONN_DEAD; events seen: %s\npeer:\n%s",
				 self->ev.events_seen, tail);
	EXPECT_EQ(NBDWS_REASON_WS_PING_TIMEOUT, w.ev.reason)
		TH_LOG("CONN_DEAD reason %u (%s)", w.ev.reason,
		       ws_reason_name(w.ev.reason));
	EXPECT_LE(variant->min_pings > 1 ? variant->min_pings : 1,
		  ws_peer_log_count(&self->peer, "ping-received"))
		TH_LOG("%s", tail);
	TH_LOG("dead %lld ms after connect+setup", tu_now_ms() - t0);

	/* Nothing to serve I/O: it fails after the dead timeout. */
	ASSERT_EQ(0, tu_child_run(io_worker, &j, IO_WAIT_MS, &res));
	EXPECT_EQ(EIO, res) TH_LOG("read on a dead device: %s",
				   strerror(res));
	EXPECT_EQ(0, nbdws_disconnect(&self->nl, self->index))
		TH_LOG("DISCONNECT: %s", self->nl.extack);
	EXPECT_EQ(0, nbdws_wait_gone(self->index, 30000));
	self->connected = false;
	/* The peer ends by EOF or a close; its frames stayed valid. */
	EXPECT_EQ(0, ws_peer_wait(&self->peer, PEER_EXIT_MS));
	EXPECT_EQ(0, ws_peer_log_count(&self->peer, "kernel-violation"));
}

/*
 * DISCONNECT of an idle device: the peer gets a close frame with exactly
 * the code and reason DISCONNECT was given.
 */
static void test_disc_close(struct __test_metadata *_metadata,
			    FIXTURE_DATA(ws) *self,
			    const FIXTURE_VARIANT(ws) *variant)
{
	struct io_job j = { .dev = self->dev, .off = OLD_OFF, .len = TU_MIB,
			    .seed = IMG_SEED };
	const char *reason = variant->disc_reason;
	char tail[1500], want[300];
	int ret, res = -1;

	/* Served, so the connection is up and idle afterwards. */
	ASSERT_EQ(0, tu_child_run(io_worker, &j, IO_WAIT_MS, &res));
	ASSERT_EQ(0, res) TH_LOG("read: %s", strerror(res));

	if (reason)
		ASSERT_EQ(123, strlen(reason));
	ret = nbdws_disconnect_close(&self->nl, self->index,
				     variant->disc_code, reason,
				     reason ? strlen(reason) + 1 : 0, 0);
	ASSERT_EQ(0, ret) TH_LOG("DISCONNECT: %s (%s)", strerror(-ret),
				 self->nl.extack);
	EXPECT_EQ(0, nbdws_wait_gone(self->index, 30000));
	self->connected = false;
	EXPECT_EQ(0, ws_peer_wait(&self->peer, PEER_EXIT_MS));

	/*
	 * NBD_CMD_DISC goes out first, in the same segment as the close
	 * frame as a rule: the peer acts on the close before it parses the
	 * request, so its log cannot show the DISC.
	 */
	ws_peer_log_tail(&self->peer, tail, sizeof(tail));
	/* The whole line: code and reason, nothing after them. */
	snprintf(want, sizeof(want), "close-received code=%u reason=%s\n",
		 variant->close_code, reason ? reason : "");
	EXPECT_TRUE(ws_peer_log_has(&self->peer, want, 0))
		TH_LOG("peer never got '%s':\n%s", want, tail);
	EXPECT_EQ(1, ws_peer_log_count(&self->peer, "close-received"));
	EXPECT_EQ(0, ws_peer_log_count(&self->peer, "kernel-violation"));
}

TEST_F_TIMEOUT(ws, transport, 900)
{
	ws_bring_up(_metadata, self, variant);
	switch (variant->kind) {
	case WK_DATA:
		test_data(_metadata, self, variant);
		break;
	case WK_CLOSE:
	case WK_VIOLATION:
		test_conn_ends(_metadata, self, variant);
		break;
	case WK_KEEPALIVE:
		test_keepalive(_metadata, self);
		break;
	case WK_NO_PONG:
		test_no_pong(_metadata, self, variant);
		break;
	case WK_DISC_CLOSE:
		test_disc_close(_metadata, self, variant);
		break;
	}
}

TEST_HARNESS_MAIN

#endif /* _NBDWS_WS_PEER_CASES_H */
