// SPDX-License-Identifier: GPL-2.0
/*
 * Buffers that held a credential are wiped before they go back to the
 * allocator. This program is linked with -Wl,--wrap=free and
 * -Wl,--wrap=realloc: every free() and realloc() made by the test, by
 * lib/ and by the tool code linked in (the relay's tokens and request
 * checks, nbdws-serve's command line) passes through the wrappers below,
 * which look for a marker that every credential in these tests carries.
 * A block that still holds it when freed (or moved by realloc(), which
 * leaves the old copy behind) is counted; each test expects none.
 * Frees inside shared libraries (libc's stdio, OpenSSL) are not seen.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "auth.h"
#include "http_req.h"
#include "relay.h"
#include "secret.h"
#include "serve.h"
#include "ws_accept.h"
#include "ws_upgrade.h"

const struct relay_config *relay_cfg;

/* In every credential below; never in anything else. */
#define MARK		"W1peMeS3cr3t"
#define TOK_A		MARK "AAAAAAAAAAAAA"
#define TOK_B		MARK "BBBBBBBBBBBBB"

void __real_free(void *p);
void *__real_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t n);

static unsigned int leaks;

static void check_block(void *p)
{
	/* ASan and glibc both answer with what may be read. */
	size_t n = p ? malloc_usable_size(p) : 0;

	if (n && memmem(p, n, MARK, strlen(MARK)))
		leaks++;
}

void __wrap_free(void *p)
{
	check_block(p);
	__real_free(p);
}

void *__wrap_realloc(void *p, size_t n)
{
	check_block(p);
	return __real_realloc(p, n);
}

/* The detector itself: a block freed with the marker in it is seen. */
TEST(detector_sees_an_unwiped_block)
{
	char *p = malloc(64);

	ASSERT_NE(NULL, p);
	snprintf(p, 64, "Bearer %s", TOK_A);
	free(p);
	EXPECT_EQ(1, leaks);
	p = malloc(64);
	ASSERT_NE(NULL, p);
	snprintf(p, 64, "Bearer %s", TOK_A);
	secret_free_str(p);
	EXPECT_EQ(1, leaks);
}

/* ---- the client side of the upgrade ------------------------------------ */

/* A server that accepts whatever it is asked, echoing the subprotocol. */
struct fake_server {
	char resp[1024];
	size_t resp_len, pos;
	char proto[128];
};

static int fake_write(void *ctx, const void *buf, size_t len)
{
	struct fake_server *f = ctx;
	char key[WS_KEY_LEN + 1], accept[WS_ACCEPT_LEN + 1];
	const char *k = memmem(buf, len, "Sec-WebSocket-Key: ", 19);

	if (!k)
		return -EPROTO;
	memcpy(key, k + 19, WS_KEY_LEN);
	key[WS_KEY_LEN] = '\0';
	if (ws_accept_for_key(key, accept))
		return -EPROTO;
	f->resp_len = (size_t)snprintf(f->resp, sizeof(f->resp),
				       "HTTP/1.1 101 Switching Protocols\r\n"
				       "Upgrade: websocket\r\n"
				       "Connection: Upgrade\r\n"
				       "Sec-WebSocket-Accept: %s\r\n"
				       "Sec-WebSocket-Protocol: %s\r\n\r\n",
				       accept, f->proto);
	return 0;
}

static ssize_t fake_read(void *ctx, void *buf, size_t len)
{
	struct fake_server *f = ctx;
	size_t n = f->resp_len - f->pos;

	if (!n)
		return 0;
	if (n > len)
		n = len;
	memcpy(buf, f->resp + f->pos, n);
	f->pos += n;
	return (ssize_t)n;
}

TEST(upgrade_request_and_response)
{
	static struct fake_server f = { .proto = TOK_A };
	struct ws_io io = { &f, fake_read, fake_write };
	struct ws_upgrade_opts o = {
		.host = "h", .resource = "/nbd?slot=disk0",
		.subprotocol = TOK_A ", binary",
		.authorization = "Bearer " TOK_B,
	};
	struct ws_upgrade_result res;
	struct nbdws_err err;

	ASSERT_EQ(0, ws_upgrade_client(&io, &o, &res, &err)) TH_LOG("%s", err.msg);
	EXPECT_STREQ(TOK_A, res.subprotocol);
	ws_upgrade_result_free(&res);
	EXPECT_EQ(0, leaks);
}

/* ---- the server side ------------------------------------------------------ */

struct fake_client {
	const char *req;
	size_t pos;
};

static ssize_t client_read(void *ctx, void *buf, size_t len)
{
	struct fake_client *c = ctx;
	size_t n = strlen(c->req) - c->pos;

	if (n > len)
		n = len;
	memcpy(buf, c->req + c->pos, n);
	c->pos += n;
	return (ssize_t)n;
}

static int client_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return 0;
}

#define REQUEST \
	"GET /disk0?token=" TOK_A " HTTP/1.1\r\n" \
	"Host: h\r\n" \
	"Upgrade: websocket\r\n" \
	"Connection: Upgrade\r\n" \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" \
	"Sec-WebSocket-Version: 13\r\n" \
	"Sec-WebSocket-Protocol: " TOK_A ", binary\r\n" \
	"Authorization: Bearer " TOK_A "\r\n\r\n"

TEST(accept_and_request_parser)
{
	struct fake_client c = { REQUEST, 0 };
	struct ws_io io = { &c, client_read, client_write };
	struct ws_accept_result res;
	struct http_request req;
	struct nbdws_err err;

	ASSERT_EQ(0, ws_accept(&io, NULL, &res, &err)) TH_LOG("%s", err.msg);
	ws_accept_result_free(&res);
	EXPECT_EQ(0, leaks);
	ASSERT_EQ(0, http_parse_request(REQUEST, strlen(REQUEST), 8192, &req,
					&err));
	http_request_free(&req);
	EXPECT_EQ(0, leaks);
	/* Refused (bare LF): freed on the error path, wiped too. */
	ASSERT_EQ(400, http_parse_request("GET /?token=" TOK_A " HTTP/1.1\r\nX: 1\n\r\n\r\n",
					  strlen("GET /?token=" TOK_A " HTTP/1.1\r\nX: 1\n\r\n\r\n"),
					  8192, &req, &err));
	EXPECT_EQ(0, leaks);
}

/* ---- files ---------------------------------------------------------------- */

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    close(fd))
		abort();
}

TEST(secret_file)
{
	char path[] = "/tmp/test_secret_wipe.XXXXXX";
	struct nbdws_err err;
	char *v;
	int fd = mkstemp(path);

	ASSERT_LE(0, fd);
	close(fd);
	put(path, "Bearer " TOK_A "\n");
	ASSERT_EQ(0, secret_file_read(path, 4096, &v, &err));
	secret_free_str(v);
	/* Too long: the part read is wiped on the error path. */
	put(path, TOK_A TOK_B "\n");
	EXPECT_EQ(-EFBIG, secret_file_read(path, 20, &v, &err));
	/* Refused by mode: nothing read, nothing to wipe, still none seen. */
	chmod(path, 0644);
	EXPECT_EQ(-EPERM, secret_file_read(path, 4096, &v, &err));
	unlink(path);
	EXPECT_EQ(0, leaks);
}

/* ---- the relay's tokens --------------------------------------------------- */

static char *slot_names[] = { "disk0", "disk1" };

TEST(relay_tokens_and_checks)
{
	char path[] = "/tmp/test_secret_wipe.XXXXXX";
	struct relay_config cfg = { 0 };
	struct auth_result res;
	struct http_request req;
	struct nbdws_err err;
	struct auth_set set;
	int fd = mkstemp(path);

	ASSERT_LE(0, fd);
	close(fd);
	cfg.n_slots = 2;
	cfg.slots[0].name = slot_names[0];
	cfg.slots[1].name = slot_names[1];
	relay_cfg = &cfg;
	/* Several lines: the wipe must not stop where the first one ends. */
	put(path, "# tokens\n" TOK_A " disk0\n" TOK_B "\n");
	ASSERT_EQ(0, auth_set_load(path, geteuid(), &cfg, &set, &err))
		TH_LOG("%s", err.msg);
	ASSERT_EQ(2, set.n);
	/* A refused file (an unknown slot) is wiped on the error path too. */
	put(path, TOK_A " disk0\n" TOK_B " nope\n");
	EXPECT_EQ(-EINVAL, auth_set_load(path, geteuid(), &cfg, &set, &err));
	EXPECT_EQ(0, leaks);
	put(path, TOK_A " disk0\n" TOK_B "\n");
	ASSERT_EQ(0, auth_set_load(path, geteuid(), &cfg, &set, &err));
	unlink(path);

	ASSERT_EQ(0, http_parse_request(REQUEST, strlen(REQUEST), 8192, &req,
					&err));
	auth_check(&set, &cfg, &req, NULL, 0, &res);
	EXPECT_EQ(0, res.status) TH_LOG("%s", res.why);
	EXPECT_STREQ(TOK_A, res.protocol);
	memset(&res, 0, sizeof(res));
	/* Two different tokens offered as subprotocols: refused, wiped. */
	http_request_free(&req);
	{
		static const char two[] =
			"GET /disk0 HTTP/1.1\r\nHost: h\r\n"
			"Sec-WebSocket-Protocol: " TOK_A ", " TOK_B "\r\n\r\n";

		ASSERT_EQ(0, http_parse_request(two, strlen(two), 8192, &req,
						&err));
		auth_check(&set, &cfg, &req, NULL, 0, &res);
		EXPECT_EQ(400, res.status);
		http_request_free(&req);
	}
	auth_set_free(&set);
	EXPECT_EQ(0, leaks);
}

/* ---- nbdws-serve's command line ------------------------------------------- */

static int serve_args(struct serve_opts *o, char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	memset(o, 0, sizeof(*o));
	optind = 0;
	return serve_parse_args(o, argc, argv);
}

TEST(serve_token_options)
{
	char path[] = "/tmp/test_secret_wipe.XXXXXX";
	char *a1[] = { "nbdws-serve", "--token", TOK_A, "/dev/null",
		       "wss://h/disk0", NULL };
	char *a2[] = { "nbdws-serve", "--token", TOK_A, "--token-as-subprotocol",
		       "--subprotocol", "binary", "/dev/null", "wss://h/disk0",
		       NULL };
	char *a3[] = { "nbdws-serve", "--token-file", path, "/dev/null",
		       "wss://h/disk0", NULL };
	struct serve_opts o;
	int fd = mkstemp(path);

	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, serve_args(&o, a1));
	EXPECT_NE(NULL, strstr(o.auth, TOK_A));
	serve_opts_free(&o);
	ASSERT_EQ(0, serve_args(&o, a2));
	EXPECT_NE(NULL, strstr(o.protocols, TOK_A));
	serve_opts_free(&o);
	/* The first line is the token; the second is wiped all the same. */
	put(path, TOK_A "\n" TOK_B "\n");
	ASSERT_EQ(0, serve_args(&o, a3));
	EXPECT_STREQ(TOK_A, o.token);
	serve_opts_free(&o);
	unlink(path);
	EXPECT_EQ(0, leaks);
}

TEST_HARNESS_MAIN
