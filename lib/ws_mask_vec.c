// SPDX-License-Identifier: GPL-2.0
/*
 * AVX2 masking for userspace (see ws_mask_vec.h for why it exists).
 *
 * GCC's and clang's vector extensions rather than intrinsics: the XOR of
 * two 32-byte vectors is all this needs, and the target attribute lets one
 * binary carry the AVX2 loop while running on CPUs without it. The CPU is
 * asked at start-up by the compiler runtime's constructor, so
 * __builtin_cpu_supports() is one load and test of what it found.
 */
#include <string.h>

#include "ws_mask_vec.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

typedef u64 ws_v256 __attribute__((vector_size(32)));

__attribute__((target("avx2")))
static size_t ws_mask_avx2(u8 *dst, const u8 *src, size_t len, u64 kw)
{
	const ws_v256 k = { kw, kw, kw, kw };
	size_t done;

	/* memcpy() in and out: no alignment is assumed of either pointer. */
	for (done = 0; len - done >= 64; done += 64) {
		ws_v256 a, b;

		memcpy(&a, src + done, 32);
		memcpy(&b, src + done + 32, 32);
		a ^= k;
		b ^= k;
		memcpy(dst + done, &a, 32);
		memcpy(dst + done + 32, &b, 32);
	}
	return done;
}

size_t ws_mask_vec(u8 *dst, const u8 *src, size_t len, u64 kw)
{
	if (len < 64 || !__builtin_cpu_supports("avx2"))
		return 0;
	return ws_mask_avx2(dst, src, len, kw);
}

#else

size_t ws_mask_vec(u8 *dst, const u8 *src, size_t len, u64 kw)
{
	(void)dst;
	(void)src;
	(void)len;
	(void)kw;
	return 0;
}

#endif
