#include "seal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "file.h"
#include "segment.h"

/* Rows stream from the log frames into one segment writer per
 * partition, so sealing needs memory for a frame, not for a segment. */
struct part {
	int64_t pid;
	int dropped; /* rows logged for a partition dropped since go with it */
	int piped;
	struct seg_writer *w;
	struct batch scal;
};

struct sealer {
	struct root *r;
	const struct schema *sc;
	uint64_t max_rows;
	struct part *p;
	size_t n;
	struct batch frame;
	struct seal_result *res;
	int piped; /* writers with threads open now: a few, however many partitions */
};

static int
part_get(struct sealer *s, int64_t pid, struct part **out, struct vdb_err *e)
{
	struct part *np;
	int exists, rc;

	for (size_t i = 0; i < s->n; i++)
		if (s->p[i].pid == pid) {
			*out = &s->p[i];
			return VDB_OK;
		}
	if ((rc = meta_partition_exists(s->r->meta, pid, &exists, e)) != VDB_OK)
		return rc;
	if ((np = realloc(s->p, (s->n + 1) * sizeof(*np))) == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	s->p = np;
	np = &s->p[s->n++];
	memset(np, 0, sizeof(*np));
	np->pid = pid;
	np->dropped = !exists;
	batch_init_scalars(&np->scal, s->sc);
	*out = np;
	return VDB_OK;
}

/* part_finish: publish the segment being written for p */
static int
part_finish(struct sealer *s, struct part *p, struct vdb_err *e)
{
	struct seg_info *ns;
	struct seg_writer *w = p->w;
	int rc;

	if (w == NULL)
		return VDB_OK;
	p->w = NULL;
	s->piped -= p->piped;
	p->piped = 0;
	if ((ns = realloc(s->res->segs, (s->res->nsegs + 1) * sizeof(*ns))) == NULL) {
		seg_writer_abort(w);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	s->res->segs = ns;
	if ((rc = seg_writer_finish(w, &p->scal, &ns[s->res->nsegs], e)) != VDB_OK)
		return rc;
	s->res->nsegs++;
	s->res->rows += p->scal.n;
	batch_clear(&p->scal);
	return VDB_OK;
}

static int
on_frame(void *arg, const unsigned char *payload, size_t len, uint64_t off, struct vdb_err *e)
{
	struct sealer *s = arg;
	struct part *p = NULL;
	size_t at = 0;
	int rc;

	batch_clear(&s->frame);
	if ((rc = batch_decode(&s->frame, payload, len, e)) != VDB_OK) {
		vdb_err_prefix(e, "frame at offset %llu: ", (unsigned long long)off);
		return rc;
	}
	if ((rc = part_get(s, s->frame.partition_id, &p, e)) != VDB_OK || p->dropped)
		return rc;
	while (at < s->frame.n) {
		size_t k = s->frame.n - at;
		if (s->max_rows && k > s->max_rows - p->scal.n)
			k = s->max_rows - p->scal.n;
		if (p->w == NULL) {
			p->piped = s->piped < 2;
			rc = p->piped ? seg_writer_begin(s->r->store, s->sc, p->pid, &p->w, e)
			              : seg_writer_begin_serial(s->r->store, s->sc, p->pid, &p->w,
			                                        e);
			if (rc != VDB_OK)
				return rc;
			s->piped += p->piped;
		}
		if ((rc = seg_writer_add_vectors(p->w, s->frame.vec + at * s->sc->dim, k, e)) !=
		    VDB_OK)
			return rc;
		if ((rc = batch_reserve(&p->scal, k, e)) != VDB_OK)
			return rc;
		for (size_t i = 0; i < k; i++)
			if ((rc = batch_copy_row(&p->scal, &s->frame, at + i, e)) != VDB_OK)
				return rc;
		at += k;
		if (s->max_rows && p->scal.n >= s->max_rows &&
		    (rc = part_finish(s, p, e)) != VDB_OK)
			return rc;
	}
	return VDB_OK;
}

int
seal_collection(struct root *r, const struct schema *sc, struct logstream *ls, uint64_t max_rows,
                struct seal_result *res, struct vdb_err *e)
{
	/* searches number a segment's rows in 32 bits */
	struct sealer sl = {.r = r,
	                    .sc = sc,
	                    .max_rows =
	                            max_rows && max_rows < SEG_MAX_ROWS ? max_rows : SEG_MAX_ROWS,
	                    .res = res};
	uint32_t sealed, last = 0, *seqs = NULL;
	size_t nseq = 0;
	char *lockpath;
	int lockfd = -1, pubfd = -1, rc;

	memset(res, 0, sizeof(*res));
	batch_init(&sl.frame, sc);
	lockpath = path_join(ls->dir, "seal.lock");
	if (lockpath == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	rc = file_lock(lockpath, 0, &lockfd, e);
	free(lockpath);
	if (rc != VDB_OK)
		return rc;
	if ((rc = meta_stream_sealed(r->meta, sc->id, &sealed, e)) != VDB_OK)
		goto out;
	/* close the active file so that what we seal can no longer grow */
	if ((rc = log_lock(ls, sealed, e)) != VDB_OK)
		goto out;
	rc = log_rotate(ls, e);
	last = ls->seq - 1;
	log_unlock(ls);
	if (rc != VDB_OK || last <= sealed)
		goto out;
	/* segments are published as they fill and registered together at
	 * the end: until then vdb-index must not sweep them up */
	if ((rc = root_publish_lock(r, 0, &pubfd, NULL, e)) != VDB_OK)
		goto out;
	if ((rc = log_list(ls->dir, LOG_KIND_INSERT, &seqs, &nseq, e)) != VDB_OK)
		goto out;
	for (size_t i = 0; i < nseq; i++) {
		struct log_scan scan;
		char *path;
		int fd;
		if (seqs[i] <= sealed || seqs[i] > last)
			continue;
		path = log_file_path(ls->dir, LOG_KIND_INSERT, seqs[i]);
		if (path == NULL) {
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			goto out;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = vdb_err_errno(e, VDB_ETEMP, "%s: open", path);
			free(path);
			goto out;
		}
		rc = log_scan_fd(fd, path, LOG_KIND_INSERT, sc->id, 0, on_frame, &sl, &scan, e);
		close(fd);
		if (rc == VDB_OK && scan.torn)
			rc = vdb_err_set(e, VDB_ECORRUPT,
			                 "%s: closed log file has a bad tail at offset %llu", path,
			                 (unsigned long long)scan.valid_end);
		if (rc != VDB_OK && strncmp(e->msg, path, strlen(path)) != 0)
			vdb_err_prefix(e, "%s: ", path);
		free(path);
		if (rc != VDB_OK)
			goto out;
	}
	for (size_t i = 0; i < sl.n && rc == VDB_OK; i++)
		rc = part_finish(&sl, &sl.p[i], e);
	if (rc != VDB_OK)
		goto out;
	if ((rc = meta_seal_commit(r->meta, sc->id, res->segs, res->nsegs, last, e)) != VDB_OK)
		goto out;
	/* registered: the log files are now garbage; a crash before this
	 * loop is finished is mended by the next log_lock */
	for (size_t i = 0; i < nseq; i++) {
		if (seqs[i] > last)
			continue;
		char *path = log_file_path(ls->dir, LOG_KIND_INSERT, seqs[i]);
		if (path)
			unlink(path);
		free(path);
	}
	file_sync_dir(ls->dir, NULL);
out:
	if (rc != VDB_OK) {
		free(res->segs);
		res->segs = NULL;
		res->nsegs = 0;
		res->rows = 0;
	}
	for (size_t i = 0; i < sl.n; i++) {
		seg_writer_abort(sl.p[i].w);
		batch_free(&sl.p[i].scal);
	}
	free(sl.p);
	batch_free(&sl.frame);
	free(seqs);
	root_publish_unlock(pubfd);
	file_unlock(lockfd);
	return rc;
}
