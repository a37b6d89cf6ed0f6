// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for lib/ws_dial.c against a scripted WebSocket NBD server in
 * a child process: the request line and headers it receives (Host with
 * port, IPv6 brackets, resource, Origin, Authorization), the NBD
 * handshake in fragmented messages with pings in between, the
 * EXPORT_NAME fallback, a close frame during the handshake, and the bytes
 * the server sent past the handshake, which must come back as pre-read
 * bytes for the kernel, exactly and in order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "nbd_be.h"
#include "nbd_proto.h"
#include "nbd_uri.h"
#include "ws_dial.h"
#include "ws_stream.h"
#include "ws_upgrade.h"

#include "ws_test_server.h"

struct server {
	pid_t pid;
	unsigned short port;
};

static bool start(struct server *sv, int family, const struct srv_script *sc)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		return false;
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s4);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 1) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		close(fd);
		return false;
	}
	sv->port = ntohs(family == AF_INET6 ?
			 ((struct sockaddr_in6 *)&ss)->sin6_port :
			 ((struct sockaddr_in *)&ss)->sin_port);
	sv->pid = fork();
	if (sv->pid == 0) {
		struct ws_fd_io fio;
		struct ws_io io;
		int cfd = accept(fd, NULL, NULL);

		must(cfd >= 0, SRV_IO);
		ws_fd_io_init(&io, &fio, cfd, 10000);
		serve_ws_nbd(&io, sv->port, sc);
	}
	close(fd);
	return sv->pid > 0;
}

/* The server's exit code (0 when every check on its side passed). */
static int finish(struct server *sv)
{
	int st = 0;

	waitpid(sv->pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const struct ws_dial_opts opts = {
	.subprotocol = "nbd",
	.authorization = "Bearer t0k",
	.origin = "https://bmc.example",
};

static int dial(const char *fmt, unsigned short port, enum nbd_dial_mode mode,
		struct nbd_export_info *info, struct ws_conn *c,
		struct nbdws_err *err)
{
	struct nbd_uri u;
	char text[128];
	int rc;

	snprintf(text, sizeof(text), fmt, port);
	if (nbd_uri_parse(text, &u, err))
		return -999;
	rc = ws_dial(&u, &opts, mode, 5000, info, c, err);
	nbd_uri_free(&u);
	return rc;
}

TEST(go_hands_back_bytes_past_the_handshake)
{
	struct srv_script sc = { .ping_in_upgrade = true, .ping_after_ack = true,
				 .host_fmt = "127.0.0.1:%u" };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct server sv;
	struct ws_conn c;
	int fd;

	ASSERT_TRUE(start(&sv, AF_INET, &sc));
	fd = dial("ws://127.0.0.1:%u/nbd/disk?token=abc", sv.port, NBD_DIAL_GO,
		  &info, &c, &err);
	ASSERT_GE(fd, 0) TH_LOG("%s", err.msg);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	EXPECT_EQ(EXPORT_FLAGS, info.tflags);
	EXPECT_FALSE(info.used_export_name);
	EXPECT_STREQ("nbd", c.subprotocol);
	/* The ping sent with the last reply is the kernel's to answer. */
	ASSERT_EQ(sizeof(ping_hi), c.preread_len);
	EXPECT_EQ(0, memcmp(ping_hi, c.preread, sizeof(ping_hi)));
	/* Carry on as the new owner: pre-read bytes first, then the socket. */
	{
		struct ws_fd_io fio;
		struct ws_io io;
		struct ws_stream s;
		char echo[5] = "";

		ws_fd_io_init(&io, &fio, fd, 5000);
		ASSERT_EQ(0, ws_stream_init(&s, &io, WS_ROLE_CLIENT, c.preread,
					    c.preread_len));
		ASSERT_EQ(0, ws_stream_send(&s, "abcd", 4));
		ASSERT_EQ(0, ws_stream_read(&s, echo, 4)) TH_LOG("%s", s.err.msg);
		EXPECT_STREQ("abcd", echo);
		EXPECT_EQ(1, s.pings);
		ws_stream_free(&s);
	}
	close(fd);
	EXPECT_EQ(SRV_OK, finish(&sv));
	ws_conn_free(&c);
	nbd_export_info_free(&info);
}

TEST(export_name_fallback_over_websocket)
{
	struct srv_script sc = { .export_name_only = true, .ping_after_ack = true,
				 .host_fmt = "127.0.0.1:%u" };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct server sv;
	struct ws_conn c;
	int fd;

	ASSERT_TRUE(start(&sv, AF_INET, &sc));
	fd = dial("ws://127.0.0.1:%u/nbd/disk?token=abc", sv.port, NBD_DIAL_GO,
		  &info, &c, &err);
	ASSERT_GE(fd, 0) TH_LOG("%s", err.msg);
	EXPECT_EQ(EXPORT_SIZE, info.size);
	EXPECT_TRUE(info.used_export_name);
	ASSERT_EQ(sizeof(ping_hi), c.preread_len);
	EXPECT_EQ(0, memcmp(ping_hi, c.preread, sizeof(ping_hi)));
	close(fd);
	EXPECT_EQ(SRV_OK, finish(&sv));
	ws_conn_free(&c);
	nbd_export_info_free(&info);
}

TEST(ipv6_host_header_and_no_early_bytes)
{
	struct srv_script sc = { .host_fmt = "[::1]:%u" };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct server sv;
	struct ws_conn c;
	int fd;

	if (!start(&sv, AF_INET6, &sc))
		SKIP(return, "no IPv6 loopback");
	fd = dial("ws://[::1]:%u/nbd/disk?token=abc", sv.port, NBD_DIAL_GO,
		  &info, &c, &err);
	ASSERT_GE(fd, 0) TH_LOG("%s", err.msg);
	EXPECT_EQ(0, c.preread_len);
	EXPECT_EQ(NULL, c.preread);
	close(fd);
	EXPECT_EQ(SRV_OK, finish(&sv));
	ws_conn_free(&c);
	nbd_export_info_free(&info);
}

TEST(close_frame_during_handshake)
{
	struct srv_script sc = { .close_at_go = true, .host_fmt = "127.0.0.1:%u" };
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct server sv;
	struct ws_conn c;

	ASSERT_TRUE(start(&sv, AF_INET, &sc));
	EXPECT_EQ(-ECONNRESET, dial("ws://127.0.0.1:%u/nbd/disk?token=abc", sv.port,
				    NBD_DIAL_GO, &info, &c, &err));
	TH_LOG("%s", err.msg);
	EXPECT_NE(NULL, strstr(err.msg, "1008"));
	EXPECT_NE(NULL, strstr(err.msg, "policy"));
	EXPECT_EQ(-1, c.fd);
	EXPECT_EQ(SRV_OK, finish(&sv));
}

TEST(refuses_non_websocket_uris)
{
	struct nbd_export_info info;
	struct nbdws_err err = { "" };
	struct ws_conn c;
	struct nbd_uri u;

	ASSERT_EQ(0, nbd_uri_parse("nbd://127.0.0.1/x", &u, &err));
	EXPECT_EQ(-EINVAL, ws_dial(&u, &opts, NBD_DIAL_GO, 1000, &info, &c, &err));
	nbd_uri_free(&u);
}

TEST_HARNESS_MAIN
