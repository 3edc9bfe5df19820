/* scan.h: read every live row of a collection as of now — sealed segments
 * (checksums verified) plus the insert log's unsealed tail, minus rows a
 * tombstone newer than the row deletes.  The snapshot is consistent: the
 * segment list and the log files are taken as one cut even while a seal
 * runs. */
#ifndef VDB_SCAN_H
#define VDB_SCAN_H
#include <stdint.h>

#include "batch.h"
#include "err.h"
#include "idmap.h"
#include "root.h"

/* fn gets each batch with live[r] set for rows that are not deleted */
typedef int (*scan_fn)(void *arg, const struct batch *b, const uint8_t *live, struct vdb_err *e);

int scan_collection(struct root *r, const struct schema *sc, scan_fn fn, void *arg,
                    struct vdb_err *e);
/* scan_tombstones: id -> newest delete timestamp up to ts, from the delete
 * log */
int scan_tombstones(struct root *r, const struct schema *sc, uint64_t ts, struct idmap *tombs,
                    struct vdb_err *e);

#endif
