/* record.h: readers that turn input records (JSONL, TSV, fvecs, npy) into
 * batch rows, validating each against the schema.  A bad record gives
 * VDB_EINPUT with "NAME:N: reason" (N the line, or the row counted from 1)
 * and leaves the reader after it, so a caller may skip and go on —
 * unless rec_fatal() says the input cannot be resynchronised. */
#ifndef VDB_RECORD_H
#define VDB_RECORD_H
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "err.h"
#include "schema.h"

enum rec_format { FMT_JSONL, FMT_TSV, FMT_FVECS, FMT_NPY };

#define REC_EOF (-1)
#define REC_IDLE (-2) /* no input within the linger time; try again */
#define REC_MAX_LINE (64u << 20)
#define TSV_MAX_COLS (VDB_MAX_FIELDS + 2)

struct rec_reader {
	int format;
	const struct schema *sc;
	int fd;
	const char *name;
	unsigned char *buf;
	size_t cap, pos, len;
	int eof, fatal;
	int mapped; /* buf is a private map of the whole (regular) file */
	size_t dropped; /* map bytes before this are given back */
	char *scratch; /* tsv: a string without its escapes */
	size_t scratch_cap;
	uint64_t recno; /* records (lines) read so far */
	int64_t *next_id; /* binary formats: id of the next row (caller's counter) */
	int linger_ms; /* > 0: return REC_IDLE when no input arrives in time */
	int pending; /* set by the caller: it holds rows it could commit */
	const unsigned char *raw; /* the last record's bytes (for --rejects) */
	size_t rawlen;
	/* tsv: what each column holds: -1 id, -2 vector, else field index */
	int tsv_cols[TSV_MAX_COLS];
	int tsv_ncols;
	/* npy */
	uint64_t npy_left;
	int npy_f8;
};

int rec_format_parse(const char *s, int *format);
/* rec_open: reads the TSV or npy header at once */
int rec_open(struct rec_reader *r, int format, const struct schema *sc, int fd, const char *name,
             int64_t *next_id, struct vdb_err *e);
void rec_close(struct rec_reader *r);
/* rec_next: append one record to b: VDB_OK, REC_EOF, REC_IDLE, or an error */
int rec_next(struct rec_reader *r, struct batch *b, struct vdb_err *e);

#endif
