// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for lib/http_req.c, the strict HTTP/1.1 request parser: good
 * requests and what they split into, every refusal with the status it
 * must give, comma lists across repeated fields, query parameters,
 * reading a header through a ws_io (whole, trickled, oversized, cut off)
 * and the responses built.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "http_req.h"

#define MAX_LINE	2048

static int parse(const char *text, struct http_request *req)
{
	struct nbdws_err err = { { 0 } };

	return http_parse_request(text, strlen(text), MAX_LINE, req, &err);
}

/* Like parse() with @len bytes (for requests holding a NUL). */
static int parse_n(const char *text, size_t len, struct http_request *req,
		   struct nbdws_err *err)
{
	return http_parse_request(text, len, MAX_LINE, req, err);
}

TEST(good_request_split)
{
	struct http_request req;

	ASSERT_EQ(0, parse("GET /disk0?token=abc&x=1 HTTP/1.1\r\n"
			   "Host: relay.example:8080\r\n"
			   "X-Empty:\r\n"
			   "X-Spaces: \t  padded value \t\r\n"
			   "x-obs: caf\xc3\xa9\r\n"
			   "Tab:\tin\tside\r\n"
			   "\r\n", &req));
	EXPECT_STREQ("GET", req.method);
	EXPECT_STREQ("/disk0?token=abc&x=1", req.target);
	EXPECT_STREQ("/disk0", req.path);
	EXPECT_STREQ("token=abc&x=1", req.query);
	EXPECT_EQ(1, req.version_minor);
	ASSERT_EQ(5, req.n_fields);
	EXPECT_STREQ("Host", req.fields[0].name);
	EXPECT_STREQ("relay.example:8080", req.fields[0].value);
	EXPECT_STREQ("", http_get(&req, "x-empty"));
	EXPECT_STREQ("padded value", http_get(&req, "X-SPACES"));
	EXPECT_STREQ("caf\xc3\xa9", http_get(&req, "X-Obs"));
	EXPECT_STREQ("in\tside", http_get(&req, "tab"));
	EXPECT_EQ(NULL, http_get(&req, "Missing"));
	EXPECT_EQ(1, http_count(&req, "host"));
	EXPECT_EQ(0, http_count(&req, "Missing"));
	http_request_free(&req);
	EXPECT_EQ(NULL, req.buf);

	/* No query, HTTP/1.0, another token method, no fields at all. */
	ASSERT_EQ(0, parse("M-SEARCH / HTTP/1.0\r\n\r\n", &req));
	EXPECT_STREQ("M-SEARCH", req.method);
	EXPECT_STREQ("/", req.path);
	EXPECT_EQ(NULL, req.query);
	EXPECT_EQ(0, req.version_minor);
	EXPECT_EQ(0, req.n_fields);
	http_request_free(&req);

	/* An empty query is a query. */
	ASSERT_EQ(0, parse("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", &req));
	EXPECT_STREQ("/a", req.path);
	EXPECT_STREQ("", req.query);
	EXPECT_STREQ("/a?", req.target);
	http_request_free(&req);
}

/* Exactly HTTP_MAX_FIELDS fields pass, one more is 431. */
TEST(field_count_limit)
{
	struct http_request req;
	char *text = malloc(64 * (HTTP_MAX_FIELDS + 2));
	size_t n;
	int i;

	ASSERT_NE(NULL, text);
	n = (size_t)sprintf(text, "GET / HTTP/1.1\r\n");
	for (i = 0; i < HTTP_MAX_FIELDS; i++)
		n += (size_t)sprintf(text + n, "F%d: %d\r\n", i, i);
	strcpy(text + n, "\r\n");
	ASSERT_EQ(0, parse(text, &req));
	EXPECT_EQ(HTTP_MAX_FIELDS, req.n_fields);
	EXPECT_STREQ("63", http_get(&req, "f63"));
	http_request_free(&req);
	n += (size_t)sprintf(text + n, "One-More: x\r\n\r\n");
	EXPECT_EQ(431, parse(text, &req));
	EXPECT_EQ(NULL, req.buf);
	free(text);
}

TEST(request_line_limit)
{
	struct nbdws_err err = { { 0 } };
	struct http_request req;
	char text[4096];
	size_t line;

	/* "GET /aaa... HTTP/1.1" exactly MAX_LINE bytes: fine. */
	line = MAX_LINE;
	memcpy(text, "GET /", 5);
	memset(text + 5, 'a', line - 5 - 9);
	memcpy(text + line - 9, " HTTP/1.1\r\n\r\n", 14);
	ASSERT_EQ(0, parse(text, &req));
	EXPECT_EQ(MAX_LINE - 13, strlen(req.path));
	http_request_free(&req);
	/* One byte more: 414. */
	line = MAX_LINE + 1;
	memset(text + 5, 'a', line - 5 - 9);
	memcpy(text + line - 9, " HTTP/1.1\r\n\r\n", 14);
	EXPECT_EQ(414, parse_n(text, strlen(text), &req, &err));
	EXPECT_NE(NULL, strstr(err.msg, "longer than 2048"));
}

struct refusal {
	const char *text;
	size_t len;		/* 0: strlen(text) */
	int status;
};

#define R(t, s)		{ t, sizeof(t) - 1, s }

TEST(refusals)
{
	static const struct refusal cases[] = {
		/* line ends */
		R("GET / HTTP/1.1\nHost: h\r\n\r\n", 400),	/* bare LF */
		R("GET / HTTP/1.1\r\nHost: h\n\r\n", 400),	/* bare LF */
		R("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400), /* bare CR */
		R("GET / HTTP/1.1\rHost: h\r\n\r\n", 400),	/* bare CR */
		R("GET / HTTP/1.1\r\nHost: h\r\n", 400),	/* incomplete */
		R("\r\nGET / HTTP/1.1\r\n\r\n", 400),	/* empty line first */
		/* NUL and control bytes */
		R("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 400),
		R("GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n", 400),
		R("GET / HTTP/1.1\r\nX: a\x7f" "b\r\n\r\n", 400),
		R("GET /a\x01" "b HTTP/1.1\r\n\r\n", 400),
		R("GET /a\tb HTTP/1.1\r\n\r\n", 400),
		R("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", 400),
		R("GET /a#frag HTTP/1.1\r\n\r\n", 400),
		/* request line shape */
		R("GET  / HTTP/1.1\r\n\r\n", 400),
		R("GET / HTTP/1.1 \r\n\r\n", 400),
		R("GET /\r\n\r\n", 400),
		R("G(T / HTTP/1.1\r\n\r\n", 400),
		R(" / HTTP/1.1\r\n\r\n", 400),
		R("GET http://h/ HTTP/1.1\r\n\r\n", 400),
		R("GET * HTTP/1.1\r\n\r\n", 400),
		R("GET a HTTP/1.1\r\n\r\n", 400),
		/* versions */
		R("GET / HTTP/2.0\r\n\r\n", 505),
		R("GET / HTTP/0.9\r\n\r\n", 505),
		R("GET / HTTP/1.10\r\n\r\n", 505),
		R("GET / HTTP/1.\r\n\r\n", 505),
		R("GET / http/1.1\r\n\r\n", 505),
		R("GET / FOO\r\n\r\n", 505),
		/* field lines */
		R("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),	/* space before : */
		R("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400),
		R("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400),
		R("GET / HTTP/1.1\r\nHost: h\r\n\tfolded\r\n\r\n", 400),
		R("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
		R("GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400),
		R("GET / HTTP/1.1\r\nBad(Name): x\r\n\r\n", 400),
		/* a second header after the blank line is not one */
		R("GET / HTTP/1.1\r\n\r\nX: y\r\n\r\n", 400),
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nbdws_err err = { { 0 } };
		struct http_request req;
		int rc;

		rc = parse_n(cases[i].text, cases[i].len, &req, &err);
		EXPECT_EQ(cases[i].status, rc)
			TH_LOG("case %zu: %s", i, cases[i].text);
		EXPECT_NE(0, err.msg[0]) TH_LOG("case %zu: no message", i);
		EXPECT_EQ(NULL, req.buf);
		http_request_free(&req);	/* harmless after a refusal */
	}
}

/* The messages say which rule was broken. */
TEST(refusal_messages)
{
	static const struct { const char *text, *says; } cases[] = {
		{ "GET / HTTP/1.1\r\nHost: h\r\n folded: x\r\n\r\n",
		  "folding" },
		{ "GET / HTTP/1.1\nHost: h\r\n\r\n", "CRLF" },
		{ "GET / HTTP/1.1\r\nHost : h\r\n\r\n", "token followed by ':'" },
		{ "GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n", "control byte" },
		{ "GET / HTTP/2.0\r\n\r\n", "HTTP/1.x" },
		{ "GET x HTTP/1.1\r\n\r\n", "starting with '/'" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nbdws_err err = { { 0 } };
		struct http_request req;

		EXPECT_NE(0, parse_n(cases[i].text, strlen(cases[i].text),
				     &req, &err));
		EXPECT_NE(NULL, strstr(err.msg, cases[i].says))
			TH_LOG("case %zu: %s", i, err.msg);
	}
}

/* Collect every element of the lists named @name, joined with '|'. */
static void tokens(const struct http_request *req, const char *name,
		   size_t size, char *out, size_t out_size)
{
	const char *cursor = NULL;
	unsigned int field = 0;
	char tok[64];

	out[0] = '\0';
	while (http_next_token(req, name, &field, &cursor, tok, size)) {
		if (out[0])
			strncat(out, "|", out_size - strlen(out) - 1);
		strncat(out, tok, out_size - strlen(out) - 1);
	}
}

TEST(comma_lists_across_fields)
{
	struct http_request req;
	char got[256];

	ASSERT_EQ(0, parse("GET / HTTP/1.1\r\n"
			   "Sec-WebSocket-Protocol: binary , ,base64\r\n"
			   "Host: h\r\n"
			   "sec-websocket-protocol:\t  \r\n"
			   "Sec-WebSocket-Protocol: ,tok-1,\ttok2 \t,\r\n"
			   "Connection: keep-alive, Upgrade\r\n"
			   "Sec-WebSocket-Protocol: averyveryverylongelement,x\r\n"
			   "\r\n", &req));
	tokens(&req, "Sec-WebSocket-Protocol", 64, got, sizeof(got));
	EXPECT_STREQ("binary|base64|tok-1|tok2|averyveryverylongelement|x",
		     got);
	/* An element longer than the buffer is skipped, not cut. */
	tokens(&req, "Sec-WebSocket-Protocol", 8, got, sizeof(got));
	EXPECT_STREQ("binary|base64|tok-1|tok2|x", got);
	tokens(&req, "connection", 64, got, sizeof(got));
	EXPECT_STREQ("keep-alive|Upgrade", got);
	tokens(&req, "Upgrade", 64, got, sizeof(got));
	EXPECT_STREQ("", got);
	http_request_free(&req);
}

TEST(query_params)
{
	char out[32];

	EXPECT_TRUE(http_query_param("token=abc&x=1", "token", out, sizeof(out)));
	EXPECT_STREQ("abc", out);
	EXPECT_TRUE(http_query_param("x=1&token=a%2Bb%3d%2F", "token", out,
				     sizeof(out)));
	EXPECT_STREQ("a+b=/", out);
	/* '+' stays '+' (base64 tokens), the first occurrence counts. */
	EXPECT_TRUE(http_query_param("token=a+b&token=zzz", "token", out,
				     sizeof(out)));
	EXPECT_STREQ("a+b", out);
	/* Names match whole: "tok" is not "token", "xtoken" neither. */
	EXPECT_FALSE(http_query_param("xtoken=1&tok=2", "token", out,
				      sizeof(out)));
	EXPECT_TRUE(http_query_param("tokens=1&token", "token", out,
				     sizeof(out)));
	EXPECT_STREQ("", out);
	EXPECT_TRUE(http_query_param("token=", "token", out, sizeof(out)));
	EXPECT_STREQ("", out);
	EXPECT_FALSE(http_query_param(NULL, "token", out, sizeof(out)));
	EXPECT_FALSE(http_query_param("", "token", out, sizeof(out)));
	/* Bad escapes and an escaped NUL. */
	EXPECT_FALSE(http_query_param("token=a%", "token", out, sizeof(out)));
	EXPECT_FALSE(http_query_param("token=a%4", "token", out, sizeof(out)));
	EXPECT_FALSE(http_query_param("token=a%4g", "token", out, sizeof(out)));
	EXPECT_FALSE(http_query_param("token=%zz&x", "token", out,
				      sizeof(out)));
	EXPECT_FALSE(http_query_param("token=a%00b", "token", out,
				      sizeof(out)));
	/* Exactly fits (3 bytes + NUL), one too many. */
	EXPECT_TRUE(http_query_param("token=abc", "token", out, 4));
	EXPECT_STREQ("abc", out);
	EXPECT_FALSE(http_query_param("token=abcd", "token", out, 4));
	EXPECT_TRUE(http_query_param("token=%41%42%43", "token", out, 4));
	EXPECT_STREQ("ABC", out);
}

TEST(responses)
{
	static const int known[] = { 101, 200, 204, 400, 401, 403, 404, 405,
				     408, 409, 413, 414, 426, 431, 500, 501,
				     503, 505 };
	char out[512];
	size_t n, i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		EXPECT_STRNE("Unknown", http_reason(known[i]))
			TH_LOG("status %d", known[i]);
	EXPECT_STREQ("Unknown", http_reason(299));

	n = http_build_response(out, sizeof(out), 401,
				"WWW-Authenticate: Bearer\r\n",
				"text/plain; charset=utf-8", "no token\n", 9);
	ASSERT_GT(n, 0);
	out[n] = '\0';
	EXPECT_STREQ("HTTP/1.1 401 Unauthorized\r\n"
		     "WWW-Authenticate: Bearer\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "Content-Length: 9\r\n"
		     "Connection: close\r\n\r\n"
		     "no token\n", out);
	n = http_build_response(out, sizeof(out), 404, NULL, NULL, NULL, 0);
	ASSERT_GT(n, 0);
	out[n] = '\0';
	EXPECT_STREQ("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
		     "Connection: close\r\n\r\n", out);
	n = http_build_response(out, sizeof(out), 204, NULL, NULL, NULL, 0);
	ASSERT_GT(n, 0);
	out[n] = '\0';
	EXPECT_STREQ("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
		     out);
	/* Binary bodies are copied as they are. */
	n = http_build_response(out, sizeof(out), 200, NULL, NULL, "a\0b", 3);
	ASSERT_GT(n, 3);
	EXPECT_EQ(0, memcmp(out + n - 3, "a\0b", 3));
	/* Too small by one byte: 0, never a truncated response. */
	n = http_build_response(out, sizeof(out), 404, NULL, NULL, "x", 1);
	EXPECT_EQ(0, http_build_response(out, n, 404, NULL, NULL, "x", 1));
	EXPECT_EQ(n, http_build_response(out, n + 1, 404, NULL, NULL, "x", 1));
	EXPECT_EQ(0, http_build_response(out, 10, 404, NULL, NULL, NULL, 0));
}

/* Write @text on @fd @step bytes at a time, then close @fd. */
static void feed(int fd, const char *text, size_t len, size_t step)
{
	while (len) {
		size_t k = len < step ? len : step;

		if (write(fd, text, k) != (ssize_t)k)
			break;
		text += k;
		len -= k;
	}
}

/* A ws_io over memory that returns at most @step bytes per read. */
struct mem_io {
	const char *data;
	size_t len, off, step;
};

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
	struct mem_io *m = ctx;
	size_t k = m->len - m->off;

	if (k > m->step)
		k = m->step;
	if (k > len)
		k = len;
	memcpy(buf, m->data + m->off, k);
	m->off += k;
	return (ssize_t)k;
}

static int mem_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return -EPIPE;
}

TEST(read_header_whole_and_trickled)
{
	static const char text[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n\x82\x80xyz";
	size_t hdr_len = strlen("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	struct nbdws_err err = { { 0 } };
	struct mem_io m = { .data = text, .len = sizeof(text) - 1 };
	struct ws_io io = { .ctx = &m, .read = mem_read, .write = mem_write };
	size_t have, hend, step;
	u8 buf[256];

	/*
	 * Whole, then in pieces of every size up to 7, so the terminator is
	 * split across reads at every offset; nothing past the read that
	 * completed the header is consumed.
	 */
	for (step = 1; step <= sizeof(text); step++) {
		m.off = 0;
		m.step = step;
		ASSERT_EQ(0, http_read_header(&io, buf, sizeof(buf), &have,
					      &hend, &err)) TH_LOG("%s", err.msg);
		EXPECT_EQ(hdr_len, hend) TH_LOG("step %zu", step);
		EXPECT_EQ(m.off, have);
		EXPECT_LT(have - hend, step) TH_LOG("step %zu", step);
		EXPECT_EQ(0, memcmp(buf, text, have));
		if (step == 7)
			step = sizeof(text) - 1;
	}
}

TEST(read_header_limits)
{
	static const char text[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	struct nbdws_err err = { { 0 } };
	struct ws_fd_io fio;
	struct ws_io io;
	size_t have, hend;
	u8 buf[64];
	int sv[2];

	/* The header exactly fills @max: fine. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	feed(sv[1], text, sizeof(text) - 1, 100);
	ws_fd_io_init(&io, &fio, sv[0], 5000);
	ASSERT_EQ(0, http_read_header(&io, buf, sizeof(text) - 1, &have, &hend,
				      &err));
	EXPECT_EQ(sizeof(text) - 1, hend);
	close(sv[0]);
	close(sv[1]);

	/* One byte short: -EMSGSIZE. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	feed(sv[1], text, sizeof(text) - 1, 100);
	ws_fd_io_init(&io, &fio, sv[0], 5000);
	EXPECT_EQ(-EMSGSIZE, http_read_header(&io, buf, sizeof(text) - 2,
					      &have, &hend, &err));
	EXPECT_EQ(0, hend);
	close(sv[0]);
	close(sv[1]);

	/* The client leaves half way: -ECONNRESET. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	feed(sv[1], text, 10, 100);
	close(sv[1]);
	ws_fd_io_init(&io, &fio, sv[0], 5000);
	EXPECT_EQ(-ECONNRESET, http_read_header(&io, buf, sizeof(buf), &have,
						&hend, &err));
	EXPECT_EQ(10, have);
	close(sv[0]);

	/* A client that stops sending: -ETIMEDOUT at the deadline. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	feed(sv[1], text, 10, 100);
	ws_fd_io_init(&io, &fio, sv[0], 200);
	EXPECT_EQ(-ETIMEDOUT, http_read_header(&io, buf, sizeof(buf), &have,
					       &hend, &err));
	EXPECT_NE(NULL, strstr(err.msg, "timed out"));
	close(sv[0]);
	close(sv[1]);
}

TEST_HARNESS_MAIN
