/* colcache.h: a segment's scalar columns (ids, timestamps, fields),
 * decoded once and kept in ROOT/cache/cols/KEY in their raw form, so that
 * the next process maps them instead of decompressing them.  A one-shot
 * query on a segment of a million rows would otherwise spend more time
 * decoding 16 MB of ids and timestamps than searching its index.  The
 * cache is derived data: written atomically (rename), checked for shape
 * when mapped, rebuilt when missing or wrong, and compared with the
 * segment by vdb-admin verify. */
#ifndef VDB_COLCACHE_H
#define VDB_COLCACHE_H
#include <stddef.h>

#include "batch.h"
#include "err.h"
#include "segment.h"

struct colmap {
	void *map; /* NULL: b owns its arrays (decoded, not mapped) */
	size_t len;
};

/* colcache_load: the scalar columns of segment s (its header and footer
 * verified against key by the caller) into b (batch_init_scalars, empty):
 * mapped from the cache when it holds them, else checked (their blocks'
 * hashes), decoded (seg_load) and written to the cache for the next time
 * (best effort).  Free with colcache_free. */
int colcache_load(const char *root, const char *key, const struct segment *s, struct batch *b,
                  struct colmap *cm, struct vdb_err *e);
void colcache_free(struct batch *b, struct colmap *cm);
/* colcache_check: a cache file, if there is one, holds what the segment
 * decodes to: VDB_OK also when there is none; VDB_ECORRUPT when it
 * differs (vdb-admin verify) */
int colcache_check(const char *root, const char *key, const struct segment *s,
                   const struct schema *sc, struct vdb_err *e);

#endif
