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
#include "log.h"
#include "meta.h"
#include "root.h"

/* A snapshot: the timestamp a reader sees the collection at, the
 * tombstones up to it, the sealed segments and the open files of the log's
 * unsealed tail — one consistent cut, even while a seal runs. */
struct snapshot {
	uint64_t ts;
	struct idmap tombs; /* id -> newest delete timestamp <= ts */
	struct seg_info *segs;
	size_t nsegs;
	struct part_info *parts; /* partitions that exist */
	size_t nparts;
	char *dir; /* the log stream */
	int *fds; /* insert log files after the sealed one, open */
	uint32_t *seqs;
	size_t nlog;
};

/* snapshot_take: as of now (ts == 0: strong) or as of ts, which must not
 * be in the future (VDB_EINPUT) */
int snapshot_take(struct root *r, const struct schema *sc, uint64_t ts, struct snapshot *s,
                  struct vdb_err *e);
void snapshot_free(struct snapshot *s);
/* snapshot_log: fn for each insert frame of the unsealed tail */
int snapshot_log(struct snapshot *s, int64_t cid, log_frame_fn fn, void *arg, struct vdb_err *e);
/* snapshot_live: live[r] for the rows of b — in a partition that exists,
 * stamped at or before the snapshot, not deleted by a newer tombstone */
void snapshot_live(const struct snapshot *s, const struct batch *b, uint8_t *live);
/* snapshot_all_live: every row of segment si is live in s, known without
 * looking at the rows — its partition exists, its newest row is not after
 * the snapshot, and there are no tombstones at all */
int snapshot_all_live(const struct snapshot *s, const struct seg_info *si);

/* fn gets each batch with live[r] set for rows that are not deleted */
typedef int (*scan_fn)(void *arg, const struct batch *b, const uint8_t *live, struct vdb_err *e);

int scan_collection(struct root *r, const struct schema *sc, scan_fn fn, void *arg,
                    struct vdb_err *e);
/* scan_tombstones: id -> newest delete timestamp up to ts, from the delete
 * log */
int scan_tombstones(struct root *r, const struct schema *sc, uint64_t ts, struct idmap *tombs,
                    struct vdb_err *e);

#endif
