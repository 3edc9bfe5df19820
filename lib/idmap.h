/* idmap.h: an open-addressing map from int64 primary keys to a uint64
 * value; used for duplicate-id checks within a batch and for tombstones
 * (id -> newest delete timestamp). */
#ifndef VDB_IDMAP_H
#define VDB_IDMAP_H
#include <stddef.h>
#include <stdint.h>

struct idmap {
	int64_t *keys;
	uint64_t *vals;
	uint8_t *used;
	size_t cap, n; /* cap is a power of two */
};

void idmap_init(struct idmap *m);
void idmap_free(struct idmap *m);
void idmap_clear(struct idmap *m);
/* idmap_put: insert or keep the larger value; -1 out of memory, 1 when the
 * key was already there, 0 when it is new */
int idmap_put(struct idmap *m, int64_t key, uint64_t val);
/* idmap_get: 1 and *val when present */
int idmap_get(const struct idmap *m, int64_t key, uint64_t *val);

#endif
