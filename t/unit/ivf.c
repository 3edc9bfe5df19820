/* ivf.c: unit tests for lib/ivf.c (IVF_FLAT, IVF_SQ8, IVF_PQ): build ->
 * index_write -> index_open -> ivf_open -> search round trips for every
 * type, metric and ISA; keys bit-identical to the exact kernels; every
 * list probed gives exact search's answer; allow masks; recall on
 * TEXMEX siftsmall at the defaults; damaged and malformed indexes; small
 * and degenerate segments. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "index.h"
#include "ivf.h"
#include "schema.h"
#include "store.h"
#include "unit.h"
#include "ann_check.h"

static char *tmp;
static struct store *st;

static void
setup(void)
{
	struct vdb_err e;
	char *objdir;

	tmp = unit_tmpdir();
	objdir = unit_path(tmp, "objects");
	cr_assert_eq(store_open_file(objdir, &st, &e), VDB_OK, "%s", e.msg);
	free(objdir);
}

static void
teardown(void)
{
	dist_force_isa(NULL);
	store_close(st);
	unit_rmtree(tmp);
}

TestSuite(ivf, .init = setup, .fini = teardown);

static const int TYPES[] = {IDX_IVF_FLAT, IDX_IVF_SQ8, IDX_IVF_PQ};
static const int METRICS[] = {METRIC_L2, METRIC_IP, METRIC_COSINE};
static const char *const ISAS[] = {"avx512", "avx2", "c"};

/* ---- data ---- */

static uint64_t rng_state;

static uint32_t
rnd(void)
{
	return unit_xorshift(&rng_state);
}

static float
gauss(void)
{
	return unit_gauss(&rng_state);
}

/* clustered: n points around ncl random centres, every one of its own
 * norm (IP and cosine differ) */
static float *
clustered(size_t n, uint32_t dim, uint32_t ncl, uint64_t seed)
{
	float *c = malloc((size_t)ncl * dim * sizeof(float));
	float *x = malloc((n ? n : 1) * dim * sizeof(float));

	rng_state = seed | 1;
	cr_assert(c && x);
	for (size_t i = 0; i < (size_t)ncl * dim; i++)
		c[i] = 10 * gauss();
	for (size_t i = 0; i < n; i++) {
		uint32_t k = rnd() % ncl;
		float scale = 0.5f + (float)(rnd() % 100) / 50.0f;
		for (uint32_t t = 0; t < dim; t++)
			x[i * dim + t] = scale * (c[(size_t)k * dim + t] + 3 * gauss());
	}
	free(c);
	return x;
}

/* ---- building and opening ---- */

struct opened {
	struct index_file f;
	struct ivf v;
	char key[65];
	char *path;
};

static int
build_write(const float *vec, uint64_t n, uint32_t dim, int metric, struct index_spec spec,
            int threads, char key[65], struct vdb_err *e)
{
	struct index_spec r;
	struct ivf_built b;
	struct index_hdr h = {
	        .type = (uint32_t)spec.type, .metric = (uint32_t)metric, .dim = dim, .rows = n};
	uint64_t bytes;
	int rc;

	cr_assert_eq(index_spec_check(&spec, dim, e), VDB_OK, "%s", e->msg);
	index_spec_resolve(&spec, n, dim, &r);
	if ((rc = ivf_build(vec, n, dim, metric, &r, threads, NULL, NULL, &b, e)) != VDB_OK)
		return rc;
	memcpy(h.param, b.param, sizeof h.param);
	rc = index_write(st, &h, b.sec, b.nsec, key, &bytes, e);
	ivf_built_free(&b);
	return rc;
}

static void
open_key(struct opened *o)
{
	struct vdb_err e;

	cr_assert_eq(store_local_path(st, o->key, &o->path, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(index_open(o->path, &o->f, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(index_verify(&o->f, o->key, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(ivf_open(&o->f, &o->v, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(ivf_check(&o->v, &e), VDB_OK, "%s", e.msg);
}

static void
build_open(const float *vec, uint64_t n, uint32_t dim, int metric, struct index_spec spec,
           struct opened *o)
{
	struct vdb_err e;

	memset(o, 0, sizeof *o);
	cr_assert_eq(build_write(vec, n, dim, metric, spec, 2, o->key, &e), VDB_OK, "%s", e.msg);
	open_key(o);
}

static void
closed(struct opened *o)
{
	index_close(&o->f);
	free(o->path);
}

static struct index_spec
spec_of(int type, uint32_t nlist, uint32_t m)
{
	return (struct index_spec){
	        .type = type, .nlist = nlist, .pq_m = type == IDX_IVF_PQ ? m : 0};
}

/* ---- searching ---- */

/* exact: the k best allowed rows by (key, row), keys as exact search
 * makes them */
static uint32_t
exact(const float *vec, uint64_t n, uint32_t dim, int metric, const float *q, uint32_t k,
      const uint8_t *allow, struct ann_hit *out)
{
	float *d = malloc((n ? n : 1) * sizeof(float));
	struct ann_hit *all = malloc((n ? n : 1) * sizeof *all);
	uint32_t m = 0;

	cr_assert(d && all);
	if (n)
		dist_block(metric, q, 1, vec, n, dim, d);
	for (uint64_t i = 0; i < n; i++)
		if (!allow || allow[i])
			all[m++] =
			        (struct ann_hit){(uint32_t)i, metric == METRIC_L2 ? d[i] : -d[i]};
	/* selection sort of the first k: n is small here */
	for (uint32_t a = 0; a < k && a < m; a++) {
		uint32_t b = a;
		for (uint32_t c = a + 1; c < m; c++)
			if (all[c].key < all[b].key ||
			    (all[c].key == all[b].key && all[c].row < all[b].row))
				b = c;
		struct ann_hit t = all[a];
		all[a] = all[b];
		all[b] = t;
	}
	m = m < k ? m : k;
	memcpy(out, all, m * sizeof *out);
	free(d);
	free(all);
	return m;
}

static void
check_hits(const struct ivf *v, const float *vec, const float *q, const uint8_t *allow,
           const struct ann_hit *h, uint32_t n)
{
	ann_check_hits(v->metric, v->rows, v->dim, vec, q, allow, h, n);
}

static uint32_t
search(const struct ivf *v, const float *vec, const float *q, uint32_t k, uint32_t nprobe,
       uint32_t refine, const uint8_t *allow, struct ivf_scratch *s, struct ann_hit *out)
{
	struct vdb_err e;
	uint32_t n = 12345;

	cr_assert_eq(ivf_search(v, vec, q, k, nprobe, refine, allow, s, out, &n, &e), VDB_OK, "%s",
	             e.msg);
	cr_assert_leq(n, k);
	check_hits(v, vec, q, allow, out, n);
	return n;
}

/* every list probed, every candidate refined: exactly exact search */
static void
assert_exact(const struct opened *o, const float *vec, const float *q, uint32_t k,
             const uint8_t *allow, struct ivf_scratch *s)
{
	struct ann_hit got[64], want[64];
	uint32_t ng = search(&o->v, vec, q, k, o->v.nlist, (uint32_t)o->v.rows + 1, allow, s, got);
	uint32_t nw = exact(vec, o->v.rows, o->v.dim, o->v.metric, q, k, allow, want);

	cr_assert_eq(ng, nw);
	for (uint32_t i = 0; i < ng; i++) {
		cr_assert_eq(got[i].row, want[i].row, "hit %u: row %u, exact search says %u", i,
		             got[i].row, want[i].row);
		cr_assert_eq(memcmp(&got[i].key, &want[i].key, 4), 0);
	}
}

static int
row_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct ann_hit *)a)->row, y = ((const struct ann_hit *)b)->row;

	return x < y ? -1 : x > y;
}

/* round_trip: one index, searched in every ISA this CPU has */
static void
round_trip(int type, int metric, uint32_t dim, uint32_t m)
{
	uint64_t n = 1500;
	uint64_t seed = 99 + (uint64_t)type * 7 + (uint64_t)metric;
	float *vec = clustered(n, dim, 12, seed), *q = clustered(20, dim, 12, seed);
	struct opened o;
	struct ivf_scratch *s;
	struct ann_hit h[64], sets[20][10];
	uint32_t nset[20];
	int first = 1;

	build_open(vec, n, dim, metric, spec_of(type, 16, m), &o);
	cr_assert_eq(o.v.type, type);
	cr_assert_eq(o.v.metric, metric);
	cr_assert_eq(o.v.nlist, 16);
	cr_assert_eq(o.v.pq_m, type == IDX_IVF_PQ ? m : 0);
	cr_assert_not_null(s = ivf_scratch_new(&o.v));
	for (int isa = 0; isa < 3; isa++) {
		if (dist_force_isa(ISAS[isa]) != 0)
			continue;
		for (int i = 0; i < 20; i++) {
			const float *qi = q + (size_t)i * dim;
			uint32_t nh;
			/* defaults, and a few nprobe */
			cr_assert_eq(search(&o.v, vec, qi, 10, 0, 0, NULL, s, h), 10);
			cr_assert_gt(search(&o.v, vec, qi, 10, 1, 0, NULL, s, h), 0);
			cr_assert_eq(search(&o.v, vec, qi, 7, 3, 2, NULL, s, h), 7);
			assert_exact(&o, vec, qi, 10, NULL, s);
			assert_exact(&o, vec, qi, 1, NULL, s);
			assert_exact(&o, vec, qi, 64, NULL, s);
			if (type == IDX_IVF_FLAT)
				continue;
			/* the candidates come from this file's kernels alone,
			 * which give the same bits in every ISA: so does the
			 * set of rows (the exact keys may differ in the last
			 * bits, and so the order) */
			nh = search(&o.v, vec, qi, 10, 4, 1, NULL, s, h);
			qsort(h, nh, sizeof *h, row_cmp);
			if (first) {
				memcpy(sets[i], h, sizeof sets[i]);
				nset[i] = nh;
				continue;
			}
			cr_assert_eq(nh, nset[i]);
			for (uint32_t a = 0; a < nh; a++)
				cr_assert_eq(h[a].row, sets[i][a].row, "%s: query %d differs",
				             ISAS[isa], i);
		}
		first = 0;
	}
	dist_force_isa(NULL);
	ivf_scratch_free(s);
	closed(&o);
	free(vec);
	free(q);
}

/* every type and metric; odd dimensions and sub-quantizer counts
 * exercise the kernels' tails */
Test(ivf, round_trip_every_type_metric_isa)
{
	for (int t = 0; t < 3; t++)
		for (int mi = 0; mi < 3; mi++) {
			round_trip(TYPES[t], METRICS[mi], 24, 6);
			round_trip(TYPES[t], METRICS[mi], 35, TYPES[t] == IDX_IVF_PQ ? 7 : 0);
		}
}

Test(ivf, pq_sub_quantizer_shapes)
{
	/* m < 4 (no gathers), m = 4k + 1, 2, 3, and one dimension each */
	static const uint32_t dims[] = {32, 32, 36, 40, 44, 16};
	static const uint32_t ms[] = {1, 2, 9, 10, 11, 16};

	for (int i = 0; i < 6; i++)
		round_trip(IDX_IVF_PQ, METRIC_L2, dims[i], ms[i]);
}

/* the index object does not depend on the threads or the ISA */
Test(ivf, build_deterministic)
{
	/* small: the plain C k-means (fmaf) is slow, with sanitizers most */
	uint64_t n = 800;
	uint32_t dim = 20;
	float *vec = clustered(n, dim, 9, 5);
	struct vdb_err e;

	for (int t = 0; t < 3; t++) {
		struct index_spec sp = spec_of(TYPES[t], 0, TYPES[t] == IDX_IVF_PQ ? 5 : 0);
		char k1[65], k2[65], k3[65];
		cr_assert_eq(build_write(vec, n, dim, METRIC_COSINE, sp, 1, k1, &e), VDB_OK);
		cr_assert_eq(build_write(vec, n, dim, METRIC_COSINE, sp, 3, k2, &e), VDB_OK);
		cr_assert_str_eq(k1, k2, "threads change the %s index", index_type_name(TYPES[t]));
		if (dist_force_isa("c") == 0) {
			cr_assert_eq(build_write(vec, n, dim, METRIC_COSINE, sp, 2, k3, &e),
			             VDB_OK);
			cr_assert_str_eq(k1, k3, "the ISA changes the %s index",
			                 index_type_name(TYPES[t]));
			dist_force_isa(NULL);
		}
	}
	free(vec);
}

Test(ivf, allow_mask)
{
	uint64_t n = 2000;
	uint32_t dim = 16;
	float *vec = clustered(n, dim, 10, 11), *q = clustered(30, dim, 10, 12);
	uint8_t *allow = malloc(n);

	for (uint64_t i = 0; i < n; i++)
		allow[i] = rnd() % 10 < 3;
	for (int t = 0; t < 3; t++)
		for (int mi = 0; mi < 3; mi++) {
			struct opened o;
			struct ivf_scratch *s;
			struct ann_hit got[10], want[10];
			double hits = 0;

			build_open(vec, n, dim, METRICS[mi], spec_of(TYPES[t], 0, 0), &o);
			s = ivf_scratch_new(&o.v);
			for (int i = 0; i < 30; i++) {
				const float *qi = q + (size_t)i * dim;
				uint32_t ng = search(&o.v, vec, qi, 10, 0, 0, allow, s, got);
				uint32_t nw = exact(vec, n, dim, METRICS[mi], qi, 10, allow, want);
				for (uint32_t a = 0; a < nw; a++)
					for (uint32_t b = 0; b < ng; b++)
						hits += want[a].row == got[b].row;
				assert_exact(&o, vec, qi, 10, allow, s);
			}
			cr_log_info("%s metric %d: recall among allowed %.3f",
			            index_type_name(TYPES[t]), METRICS[mi], hits / 300);
			cr_assert_geq(hits / 300, 0.9, "%s metric %d: recall among allowed %.3f",
			              index_type_name(TYPES[t]), METRICS[mi], hits / 300);
			ivf_scratch_free(s);
			closed(&o);
		}
	/* nothing allowed: nothing found */
	memset(allow, 0, n);
	{
		struct opened o;
		struct ann_hit h[5];
		build_open(vec, n, dim, METRIC_L2, spec_of(IDX_IVF_PQ, 0, 4), &o);
		struct ivf_scratch *s = ivf_scratch_new(&o.v);
		cr_assert_eq(search(&o.v, vec, q, 5, 0, 0, allow, s, h), 0);
		ivf_scratch_free(s);
		closed(&o);
	}
	free(allow);
	free(vec);
	free(q);
}

/* ---- siftsmall ---- */

static float *
read_vecs(const char *name, size_t *n, uint32_t *d)
{
	const char *dir = getenv("SIFT") ? getenv("SIFT") : "../shared/data/siftsmall";
	char *path;
	size_t len;
	unsigned char *p;
	float *v;
	int32_t dd;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		cr_assert_fail("out of memory");
	if (!unit_exists(path)) {
		free(path);
		return NULL;
	}
	p = unit_read_file(path, &len);
	free(path);
	memcpy(&dd, p, 4);
	*d = (uint32_t)dd;
	*n = len / (4 + 4 * (size_t)dd);
	v = malloc(*n * *d * 4);
	for (size_t i = 0; i < *n; i++)
		memcpy(v + i * *d, p + i * (4 + 4 * (size_t)dd) + 4, 4 * (size_t)dd);
	free(p);
	return v;
}

static double
recall10(const struct ivf *v, const float *base, const float *q, size_t nq, const int32_t *gt,
         uint32_t gd, uint32_t nprobe, struct ivf_scratch *s)
{
	struct ann_hit h[10];
	double hits = 0;

	for (size_t i = 0; i < nq; i++) {
		uint32_t n = search(v, base, q + i * v->dim, 10, nprobe, 0, NULL, s, h);
		for (uint32_t a = 0; a < n; a++)
			for (int g = 0; g < 10; g++)
				hits += (int32_t)h[a].row == gt[i * gd + g];
	}
	return hits / (double)(nq * 10);
}

Test(ivf, siftsmall_recall_at_defaults, .timeout = 600)
{
	static const double bar[] = {0.95, 0.90, 0.70};
	size_t n, nq, ng;
	uint32_t d, dq, dg;
	float *base = read_vecs("siftsmall_base.fvecs", &n, &d);
	float *q = read_vecs("siftsmall_query.fvecs", &nq, &dq);
	int32_t *gt = (int32_t *)read_vecs("siftsmall_groundtruth.ivecs", &ng, &dg);

	if (base == NULL || q == NULL || gt == NULL)
		cr_skip_test("no siftsmall (set SIFT=DIR)");
	cr_assert_eq(d, dq);
	for (int t = 0; t < 3; t++) {
		struct opened o;
		struct ivf_scratch *s;
		double r, prev = 0;

		build_open(base, n, d, METRIC_L2, spec_of(TYPES[t], 0, 0), &o);
		s = ivf_scratch_new(&o.v);
		r = recall10(&o.v, base, q, nq, gt, dg, 0, s);
		cr_log_info("%s: nlist %u, nprobe %u, refine %u: recall@10 %.3f",
		            index_type_name(TYPES[t]), o.v.nlist, ivf_default_nprobe(&o.v),
		            ivf_default_refine(&o.v), r);
		cr_assert_geq(r, bar[t], "%s: recall@10 %.3f at the defaults, want %.2f",
		              index_type_name(TYPES[t]), r, bar[t]);
		/* more lists, more recall: never less for IVF_FLAT (a larger
		 * candidate set keeps every true neighbour it had), at most a
		 * hair less for the approximate codes */
		for (uint32_t p = 1; p <= o.v.nlist; p *= 2) {
			double rp = recall10(&o.v, base, q, nq, gt, dg, p, s);
			cr_assert_geq(rp, prev - (TYPES[t] == IDX_IVF_FLAT ? 0 : 0.005),
			              "%s: recall %.3f at nprobe %u, %.3f before",
			              index_type_name(TYPES[t]), rp, p, prev);
			prev = rp > prev ? rp : prev;
		}
		cr_assert_gt(prev, recall10(&o.v, base, q, nq, gt, dg, 1, s) + 0.3);
		ivf_scratch_free(s);
		closed(&o);
	}
	free(base);
	free(q);
	free(gt);
}

/* ---- small and odd segments ---- */

Test(ivf, more_lists_than_rows)
{
	uint64_t n = 10;
	uint32_t dim = 8;
	float *vec = clustered(n, dim, 3, 21);

	for (int t = 0; t < 3; t++) {
		struct opened o;
		struct ann_hit h[20];
		build_open(vec, n, dim, METRIC_L2, spec_of(TYPES[t], 64, 0), &o);
		cr_assert_eq(o.v.nlist, 10, "lists beyond the rows are not made");
		struct ivf_scratch *s = ivf_scratch_new(&o.v);
		cr_assert_eq(search(&o.v, vec, vec + 3 * dim, 20, 64, 0, NULL, s, h), 10);
		cr_assert_eq(h[0].row, 3);
		assert_exact(&o, vec, vec + 5 * dim, 4, NULL, s);
		ivf_scratch_free(s);
		closed(&o);
	}
	free(vec);
}

Test(ivf, zero_and_one_rows)
{
	uint32_t dim = 12;
	float *vec = clustered(1, dim, 1, 22), q[12] = {1};

	for (int t = 0; t < 3; t++)
		for (int mi = 0; mi < 3; mi++)
			for (uint64_t n = 0; n <= 1; n++) {
				struct opened o;
				struct ann_hit h[3];
				build_open(vec, n, dim, METRICS[mi], spec_of(TYPES[t], 0, 0), &o);
				cr_assert_eq(o.v.nlist, 1);
				struct ivf_scratch *s = ivf_scratch_new(&o.v);
				cr_assert_not_null(s);
				cr_assert_eq(search(&o.v, vec, q, 3, 0, 0, NULL, s, h), n);
				if (n)
					cr_assert_eq(h[0].row, 0);
				cr_assert_eq(search(&o.v, vec, q, 0, 0, 0, NULL, s, h), 0);
				ivf_scratch_free(s);
				closed(&o);
			}
	free(vec);
}

Test(ivf, pq_m_must_divide_dim)
{
	struct index_spec sp = spec_of(IDX_IVF_PQ, 4, 5);
	struct ivf_built b;
	struct vdb_err e;
	float v[24] = {0};

	cr_assert_eq(index_spec_check(&sp, 12, &e), VDB_EINPUT);
	cr_assert_eq(ivf_build(v, 2, 12, METRIC_L2, &sp, 1, NULL, NULL, &b, &e), VDB_EINPUT);
	sp.pq_m = 4;
	cr_assert_eq(index_spec_check(&sp, 12, &e), VDB_OK);
}

Test(ivf, duplicate_vectors)
{
	/* 300 copies of 3 vectors: ties everywhere, broken by row */
	uint64_t n = 900;
	uint32_t dim = 8;
	float *vec = malloc(n * dim * sizeof(float));

	for (uint64_t i = 0; i < n; i++)
		for (uint32_t t = 0; t < dim; t++)
			vec[i * dim + t] = (float)((i % 3) * 5 + t);
	for (int t = 0; t < 3; t++)
		for (int mi = 0; mi < 3; mi++) {
			struct opened o;
			struct ann_hit h[10];
			build_open(vec, n, dim, METRICS[mi], spec_of(TYPES[t], 20, 2), &o);
			struct ivf_scratch *s = ivf_scratch_new(&o.v);
			search(&o.v, vec, vec + dim, 10, o.v.nlist, 0, NULL, s, h);
			assert_exact(&o, vec, vec + dim, 10, NULL, s);
			if (METRICS[mi] == METRIC_L2)
				for (int i = 0; i < 10; i++)
					cr_assert_eq(h[i].row, 1 + 3 * (uint32_t)i);
			ivf_scratch_free(s);
			closed(&o);
		}
	free(vec);
}

/* finite inputs, however large, give finite tables (ivf_check) and
 * searches that do not fail */
Test(ivf, large_magnitudes_stay_finite)
{
	uint64_t n = 400;
	uint32_t dim = 8;
	float *vec = clustered(n, dim, 4, 23);

	for (uint64_t i = 0; i < n * dim; i++)
		vec[i] *= (i % 7 == 0) ? 1e17f : 1;
	for (int t = 0; t < 3; t++)
		for (int mi = 0; mi < 3; mi++) {
			struct opened o;
			struct ann_hit h[5];
			build_open(vec, n, dim, METRICS[mi], spec_of(TYPES[t], 0, 0), &o);
			struct ivf_scratch *s = ivf_scratch_new(&o.v);
			search(&o.v, vec, vec, 5, 0, 0, NULL, s, h);
			ivf_scratch_free(s);
			closed(&o);
		}
	free(vec);
}

struct prog {
	pthread_t self;
	uint64_t last, total;
	int calls;
};

static void
on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct prog *p = arg;

	cr_assert(pthread_equal(p->self, pthread_self()), "progress from another thread");
	cr_assert_geq(done, p->last);
	cr_assert_leq(done, total);
	p->last = done;
	p->total = total;
	p->calls++;
}

Test(ivf, progress)
{
	uint64_t n = 3000;
	uint32_t dim = 8;
	float *vec = clustered(n, dim, 4, 24);
	struct index_spec sp = spec_of(IDX_IVF_PQ, 0, 4), r;
	struct prog p = {.self = pthread_self()};
	struct ivf_built b;
	struct vdb_err e;

	index_spec_resolve(&sp, n, dim, &r);
	cr_assert_eq(ivf_build(vec, n, dim, METRIC_L2, &r, 3, on_progress, &p, &b, &e), VDB_OK);
	cr_assert_gt(p.calls, 2);
	cr_assert_leq(p.calls, 300);
	cr_assert_eq(p.last, p.total);
	ivf_built_free(&b);
	free(vec);
}

/* ---- damage ---- */

static struct opened
small_index(int type, int metric)
{
	uint64_t n = 500;
	uint32_t dim = 8;
	float *vec = clustered(n, dim, 5, 31);
	struct opened o;

	build_open(vec, n, dim, metric, spec_of(type, 10, 4), &o);
	free(vec);
	return o;
}

/* every byte of every section flipped in turn (a sample of them for the
 * big ones): index_verify always notices, and ivf_open, ivf_check and a
 * search never crash */
Test(ivf, flipped_bytes)
{
	float *vec = clustered(500, 8, 5, 31);

	for (int t = 0; t < 3; t++) {
		struct opened o = small_index(TYPES[t], METRIC_L2);
		size_t len = o.f.size;
		unsigned char *buf = malloc(len);
		memcpy(buf, o.f.map, len);
		for (uint32_t si = 0; si < o.f.nsec; si++) {
			const struct index_section *sec = &o.f.sec[si];
			uint64_t step = sec->len > 512 ? sec->len / 97 : 1;
			for (uint64_t b = 0; b < sec->len; b += step) {
				struct index_file f;
				struct ivf v;
				struct vdb_err e;
				buf[sec->off + b] ^= 0x5a;
				cr_assert_eq(index_open_mem(buf, len, &f, &e), VDB_OK);
				cr_assert_eq(index_verify(&f, o.key, &e), VDB_ECORRUPT,
				             "section %u byte %llu", sec->id,
				             (unsigned long long)b);
				if (ivf_open(&f, &v, &e) == VDB_OK && ivf_check(&v, &e) == VDB_OK) {
					struct ivf_scratch *s = ivf_scratch_new(&v);
					struct ann_hit h[5];
					uint32_t nh;
					int rc = ivf_search(&v, vec, vec, 5, v.nlist, 0, NULL, s, h,
					                    &nh, &e);
					cr_assert(rc == VDB_OK || rc == VDB_ECORRUPT);
					ivf_scratch_free(s);
				} else {
					cr_assert_eq(e.rc, VDB_ECORRUPT, "%s", e.msg);
				}
				buf[sec->off + b] ^= 0x5a;
			}
		}
		free(buf);
		closed(&o);
	}
	free(vec);
}

/* write: the header and sections of o, with section id's replaced by
 * (p, len) (p NULL: left out; id 0: none replaced) and the header's
 * param[i] by val (i < 0: none), then open it */
static int
rewrite(const struct opened *o, uint32_t id, const void *p, uint64_t len, int pi, uint32_t val,
        int extra, struct opened *out, struct vdb_err *e)
{
	struct index_sec secs[IDX_MAX_SECTIONS];
	struct index_hdr h = o->f.h;
	size_t n = 0;
	uint64_t bytes;
	int rc;

	for (uint32_t i = 0; i < o->f.nsec; i++) {
		const struct index_section *s = &o->f.sec[i];
		if (s->id == id && p == NULL)
			continue;
		secs[n++] = s->id == id ? (struct index_sec){id, p, len}
		                        : (struct index_sec){s->id, o->f.map + s->off, s->len};
	}
	if (extra)
		secs[n++] = (struct index_sec){99, o->f.map, 8};
	if (pi >= 0)
		h.param[pi] = val;
	memset(out, 0, sizeof *out);
	cr_assert_eq(index_write(st, &h, secs, n, out->key, &bytes, e), VDB_OK);
	cr_assert_eq(store_local_path(st, out->key, &out->path, e), VDB_OK);
	cr_assert_eq(index_open(out->path, &out->f, e), VDB_OK);
	rc = ivf_open(&out->f, &out->v, e);
	if (rc == VDB_OK)
		rc = ivf_check(&out->v, e);
	closed(out);
	return rc;
}

Test(ivf, malformed_sections)
{
	for (int t = 0; t < 3; t++) {
		struct opened o = small_index(TYPES[t], METRIC_L2), x;
		struct vdb_err e;
		uint64_t rows = o.v.rows, nl = o.v.nlist;
		unsigned char *big = calloc(1, 1 << 20);
		uint64_t *off = malloc((nl + 1) * 8);
		uint32_t *lr = malloc(rows * 4);

		/* unchanged, it opens */
		cr_assert_eq(rewrite(&o, 0, NULL, 0, -1, 0, 0, &x, &e), VDB_OK, "%s", e.msg);
		for (uint32_t i = 0; i < o.f.nsec; i++) {
			const struct index_section *s = &o.f.sec[i];
			cr_assert_eq(rewrite(&o, s->id, NULL, 0, -1, 0, 0, &x, &e), VDB_ECORRUPT,
			             "section %u left out", s->id);
			cr_assert_eq(rewrite(&o, s->id, big, s->len + 4, -1, 0, 0, &x, &e),
			             VDB_ECORRUPT, "section %u 4 bytes long", s->id);
			if (s->len >= 4)
				cr_assert_eq(rewrite(&o, s->id, big, s->len - 4, -1, 0, 0, &x, &e),
				             VDB_ECORRUPT, "section %u 4 bytes short", s->id);
		}
		cr_assert_eq(rewrite(&o, 0, NULL, 0, -1, 0, 1, &x, &e), VDB_ECORRUPT,
		             "extra section");
		/* header parameters */
		cr_assert_eq(rewrite(&o, 0, NULL, 0, 0, 0, 0, &x, &e), VDB_ECORRUPT, "nlist 0");
		cr_assert_eq(rewrite(&o, 0, NULL, 0, 0, (uint32_t)nl + 1, 0, &x, &e), VDB_ECORRUPT);
		cr_assert_eq(rewrite(&o, 0, NULL, 0, 1, 3, 0, &x, &e), VDB_ECORRUPT, "m");
		cr_assert_eq(rewrite(&o, 0, NULL, 0, 2, 4, 0, &x, &e), VDB_ECORRUPT, "bits");
		cr_assert_eq(rewrite(&o, 0, NULL, 0, 5, 1, 0, &x, &e), VDB_ECORRUPT, "param[5]");
		/* list offsets: out of order, not ending at rows */
		memcpy(off, o.v.list_off, (nl + 1) * 8);
		off[1] = off[2] + 1;
		cr_assert_eq(rewrite(&o, IVF_SEC_LIST_OFF, off, (nl + 1) * 8, -1, 0, 0, &x, &e),
		             VDB_ECORRUPT);
		memcpy(off, o.v.list_off, (nl + 1) * 8);
		off[nl] = rows - 1;
		cr_assert_eq(rewrite(&o, IVF_SEC_LIST_OFF, off, (nl + 1) * 8, -1, 0, 0, &x, &e),
		             VDB_ECORRUPT);
		off[nl] = UINT64_MAX;
		cr_assert_eq(rewrite(&o, IVF_SEC_LIST_OFF, off, (nl + 1) * 8, -1, 0, 0, &x, &e),
		             VDB_ECORRUPT);
		/* list rows: out of range, twice: ivf_check */
		memcpy(lr, o.v.list_rows, rows * 4);
		lr[7] = (uint32_t)rows;
		cr_assert_eq(rewrite(&o, IVF_SEC_LIST_ROWS, lr, rows * 4, -1, 0, 0, &x, &e),
		             VDB_ECORRUPT);
		memcpy(lr, o.v.list_rows, rows * 4);
		lr[7] = lr[8];
		cr_assert_eq(rewrite(&o, IVF_SEC_LIST_ROWS, lr, rows * 4, -1, 0, 0, &x, &e),
		             VDB_ECORRUPT);
		free(big);
		free(off);
		free(lr);
		closed(&o);
	}
}

/* a row out of range that ivf_check would have caught: a search without
 * the check says corrupt instead of reading past the vectors */
Test(ivf, search_catches_bad_rows)
{
	float *vec = clustered(500, 8, 5, 31);

	for (int t = 0; t < 3; t++)
		for (int masked = 0; masked < 2; masked++) {
			struct opened o = small_index(TYPES[t], METRIC_IP);
			size_t len = o.f.size;
			unsigned char *buf = malloc(len);
			uint8_t *allow = malloc(500);
			struct index_file f;
			struct ivf v;
			struct vdb_err e;
			struct ann_hit h[500];
			uint32_t nh;

			memset(allow, 1, 500);
			memcpy(buf, o.f.map, len);
			cr_assert_eq(index_open_mem(buf, len, &f, &e), VDB_OK);
			cr_assert_eq(ivf_open(&f, &v, &e), VDB_OK);
			for (uint64_t p = 0; p < v.rows; p++)
				((uint32_t *)v.list_rows)[p] = 1000000 + (uint32_t)p;
			struct ivf_scratch *s = ivf_scratch_new(&v);
			cr_assert_eq(ivf_check(&v, &e), VDB_ECORRUPT);
			cr_assert_eq(ivf_search(&v, vec, vec, 500, v.nlist, 0,
			                        masked ? allow : NULL, s, h, &nh, &e),
			             VDB_ECORRUPT);
			ivf_scratch_free(s);
			free(buf);
			free(allow);
			closed(&o);
		}
	free(vec);
}

Test(ivf, scratch_of_another_index)
{
	struct opened a = small_index(IDX_IVF_FLAT, METRIC_L2);
	struct opened b = small_index(IDX_IVF_PQ, METRIC_L2);
	struct ivf_scratch *s = ivf_scratch_new(&a.v);
	struct ann_hit h[3];
	struct vdb_err e;
	uint32_t n;
	float q[8] = {0};

	cr_assert_eq(ivf_search(&b.v, q, q, 3, 0, 0, NULL, s, h, &n, &e), VDB_EINTERNAL);
	ivf_scratch_free(s);
	closed(&a);
	closed(&b);
}

/* the codes decode as formats/index.md says */
Test(ivf, codes_match_the_format)
{
	uint64_t n = 1200;
	uint32_t dim = 12;
	float *vec = clustered(n, dim, 6, 41);

	for (int mi = 0; mi < 3; mi++) {
		struct opened sq, pq;
		build_open(vec, n, dim, METRICS[mi], spec_of(IDX_IVF_SQ8, 8, 0), &sq);
		build_open(vec, n, dim, METRICS[mi], spec_of(IDX_IVF_PQ, 8, 3), &pq);
		for (int which = 0; which < 2; which++) {
			const struct ivf *v = which ? &pq.v : &sq.v;
			for (uint32_t l = 0; l < v->nlist; l++)
				for (uint64_t p = v->list_off[l]; p < v->list_off[l + 1]; p++) {
					const float *x = vec + (size_t)v->list_rows[p] * dim;
					const float *c = v->centroids + (size_t)l * dim;
					double nn = 0, r[12];
					for (uint32_t t = 0; t < dim; t++)
						nn += (double)x[t] * x[t];
					float s = METRICS[mi] == METRIC_COSINE
					                  ? (float)(1 / sqrt(nn))
					                  : 1;
					for (uint32_t t = 0; t < dim; t++)
						r[t] = METRICS[mi] == METRIC_COSINE
						               ? x[t] * s - c[t]
						               : x[t] - c[t];
					if (!which) {
						const uint8_t *code = v->codes + p * dim;
						for (uint32_t t = 0; t < dim; t++) {
							double dec =
							        v->sq_min[t] +
							        (double)code[t] * v->sq_scale[t];
							cr_assert_leq(fabs(dec - r[t]),
							              v->sq_scale[t] * 0.5001 +
							                      1e-6,
							              "position %llu component %u",
							              (unsigned long long)p, t);
						}
						continue;
					}
					/* PQ: each sub-vector's codeword is a nearest one */
					const uint8_t *code = v->codes + p * v->pq_m;
					uint32_t ds = dim / v->pq_m;
					double norm = 0;
					for (uint32_t j = 0; j < v->pq_m; j++) {
						double best = INFINITY, got = 0;
						for (uint32_t k = 0; k < 256; k++) {
							const float *w = v->pq_codebook +
							                 ((size_t)j * 256 + k) * ds;
							double d2 = 0;
							for (uint32_t t = 0; t < ds; t++)
								d2 += (r[j * ds + t] - w[t]) *
								      (r[j * ds + t] - w[t]);
							best = d2 < best ? d2 : best;
							if (k == code[j])
								got = d2;
						}
						cr_assert_leq(got, best * (1 + 1e-4) + 1e-4);
						const float *w = v->pq_codebook +
						                 ((size_t)j * 256 + code[j]) * ds;
						for (uint32_t t = 0; t < ds; t++)
							norm += (double)w[t] *
							        (w[t] + 2.0 * c[j * ds + t]);
					}
					if (v->pq_norm)
						cr_assert_eq(v->pq_norm[p], (float)norm);
					else
						cr_assert_neq(METRICS[mi], METRIC_L2);
				}
		}
		closed(&sq);
		closed(&pq);
	}
	free(vec);
}
