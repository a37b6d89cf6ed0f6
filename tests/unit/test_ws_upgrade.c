// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for lib/ws_upgrade.c: the RFC 6455 accept computation, the
 * request we send, the strict response parser, and the whole client
 * exchange against scripted servers on a socketpair (split and trickled
 * responses, frames sent along with the header, oversized headers,
 * silence, hang-ups).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kselftest_harness.h"

#include "nbd_sock.h"
#include "ws_upgrade.h"

/* RFC 6455 section 1.3 worked example. */
static const char rfc_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char rfc_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

TEST(accept_rfc_example)
{
	char out[WS_ACCEPT_LEN + 1];

	ASSERT_EQ(0, ws_accept_for_key(rfc_key, out));
	EXPECT_STREQ(rfc_accept, out);
	EXPECT_EQ(-EINVAL, ws_accept_for_key("short", out));
}

TEST(keys_are_random_16_bytes)
{
	char a[WS_KEY_LEN + 1], b[WS_KEY_LEN + 1];
	unsigned char raw[32];

	ASSERT_EQ(0, ws_make_key(a, NULL));
	ASSERT_EQ(0, ws_make_key(b, NULL));
	EXPECT_EQ(WS_KEY_LEN, strlen(a));
	/* 24 base64 chars with "==" padding decode to exactly 16 bytes. */
	EXPECT_EQ(18, EVP_DecodeBlock(raw, (unsigned char *)a, WS_KEY_LEN));
	EXPECT_EQ('=', a[22]);
	EXPECT_EQ('=', a[23]);
	EXPECT_STRNE(a, b);
}

TEST(request_text)
{
	struct ws_upgrade_opts o = {
		.host = "example.com:8080", .resource = "/nbd?x=1",
		.subprotocol = "binary, nbd", .authorization = "Bearer abc",
		.origin = "https://bmc.example",
	};
	char *req;
	size_t len;

	ASSERT_EQ(0, ws_build_request(&o, rfc_key, &req, &len, NULL));
	EXPECT_EQ(strlen(req), len);
	EXPECT_STREQ("GET /nbd?x=1 HTTP/1.1\r\n"
		     "Host: example.com:8080\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: binary, nbd\r\n"
		     "Origin: https://bmc.example\r\n"
		     "Authorization: Bearer abc\r\n"
		     "\r\n", req);
	free(req);

	o.subprotocol = o.authorization = o.origin = NULL;
	o.resource = "/";
	ASSERT_EQ(0, ws_build_request(&o, rfc_key, &req, &len, NULL));
	EXPECT_EQ(NULL, strstr(req, "Protocol"));
	EXPECT_EQ(NULL, strstr(req, "Authorization"));
	EXPECT_EQ(NULL, strstr(req, "Origin"));
	free(req);
}

TEST(request_refuses_header_injection)
{
	struct ws_upgrade_opts good = { .host = "h", .resource = "/" };
	struct ws_upgrade_opts o;
	struct nbdws_err err;
	char *req = NULL;
	size_t len;

	o = good;
	o.authorization = "Basic x\r\nX-Evil: 1";
	EXPECT_EQ(-EINVAL, ws_build_request(&o, rfc_key, &req, &len, &err));
	o = good;
	o.origin = "a\nb";
	EXPECT_EQ(-EINVAL, ws_build_request(&o, rfc_key, &req, &len, &err));
	o = good;
	o.resource = "/a b";
	EXPECT_EQ(-EINVAL, ws_build_request(&o, rfc_key, &req, &len, &err));
	o = good;
	o.resource = "nopath";
	EXPECT_EQ(-EINVAL, ws_build_request(&o, rfc_key, &req, &len, &err));
	o = good;
	o.host = "h\r\n";
	EXPECT_EQ(-EINVAL, ws_build_request(&o, rfc_key, &req, &len, &err));
	o = good;
	o.subprotocol = "a,,b";
	EXPECT_EQ(-EINVAL, ws_build_request(&o, rfc_key, &req, &len, &err));
	o.subprotocol = "a b";
	EXPECT_EQ(-EINVAL, ws_build_request(&o, rfc_key, &req, &len, &err));
	o.subprotocol = "";
	EXPECT_EQ(-EINVAL, ws_build_request(&o, rfc_key, &req, &len, &err));
	o.subprotocol = "a/b";
	EXPECT_EQ(-EINVAL, ws_build_request(&o, rfc_key, &req, &len, &err));
	EXPECT_EQ(NULL, req);
}

TEST(list_tokens)
{
	EXPECT_TRUE(ws_http_list_has("keep-alive, Upgrade", "upgrade"));
	EXPECT_TRUE(ws_http_list_has("UPGRADE", "upgrade"));
	EXPECT_TRUE(ws_http_list_has(" ,upgrade ,", "upgrade"));
	EXPECT_FALSE(ws_http_list_has("upgraded", "upgrade"));
	EXPECT_FALSE(ws_http_list_has("keep-alive", "upgrade"));
	EXPECT_FALSE(ws_http_list_has("", "upgrade"));
}

/* Parse @hdr as a response to rfc_key; returns the errno, fills @err. */
static int parse(const char *hdr, const char *proto, int *status,
		 char **chosen, struct nbdws_err *err)
{
	char *c = NULL;
	int rc;

	err->msg[0] = '\0';
	rc = ws_parse_response(hdr, strlen(hdr), rfc_key, proto, status, &c,
			       err);
	if (chosen)
		*chosen = c;
	else
		free(c);
	if (rc && !err->msg[0])
		return -9999;	/* every failure must explain itself */
	return rc;
}

#define OK_HEAD "HTTP/1.1 101 Switching Protocols\r\n"
#define OK_ACCEPT "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"

TEST(response_accepted)
{
	struct nbdws_err err;
	char *chosen;
	int status;

	EXPECT_EQ(0, parse(OK_HEAD "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			   OK_ACCEPT "\r\n", NULL, &status, &chosen, &err));
	EXPECT_EQ(101, status);
	EXPECT_EQ(NULL, chosen);
	/* Case-insensitive names and tokens, lists, extra spaces. */
	EXPECT_EQ(0, parse("HTTP/1.1 101 OK\r\nupgrade:  WebSocket \r\n"
			   "CONNECTION: keep-alive, UPGRADE\r\n"
			   "sec-websocket-accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
			   "Server: x\r\nSec-WebSocket-Extensions:\r\n\r\n",
			   NULL, &status, NULL, &err));
	/* Subprotocol echoed. */
	EXPECT_EQ(0, parse(OK_HEAD "Upgrade: websocket\r\nConnection: upgrade\r\n"
			   OK_ACCEPT "Sec-WebSocket-Protocol: nbd\r\n\r\n",
			   "binary, nbd", &status, &chosen, &err));
	ASSERT_NE(NULL, chosen);
	EXPECT_STREQ("nbd", chosen);
	free(chosen);
	/* Empty reason phrase. */
	EXPECT_EQ(0, parse("HTTP/1.1 101\r\nUpgrade: websocket\r\n"
			   "Connection: Upgrade\r\n" OK_ACCEPT "\r\n",
			   NULL, &status, NULL, &err));
}

TEST(response_rejected)
{
	const char *up = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
	struct nbdws_err err;
	char hdr[1024];
	int status;

#define BAD(rc, proto, ...) do { \
		snprintf(hdr, sizeof(hdr), __VA_ARGS__); \
		EXPECT_EQ(rc, parse(hdr, proto, &status, NULL, &err)) \
			TH_LOG("response: %s -> %s", hdr, err.msg); \
	} while (0)

	/* Wrong accept value, missing and duplicated fields. */
	BAD(-EPROTO, NULL, OK_HEAD "%sSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "%s\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "%s" OK_ACCEPT OK_ACCEPT "\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "Connection: Upgrade\r\n" OK_ACCEPT "\r\n");
	BAD(-EPROTO, NULL, OK_HEAD "Upgrade: websocket\r\n" OK_ACCEPT "\r\n");
	BAD(-EPROTO, NULL, OK_HEAD "Upgrade: h2c\r\nConnection: Upgrade\r\n" OK_ACCEPT "\r\n");
	BAD(-EPROTO, NULL, OK_HEAD "Upgrade: websocket, h2c\r\nConnection: Upgrade\r\n" OK_ACCEPT "\r\n");
	BAD(-EPROTO, NULL, OK_HEAD "%s%sUpgrade: websocket\r\n\r\n", up, OK_ACCEPT);
	BAD(-EPROTO, NULL, OK_HEAD "Upgrade: websocket\r\nConnection: close\r\n" OK_ACCEPT "\r\n");
	/* Extensions and subprotocols nobody asked for. */
	BAD(-EPROTO, NULL, OK_HEAD "%s" OK_ACCEPT "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "%s" OK_ACCEPT "Sec-WebSocket-Protocol: nbd\r\n\r\n", up);
	BAD(-EPROTO, "nbd", OK_HEAD "%s" OK_ACCEPT "\r\n", up);
	BAD(-EPROTO, "nbd", OK_HEAD "%s" OK_ACCEPT "Sec-WebSocket-Protocol: NBD\r\n\r\n", up);
	BAD(-EPROTO, "nbd, binary", OK_HEAD "%s" OK_ACCEPT "Sec-WebSocket-Protocol: nbd, binary\r\n\r\n", up);
	BAD(-EPROTO, "nbd", OK_HEAD "%s" OK_ACCEPT "Sec-WebSocket-Protocol: nbd\r\nSec-WebSocket-Protocol: nbd\r\n\r\n", up);
	/* Framing: version, folding, bare LF, NUL, bad names. */
	BAD(-EPROTO, NULL, "HTTP/1.0 101 OK\r\n%s" OK_ACCEPT "\r\n", up);
	BAD(-EPROTO, NULL, "HTTP/1.1 1010 OK\r\n%s" OK_ACCEPT "\r\n", up);
	BAD(-EPROTO, NULL, "HTTP/1.1 10 OK\r\n%s" OK_ACCEPT "\r\n", up);
	BAD(-EPROTO, NULL, "SSH-2.0-OpenSSH\r\n%s" OK_ACCEPT "\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "%s" OK_ACCEPT " folded\r\n\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "Upgrade: websocket\nConnection: Upgrade\r\n" OK_ACCEPT "\r\n");
	BAD(-EPROTO, NULL, "HTTP/1.1 101 A\rB\r\n%s" OK_ACCEPT "\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "%s" OK_ACCEPT "Bad Name: x\r\n\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "%s" OK_ACCEPT "NoColon\r\n\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "%s" OK_ACCEPT ": empty\r\n\r\n", up);
	BAD(-EPROTO, NULL, OK_HEAD "%s" OK_ACCEPT "X: a\x01z\r\n\r\n", up);
	EXPECT_EQ(-EPROTO, ws_parse_response(OK_HEAD "\0\r\n\r\n", sizeof(OK_HEAD) + 4,
					     rfc_key, NULL, &status, &(char *){ NULL },
					     &err));
	EXPECT_EQ(-EPROTO, ws_parse_response(OK_HEAD, strlen(OK_HEAD), rfc_key,
					     NULL, &status, &(char *){ NULL }, &err));
#undef BAD
}

TEST(response_refusals_quote_status)
{
	struct nbdws_err err;
	int status;

	EXPECT_EQ(-EACCES, parse("HTTP/1.1 401 Unauthorized\r\n"
				 "WWW-Authenticate: Basic realm=\"x\"\r\n\r\n",
				 NULL, &status, NULL, &err));
	EXPECT_EQ(401, status);
	EXPECT_NE(NULL, strstr(err.msg, "HTTP/1.1 401 Unauthorized"));
	EXPECT_NE(NULL, strstr(err.msg, "Authorization"));

	EXPECT_EQ(-EACCES, parse("HTTP/1.1 403 Forbidden\r\n\r\n", NULL,
				 &status, NULL, &err));
	EXPECT_NE(NULL, strstr(err.msg, "403 Forbidden"));

	EXPECT_EQ(-ECONNREFUSED, parse("HTTP/1.1 404 Not Found\r\n\r\n", NULL,
				       &status, NULL, &err));
	EXPECT_EQ(404, status);
	EXPECT_NE(NULL, strstr(err.msg, "HTTP/1.1 404 Not Found"));

	EXPECT_EQ(-ECONNREFUSED, parse("HTTP/1.1 302 Found\r\n"
				       "Location: wss://other/nbd\r\n\r\n",
				       NULL, &status, NULL, &err));
	EXPECT_NE(NULL, strstr(err.msg, "wss://other/nbd"));

	EXPECT_EQ(-ECONNREFUSED, parse("HTTP/1.1 200 OK\r\n"
				       "Content-Length: 0\r\n\r\n",
				       NULL, &status, NULL, &err));
	EXPECT_NE(NULL, strstr(err.msg, "200 OK"));

	EXPECT_EQ(-ECONNREFUSED, parse("HTTP/1.1 502 Bad\x01Gateway\r\n\r\n",
				       NULL, &status, NULL, &err));
	/* Control characters from the peer never reach the terminal. */
	EXPECT_NE(NULL, strstr(err.msg, "502 Bad?Gateway"));
}

TEST(header_end)
{
	EXPECT_EQ(0, ws_http_header_end((const u8 *)"a\r\n\r", 4));
	EXPECT_EQ(4, ws_http_header_end((const u8 *)"\r\n\r\nxx", 6));
	EXPECT_EQ(7, ws_http_header_end((const u8 *)"abc\r\n\r\n\r\n", 9));
	EXPECT_EQ(0, ws_http_header_end((const u8 *)"a\n\n", 3));
}

/* ---- the whole exchange against scripted servers ---------------- */

struct script {
	const char *fmt;	/* response; "%s" is replaced by the accept */
	size_t chunk;		/* write it in pieces of this size (0: whole) */
	const u8 *extra;	/* sent right after the header, same write */
	size_t extra_len;
	size_t junk;		/* instead of a response: this many header bytes */
	bool silent;		/* read the request, then say nothing */
	bool hang_up;		/* close after half the response */
};

static bool read_request(int fd, char *req, size_t size, char key[WS_KEY_LEN + 1])
{
	size_t have = 0;
	const char *k;

	while (!ws_http_header_end((u8 *)req, have)) {
		ssize_t n = read(fd, req + have, size - 1 - have);

		if (n <= 0)
			return false;
		have += (size_t)n;
	}
	req[have] = '\0';
	k = strstr(req, "Sec-WebSocket-Key: ");
	if (!k)
		return false;
	memcpy(key, k + 19, WS_KEY_LEN);
	key[WS_KEY_LEN] = '\0';
	return true;
}

static void run_script(int fd, const struct script *sc)
{
	char req[4096], key[WS_KEY_LEN + 1], acc[WS_ACCEPT_LEN + 1];
	char *out;
	size_t len, off;

	if (!read_request(fd, req, sizeof(req), key) || ws_accept_for_key(key, acc))
		_exit(2);
	/* The request must carry the version and a key that decodes. */
	if (!strstr(req, "Sec-WebSocket-Version: 13\r\n"))
		_exit(3);
	if (sc->silent) {
		sleep(5);
		_exit(0);
	}
	if (sc->junk) {
		out = malloc(sc->junk);
		memset(out, 'x', sc->junk);
		memcpy(out, "HTTP/1.1 101 OK\r\nX: ", 20);
		for (off = 0; off < sc->junk;) {
			ssize_t n = write(fd, out + off, sc->junk - off);

			if (n <= 0)
				break;
			off += (size_t)n;
		}
		free(out);
		sleep(1);
		_exit(0);
	}
	len = (size_t)snprintf(NULL, 0, sc->fmt, acc);
	out = malloc(len + 1 + sc->extra_len);
	snprintf(out, len + 1, sc->fmt, acc);
	if (sc->extra_len)
		memcpy(out + len, sc->extra, sc->extra_len);
	len += sc->extra_len;
	if (sc->hang_up)
		len /= 2;
	for (off = 0; off < len;) {
		size_t n = sc->chunk ? sc->chunk : len;

		if (n > len - off)
			n = len - off;
		if (write(fd, out + off, n) != (ssize_t)n)
			_exit(4);
		off += n;
		if (sc->chunk)
			usleep(1000);
	}
	free(out);
	_exit(0);
}

/* Run the client against @sc; returns its result, status in *res. */
static int exchange(const struct script *sc, const char *proto, int timeout_ms,
		    struct ws_upgrade_result *res, struct nbdws_err *err)
{
	struct ws_upgrade_opts o = {
		.host = "localhost", .resource = "/", .subprotocol = proto,
	};
	struct ws_fd_io fio;
	struct ws_io io;
	int sv[2], rc, wst;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -999;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		run_script(sv[1], sc);
	}
	close(sv[1]);
	ws_fd_io_init(&io, &fio, sv[0], timeout_ms);
	err->msg[0] = '\0';
	rc = ws_upgrade_client(&io, &o, res, err);
	close(sv[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &wst, 0);
	return rc;
}

#define GOOD_RESP "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" \
	"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"

TEST(client_exchange_keeps_early_frames)
{
	/* Two frames the server sent in the same segment as its header. */
	static const u8 frames[] = { 0x82, 0x03, 'a', 'b', 'c', 0x89, 0x00 };
	struct script sc = { .fmt = GOOD_RESP, .extra = frames,
			     .extra_len = sizeof(frames) };
	struct ws_upgrade_result res;
	struct nbdws_err err;

	ASSERT_EQ(0, exchange(&sc, NULL, 2000, &res, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(101, res.status);
	ASSERT_EQ(sizeof(frames), res.preread_len);
	EXPECT_EQ(0, memcmp(frames, res.preread, sizeof(frames)));
	ws_upgrade_result_free(&res);
}

TEST(client_exchange_trickled)
{
	struct script sc = {
		.fmt = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		       "Connection: Upgrade\r\nSec-WebSocket-Protocol: nbd\r\n"
		       "Sec-WebSocket-Accept: %s\r\n\r\n",
		.chunk = 1,
	};
	struct ws_upgrade_result res;
	struct nbdws_err err;

	ASSERT_EQ(0, exchange(&sc, "binary,nbd", 5000, &res, &err)) TH_LOG("%s", err.msg);
	EXPECT_STREQ("nbd", res.subprotocol);
	EXPECT_EQ(0, res.preread_len);
	EXPECT_EQ(NULL, res.preread);
	ws_upgrade_result_free(&res);
}

TEST(client_exchange_header_too_large)
{
	struct script sc = { .junk = 3 * WS_HTTP_MAX_HEADER };
	struct ws_upgrade_result res;
	struct nbdws_err err;

	EXPECT_EQ(-EMSGSIZE, exchange(&sc, NULL, 2000, &res, &err));
	EXPECT_NE(NULL, strstr(err.msg, "8192"));
}

TEST(client_exchange_silent_server_times_out)
{
	struct script sc = { .silent = true };
	struct ws_upgrade_result res;
	struct nbdws_err err;
	long long t0 = nbd_now_ms();

	EXPECT_EQ(-ETIMEDOUT, exchange(&sc, NULL, 300, &res, &err));
	EXPECT_LT(nbd_now_ms() - t0, 2000);
	EXPECT_GE(nbd_now_ms() - t0, 290);
}

TEST(client_exchange_hang_up)
{
	struct script sc = { .fmt = GOOD_RESP, .hang_up = true };
	struct ws_upgrade_result res;
	struct nbdws_err err;

	EXPECT_EQ(-ECONNRESET, exchange(&sc, NULL, 2000, &res, &err));
	EXPECT_NE(NULL, strstr(err.msg, "closed"));
}

TEST(client_exchange_refused)
{
	struct script sc = { .fmt = "HTTP/1.1 401 Unauthorized\r\n\r\n%.0s" };
	struct ws_upgrade_result res;
	struct nbdws_err err;

	EXPECT_EQ(-EACCES, exchange(&sc, NULL, 2000, &res, &err));
	EXPECT_EQ(401, res.status);
	EXPECT_EQ(NULL, res.preread);
}

TEST(client_exchange_wrong_accept)
{
	struct script sc = {
		.fmt = "HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n%.0s",
	};
	struct ws_upgrade_result res;
	struct nbdws_err err;

	EXPECT_EQ(-EPROTO, exchange(&sc, NULL, 2000, &res, &err));
	EXPECT_NE(NULL, strstr(err.msg, "Sec-WebSocket-Accept"));
}

/*
 * Mutated responses (flipped, inserted, deleted bytes, cut short) must be
 * either accepted or refused with one of the documented errnos and a
 * message, never crash or read out of bounds (ASan/UBSan watch).
 */
TEST(mutated_responses)
{
	static const char base[] = OK_HEAD "Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n" OK_ACCEPT
		"Sec-WebSocket-Protocol: nbd\r\n\r\n";
	char buf[sizeof(base) + 64];
	unsigned int i, ok = 0, refused = 0;

	srandom(4242);
	for (i = 0; i < 50000; i++) {
		size_t len = sizeof(base) - 1, pos;
		struct nbdws_err err = { "" };
		char *chosen = NULL;
		int status, rc, m;

		memcpy(buf, base, len);
		for (m = 0; m < 1 + (int)(random() % 4) && len > 1; m++) {
			pos = (size_t)random() % len;
			switch (random() % 4) {
			case 0:
				buf[pos] = (char)random();
				break;
			case 1:
				if (len + 1 < sizeof(buf) - 4) {
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = "\r\n: ,\t\0aZ"[random() % 9];
					len++;
				}
				break;
			case 2:
				memmove(buf + pos, buf + pos + 1, len - pos - 1);
				len--;
				break;
			default:
				len = pos + 1;
				break;
			}
		}
		/* What the reader hands over always ends with the terminator. */
		if (ws_http_header_end((u8 *)buf, len) != len) {
			size_t end = ws_http_header_end((u8 *)buf, len);

			if (end) {
				len = end;
			} else {
				memcpy(buf + len, "\r\n\r\n", 4);
				len += 4;
			}
		}
		rc = ws_parse_response(buf, len, rfc_key, "nbd", &status, &chosen,
				       &err);
		if (rc == 0) {
			ok++;
			ASSERT_NE(NULL, chosen);
			EXPECT_STREQ("nbd", chosen);
			EXPECT_EQ(101, status);
		} else {
			refused++;
			ASSERT_TRUE(rc == -EPROTO || rc == -EACCES ||
				    rc == -ECONNREFUSED) TH_LOG("rc %d", rc);
			ASSERT_NE(0, err.msg[0]);
			EXPECT_EQ(NULL, chosen);
		}
		free(chosen);
	}
	TH_LOG("%u accepted, %u refused", ok, refused);
	EXPECT_GT(refused, 40000);
}

TEST_HARNESS_MAIN
