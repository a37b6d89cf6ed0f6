// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl's command line, tested by running build/nbdctl: bad command
 * lines exit 2 with a usage line (WebSocket options included), unsupported
 * URIs exit 1, a missing
 * nbdws module exits 3 with advice, and `info`/`list-exports` work
 * end to end against nbdkit (no kernel module involved).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "nbd_test_servers.h"
#include "nbdctl_run.h"

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
	EXPECT_USAGE("connect", "--connect-timeout", "0", "nbd://h/");
	EXPECT_USAGE("connect", "--connect-timeout", "-1", "nbd://h/");
	EXPECT_USAGE("connect", "--connect-timeout", "1s", "nbd://h/");
	EXPECT_USAGE("connect", "--connect-timeout", "86401", "nbd://h/");
	EXPECT_USAGE("connect", "--connect-timeout", "nan", "nbd://h/");
	EXPECT_USAGE("connect", "nbd://h/", "--connect-timeout");
}

/* --connect-timeout: what is wrong with the value, then the usage line. */
TEST(connect_timeout_usage)
{
	static const char *const cmds[] = { "connect", "info", "list-exports" };
	struct run r;
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		run_nbdctl(&r, cmds[i], "--connect-timeout", "soon",
			   "nbd://h/", NULL);
		EXPECT_EQ(2, r.status) TH_LOG("%s: %s", cmds[i], r.err);
		EXPECT_NE(NULL, strstr(r.err, "nbdctl: --connect-timeout must be a positive number of seconds"))
			TH_LOG("%s: %s", cmds[i], r.err);
		EXPECT_NE(NULL, strstr(r.err, "usage: nbdctl")) TH_LOG("%s", r.err);
	}
	EXPECT_USAGE("reconfigure", "0", "--connect-timeout", "0", "--add", "nbd://h/");
	EXPECT_USAGE("info", "--connect-timeout", "0.0001", "nbd://h/");
}

/* WebSocket options: bad values, and options that do not fit the URI. */
TEST(websocket_option_usage)
{
	char path[64], cmd[128];

	EXPECT_USAGE("connect", "--ws-protocol", "", "ws://h/");
	EXPECT_USAGE("connect", "--ws-protocol", "a b", "ws://h/");
	EXPECT_USAGE("connect", "--ws-protocol", "a,", "ws://h/");
	EXPECT_USAGE("connect", "--authorization", "", "ws://h/");
	EXPECT_USAGE("connect", "--authorization", "Basic x\r\nX-Evil: 1", "ws://h/");
	EXPECT_USAGE("connect", "--authorization", "Basic x\nX: 1", "ws://h/");
	EXPECT_USAGE("connect", "--authorization", "a", "--auth-file", "/dev/null", "ws://h/");
	EXPECT_USAGE("connect", "--auth-file", "", "ws://h/");
	EXPECT_USAGE("connect", "--origin", "", "ws://h/");
	EXPECT_USAGE("connect", "--cafile", "/nonexistent/ca.pem", "wss://h/");
	EXPECT_USAGE("connect", "--cafile", "/dev/null", "--insecure", "wss://h/");
	EXPECT_USAGE("connect", "--insecure", "--cafile", "/dev/null", "wss://h/");
	EXPECT_USAGE("connect", "--ping", "-1", "ws://h/");
	EXPECT_USAGE("connect", "--ping", "soon", "ws://h/");
	EXPECT_USAGE("connect", "--ping", "100000", "ws://h/");
	EXPECT_USAGE("connect", "--ping", "5", "nbd://h/");
	EXPECT_USAGE("connect", "--ws-protocol", "binary", "nbd://h/");
	EXPECT_USAGE("connect", "--insecure", "ws://h/");
	EXPECT_USAGE("connect", "--cafile", "/dev/null", "nbd+unix:///?socket=/s");
	EXPECT_USAGE("info", "--ping", "5", "ws://h/");
	EXPECT_USAGE("info", "--authorization", "x", "nbd://h/");
	EXPECT_USAGE("info", "--insecure", "ws://h/");
	EXPECT_USAGE("list-exports", "--origin", "http://a", "nbd://h/");
	EXPECT_USAGE("list-exports", "--ws-protocol", "bad/token", "ws://h/");

	/* An empty --auth-file, or one with two lines, is a bad value too. */
	make_tmpdir(path, sizeof(path));
	snprintf(cmd, sizeof(cmd), "%s/auth", path);
	ASSERT_EQ(0, make_file(cmd, 0, 0));
	ASSERT_EQ(0, chmod(cmd, 0600));
	EXPECT_USAGE("info", "--auth-file", cmd, "ws://h/");
	snprintf(cmd, sizeof(cmd), "printf 'Basic a\\nX: b\\n' >%s/auth", path);
	ASSERT_EQ(0, system(cmd));
	snprintf(cmd, sizeof(cmd), "%s/auth", path);
	ASSERT_EQ(0, chmod(cmd, 0600));
	EXPECT_USAGE("info", "--auth-file", cmd, "ws://h/");
	remove_tree(path);
}

/* An --auth-file that cannot be read is a failure (1), named in the message. */
TEST(auth_file_unreadable)
{
	struct run r;

	run_nbdctl(&r, "info", "--auth-file", "/nonexistent/auth", "ws://127.0.0.1:1/", NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "/nonexistent/auth")) TH_LOG("stderr: %s", r.err);
}

/*
 * An --auth-file that group or others may read is refused as ssh refuses
 * such a private key: exit 1, the message names the mode and the fix,
 * and nothing is sent (port 1 would refuse the connection anyway; the
 * message must be about the file).
 */
TEST(auth_file_open_to_others)
{
	char dir[64], file[96];
	struct run r;
	FILE *f;

	make_tmpdir(dir, sizeof(dir));
	snprintf(file, sizeof(file), "%s/auth", dir);
	f = fopen(file, "w");
	ASSERT_NE(NULL, f);
	fputs("Bearer s3cr3t\n", f);
	fclose(f);
	ASSERT_EQ(0, chmod(file, 0644));
	run_nbdctl(&r, "info", "--auth-file", file, "ws://127.0.0.1:1/", NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "nbdctl: --auth-file: ")) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "mode 0644")) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "chmod 600")) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(NULL, strstr(r.err, "s3cr3t")) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(NULL, strstr(r.err, "connect")) TH_LOG("stderr: %s", r.err);

	/* The same file, private: read, and the dial (to port 1) fails. */
	ASSERT_EQ(0, chmod(file, 0600));
	run_nbdctl(&r, "info", "--auth-file", file, "wss://127.0.0.1:1/", NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(NULL, strstr(r.err, "--auth-file")) TH_LOG("stderr: %s", r.err);
	remove_tree(dir);
}

/* A read error is a failure, not an empty (or shorter) credential. */
TEST(auth_file_read_error)
{
	struct run r;

	/* Regular, ours, 0600, and read(2) at offset 0 fails with EIO. */
	run_nbdctl(&r, "info", "--auth-file", "/proc/self/mem", "ws://127.0.0.1:1/", NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "cannot read '/proc/self/mem'")) TH_LOG("stderr: %s", r.err);
}

/* Count the lines of @s holding @what. */
static int lines_with(const char *s, const char *what)
{
	int n = 0;

	for (; (s = strstr(s, what)); s += strlen(what))
		n++;
	return n;
}

/*
 * Credentials that would travel in clear text, and --insecure, get a
 * warning on stderr; wss:// with a verified certificate gets none.
 * Port 1 refuses the connection: the warning comes before the dial.
 */
TEST(clear_text_credentials_warn)
{
	struct run r;

	run_nbdctl(&r, "info", "--authorization", "Bearer x", "ws://127.0.0.1:1/", NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(1, lines_with(r.err, "nbdctl: warning: the Authorization value goes over ws:// in clear text"))
		TH_LOG("stderr: %s", r.err);

	run_nbdctl(&r, "info", "ws://127.0.0.1:1/nbd?slot=1&access_token=abc", NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(1, lines_with(r.err, "nbdctl: warning: the URI's query looks like it holds a credential"))
		TH_LOG("stderr: %s", r.err);
	run_nbdctl(&r, "info", "ws://127.0.0.1:1/nbd?Token=abc", NULL);
	EXPECT_EQ(1, lines_with(r.err, "warning: the URI's query")) TH_LOG("stderr: %s", r.err);

	run_nbdctl(&r, "info", "--insecure", "wss://127.0.0.1:1/", NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(1, lines_with(r.err, "nbdctl: warning: --insecure: the server's certificate is not checked"))
		TH_LOG("stderr: %s", r.err);

	/* Nothing to warn about. */
	run_nbdctl(&r, "info", "--authorization", "Bearer x", "wss://127.0.0.1:1/nbd?token=abc", NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(NULL, strstr(r.err, "warning")) TH_LOG("stderr: %s", r.err);
	run_nbdctl(&r, "info", "ws://127.0.0.1:1/nbd?slot=disk0", NULL);
	EXPECT_EQ(NULL, strstr(r.err, "warning")) TH_LOG("stderr: %s", r.err);
}

/* The release in VERSION, next to build/ (as the Makefile builds it in). */
static void read_version(char *out, size_t size)
{
	char path[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/../VERSION", dirname(strdupa(nbdctl_path())));
	f = fopen(path, "r");
	if (!f || !fgets(out, (int)size, f))
		out[0] = '\0';
	if (f)
		fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

TEST(version)
{
	char want[64], line[96];
	struct run r;

	read_version(want, sizeof(want));
	ASSERT_NE(0, want[0]);
	snprintf(line, sizeof(line), "nbdctl %s\n", want);
	run_nbdctl(&r, "--version", NULL);
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ(line, r.out);
	run_nbdctl(&r, "version", NULL);
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ(line, r.out);
	snprintf(line, sizeof(line), "{\"version\":\"%s\"}\n", want);
	run_nbdctl(&r, "-j", "version", NULL);
	EXPECT_STREQ(line, r.out);
	EXPECT_USAGE("version", "extra");
}

/*
 * Every line nbdctl writes to stderr starts with "nbdctl: ", except the
 * usage text (lines starting "usage:" or with spaces, or the help's
 * fixed lines) that follows a usage error.
 */
static bool all_prefixed(const char *err)
{
	const char *line = err, *nl;

	for (; *line; line = nl + 1) {
		nl = strchrnul(line, '\n');
		if (strncmp(line, "nbdctl: ", 8) && strncmp(line, "usage:", 6) &&
		    line[0] != ' ' && strncmp(line, "commands:", 9) &&
		    strncmp(line, "URI:", 4) && strncmp(line, "WS-OPTIONS:", 11) &&
		    strncmp(line, "DEVICE:", 7) && strncmp(line, "exit status:", 12) &&
		    strncmp(line, "see nbdctl", 10))
			return false;
		if (!*nl)
			break;
	}
	return true;
}

/* getopt's own messages are replaced by ours, then the usage line. */
TEST(option_errors_are_ours)
{
	static const struct {
		const char *args[4];
		const char *msg;
	} cases[] = {
		{ { "connect", "--bogus", "nbd://h/" }, "nbdctl: unknown or ambiguous option '--bogus'\n" },
		{ { "connect", "-c" }, "nbdctl: option '-c' needs a value\n" },
		{ { "connect", "nbd://h/", "--timeout" }, "nbdctl: option '--timeout' needs a value\n" },
		{ { "status", "-jq", "0" }, "nbdctl: unknown option '-q'\n" },
		{ { "list", "--json=yes" }, "nbdctl: option '--json' takes no value\n" },
		{ { "--bogus=secret", "list" }, "nbdctl: unknown or ambiguous option '--bogus'\n" },
		{ { "-x", "list" }, "nbdctl: unknown option '-x'\n" },
		{ { "--module" }, "nbdctl: option '--module' needs a value\n" },
		{ { "reconfigure", "0", "--add" }, "nbdctl: option '--add' needs a value\n" },
		{ { "info", "--auth-file" }, "nbdctl: option '--auth-file' needs a value\n" },
		{ { "disconnect", "-z" }, "nbdctl: unknown option '-z'\n" },
		{ { "monitor", "--x" }, "nbdctl: unknown or ambiguous option '--x'\n" },
	};
	struct run r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *args[5] = { 0 };

		memcpy(args, cases[i].args, sizeof(cases[i].args));
		run_nbdctl_argv(&r, args);
		EXPECT_EQ(2, r.status) TH_LOG("case %zu: %s", i, r.err);
		EXPECT_EQ(0, strncmp(r.err, cases[i].msg, strlen(cases[i].msg)))
			TH_LOG("case %zu: %s", i, r.err);
		EXPECT_NE(NULL, strstr(r.err, "usage: nbdctl")) TH_LOG("case %zu: %s", i, r.err);
		EXPECT_TRUE(all_prefixed(r.err)) TH_LOG("case %zu: %s", i, r.err);
		/* What followed '=' is not echoed: it may be a secret. */
		EXPECT_EQ(NULL, strstr(r.err, "secret")) TH_LOG("case %zu: %s", i, r.err);
	}
}

/*
 * libkmod's own lines stay out of the way unless -v asks for them, and
 * then they carry our prefix. Needs a host where nbdws cannot be loaded
 * by name (as on the project's machines: no /lib/modules).
 */
TEST(libkmod_lines_only_with_verbose)
{
	struct run r;

	if (!access("/sys/module/nbdws", F_OK))
		SKIP(return, "the nbdws module is loaded here");
	run_nbdctl(&r, "list", NULL);
	EXPECT_EQ(3, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(NULL, strstr(r.err, "libkmod:")) TH_LOG("stderr: %s", r.err);
	EXPECT_TRUE(all_prefixed(r.err)) TH_LOG("stderr: %s", r.err);
	run_nbdctl(&r, "-v", "list", NULL);
	EXPECT_EQ(3, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "nbdctl: libkmod: ")) TH_LOG("stderr: %s", r.err);
	EXPECT_TRUE(all_prefixed(r.err)) TH_LOG("stderr: %s", r.err);
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
	run_nbdctl(&r, "info", "nbds://h/x", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "not supported")) TH_LOG("%s", r.err);
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
