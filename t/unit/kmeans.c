/* kmeans.c: unit tests for lib/kmeans.c: separated clusters found,
 * assignment rules (nearest, ties, NaN, spherical), the result the same
 * whatever the threads and the ISA, small and degenerate inputs, empty
 * clusters split, sampling. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "kmeans.h"
#include "schema.h"
#include "unit.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static float
gauss(void)
{
	return unit_gauss(&rng_state);
}

/* blobs: n points, point i in blob i % nb; blob b's centre is 100 b on
 * every axis, its points within a few units of it */
static float *
blobs(size_t n, uint32_t d, uint32_t nb)
{
	float *x = malloc(n * d * sizeof(float));

	cr_assert_not_null(x);
	for (size_t i = 0; i < n; i++)
		for (uint32_t t = 0; t < d; t++)
			x[i * d + t] = 100.0f * (float)(i % nb) + gauss();
	return x;
}

static struct kmeans_opt
opt(int threads)
{
	return (struct kmeans_opt){
	        .niter = 20, .max_per_centroid = 256, .seed = 42, .threads = threads};
}

/* converged, every centroid is the mean of the points nearest to it, and
 * none is empty (random starts may still split one blob and merge two:
 * that is a local optimum, as with FAISS) */
Test(kmeans, converges_to_a_fixed_point)
{
	uint32_t d = 5, k = 6;
	size_t n = 600;
	float *x = blobs(n, d, 9), *c = malloc(k * d * sizeof(float));
	uint32_t *a = malloc(n * sizeof(uint32_t));
	struct kmeans_opt o = opt(1);
	struct vdb_err e;

	o.niter = 100;
	cr_assert_eq(kmeans_train(x, NULL, n, d, k, &o, c, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(kmeans_assign(x, NULL, n, d, c, k, 0, 1, a, &e), VDB_OK);
	for (uint32_t j = 0; j < k; j++) {
		double sum[5] = {0};
		size_t cnt = 0;
		for (size_t i = 0; i < n; i++)
			if (a[i] == j) {
				cnt++;
				for (uint32_t t = 0; t < d; t++)
					sum[t] += x[i * d + t];
			}
		cr_assert_gt(cnt, 0, "cluster %u empty", j);
		for (uint32_t t = 0; t < d; t++)
			cr_assert(fabs(sum[t] / (double)cnt - c[j * d + t]) < 1e-3,
			          "centroid %u is not its points' mean", j);
	}
	free(x);
	free(c);
	free(a);
}

Test(kmeans, assign_nearest_first_on_tie_nan_to_zero)
{
	/* centroids 1 and 2 coincide; 0 is far */
	const float c[] = {10, 10, 1, 1, 1, 1};
	const float x[] = {1, 1, 9, 9, 1.1f, 0.9f, NAN, 0};
	uint32_t a[4];
	struct vdb_err e;

	cr_assert_eq(kmeans_assign(x, NULL, 4, 2, c, 3, 0, 1, a, &e), VDB_OK);
	cr_assert_eq(a[0], 1);
	cr_assert_eq(a[1], 0);
	cr_assert_eq(a[2], 1);
	cr_assert_eq(a[3], 0, "NaN point to centroid 0");
}

Test(kmeans, assign_rows_and_spherical)
{
	/* unit centroids along x and y; spherical goes by direction, not
	 * by distance */
	const float c[] = {1, 0, 0, 1};
	const float x[] = {100, 1, 0.1f, 0.2f, 5, 4, 0, 0};
	const uint32_t rows[] = {2, 0, 1};
	uint32_t a[3];
	struct vdb_err e;

	cr_assert_eq(kmeans_assign(x, rows, 3, 2, c, 2, 1, 1, a, &e), VDB_OK);
	cr_assert_eq(a[0], 0);
	cr_assert_eq(a[1], 0);
	cr_assert_eq(a[2], 1);
	cr_assert_eq(kmeans_assign(x, rows, 3, 2, c, 2, 0, 1, a, &e), VDB_OK);
	cr_assert_eq(a[2], 1);
	cr_assert_eq(a[1], 0, "L2: (100, 1) is nearer (1, 0)");
}

static float *
train(const float *x, size_t n, uint32_t d, uint32_t k, struct kmeans_opt o)
{
	float *c = malloc((size_t)k * d * sizeof(float));
	struct vdb_err e;

	cr_assert_not_null(c);
	cr_assert_eq(kmeans_train(x, NULL, n, d, k, &o, c, &e), VDB_OK, "%s", e.msg);
	return c;
}

Test(kmeans, same_result_any_threads)
{
	uint32_t d = 19, k = 37;
	size_t n = 5000;
	float *x = blobs(n, d, 50);
	for (size_t i = 0; i < n * d; i++)
		x[i] += 30 * gauss();
	for (int sph = 0; sph < 2; sph++) {
		struct kmeans_opt o = opt(1);
		o.spherical = sph;
		float *c1 = train(x, n, d, k, o);
		o.threads = 2;
		float *c2 = train(x, n, d, k, o);
		o.threads = 5;
		float *c5 = train(x, n, d, k, o);
		cr_assert_eq(memcmp(c1, c2, (size_t)k * d * 4), 0, "2 threads differ");
		cr_assert_eq(memcmp(c1, c5, (size_t)k * d * 4), 0, "5 threads differ");
		o.seed = 43;
		float *cs = train(x, n, d, k, o);
		cr_assert_neq(memcmp(c1, cs, (size_t)k * d * 4), 0, "the seed changes nothing");
		free(c1);
		free(c2);
		free(c5);
		free(cs);
	}
	free(x);
}

Test(kmeans, same_result_every_isa)
{
	static const char *const isas[] = {"avx512", "avx2", "c"};
	uint32_t k = 20;
	size_t n = 1500;

	for (uint32_t d = 3; d <= 35; d += 16) {
		float *x = blobs(n, d, 30), *ref = NULL;
		for (size_t i = 0; i < n * d; i++)
			x[i] += 40 * gauss();
		for (int i = 0; i < 3; i++) {
			if (dist_force_isa(isas[i]) != 0)
				continue;
			float *c = train(x, n, d, k, opt(2));
			if (ref == NULL)
				ref = c;
			else {
				cr_assert_eq(memcmp(ref, c, (size_t)k * d * 4), 0,
				             "%s differs, d = %u", isas[i], d);
				free(c);
			}
		}
		dist_force_isa(NULL);
		free(ref);
		free(x);
	}
}

Test(kmeans, spherical_centroids_are_unit)
{
	uint32_t d = 8, k = 5;
	size_t n = 400;
	float *x = blobs(n, d, 7);
	struct kmeans_opt o = opt(1);

	for (size_t i = 0; i < n * d; i++)
		x[i] = gauss() * (float)(1 + i % 3);
	o.spherical = 1;
	float *c = train(x, n, d, k, o);
	for (uint32_t j = 0; j < k; j++) {
		double s = 0;
		for (uint32_t t = 0; t < d; t++)
			s += (double)c[j * d + t] * c[j * d + t];
		cr_assert(fabs(s - 1) < 1e-5, "centroid %u has |c|^2 = %g", j, s);
	}
	free(c);
	free(x);
}

Test(kmeans, few_points)
{
	const float x[] = {1, 2, 3, 4, 5, 6};
	float c[5 * 2];
	struct kmeans_opt o = opt(1);
	struct vdb_err e;

	/* n <= k: the points, repeated */
	cr_assert_eq(kmeans_train(x, NULL, 3, 2, 5, &o, c, &e), VDB_OK);
	for (int j = 0; j < 5; j++) {
		cr_assert_eq(c[2 * j], x[2 * (j % 3)]);
		cr_assert_eq(c[2 * j + 1], x[2 * (j % 3) + 1]);
	}
	cr_assert_eq(kmeans_train(x, NULL, 0, 2, 5, &o, c, &e), VDB_OK);
	for (int j = 0; j < 10; j++)
		cr_assert_eq(c[j], 0);
	cr_assert_eq(kmeans_train(x, NULL, 3, 2, 0, &o, c, &e), VDB_EINTERNAL);
}

Test(kmeans, duplicates_leave_no_cluster_empty_that_can_split)
{
	/* 4 distinct points, 40 copies each, 10 clusters: splitting must
	 * terminate and every point must still find its own copy's centroid */
	uint32_t d = 3, k = 10;
	size_t n = 160;
	float *x = malloc(n * d * sizeof(float));
	uint32_t *a = malloc(n * sizeof(uint32_t));
	struct vdb_err e;

	for (size_t i = 0; i < n; i++)
		for (uint32_t t = 0; t < d; t++)
			x[i * d + t] = (float)((i % 4) * 10 + t + 1);
	float *c = train(x, n, d, k, opt(1));
	cr_assert_eq(kmeans_assign(x, NULL, n, d, c, k, 0, 1, a, &e), VDB_OK);
	for (size_t i = 0; i < n; i++) {
		cr_assert_lt(a[i], k);
		for (uint32_t t = 0; t < d; t++)
			cr_assert(fabsf(c[a[i] * d + t] - x[i * d + t]) < 0.1f);
	}
	free(c);
	free(x);
	free(a);
}

Test(kmeans, sample)
{
	uint32_t s1[100], s2[100];

	kmeans_sample(1000, 100, 7, s1);
	kmeans_sample(1000, 100, 7, s2);
	cr_assert_eq(memcmp(s1, s2, sizeof s1), 0);
	for (int i = 1; i < 100; i++)
		cr_assert_gt(s1[i], s1[i - 1]);
	cr_assert_lt(s1[99], 1000);
	kmeans_sample(100, 100, 7, s1);
	for (uint32_t i = 0; i < 100; i++)
		cr_assert_eq(s1[i], i);
}

Test(kmeans, trains_on_a_sample)
{
	/* 4 blobs, far more points than 4 x 8: the sample still finds them */
	uint32_t d = 4, k = 4;
	size_t n = 20000;
	float *x = blobs(n, d, k);
	struct kmeans_opt o = opt(2);

	o.max_per_centroid = 8;
	float *c = train(x, n, d, k, o);
	for (uint32_t b = 0; b < k; b++) {
		int found = 0;
		for (uint32_t j = 0; j < k; j++)
			found |= fabsf(c[j * d] - 100.0f * (float)b) < 3;
		cr_assert(found, "blob %u has no centroid", b);
	}
	free(c);
	free(x);
}
