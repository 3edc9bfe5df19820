/* vindex.h: vdb-index's parts — building the indexes a collection's spec
 * asks for (build.c), compacting segments (compact.c), and deleting
 * objects whose grace period is over (gc.c). */
#ifndef VDB_VINDEX_H
#define VDB_VINDEX_H
#include <stdint.h>

#include "err.h"
#include "meta.h"
#include "root.h"
#include "schema.h"

struct vindex {
	struct root *r;
	int threads;
	int64_t grace; /* seconds an unreferenced object is kept */
	uint64_t segment_bytes; /* compaction's target segment size */
	int progress; /* stderr is a terminal */
	/* counts for the summary line */
	uint64_t built, retired, compacted, merged_into, deleted;
	int failed; /* the first segment that could not be indexed: its code */
	double t_progress;
};

/* vindex_build: an index of the collection's current spec for every
 * sealed segment that lacks one; then retire the ones superseded */
int vindex_build(struct vindex *x, const struct schema *sc, struct vdb_err *e);
/* vindex_build_segment: build and publish (not register) the index spec
 * asks for over segment si; *reg describes it */
int vindex_build_segment(struct vindex *x, const struct schema *sc, const struct seg_info *si,
                         const struct index_spec *spec, struct index_reg *reg, struct vdb_err *e);
int vindex_compact(struct vindex *x, const struct schema *sc, struct vdb_err *e);
int vindex_gc(struct vindex *x, struct vdb_err *e);
/* vindex_progress: "\rvdb-index: what ...%" on a terminal, at most twice
 * a second unless last */
void vindex_progress(struct vindex *x, int last, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
