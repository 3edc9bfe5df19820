/* search.h: exact k-nearest-neighbour and range search over one snapshot of
 * a collection — its sealed segments (vectors searched in place through
 * mmap) and the log's unsealed tail, minus deleted rows, with filters
 * applied to each block of rows before any distance is computed.
 * ../shared/design.md, "Search" and "Consistency". */
#ifndef VDB_SEARCH_H
#define VDB_SEARCH_H
#include <stddef.h>
#include <stdint.h>

#include "ann.h"
#include "batch.h"
#include "filter.h"
#include "root.h"
#include "scan.h"
#include "segment.h"

#define SEARCH_MAX_K 16384
/* a radius search without k fails past this many hits for one query,
 * rather than take memory without bound */
#define SEARCH_MAX_HITS (1 << 20)

/* one hit: dist as the metric reports it (L2: squared distance; IP and
 * cosine: similarity, higher is closer); src and row find the row's fields
 * in search_set.src */
struct hit {
	int64_t id;
	float dist;
	uint32_t src, row;
};

struct hits {
	struct hit *v;
	size_t n, cap;
};

/* a run of rows searched together: a segment or the log tail of one
 * partition */
struct cache_ent;
struct source {
	const float *vec; /* n * dim, or NULL when not loaded */
	const struct batch *b; /* ids, ts and fields */
	uint8_t *live; /* b->n: visible in the snapshot */
	uint64_t nlive; /* how many are */
	int all_live; /* known to be all, without looking (snapshot_all_live) */
	struct batch *own; /* the log tail's rows, owned */
	struct cache_ent *ent; /* the segment's cache entry; NULL for the tail */
	const struct ann *ann; /* the segment's index, or NULL */
};

/* seg_cache: segments opened and decoded by earlier searches, kept by a
 * long-lived process (vdb-query serve) so a request pays only for what is
 * new; entries no longer in a snapshot are dropped */
struct seg_cache;
struct seg_cache *seg_cache_new(void);
void seg_cache_free(struct seg_cache *c);

struct search_set {
	struct root *root;
	const struct schema *sc;
	struct snapshot snap;
	struct source *src;
	size_t nsrc;
	struct seg_cache *cache, *own_cache;
};

/* search_open: the data of a snapshot as of ts (0: now).  partition: only
 * rows of that partition id (-1: all).  what: SEARCH_VECTORS maps and
 * checks the vector blocks too (a count needs only the scalars);
 * SEARCH_INDEXES also opens the segments' indexes (an exact search does
 * not need them).  cache may be NULL. */
#define SEARCH_VECTORS 1
#define SEARCH_INDEXES 2
int search_open(struct root *r, const struct schema *sc, uint64_t ts, int64_t partition, int what,
                struct seg_cache *cache, struct search_set *set, struct vdb_err *e);
void search_close(struct search_set *set);

struct search_req {
	size_t nq;
	const float *q; /* nq * dim */
	const uint32_t *k; /* per query: at most k hits; 0 = all within radius */
	const uint32_t *fid; /* per query: index into filters, or SEARCH_NO_FILTER; NULL: none */
	struct filter *const *filters;
	size_t nfilters;
	int has_radius;
	float radius; /* L2: dist <= radius; IP, cosine: dist >= radius */
	int threads;
	int exact; /* scan every row even where a segment has an index */
	struct ann_params ann; /* knobs of the searches through indexes */
};
#define SEARCH_NO_FILTER UINT32_MAX

/* search_run: out[q] for each query, best first, ties by the smaller id.
 * A segment with an index is searched through it (approximately) for the
 * queries that give k, unless rq->exact or the query's filter leaves so
 * few rows that scanning them exactly is cheaper (ann_plan);
 * rows that are deleted or do not match are passed over inside the
 * index search, never cut from its results afterwards. */
int search_run(struct search_set *set, const struct search_req *rq, struct hits *out,
               struct vdb_err *e);
void hits_free(struct hits *h);
/* search_count: live rows matching f (NULL: all) */
int search_count(struct search_set *set, struct filter *f, uint64_t *count, struct vdb_err *e);

#endif
