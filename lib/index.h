/* index.h: index objects (formats/index.md).  An index belongs to one
 * sealed segment and is one more immutable, content-addressed object beside
 * it: a header, 64-byte aligned sections that a reader uses straight from
 * mmap, a footer listing every section with its SHA-256, and a trailer.
 * The key is the SHA-256 of the footer, which commits to every byte.
 *
 * This file is the container and the index specification of a collection
 * (type and parameters); the algorithms are hnsw.c and ivf.c. */
#ifndef VDB_INDEX_H
#define VDB_INDEX_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

#define IDX_HDR 128
#define IDX_TRAILER 56
#define IDX_ALIGN 64
#define IDX_NPARAM 8
#define IDX_MAX_SECTIONS 16

enum index_type {
	IDX_FLAT = 0, /* no index object: search scans exactly */
	IDX_HNSW = 1,
	IDX_IVF_FLAT = 2,
	IDX_IVF_SQ8 = 3,
	IDX_IVF_PQ = 4,
};

/* The index a collection's segments get (meta.db, collection_index).
 * Zero means "the default" for every number, resolved by index_spec_resolve
 * against a segment's row count and dimension. */
struct index_spec {
	int type;
	uint32_t m; /* HNSW: links per node above level 0 (level 0: 2m rounded up
	             * to whole cache lines, formats/index.md) */
	uint32_t ef_construction; /* HNSW */
	uint32_t nlist; /* IVF: lists (k-means centroids) */
	uint32_t pq_m; /* IVF_PQ: sub-quantizers, dividing dim; 8 bits each */
};

#define HNSW_DEFAULT_M 16
#define HNSW_DEFAULT_EFC 200
#define HNSW_MAX_M 128
#define HNSW_MAX_EFC 8192
#define IVF_MAX_NLIST 65536

const char *index_type_name(int type);
/* index_type_parse: -1 if unknown */
int index_type_parse(const char *s);
/* index_spec_set: one parameter by name — "M", "efConstruction", "nlist",
 * "m" (IVF_PQ sub-quantizers) — range-checked; index_spec_set_kv: the
 * same from "NAME=VALUE" */
int index_spec_set(struct index_spec *s, const char *name, const char *value, struct vdb_err *e);
int index_spec_set_kv(struct index_spec *s, const char *kv, struct vdb_err *e);
/* index_spec_check: the parameters fit the type and the dimension */
int index_spec_check(const struct index_spec *s, uint32_t dim, struct vdb_err *e);
/* index_spec_format: canonical text, e.g. "hnsw M=16 efConstruction=200";
 * the same spec always gives the same text (it is what meta.db keys
 * built indexes by) */
void index_spec_format(const struct index_spec *s, char *buf, size_t len);
/* index_spec_resolve: defaults filled in for a segment of rows vectors */
void index_spec_resolve(const struct index_spec *s, uint64_t rows, uint32_t dim,
                        struct index_spec *out);

/* ---- the container ---- */

struct index_hdr {
	uint32_t type, metric, dim;
	uint64_t rows; /* rows of the segment */
	unsigned char seg[32]; /* the segment's key, binary */
	uint32_t param[IDX_NPARAM]; /* per type, formats/index.md */
};

/* a section to write: len bytes at p */
struct index_sec {
	uint32_t id;
	const void *p;
	uint64_t len;
};

/* index_write: publish header and sections as one object in st; *key (65
 * bytes) and *bytes describe it */
int index_write(struct store *st, const struct index_hdr *h, const struct index_sec *secs,
                size_t nsec, char key[65], uint64_t *bytes, struct vdb_err *e);

struct index_section {
	uint32_t id;
	uint64_t off, len;
	const unsigned char *sha;
};

struct index_file {
	const unsigned char *map;
	size_t size;
	struct index_hdr h;
	uint32_t nsec;
	struct index_section sec[IDX_MAX_SECTIONS];
	const unsigned char *footer;
	uint64_t footer_len;
};

/* index_open: map and parse the structure (trailer, footer, header) */
int index_open(const char *path, struct index_file *f, struct vdb_err *e);
int index_open_mem(const void *buf, size_t len, struct index_file *f, struct vdb_err *e);
void index_close(struct index_file *f);
/* index_verify: every section, the header and the footer against key */
int index_verify(const struct index_file *f, const char *key, struct vdb_err *e);
/* index_section: section id's bytes (64-byte aligned in the map), or NULL;
 * want: its exact length, or UINT64_MAX for any */
const void *index_section(const struct index_file *f, uint32_t id, uint64_t want, uint64_t *len);

/* ---- searching ---- */

/* a result of an approximate search: a row of the segment and its key
 * (smaller is closer: L2 distance, or the negated IP / cosine similarity) */
struct ann_hit {
	uint32_t row;
	float key;
};

/* progress of a build: done out of total units of work, called from the
 * building thread only, at most a few hundred times */
typedef void (*index_progress_fn)(void *arg, uint64_t done, uint64_t total);

#endif
