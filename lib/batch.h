/* batch.h: rows of one collection held column by column in memory — what
 * the record readers fill, what a log frame carries (formats/log.md,
 * "Insert payload") and what a segment is written from. */
#ifndef VDB_BATCH_H
#define VDB_BATCH_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "schema.h"

struct col {
	int type;
	int64_t *i64;
	double *f64;
	uint8_t *b;
	uint64_t *soff; /* strings: row r is sbuf[soff[r] .. soff[r+1]) */
	char *sbuf;
	size_t scap;
};

struct batch {
	const struct schema *sc;
	int64_t partition_id;
	size_t n, cap;
	int64_t *ids;
	uint64_t *ts;
	float *vec; /* n * dim */
	int novec; /* scalar columns only: vec stays NULL */
	struct col cols[VDB_MAX_FIELDS];
};

#define PAYLOAD_INSERT 1
#define PAYLOAD_DELETE 2
#define PAYLOAD_INSERT_HDR 32
#define PAYLOAD_DELETE_HDR 16

void batch_init(struct batch *b, const struct schema *sc);
/* batch_init_scalars: a batch that keeps ids, ts and fields but no
 * vectors (a segment writer takes those directly) */
void batch_init_scalars(struct batch *b, const struct schema *sc);
void batch_free(struct batch *b);
void batch_clear(struct batch *b);
/* batch_reserve: room for n more rows */
int batch_reserve(struct batch *b, size_t more, struct vdb_err *e);
/* batch_put_string: the string of field f in row r; rows fill in order */
int batch_put_string(struct batch *b, uint32_t f, size_t r, const char *s, size_t len,
                     struct vdb_err *e);
/* batch_truncate: drop rows from n on (undo a half-read row) */
void batch_truncate(struct batch *b, size_t n);
/* batch_copy_row: append row r of src (same schema) to dst */
int batch_copy_row(struct batch *dst, const struct batch *src, size_t r, struct vdb_err *e);
size_t batch_payload_size(const struct batch *b);
/* batch_encode: the insert payload for all rows, stamped with ts */
int batch_encode(const struct batch *b, uint64_t ts, unsigned char **out, size_t *len,
                 struct vdb_err *e);
/* batch_decode: append the rows of an insert payload; VDB_ECORRUPT if it
 * does not match the schema or its own lengths */
int batch_decode(struct batch *b, const unsigned char *p, size_t len, struct vdb_err *e);
/* payload_peek: kind, rows and ts of a payload without decoding it */
int payload_peek(const unsigned char *p, size_t len, int *kind, uint32_t *rows, uint64_t *ts);

/* delete payloads: ids plus one timestamp */
int delete_encode(const int64_t *ids, size_t n, uint64_t ts, unsigned char **out, size_t *len,
                  struct vdb_err *e);
int delete_decode(const unsigned char *p, size_t len, const int64_t **ids, size_t *n, uint64_t *ts,
                  struct vdb_err *e);

#endif
