/* verify.c: vdb-admin verify — every registered object's checksums, every
 * log frame, and agreement between meta.db and the object store.  Read
 * only: it reports, it does not repair. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "ann.h"
#include "batch.h"
#include "colcache.h"
#include "file.h"
#include "log.h"
#include "segment.h"

struct verify {
	struct root *r;
	unsigned long problems, notes, objects, indexes, frames, files;
	struct seg_info *segs; /* every registered segment, by object */
	size_t nsegs;
	char (*known)[65]; /* index objects, sorted */
	size_t nknown;
};

static void problem(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
problem(struct verify *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	v->problems++;
}

static void
note(struct verify *v, const char *fmt, ...)
{
	va_list ap;

	fputs("vdb-admin: note: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	v->notes++;
}

static void
verify_segment(struct verify *v, const struct seg_info *si, const struct schema *sc)
{
	struct vdb_err e;
	struct segment s;
	char *path;

	v->objects++;
	if (store_local_path(v->r->store, si->object, &path, &e) != VDB_OK) {
		problem(v, "object %s: %s", si->object, e.msg);
		return;
	}
	if (seg_open(path, &s, &e) != VDB_OK) {
		free(path);
		problem(v, "object %s (segment %" PRId64 " of %s): %s", si->object, si->id,
		        sc->name, e.msg);
		return;
	}
	free(path);
	if (seg_verify(&s, si->object, &e) != VDB_OK)
		problem(v, "object %s (segment %" PRId64 " of %s): %s", si->object, si->id,
		        sc->name, e.msg);
	else if (s.rows != si->rows || s.size != si->bytes)
		problem(v,
		        "object %s (segment %" PRId64 " of %s): %" PRIu64 " rows, %zu bytes; "
		        "meta.db says %" PRIu64 " rows, %" PRIu64 " bytes",
		        si->object, si->id, sc->name, s.rows, s.size, si->rows, si->bytes);
	else if (s.cid != (uint64_t)sc->id || s.dim != sc->dim || s.ncols != sc->nfields + 3 ||
	         s.pid != (uint64_t)si->partition_id)
		problem(v,
		        "object %s (segment %" PRId64 " of %s): header does not match the "
		        "collection",
		        si->object, si->id, sc->name);
	/* searches trust the catalogue's max_ts to skip reading timestamps
	 * (a segment wholly older than a snapshot) */
	else if (s.min_ts != si->min_ts || s.max_ts != si->max_ts)
		problem(v,
		        "object %s (segment %" PRId64 " of %s): timestamps %" PRIu64 "..%" PRIu64
		        "; meta.db says %" PRIu64 "..%" PRIu64,
		        si->object, si->id, sc->name, s.min_ts, s.max_ts, si->min_ts, si->max_ts);
	else if (colcache_check(v->r->path, si->object, &s, sc, &e) != VDB_OK)
		problem(v, "object %s (segment %" PRId64 " of %s): %s", si->object, si->id,
		        sc->name, e.msg);
	seg_close(&s);
}

struct frame_check {
	const struct schema *sc;
	int kind;
	struct batch b;
};

static int
check_frame(void *arg, const unsigned char *p, size_t len, uint64_t off, struct vdb_err *e)
{
	struct frame_check *fc = arg;
	const int64_t *ids;
	size_t n;
	uint64_t ts;
	int rc;

	if (fc->kind == LOG_KIND_DELETE)
		rc = delete_decode(p, len, &ids, &n, &ts, e);
	else {
		batch_clear(&fc->b);
		rc = batch_decode(&fc->b, p, len, e);
	}
	if (rc != VDB_OK)
		vdb_err_prefix(e, "frame at offset %llu: ", (unsigned long long)off);
	return rc;
}

static void
verify_stream(struct verify *v, const struct schema *sc, const char *dir, int kind, uint32_t sealed)
{
	struct frame_check fc = {.sc = sc, .kind = kind};
	struct vdb_err e;
	uint32_t *seqs;
	size_t n;

	if (log_list(dir, kind, &seqs, &n, &e) != VDB_OK) {
		problem(v, "log %s: %s", dir, e.msg);
		return;
	}
	batch_init(&fc.b, sc);
	for (size_t i = 0; i < n; i++) {
		char *path = log_file_path(dir, kind, seqs[i]);
		struct log_scan res;
		int fd;
		if (path == NULL)
			continue;
		v->files++;
		if (kind == LOG_KIND_INSERT && seqs[i] <= sealed) {
			note(v, "%s: already sealed; the next ingest removes it", path);
			free(path);
			continue;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			note(v, "%s: sealed and removed while verifying", path);
		} else if (fd < 0) {
			problem(v, "log %s: cannot open: %s", path, strerror(errno));
		} else if (log_scan_fd(fd, path, kind, sc->id, 0, check_frame, &fc, &res, &e) !=
		           VDB_OK) {
			problem(v, "log %s", e.msg);
		} else {
			v->frames += res.frames;
			if (res.torn && i == n - 1)
				note(v,
				     "%s: torn tail of %" PRIu64 " bytes at offset %" PRIu64
				     " (an append never acknowledged; the next ingest truncates "
				     "it)",
				     path, res.torn_bytes, res.valid_end);
			else if (res.torn)
				problem(v,
				        "log %s: bad tail at offset %" PRIu64 " in a closed file",
				        path, res.valid_end);
		}
		if (fd >= 0)
			close(fd);
		free(path);
	}
	batch_free(&fc.b);
	free(seqs);
}

static int
seg_cmp(const void *a, const void *b)
{
	return strcmp(((const struct seg_info *)a)->object, ((const struct seg_info *)b)->object);
}

static const struct seg_info *
find_segment(const struct verify *v, const char *key)
{
	struct seg_info k;

	snprintf(k.object, sizeof(k.object), "%s", key);
	return v->nsegs ? bsearch(&k, v->segs, v->nsegs, sizeof(k), seg_cmp) : NULL;
}

/* verify_index: its checksums, its structure (every link or list entry a
 * row of its segment), and that it fits the segment meta.db says it is for */
static void
verify_index(struct verify *v, const struct index_row *x, const struct schema *sc)
{
	const struct seg_info *si = find_segment(v, x->seg);
	struct vdb_err e;
	struct ann a;
	char *path, hex[65];

	v->objects++;
	v->indexes++;
	if (si == NULL || si->collection_id != sc->id) {
		note(v,
		     "index %s of %s: its segment %s is no longer registered (vdb-index retires "
		     "it)",
		     x->object, sc->name, x->seg);
		return;
	}
	if (store_local_path(v->r->store, x->object, &path, &e) != VDB_OK) {
		problem(v, "index %s: %s", x->object, e.msg);
		return;
	}
	if (ann_open(path, &a, &e) != VDB_OK) {
		free(path);
		problem(v, "index %s (segment %s of %s): %s", x->object, x->seg, sc->name, e.msg);
		return;
	}
	free(path);
	sha256_hex(a.f.h.seg, hex);
	if (index_verify(&a.f, x->object, &e) != VDB_OK || ann_check(&a, &e) != VDB_OK)
		problem(v, "index %s (segment %s of %s): %s", x->object, x->seg, sc->name, e.msg);
	else if (strcmp(hex, x->seg) != 0 || a.f.h.rows != si->rows || a.f.h.dim != sc->dim ||
	         (int)a.f.h.metric != sc->metric || a.type != x->type)
		problem(v,
		        "index %s (segment %s of %s): header does not match its segment or "
		        "meta.db",
		        x->object, x->seg, sc->name);
	ann_close(&a);
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
on_object(void *arg, const char *key)
{
	struct verify *v = arg;
	struct vdb_err e;
	int trashed = 0;

	if (find_segment(v, key) ||
	    (v->nknown && bsearch(key, v->known, v->nknown, sizeof *v->known, key_cmp)))
		return 0;
	/* waiting out its grace period: vdb-index deletes it */
	if (meta_trash_has(v->r->meta, key, &trashed, &e) == VDB_OK && trashed)
		return 0;
	note(v,
	     "object %s is not registered (left by an interrupted seal, index build or drop; "
	     "vdb-index sweeps it up)",
	     key);
	return 0;
}

static void
verify_dirs(struct verify *v, const struct schema *cols, size_t ncols)
{
	char *tmp = path_join(v->r->path, "objects/tmp"), *logdir = path_join(v->r->path, "log");
	struct dirent *d;
	DIR *dp;

	if (tmp && (dp = opendir(tmp)) != NULL) {
		while ((d = readdir(dp)) != NULL)
			if (d->d_name[0] != '.')
				note(v, "objects/tmp/%s: a staged object never published",
				     d->d_name);
		closedir(dp);
	}
	if (logdir && (dp = opendir(logdir)) != NULL) {
		while ((d = readdir(dp)) != NULL) {
			int known = 0;
			if (d->d_name[0] == '.')
				continue;
			for (size_t i = 0; i < ncols; i++) {
				char id[32];
				snprintf(id, sizeof(id), "%" PRId64, cols[i].id);
				known |= strcmp(id, d->d_name) == 0;
			}
			if (!known)
				note(v, "log/%s belongs to no collection", d->d_name);
		}
		closedir(dp);
	}
	free(tmp);
	free(logdir);
}

int
admin_verify(struct root *r, unsigned long *problems, struct vdb_err *e)
{
	struct verify v = {.r = r};
	struct schema *cols = NULL;
	struct index_row *idx = NULL;
	size_t ncols = 0, nidx = 0;
	char *report;
	int rc;

	if ((rc = meta_integrity(r->meta, &report, e)) != VDB_OK)
		return rc;
	if (report) {
		problem(&v, "meta.db: %s", report);
		free(report);
	}
	if ((rc = meta_collection_list(r->meta, &cols, &ncols, e)) != VDB_OK)
		return rc;
	for (size_t c = 0; c < ncols; c++) {
		struct seg_info *segs;
		size_t n;
		uint32_t sealed;
		char *dir;
		if ((rc = meta_snapshot(r->meta, cols[c].id, &segs, &n, &sealed, e)) != VDB_OK)
			goto out;
		for (size_t i = 0; i < n; i++)
			verify_segment(&v, &segs[i], &cols[c]);
		free(segs);
		dir = path_fmt("%s/log/%" PRId64, r->path, cols[c].id);
		if (dir) {
			verify_stream(&v, &cols[c], dir, LOG_KIND_INSERT, sealed);
			verify_stream(&v, &cols[c], dir, LOG_KIND_DELETE, 0);
		}
		free(dir);
	}
	if ((rc = meta_segments(r->meta, -1, &v.segs, &v.nsegs, e)) != VDB_OK)
		goto out;
	if (v.nsegs)
		qsort(v.segs, v.nsegs, sizeof(*v.segs), seg_cmp);
	if ((rc = meta_indexes(r->meta, -1, &idx, &nidx, e)) != VDB_OK)
		goto out;
	if ((v.known = calloc(nidx ? nidx : 1, sizeof *v.known)) == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nidx; i++) {
		for (size_t c = 0; c < ncols; c++)
			if (cols[c].id == idx[i].collection_id)
				verify_index(&v, &idx[i], &cols[c]);
		memcpy(v.known[v.nknown++], idx[i].object, 65);
	}
	if (v.nknown)
		qsort(v.known, v.nknown, sizeof *v.known, key_cmp);
	if ((rc = store_list(r->store, on_object, &v, e)) != VDB_OK)
		goto out;
	verify_dirs(&v, cols, ncols);
	fprintf(stderr,
	        "vdb-admin: verify: %zu collections, %lu objects (%lu indexes), %lu log files, "
	        "%lu frames: %lu problems, %lu notes\n",
	        ncols, v.objects, v.indexes, v.files, v.frames, v.problems, v.notes);
	*problems = v.problems;
out:
	free(v.segs);
	free(v.known);
	free(idx);
	free(cols);
	return rc;
}
