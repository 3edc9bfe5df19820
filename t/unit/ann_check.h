/* ann_check.h: the contract every index search keeps (struct ann_hit,
 * index.h), checked the same way for HNSW and IVF by their unit tests. */
#ifndef VDB_ANN_CHECK_H
#define VDB_ANN_CHECK_H
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "distance.h"
#include "index.h"
#include "schema.h"

/* ann_check_hits: h[0..n) strictly ordered by (key, row) — so no row
 * twice — every row < rows and allowed, and every key bit for bit the
 * exact distance dist_rows gives (negated for ip and cosine) */
static inline void
ann_check_hits(int metric, uint64_t rows, uint32_t dim, const float *vec, const float *q,
               const uint8_t *allow, const struct ann_hit *h, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		float d, key;
		cr_assert_lt(h[i].row, rows);
		cr_assert(allow == NULL || allow[h[i].row], "row %u is not allowed", h[i].row);
		dist_rows(metric, q, 1, vec, &h[i].row, 1, dim, &d);
		key = metric == METRIC_L2 ? d : -d;
		cr_assert_eq(memcmp(&key, &h[i].key, sizeof key), 0,
		             "row %u: key %.9g, exact %.9g", h[i].row, h[i].key, key);
		if (i > 0)
			cr_assert(h[i - 1].key < h[i].key ||
			                  (h[i - 1].key == h[i].key && h[i - 1].row < h[i].row),
			          "hits %u and %u out of order", i - 1, i);
	}
}

#endif
