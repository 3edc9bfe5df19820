/* build.c: indexes for sealed segments.  Each index is published in the
 * object store and then registered on its own, so a run that dies loses
 * at most the index it was building; the next run builds what is still
 * missing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "file.h"
#include "hnsw.h"
#include "index.h"
#include "ivf.h"
#include "segment.h"
#include "vindex.h"

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void
vindex_progress(struct vindex *x, int last, const char *fmt, ...)
{
	va_list ap;
	double t = now();

	if (!x->progress || (!last && t - x->t_progress < 0.5))
		return;
	x->t_progress = t;
	fputs("\rvdb-index: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(last ? "\033[K\n" : "\033[K", stderr);
}

struct prog {
	struct vindex *x;
	const char *coll;
	const char *type;
	uint64_t rows;
};

static void
on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct prog *p = arg;

	vindex_progress(p->x, 0, "%s: %s over %llu rows: %3.0f%%", p->coll, p->type,
	                (unsigned long long)p->rows, total ? 100.0 * done / total : 100.0);
}

static int
hex_to_bin(const char *hex, unsigned char out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;
		for (int j = 0; j < 2; j++) {
			char c = hex[2 * i + j];
			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

int
vindex_build_segment(struct vindex *x, const struct schema *sc, const struct seg_info *si,
                     const struct index_spec *spec, struct index_reg *reg, struct vdb_err *e)
{
	struct segment seg;
	struct index_spec rs;
	struct index_hdr h;
	struct hnsw_built hb;
	struct ivf_built ib;
	struct prog pg = {x, sc->name, index_type_name(spec->type), si->rows};
	const struct index_sec *secs;
	size_t nsec;
	char *path = NULL;
	int rc;

	memset(&hb, 0, sizeof hb);
	memset(&ib, 0, sizeof ib);
	memset(&h, 0, sizeof h);
	if ((rc = store_local_path(x->r->store, si->object, &path, e)) != VDB_OK)
		return rc;
	rc = seg_open(path, &seg, e);
	free(path);
	if (rc != VDB_OK)
		return rc;
	/* an index over corrupt vectors would answer wrongly with a good
	 * checksum of its own: check what it is built from */
	if ((rc = seg_verify_meta(&seg, si->object, e)) != VDB_OK ||
	    (rc = seg_verify_block(&seg, 0, e)) != VDB_OK)
		goto out;
	if (seg.dim != sc->dim || seg.metric != sc->metric) {
		rc = vdb_err_set(e, VDB_ECORRUPT,
		                 "segment dimension or metric differs from schema");
		goto out;
	}
	index_spec_resolve(spec, seg.rows, seg.dim, &rs);
	if ((rc = index_spec_check(&rs, seg.dim, e)) != VDB_OK)
		goto out;
	if (rs.type == IDX_HNSW) {
		rc = hnsw_build(seg.vectors, seg.rows, seg.dim, seg.metric, &rs, x->threads,
		                on_progress, &pg, &hb, e);
		secs = hb.sec;
		nsec = hb.nsec;
		memcpy(h.param, hb.param, sizeof h.param);
	} else {
		rc = ivf_build(seg.vectors, seg.rows, seg.dim, seg.metric, &rs, x->threads,
		               on_progress, &pg, &ib, e);
		secs = ib.sec;
		nsec = ib.nsec;
		memcpy(h.param, ib.param, sizeof h.param);
	}
	if (rc != VDB_OK)
		goto out;
	h.type = (uint32_t)rs.type;
	h.metric = (uint32_t)seg.metric;
	h.dim = seg.dim;
	h.rows = seg.rows;
	if (hex_to_bin(si->object, h.seg) != 0) {
		rc = vdb_err_set(e, VDB_ECORRUPT, "bad segment key '%.64s'", si->object);
		goto out;
	}
	memset(reg, 0, sizeof *reg);
	if ((rc = index_write(x->r->store, &h, secs, nsec, reg->object, &reg->bytes, e)) != VDB_OK)
		goto out;
	memcpy(reg->seg, si->object, 65);
	/* keyed by the spec as the collection states it, defaults and all:
	 * that is what decides whether an index is current */
	index_spec_format(spec, reg->spec, sizeof reg->spec);
	reg->type = rs.type;
out:
	hnsw_built_free(&hb);
	ivf_built_free(&ib);
	seg_close(&seg);
	if (rc != VDB_OK)
		vdb_err_prefix(e, "segment %s: ", si->object);
	return rc;
}

/* segment_failed: a segment that cannot be indexed — damaged, or dropped
 * under us — does not hold back the others or the trash: said, counted in
 * x->failed, and passed over; other failures (I/O, memory) stop the run */
static int
segment_failed(struct vindex *x, const struct seg_info *si, int rc, struct vdb_err *e)
{
	struct vdb_err ke;
	int known = 1;

	if (rc != VDB_ECORRUPT && rc != VDB_ENOENT && rc != VDB_ETEMP)
		return rc;
	if (meta_object_known(x->r->meta, si->object, &known, &ke) == VDB_OK && !known)
		return VDB_OK; /* dropped meanwhile: nothing to index */
	if (rc == VDB_ETEMP)
		return rc;
	fprintf(stderr, "vdb-index: error: %s\n", e->msg);
	if (x->failed == VDB_OK)
		x->failed = rc;
	return VDB_OK;
}

static int
seg_object_cmp(const void *a, const void *b)
{
	const struct seg_info *const *x = a, *const *y = b;

	return strcmp((*x)->object, (*y)->object);
}

/* twice_marks: 1 for each segment whose object an earlier one of the
 * sorted order has (a segment registered twice needs one index); by
 * sorting, as a collection may hold tens of thousands of segments */
static int
twice_marks(const struct seg_info *segs, size_t n, unsigned char **out, struct vdb_err *e)
{
	const struct seg_info **p = malloc((n ? n : 1) * sizeof *p);
	unsigned char *twice = calloc(n ? n : 1, 1);

	if (p == NULL || twice == NULL) {
		free(p);
		free(twice);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		p[i] = &segs[i];
	qsort(p, n, sizeof *p, seg_object_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(p[i]->object, p[i - 1]->object) == 0)
			twice[p[i] - segs] = 1;
	free(p);
	*out = twice;
	return VDB_OK;
}

int
vindex_build(struct vindex *x, const struct schema *sc, struct vdb_err *e)
{
	struct index_spec spec;
	struct seg_info *segs = NULL;
	size_t n = 0, todo = 0, done = 0, retired;
	int rc;

	if ((rc = meta_index_spec_get(x->r->meta, sc->id, &spec, e)) != VDB_OK)
		return rc;
	if (spec.type != IDX_FLAT) {
		unsigned char *twice = NULL;
		if ((rc = meta_segments(x->r->meta, sc->id, &segs, &n, e)) != VDB_OK)
			return rc;
		if ((rc = twice_marks(segs, n, &twice, e)) != VDB_OK) {
			free(segs);
			return rc;
		}
		for (size_t i = 0; i < n; i++)
			todo += !segs[i].index_current && segs[i].rows > 0 && !twice[i];
		for (size_t i = 0; i < n && rc == VDB_OK; i++) {
			struct index_reg reg;
			if (segs[i].index_current || segs[i].rows == 0 || twice[i])
				continue;
			vindex_progress(x, 0, "%s: segment %zu of %zu", sc->name, done + 1, todo);
			done++;
			if ((rc = vindex_build_segment(x, sc, &segs[i], &spec, &reg, e)) !=
			    VDB_OK) {
				rc = segment_failed(x, &segs[i], rc, e);
				continue;
			}
			if ((rc = meta_index_register(x->r->meta, sc->id, &reg, e)) == VDB_OK) {
				x->built++;
				continue;
			}
			/* indexed meanwhile (EEXIST), or dropped under us, or
			 * the catalogue failed: the object is not needed, and
			 * the trash takes it (best effort: else the sweep) */
			struct vdb_err te;
			meta_trash_put(x->r->meta, reg.object, (int64_t)time(NULL), &te);
			if (rc == VDB_EEXIST)
				rc = VDB_OK;
			else
				rc = segment_failed(x, &segs[i], rc, e);
		}
		free(twice);
		free(segs);
		if (todo)
			vindex_progress(x, 1, "%s: %zu of %zu segments indexed", sc->name, done,
			                todo);
		if (rc != VDB_OK)
			return rc;
	}
	if ((rc = meta_index_retire(x->r->meta, sc->id, (int64_t)time(NULL), &retired, e)) !=
	    VDB_OK)
		return rc;
	x->retired += retired;
	return VDB_OK;
}
