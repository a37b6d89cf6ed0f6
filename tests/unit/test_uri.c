// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for lib/nbd_uri.c: every URI form nbdctl accepts, and the
 * malformed ones it must refuse with a specific errno and a message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "nbd_uri.h"

/* Parse @text expecting failure with @rc and a non-empty message. */
static int parse_fails(const char *text, int rc)
{
	struct nbdws_err err = { "" };
	struct nbd_uri uri;
	int got = nbd_uri_parse(text, &uri, &err);

	if (got == 0)
		nbd_uri_free(&uri);
	if (got != rc) {
		fprintf(stderr, "'%s': expected %d, got %d (%s)\n", text, rc, got,
			err.msg);
		return 0;
	}
	if (!err.msg[0]) {
		fprintf(stderr, "'%s': no error message\n", text);
		return 0;
	}
	return 1;
}

TEST(tcp_default_port_and_empty_export)
{
	struct nbd_uri u;
	struct nbdws_err err;

	ASSERT_EQ(0, nbd_uri_parse("nbd://localhost/", &u, &err));
	EXPECT_EQ(NBD_URI_TCP, u.scheme);
	EXPECT_STREQ("localhost", u.host);
	EXPECT_STREQ("10809", u.port);
	EXPECT_STREQ("", u.export_name);
	EXPECT_EQ(NULL, u.socket_path);
	EXPECT_FALSE(u.host_is_ipv6);
	nbd_uri_free(&u);

	ASSERT_EQ(0, nbd_uri_parse("nbd://localhost", &u, &err));
	EXPECT_STREQ("", u.export_name);
	EXPECT_STREQ("10809", u.port);
	nbd_uri_free(&u);

	/* RFC 3986: an empty port means the default one. */
	ASSERT_EQ(0, nbd_uri_parse("nbd://h:/x", &u, &err));
	EXPECT_STREQ("10809", u.port);
	EXPECT_STREQ("x", u.export_name);
	nbd_uri_free(&u);
}

TEST(tcp_port_and_percent_decoded_export)
{
	struct nbd_uri u;
	struct nbdws_err err;

	ASSERT_EQ(0, nbd_uri_parse("nbd://example.com:1234/disk%20one%2Fa", &u, &err));
	EXPECT_STREQ("example.com", u.host);
	EXPECT_STREQ("1234", u.port);
	EXPECT_STREQ("disk one/a", u.export_name);
	nbd_uri_free(&u);

	/* Only the first slash is the separator: "//abs" names "/abs". */
	ASSERT_EQ(0, nbd_uri_parse("nbd://h//abs/path", &u, &err));
	EXPECT_STREQ("/abs/path", u.export_name);
	nbd_uri_free(&u);

	ASSERT_EQ(0, nbd_uri_parse("NBD://H:65535/%e2%82%AC", &u, &err));
	EXPECT_EQ(NBD_URI_TCP, u.scheme);
	EXPECT_STREQ("65535", u.port);
	EXPECT_STREQ("\xe2\x82\xac", u.export_name);
	nbd_uri_free(&u);
}

TEST(ipv6_literals)
{
	struct nbd_uri u;
	struct nbdws_err err;

	ASSERT_EQ(0, nbd_uri_parse("nbd://[::1]:10810/foo", &u, &err));
	EXPECT_STREQ("::1", u.host);
	EXPECT_TRUE(u.host_is_ipv6);
	EXPECT_STREQ("10810", u.port);
	EXPECT_STREQ("foo", u.export_name);
	nbd_uri_free(&u);

	ASSERT_EQ(0, nbd_uri_parse("nbd://[fe80::1%25eth0]/x", &u, &err));
	EXPECT_STREQ("fe80::1%eth0", u.host);
	nbd_uri_free(&u);

	ASSERT_EQ(0, nbd_uri_parse("nbd://[::ffff:127.0.0.1]", &u, &err));
	EXPECT_STREQ("::ffff:127.0.0.1", u.host);
	EXPECT_STREQ("10809", u.port);
	nbd_uri_free(&u);

	ASSERT_EQ(0, nbd_uri_parse("wss://[::1]/nbd", &u, &err));
	EXPECT_STREQ("::1", u.host);
	EXPECT_STREQ("443", u.port);
	EXPECT_STREQ("/nbd", u.ws_resource);
	nbd_uri_free(&u);
}

TEST(unix_socket)
{
	struct nbd_uri u;
	struct nbdws_err err;

	ASSERT_EQ(0, nbd_uri_parse("nbd+unix:///exp?socket=/tmp/s%20x.sock", &u, &err));
	EXPECT_EQ(NBD_URI_UNIX, u.scheme);
	EXPECT_EQ(NULL, u.host);
	EXPECT_EQ(NULL, u.port);
	EXPECT_STREQ("exp", u.export_name);
	EXPECT_STREQ("/tmp/s x.sock", u.socket_path);
	nbd_uri_free(&u);

	ASSERT_EQ(0, nbd_uri_parse("nbd+unix:///?socket=/s", &u, &err));
	EXPECT_STREQ("", u.export_name);
	EXPECT_STREQ("/s", u.socket_path);
	nbd_uri_free(&u);

	ASSERT_EQ(0, nbd_uri_parse("nbd+unix://?socket=rel.sock", &u, &err));
	EXPECT_STREQ("", u.export_name);
	EXPECT_STREQ("rel.sock", u.socket_path);
	nbd_uri_free(&u);
}

TEST(websocket)
{
	struct nbd_uri u;
	struct nbdws_err err;

	ASSERT_EQ(0, nbd_uri_parse("ws://host/path?a=b&c=%20", &u, &err));
	EXPECT_EQ(NBD_URI_WS, u.scheme);
	EXPECT_STREQ("host", u.host);
	EXPECT_STREQ("80", u.port);
	/* The resource goes into the HTTP request line as written. */
	EXPECT_STREQ("/path?a=b&c=%20", u.ws_resource);
	EXPECT_STREQ("", u.export_name);
	nbd_uri_free(&u);

	ASSERT_EQ(0, nbd_uri_parse("wss://host:8443", &u, &err));
	EXPECT_EQ(NBD_URI_WSS, u.scheme);
	EXPECT_STREQ("8443", u.port);
	EXPECT_STREQ("/", u.ws_resource);
	nbd_uri_free(&u);

	ASSERT_EQ(0, nbd_uri_parse("ws://h?x=1", &u, &err));
	EXPECT_STREQ("/?x=1", u.ws_resource);
	nbd_uri_free(&u);
}

TEST(unsupported_schemes)
{
	EXPECT_TRUE(parse_fails("nbds://host/", -EPROTONOSUPPORT));
	EXPECT_TRUE(parse_fails("nbds+unix:///?socket=/s", -EPROTONOSUPPORT));
	EXPECT_TRUE(parse_fails("nbd+vsock://1/", -EPROTONOSUPPORT));
	EXPECT_TRUE(parse_fails("http://host/", -EINVAL));
	EXPECT_TRUE(parse_fails("localhost:10809", -EINVAL));
	EXPECT_TRUE(parse_fails("", -EINVAL));
	EXPECT_TRUE(parse_fails("://h/", -EINVAL));
}

TEST(bad_hosts_and_ports)
{
	EXPECT_TRUE(parse_fails("nbd:///x", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://:10809/x", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h:0/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h:65536/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h:123456/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h:12a/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h:-1/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://::1/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://[::1/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://[]/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://[zz]/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://[127.0.0.1]/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://[::1]x/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://user@h/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h%00x/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h%20x/", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h%2fx/", -EINVAL));
	EXPECT_TRUE(parse_fails("ws:///x", -EINVAL));
}

TEST(bad_paths_and_queries)
{
	char long_name[16 + NBD_MAX_STRING + 2];
	struct nbd_uri u;
	struct nbdws_err err;

	EXPECT_TRUE(parse_fails("nbd://h/x#frag", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h/%zz", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h/%4", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h/a%", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h/a%00b", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h/x?socket=/s", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd://h/x?tls=on", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd+unix:///x", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd+unix:///x?socket=", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd+unix://host/x?socket=/s", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd+unix:///x?socket=/s&foo=1", -EINVAL));
	EXPECT_TRUE(parse_fails("nbd+unix:///x?socket=/s%zz", -EINVAL));
	EXPECT_TRUE(parse_fails("ws://h/pa th", -EINVAL));
	EXPECT_TRUE(parse_fails("ws://h/a\r\nHost: evil", -EINVAL));
	EXPECT_TRUE(parse_fails("wss://h/\x7f", -EINVAL));

	/* The protocol allows names of up to 4096 bytes, not one more. */
	strcpy(long_name, "nbd://h/");
	memset(long_name + 8, 'a', NBD_MAX_STRING);
	long_name[8 + NBD_MAX_STRING] = '\0';
	ASSERT_EQ(0, nbd_uri_parse(long_name, &u, &err));
	EXPECT_EQ(NBD_MAX_STRING, strlen(u.export_name));
	nbd_uri_free(&u);
	strcat(long_name, "a");
	EXPECT_TRUE(parse_fails(long_name, -EINVAL));
}

TEST(pct_decode)
{
	char *out;

	ASSERT_EQ(0, nbd_uri_pct_decode("a%41%7e%7E", 10, &out));
	EXPECT_STREQ("aA~~", out);
	free(out);
	/* Only @len bytes count: the escape beyond them is not seen. */
	ASSERT_EQ(0, nbd_uri_pct_decode("ab%41", 2, &out));
	EXPECT_STREQ("ab", out);
	free(out);
	EXPECT_EQ(-EINVAL, nbd_uri_pct_decode("ab%4", 4, &out));
	EXPECT_EQ(-EINVAL, nbd_uri_pct_decode("%g0", 3, &out));
	EXPECT_EQ(-EINVAL, nbd_uri_pct_decode("%00", 3, &out));
}

TEST(error_is_reset_on_failure)
{
	struct nbd_uri u;
	struct nbdws_err err;

	/* A failure must leave nothing allocated (ASan checks leaks). */
	EXPECT_EQ(-EINVAL, nbd_uri_parse("nbd+unix:///exp%20x?socket=/s&bad", &u, &err));
	EXPECT_EQ(NULL, u.export_name);
	EXPECT_EQ(NULL, u.socket_path);
	EXPECT_NE(NULL, strstr(err.msg, "bad"));
}

/* The default backend name is public: no token from a query in it. */
static int public_is(const char *text, const char *want)
{
	struct nbdws_err err = { "" };
	struct nbd_uri uri;
	char *got;
	int ok;

	if (nbd_uri_parse(text, &uri, &err)) {
		fprintf(stderr, "'%s': %s\n", text, err.msg);
		return 0;
	}
	got = nbd_uri_public(text, &uri);
	ok = got && !strcmp(got, want);
	if (!ok)
		fprintf(stderr, "'%s': got '%s', want '%s'\n", text,
			got ? got : "(null)", want);
	free(got);
	nbd_uri_free(&uri);
	return ok;
}

TEST(public_form_has_no_query)
{
	EXPECT_TRUE(public_is("wss://relay.example/slot/0?token=s3cret",
			      "wss://relay.example/slot/0"));
	EXPECT_TRUE(public_is("ws://[::1]:8080?access_token=x&y=1",
			      "ws://[::1]:8080"));
	EXPECT_TRUE(public_is("ws://h/a/b", "ws://h/a/b"));
	EXPECT_TRUE(public_is("WSS://h:443/p?", "WSS://h:443/p"));
	/* NBD URIs carry no secret in a query: the socket path stays. */
	EXPECT_TRUE(public_is("nbd://h:10809/exp", "nbd://h:10809/exp"));
	EXPECT_TRUE(public_is("nbd+unix:///e?socket=/run/nbd.sock",
			      "nbd+unix:///e?socket=/run/nbd.sock"));
	/* What could not be made public is refused before. */
	EXPECT_EQ(-EINVAL, nbd_uri_parse("ws://user:pw@h/", &(struct nbd_uri){},
					 NULL));
	EXPECT_EQ(-EINVAL, nbd_uri_parse("ws://h/#token=x", &(struct nbd_uri){},
					 NULL));
}

TEST_HARNESS_MAIN
