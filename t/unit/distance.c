/* distance.c: unit tests for lib/distance.c (exact-search distance
 * kernels): accuracy against a double-precision reference, the
 * determinism rule of distance.h, exactness on integer data, IEEE special
 * values, and the choice of ISA.  Every property runs once per ISA. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "schema.h"
#include "unit.h"

static const size_t DIMS[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 100, 128, 129, 960, 1536};
#define NDIMS (sizeof(DIMS) / sizeof(DIMS[0]))
static const int METRICS[] = {METRIC_L2, METRIC_IP, METRIC_COSINE};

static uint64_t rng_state;

static uint32_t
rnd(void)
{
	return unit_xorshift(&rng_state);
}

/* rnd_float: in [-1, 1), with a few larger and smaller magnitudes */
static float
rnd_float(void)
{
	float v = (float)(rnd() & 0xffffff) / 8388608.0f - 1.0f;
	uint32_t k = rnd() % 16;

	return k == 0 ? v * 1000 : k == 1 ? v / 1000 : v;
}

/* rnd_floats: n floats in a buffer of exactly n, so that ASan sees any
 * read past the end */
static float *
rnd_floats(size_t n)
{
	float *p = malloc((n ? n : 1) * sizeof(float));

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = rnd_float();
	return p;
}

static void
use_isa(const char *isa)
{
	if (dist_force_isa(isa) != 0)
		cr_skip_test("this CPU has no %s", isa);
	cr_assert_str_eq(dist_isa(), isa);
	rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)isa[0] << 32 ^ strlen(isa);
}

/* ref: the distance in double, and a bound on its rounding error in
 * float (sum of |terms| times d ulps, loose but never flaky) */
static double
ref(int metric, const float *q, const float *x, size_t d, double *tol)
{
	double s = 0, sa = 0, qq = 0, xx = 0;

	for (size_t k = 0; k < d; k++) {
		double a = q[k], b = x[k];
		if (metric == METRIC_L2) {
			s += (a - b) * (a - b);
			sa += (a - b) * (a - b);
		} else {
			s += a * b;
			sa += fabs(a * b);
		}
		qq += a * a;
		xx += b * b;
	}
	*tol = (double)(d + 8) * FLT_EPSILON * sa;
	if (metric != METRIC_COSINE)
		return s;
	if (qq == 0 || xx == 0) {
		*tol = 0;
		return 0;
	}
	*tol = *tol / (sqrt(qq) * sqrt(xx)) + 8 * FLT_EPSILON;
	return s / (sqrt(qq) * sqrt(xx));
}

static void
check_reference(const char *isa)
{
	use_isa(isa);
	for (size_t m = 0; m < 3; m++) {
		for (size_t di = 0; di < NDIMS; di++) {
			size_t d = DIMS[di], nq = 1 + rnd() % 9, n = 1 + rnd() % 40;
			float *q = rnd_floats(nq * d), *x = rnd_floats(n * d);
			float *out = malloc(nq * n * sizeof(float));

			cr_assert_not_null(out);
			/* a zero vector: cosine must say 0, not NaN */
			memset(x, 0, d * sizeof(float));
			dist_block(METRICS[m], q, nq, x, n, d, out);
			for (size_t a = 0; a < nq; a++)
				for (size_t i = 0; i < n; i++) {
					double tol, want = ref(METRICS[m], q + a * d, x + i * d, d,
					                       &tol);
					float got = out[a * n + i];
					cr_assert(fabs(got - want) <= tol,
					          "%s metric %d d %zu q %zu x %zu: got %.9g want "
					          "%.9g "
					          "(tolerance %.3g)",
					          isa, METRICS[m], d, a, i, got, want, tol);
				}
			free(q);
			free(x);
			free(out);
		}
	}
}

Test(reference, avx512)
{
	check_reference("avx512");
}

Test(reference, avx2)
{
	check_reference("avx2");
}

Test(reference, c)
{
	check_reference("c");
}

/* same_bits: the float the block gave and the one computed alone, bit
 * for bit (memcmp: NaN payloads and the sign of zero count) */
static void
same_bits(float block, float alone, const char *what, const char *isa, int metric, size_t d,
          size_t nq, size_t n, size_t a, size_t i)
{
	cr_assert(memcmp(&block, &alone, sizeof(float)) == 0,
	          "%s %s metric %d d %zu nq %zu n %zu pair (%zu, %zu): %.9g vs %.9g", what, isa,
	          metric, d, nq, n, a, i, block, alone);
}

/* check_determinism: a pair's float is the same whatever the block
 * around it, the alignment, and whether dist_block or dist_rows did it */
static void
check_determinism(const char *isa, int special)
{
	use_isa(isa);
	rng_state ^= (uint64_t)special;
	for (int trial = 0; trial < 42; trial++) {
		int metric = METRICS[trial % 3];
		size_t d = DIMS[(trial / 3) % NDIMS];
		size_t nq = 1 + rnd() % 70, n = 1 + rnd() % 600;
		size_t qoff = rnd() % 16, xoff = rnd() % 16, m = 1 + rnd() % (2 * n);
		float *qb = rnd_floats(qoff + nq * d), *xb = rnd_floats(xoff + n * d);
		float *q = qb + qoff, *x = xb + xoff, one;
		float *out = malloc(nq * n * sizeof(float)), *outr = malloc(nq * m * sizeof(float));
		uint32_t *rows = malloc(m * sizeof(uint32_t));

		cr_assert(out != NULL && outr != NULL && rows != NULL);
		if (special) {
			/* NaN, infinities, zeros, denormals sprinkled in */
			static const float sp[] = {NAN,   INFINITY, -INFINITY, 0.0f,
			                           -0.0f, 1e-40f,   3e38f};
			for (int k = 0; k < 20; k++) {
				x[rnd() % (n * d)] = sp[rnd() % 7];
				q[rnd() % (nq * d)] = sp[rnd() % 7];
			}
			memset(x + (n - 1) * d, 0, d * sizeof(float));
		}
		/* rows in any order, repeats allowed */
		for (size_t j = 0; j < m; j++)
			rows[j] = rnd() % n;
		dist_block(metric, q, nq, x, n, d, out);
		dist_rows(metric, q, nq, x, rows, m, d, outr);
		for (size_t a = 0; a < nq; a++)
			for (size_t j = 0; j < m; j++)
				same_bits(out[a * n + rows[j]], outr[a * m + j], "rows", isa,
				          metric, d, nq, n, a, rows[j]);
		/* pairs alone: the corners of the block and random ones */
		for (int k = 0; k < 60; k++) {
			size_t a = k == 0 ? 0 : k == 1 ? nq - 1 : rnd() % nq;
			size_t i = k == 0 ? 0 : k == 1 ? n - 1 : rnd() % n;
			uint32_t r = (uint32_t)i;

			dist_block(metric, q + a * d, 1, x + i * d, 1, d, &one);
			same_bits(out[a * n + i], one, "block", isa, metric, d, nq, n, a, i);
			dist_rows(metric, q + a * d, 1, x, &r, 1, d, &one);
			same_bits(out[a * n + i], one, "row", isa, metric, d, nq, n, a, i);
		}
		/* a sub-block starting mid-way: other tile boundaries */
		if (nq > 1 && n > 1) {
			size_t a0 = rnd() % nq, i0 = rnd() % n, snq = nq - a0, sn = n - i0;
			float *sub = malloc(snq * sn * sizeof(float));
			cr_assert_not_null(sub);
			for (size_t a = 0; a < snq; a++) {
				/* one query at a time against the tail of x */
				dist_block(metric, q + (a0 + a) * d, 1, x + i0 * d, sn, d,
				           sub + a * sn);
			}
			for (size_t a = 0; a < snq; a++)
				for (size_t i = 0; i < sn; i++)
					same_bits(out[(a0 + a) * n + i0 + i], sub[a * sn + i],
					          "sub-block", isa, metric, d, nq, n, a0 + a,
					          i0 + i);
			free(sub);
		}
		free(qb);
		free(xb);
		free(out);
		free(outr);
		free(rows);
	}
}

Test(determinism, avx512)
{
	check_determinism("avx512", 0);
}

Test(determinism, avx2)
{
	check_determinism("avx2", 0);
}

Test(determinism, c)
{
	check_determinism("c", 0);
}

Test(determinism, avx512_special_values)
{
	check_determinism("avx512", 1);
}

Test(determinism, avx2_special_values)
{
	check_determinism("avx2", 1);
}

Test(determinism, c_special_values)
{
	check_determinism("c", 1);
}

/* check_integers: SIFT-like bytes as floats; every partial sum is an
 * integer below 2^24, so L2 and IP must be exact — recall tests compare
 * with ground truth computed in integers */
static void
check_integers(const char *isa)
{
	enum { D = 128, NQ = 13, N = 301 };
	float *q = malloc(NQ * D * sizeof(float)), *x = malloc(N * D * sizeof(float));
	float *out = malloc(NQ * N * sizeof(float));

	use_isa(isa);
	cr_assert(q != NULL && x != NULL && out != NULL);
	for (size_t k = 0; k < NQ * D; k++)
		q[k] = (float)(rnd() % 256);
	for (size_t k = 0; k < N * D; k++)
		x[k] = (float)(rnd() % 256);
	/* the largest distance there is: all 0 against all 255 */
	memset(q, 0, D * sizeof(float));
	for (size_t k = 0; k < D; k++)
		x[k] = 255;
	for (int m = 0; m < 2; m++) {
		dist_block(METRICS[m], q, NQ, x, N, D, out);
		for (size_t a = 0; a < NQ; a++)
			for (size_t i = 0; i < N; i++) {
				int64_t s = 0;
				for (size_t k = 0; k < D; k++) {
					int64_t u = (int64_t)q[a * D + k],
					        v = (int64_t)x[i * D + k];
					s += METRICS[m] == METRIC_L2 ? (u - v) * (u - v) : u * v;
				}
				cr_assert_eq(out[a * N + i], (float)s,
				             "%s metric %d q %zu x %zu: %.1f, want %lld", isa,
				             METRICS[m], a, i, out[a * N + i], (long long)s);
			}
	}
	cr_assert_eq(out[0], 0); /* IP of the zero query */
	dist_block(METRIC_L2, q, 1, x, 1, D, out);
	cr_assert_eq(out[0], 128.0f * 255 * 255);
	free(q);
	free(x);
	free(out);
}

Test(integers, avx512)
{
	check_integers("avx512");
}

Test(integers, avx2)
{
	check_integers("avx2");
}

Test(integers, c)
{
	check_integers("c");
}

/* check_special: IEEE values propagate; a zero norm gives cosine 0 */
static void
check_special(const char *isa)
{
	for (size_t di = 0; di < NDIMS; di++) {
		size_t d = DIMS[di];
		float *q = calloc(d, sizeof(float)), *x = calloc(3 * d, sizeof(float)), out[3];

		use_isa(isa);
		cr_assert(q != NULL && x != NULL);
		for (size_t k = 0; k < d; k++) {
			q[k] = 1;
			x[k] = 2;
			x[2 * d + k] = 1;
		}
		x[d - 1] = NAN; /* vector 0: a NaN in the last lane */
		x[2 * d + d / 2] = INFINITY; /* vector 2: an infinity */
		/* vector 1: all zeros */
		dist_block(METRIC_L2, q, 1, x, 3, d, out);
		cr_assert(isnan(out[0]), "%s d %zu: %g", isa, d, out[0]);
		cr_assert_eq(out[1], (float)d, "%s d %zu: %g", isa, d, out[1]);
		cr_assert(isinf(out[2]) && out[2] > 0, "%s d %zu: %g", isa, d, out[2]);
		dist_block(METRIC_IP, q, 1, x, 3, d, out);
		cr_assert(isnan(out[0]));
		cr_assert_eq(out[1], 0);
		cr_assert(isinf(out[2]) && out[2] > 0);
		dist_block(METRIC_COSINE, q, 1, x, 3, d, out);
		cr_assert(isnan(out[0]));
		cr_assert_eq(out[1], 0, "%s d %zu: zero vector gives %g", isa, d, out[1]);
		cr_assert(isnan(out[2])); /* inf / inf */
		/* a zero query: cosine 0 against everything but NaN */
		memset(q, 0, d * sizeof(float));
		dist_block(METRIC_COSINE, q, 1, x + d, 2, d, out);
		cr_assert_eq(out[0], 0);
		cr_assert_eq(out[1], 0);
		/* parallel vectors, any scale: cosine 1 within rounding */
		for (size_t k = 0; k < d; k++) {
			q[k] = (float)(k % 5) + 1;
			x[k] = q[k] * 1e-15f;
			x[d + k] = q[k] * 1e15f;
		}
		dist_block(METRIC_COSINE, q, 1, x, 2, d, out);
		cr_assert(fabsf(out[0] - 1) < 1e-5f, "%s d %zu: %.9g", isa, d, out[0]);
		cr_assert(fabsf(out[1] - 1) < 1e-5f, "%s d %zu: %.9g", isa, d, out[1]);
		free(q);
		free(x);
	}
}

Test(special, avx512)
{
	check_special("avx512");
}

Test(special, avx2)
{
	check_special("avx2");
}

Test(special, c)
{
	check_special("c");
}

/* more than one pass of queries (lib/ works 64 at a time) */
Test(chunks, many_queries)
{
	enum { D = 33, NQ = 150, N = 70 };
	const char *isas[] = {"avx512", "avx2", "c"};

	for (int s = 0; s < 3; s++) {
		if (dist_force_isa(isas[s]) != 0)
			continue;
		for (int m = 0; m < 3; m++) {
			float *q = rnd_floats(NQ * D), *x = rnd_floats(N * D), one;
			float *out = malloc(NQ * N * sizeof(float));

			cr_assert_not_null(out);
			dist_block(METRICS[m], q, NQ, x, N, D, out);
			for (size_t a = 0; a < NQ; a += 7)
				for (size_t i = 0; i < N; i += 3) {
					dist_block(METRICS[m], q + a * D, 1, x + i * D, 1, D, &one);
					same_bits(out[a * N + i], one, "chunk", isas[s], METRICS[m],
					          D, NQ, N, a, i);
				}
			free(q);
			free(x);
			free(out);
		}
	}
}

Test(isa, force)
{
	const char *best = dist_isa();

	cr_assert(strcmp(best, "avx512") == 0 || strcmp(best, "avx2") == 0 ||
	          strcmp(best, "c") == 0);
	cr_assert_eq(dist_force_isa("sse9"), -1);
	cr_assert_eq(dist_force_isa(""), -1);
	cr_assert_str_eq(dist_isa(), best);
	cr_assert_eq(dist_force_isa("c"), 0);
	cr_assert_str_eq(dist_isa(), "c");
	cr_assert_eq(dist_force_isa(NULL), 0);
	cr_assert_str_eq(dist_isa(), best);
	if (strcmp(best, "avx2") == 0)
		cr_assert_eq(dist_force_isa("avx512"), -1);
}

/* Criterion runs each test in its own process, so these see the
 * environment at first use */
Test(isa, env_lowers)
{
	setenv("VDB_ISA", "c", 1);
	cr_assert_str_eq(dist_isa(), "c");
}

Test(isa, env_unknown_ignored)
{
	const char *got, *best = "c";

	setenv("VDB_ISA", "fastest", 1);
	got = dist_isa();
	/* the best this CPU has, found by asking for each */
	if (dist_force_isa("avx2") == 0)
		best = "avx2";
	if (dist_force_isa("avx512") == 0)
		best = "avx512";
	cr_assert_str_eq(got, best);
}

Test(isa, bad_metric_poisons)
{
	float q[4] = {1, 2, 3, 4}, out[1] = {0};

	dist_block(99, q, 1, q, 1, 4, out);
	cr_assert(isnan(out[0]));
}

/* ---- dist_select, dist_sqnorms, dist_select_dot ---------------------- */

static float
rnd_special(void)
{
	static const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1.0f, -1.0f};
	return rnd() % 8 == 0 ? sp[rnd() % 7] : rnd_float();
}

static void
check_select(void)
{
	uint32_t idx[80];

	for (size_t n = 0; n <= 70; n++) {
		float *d = malloc((n ? n : 1) * sizeof(float));
		cr_assert_not_null(d);
		for (int round = 0; round < 20; round++) {
			for (size_t i = 0; i < n; i++)
				d[i] = rnd_special();
			float bound = round == 0   ? INFINITY
			              : round == 1 ? -INFINITY
			                           : rnd_special();
			if (isnan(bound))
				bound = 0.5f;
			for (int neg = 0; neg <= 1; neg++) {
				size_t k = dist_select(d, n, neg, bound, idx), want = 0;
				for (size_t i = 0; i < n; i++) {
					float key = neg ? -d[i] : d[i];
					if (key <= bound) {
						cr_assert_lt(want, k, "n %zu: %zu missing", n, i);
						cr_assert_eq(
						        idx[want], i,
						        "n %zu neg %d: pick %zu is %u, want %zu", n,
						        neg, want, idx[want], i);
						want++;
					}
				}
				cr_assert_eq(k, want, "n %zu neg %d bound %g: %zu picks, want %zu",
				             n, neg, (double)bound, k, want);
			}
		}
		free(d);
	}
}

Test(select, avx512)
{
	use_isa("avx512");
	check_select();
}
Test(select, avx2)
{
	use_isa("avx2");
	check_select();
}
Test(select, c)
{
	use_isa("c");
	check_select();
}

static void
check_sqnorms(void)
{
	for (size_t di = 0; di < NDIMS; di++) {
		size_t d = DIMS[di], n = 37;
		float *x = rnd_floats(n * d), out[37], out2[37];
		uint32_t rows[37];
		for (size_t i = 0; i < n; i++)
			rows[i] = (uint32_t)(n - 1 - i);
		dist_sqnorms(x, NULL, n, d, out);
		dist_sqnorms(x, rows, n, d, out2);
		for (size_t i = 0; i < n; i++) {
			double ref = 0;
			for (size_t k = 0; k < d; k++)
				ref += (double)x[i * d + k] * x[i * d + k];
			cr_assert_leq(fabs(out[i] - ref), 1e-5 * ref + 1e-30,
			              "d %zu row %zu: %g, want %g", d, i, (double)out[i], ref);
			cr_assert_eq(out2[n - 1 - i], out[i], "d %zu: rows give another norm", d);
		}
		free(x);
	}
}

Test(sqnorms, avx512)
{
	use_isa("avx512");
	check_sqnorms();
}
Test(sqnorms, avx2)
{
	use_isa("avx2");
	check_sqnorms();
}
Test(sqnorms, c)
{
	use_isa("c");
	check_sqnorms();
}

/* dist_select_dot never leaves out a row whose exact L2 distance is at or
 * under the bound: near-duplicates (where the shortcut's cancellation is
 * worst), large norms, norms that overflow, NaN; and it still leaves out
 * most rows of well-spread data */
static void
check_select_dot(void)
{
	enum { N = 64 };
	static const float scales[] = {1, 1e-3f, 1e3f, 1e15f, 1e19f, 1e-20f};
	uint32_t idx[N];
	float ex[N], dot[N], xx[N], qq;

	for (size_t di = 0; di < NDIMS; di++) {
		size_t d = DIMS[di], extra = 0, cases = 0;
		float *q = malloc(d * sizeof(float)), *x = malloc(N * d * sizeof(float));
		cr_assert(q && x);
		for (size_t sc = 0; sc < sizeof(scales) / sizeof(scales[0]); sc++) {
			for (size_t k = 0; k < d; k++)
				q[k] = rnd_float() * scales[sc];
			for (size_t i = 0; i < N; i++)
				for (size_t k = 0; k < d; k++) {
					float v = rnd_float() * scales[sc];
					/* a quarter: q itself, nudged by an ulp or a few */
					if (i % 4 == 0)
						v = nextafterf(q[k],
						               rnd() % 2 ? INFINITY : -INFINITY);
					if (i % 4 == 1)
						v = q[k] * (1 + (float)(rnd() % 8) * 0x1p-20f);
					x[i * d + k] = v;
				}
			if (d > 3)
				x[5 * d + 2] = NAN;
			dist_block(METRIC_L2, q, 1, x, N, d, ex);
			dist_block(METRIC_IP, q, 1, x, N, d, dot);
			dist_sqnorms(x, NULL, N, d, xx);
			dist_sqnorms(q, NULL, 1, d, &qq);
			for (size_t b = 0; b < N; b++) {
				float bound = ex[b];
				if (isnan(bound))
					continue;
				size_t k = dist_select_dot(dot, xx, N, qq, d, bound, idx), t = 0,
				       in = 0;
				for (size_t i = 0; i < N; i++) {
					while (t < k && idx[t] < i)
						t++;
					int picked = t < k && idx[t] == i;
					in += ex[i] <= bound;
					if (ex[i] <= bound)
						cr_assert(picked,
						          "d %zu scale %g: row %zu (L2 %a) left "
						          "out at bound %a "
						          "(dot %a, |x|^2 %a, |q|^2 %a)",
						          d, (double)scales[sc], i, (double)ex[i],
						          (double)bound, (double)dot[i],
						          (double)xx[i], (double)qq);
				}
				if (sc == 0 && b % 4 >= 2) { /* spread rows, ordinary norms */
					extra += k - in;
					cases++;
				}
			}
		}
		/* the allowance for rounding rarely lets in a row that the exact
		 * distance then turns away */
		cr_assert_leq(extra, cases * N / 20, "d %zu: %zu rows picked needlessly of %zu", d,
		              extra, cases * N);
		free(q);
		free(x);
	}
}

Test(select_dot, avx512)
{
	use_isa("avx512");
	check_select_dot();
}
Test(select_dot, avx2)
{
	use_isa("avx2");
	check_select_dot();
}
Test(select_dot, c)
{
	use_isa("c");
	check_select_dot();
}
