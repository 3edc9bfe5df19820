/* ann.c: the index types behind one interface (ann.h). */
#include "ann.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int
ann_open(const char *path, struct ann *a, struct vdb_err *e)
{
	int rc;

	memset(a, 0, sizeof *a);
	if ((rc = index_open(path, &a->f, e)) != VDB_OK)
		return rc;
	a->type = (int)a->f.h.type;
	if (a->type == IDX_HNSW)
		rc = hnsw_open(&a->f, &a->h, e);
	else
		rc = ivf_open(&a->f, &a->v, e);
	if (rc != VDB_OK) {
		vdb_err_prefix(e, "%s: ", path);
		index_close(&a->f);
	}
	return rc;
}

void
ann_close(struct ann *a)
{
	index_close(&a->f);
	memset(a, 0, sizeof *a);
}

int
ann_match(const struct ann *a, const struct segment *s, const char *seg_key, struct vdb_err *e)
{
	char hex[65];

	sha256_hex(a->f.h.seg, hex);
	if (strcmp(hex, seg_key) != 0)
		return vdb_err_set(e, VDB_ECORRUPT, "index belongs to segment %s, not %s", hex,
		                   seg_key);
	if (a->f.h.rows != s->rows || a->f.h.dim != s->dim || (int)a->f.h.metric != s->metric)
		return vdb_err_set(e, VDB_ECORRUPT,
		                   "index header (rows %llu, dim %u, metric %u) does not match "
		                   "its segment (rows %llu, dim %u, metric %d)",
		                   (unsigned long long)a->f.h.rows, a->f.h.dim, a->f.h.metric,
		                   (unsigned long long)s->rows, s->dim, s->metric);
	return VDB_OK;
}

int
ann_check(const struct ann *a, struct vdb_err *e)
{
	return a->type == IDX_HNSW ? hnsw_check(&a->h, e) : ivf_check(&a->v, e);
}

struct ann_scratch {
	int type;
	struct hnsw_scratch *h;
	struct ivf_scratch *v;
};

struct ann_scratch *
ann_scratch_new(const struct ann *a)
{
	struct ann_scratch *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->type = a->type;
	if (a->type == IDX_HNSW)
		s->h = hnsw_scratch_new(&a->h);
	else
		s->v = ivf_scratch_new(&a->v);
	if (s->h == NULL && s->v == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void
ann_scratch_free(struct ann_scratch *s)
{
	if (s == NULL)
		return;
	hnsw_scratch_free(s->h);
	ivf_scratch_free(s->v);
	free(s);
}

int
ann_search(const struct ann *a, const float *vec, const float *q, uint32_t k,
           const struct ann_params *p, const uint8_t *allow, struct ann_scratch *s,
           struct ann_hit *out, uint32_t *nout, struct vdb_err *e)
{
	if ((s->type == IDX_HNSW) != (a->type == IDX_HNSW))
		return vdb_err_set(e, VDB_EINTERNAL, "ann: scratch of another index type");
	if (a->type == IDX_HNSW)
		return hnsw_search(&a->h, vec, q, k, p->ef, allow, s->h, out, nout, e);
	return ivf_search(&a->v, vec, q, k, p->nprobe, p->refine, allow, s->v, out, nout, e);
}

int
ann_plan(const struct ann *a, uint64_t allowed, uint32_t k, const struct ann_params *in,
         struct ann_params *out)
{
	uint64_t rows = a->f.h.rows;
	const char *env = getenv("VDB_FILTER_FALLBACK");
	int never = env && strcmp(env, "off") == 0;

	*out = *in;
	if (!never && (rows == 0 || allowed <= k))
		return 1;
	if (a->type == IDX_HNSW) {
		/* a walk computes about ef * M0 distances to reach ef results,
		 * over the fraction f = allowed / rows of them that count; the
		 * exact scan computes f * rows.  Exact wins when f^2 * rows <
		 * ef * M0. */
		uint64_t ef = in->ef ? in->ef : hnsw_default_ef(k, rows);
		double f = (double)allowed / (double)rows;
		if (ef < k)
			ef = k;
		return !never && f * f * (double)rows < (double)ef * (double)a->h.m0;
	}
	/* the nearest k allowed rows are among the nearest k / f of all,
	 * which lie in about sqrt(1 / f) times as many lists (the lists
	 * around a query grow in every direction at once); reading them
	 * costs rows * nprobe / nlist, the exact scan the allowed rows */
	uint32_t np = in->nprobe ? in->nprobe : ivf_default_nprobe(&a->v);
	double grow = allowed ? sqrt((double)rows / (double)allowed) : 1.0;
	double want = ceil(np * grow);
	out->nprobe = want >= a->v.nlist ? a->v.nlist : (uint32_t)want;
	if (never)
		return 0;
	if ((double)allowed <= (double)rows * out->nprobe / a->v.nlist)
		return 1;
	/* and when rows are passed over, the lists read must be likely to
	 * hold k of those allowed */
	return allowed < rows && (double)allowed * out->nprobe / a->v.nlist < 2.0 * k;
}
