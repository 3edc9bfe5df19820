/* hnsw.h: Hierarchical Navigable Small World graphs (Malkov & Yashunin,
 * 2016) over a segment's vectors (formats/index.md).  The index holds only
 * the graph; the vectors are the segment's own, searched in place through
 * mmap.  Rows a search may not return (deleted, or not matching a filter)
 * are still walked through, so the graph keeps its reach; they are only
 * kept out of the results. */
#ifndef VDB_HNSW_H
#define VDB_HNSW_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "index.h"

/* section ids (formats/index.md, "HNSW"); every list is links first,
 * then unused slots of 0xffffffff */
enum {
	HNSW_SEC_L0 = 1, /* rows x M0 u32: each row's level-0 links */
	HNSW_SEC_UPPER_ROWS = 2, /* the rows with a level above 0, ascending */
	HNSW_SEC_UPPER_OFF = 3, /* (upper rows + 1) u32: upper row u has lists
	                         * off[u] .. off[u+1]-1, for levels 1 and up */
	HNSW_SEC_UPPER_LINKS = 4, /* lists of M u32, positions in UPPER_ROWS */
};

/* header parameters: p0 M, p1 M0, p2 efConstruction, p3 max level, p4 the
 * entry row, p5 upper rows, p6 upper lists */

/* the result of a build: sections for index_write (pointing into memory
 * this owns) and the header's parameters */
struct hnsw_built {
	struct index_sec sec[8];
	size_t nsec;
	uint32_t param[IDX_NPARAM];
	void *mem[8]; /* what to free */
};

/* hnsw_build: spec resolved (index_spec_resolve); vec is the segment's
 * n * dim vectors; threads >= 1 (one thread: the same graph every time) */
int hnsw_build(const float *vec, uint64_t n, uint32_t dim, int metric,
               const struct index_spec *spec, int threads, index_progress_fn progress, void *parg,
               struct hnsw_built *out, struct vdb_err *e);
void hnsw_built_free(struct hnsw_built *b);

/* a view of an opened HNSW index: the parameters and pointers into the
 * map */
struct hnsw {
	int metric;
	uint32_t dim, m, m0, ef_construction, max_level, entry;
	uint32_t entry_up; /* the entry's position in upper_rows */
	uint64_t rows, nupper;
	const uint32_t *l0;
	const uint32_t *upper_rows;
	const uint32_t *upper_off;
	const uint32_t *upper_links;
};

/* hnsw_open: the sections' sizes and the header checked (O(1) or
 * O(upper rows)); hnsw_check: also every link < rows, counts in range
 * (O(rows), for vdb-admin verify) */
int hnsw_open(const struct index_file *f, struct hnsw *g, struct vdb_err *e);
int hnsw_check(const struct hnsw *g, struct vdb_err *e);

/* the ef a search uses when not given one, for k results from a graph
 * of rows rows */
uint32_t hnsw_default_ef(uint32_t k, uint64_t rows);

struct hnsw_scratch; /* per searching thread, for one index */
struct hnsw_scratch *hnsw_scratch_new(const struct hnsw *g);
void hnsw_scratch_free(struct hnsw_scratch *s);

/* hnsw_search: the k rows nearest to q among those allow permits (allow
 * NULL: all; else allow[row] != 0), best first, ties by the smaller row;
 * keys exact (index.h).  ef: the candidate list (0: default; at least k
 * is used).  vec: the segment's vectors.  *nout <= k.  A link out of
 * range (a damaged index) is VDB_ECORRUPT, never a crash. */
int hnsw_search(const struct hnsw *g, const float *vec, const float *q, uint32_t k, uint32_t ef,
                const uint8_t *allow, struct hnsw_scratch *s, struct ann_hit *out, uint32_t *nout,
                struct vdb_err *e);

#endif
