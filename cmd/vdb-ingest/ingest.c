/* ingest.c: batching, acknowledgement, sealing and bulk import.
 *
 * Log mode: records gather in a batch; a batch becomes one log frame,
 * fdatasync'd, then acknowledged on stdout.  When the log's active file
 * passes --segment-rows/--segment-bytes, it is sealed into segments.
 * Bulk mode (fvecs and npy by default): rows stream straight into a
 * segment object; each segment is acknowledged once registered. */
#include "ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "seal.h"

#define BULK_CHUNK 8192

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
progress(struct ingest *g, int last)
{
	double t = now();

	if (!g->progress || (!last && t - g->tlast < 0.5))
		return;
	g->tlast = t;
	fprintf(stderr, "\rvdb-ingest: %" PRIu64 " rows acknowledged (%.0f rows/s)%s", g->acked,
	        t > g->t0 ? (double)g->acked / (t - g->t0) : 0.0, last ? "\n" : "");
}

int
ingest_open(struct ingest *g, struct vdb_err *e)
{
	batch_init(&g->batch, &g->sc);
	batch_init_scalars(&g->scal, &g->sc);
	g->batch.partition_id = g->scal.partition_id = g->pid;
	idmap_init(&g->seen);
	g->t0 = g->tlast = now();
	return log_init(&g->ls, g->root->path, g->sc.id, LOG_KIND_INSERT, e);
}

void
ingest_close(struct ingest *g)
{
	seg_writer_abort(g->w);
	g->w = NULL;
	log_close(&g->ls);
	batch_free(&g->batch);
	batch_free(&g->scal);
	idmap_free(&g->seen);
	progress(g, 1);
}

static void
id_range(const struct batch *b, int64_t *lo, int64_t *hi)
{
	*lo = INT64_MAX;
	*hi = INT64_MIN;
	for (size_t i = 0; i < b->n; i++) {
		if (b->ids[i] < *lo)
			*lo = b->ids[i];
		if (b->ids[i] > *hi)
			*hi = b->ids[i];
	}
}

static int
ack(struct ingest *g, size_t rows, const struct batch *b, uint64_t ts, const char *segment,
    struct vdb_err *e)
{
	int64_t lo, hi;

	id_range(b, &lo, &hi);
	printf("{\"rows\":%zu,\"min_id\":%" PRId64 ",\"max_id\":%" PRId64 ",\"ts\":%" PRIu64
	       ",\"partition\":\"%s\"",
	       rows, lo, hi, ts, g->pname);
	if (segment)
		printf(",\"segment\":\"%s\"", segment);
	printf("}\n");
	if (fflush(stdout) != 0 || ferror(stdout))
		return vdb_err_errno(e, VDB_ETEMP, "stdout");
	g->acked += rows;
	progress(g, 0);
	return VDB_OK;
}

static int
assign_auto_ids(struct ingest *g, struct batch *b, struct vdb_err *e)
{
	int64_t first;
	int rc;

	if (!g->sc.auto_id || b->n == 0)
		return VDB_OK;
	if ((rc = meta_autoid_alloc(g->root->meta, g->sc.id, b->n, &first, e)) != VDB_OK)
		return rc;
	for (size_t i = 0; i < b->n; i++)
		b->ids[i] = first + (int64_t)i;
	return VDB_OK;
}

static int
maybe_seal(struct ingest *g, int force, struct vdb_err *e)
{
	struct seal_result res;
	int rc;

	if (!force && !((g->seg_rows && g->ls.rows >= g->seg_rows) || g->ls.end >= g->seg_bytes))
		return VDB_OK;
	if ((rc = seal_collection(g->root, &g->sc, &g->ls, g->seg_rows, &res, e)) != VDB_OK)
		return rc;
	for (size_t i = 0; i < res.nsegs; i++)
		if (g->verbose || force)
			fprintf(force ? stdout : stderr,
			        "{\"segment\":\"%s\",\"rows\":%" PRIu64 ",\"bytes\":%" PRIu64 "}\n",
			        res.segs[i].object, res.segs[i].rows, res.segs[i].bytes);
	free(res.segs);
	return VDB_OK;
}

/* commit_log: the pending batch as one durable log frame */
static int
commit_log(struct ingest *g, struct vdb_err *e)
{
	unsigned char *payload = NULL;
	size_t len;
	uint32_t sealed;
	uint64_t ts;
	int rc;

	if (g->batch.n == 0)
		return VDB_OK;
	if ((rc = assign_auto_ids(g, &g->batch, e)) != VDB_OK)
		return rc;
	if ((rc = meta_stream_sealed(g->root->meta, g->sc.id, &sealed, e)) != VDB_OK)
		return rc;
	if ((rc = log_lock(&g->ls, sealed, e)) != VDB_OK)
		return rc;
	if (g->ls.notice[0])
		fprintf(stderr, "vdb-ingest: warning: %s\n", g->ls.notice);
	/* a partition dropped (and perhaps made again, with a new id) since
	 * we looked it up must not receive rows that would count as dropped;
	 * partition drop takes this lock, so the answer holds until we append */
	int exists;
	if ((rc = meta_partition_exists(g->root->meta, g->pid, &exists, e)) != VDB_OK)
		goto out;
	if (!exists) {
		rc = vdb_err_set(e, VDB_ENOENT, "partition '%s' was dropped", g->pname);
		goto out;
	}
	/* the timestamp is taken under the append lock, so frames are in
	 * timestamp order within the stream */
	if ((rc = meta_ts_alloc(g->root->meta, &ts, e)) != VDB_OK)
		goto out;
	if ((rc = batch_encode(&g->batch, ts, &payload, &len, e)) != VDB_OK)
		goto out;
	if ((rc = log_append(&g->ls, payload, len, (uint32_t)g->batch.n, e)) != VDB_OK)
		goto out;
	log_unlock(&g->ls);
	if ((rc = ack(g, g->batch.n, &g->batch, ts, NULL, e)) != VDB_OK)
		goto out;
	batch_clear(&g->batch);
	idmap_clear(&g->seen);
	rc = maybe_seal(g, 0, e);
out:
	log_unlock(&g->ls);
	free(payload);
	return rc;
}

static uint64_t
bulk_rows(const struct ingest *g)
{
	uint64_t per = (uint64_t)g->sc.dim * 4 + 16, rows = g->seg_bytes / per;

	if (g->seg_rows && g->seg_rows < rows)
		rows = g->seg_rows;
	if (rows > SEG_MAX_ROWS)
		rows = SEG_MAX_ROWS; /* searches number a segment's rows in 32 bits */
	return rows ? rows : 1;
}

/* bulk_finish: publish, register and acknowledge the segment being written */
static int
bulk_finish(struct ingest *g, struct vdb_err *e)
{
	struct seg_info info;
	struct seg_writer *w = g->w;
	uint64_t ts;
	int pubfd, rc;

	if (w == NULL)
		return VDB_OK;
	g->w = NULL;
	if ((rc = assign_auto_ids(g, &g->scal, e)) != VDB_OK ||
	    (rc = meta_ts_alloc(g->root->meta, &ts, e)) != VDB_OK ||
	    (rc = root_publish_lock(g->root, 0, &pubfd, NULL, e)) != VDB_OK) {
		seg_writer_abort(w);
		return rc;
	}
	for (size_t i = 0; i < g->scal.n; i++)
		g->scal.ts[i] = ts;
	/* published, then registered: vdb-index's sweep waits for both */
	if ((rc = seg_writer_finish(w, &g->scal, &info, e)) == VDB_OK)
		rc = meta_seal_commit(g->root->meta, g->sc.id, &info, 1, 0, e);
	root_publish_unlock(pubfd);
	if (rc != VDB_OK)
		return rc;
	rc = ack(g, g->scal.n, &g->scal, ts, info.object, e);
	batch_clear(&g->scal);
	idmap_clear(&g->seen);
	return rc;
}

/* bulk_chunk: move the pending rows into the segment being written */
static int
bulk_chunk(struct ingest *g, struct vdb_err *e)
{
	size_t at = 0;
	int rc;

	while (at < g->batch.n) {
		uint64_t room;
		size_t k;
		if (g->w == NULL &&
		    (rc = seg_writer_begin(g->root->store, &g->sc, g->pid, &g->w, e)) != VDB_OK)
			return rc;
		room = bulk_rows(g) - g->scal.n;
		k = g->batch.n - at < room ? g->batch.n - at : (size_t)room;
		if ((rc = seg_writer_add_vectors(g->w, g->batch.vec + at * g->sc.dim, k, e)) !=
		    VDB_OK)
			return rc;
		if ((rc = batch_reserve(&g->scal, k, e)) != VDB_OK)
			return rc;
		for (size_t i = 0; i < k; i++)
			if ((rc = batch_copy_row(&g->scal, &g->batch, at + i, e)) != VDB_OK)
				return rc;
		at += k;
		if (g->scal.n >= bulk_rows(g)) {
			if ((rc = bulk_finish(g, e)) != VDB_OK)
				return rc;
			/* the rest of this chunk goes into the next segment: its
			 * ids were checked against the set bulk_finish emptied */
			for (size_t i = at; i < g->batch.n && !g->sc.auto_id; i++)
				if (idmap_put(&g->seen, g->batch.ids[i], 0) < 0)
					return vdb_err_set(e, VDB_ETEMP, "out of memory");
		}
	}
	batch_clear(&g->batch);
	return VDB_OK;
}

static int
commit(struct ingest *g, struct vdb_err *e)
{
	return g->bulk ? bulk_chunk(g, e) : commit_log(g, e);
}

static int
batch_full(const struct ingest *g)
{
	if (g->bulk)
		return g->batch.n >= BULK_CHUNK;
	return g->batch.n >= g->batch_rows || batch_payload_size(&g->batch) >= LOG_MAX_PAYLOAD / 2;
}

/* reject: report a bad record; in skip mode keep its bytes */
static int
reject(struct ingest *g, struct rec_reader *rr, struct vdb_err *e)
{
	if (!g->skip)
		return VDB_EINPUT; /* main() reports it */
	fprintf(stderr, "vdb-ingest: %s (skipped)\n", e->msg);
	g->rejected++;
	if (g->rejects && rr->rawlen) {
		fwrite(rr->raw, 1, rr->rawlen, g->rejects);
		if (rr->format <= FMT_TSV && rr->raw[rr->rawlen - 1] != '\n')
			fputc('\n', g->rejects);
		if (ferror(g->rejects))
			return vdb_err_errno(e, VDB_ETEMP, "rejects file: write");
	}
	return VDB_OK;
}

int
ingest_fd(struct ingest *g, int fd, const char *name, struct vdb_err *e)
{
	struct rec_reader rr;
	int rc;

	if ((rc = rec_open(&rr, g->format, &g->sc, fd, name, &g->next_id, e)) != VDB_OK) {
		rec_close(&rr);
		return rc;
	}
	rr.linger_ms = g->linger_ms;
	for (;;) {
		rr.pending = g->batch.n > 0;
		rc = rec_next(&rr, &g->batch, e);
		if (rc == REC_EOF) {
			rc = VDB_OK;
			break;
		}
		if (rc == REC_IDLE) {
			if ((rc = commit(g, e)) != VDB_OK)
				break;
			continue;
		}
		if (rc == VDB_EINPUT) {
			if ((rc = reject(g, &rr, e)) != VDB_OK)
				break;
			if (rr.fatal)
				break;
			continue;
		}
		if (rc != VDB_OK)
			break;
		/* a second record with an id already in this batch (fvecs and
		 * npy rows number themselves: no duplicates possible) */
		if (!g->sc.auto_id && g->format != FMT_FVECS && g->format != FMT_NPY) {
			int dup = idmap_put(&g->seen, g->batch.ids[g->batch.n - 1], 0);
			if (dup < 0) {
				rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
				break;
			}
			if (dup) {
				batch_truncate(&g->batch, g->batch.n - 1);
				vdb_err_set(e, VDB_EINPUT,
				            "%s:%llu: duplicate id %lld in the batch", name,
				            (unsigned long long)rr.recno,
				            (long long)g->batch.ids[g->batch.n]);
				if ((rc = reject(g, &rr, e)) != VDB_OK)
					break;
				continue;
			}
		}
		if (batch_full(g) && (rc = commit(g, e)) != VDB_OK)
			break;
	}
	rec_close(&rr);
	return rc;
}

int
ingest_finish(struct ingest *g, struct vdb_err *e)
{
	int rc;

	if ((rc = commit(g, e)) != VDB_OK)
		return rc;
	if (g->bulk)
		return bulk_finish(g, e);
	return VDB_OK;
}

int
ingest_flush(struct ingest *g, struct vdb_err *e)
{
	return maybe_seal(g, 1, e);
}

/* ---- deletes ---- */

static int
commit_delete(struct ingest *g, struct logstream *ls, int64_t *ids, size_t n, struct vdb_err *e)
{
	unsigned char *payload = NULL;
	size_t len;
	uint64_t ts;
	int rc;

	if (n == 0)
		return VDB_OK;
	if ((rc = log_lock(ls, 0, e)) != VDB_OK)
		return rc;
	if (ls->notice[0])
		fprintf(stderr, "vdb-ingest: warning: %s\n", ls->notice);
	if ((rc = meta_ts_alloc(g->root->meta, &ts, e)) == VDB_OK &&
	    (rc = delete_encode(ids, n, ts, &payload, &len, e)) == VDB_OK &&
	    (rc = log_append(ls, payload, len, (uint32_t)n, e)) == VDB_OK) {
		log_unlock(ls);
		printf("{\"deleted\":%zu,\"ts\":%" PRIu64 "}\n", n, ts);
		if (fflush(stdout) != 0)
			rc = vdb_err_errno(e, VDB_ETEMP, "stdout");
	}
	log_unlock(ls);
	free(payload);
	return rc;
}

int
ingest_delete_fd(struct ingest *g, FILE *in, const char *name, struct vdb_err *e)
{
	struct logstream ls;
	size_t n = 0, cap = 0, lcap = 0;
	int64_t *ids = NULL;
	char *line = NULL;
	unsigned long long lineno = 0;
	ssize_t len;
	int rc;

	if ((rc = log_init(&ls, g->root->path, g->sc.id, LOG_KIND_DELETE, e)) != VDB_OK)
		return rc;
	while ((len = getline(&line, &lcap, in)) >= 0) {
		char *p = line, *end;
		long long v;
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			continue;
		errno = 0;
		v = strtoll(p, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (end == p || *end || errno) {
			rc = vdb_err_set(e, VDB_EINPUT, "%s:%llu: not an id: '%.40s'", name, lineno,
			                 p);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			int64_t *ni = realloc(ids, cap * sizeof(*ids));
			if (ni == NULL) {
				rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
				goto out;
			}
			ids = ni;
		}
		ids[n++] = v;
		if (n == g->batch_rows) {
			if ((rc = commit_delete(g, &ls, ids, n, e)) != VDB_OK)
				goto out;
			n = 0;
		}
	}
	if (ferror(in)) {
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: read", name);
		goto out;
	}
	rc = commit_delete(g, &ls, ids, n, e);
out:
	free(line);
	free(ids);
	log_close(&ls);
	return rc;
}
