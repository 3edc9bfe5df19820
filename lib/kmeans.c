/* kmeans.c: k-means (kmeans.h).
 *
 * Assignment is most of the work, a matrix product of points and
 * centroids, and has a kernel of its own rather than the exact-search
 * ones (distance.h): those reduce each pair across a register, which
 * costs more than the products here, and leave a low-dimensional
 * sub-space (PQ, 4 components) most of each register empty.  Here
 * centroids lie side by side in a register and each point's components
 * are broadcast in turn, as a BLAS kernel does. */
#include "kmeans.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "par.h"
#include "schema.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define KM_X86 1
#include <immintrin.h>
#else
#define KM_X86 0
#endif

#define PB 240 /* points per assignment block, a multiple of 6 */
#define SPLIT_EPS (1.0f / 1024.0f)

/* ---- seeded randomness (splitmix64) ---- */

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* rng_below: uniform in [0, n), n >= 1 */
static uint64_t
rng_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

static float
rng_float(uint64_t *s)
{
	return (float)(rng_next(s) >> 40) * 0x1p-24f;
}

/* ---- assignment ----
 *
 * The key of point x and centroid c is fma(alpha, x.c, cn_c): alpha = -2
 * and cn_c = |c|^2 for L2 (|x|^2 would add the same to every key),
 * alpha = -1 and cn_c = 0 when spherical.  x.c is one chain of fmas over
 * the components in order, from +0, so the key has the same bits in every
 * ISA: the kernels put 16 (or 8) centroids side by side in a register and
 * differ only in how many.  Centroids come transposed, ct[t * kp + c],
 * kp = k rounded up to PANEL; the padding centroids have cn = +inf and
 * never win. */

#define PANEL 64

struct near {
	const float *ct, *cn;
	float alpha;
	uint32_t d, k, kp;
};

/* near_c: out[i] := the centroid of smallest key for point xp[i], the
 * first one on a tie; 0 if no key is smaller than +inf */
static void
near_c(const float *const *xp, size_t nb, const struct near *c, uint32_t *out)
{
	for (size_t i = 0; i < nb; i++) {
		float best = INFINITY;
		uint32_t bi = 0;
		for (uint32_t j = 0; j < c->k; j++) {
			float acc = 0, key;
			for (uint32_t t = 0; t < c->d; t++)
				acc = fmaf(xp[i][t], c->ct[(size_t)t * c->kp + j], acc);
			/* alpha * acc is exact (-2 or -1): one rounding, as
			 * the fma has */
			key = c->cn[j] + c->alpha * acc;
			if (key < best) {
				best = key;
				bi = j;
			}
		}
		out[i] = bi;
	}
}

/* lanes_best: the smallest of n lane values, the smallest index on a
 * tie; lanes never improved hold +inf and index 0 */
static uint32_t
lanes_best(const float *v, const uint32_t *ix, int n)
{
	float bv = INFINITY;
	uint32_t bi = 0;

	for (int l = 0; l < n; l++)
		if (v[l] < bv || (v[l] == bv && ix[l] < bi)) {
			bv = v[l];
			bi = ix[l];
		}
	return bi;
}

#if KM_X86
/* near512: 6 points x 64 centroids of accumulators (24 of the 32
 * registers), a panel of centroids kept in L1 while the block's points
 * pass; each point's best so far per lane in bv, bi */
__attribute__((target("avx512f"))) static void
near512(const float *const *xp, size_t nb, const struct near *c, uint32_t *out, float *bv,
        uint32_t *bi)
{
	const __m512i iota =
	        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m512 alpha = _mm512_set1_ps(c->alpha);

	for (size_t i = 0; i < nb * 16; i++) {
		bv[i] = INFINITY;
		bi[i] = 0;
	}
	for (uint32_t j0 = 0; j0 < c->kp; j0 += PANEL) {
		const float *b = c->ct + j0;
		for (size_t i0 = 0; i0 < nb; i0 += 6) {
			size_t m = nb - i0 < 6 ? nb - i0 : 6;
			const float *p[6];
			__m512 acc[24];
			for (size_t a = 0; a < 6; a++)
				p[a] = xp[i0 + (a < m ? a : m - 1)];
#pragma GCC unroll 24
			for (int r = 0; r < 24; r++)
				acc[r] = _mm512_setzero_ps();
			for (uint32_t t = 0; t < c->d; t++) {
				const float *bt = b + (size_t)t * c->kp;
				__m512 b0 = _mm512_loadu_ps(bt), b1 = _mm512_loadu_ps(bt + 16),
				       b2 = _mm512_loadu_ps(bt + 32), b3 = _mm512_loadu_ps(bt + 48);
#pragma GCC unroll 6
				for (int a = 0; a < 6; a++) {
					__m512 x = _mm512_set1_ps(p[a][t]);
					acc[4 * a] = _mm512_fmadd_ps(x, b0, acc[4 * a]);
					acc[4 * a + 1] = _mm512_fmadd_ps(x, b1, acc[4 * a + 1]);
					acc[4 * a + 2] = _mm512_fmadd_ps(x, b2, acc[4 * a + 2]);
					acc[4 * a + 3] = _mm512_fmadd_ps(x, b3, acc[4 * a + 3]);
				}
			}
			for (size_t a = 0; a < m; a++) {
				float *pv = bv + (i0 + a) * 16;
				uint32_t *pi = bi + (i0 + a) * 16;
				__m512 v = _mm512_loadu_ps(pv);
				__m512i ix = _mm512_loadu_si512(pi);
#pragma GCC unroll 4
				for (int u = 0; u < 4; u++) {
					__m512 key = _mm512_fmadd_ps(
					        alpha, acc[4 * a + u],
					        _mm512_loadu_ps(c->cn + j0 + 16 * u));
					/* strict: a lane keeps its earlier centroid on a tie */
					__mmask16 lt = _mm512_cmp_ps_mask(key, v, _CMP_LT_OQ);
					v = _mm512_mask_mov_ps(v, lt, key);
					ix = _mm512_mask_mov_epi32(
					        ix, lt,
					        _mm512_add_epi32(iota, _mm512_set1_epi32((
					                                       int)(j0 + 16 * u))));
				}
				_mm512_storeu_ps(pv, v);
				_mm512_storeu_si512(pi, ix);
			}
		}
	}
	for (size_t i = 0; i < nb; i++)
		out[i] = lanes_best(bv + i * 16, bi + i * 16, 16);
}

/* near256: the same in 8 lanes, 6 points x 16 centroids (12 of the 16
 * registers) */
__attribute__((target("avx2,fma"))) static void
near256(const float *const *xp, size_t nb, const struct near *c, uint32_t *out, float *bv,
        uint32_t *bi)
{
	const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	const __m256 alpha = _mm256_set1_ps(c->alpha);

	for (size_t i = 0; i < nb * 8; i++) {
		bv[i] = INFINITY;
		bi[i] = 0;
	}
	for (uint32_t j0 = 0; j0 < c->kp; j0 += 16) {
		const float *b = c->ct + j0;
		for (size_t i0 = 0; i0 < nb; i0 += 6) {
			size_t m = nb - i0 < 6 ? nb - i0 : 6;
			const float *p[6];
			__m256 acc[12];
			for (size_t a = 0; a < 6; a++)
				p[a] = xp[i0 + (a < m ? a : m - 1)];
#pragma GCC unroll 12
			for (int r = 0; r < 12; r++)
				acc[r] = _mm256_setzero_ps();
			for (uint32_t t = 0; t < c->d; t++) {
				const float *bt = b + (size_t)t * c->kp;
				__m256 b0 = _mm256_loadu_ps(bt), b1 = _mm256_loadu_ps(bt + 8);
#pragma GCC unroll 6
				for (int a = 0; a < 6; a++) {
					__m256 x = _mm256_broadcast_ss(p[a] + t);
					acc[2 * a] = _mm256_fmadd_ps(x, b0, acc[2 * a]);
					acc[2 * a + 1] = _mm256_fmadd_ps(x, b1, acc[2 * a + 1]);
				}
			}
			for (size_t a = 0; a < m; a++) {
				float *pv = bv + (i0 + a) * 8;
				uint32_t *pi = bi + (i0 + a) * 8;
				__m256 v = _mm256_loadu_ps(pv);
				__m256i ix = _mm256_loadu_si256((const __m256i *)pi);
				for (int u = 0; u < 2; u++) {
					__m256 key = _mm256_fmadd_ps(
					        alpha, acc[2 * a + u],
					        _mm256_loadu_ps(c->cn + j0 + 8 * u));
					__m256 lt = _mm256_cmp_ps(key, v, _CMP_LT_OQ);
					__m256i jx = _mm256_add_epi32(
					        iota, _mm256_set1_epi32((int)(j0 + 8 * u)));
					v = _mm256_blendv_ps(v, key, lt);
					ix = _mm256_castps_si256(
					        _mm256_blendv_ps(_mm256_castsi256_ps(ix),
					                         _mm256_castsi256_ps(jx), lt));
				}
				_mm256_storeu_ps(pv, v);
				_mm256_storeu_si256((__m256i *)pi, ix);
			}
		}
	}
	for (size_t i = 0; i < nb; i++)
		out[i] = lanes_best(bv + i * 8, bi + i * 8, 8);
}
#endif

struct assign_job {
	const float *x;
	const uint32_t *rows;
	uint64_t n;
	struct near c;
	int isa; /* 2 avx512, 1 avx2, 0 c */
	uint32_t *assign;
	atomic_uint_fast64_t next;
	atomic_int failed;
};

static inline const float *
point(const float *x, const uint32_t *rows, uint64_t i, uint32_t d)
{
	return x + (rows ? (size_t)rows[i] : (size_t)i) * d;
}

static void
assign_part(void *arg, int t)
{
	struct assign_job *j = arg;
	const float **xp = malloc(PB * sizeof *xp);
	float *bv = malloc(PB * 16 * sizeof(float));
	uint32_t *bi = malloc(PB * 16 * sizeof(uint32_t));
	uint64_t b;

	(void)t;
	if (xp == NULL || bv == NULL || bi == NULL) {
		atomic_store(&j->failed, 1);
		goto out;
	}
	while ((b = atomic_fetch_add(&j->next, PB)) < j->n) {
		size_t nb = j->n - b < PB ? (size_t)(j->n - b) : PB;
		for (size_t i = 0; i < nb; i++)
			xp[i] = point(j->x, j->rows, b + i, j->c.d);
		switch (j->isa) {
#if KM_X86
		case 2:
			near512(xp, nb, &j->c, j->assign + b, bv, bi);
			break;
		case 1:
			near256(xp, nb, &j->c, j->assign + b, bv, bi);
			break;
#endif
		default:
			near_c(xp, nb, &j->c, j->assign + b);
		}
	}
out:
	free(xp);
	free(bv);
	free(bi);
}

int
kmeans_assign(const float *x, const uint32_t *rows, uint64_t n, uint32_t d, const float *cent,
              uint32_t k, int spherical, int threads, uint32_t *assign, struct vdb_err *e)
{
	struct assign_job j = {.x = x, .rows = rows, .n = n, .assign = assign};
	uint32_t kp = (k + PANEL - 1) / PANEL * PANEL;
	const char *isa = dist_isa();
	float *ct, *cn;
	int rc = VDB_OK;

	if (n == 0)
		return VDB_OK;
	if (k == 0 || d == 0)
		return vdb_err_set(e, VDB_EINTERNAL, "k-means with k = %u, d = %u", k, d);
	ct = calloc((size_t)kp * d, sizeof(float));
	cn = malloc((size_t)kp * sizeof(float));
	if (ct == NULL || cn == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto out;
	}
	for (uint32_t c = 0; c < kp; c++) {
		float s = 0;
		if (c >= k) {
			cn[c] = INFINITY;
			continue;
		}
		for (uint32_t t = 0; t < d; t++) {
			float v = cent[(size_t)c * d + t];
			ct[(size_t)t * kp + c] = v;
			s = fmaf(v, v, s);
		}
		cn[c] = spherical ? 0 : s;
	}
	j.c = (struct near){
	        .ct = ct, .cn = cn, .alpha = spherical ? -1.0f : -2.0f, .d = d, .k = k, .kp = kp};
	j.isa = strcmp(isa, "avx512") == 0 ? 2 : strcmp(isa, "avx2") == 0 ? 1 : 0;
	atomic_init(&j.next, 0);
	atomic_init(&j.failed, 0);
	par_run(threads, assign_part, &j);
	if (atomic_load(&j.failed))
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
out:
	free(ct);
	free(cn);
	return rc;
}

/* ---- training ---- */

struct update_job {
	const float *x;
	const uint32_t *rows; /* the training points */
	uint32_t d, k;
	int spherical, threads;
	const double *w; /* spherical: 1 / |x_i| (0 for a zero point) */
	const uint64_t *start; /* cluster c: order[start[c] .. start[c + 1]) */
	const uint32_t *order;
	float *cent;
	atomic_int failed;
};

static void
update_part(void *arg, int t)
{
	struct update_job *j = arg;
	uint32_t c0 = (uint32_t)((uint64_t)j->k * (uint64_t)t / (uint64_t)j->threads);
	uint32_t c1 = (uint32_t)((uint64_t)j->k * (uint64_t)(t + 1) / (uint64_t)j->threads);
	double *sum = malloc((size_t)j->d * sizeof(double));

	if (sum == NULL) {
		atomic_store(&j->failed, 1);
		return;
	}
	for (uint32_t c = c0; c < c1; c++) {
		uint64_t a = j->start[c], b = j->start[c + 1];
		float *out = j->cent + (size_t)c * j->d;
		double nn = 0;
		if (a == b)
			continue; /* empty: split below */
		memset(sum, 0, (size_t)j->d * sizeof(double));
		for (uint64_t p = a; p < b; p++) {
			uint32_t i = j->order[p];
			const float *v = point(j->x, j->rows, i, j->d);
			double w = j->spherical ? j->w[i] : 1.0;
			for (uint32_t s = 0; s < j->d; s++)
				sum[s] += w * v[s];
		}
		if (!j->spherical) {
			for (uint32_t s = 0; s < j->d; s++)
				out[s] = (float)(sum[s] / (double)(b - a));
			continue;
		}
		for (uint32_t s = 0; s < j->d; s++)
			nn += sum[s] * sum[s];
		nn = nn > 0 ? 1 / sqrt(nn) : 0;
		for (uint32_t s = 0; s < j->d; s++)
			out[s] = (float)(sum[s] * nn);
	}
	free(sum);
}

static void
normalize(float *c, uint32_t d)
{
	double nn = 0;

	for (uint32_t s = 0; s < d; s++)
		nn += (double)c[s] * c[s];
	if (nn > 0 && isfinite(nn)) {
		nn = 1 / sqrt(nn);
		for (uint32_t s = 0; s < d; s++)
			c[s] = (float)(c[s] * nn);
	}
}

/* split: an empty cluster ci takes a copy of a cluster cj picked with
 * probability (size - 1) / (n - k), both moved apart a little, and half
 * its points (FAISS's split_clusters) */
static void
split(float *cent, uint32_t d, uint32_t k, uint64_t n, double *size, int spherical, uint64_t *rng)
{
	for (uint32_t ci = 0; ci < k; ci++) {
		uint32_t cj, big = 0;
		uint64_t tries = 0;
		if (size[ci] != 0)
			continue;
		for (cj = 0;; cj = (cj + 1) % k) {
			float p = (float)((size[cj] - 1.0) / (double)(n - k));
			if (size[cj] > size[big])
				big = cj;
			if (rng_float(rng) < p)
				break;
			/* some cluster has more than one point (n > k), but
			 * a long run of bad luck picks the largest */
			if (++tries == 64 * (uint64_t)k) {
				cj = big;
				break;
			}
		}
		float *a = cent + (size_t)ci * d, *b = cent + (size_t)cj * d;
		memcpy(a, b, (size_t)d * sizeof(float));
		for (uint32_t s = 0; s < d; s++) {
			float up = 1 + SPLIT_EPS, down = 1 - SPLIT_EPS;
			a[s] *= s % 2 == 0 ? up : down;
			b[s] *= s % 2 == 0 ? down : up;
		}
		if (spherical) {
			normalize(a, d);
			normalize(b, d);
		}
		size[ci] = size[cj] / 2;
		size[cj] -= size[ci];
	}
}

/* Knuth's algorithm S: one pass, no memory but the output */
void
kmeans_sample(uint64_t n, uint64_t m, uint64_t seed, uint32_t *out)
{
	uint64_t got = 0, rng = seed;

	for (uint64_t i = 0; i < n && got < m; i++)
		if (rng_below(&rng, n - i) < m - got)
			out[got++] = (uint32_t)i;
}

int
kmeans_train(const float *x, const uint32_t *rows, uint64_t n, uint32_t d, uint32_t k,
             const struct kmeans_opt *o, float *cent, struct vdb_err *e)
{
	uint64_t rng = o->seed, ns = n;
	uint32_t *srows = NULL, *as = NULL, *prev = NULL, *order = NULL, *perm = NULL;
	const uint32_t *tr = rows;
	uint64_t *start = NULL;
	double *w = NULL, *size = NULL;
	int threads = o->threads < 1 ? 1 : o->threads, rc = VDB_OK;

	if (k == 0 || d == 0)
		return vdb_err_set(e, VDB_EINTERNAL, "k-means with k = %u, d = %u", k, d);
	if (n <= k) {
		for (uint32_t c = 0; c < k; c++) {
			float *out = cent + (size_t)c * d;
			if (n == 0) {
				memset(out, 0, (size_t)d * sizeof(float));
				continue;
			}
			memcpy(out, point(x, rows, c % n, d), (size_t)d * sizeof(float));
			if (o->spherical)
				normalize(out, d);
		}
		return VDB_OK;
	}
	if (o->max_per_centroid && n > (uint64_t)k * o->max_per_centroid) {
		ns = (uint64_t)k * o->max_per_centroid;
		if ((srows = malloc(ns * sizeof(uint32_t))) == NULL)
			goto nomem;
		kmeans_sample(n, ns, rng_next(&rng), srows);
		if (rows)
			for (uint64_t i = 0; i < ns; i++)
				srows[i] = rows[srows[i]];
		tr = srows;
	}
	as = malloc(ns * sizeof(uint32_t));
	prev = malloc(ns * sizeof(uint32_t));
	order = malloc(ns * sizeof(uint32_t));
	start = malloc(((size_t)k + 1) * sizeof(uint64_t));
	size = malloc((size_t)k * sizeof(double));
	if (as == NULL || prev == NULL || order == NULL || start == NULL || size == NULL)
		goto nomem;
	if (o->spherical) {
		if ((w = malloc(ns * sizeof(double))) == NULL)
			goto nomem;
		for (uint64_t i = 0; i < ns; i++) {
			const float *v = point(x, tr, i, d);
			double nn = 0;
			for (uint32_t t = 0; t < d; t++)
				nn += (double)v[t] * v[t];
			w[i] = nn > 0 && isfinite(nn) ? 1 / sqrt(nn) : 0;
		}
	}
	/* k distinct points at random: a partial Fisher-Yates shuffle */
	if ((perm = malloc(ns * sizeof(uint32_t))) == NULL)
		goto nomem;
	for (uint64_t i = 0; i < ns; i++)
		perm[i] = (uint32_t)i;
	for (uint32_t c = 0; c < k; c++) {
		uint64_t r = c + rng_below(&rng, ns - c);
		uint32_t t = perm[c];
		perm[c] = perm[r];
		perm[r] = t;
		memcpy(cent + (size_t)c * d, point(x, tr, perm[c], d), (size_t)d * sizeof(float));
		if (o->spherical)
			normalize(cent + (size_t)c * d, d);
	}
	free(perm);
	perm = NULL;
	for (uint32_t it = 0; it < o->niter; it++) {
		struct update_job u = {.x = x,
		                       .rows = tr,
		                       .d = d,
		                       .k = k,
		                       .spherical = o->spherical,
		                       .threads = threads,
		                       .w = w,
		                       .start = start,
		                       .order = order,
		                       .cent = cent};
		int same = it > 0;

		if ((rc = kmeans_assign(x, tr, ns, d, cent, k, o->spherical, threads, as, e)) !=
		    VDB_OK)
			goto out;
		memset(start, 0, ((size_t)k + 1) * sizeof(uint64_t));
		for (uint64_t i = 0; i < ns; i++) {
			start[as[i] + 1]++;
			if (same && as[i] != prev[i])
				same = 0;
		}
		for (uint32_t c = 0; c < k; c++) {
			size[c] = (double)start[c + 1];
			start[c + 1] += start[c];
		}
		/* order: points by cluster, increasing within one (start[c]
		 * walks to the end of cluster c and is put back below) */
		for (uint64_t i = 0; i < ns; i++)
			order[start[as[i]]++] = (uint32_t)i;
		for (uint32_t c = k; c > 0; c--)
			start[c] = start[c - 1];
		start[0] = 0;
		if (same) { /* converged: the centroids would not move */
			if (o->progress)
				o->progress(o->parg, o->niter, o->niter);
			break;
		}
		atomic_init(&u.failed, 0);
		par_run(threads, update_part, &u);
		if (atomic_load(&u.failed))
			goto nomem;
		split(cent, d, k, ns, size, o->spherical, &rng);
		memcpy(prev, as, ns * sizeof(uint32_t));
		if (o->progress)
			o->progress(o->parg, it + 1, o->niter);
	}
	goto out;
nomem:
	rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
out:
	free(srows);
	free(as);
	free(prev);
	free(order);
	free(start);
	free(size);
	free(w);
	free(perm);
	return rc;
}
