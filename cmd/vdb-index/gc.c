/* gc.c: objects no row references any more — old segments after a
 * compaction, superseded indexes — are deleted once they have waited out
 * the grace period in the trash: a query that read the catalogue before
 * the swap may still be about to open them.  Objects no row ever named,
 * left by a writer killed between publishing and committing, join them;
 * stages and cache files nobody will use are removed.  All of it under
 * ROOT/publish.lock held exclusively, so no writer is between a publish
 * and its commit meanwhile (root_publish_lock). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "store.h"
#include "vindex.h"

struct sweep {
	struct vindex *x;
	char (*named)[65]; /* sorted */
	size_t nnamed;
	int64_t now;
	int rc;
	struct vdb_err *e;
};

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
is_named(const struct sweep *sw, const char *key)
{
	return sw->nnamed && bsearch(key, sw->named, sw->nnamed, sizeof *sw->named, key_cmp);
}

static int
on_object(void *arg, const char *key)
{
	struct sweep *sw = arg;

	if (is_named(sw, key))
		return 0;
	if ((sw->rc = meta_trash_put(sw->x->r->meta, key, sw->now, sw->e)) != VDB_OK)
		return 1;
	fprintf(stderr, "vdb-index: object %s was never registered: to the trash\n", key);
	return 0;
}

/* prune: in ROOT/cache/SUB, the files of objects no row names (a
 * dropped collection's, or one a slow query wrote again after gc) and,
 * with tmp, the temporary files of killed writers (".KEY.XXXXXX") not
 * touched since before */
static void
prune(const struct sweep *sw, const char *sub, int tmp, int64_t before)
{
	char *dir = path_fmt("%s/cache/%s", sw->x->r->path, sub);
	struct dirent *d;
	DIR *dp = dir ? opendir(dir) : NULL;

	while (dp && (d = readdir(dp)) != NULL) {
		struct stat st;
		if (store_key_check(d->d_name) == 0) {
			if (!is_named(sw, d->d_name))
				unlinkat(dirfd(dp), d->d_name, 0);
		} else if (tmp && d->d_name[0] == '.' && strlen(d->d_name) > 2 &&
		           fstatat(dirfd(dp), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		           S_ISREG(st.st_mode) && (int64_t)st.st_mtime < before) {
			unlinkat(dirfd(dp), d->d_name, 0);
		}
	}
	if (dp)
		closedir(dp);
	free(dir);
}

/* sweep: the leftovers of killed writers, so that they cost no disk for
 * longer than the grace period */
static int
sweep(struct vindex *x, int64_t now, struct vdb_err *e)
{
	struct sweep sw = {.x = x, .now = now, .e = e};
	size_t n;
	int rc;

	if ((rc = meta_objects_named(x->r->meta, &sw.named, &sw.nnamed, e)) != VDB_OK)
		return rc;
	rc = store_list(x->r->store, on_object, &sw, e);
	if (rc == VDB_OK)
		rc = sw.rc;
	if (rc == VDB_OK) {
		prune(&sw, "cols", 1, now - x->grace);
		prune(&sw, "verified", 0, 0);
	}
	free(sw.named);
	if (rc == VDB_OK && (rc = store_sweep(x->r->store, now - x->grace, &n, e)) == VDB_OK &&
	    n > 0)
		fprintf(stderr, "vdb-index: %zu abandoned stages removed\n", n);
	return rc;
}

/* forget_derived: what queries derived from an object goes with it */
static void
forget_derived(const char *root, const char *key)
{
	char *cols = path_fmt("%s/cache/cols/%s", root, key);
	char *mark = path_fmt("%s/cache/verified/%s", root, key);

	if (cols)
		unlink(cols);
	if (mark)
		unlink(mark);
	free(cols);
	free(mark);
}

static int
empty_trash(struct vindex *x, int64_t now, struct vdb_err *e)
{
	char(*objs)[65] = NULL;
	size_t n = 0;
	int rc;

	if ((rc = meta_trash_due(x->r->meta, now - x->grace, &objs, &n, e)) != VDB_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		/* first what derives from it: a kill after the object went
		 * would leave it with nothing to name it */
		forget_derived(x->r->path, objs[i]);
		rc = store_delete(x->r->store, objs[i], e);
		/* gone already: an earlier run died between the two steps */
		if (rc == VDB_ENOENT)
			rc = VDB_OK;
		if (rc != VDB_OK || (rc = meta_trash_forget(x->r->meta, objs[i], e)) != VDB_OK)
			break;
		x->deleted++;
	}
	free(objs);
	return rc;
}

/* GC_WAIT_MS: how long gc waits for writers between publish and commit
 * (seals and bulk finishes are short, but come one after another) */
#define GC_WAIT_MS 10000

int
vindex_gc(struct vindex *x, struct vdb_err *e)
{
	int64_t now = (int64_t)time(NULL);
	int fd, busy = 1, rc = VDB_OK, rc2;

	/* polled, not blocking: a blocked request could wait forever behind
	 * writers that take turns holding it shared, and a run must end */
	for (int waited = 0; busy && waited <= GC_WAIT_MS; waited += 50) {
		if ((rc = root_publish_lock(x->r, 1, &fd, &busy, e)) != VDB_OK && !busy)
			return rc;
		if (busy)
			usleep(50 * 1000);
	}
	if (busy) {
		fprintf(stderr,
		        "vdb-index: %s/publish.lock: writers held it for %d s: the trash "
		        "waits for the next run\n",
		        x->r->path, GC_WAIT_MS / 1000);
		return VDB_OK;
	}
	/* the sweep's failure (the catalogue busy, say) does not keep the
	 * trash from being emptied */
	rc = sweep(x, now, e);
	if (rc == VDB_OK || rc == VDB_ETEMP) {
		struct vdb_err e2;
		rc2 = empty_trash(x, now, rc == VDB_OK ? e : &e2);
		if (rc == VDB_OK)
			rc = rc2;
	}
	root_publish_unlock(fd);
	return rc;
}
