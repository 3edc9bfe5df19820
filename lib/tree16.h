/* tree16.h: the AVX-512 reduction that keeps distances independent of
 * batching — sixteen accumulators summed each by the same fixed tree of
 * pairwise additions (lower half plus upper half, repeatedly), so a
 * distance comes out bit for bit the same whichever kernel computed it.
 * Shared by the distance kernels (distance.c) and the IVF list scans
 * (ivf.c). */
#ifndef VDB_TREE16_H
#define VDB_TREE16_H
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* tree16_red: the tree sums of a[0..16), sum p in lane p.  Each step adds
 * the lower to the upper half of every accumulator and packs two
 * accumulators' halves into one register. */
__attribute__((target("avx512f"), always_inline)) static inline __m512
tree16_red(const __m512 *a)
{
	__m512 b[8], c[4], e[2], s;
	int i;

	/* b: [a2i[0..8) + a2i[8..16), a2i+1 likewise] */
#pragma GCC unroll 8
	for (i = 0; i < 8; i++)
		b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
		                     _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xee));
		/* c: 128-bit block m holds accumulator 4i + m, 4 lanes */
#pragma GCC unroll 4
	for (i = 0; i < 4; i++)
		c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
		                     _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xdd));
		/* e: block m holds 2 lanes of 8i + m, 2 lanes of 8i + 4 + m */
#pragma GCC unroll 2
	for (i = 0; i < 2; i++)
		e[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44),
		                     _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0xee));
	/* lane 4m + t: the sum of a[m + 4t] */
	s = _mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], 0x88), _mm512_shuffle_ps(e[0], e[1], 0xdd));
	return _mm512_permutexvar_ps(
	        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), s);
}

#endif
#endif
