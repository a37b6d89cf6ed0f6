// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay's configuration and command line, tested by running the
 * ASan build (build/san/nbdws-relay) on files written to a temporary
 * directory: jsnbd nbd-proxy's example config.json loads as it is and
 * --metadata prints what nbd-proxy prints, byte for byte; every bad
 * value exits 1 with a message naming the file and the key; bad command
 * lines exit 2 with a usage line; options override the file (checked
 * through the configuration -v logs before the daemon starts).
 *
 * No module is needed: a configuration that passes goes on to the
 * kernel, which fails on the host; the runs that get that far are
 * bounded by an alarm in case a module happens to be loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json.h>

#include "kselftest_harness.h"
#include "tool_run.h"

/* build/unit/test_relay_config -> build/san/nbdws-relay, unless $NBDWS_RELAY. */
static const char *relay_path(void)
{
	return tool_path("NBDWS_RELAY", "san/nbdws-relay",
			 "build/san/nbdws-relay");
}

/*
 * @rel in the source tree: build/unit/../../@rel, or one level further up
 * for the clang build in build/clang/unit/.
 */
static void src_path(char *out, size_t size, const char *rel)
{
	char self[PATH_MAX];
	const char *dir;
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		snprintf(out, size, "%s", rel);
		return;
	}
	self[n] = '\0';
	dir = dirname(self);
	snprintf(out, size, "%s/../../%s", dir, rel);
	if (access(out, F_OK))
		snprintf(out, size, "%s/../../../%s", dir, rel);
}

static void read_version(char *buf, size_t size)
{
	char path[PATH_MAX];
	FILE *f;

	buf[0] = '\0';
	src_path(path, sizeof(path), "VERSION");
	f = fopen(path, "r");
	if (!f)
		return;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static void run_relay_argv(struct run *r, char *const *args)
{
	run_tool_argv(r, relay_path(), args);
}

static void run_relay(struct run *r, ...)
{
	char *args[63];

	RUN_COLLECT_ARGS(args, r);
	run_relay_argv(r, args);
}

/* Exit status 2, the message and a usage line on stderr, nothing on stdout. */
#define EXPECT_USAGE(msg, ...) do { \
	struct run r_; \
	run_relay(&r_, __VA_ARGS__, NULL); \
	EXPECT_EQ(2, r_.status) TH_LOG("stderr: %s", r_.err); \
	EXPECT_NE(NULL, strstr(r_.err, msg)) TH_LOG("want \"%s\", stderr: %s", msg, r_.err); \
	EXPECT_NE(NULL, strstr(r_.err, "usage: nbdws-relay")) TH_LOG("stderr: %s", r_.err); \
	EXPECT_STREQ("", r_.out); \
} while (0)

/* @s starts with @prefix. */
#define EXPECT_PREFIX(prefix, s) \
	EXPECT_EQ(0, strncmp((s), (prefix), strlen(prefix))) \
		TH_LOG("want \"%s...\", got \"%s\"", (prefix), (s))

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (!f)
		return -1;
	rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) ? -1 : rc;
}

/* The line config.c logs with -v that starts with @prefix, or NULL. */
static const char *log_line(const char *err, const char *prefix,
			    char *out, size_t size)
{
	const char *p = strstr(err, prefix);
	size_t len;

	if (!p)
		return NULL;
	len = strcspn(p, "\n");
	if (len >= size)
		len = size - 1;
	memcpy(out, p, len);
	out[len] = '\0';
	return out;
}

TEST(binary_exists)
{
	ASSERT_EQ(0, access(relay_path(), X_OK))
		TH_LOG("%s is missing: run 'make unit' first", relay_path());
}

TEST(help_and_version)
{
	char version[64], want[96];
	struct run r;

	run_relay(&r, "--help", NULL);
	EXPECT_EQ(0, r.status);
	EXPECT_PREFIX("usage: nbdws-relay", r.out);
	EXPECT_NE(NULL, strstr(r.out, "--listen ADDR"));
	EXPECT_NE(NULL, strstr(r.out, "exit status"));
	EXPECT_STREQ("", r.err);

	run_relay(&r, "-h", NULL);
	EXPECT_EQ(0, r.status);
	EXPECT_PREFIX("usage: nbdws-relay", r.out);

	read_version(version, sizeof(version));
	ASSERT_NE(0, strlen(version));
	snprintf(want, sizeof(want), "nbdws-relay %s\n", version);
	run_relay(&r, "--version", NULL);
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ(want, r.out);
	EXPECT_STREQ("", r.err);
}

TEST(bad_command_lines)
{
	char long_unix[160], many[17][16];
	char *args[40];
	struct run r;
	int i;

	EXPECT_USAGE("nbdws-relay: unknown option --foo", "--foo");
	EXPECT_USAGE("nbdws-relay: unknown option --foo=1", "--foo=1");
	EXPECT_USAGE("nbdws-relay: unknown option -x", "-x");
	EXPECT_USAGE("--config needs an argument", "--config");
	EXPECT_USAGE("--listen needs an argument", "--listen");
	EXPECT_USAGE("unexpected argument 'disk0'", "disk0");
	EXPECT_USAGE("--config given twice", "--config", "a", "--config", "b");
	EXPECT_USAGE("--web needs a non-empty argument", "--web", "");
	EXPECT_USAGE("--tokens needs a non-empty argument", "--tokens", "");
	EXPECT_USAGE("--insecure takes no argument", "--insecure=yes");

	/* Listen addresses: HOST:PORT, [V6]:PORT, :PORT, unix:PATH only. */
	EXPECT_USAGE("--listen 1.2.3.4: expected HOST:PORT", "--listen", "1.2.3.4");
	EXPECT_USAGE("--listen h:0: the port must be", "--listen", "h:0");
	EXPECT_USAGE("--listen h:65536: the port must be", "--listen", "h:65536");
	EXPECT_USAGE("--listen h:http: the port must be", "--listen", "h:http");
	EXPECT_USAGE("--listen h:: the port must be", "--listen", "h:");
	EXPECT_USAGE("--listen ::1:80: write an IPv6 address in brackets",
		     "--listen", "::1:80");
	EXPECT_USAGE("not an IPv6 address", "--listen", "[1.2.3.4]:80");
	EXPECT_USAGE("[ADDRESS]:PORT", "--listen", "[::1]80");
	EXPECT_USAGE("not a host name", "--listen", "a b:80");
	EXPECT_USAGE("unix: needs a socket path", "--listen", "unix:");
	memset(long_unix, 'a', sizeof(long_unix));
	memcpy(long_unix, "unix:/", 6);
	long_unix[sizeof(long_unix) - 1] = '\0';
	EXPECT_USAGE("longer than 107 bytes", "--listen", long_unix);

	/* Seventeen addresses are one too many. */
	for (i = 0; i < 17; i++) {
		snprintf(many[i], sizeof(many[i]), ":%d", 1000 + i);
		args[2 * i] = "--listen";
		args[2 * i + 1] = many[i];
	}
	args[34] = NULL;
	run_relay_argv(&r, args);
	EXPECT_EQ(2, r.status);
	EXPECT_NE(NULL, strstr(r.err, "at most 16 --listen addresses"))
		TH_LOG("stderr: %s", r.err);
}

FIXTURE(cfg) {
	char dir[64];
	char file[128];
};

FIXTURE_SETUP(cfg)
{
	snprintf(self->dir, sizeof(self->dir), "/tmp/nbdws-relay-cfg.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->file, sizeof(self->file), "%s/config.json", self->dir);
}

FIXTURE_TEARDOWN(cfg)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("could not remove %s", self->dir);
}

/* The layout of jsnbd's config.sample.json, key for key. */
static const char nbd_proxy_example[] =
	"{\n"
	"    \"timeout\": 30,\n"
	"    \"configurations\": {\n"
	"        \"0\": {\n"
	"            \"nbd-device\": \"/dev/nbd0\",\n"
	"            \"metadata\": {\n"
	"                \"description\": \"Virtual media device\"\n"
	"            }\n"
	"        },\n"
	"        \"1\": {\n"
	"            \"nbd-device\": \"/dev/nbd1\",\n"
	"            \"metadata\": {\n"
	"                \"description\": \"Dump Offload\"\n"
	"            }\n"
	"        }\n"
	"    }\n"
	"}\n";

/* nbd-proxy prints json-c's spaced rendering of the object with puts(). */
TEST_F(cfg, nbd_proxy_example_metadata)
{
	json_object *top, *md, *desc;
	struct run r;
	int n = 0;

	ASSERT_EQ(0, write_text(self->file, nbd_proxy_example));
	run_relay(&r, "--config", self->file, "--metadata", NULL);
	ASSERT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_STREQ("", r.err);
	EXPECT_STREQ("{ \"0\": { \"description\": \"Virtual media device\" }, "
		     "\"1\": { \"description\": \"Dump Offload\" } }\n", r.out);

	/* And as data: two slots named by their keys, in file order. */
	top = json_tokener_parse(r.out);
	ASSERT_NE(NULL, top);
	ASSERT_TRUE(json_object_is_type(top, json_type_object));
	json_object_object_foreach(top, key, val) {
		EXPECT_STREQ(n == 0 ? "0" : "1", key);
		(void)val;
		n++;
	}
	EXPECT_EQ(2, n);
	ASSERT_TRUE(json_object_object_get_ex(top, "1", &md));
	ASSERT_TRUE(json_object_object_get_ex(md, "description", &desc));
	EXPECT_STREQ("Dump Offload", json_object_get_string(desc));
	EXPECT_EQ(1, json_object_object_length(md));
	json_object_put(top);
}

/*
 * nbd-proxy's leniencies, kept: unknown keys in an entry and metadata
 * that is not an object are ignored (with a warning here), "default" is
 * read for its truth value, a slot without metadata prints null.
 */
TEST_F(cfg, nbd_proxy_leniencies)
{
	json_object *top, *v, *x;
	struct run r;

	ASSERT_EQ(0, write_text(self->file,
		"{ \"configurations\": {\n"
		"  \"a\": { \"nbd-device\": \"/dev/nbd5\", \"default\": 1,\n"
		"         \"metadata\": { \"x\": [1, \"y\"] }, \"frob\": 2 },\n"
		"  \"b\": { \"nbd-device\": \"/dev/nbd6\" },\n"
		"  \"c\": { \"nbd-device\": \"/dev/nbd7\", \"metadata\": \"text\" }\n"
		"} }\n"));
	run_relay(&r, "--config", self->file, "--metadata", NULL);
	ASSERT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "configurations.a.frob: unknown key"))
		TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "configurations.a.default: not true or false; taken as true"))
		TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "configurations.c.metadata: not an object"))
		TH_LOG("stderr: %s", r.err);

	top = json_tokener_parse(r.out);
	ASSERT_NE(NULL, top);
	EXPECT_EQ(3, json_object_object_length(top));
	ASSERT_TRUE(json_object_object_get_ex(top, "a", &v));
	ASSERT_TRUE(json_object_object_get_ex(v, "x", &x));
	ASSERT_TRUE(json_object_is_type(x, json_type_array));
	EXPECT_EQ(2, json_object_array_length(x));
	EXPECT_STREQ("y", json_object_get_string(json_object_array_get_idx(x, 1)));
	ASSERT_TRUE(json_object_object_get_ex(top, "b", &v));
	EXPECT_EQ(NULL, v);
	ASSERT_TRUE(json_object_object_get_ex(top, "c", &v));
	EXPECT_EQ(NULL, v);
	json_object_put(top);
}

/* The example that `make install` ships loads, and says what it shows. */
TEST(example_config_loads)
{
	char path[PATH_MAX], line[1024];
	struct run r;

	src_path(path, sizeof(path), "tools/nbdws-relay/config.example.json");
	run_relay(&r, "--config", path, "--metadata", NULL);
	ASSERT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_STREQ("", r.err);
	EXPECT_STREQ("{ \"media\": { \"description\": \"Virtual media\" }, "
		     "\"install\": { \"description\": \"Installation image (read-only)\" } }\n",
		     r.out);

	/* Up to the files it names, which a test machine does not have. */
	run_relay(&r, "--config", path, "-v", "--tls-cert", "/dev/null",
		  "--tls-key", "/dev/null", "--tokens", "/dev/null", NULL);
	EXPECT_NE(2, r.status);
	ASSERT_NE(NULL, log_line(r.err, "config: slot install:", line,
				 sizeof(line))) TH_LOG("stderr: %s", r.err);
	EXPECT_STREQ("config: slot install: index 1, read-only, export \"\", hold 30 s, timeout 30 s, max-request-size 1048576, queue-depth 0, ping off, origins https://bmc.example.com",
		     line);
}

struct bad_case {
	const char *json;
	const char *msg;	/* after "FILE: " */
};

static const struct bad_case bad_values[] = {
	{ "{\"slots\": {\"d\": {\"hold\": 0}}}", "slots.d.hold: must be a number of seconds from 1 to 86400" },
	{ "{\"slots\": {\"d\": {\"hold\": \"60\"}}}", "slots.d.hold: must be a number" },
	{ "{\"slots\": {\"d\": {\"hold\": 86401}}}", "slots.d.hold: must be" },
	{ "{\"slots\": {\"d\": {\"timeout\": -1}}}", "slots.d.timeout: must be 0 or a number of seconds" },
	{ "{\"slots\": {\"d\": {\"max-request-size\": 100}}}", "slots.d.max-request-size: must be a whole number from 4096 to 33554432" },
	{ "{\"slots\": {\"d\": {\"max-request-size\": 65536.5}}}", "slots.d.max-request-size: must be a whole number" },
	{ "{\"slots\": {\"d\": {\"queue-depth\": 1025}}}", "slots.d.queue-depth: must be 0 or a whole number from 1 to 1024" },
	{ "{\"slots\": {\"d\": {\"ping\": 0.05}}}", "slots.d.ping: must be 0 or a number of seconds from 0.1 to 3600" },
	{ "{\"slots\": {\"d\": {\"index\": -3}}}", "slots.d.index: must be" },
	{ "{\"slots\": {\"d\": {\"index\": 1048576}}}", "slots.d.index: must be" },
	{ "{\"slots\": {\"d\": {\"read-only\": \"yes\"}}}", "slots.d.read-only: must be true or false" },
	{ "{\"slots\": {\"d\": {\"default\": 1}}}", "slots.d.default: must be true or false" },
	{ "{\"slots\": {\"d\": {\"export\": 5}}}", "slots.d.export: must be a string" },
	{ "{\"slots\": {\"d\": {\"metadata\": []}}}", "slots.d.metadata: must be an object" },
	{ "{\"slots\": {\"d\": {\"origins\": \"https://a\"}}}", "slots.d.origins: must be an array" },
	{ "{\"slots\": {\"d\": {\"origins\": [\"https://a\", \"https://b/\"]}}}", "slots.d.origins[1]: \"https://b/\" is not an origin" },
	{ "{\"slots\": {\"d\": {\"origins\": [\"file://a\"]}}}", "slots.d.origins[0]: \"file://a\" is not an origin" },
	{ "{\"slots\": {\"d\": {\"origins\": [\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\",\"https://a\"]}}}", "slots.d.origins: at most 16 origins" },
	{ "{\"slots\": {\"d\": {\"hodl\": 60}}}", "slots.d.hodl: unknown key" },
	{ "{\"slots\": {\"d\": 5}}", "slots.d: must be an object" },
	{ "{\"slots\": []}", "slots: must be an object" },
	{ "{\"slots\": {\"a/b\": {}}}", "slots.a/b: a slot name is 1 to 64 of" },
	{ "{\"slots\": {\"..\": {}}}", "slots...: a slot name" },
	{ "{\"slots\": {\"\": {}}}", "slots.: a slot name" },
	{ "{\"slots\": {\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": {}}}", "slots.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: a slot name is 1 to 64 of" },
	{ "{\"slots\": {\"d\": {\"index\": 2}, \"e\": {\"index\": 2}}}", "slots.e.index: device index 2 is already slot \"d\"'s" },
	{ "{\"slots\": {\"d\": {\"default\": true}, \"e\": {\"default\": true}}}", "slots.e.default: slot \"d\" is the default already" },
	{ "{\"configurations\": {\"0\": {\"nbd-device\": \"/dev/nbd0\"}}, \"slots\": {\"0\": {}}}", "slots.0: slot \"0\" is already defined" },
	{ "{\"configurations\": {\"0\": {\"nbd-device\": \"/dev/nbd4\"}}, \"slots\": {\"d\": {\"index\": 4}}}", "slots.d.index: device index 4 is already slot \"0\"'s" },
	{ "{\"configurations\": {\"0\": {}}}", "configurations.0.nbd-device: missing" },
	{ "{\"configurations\": {\"0\": {\"nbd-device\": \"/dev/sda\"}}}", "configurations.0.nbd-device: \"/dev/sda\" is not /dev/nbdN" },
	{ "{\"configurations\": {\"0\": {\"nbd-device\": 0}}}", "configurations.0.nbd-device: must be a string" },
	{ "{\"configurations\": {\"0\": []}}", "configurations.0: must be an object" },
	{ "{\"configurations\": {\"0\": {\"nbd-device\": \"/dev/nbd1\", \"default\": true}, \"1\": {\"nbd-device\": \"/dev/nbd2\", \"default\": true}}}", "configurations.1.default: slot \"0\" is the default already" },
	{ "{\"timeout\": \"30\", \"slots\": {\"d\": {}}}", "timeout: must be 0 or a number of seconds" },
	{ "{\"slotz\": {}}", "slotz: unknown key" },
	{ "{\"defaults\": {\"index\": 1}, \"slots\": {\"d\": {}}}", "defaults.index: unknown key" },
	{ "{\"defaults\": {\"hold\": 0.5}, \"slots\": {\"d\": {}}}", "defaults.hold: must be a number of seconds from 1" },
	{ "{\"defaults\": [], \"slots\": {\"d\": {}}}", "defaults: must be an object" },
	{ "{\"limits\": {\"connections\": 0}, \"slots\": {\"d\": {}}}", "limits.connections: must be a whole number from 1 to 65536" },
	{ "{\"limits\": {\"handshakes\": 1e9}, \"slots\": {\"d\": {}}}", "limits.handshakes: must be a whole number" },
	{ "{\"limits\": {\"handshake-timeout\": 0}, \"slots\": {\"d\": {}}}", "limits.handshake-timeout: must be a number of seconds" },
	{ "{\"limits\": {\"hook-timeout\": \"1\"}, \"slots\": {\"d\": {}}}", "limits.hook-timeout: must be a number of seconds" },
	{ "{\"limits\": {\"threads\": 1}, \"slots\": {\"d\": {}}}", "limits.threads: unknown key" },
	{ "{\"tls\": {\"cert\": 5}, \"slots\": {\"d\": {}}}", "tls.cert: must be a string" },
	{ "{\"tls\": {\"certificate\": \"c\"}, \"slots\": {\"d\": {}}}", "tls.certificate: unknown key" },
	{ "{\"tls\": {\"require-client-cert\": 1}, \"slots\": {\"d\": {}}}", "tls.require-client-cert: must be true or false" },
	{ "{\"auth\": {\"tokens-file\": \"\"}, \"slots\": {\"d\": {}}}", "auth.tokens-file: must not be empty" },
	{ "{\"auth\": {\"tokens\": [\"x\"]}, \"slots\": {\"d\": {}}}", "auth.tokens: unknown key" },
	{ "{\"listen\": [\"1.2.3.4\"], \"slots\": {\"d\": {}}}", "listen[0]: \"1.2.3.4\": expected HOST:PORT" },
	{ "{\"listen\": [\":80\", \":80\"], \"slots\": {\"d\": {}}}", "listen[1]: \":80\" is listed twice" },
	{ "{\"listen\": \":80\", \"slots\": {\"d\": {}}}", "listen: must be an array" },
	{ "{\"listen\": [80], \"slots\": {\"d\": {}}}", "listen[0]: must be a string" },
	{ "{\"web\": \"\", \"slots\": {\"d\": {}}}", "web: must not be empty" },
	{ "{\"state-hook\": 1, \"slots\": {\"d\": {}}}", "state-hook: must be a string" },
	{ "{\"module\": [], \"slots\": {\"d\": {}}}", "module: must be a string" },
	{ "{\"insecure\": \"no\", \"slots\": {\"d\": {}}}", "insecure: must be true or false" },
	{ "{\"fallback\": 1, \"slots\": {\"d\": {}}}", "fallback: must be true or false" },
};

/* Exit 1, "FILE: key.path: what", nothing on stdout, no usage line. */
TEST_F(cfg, bad_values_name_the_key)
{
	char want[512];
	unsigned int i;
	struct run r;

	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		ASSERT_EQ(0, write_text(self->file, bad_values[i].json));
		run_relay(&r, "--config", self->file, "--listen", ":1", NULL);
		snprintf(want, sizeof(want), "%s: %s", self->file,
			 bad_values[i].msg);
		EXPECT_EQ(1, r.status) TH_LOG("case %u: %s\nstderr: %s", i,
					      bad_values[i].json, r.err);
		EXPECT_NE(NULL, strstr(r.err, want))
			TH_LOG("case %u: %s\nwant: %s\nstderr: %s", i,
			       bad_values[i].json, want, r.err);
		EXPECT_EQ(NULL, strstr(r.err, "usage:"));
		EXPECT_STREQ("", r.out);
	}
}

/* Syntax errors name the line; unreadable files name the file. */
TEST_F(cfg, file_errors)
{
	char want[256];
	struct run r;

	ASSERT_EQ(0, write_text(self->file, "{\n  \"slots\": {\n    \"d\": { \"hold\" 60 }\n  }\n}\n"));
	run_relay(&r, "--config", self->file, "--metadata", NULL);
	EXPECT_EQ(1, r.status);
	snprintf(want, sizeof(want), "%s: line 3: ", self->file);
	EXPECT_NE(NULL, strstr(r.err, want)) TH_LOG("stderr: %s", r.err);

	ASSERT_EQ(0, write_text(self->file, "{ \"slots\": { \"d\": {} } }\n}\n"));
	run_relay(&r, "--config", self->file, "--metadata", NULL);
	EXPECT_EQ(1, r.status);
	snprintf(want, sizeof(want), "%s: line 2: text after the end", self->file);
	EXPECT_NE(NULL, strstr(r.err, want)) TH_LOG("stderr: %s", r.err);

	ASSERT_EQ(0, write_text(self->file, "{ \"slots\": {\n"));
	run_relay(&r, "--config", self->file, "--metadata", NULL);
	EXPECT_EQ(1, r.status);
	snprintf(want, sizeof(want), "%s: line 2: unexpected end of file", self->file);
	EXPECT_NE(NULL, strstr(r.err, want)) TH_LOG("stderr: %s", r.err);

	ASSERT_EQ(0, write_text(self->file, ""));
	run_relay(&r, "--config", self->file, "--metadata", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "unexpected end of file")) TH_LOG("stderr: %s", r.err);

	ASSERT_EQ(0, write_text(self->file, "[{\"slots\": {}}]\n"));
	run_relay(&r, "--config", self->file, "--metadata", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "the configuration must be a JSON object"))
		TH_LOG("stderr: %s", r.err);

	snprintf(want, sizeof(want), "%s/absent.json", self->dir);
	run_relay(&r, "--config", want, "--metadata", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, want)) TH_LOG("stderr: %s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "No such file")) TH_LOG("stderr: %s", r.err);

	run_relay(&r, "--config", self->dir, "--metadata", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "not a regular file")) TH_LOG("stderr: %s", r.err);
	EXPECT_STREQ("", r.out);
}

/* What only the whole (file and options together) can get wrong. */
TEST_F(cfg, whole_configuration_errors)
{
	struct run r;

	ASSERT_EQ(0, write_text(self->file, "{ \"listen\": [\":1\"] }"));
	run_relay(&r, "--config", self->file, NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "no slots configured")) TH_LOG("stderr: %s", r.err);

	ASSERT_EQ(0, write_text(self->file, "{ \"slots\": { \"d\": {} } }"));
	run_relay(&r, "--config", self->file, NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "no listen address: give --listen or \"listen\" in the configuration"))
		TH_LOG("stderr: %s", r.err);
	/* --metadata needs no listen address: nbd-proxy's file has none. */
	run_relay(&r, "--config", self->file, "--metadata", NULL);
	EXPECT_EQ(0, r.status) TH_LOG("stderr: %s", r.err);
	EXPECT_STREQ("{ \"d\": null }\n", r.out);

	run_relay(&r, "--config", self->file, "--listen", ":1", "--tls-cert", "c.pem", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "a certificate needs its key")) TH_LOG("stderr: %s", r.err);
	run_relay(&r, "--config", self->file, "--listen", ":1", "--tls-key", "k.pem", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "a key needs its certificate")) TH_LOG("stderr: %s", r.err);
	run_relay(&r, "--config", self->file, "--listen", ":1", "--tls-client-ca", "ca.pem", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "client certificates need TLS")) TH_LOG("stderr: %s", r.err);

	ASSERT_EQ(0, write_text(self->file,
		"{ \"slots\": { \"d\": {} }, \"listen\": [\":1\"],\n"
		"  \"tls\": { \"cert\": \"c\", \"key\": \"k\", \"require-client-cert\": true } }"));
	run_relay(&r, "--config", self->file, NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "tls.require-client-cert needs tls.client-ca"))
		TH_LOG("stderr: %s", r.err);

	/* Paths the daemon needs are checked before it starts. */
	ASSERT_EQ(0, write_text(self->file, "{ \"slots\": { \"d\": {} }, \"listen\": [\":1\"] }"));
	run_relay(&r, "--config", self->file, "--state-hook", "/nonexistent/state", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "state hook /nonexistent/state: not an executable file"))
		TH_LOG("stderr: %s", r.err);
	run_relay(&r, "--config", self->file, "--web", self->file, NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "not a directory")) TH_LOG("stderr: %s", r.err);
	run_relay(&r, "--config", self->file, "--module", "/nonexistent/nbdws.ko", NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "module /nonexistent/nbdws.ko: not a file"))
		TH_LOG("stderr: %s", r.err);
}

/*
 * The configuration in force, as -v logs it before the daemon starts:
 * options replace what the file says (--listen replaces the whole list),
 * nbd-proxy's timeout and devices map to the slots, defaults fill in.
 */
TEST_F(cfg, options_override_file)
{
	char line[1024], sock[128], want[512];
	struct run r;

	ASSERT_EQ(0, write_text(self->file,
		"{ \"timeout\": 12,\n"
		"  \"listen\": [\":1\", \"127.0.0.1:2\"],\n"
		"  \"web\": \"/nonexistent/web\", \"state-hook\": \"/nonexistent/hook\",\n"
		"  \"insecure\": false,\n"
		"  \"limits\": { \"connections\": 8, \"handshake-timeout\": 2.5 },\n"
		"  \"defaults\": { \"ping\": 2, \"origins\": [\"https://bmc.example\"] },\n"
		"  \"configurations\": { \"0\": { \"nbd-device\": \"/dev/nbd3\" } },\n"
		"  \"slots\": { \"x\": { \"index\": 9, \"hold\": 5, \"read-only\": true,\n"
		"                      \"export\": \"disk\", \"origins\": [] } } }\n"));
	snprintf(sock, sizeof(sock), "unix:%s/s.sock", self->dir);
	run_relay(&r, "--config", self->file, "-v", "--listen", sock,
		  "--web", self->dir, "--state-hook", "/bin/true", "--insecure", NULL);
	EXPECT_NE(2, r.status);

	snprintf(want, sizeof(want), "config: listen %s; tls off; tokens none; client CA none; web %s; state hook /bin/true; insecure yes; fallback no",
		 sock, self->dir);
	ASSERT_NE(NULL, log_line(r.err, "config: listen", line, sizeof(line)))
		TH_LOG("stderr: %s", r.err);
	EXPECT_STREQ(want, line);
	ASSERT_NE(NULL, log_line(r.err, "config: limits", line, sizeof(line)));
	/* Never more handshakes at once than connections. */
	EXPECT_STREQ("config: limits: 8 connections, 8 handshakes, handshake timeout 2.5 s, hook timeout 30 s",
		     line);
	ASSERT_NE(NULL, log_line(r.err, "config: slot 0:", line, sizeof(line)));
	EXPECT_STREQ("config: slot 0: index 3, export \"\", hold 60 s, timeout 12 s, max-request-size 1048576, queue-depth 0, ping 2 s, origins https://bmc.example",
		     line);
	ASSERT_NE(NULL, log_line(r.err, "config: slot x:", line, sizeof(line)));
	EXPECT_STREQ("config: slot x: index 9, read-only, export \"disk\", hold 5 s, timeout 12 s, max-request-size 1048576, queue-depth 0, ping 2 s, origins any",
		     line);

	/* Without --listen the file's list stands, in its order. */
	run_relay(&r, "--config", self->file, "-v", "--web", self->dir,
		  "--state-hook", "/bin/true", NULL);
	EXPECT_NE(2, r.status);
	ASSERT_NE(NULL, log_line(r.err, "config: listen", line, sizeof(line)))
		TH_LOG("stderr: %s", r.err);
	EXPECT_PREFIX("config: listen :1 127.0.0.1:2; ", line);
	EXPECT_NE(NULL, strstr(line, "insecure no"));
	/* Nobody can get in: said at start, not found out by the first client. */
	EXPECT_NE(NULL, strstr(r.err, "every client will be refused")) TH_LOG("stderr: %s", r.err);

	/* Without the options, the file's bad paths are found. */
	run_relay(&r, "--config", self->file, NULL);
	EXPECT_EQ(1, r.status);
	EXPECT_NE(NULL, strstr(r.err, "/nonexistent/hook")) TH_LOG("stderr: %s", r.err);
}

/* As nbd-proxy: a lone slot is the default; two need one marked. */
TEST_F(cfg, lone_slot_is_default)
{
	char line[1024];
	struct run r;

	ASSERT_EQ(0, write_text(self->file, nbd_proxy_example));
	run_relay(&r, "--config", self->file, "-v", "--listen", ":1", "--insecure", NULL);
	EXPECT_NE(2, r.status);
	ASSERT_NE(NULL, log_line(r.err, "config: slot 0:", line, sizeof(line)))
		TH_LOG("stderr: %s", r.err);
	EXPECT_PREFIX("config: slot 0: index 0, export", line);
	ASSERT_NE(NULL, log_line(r.err, "config: slot 1:", line, sizeof(line)));
	EXPECT_PREFIX("config: slot 1: index 1, export", line);
	/* nbd-proxy's timeout is the per-request timeout. */
	EXPECT_NE(NULL, strstr(line, "timeout 30 s"));

	ASSERT_EQ(0, write_text(self->file,
		"{ \"configurations\": { \"only\": { \"nbd-device\": \"/dev/nbd2\" } } }"));
	run_relay(&r, "--config", self->file, "-v", "--listen", ":1", "--insecure", NULL);
	ASSERT_NE(NULL, log_line(r.err, "config: slot only:", line, sizeof(line)))
		TH_LOG("stderr: %s", r.err);
	EXPECT_PREFIX("config: slot only: index 2, default, export", line);

	/* Unless it says it is not. */
	ASSERT_EQ(0, write_text(self->file,
		"{ \"slots\": { \"only\": { \"default\": false } } }"));
	run_relay(&r, "--config", self->file, "-v", "--listen", ":1", "--insecure", NULL);
	ASSERT_NE(NULL, log_line(r.err, "config: slot only:", line, sizeof(line)))
		TH_LOG("stderr: %s", r.err);
	EXPECT_PREFIX("config: slot only: index any, export", line);
}

TEST_HARNESS_MAIN
