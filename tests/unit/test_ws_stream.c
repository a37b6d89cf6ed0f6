// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for lib/ws_stream.c over a socketpair. The test plays the
 * peer with raw bytes: frames it sends are built by hand, and frames the
 * stream sends are parsed here by a small independent parser, so mask bits,
 * keys and length forms are checked against RFC 6455 rather than against
 * the codec under test.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "nbd_sock.h"
#include "ws_stream.h"

/* ---- the peer's side ------------------------------------------------ */

static void put(int fd, const void *buf, size_t len)
{
	const u8 *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			abort();
		p += n;
		len -= (size_t)n;
	}
}

/* Send one frame; @mask non-NULL masks it (which a server must not do). */
static void peer_frame(int fd, u8 b0, const void *payload, size_t len,
		       const u8 *mask)
{
	u8 hdr[14], *body = malloc(len + 1);
	size_t h = 2, i;

	hdr[0] = b0;
	if (len < 126) {
		hdr[1] = (u8)len;
	} else if (len < 65536) {
		hdr[1] = 126;
		hdr[2] = (u8)(len >> 8);
		hdr[3] = (u8)len;
		h = 4;
	} else {
		hdr[1] = 127;
		for (i = 0; i < 8; i++)
			hdr[2 + i] = (u8)((u64)len >> (56 - 8 * i));
		h = 10;
	}
	if (mask) {
		hdr[1] |= 0x80;
		memcpy(hdr + h, mask, 4);
		h += 4;
	}
	for (i = 0; i < len; i++)
		body[i] = ((const u8 *)payload)[i] ^ (mask ? mask[i % 4] : 0);
	put(fd, hdr, h);
	if (len)
		put(fd, body, len);
	free(body);
}

static bool get(int fd, void *buf, size_t len)
{
	u8 *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 2000) != 1)
			return false;
		n = read(fd, p, len);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

struct raw_frame {
	u8 b0;
	bool masked;
	u8 len_form;		/* 7-bit length field as sent */
	u8 key[4];
	size_t len;
	u8 *payload;		/* unmasked, malloc'd */
};

/* Parse one frame the stream under test sent. */
static bool peer_read_frame(int fd, struct raw_frame *f)
{
	u8 h[8];
	size_t i;

	memset(f, 0, sizeof(*f));
	if (!get(fd, h, 2))
		return false;
	f->b0 = h[0];
	f->masked = h[1] & 0x80;
	f->len_form = h[1] & 0x7f;
	f->len = f->len_form;
	if (f->len_form == 126) {
		if (!get(fd, h, 2))
			return false;
		f->len = (size_t)h[0] << 8 | h[1];
	} else if (f->len_form == 127) {
		if (!get(fd, h, 8))
			return false;
		f->len = 0;
		for (i = 0; i < 8; i++)
			f->len = f->len << 8 | h[i];
	}
	if (f->masked && !get(fd, f->key, 4))
		return false;
	f->payload = malloc(f->len + 1);
	if (f->len && !get(fd, f->payload, f->len))
		return false;
	for (i = 0; f->masked && i < f->len; i++)
		f->payload[i] ^= f->key[i % 4];
	return true;
}

/* ---- the stream under test ------------------------------------------ */

struct pair {
	int fd;			/* the stream's end */
	int peer;		/* the test's end */
	struct ws_fd_io fio;
	struct ws_io io;
	struct ws_stream s;
};

static void pair_open(struct pair *p, enum ws_role role, const u8 *pre,
		      size_t pre_len, int timeout_ms)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		abort();
	p->fd = sv[0];
	p->peer = sv[1];
	ws_fd_io_init(&p->io, &p->fio, p->fd, timeout_ms);
	if (ws_stream_init(&p->s, &p->io, role, pre, pre_len))
		abort();
}

static void pair_close(struct pair *p)
{
	ws_stream_free(&p->s);
	close(p->fd);
	close(p->peer);
}

TEST(client_masks_every_frame_with_a_fresh_key)
{
	static const size_t sizes[] = { 0, 5, 125, 126, 200, 65535, 65536, 70000 };
	u8 keys[8][4];
	struct pair p;
	size_t i, j;
	u8 *data = malloc(70000);

	for (i = 0; i < 70000; i++)
		data[i] = (u8)(i * 7 + 3);
	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	for (i = 0; i < 8; i++) {
		struct raw_frame f;

		ASSERT_EQ(0, ws_stream_send(&p.s, data, sizes[i]));
		ASSERT_TRUE(peer_read_frame(p.peer, &f));
		EXPECT_EQ(0x82, f.b0);		/* FIN + binary */
		EXPECT_TRUE(f.masked);
		EXPECT_EQ(sizes[i], f.len);
		EXPECT_EQ(sizes[i] < 126 ? sizes[i] : sizes[i] < 65536 ? 126 : 127,
			  f.len_form);
		EXPECT_EQ(0, memcmp(data, f.payload, f.len));
		memcpy(keys[i], f.key, 4);
		free(f.payload);
	}
	/* Fresh random keys: eight equal pairs among them is ~2^-27 likely. */
	for (i = 0; i < 8; i++)
		for (j = i + 1; j < 8; j++)
			EXPECT_NE(0, memcmp(keys[i], keys[j], 4));
	pair_close(&p);
	free(data);
}

TEST(server_sends_unmasked)
{
	struct raw_frame f;
	struct pair p;

	pair_open(&p, WS_ROLE_SERVER, NULL, 0, 2000);
	ASSERT_EQ(0, ws_stream_send(&p.s, "abc", 3));
	ASSERT_TRUE(peer_read_frame(p.peer, &f));
	EXPECT_EQ(0x82, f.b0);
	EXPECT_FALSE(f.masked);
	EXPECT_EQ(0, memcmp("abc", f.payload, 3));
	free(f.payload);
	pair_close(&p);
}

TEST(reads_across_fragments_and_messages_answering_pings)
{
	char buf[16] = "";
	struct raw_frame f;
	struct pair p;

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	peer_frame(p.peer, 0x02, "he", 2, NULL);	/* binary, not FIN */
	peer_frame(p.peer, 0x89, "p1", 2, NULL);	/* ping between fragments */
	peer_frame(p.peer, 0x00, "llo ", 4, NULL);	/* continuation */
	peer_frame(p.peer, 0x8a, "x", 1, NULL);		/* unsolicited pong */
	peer_frame(p.peer, 0x80, "", 0, NULL);		/* empty final fragment */
	peer_frame(p.peer, 0x82, "world!", 6, NULL);	/* next message */
	ASSERT_EQ(0, ws_stream_read(&p.s, buf, 5));
	ASSERT_EQ(0, ws_stream_read(&p.s, buf + 5, 7));
	EXPECT_STREQ("hello world!", buf);
	/* The ping was answered with a masked pong carrying its payload. */
	ASSERT_TRUE(peer_read_frame(p.peer, &f));
	EXPECT_EQ(0x8a, f.b0);
	EXPECT_TRUE(f.masked);
	EXPECT_EQ(2, f.len);
	EXPECT_EQ(0, memcmp("p1", f.payload, 2));
	free(f.payload);
	pair_close(&p);
}

/*
 * A large payload cut into random frames and messages, pings between
 * them, written by a child while the stream reads in random pieces.
 */
TEST(random_framing_round_trip)
{
	const size_t total = 256 * 1024;
	u8 *data = malloc(total), *got = malloc(total);
	struct pair p;
	size_t off, i;
	pid_t pid;
	int st;

	srandom(12345);
	for (i = 0; i < total; i++)
		data[i] = (u8)random();
	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 10000);
	pid = fork();
	if (pid == 0) {
		bool open_msg = false;

		for (off = 0; off < total;) {
			size_t n = 1 + (size_t)random() % 3000;
			bool fin = random() % 2;

			if (n > total - off)
				n = total - off;
			if (off + n == total)
				fin = true;
			peer_frame(p.peer, (u8)((fin ? 0x80 : 0) |
					       (open_msg ? 0x00 : 0x02)),
				   data + off, n, NULL);
			open_msg = !fin;
			off += n;
			if (random() % 4 == 0)
				peer_frame(p.peer, 0x89, data, (size_t)random() % 126, NULL);
		}
		_exit(0);
	}
	for (off = 0; off < total;) {
		size_t n = 1 + (size_t)random() % 5000;

		if (n > total - off)
			n = total - off;
		ASSERT_EQ(0, ws_stream_read(&p.s, got + off, n)) TH_LOG("%s", p.s.err.msg);
		off += n;
	}
	EXPECT_EQ(0, memcmp(data, got, total));
	waitpid(pid, &st, 0);
	EXPECT_EQ(0, st);
	pair_close(&p);
	free(data);
	free(got);
}

TEST(peer_close_is_echoed)
{
	u8 close_payload[] = { 0x03, 0xe9, 'b', 'y', 'e' };	/* 1001 "bye" */
	struct raw_frame f;
	struct pair p;
	char c;

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	peer_frame(p.peer, 0x88, close_payload, sizeof(close_payload), NULL);
	EXPECT_EQ(-ECONNRESET, ws_stream_read(&p.s, &c, 1));
	EXPECT_NE(NULL, strstr(p.s.err.msg, "1001"));
	EXPECT_NE(NULL, strstr(p.s.err.msg, "bye"));
	EXPECT_EQ(1001, p.s.peer_close_code);
	ASSERT_TRUE(peer_read_frame(p.peer, &f));
	EXPECT_EQ(0x88, f.b0);
	EXPECT_TRUE(f.masked);
	ASSERT_EQ(2, f.len);
	EXPECT_EQ(0x03, f.payload[0]);
	EXPECT_EQ(0xe9, f.payload[1]);
	free(f.payload);
	/* Ended: no more reads, sends or second close. */
	EXPECT_EQ(-ECONNRESET, ws_stream_read(&p.s, &c, 1));
	EXPECT_EQ(-ECONNRESET, ws_stream_send(&p.s, "x", 1));
	EXPECT_EQ(0, ws_stream_close(&p.s, 1000));
	pair_close(&p);
}

TEST(peer_close_without_code)
{
	struct raw_frame f;
	struct pair p;
	char c;

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	peer_frame(p.peer, 0x88, "", 0, NULL);
	EXPECT_EQ(-ECONNRESET, ws_stream_read(&p.s, &c, 1));
	EXPECT_EQ(1005, p.s.peer_close_code);
	ASSERT_TRUE(peer_read_frame(p.peer, &f));
	EXPECT_EQ(0x88, f.b0);
	EXPECT_EQ(0, f.len);
	free(f.payload);
	pair_close(&p);
}

/* A close reason is the peer's text: it must not write our messages. */
TEST(peer_close_reason_is_sanitised)
{
	static const u8 close_payload[] =
		"\x03\xe8" "\xc3\xa9t\xc3\xa9\r\nnbdctl: \x1b[2J\a\xc2\x9b.";
	struct raw_frame f;
	struct pair p;
	char c;

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	peer_frame(p.peer, 0x88, close_payload, sizeof(close_payload) - 1, NULL);
	EXPECT_EQ(-ECONNRESET, ws_stream_read(&p.s, &c, 1));
	EXPECT_NE(NULL, strstr(p.s.err.msg,
			       "(code 1000: \xc3\xa9t\xc3\xa9??nbdctl: ?[2J??.)"))
		TH_LOG("%s", p.s.err.msg);
	ASSERT_TRUE(peer_read_frame(p.peer, &f));
	EXPECT_EQ(0x88, f.b0);
	free(f.payload);
	pair_close(&p);
}

/* Each violation ends the stream with -EPROTO and a close 1002 (or 1007). */
TEST(protocol_violations_close_with_code)
{
	static const u8 key[4] = { 1, 2, 3, 4 };
	u8 big[126];
	struct {
		const char *what;
		u8 b0;
		const void *payload;
		size_t len;
		const u8 *mask;
		u16 code;
	} cases[] = {
		{ "masked frame from server", 0x82, "abc", 3, key, 1002 },
		{ "text frame", 0x81, "abc", 3, NULL, 1002 },
		{ "reserved bit", 0xc2, "abc", 3, NULL, 1002 },
		{ "continuation without start", 0x80, "abc", 3, NULL, 1002 },
		{ "fragmented ping", 0x09, "abc", 3, NULL, 1002 },
		{ "ping over 125 bytes", 0x89, big, sizeof(big), NULL, 1002 },
		{ "unknown opcode", 0x83, "abc", 3, NULL, 1002 },
		{ "bad close reason", 0x88, "\x03\xe8\xff", 3, NULL, 1007 },
	};
	size_t i;

	memset(big, 'b', sizeof(big));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct raw_frame f;
		struct pair p;
		char c[3];

		pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
		peer_frame(p.peer, cases[i].b0, cases[i].payload, cases[i].len,
			   cases[i].mask);
		EXPECT_EQ(-EPROTO, ws_stream_read(&p.s, c, 3)) TH_LOG("%s", cases[i].what);
		ASSERT_TRUE(peer_read_frame(p.peer, &f));
		EXPECT_EQ(0x88, f.b0);
		ASSERT_EQ(2, f.len);
		EXPECT_EQ(cases[i].code, f.payload[0] << 8 | f.payload[1])
			TH_LOG("%s", cases[i].what);
		free(f.payload);
		pair_close(&p);
	}
}

TEST(server_role_requires_masked_frames)
{
	static const u8 key[4] = { 9, 8, 7, 6 };
	struct pair p;
	char buf[4] = "";

	pair_open(&p, WS_ROLE_SERVER, NULL, 0, 2000);
	peer_frame(p.peer, 0x82, "abc", 3, key);
	ASSERT_EQ(0, ws_stream_read(&p.s, buf, 3));
	EXPECT_STREQ("abc", buf);
	peer_frame(p.peer, 0x82, "abc", 3, NULL);
	EXPECT_EQ(-EPROTO, ws_stream_read(&p.s, buf, 3));
	pair_close(&p);
}

TEST(eof_without_close)
{
	struct pair p;
	char c[4];

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	peer_frame(p.peer, 0x82, "ab", 2, NULL);
	shutdown(p.peer, SHUT_WR);
	EXPECT_EQ(-ECONNRESET, ws_stream_read(&p.s, c, 4));
	EXPECT_NE(NULL, strstr(p.s.err.msg, "without a close frame"));
	pair_close(&p);
}

TEST(silent_peer_times_out)
{
	long long t0 = nbd_now_ms();
	struct pair p;
	char c;

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 200);
	EXPECT_EQ(-ETIMEDOUT, ws_stream_read(&p.s, &c, 1));
	EXPECT_GE(nbd_now_ms() - t0, 190);
	EXPECT_LT(nbd_now_ms() - t0, 2000);
	pair_close(&p);
}

TEST(preread_bytes_come_first)
{
	/* A frame whose first three bytes arrived with the HTTP response. */
	static const u8 frame[] = { 0x82, 0x05, 'h', 'e', 'l', 'l', 'o' };
	struct pair p;
	char buf[6] = "";

	pair_open(&p, WS_ROLE_CLIENT, frame, 3, 2000);
	put(p.peer, frame + 3, sizeof(frame) - 3);
	ASSERT_EQ(0, ws_stream_read(&p.s, buf, 5));
	EXPECT_STREQ("hello", buf);
	pair_close(&p);
	EXPECT_EQ(-EMSGSIZE, ws_stream_init(&p.s, &p.io, WS_ROLE_CLIENT, frame,
					    WS_STREAM_BUF + 1));
}

TEST(detach_hands_back_unparsed_frames)
{
	static const u8 next[] = { 0x82, 0x03, 'X', 'Y', 'Z', 0x89, 0x00 };
	struct pair p;
	char buf[5] = "";
	u8 *rest;
	size_t len;

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	peer_frame(p.peer, 0x82, "abcd", 4, NULL);
	put(p.peer, next, sizeof(next));
	usleep(10000);	/* let one read take everything */
	ASSERT_EQ(0, ws_stream_read(&p.s, buf, 4));
	EXPECT_STREQ("abcd", buf);
	ASSERT_EQ(0, ws_stream_detach(&p.s, &rest, &len));
	ASSERT_EQ(sizeof(next), len);
	EXPECT_EQ(0, memcmp(next, rest, len));
	free(rest);
	pair_close(&p);
}

TEST(detach_refuses_mid_frame_or_message)
{
	struct pair p;
	char buf[8];
	u8 *rest;
	size_t len;

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	peer_frame(p.peer, 0x82, "abcdef", 6, NULL);
	ASSERT_EQ(0, ws_stream_read(&p.s, buf, 4));
	EXPECT_EQ(-EPROTO, ws_stream_detach(&p.s, &rest, &len));
	EXPECT_EQ(NULL, rest);
	pair_close(&p);

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	peer_frame(p.peer, 0x02, "abcd", 4, NULL);	/* message goes on */
	ASSERT_EQ(0, ws_stream_read(&p.s, buf, 4));
	EXPECT_EQ(-EPROTO, ws_stream_detach(&p.s, &rest, &len));
	pair_close(&p);

	pair_open(&p, WS_ROLE_CLIENT, NULL, 0, 2000);
	peer_frame(p.peer, 0x82, "abcd", 4, NULL);
	ASSERT_EQ(0, ws_stream_read(&p.s, buf, 4));
	ASSERT_EQ(0, ws_stream_detach(&p.s, &rest, &len));
	EXPECT_EQ(0, len);
	EXPECT_EQ(NULL, rest);
	pair_close(&p);
}

TEST(client_and_server_roles_talk)
{
	struct ws_fd_io cf, sf;
	struct ws_io cio, sio;
	struct ws_stream c, s;
	char buf[32] = "";
	int sv[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ws_fd_io_init(&cio, &cf, sv[0], 2000);
	ws_fd_io_init(&sio, &sf, sv[1], 2000);
	ASSERT_EQ(0, ws_stream_init(&c, &cio, WS_ROLE_CLIENT, NULL, 0));
	ASSERT_EQ(0, ws_stream_init(&s, &sio, WS_ROLE_SERVER, NULL, 0));
	ASSERT_EQ(0, ws_stream_send(&c, "from client", 11));
	ASSERT_EQ(0, ws_stream_read(&s, buf, 11));
	EXPECT_STREQ("from client", buf);
	ASSERT_EQ(0, ws_stream_send(&s, "from server", 11));
	ASSERT_EQ(0, ws_stream_read(&c, buf, 11));
	EXPECT_STREQ("from server", buf);
	ASSERT_EQ(0, ws_stream_close(&c, 1000));
	EXPECT_EQ(-ECONNRESET, ws_stream_read(&s, buf, 1));
	EXPECT_EQ(1000, s.peer_close_code);
	ws_stream_free(&c);
	ws_stream_free(&s);
	close(sv[0]);
	close(sv[1]);
}

TEST_HARNESS_MAIN
