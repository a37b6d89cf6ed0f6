// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the userspace NBD handshake (lib/nbd_handshake.c) against
 * real servers - nbdkit, nbd-server, qemu-nbd - started on loopback TCP
 * or unix sockets in a temp dir, against a small EXPORT_NAME-only server
 * (written here, in a forked child) and against scripted malformed
 * servers. After NBD_OPT_GO the connection must really be in the
 * transmission phase: the tests read data back and compare it with the
 * file the server exports.
 *
 * A test is skipped (with the reason) only when a server binary is not
 * installed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "nbd_dial.h"
#include "nbd_handshake.h"
#include "nbd_sock.h"
#include "nbd_wire.h"
#include "nbd_test_servers.h"

#define TIMEOUT_MS	10000
#define MiB		(1024 * 1024)

/* ---- client helpers ------------------------------------------------- */

static int dial(const char *text, enum nbd_dial_mode mode, int *fd,
		struct nbd_export_info *info, struct nbdws_err *err)
{
	struct nbd_uri uri;
	int rc;

	rc = nbd_uri_parse(text, &uri, err);
	if (rc)
		return rc;
	rc = nbd_dial(&uri, mode, TIMEOUT_MS, info, err);
	nbd_uri_free(&uri);
	if (rc < 0)
		return rc;
	if (fd)
		*fd = rc;
	else if (mode == NBD_DIAL_GO)
		close(rc);
	return 0;
}

static int list(const char *text, struct nbd_export_list *l,
		struct nbdws_err *err)
{
	struct nbd_uri uri;
	int rc;

	rc = nbd_uri_parse(text, &uri, err);
	if (rc)
		return rc;
	rc = nbd_dial_list(&uri, TIMEOUT_MS, l, err);
	nbd_uri_free(&uri);
	return rc;
}

static bool list_has(const struct nbd_export_list *l, const char *name,
		     const char *desc)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name) &&
		    (!desc || !strcmp(l->v[i].description, desc)))
			return true;
	return false;
}

/*
 * Issue NBD_CMD_READ on a connection in transmission and compare the
 * data with the pattern make_file() wrote with @seed (or zeroes if
 * @seed < 0). Returns 0 when every byte matches.
 */
static int read_and_compare(int fd, u64 offset, u32 len, int seed)
{
	struct nbd_wire_request req = {
		.type = NBDP_CMD_READ, .cookie = 0x1234abcd5678ULL,
		.offset = offset, .length = len,
	};
	struct nbd_reply_parser p;
	struct nbd_wire_reply rep;
	u8 hdr[NBDP_REQUEST_SIZE], rbuf[NBDP_SIMPLE_REPLY_SIZE];
	u8 *data = malloc(len);
	size_t used;
	u32 i;
	int rc = -1;

	nbd_wire_encode_request(hdr, &req);
	if (!data || !srv_write(fd, hdr, sizeof(hdr)) ||
	    !srv_read(fd, rbuf, sizeof(rbuf)))
		goto out;
	nbd_reply_parser_init(&p);
	if (nbd_reply_parse(&p, rbuf, sizeof(rbuf), &used, &rep) != NBD_REPLY_DONE ||
	    rep.error || rep.cookie != req.cookie || !srv_read(fd, data, len))
		goto out;
	for (i = 0; i < len; i++) {
		u8 want = seed < 0 ? 0 : (u8)(((offset + i) * 31 + (u32)seed) & 0xff);

		if (data[i] != want)
			goto out;
	}
	rc = 0;
out:
	free(data);
	return rc;
}

static void disc(int fd)
{
	struct nbd_wire_request req = { .type = NBDP_CMD_DISC };
	u8 hdr[NBDP_REQUEST_SIZE];

	nbd_wire_encode_request(hdr, &req);
	srv_write(fd, hdr, sizeof(hdr));
	close(fd);
}

/* ---- real servers ------------------------------------------------------ */

FIXTURE(srv) {
	char dir[64];
	char path[256];		/* socket */
	char pidfile[256];
	char log[256];
	char uri[512];
	pid_t pid;
	bool daemon;		/* forked away: stop via pidfile */
};

FIXTURE_SETUP(srv)
{
	make_tmpdir(self->dir, sizeof(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/sock", self->dir);
	snprintf(self->pidfile, sizeof(self->pidfile), "%s/pid", self->dir);
	snprintf(self->log, sizeof(self->log), "%s/log", self->dir);
	self->pid = 0;
	self->daemon = false;
}

FIXTURE_TEARDOWN(srv)
{
	if (self->daemon)
		stop_pidfile(self->pidfile);
	stop_pid(self->pid);
	remove_tree(self->dir);
}

/* Start nbdkit in the foreground (dies with us); wait until ready. */
static bool start_nbdkit(FIXTURE_DATA(srv) *self, const char *listen_args,
			 const char *plugin_args)
{
	char cmd[1024];
	char *argv[] = { "sh", "-c", cmd, NULL };

	snprintf(cmd, sizeof(cmd),
		 "exec nbdkit --exit-with-parent -P %s %s %s",
		 self->pidfile, listen_args, plugin_args);
	self->pid = spawn(argv, self->log);
	/* nbdkit writes the pid file once it accepts connections. */
	return wait_path(self->pidfile, 10000);
}

TEST_F(srv, nbdkit_memory_unix)
{
	struct nbd_export_info info;
	struct nbdws_err err;
	char args[300];
	int fd;

	if (!have_prog("nbdkit"))
		SKIP(return, "nbdkit is not installed");
	snprintf(args, sizeof(args), "-U %s", self->path);
	ASSERT_TRUE(start_nbdkit(self, args, "memory 1M"));
	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///?socket=%s", self->path);

	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_GO, &fd, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(1 * MiB, info.size);
	EXPECT_TRUE(info.tflags & NBDP_FLAG_HAS_FLAGS);
	EXPECT_TRUE(info.tflags & NBDP_FLAG_SEND_FLUSH);
	EXPECT_TRUE(info.tflags & NBDP_FLAG_SEND_TRIM);
	EXPECT_TRUE(info.tflags & NBDP_FLAG_CAN_MULTI_CONN);
	EXPECT_FALSE(info.tflags & NBDP_FLAG_READ_ONLY);
	/* Structured replies are never negotiated, so no DF. */
	EXPECT_FALSE(info.tflags & NBDP_FLAG_SEND_DF);
	EXPECT_FALSE(info.used_export_name);
	EXPECT_TRUE(info.hs_flags & NBDP_FLAG_FIXED_NEWSTYLE);
	EXPECT_STREQ("", info.name);
	/* Transmission works: a fresh memory disk reads back zeroes. */
	EXPECT_EQ(0, read_and_compare(fd, 4096, 8192, -1));
	disc(fd);
	nbd_export_info_free(&info);
}

TEST_F(srv, nbdkit_tcp_loopback)
{
	struct nbd_export_info info;
	struct nbdws_err err;
	unsigned short port = free_port();
	char args[300];

	if (!have_prog("nbdkit"))
		SKIP(return, "nbdkit is not installed");
	snprintf(args, sizeof(args), "-i 127.0.0.1 -p %u", port);
	ASSERT_TRUE(start_nbdkit(self, args, "memory 65536"));
	snprintf(self->uri, sizeof(self->uri), "nbd://127.0.0.1:%u/", port);

	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_GO, NULL, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(65536, info.size);
	nbd_export_info_free(&info);
	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_INFO, NULL, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(65536, info.size);
	EXPECT_FALSE(info.used_export_name);
	nbd_export_info_free(&info);
}

TEST_F(srv, nbdkit_named_exports_from_dir)
{
	struct nbd_export_info info;
	struct nbd_export_list l;
	struct nbdws_err err;
	char args[300], file[300];
	int fd;

	if (!have_prog("nbdkit"))
		SKIP(return, "nbdkit is not installed");
	snprintf(file, sizeof(file), "%s/exports", self->dir);
	ASSERT_EQ(0, mkdir(file, 0755));
	snprintf(file, sizeof(file), "%s/exports/alpha", self->dir);
	ASSERT_EQ(0, make_file(file, 1 * MiB, 1));
	snprintf(file, sizeof(file), "%s/exports/beta", self->dir);
	ASSERT_EQ(0, make_file(file, 2 * MiB + 4096, 2));
	snprintf(args, sizeof(args), "file dir=%s/exports", self->dir);
	snprintf(file, sizeof(file), "-U %s", self->path);
	ASSERT_TRUE(start_nbdkit(self, file, args));

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///beta?socket=%s", self->path);
	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_GO, &fd, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(2 * MiB + 4096, info.size);
	/* The bytes are beta's, so the name reached the server intact. */
	EXPECT_EQ(0, read_and_compare(fd, 2 * MiB - 512, 4096, 2));
	disc(fd);
	nbd_export_info_free(&info);

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///alpha?socket=%s", self->path);
	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_INFO, NULL, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(1 * MiB, info.size);
	EXPECT_STREQ("alpha", info.name);
	nbd_export_info_free(&info);

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///gamma?socket=%s", self->path);
	EXPECT_EQ(-ENOENT, dial(self->uri, NBD_DIAL_GO, NULL, &info, &err));
	EXPECT_NE(NULL, strstr(err.msg, "'gamma'")) TH_LOG("%s", err.msg);

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///?socket=%s", self->path);
	ASSERT_EQ(0, list(self->uri, &l, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(2, l.n);
	EXPECT_TRUE(list_has(&l, "alpha", NULL));
	EXPECT_TRUE(list_has(&l, "beta", NULL));
	nbd_export_list_free(&l);
}

TEST_F(srv, nbdkit_strict_export_name_and_description)
{
	struct nbd_export_info info;
	struct nbdws_err err;
	char args[300];

	if (!have_prog("nbdkit"))
		SKIP(return, "nbdkit is not installed");
	snprintf(args, sizeof(args), "-U %s --filter=exportname", self->path);
	ASSERT_TRUE(start_nbdkit(self, args,
				 "memory 3M exportname=foo exportname-strict=true exportdesc=fixed:hello"));

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///foo?socket=%s", self->path);
	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_GO, NULL, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(3 * MiB, info.size);
	ASSERT_NE(NULL, info.description);
	EXPECT_STREQ("hello", info.description);
	nbd_export_info_free(&info);

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///bar?socket=%s", self->path);
	EXPECT_EQ(-ENOENT, dial(self->uri, NBD_DIAL_INFO, NULL, &info, &err));
	EXPECT_EQ(-ENOENT, dial(self->uri, NBD_DIAL_GO, NULL, &info, &err));
}

TEST_F(srv, nbdkit_block_sizes)
{
	struct nbd_export_info info;
	struct nbdws_err err;
	char args[300];

	if (!have_prog("nbdkit"))
		SKIP(return, "nbdkit is not installed");
	snprintf(args, sizeof(args), "-U %s --filter=blocksize-policy", self->path);
	ASSERT_TRUE(start_nbdkit(self, args,
				 "memory 1M blocksize-minimum=512 blocksize-preferred=65536 blocksize-maximum=1M"));
	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///?socket=%s", self->path);
	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_GO, NULL, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_TRUE(info.block_size_given);
	EXPECT_EQ(512, info.block_min);
	EXPECT_EQ(65536, info.block_pref);
	EXPECT_EQ(1 * MiB, info.block_max);
	nbd_export_info_free(&info);
}

TEST_F(srv, nbd_server_exports)
{
	struct nbd_export_info info;
	struct nbd_export_list l;
	struct nbdws_err err;
	char conf[300], img[300];
	char *argv[] = { "nbd-server", "-C", conf, "-p", self->pidfile, NULL };
	FILE *f;
	int fd;

	if (!have_prog("nbd-server"))
		SKIP(return, "nbd-server is not installed");
	snprintf(img, sizeof(img), "%s/img", self->dir);
	ASSERT_EQ(0, make_file(img, 1 * MiB + 4096, 3));
	snprintf(conf, sizeof(conf), "%s/nbd.conf", self->dir);
	f = fopen(conf, "w");
	ASSERT_NE(NULL, f);
	fprintf(f, "[generic]\n\tunixsock = %s\n\tallowlist = true\n"
		"[exp1]\n\texportname = %s\n"
		"[exp2]\n\texportname = %s\n\treadonly = true\n",
		self->path, img, img);
	fclose(f);
	/* nbd-server forks into the background: wait for it, stop by pid. */
	self->daemon = true;
	ASSERT_EQ(0, waitpid(spawn(argv, self->log), NULL, 0) < 0);
	ASSERT_TRUE(wait_unix_listener(self->path, 10000));

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///exp1?socket=%s", self->path);
	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_GO, &fd, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(1 * MiB + 4096, info.size);
	EXPECT_FALSE(info.tflags & NBDP_FLAG_READ_ONLY);
	EXPECT_EQ(0, read_and_compare(fd, 1 * MiB - 4096, 8192, 3));
	disc(fd);
	nbd_export_info_free(&info);

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///exp2?socket=%s", self->path);
	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_GO, &fd, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_TRUE(info.tflags & NBDP_FLAG_READ_ONLY);
	EXPECT_EQ(0, read_and_compare(fd, 0, 512, 3));
	disc(fd);
	nbd_export_info_free(&info);

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///nope?socket=%s", self->path);
	EXPECT_EQ(-ENOENT, dial(self->uri, NBD_DIAL_GO, NULL, &info, &err));
	EXPECT_NE(NULL, strstr(err.msg, "nope")) TH_LOG("%s", err.msg);

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///?socket=%s", self->path);
	ASSERT_EQ(0, list(self->uri, &l, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(2, l.n);
	EXPECT_TRUE(list_has(&l, "exp1", NULL));
	EXPECT_TRUE(list_has(&l, "exp2", NULL));
	nbd_export_list_free(&l);
}

TEST_F(srv, qemu_nbd_export)
{
	struct nbd_export_info info;
	struct nbd_export_list l;
	struct nbdws_err err;
	char img[300];
	char *argv[] = { "qemu-nbd", "-k", self->path, "-f", "raw", "-x", "disk",
			 "-D", "a test disk", "--persistent", "-r", img, NULL };
	int fd;

	if (!have_prog("qemu-nbd"))
		SKIP(return, "qemu-nbd is not installed");
	snprintf(img, sizeof(img), "%s/img", self->dir);
	ASSERT_EQ(0, make_file(img, 2 * MiB, 4));
	self->pid = spawn(argv, self->log);
	ASSERT_TRUE(wait_unix_listener(self->path, 10000));

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///disk?socket=%s", self->path);
	ASSERT_EQ(0, dial(self->uri, NBD_DIAL_GO, &fd, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(2 * MiB, info.size);
	EXPECT_TRUE(info.tflags & NBDP_FLAG_READ_ONLY);
	/* qemu-nbd states its block sizes. */
	EXPECT_TRUE(info.block_size_given);
	EXPECT_GE(info.block_max, info.block_pref);
	ASSERT_NE(NULL, info.description);
	EXPECT_STREQ("a test disk", info.description);
	EXPECT_EQ(0, read_and_compare(fd, 12345, 3000, 4));
	disc(fd);
	nbd_export_info_free(&info);

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///?socket=%s", self->path);
	ASSERT_EQ(0, list(self->uri, &l, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(1, l.n);
	EXPECT_TRUE(list_has(&l, "disk", "a test disk"));
	nbd_export_list_free(&l);

	snprintf(self->uri, sizeof(self->uri), "nbd+unix:///other?socket=%s", self->path);
	EXPECT_EQ(-ENOENT, dial(self->uri, NBD_DIAL_INFO, NULL, &info, &err));
}

/* ---- an EXPORT_NAME-only server --------------------------------------- */

#define LEGACY_SIZE	(12345ULL * 512)
#define LEGACY_FLAGS	(NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_SEND_FLUSH | NBDP_FLAG_READ_ONLY)

/*
 * Serve one client like a browser NBD server: every option but
 * EXPORT_NAME gets NBD_REP_ERR_UNSUP. Exit status 0 means the client
 * behaved: right flags, right name, and (when @want_disc) a clean
 * NBD_CMD_DISC once in transmission.
 */
static int legacy_serve(int fd, u16 hs_flags, const char *want_name,
			bool want_disc)
{
	u8 reply[10 + 124] = { 0 }, req[NBDP_REQUEST_SIZE];
	u32 cflags, opt, len;
	u8 *data;

	if (!srv_greet(fd, hs_flags, &cflags))
		return 10;
	/* The client only sets flags the server offered. */
	if (cflags & ~(u32)hs_flags)
		return 11;
	for (;;) {
		if (!srv_read_option(fd, &opt, &data, &len))
			return 12;
		if (opt == NBDP_OPT_EXPORT_NAME)
			break;
		free(data);
		/* Non-fixed newstyle servers cannot refuse an option. */
		if (!(hs_flags & NBDP_FLAG_FIXED_NEWSTYLE))
			return 13;
		if (!srv_reply(fd, opt, NBDP_REP_ERR_UNSUP, NULL, 0))
			return 14;
	}
	if (len != strlen(want_name) || memcmp(data, want_name, len)) {
		free(data);
		return 0;	/* unknown export: hang up, as the spec says */
	}
	free(data);
	put_be64(reply, LEGACY_SIZE);
	put_be16(reply + 8, LEGACY_FLAGS);
	if (!srv_write(fd, reply, (cflags & NBDP_FLAG_C_NO_ZEROES) ? 10 : sizeof(reply)))
		return 15;
	if (!want_disc)
		return 0;
	if (!srv_read(fd, req, sizeof(req)) || get_be32(req) != NBDP_REQUEST_MAGIC ||
	    get_be16(req + 6) != NBDP_CMD_DISC)
		return 16;
	return 0;
}

/* Fork a one-shot legacy server on loopback TCP; returns its pid. */
static pid_t legacy_start(unsigned short *port, u16 hs_flags, const char *name,
			  bool want_disc)
{
	int lfd = listen_loopback(port);
	pid_t pid = fork();

	if (pid == 0) {
		int fd = accept(lfd, NULL, NULL);

		_exit(fd < 0 ? 9 : legacy_serve(fd, hs_flags, name, want_disc));
	}
	close(lfd);
	return pid;
}

static int legacy_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void legacy_case(struct __test_metadata *_metadata, u16 hs_flags,
			enum nbd_dial_mode mode)
{
	struct nbd_export_info info;
	struct nbdws_err err;
	unsigned short port;
	pid_t pid = legacy_start(&port, hs_flags, "legacy", mode == NBD_DIAL_INFO);
	char uri[64];
	int fd = -1;

	snprintf(uri, sizeof(uri), "nbd://127.0.0.1:%u/legacy", port);
	ASSERT_EQ(0, dial(uri, mode, mode == NBD_DIAL_GO ? &fd : NULL, &info, &err))
		TH_LOG("%s", err.msg);
	EXPECT_EQ(LEGACY_SIZE, info.size);
	EXPECT_EQ(LEGACY_FLAGS, info.tflags);
	EXPECT_TRUE(info.used_export_name);
	/* No INFO_BLOCK_SIZE: the protocol's defaults. */
	EXPECT_FALSE(info.block_size_given);
	EXPECT_EQ(NBD_DEFAULT_BLOCK_MIN, info.block_min);
	EXPECT_EQ(NBD_DEFAULT_BLOCK_PREF, info.block_pref);
	EXPECT_EQ(NBD_DEFAULT_BLOCK_MAX, info.block_max);
	EXPECT_STREQ("legacy", info.name);
	nbd_export_info_free(&info);
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(0, legacy_status(pid));
}

TEST(export_name_fallback_go)
{
	legacy_case(_metadata, NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES,
		    NBD_DIAL_GO);
}

TEST(export_name_fallback_go_with_zeroes)
{
	/* Without NO_ZEROES the reply carries 124 bytes of padding. */
	legacy_case(_metadata, NBDP_FLAG_FIXED_NEWSTYLE, NBD_DIAL_GO);
}

TEST(export_name_fallback_info_sends_disc)
{
	legacy_case(_metadata, NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES,
		    NBD_DIAL_INFO);
}

TEST(export_name_unfixed_newstyle)
{
	/* Such a server would drop us on any option but EXPORT_NAME. */
	legacy_case(_metadata, 0, NBD_DIAL_GO);
	legacy_case(_metadata, 0, NBD_DIAL_INFO);
}

TEST(ipv6_loopback_literal)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t len = sizeof(sin6);
	struct nbd_export_info info;
	struct nbdws_err err;
	char uri[64];
	int lfd = socket(AF_INET6, SOCK_STREAM, 0);
	pid_t pid;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin6, sizeof(sin6)) ||
	    listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&sin6, &len))
		SKIP(return, "no IPv6 loopback on this host");
	pid = fork();
	if (pid == 0) {
		int fd = accept(lfd, NULL, NULL);

		_exit(fd < 0 ? 9 : legacy_serve(fd, NBDP_FLAG_FIXED_NEWSTYLE, "v6", false));
	}
	close(lfd);
	snprintf(uri, sizeof(uri), "nbd://[::1]:%u/v6", ntohs(sin6.sin6_port));
	ASSERT_EQ(0, dial(uri, NBD_DIAL_GO, NULL, &info, &err)) TH_LOG("%s", err.msg);
	EXPECT_EQ(LEGACY_SIZE, info.size);
	nbd_export_info_free(&info);
	EXPECT_EQ(0, legacy_status(pid));
}

TEST(export_name_unknown_export)
{
	struct nbd_export_info info;
	struct nbdws_err err;
	unsigned short port;
	pid_t pid = legacy_start(&port, NBDP_FLAG_FIXED_NEWSTYLE, "legacy", false);
	char uri[64];

	snprintf(uri, sizeof(uri), "nbd://127.0.0.1:%u/other", port);
	EXPECT_EQ(-ENOENT, dial(uri, NBD_DIAL_GO, NULL, &info, &err));
	EXPECT_NE(NULL, strstr(err.msg, "'other'")) TH_LOG("%s", err.msg);
	EXPECT_EQ(0, legacy_status(pid));
}

TEST(connect_refused)
{
	struct nbd_export_info info;
	struct nbdws_err err;
	char uri[64];

	snprintf(uri, sizeof(uri), "nbd://127.0.0.1:%u/", free_port());
	EXPECT_EQ(-ECONNREFUSED, dial(uri, NBD_DIAL_GO, NULL, &info, &err));
	EXPECT_NE(NULL, strstr(err.msg, "127.0.0.1")) TH_LOG("%s", err.msg);
	EXPECT_EQ(-ENOENT, dial("nbd+unix:///?socket=/nonexistent/nbdws.sock",
				NBD_DIAL_GO, NULL, &info, &err));
	EXPECT_EQ(-EPROTONOSUPPORT, dial("ws://127.0.0.1/", NBD_DIAL_GO, NULL, &info, &err));
}

/* ---- scripted malformed servers --------------------------------------- */

enum script {
	S_BAD_MAGIC, S_OLDSTYLE, S_TRUNC_GREETING, S_HUGE_REPLY, S_WRONG_OPT,
	S_BAD_REPLY_MAGIC, S_INFO_EXPORT_BAD_LEN, S_ACK_WITHOUT_EXPORT,
	S_TRUNC_PAYLOAD, S_SILENT, S_BAD_BLOCK_SIZE, S_HUGE_SIZE, S_ENDLESS_INFO,
	S_POLICY, S_TLS_REQD, S_UNSUP_THEN_CLOSE, S_UNKNOWN_TYPE, S_ACK_PAYLOAD,
	S_LONG_NAME, S_LIST_BAD_NAMELEN, S_LIST_OK, S_LIST_UNSUP, S_TRICKLE,
};

static void info_export(u8 *buf, u64 size, u16 flags)
{
	put_be16(buf, NBDP_INFO_EXPORT);
	put_be64(buf + 2, size);
	put_be16(buf + 10, flags);
}

/* The server side of @s; runs in a child on one end of a socketpair. */
static void run_script(int fd, enum script s)
{
	u8 buf[8192] = { 0 }, *data;
	u32 cflags, opt, len, i;

	switch (s) {
	case S_BAD_MAGIC:
		srv_write(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
		return;
	case S_OLDSTYLE:
		put_be64(buf, NBDP_INIT_PASSWD);
		put_be64(buf + 8, NBDP_OLDSTYLE_MAGIC);
		srv_write(fd, buf, 152);
		return;
	case S_TRUNC_GREETING:
		put_be64(buf, NBDP_INIT_PASSWD);
		srv_write(fd, buf, 10);
		return;
	default:
		break;
	}
	if (!srv_greet(fd, NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES, &cflags) ||
	    !srv_read_option(fd, &opt, &data, &len))
		return;
	free(data);
	switch (s) {
	case S_HUGE_REPLY:
		/* Claims 256 MiB: must be refused before any allocation. */
		put_be64(buf, NBDP_OPT_REPLY_MAGIC);
		put_be32(buf + 8, opt);
		put_be32(buf + 12, NBDP_REP_INFO);
		put_be32(buf + 16, 0x10000000);
		srv_write(fd, buf, 20);
		break;
	case S_WRONG_OPT:
		srv_reply(fd, opt + 1, NBDP_REP_ACK, NULL, 0);
		break;
	case S_BAD_REPLY_MAGIC:
		put_be64(buf, NBDP_IHAVEOPT);
		put_be32(buf + 8, opt);
		srv_write(fd, buf, 20);
		break;
	case S_INFO_EXPORT_BAD_LEN:
		info_export(buf, 4096, 1);
		srv_reply(fd, opt, NBDP_REP_INFO, buf, 11);
		srv_reply(fd, opt, NBDP_REP_ACK, NULL, 0);
		break;
	case S_ACK_WITHOUT_EXPORT:
		srv_reply(fd, opt, NBDP_REP_ACK, NULL, 0);
		break;
	case S_TRUNC_PAYLOAD:
		put_be64(buf, NBDP_OPT_REPLY_MAGIC);
		put_be32(buf + 8, opt);
		put_be32(buf + 12, NBDP_REP_INFO);
		put_be32(buf + 16, 12);
		srv_write(fd, buf, 25);
		break;
	case S_SILENT:
		sleep(5);
		break;
	case S_TRICKLE:
		/* One byte per 100 ms: only the overall deadline stops it. */
		info_export(buf + 20, 4096, 1);
		put_be64(buf, NBDP_OPT_REPLY_MAGIC);
		put_be32(buf + 8, opt);
		put_be32(buf + 12, NBDP_REP_INFO);
		put_be32(buf + 16, 12);
		for (i = 0; i < 32; i++) {
			if (!srv_write(fd, buf + i, 1))
				break;
			usleep(100000);
		}
		break;
	case S_BAD_BLOCK_SIZE:
		info_export(buf, 4096, 1);
		srv_reply(fd, opt, NBDP_REP_INFO, buf, 12);
		put_be16(buf, NBDP_INFO_BLOCK_SIZE);
		put_be32(buf + 2, 3);
		put_be32(buf + 6, 4096);
		put_be32(buf + 10, 65536);
		srv_reply(fd, opt, NBDP_REP_INFO, buf, 14);
		srv_reply(fd, opt, NBDP_REP_ACK, NULL, 0);
		break;
	case S_HUGE_SIZE:
		info_export(buf, 1ULL << 63, 1);
		srv_reply(fd, opt, NBDP_REP_INFO, buf, 12);
		srv_reply(fd, opt, NBDP_REP_ACK, NULL, 0);
		break;
	case S_ENDLESS_INFO:
		put_be16(buf, 99);
		for (i = 0; i < NBD_MAX_REPLIES + 10; i++)
			if (!srv_reply(fd, opt, NBDP_REP_INFO, buf, 2))
				break;
		break;
	case S_POLICY:
		/* U+0085 (NEL) is a line break on some terminals. */
		srv_reply(fd, opt, NBDP_REP_ERR_POLICY, "go\xc2\x85" "away\n", 9);
		break;
	case S_TLS_REQD:
		srv_reply(fd, opt, NBDP_REP_ERR_TLS_REQD, NULL, 0);
		break;
	case S_UNSUP_THEN_CLOSE:
		srv_reply(fd, opt, NBDP_REP_ERR_UNSUP, NULL, 0);
		srv_read_option(fd, &opt, &data, &len);
		free(data);
		break;
	case S_UNKNOWN_TYPE:
		srv_reply(fd, opt, 77, NULL, 0);
		break;
	case S_ACK_PAYLOAD:
		info_export(buf, 4096, 1);
		srv_reply(fd, opt, NBDP_REP_INFO, buf, 12);
		srv_reply(fd, opt, NBDP_REP_ACK, buf, 4);
		break;
	case S_LONG_NAME:
		put_be16(buf, NBDP_INFO_NAME);
		memset(buf + 2, 'n', 5000);
		srv_reply(fd, opt, NBDP_REP_INFO, buf, 5002);
		break;
	case S_LIST_BAD_NAMELEN:
		put_be32(buf, 100);
		srv_reply(fd, opt, NBDP_REP_SERVER, buf, 10);
		break;
	case S_LIST_OK:
		put_be32(buf, 3);
		/* é stays; ESC, C1 CSI and a stray 0xff do not. */
		memcpy(buf + 4, "a\x01" "bd\xc3\xa9sc\x1b[31m\xc2\x9b\xff", 16);
		srv_reply(fd, opt, NBDP_REP_SERVER, buf, 20);
		put_be32(buf, 0);
		srv_reply(fd, opt, NBDP_REP_SERVER, buf, 4);
		srv_reply(fd, opt, NBDP_REP_ACK, NULL, 0);
		/* Expect the client's NBD_OPT_ABORT next. */
		if (srv_read_option(fd, &opt, &data, &len) && opt == NBDP_OPT_ABORT)
			srv_reply(fd, opt, NBDP_REP_ACK, NULL, 0);
		free(data);
		break;
	case S_LIST_UNSUP:
		srv_reply(fd, opt, NBDP_REP_ERR_UNSUP, NULL, 0);
		break;
	default:
		break;
	}
}

enum { DO_GO, DO_INFO, DO_LIST };

/* Run the handshake against script @s; returns the handshake's result. */
static int scripted(enum script s, int what, int timeout_ms,
		    struct nbdws_err *err, struct nbd_export_list *l)
{
	struct nbd_export_info info;
	struct nbd_fd_xport fx;
	struct nbd_xport x;
	int sv[2], rc;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -999;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		run_script(sv[1], s);
		_exit(0);
	}
	close(sv[1]);
	err->msg[0] = '\0';
	nbd_fd_xport_init(&x, &fx, sv[0], timeout_ms);
	if (what == DO_LIST)
		rc = nbd_handshake_list(&x, l, err);
	else if (what == DO_INFO)
		rc = nbd_handshake_info(&x, "e", &info, err);
	else
		rc = nbd_handshake_go(&x, "e", &info, err);
	if (!rc && what != DO_LIST)
		nbd_export_info_free(&info);
	close(sv[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return rc;
}

#define SCRIPT_FAILS(s, what, rc, needle) do { \
	struct nbdws_err err; \
	struct nbd_export_list l; \
	EXPECT_EQ(rc, scripted(s, what, 2000, &err, &l)); \
	EXPECT_NE(NULL, strstr(err.msg, needle)) TH_LOG("message: %s", err.msg); \
} while (0)

TEST(malformed_greeting)
{
	SCRIPT_FAILS(S_BAD_MAGIC, DO_GO, -EPROTO, "not an NBD server");
	SCRIPT_FAILS(S_OLDSTYLE, DO_GO, -EPROTO, "oldstyle");
	SCRIPT_FAILS(S_TRUNC_GREETING, DO_GO, -ECONNRESET, "closed the connection");
}

TEST(malformed_option_replies)
{
	SCRIPT_FAILS(S_HUGE_REPLY, DO_GO, -EPROTO, "larger than");
	SCRIPT_FAILS(S_WRONG_OPT, DO_GO, -EPROTO, "answered option");
	SCRIPT_FAILS(S_BAD_REPLY_MAGIC, DO_INFO, -EPROTO, "magic");
	SCRIPT_FAILS(S_INFO_EXPORT_BAD_LEN, DO_GO, -EPROTO, "bad length");
	SCRIPT_FAILS(S_ACK_WITHOUT_EXPORT, DO_GO, -EPROTO, "without NBD_INFO_EXPORT");
	SCRIPT_FAILS(S_TRUNC_PAYLOAD, DO_GO, -ECONNRESET, "closed the connection");
	SCRIPT_FAILS(S_UNKNOWN_TYPE, DO_GO, -EPROTO, "unexpected reply type");
	SCRIPT_FAILS(S_ACK_PAYLOAD, DO_GO, -EPROTO, "payload");
	SCRIPT_FAILS(S_LONG_NAME, DO_GO, -EPROTO, "bad length");
	SCRIPT_FAILS(S_ENDLESS_INFO, DO_GO, -EPROTO, "more than");
}

TEST(absurd_values)
{
	SCRIPT_FAILS(S_BAD_BLOCK_SIZE, DO_GO, -EPROTO, "invalid block sizes");
	SCRIPT_FAILS(S_HUGE_SIZE, DO_INFO, -EPROTO, "impossible export size");
}

TEST(server_errors)
{
	SCRIPT_FAILS(S_POLICY, DO_GO, -EACCES, "go?away?");
	SCRIPT_FAILS(S_TLS_REQD, DO_GO, -EACCES, "TLS");
	/* EXPORT_NAME fallback, then the server hangs up: unknown export. */
	SCRIPT_FAILS(S_UNSUP_THEN_CLOSE, DO_GO, -ENOENT, "no export named 'e'");
}

TEST(stalled_servers_time_out)
{
	SCRIPT_FAILS(S_SILENT, DO_GO, -ETIMEDOUT, "timed out");
	/* 32 bytes at 10/s take 3.2 s: more than the 2 s deadline. */
	SCRIPT_FAILS(S_TRICKLE, DO_GO, -ETIMEDOUT, "timed out");
}

TEST(list_replies)
{
	struct nbd_export_list l;
	struct nbdws_err err;

	SCRIPT_FAILS(S_LIST_BAD_NAMELEN, DO_LIST, -EPROTO, "malformed NBD_REP_SERVER");
	SCRIPT_FAILS(S_LIST_UNSUP, DO_LIST, -EOPNOTSUPP, "NBD_OPT_LIST");

	ASSERT_EQ(0, scripted(S_LIST_OK, DO_LIST, 2000, &err, &l)) TH_LOG("%s", err.msg);
	ASSERT_EQ(2, l.n);
	/* Control characters from the server never reach a terminal. */
	EXPECT_STREQ("a?b", l.v[0].name);
	EXPECT_STREQ("d\xc3\xa9sc?[31m??", l.v[0].description);
	EXPECT_STREQ("", l.v[1].name);
	EXPECT_STREQ("", l.v[1].description);
	nbd_export_list_free(&l);
}

TEST_HARNESS_MAIN
