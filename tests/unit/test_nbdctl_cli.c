// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl's command line, tested by running build/nbdctl: bad command
 * lines exit 2 with a usage line, unsupported URIs exit 1, a missing
 * nbdws module exits 3 with advice, and `info`/`list-exports` work
 * end to end against nbdkit (no kernel module involved).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "nbd_test_servers.h"

struct run {
	int status;		/* exit code, or -1 if killed */
	char out[8192];
	char err[8192];
};

/* build/unit/test_nbdctl_cli -> build/nbdctl, unless $NBDCTL says. */
static const char *nbdctl_path(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n;

	if (getenv("NBDCTL"))
		return getenv("NBDCTL");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return "build/nbdctl";
	self[n] = '\0';
	snprintf(path, sizeof(path), "%s/../nbdctl", dirname(self));
	return path;
}

static void slurp(int fd, char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off + 1 < len && (n = read(fd, buf + off, len - off - 1)) > 0)
		off += (size_t)n;
	buf[off] = '\0';
}

/* Run nbdctl with a NULL-terminated argument list. */
static void run_nbdctl(struct run *r, ...)
{
	char *argv[32];
	int out[2], err[2], st, i = 1;
	va_list ap;
	pid_t pid;

	argv[0] = (char *)nbdctl_path();
	va_start(ap, r);
	while (i < 31 && (argv[i] = va_arg(ap, char *)))
		i++;
	va_end(ap);
	argv[i] = NULL;
	if (pipe(out) || pipe(err))
		abort();
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		unsetenv("NBDWS_MODULE_PATH");
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	/* Outputs are small: reading one after the other cannot block. */
	slurp(out[0], r->out, sizeof(r->out));
	slurp(err[0], r->err, sizeof(r->err));
	close(out[0]);
	close(err[0]);
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define EXPECT_USAGE(...) do { \
	struct run r; \
	run_nbdctl(&r, __VA_ARGS__, NULL); \
	EXPECT_EQ(2, r.status) TH_LOG("stderr: %s", r.err); \
	EXPECT_NE(NULL, strstr(r.err, "usage")) TH_LOG("stderr: %s", r.err); \
	EXPECT_STREQ("", r.out); \
} while (0)

TEST(binary_exists)
{
	ASSERT_EQ(0, access(nbdctl_path(), X_OK))
		TH_LOG("%s is missing: run 'make tools' first", nbdctl_path());
}

TEST(help_exits_zero)
{
	struct run r;

	run_nbdctl(&r, "-h", NULL);
	EXPECT_EQ(0, r.status);
	EXPECT_NE(NULL, strstr(r.out, "connect"));
	EXPECT_NE(NULL, strstr(r.out, "exit status"));
	run_nbdctl(&r, "connect", "--help", NULL);
	EXPECT_EQ(0, r.status);
	EXPECT_NE(NULL, strstr(r.out, "usage: nbdctl [-j] connect"));
}

TEST(bad_global_usage)
{
	struct run r;

	run_nbdctl(&r, NULL);
	EXPECT_EQ(2, r.status);
	EXPECT_NE(NULL, strstr(r.err, "no command"));
	EXPECT_USAGE("frobnicate");
	EXPECT_USAGE("--bogus", "list");
}

TEST(connect_usage)
{
	EXPECT_USAGE("connect");
	EXPECT_USAGE("connect", "nbd://h/", "0", "extra");
	EXPECT_USAGE("connect", "not-a-uri");
	EXPECT_USAGE("connect", "http://h/");
	EXPECT_USAGE("connect", "nbd://h:99999/");
	EXPECT_USAGE("connect", "nbd://h/", "sda");
	EXPECT_USAGE("connect", "nbd://h/", "/dev/nbd0");
	EXPECT_USAGE("connect", "nbd://h/", "nbdws");
	EXPECT_USAGE("connect", "-c", "0", "nbd://h/");
	EXPECT_USAGE("connect", "-c", "17", "nbd://h/");
	EXPECT_USAGE("connect", "-c", "two", "nbd://h/");
	EXPECT_USAGE("connect", "-t", "0", "nbd://h/");
	EXPECT_USAGE("connect", "-t", "-5", "nbd://h/");
	EXPECT_USAGE("connect", "-t", "soon", "nbd://h/");
	EXPECT_USAGE("connect", "-t", "5", "--no-timeout", "nbd://h/");
	EXPECT_USAGE("connect", "--dead-timeout", "x", "nbd://h/");
	EXPECT_USAGE("connect", "-b", "1000", "nbd://h/");
	EXPECT_USAGE("connect", "-b", "8192", "nbd://h/");
	EXPECT_USAGE("connect", "--max-request", "2048", "nbd://h/");
	EXPECT_USAGE("connect", "--queue-depth", "0", "nbd://h/");
	EXPECT_USAGE("connect", "--queue-depth", "100000", "nbd://h/");
	EXPECT_USAGE("connect", "--backend", "", "nbd://h/");
	EXPECT_USAGE("connect", "--frob", "nbd://h/");
	EXPECT_USAGE("connect", "-c");
}

TEST(other_commands_usage)
{
	EXPECT_USAGE("status");
	EXPECT_USAGE("status", "sda");
	EXPECT_USAGE("status", "0", "1");
	EXPECT_USAGE("disconnect");
	EXPECT_USAGE("disconnect", "--all", "0");
	EXPECT_USAGE("disconnect", "nbdws0", "vda");
	EXPECT_USAGE("list", "extra");
	EXPECT_USAGE("monitor", "extra");
	EXPECT_USAGE("reconfigure", "0");
	EXPECT_USAGE("reconfigure", "-t", "5");
	EXPECT_USAGE("reconfigure", "x", "-t", "5");
	EXPECT_USAGE("reconfigure", "0", "-t", "0");
	EXPECT_USAGE("info");
	EXPECT_USAGE("info", "nbd://a/", "nbd://b/");
	EXPECT_USAGE("info", "nbd+unix:///x");
	EXPECT_USAGE("list-exports", "nbd://h:0/");
}

TEST(unsupported_uris_fail_with_exit_1)
{
	struct run r;

	run_nbdctl(&r, "connect", "nbds://h/", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "not supported")) TH_LOG("%s", r.err);
	run_nbdctl(&r, "connect", "ws://h/x", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "not supported")) TH_LOG("%s", r.err);
	run_nbdctl(&r, "info", "wss://h/x", NULL);
	EXPECT_EQ(1, r.status);
}

TEST(missing_module_exits_3)
{
	struct run r;

	if (!access("/sys/module/nbdws", F_OK))
		SKIP(return, "the nbdws module is loaded here");
	run_nbdctl(&r, "list", NULL);
	EXPECT_EQ(3, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "modprobe nbdws")) TH_LOG("stderr: %s", r.err);
	run_nbdctl(&r, "--module", "/nonexistent/nbdws.ko", "status", "0", NULL);
	EXPECT_EQ(3, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "/nonexistent/nbdws.ko")) TH_LOG("stderr: %s", r.err);
}

TEST(info_and_list_against_nbdkit)
{
	char dir[64], sock[128], pidfile[128], log[128], cmd[512], uri[256];
	char *argv[] = { "sh", "-c", cmd, NULL };
	struct run r;
	pid_t pid;

	if (!have_prog("nbdkit"))
		SKIP(return, "nbdkit is not installed");
	make_tmpdir(dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/sock", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	snprintf(cmd, sizeof(cmd),
		 "exec nbdkit --exit-with-parent -P %s -U %s --filter=exportname memory 5000000 exportname=disk1 exportname-strict=true exportname-list=explicit exportdesc=fixed:first",
		 pidfile, sock);
	pid = spawn(argv, log);
	ASSERT_TRUE(wait_path(pidfile, 10000));

	snprintf(uri, sizeof(uri), "nbd+unix:///disk1?socket=%s", sock);
	run_nbdctl(&r, "-j", "info", uri, NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.out, "\"size\":5000000")) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "\"export\":\"disk1\"")) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "\"description\":\"first\"")) TH_LOG("%s", r.out);

	run_nbdctl(&r, "info", uri, NULL);
	EXPECT_EQ(0, r.status);
	EXPECT_NE(NULL, strstr(r.out, "5000000 bytes")) TH_LOG("%s", r.out);

	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", sock);
	run_nbdctl(&r, "list-exports", "-j", uri, NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.out, "\"name\":\"disk1\"")) TH_LOG("%s", r.out);

	snprintf(uri, sizeof(uri), "nbd+unix:///disk2?socket=%s", sock);
	run_nbdctl(&r, "info", uri, NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "no such export")) TH_LOG("%s", r.err);

	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s/none", dir);
	run_nbdctl(&r, "info", uri, NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "cannot connect")) TH_LOG("%s", r.err);

	stop_pid(pid);
	remove_tree(dir);
}

TEST_HARNESS_MAIN
