/* ivf.h: inverted-file indexes — IVF_FLAT, IVF_SQ8 and IVF_PQ
 * (formats/index.md).  k-means (kmeans.h) trained on a sample splits the
 * rows into nlist lists; each list keeps its rows' codes contiguous (the
 * vectors themselves, 8-bit scalar-quantized components, or product-
 * quantizer codes with ADC lookup tables), so a search reads nprobe lists
 * sequentially.  Every result's key is the exact distance, computed from
 * the segment's own vectors (the approximate one only ranks). */
#ifndef VDB_IVF_H
#define VDB_IVF_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "index.h"

/* section ids (formats/index.md) */
enum {
	IVF_SEC_CENTROIDS = 16, /* nlist * dim f32 */
	IVF_SEC_LIST_OFF = 17, /* (nlist + 1) u64: list l is positions [off[l], off[l+1]) */
	IVF_SEC_LIST_ROWS = 18, /* rows u32: the segment row at each position */
	IVF_SEC_CODES = 19, /* rows * code size, in position order */
	IVF_SEC_SQ_MIN = 20, /* SQ8: dim f32 */
	IVF_SEC_SQ_SCALE = 21, /* SQ8: dim f32 */
	IVF_SEC_PQ_CODEBOOK = 22, /* PQ: pq_m * 256 * (dim / pq_m) f32 */
	/* PQ with L2: rows f32, |r|^2 + 2 c.r of each position's decoded
	 * residual r and list centroid c, so that a query's one table of
	 * inner products serves every list (no table per probed list) */
	IVF_SEC_PQ_NORM = 23,
};

/* the result of a build: sections for index_write (pointing into memory
 * this owns) and the header's parameters */
struct ivf_built {
	struct index_sec sec[8];
	size_t nsec;
	uint32_t param[IDX_NPARAM];
	void *mem[8]; /* what to free */
};

/* ivf_build: spec resolved (index_spec_resolve); vec is the segment's
 * n * dim vectors; threads >= 1 */
int ivf_build(const float *vec, uint64_t n, uint32_t dim, int metric, const struct index_spec *spec,
              int threads, index_progress_fn progress, void *parg, struct ivf_built *out,
              struct vdb_err *e);
void ivf_built_free(struct ivf_built *b);

/* a view of an opened IVF index: pointers into the map */
struct ivf {
	int type, metric;
	uint32_t dim, nlist, pq_m;
	uint64_t rows;
	const float *centroids;
	const uint64_t *list_off;
	const uint32_t *list_rows;
	const unsigned char *codes;
	const float *sq_min, *sq_scale, *pq_codebook;
	const float *pq_norm; /* PQ with L2 */
};

/* ivf_open: the sections' sizes and the list offsets checked (O(nlist));
 * ivf_check: also every list row < rows and each row in exactly one list
 * (O(rows), for vdb-admin verify) */
int ivf_open(const struct index_file *f, struct ivf *v, struct vdb_err *e);
int ivf_check(const struct ivf *v, struct vdb_err *e);

/* defaults at query time */
uint32_t ivf_default_nprobe(const struct ivf *v);
uint32_t ivf_default_refine(const struct ivf *v);

/* per searching thread and index: it holds tables made from v's codebook,
 * so it serves searches of v only */
struct ivf_scratch;
struct ivf_scratch *ivf_scratch_new(const struct ivf *v);
void ivf_scratch_free(struct ivf_scratch *s);

/* ivf_search: the k rows nearest to q among those allow permits (allow
 * NULL: all; else allow[row] != 0), best first, ties by the smaller row,
 * keys exact.  nprobe: lists searched (0: default).  refine (SQ8, PQ): the
 * k * refine best by approximate distance get exact distances (0:
 * default).  vec: the segment's vectors.  *nout <= k. */
int ivf_search(const struct ivf *v, const float *vec, const float *q, uint32_t k, uint32_t nprobe,
               uint32_t refine, const uint8_t *allow, struct ivf_scratch *s, struct ann_hit *out,
               uint32_t *nout, struct vdb_err *e);

#endif
