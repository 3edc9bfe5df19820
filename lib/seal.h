/* seal.h: turning the insert log into segments.  Rotate the log so the
 * rows to seal sit in closed files, write one segment per partition (and
 * per --segment-rows), register them and the sealed log position in one
 * meta.db transaction, and only then unlink the log files.  A crash at any
 * step leaves either the log files (sealed again later; the same rows give
 * the same object) or the registered segments, never both counted. */
#ifndef VDB_SEAL_H
#define VDB_SEAL_H
#include <stdint.h>

#include "err.h"
#include "log.h"
#include "root.h"
#include "schema.h"

struct seal_result {
	uint64_t rows;
	size_t nsegs;
	struct seg_info *segs; /* malloc'd; registered */
};

/* seal_collection: seal every closed log file and the active one;
 * max_rows splits a partition's rows into several segments (0: no limit).
 * ls is the caller's insert stream (not locked). */
int seal_collection(struct root *r, const struct schema *sc, struct logstream *ls,
                    uint64_t max_rows, struct seal_result *res, struct vdb_err *e);

#endif
