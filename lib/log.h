/* log.h: the append log (formats/log.md).  A stream is a directory of
 * numbered files, each a header and a run of frames (length, CRC-32C of
 * the payload, CRC-32C of the frame header, payload).  An append is one
 * frame, made durable with fdatasync before it is acknowledged. */
#ifndef VDB_LOG_H
#define VDB_LOG_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define LOG_KIND_INSERT 1
#define LOG_KIND_DELETE 2
#define LOG_FILE_HDR 32
#define LOG_FRAME_HDR 16
#define LOG_MAX_PAYLOAD (64u << 20)

struct logstream {
	char *dir; /* ROOT/log/<collection id> */
	int kind;
	int64_t cid;
	int lockfd; /* append lock, held between log_lock and log_unlock */
	int fd; /* active file */
	uint32_t seq; /* active file's sequence number */
	char *path; /* active file */
	uint64_t end; /* end of the last good frame in the active file */
	uint64_t rows; /* rows in the active file */
	char notice[512]; /* set when a torn tail was truncated; the caller reports it */
};

struct log_scan {
	uint64_t valid_end; /* offset after the last good frame */
	uint64_t frames, rows;
	int torn; /* 1: bytes after valid_end are an interrupted append */
	uint64_t torn_bytes;
};

typedef int (*log_frame_fn)(void *arg, const unsigned char *payload, size_t len, uint64_t off,
                            struct vdb_err *e);

int log_init(struct logstream *ls, const char *root, int64_t cid, int kind, struct vdb_err *e);
void log_close(struct logstream *ls);
/* log_lock: take the stream's append lock, drop files up to sealed_seq
 * (already in segments), open the newest file (creating the first one),
 * and truncate a torn tail left by an append that never finished. */
int log_lock(struct logstream *ls, uint32_t sealed_seq, struct vdb_err *e);
void log_unlock(struct logstream *ls);
/* log_append: one frame, fdatasync'd; with the lock held */
int log_append(struct logstream *ls, const void *payload, size_t len, uint32_t rows,
               struct vdb_err *e);
/* log_rotate: start file seq+1 if the active one has frames; lock held */
int log_rotate(struct logstream *ls, struct vdb_err *e);

/* log_list: sequence numbers of the stream's files, ascending */
int log_list(const char *dir, int kind, uint32_t **seqs, size_t *n, struct vdb_err *e);
char *log_file_path(const char *dir, int kind, uint32_t seq);
/* log_scan_fd: check the file header (when from == 0) and call fn for each
 * good frame from offset from on.  A bad frame that no good frame follows
 * is a torn tail (res->torn); a bad frame followed by a good one is
 * corruption (VDB_ECORRUPT naming the offset). */
int log_scan_fd(int fd, const char *path, int kind, int64_t cid, uint64_t from, log_frame_fn fn,
                void *arg, struct log_scan *res, struct vdb_err *e);

#endif
