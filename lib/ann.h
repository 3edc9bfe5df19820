/* ann.h: approximate nearest-neighbour search through an index object —
 * one door to the index types (hnsw.h, ivf.h) for the programs that read
 * indexes: vdb-query searches through them, vdb-admin verify checks them. */
#ifndef VDB_ANN_H
#define VDB_ANN_H
#include <stdint.h>

#include "err.h"
#include "hnsw.h"
#include "index.h"
#include "ivf.h"
#include "segment.h"

struct ann {
	struct index_file f;
	int type;
	struct hnsw h;
	struct ivf v;
};

/* knobs of a search (0: the index's default) */
struct ann_params {
	uint32_t ef; /* HNSW candidate list */
	uint32_t nprobe; /* IVF lists searched */
	uint32_t refine; /* IVF_SQ8, IVF_PQ: k * refine exact re-ranks */
};

/* ann_open: map and parse; the section hashes are index_verify's job */
int ann_open(const char *path, struct ann *a, struct vdb_err *e);
void ann_close(struct ann *a);
/* ann_match: the index was built for this segment (key, rows, dimension,
 * metric) */
int ann_match(const struct ann *a, const struct segment *s, const char *seg_key, struct vdb_err *e);
/* ann_check: the O(rows) structure checks (vdb-admin verify) */
int ann_check(const struct ann *a, struct vdb_err *e);

struct ann_scratch;
struct ann_scratch *ann_scratch_new(const struct ann *a);
void ann_scratch_free(struct ann_scratch *s);

/* ann_search: the k best rows allow permits (NULL: all), exact keys, best
 * first (index.h, struct ann_hit) */
int ann_search(const struct ann *a, const float *vec, const float *q, uint32_t k,
               const struct ann_params *p, const uint8_t *allow, struct ann_scratch *s,
               struct ann_hit *out, uint32_t *nout, struct vdb_err *e);

/* ann_plan: how to search for k results when only `allowed` of the rows
 * may be returned (deleted rows, a filter): 1 when an exact scan of those
 * rows is the cheaper way (the index would pass over ever more rows that
 * may not be returned; the exact scan costs the allowed rows alone —
 * Milvus and Qdrant decide the same way, from the matching fraction);
 * else 0, with *out the knobs to use: an IVF search reads more lists, as
 * the k nearest allowed rows lie among the nearest k * rows / allowed.
 * $VDB_FILTER_FALLBACK=off never prefers the scan (for tests). */
int ann_plan(const struct ann *a, uint64_t allowed, uint32_t k, const struct ann_params *in,
             struct ann_params *out);

#endif
