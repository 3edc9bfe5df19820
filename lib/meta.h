/* meta.h: the catalogue in ROOT/meta.db (SQLite, WAL, synchronous=FULL).
 * Collections, fields, partitions, sealed segments, log stream state, the
 * hybrid timestamp oracle and auto-id ranges.  Parameterised statements
 * only; the schema is versioned with PRAGMA user_version and migrated
 * forward on open (see formats/meta.md). */
#ifndef VDB_META_H
#define VDB_META_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "index.h"
#include "schema.h"

#define META_APPLICATION_ID 0x76646231 /* "vdb1" */
#define HTS_LOGICAL_BITS 18

struct meta;

struct seg_info {
	int64_t id;
	int64_t collection_id;
	int64_t partition_id;
	char partition[VDB_MAX_NAME + 1];
	char object[65]; /* hex SHA-256 object key */
	uint64_t rows, bytes;
	int64_t min_id, max_id;
	uint64_t min_ts, max_ts;
	int64_t created; /* unix seconds */
	/* the index a search uses for it ("" none), its type, and whether it
	 * is of the collection's current spec (else vdb-index rebuilds it) */
	char index[65];
	int index_type;
	int index_current;
};

#define META_SPEC_MAX 96 /* index_spec_format's text, with room */

/* an index to register: built for segment object seg under spec */
struct index_reg {
	char seg[65];
	char spec[META_SPEC_MAX];
	int type;
	char object[65];
	uint64_t bytes;
};

struct part_info {
	int64_t id;
	char name[VDB_MAX_NAME + 1];
};

int meta_open(const char *path, int create, struct meta **out, struct vdb_err *e);
void meta_close(struct meta *m);
int meta_schema_version(struct meta *m);

int meta_collection_create(struct meta *m, struct schema *s, struct vdb_err *e);
int meta_collection_get(struct meta *m, const char *name, struct schema *s, struct vdb_err *e);
int meta_collection_get_id(struct meta *m, int64_t id, struct schema *s, struct vdb_err *e);
/* meta_collection_list: malloc'd array of schemas, ordered by name */
int meta_collection_list(struct meta *m, struct schema **out, size_t *n, struct vdb_err *e);
/* meta_collection_drop: removes the rows; *objects gets the object keys the
 * collection owned (malloc'd array of 65-byte keys) for the caller to delete */
int meta_collection_drop(struct meta *m, int64_t id, char (**objects)[65], size_t *nobj,
                         struct vdb_err *e);

int meta_partition_create(struct meta *m, int64_t cid, const char *name, struct vdb_err *e);
int meta_partition_get(struct meta *m, int64_t cid, const char *name, int64_t *pid,
                       struct vdb_err *e);
int meta_partition_list(struct meta *m, int64_t cid, struct part_info **out, size_t *n,
                        struct vdb_err *e);
/* meta_partition_exists: does partition id still exist (not dropped)? */
int meta_partition_exists(struct meta *m, int64_t pid, int *exists, struct vdb_err *e);
int meta_partition_drop(struct meta *m, int64_t cid, const char *name, char (**objects)[65],
                        size_t *nobj, struct vdb_err *e);

/* meta_ts_alloc: a hybrid timestamp (physical ms << 18 | logical) larger
 * than every one handed out before, by any process on this root. */
int meta_ts_alloc(struct meta *m, uint64_t *ts, struct vdb_err *e);
/* meta_ts_last: the last timestamp handed out — what a reader may use as
 * its snapshot without a write (every acknowledged write has one <= it) */
int meta_ts_last(struct meta *m, uint64_t *ts, struct vdb_err *e);
/* meta_autoid_alloc: reserve n consecutive ids; *first is the first */
int meta_autoid_alloc(struct meta *m, int64_t cid, uint64_t n, int64_t *first, struct vdb_err *e);

/* meta_segments: sealed segments of a collection (cid < 0: all), by id */
int meta_segments(struct meta *m, int64_t cid, struct seg_info **out, size_t *n, struct vdb_err *e);
/* meta_snapshot: segments and the insert stream's sealed sequence number,
 * read in one transaction so a reader sees a consistent cut. */
int meta_snapshot(struct meta *m, int64_t cid, struct seg_info **segs, size_t *n,
                  uint32_t *sealed_seq, struct vdb_err *e);
/* meta_seal_commit: register segs (ids filled in) and, when sealed_seq is
 * non-zero, mark log files up to it as sealed — one transaction. */
int meta_seal_commit(struct meta *m, int64_t cid, struct seg_info *segs, size_t n,
                     uint32_t sealed_seq, struct vdb_err *e);
int meta_stream_sealed(struct meta *m, int64_t cid, uint32_t *sealed_seq, struct vdb_err *e);
/* meta_object_known: is key registered by any segment or index? */
int meta_object_known(struct meta *m, const char *key, int *known, struct vdb_err *e);
int meta_integrity(struct meta *m, char **report, struct vdb_err *e);

/* meta_index_spec_get: the collection's index spec (type IDX_FLAT when
 * none was set); _set: replace it */
int meta_index_spec_get(struct meta *m, int64_t cid, struct index_spec *s, struct vdb_err *e);
int meta_index_spec_set(struct meta *m, int64_t cid, const struct index_spec *s, struct vdb_err *e);
/* meta_index_register: r built for one of cid's segments; VDB_EEXIST when
 * that segment already has an index of that spec */
int meta_index_register(struct meta *m, int64_t cid, const struct index_reg *r, struct vdb_err *e);
/* meta_index_retire: move to the trash (since now) the indexes of cid that
 * no search will use again — their segment is gone, or an index of the
 * current spec replaced them, or the spec is flat; *n counts them */
int meta_index_retire(struct meta *m, int64_t cid, int64_t now, size_t *n, struct vdb_err *e);
/* meta_indexes: every registered index of cid (cid < 0: all) */
struct index_row {
	int64_t collection_id;
	char seg[65], object[65];
	char spec[META_SPEC_MAX];
	int type;
	uint64_t bytes;
};
int meta_indexes(struct meta *m, int64_t cid, struct index_row **out, size_t *n, struct vdb_err *e);

/* meta_compact_commit: one transaction that replaces the segments with
 * registration ids old[0..nold) by segs (ids filled in) and registers
 * their indexes; the objects no row references any more go to the trash
 * (since now).  VDB_ETEMP when an old segment is no longer registered (a
 * concurrent drop): nothing changes. */
int meta_compact_commit(struct meta *m, int64_t cid, const int64_t *old, size_t nold,
                        struct seg_info *segs, size_t n, const struct index_reg *idx, size_t nidx,
                        int64_t now, struct vdb_err *e);
/* meta_trash_due: objects in the trash since before or earlier that no
 * row references (referenced ones leave the trash); malloc'd keys */
int meta_trash_due(struct meta *m, int64_t before, char (**out)[65], size_t *n, struct vdb_err *e);
/* meta_trash_put: an object nothing will register (a build that lost a
 * race) waits in the trash like the rest */
int meta_trash_put(struct meta *m, const char *key, int64_t now, struct vdb_err *e);
/* meta_trash_forget: the object is gone from the store */
int meta_trash_forget(struct meta *m, const char *key, struct vdb_err *e);
/* meta_trash_has: is key waiting in the trash? */
int meta_trash_has(struct meta *m, const char *key, int *has, struct vdb_err *e);
/* meta_objects_named: every object a segments, indexes or trash row
 * names, sorted by key (malloc'd) */
int meta_objects_named(struct meta *m, char (**out)[65], size_t *n, struct vdb_err *e);

#endif
