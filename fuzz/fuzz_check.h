/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small helpers shared by the parser fuzz targets: a contract check that
 * aborts (so libFuzzer keeps the input as a crash) and a byte-string
 * search, both header-only so each target stays one translation unit.
 */
#ifndef _NBDWS_FUZZ_CHECK_H
#define _NBDWS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken contract is a crash: say which, then abort. */
#define fz_check(ok, what)						\
	do {								\
		if (!(ok)) {						\
			fprintf(stderr, "contract broken: %s (%s:%d)\n",\
				what, __FILE__, __LINE__);		\
			abort();					\
		}							\
	} while (0)

/* True if the NUL-terminated @s occurs in @hay (@n bytes). */
static inline int fz_within(const void *hay, size_t n, const char *s)
{
	size_t sl = strlen(s);

	return !sl || (sl <= n && memmem(hay, n, s, sl) != NULL);
}

/* True if @s (NUL-terminated) holds no byte below 0x20 and no DEL. */
static inline int fz_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static inline unsigned int fz_xorshift(unsigned int *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

#endif /* _NBDWS_FUZZ_CHECK_H */
