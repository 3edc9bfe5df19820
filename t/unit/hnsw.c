/* hnsw.c: unit tests for lib/hnsw.c (HNSW index sections, formats/index.md):
 * built, written as an index object, opened from the store and searched;
 * recall on siftsmall, keys bit-identical to exact search, allow masks,
 * the three metrics under every ISA, determinism, tiny and duplicate
 * inputs, and damaged indexes (never a crash, always VDB_ECORRUPT). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "file.h"
#include "hnsw.h"
#include "index.h"
#include "schema.h"
#include "store.h"
#include "unit.h"
#include "ann_check.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(void)
{
	return unit_xorshift(&rng_state);
}

static float
rnd_unit(void)
{
	return (float)(rnd() & 0xffffff) / 16777216.0f;
}

/* clustered: n vectors of d around 20 centres, norms varying (cosine and
 * IP must not rely on normalized input) */
static float *
clustered(size_t n, size_t d)
{
	float *c = malloc(20 * d * sizeof(float)), *v = malloc((n ? n : 1) * d * sizeof(float));

	cr_assert(c && v);
	for (size_t i = 0; i < 20 * d; i++)
		c[i] = rnd_unit() * 4 - 2;
	for (size_t i = 0; i < n; i++) {
		size_t k = rnd() % 20;
		float scale = 0.5f + rnd_unit();
		for (size_t j = 0; j < d; j++)
			v[i * d + j] = (c[k * d + j] + rnd_unit() - 0.5f) * scale;
	}
	free(c);
	return v;
}

/* ---- siftsmall ---- */

static const char *
sift_dir(void)
{
	const char *s = getenv("SIFT");

	return s && *s ? s : "../shared/data/siftsmall";
}

/* read_vecs: an fvecs or ivecs file (4-byte elements), or NULL if absent */
static void *
read_vecs(const char *name, size_t *n, size_t *d)
{
	char *path = unit_path(sift_dir(), name);
	unsigned char *raw, *out;
	size_t len;
	uint32_t dim;

	if (!unit_exists(path)) {
		free(path);
		return NULL;
	}
	raw = unit_read_file(path, &len);
	free(path);
	cr_assert(len >= 4);
	memcpy(&dim, raw, 4);
	cr_assert(dim > 0 && len % (4 + 4 * (size_t)dim) == 0);
	*d = dim;
	*n = len / (4 + 4 * (size_t)dim);
	out = malloc(*n * dim * 4);
	cr_assert_not_null(out);
	for (size_t i = 0; i < *n; i++)
		memcpy(out + i * dim * 4, raw + i * (4 + 4 * (size_t)dim) + 4, dim * 4);
	free(raw);
	return out;
}

struct sift {
	float *base, *query;
	int32_t *gt;
	size_t n, nq, d, gk;
};

static void
sift_load(struct sift *s)
{
	size_t d2, d3;

	s->base = read_vecs("siftsmall_base.fvecs", &s->n, &s->d);
	if (s->base == NULL)
		cr_skip_test("no siftsmall in %s (set $SIFT)", sift_dir());
	s->query = read_vecs("siftsmall_query.fvecs", &s->nq, &d2);
	s->gt = read_vecs("siftsmall_groundtruth.ivecs", &d3, &s->gk);
	cr_assert(s->query && s->gt && d2 == s->d && d3 == s->nq && s->gk >= 10);
}

static void
sift_free(struct sift *s)
{
	free(s->base);
	free(s->query);
	free(s->gt);
}

/* ---- an index in a store ---- */

struct idx {
	char *tmp;
	struct store *st;
	char key[65];
	struct index_file f;
	struct hnsw g;
	struct hnsw_built b;
	uint64_t bytes;
};

static int progress_calls;
static uint64_t progress_last;

static void
progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	cr_assert(done <= total && done >= progress_last);
	progress_last = done;
	progress_calls++;
}

static void
idx_build_only(struct idx *x, const float *vec, uint64_t n, uint32_t d, int metric, uint32_t m,
               uint32_t efc, int threads)
{
	struct index_spec spec = {.type = IDX_HNSW, .m = m, .ef_construction = efc}, r;
	struct vdb_err e;

	memset(x, 0, sizeof *x);
	index_spec_resolve(&spec, n, d, &r);
	progress_calls = 0;
	progress_last = 0;
	cr_assert_eq(hnsw_build(vec, n, d, metric, &r, threads, progress, NULL, &x->b, &e), VDB_OK,
	             "%s", e.msg);
	cr_assert(progress_calls >= 1 && progress_calls <= 300, "%d progress calls",
	          progress_calls);
	cr_assert_eq(progress_last, n);
}

/* idx_publish: hnsw_built -> index object in a fresh store -> its local
 * path -> index_open, index_verify, hnsw_open, hnsw_check */
static void
idx_publish(struct idx *x, uint64_t n, uint32_t d, int metric)
{
	struct index_hdr h = {.type = IDX_HNSW, .metric = (uint32_t)metric, .dim = d, .rows = n};
	struct vdb_err e;
	char *dir, *path;

	memcpy(h.param, x->b.param, sizeof h.param);
	x->tmp = unit_tmpdir();
	dir = unit_path(x->tmp, "objects");
	cr_assert_eq(store_open_file(dir, &x->st, &e), VDB_OK, "%s", e.msg);
	free(dir);
	cr_assert_eq(index_write(x->st, &h, x->b.sec, x->b.nsec, x->key, &x->bytes, &e), VDB_OK,
	             "%s", e.msg);
	cr_assert_eq(store_local_path(x->st, x->key, &path, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(index_open(path, &x->f, &e), VDB_OK, "%s", e.msg);
	free(path);
	cr_assert_eq(index_verify(&x->f, x->key, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(hnsw_open(&x->f, &x->g, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(hnsw_check(&x->g, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(x->g.rows, n);
	cr_assert_eq(x->g.dim, d);
}

static void
idx_build(struct idx *x, const float *vec, uint64_t n, uint32_t d, int metric, uint32_t m,
          uint32_t efc, int threads)
{
	idx_build_only(x, vec, n, d, metric, m, efc, threads);
	idx_publish(x, n, d, metric);
}

static void
idx_free(struct idx *x)
{
	index_close(&x->f);
	hnsw_built_free(&x->b);
	if (x->st)
		store_close(x->st);
	unit_rmtree(x->tmp);
	memset(x, 0, sizeof *x);
}

/* ---- exact search, the reference ---- */

static float
key_of(int metric, float d)
{
	return metric == METRIC_L2 ? d : -d;
}

/* exact: the k best rows among those allow permits, by (key, row) */
static uint32_t
exact(int metric, const float *vec, size_t n, size_t d, const float *q, const uint8_t *allow,
      uint32_t k, struct ann_hit *out)
{
	float *dist = malloc((n ? n : 1) * sizeof(float));
	uint32_t got = 0;

	cr_assert_not_null(dist);
	if (n && k)
		dist_block(metric, q, 1, vec, n, d, dist);
	for (size_t i = 0; i < n; i++) {
		struct ann_hit h = {(uint32_t)i, key_of(metric, dist[i])};
		uint32_t j;
		if (k == 0 || (allow && !allow[i]) || h.key != h.key)
			continue;
		if (got == k && !(h.key < out[k - 1].key))
			continue;
		j = got < k ? got++ : k - 1;
		while (j > 0 && h.key < out[j - 1].key) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = h;
	}
	free(dist);
	return got;
}

static void
check_hits(const struct hnsw *g, const float *vec, const float *q, const uint8_t *allow,
           const struct ann_hit *h, uint32_t n)
{
	ann_check_hits(g->metric, g->rows, g->dim, vec, q, allow, h, n);
}

static uint32_t
overlap(const struct ann_hit *a, uint32_t na, const struct ann_hit *b, uint32_t nb)
{
	uint32_t c = 0;

	for (uint32_t i = 0; i < na; i++)
		for (uint32_t j = 0; j < nb; j++)
			if (a[i].row == b[j].row) {
				c++;
				break;
			}
	return c;
}

/* recall: of search against exact, over nq queries, k each */
static double
recall(struct idx *x, const float *vec, const float *qs, size_t nq, uint32_t k, uint32_t ef,
       const uint8_t *allow)
{
	struct hnsw_scratch *s = hnsw_scratch_new(&x->g);
	struct ann_hit *got = malloc(k * sizeof *got), *want = malloc(k * sizeof *want);
	struct vdb_err e;
	uint64_t hit = 0, total = 0;

	cr_assert(s && got && want);
	for (size_t i = 0; i < nq; i++) {
		const float *q = qs + i * x->g.dim;
		uint32_t n, nw;
		cr_assert_eq(hnsw_search(&x->g, vec, q, k, ef, allow, s, got, &n, &e), VDB_OK, "%s",
		             e.msg);
		check_hits(&x->g, vec, q, allow, got, n);
		nw = exact(x->g.metric, vec, x->g.rows, x->g.dim, q, allow, k, want);
		cr_assert_eq(n, nw, "query %zu: %u results, %u exist", i, n, nw);
		hit += overlap(got, n, want, nw);
		total += nw;
	}
	hnsw_scratch_free(s);
	free(got);
	free(want);
	return total ? (double)hit / (double)total : 1;
}

/* ---- tests ---- */

Test(hnsw, default_ef)
{
	uint32_t ks[] = {1, 10, 40, 100, 1000, 100000};

	uint64_t rows[] = {0, 10000, 100000, 1000000, UINT64_MAX};

	for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
		for (size_t j = 0; j < sizeof rows / sizeof rows[0]; j++)
			cr_assert_geq(hnsw_default_ef(ks[i], rows[j]), ks[i]);
	/* small graphs keep 40; the list grows with the graph, never shrinks */
	cr_assert_eq(hnsw_default_ef(10, 10000), 40);
	cr_assert_eq(hnsw_default_ef(10, 100000), 63);
	cr_assert_eq(hnsw_default_ef(10, 1000000), 100);
	cr_assert_leq(hnsw_default_ef(10, UINT64_MAX), 65536);
	cr_assert_eq(hnsw_default_ef(1000, 1000000), 1500);
}

Test(hnsw, siftsmall_round_trip_recall)
{
	struct sift sf;
	struct idx x;
	struct hnsw_scratch *s;
	struct ann_hit h[10];
	struct vdb_err e;
	uint64_t hit = 0;

	sift_load(&sf);
	idx_build(&x, sf.base, sf.n, (uint32_t)sf.d, METRIC_L2, 0, 0, 1);
	cr_assert_eq(x.g.m, HNSW_DEFAULT_M);
	cr_assert_geq(x.g.m0, 2 * HNSW_DEFAULT_M);
	s = hnsw_scratch_new(&x.g);
	cr_assert_not_null(s);
	for (size_t i = 0; i < sf.nq; i++) {
		const float *q = sf.query + i * sf.d;
		uint32_t n;
		cr_assert_eq(hnsw_search(&x.g, sf.base, q, 10, 0, NULL, s, h, &n, &e), VDB_OK, "%s",
		             e.msg);
		cr_assert_eq(n, 10);
		check_hits(&x.g, sf.base, q, NULL, h, n);
		for (uint32_t r = 0; r < n; r++)
			for (size_t j = 0; j < 10; j++)
				if ((uint32_t)sf.gt[i * sf.gk + j] == h[r].row) {
					hit++;
					break;
				}
	}
	cr_assert_geq((double)hit / (double)(sf.nq * 10), 0.95, "recall@10 %.3f at ef %u",
	              (double)hit / (double)(sf.nq * 10), hnsw_default_ef(10, sf.n));
	/* larger k at the default ef: recall stays high */
	cr_assert_geq(recall(&x, sf.base, sf.query, 20, 100, 0, NULL), 0.95);
	hnsw_scratch_free(s);
	idx_free(&x);
	sift_free(&sf);
}

Test(hnsw, siftsmall_two_threads)
{
	struct sift sf;
	struct idx x;
	double r;

	sift_load(&sf);
	idx_build(&x, sf.base, sf.n, (uint32_t)sf.d, METRIC_L2, 0, 0, 2);
	r = recall(&x, sf.base, sf.query, sf.nq, 10, 0, NULL);
	cr_assert_geq(r, 0.95, "recall@10 %.3f", r);
	idx_free(&x);
	sift_free(&sf);
}

Test(hnsw, siftsmall_allow)
{
	struct sift sf;
	struct idx x;
	struct hnsw_scratch *s;
	struct ann_hit h[10], want[10];
	struct vdb_err e;
	uint8_t *allow;
	uint32_t n, nw, few[3] = {17, 4242, 9999};
	double r;

	sift_load(&sf);
	idx_build(&x, sf.base, sf.n, (uint32_t)sf.d, METRIC_L2, 0, 0, 1);
	allow = malloc(sf.n);
	cr_assert_not_null(allow);
	/* 20% disallowed: none returned, recall among the rest */
	for (size_t i = 0; i < sf.n; i++)
		allow[i] = rnd() % 5 != 0;
	r = recall(&x, sf.base, sf.query, sf.nq, 10, 0, allow);
	cr_assert_geq(r, 0.95, "recall@10 among allowed %.3f", r);
	/* 60 allowed: still 10 results, and mostly the right ones */
	memset(allow, 0, sf.n);
	for (size_t i = 0; i < 60; i++)
		allow[(i * 7919) % sf.n] = 1;
	r = recall(&x, sf.base, sf.query, 20, 10, 0, allow);
	cr_assert_geq(r, 0.8, "recall@10 among 60 allowed %.3f", r);
	/* 3 allowed: the walk runs out of graph, having found all three */
	s = hnsw_scratch_new(&x.g);
	memset(allow, 0, sf.n);
	for (size_t i = 0; i < 3; i++)
		allow[few[i]] = 1;
	cr_assert_eq(hnsw_search(&x.g, sf.base, sf.query, 10, 0, allow, s, h, &n, &e), VDB_OK);
	nw = exact(METRIC_L2, sf.base, sf.n, sf.d, sf.query, allow, 10, want);
	cr_assert_eq(n, 3);
	cr_assert_eq(nw, 3);
	check_hits(&x.g, sf.base, sf.query, allow, h, n);
	cr_assert_eq(overlap(h, n, want, nw), 3);
	/* none allowed: nothing, and no error */
	memset(allow, 0, sf.n);
	cr_assert_eq(hnsw_search(&x.g, sf.base, sf.query, 10, 0, allow, s, h, &n, &e), VDB_OK);
	cr_assert_eq(n, 0);
	hnsw_scratch_free(s);
	free(allow);
	idx_free(&x);
	sift_free(&sf);
}

/* every metric under every ISA the CPU has: recall against exact search
 * of the same ISA, keys bit-identical */
Test(hnsw, metrics_and_isas)
{
	static const char *const isas[] = {"avx512", "avx2", "c"};
	static const int metrics[] = {METRIC_L2, METRIC_IP, METRIC_COSINE};
	const size_t n = 3000, d = 20, nq = 40;
	float *v = clustered(n + nq, d);

	for (size_t i = 0; i < 3; i++) {
		if (dist_force_isa(isas[i]) != 0)
			continue;
		for (size_t m = 0; m < 3; m++) {
			struct idx x;
			double r;
			idx_build(&x, v, n, (uint32_t)d, metrics[m], 12, 100, 1);
			r = recall(&x, v, v + n * d, nq, 10, 0, NULL);
			cr_assert_geq(r, 0.95, "%s metric %d: recall@10 %.3f", isas[i], metrics[m],
			              r);
			idx_free(&x);
		}
	}
	dist_force_isa(NULL);
	free(v);
}

/* unreachable: rows no level-0 walk from the entry can reach */
static uint64_t
unreachable(const struct hnsw *g)
{
	uint32_t *queue = malloc((g->rows ? g->rows : 1) * sizeof *queue);
	uint8_t *seen = calloc(g->rows ? g->rows : 1, 1);
	uint64_t head = 0, tail = 0;

	cr_assert(queue && seen);
	if (g->rows) {
		queue[tail++] = g->entry;
		seen[g->entry] = 1;
	}
	while (head < tail) {
		const uint32_t *l = g->l0 + (size_t)queue[head++] * g->m0;
		for (uint32_t j = 0; j < g->m0 && l[j] != UINT32_MAX; j++)
			if (!seen[l[j]]) {
				seen[l[j]] = 1;
				queue[tail++] = l[j];
			}
	}
	free(queue);
	free(seen);
	return g->rows - tail;
}

/* several threads: a row's lists are whole before any walk can reach it,
 * so none is cut off (a walk that reached a row whose level-0 list was
 * still empty linked the new row to it alone, and lost that link when
 * the list was written).  Small, tight clusters in row order, as chunks
 * of one document come, make the race likely. */
Test(hnsw, two_threads_reach_every_row)
{
	const size_t n = 4000, d = 8;
	float *v = malloc(n * d * sizeof *v), c[8];
	uint64_t lost1, lost2 = 0;
	struct idx x;

	cr_assert_not_null(v);
	/* clusters of 20 consecutive rows */
	for (size_t i = 0; i < n; i++)
		for (size_t t = 0; t < d; t++) {
			if (i % 20 == 0)
				c[t] = rnd_unit() * 20 - 10;
			v[i * d + t] = c[t] + (rnd_unit() - 0.5f) * 0.1f;
		}
	idx_build(&x, v, n, (uint32_t)d, METRIC_L2, 8, 64, 1);
	lost1 = unreachable(&x.g);
	idx_free(&x);
	for (int trial = 0; trial < 10; trial++) {
		idx_build(&x, v, n, (uint32_t)d, METRIC_L2, 8, 64, 2);
		lost2 += unreachable(&x.g);
		idx_free(&x);
	}
	cr_log_info("unreachable rows: one thread %llu, two threads %llu over 10 builds",
	            (unsigned long long)lost1, (unsigned long long)lost2);
	cr_assert_leq(lost2, 10 * lost1 + 10, "one thread %llu, two threads %llu over 10 builds",
	              (unsigned long long)lost1, (unsigned long long)lost2);
	free(v);
}

/* one thread: the same sections, byte for byte, every time */
Test(hnsw, deterministic)
{
	const size_t n = 3000, d = 16;
	float *v = clustered(n, d);
	struct idx a, b;

	idx_build_only(&a, v, n, d, METRIC_L2, 8, 64, 1);
	idx_build_only(&b, v, n, d, METRIC_L2, 8, 64, 1);
	cr_assert_eq(a.b.nsec, b.b.nsec);
	cr_assert(memcmp(a.b.param, b.b.param, sizeof a.b.param) == 0);
	for (size_t i = 0; i < a.b.nsec; i++) {
		cr_assert_eq(a.b.sec[i].id, b.b.sec[i].id);
		cr_assert_eq(a.b.sec[i].len, b.b.sec[i].len);
		cr_assert(memcmp(a.b.sec[i].p, b.b.sec[i].p, a.b.sec[i].len) == 0,
		          "section %u differs", a.b.sec[i].id);
	}
	idx_free(&a);
	idx_free(&b);
	free(v);
}

/* 0, 1, 2 and a few more rows: exact answers, whatever k; with M = 2
 * (level-0 lists of 4) valid answers */
Test(hnsw, tiny)
{
	const size_t d = 5;
	float *v = clustered(20, d), q[5] = {0.1f, -0.2f, 0.3f, 0, 1};

	for (size_t n = 0; n <= 20; n++) {
		for (uint32_t m = 2; m <= 16; m += 14) {
			struct idx x;
			struct hnsw_scratch *s;
			struct ann_hit h[10], want[10];
			struct vdb_err e;
			uint32_t got, nw;

			idx_build(&x, v, n, d, METRIC_L2, m, 1, 1);
			s = hnsw_scratch_new(&x.g);
			cr_assert_not_null(s);
			for (uint32_t k = 0; k <= 10; k++) {
				cr_assert_eq(hnsw_search(&x.g, v, q, k, 0, NULL, s, h, &got, &e),
				             VDB_OK);
				check_hits(&x.g, v, q, NULL, h, got);
				cr_assert_leq(got, k);
				if (m == 2)
					continue;
				nw = exact(METRIC_L2, v, n, d, q, NULL, k, want);
				cr_assert_eq(got, nw, "n %zu k %u", n, k);
				for (uint32_t i = 0; i < got; i++)
					cr_assert_eq(h[i].row, want[i].row, "n %zu k %u", n, k);
			}
			hnsw_scratch_free(s);
			idx_free(&x);
		}
	}
	free(v);
}

Test(hnsw, duplicates)
{
	const size_t n = 2000, d = 8;
	float *v = clustered(n, d);
	struct idx x;
	struct hnsw_scratch *s;
	struct ann_hit h[10];
	struct vdb_err e;
	uint32_t got;
	double r;

	/* half the rows one vector */
	for (size_t i = 0; i < n; i += 2)
		memcpy(v + i * d, v, d * sizeof(float));
	idx_build(&x, v, n, d, METRIC_L2, 0, 0, 1);
	s = hnsw_scratch_new(&x.g);
	cr_assert_eq(hnsw_search(&x.g, v, v, 10, 0, NULL, s, h, &got, &e), VDB_OK);
	cr_assert_eq(got, 10);
	check_hits(&x.g, v, v, NULL, h, got);
	for (uint32_t i = 0; i < got; i++)
		cr_assert_eq(h[i].key, 0);
	/* the other rows are still found */
	r = recall(&x, v, v + d, 50, 10, 0, NULL);
	cr_assert_geq(r, 0.9, "recall@10 %.3f", r);
	hnsw_scratch_free(s);
	idx_free(&x);
	/* every row the same */
	for (size_t i = 0; i < n; i++)
		memcpy(v + i * d, v, d * sizeof(float));
	idx_build(&x, v, n, d, METRIC_COSINE, 0, 0, 2);
	s = hnsw_scratch_new(&x.g);
	cr_assert_eq(hnsw_search(&x.g, v, v, 10, 0, NULL, s, h, &got, &e), VDB_OK);
	cr_assert_eq(got, 10);
	check_hits(&x.g, v, v, NULL, h, got);
	hnsw_scratch_free(s);
	idx_free(&x);
	free(v);
}

/* ---- damage ---- */

/* a writable copy of an index object, opened from memory */
struct copy {
	unsigned char *buf;
	size_t len;
	struct index_file f;
	struct hnsw g;
};

static void
copy_open(struct copy *c, const struct idx *x)
{
	struct vdb_err e;

	c->len = x->f.size;
	c->buf = malloc(c->len);
	cr_assert_not_null(c->buf);
	memcpy(c->buf, x->f.map, c->len);
	cr_assert_eq(index_open_mem(c->buf, c->len, &c->f, &e), VDB_OK, "%s", e.msg);
}

static uint32_t *
copy_section(struct copy *c, uint32_t id, uint64_t *len)
{
	const unsigned char *p = index_section(&c->f, id, UINT64_MAX, len);

	cr_assert_not_null(p);
	return (uint32_t *)(c->buf + (p - c->buf));
}

static void
copy_header_param(struct copy *c, int i, uint32_t v)
{
	struct vdb_err e;

	put_u32(c->buf + 72 + 4 * i, v); /* the header's param[i] */
	index_close(&c->f);
	cr_assert_eq(index_open_mem(c->buf, c->len, &c->f, &e), VDB_OK, "%s", e.msg);
}

/* search_rc: searching every query, with and without an allow mask:
 * VDB_OK, or the first error met (either way may meet it first) */
static int
search_rc(const struct hnsw *g, const float *vec, const float *qs, size_t nq)
{
	struct hnsw_scratch *s = hnsw_scratch_new(g);
	uint8_t *allow = malloc(g->rows);
	struct ann_hit h[10];
	struct vdb_err e;
	uint32_t n;
	int rc = VDB_OK, rc2 = VDB_OK;

	cr_assert(s && allow);
	for (uint64_t i = 0; i < g->rows; i++)
		allow[i] = i % 3 != 0;
	for (size_t i = 0; i < nq && rc == VDB_OK; i++)
		rc = hnsw_search(g, vec, qs + i * g->dim, 10, 0, NULL, s, h, &n, &e);
	for (size_t i = 0; i < nq && rc2 == VDB_OK; i++)
		rc2 = hnsw_search(g, vec, qs + i * g->dim, 10, 0, allow, s, h, &n, &e);
	cr_assert(rc2 == VDB_OK || rc2 == VDB_ECORRUPT, "%d %s", rc2, e.msg);
	hnsw_scratch_free(s);
	free(allow);
	return rc != VDB_OK ? rc : rc2;
}

Test(hnsw, damaged_links)
{
	const size_t n = 2000, d = 8;
	float *v = clustered(n, d);
	struct idx x;
	struct copy c;
	struct vdb_err e;
	uint64_t len;
	uint32_t *l;

	idx_build(&x, v, n, d, METRIC_L2, 8, 40, 1);
	cr_assert_gt(x.g.max_level, 0);

	/* a level-0 link out of range in every row */
	copy_open(&c, &x);
	l = copy_section(&c, HNSW_SEC_L0, &len);
	for (size_t r = 0; r < n; r++)
		l[r * x.g.m0] = (uint32_t)n + 7;
	cr_assert_eq(hnsw_open(&c.f, &c.g, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(hnsw_check(&c.g, &e), VDB_ECORRUPT);
	cr_assert_eq(search_rc(&c.g, v, v, 5), VDB_ECORRUPT);
	index_close(&c.f);
	free(c.buf);

	/* an unused slot before a link */
	copy_open(&c, &x);
	l = copy_section(&c, HNSW_SEC_L0, &len);
	l[5 * x.g.m0] = 0xffffffffu;
	cr_assert_eq(hnsw_open(&c.f, &c.g, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(hnsw_check(&c.g, &e), VDB_ECORRUPT);
	index_close(&c.f);
	free(c.buf);

	/* every upper link out of range */
	copy_open(&c, &x);
	l = copy_section(&c, HNSW_SEC_UPPER_LINKS, &len);
	for (size_t i = 0; i < len / 4; i++)
		if (l[i] != 0xffffffffu)
			l[i] = (uint32_t)x.g.nupper;
	cr_assert_eq(hnsw_open(&c.f, &c.g, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(hnsw_check(&c.g, &e), VDB_ECORRUPT);
	cr_assert_eq(search_rc(&c.g, v, v, 5), VDB_ECORRUPT);
	index_close(&c.f);
	free(c.buf);

	/* an upper link to a node without that level */
	copy_open(&c, &x);
	{
		uint64_t lu, lo;
		uint32_t *up = copy_section(&c, HNSW_SEC_UPPER_LINKS, &lu);
		uint32_t *off = copy_section(&c, HNSW_SEC_UPPER_OFF, &lo);
		uint32_t top = x.g.entry_up, low = 0;
		while (off[low + 1] - off[low] != 1)
			low++;
		/* the entry's list at its top level names a level-1 node */
		up[((size_t)off[top] + x.g.max_level - 1) * x.g.m] = low;
	}
	cr_assert_eq(hnsw_open(&c.f, &c.g, &e), VDB_OK, "%s", e.msg);
	if (x.g.max_level > 1) {
		cr_assert_eq(hnsw_check(&c.g, &e), VDB_ECORRUPT);
		cr_assert_eq(search_rc(&c.g, v, v, 1), VDB_ECORRUPT);
	}
	index_close(&c.f);
	free(c.buf);

	idx_free(&x);
	free(v);
}

Test(hnsw, damaged_structure)
{
	const size_t n = 1000, d = 8;
	float *v = clustered(n, d);
	struct idx x;
	struct copy c;
	struct vdb_err e;
	uint64_t len;

	idx_build(&x, v, n, d, METRIC_L2, 8, 40, 1);

	/* header parameters that do not match the sections (efConstruction,
	 * param 2, is a record of the build, not a structure) */
	for (int p = 0; p < 7; p++) {
		if (p == 2)
			continue;
		copy_open(&c, &x);
		copy_header_param(&c, p, x.b.param[p] + 1);
		cr_assert_eq(hnsw_open(&c.f, &c.g, &e), VDB_ECORRUPT, "param %d", p);
		index_close(&c.f);
		free(c.buf);
	}
	/* upper offsets out of order */
	copy_open(&c, &x);
	{
		uint32_t *off = copy_section(&c, HNSW_SEC_UPPER_OFF, &len);
		off[1] = off[2];
	}
	cr_assert_eq(hnsw_open(&c.f, &c.g, &e), VDB_ECORRUPT);
	index_close(&c.f);
	free(c.buf);
	/* upper rows out of order */
	copy_open(&c, &x);
	{
		uint32_t *ur = copy_section(&c, HNSW_SEC_UPPER_ROWS, &len), t = ur[0];
		ur[0] = ur[1];
		ur[1] = t;
	}
	cr_assert_eq(hnsw_open(&c.f, &c.g, &e), VDB_ECORRUPT);
	index_close(&c.f);
	free(c.buf);
	idx_free(&x);

	/* a section a word short, or missing */
	for (int which = 0; which < 5; which++) {
		struct idx y;
		struct index_sec secs[4];
		struct index_hdr h = {.type = IDX_HNSW, .metric = METRIC_L2, .dim = d, .rows = n};
		struct index_file f;
		char *tmp = unit_tmpdir(), *dir = unit_path(tmp, "objects"), key[65], *path;
		struct store *st;
		uint64_t bytes;
		size_t ns = 4;

		idx_build_only(&y, v, n, d, METRIC_L2, 8, 40, 1);
		memcpy(h.param, y.b.param, sizeof h.param);
		memcpy(secs, y.b.sec, sizeof secs);
		if (which < 4)
			secs[which].len -= secs[which].len >= 4 ? 4 : 0;
		else
			ns = 3;
		cr_assert_eq(store_open_file(dir, &st, &e), VDB_OK);
		cr_assert_eq(index_write(st, &h, secs, ns, key, &bytes, &e), VDB_OK, "%s", e.msg);
		cr_assert_eq(store_local_path(st, key, &path, &e), VDB_OK);
		cr_assert_eq(index_open(path, &f, &e), VDB_OK, "%s", e.msg);
		cr_assert_eq(hnsw_open(&f, &y.g, &e), VDB_ECORRUPT, "case %d", which);
		index_close(&f);
		free(path);
		store_close(st);
		free(dir);
		unit_rmtree(tmp);
		hnsw_built_free(&y.b);
	}
	free(v);
}

/* random damage anywhere in the sections and the header's parameters:
 * open, check and search never read outside the object (ASan watches),
 * and what they report is OK or VDB_ECORRUPT */
Test(hnsw, damaged_random)
{
	const size_t n = 600, d = 8;
	float *v = clustered(n, d);
	struct idx x;

	idx_build(&x, v, n, d, METRIC_L2, 4, 20, 1);
	for (int trial = 0; trial < 300; trial++) {
		struct copy c;
		struct vdb_err e;
		size_t end = (size_t)(x.f.footer - x.f.map);
		int rc;

		copy_open(&c, &x);
		for (int k = 0; k < 1 + trial % 8; k++) {
			size_t at = trial % 3 == 0 ? 72 + rnd() % 32
			                           : IDX_HDR + rnd() % (end - IDX_HDR);
			c.buf[at] =
			        trial % 2 ? (unsigned char)rnd() : c.buf[at] ^ (1u << (rnd() % 8));
		}
		index_close(&c.f);
		cr_assert_eq(index_open_mem(c.buf, c.len, &c.f, &e), VDB_OK);
		rc = hnsw_open(&c.f, &c.g, &e);
		cr_assert(rc == VDB_OK || rc == VDB_ECORRUPT, "hnsw_open: %d %s", rc, e.msg);
		if (rc == VDB_OK) {
			rc = hnsw_check(&c.g, &e);
			cr_assert(rc == VDB_OK || rc == VDB_ECORRUPT);
			rc = search_rc(&c.g, v, v, 20);
			cr_assert(rc == VDB_OK || rc == VDB_ECORRUPT);
		}
		index_close(&c.f);
		free(c.buf);
	}
	idx_free(&x);
	free(v);
}
