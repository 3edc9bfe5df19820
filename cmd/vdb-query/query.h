/* query.h: vdb-query's parts — reading queries (queries.c), running a batch
 * of them and writing the answers (run.c), the serve loop (serve.c). */
#ifndef VDB_QUERY_H
#define VDB_QUERY_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "filter.h"
#include "root.h"
#include "schema.h"
#include "search.h"

#define QUERY_MAX_LINE (64u << 20) /* formats/wire.md: a request line */
#define QUERY_BATCH 1024 /* queries searched together */
/* serve: one request's bounds (formats/wire.md) */
#define SERVE_MAX_QUERIES 16384
#define SERVE_MAX_HITS (1 << 22)

enum { OUT_JSONL, OUT_TSV, OUT_IVECS };

/* sbuf: a growing output buffer */
struct sbuf {
	char *p;
	size_t n, cap;
	int oom;
};
void sb_putc(struct sbuf *b, char c);
void sb_put(struct sbuf *b, const char *s, size_t n);
#define sb_puts(b, s) sb_put((b), (s), strlen(s))
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_json_string(struct sbuf *b, const char *s, size_t n);
void sb_free(struct sbuf *b);

/* what every query of a run shares */
struct qopts {
	const struct schema *sc;
	uint32_t k; /* 0: none given */
	const char *filter;
	uint32_t nfields;
	int fields[VDB_MAX_FIELDS]; /* schema field indexes to print */
	int has_radius;
	float radius;
	int64_t partition; /* -1: all */
	uint64_t ts; /* 0: now */
	int threads;
	int output;
	int exact; /* ignore indexes */
	struct ann_params ann; /* ef, nprobe, refine (0: defaults) */
};
#define QUERY_MAX_EF 65536
#define QUERY_MAX_REFINE 1024

/* a batch of queries; each may carry its own k and filter */
struct qbatch {
	size_t n, cap;
	float *vec;
	uint32_t *k;
	uint32_t *fid; /* index into fexpr, or SEARCH_NO_FILTER */
	char **fexpr; /* distinct filter texts */
	size_t nf;
	uint64_t first; /* number of the first query in the run */
};
void qb_clear(struct qbatch *q);
void qb_free(struct qbatch *q);
/* qb_add: one query; vec has sc->dim values; filter may be NULL */
int qb_add(struct qbatch *q, const struct qopts *o, const float *vec, long k, const char *filter,
           struct vdb_err *e);
/* qb_json: a query object {"vector": [...], "k": K, "filter": "..."} */
int qb_json(struct qbatch *q, const struct qopts *o, const char *line, size_t len,
            struct vdb_err *e);

/* a query input: JSONL or fvecs, read in batches */
struct qreader;
int qr_open(const char *path, int fvecs, struct qreader **out, struct vdb_err *e);
/* qr_next: fill q (cleared first) with up to QUERY_BATCH queries, fewer
 * when the input pauses (a pipe a script writes one query at a time);
 * q->n == 0 at the end */
int qr_next(struct qreader *r, const struct qopts *o, struct qbatch *q, struct vdb_err *e);
void qr_close(struct qreader *r);

/* query_run: search q over the collection and append the answers in
 * o->output form (jsonl: one line per query; sep, if not NULL, goes
 * between lines instead of '\n', for the serve response) */
int query_run(struct root *r, const struct qopts *o, struct qbatch *q, struct seg_cache *cache,
              struct sbuf *out, const char *sep, struct vdb_err *e);
int query_count(struct root *r, const struct qopts *o, struct seg_cache *cache, uint64_t *n,
                struct vdb_err *e);
/* query_fields: "a,b" or "*" into o->fields */
int query_fields(struct qopts *o, const char *list, struct vdb_err *e);

int serve(const char *rootpath, int threads);

#endif
