/* store_file.c: the local-directory object store.  Object KEY lives at
 * DIR/KEY[0..2]/KEY, as git fans out its objects; stages are written in
 * DIR/tmp/ on the same file system so that publishing is one rename. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "store.h"

struct store_file {
	struct store base;
	char *dir;
};

static char *
obj_path(struct store_file *s, const char *key)
{
	return path_fmt("%s/%.2s/%s", s->dir, key, key);
}

static int
f_stage(struct store *bs, struct store_stage *st, struct vdb_err *e)
{
	struct store_file *s = (struct store_file *)bs;

	st->path = path_fmt("%s/tmp/stage-XXXXXX", s->dir);
	if (st->path == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	st->fd = mkostemp(st->path, O_CLOEXEC);
	if (st->fd < 0) {
		int rc = vdb_err_errno(e, VDB_ETEMP, "%s: create", st->path);
		free(st->path);
		st->path = NULL;
		return rc;
	}
	/* held until the stage is published or dropped: f_sweep leaves a
	 * locked stage alone however long its writer waits for input.  On a
	 * file system without flock f_sweep cannot take the lock either, and
	 * so removes nothing. */
	(void)flock(st->fd, LOCK_EX);
	return VDB_OK;
}

static void
f_abort(struct store *bs, struct store_stage *st)
{
	(void)bs;
	if (st->fd >= 0)
		close(st->fd);
	if (st->path)
		unlink(st->path);
	free(st->path);
	st->fd = -1;
	st->path = NULL;
}

static int
f_commit(struct store *bs, struct store_stage *st, const char *key, struct vdb_err *e)
{
	struct store_file *s = (struct store_file *)bs;
	char *fan = NULL, *path = NULL;
	int rc;

	/* immutable: read-only, readable by all, as git's objects */
	if (fchmod(st->fd, 0444) != 0) {
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: chmod", st->path);
		goto out;
	}
	if ((rc = file_sync(st->fd, st->path, e)) != VDB_OK)
		goto out;
	fan = path_fmt("%s/%.2s", s->dir, key);
	path = obj_path(s, key);
	if (fan == NULL || path == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto out;
	}
	if ((rc = file_mkdir(fan, e)) != VDB_OK)
		goto out;
	if (rename(st->path, path) != 0) {
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: rename", path);
		goto out;
	}
	free(st->path);
	st->path = NULL;
	/* the new name and, for a new fan-out directory, its entry */
	if ((rc = file_sync_dir(fan, e)) == VDB_OK)
		rc = file_sync_dir(s->dir, e);
out:
	free(fan);
	free(path);
	f_abort(bs, st);
	return rc;
}

static int
f_open_obj(struct store_file *s, const char *key, int *fd, struct vdb_err *e)
{
	char *path = obj_path(s, key);

	if (path == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (*fd < 0)
		return vdb_err_errno(e, errno == ENOENT ? VDB_ENOENT : VDB_ETEMP, "object %s", key);
	return VDB_OK;
}

static int
f_get_range(struct store *bs, const char *key, uint64_t off, size_t len, void *buf,
            struct vdb_err *e)
{
	int fd, rc;

	if ((rc = f_open_obj((struct store_file *)bs, key, &fd, e)) != VDB_OK)
		return rc;
	rc = file_pread_all(fd, buf, len, (off_t)off, key, e);
	close(fd);
	return rc;
}

static int
f_size(struct store *bs, const char *key, uint64_t *size, struct vdb_err *e)
{
	struct stat st;
	int fd, rc;

	if ((rc = f_open_obj((struct store_file *)bs, key, &fd, e)) != VDB_OK)
		return rc;
	if (fstat(fd, &st) != 0)
		rc = vdb_err_errno(e, VDB_ETEMP, "object %s: stat", key);
	else
		*size = (uint64_t)st.st_size;
	close(fd);
	return rc;
}

static int
f_list(struct store *bs, int (*fn)(void *arg, const char *key), void *arg, struct vdb_err *e)
{
	struct store_file *s = (struct store_file *)bs;
	DIR *top = opendir(s->dir);
	struct dirent *d;
	int rc = VDB_OK;

	if (top == NULL)
		return vdb_err_errno(e, VDB_ETEMP, "%s: opendir", s->dir);
	while (rc == VDB_OK && (d = readdir(top)) != NULL) {
		char *sub;
		DIR *dp;
		struct dirent *o;
		if (strlen(d->d_name) != 2 || d->d_name[0] == '.')
			continue;
		sub = path_join(s->dir, d->d_name);
		dp = sub ? opendir(sub) : NULL;
		free(sub);
		if (dp == NULL)
			continue;
		while ((o = readdir(dp)) != NULL) {
			if (store_key_check(o->d_name) != 0 || strncmp(o->d_name, d->d_name, 2))
				continue;
			if (fn(arg, o->d_name) != 0) {
				rc = VDB_EINPUT; /* stopped by the caller */
				break;
			}
		}
		closedir(dp);
	}
	closedir(top);
	return rc == VDB_EINPUT ? VDB_OK : rc;
}

static int
f_del(struct store *bs, const char *key, struct vdb_err *e)
{
	char *path = obj_path((struct store_file *)bs, key);

	if (path == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	if (unlink(path) != 0 && errno != ENOENT) {
		int rc = vdb_err_errno(e, VDB_ETEMP, "%s: unlink", path);
		free(path);
		return rc;
	}
	free(path);
	return VDB_OK;
}

/* a stage nobody holds (f_stage's lock) and nobody wrote to since
 * `before` has lost its writer; one created after `before` is left alone
 * even in the moment before its writer takes the lock.  Best effort: a
 * stage that cannot be removed stays (verify notes it). */
static int
f_sweep(struct store *bs, int64_t before, size_t *n, struct vdb_err *e)
{
	struct store_file *s = (struct store_file *)bs;
	char *tmp = path_join(s->dir, "tmp");
	struct dirent *d;
	DIR *dp;
	int rc;

	if (tmp == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	if ((dp = opendir(tmp)) == NULL) {
		rc = errno == ENOENT ? VDB_OK : vdb_err_errno(e, VDB_ETEMP, "%s: opendir", tmp);
		free(tmp);
		return rc;
	}
	while ((d = readdir(dp)) != NULL) {
		struct stat st;
		int fd;
		if (strncmp(d->d_name, "stage-", 6) != 0)
			continue;
		fd = openat(dirfd(dp), d->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue; /* published or dropped meanwhile, or not a file of ours */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
		    S_ISREG(st.st_mode) && (int64_t)st.st_mtime < before) {
			if (unlinkat(dirfd(dp), d->d_name, 0) == 0)
				(*n)++;
		}
		close(fd);
	}
	closedir(dp);
	free(tmp);
	return VDB_OK;
}

static int
f_local_path(struct store *bs, const char *key, char **path, struct vdb_err *e)
{
	*path = obj_path((struct store_file *)bs, key);
	return *path ? VDB_OK : vdb_err_set(e, VDB_ETEMP, "out of memory");
}

static void
f_close(struct store *bs)
{
	struct store_file *s = (struct store_file *)bs;
	free(s->dir);
	free(s);
}

static const struct store_ops file_ops = {
        .stage = f_stage,
        .commit = f_commit,
        .abort = f_abort,
        .get_range = f_get_range,
        .size = f_size,
        .list = f_list,
        .del = f_del,
        .sweep = f_sweep,
        .local_path = f_local_path,
        .close = f_close,
};

int
store_open_file(const char *dir, struct store **out, struct vdb_err *e)
{
	struct store_file *s = calloc(1, sizeof(*s));
	char *tmp;
	int rc;

	if (s == NULL || (s->dir = strdup(dir)) == NULL) {
		free(s);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	s->base.ops = &file_ops;
	tmp = path_join(dir, "tmp");
	rc = tmp ? file_mkdir(dir, e) : vdb_err_set(e, VDB_ETEMP, "out of memory");
	if (rc == VDB_OK)
		rc = file_mkdir(tmp, e);
	free(tmp);
	if (rc != VDB_OK) {
		f_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return VDB_OK;
}
