// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for the decisions nbdws-relay takes on a request before any
 * device is involved: the tokens file (format, mode and owner checks,
 * errors that name the line but never the token), credentials in a
 * request (Authorization, ?token=, token as subprotocol, client
 * certificate; 400/401/403 and the subprotocol answer), origins, routes
 * (status codes for every kind of request), and static file paths (no
 * "..", dotfiles or symbolic links; content types). Built with
 * tools/nbdws-relay/{auth,route,webfiles,log}.c linked in, under
 * ASan/UBSan.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kselftest_harness.h"

#include "auth.h"
#include "relay.h"
#include "route.h"
#include "webfiles.h"

const struct relay_config *relay_cfg;

#define TOK_A	"tokenAAAAAAAAAAAAAAAAAAAAA"	/* every slot */
#define TOK_B	"tokenBBBBBBBBBBBBB+/=-._~"	/* disk1 only */
#define TOK_C	"tokenCCCCCCCCCCCCCCCC"		/* disk0 and disk1 */
#define KEY	"dGhlIHNhbXBsZSBub25jZQ=="

static char *names[] = { "disk0", "disk1", "disk2" };

static void make_cfg(struct relay_config *cfg, bool insecure)
{
	unsigned int i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->n_slots = 3;
	for (i = 0; i < 3; i++) {
		cfg->slots[i].name = names[i];
		cfg->slots[i].index = -1;
	}
	cfg->slots[1].is_default = true;
	cfg->insecure = insecure;
}

/* Write @text to a fresh file in @dir with @mode; returns its path. */
static char *write_file(const char *dir, const char *name, const char *text,
			mode_t mode)
{
	char *path;
	int fd;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		abort();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fchmod(fd, mode) || close(fd))
		abort();
	return path;
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/test_relay_session.XXXXXX");

	if (!d || !mkdtemp(d))
		abort();
	return d;
}

static void rmtree(const char *dir)
{
	char *cmd;

	if (asprintf(&cmd, "rm -rf '%s'", dir) < 0)
		abort();
	if (system(cmd))
		abort();
	free(cmd);
}

static const char tokens_text[] =
	"# relay tokens\n"
	"\n"
	"  " TOK_A "\n"
	TOK_B " disk1\r\n"
	"\t" TOK_C "\tdisk0  disk1 \n"
	"# the end, no newline after this";

FIXTURE(tokens) {
	char *dir;
	struct relay_config cfg;
	struct auth_set set;
	struct nbdws_err err;
};

FIXTURE_SETUP(tokens)
{
	char *path;

	self->dir = tmpdir();
	make_cfg(&self->cfg, false);
	relay_cfg = &self->cfg;
	path = write_file(self->dir, "tokens", tokens_text, 0600);
	ASSERT_EQ(0, auth_set_load(path, 0, &self->cfg, &self->set,
				   &self->err));
	free(path);
}

FIXTURE_TEARDOWN(tokens)
{
	auth_set_free(&self->set);
	rmtree(self->dir);
	free(self->dir);
}

static int load(struct __test_metadata *_metadata, const char *dir,
		const char *text, mode_t mode, struct relay_config *cfg,
		struct nbdws_err *err)
{
	struct auth_set set;
	char *path = write_file(dir, "t2", text, mode);
	int rc;

	memset(err, 0, sizeof(*err));
	rc = auth_set_load(path, 0, cfg, &set, err);
	if (!rc) {
		EXPECT_EQ(1, set.n);
		auth_set_free(&set);
	}
	free(path);
	return rc;
}

TEST_F(tokens, file_parsed)
{
	EXPECT_EQ(3, self->set.n);
	EXPECT_TRUE(self->set.v[0].all_slots);
	EXPECT_FALSE(self->set.v[1].all_slots);
	EXPECT_EQ(1ULL << 1, self->set.v[1].slots);
	EXPECT_EQ(3ULL, self->set.v[2].slots);
}

TEST_F(tokens, file_refused)
{
	struct nbdws_err *err = &self->err;
	char *path, *link;

	/* Readable by others: refused, and the message says what to do. */
	EXPECT_EQ(-EPERM, load(_metadata, self->dir, TOK_A "\n", 0640,
			       &self->cfg, err));
	EXPECT_NE(NULL, strstr(err->msg, "chmod 600"));
	EXPECT_EQ(-EPERM, load(_metadata, self->dir, TOK_A "\n", 0604,
			       &self->cfg, err));
	EXPECT_EQ(0, load(_metadata, self->dir, TOK_A "\n", 0400,
			  &self->cfg, err));

	/* A token too short, with a bad character, or too long. */
	EXPECT_EQ(-EINVAL, load(_metadata, self->dir, "\nshort\n", 0600,
				&self->cfg, err));
	EXPECT_NE(NULL, strstr(err->msg, ":2: not a valid token"));
	EXPECT_EQ(NULL, strstr(err->msg, "short"));
	EXPECT_EQ(-EINVAL, load(_metadata, self->dir,
				"tokenwith\"quote\"1234567\n", 0600,
				&self->cfg, err));
	EXPECT_EQ(NULL, strstr(err->msg, "quote"));
	{
		char longtok[300];

		memset(longtok, 'x', 257);
		strcpy(longtok + 257, "\n");
		EXPECT_EQ(-EINVAL, load(_metadata, self->dir, longtok, 0600,
					&self->cfg, err));
		longtok[256] = '\n';
		longtok[257] = '\0';
		EXPECT_EQ(0, load(_metadata, self->dir, longtok, 0600,
				  &self->cfg, err));
	}

	/* A slot that does not exist: a typo must not pass. */
	EXPECT_EQ(-EINVAL, load(_metadata, self->dir, TOK_A " disk9\n", 0600,
				&self->cfg, err));
	EXPECT_NE(NULL, strstr(err->msg, ":1: no slot named \"disk9\""));
	EXPECT_EQ(NULL, strstr(err->msg, TOK_A));

	/* The same token twice. */
	EXPECT_EQ(-EINVAL, load(_metadata, self->dir,
				TOK_A "\n" TOK_A " disk0\n", 0600,
				&self->cfg, err));
	EXPECT_NE(NULL, strstr(err->msg, ":2:"));

	/* Owned by another user than root or us. */
	path = write_file(self->dir, "t3", TOK_A "\n", 0600);
	ASSERT_EQ(0, chown(path, 4242, 4242));
	{
		struct auth_set set;

		EXPECT_EQ(-EPERM, auth_set_load(path, 0, &self->cfg, &set,
						err));
		EXPECT_NE(NULL, strstr(err->msg, "uid 4242"));
		/* ... unless that is the relay's own uid. */
		ASSERT_EQ(0, auth_set_load(path, 4242, &self->cfg, &set, err));
		auth_set_free(&set);
	}

	/* Not through a symbolic link, not a directory. */
	if (asprintf(&link, "%s/link", self->dir) < 0)
		abort();
	ASSERT_EQ(0, symlink(path, link));
	{
		struct auth_set set;

		EXPECT_EQ(-ELOOP, auth_set_load(link, 4242, &self->cfg, &set,
						err));
		EXPECT_EQ(-EINVAL, auth_set_load(self->dir, 0, &self->cfg,
						 &set, err));
		EXPECT_EQ(-ENOENT, auth_set_load("/nonexistent/tokens", 0,
						 &self->cfg, &set, err));
	}
	free(link);
	free(path);
}

static int parse(const char *text, struct http_request *req)
{
	struct nbdws_err err;

	return http_parse_request(text, strlen(text), RELAY_MAX_REQUEST_LINE,
				  req, &err);
}

/* Check @extra (header lines) + @target against slot @slot. */
static void check(struct __test_metadata *_metadata,
		  const struct auth_set *set, const struct relay_config *cfg,
		  const char *target, const char *extra, const u8 *cert,
		  int slot, struct auth_result *res)
{
	struct http_request req;
	char text[2048];

	snprintf(text, sizeof(text),
		 "GET %s HTTP/1.1\r\nHost: relay\r\n%s\r\n", target, extra);
	ASSERT_EQ(0, parse(text, &req));
	auth_check(set, cfg, &req, cert, slot, res);
	http_request_free(&req);
	/* Whatever the outcome, the reason never carries a token. */
	if (res->why) {
		EXPECT_EQ(NULL, strstr(res->why, "token" "AAAA"));
		EXPECT_EQ(NULL, strstr(res->why, "token" "BBBB"));
	}
}

static void sha(const char *s, u8 out[32])
{
	unsigned int n;

	EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

TEST_F(tokens, credentials)
{
	struct auth_result r;
	u8 h[32], cert[32];

	/* Bearer, for any slot. */
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Authorization: Bearer " TOK_A "\r\n", NULL, 0, &r);
	EXPECT_EQ(0, r.status);
	EXPECT_FALSE(r.id.anonymous);
	sha(TOK_A, h);
	EXPECT_EQ(0, memcmp(h, r.id.sha, 32));
	EXPECT_STREQ("", r.protocol);

	/* A token limited to disk1: 403 elsewhere, fine there and for -1. */
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Authorization: bearer  " TOK_B " \r\n", NULL, 0, &r);
	EXPECT_EQ(403, r.status);
	check(_metadata, &self->set, &self->cfg, "/disk1",
	      "Authorization: Bearer " TOK_B "\r\n", NULL, 1, &r);
	EXPECT_EQ(0, r.status);
	check(_metadata, &self->set, &self->cfg, "/status",
	      "Authorization: Bearer " TOK_B "\r\n", NULL, -1, &r);
	EXPECT_EQ(0, r.status);
	check(_metadata, &self->set, &self->cfg, "/disk2",
	      "Authorization: Bearer " TOK_C "\r\n", NULL, 2, &r);
	EXPECT_EQ(403, r.status);

	/* Wrong token, no token, another scheme: 401. */
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Authorization: Bearer tokenAAAAAAAAAAAAAAAAAAAAB\r\n", NULL, 0,
	      &r);
	EXPECT_EQ(401, r.status);
	check(_metadata, &self->set, &self->cfg, "/disk0", "", NULL, 0, &r);
	EXPECT_EQ(401, r.status);
	EXPECT_STREQ("no credential", r.why);
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Authorization: Basic dXNlcjpwYXNz\r\n", NULL, 0, &r);
	EXPECT_EQ(401, r.status);
	/* Two Authorization headers: 400. */
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Authorization: Bearer " TOK_A "\r\nAuthorization: Bearer "
	      TOK_A "\r\n", NULL, 0, &r);
	EXPECT_EQ(400, r.status);

	/* ?token=, percent-encoded, and '+' kept. */
	check(_metadata, &self->set, &self->cfg,
	      "/disk1?x=1&token=tokenBBBBBBBBBBBBB%2B/%3D-._~", "", NULL, 1,
	      &r);
	EXPECT_EQ(0, r.status);
	/* The same token in two places is fine; two different ones are not. */
	check(_metadata, &self->set, &self->cfg, "/disk0?token=" TOK_A,
	      "Authorization: Bearer " TOK_A "\r\n", NULL, 0, &r);
	EXPECT_EQ(0, r.status);
	check(_metadata, &self->set, &self->cfg, "/disk0?token=" TOK_C,
	      "Authorization: Bearer " TOK_A "\r\n", NULL, 0, &r);
	EXPECT_EQ(400, r.status);

	/* As subprotocol (webui-vue): echoed back as the chosen one. */
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: " TOK_A "\r\n", NULL, 0, &r);
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ(TOK_A, r.protocol);
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: binary, " TOK_A "\r\n", NULL, 0, &r);
	EXPECT_STREQ(TOK_A, r.protocol);
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: binary\r\nAuthorization: Bearer " TOK_A
	      "\r\n", NULL, 0, &r);
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("binary", r.protocol);
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: " TOK_C "\r\nAuthorization: Bearer "
	      TOK_A "\r\n", NULL, 0, &r);
	EXPECT_EQ(400, r.status);
	EXPECT_STREQ("", r.protocol);
	/* An unknown subprotocol is not a credential. */
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: notatokenbutlongenough\r\n", NULL, 0,
	      &r);
	EXPECT_EQ(401, r.status);
	EXPECT_STREQ("", r.protocol);

	/* A verified client certificate is an identity of its own. */
	memset(cert, 0x5a, sizeof(cert));
	check(_metadata, &self->set, &self->cfg, "/disk2", "", cert, 2, &r);
	EXPECT_EQ(0, r.status);
	EXPECT_FALSE(r.id.anonymous);
	EXPECT_EQ(0, memcmp(cert, r.id.sha, 32));
	/* A token next to it is checked and wins. */
	check(_metadata, &self->set, &self->cfg, "/disk2",
	      "Authorization: Bearer " TOK_B "\r\n", cert, 2, &r);
	EXPECT_EQ(403, r.status);
}

TEST_F(tokens, insecure)
{
	struct auth_set empty = { 0 };
	struct auth_id anon = { .anonymous = true }, other = { 0 };
	struct auth_result r;

	self->cfg.insecure = true;
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: binary\r\n", NULL, 0, &r);
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(r.id.anonymous);
	EXPECT_STREQ("binary", r.protocol);
	EXPECT_TRUE(auth_id_equal(&r.id, &anon));
	EXPECT_FALSE(auth_id_equal(&r.id, &other));
	/* With tokens loaded, a wrong one is still refused. */
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Authorization: Bearer tokenXXXXXXXXXXXXXXXXXXXX\r\n", NULL, 0,
	      &r);
	EXPECT_EQ(401, r.status);
	/* Without a tokens file there is nothing to check one against. */
	check(_metadata, &empty, &self->cfg, "/disk0",
	      "Authorization: Bearer tokenXXXXXXXXXXXXXXXXXXXX\r\n", NULL, 0,
	      &r);
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(r.id.anonymous);
	/*
	 * A token offered as the only subprotocol (webui-vue) is echoed
	 * although nothing checks it: a browser fails the handshake
	 * otherwise. Only one value, the first token-shaped one; "binary"
	 * still wins, and a name too short to be a token is not echoed.
	 */
	check(_metadata, &empty, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: tokenXXXXXXXXXXXXXXXXXXXX\r\n", NULL, 0,
	      &r);
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(r.id.anonymous);
	EXPECT_STREQ("tokenXXXXXXXXXXXXXXXXXXXX", r.protocol);
	check(_metadata, &empty, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: tokenXXXXXXXXXXXXXXXXXXXX, "
	      "tokenYYYYYYYYYYYYYYYYYYYY\r\n", NULL, 0, &r);
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("tokenXXXXXXXXXXXXXXXXXXXX", r.protocol);
	check(_metadata, &empty, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: tokenXXXXXXXXXXXXXXXXXXXX, binary\r\n",
	      NULL, 0, &r);
	EXPECT_STREQ("binary", r.protocol);
	check(_metadata, &empty, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: chat\r\n", NULL, 0, &r);
	EXPECT_EQ(0, r.status);
	EXPECT_STREQ("", r.protocol);
	/* With tokens loaded too: an unknown one is no credential, echoed. */
	check(_metadata, &self->set, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: tokenXXXXXXXXXXXXXXXXXXXX\r\n", NULL, 0,
	      &r);
	EXPECT_EQ(0, r.status);
	EXPECT_TRUE(r.id.anonymous);
	EXPECT_STREQ("tokenXXXXXXXXXXXXXXXXXXXX", r.protocol);
	/* And without --insecure, no tokens means nobody gets in. */
	self->cfg.insecure = false;
	check(_metadata, &empty, &self->cfg, "/disk0",
	      "Authorization: Bearer tokenXXXXXXXXXXXXXXXXXXXX\r\n", NULL, 0,
	      &r);
	EXPECT_EQ(401, r.status);
	check(_metadata, &empty, &self->cfg, "/disk0",
	      "Sec-WebSocket-Protocol: tokenXXXXXXXXXXXXXXXXXXXX\r\n", NULL, 0,
	      &r);
	EXPECT_EQ(401, r.status);
	EXPECT_STREQ("", r.protocol);
}

TEST(origins)
{
	struct relay_slot_cfg sc = { 0 };
	struct http_request req;

	ASSERT_EQ(0, parse("GET / HTTP/1.1\r\nOrigin: https://evil.example\r\n\r\n",
			   &req));
	EXPECT_TRUE(auth_origin_ok(&sc, &req));	/* no allowlist */
	sc.origins[0] = "https://bmc.example";
	sc.origins[1] = "http://localhost:8080";
	sc.n_origins = 2;
	EXPECT_FALSE(auth_origin_ok(&sc, &req));
	http_request_free(&req);
	ASSERT_EQ(0, parse("GET / HTTP/1.1\r\nOrigin: HTTPS://BMC.Example\r\n\r\n",
			   &req));
	EXPECT_TRUE(auth_origin_ok(&sc, &req));
	http_request_free(&req);
	ASSERT_EQ(0, parse("GET / HTTP/1.1\r\nOrigin: http://localhost:8081\r\n\r\n",
			   &req));
	EXPECT_FALSE(auth_origin_ok(&sc, &req));
	http_request_free(&req);
	/* No Origin: not a browser, allowed. */
	ASSERT_EQ(0, parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &req));
	EXPECT_TRUE(auth_origin_ok(&sc, &req));
	http_request_free(&req);
	/* Two of them: refused. */
	ASSERT_EQ(0, parse("GET / HTTP/1.1\r\nOrigin: https://bmc.example\r\n"
			   "Origin: https://evil.example\r\n\r\n", &req));
	EXPECT_FALSE(auth_origin_ok(&sc, &req));
	http_request_free(&req);
}

static void route_text(struct __test_metadata *_metadata,
		       const struct relay_config *cfg, const char *text,
		       struct route *r)
{
	struct http_request req;

	ASSERT_EQ(0, parse(text, &req));
	route_request(cfg, &req, r);
	http_request_free(&req);
}

#define UPG(method, target, version) \
	method " " target " HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n" \
	"Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n" \
	"Sec-WebSocket-Version: " version "\r\n\r\n"

TEST(routes)
{
	struct relay_config cfg;
	struct route r;

	make_cfg(&cfg, false);
	route_text(_metadata, &cfg, UPG("GET", "/disk0", "13"), &r);
	EXPECT_EQ(ROUTE_UPGRADE, r.kind);
	EXPECT_EQ(0, r.slot);
	EXPECT_STREQ("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", r.accept);
	route_text(_metadata, &cfg, UPG("GET", "/disk2?token=x", "13"), &r);
	EXPECT_EQ(ROUTE_UPGRADE, r.kind);
	EXPECT_EQ(2, r.slot);
	route_text(_metadata, &cfg, UPG("GET", "/", "13"), &r);
	EXPECT_EQ(ROUTE_UPGRADE, r.kind);
	EXPECT_EQ(1, r.slot);			/* the default */
	route_text(_metadata, &cfg, UPG("GET", "/disk3", "13"), &r);
	EXPECT_EQ(ROUTE_REFUSE, r.kind);
	EXPECT_EQ(404, r.status);
	route_text(_metadata, &cfg, UPG("GET", "/disk0/", "13"), &r);
	EXPECT_EQ(404, r.status);
	route_text(_metadata, &cfg, UPG("POST", "/disk0", "13"), &r);
	EXPECT_EQ(405, r.status);
	EXPECT_STREQ("Allow: GET\r\n", r.headers);
	route_text(_metadata, &cfg, UPG("GET", "/disk0", "8"), &r);
	EXPECT_EQ(426, r.status);
	EXPECT_STREQ("Sec-WebSocket-Version: 13\r\n", r.headers);
	route_text(_metadata, &cfg,
		   "GET /disk0 HTTP/1.1\r\nHost: r\r\nUpgrade: websocket\r\n"
		   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
		   &r);
	EXPECT_EQ(400, r.status);		/* no key */

	/* Plain requests. */
	route_text(_metadata, &cfg, "GET /status HTTP/1.1\r\nHost: r\r\n\r\n",
		   &r);
	EXPECT_EQ(ROUTE_STATUS, r.kind);
	route_text(_metadata, &cfg, "GET /slots?x HTTP/1.1\r\nHost: r\r\n\r\n",
		   &r);
	EXPECT_EQ(ROUTE_SLOTS, r.kind);
	route_text(_metadata, &cfg, "HEAD /status HTTP/1.1\r\nHost: r\r\n\r\n",
		   &r);
	EXPECT_EQ(405, r.status);
	route_text(_metadata, &cfg, "GET /disk0 HTTP/1.1\r\nHost: r\r\n\r\n",
		   &r);
	EXPECT_EQ(426, r.status);
	EXPECT_NE(NULL, strstr(r.headers, "Upgrade: websocket\r\n"));
	route_text(_metadata, &cfg, "GET / HTTP/1.1\r\nHost: r\r\n\r\n", &r);
	EXPECT_EQ(426, r.status);		/* the default slot */
	route_text(_metadata, &cfg, "GET /x.html HTTP/1.1\r\nHost: r\r\n\r\n",
		   &r);
	EXPECT_EQ(404, r.status);
	route_text(_metadata, &cfg, "DELETE /disk0 HTTP/1.1\r\nHost: r\r\n\r\n",
		   &r);
	EXPECT_EQ(405, r.status);

	/* With --web, the rest are files, GET or HEAD. */
	cfg.web_dir = "/nonexistent";
	route_text(_metadata, &cfg, "GET /disk0 HTTP/1.1\r\nHost: r\r\n\r\n",
		   &r);
	EXPECT_EQ(ROUTE_FILE, r.kind);
	EXPECT_FALSE(r.head);
	route_text(_metadata, &cfg, "HEAD /a.js HTTP/1.1\r\nHost: r\r\n\r\n",
		   &r);
	EXPECT_EQ(ROUTE_FILE, r.kind);
	EXPECT_TRUE(r.head);
	route_text(_metadata, &cfg, "PUT /a.js HTTP/1.1\r\nHost: r\r\n\r\n",
		   &r);
	EXPECT_EQ(405, r.status);
	EXPECT_STREQ("Allow: GET, HEAD\r\n", r.headers);
	route_text(_metadata, &cfg, UPG("GET", "/disk0", "13"), &r);
	EXPECT_EQ(ROUTE_UPGRADE, r.kind);

	/* No default slot: / is nothing. */
	cfg.slots[1].is_default = false;
	EXPECT_EQ(-1, route_slot(&cfg, "/"));
	EXPECT_EQ(1, route_slot(&cfg, "/disk1"));
}

TEST(file_names)
{
	static const struct {
		const char *path, *name;
		int status;
	} cases[] = {
		{ "/", "index.html", 0 },
		{ "/app.js", "app.js", 0 },
		{ "/a/b/c.css", "a/b/c.css", 0 },
		{ "/dir/", "dir/index.html", 0 },
		{ "/my%20file.txt", "my file.txt", 0 },
		{ "/a..b", "a..b", 0 },
		{ "/..", NULL, 404 },
		{ "/../etc/passwd", NULL, 404 },
		{ "/a/../../etc", NULL, 404 },
		{ "/%2e%2e/etc", NULL, 404 },
		{ "/a/%2E./b", NULL, 404 },
		{ "/.git/config", NULL, 404 },
		{ "/a/.hidden", NULL, 404 },
		{ "/a//b", NULL, 404 },
		{ "/a\\b", NULL, 404 },
		{ "/%00", NULL, 400 },
		{ "/%zz", NULL, 400 },
		{ "/%4", NULL, 400 },
		{ "noslash", NULL, 404 },
	};
	char out[WEBFILES_MAX_NAME + 1];
	char longp[WEBFILES_MAX_NAME + 10];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = webfiles_name(cases[i].path, out, sizeof(out));

		EXPECT_EQ(cases[i].status, rc) {
			TH_LOG("path %s", cases[i].path);
		}
		if (!rc && cases[i].name)
			EXPECT_STREQ(cases[i].name, out);
	}
	longp[0] = '/';
	memset(longp + 1, 'a', sizeof(longp) - 2);
	longp[sizeof(longp) - 1] = '\0';
	EXPECT_EQ(404, webfiles_name(longp, out, sizeof(out)));

	EXPECT_STREQ("text/html; charset=utf-8", webfiles_type("a/index.HTML"));
	EXPECT_STREQ("text/javascript; charset=utf-8", webfiles_type("m.mjs"));
	EXPECT_STREQ("application/wasm", webfiles_type("x.wasm"));
	EXPECT_STREQ("image/svg+xml", webfiles_type("i.svg"));
	EXPECT_STREQ("application/octet-stream", webfiles_type("README"));
	EXPECT_STREQ("application/octet-stream", webfiles_type("a.b/c"));
}

TEST(file_open)
{
	char *dir = tmpdir(), *outside = tmpdir(), *p;
	long long size = -1;
	int dfd, fd;

	free(write_file(dir, "index.html", "<html>hello</html>", 0644));
	free(write_file(outside, "secret", "secret", 0644));
	if (asprintf(&p, "%s/sub", dir) < 0 || mkdir(p, 0755))
		abort();
	free(write_file(p, "a.js", "x", 0644));
	free(p);
	if (asprintf(&p, "%s/fifo", dir) < 0 || mkfifo(p, 0644))
		abort();
	free(p);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, dfd);
	if (asprintf(&p, "%s/secret", outside) < 0)
		abort();
	ASSERT_EQ(0, symlinkat(p, dfd, "link"));
	free(p);
	ASSERT_EQ(0, symlinkat(outside, dfd, "linkdir"));
	fd = webfiles_open(dfd, "index.html", &size);
	ASSERT_LE(0, fd);
	EXPECT_EQ(18, size);
	close(fd);
	fd = webfiles_open(dfd, "sub/a.js", &size);
	ASSERT_LE(0, fd);
	EXPECT_EQ(1, size);
	close(fd);
	EXPECT_EQ(-ENOENT, webfiles_open(dfd, "nothing", &size));
	EXPECT_EQ(-ELOOP, webfiles_open(dfd, "link", &size));
	/* A link to a directory on the way is not followed either. */
	fd = webfiles_open(dfd, "linkdir/secret", &size);
	EXPECT_GT(0, fd);
	EXPECT_TRUE(fd == -ELOOP || fd == -ENOTDIR);
	EXPECT_EQ(-EISDIR, webfiles_open(dfd, "sub", &size));
	EXPECT_EQ(-EACCES, webfiles_open(dfd, "fifo", &size));
	close(dfd);
	rmtree(dir);
	rmtree(outside);
	free(dir);
	free(outside);
}

TEST_HARNESS_MAIN
