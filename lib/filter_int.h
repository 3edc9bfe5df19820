/* filter_int.h: a compiled filter, as filter.c builds it and filter_eval.c
 * reads it.  Private to those two files. */
#ifndef VDB_FILTER_INT_H
#define VDB_FILTER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "filter.h"

#define FILTER_CHUNK 1024 /* rows evaluated at a time */

enum nk {
	N_TRUE,
	N_FALSE,
	N_AND, /* kids[a .. a + n) */
	N_OR,
	N_NOT, /* kids[a] */
	N_I64, /* lo <= v <= hi; col -1 is id */
	N_I64_IN, /* i64s[a .. a + n), sorted, distinct */
	N_F64, /* dlo <= v <= dhi (NaN never inside) */
	N_F64_IN, /* f64s[a .. a + n), sorted */
	N_BOOL, /* (v != 0) == flags */
	N_STR_EQ, /* strs[a] */
	N_STR_RANGE, /* strs[a] lower, strs[a + 1] upper, as flags say */
	N_STR_IN, /* strs[a .. a + n), sorted, distinct */
	N_LIKE, /* n segments: strs[a + 2k] bytes, strs[a + 2k + 1] wildcard mask */
};

/* N_STR_RANGE flags */
#define SR_LO 1
#define SR_LO_INCL 2
#define SR_HI 4
#define SR_HI_INCL 8
/* N_LIKE flags */
#define LK_PCT 1 /* the pattern has a '%' */
#define LK_START 2 /* ... but does not start with one */
#define LK_END 4 /* ... and does not end with one */

struct node {
	uint8_t kind;
	uint8_t neg; /* leaves: the result is inverted (!=, not in, folded not) */
	uint8_t flags;
	uint16_t height; /* 1 for a leaf */
	int32_t col; /* field index; -1 = id */
	uint32_t a, n;
	int64_t lo, hi; /* N_I64; N_LIKE: lo = the shortest string that can match */
	double dlo, dhi; /* N_F64 */
};

struct strref {
	size_t off, len; /* in bytes[] */
};

struct filter {
	struct node *nodes;
	size_t nnodes, cnodes;
	uint32_t *kids;
	size_t nkids, ckids;
	int64_t *i64s;
	size_t ni64s, ci64s;
	double *f64s;
	size_t nf64s, cf64s;
	struct strref *strs;
	size_t nstrs, cstrs;
	char *bytes;
	size_t nbytes, cbytes;
	uint32_t root;
	uint64_t used; /* fields the filter reads, checked against the batch */
	int types[VDB_MAX_FIELDS];
	uint8_t *scratch; /* (2 + 2 * height) * FILTER_CHUNK */
	size_t nscratch;
};

/* bytes_cmp: memcmp order, then the shorter first */
static inline int
bytes_cmp(const char *a, size_t la, const char *b, size_t lb)
{
	size_t m = la < lb ? la : lb;
	int c = m ? memcmp(a, b, m) : 0;

	if (c)
		return c;
	return (la > lb) - (la < lb);
}

#endif
