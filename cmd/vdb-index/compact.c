/* compact.c: merge a partition's small segments and rewrite segments with
 * many deleted rows, without the deleted rows; build the new segment's
 * index; swap old for new in one meta.db transaction.  The old objects go
 * to the trash, and gc.c deletes them after the grace period, so a query
 * that read the catalogue before the swap can still open them.
 *
 * Rows keep their timestamps, so tombstones newer than a row still apply
 * to its copy, and a row not yet visible to some snapshot (a bulk import
 * stamps its rows before it registers them) is copied, not dropped: only
 * rows a tombstone deletes are dead. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "idmap.h"
#include "scan.h"
#include "segment.h"
#include "vindex.h"

/* a segment more than this share deleted is rewritten even alone */
#define DEAD_SHARE 0.10

struct cseg {
	const struct seg_info *si;
	struct segment seg;
	struct batch b; /* ids, ts, fields */
	uint8_t *keep;
	uint64_t live;
	int open;
};

static void
cseg_close(struct cseg *c)
{
	if (!c->open)
		return;
	seg_close(&c->seg);
	batch_free(&c->b);
	free(c->keep);
	c->open = 0;
}

/* cseg_open: the whole segment checked (its vectors are copied into a
 * new object with a good checksum of its own) and its rows sorted into
 * kept and dead */
static int
cseg_open(struct vindex *x, const struct schema *sc, const struct idmap *tombs, struct cseg *c,
          struct vdb_err *e)
{
	char *path = NULL;
	int rc;

	batch_init_scalars(&c->b, sc);
	c->open = 1;
	if ((rc = store_local_path(x->r->store, c->si->object, &path, e)) != VDB_OK)
		return rc;
	rc = seg_open(path, &c->seg, e);
	free(path);
	if (rc != VDB_OK) {
		memset(&c->seg, 0, sizeof c->seg);
		return rc;
	}
	if ((rc = seg_verify(&c->seg, c->si->object, e)) != VDB_OK ||
	    (rc = seg_load(&c->seg, &c->b, e)) != VDB_OK)
		return rc;
	if (c->seg.dim != sc->dim)
		return vdb_err_set(e, VDB_ECORRUPT, "segment %s: dimension differs from schema",
		                   c->si->object);
	if ((c->keep = malloc(c->b.n ? c->b.n : 1)) == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	c->live = 0;
	for (size_t r = 0; r < c->b.n; r++) {
		uint64_t dts;
		c->keep[r] = !(tombs->n && idmap_get(tombs, c->b.ids[r], &dts) && dts > c->b.ts[r]);
		c->live += c->keep[r];
	}
	return VDB_OK;
}

/* merge: write the kept rows of c[0..n) as one segment of partition pid */
static int
merge(struct vindex *x, const struct schema *sc, int64_t pid, struct cseg *c, size_t n,
      struct seg_info *out, struct vdb_err *e)
{
	struct seg_writer *w = NULL;
	struct batch scal;
	int rc;

	batch_init_scalars(&scal, sc);
	scal.partition_id = pid;
	if ((rc = seg_writer_begin(x->r->store, sc, pid, &w, e)) != VDB_OK)
		goto out;
	for (size_t i = 0; i < n && rc == VDB_OK; i++) {
		size_t rows = c[i].b.n;
		/* runs of kept rows go to the writer in one piece each */
		for (size_t a = 0; a < rows && rc == VDB_OK;) {
			size_t b = a;
			if (!c[i].keep[a]) {
				a++;
				continue;
			}
			while (b < rows && c[i].keep[b])
				b++;
			rc = seg_writer_add_vectors(w, c[i].seg.vectors + a * sc->dim, b - a, e);
			for (size_t r = a; r < b && rc == VDB_OK; r++)
				rc = batch_copy_row(&scal, &c[i].b, r, e);
			a = b;
		}
	}
	if (rc == VDB_OK) {
		rc = seg_writer_finish(w, &scal, out, e);
		w = NULL;
	}
out:
	seg_writer_abort(w);
	batch_free(&scal);
	return rc;
}

/* swap: c[0..n) replaced by their kept rows, and the new segment's index */
static int
swap(struct vindex *x, const struct schema *sc, const struct index_spec *spec, struct cseg *c,
     size_t n, struct vdb_err *e)
{
	struct seg_info ns;
	struct index_reg reg;
	struct vdb_err te;
	int64_t *old = malloc(n * sizeof *old);
	uint64_t live = 0;
	size_t nnew = 0, nidx = 0;
	int rc = VDB_OK;

	if (old == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	for (size_t i = 0; i < n; i++) {
		old[i] = c[i].si->id;
		live += c[i].live;
	}
	memset(&ns, 0, sizeof ns);
	if (live > 0) {
		vindex_progress(x, 0, "%s: merging %zu segments into %llu rows", sc->name, n,
		                (unsigned long long)live);
		if ((rc = merge(x, sc, c[0].si->partition_id, c, n, &ns, e)) != VDB_OK)
			goto out;
		nnew = 1;
		if (spec->type != IDX_FLAT) {
			if ((rc = vindex_build_segment(x, sc, &ns, spec, &reg, e)) != VDB_OK)
				goto unneeded;
			nidx = 1;
		}
	}
	if ((rc = meta_compact_commit(x->r->meta, sc->id, old, n, &ns, nnew, &reg, nidx,
	                              (int64_t)time(NULL), e)) != VDB_OK)
		goto unneeded;
	x->compacted += n;
	x->merged_into += nnew;
	x->built += nidx;
	goto out;
unneeded:
	/* what was written for the swap is not needed; the trash takes it
	 * (best effort: otherwise the sweep of a later run) */
	if (nnew)
		meta_trash_put(x->r->meta, ns.object, (int64_t)time(NULL), &te);
	if (nidx)
		meta_trash_put(x->r->meta, reg.object, (int64_t)time(NULL), &te);
out:
	free(old);
	return rc;
}

/* flush: rewrite the group c[0..*g) if that gains anything — it merges
 * segments or drops deleted rows — and close it */
static int
flush(struct vindex *x, const struct schema *sc, const struct index_spec *spec, struct cseg *c,
      size_t *g, struct vdb_err *e)
{
	int rc = VDB_OK, dead = 0;

	for (size_t j = 0; j < *g; j++)
		dead |= c[j].live < c[j].b.n;
	if (*g > 1 || (*g == 1 && dead))
		rc = swap(x, sc, spec, c, *g, e);
	for (size_t j = 0; j < *g; j++)
		cseg_close(&c[j]);
	*g = 0;
	return rc;
}

int
vindex_compact(struct vindex *x, const struct schema *sc, struct vdb_err *e)
{
	struct seg_info *segs = NULL;
	struct cseg *c = NULL;
	struct index_spec spec;
	struct idmap tombs;
	uint64_t per = (uint64_t)sc->dim * 4 + 16, target = x->segment_bytes / per;
	size_t n = 0, g = 0;
	uint8_t *done = NULL;
	int rc;

	idmap_init(&tombs);
	if (target < 1)
		target = 1;
	if (target > SEG_MAX_ROWS)
		target = SEG_MAX_ROWS;
	if ((rc = meta_index_spec_get(x->r->meta, sc->id, &spec, e)) != VDB_OK ||
	    (rc = meta_segments(x->r->meta, sc->id, &segs, &n, e)) != VDB_OK)
		goto out;
	/* every delete so far: the ones that come later still apply to the
	 * copies, as rows keep their timestamps */
	if ((rc = scan_tombstones(x->r, sc, UINT64_MAX, &tombs, e)) != VDB_OK)
		goto out;
	c = calloc(n ? n : 1, sizeof *c);
	done = calloc(n ? n : 1, 1);
	if (c == NULL || done == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto out;
	}
	/* one partition at a time, its segments in registration order; a
	 * group gathers candidates while their kept rows fit the target */
	for (size_t p = 0; p < n && rc == VDB_OK; p++) {
		uint64_t glive = 0;
		if (done[p])
			continue;
		for (size_t i = p; i < n && rc == VDB_OK; i++) {
			struct cseg *cur = &c[g];
			uint64_t dead;
			int cand;
			if (done[i] || segs[i].partition_id != segs[p].partition_id)
				continue;
			done[i] = 1;
			cur->si = &segs[i];
			if ((rc = cseg_open(x, sc, &tombs, cur, e)) != VDB_OK)
				break;
			dead = cur->b.n - cur->live;
			cand = cur->b.n < target / 2 ||
			       (double)dead > DEAD_SHARE * (double)cur->b.n;
			if (!cand) {
				cseg_close(cur);
				continue;
			}
			if (g > 0 && glive + cur->live > target) {
				struct cseg t = *cur;
				memset(cur, 0, sizeof *cur);
				if ((rc = flush(x, sc, &spec, c, &g, e)) != VDB_OK) {
					cseg_close(&t);
					break;
				}
				c[0] = t;
				glive = 0;
			}
			glive += c[g].live;
			g++;
		}
		if (rc == VDB_OK)
			rc = flush(x, sc, &spec, c, &g, e);
	}
out:
	if (c)
		for (size_t j = 0; j < n; j++)
			cseg_close(&c[j]);
	free(c);
	free(done);
	free(segs);
	idmap_free(&tombs);
	if (rc == VDB_OK)
		vindex_progress(x, 1, "%s: compacted", sc->name);
	return rc;
}
