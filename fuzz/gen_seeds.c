// SPDX-License-Identifier: GPL-2.0
/*
 * Writes the seed corpus of the parser fuzz targets (nothing binary is
 * committed), one directory per target under OUT:
 *   gen_seeds OUT
 * Each seed is a well-formed input the target's parser accepts, or a
 * near miss it must refuse, so the fuzzer starts past the magic numbers,
 * the accept value and the handshake's order of messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nbd_be.h"
#include "nbd_proto.h"
#include "ws_frame.h"

struct buf {
	u8 *p;
	size_t len;
	size_t cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			exit(1);
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_str(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_u16(struct buf *b, u16 v)
{
	u8 x[2];

	put_be16(x, v);
	put(b, x, 2);
}

static void put_u32(struct buf *b, u32 v)
{
	u8 x[4];

	put_be32(x, v);
	put(b, x, 4);
}

static void put_u64(struct buf *b, u64 v)
{
	u8 x[8];

	put_be64(x, v);
	put(b, x, 8);
}

static const char *out_dir;
static int nseed;

/* Write @ctl control bytes, then @b, as OUT/@target/NNN-@name. */
static void save(const char *target, const char *name, const u8 *ctl,
		 size_t nctl, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%03d-%s", out_dir, target,
		 nseed++, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	if ((nctl && fwrite(ctl, 1, nctl, f) != nctl) ||
	    (n && fwrite(p, 1, n, f) != n))
		exit(1);
	fclose(f);
}

static const char upgrade[] =
	"GET /slot/a?token=abc%2Bd&x HTTP/1.1\r\n"
	"Host: relay.example:8080\r\n"
	"Upgrade: websocket\r\n"
	"Connection: keep-alive, Upgrade\r\n"
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"Sec-WebSocket-Protocol: x, nbd\r\n"
	"Origin: https://relay.example\r\n"
	"\r\n";

static void http_request_seeds(void)
{
	static const char *const reqs[] = {
		"GET /status HTTP/1.1\r\nHost: h\r\n\r\n",
		"HEAD /slots?x=1&token=%41%42 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
		"POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\nHost: h\r\n\r\n",
		"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
		/* One request in two literals. */
		"GET / HTTP/1.1\r\nUpgrade: websocket\r\nHost: h\r\n" /* NOLINT(bugprone-suspicious-missing-comma) */
		"Connection: upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n",
	};
	struct buf b = { 0 };
	u8 ctl;
	size_t i;
	int k;

	ctl = 0x07;	/* no limit to speak of, terminator included */
	save("fuzz_http_request", "upgrade", &ctl, 1, upgrade,
	     strlen(upgrade));
	ctl = 0x0f;	/* the harness appends the blank line */
	save("fuzz_http_request", "upgrade-unterminated", &ctl, 1, upgrade,
	     strlen(upgrade) - 2);
	ctl = 0x01;	/* request line limit 16: 414 */
	save("fuzz_http_request", "upgrade-414", &ctl, 1, upgrade,
	     strlen(upgrade));
	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		ctl = 0x06;
		save("fuzz_http_request", "request", &ctl, 1, reqs[i],
		     strlen(reqs[i]));
	}
	/* 65 fields: 431. */
	put_str(&b, "GET / HTTP/1.1\r\n");
	for (k = 0; k < 65; k++)
		put_str(&b, "X-A: b, c ,, d\r\n");
	put_str(&b, "\r\n");
	ctl = 0x07;
	save("fuzz_http_request", "fields-431", &ctl, 1, b.p, b.len);
	free(b.p);
}

static void http_response_seeds(void)
{
	static const char ok[] =
		"HTTP/1.1 101 Switching Protocols\r\n"
		"Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
	static const char *const other[] = {
		"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n\r\n",
		"HTTP/1.1 302 Found\r\nLocation: wss://elsewhere/x\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.0 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 101\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n\r\n",
	};
	struct buf b = { 0 };
	u8 ctl;
	size_t i;

	put_str(&b, ok);
	put_str(&b, "\r\n");
	ctl = 0x00;
	save("fuzz_http_response", "101", &ctl, 1, b.p, b.len);
	ctl = 0x04;
	save("fuzz_http_response", "101-unterminated", &ctl, 1, ok,
	     strlen(ok) - 2);
	b.len = 0;
	put_str(&b, ok);
	put_str(&b, "Sec-WebSocket-Protocol: nbd\r\nX-Other: a\t b\r\n\r\n");
	ctl = 0x01;
	save("fuzz_http_response", "101-nbd", &ctl, 1, b.p, b.len);
	ctl = 0x02;
	save("fuzz_http_response", "101-nbd-of-two", &ctl, 1, b.p, b.len);
	ctl = 0x00;
	save("fuzz_http_response", "101-unasked", &ctl, 1, b.p, b.len);
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		ctl = (u8)(i & 3);
		save("fuzz_http_response", "refusal", &ctl, 1, other[i],
		     strlen(other[i]));
	}
	free(b.p);
}

static void uri_seeds(void)
{
	static const char *const uris[] = {
		"nbd://localhost/disk",
		"nbd://127.0.0.1:10810/a%20b/c",
		"NBD://[::1]:1234/",
		"nbd://[fe80::1%25eth0]/x",
		"nbd+unix:///disk?socket=/run/nbd%2Esock",
		"nbd+unix:///?socket=/s&socket=/t",
		"ws://relay.example/slot/a?token=x%2By",
		"wss://relay.example:8443?x",
		"wss://[2001:db8::2]:443/",
		"nbds://h/x",
		"nbd://user@h/x",
		"nbd://h:0/",
		"nbd://h:65536/",
		"nbd://h/x#frag",
		"nbd://h/%00",
		"ws://h/a b",
	};
	size_t i;

	for (i = 0; i < sizeof(uris) / sizeof(uris[0]); i++)
		save("fuzz_uri", "uri", NULL, 0, uris[i], strlen(uris[i]));
}

/* NBD server transcripts. */
static void greeting(struct buf *b, u16 flags)
{
	put_u64(b, NBDP_INIT_PASSWD);
	put_u64(b, NBDP_IHAVEOPT);
	put_u16(b, flags);
}

static void opt_reply(struct buf *b, u32 opt, u32 type, const void *p,
		      u32 len)
{
	put_u64(b, NBDP_OPT_REPLY_MAGIC);
	put_u32(b, opt);
	put_u32(b, type);
	put_u32(b, len);
	put(b, p, len);
}

static void info_replies(struct buf *b, u32 opt, bool block_size)
{
	u8 p[64];

	put_be16(p, NBDP_INFO_EXPORT);
	put_be64(p + 2, 1ULL << 30);
	put_be16(p + 10, NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_SEND_FLUSH |
		 NBDP_FLAG_SEND_TRIM);
	opt_reply(b, opt, NBDP_REP_INFO, p, 12);
	put_be16(p, NBDP_INFO_NAME);
	/* NBD strings are length-prefixed, not terminated. */
	memcpy(p + 2, "disk", 4); /* NOLINT(bugprone-not-null-terminated-result) */
	opt_reply(b, opt, NBDP_REP_INFO, p, 6);
	put_be16(p, NBDP_INFO_DESCRIPTION);
	memcpy(p + 2, "a test\x1b[0m", 10); /* NOLINT(bugprone-not-null-terminated-result) */
	opt_reply(b, opt, NBDP_REP_INFO, p, 12);
	if (block_size) {
		put_be16(p, NBDP_INFO_BLOCK_SIZE);
		put_be32(p + 2, 512);
		put_be32(p + 6, 4096);
		put_be32(p + 10, 32U << 20);
		opt_reply(b, opt, NBDP_REP_INFO, p, 14);
	}
	opt_reply(b, opt, NBDP_REP_ACK, NULL, 0);
}

/* Unmasked binary frames of at most @fsz bytes, a ping after the first. */
static void ws_wrap(struct buf *out, const struct buf *in, size_t fsz)
{
	size_t off = 0;
	u8 h[WS_MAX_HEADER];
	bool first = true;

	while (off < in->len) {
		size_t n = in->len - off < fsz ? in->len - off : fsz;

		put(out, h, ws_frame_header(h, WS_OP_BINARY, true, n, NULL));
		put(out, in->p + off, n);
		off += n;
		if (first) {
			put(out, h, ws_frame_header(h, WS_OP_PING, true, 3,
						    NULL));
			put_str(out, "abc");
			first = false;
		}
	}
}

/* Save @t for @call in the plain, raw WebSocket and framed modes. */
static void save_hs(const char *name, int call, const struct buf *t)
{
	struct buf w = { 0 };
	u8 ctl[2];

	ctl[0] = (u8)(call | 0x10);
	ctl[1] = 17;
	save("fuzz_nbd_handshake", name, ctl, 2, t->p, t->len);
	ws_wrap(&w, t, 19);
	ctl[0] = (u8)(call | 0x10 | 2 << 2);
	save("fuzz_nbd_handshake", name, ctl, 2, w.p, w.len);
	ctl[0] = (u8)(call | 0x10 | 3 << 2);
	ctl[1] = 40;
	save("fuzz_nbd_handshake", name, ctl, 2, t->p, t->len);
	free(w.p);
}

static void handshake_seeds(void)
{
	static const u8 zeroes[124];
	struct buf t = { 0 };
	u8 p[64];

	greeting(&t, NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES);
	info_replies(&t, NBDP_OPT_GO, true);
	save_hs("go", 0, &t);

	t.len = 0;
	greeting(&t, NBDP_FLAG_FIXED_NEWSTYLE);
	info_replies(&t, NBDP_OPT_INFO, false);
	save_hs("info", 1, &t);

	/* GO unsupported: fall back to EXPORT_NAME, with the zeroes. */
	t.len = 0;
	greeting(&t, NBDP_FLAG_FIXED_NEWSTYLE);
	opt_reply(&t, NBDP_OPT_GO, NBDP_REP_ERR_UNSUP, "no GO", 5);
	put_u64(&t, 1ULL << 20);
	put_u16(&t, NBDP_FLAG_HAS_FLAGS);
	put(&t, zeroes, sizeof(zeroes));
	save_hs("go-fallback", 0, &t);

	/* Not fixed newstyle: EXPORT_NAME straight away. */
	t.len = 0;
	greeting(&t, NBDP_FLAG_NO_ZEROES);
	put_u64(&t, 4096);
	put_u16(&t, NBDP_FLAG_HAS_FLAGS);
	save_hs("oldnew", 1, &t);

	t.len = 0;
	greeting(&t, NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES);
	opt_reply(&t, NBDP_OPT_GO, NBDP_REP_ERR_UNKNOWN, "no such\x07", 8);
	save_hs("go-unknown", 0, &t);

	t.len = 0;
	greeting(&t, NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES);
	put_be32(p, 4);
	memcpy(p + 4, "diskfirst", 9); /* NOLINT(bugprone-not-null-terminated-result) */
	opt_reply(&t, NBDP_OPT_LIST, NBDP_REP_SERVER, p, 13);
	put_be32(p, 0);
	opt_reply(&t, NBDP_OPT_LIST, NBDP_REP_SERVER, p, 4);
	opt_reply(&t, NBDP_OPT_LIST, NBDP_REP_ACK, NULL, 0);
	save_hs("list", 2, &t);
	free(t.p);
}

/* A frame as the peer of @server_role sends it. */
static void frame(struct buf *b, u8 op, bool fin, const void *p, size_t n,
		  bool masked)
{
	static const u8 key[4] = { 0xa1, 0x02, 0x7f, 0x33 };
	u8 h[WS_MAX_HEADER];
	u8 *m = malloc(n + 1);

	put(b, h, ws_frame_header(h, op, fin, n, masked ? key : NULL));
	if (n) {
		if (masked)
			ws_mask_copy(m, p, n, key, 0);
		else
			memcpy(m, p, n);
	}
	put(b, m, n);
	free(m);
}

static void ws_stream_seeds(void)
{
	static const u8 close_reason[] = { 0x03, 0xe8, 'b', 'y', 'e' };
	u8 data[300];
	struct buf b = { 0 };
	u8 ctl[3];
	int server;
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (u8)(i * 7);
	for (server = 0; server < 2; server++) {
		bool m = server;

		b.len = 0;
		frame(&b, WS_OP_BINARY, true, data, 200, m);
		frame(&b, WS_OP_PING, true, "hi", 2, m);
		frame(&b, WS_OP_BINARY, false, data, 10, m);
		frame(&b, WS_OP_PONG, true, NULL, 0, m);
		frame(&b, WS_OP_CONT, true, data + 10, 290, m);
		frame(&b, WS_OP_CLOSE, true, close_reason, 5, m);
		ctl[0] = (u8)server;
		ctl[1] = 20;
		ctl[2] = 5;
		save("fuzz_ws_stream", "messages-close", ctl, 3, b.p, b.len);

		/* A close without a code: echoed without one. */
		b.len = 0;
		frame(&b, WS_OP_BINARY, true, data, 3, m);
		frame(&b, WS_OP_CLOSE, true, NULL, 0, m);
		ctl[1] = 0;
		ctl[2] = 2;
		save("fuzz_ws_stream", "empty-close", ctl, 3, b.p, b.len);

		/* Wrong masking for the role, and a 64-bit length. */
		b.len = 0;
		frame(&b, WS_OP_BINARY, true, data, 300, !m);
		save("fuzz_ws_stream", "wrong-mask", ctl, 3, b.p, b.len);
		b.len = 0;
		frame(&b, WS_OP_PING, true, data, 2, m);
		frame(&b, WS_OP_BINARY, true, data, 4, m);
		ctl[0] = (u8)(server | 2);
		ctl[2] = 1;
		save("fuzz_ws_stream", "write-fails", ctl, 3, b.p, b.len);
	}
	free(b.p);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
		return 2;
	}
	out_dir = argv[1];
	mkdir(out_dir, 0755);
	http_request_seeds();
	http_response_seeds();
	uri_seeds();
	handshake_seeds();
	ws_stream_seeds();
	return 0;
}
