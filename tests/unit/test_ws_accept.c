// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for lib/ws_accept.c, the server side of the WebSocket
 * upgrade: the request parser (RFC 6455 4.2.1 checks, one at a time), the
 * same checks on an already parsed request (ws_check_upgrade()), the
 * responses it builds, and whole exchanges on a socketpair: against our
 * own client side (lib/ws_upgrade.c), with frames sent along with the
 * request, with a request split into single bytes, an oversized header
 * and a client that hangs up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "http_req.h"
#include "ws_accept.h"
#include "ws_upgrade.h"

/* RFC 6455 section 1.3 worked example. */
#define RFC_KEY		"dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT	"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define REQ(target, extra) \
	"GET " target " HTTP/1.1\r\n" \
	"Host: server.example.com\r\n" \
	"Upgrade: websocket\r\n" \
	"Connection: keep-alive, Upgrade\r\n" \
	"Sec-WebSocket-Key: " RFC_KEY "\r\n" \
	extra \
	"Sec-WebSocket-Version: 13\r\n\r\n"

static int parse(const char *text, const struct ws_accept_opts *o,
		 struct ws_request *req)
{
	struct nbdws_err err = { { 0 } };

	return ws_parse_request(text, strlen(text), o, req, &err);
}

TEST(request_accepted)
{
	struct ws_request req;
	char resp[512];
	size_t n;

	ASSERT_EQ(0, parse(REQ("/chat?x=1", "Origin: http://example.com\r\n"),
			   NULL, &req));
	EXPECT_STREQ("/chat?x=1", req.target);
	EXPECT_STREQ(RFC_ACCEPT, req.accept);
	EXPECT_FALSE(req.subprotocol_chosen);
	n = ws_build_response(0, &req, NULL, resp, sizeof(resp));
	ASSERT_GT(n, 0);
	EXPECT_EQ(0, strncmp(resp, "HTTP/1.1 101 Switching Protocols\r\n", 34));
	EXPECT_NE(NULL, strstr(resp, "\r\nSec-WebSocket-Accept: " RFC_ACCEPT
			       "\r\n\r\n"));
	EXPECT_EQ(NULL, strstr(resp, "Sec-WebSocket-Protocol"));
	/* Header names are case-insensitive, and a later 1.x is fine. */
	EXPECT_EQ(0, parse("GET / HTTP/1.2\r\nhost: h\r\nUPGRADE: WebSocket\r\n"
			   "connection: upgrade\r\nsec-websocket-key: " RFC_KEY
			   "\r\nsec-websocket-version:13\r\n\r\n", NULL, &req));
	/* Too small a buffer gives 0, never a truncated response. */
	EXPECT_EQ(0, ws_build_response(0, &req, NULL, resp, 40));
}

TEST(request_refused)
{
	static const char *const bad[] = {
		"POST / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\n"
		"Connection: upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n",
		"GET http://h/ HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
		"Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		REQ("/", "Host: twice\r\n"),
		"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n"
		"Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
		"Connection: keep-alive\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
		"Connection: upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
		"Connection: upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!=\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n",
		REQ("/", "Sec-WebSocket-Key: " RFC_KEY "\r\n"),
		REQ("/", " folded\r\n"),
		REQ("/", "NoColon\r\n"),
		"GET / HTTP/1.1\r\nHost: h\r\n",	/* incomplete */
	};
	struct ws_request req;
	char resp[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EPROTO, parse(bad[i], NULL, &req))
			TH_LOG("case %zu: %s", i, bad[i]);
	}
	ASSERT_GT(ws_build_response(-EPROTO, &req, NULL, resp, sizeof(resp)), 0);
	EXPECT_EQ(0, strncmp(resp, "HTTP/1.1 400 ", 13));
}

TEST(version_refused_with_426)
{
	struct ws_request req;
	char resp[512];

	EXPECT_EQ(-EPROTONOSUPPORT,
		  parse("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
			"Connection: upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
			"Sec-WebSocket-Version: 8\r\n\r\n", NULL, &req));
	ASSERT_GT(ws_build_response(-EPROTONOSUPPORT, &req, NULL, resp,
				    sizeof(resp)), 0);
	EXPECT_EQ(0, strncmp(resp, "HTTP/1.1 426 ", 13));
	EXPECT_NE(NULL, strstr(resp, "\r\nSec-WebSocket-Version: 13\r\n"));
}

TEST(subprotocol)
{
	struct ws_accept_opts o = { .subprotocol = "nbd" };
	struct ws_request req;
	char resp[512];

	ASSERT_EQ(0, parse(REQ("/", "Sec-WebSocket-Protocol: chat, nbd\r\n"),
			   &o, &req));
	EXPECT_TRUE(req.subprotocol_chosen);
	ASSERT_GT(ws_build_response(0, &req, &o, resp, sizeof(resp)), 0);
	EXPECT_NE(NULL, strstr(resp, "\r\nSec-WebSocket-Protocol: nbd\r\n\r\n"));
	/* Not offered: optional unless required. */
	ASSERT_EQ(0, parse(REQ("/", "Sec-WebSocket-Protocol: chat\r\n"), &o,
			   &req));
	EXPECT_FALSE(req.subprotocol_chosen);
	o.require_subprotocol = true;
	EXPECT_EQ(-ENOENT, parse(REQ("/", ""), &o, &req));
}

/* ws_check_upgrade() on a request parsed with http_parse_request(). */
static int check(const char *text, char accept[WS_ACCEPT_LEN + 1],
		 struct nbdws_err *err)
{
	struct http_request hr;
	int rc;

	rc = http_parse_request(text, strlen(text), 2048, &hr, err);
	if (rc)
		return 1000 + rc;	/* an HTTP refusal, not ours */
	rc = ws_check_upgrade(&hr, accept, err);
	http_request_free(&hr);
	return rc;
}

TEST(check_upgrade)
{
	struct nbdws_err err = { { 0 } };
	char accept[WS_ACCEPT_LEN + 1];

	ASSERT_EQ(0, check(REQ("/disk0?token=x", ""), accept, &err))
		TH_LOG("%s", err.msg);
	EXPECT_STREQ(RFC_ACCEPT, accept);
	/* Upgrade and Connection as lists, over repeated fields. */
	EXPECT_EQ(0, check("GET / HTTP/1.1\r\nHost: h\r\n"
			   "Upgrade: h2c\r\nUpgrade: WebSocket\r\n"
			   "Connection: keep-alive\r\nConnection: , Upgrade\r\n"
			   "Sec-WebSocket-Key: " RFC_KEY "\r\n"
			   "Sec-WebSocket-Version: 13\r\n\r\n", accept, &err))
		TH_LOG("%s", err.msg);

	/* Not an upgrade at all: for the caller to route as plain HTTP. */
	EXPECT_EQ(-ENOTCONN, check("GET /status HTTP/1.1\r\nHost: h\r\n\r\n",
				   accept, &err));
	EXPECT_EQ(-ENOTCONN, check("POST / HTTP/1.1\r\nHost: h\r\n"
				   "Upgrade: h2c\r\n\r\n", accept, &err));
	EXPECT_STREQ("", accept);

	/* Malformed upgrades. */
	EXPECT_EQ(-EPROTO, check("GET / HTTP/1.1\r\nHost: h\r\n"
				 "Upgrade: websocket\r\nConnection: upgrade\r\n"
				 "Sec-WebSocket-Key: c2hvcnQ=\r\n"
				 "Sec-WebSocket-Version: 13\r\n\r\n", accept, &err));
	EXPECT_NE(NULL, strstr(err.msg, "Sec-WebSocket-Key"));
	EXPECT_EQ(-EPROTO, check(REQ("/", "Sec-WebSocket-Key: " RFC_KEY "\r\n"),
				 accept, &err));
	EXPECT_EQ(-EPROTO, check("GET / HTTP/1.1\r\nHost: h\r\n"
				 "Upgrade: websocket\r\nConnection: upgrade\r\n"
				 "Sec-WebSocket-Version: 13\r\n\r\n", accept, &err));
	EXPECT_EQ(-EPROTO, check("POST / HTTP/1.1\r\nHost: h\r\n"
				 "Upgrade: websocket\r\nConnection: upgrade\r\n"
				 "Sec-WebSocket-Key: " RFC_KEY "\r\n"
				 "Sec-WebSocket-Version: 13\r\n\r\n", accept, &err));
	EXPECT_NE(NULL, strstr(err.msg, "not a GET"));
	EXPECT_EQ(-EPROTO, check("GET / HTTP/1.0\r\nHost: h\r\n"
				 "Upgrade: websocket\r\nConnection: upgrade\r\n"
				 "Sec-WebSocket-Key: " RFC_KEY "\r\n"
				 "Sec-WebSocket-Version: 13\r\n\r\n", accept, &err));
	EXPECT_EQ(-EPROTO, check(REQ("/", "Host: again\r\n"), accept, &err));
	EXPECT_EQ(-EPROTO, check("GET / HTTP/1.1\r\nHost: h\r\n"
				 "Upgrade: websocket\r\n"
				 "Sec-WebSocket-Key: " RFC_KEY "\r\n"
				 "Sec-WebSocket-Version: 13\r\n\r\n", accept, &err));

	/* Another version, a missing one, two of them: 426. */
	EXPECT_EQ(-EPROTONOSUPPORT,
		  check("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
			"Connection: upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
			"Sec-WebSocket-Version: 8\r\n\r\n", accept, &err));
	EXPECT_NE(NULL, strstr(err.msg, "'8'"));
	EXPECT_EQ(-EPROTONOSUPPORT,
		  check("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
			"Connection: upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
			"\r\n", accept, &err));
	EXPECT_EQ(-EPROTONOSUPPORT,
		  check(REQ("/", "Sec-WebSocket-Version: 13\r\n"), accept, &err));
}

TEST(build_accept)
{
	char out[512];
	size_t n;

	n = ws_build_accept(RFC_ACCEPT, NULL, out, sizeof(out));
	ASSERT_GT(n, 0);
	EXPECT_EQ(strlen(out), n);
	EXPECT_STREQ("HTTP/1.1 101 Switching Protocols\r\n"
		     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n", out);
	/* A token used as subprotocol is echoed as it came (webui-vue). */
	n = ws_build_accept(RFC_ACCEPT, "Zm9vYmFyYmF6cXV4MTIzNA+/=", out,
			    sizeof(out));
	ASSERT_GT(n, 0);
	EXPECT_NE(NULL, strstr(out, "\r\nSec-WebSocket-Protocol: "
			       "Zm9vYmFyYmF6cXV4MTIzNA+/=\r\n\r\n"));
	/* Nothing that could end the line or make a list. */
	EXPECT_EQ(0, ws_build_accept(RFC_ACCEPT, "a\r\nX-Evil: 1", out,
				     sizeof(out)));
	EXPECT_EQ(0, ws_build_accept(RFC_ACCEPT, "a,b", out, sizeof(out)));
	EXPECT_EQ(0, ws_build_accept(RFC_ACCEPT, "", out, sizeof(out)));
	/* Too small by one: 0. */
	n = ws_build_accept(RFC_ACCEPT, "binary", out, sizeof(out));
	ASSERT_GT(n, 0);
	EXPECT_EQ(0, ws_build_accept(RFC_ACCEPT, "binary", out, n));
	EXPECT_EQ(n, ws_build_accept(RFC_ACCEPT, "binary", out, n + 1));
}

/*
 * The client side of a socketpair, in a child: writes @n bytes of @data
 * @step bytes at a time (slowly when byte by byte), then exits.
 */
static pid_t client_writes(int fd, const char *data, size_t n, size_t step)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	while (n) {
		size_t k = n < step ? n : step;

		if (write(fd, data, k) != (ssize_t)k)
			_exit(1);
		data += k;
		n -= k;
		if (step == 1)
			usleep(200);
	}
	_exit(0);
}

static int wait_child(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/*
 * The client's end of the exchange: 0 when what the server answered
 * starts with @status (the status line up to the reason phrase).
 */
static int response_status_is(int fd, const char *status)
{
	char resp[512];
	ssize_t r = recv(fd, resp, sizeof(resp) - 1, 0);

	if (r <= 0)
		return -1;
	resp[r] = '\0';
	return strncmp(resp, status, strlen(status)) ? -1 : 0;
}

TEST(exchange_keeps_early_frames)
{
	static const char frame[] = "\x82\x83\x01\x02\x03\x04" "abc";
	char text[1024];
	struct nbdws_err err = { { 0 } };
	struct ws_accept_result res;
	struct ws_fd_io fio;
	struct ws_io io;
	int sv[2];
	size_t n;
	pid_t pid;

	n = (size_t)snprintf(text, sizeof(text), "%s", REQ("/x", ""));
	memcpy(text + n, frame, sizeof(frame) - 1);
	n += sizeof(frame) - 1;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = client_writes(sv[1], text, n, n);
	ws_fd_io_init(&io, &fio, sv[0], 5000);
	ASSERT_EQ(0, ws_accept(&io, NULL, &res, &err)) TH_LOG("%s", err.msg);
	EXPECT_STREQ("/x", res.req.target);
	ASSERT_EQ(sizeof(frame) - 1, res.preread_len);
	EXPECT_EQ(0, memcmp(frame, res.preread, res.preread_len));
	ws_accept_result_free(&res);
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, response_status_is(sv[1], "HTTP/1.1 101 "));
	close(sv[0]);
	close(sv[1]);
}

TEST(exchange_trickled_request)
{
	const char *text = REQ("/slow", "");
	struct nbdws_err err = { { 0 } };
	struct ws_accept_result res;
	struct ws_fd_io fio;
	struct ws_io io;
	int sv[2];
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = client_writes(sv[1], text, strlen(text), 1);
	ws_fd_io_init(&io, &fio, sv[0], 10000);
	ASSERT_EQ(0, ws_accept(&io, NULL, &res, &err)) TH_LOG("%s", err.msg);
	EXPECT_STREQ("/slow", res.req.target);
	EXPECT_EQ(0, res.preread_len);
	ws_accept_result_free(&res);
	EXPECT_EQ(0, wait_child(pid));
	close(sv[0]);
	close(sv[1]);
}

TEST(exchange_refuses_and_answers_400)
{
	const char *text = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	struct nbdws_err err = { { 0 } };
	struct ws_accept_result res;
	struct ws_fd_io fio;
	struct ws_io io;
	int sv[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ((ssize_t)strlen(text), write(sv[1], text, strlen(text)));
	ws_fd_io_init(&io, &fio, sv[0], 5000);
	EXPECT_EQ(-EPROTO, ws_accept(&io, NULL, &res, &err));
	EXPECT_NE(NULL, strstr(err.msg, "not a WebSocket upgrade"));
	EXPECT_EQ(NULL, res.preread);
	EXPECT_EQ(0, response_status_is(sv[1], "HTTP/1.1 400 "));
	close(sv[0]);
	close(sv[1]);
}

TEST(exchange_oversized_and_hangup)
{
	struct nbdws_err err = { { 0 } };
	struct ws_accept_result res;
	struct ws_fd_io fio;
	struct ws_io io;
	char *big = malloc(WS_HTTP_MAX_HEADER + 100);
	int sv[2];
	pid_t pid;

	ASSERT_NE(NULL, big);
	memset(big, 'a', WS_HTTP_MAX_HEADER + 100);
	/* A request line and one endless header line. */
	snprintf(big, 20, "%s", "GET / HTTP/1.1\r\nX: ");
	big[19] = 'a';
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = client_writes(sv[1], big, WS_HTTP_MAX_HEADER + 100, 4096);
	ws_fd_io_init(&io, &fio, sv[0], 5000);
	EXPECT_EQ(-EMSGSIZE, ws_accept(&io, NULL, &res, &err));
	close(sv[0]);
	wait_child(pid);
	close(sv[1]);
	free(big);

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(5, write(sv[1], "GET /", 5));
	close(sv[1]);
	ws_fd_io_init(&io, &fio, sv[0], 5000);
	EXPECT_EQ(-ECONNRESET, ws_accept(&io, NULL, &res, &err));
	close(sv[0]);
}

/* Our own client side against our server side. */
TEST(exchange_with_ws_upgrade_client)
{
	struct ws_accept_opts ao = { .subprotocol = "nbd" };
	struct nbdws_err err = { { 0 } };
	struct ws_accept_result res;
	struct ws_fd_io fio;
	struct ws_io io;
	int sv[2];
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct ws_upgrade_opts uo = { .host = "127.0.0.1:1",
					      .resource = "/export",
					      .subprotocol = "nbd" };
		struct ws_upgrade_result ur;
		struct nbdws_err cerr = { { 0 } };
		int rc;

		close(sv[0]);
		ws_fd_io_init(&io, &fio, sv[1], 5000);
		rc = ws_upgrade_client(&io, &uo, &ur, &cerr);
		if (rc) {
			fprintf(stderr, "client: %s\n", cerr.msg);
			_exit(1);
		}
		rc = ur.subprotocol && !strcmp(ur.subprotocol, "nbd") ? 0 : 2;
		ws_upgrade_result_free(&ur);
		_exit(rc);
	}
	close(sv[1]);
	ws_fd_io_init(&io, &fio, sv[0], 5000);
	ASSERT_EQ(0, ws_accept(&io, &ao, &res, &err)) TH_LOG("%s", err.msg);
	EXPECT_STREQ("/export", res.req.target);
	EXPECT_TRUE(res.req.subprotocol_chosen);
	ws_accept_result_free(&res);
	EXPECT_EQ(0, wait_child(pid));
	close(sv[0]);
}

TEST_HARNESS_MAIN
