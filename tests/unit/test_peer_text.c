// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for lib/peer_text.c: no control byte and no ill-formed UTF-8
 * gets through, well-formed text is kept byte for byte, and the output
 * stays within its buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "peer_text.h"

/* Sanitise the NUL-terminated @in into a roomy buffer. */
static const char *clean(const char *in)
{
	static char out[256];

	peer_text(out, sizeof(out), in, strlen(in));
	return out;
}

/* True when @s holds no C0, DEL or C1 control and no byte >= 0xf5. */
static bool harmless(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p >= 0xf5 || *p == 0xc0 ||
		    *p == 0xc1)
			return false;
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0)
			return false;
	}
	return true;
}

TEST(ascii_passes)
{
	EXPECT_STREQ("going away: server restart (1001)",
		     clean("going away: server restart (1001)"));
	EXPECT_STREQ("", clean(""));
}

TEST(c0_and_del_are_replaced)
{
	EXPECT_STREQ("a?[2Jb?c?d?e?f?", clean("a\x1b[2Jb\rc\nd\ae\tf\x7f"));
	EXPECT_STREQ("?nbdctl: forged", clean("\nnbdctl: forged"));
}

TEST(nul_inside_counts_as_a_control)
{
	char out[8];

	EXPECT_EQ(3, peer_text(out, sizeof(out), "a\0b", 3));
	EXPECT_STREQ("a?b", out);
}

TEST(valid_utf8_passes_unchanged)
{
	static const char *const ok[] = {
		"\xc3\xa9",			/* é */
		"\xe6\x97\xa5\xe6\x9c\xac",	/* 日本 */
		"caf\xc3\xa9 \xe2\x82\xac 5",	/* café € 5 */
		"\xc2\xa0\xc2\xbf",		/* U+00A0, first after C1 */
		"\xdf\xbf\xe0\xa0\x80",		/* U+07FF, U+0800 */
		"\xed\x9f\xbf\xee\x80\x80",	/* U+D7FF, U+E000 */
		"\xef\xbf\xbd",			/* U+FFFD */
		"\xf0\x90\x80\x80",		/* U+10000 */
		"\xf0\x9f\x98\x80",		/* U+1F600 */
		"\xf4\x8f\xbf\xbf",		/* U+10FFFF */
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		EXPECT_STREQ(ok[i], clean(ok[i]));
}

TEST(c1_controls_are_replaced)
{
	/* U+0080, U+0085 (NEL), U+009B (CSI), U+009F. */
	EXPECT_STREQ("?x?y?[2J?", clean("\xc2\x80x\xc2\x85y\xc2\x9b[2J\xc2\x9f"));
	/* Raw 8-bit C1 bytes are stray continuation bytes. */
	EXPECT_STREQ("??[2J?", clean("\x9b\x85[2J\x80"));
}

TEST(ill_formed_utf8_is_replaced)
{
	/* Overlong forms: "/" and NUL in 2, 3 and 4 bytes. */
	EXPECT_STREQ("??", clean("\xc0\xaf"));
	EXPECT_STREQ("??", clean("\xc1\x80"));
	EXPECT_STREQ("???", clean("\xe0\x80\xaf"));
	EXPECT_STREQ("???", clean("\xe0\x9f\xbf"));
	EXPECT_STREQ("????", clean("\xf0\x80\x80\xaf"));
	EXPECT_STREQ("????", clean("\xf0\x8f\xbf\xbf"));
	/* Surrogates U+D800, U+DFFF. */
	EXPECT_STREQ("???", clean("\xed\xa0\x80"));
	EXPECT_STREQ("???", clean("\xed\xbf\xbf"));
	/* Above U+10FFFF, and bytes that never occur. */
	EXPECT_STREQ("????", clean("\xf4\x90\x80\x80"));
	EXPECT_STREQ("????", clean("\xf5\x80\x80\x80"));
	EXPECT_STREQ("??", clean("\xfe\xff"));
	/* Cut short: one '?' for the maximal subpart, then go on. */
	EXPECT_STREQ("?a", clean("\xe6\x97" "a"));
	EXPECT_STREQ("?", clean("\xf0\x9f\x98"));
	EXPECT_STREQ("??", clean("\xe6\x97\xe6\x97"));
	EXPECT_STREQ("?\xc3\xa9", clean("\xc3\xc3\xa9"));
	/* A cut sequence must not swallow an escape that follows. */
	EXPECT_STREQ("??[2J", clean("\xe6\x1b[2J"));
}

TEST(bounded_and_never_cuts_a_character)
{
	char out[6];

	memset(out, 'X', sizeof(out));
	EXPECT_EQ(5, peer_text(out, sizeof(out), "abcdefgh", 8));
	EXPECT_STREQ("abcde", out);
	/* "ab日" is 5 bytes and fits; "abc日" would need 6 plus NUL. */
	EXPECT_EQ(5, peer_text(out, sizeof(out), "ab\xe6\x97\xa5", 5));
	EXPECT_STREQ("ab\xe6\x97\xa5", out);
	EXPECT_EQ(3, peer_text(out, sizeof(out), "abc\xe6\x97\xa5", 6));
	EXPECT_STREQ("abc", out);
	EXPECT_EQ(0, peer_text(out, 1, "abc", 3));
	EXPECT_STREQ("", out);
	out[0] = 'X';
	EXPECT_EQ(0, peer_text(out, 0, "abc", 3));
	EXPECT_EQ('X', out[0]);
}

TEST(dup_allocates_the_sanitised_copy)
{
	char *s = peer_text_dup("ok\x1b\xc2\x9b\xe6\x97\xa5", 8);

	ASSERT_NE(NULL, s);
	EXPECT_STREQ("ok??\xe6\x97\xa5", s);
	free(s);
}

/*
 * Every byte string of up to three bytes: the output is always harmless
 * and already clean.
 */
TEST(exhaustive_short_inputs_are_harmless)
{
	unsigned char in[3];
	char out[8], again[8];
	unsigned int v;
	size_t n;

	for (n = 1; n <= 3; n++) {
		for (v = 0; v < 1u << (8 * n); v++) {
			size_t k;

			for (k = 0; k < n; k++)
				in[k] = (unsigned char)(v >> (8 * k));
			ASSERT_LE(peer_text(out, sizeof(out), in, n), n);
			ASSERT_TRUE(harmless(out)) {
				TH_LOG("input %06x gave a control", v);
			}
			/* What comes out is well-formed: kept as it is. */
			peer_text(again, sizeof(again), out, strlen(out));
			ASSERT_STREQ(out, again);
		}
	}
}

TEST_HARNESS_MAIN
