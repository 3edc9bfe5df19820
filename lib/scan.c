#include "scan.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "segment.h"

struct scan_ctx {
	const struct schema *sc;
	uint64_t ts; /* the snapshot: rows and tombstones after it are not seen */
	struct idmap *tombs;
	struct part_info *parts; /* partitions that exist */
	size_t nparts;
	struct batch b;
	uint8_t *live;
	size_t live_cap;
	scan_fn fn;
	void *arg;
};

static int
deliver(struct scan_ctx *c, struct vdb_err *e)
{
	if (c->b.n > c->live_cap) {
		uint8_t *nl = realloc(c->live, c->b.n);
		if (nl == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		c->live = nl;
		c->live_cap = c->b.n;
	}
	int part_live = 0;
	for (size_t i = 0; i < c->nparts; i++)
		part_live |= c->parts[i].id == c->b.partition_id;
	for (size_t r = 0; r < c->b.n; r++) {
		uint64_t dts;
		c->live[r] = part_live && c->b.ts[r] <= c->ts &&
		             !(idmap_get(c->tombs, c->b.ids[r], &dts) && dts > c->b.ts[r]);
	}
	return c->fn(c->arg, &c->b, c->live, e);
}

static int
on_insert(void *arg, const unsigned char *p, size_t len, uint64_t off, struct vdb_err *e)
{
	struct scan_ctx *c = arg;
	int rc;

	batch_clear(&c->b);
	if ((rc = batch_decode(&c->b, p, len, e)) != VDB_OK) {
		vdb_err_prefix(e, "frame at offset %llu: ", (unsigned long long)off);
		return rc;
	}
	return deliver(c, e);
}

struct tomb_ctx {
	struct idmap *tombs;
	uint64_t ts;
};

static int
on_delete(void *arg, const unsigned char *p, size_t len, uint64_t off, struct vdb_err *e)
{
	struct tomb_ctx *t = arg;
	const int64_t *ids;
	size_t n;
	uint64_t ts;
	int rc;

	(void)off;
	if ((rc = delete_decode(p, len, &ids, &n, &ts, e)) != VDB_OK)
		return rc;
	if (ts > t->ts)
		return VDB_OK; /* after the snapshot */
	for (size_t i = 0; i < n; i++)
		if (idmap_put(t->tombs, ids[i], ts) < 0)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
	return VDB_OK;
}

/* scan_fds: the frames of the stream files opened by open_stream (open
 * already, so a concurrent seal's unlink cannot take them away) */
static int
scan_fds(const char *dir, int kind, int64_t cid, const int *fds, const uint32_t *seqs, size_t n,
         log_frame_fn fn, void *arg, struct vdb_err *e)
{
	int rc = VDB_OK;

	for (size_t i = 0; i < n && rc == VDB_OK; i++) {
		struct log_scan res;
		char *path = log_file_path(dir, kind, seqs[i]);
		if (path == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		/* a torn tail here belongs to an append in progress or one that
		 * died: it was never acknowledged, so it is simply not read */
		rc = log_scan_fd(fds[i], path, kind, cid, 0, fn, arg, &res, e);
		if (rc == VDB_OK && res.torn && i + 1 < n)
			rc = vdb_err_set(e, VDB_ECORRUPT,
			                 "%s: bad tail at offset %llu in a closed file", path,
			                 (unsigned long long)res.valid_end);
		free(path);
	}
	return rc;
}

/* open_stream: open every file of the stream with seq > after */
static int
open_stream(const char *dir, int kind, uint32_t after, int **fds, uint32_t **seqs, size_t *n,
            struct vdb_err *e)
{
	uint32_t *all;
	size_t nall, k = 0;
	int rc;

	*fds = NULL;
	*seqs = NULL;
	*n = 0;
	if ((rc = log_list(dir, kind, &all, &nall, e)) != VDB_OK)
		return rc;
	*fds = malloc((nall ? nall : 1) * sizeof(int));
	if (*fds == NULL) {
		free(all);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	for (size_t i = 0; i < nall; i++) {
		char *path;
		int fd;
		if (all[i] <= after)
			continue;
		path = log_file_path(dir, kind, all[i]);
		fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		free(path);
		if (fd < 0)
			continue; /* sealed and removed meanwhile: caught by the re-check */
		(*fds)[k] = fd;
		all[k++] = all[i];
	}
	*seqs = all;
	*n = k;
	return VDB_OK;
}

static void
close_stream(int *fds, uint32_t *seqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	free(seqs);
}

int
scan_tombstones(struct root *r, const struct schema *sc, uint64_t ts, struct idmap *tombs,
                struct vdb_err *e)
{
	struct tomb_ctx t = {tombs, ts};
	int *fds;
	uint32_t *seqs;
	size_t n;
	char *dir = path_fmt("%s/log/%lld", r->path, (long long)sc->id);
	int rc;

	if (dir == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	rc = open_stream(dir, LOG_KIND_DELETE, 0, &fds, &seqs, &n, e);
	if (rc == VDB_OK) {
		rc = scan_fds(dir, LOG_KIND_DELETE, sc->id, fds, seqs, n, on_delete, &t, e);
		close_stream(fds, seqs, n);
	}
	free(dir);
	return rc;
}

int
scan_collection(struct root *r, const struct schema *sc, scan_fn fn, void *arg, struct vdb_err *e)
{
	struct scan_ctx c = {.sc = sc, .fn = fn, .arg = arg};
	struct idmap tombs;
	struct seg_info *segs = NULL;
	size_t nsegs = 0, nlog = 0;
	uint32_t sealed, again, *seqs = NULL;
	int *fds = NULL, rc, tries;
	char *dir = path_fmt("%s/log/%lld", r->path, (long long)sc->id);

	idmap_init(&tombs);
	batch_init(&c.b, sc);
	c.tombs = &tombs;
	if (dir == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	/* The snapshot: a timestamp, then a pass through the append and
	 * delete locks.  Writers take their timestamp under those locks, so
	 * once we have had each lock every insert and delete stamped before
	 * ours is in the log; what comes later is newer and not seen. */
	if ((rc = meta_ts_alloc(r->meta, &c.ts, e)) != VDB_OK)
		goto out;
	for (int i = 0; i < 2; i++) {
		char *lock = path_fmt("%s/%s", dir, i ? "delete.lock" : "append.lock");
		int fd;
		if (lock && access(dir, F_OK) == 0 && file_lock(lock, 0, &fd, NULL) == VDB_OK)
			file_unlock(fd);
		free(lock);
	}
	if ((rc = scan_tombstones(r, sc, c.ts, &tombs, e)) != VDB_OK)
		goto out;
	for (tries = 0;; tries++) {
		if ((rc = meta_snapshot(r->meta, sc->id, &segs, &nsegs, &sealed, e)) != VDB_OK)
			goto out;
		if ((rc = open_stream(dir, LOG_KIND_INSERT, sealed, &fds, &seqs, &nlog, e)))
			goto out;
		if ((rc = meta_stream_sealed(r->meta, sc->id, &again, e)) != VDB_OK)
			goto out;
		if (again == sealed)
			break;
		/* a seal committed in between: take the cut again */
		close_stream(fds, seqs, nlog);
		fds = NULL;
		seqs = NULL;
		nlog = 0;
		free(segs);
		segs = NULL;
		if (tries == 100) {
			rc = vdb_err_set(e, VDB_ETEMP, "log keeps being sealed under the scan");
			goto out;
		}
	}
	if ((rc = meta_partition_list(r->meta, sc->id, &c.parts, &c.nparts, e)) != VDB_OK)
		goto out;
	for (size_t i = 0; i < nsegs; i++) {
		struct segment s;
		char *path;
		if ((rc = store_local_path(r->store, segs[i].object, &path, e)) != VDB_OK)
			goto out;
		rc = seg_open(path, &s, e);
		free(path);
		if (rc != VDB_OK)
			goto out;
		batch_clear(&c.b);
		if ((rc = seg_verify(&s, segs[i].object, e)) == VDB_OK)
			rc = seg_load(&s, &c.b, e);
		seg_close(&s);
		if (rc != VDB_OK) {
			vdb_err_prefix(e, "object %s: ", segs[i].object);
			goto out;
		}
		if ((rc = deliver(&c, e)) != VDB_OK)
			goto out;
	}
	rc = scan_fds(dir, LOG_KIND_INSERT, sc->id, fds, seqs, nlog, on_insert, &c, e);
out:
	close_stream(fds, seqs, nlog);
	free(segs);
	free(dir);
	free(c.live);
	free(c.parts);
	batch_free(&c.b);
	idmap_free(&tombs);
	return rc;
}
