/* segment.h: immutable segment objects (formats/segment.md).  A header,
 * 64-byte aligned column blocks (vectors raw for mmap, scalars zstd), a
 * footer listing every block with its SHA-256, and a trailer.  The object
 * key is the SHA-256 of the footer, which commits to every byte. */
#ifndef VDB_SEGMENT_H
#define VDB_SEGMENT_H
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "err.h"
#include "meta.h"
#include "schema.h"
#include "store.h"

#define SEG_HDR 64
#define SEG_TRAILER 56
#define SEG_ALIGN 64
#define SEG_PIECE (8u << 20) /* the vector block is hashed in pieces of this */
/* rows in one segment that vdb writes: search numbers them in 32 bits */
#define SEG_MAX_ROWS 0xffffffffull

enum seg_ctype { SC_VECTOR = 0, SC_INT64 = 1, SC_DOUBLE = 2, SC_BOOL = 3, SC_STRING = 4 };
enum seg_enc { SE_RAW = 0, SE_ZSTD = 1 };

struct seg_col {
	char name[VDB_MAX_NAME + 1];
	int type, enc;
	uint64_t off, stored, raw;
	unsigned char sha[32];
};

struct seg_writer;

int seg_writer_begin(struct store *st, const struct schema *sc, int64_t partition_id,
                     struct seg_writer **out, struct vdb_err *e);
/* seg_writer_begin_serial: the same without threads and with one buffer,
 * for when many segments are written at once */
int seg_writer_begin_serial(struct store *st, const struct schema *sc, int64_t partition_id,
                            struct seg_writer **out, struct vdb_err *e);
int seg_writer_add_vectors(struct seg_writer *w, const float *v, size_t n, struct vdb_err *e);
/* seg_writer_finish: write the scalar columns of rows (ids, ts, fields;
 * its vectors are ignored — they came through add_vectors), publish the
 * object and describe it in *info (not yet registered in meta.db). */
int seg_writer_finish(struct seg_writer *w, const struct batch *rows, struct seg_info *info,
                      struct vdb_err *e);
void seg_writer_abort(struct seg_writer *w);
/* seg_write: all of b as one segment */
int seg_write(struct store *st, const struct batch *b, struct seg_info *info, struct vdb_err *e);

struct segment {
	const unsigned char *map;
	size_t size;
	uint64_t cid, pid, rows, min_ts, max_ts;
	uint32_t dim;
	int metric;
	uint32_t ncols;
	struct seg_col *cols;
	const unsigned char *footer;
	uint64_t footer_len;
	const float *vectors; /* straight from the map, 64-byte aligned */
};

/* seg_open: map and parse the structure (trailer, footer, header); the
 * block checksums are checked by seg_verify */
int seg_open(const char *path, struct segment *s, struct vdb_err *e);
int seg_open_mem(const void *buf, size_t len, struct segment *s, struct vdb_err *e);
void seg_close(struct segment *s);
/* seg_verify: every block, the header and the footer against key */
int seg_verify(const struct segment *s, const char *key, struct vdb_err *e);
/* seg_verify_meta: the header and the footer against key; seg_verify_block:
 * block i (an index into cols) */
int seg_verify_meta(const struct segment *s, const char *key, struct vdb_err *e);
int seg_verify_block(const struct segment *s, uint32_t i, struct vdb_err *e);
/* seg_load: decode every column into b (appended), checking the schema;
 * the vectors only if b has room for them (not batch_init_scalars) */
int seg_load(const struct segment *s, struct batch *b, struct vdb_err *e);

void sha256_hex(const unsigned char sha[32], char hex[65]);

#endif
