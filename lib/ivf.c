/* ivf.c: inverted-file indexes (ivf.h; the IVF sections of
 * formats/index.md).
 *
 * Lists.  L2 and IP cluster by k-means on the vectors, a row in the list of
 * the nearest centroid; an L2 query probes the nearest centroids, an IP
 * query those of the largest q.c: a list's rows are close to their mean,
 * in norm as in direction, so q.c is about what its rows score, and the
 * long rows that win inner products sit in lists of long centroids.
 * (Lists by direction alone, for IP, mix long rows with short ones and
 * found 0.83 of the top 10 where these find 0.95, 4 lists of 2832 probed
 * in 500k clustered rows of varied norms.)  Cosine clusters by direction
 * (spherical k-means: unit centroids, a row in the list of the largest
 * inner product with its vector), which is all cosine sees.
 *
 * Codes.  IVF_FLAT keeps the vectors, so its distances are the exact
 * kernels' own.  SQ8 and PQ encode the residual r = x' - c of a row
 * against its list's centroid, x' being the vector, or for cosine the
 * vector divided by its norm (so that an approximate inner product ranks
 * as the cosine does).  Their approximate distances only choose which
 * k * refine rows get an exact distance from the segment's vectors.
 *
 * The lists' ranking and the approximate distances come from kernels of
 * this file, each in AVX-512, AVX2 and plain C that give the same bits,
 * so which rows reach the exact stage does not depend on the ISA (the
 * exact kernels of distance.h may differ in the last bits, by design).
 *
 * A search never trusts a row number it has not checked: ivf_open checks
 * the offsets, ivf_check the rows, and a row out of range met by a search
 * that skipped ivf_check is corruption, not a read past the vectors. */
#include "ivf.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "kmeans.h"
#include "par.h"
#include "schema.h"
#include "segment.h"
#include "tree16.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define IVF_X86 1
#include <immintrin.h>
#else
#define IVF_X86 0
#endif

#define CH 1024 /* positions of a list scanned at a time */
#define EB 256 /* rows encoded at a time */
#define COARSE_NITER 10 /* FAISS's for an IVF's lists */
#define PQ_NITER 25 /* and for a product quantizer */
#define PER_CENTROID 256 /* training points per centroid, at most */
#define PQ_K 256 /* 8 bits */
#define SEED 0x5644424956463031ull /* "VDBIVF01" */

/* ---- kernels ----
 *
 * Each in plain C, AVX2 and AVX-512, giving the same bits: the same IEEE
 * operations in the same order (fmaf where the SIMD code has an fma).
 * Sums over a vector's components use 16 lanes, component t in lane
 * t % 16 from +0, then tree16; AVX2 holds the 16 lanes in two registers.
 * Sums over sub-quantizers or codeword components are one chain per
 * output, whatever the width.  A missing lane past d adds fma(0, 0, acc),
 * which leaves acc as it is: an accumulator from +0 is never -0. */

enum { ISA_C, ISA_AVX2, ISA_AVX512 };

static int
isa_now(void)
{
	const char *s = dist_isa();

	return strcmp(s, "avx512") == 0 ? ISA_AVX512 : strcmp(s, "avx2") == 0 ? ISA_AVX2 : ISA_C;
}

static size_t
pad16(size_t x)
{
	return (x + 15) & ~(size_t)15;
}

/* tree16: lane j += lane j + w for w = 8, 4, 2, 1; the sum in lane 0 */
static float
tree16(float *a)
{
	for (int w = 8; w > 0; w /= 2)
		for (int j = 0; j < w; j++)
			a[j] = a[j] + a[j + w];
	return a[0];
}

/* dot_c: out[i] = q . x_i for the n rows x_i = x + i * dim (the coarse
 * quantizer's centroids) */
static void
dot_c(const float *q, const float *x, size_t n, uint32_t dim, float *out)
{
	for (size_t i = 0; i < n; i++) {
		float acc[16] = {0};
		for (uint32_t t = 0; t < dim; t++)
			acc[t % 16] = fmaf(q[t], x[i * dim + t], acc[t % 16]);
		out[i] = tree16(acc);
	}
}

/* sq_c: out[i] for the code at codes + (idx ? idx[i] : i) * dim:
 * L2 (!ip): sum over t of (a_t - code_t s_t)^2;  ip: sum of code_t s_t.
 * a and s hold pad16(dim) floats, zeros past dim. */
static void
sq_c(int ip, const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t dim, const float *a,
     const float *s, float *out)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *c = codes + (size_t)(idx ? idx[i] : i) * dim;
		float acc[16] = {0};
		for (uint32_t t = 0; t < dim; t++) {
			float v = (float)c[t];
			if (ip) {
				acc[t % 16] = fmaf(v, s[t], acc[t % 16]);
			} else {
				float df = fmaf(-v, s[t], a[t]);
				acc[t % 16] = fmaf(df, df, acc[t % 16]);
			}
		}
		out[i] = tree16(acc);
	}
}

/* pq_c: out[i] = sum over j of lut[j * 256 + code_j], from +0 in order of
 * j, for the code at codes + (idx ? idx[i] : i) * m */
static void
pq_c(const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t m, const float *lut, float *out)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *c = codes + (size_t)(idx ? idx[i] : i) * m;
		float acc = 0;
		for (uint32_t j = 0; j < m; j++)
			acc = acc + lut[j * PQ_K + c[j]];
		out[i] = acc;
	}
}

/* lut_c: lut[j * 256 + c] = sum over t < dsub of q[j dsub + t] times
 * component t of codeword c of sub-quantizer j, fmaf from +0 in order of
 * t; cbt is the codebook transposed, cbt[(j dsub + t) * 256 + c] */
static void
lut_c(const float *q, uint32_t dim, uint32_t dsub, const float *cbt, float *lut)
{
	for (uint32_t j = 0; j < dim / dsub; j++)
		for (uint32_t c = 0; c < PQ_K; c++) {
			float acc = 0;
			for (uint32_t t = 0; t < dsub; t++)
				acc = fmaf(q[j * dsub + t], cbt[(size_t)(j * dsub + t) * PQ_K + c],
				           acc);
			lut[j * PQ_K + c] = acc;
		}
}

#if IVF_X86
#define A512 __attribute__((target("avx512f"))) static
#define I512 __attribute__((target("avx512f"), always_inline)) static inline
#define A256 __attribute__((target("avx2,fma"))) static
#define I256 __attribute__((target("avx2,fma"), always_inline)) static inline

/* tree512: tree16 of the lanes of v */
I512 float
tree512(__m512 v)
{
	__m256 lo = _mm512_castps512_ps256(v);
	__m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
	__m256 s8 = _mm256_add_ps(lo, hi);
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
	__m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
	return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

/* dot512: dot_c, 16 rows at a time; q holds pad16(dim) floats */
A512 void
dot512(const float *q, const float *x, size_t n, uint32_t dim, float *out)
{
	uint32_t full = dim & ~15u;
	__mmask16 tail = (__mmask16)((1u << (dim - full)) - 1);

	for (size_t i = 0; i < n; i += 16) {
		size_t nb = n - i < 16 ? n - i : 16;
		const float *xp[16];
		__m512 acc[16];
#pragma GCC unroll 16
		for (int r = 0; r < 16; r++) {
			xp[r] = x + (i + ((size_t)r < nb ? (size_t)r : nb - 1)) * dim;
			acc[r] = _mm512_setzero_ps();
		}
		for (uint32_t t = 0; t < full; t += 16) {
			__m512 qv = _mm512_loadu_ps(q + t);
#pragma GCC unroll 16
			for (int r = 0; r < 16; r++)
				acc[r] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(xp[r] + t), acc[r]);
		}
		if (full < dim) {
			__m512 qv = _mm512_loadu_ps(q + full);
#pragma GCC unroll 16
			for (int r = 0; r < 16; r++)
				acc[r] = _mm512_fmadd_ps(
				        qv, _mm512_maskz_loadu_ps(tail, xp[r] + full), acc[r]);
		}
		_mm512_mask_storeu_ps(out + i, (__mmask16)((1u << nb) - 1), tree16_red(acc));
	}
}

I512 __m512
bytes512(const uint8_t *p)
{
	return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

I512 void
sq_step512(const int ip, __m512 c, __m512 av, __m512 sv, __m512 *acc)
{
	if (ip) {
		*acc = _mm512_fmadd_ps(c, sv, *acc);
	} else {
		__m512 df = _mm512_fnmadd_ps(c, sv, av);
		*acc = _mm512_fmadd_ps(df, df, *acc);
	}
}

/* sq512: sq_c, four codes at a time */
I512 void
sq512_run(const int ip, const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t dim,
          const float *a, const float *s, float *out)
{
	size_t full = dim & ~15u;

	for (size_t i = 0; i < n; i += 4) {
		size_t nb = n - i < 4 ? n - i : 4;
		const uint8_t *cp[4];
		__m512 acc[4];

		for (size_t b = 0; b < 4; b++) {
			size_t r = i + (b < nb ? b : nb - 1);
			cp[b] = codes + (size_t)(idx ? idx[r] : r) * dim;
			acc[b] = _mm512_setzero_ps();
		}
		for (size_t t = 0; t < full; t += 16) {
			__m512 av = _mm512_loadu_ps(a + t), sv = _mm512_loadu_ps(s + t);
#pragma GCC unroll 4
			for (int b = 0; b < 4; b++)
				sq_step512(ip, bytes512(cp[b] + t), av, sv, &acc[b]);
		}
		if (full < dim) {
			__m512 av = _mm512_loadu_ps(a + full), sv = _mm512_loadu_ps(s + full);
			for (int b = 0; b < 4; b++) {
				uint8_t tail[16] = {0};
				memcpy(tail, cp[b] + full, dim - full);
				sq_step512(ip, bytes512(tail), av, sv, &acc[b]);
			}
		}
		for (size_t b = 0; b < nb; b++)
			out[i + b] = tree512(acc[b]);
	}
}

A512 void
sq512(int ip, const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t dim, const float *a,
      const float *s, float *out)
{
	if (ip)
		sq512_run(1, codes, idx, n, dim, a, s, out);
	else
		sq512_run(0, codes, idx, n, dim, a, s, out);
}

/* pq512: pq_c for 16 codes a register, one gather of 4 code bytes each
 * and one table gather per byte (m >= 4; the last, partial group of 4 is
 * read as the row's last 4 bytes, so nothing past a row is touched).
 * Two registers of codes go side by side: each is a chain of m dependent
 * adds, and one alone would leave the gathers waiting on it. */
I512 __m512i
pq_pos512(const uint32_t *idx, size_t i, __mmask16 k, __m512i vm)
{
	const __m512i iota =
	        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	__m512i pos = idx ? _mm512_maskz_loadu_epi32(k, idx + i)
	                  : _mm512_add_epi32(iota, _mm512_set1_epi32((int)i));

	return _mm512_mullo_epi32(pos, vm);
}

I512 __m512
pq_add512(__m512 acc, __m512i w, int b, __mmask16 k, const float *lut)
{
	__m512i ci = _mm512_and_si512(_mm512_srlv_epi32(w, _mm512_set1_epi32(8 * b)),
	                              _mm512_set1_epi32(0xff));

	return _mm512_add_ps(acc, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, ci, lut, 4));
}

A512 void
pq512(const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t m, const float *lut, float *out)
{
	const __m512i vm = _mm512_set1_epi32((int)m);
	uint32_t rem = m % 4, full = m - rem;

	for (size_t i = 0; i < n; i += 32) {
		size_t n0 = n - i < 16 ? n - i : 16, n1 = n - i - n0 < 16 ? n - i - n0 : 16;
		__mmask16 k0 = (__mmask16)((1u << n0) - 1), k1 = (__mmask16)((1u << n1) - 1);
		__m512i off0 = pq_pos512(idx, i, k0, vm), off1 = pq_pos512(idx, i + 16, k1, vm);
		__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();

		for (uint32_t j = 0; j < full; j += 4) {
			__m512i jj = _mm512_set1_epi32((int)j);
			__m512i w0 = _mm512_mask_i32gather_epi32(
			        _mm512_setzero_si512(), k0, _mm512_add_epi32(off0, jj), codes, 1);
			__m512i w1 = _mm512_mask_i32gather_epi32(
			        _mm512_setzero_si512(), k1, _mm512_add_epi32(off1, jj), codes, 1);
#pragma GCC unroll 4
			for (int b = 0; b < 4; b++) {
				a0 = pq_add512(a0, w0, b, k0, lut + (j + b) * PQ_K);
				a1 = pq_add512(a1, w1, b, k1, lut + (j + b) * PQ_K);
			}
		}
		if (rem) {
			__m512i jj = _mm512_set1_epi32((int)m - 4);
			__m512i w0 = _mm512_mask_i32gather_epi32(
			        _mm512_setzero_si512(), k0, _mm512_add_epi32(off0, jj), codes, 1);
			__m512i w1 = _mm512_mask_i32gather_epi32(
			        _mm512_setzero_si512(), k1, _mm512_add_epi32(off1, jj), codes, 1);
			for (uint32_t b = 4 - rem; b < 4; b++) {
				a0 = pq_add512(a0, w0, (int)b, k0, lut + (m - 4 + b) * PQ_K);
				a1 = pq_add512(a1, w1, (int)b, k1, lut + (m - 4 + b) * PQ_K);
			}
		}
		_mm512_mask_storeu_ps(out + i, k0, a0);
		if (n1)
			_mm512_mask_storeu_ps(out + i + 16, k1, a1);
	}
}

A512 void
lut512(const float *q, uint32_t dim, uint32_t dsub, const float *cbt, float *lut)
{
	for (uint32_t j = 0; j < dim / dsub; j++)
		for (uint32_t c = 0; c < PQ_K; c += 16) {
			__m512 acc = _mm512_setzero_ps();
			for (uint32_t t = 0; t < dsub; t++)
				acc = _mm512_fmadd_ps(
				        _mm512_set1_ps(q[j * dsub + t]),
				        _mm512_loadu_ps(cbt + (size_t)(j * dsub + t) * PQ_K + c),
				        acc);
			_mm512_storeu_ps(lut + j * PQ_K + c, acc);
		}
}

/* ---- AVX2: the 16 lanes as lo (components t % 16 < 8) and hi ---- */

/* tree256: tree16 of the lanes (lo, hi) */
I256 float
tree256(__m256 lo, __m256 hi)
{
	__m256 s8 = _mm256_add_ps(lo, hi);
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
	__m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
	return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

I256 __m256i
mask256(uint32_t n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
	                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* dot256: dot_c, 4 rows at a time */
A256 void
dot256(const float *q, const float *x, size_t n, uint32_t dim, float *out)
{
	uint32_t full = dim & ~15u, r = dim - full;
	__m256i mlo = mask256(r < 8 ? r : 8), mhi = mask256(r > 8 ? r - 8 : 0);

	for (size_t i = 0; i < n; i += 4) {
		size_t nb = n - i < 4 ? n - i : 4;
		const float *xp[4];
		__m256 lo[4], hi[4];
		for (int b = 0; b < 4; b++) {
			xp[b] = x + (i + ((size_t)b < nb ? (size_t)b : nb - 1)) * dim;
			lo[b] = hi[b] = _mm256_setzero_ps();
		}
		for (uint32_t t = 0; t < full; t += 16) {
			__m256 ql = _mm256_loadu_ps(q + t), qh = _mm256_loadu_ps(q + t + 8);
#pragma GCC unroll 4
			for (int b = 0; b < 4; b++) {
				lo[b] = _mm256_fmadd_ps(ql, _mm256_loadu_ps(xp[b] + t), lo[b]);
				hi[b] = _mm256_fmadd_ps(qh, _mm256_loadu_ps(xp[b] + t + 8), hi[b]);
			}
		}
		if (r) {
			__m256 ql = _mm256_loadu_ps(q + full), qh = _mm256_loadu_ps(q + full + 8);
			for (int b = 0; b < 4; b++) {
				lo[b] = _mm256_fmadd_ps(ql, _mm256_maskload_ps(xp[b] + full, mlo),
				                        lo[b]);
				hi[b] = _mm256_fmadd_ps(
				        qh, _mm256_maskload_ps(xp[b] + full + 8, mhi), hi[b]);
			}
		}
		for (size_t b = 0; b < nb; b++)
			out[i + b] = tree256(lo[b], hi[b]);
	}
}

I256 void
sq_step256(const int ip, __m256 c, __m256 av, __m256 sv, __m256 *acc)
{
	if (ip) {
		*acc = _mm256_fmadd_ps(c, sv, *acc);
	} else {
		__m256 df = _mm256_fnmadd_ps(c, sv, av);
		*acc = _mm256_fmadd_ps(df, df, *acc);
	}
}

I256 __m256
bytes256(const uint8_t *p)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

I256 void
sq256_run(const int ip, const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t dim,
          const float *a, const float *s, float *out)
{
	size_t full = dim & ~15u;

	for (size_t i = 0; i < n; i += 2) {
		size_t nb = n - i < 2 ? n - i : 2;
		const uint8_t *cp[2];
		__m256 lo[2], hi[2];

		for (size_t b = 0; b < 2; b++) {
			size_t r = i + (b < nb ? b : nb - 1);
			cp[b] = codes + (size_t)(idx ? idx[r] : r) * dim;
			lo[b] = hi[b] = _mm256_setzero_ps();
		}
		for (size_t t = 0; t < full; t += 16) {
			__m256 al = _mm256_loadu_ps(a + t), ah = _mm256_loadu_ps(a + t + 8);
			__m256 sl = _mm256_loadu_ps(s + t), sh = _mm256_loadu_ps(s + t + 8);
			for (int b = 0; b < 2; b++) {
				sq_step256(ip, bytes256(cp[b] + t), al, sl, &lo[b]);
				sq_step256(ip, bytes256(cp[b] + t + 8), ah, sh, &hi[b]);
			}
		}
		if (full < dim) {
			__m256 al = _mm256_loadu_ps(a + full), ah = _mm256_loadu_ps(a + full + 8);
			__m256 sl = _mm256_loadu_ps(s + full), sh = _mm256_loadu_ps(s + full + 8);
			for (int b = 0; b < 2; b++) {
				uint8_t tail[16] = {0};
				memcpy(tail, cp[b] + full, dim - full);
				sq_step256(ip, bytes256(tail), al, sl, &lo[b]);
				sq_step256(ip, bytes256(tail + 8), ah, sh, &hi[b]);
			}
		}
		for (size_t b = 0; b < nb; b++)
			out[i + b] = tree256(lo[b], hi[b]);
	}
}

A256 void
sq256(int ip, const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t dim, const float *a,
      const float *s, float *out)
{
	if (ip)
		sq256_run(1, codes, idx, n, dim, a, s, out);
	else
		sq256_run(0, codes, idx, n, dim, a, s, out);
}

/* pq256: pq512 in 8 lanes */
A256 void
pq256(const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t m, const float *lut, float *out)
{
	const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	const __m256i vm = _mm256_set1_epi32((int)m), ff = _mm256_set1_epi32(0xff);
	uint32_t rem = m % 4, full = m - rem;

	for (size_t i = 0; i < n; i += 8) {
		size_t nb = n - i < 8 ? n - i : 8;
		__m256i k = mask256((uint32_t)nb);
		__m256i pos = idx ? _mm256_maskload_epi32((const int *)(idx + i), k)
		                  : _mm256_add_epi32(iota, _mm256_set1_epi32((int)i));
		__m256i off = _mm256_mullo_epi32(pos, vm);
		__m256 acc = _mm256_setzero_ps(), kf = _mm256_castsi256_ps(k);
		float res[8];

		for (uint32_t j = 0; j < full; j += 4) {
			__m256i w = _mm256_mask_i32gather_epi32(
			        _mm256_setzero_si256(), (const int *)codes,
			        _mm256_add_epi32(off, _mm256_set1_epi32((int)j)), k, 1);
			for (int b = 0; b < 4; b++) {
				__m256i ci = _mm256_and_si256(_mm256_srli_epi32(w, 8 * b), ff);
				acc = _mm256_add_ps(acc, _mm256_mask_i32gather_ps(
				                                 _mm256_setzero_ps(),
				                                 lut + (j + b) * PQ_K, ci, kf, 4));
			}
		}
		if (rem) {
			__m256i w = _mm256_mask_i32gather_epi32(
			        _mm256_setzero_si256(), (const int *)codes,
			        _mm256_add_epi32(off, _mm256_set1_epi32((int)m - 4)), k, 1);
			for (uint32_t b = 4 - rem; b < 4; b++) {
				__m256i ci = _mm256_and_si256(
				        _mm256_srlv_epi32(w, _mm256_set1_epi32((int)(8 * b))), ff);
				acc = _mm256_add_ps(
				        acc, _mm256_mask_i32gather_ps(_mm256_setzero_ps(),
				                                      lut + (m - 4 + b) * PQ_K, ci,
				                                      kf, 4));
			}
		}
		_mm256_storeu_ps(res, acc);
		memcpy(out + i, res, nb * sizeof(float));
	}
}

A256 void
lut256(const float *q, uint32_t dim, uint32_t dsub, const float *cbt, float *lut)
{
	for (uint32_t j = 0; j < dim / dsub; j++)
		for (uint32_t c = 0; c < PQ_K; c += 8) {
			__m256 acc = _mm256_setzero_ps();
			for (uint32_t t = 0; t < dsub; t++)
				acc = _mm256_fmadd_ps(
				        _mm256_set1_ps(q[j * dsub + t]),
				        _mm256_loadu_ps(cbt + (size_t)(j * dsub + t) * PQ_K + c),
				        acc);
			_mm256_storeu_ps(lut + j * PQ_K + c, acc);
		}
}
#endif

static void
k_dot(int isa, const float *q, const float *x, size_t n, uint32_t dim, float *out)
{
#if IVF_X86
	if (isa == ISA_AVX512)
		dot512(q, x, n, dim, out);
	else if (isa == ISA_AVX2)
		dot256(q, x, n, dim, out);
	else
#endif
		dot_c(q, x, n, dim, out);
}

static void
k_sq(int isa, int ip, const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t dim,
     const float *a, const float *s, float *out)
{
#if IVF_X86
	if (isa == ISA_AVX512)
		sq512(ip, codes, idx, n, dim, a, s, out);
	else if (isa == ISA_AVX2)
		sq256(ip, codes, idx, n, dim, a, s, out);
	else
#endif
		sq_c(ip, codes, idx, n, dim, a, s, out);
}

static void
k_pq(int isa, const uint8_t *codes, const uint32_t *idx, size_t n, uint32_t m, const float *lut,
     float *out)
{
#if IVF_X86
	if (isa == ISA_AVX512 && m >= 4)
		pq512(codes, idx, n, m, lut, out);
	else if (isa == ISA_AVX2 && m >= 4)
		pq256(codes, idx, n, m, lut, out);
	else
#endif
		pq_c(codes, idx, n, m, lut, out);
}

static void
k_lut(int isa, const float *q, uint32_t dim, uint32_t dsub, const float *cbt, float *lut)
{
#if IVF_X86
	if (isa == ISA_AVX512)
		lut512(q, dim, dsub, cbt, lut);
	else if (isa == ISA_AVX2)
		lut256(q, dim, dsub, cbt, lut);
	else
#endif
		lut_c(q, dim, dsub, cbt, lut);
}

/* ---- building ---- */

struct build {
	const float *vec;
	uint64_t n;
	uint32_t dim, nlist, m, dsub;
	int type, metric;
	const float *cent;
	const uint32_t *assign; /* row -> list */
	const uint32_t *rows; /* position -> row */
	/* codes */
	float *flat;
	uint8_t *codes;
	float *tmin, *tmax; /* SQ8: per thread, dim each */
	const float *sq_min, *sq_scale;
	float *cb; /* PQ codebook */
	float *pq_norm;
	/* PQ training */
	const uint32_t *srows;
	uint64_t ns;
	const float *sinv; /* cosine: 1/|x| of the sampled rows */
	atomic_uint next_sub, done_sub;
	index_progress_fn progress;
	void *parg;
	uint64_t pdone, ptotal;
	/* work */
	atomic_uint_fast64_t next;
	atomic_int failed;
	struct vdb_err err;
	pthread_mutex_t mu;
};

static void
build_fail(struct build *b, const struct vdb_err *e)
{
	pthread_mutex_lock(&b->mu);
	if (!atomic_load(&b->failed)) {
		b->err = *e;
		atomic_store(&b->failed, 1);
	}
	pthread_mutex_unlock(&b->mu);
}

static void
build_nomem(struct build *b)
{
	struct vdb_err e;

	vdb_err_set(&e, VDB_ETEMP, "out of memory");
	build_fail(b, &e);
}

/* inv_norm: 1 / |x|, 0 for a zero vector */
static float
inv_norm(const float *x, uint32_t dim)
{
	double s = 0;

	for (uint32_t t = 0; t < dim; t++)
		s += (double)x[t] * x[t];
	return s > 0 && isfinite(s) ? (float)(1 / sqrt(s)) : 0;
}

/* resid: r := x' - c for row, x' the vector or, for cosine, the vector
 * scaled to unit length; c its list's centroid */
static void
resid(const struct build *b, uint32_t row, float *r)
{
	const float *x = b->vec + (size_t)row * b->dim;
	const float *c = b->cent + (size_t)b->assign[row] * b->dim;

	if (b->metric == METRIC_COSINE) {
		float inv = inv_norm(x, b->dim);
		for (uint32_t t = 0; t < b->dim; t++)
			r[t] = x[t] * inv - c[t];
	} else {
		for (uint32_t t = 0; t < b->dim; t++)
			r[t] = x[t] - c[t];
	}
}

static void
progress_kmeans(void *arg, uint32_t it, uint32_t niter)
{
	struct build *b = arg;

	(void)niter;
	if (b->progress)
		b->progress(b->parg, it, b->ptotal);
}

static void
progress_step(struct build *b, uint64_t done)
{
	if (done > b->pdone) {
		b->pdone = done;
		if (b->progress)
			b->progress(b->parg, done, b->ptotal);
	}
}

static void
copy_flat(void *arg, int t)
{
	struct build *b = arg;
	uint64_t p0;

	(void)t;
	while ((p0 = atomic_fetch_add(&b->next, EB)) < b->n) {
		uint64_t p1 = p0 + EB < b->n ? p0 + EB : b->n;
		for (uint64_t p = p0; p < p1; p++)
			memcpy(b->flat + p * b->dim, b->vec + (size_t)b->rows[p] * b->dim,
			       (size_t)b->dim * sizeof(float));
	}
}

static void
sq_range(void *arg, int t)
{
	struct build *b = arg;
	float *mn = b->tmin + (size_t)t * b->dim, *mx = b->tmax + (size_t)t * b->dim;
	float *r = malloc((size_t)b->dim * sizeof(float));
	uint64_t p0;

	for (uint32_t s = 0; s < b->dim; s++) {
		mn[s] = INFINITY;
		mx[s] = -INFINITY;
	}
	if (r == NULL) {
		build_nomem(b);
		return;
	}
	while ((p0 = atomic_fetch_add(&b->next, EB)) < b->n) {
		uint64_t p1 = p0 + EB < b->n ? p0 + EB : b->n;
		for (uint64_t p = p0; p < p1; p++) {
			resid(b, b->rows[p], r);
			for (uint32_t s = 0; s < b->dim; s++) {
				mn[s] = r[s] < mn[s] ? r[s] : mn[s];
				mx[s] = r[s] > mx[s] ? r[s] : mx[s];
			}
		}
	}
	free(r);
}

/* sq_code: formats/index.md, "IVF_SQ8": the nearest of the 256 levels,
 * clamped; NaN goes to 0 */
static uint8_t
sq_code(float r, float mn, float scale)
{
	float v;

	if (!(scale > 0))
		return 0;
	v = (r - mn) / scale + 0.5f;
	return v >= 255 ? 255 : v >= 1 ? (uint8_t)v : 0;
}

static void
sq_encode(void *arg, int t)
{
	struct build *b = arg;
	float *r = malloc((size_t)b->dim * sizeof(float));
	uint64_t p0;

	(void)t;
	if (r == NULL) {
		build_nomem(b);
		return;
	}
	while ((p0 = atomic_fetch_add(&b->next, EB)) < b->n) {
		uint64_t p1 = p0 + EB < b->n ? p0 + EB : b->n;
		for (uint64_t p = p0; p < p1; p++) {
			uint8_t *c = b->codes + p * b->dim;
			resid(b, b->rows[p], r);
			for (uint32_t s = 0; s < b->dim; s++)
				c[s] = sq_code(r[s], b->sq_min[s], b->sq_scale[s]);
		}
	}
	free(r);
}

/* pq_train_sub: sub-quantizer j's codebook from the sampled residuals */
static int
pq_train_sub(struct build *b, uint32_t j, int threads, float *buf, float *cb, struct vdb_err *e)
{
	struct kmeans_opt o = {.niter = PQ_NITER,
	                       .max_per_centroid = PER_CENTROID,
	                       .seed = SEED + 1 + j,
	                       .threads = threads};
	uint32_t off = j * b->dsub;

	for (uint64_t i = 0; i < b->ns; i++) {
		uint32_t row = b->srows[i];
		const float *x = b->vec + (size_t)row * b->dim + off;
		const float *c = b->cent + (size_t)b->assign[row] * b->dim + off;
		float *o_ = buf + i * b->dsub;
		float inv = b->metric == METRIC_COSINE ? b->sinv[i] : 1;
		for (uint32_t t = 0; t < b->dsub; t++)
			o_[t] = b->metric == METRIC_COSINE ? x[t] * inv - c[t] : x[t] - c[t];
	}
	return kmeans_train(buf, NULL, b->ns, b->dsub, PQ_K, &o, cb + (size_t)j * PQ_K * b->dsub,
	                    e);
}

static void
pq_train_part(void *arg, int t)
{
	struct build *b = arg;
	float *buf = malloc((b->ns ? b->ns : 1) * b->dsub * sizeof(float));
	struct vdb_err e;
	unsigned j;

	if (buf == NULL) {
		build_nomem(b);
		return;
	}
	while ((j = atomic_fetch_add(&b->next_sub, 1)) < b->m && !atomic_load(&b->failed)) {
		if (pq_train_sub(b, j, 1, buf, b->cb, &e) != VDB_OK) {
			build_fail(b, &e);
			break;
		}
		atomic_fetch_add(&b->done_sub, 1);
		/* only the building thread reports */
		if (t == 0)
			progress_step(b, COARSE_NITER + 1 + atomic_load(&b->done_sub));
	}
	free(buf);
}

static void
pq_encode(void *arg, int t)
{
	struct build *b = arg;
	uint32_t dim = b->dim, dsub = b->dsub, m = b->m;
	float *r = malloc((size_t)EB * dim * sizeof(float));
	float *sub = malloc((size_t)EB * dsub * sizeof(float));
	uint32_t *a = malloc(EB * sizeof(uint32_t));
	struct vdb_err e;
	uint64_t p0;

	(void)t;
	if (r == NULL || sub == NULL || a == NULL) {
		build_nomem(b);
		goto out;
	}
	while ((p0 = atomic_fetch_add(&b->next, EB)) < b->n && !atomic_load(&b->failed)) {
		size_t nb = b->n - p0 < EB ? (size_t)(b->n - p0) : EB;
		for (size_t i = 0; i < nb; i++)
			resid(b, b->rows[p0 + i], r + i * dim);
		for (uint32_t j = 0; j < m; j++) {
			const float *cbj = b->cb + (size_t)j * PQ_K * dsub;
			for (size_t i = 0; i < nb; i++)
				memcpy(sub + i * dsub, r + i * dim + j * dsub,
				       dsub * sizeof(float));
			if (kmeans_assign(sub, NULL, nb, dsub, cbj, PQ_K, 0, 1, a, &e) != VDB_OK) {
				build_fail(b, &e);
				goto out;
			}
			for (size_t i = 0; i < nb; i++)
				b->codes[(p0 + i) * m + j] = (uint8_t)a[i];
		}
		if (b->pq_norm == NULL)
			continue;
		for (size_t i = 0; i < nb; i++) {
			const uint8_t *c = b->codes + (p0 + i) * m;
			const float *ce = b->cent + (size_t)b->assign[b->rows[p0 + i]] * dim;
			double s = 0;
			for (uint32_t j = 0; j < m; j++) {
				const float *w = b->cb + ((size_t)j * PQ_K + c[j]) * dsub;
				for (uint32_t u = 0; u < dsub; u++)
					s += (double)w[u] * ((double)w[u] + 2.0 * ce[j * dsub + u]);
			}
			b->pq_norm[p0 + i] = (float)s;
		}
	}
out:
	free(r);
	free(sub);
	free(a);
}

static void *
add_sec(struct ivf_built *out, uint32_t id, uint64_t len)
{
	void *p = malloc(len ? len : 1);

	if (p == NULL)
		return NULL;
	out->mem[out->nsec] = p;
	out->sec[out->nsec++] = (struct index_sec){id, p, len};
	return p;
}

/* over_rows: fn on threads threads, taking rows from the shared counter
 * from row 0; a worker's failure is the error */
static int
over_rows(struct build *b, int threads, void (*fn)(void *, int), struct vdb_err *e)
{
	atomic_store(&b->next, 0);
	par_run(threads, fn, b);
	if (atomic_load(&b->failed))
		return vdb_err_set(e, b->err.rc, "%s", b->err.msg);
	return VDB_OK;
}

static int
build_sq8(struct build *b, int threads, struct ivf_built *out, struct vdb_err *e)
{
	uint32_t dim = b->dim;
	float *mn = add_sec(out, IVF_SEC_SQ_MIN, (uint64_t)dim * 4);
	float *sc = add_sec(out, IVF_SEC_SQ_SCALE, (uint64_t)dim * 4);
	int nt = threads, rc;

	if (mn == NULL || sc == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	b->tmin = malloc((size_t)nt * dim * sizeof(float));
	b->tmax = malloc((size_t)nt * dim * sizeof(float));
	if (b->tmin == NULL || b->tmax == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	if ((rc = over_rows(b, nt, sq_range, e)) != VDB_OK)
		return rc;
	for (uint32_t s = 0; s < dim; s++) {
		float lo = INFINITY, hi = -INFINITY;
		for (int t = 0; t < nt; t++) {
			lo = b->tmin[(size_t)t * dim + s] < lo ? b->tmin[(size_t)t * dim + s] : lo;
			hi = b->tmax[(size_t)t * dim + s] > hi ? b->tmax[(size_t)t * dim + s] : hi;
		}
		if (!(lo <= hi))
			lo = hi = 0; /* no rows */
		/* +0 for either zero: which one a thread met first depends on
		 * the schedule, and the bytes must not */
		lo += 0.0f;
		hi += 0.0f;
		mn[s] = lo;
		/* in double: max - min cannot overflow there */
		sc[s] = (float)(((double)hi - (double)lo) / 255.0);
	}
	b->sq_min = mn;
	b->sq_scale = sc;
	return over_rows(b, threads, sq_encode, e);
}

static int
build_pq(struct build *b, int threads, struct ivf_built *out, struct vdb_err *e)
{
	uint64_t ns = b->n < (uint64_t)PQ_K * PER_CENTROID ? b->n : (uint64_t)PQ_K * PER_CENTROID;
	uint32_t *srows = malloc((ns ? ns : 1) * sizeof(uint32_t));
	float *sinv = NULL, *cb;
	int rc = VDB_OK;

	cb = add_sec(out, IVF_SEC_PQ_CODEBOOK, (uint64_t)PQ_K * b->dim * 4);
	if (srows == NULL || cb == NULL)
		goto nomem;
	kmeans_sample(b->n, ns, SEED, srows);
	b->srows = srows;
	b->ns = ns;
	b->cb = cb;
	if (b->metric == METRIC_COSINE) {
		if ((sinv = malloc((ns ? ns : 1) * sizeof(float))) == NULL)
			goto nomem;
		for (uint64_t i = 0; i < ns; i++)
			sinv[i] = inv_norm(b->vec + (size_t)srows[i] * b->dim, b->dim);
		b->sinv = sinv;
	}
	if (b->m >= (uint32_t)threads || threads == 1) {
		/* sub-quantizers side by side, one thread each */
		atomic_init(&b->next_sub, 0);
		atomic_init(&b->done_sub, 0);
		par_run(threads, pq_train_part, b);
		if (atomic_load(&b->failed)) {
			rc = vdb_err_set(e, b->err.rc, "%s", b->err.msg);
			goto out;
		}
	} else {
		float *buf = malloc((ns ? ns : 1) * b->dsub * sizeof(float));
		if (buf == NULL)
			goto nomem;
		for (uint32_t j = 0; j < b->m && rc == VDB_OK; j++)
			rc = pq_train_sub(b, j, threads, buf, cb, e);
		free(buf);
		if (rc != VDB_OK)
			goto out;
	}
	progress_step(b, COARSE_NITER + 1 + b->m);
	free(srows);
	srows = NULL;
	free(sinv);
	sinv = NULL;
	b->srows = NULL;
	b->sinv = NULL;
	if (b->metric == METRIC_L2 &&
	    (b->pq_norm = add_sec(out, IVF_SEC_PQ_NORM, b->n * sizeof(float))) == NULL)
		goto nomem;
	rc = over_rows(b, threads, pq_encode, e);
	goto out;
nomem:
	rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
out:
	free(srows);
	free(sinv);
	return rc;
}

int
ivf_build(const float *vec, uint64_t n, uint32_t dim, int metric, const struct index_spec *spec,
          int threads, index_progress_fn progress, void *parg, struct ivf_built *out,
          struct vdb_err *e)
{
	struct build b = {.vec = vec,
	                  .n = n,
	                  .dim = dim,
	                  .type = spec->type,
	                  .metric = metric,
	                  .progress = progress,
	                  .parg = parg};
	struct kmeans_opt ko = {.niter = COARSE_NITER,
	                        .max_per_centroid = PER_CENTROID,
	                        .spherical = metric == METRIC_COSINE,
	                        .seed = SEED,
	                        .progress = progress_kmeans,
	                        .parg = &b};
	uint32_t *assign = NULL, nlist;
	uint64_t *off, *fill = NULL;
	uint32_t *rows;
	float *cent;
	int rc = VDB_OK;

	memset(out, 0, sizeof *out);
	if (threads < 1)
		threads = 1;
	ko.threads = threads;
	if (spec->type < IDX_IVF_FLAT || spec->type > IDX_IVF_PQ)
		return vdb_err_set(e, VDB_EINTERNAL, "ivf_build: index type %d", spec->type);
	if (metric != METRIC_L2 && metric != METRIC_IP && metric != METRIC_COSINE)
		return vdb_err_set(e, VDB_EINTERNAL, "ivf_build: metric %d", metric);
	if (dim == 0 || dim > VDB_MAX_DIM || n > SEG_MAX_ROWS)
		return vdb_err_set(e, VDB_EINTERNAL, "ivf_build: %llu x %u vectors",
		                   (unsigned long long)n, dim);
	if (spec->nlist == 0 || spec->nlist > IVF_MAX_NLIST)
		return vdb_err_set(e, VDB_EINTERNAL, "ivf_build: nlist %u (spec not resolved?)",
		                   spec->nlist);
	if (spec->type == IDX_IVF_PQ && (spec->pq_m == 0 || dim % spec->pq_m != 0))
		return vdb_err_set(e, VDB_EINPUT, "m=%u does not divide the dimension %u",
		                   spec->pq_m, dim);
	/* more lists than rows would only be empty */
	nlist = (uint64_t)spec->nlist > (n ? n : 1) ? (uint32_t)(n ? n : 1) : spec->nlist;
	b.nlist = nlist;
	b.m = spec->type == IDX_IVF_PQ ? spec->pq_m : 0;
	b.dsub = b.m ? dim / b.m : 0;
	b.ptotal = COARSE_NITER + 2 + b.m;
	atomic_init(&b.next, 0);
	atomic_init(&b.failed, 0);
	pthread_mutex_init(&b.mu, NULL);

	cent = add_sec(out, IVF_SEC_CENTROIDS, (uint64_t)nlist * dim * 4);
	off = add_sec(out, IVF_SEC_LIST_OFF, ((uint64_t)nlist + 1) * 8);
	rows = add_sec(out, IVF_SEC_LIST_ROWS, n * 4);
	assign = malloc((n ? n : 1) * sizeof(uint32_t));
	fill = malloc((size_t)nlist * sizeof(uint64_t));
	if (cent == NULL || off == NULL || rows == NULL || assign == NULL || fill == NULL)
		goto nomem;
	if ((rc = kmeans_train(vec, NULL, n, dim, nlist, &ko, cent, e)) != VDB_OK)
		goto out;
	progress_step(&b, COARSE_NITER);
	if ((rc = kmeans_assign(vec, NULL, n, dim, cent, nlist, ko.spherical, threads, assign,
	                        e)) != VDB_OK)
		goto out;
	/* lists in order, each list's rows increasing */
	memset(off, 0, ((size_t)nlist + 1) * 8);
	for (uint64_t i = 0; i < n; i++)
		off[assign[i] + 1]++;
	for (uint32_t l = 0; l < nlist; l++) {
		off[l + 1] += off[l];
		fill[l] = off[l];
	}
	for (uint64_t i = 0; i < n; i++)
		rows[fill[assign[i]]++] = (uint32_t)i;
	free(fill);
	fill = NULL;
	progress_step(&b, COARSE_NITER + 1);
	b.cent = cent;
	b.assign = assign;
	b.rows = rows;
	switch (spec->type) {
	case IDX_IVF_FLAT:
		if ((b.flat = add_sec(out, IVF_SEC_CODES, n * dim * 4)) == NULL)
			goto nomem;
		rc = over_rows(&b, threads, copy_flat, e);
		break;
	case IDX_IVF_SQ8:
		if ((b.codes = add_sec(out, IVF_SEC_CODES, n * dim)) == NULL)
			goto nomem;
		rc = build_sq8(&b, threads, out, e);
		break;
	case IDX_IVF_PQ:
		if ((b.codes = add_sec(out, IVF_SEC_CODES, n * b.m)) == NULL)
			goto nomem;
		rc = build_pq(&b, threads, out, e);
		break;
	}
	if (rc != VDB_OK)
		goto out;
	progress_step(&b, b.ptotal);
	out->param[0] = nlist;
	if (spec->type == IDX_IVF_PQ) {
		out->param[1] = b.m;
		out->param[2] = 8;
	}
	goto out;
nomem:
	rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
out:
	free(assign);
	free(fill);
	free(b.tmin);
	free(b.tmax);
	pthread_mutex_destroy(&b.mu);
	if (rc != VDB_OK)
		ivf_built_free(out);
	return rc;
}

void
ivf_built_free(struct ivf_built *b)
{
	for (size_t i = 0; i < b->nsec; i++)
		free(b->mem[i]);
	memset(b, 0, sizeof *b);
}

/* ---- opening ---- */

static int
corrupt(struct vdb_err *e, const char *what)
{
	return vdb_err_set(e, VDB_ECORRUPT, "%s", what);
}

static uint64_t
code_size(int type, uint32_t dim, uint32_t m)
{
	return type == IDX_IVF_FLAT ? (uint64_t)dim * 4 : type == IDX_IVF_SQ8 ? dim : m;
}

/* ivf_section: section id of exactly len bytes, aligned for its elements
 * (index_open_mem's caller chooses the buffer) */
static int
ivf_section(const struct index_file *f, uint32_t id, uint64_t len, size_t align, const void **p,
            struct vdb_err *e)
{
	*p = index_section(f, id, len, NULL);
	if (*p == NULL)
		return vdb_err_set(e, VDB_ECORRUPT, "section %u missing or of the wrong size", id);
	if ((uintptr_t)*p % align)
		return vdb_err_set(e, VDB_EINTERNAL, "section %u misaligned in memory", id);
	return VDB_OK;
}

int
ivf_open(const struct index_file *f, struct ivf *v, struct vdb_err *e)
{
	const struct index_hdr *h = &f->h;
	uint32_t nlist = h->param[0], m = 0, nsec = 4;
	uint64_t rows = h->rows, dim = h->dim;
	const void *p[8];
	int rc;

	memset(v, 0, sizeof *v);
	if (h->type < IDX_IVF_FLAT || h->type > IDX_IVF_PQ)
		return corrupt(e, "not an IVF index");
	if (h->metric != METRIC_L2 && h->metric != METRIC_IP && h->metric != METRIC_COSINE)
		return corrupt(e, "unknown metric in header");
	if (dim == 0 || dim > VDB_MAX_DIM || rows > SEG_MAX_ROWS)
		return corrupt(e, "bad dimension or row count in header");
	if (nlist == 0 || nlist > IVF_MAX_NLIST || nlist > (rows ? rows : 1))
		return corrupt(e, "bad nlist in header");
	if (h->type == IDX_IVF_PQ) {
		m = h->param[1];
		if (m == 0 || dim % m != 0 || h->param[2] != 8)
			return corrupt(e, "bad PQ parameters in header");
	} else if (h->param[1] || h->param[2]) {
		return corrupt(e, "PQ parameters in the header of another type");
	}
	for (int i = 3; i < IDX_NPARAM; i++)
		if (h->param[i])
			return corrupt(e, "unknown parameter in header");
	if (h->type == IDX_IVF_SQ8)
		nsec = 6;
	if (h->type == IDX_IVF_PQ)
		nsec = h->metric == METRIC_L2 ? 6 : 5;
	if (f->nsec != nsec)
		return corrupt(e, "wrong number of sections for the index type");
	if ((rc = ivf_section(f, IVF_SEC_CENTROIDS, nlist * dim * 4, 4, &p[0], e)) ||
	    (rc = ivf_section(f, IVF_SEC_LIST_OFF, ((uint64_t)nlist + 1) * 8, 8, &p[1], e)) ||
	    (rc = ivf_section(f, IVF_SEC_LIST_ROWS, rows * 4, 4, &p[2], e)) ||
	    (rc = ivf_section(f, IVF_SEC_CODES, rows * code_size((int)h->type, h->dim, m), 1, &p[3],
	                      e)))
		return rc;
	if (h->type == IDX_IVF_SQ8 &&
	    ((rc = ivf_section(f, IVF_SEC_SQ_MIN, dim * 4, 4, &p[4], e)) ||
	     (rc = ivf_section(f, IVF_SEC_SQ_SCALE, dim * 4, 4, &p[5], e))))
		return rc;
	if (h->type == IDX_IVF_PQ &&
	    ((rc = ivf_section(f, IVF_SEC_PQ_CODEBOOK, PQ_K * dim * 4, 4, &p[6], e)) ||
	     (h->metric == METRIC_L2 &&
	      (rc = ivf_section(f, IVF_SEC_PQ_NORM, rows * 4, 4, &p[7], e)))))
		return rc;
	v->list_off = p[1];
	if (v->list_off[0] != 0 || v->list_off[nlist] != rows)
		return corrupt(e, "list offsets do not span the rows");
	for (uint32_t l = 0; l < nlist; l++)
		if (v->list_off[l] > v->list_off[l + 1])
			return corrupt(e, "list offsets out of order");
	v->type = (int)h->type;
	v->metric = (int)h->metric;
	v->dim = h->dim;
	v->nlist = nlist;
	v->pq_m = m;
	v->rows = rows;
	v->centroids = p[0];
	v->list_rows = p[2];
	v->codes = p[3];
	if (h->type == IDX_IVF_SQ8) {
		v->sq_min = p[4];
		v->sq_scale = p[5];
	}
	if (h->type == IDX_IVF_PQ) {
		v->pq_codebook = p[6];
		if (h->metric == METRIC_L2)
			v->pq_norm = p[7];
	}
	return VDB_OK;
}

static int
all_finite(const float *x, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return 0;
	return 1;
}

int
ivf_check(const struct ivf *v, struct vdb_err *e)
{
	uint8_t *seen = calloc(v->rows / 8 + 1, 1);
	int rc = VDB_OK;

	if (seen == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	for (uint32_t l = 0; l < v->nlist && rc == VDB_OK; l++) {
		for (uint64_t p = v->list_off[l]; p < v->list_off[l + 1]; p++) {
			uint32_t r = v->list_rows[p];
			if (r >= v->rows) {
				rc = vdb_err_set(e, VDB_ECORRUPT, "list %u: row %u out of range", l,
				                 r);
				break;
			}
			if (seen[r / 8] & (1u << (r % 8))) {
				rc = vdb_err_set(e, VDB_ECORRUPT, "row %u in more than one list",
				                 r);
				break;
			}
			if (p > v->list_off[l] && r <= v->list_rows[p - 1]) {
				rc = vdb_err_set(e, VDB_ECORRUPT, "list %u: rows out of order", l);
				break;
			}
			seen[r / 8] |= (uint8_t)(1u << (r % 8));
		}
	}
	free(seen);
	if (rc != VDB_OK)
		return rc;
	/* offsets end at rows (ivf_open), so with no repeats every row is in
	 * exactly one list */
	if (!all_finite(v->centroids, (uint64_t)v->nlist * v->dim))
		return corrupt(e, "a centroid is not finite");
	if (v->type == IDX_IVF_SQ8) {
		if (!all_finite(v->sq_min, v->dim) || !all_finite(v->sq_scale, v->dim))
			return corrupt(e, "SQ8 range not finite");
		for (uint32_t t = 0; t < v->dim; t++)
			if (v->sq_scale[t] < 0)
				return corrupt(e, "SQ8 scale negative");
	}
	if (v->type == IDX_IVF_PQ && !all_finite(v->pq_codebook, (uint64_t)PQ_K * v->dim))
		return corrupt(e, "PQ codebook not finite");
	if (v->pq_norm && !all_finite(v->pq_norm, v->rows))
		return corrupt(e, "PQ norms not finite");
	return VDB_OK;
}

/* ---- searching ---- */

/* The defaults, measured on TEXMEX siftsmall (nlist 256, lists of 39
 * rows) and on 500k and 1M clustered 128-d sets (nlist 2832, 4000):
 * nprobe = sqrt(nlist) reads 16 lists for a recall@10 of 0.97 on
 * siftsmall, 64 for 0.9996 on the 1M set (32: 0.992).  SQ8 keeps the
 * recall of IVF_FLAT from refine 2 on; PQ (4 components a byte) needs
 * about 10 there (6: 0.990 where IVF_FLAT has 0.992), and the k * refine
 * exact distances cost little beside the scan. */
uint32_t
ivf_default_nprobe(const struct ivf *v)
{
	uint32_t p = 1;

	while ((uint64_t)p * p < v->nlist)
		p++;
	return p > v->nlist ? v->nlist : p;
}

uint32_t
ivf_default_refine(const struct ivf *v)
{
	return v->type == IDX_IVF_PQ ? 10 : v->type == IDX_IVF_SQ8 ? 3 : 1;
}

struct hit {
	float key;
	uint32_t row;
};

static inline int
better(struct hit a, struct hit b)
{
	return a.key < b.key || (a.key == b.key && a.row < b.row);
}

static int
hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;

	return better(*x, *y) ? -1 : better(*y, *x) ? 1 : 0;
}

/* select_k: v[0 .. k) := the k best of v[0 .. n), k <= n, in any order
 * (quickselect: hits are distinct, rows being distinct) */
static void
select_k(struct hit *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n; /* the k-th best is in [lo, hi) */

	for (;;) {
		if (hi - lo <= 16) {
			/* insertion sort: also what keeps the partition below
			 * from meeting a range its pivot cannot split */
			for (size_t i = lo + 1; i < hi; i++) {
				struct hit x = v[i];
				size_t j = i;
				for (; j > lo && better(x, v[j - 1]); j--)
					v[j] = v[j - 1];
				v[j] = x;
			}
			return;
		}
		size_t mid = lo + (hi - lo) / 2, i = lo, j = hi - 1;
		struct hit p, t;
		/* median of three as the pivot */
		if (better(v[mid], v[lo])) {
			t = v[mid];
			v[mid] = v[lo];
			v[lo] = t;
		}
		if (better(v[j], v[lo])) {
			t = v[j];
			v[j] = v[lo];
			v[lo] = t;
		}
		if (better(v[j], v[mid])) {
			t = v[j];
			v[j] = v[mid];
			v[mid] = t;
		}
		p = v[mid];
		for (;;) {
			while (better(v[i], p))
				i++;
			while (better(p, v[j]))
				j--;
			if (i >= j)
				break;
			t = v[i];
			v[i] = v[j];
			v[j] = t;
			i++;
			j--;
		}
		/* now v[lo .. j] <= p <= v[j + 1 .. hi) */
		if (k - 1 <= j)
			hi = j + 1;
		else
			lo = j + 1;
	}
}

/* The best cap hits seen: they gather in v (room for 2 cap) and are cut
 * back to the best cap when it fills, which costs less than a heap when
 * most offers are kept, early in a scan; bound is then the worst kept,
 * and a hit beyond it cannot get in. */
struct topk {
	struct hit *v;
	size_t n, cap;
	float bound;
};

static void
topk_init(struct topk *t, struct hit *v, size_t cap)
{
	t->v = v;
	t->n = 0;
	t->cap = cap;
	t->bound = INFINITY;
}

static void
topk_cut(struct topk *t)
{
	if (t->n <= t->cap)
		return;
	select_k(t->v, t->n, t->cap);
	t->n = t->cap;
	t->bound = t->v[0].key;
	for (size_t i = 1; i < t->n; i++)
		if (t->v[i].key > t->bound)
			t->bound = t->v[i].key;
}

static inline void
topk_add(struct topk *t, float key, uint32_t row)
{
	t->v[t->n++] = (struct hit){key, row};
	if (t->n == 2 * t->cap)
		topk_cut(t);
}

/* topk_done: the best cap, best first */
static void
topk_done(struct topk *t)
{
	topk_cut(t);
	qsort(t->v, t->n, sizeof *t->v, hit_cmp);
}

struct ivf_scratch {
	uint32_t dim, nlist, m, dimp;
	float *cd; /* nlist: the query's inner product with each centroid */
	float *cn; /* nlist: |c|^2 */
	struct hit *probe; /* 2 nlist */
	struct hit *cand;
	size_t cand_cap; /* 2 * the most candidates kept so far */
	uint32_t *crow; /* cand_cap / 2: refine's rows */
	float *cex; /* cand_cap / 2: and their exact distances */
	float *d; /* CH */
	uint32_t *sel, *pos; /* CH */
	float *qp, *qa, *qs; /* dimp: the query, and the SQ8 tables */
	float *lut; /* PQ: m * 256 */
	float *cbt; /* PQ: the codebook transposed, dim * 256 */
};

struct ivf_scratch *
ivf_scratch_new(const struct ivf *v)
{
	struct ivf_scratch *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->dim = v->dim;
	s->nlist = v->nlist;
	s->m = v->pq_m;
	s->dimp = (uint32_t)pad16(v->dim);
	s->cd = malloc((size_t)v->nlist * sizeof(float));
	s->cn = malloc((size_t)v->nlist * sizeof(float));
	s->probe = malloc(2 * (size_t)v->nlist * sizeof(struct hit));
	s->d = malloc(CH * sizeof(float));
	s->sel = malloc(CH * sizeof(uint32_t));
	s->pos = malloc(CH * sizeof(uint32_t));
	s->qp = calloc(s->dimp, sizeof(float));
	s->qa = calloc(s->dimp, sizeof(float));
	s->qs = calloc(s->dimp, sizeof(float));
	if (s->cd == NULL || s->cn == NULL || s->probe == NULL || s->d == NULL || s->sel == NULL ||
	    s->pos == NULL || s->qp == NULL || s->qa == NULL || s->qs == NULL)
		goto fail;
	for (uint32_t l = 0; l < v->nlist; l++) {
		const float *c = v->centroids + (size_t)l * v->dim;
		double nn = 0;
		for (uint32_t t = 0; t < v->dim; t++)
			nn += (double)c[t] * c[t];
		s->cn[l] = (float)nn;
	}
	if (v->type == IDX_IVF_PQ) {
		uint32_t dsub = v->dim / v->pq_m;
		s->lut = malloc((size_t)v->pq_m * PQ_K * sizeof(float));
		s->cbt = malloc((size_t)v->dim * PQ_K * sizeof(float));
		if (s->lut == NULL || s->cbt == NULL)
			goto fail;
		/* a table's lanes are codewords: component t of 16 of them
		 * side by side */
		for (uint32_t j = 0; j < v->pq_m; j++)
			for (uint32_t k = 0; k < PQ_K; k++)
				for (uint32_t t = 0; t < dsub; t++)
					s->cbt[(size_t)(j * dsub + t) * PQ_K + k] =
					        v->pq_codebook[((size_t)j * PQ_K + k) * dsub + t];
	}
	return s;
fail:
	ivf_scratch_free(s);
	return NULL;
}

void
ivf_scratch_free(struct ivf_scratch *s)
{
	if (s == NULL)
		return;
	free(s->cd);
	free(s->cn);
	free(s->probe);
	free(s->cand);
	free(s->crow);
	free(s->cex);
	free(s->d);
	free(s->sel);
	free(s->pos);
	free(s->qp);
	free(s->qa);
	free(s->qs);
	free(s->lut);
	free(s->cbt);
	free(s);
}

static int
scratch_cand(struct ivf_scratch *s, size_t cap)
{
	struct hit *h;
	uint32_t *r;
	float *x;

	if (2 * cap <= s->cand_cap)
		return 0;
	if ((h = realloc(s->cand, 2 * cap * sizeof *h)) == NULL)
		return -1;
	s->cand = h;
	if ((r = realloc(s->crow, cap * sizeof *r)) == NULL)
		return -1;
	s->crow = r;
	if ((x = realloc(s->cex, cap * sizeof *x)) == NULL)
		return -1;
	s->cex = x;
	s->cand_cap = 2 * cap;
	return 0;
}

/* the state of one query's search */
struct scan {
	const struct ivf *v;
	struct ivf_scratch *s;
	const float *q;
	const uint8_t *allow;
	int isa, neg;
	struct topk top;
	float qq; /* |q|^2 */
	float qm; /* SQ8, IP and cosine: q . sq_min */
};

/* scan_keys: s->d[i] := the key of the i-th of n positions from p0 of
 * list l (idx: those positions' offsets from p0, or NULL: all) */
static void
scan_keys(struct scan *c, uint32_t l, uint64_t p0, const uint32_t *idx, size_t n)
{
	const struct ivf *v = c->v;
	struct ivf_scratch *s = c->s;
	uint32_t dim = v->dim;
	float *d = s->d;

	switch (v->type) {
	case IDX_IVF_FLAT: {
		const float *x = (const float *)v->codes + p0 * dim;
		if (idx)
			dist_rows(v->metric, c->q, 1, x, idx, n, dim, d);
		else
			dist_block(v->metric, c->q, 1, x, n, dim, d);
		if (c->neg)
			for (size_t i = 0; i < n; i++)
				d[i] = -d[i];
		break;
	}
	case IDX_IVF_SQ8: {
		int ip = v->metric != METRIC_L2;
		k_sq(c->isa, ip, v->codes + p0 * dim, idx, n, dim, s->qa, s->qs, d);
		if (ip) {
			float base = s->cd[l] + c->qm;
			for (size_t i = 0; i < n; i++)
				d[i] = -(base + d[i]);
		}
		break;
	}
	case IDX_IVF_PQ: {
		float base = s->cd[l];
		k_pq(c->isa, v->codes + p0 * v->pq_m, idx, n, v->pq_m, s->lut, d);
		if (v->metric == METRIC_L2) {
			/* |q - c|^2 */
			const float *nr = v->pq_norm + p0;
			base = c->qq + (s->cn[l] - 2 * base);
			if (idx)
				for (size_t i = 0; i < n; i++)
					d[i] = base + (nr[idx[i]] + d[i]);
			else
				for (size_t i = 0; i < n; i++)
					d[i] = base + (nr[i] + d[i]);
		} else {
			for (size_t i = 0; i < n; i++)
				d[i] = -(base + d[i]);
		}
		break;
	}
	}
}

/* list_prepare: what a list's scan needs beyond the query's tables */
static void
list_prepare(struct scan *c, uint32_t l)
{
	const struct ivf *v = c->v;
	struct ivf_scratch *s = c->s;

	if (v->type == IDX_IVF_SQ8 && v->metric == METRIC_L2) {
		const float *ce = v->centroids + (size_t)l * v->dim;
		for (uint32_t t = 0; t < v->dim; t++)
			s->qa[t] = (c->q[t] - ce[t]) - v->sq_min[t];
	}
}

/* query_prepare: the query's own tables (qa, qs padded with zeros: the
 * kernels read whole registers) */
static void
query_prepare(struct scan *c)
{
	const struct ivf *v = c->v;
	struct ivf_scratch *s = c->s;
	uint32_t dim = v->dim;
	double qq = 0;

	for (uint32_t t = 0; t < dim; t++)
		qq += (double)c->q[t] * c->q[t];
	c->qq = (float)qq;
	if (v->type == IDX_IVF_SQ8) {
		if (v->metric == METRIC_L2) {
			memcpy(s->qs, v->sq_scale, dim * sizeof(float));
		} else {
			double qm = 0;
			for (uint32_t t = 0; t < dim; t++) {
				s->qs[t] = c->q[t] * v->sq_scale[t];
				qm += (double)c->q[t] * v->sq_min[t];
			}
			c->qm = (float)qm;
		}
	}
	if (v->type == IDX_IVF_PQ) {
		k_lut(c->isa, c->q, dim, dim / v->pq_m, s->cbt, s->lut);
		if (v->metric == METRIC_L2)
			for (uint32_t i = 0; i < v->pq_m * PQ_K; i++)
				s->lut[i] *= -2;
	}
}

static int
scan_list(struct scan *c, uint32_t l, struct vdb_err *e)
{
	const struct ivf *v = c->v;
	struct ivf_scratch *s = c->s;
	uint64_t a = v->list_off[l], b = v->list_off[l + 1];

	list_prepare(c, l);
	for (uint64_t p0 = a; p0 < b; p0 += CH) {
		size_t n = b - p0 < CH ? (size_t)(b - p0) : CH, np = n, nsel;
		const uint32_t *lr = v->list_rows + p0, *idx = NULL;

		if (c->allow) {
			np = 0;
			for (size_t i = 0; i < n; i++) {
				uint32_t r = lr[i];
				if (r >= v->rows)
					goto bad;
				if (c->allow[r])
					s->pos[np++] = (uint32_t)i;
			}
			if (np == 0)
				continue;
			idx = s->pos;
		}
		scan_keys(c, l, p0, idx, np);
		nsel = dist_select(s->d, np, 0, c->top.bound, s->sel);
		for (size_t t = 0; t < nsel; t++) {
			size_t i = s->sel[t];
			uint32_t r = lr[idx ? idx[i] : i];
			/* the bound may have tightened since the selection */
			if (!(s->d[i] <= c->top.bound))
				continue;
			if (r >= v->rows)
				goto bad;
			topk_add(&c->top, s->d[i], r);
		}
	}
	return 0;
bad:
	return vdb_err_set(e, VDB_ECORRUPT, "list %u: row out of range", l);
}

int
ivf_search(const struct ivf *v, const float *vec, const float *q, uint32_t k, uint32_t nprobe,
           uint32_t refine, const uint8_t *allow, struct ivf_scratch *s, struct ann_hit *out,
           uint32_t *nout, struct vdb_err *e)
{
	struct scan c = {.v = v, .s = s, .q = q, .allow = allow, .neg = v->metric != METRIC_L2};
	struct topk probe;
	size_t want, cap;
	int rc;

	*nout = 0;
	if (s->dim != v->dim || s->nlist != v->nlist || s->m != v->pq_m)
		return vdb_err_set(e, VDB_EINTERNAL, "ivf_search: scratch of another index");
	if (k == 0 || v->rows == 0)
		return VDB_OK;
	if (nprobe == 0)
		nprobe = ivf_default_nprobe(v);
	if (nprobe > v->nlist)
		nprobe = v->nlist;
	if (refine == 0)
		refine = ivf_default_refine(v);
	want = v->type == IDX_IVF_FLAT ? k : (size_t)k * refine;
	cap = want < v->rows ? want : (size_t)v->rows;
	if (scratch_cand(s, cap) != 0)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	c.isa = isa_now();
	topk_init(&c.top, s->cand, cap);

	/* the lists: smallest L2 distance (|c|^2 - 2 q.c ranks as it
	 * does), or largest inner product with the centroid (for cosine a
	 * unit one: |q| does not change the order); ties to the smaller
	 * list */
	memcpy(s->qp, q, v->dim * sizeof(float));
	k_dot(c.isa, s->qp, v->centroids, v->nlist, v->dim, s->cd);
	topk_init(&probe, s->probe, nprobe);
	for (uint32_t l = 0; l < v->nlist; l++) {
		float key = c.neg ? -s->cd[l] : s->cn[l] - 2 * s->cd[l];
		if (key <= probe.bound)
			topk_add(&probe, key, l);
	}
	/* nearest lists first: the bound tightens sooner */
	topk_done(&probe);
	query_prepare(&c);
	for (size_t i = 0; i < probe.n; i++)
		if ((rc = scan_list(&c, probe.v[i].row, e)) != VDB_OK)
			return rc;
	topk_cut(&c.top);

	if (v->type != IDX_IVF_FLAT) {
		/* refine: exact distances for the candidates, the best k of
		 * them kept */
		size_t n = c.top.n;
		for (size_t i = 0; i < n; i++)
			s->crow[i] = c.top.v[i].row;
		dist_rows(v->metric, q, 1, vec, s->crow, n, v->dim, s->cex);
		topk_init(&c.top, s->cand, k < n ? k : n);
		for (size_t i = 0; i < n; i++) {
			float key = c.neg ? -s->cex[i] : s->cex[i];
			if (key <= c.top.bound) /* never NaN */
				topk_add(&c.top, key, s->crow[i]);
		}
	}
	topk_done(&c.top);
	for (size_t i = 0; i < c.top.n; i++)
		out[i] = (struct ann_hit){c.top.v[i].row, c.top.v[i].key};
	*nout = (uint32_t)c.top.n;
	return VDB_OK;
}
