#include "seal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "file.h"
#include "segment.h"

struct parts {
	const struct schema *sc;
	struct batch *b; /* one per partition seen */
	size_t n;
	struct batch tmp;
};

static struct batch *
part_batch(struct parts *p, int64_t pid)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->b[i].partition_id == pid)
			return &p->b[i];
	struct batch *nb = realloc(p->b, (p->n + 1) * sizeof(*nb));
	if (nb == NULL)
		return NULL;
	p->b = nb;
	batch_init(&p->b[p->n], p->sc);
	p->b[p->n].partition_id = pid;
	return &p->b[p->n++];
}

static int
on_frame(void *arg, const unsigned char *payload, size_t len, uint64_t off, struct vdb_err *e)
{
	struct parts *p = arg;
	struct batch *dst;
	int rc;

	(void)off;
	batch_clear(&p->tmp);
	if ((rc = batch_decode(&p->tmp, payload, len, e)) != VDB_OK)
		return rc;
	if ((dst = part_batch(p, p->tmp.partition_id)) == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	if ((rc = batch_reserve(dst, p->tmp.n, e)) != VDB_OK)
		return rc;
	for (size_t r = 0; r < p->tmp.n; r++)
		if ((rc = batch_copy_row(dst, &p->tmp, r, e)) != VDB_OK)
			return rc;
	return VDB_OK;
}

/* write_part: rows of one partition as segments of at most max_rows */
static int
write_part(struct root *r, const struct batch *b, uint64_t max_rows, struct seal_result *res,
	   struct vdb_err *e)
{
	struct batch chunk;
	size_t step = max_rows ? max_rows : b->n;
	int rc = VDB_OK;

	batch_init(&chunk, b->sc);
	chunk.partition_id = b->partition_id;
	for (size_t at = 0; at < b->n && rc == VDB_OK; at += step) {
		size_t k = b->n - at < step ? b->n - at : step;
		struct seg_info *ns = realloc(res->segs, (res->nsegs + 1) * sizeof(*ns));
		if (ns == NULL) {
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			break;
		}
		res->segs = ns;
		batch_clear(&chunk);
		for (size_t i = 0; i < k && rc == VDB_OK; i++)
			rc = batch_copy_row(&chunk, b, at + i, e);
		if (rc == VDB_OK)
			rc = seg_write(r->store, &chunk, &res->segs[res->nsegs], e);
		if (rc == VDB_OK) {
			res->nsegs++;
			res->rows += k;
		}
	}
	batch_free(&chunk);
	return rc;
}

int
seal_collection(struct root *r, const struct schema *sc, struct logstream *ls,
		uint64_t max_rows, struct seal_result *res, struct vdb_err *e)
{
	struct parts parts = {.sc = sc};
	uint32_t sealed, last = 0, *seqs = NULL;
	size_t nseq = 0;
	char *lockpath;
	int lockfd = -1, rc;

	memset(res, 0, sizeof(*res));
	batch_init(&parts.tmp, sc);
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
		rc = log_scan_fd(fd, path, LOG_KIND_INSERT, sc->id, 0, on_frame, &parts, &scan, e);
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
	for (size_t i = 0; i < parts.n && rc == VDB_OK; i++) {
		int exists;
		/* rows logged for a partition dropped since are dropped with it */
		rc = meta_partition_exists(r->meta, parts.b[i].partition_id, &exists, e);
		if (rc == VDB_OK && exists)
			rc = write_part(r, &parts.b[i], max_rows, res, e);
	}
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
	for (size_t i = 0; i < parts.n; i++)
		batch_free(&parts.b[i]);
	free(parts.b);
	batch_free(&parts.tmp);
	free(seqs);
	file_unlock(lockfd);
	return rc;
}
