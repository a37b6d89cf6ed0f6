// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl info / list-exports over ws:// and wss://, run as a program
 * against websockify (Debian package, nobody here wrote it) in front of
 * nbdkit's memory plugin on loopback: plain, with Basic authorization,
 * and with TLS (a throwaway certificate made with the openssl CLI at test
 * time), checking exit codes and that every failure message names the
 * option that fixes it. No kernel module is involved: `connect` over
 * ws:// is tested in the VM (selftests) once the kernel takes WebSocket
 * transports.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "spawn_util.h"

#include "nbd_test_servers.h"
#include "nbdctl_run.h"

#define WEBSOCKIFY	"/usr/bin/websockify"
#define PYTHON		"/usr/bin/python3"
/* Not a multiple of 512, so that a wrong size would show. */
#define EXPORT_SIZE	"5000000"
/* websockify (Python) can take seconds to start on a slow machine. */
#define START_MS	60000
/* nbd:s3cret in Basic form, and a wrong one (nbd:wrong). */
#define AUTH_GOOD	"Basic bmJkOnMzY3JldA=="
#define AUTH_BAD	"Basic bmJkOndyb25n"

FIXTURE(wsctl)
{
	char dir[64];
	char sock[128];
	char cert[128];
	char key[128];
	pid_t nbdkit, ws;
	unsigned short port;
	bool ready;
};

/* The 6.1 harness runs the test body even when the setup skipped. */
#define NEED_SERVERS() do { \
		if (!self->ready) \
			SKIP(return, "servers not available"); \
	} while (0)

FIXTURE_SETUP(wsctl)
{
	char log[128];
	char *nbdkit_argv[] = { "/usr/bin/nbdkit", "-f", "--exit-with-parent",
				"-U", self->sock, "memory", EXPORT_SIZE, NULL };

	self->nbdkit = self->ws = 0;
	self->ready = false;
	self->dir[0] = '\0';
	if (access(WEBSOCKIFY, X_OK) || access(PYTHON, X_OK))
		SKIP(return, "needs websockify (apt-get install websockify)");
	if (access("/usr/bin/nbdkit", X_OK) || !have_prog("openssl"))
		SKIP(return, "needs nbdkit and openssl");
	make_tmpdir(self->dir, sizeof(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/nbd.sock", self->dir);
	snprintf(log, sizeof(log), "%s/nbdkit.log", self->dir);
	self->nbdkit = spawn_group(nbdkit_argv, log);
	ASSERT_TRUE(wait_unix_listener(self->sock, 5000));

	ASSERT_EQ(0, make_test_cert(self->dir, self->cert, sizeof(self->cert),
				    self->key, sizeof(self->key)));
	self->ready = true;
}

FIXTURE_TEARDOWN(wsctl)
{
	stop_group(self->ws);
	stop_group(self->nbdkit);
	if (self->dir[0] && !getenv("NBDWS_KEEP_TMP"))
		remove_tree(self->dir);
}

/* websockify in front of nbdkit with extra options @opt (NULL-ended). */
static bool start_websockify(FIXTURE_DATA(wsctl) *self, const char *const *opt)
{
	char listen[32], target[300], log[300];
	char *argv[20];
	int n = 0;

	self->port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", self->port);
	snprintf(target, sizeof(target), "--unix-target=%s", self->sock);
	snprintf(log, sizeof(log), "%s/websockify.log", self->dir);
	argv[n++] = PYTHON;
	argv[n++] = WEBSOCKIFY;
	argv[n++] = target;
	for (; opt && *opt; opt++)
		argv[n++] = (char *)*opt;
	argv[n++] = listen;
	argv[n] = NULL;
	self->ws = spawn_group(argv, log);
	return wait_tcp(self->port, START_MS);
}

/* "SCHEME://HOST:PORT/" for the running websockify. */
static const char *url(FIXTURE_DATA(wsctl) *self, const char *scheme,
		       const char *host)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s://%s:%u/", scheme, host, self->port);
	return buf;
}

#define EXPECT_FAIL_WITH(r, text) do { \
	EXPECT_EQ(1, (r).status) TH_LOG("stderr: %s", (r).err); \
	EXPECT_NE(NULL, strstr((r).err, text)) TH_LOG("stderr: %s", (r).err); \
	EXPECT_STREQ("", (r).out); \
} while (0)

TEST_F_TIMEOUT(wsctl, plain_info_and_list, 300)
{
	struct run r;

	NEED_SERVERS();
	ASSERT_TRUE(start_websockify(self, NULL));

	run_nbdctl(&r, "-j", "info", url(self, "ws", "127.0.0.1"), NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.out, "\"size\":" EXPORT_SIZE)) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "\"negotiation\":\"info\"")) TH_LOG("%s", r.out);

	/* Human output, with every header option websockify accepts. */
	run_nbdctl(&r, "info", "--ws-protocol", "binary", "--origin",
		   "http://localhost", url(self, "ws", "localhost"), NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.out, EXPORT_SIZE " bytes")) TH_LOG("%s", r.out);

	run_nbdctl(&r, "list-exports", "-j", url(self, "ws", "127.0.0.1"), NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.out, "\"name\":")) TH_LOG("%s", r.out);

	/* Nothing listens on the port any more once websockify is gone. */
	stop_group(self->ws);
	self->ws = 0;
	run_nbdctl(&r, "info", url(self, "ws", "127.0.0.1"), NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "refused")) TH_LOG("stderr: %s", r.err);
}

TEST_F_TIMEOUT(wsctl, authorization, 300)
{
	const char *opt[] = { "--auth-plugin=BasicHTTPAuth",
			      "--auth-source=nbd:s3cret", NULL };
	char auth[160];
	struct run r;
	FILE *f;

	NEED_SERVERS();
	ASSERT_TRUE(start_websockify(self, opt));

	/* No credentials, then wrong ones: 401, and the options to use. */
	run_nbdctl(&r, "info", url(self, "ws", "127.0.0.1"), NULL);
	EXPECT_FAIL_WITH(r, "401");
	EXPECT_NE(NULL, strstr(r.err, "--authorization")) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "--auth-file")) TH_LOG("%s", r.err);
	run_nbdctl(&r, "list-exports", "--authorization", AUTH_BAD,
		   url(self, "ws", "127.0.0.1"), NULL);
	EXPECT_FAIL_WITH(r, "401");

	run_nbdctl(&r, "-j", "info", "--authorization", AUTH_GOOD,
		   url(self, "ws", "127.0.0.1"), NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.out, "\"size\":" EXPORT_SIZE)) TH_LOG("%s", r.out);

	/* From a file, as editors write it: with a trailing newline. */
	snprintf(auth, sizeof(auth), "%s/auth", self->dir);
	f = fopen(auth, "w");
	ASSERT_NE(NULL, f);
	fputs(AUTH_GOOD "\n", f);
	fclose(f);
	/* Refused if others could read it, as ssh refuses such a key. */
	ASSERT_EQ(0, chmod(auth, 0600));
	run_nbdctl(&r, "list-exports", "--auth-file", auth,
		   url(self, "ws", "127.0.0.1"), NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);

	f = fopen(auth, "w");
	ASSERT_NE(NULL, f);
	fputs(AUTH_BAD "\n", f);
	fclose(f);
	run_nbdctl(&r, "info", "--auth-file", auth, url(self, "ws", "127.0.0.1"), NULL);
	EXPECT_FAIL_WITH(r, "401");
}

TEST_F_TIMEOUT(wsctl, tls, 300)
{
	char certarg[160], keyarg[160];
	const char *opt[] = { certarg, keyarg, "--ssl-only", NULL };
	struct run r;

	NEED_SERVERS();
	snprintf(certarg, sizeof(certarg), "--cert=%s", self->cert);
	snprintf(keyarg, sizeof(keyarg), "--key=%s", self->key);
	ASSERT_TRUE(start_websockify(self, opt));

	/* Verified against the throwaway CA, by DNS name and by IP (SAN). */
	run_nbdctl(&r, "-j", "info", "--cafile", self->cert,
		   url(self, "wss", "localhost"), NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.out, "\"size\":" EXPORT_SIZE)) TH_LOG("%s", r.out);
	run_nbdctl(&r, "list-exports", "--cafile", self->cert,
		   url(self, "wss", "127.0.0.1"), NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);

	/* The system store does not know the CA: say --cafile / --insecure. */
	run_nbdctl(&r, "info", url(self, "wss", "localhost"), NULL);
	EXPECT_FAIL_WITH(r, "certificate");
	EXPECT_NE(NULL, strstr(r.err, "--cafile")) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "--insecure")) TH_LOG("%s", r.err);

	run_nbdctl(&r, "info", "--insecure", url(self, "wss", "localhost"), NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.out, EXPORT_SIZE " bytes")) TH_LOG("%s", r.out);
	/* Only -v says which TLS version and cipher (in userspace: 1.3 too). */
	EXPECT_EQ(NULL, strstr(r.err, "TLSv1.")) TH_LOG("%s", r.err);
	run_nbdctl(&r, "-v", "info", "--insecure", url(self, "wss", "localhost"),
		   NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "nbdctl: localhost: TLSv1.")) TH_LOG("%s", r.err);

	/* Trusted CA, but an address the certificate does not name. */
	run_nbdctl(&r, "info", "--cafile", self->cert,
		   url(self, "wss", "[::ffff:127.0.0.1]"), NULL);
	EXPECT_FAIL_WITH(r, "not valid for");
	EXPECT_NE(NULL, strstr(r.err, "--insecure")) TH_LOG("%s", r.err);

	/* ws:// to a TLS-only server fails, without hanging. */
	run_nbdctl(&r, "info", url(self, "ws", "127.0.0.1"), NULL);
	EXPECT_EQ(1, r.status) TH_LOG("stderr: %s", r.err);
}

TEST_HARNESS_MAIN
