// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve end to end on the host: the test plays the relay with the
 * library's server side (ws_accept, ws_stream in the server role and
 * nbd_handshake_go, as nbdws-relay does) on a loopback listener, runs the
 * ASan build of nbdws-serve (build/san/nbdws-serve, or $NBDWS_SERVE)
 * against it and checks what comes through:
 *
 * - data: reads of a file whose size is not a multiple of 512 (the tail
 *   included) equal the file; writes land in the file; WRITE_ZEROES,
 *   TRIM, FLUSH, FUA; out-of-range requests fail with the right error;
 *   a read-only file refuses writes with EPERM and stays unchanged;
 * - many requests in flight, replies matched by cookie;
 * - the upgrade request: the token as a Bearer header or a subprotocol,
 *   and never in the output;
 * - endings: DISC and SIGTERM give close 1000 and exit 0, a relay's
 *   close 1000 exit 0, 1008 exit 1;
 * - reconnects after a drop (also past a 409 from a relay that has not
 *   noticed the drop yet) with the backoff, giving up after --hold;
 * - refusals (401, 404, nothing listening) exit 1 with a hint;
 * - an nbd+unix:// source (nbdkit) bridged byte for byte;
 * - eight 1 MiB reads in flight, every reply's bytes those of its offset.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "spawn_util.h"

#include "nbd_be.h"
#include "nbd_handshake.h"
#include "nbd_proto.h"
#include "nbd_sock.h"
#include "nbd_wire.h"
#include "tls.h"
#include "ws_accept.h"
#include "ws_io.h"
#include "ws_stream.h"

/* 1 MiB and 123 bytes: not a multiple of 512. */
#define FILE_SIZE	((1U << 20) + 123)
#define IO_TIMEOUT_MS	60000
#define TOKEN		"s3cr3t-t0ken-for-the-test.123"

/* ---- nbdws-serve as a child process ---- */

struct proc {
	pid_t pid;
	int errfd;		/* its stderr */
	char err[32768];
	size_t err_len;
	int status;		/* exit status, -1 killed or still running */
};

static const char *serve_path(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n;

	if (getenv("NBDWS_SERVE"))
		return getenv("NBDWS_SERVE");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return "build/san/nbdws-serve";
	self[n] = '\0';
	snprintf(path, sizeof(path), "%s/../san/nbdws-serve", dirname(self));
	return path;
}

/* Start nbdws-serve with @args (NULL-terminated, without argv[0]). */
static bool spawn_serve(struct proc *p, const char *const *args)
{
	const char *argv[32];
	int pipefd[2], i;

	memset(p, 0, sizeof(*p));
	p->status = -1;
	argv[0] = serve_path();
	for (i = 1; i < 31 && args[i - 1]; i++)
		argv[i] = args[i - 1];
	argv[i] = NULL;
	if (pipe2(pipefd, O_CLOEXEC))
		return false;
	p->pid = fork();
	if (p->pid < 0)
		return false;
	if (p->pid == 0) {
		dup2(pipefd[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	p->errfd = pipefd[0];
	fcntl(p->errfd, F_SETFL, O_NONBLOCK);
	return true;
}

static void slurp_err(struct proc *p)
{
	ssize_t n;

	while (p->err_len + 1 < sizeof(p->err) &&
	       (n = read(p->errfd, p->err + p->err_len,
			 sizeof(p->err) - 1 - p->err_len)) > 0)
		p->err_len += (size_t)n;
	p->err[p->err_len] = '\0';
}

/* Wait up to @ms for the exit; returns the status or -1 (then killed). */
static int wait_exit(struct proc *p, int ms)
{
	int st;

	for (; ms > 0; ms -= 20) {
		slurp_err(p);
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			slurp_err(p);
			close(p->errfd);
			p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
			return p->status;
		}
		usleep(20000);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	slurp_err(p);
	close(p->errfd);
	return -1;
}

/* ---- the relay's side ---- */

static int listen_loopback(unsigned short *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

static int accept_wait(int lfd, int ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Peek at the whole upgrade request without taking it off the socket. */
static bool peek_request(int fd, char *buf, size_t size)
{
	long long deadline = nbd_now_ms() + 10000;

	while (nbd_now_ms() < deadline) {
		ssize_t n = recv(fd, buf, size - 1, MSG_PEEK);

		if (n <= 0)
			return false;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return true;
		usleep(5000);
	}
	return false;
}

struct wsconn {
	int fd;
	struct tls_conn tls;
	bool is_tls;
	struct ws_fd_io fio;
	struct ws_io io;
	struct ws_stream s;
	struct nbd_xport x;
	struct nbd_export_info info;
	char req[8192];		/* the upgrade request as it came */
	char target[WS_ACCEPT_MAX_TARGET + 1];
	struct nbdws_err err;
};

/*
 * Accept a client (over TLS with @tsrv), answer its upgrade, run the NBD
 * handshake (GO).
 */
static bool relay_accept_tls(struct wsconn *w, int lfd, int ms,
			     const char *subprotocol, bool go,
			     struct tls_server *tsrv)
{
	struct ws_accept_opts ao = { .subprotocol = subprotocol };
	struct ws_accept_result res;

	memset(w, 0, sizeof(*w));
	w->fd = accept_wait(lfd, ms);
	if (w->fd < 0)
		return false;
	if (tsrv) {
		if (tls_accept(&w->tls, tsrv, w->fd, IO_TIMEOUT_MS, &w->err))
			return false;
		w->is_tls = true;
		tls_io(&w->tls, &w->io);
	} else {
		if (!peek_request(w->fd, w->req, sizeof(w->req)))
			return false;
		ws_fd_io_init(&w->io, &w->fio, w->fd, IO_TIMEOUT_MS);
	}
	if (ws_accept(&w->io, &ao, &res, &w->err))
		return false;
	snprintf(w->target, sizeof(w->target), "%s", res.req.target);
	if (ws_stream_init(&w->s, &w->io, WS_ROLE_SERVER, res.preread,
			   res.preread_len)) {
		ws_accept_result_free(&res);
		return false;
	}
	ws_accept_result_free(&res);
	ws_stream_xport(&w->s, &w->x);
	if (!go)
		return true;
	return nbd_handshake_go(&w->x, "", &w->info, &w->err) == 0;
}

static bool relay_accept(struct wsconn *w, int lfd, int ms,
			 const char *subprotocol, bool go)
{
	return relay_accept_tls(w, lfd, ms, subprotocol, go, NULL);
}

static void relay_drop(struct wsconn *w)
{
	if (w->s.buf)
		ws_stream_free(&w->s);
	if (w->is_tls)
		tls_free(&w->tls);
	w->is_tls = false;
	nbd_export_info_free(&w->info);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

/* Read the client's HTTP request and answer with @status, then close. */
static bool relay_refuse(int lfd, int ms, const char *status_line)
{
	char buf[8192], resp[256];
	int fd = accept_wait(lfd, ms);
	bool ok;

	if (fd < 0)
		return false;
	ok = peek_request(fd, buf, sizeof(buf));
	snprintf(resp, sizeof(resp),
		 "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		 status_line);
	ok = ok && write(fd, resp, strlen(resp)) == (ssize_t)strlen(resp);
	close(fd);
	return ok;
}

static int send_req(struct wsconn *w, u16 type, u16 flags, u64 cookie,
		    u64 off, u32 len, const void *data)
{
	struct nbd_wire_request rq = {
		.type = type, .flags = flags, .cookie = cookie,
		.offset = off, .length = len,
	};
	size_t dlen = data ? len : 0;
	u8 *buf = malloc(NBDP_REQUEST_SIZE + dlen);
	int rc;

	if (!buf)
		return -ENOMEM;
	nbd_wire_encode_request(buf, &rq);
	if (dlen)
		memcpy(buf + NBDP_REQUEST_SIZE, data, dlen);
	rc = ws_stream_send(&w->s, buf, NBDP_REQUEST_SIZE + dlen);
	free(buf);
	return rc;
}

/* One simple reply header: 0 with *error and *cookie, or -errno. */
static int read_reply(struct wsconn *w, u32 *error, u64 *cookie)
{
	u8 h[NBDP_SIMPLE_REPLY_SIZE];
	int rc = ws_stream_read(&w->s, h, sizeof(h));

	if (rc)
		return rc;
	if (get_be32(h) != NBDP_SIMPLE_REPLY_MAGIC)
		return -EPROTO;
	*error = get_be32(h + 4);
	*cookie = get_be64(h + 8);
	return 0;
}

/* A request and its reply, one at a time: the reply's error, or -1. */
static long cmd(struct wsconn *w, u16 type, u16 flags, u64 off, u32 len,
		const void *wdata, void *rdata)
{
	static u64 next_cookie = 1000;
	u64 cookie = next_cookie++, got;
	u32 error;

	if (send_req(w, type, flags, cookie, off, len, wdata))
		return -1;
	if (read_reply(w, &error, &got) || got != cookie)
		return -1;
	if (type == NBDP_CMD_READ && !error &&
	    ws_stream_read(&w->s, rdata, len))
		return -1;
	return error;
}

/*
 * Close as the relay would; the stream is marked open again so that
 * close_code() reads on to the client's echo.
 */
static void relay_close(struct wsconn *w, u16 code)
{
	ws_stream_close(&w->s, code);
	w->s.ended = false;
}

/*
 * The close frame the client sent: read on until the stream ends and
 * return its code (0 if none came).
 */
static unsigned int close_code(struct wsconn *w)
{
	u8 sink[4096];

	while (!ws_stream_read(&w->s, sink, 1))
		;
	return w->s.peer_close_code;
}

/* ---- files ---- */

static bool make_file(char *path, size_t size, u8 **content)
{
	u8 *buf = malloc(size);
	size_t have = 0;
	int fd;

	strcpy(path, "/tmp/nbdws-serve-test-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || !buf)
		return false;
	while (have < size) {
		ssize_t n = getrandom(buf + have, size - have, 0);

		if (n <= 0)
			return false;
		have += (size_t)n;
	}
	if (write(fd, buf, size) != (ssize_t)size)
		return false;
	close(fd);
	*content = buf;
	return true;
}

static bool file_range_equals(const char *path, u64 off, const u8 *want,
			      size_t len)
{
	u8 *buf = malloc(len);
	int fd = open(path, O_RDONLY);
	bool ok;

	ok = buf && fd >= 0 && pread(fd, buf, len, (off_t)off) == (ssize_t)len &&
	     !memcmp(buf, want, len);
	if (fd >= 0)
		close(fd);
	free(buf);
	return ok;
}

/* ---- fixture: a file, a listener, nbdws-serve started on demand ---- */

FIXTURE(srv) {
	char path[64];
	u8 *content;
	int lfd;
	unsigned short port;
	char url[96];
	struct proc p;
	struct wsconn w;
};

FIXTURE_SETUP(srv)
{
	/* A client gone before our echo must not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	ASSERT_TRUE(make_file(self->path, FILE_SIZE, &self->content));
	self->lfd = listen_loopback(&self->port);
	ASSERT_LE(0, self->lfd);
	snprintf(self->url, sizeof(self->url), "ws://127.0.0.1:%u/disk0",
		 self->port);
	self->w.fd = -1;
	self->p.pid = 0;
}

FIXTURE_TEARDOWN(srv)
{
	relay_drop(&self->w);
	if (self->p.pid > 0 && self->p.status == -1 && !kill(self->p.pid, 0))
		wait_exit(&self->p, 1);
	if (self->lfd >= 0)
		close(self->lfd);
	unlink(self->path);
	free(self->content);
}

static bool start(FIXTURE_DATA(srv) *self, const char *a1, const char *a2,
		  const char *a3)
{
	const char *args[8] = { 0 };
	int i = 0;

	if (a1)
		args[i++] = a1;
	if (a2)
		args[i++] = a2;
	if (a3)
		args[i++] = a3;
	args[i++] = self->path;
	args[i++] = self->url;
	return spawn_serve(&self->p, args);
}

TEST_F(srv, writable_data_both_ways)
{
	u8 *buf = malloc(FILE_SIZE), *pat = malloc(65536);
	u8 zero[4096] = { 0 };
	u16 need = NBDP_FLAG_SEND_FLUSH | NBDP_FLAG_SEND_TRIM |
		   NBDP_FLAG_SEND_WRITE_ZEROES | NBDP_FLAG_SEND_FUA;
	u32 i;

	ASSERT_TRUE(buf && pat);
	ASSERT_TRUE(start(self, "--writable", NULL, NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	EXPECT_STREQ("/disk0", self->w.target);
	/* The exact size, not rounded to 512. */
	EXPECT_EQ(FILE_SIZE, self->w.info.size);
	EXPECT_EQ(0, self->w.info.tflags & NBDP_FLAG_READ_ONLY);
	EXPECT_EQ(need, self->w.info.tflags & need);
	EXPECT_TRUE(self->w.info.block_size_given);
	EXPECT_EQ(1, self->w.info.block_min);

	/* All of it, in odd pieces, and the 123-byte tail on its own. */
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, 0, 1000, NULL, buf));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, 1000, FILE_SIZE - 1123,
			 NULL, buf + 1000));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, FILE_SIZE - 123, 123,
			 NULL, buf + FILE_SIZE - 123));
	EXPECT_EQ(0, memcmp(buf, self->content, FILE_SIZE));

	/* A write lands in the file, and reads back. */
	for (i = 0; i < 65536; i++)
		pat[i] = (u8)(i * 7 + 3);
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_WRITE, 0, 4097, 65536, pat, NULL));
	EXPECT_TRUE(file_range_equals(self->path, 4097, pat, 65536));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, 4097, 65536, NULL, buf));
	EXPECT_EQ(0, memcmp(buf, pat, 65536));
	/* FUA, up to the last byte. */
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_WRITE, NBDP_CMD_FLAG_FUA,
			 FILE_SIZE - 100, 100, pat, NULL));
	EXPECT_TRUE(file_range_equals(self->path, FILE_SIZE - 100, pat, 100));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_FLUSH, 0, 0, 0, NULL, NULL));
	/* Zeroes, with and without holes; a trim succeeds. */
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_WRITE_ZEROES, 0, 8192, 4096,
			 NULL, NULL));
	EXPECT_TRUE(file_range_equals(self->path, 8192, zero, 4096));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_WRITE_ZEROES,
			 NBDP_CMD_FLAG_NO_HOLE, 100, 1000, NULL, NULL));
	EXPECT_TRUE(file_range_equals(self->path, 100, zero, 1000));
	EXPECT_TRUE(file_range_equals(self->path, 0, self->content, 100));
	EXPECT_EQ(0, cmd(&self->w, NBDP_CMD_TRIM, 0, 0, 4096, NULL, NULL));

	/* Past the end, unknown commands, a zero-length read. */
	EXPECT_EQ(NBDP_EINVAL, cmd(&self->w, NBDP_CMD_READ, 0, FILE_SIZE - 1,
				   2, NULL, buf));
	EXPECT_EQ(NBDP_ENOSPC, cmd(&self->w, NBDP_CMD_WRITE, 0, FILE_SIZE,
				   10, pat, NULL));
	EXPECT_EQ(NBDP_EINVAL, cmd(&self->w, NBDP_CMD_READ, 0, ~0ULL - 5, 100,
				   NULL, buf));
	EXPECT_EQ(NBDP_EINVAL, cmd(&self->w, 77, 0, 0, 0, NULL, NULL));
	EXPECT_EQ(NBDP_EINVAL, cmd(&self->w, NBDP_CMD_READ, 0, 0, 0, NULL,
				   buf));
	/* Still serving after the errors. */
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, 200000, 100, NULL, buf));
	EXPECT_EQ(0, memcmp(buf, self->content + 200000, 100));

	/* DISC: the client closes with 1000 and exits 0. */
	ASSERT_EQ(0, send_req(&self->w, NBDP_CMD_DISC, 0, 1, 0, 0, NULL));
	EXPECT_EQ(WS_CLOSE_NORMAL, close_code(&self->w));
	EXPECT_EQ(0, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "disconnected"));
	free(buf);
	free(pat);
}

TEST_F(srv, read_only_refuses_writes)
{
	u8 buf[512], pat[512];

	memset(pat, 0xab, sizeof(pat));
	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	EXPECT_NE(0, self->w.info.tflags & NBDP_FLAG_READ_ONLY);
	EXPECT_EQ(NBDP_EPERM, cmd(&self->w, NBDP_CMD_WRITE, 0, 0, 512, pat,
				  NULL));
	EXPECT_EQ(NBDP_EPERM, cmd(&self->w, NBDP_CMD_WRITE_ZEROES, 0, 0, 512,
				  NULL, NULL));
	EXPECT_EQ(NBDP_EPERM, cmd(&self->w, NBDP_CMD_TRIM, 0, 0, 512, NULL,
				  NULL));
	EXPECT_EQ(0, cmd(&self->w, NBDP_CMD_FLUSH, 0, 0, 0, NULL, NULL));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, 0, 512, NULL, buf));
	EXPECT_EQ(0, memcmp(buf, self->content, 512));
	EXPECT_TRUE(file_range_equals(self->path, 0, self->content, FILE_SIZE));

	/* The relay closes normally: exit 0. */
	relay_close(&self->w, WS_CLOSE_NORMAL);
	EXPECT_EQ(WS_CLOSE_NORMAL, close_code(&self->w));
	EXPECT_EQ(0, wait_exit(&self->p, 10000));
}

TEST_F(srv, many_in_flight)
{
	enum { N = 64 };
	u64 off[N];
	u32 len[N];
	bool seen[N] = { false };
	u8 *buf = malloc(1 << 20);
	int i;

	ASSERT_NE(NULL, buf);
	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	/* Big and small reads mixed, all sent before any reply is read. */
	for (i = 0; i < N; i++) {
		len[i] = i % 4 == 0 ? 1U << 19 : 512U + (u32)i * 37;
		off[i] = ((u64)i * 15791) % (FILE_SIZE - len[i]);
		ASSERT_EQ(0, send_req(&self->w, NBDP_CMD_READ, 0, 5000 + i,
				      off[i], len[i], NULL));
	}
	for (i = 0; i < N; i++) {
		u32 error;
		u64 cookie;
		int k;

		ASSERT_EQ(0, read_reply(&self->w, &error, &cookie));
		ASSERT_LE(5000, cookie);
		k = (int)(cookie - 5000);
		ASSERT_GT(N, k);
		ASSERT_FALSE(seen[k]);
		seen[k] = true;
		ASSERT_EQ(0, error);
		ASSERT_EQ(0, ws_stream_read(&self->w.s, buf, len[k]));
		ASSERT_EQ(0, memcmp(buf, self->content + off[k], len[k]));
	}
	free(buf);
}

TEST_F(srv, token_as_bearer_header_never_printed)
{
	char tf[] = "/tmp/nbdws-serve-token-XXXXXX";
	int fd = mkstemp(tf);

	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)strlen(TOKEN "\n"), write(fd, TOKEN "\n",
						     strlen(TOKEN "\n")));
	close(fd);
	ASSERT_TRUE(start(self, "--token-file", tf, "-v"));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	unlink(tf);
	EXPECT_NE(NULL, strstr(self->w.req,
			       "\r\nAuthorization: Bearer " TOKEN "\r\n"));
	EXPECT_EQ(NULL, strstr(self->w.req, "Sec-WebSocket-Protocol"));
	kill(self->p.pid, SIGTERM);
	EXPECT_EQ(WS_CLOSE_NORMAL, close_code(&self->w));
	EXPECT_EQ(0, wait_exit(&self->p, 10000));
	EXPECT_EQ(NULL, strstr(self->p.err, TOKEN));
	EXPECT_NE(NULL, strstr(self->p.err, "SIGTERM"));
}

TEST_F(srv, token_as_subprotocol)
{
	ASSERT_TRUE(start(self, "--token", TOKEN, "--token-as-subprotocol"));
	/* The relay echoes the token as the chosen subprotocol. */
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, TOKEN, true));
	EXPECT_NE(NULL, strstr(self->w.req,
			       "\r\nSec-WebSocket-Protocol: " TOKEN "\r\n"));
	EXPECT_EQ(NULL, strstr(self->w.req, "Authorization"));
	relay_close(&self->w, WS_CLOSE_NORMAL);
	EXPECT_EQ(WS_CLOSE_NORMAL, close_code(&self->w));
	EXPECT_EQ(0, wait_exit(&self->p, 10000));
}

TEST_F(srv, sigterm_closes_1000_stopped)
{
	u8 buf[100];

	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, 0, 100, NULL, buf));
	kill(self->p.pid, SIGTERM);
	EXPECT_EQ(WS_CLOSE_NORMAL, close_code(&self->w));
	EXPECT_NE(NULL, strstr(self->w.s.err.msg, "stopped"));
	EXPECT_EQ(0, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "served 1 requests"));
}

TEST_F(srv, relay_close_1008_fails)
{
	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	relay_close(&self->w, 1008);
	EXPECT_EQ(1008, close_code(&self->w));
	EXPECT_EQ(1, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "1008"));
}

TEST_F(srv, reconnects_after_a_drop)
{
	u8 buf[4096];
	long long t0;

	ASSERT_TRUE(start(self, "--hold", "20", NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, 0, 4096, NULL, buf));
	/* Gone without a close frame: the relay holds the device. */
	relay_drop(&self->w);
	t0 = nbd_now_ms();
	/* The relay has not noticed yet: busy. That is worth a retry. */
	ASSERT_TRUE(relay_refuse(self->lfd, 10000, "409 Conflict"));
	/* Backoff: 0.5 s, then 1 s. */
	EXPECT_LE(400, nbd_now_ms() - t0);
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	EXPECT_LE(1400, nbd_now_ms() - t0);
	/* The new connection serves from a fresh handshake. */
	EXPECT_EQ(FILE_SIZE, self->w.info.size);
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, 4096, 4096, NULL, buf));
	EXPECT_EQ(0, memcmp(buf, self->content + 4096, 4096));
	ASSERT_EQ(0, send_req(&self->w, NBDP_CMD_DISC, 0, 1, 0, 0, NULL));
	EXPECT_EQ(WS_CLOSE_NORMAL, close_code(&self->w));
	EXPECT_EQ(0, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "reconnected"));
}

TEST_F(srv, kernel_1001_is_a_drop)
{
	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	/* What nbdws.ko sends when a request timed out: hold, reconnect. */
	relay_close(&self->w, WS_CLOSE_GOING_AWAY);
	close_code(&self->w);
	relay_drop(&self->w);
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	kill(self->p.pid, SIGINT);
	EXPECT_EQ(WS_CLOSE_NORMAL, close_code(&self->w));
	EXPECT_EQ(0, wait_exit(&self->p, 10000));
}

TEST_F(srv, gives_up_after_hold)
{
	long long t0;

	ASSERT_TRUE(start(self, "--hold", "2", NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	close(self->lfd);	/* nobody listens any more */
	self->lfd = -1;
	t0 = nbd_now_ms();
	relay_drop(&self->w);
	EXPECT_EQ(1, wait_exit(&self->p, 10000));
	EXPECT_LE(1900, nbd_now_ms() - t0);
	EXPECT_GE(5000, nbd_now_ms() - t0);
	EXPECT_NE(NULL, strstr(self->p.err, "--hold"));
}

TEST_F(srv, refused_401_exits_1_with_hint)
{
	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	ASSERT_TRUE(relay_refuse(self->lfd, 10000, "401 Unauthorized"));
	EXPECT_EQ(1, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "401"));
	EXPECT_NE(NULL, strstr(self->p.err, "--token"));
}

TEST_F(srv, refused_404_on_reconnect_exits_1)
{
	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	relay_drop(&self->w);
	ASSERT_TRUE(relay_refuse(self->lfd, 10000, "404 Not Found"));
	EXPECT_EQ(1, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "404"));
	EXPECT_NE(NULL, strstr(self->p.err, "slot"));
}

TEST_F(srv, nothing_listening_exits_1)
{
	close(self->lfd);
	self->lfd = -1;
	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	EXPECT_EQ(1, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "cannot connect"));
}

TEST_F(srv, bad_request_magic_closes_1002)
{
	u8 junk[NBDP_REQUEST_SIZE];

	memset(junk, 0x5a, sizeof(junk));
	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	ASSERT_EQ(0, ws_stream_send(&self->w.s, junk, sizeof(junk)));
	EXPECT_EQ(WS_CLOSE_PROTOCOL, close_code(&self->w));
	EXPECT_EQ(1, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "bad magic"));
}

/* The 64-bit word at byte @off of the pipelined-read file. */
static u64 pattern_word(u64 off)
{
	return off * 0x9e3779b97f4a7c15ULL ^ 0x6e62647773657276ULL;
}

/*
 * Eight 1 MiB reads in flight, 128 MiB in all, over a 64 MiB file whose
 * every word says where it lives: each reply must carry the bytes of the
 * offset its cookie names, whatever order nbdws-serve answers in. (How
 * fast it does that is a benchmark's question, not a test's.)
 */
TEST_F(srv, pipelined_large_reads)
{
	enum { DEPTH = 8, REQ = 1 << 20, SPAN = 64 << 20 };
	u64 total = 128ULL << 20, sent = 0, got = 0, *buf = malloc(REQ);
	u64 *chunk = malloc(REQ);
	size_t i, bad = 0;
	int fd;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, chunk);
	fd = open(self->path, O_WRONLY | O_TRUNC);
	ASSERT_LE(0, fd);
	for (u64 off = 0; off < SPAN; off += REQ) {
		for (i = 0; i < REQ / 8; i++)
			chunk[i] = pattern_word(off + i * 8);
		ASSERT_EQ(REQ, write(fd, chunk, REQ));
	}
	close(fd);
	ASSERT_TRUE(start(self, NULL, NULL, NULL));
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	while (got < total) {
		u32 error;
		u64 cookie, off;

		while (sent < total && sent - got < (u64)DEPTH * REQ) {
			ASSERT_EQ(0, send_req(&self->w, NBDP_CMD_READ, 0, sent,
					      sent % SPAN, REQ, NULL));
			sent += REQ;
		}
		ASSERT_EQ(0, read_reply(&self->w, &error, &cookie));
		ASSERT_EQ(0, error);
		ASSERT_EQ(0, cookie % REQ);
		ASSERT_LT(cookie, sent);
		ASSERT_EQ(0, ws_stream_read(&self->w.s, buf, REQ));
		off = cookie % SPAN;
		for (i = 0; i < REQ / 8; i++)
			bad += buf[i] != pattern_word(off + i * 8);
		got += REQ;
	}
	EXPECT_EQ(0, bad);
	free(chunk);
	free(buf);
}

/*
 * wss:// with a client certificate: the relay side asks for one and
 * verifies it against the same self-signed certificate, which is also
 * the CA nbdws-serve verifies the relay with. 1 MiB replies cross the
 * userspace TLS session, partial writes and all.
 */
TEST_F(srv, wss_with_client_certificate)
{
	char dir[] = "/tmp/nbdws-serve-tls-XXXXXX", cert[128], key[128];
	struct tls_server *tsrv = NULL;
	struct tls_server_opts so = { .require_client_cert = true };
	struct nbdws_err err;
	u8 *buf = malloc(FILE_SIZE), digest[32];
	const char *args[12];
	int i;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, mkdtemp(dir));
	ASSERT_EQ(0, make_test_cert(dir, cert, sizeof(cert), key, sizeof(key)));
	so.cert_file = cert;
	so.key_file = key;
	so.client_ca_file = cert;
	ASSERT_EQ(0, tls_server_new(&tsrv, &so, &err));
	snprintf(self->url, sizeof(self->url), "wss://127.0.0.1:%u/disk0",
		 self->port);
	i = 0;
	args[i++] = "--cafile";
	args[i++] = cert;
	args[i++] = "--cert";
	args[i++] = cert;
	args[i++] = "--key";
	args[i++] = key;
	args[i++] = "-v";
	args[i++] = self->path;
	args[i++] = self->url;
	args[i] = NULL;
	ASSERT_TRUE(spawn_serve(&self->p, args));
	ASSERT_TRUE(relay_accept_tls(&self->w, self->lfd, 10000, NULL, true,
				     tsrv));
	/* The client presented the certificate. */
	EXPECT_EQ(0, tls_peer_cert_sha256(&self->w.tls, digest));
	EXPECT_EQ(FILE_SIZE, self->w.info.size);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, send_req(&self->w, NBDP_CMD_READ, 0, 70 + i,
				      (u64)i * 262144, 262144, NULL));
	for (i = 0; i < 4; i++) {
		u32 error;
		u64 cookie;

		ASSERT_EQ(0, read_reply(&self->w, &error, &cookie));
		ASSERT_EQ(0, error);
		ASSERT_LE(70, cookie);
		ASSERT_GT(74, cookie);
		ASSERT_EQ(0, ws_stream_read(&self->w.s,
					    buf + (cookie - 70) * 262144,
					    262144));
	}
	EXPECT_EQ(0, memcmp(buf, self->content, 1 << 20));
	ASSERT_EQ(0, send_req(&self->w, NBDP_CMD_DISC, 0, 1, 0, 0, NULL));
	EXPECT_EQ(WS_CLOSE_NORMAL, close_code(&self->w));
	EXPECT_EQ(0, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "TLSv1."));
	tls_server_free(tsrv);
	snprintf((char *)buf, 256, "rm -rf %s", dir);
	EXPECT_EQ(0, system((char *)buf));
	free(buf);
}

/* Without the client certificate the relay's TLS refuses: exit 1. */
TEST_F(srv, wss_without_client_certificate_refused)
{
	char dir[] = "/tmp/nbdws-serve-tls-XXXXXX", cert[128], key[128];
	struct tls_server *tsrv = NULL;
	struct tls_server_opts so = { .require_client_cert = true };
	struct nbdws_err err;
	struct tls_conn t;
	const char *args[6];
	char rm[128];
	int fd;

	ASSERT_NE(NULL, mkdtemp(dir));
	ASSERT_EQ(0, make_test_cert(dir, cert, sizeof(cert), key, sizeof(key)));
	so.cert_file = cert;
	so.key_file = key;
	so.client_ca_file = cert;
	ASSERT_EQ(0, tls_server_new(&tsrv, &so, &err));
	snprintf(self->url, sizeof(self->url), "wss://127.0.0.1:%u/disk0",
		 self->port);
	args[0] = "--cafile";
	args[1] = cert;
	args[2] = self->path;
	args[3] = self->url;
	args[4] = NULL;
	ASSERT_TRUE(spawn_serve(&self->p, args));
	fd = accept_wait(self->lfd, 10000);
	ASSERT_LE(0, fd);
	EXPECT_NE(0, tls_accept(&t, tsrv, fd, 10000, &err));
	close(fd);
	EXPECT_EQ(1, wait_exit(&self->p, 10000));
	EXPECT_NE(NULL, strstr(self->p.err, "cannot connect"));
	tls_server_free(tsrv);
	snprintf(rm, sizeof(rm), "rm -rf %s", dir);
	EXPECT_EQ(0, system(rm));
}

/* ---- an NBD server as the source ---- */

static bool have_nbdkit(void)
{
	return !system("command -v nbdkit >/dev/null 2>&1");
}

TEST_F(srv, bridges_nbd_unix_source)
{
	char sock[128], pidf[128], src[256];
	const char *args[4];
	u8 *buf = malloc(FILE_SIZE);
	pid_t kit;
	int i;

	if (!have_nbdkit())
		SKIP(return, "nbdkit is not installed");
	ASSERT_NE(NULL, buf);
	snprintf(sock, sizeof(sock), "%s.sock", self->path);
	snprintf(pidf, sizeof(pidf), "%s.pid", self->path);
	kit = fork();
	ASSERT_LE(0, kit);
	if (kit == 0) {
		execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-P",
		       pidf, "-U", sock, "file", self->path, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && access(pidf, F_OK); i++)
		usleep(50000);
	ASSERT_EQ(0, access(pidf, F_OK));
	snprintf(src, sizeof(src), "nbd+unix:///?socket=%s", sock);
	args[0] = src;
	args[1] = self->url;
	args[2] = NULL;
	ASSERT_TRUE(spawn_serve(&self->p, args));
	/* The relay's handshake goes through to nbdkit unchanged. */
	ASSERT_TRUE(relay_accept(&self->w, self->lfd, 10000, NULL, true));
	EXPECT_EQ(FILE_SIZE, self->w.info.size);
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, 0, FILE_SIZE - 3, NULL,
			 buf));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_READ, 0, FILE_SIZE - 3, 3, NULL,
			 buf + FILE_SIZE - 3));
	EXPECT_EQ(0, memcmp(buf, self->content, FILE_SIZE));
	/* nbdkit's file plugin is writable: so is the bridge. */
	memset(buf, 0x42, 4096);
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_WRITE, 0, 512, 4096, buf, NULL));
	ASSERT_EQ(0, cmd(&self->w, NBDP_CMD_FLUSH, 0, 0, 0, NULL, NULL));
	EXPECT_TRUE(file_range_equals(self->path, 512, buf, 4096));
	relay_close(&self->w, WS_CLOSE_NORMAL);
	EXPECT_EQ(WS_CLOSE_NORMAL, close_code(&self->w));
	EXPECT_EQ(0, wait_exit(&self->p, 10000));
	kill(kit, SIGTERM);
	waitpid(kit, NULL, 0);
	unlink(pidf);
	unlink(sock);
	free(buf);
}

TEST_HARNESS_MAIN
