/* ingest.h: vdb-ingest's state between main() and the commit paths. */
#ifndef VDB_INGEST_H
#define VDB_INGEST_H
#include <stdint.h>
#include <stdio.h>

#include "batch.h"
#include "idmap.h"
#include "log.h"
#include "record.h"
#include "root.h"
#include "segment.h"

struct ingest {
	struct root *root;
	struct schema sc;
	int64_t pid;
	const char *pname;
	int format;
	int bulk; /* write segments directly instead of through the log */
	int skip; /* --on-error skip */
	FILE *rejects;
	size_t batch_rows;
	uint64_t seg_rows, seg_bytes;
	int linger_ms;
	int progress; /* stderr is a TTY and not -q */
	int verbose;
	int64_t next_id; /* fvecs/npy: id of the next row */

	struct logstream ls;
	struct batch batch; /* rows not yet acknowledged */
	struct idmap seen; /* ids in batch (or in the bulk segment) */
	/* bulk: the segment being written and its scalar columns */
	struct seg_writer *w;
	struct batch scal;
	uint64_t acked, rejected;
	double t0, tlast;
};

int ingest_open(struct ingest *g, struct vdb_err *e);
void ingest_close(struct ingest *g);
/* ingest_fd: read every record of fd; VDB_EINPUT stops (stop mode) */
int ingest_fd(struct ingest *g, int fd, const char *name, struct vdb_err *e);
/* ingest_finish: commit what is pending (the last batch, the last bulk
 * segment) */
int ingest_finish(struct ingest *g, struct vdb_err *e);
int ingest_flush(struct ingest *g, struct vdb_err *e);
int ingest_delete_fd(struct ingest *g, FILE *in, const char *name, struct vdb_err *e);

#endif
