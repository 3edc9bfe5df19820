/* filter.h: boolean expressions over a collection's scalar fields and id,
 * in Milvus's expression language (formats/filter.md).  An expression is
 * parsed once against the schema, then evaluated column-wise over batches
 * of rows, so a search applies it during the scan. */
#ifndef VDB_FILTER_H
#define VDB_FILTER_H
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "err.h"
#include "schema.h"

#define FILTER_MAX_LEN (64u << 10) /* bytes of expression text */
#define FILTER_MAX_DEPTH 64 /* nesting of parentheses and operators */
#define FILTER_MAX_LIST 65536 /* elements of an in [...] list */

struct filter;

/* filter_parse: compile expr for rows of sc.  On a syntax or type error
 * returns VDB_EINPUT with a message that starts "column N: " (1-based,
 * counted in bytes of expr) and says what was expected or wrong. */
int filter_parse(const char *expr, const struct schema *sc, struct filter **out, struct vdb_err *e);
void filter_free(struct filter *f);

/* filter_eval: rows [from, from + n) of b; match[i] (for row from + i) is
 * left set only where it was set and the row satisfies f.  No allocation
 * per row; scratch space, if any, belongs to f (so one filter is evaluated
 * by one thread at a time — filter_clone gives each thread its own). */
int filter_eval(struct filter *f, const struct batch *b, size_t from, size_t n, uint8_t *match,
                struct vdb_err *e);
/* filter_clone: an independent copy for another thread */
int filter_clone(const struct filter *f, struct filter **out, struct vdb_err *e);

#endif
