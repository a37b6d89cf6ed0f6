// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for nbdws-relay's userspace framing (tools/nbdws-relay/
 * fallback.c), run on the relay's own event loop (loop.c) between two
 * socketpairs: the test plays the browser on one (masking its frames as a
 * browser must) and the kernel on the other.
 *
 * The long test moves 64 MiB each way at once in random frame, message and
 * chunk sizes, with pings in between, while each of the test's readers
 * stops reading for a while, and checks every byte against the generator
 * it came from. The short ones check how the pump ends: close codes both
 * ways, the kernel side's EOF, back-pressure bounds, fallback_stop().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "fallback.h"
#include "loop.h"
#include "nbd_sock.h"
#include "ws_frame.h"

/* ---- deterministic data ----------------------------------------------- */

static u64 splitmix(u64 x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Bytes [@pos, @pos + @len) of the stream named @seed. */
static void stream_fill(u64 seed, u64 pos, u8 *out, size_t len)
{
	while (len) {
		u64 w = splitmix(seed ^ (pos / 8) * 0x100000001b3ULL);
		size_t off = pos % 8, n = 8 - off;

		if (n > len)
			n = len;
		memcpy(out, (u8 *)&w + off, n);
		out += n;
		pos += n;
		len -= n;
	}
}

struct rng {
	u64 s;
};

static u64 rnd(struct rng *r)
{
	r->s = splitmix(r->s);
	return r->s;
}

/* Uniform in [lo, hi]. */
static size_t rnd_in(struct rng *r, size_t lo, size_t hi)
{
	return lo + (size_t)(rnd(r) % (hi - lo + 1));
}

/* ---- the browser's side ------------------------------------------------ */

static void put(int fd, const void *buf, size_t len)
{
	const u8 *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort();
		p += n;
		len -= (size_t)n;
	}
}

/* One client frame, masked with @key (NULL: unmasked, a violation). */
static size_t client_frame(u8 *out, u8 op, bool fin, const void *payload,
			   size_t len, const u8 *key)
{
	size_t h = ws_frame_header(out, op, fin, len, key);

	if (key)
		ws_mask_copy(out + h, payload, len, key, 0);
	else if (len)
		memcpy(out + h, payload, len);
	return h + len;
}

static void send_close(int fd, u16 code, const char *reason)
{
	u8 payload[WS_MAX_CONTROL], frame[WS_MAX_HEADER + WS_MAX_CONTROL];
	static const u8 key[4] = { 0x12, 0x34, 0x56, 0x78 };
	size_t len = 0;

	if (code) {
		len = ws_close_payload(payload, code);
		memcpy(payload + len, reason, strlen(reason));
		len += strlen(reason);
	}
	put(fd, frame, client_frame(frame, WS_OP_CLOSE, true, payload, len,
				    key));
}

/*
 * Read what the relay sent until EOF (or @ms), parse it as a client would,
 * and return the close code of its close frame (0: none; -1: a protocol
 * error or a data frame after the close). Data payload goes to @data.
 */
struct client_view {
	u8 data[4096];
	size_t data_len;
	int close_code;
	char reason[WS_MAX_CONTROL + 1];
	bool eof;
	unsigned int pongs;
};

static void client_read_all(int fd, struct client_view *v, int ms)
{
	long long deadline = nbd_now_ms() + ms;
	struct ws_dec dec;
	u8 buf[8192];

	memset(v, 0, sizeof(*v));
	ws_dec_init(&dec, false);
	while (!v->eof) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - nbd_now_ms();
		size_t have, at = 0;
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			v->eof = true;
			return;
		}
		have = (size_t)n;
		while (at < have) {
			struct ws_event ev;
			u64 left_data = ws_dec_data_left(&dec);

			if (left_data) {
				size_t k = have - at;

				if (k > left_data)
					k = (size_t)left_data;
				if (v->data_len + k > sizeof(v->data))
					abort();
				ws_dec_data_copy(&dec, v->data + v->data_len,
						 buf + at, k);
				v->data_len += k;
				at += k;
				continue;
			}
			at += ws_dec_parse(&dec, buf + at, have - at, &ev);
			if (ev.type == WS_EV_CLOSE) {
				v->close_code = ev.close_code;
				memcpy(v->reason, ev.reason, ev.reason_len);
				v->reason[ev.reason_len] = '\0';
				/* Nothing may follow a close frame. */
				if (at < have)
					v->close_code = -1;
				break;
			}
			if (ev.type == WS_EV_ERROR) {
				v->close_code = -1;
				break;
			}
			if (ev.type == WS_EV_PONG)
				v->pongs++;
		}
	}
}

/* ---- one pump on the loop ---------------------------------------------- */

struct rig {
	int ct, cr;		/* client: test's end, relay's end */
	int kt, kr;		/* kernel: test's end, relay's end */
	struct fallback *f;
	bool ended;
	int end_code;
	char end_reason[WS_MAX_CONTROL + 1];
	long long ended_ms;
	struct loop_timer guard;
	struct loop_timer poke;
};

static void on_end(void *arg, u16 code, const char *reason)
{
	struct rig *r = arg;

	r->ended = true;
	r->end_code = code;
	r->ended_ms = nbd_now_ms();
	snprintf(r->end_reason, sizeof(r->end_reason), "%s", reason);
	r->f = NULL;
	loop_stop(0);
}

static void on_guard(void *arg)
{
	(void)arg;
	loop_stop(1);
}

static void rig_sockets(struct rig *r)
{
	int sv[2];

	memset(r, 0, sizeof(*r));
	/* A test's end written to after the relay closed must fail, not kill. */
	signal(SIGPIPE, SIG_IGN);
	if (loop_init())
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	r->ct = sv[0];
	r->cr = sv[1];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	r->kt = sv[0];
	r->kr = sv[1];
}

static void rig_open(struct rig *r, const u8 *pre, size_t pre_len)
{
	rig_sockets(r);
	r->f = fallback_start(r->cr, NULL, pre, pre_len, r->kr, on_end, r);
	if (!r->f)
		abort();
}

/* Run the loop until the pump ends or @ms pass: 0, or 1 on timeout. */
static int rig_run(struct rig *r, int ms)
{
	loop_timer_arm(&r->guard, nbd_now_ms() + ms, on_guard, r);
	return loop_run();
}

static void rig_close(struct rig *r)
{
	loop_timer_cancel(&r->guard);
	loop_timer_cancel(&r->poke);
	if (r->f)
		fallback_stop(r->f, WS_CLOSE_GOING_AWAY, "test over");
	close(r->ct);
	close(r->kt);
	loop_fini();
}

/* The kernel's end: EOF within @ms, with nothing before it? */
static bool kernel_sees_eof(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	u8 b;

	return poll(&p, 1, ms) == 1 && read(fd, &b, 1) == 0;
}

static const u8 key1[4] = { 0xa1, 0xb2, 0xc3, 0xd4 };

TEST(frames_both_ways_pings_and_close_echo)
{
	static const char req[] = "NBD request bytes";
	u8 frame[256], got[64];
	struct client_view v;
	struct rig r;
	u64 tk, tc;
	size_t n = 0;

	rig_open(&r, NULL, 0);
	/* A message in three fragments with a ping inside it. */
	n += client_frame(frame + n, WS_OP_BINARY, false, "abc", 3, key1);
	n += client_frame(frame + n, WS_OP_PING, true, "p1", 2, key1);
	n += client_frame(frame + n, WS_OP_CONT, false, "", 0, key1);
	n += client_frame(frame + n, WS_OP_CONT, true, "defg", 4, key1);
	put(r.ct, frame, n);
	put(r.kt, req, sizeof(req) - 1);
	ASSERT_EQ(1, rig_run(&r, 200));	/* nothing ends it yet */
	ASSERT_EQ(7, read(r.kt, got, sizeof(got)));
	EXPECT_EQ(0, memcmp(got, "abcdefg", 7));
	fallback_stats(r.f, &tk, &tc);
	EXPECT_EQ(7, tk);
	EXPECT_EQ(sizeof(req) - 1, tc);

	send_close(r.ct, 4000, "page stop");
	ASSERT_EQ(0, rig_run(&r, 2000));
	EXPECT_TRUE(r.ended);
	EXPECT_EQ(4000, r.end_code);
	EXPECT_STREQ("page stop", r.end_reason);
	client_read_all(r.ct, &v, 1000);
	/* The request as one binary frame, the pong, the echoed code. */
	EXPECT_EQ(sizeof(req) - 1, v.data_len);
	EXPECT_EQ(0, memcmp(v.data, req, sizeof(req) - 1));
	EXPECT_EQ(1, v.pongs);
	EXPECT_EQ(4000, v.close_code);
	EXPECT_TRUE(v.eof);
	EXPECT_TRUE(kernel_sees_eof(r.kt, 1000));
	rig_close(&r);
}

TEST(preread_is_decoded_first)
{
	u8 frame[64], got[16];
	struct rig r;
	size_t n;

	n = client_frame(frame, WS_OP_BINARY, true, "0123456789", 10, key1);
	/* The handshake's reader took the header and 3 payload bytes. */
	rig_open(&r, frame, 9);
	put(r.ct, frame + 9, n - 9);
	ASSERT_EQ(1, rig_run(&r, 200));
	ASSERT_EQ(10, read(r.kt, got, sizeof(got)));
	EXPECT_EQ(0, memcmp(got, "0123456789", 10));
	rig_close(&r);
}

TEST(close_without_code_is_echoed_empty)
{
	struct client_view v;
	struct rig r;

	rig_open(&r, NULL, 0);
	send_close(r.ct, 0, "");
	ASSERT_EQ(0, rig_run(&r, 2000));
	EXPECT_EQ(WS_CLOSE_NO_STATUS, r.end_code);
	client_read_all(r.ct, &v, 1000);
	EXPECT_EQ(WS_CLOSE_NO_STATUS, v.close_code);	/* empty payload */
	EXPECT_TRUE(v.eof);
	EXPECT_TRUE(kernel_sees_eof(r.kt, 1000));
	rig_close(&r);
}

/*
 * After our close frame the relay has shut down its writing side and waits
 * for the client to hang up; this one does, 100 ms later.
 */
static void hang_up(void *arg)
{
	struct rig *r = arg;

	shutdown(r->ct, SHUT_WR);
}

TEST(unmasked_client_frame_is_closed_with_1002)
{
	struct client_view v;
	u8 frame[64];
	struct rig r;
	long long t0;

	rig_open(&r, NULL, 0);
	put(r.ct, frame, client_frame(frame, WS_OP_BINARY, true, "x", 1,
				      NULL));
	t0 = nbd_now_ms();
	loop_timer_arm(&r.poke, t0 + 100, hang_up, &r);
	ASSERT_EQ(0, rig_run(&r, 3000));
	EXPECT_EQ(WS_CLOSE_PROTOCOL, r.end_code);
	EXPECT_STREQ("unmasked frame from a client", r.end_reason);
	/* Ended by the hang-up, not by the linger timeout. */
	EXPECT_LT(r.ended_ms - t0, 600);
	client_read_all(r.ct, &v, 1000);
	EXPECT_EQ(WS_CLOSE_PROTOCOL, v.close_code);
	EXPECT_STREQ("unmasked frame from a client", v.reason);
	EXPECT_EQ(0, v.data_len);
	EXPECT_TRUE(kernel_sees_eof(r.kt, 1000));
	rig_close(&r);
}

TEST(bad_utf8_close_reason_is_closed_with_1007)
{
	u8 payload[8], frame[32];
	struct client_view v;
	struct rig r;
	size_t n;

	rig_open(&r, NULL, 0);
	n = ws_close_payload(payload, 1000);
	payload[n++] = 0xc0;	/* overlong lead byte */
	payload[n++] = 0x80;
	put(r.ct, frame, client_frame(frame, WS_OP_CLOSE, true, payload, n,
				      key1));
	/* Nobody hangs up: the linger timeout ends it. */
	ASSERT_EQ(0, rig_run(&r, 3000));
	EXPECT_EQ(WS_CLOSE_INVALID_DATA, r.end_code);
	client_read_all(r.ct, &v, 1000);
	EXPECT_EQ(WS_CLOSE_INVALID_DATA, v.close_code);
	EXPECT_TRUE(v.eof);
	rig_close(&r);
}

TEST(client_eof_without_close_is_1006)
{
	struct rig r;

	rig_open(&r, NULL, 0);
	shutdown(r.ct, SHUT_WR);
	ASSERT_EQ(0, rig_run(&r, 2000));
	EXPECT_EQ(1006, r.end_code);
	EXPECT_TRUE(kernel_sees_eof(r.kt, 1000));
	rig_close(&r);
}

TEST(kernel_gone_closes_the_client_with_1001)
{
	struct client_view v;
	struct rig r;

	rig_open(&r, NULL, 0);
	put(r.kt, "last", 4);
	shutdown(r.kt, SHUT_RDWR);
	loop_timer_arm(&r.poke, nbd_now_ms() + 100, hang_up, &r);
	ASSERT_EQ(0, rig_run(&r, 3000));
	EXPECT_EQ(WS_CLOSE_GOING_AWAY, r.end_code);
	client_read_all(r.ct, &v, 1000);
	/* What the kernel wrote before it went still arrives. */
	EXPECT_EQ(4, v.data_len);
	EXPECT_EQ(0, memcmp(v.data, "last", 4));
	EXPECT_EQ(WS_CLOSE_GOING_AWAY, v.close_code);
	EXPECT_TRUE(v.eof);
	rig_close(&r);
}

TEST(stop_sends_the_close_frame_and_does_not_call_end)
{
	struct client_view v;
	struct rig r;

	rig_open(&r, NULL, 0);
	ASSERT_EQ(1, rig_run(&r, 50));
	fallback_stop(r.f, WS_CLOSE_INTERNAL, "start hook failed");
	r.f = NULL;
	client_read_all(r.ct, &v, 1000);
	EXPECT_EQ(WS_CLOSE_INTERNAL, v.close_code);
	EXPECT_STREQ("start hook failed", v.reason);
	EXPECT_TRUE(v.eof);
	EXPECT_TRUE(kernel_sees_eof(r.kt, 1000));
	EXPECT_FALSE(r.ended);
	rig_close(&r);
}

/*
 * A kernel that does not read: the relay must stop reading the client
 * once its buffer is full, so what the client manages to write is bounded
 * by socket buffers plus the relay's, and then nothing is lost.
 */
TEST(backpressure_bounds_what_the_client_can_push)
{
	const size_t total = 16 << 20, msg = 64 << 10;
	size_t sent = 0, wire = 0, got = 0, at = 0;
	u8 *data = malloc(total), *buf = malloc(msg + 14), *in = malloc(msg);
	struct rig r;
	int fl;

	stream_fill(7, 0, data, total);
	rig_open(&r, NULL, 0);
	fl = fcntl(r.ct, F_GETFL);
	fcntl(r.ct, F_SETFL, fl | O_NONBLOCK);
	/* Push until the client's socket refuses more, with the loop running. */
	for (;;) {
		size_t n;
		ssize_t w = 0;

		if (at == wire) {
			if (sent == total)
				break;
			wire = client_frame(buf, WS_OP_BINARY, true,
					    data + sent, msg, key1);
			at = 0;
			sent += msg;
		}
		n = wire - at;
		w = write(r.ct, buf + at, n);
		if (w < 0 && errno == EAGAIN) {
			ASSERT_EQ(1, rig_run(&r, 50));
			w = write(r.ct, buf + at, n);
			if (w < 0 && errno == EAGAIN)
				break;	/* still full after the relay ran */
		}
		ASSERT_LT(0, w);
		at += (size_t)w;
	}
	/* 16 MiB did not fit: the relay stopped taking it. */
	EXPECT_LT(sent, 4 << 20);
	/* Now the kernel reads: every byte arrives, in order. */
	fcntl(r.kt, F_SETFL, fcntl(r.kt, F_GETFL) | O_NONBLOCK);
	while (got < sent) {
		ssize_t n = read(r.kt, in, msg);

		if (n < 0 && errno == EAGAIN) {
			/* The rest of the frame the client was writing. */
			if (at < wire) {
				ssize_t w = write(r.ct, buf + at, wire - at);

				if (w > 0)
					at += (size_t)w;
			}
			ASSERT_EQ(1, rig_run(&r, 20));
			continue;
		}
		ASSERT_LT(0, n);
		ASSERT_EQ(0, memcmp(in, data + got, (size_t)n));
		got += (size_t)n;
	}
	EXPECT_EQ(at, wire);
	free(data);
	free(buf);
	free(in);
	rig_close(&r);
}

/* ---- 64 MiB each way, all at once ------------------------------------- */

#define BIG		((u64)64 << 20)
#define SEED_UP		0x5eed0001ULL	/* client to kernel */
#define SEED_DOWN	0x5eed0002ULL	/* kernel to client */

struct big {
	struct rig r;
	atomic_bool up_done;		/* kernel reader has all of it */
	atomic_bool down_done;		/* client reader has all of it */
	atomic_uint last_ping;		/* sequence of the last ping sent */
	atomic_uint last_pong;
	atomic_bool go_close;		/* main has taken the stats */
	atomic_bool fail;
	char why[128];
	int client_close;		/* code in the relay's close frame */
	bool client_eof, kernel_eof;
	unsigned int pongs;
};

static void big_fail(struct big *b, const char *why)
{
	if (!atomic_exchange(&b->fail, true))
		snprintf(b->why, sizeof(b->why), "%s", why);
}

/* The browser sending: random messages, fragments, pings, chunking. */
static void *client_writer(void *arg)
{
	struct big *b = arg;
	struct rng r = { 1 };
	size_t cap = 4 * ((1 << 20) + 64) + 4096;
	u8 *out = malloc(cap), *pay = malloc(1 << 20);
	u64 pos = 0;
	unsigned int seq = 0;

	while (pos < BIG && !atomic_load(&b->fail)) {
		size_t frames = rnd_in(&r, 1, 4), used = 0, i, at;

		for (i = 0; i < frames && pos < BIG; i++) {
			size_t len, kind = rnd_in(&r, 0, 3);
			bool last = i + 1 == frames;
			u8 key[4];
			u64 k = rnd(&r);

			/* All three length forms, and empty fragments. */
			len = kind == 0 ? rnd_in(&r, 0, 125) :
			      kind == 1 ? rnd_in(&r, 126, 65535) :
			      rnd_in(&r, 65536, 1 << 20);
			if (len > BIG - pos)
				len = (size_t)(BIG - pos);
			if (pos + len == BIG)
				last = true;
			memcpy(key, &k, 4);
			stream_fill(SEED_UP, pos, pay, len);
			used += client_frame(out + used, i ? WS_OP_CONT :
					     WS_OP_BINARY, last, pay, len, key);
			pos += len;
			if (rnd_in(&r, 0, 5) == 0) {
				u8 ping[8];

				/* Control frames may sit inside a message. */
				seq++;
				memcpy(ping, &seq, sizeof(seq));
				used += client_frame(out + used, WS_OP_PING,
						     true, ping, sizeof(seq),
						     key);
				atomic_store(&b->last_ping, seq);
			}
			if (last)
				break;
		}
		/* Random chunks, down to single bytes inside headers. */
		for (at = 0; at < used;) {
			size_t n = rnd_in(&r, 0, 2) ? rnd_in(&r, 1, 200000) :
				   rnd_in(&r, 1, 16);

			if (n > used - at)
				n = used - at;
			put(b->r.ct, out + at, n);
			at += n;
		}
	}
	/* Everything delivered both ways, every ping answered: close. */
	while (!atomic_load(&b->fail) && !atomic_load(&b->go_close))
		usleep(1000);
	send_close(b->r.ct, WS_CLOSE_NORMAL, "bye");
	free(out);
	free(pay);
	return NULL;
}

/* The browser receiving: frames parsed in client role, checked. */
static void *client_reader(void *arg)
{
	struct big *b = arg;
	struct rng r = { 2 };
	u8 *buf = malloc(300000), *want = malloc(300000);
	struct ws_dec dec;
	u64 pos = 0;

	ws_dec_init(&dec, false);
	for (;;) {
		size_t have, at = 0;
		ssize_t n = read(b->r.ct, buf, rnd_in(&r, 1, 300000));

		if (n <= 0) {
			b->client_eof = n == 0;
			break;
		}
		if (pos > BIG / 3 && pos < BIG / 3 + 300000)
			usleep(300000);	/* a browser busy elsewhere */
		have = (size_t)n;
		while (at < have) {
			u64 left = ws_dec_data_left(&dec);
			struct ws_event ev;

			if (left) {
				size_t k = have - at;

				if (k > left)
					k = (size_t)left;
				if (pos + k > BIG) {
					big_fail(b, "too much data for the client");
					goto out;
				}
				stream_fill(SEED_DOWN, pos, want, k);
				ws_dec_data_copy(&dec, buf + at, buf + at, k);
				if (memcmp(buf + at, want, k)) {
					big_fail(b, "client got wrong bytes");
					goto out;
				}
				pos += k;
				at += k;
				if (pos == BIG)
					atomic_store(&b->down_done, true);
				continue;
			}
			at += ws_dec_parse(&dec, buf + at, have - at, &ev);
			if (ev.type == WS_EV_PONG) {
				unsigned int s;

				memcpy(&s, ev.payload, sizeof(s));
				if (ev.payload_len != sizeof(s) ||
				    s <= atomic_load(&b->last_pong)) {
					big_fail(b, "pong out of order");
					goto out;
				}
				b->pongs++;
				atomic_store(&b->last_pong, s);
			} else if (ev.type == WS_EV_CLOSE) {
				b->client_close = ev.close_code;
			} else if (ev.type == WS_EV_ERROR) {
				big_fail(b, ev.reason);
				goto out;
			}
			if (ev.type == WS_EV_CLOSE)
				break;
		}
	}
out:
	free(buf);
	free(want);
	return NULL;
}

/* The kernel receiving: bytes in order, a pause, then EOF. */
static void *kernel_reader(void *arg)
{
	struct big *b = arg;
	struct rng r = { 3 };
	u8 *buf = malloc(1 << 20), *want = malloc(1 << 20);
	u64 pos = 0;

	for (;;) {
		ssize_t n = read(b->r.kt, buf, rnd_in(&r, 1, 1 << 20));

		if (n <= 0) {
			b->kernel_eof = n == 0;
			break;
		}
		if (pos + (u64)n > BIG) {
			big_fail(b, "too much data for the kernel");
			break;
		}
		stream_fill(SEED_UP, pos, want, (size_t)n);
		if (memcmp(buf, want, (size_t)n)) {
			big_fail(b, "kernel got wrong bytes");
			break;
		}
		if (pos < BIG / 2 && pos + (u64)n >= BIG / 2)
			usleep(300000);	/* a stalled device: back-pressure */
		pos += (u64)n;
		if (pos == BIG)
			atomic_store(&b->up_done, true);
	}
	free(buf);
	free(want);
	return NULL;
}

/* The kernel sending: random chunk sizes. */
static void *kernel_writer(void *arg)
{
	struct big *b = arg;
	struct rng r = { 4 };
	u8 *buf = malloc(1 << 20);
	u64 pos = 0;

	while (pos < BIG && !atomic_load(&b->fail)) {
		size_t n = rnd_in(&r, 0, 3) ? rnd_in(&r, 1, 1 << 20) :
			   rnd_in(&r, 1, 64);

		if (n > BIG - pos)
			n = (size_t)(BIG - pos);
		stream_fill(SEED_DOWN, pos, buf, n);
		put(b->r.kt, buf, n);
		pos += n;
	}
	free(buf);
	return NULL;
}

TEST(sixty_four_mib_each_way_in_random_frames)
{
	struct big *b = calloc(1, sizeof(*b));
	pthread_t th[4];
	long long deadline = nbd_now_ms() + 100000;
	u64 tk = 0, tc = 0;
	int i;

	rig_open(&b->r, NULL, 0);
	ASSERT_EQ(0, pthread_create(&th[0], NULL, client_writer, b));
	ASSERT_EQ(0, pthread_create(&th[1], NULL, client_reader, b));
	ASSERT_EQ(0, pthread_create(&th[2], NULL, kernel_reader, b));
	ASSERT_EQ(0, pthread_create(&th[3], NULL, kernel_writer, b));
	/* The stats, just before the close ends it. */
	while (!atomic_load(&b->up_done) || !atomic_load(&b->down_done) ||
	       atomic_load(&b->last_pong) != atomic_load(&b->last_ping)) {
		if (nbd_now_ms() > deadline)
			big_fail(b, "stalled");
		if (atomic_load(&b->fail) || rig_run(&b->r, 100) == 0)
			break;
	}
	if (b->r.f)
		fallback_stats(b->r.f, &tk, &tc);
	atomic_store(&b->go_close, true);
	if (!b->r.ended && !atomic_load(&b->fail))
		EXPECT_EQ(0, rig_run(&b->r, 10000));
	if (atomic_load(&b->fail)) {
		/* Unblock the threads before joining them. */
		shutdown(b->r.ct, SHUT_RDWR);
		shutdown(b->r.kt, SHUT_RDWR);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	EXPECT_FALSE(atomic_load(&b->fail)) TH_LOG("%s", b->why);
	EXPECT_TRUE(atomic_load(&b->up_done));
	EXPECT_TRUE(atomic_load(&b->down_done));
	EXPECT_EQ(BIG, tk);
	EXPECT_EQ(BIG, tc);
	EXPECT_LT(0, b->pongs);
	EXPECT_EQ(atomic_load(&b->last_ping), atomic_load(&b->last_pong));
	EXPECT_TRUE(b->r.ended);
	EXPECT_EQ(WS_CLOSE_NORMAL, b->r.end_code);
	EXPECT_STREQ("bye", b->r.end_reason);
	EXPECT_EQ(WS_CLOSE_NORMAL, b->client_close);
	EXPECT_TRUE(b->client_eof);
	EXPECT_TRUE(b->kernel_eof);
	rig_close(&b->r);
	free(b);
}

/* ---- a TLS session kept in userspace ---------------------------------- */

#define TLS_ROUNDS	64
#define TLS_MSG_MAX	(256 << 10)	/* a round trip fits the buffers */
#define SEED_TLS	0x5eed0003ULL

struct tls_rig {
	struct rig r;
	struct tls_conn cli;
	int cli_rc;
	char dir[64];
	unsigned int key_updates;
	int rounds;
	u64 echoed;
	int close_code;
	bool eof;
	atomic_bool fail;
	char why[160];
};

static void tls_fail(struct tls_rig *t, const char *why)
{
	if (!atomic_exchange(&t->fail, true))
		snprintf(t->why, sizeof(t->why), "%s", why);
}

/* The device: everything it is sent comes back, in random chunks. */
static void *kernel_echo(void *arg)
{
	struct tls_rig *t = arg;
	struct rng r = { 5 };
	u8 *buf = malloc(1 << 16);

	for (;;) {
		ssize_t n = read(t->r.kt, buf, rnd_in(&r, 1, 1 << 16));

		if (n <= 0)
			break;
		put(t->r.kt, buf, (size_t)n);
	}
	free(buf);
	return NULL;
}

static void *tls_client_connect(void *arg)
{
	struct tls_rig *t = arg;
	struct tls_opts o = { .server_name = "localhost", .insecure = true };
	struct nbdws_err err;

	t->cli_rc = tls_prepare(&t->cli, &o, &err);
	if (!t->cli_rc)
		t->cli_rc = tls_connect(&t->cli, t->r.ct, 5000, &err);
	return NULL;
}

/* Read from the relay until @want data bytes and a pong came. */
static bool tls_client_collect(struct tls_rig *t, const struct ws_io *io,
			       struct ws_dec *dec, u64 pos, size_t want,
			       u8 *got, u8 *buf)
{
	size_t have = 0;
	bool pong = false;

	while (have < want || !pong) {
		ssize_t n;
		size_t at = 0;

		t->cli.deadline_ms = nbd_now_ms() + 5000;
		n = io->read(io->ctx, buf, 65536);
		if (n <= 0) {
			tls_fail(t, "the relay's TLS stream ended early");
			return false;
		}
		while (at < (size_t)n) {
			u64 left = ws_dec_data_left(dec);
			struct ws_event ev;

			if (left) {
				size_t k = (size_t)n - at;

				if (k > left)
					k = (size_t)left;
				if (have + k > want) {
					tls_fail(t, "more data than was sent");
					return false;
				}
				ws_dec_data_copy(dec, got + have, buf + at, k);
				have += k;
				at += k;
				continue;
			}
			at += ws_dec_parse(dec, buf + at, (size_t)n - at, &ev);
			if (ev.type == WS_EV_PONG)
				pong = true;
			else if (ev.type == WS_EV_CLOSE || ev.type == WS_EV_ERROR) {
				tls_fail(t, "close or error from the relay");
				return false;
			}
		}
	}
	stream_fill(SEED_TLS, pos, buf, want);
	if (memcmp(got, buf, want)) {
		tls_fail(t, "echo differs");
		return false;
	}
	return true;
}

/* The browser over TLS: messages out, their echo back, key updates. */
static void *tls_client(void *arg)
{
	struct tls_rig *t = arg;
	struct rng r = { 6 };
	u8 *pay = malloc(TLS_MSG_MAX), *out = malloc(2 * TLS_MSG_MAX);
	u8 *got = malloc(TLS_MSG_MAX), *buf = malloc(TLS_MSG_MAX + 65536);
	bool tls13 = SSL_version(t->cli.ssl) == TLS1_3_VERSION;
	struct ws_io io;
	u8 close_pl[2], close_fr[16];
	struct ws_dec dec;
	size_t n_close;
	u64 pos = 0;
	int round;

	tls_io(&t->cli, &io);
	ws_dec_init(&dec, false);
	for (round = 0; round < TLS_ROUNDS && !atomic_load(&t->fail);
	     round++) {
		size_t len = rnd_in(&r, 1, TLS_MSG_MAX), used = 0, at = 0;
		u64 k = rnd(&r);
		u8 key[4];

		memcpy(key, &k, 4);
		stream_fill(SEED_TLS, pos, pay, len);
		while (at < len) {
			size_t n = rnd_in(&r, 0, 70000);

			if (n > len - at)
				n = len - at;
			used += client_frame(out + used, at ? WS_OP_CONT :
					     WS_OP_BINARY, at + n == len,
					     pay + at, n, key);
			at += n;
		}
		used += client_frame(out + used, WS_OP_PING, true, "tls", 3,
				     key);
		/* A key update makes the relay's next read want a write. */
		if (tls13 && round % 8 == 3 &&
		    SSL_key_update(t->cli.ssl, SSL_KEY_UPDATE_REQUESTED))
			t->key_updates++;
		t->cli.deadline_ms = nbd_now_ms() + 5000;
		if (io.write(io.ctx, out, used)) {
			tls_fail(t, "TLS write to the relay failed");
			break;
		}
		if (!tls_client_collect(t, &io, &dec, pos, len, got, buf))
			break;
		pos += len;
		t->echoed = pos;
	}
	t->rounds = round;
	/* Close, then the echo of it and the end of the stream. */
	ws_close_payload(close_pl, WS_CLOSE_NORMAL);
	n_close = client_frame(close_fr, WS_OP_CLOSE, true, close_pl, 2,
			       (const u8 *)"kkkk");
	t->cli.deadline_ms = nbd_now_ms() + 5000;
	if (io.write(io.ctx, close_fr, n_close))
		tls_fail(t, "TLS write of the close failed");
	ws_dec_init(&dec, false);
	for (;;) {
		ssize_t n;
		size_t at = 0;
		struct ws_event ev;

		t->cli.deadline_ms = nbd_now_ms() + 5000;
		n = io.read(io.ctx, buf, 4096);
		if (n <= 0) {
			t->eof = n == 0;
			break;
		}
		while (at < (size_t)n) {
			at += ws_dec_parse(&dec, buf + at, (size_t)n - at, &ev);
			if (ev.type == WS_EV_CLOSE) {
				t->close_code = ev.close_code;
				break;
			}
			if (ev.type != WS_EV_PONG && ev.type != WS_EV_NEED_MORE) {
				tls_fail(t, "unexpected frame after the close");
				break;
			}
		}
	}
	free(pay);
	free(out);
	free(got);
	free(buf);
	return NULL;
}

TEST(tls_session_in_userspace_with_key_updates)
{
	struct tls_rig *t = calloc(1, sizeof(*t));
	struct tls_server_opts so = { 0 };
	struct tls_conn *srv_tls = calloc(1, sizeof(*srv_tls));
	struct tls_server *srv;
	struct nbdws_err err;
	char cmd[512], cert[96], key[96];
	pthread_t th[2];

	rig_sockets(&t->r);
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_fallback.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(t->dir));
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
		 " -nodes -days 1 -subj /CN=localhost -keyout k.pem -out c.pem"
		 " >/dev/null 2>&1", t->dir);
	ASSERT_EQ(0, system(cmd));
	snprintf(cert, sizeof(cert), "%s/c.pem", t->dir);
	snprintf(key, sizeof(key), "%s/k.pem", t->dir);
	so.cert_file = cert;
	so.key_file = key;
	ASSERT_EQ(0, tls_server_new(&srv, &so, &err)) TH_LOG("%s", err.msg);

	ASSERT_EQ(0, pthread_create(&th[0], NULL, tls_client_connect, t));
	ASSERT_NE(NULL, srv_tls);
	ASSERT_EQ(0, tls_accept(srv_tls, srv, t->r.cr, 5000, &err))
		TH_LOG("%s", err.msg);
	pthread_join(th[0], NULL);
	ASSERT_EQ(0, t->cli_rc);

	/* The pump owns the session and its struct from here on. */
	t->r.f = fallback_start(t->r.cr, srv_tls, NULL, 0, t->r.kr, on_end,
				&t->r);
	ASSERT_NE(NULL, t->r.f);
	ASSERT_EQ(0, pthread_create(&th[0], NULL, kernel_echo, t));
	ASSERT_EQ(0, pthread_create(&th[1], NULL, tls_client, t));
	EXPECT_EQ(0, rig_run(&t->r, 60000));
	if (!t->r.ended)
		shutdown(t->r.ct, SHUT_RDWR);
	pthread_join(th[1], NULL);
	pthread_join(th[0], NULL);	/* the relay closed the kernel side */

	EXPECT_FALSE(atomic_load(&t->fail)) TH_LOG("%s", t->why);
	EXPECT_EQ(TLS_ROUNDS, t->rounds);
	EXPECT_LT(TLS_ROUNDS * 1024, t->echoed);
	EXPECT_LT(0, t->key_updates);
	EXPECT_TRUE(t->r.ended);
	EXPECT_EQ(WS_CLOSE_NORMAL, t->r.end_code);
	EXPECT_EQ(WS_CLOSE_NORMAL, t->close_code);
	EXPECT_TRUE(t->eof);
	tls_free(&t->cli);
	tls_server_free(srv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	EXPECT_EQ(0, system(cmd));
	rig_close(&t->r);
	free(t);
}

TEST_HARNESS_MAIN
