/* distance.c: the distance kernels of exact search (distance.h).
 *
 * Summation order, the rule every kernel here follows so that a pair's
 * distance does not depend on what was computed beside it.  Per ISA, with
 * W lanes (16 for AVX-512, 8 for AVX2 and for plain C):
 *   - one accumulator of W lanes per (query, vector) pair, starting at +0;
 *   - d is consumed in chunks of W from element 0; lane j sees elements j,
 *     j + W, j + 2W, ... in that order; the last, partial chunk is read
 *     with the missing lanes as zeros (masked loads), which adds +0;
 *   - per element: L2 t = q - x, acc = fma(t, t, acc); IP and cosine
 *     acc = fma(q, x, acc); |x|^2 (cosine) xx = fma(x, x, xx).  Plain C
 *     multiplies then adds (two roundings) and has no masked tail;
 *   - then a halving tree: lane j += lane j + W/2, for W/2, W/4, ... 1,
 *     always (lower half) + (upper half), so even NaN payloads agree.
 * The register-blocked shapes (4 queries x 4 vectors and so on) only
 * interleave pairs.  The reductions fold 16 (or 8) accumulators at once
 * with shuffles, but each sum meets exactly the tree above, lane by lane;
 * unused accumulators of a shape are zeros whose sums are thrown away.
 * Edge tiles repeat the last real query or vector rather than switching to
 * another code path.  Floating-point contraction cannot reorder any of it:
 * the SIMD code names its fmas, and the C code is one function per pair
 * (and -std=c11 turns contraction off anyway).
 *
 * Cosine is float throughout: dot / (sqrt(|q|^2) * sqrt(|x|^2)), each
 * step IEEE-rounded, 0 if either norm is 0.  Taking the square roots
 * first keeps the denominator finite and nonzero where |q|^2 |x|^2 would
 * overflow or underflow. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "schema.h"
#include "tree16.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define DIST_X86 1
#include <immintrin.h>
#else
#define DIST_X86 0
#endif

enum { ISA_C, ISA_AVX2, ISA_AVX512 };
static const char *const isa_name[] = {"c", "avx2", "avx512"};

/* queries per pass: bounds the stack scratch for the query norms */
#define QCHUNK 64
/* How far ahead of the kernels the next vectors are asked for.  The
 * hardware prefetcher alone leaves DRAM idle while a tile computes when
 * several queries share the pass (half the bandwidth at nq = 8), and
 * cannot guess the rows of a filtered scan at all. */
#ifndef PF_BYTES
#define PF_BYTES 8192
#endif

/* queries a tile may read past the last one (cosine norms, see cos512) */
#define QPAD 4

/* one pass: nq <= QCHUNK queries against n vectors */
struct job {
	const float *q; /* nq queries of d floats */
	const float *qs; /* cosine: sqrt(|q|^2) per query, QPAD more readable */
	size_t nq;
	const float *x;
	const uint32_t *rows; /* NULL: vectors 0 .. n-1 of x */
	size_t n, d;
	float *out; /* out[qi * ldo + i] */
	size_t ldo;
};

static inline const float *
job_x(const struct job *j, size_t i)
{
	return j->x + (j->rows != NULL ? (size_t)j->rows[i] : i) * j->d;
}

static inline size_t
min_z(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* vectors to prefetch ahead of the one being read: about PF_BYTES of x */
static size_t
pf_ahead(size_t d)
{
	size_t v = PF_BYTES / (d * sizeof(float) + 1);

	return v < 8 ? 8 : v;
}

/* ---- plain C ---------------------------------------------------------- */

#define CW 8

static float
c_tree(float *a)
{
	for (int w = CW / 2; w > 0; w /= 2)
		for (int j = 0; j < w; j++)
			a[j] = a[j] + a[j + w];
	return a[0];
}

/* c_pair: the distance accumulator of (q, x), and |x|^2 for cosine */
static void
c_pair(int metric, const float *q, const float *x, size_t d, float *s, float *xx)
{
	float acc[CW] = {0}, nx[CW] = {0};
	size_t k = 0;
	int j;

	for (; k + CW <= d; k += CW) {
		if (metric == METRIC_L2) {
			for (j = 0; j < CW; j++) {
				float t = q[k + j] - x[k + j];
				acc[j] += t * t;
			}
		} else {
			for (j = 0; j < CW; j++)
				acc[j] += q[k + j] * x[k + j];
			if (metric == METRIC_COSINE)
				for (j = 0; j < CW; j++)
					nx[j] += x[k + j] * x[k + j];
		}
	}
	for (j = 0; k + (size_t)j < d; j++) {
		float t = q[k + j] - x[k + j];
		if (metric == METRIC_L2) {
			acc[j] += t * t;
		} else {
			acc[j] += q[k + j] * x[k + j];
			nx[j] += x[k + j] * x[k + j];
		}
	}
	*s = c_tree(acc);
	*xx = c_tree(nx);
}

static void
c_run(int metric, const struct job *j, float *qs)
{
	float s, xx, unused;

	if (metric == METRIC_COSINE)
		for (size_t a = 0; a < j->nq; a++) {
			c_pair(METRIC_COSINE, j->q + a * j->d, j->q + a * j->d, j->d, &unused, &xx);
			qs[a] = sqrtf(xx);
		}
	/* vector outer: its row stays in L1 while every query meets it */
	for (size_t i = 0; i < j->n; i++) {
		const float *x = job_x(j, i);
		for (size_t a = 0; a < j->nq; a++) {
			c_pair(metric, j->q + a * j->d, x, j->d, &s, &xx);
			if (metric == METRIC_COSINE) {
				float xs = sqrtf(xx);
				s = qs[a] == 0 || xs == 0 ? 0 : s / (qs[a] * xs);
			}
			j->out[a * j->ldo + i] = s;
		}
	}
}

/* ---- the L2 shortcut's selection (dist_select_dot) ------------------ */

/* Rounding: each of q.x, |q|^2, |x|^2 is a sum of d products, off by at
 * most gamma(d) = d u / (1 - d u) of the sum of the products' magnitudes
 * (u = 2^-24; the kernels' order has fewer roundings than d, so this is
 * generous), and |q.x| <= (|q|^2 + |x|^2) / 2.  So |q|^2 + |x|^2 - 2 q.x
 * is off by at most 2 gamma(d) (|q|^2 + |x|^2), plus three roundings of
 * numbers under 3 (|q|^2 + |x|^2) for the sums here.  rel is that factor
 * with room to spare; DOT_TINY covers what underflow loses. */
#define DOT_TINY 0x1p-100f

static float
dot_rel(size_t d)
{
	return (float)((2.0 * ((double)d + 8) + 32) * 0x1p-24);
}

static size_t
seldot_c(const float *dot, const float *xx, size_t n, float qq, float rel, float bound,
         uint32_t *idx, uint32_t base)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		float t = qq + xx[i];
		float lo = t - 2 * dot[i] - rel * t - DOT_TINY;
		if (!(lo > bound && t < INFINITY))
			idx[k++] = base + (uint32_t)i;
	}
	return k;
}

#if DIST_X86

/* ---- AVX-512F: 16 lanes, 32 registers -------------------------------- */

/* prefetch: ask for vectors i .. i+nx (clipped at n) of the job */
static inline void
prefetch_x(const struct job *j, size_t i, size_t nx)
{
	size_t bytes = j->d * sizeof(float);

	for (size_t t = i; t < i + nx && t < j->n; t++) {
		const char *p = (const char *)job_x(j, t);
		for (size_t b = 0; b < bytes; b += 64)
			_mm_prefetch(p + b, _MM_HINT_T0);
		_mm_prefetch(p + bytes - 1, _MM_HINT_T0);
	}
}

#define A512 __attribute__((target("avx512f"))) static
#define I512 __attribute__((target("avx512f"), always_inline)) static inline

/* step512: one chunk of 16 at offset k for every pair of the tile;
 * accumulator of (query qi, vector xi) is acc[qi * NX + xi] */
I512 void
step512(const int metric, const int MQ, const int NX, const float *const *qp,
        const float *const *xp, size_t k, const int masked, __mmask16 m, __m512 *acc, __m512 *xx)
{
	__m512 qv[4];

#pragma GCC unroll 4
	for (int a = 0; a < MQ; a++)
		qv[a] = masked ? _mm512_maskz_loadu_ps(m, qp[a] + k) : _mm512_loadu_ps(qp[a] + k);
#pragma GCC unroll 16
	for (int i = 0; i < NX; i++) {
		__m512 xv =
		        masked ? _mm512_maskz_loadu_ps(m, xp[i] + k) : _mm512_loadu_ps(xp[i] + k);
		if (metric == METRIC_COSINE)
			xx[i] = _mm512_fmadd_ps(xv, xv, xx[i]);
#pragma GCC unroll 4
		for (int a = 0; a < MQ; a++) {
			if (metric == METRIC_L2) {
				__m512 t = _mm512_sub_ps(qv[a], xv);
				acc[a * NX + i] = _mm512_fmadd_ps(t, t, acc[a * NX + i]);
			} else {
				acc[a * NX + i] = _mm512_fmadd_ps(qv[a], xv, acc[a * NX + i]);
			}
		}
	}
}

/* cos512: lane p = a * NX + i of dot becomes the cosine of query a and
 * vector i, given sqrt(|q|^2) in qs[0..4) and |x|^2 in lane i of xx */
I512 __m512
cos512(const int NX, __m512 dot, __m512 xx, const float *qs)
{
	__m512i iq = _mm512_setr_epi32(0 / NX, 1 / NX, 2 / NX, 3 / NX, 4 / NX, 5 / NX, 6 / NX,
	                               7 / NX, 8 / NX, 9 / NX, 10 / NX, 11 / NX, 12 / NX, 13 / NX,
	                               14 / NX, 15 / NX);
	__m512i ix = _mm512_setr_epi32(0 % NX, 1 % NX, 2 % NX, 3 % NX, 4 % NX, 5 % NX, 6 % NX,
	                               7 % NX, 8 % NX, 9 % NX, 10 % NX, 11 % NX, 12 % NX, 13 % NX,
	                               14 % NX, 15 % NX);
	__m512 zero = _mm512_setzero_ps();
	/* NX >= 4, so iq only picks lanes 0..3 of this */
	__m512 qv = _mm512_permutexvar_ps(iq, _mm512_castps128_ps512(_mm_loadu_ps(qs)));
	__m512 xv = _mm512_permutexvar_ps(ix, _mm512_sqrt_ps(xx));
	/* unordered: a NaN norm is not zero, so it propagates */
	__mmask16 ok = _mm512_cmp_ps_mask(qv, zero, _CMP_NEQ_UQ) &
	               _mm512_cmp_ps_mask(xv, zero, _CMP_NEQ_UQ);

	return _mm512_maskz_div_ps(ok, dot, _mm512_mul_ps(qv, xv));
}

/* tile512: the queries at qp[0..MQ) against the vectors at xp[0..NX);
 * only mq x nx of them are real (the rest repeat the last one) and land
 * in out[t * ldo + i], t < mq, i < nx */
I512 void
tile512(const int metric, const int MQ, const int NX, const float *const *qp, const float *qs,
        size_t mq, const float *const *xp, size_t nx, size_t d, float *out, size_t ldo)
{
	__m512 acc[16], xx[16], r;
	size_t k;

#pragma GCC unroll 16
	for (int p = 0; p < 16; p++)
		acc[p] = xx[p] = _mm512_setzero_ps();
	for (k = 0; k + 16 <= d; k += 16)
		step512(metric, MQ, NX, qp, xp, k, 0, 0, acc, xx);
	if (k < d)
		step512(metric, MQ, NX, qp, xp, k, 1, (__mmask16)((1u << (d - k)) - 1), acc, xx);
	r = tree16_red(acc);
	if (metric == METRIC_COSINE)
		r = cos512(NX, r, tree16_red(xx), qs);
	if (nx == (size_t)NX) {
		/* row t is lanes t*NX .. t*NX+NX; shifting the base back by
		 * t*NX keeps it inside out, as ldo >= n >= NX */
		for (size_t t = 0; t < mq; t++)
			_mm512_mask_storeu_ps(out + t * (ldo - NX),
			                      (__mmask16)(((1u << NX) - 1) << (t * NX)), r);
	} else {
		float res[16];

		_mm512_storeu_ps(res, r);
		for (size_t t = 0; t < mq; t++)
			for (size_t i = 0; i < nx; i++)
				out[t * ldo + i] = res[t * NX + i];
	}
}

/* sweep512: the whole job in tiles of MQ x NX, clipped at the edges by
 * repeating the last query or vector; vectors outer, so a tile's vectors
 * stay in L1 while every query of the pass meets them */
I512 void
sweep512(const int metric, const int MQ, const int NX, const struct job *j)
{
	const float *qp[4], *xp[16];
	size_t ahead = pf_ahead(j->d);

	for (size_t i = 0; i < j->n; i += NX) {
		size_t nx = min_z(NX, j->n - i);

		prefetch_x(j, i + ahead, NX);
#pragma GCC unroll 16
		for (int t = 0; t < NX; t++)
			xp[t] = job_x(j, i + min_z(t, nx - 1));
		for (size_t a = 0; a < j->nq; a += MQ) {
			size_t mq = min_z(MQ, j->nq - a);
#pragma GCC unroll 4
			for (int t = 0; t < MQ; t++)
				qp[t] = j->q + (a + min_z(t, mq - 1)) * j->d;
			tile512(metric, MQ, NX, qp, j->qs + a, mq, xp, nx, j->d,
			        j->out + a * j->ldo + i, j->ldo);
		}
	}
}

#define SWEEP(fn, metric, MQ, NX, j)                                                               \
	do {                                                                                       \
		if ((metric) == METRIC_L2)                                                         \
			fn(METRIC_L2, MQ, NX, j);                                                  \
		else if ((metric) == METRIC_IP)                                                    \
			fn(METRIC_IP, MQ, NX, j);                                                  \
		else                                                                               \
			fn(METRIC_COSINE, MQ, NX, j);                                              \
	} while (0)

/* norms512: qs[a] = |q_a|^2, or its square root (root), for the nq
 * vectors q (rows: q[rows[a] * d ..]), 16 per reduction */
A512 void
norms512(const float *q, const uint32_t *rows, size_t nq, size_t d, int root, float *qs)
{
	for (size_t a = 0; a < nq; a += 16) {
		size_t m = min_z(16, nq - a), k;
		__m512 acc[16];

		for (int t = 0; t < 16; t++)
			acc[t] = _mm512_setzero_ps();
		for (size_t t = 0; t < m; t++) {
			const float *v = q + (rows ? (size_t)rows[a + t] : a + t) * d;
			for (k = 0; k + 16 <= d; k += 16) {
				__m512 x = _mm512_loadu_ps(v + k);
				acc[t] = _mm512_fmadd_ps(x, x, acc[t]);
			}
			if (k < d) {
				__m512 x = _mm512_maskz_loadu_ps((__mmask16)((1u << (d - k)) - 1),
				                                 v + k);
				acc[t] = _mm512_fmadd_ps(x, x, acc[t]);
			}
		}
		_mm512_mask_storeu_ps(qs + a, (__mmask16)((1u << m) - 1),
		                      root ? _mm512_sqrt_ps(tree16_red(acc)) : tree16_red(acc));
	}
}

/* run512: 4 queries x 4 vectors (16 accumulators, 4 + 1 loads per 16
 * pair-chunks, 22..25 of the 32 registers); 1 or 2 leftover queries go
 * 1 x 8 or 2 x 8 rather than idling most of a 4 x 4 tile. */
A512 void
run512(int metric, const struct job *j, float *qs)
{
	size_t r = j->nq % 4, nq4 = r == 3 ? j->nq : j->nq - r;
	struct job t = *j;

	if (metric == METRIC_COSINE)
		norms512(j->q, NULL, j->nq, j->d, 1, qs);
	if (nq4 > 0) {
		t.nq = nq4;
		SWEEP(sweep512, metric, 4, 4, &t);
	}
	if (nq4 < j->nq) {
		t.q = j->q + nq4 * j->d;
		t.qs = j->qs + nq4;
		t.nq = r;
		t.out = j->out + nq4 * j->ldo;
		if (r == 1)
			SWEEP(sweep512, metric, 1, 8, &t);
		else
			SWEEP(sweep512, metric, 2, 8, &t);
	}
}

/* ---- AVX2 + FMA: 8 lanes, 16 registers ------------------------------- */

#define A256 __attribute__((target("avx2,fma"))) static
#define I256 __attribute__((target("avx2,fma"), always_inline)) static inline

/* red8: the tree sums of a[0..8), sum p in lane p (as tree16_red) */
I256 __m256
red8(const __m256 *a)
{
	__m256 b[4], c[2], s;
	int i;

#pragma GCC unroll 4
	for (i = 0; i < 4; i++)
		b[i] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * i], a[2 * i + 1], 0x20),
		                     _mm256_permute2f128_ps(a[2 * i], a[2 * i + 1], 0x31));
#pragma GCC unroll 2
	for (i = 0; i < 2; i++)
		c[i] = _mm256_add_ps(_mm256_shuffle_ps(b[2 * i], b[2 * i + 1], 0x44),
		                     _mm256_shuffle_ps(b[2 * i], b[2 * i + 1], 0xee));
	/* lane 4m + t: the sum of a[m + 2t] */
	s = _mm256_add_ps(_mm256_shuffle_ps(c[0], c[1], 0x88), _mm256_shuffle_ps(c[0], c[1], 0xdd));
	return _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

I256 __m256
load256(const float *p, const int masked, __m256i m)
{
	return masked ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}

I256 void
step256(const int metric, const int MQ, const int NX, const float *const *qp,
        const float *const *xp, size_t k, const int masked, __m256i m, __m256 *acc, __m256 *xx)
{
	__m256 qv[4];

#pragma GCC unroll 4
	for (int a = 0; a < MQ; a++)
		qv[a] = load256(qp[a] + k, masked, m);
#pragma GCC unroll 8
	for (int i = 0; i < NX; i++) {
		__m256 xv = load256(xp[i] + k, masked, m);
		if (metric == METRIC_COSINE)
			xx[i] = _mm256_fmadd_ps(xv, xv, xx[i]);
#pragma GCC unroll 4
		for (int a = 0; a < MQ; a++) {
			if (metric == METRIC_L2) {
				__m256 t = _mm256_sub_ps(qv[a], xv);
				acc[a * NX + i] = _mm256_fmadd_ps(t, t, acc[a * NX + i]);
			} else {
				acc[a * NX + i] = _mm256_fmadd_ps(qv[a], xv, acc[a * NX + i]);
			}
		}
	}
}

I256 __m256
cos256(const int NX, __m256 dot, __m256 xx, const float *qs)
{
	__m256i iq =
	        _mm256_setr_epi32(0 / NX, 1 / NX, 2 / NX, 3 / NX, 4 / NX, 5 / NX, 6 / NX, 7 / NX);
	__m256i ix =
	        _mm256_setr_epi32(0 % NX, 1 % NX, 2 % NX, 3 % NX, 4 % NX, 5 % NX, 6 % NX, 7 % NX);
	__m256 zero = _mm256_setzero_ps();
	/* NX >= 2, so iq only picks lanes 0..3 of this */
	__m256 qv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(qs)), iq);
	__m256 xv = _mm256_permutevar8x32_ps(_mm256_sqrt_ps(xx), ix);
	__m256 ok = _mm256_and_ps(_mm256_cmp_ps(qv, zero, _CMP_NEQ_UQ),
	                          _mm256_cmp_ps(xv, zero, _CMP_NEQ_UQ));

	return _mm256_and_ps(ok, _mm256_div_ps(dot, _mm256_mul_ps(qv, xv)));
}

I256 void
tile256(const int metric, const int MQ, const int NX, const float *const *qp, const float *qs,
        size_t mq, const float *const *xp, size_t nx, size_t d, float *out, size_t ldo)
{
	__m256 acc[8], xx[8], r;
	size_t k;
	float res[8];

#pragma GCC unroll 8
	for (int p = 0; p < 8; p++)
		acc[p] = xx[p] = _mm256_setzero_ps();
	for (k = 0; k + 8 <= d; k += 8)
		step256(metric, MQ, NX, qp, xp, k, 0, _mm256_setzero_si256(), acc, xx);
	if (k < d) {
		__m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(d - k)),
		                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
		step256(metric, MQ, NX, qp, xp, k, 1, m, acc, xx);
	}
	r = red8(acc);
	if (metric == METRIC_COSINE)
		r = cos256(NX, r, red8(xx), qs);
	_mm256_storeu_ps(res, r);
	for (size_t t = 0; t < mq; t++) {
		if (nx == (size_t)NX)
			memcpy(out + t * ldo, res + t * NX, NX * sizeof(float));
		else
			for (size_t i = 0; i < nx; i++)
				out[t * ldo + i] = res[t * NX + i];
	}
}

I256 void
sweep256(const int metric, const int MQ, const int NX, const struct job *j)
{
	const float *qp[4], *xp[8];
	size_t ahead = pf_ahead(j->d);

	for (size_t i = 0; i < j->n; i += NX) {
		size_t nx = min_z(NX, j->n - i);

		prefetch_x(j, i + ahead, NX);
#pragma GCC unroll 8
		for (int t = 0; t < NX; t++)
			xp[t] = job_x(j, i + min_z(t, nx - 1));
		for (size_t a = 0; a < j->nq; a += MQ) {
			size_t mq = min_z(MQ, j->nq - a);
#pragma GCC unroll 4
			for (int t = 0; t < MQ; t++)
				qp[t] = j->q + (a + min_z(t, mq - 1)) * j->d;
			tile256(metric, MQ, NX, qp, j->qs + a, mq, xp, nx, j->d,
			        j->out + a * j->ldo + i, j->ldo);
		}
	}
}

A256 void
norms256(const float *q, const uint32_t *rows, size_t nq, size_t d, int root, float *qs)
{
	__m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

	for (size_t a = 0; a < nq; a += 8) {
		size_t m = min_z(8, nq - a), k;
		__m256 acc[8];
		float res[8];

		for (int t = 0; t < 8; t++)
			acc[t] = _mm256_setzero_ps();
		for (size_t t = 0; t < m; t++) {
			const float *v = q + (rows ? (size_t)rows[a + t] : a + t) * d;
			for (k = 0; k + 8 <= d; k += 8) {
				__m256 x = _mm256_loadu_ps(v + k);
				acc[t] = _mm256_fmadd_ps(x, x, acc[t]);
			}
			if (k < d) {
				__m256i msk =
				        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(d - k)), iota);
				__m256 x = _mm256_maskload_ps(v + k, msk);
				acc[t] = _mm256_fmadd_ps(x, x, acc[t]);
			}
		}
		_mm256_storeu_ps(res, root ? _mm256_sqrt_ps(red8(acc)) : red8(acc));
		memcpy(qs + a, res, m * sizeof(float));
	}
}

/* run256: 4 queries x 2 vectors, 8 accumulators: enough independent fma
 * chains to cover two ports of 4-cycle latency, and 14..15 registers.
 * Leftovers go 1 x 8 (1 x 4 for cosine, whose |x|^2 accumulators would
 * not fit) or 2 x 4. */
A256 void
run256(int metric, const struct job *j, float *qs)
{
	size_t r = j->nq % 4, nq4 = r == 3 ? j->nq : j->nq - r;
	struct job t = *j;

	if (metric == METRIC_COSINE)
		norms256(j->q, NULL, j->nq, j->d, 1, qs);
	if (nq4 > 0) {
		t.nq = nq4;
		SWEEP(sweep256, metric, 4, 2, &t);
	}
	if (nq4 < j->nq) {
		t.q = j->q + nq4 * j->d;
		t.qs = j->qs + nq4;
		t.nq = r;
		t.out = j->out + nq4 * j->ldo;
		if (r == 2)
			SWEEP(sweep256, metric, 2, 4, &t);
		else if (metric == METRIC_COSINE)
			sweep256(METRIC_COSINE, 1, 4, &t);
		else if (metric == METRIC_L2)
			sweep256(METRIC_L2, 1, 8, &t);
		else
			sweep256(METRIC_IP, 1, 8, &t);
	}
}

/* selection (dist_select): a compare mask, then the set bits */
A512 size_t
sel512(const float *d, size_t n, int neg, float bound, uint32_t *idx)
{
	const __m512 b = _mm512_set1_ps(neg ? -bound : bound);
	size_t k = 0, i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512 v = _mm512_loadu_ps(d + i);
		unsigned m = neg ? _mm512_cmp_ps_mask(v, b, _CMP_GE_OQ)
		                 : _mm512_cmp_ps_mask(v, b, _CMP_LE_OQ);
		for (; m; m &= m - 1)
			idx[k++] = (uint32_t)(i + (size_t)__builtin_ctz(m));
	}
	for (; i < n; i++)
		if (neg ? d[i] >= -bound : d[i] <= bound)
			idx[k++] = (uint32_t)i;
	return k;
}

A256 size_t
sel256(const float *d, size_t n, int neg, float bound, uint32_t *idx)
{
	const __m256 b = _mm256_set1_ps(neg ? -bound : bound);
	size_t k = 0, i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(d + i);
		unsigned m = (unsigned)_mm256_movemask_ps(neg ? _mm256_cmp_ps(v, b, _CMP_GE_OQ)
		                                              : _mm256_cmp_ps(v, b, _CMP_LE_OQ));
		for (; m; m &= m - 1)
			idx[k++] = (uint32_t)(i + (size_t)__builtin_ctz(m));
	}
	for (; i < n; i++)
		if (neg ? d[i] >= -bound : d[i] <= bound)
			idx[k++] = (uint32_t)i;
	return k;
}

A512 size_t
seldot512(const float *dot, const float *xx, size_t n, float qq, float rel, float bound,
          uint32_t *idx)
{
	const __m512 vq = _mm512_set1_ps(qq), vr = _mm512_set1_ps(rel), vb = _mm512_set1_ps(bound),
	             two = _mm512_set1_ps(2), tiny = _mm512_set1_ps(DOT_TINY),
	             inf = _mm512_set1_ps(INFINITY);
	size_t k = 0, i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512 t = _mm512_add_ps(vq, _mm512_loadu_ps(xx + i));
		__m512 a = _mm512_fnmadd_ps(two, _mm512_loadu_ps(dot + i), t);
		__m512 lo = _mm512_sub_ps(_mm512_fnmadd_ps(vr, t, a), tiny);
		/* left out only when surely over the bound with finite norms */
		unsigned m = (unsigned)(__mmask16) ~(_mm512_cmp_ps_mask(lo, vb, _CMP_GT_OQ) &
		                                     _mm512_cmp_ps_mask(t, inf, _CMP_LT_OQ));
		for (; m; m &= m - 1)
			idx[k++] = (uint32_t)(i + (size_t)__builtin_ctz(m));
	}
	return k + seldot_c(dot + i, xx + i, n - i, qq, rel, bound, idx + k, (uint32_t)i);
}

A256 size_t
seldot256(const float *dot, const float *xx, size_t n, float qq, float rel, float bound,
          uint32_t *idx)
{
	const __m256 vq = _mm256_set1_ps(qq), vr = _mm256_set1_ps(rel), vb = _mm256_set1_ps(bound),
	             two = _mm256_set1_ps(2), tiny = _mm256_set1_ps(DOT_TINY),
	             inf = _mm256_set1_ps(INFINITY);
	size_t k = 0, i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256 t = _mm256_add_ps(vq, _mm256_loadu_ps(xx + i));
		__m256 a = _mm256_fnmadd_ps(two, _mm256_loadu_ps(dot + i), t);
		__m256 lo = _mm256_sub_ps(_mm256_fnmadd_ps(vr, t, a), tiny);
		__m256 out = _mm256_and_ps(_mm256_cmp_ps(lo, vb, _CMP_GT_OQ),
		                           _mm256_cmp_ps(t, inf, _CMP_LT_OQ));
		unsigned m = ~(unsigned)_mm256_movemask_ps(out) & 0xffu;
		for (; m; m &= m - 1)
			idx[k++] = (uint32_t)(i + (size_t)__builtin_ctz(m));
	}
	return k + seldot_c(dot + i, xx + i, n - i, qq, rel, bound, idx + k, (uint32_t)i);
}

#endif /* DIST_X86 */

/* ---- choice of ISA ---------------------------------------------------- */

static pthread_once_t isa_once = PTHREAD_ONCE_INIT;
static int isa_best; /* what the CPU has */
static int isa_start; /* isa_best lowered by $VDB_ISA */
static atomic_int isa_cur;

static int
isa_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(isa_name) / sizeof(isa_name[0])); i++)
		if (strcmp(s, isa_name[i]) == 0)
			return i;
	return -1;
}

static void
isa_init(void)
{
	const char *env = getenv("VDB_ISA");
	int want;

	isa_best = ISA_C;
#if DIST_X86
	__builtin_cpu_init();
	/* libgcc also checks that the OS saves the wide registers */
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		isa_best = ISA_AVX2;
	if (__builtin_cpu_supports("avx512f"))
		isa_best = ISA_AVX512;
#endif
	isa_start = isa_best;
	/* an unknown or too high name is ignored: the best there is */
	if (env != NULL && (want = isa_parse(env)) >= 0 && want < isa_best)
		isa_start = want;
	atomic_store(&isa_cur, isa_start);
}

static int
isa_get(void)
{
	pthread_once(&isa_once, isa_init);
	return atomic_load_explicit(&isa_cur, memory_order_relaxed);
}

const char *
dist_isa(void)
{
	return isa_name[isa_get()];
}

int
dist_force_isa(const char *isa)
{
	int want;

	pthread_once(&isa_once, isa_init);
	if (isa == NULL) {
		atomic_store(&isa_cur, isa_start);
		return 0;
	}
	want = isa_parse(isa);
	if (want < 0 || want > isa_best)
		return -1;
	atomic_store(&isa_cur, want);
	return 0;
}

/* ---- entry points ------------------------------------------------------ */

static void
dist_run(int metric, const float *q, size_t nq, const float *x, const uint32_t *rows, size_t n,
         size_t d, float *out)
{
	int isa = isa_get();
	float qs[QCHUNK + QPAD];

	if (metric != METRIC_L2 && metric != METRIC_IP && metric != METRIC_COSINE) {
		/* a caller's bug: make it visible rather than plausible */
		for (size_t i = 0; i < nq * n; i++)
			out[i] = NAN;
		return;
	}
	if (n == 0)
		return;
	for (size_t a = 0; a < nq; a += QCHUNK) {
		struct job j = {
		        .q = q + a * d,
		        .qs = qs,
		        .nq = min_z(QCHUNK, nq - a),
		        .x = x,
		        .rows = rows,
		        .n = n,
		        .d = d,
		        .out = out + a * n,
		        .ldo = n,
		};

		/* a clipped tile may read the norms of up to QPAD absent queries */
		for (size_t t = j.nq; t < j.nq + QPAD; t++)
			qs[t] = 1;
		switch (isa) {
#if DIST_X86
		case ISA_AVX512:
			run512(metric, &j, qs);
			break;
		case ISA_AVX2:
			run256(metric, &j, qs);
			break;
#endif
		default:
			c_run(metric, &j, qs);
			break;
		}
	}
}

size_t
dist_select(const float *d, size_t n, int neg, float bound, uint32_t *idx)
{
	size_t k = 0;

	switch (isa_get()) {
#if DIST_X86
	case ISA_AVX512:
		return sel512(d, n, neg, bound, idx);
	case ISA_AVX2:
		return sel256(d, n, neg, bound, idx);
#endif
	default:
		/* -d <= bound is d >= -bound, exactly: negation is exact */
		for (size_t i = 0; i < n; i++)
			if (neg ? d[i] >= -bound : d[i] <= bound)
				idx[k++] = (uint32_t)i;
		return k;
	}
}

void
dist_sqnorms(const float *x, const uint32_t *rows, size_t n, size_t d, float *out)
{
	float xx, unused;

	switch (isa_get()) {
#if DIST_X86
	case ISA_AVX512:
		norms512(x, rows, n, d, 0, out);
		return;
	case ISA_AVX2:
		norms256(x, rows, n, d, 0, out);
		return;
#endif
	default:
		for (size_t i = 0; i < n; i++) {
			const float *v = x + (rows ? (size_t)rows[i] : i) * d;
			c_pair(METRIC_COSINE, v, v, d, &unused, &xx);
			out[i] = xx;
		}
	}
}

size_t
dist_select_dot(const float *dot, const float *xx, size_t n, float qq, size_t d, float bound,
                uint32_t *idx)
{
	float rel = dot_rel(d);

	switch (isa_get()) {
#if DIST_X86
	case ISA_AVX512:
		return seldot512(dot, xx, n, qq, rel, bound, idx);
	case ISA_AVX2:
		return seldot256(dot, xx, n, qq, rel, bound, idx);
#endif
	default:
		return seldot_c(dot, xx, n, qq, rel, bound, idx, 0);
	}
}

void
dist_block(int metric, const float *q, size_t nq, const float *x, size_t n, size_t d, float *out)
{
	dist_run(metric, q, nq, x, NULL, n, d, out);
}

void
dist_rows(int metric, const float *q, size_t nq, const float *x, const uint32_t *rows, size_t n,
          size_t d, float *out)
{
	dist_run(metric, q, nq, x, rows, n, d, out);
}
