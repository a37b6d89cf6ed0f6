// SPDX-License-Identifier: GPL-2.0
/*
 * Text from a peer made safe to print (peer_text.h). UTF-8 is decoded
 * with the table of well-formed byte sequences of Unicode 15, 3.9 (D92):
 * the second byte's range depends on the first, which is what rules out
 * overlongs, surrogates and code points above U+10FFFF without computing
 * the code point first.
 */
#include <stdlib.h>

#include "peer_text.h"

/*
 * Length of the well-formed sequence at @p (@len bytes available), or 0
 * when it is ill-formed; *@bad is then the length of its maximal
 * ill-formed subsequence (at least 1), all of which one '?' replaces.
 */
static size_t utf8_seq(const unsigned char *p, size_t len, size_t *bad)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		need = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* below: overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* above: surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 4;
		if (p[0] == 0xf0)
			lo = 0x90;	/* below: overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* above: beyond U+10FFFF */
	} else {
		/* ASCII is handled by the caller; 80..c1 and f5..ff never lead. */
		*bad = 1;
		return 0;
	}
	for (i = 1; i < need; i++) {
		if (i == len || p[i] < lo || p[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return need;
}

size_t peer_text(char *out, size_t size, const void *in, size_t len)
{
	const unsigned char *p = in;
	size_t i = 0, o = 0, n, bad;

	if (!size)
		return 0;
	while (i < len) {
		if (p[i] < 0x80) {
			if (o + 1 >= size)
				break;
			if (p[i] < 0x20 || p[i] == 0x7f)
				out[o++] = '?';
			else
				out[o++] = (char)p[i];
			i++;
			continue;
		}
		n = utf8_seq(p + i, len - i, &bad);
		/* U+0080..U+009F, the C1 controls, are c2 80..c2 9f. */
		if (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0) {
			bad = 2;
			n = 0;
		}
		if (!n) {
			if (o + 1 >= size)
				break;
			out[o++] = '?';
			i += bad;
			continue;
		}
		if (o + n >= size)
			break;
		for (; n; n--)
			out[o++] = (char)p[i++];
	}
	out[o] = '\0';
	return o;
}

char *peer_text_dup(const void *in, size_t len)
{
	char *s = malloc(len + 1);

	if (s)
		peer_text(s, len + 1, in, len);
	return s;
}
