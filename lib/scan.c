#include "scan.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "segment.h"

void
snapshot_live(const struct snapshot *s, const struct batch *b, uint8_t *live)
{
	int part_live = 0;

	for (size_t i = 0; i < s->nparts; i++)
		part_live |= s->parts[i].id == b->partition_id;
	if (!part_live) {
		memset(live, 0, b->n);
		return;
	}
	for (size_t r = 0; r < b->n; r++) {
		uint64_t dts;
		live[r] = b->ts[r] <= s->ts &&
		          !(s->tombs.n && idmap_get(&s->tombs, b->ids[r], &dts) && dts > b->ts[r]);
	}
}

int
snapshot_all_live(const struct snapshot *s, const struct seg_info *si)
{
	int part_live = 0;

	for (size_t i = 0; i < s->nparts; i++)
		part_live |= s->parts[i].id == si->partition_id;
	return part_live && si->max_ts <= s->ts && s->tombs.n == 0;
}

struct scan_ctx {
	const struct snapshot *snap;
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
	snapshot_live(c->snap, &c->b, c->live);
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

void
snapshot_free(struct snapshot *s)
{
	close_stream(s->fds, s->seqs, s->nlog);
	free(s->segs);
	free(s->parts);
	free(s->dir);
	idmap_free(&s->tombs);
	memset(s, 0, sizeof *s);
}

int
snapshot_take(struct root *r, const struct schema *sc, uint64_t ts, struct snapshot *s,
              struct vdb_err *e)
{
	uint32_t sealed, again;
	int rc;

	memset(s, 0, sizeof *s);
	idmap_init(&s->tombs);
	s->dir = path_fmt("%s/log/%lld", r->path, (long long)sc->id);
	if (s->dir == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	/* The cut: the last timestamp handed out, then a pass through the
	 * append and delete locks.  Writers take their timestamp under those
	 * locks, so once we have had each lock every insert and delete
	 * stamped up to ours is in the log; later ones are newer and not
	 * seen.  Every acknowledged write is stamped <= that timestamp, so
	 * the read is strong without writing (and fsyncing) meta.db. */
	if ((rc = meta_ts_last(r->meta, &s->ts, e)) != VDB_OK)
		goto out;
	if (ts > s->ts) {
		rc = vdb_err_set(e, VDB_EINPUT, "timestamp %llu is in the future (now %llu)",
		                 (unsigned long long)ts, (unsigned long long)s->ts);
		goto out;
	}
	if (ts)
		s->ts = ts;
	for (int i = 0; i < 2; i++) {
		char *lock = path_fmt("%s/%s", s->dir, i ? "delete.lock" : "append.lock");
		int fd;
		if (lock && access(s->dir, F_OK) == 0 && file_lock(lock, 0, &fd, NULL) == VDB_OK)
			file_unlock(fd);
		free(lock);
	}
	if ((rc = scan_tombstones(r, sc, s->ts, &s->tombs, e)) != VDB_OK)
		goto out;
	for (int tries = 0;; tries++) {
		rc = meta_snapshot(r->meta, sc->id, &s->segs, &s->nsegs, &sealed, e);
		if (rc != VDB_OK)
			goto out;
		rc = open_stream(s->dir, LOG_KIND_INSERT, sealed, &s->fds, &s->seqs, &s->nlog, e);
		if (rc != VDB_OK)
			goto out;
		if ((rc = meta_stream_sealed(r->meta, sc->id, &again, e)) != VDB_OK)
			goto out;
		if (again == sealed)
			break;
		/* a seal committed in between: take the cut again */
		close_stream(s->fds, s->seqs, s->nlog);
		s->fds = NULL;
		s->seqs = NULL;
		s->nlog = 0;
		free(s->segs);
		s->segs = NULL;
		if (tries == 100) {
			rc = vdb_err_set(e, VDB_ETEMP, "log keeps being sealed under the scan");
			goto out;
		}
	}
	rc = meta_partition_list(r->meta, sc->id, &s->parts, &s->nparts, e);
out:
	if (rc != VDB_OK)
		snapshot_free(s);
	return rc;
}

int
snapshot_log(struct snapshot *s, int64_t cid, log_frame_fn fn, void *arg, struct vdb_err *e)
{
	return scan_fds(s->dir, LOG_KIND_INSERT, cid, s->fds, s->seqs, s->nlog, fn, arg, e);
}

int
scan_collection(struct root *r, const struct schema *sc, scan_fn fn, void *arg, struct vdb_err *e)
{
	struct snapshot snap;
	struct scan_ctx c = {.snap = &snap, .fn = fn, .arg = arg};
	int rc;

	if ((rc = snapshot_take(r, sc, 0, &snap, e)) != VDB_OK)
		return rc;
	batch_init(&c.b, sc);
	for (size_t i = 0; i < snap.nsegs; i++) {
		struct segment s;
		char *path;
		if ((rc = store_local_path(r->store, snap.segs[i].object, &path, e)) != VDB_OK)
			goto out;
		rc = seg_open(path, &s, e);
		free(path);
		if (rc != VDB_OK)
			goto out;
		batch_clear(&c.b);
		if ((rc = seg_verify(&s, snap.segs[i].object, e)) == VDB_OK)
			rc = seg_load(&s, &c.b, e);
		seg_close(&s);
		if (rc != VDB_OK) {
			vdb_err_prefix(e, "object %s: ", snap.segs[i].object);
			goto out;
		}
		if ((rc = deliver(&c, e)) != VDB_OK)
			goto out;
	}
	rc = snapshot_log(&snap, sc->id, on_insert, &c, e);
out:
	snapshot_free(&snap);
	free(c.live);
	batch_free(&c.b);
	return rc;
}
