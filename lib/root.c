#include "root.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

int
root_path(const char *opt, const char **path, struct vdb_err *e)
{
	const char *p = opt ? opt : getenv("VDB_ROOT");

	if (p == NULL || *p == '\0')
		return vdb_err_set(e, VDB_EINPUT, "no root: give -d ROOT or set VDB_ROOT");
	*path = p;
	return VDB_OK;
}

static int
dir_empty(const char *path, int *empty, struct vdb_err *e)
{
	DIR *dp = opendir(path);
	struct dirent *d;

	if (dp == NULL)
		return vdb_err_errno(e, errno == ENOTDIR ? VDB_EINPUT : VDB_ETEMP, "%s", path);
	*empty = 1;
	while ((d = readdir(dp)) != NULL)
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			*empty = 0;
	closedir(dp);
	return VDB_OK;
}

int
root_init(const char *path, int *existed, struct vdb_err *e)
{
	static const char *subdirs[] = {"log", "objects", "objects/tmp", "cache"};
	struct meta *m = NULL;
	struct stat st;
	char *p = NULL;
	int empty = 1, rc;

	*existed = 0;
	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return vdb_err_set(e, VDB_EINPUT, "%s: exists and is not a directory",
			                   path);
		if ((rc = dir_empty(path, &empty, e)) != VDB_OK)
			return rc;
		if (!empty) {
			p = path_join(path, "meta.db");
			if (p == NULL)
				return vdb_err_set(e, VDB_ETEMP, "out of memory");
			if (access(p, F_OK) != 0) {
				free(p);
				return vdb_err_set(e, VDB_EINPUT,
				                   "%s: directory is not empty and not a vdb root",
				                   path);
			}
			*existed = 1;
		}
	} else if (errno != ENOENT) {
		return vdb_err_errno(e, VDB_ETEMP, "%s", path);
	} else if (mkdir(path, 0777) != 0) {
		return vdb_err_errno(e, VDB_ETEMP, "%s: mkdir", path);
	}
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		free(p);
		p = path_join(path, subdirs[i]);
		if (p == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		if ((rc = file_mkdir(p, e)) != VDB_OK)
			goto out;
	}
	free(p);
	p = path_join(path, "meta.db");
	if (p == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	/* an existing meta.db must already be ours: meta_open refuses others */
	if ((rc = meta_open(p, 1, &m, e)) != VDB_OK)
		goto out;
	meta_close(m);
	rc = file_sync_dir(path, e);
out:
	free(p);
	return rc;
}

int
root_open(const char *path, struct root **out, struct vdb_err *e)
{
	struct root *r = calloc(1, sizeof(*r));
	char *p = NULL;
	int rc;

	if (r == NULL || (r->path = strdup(path)) == NULL) {
		free(r);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	p = path_join(path, "meta.db");
	if (p == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto fail;
	}
	if (access(p, F_OK) != 0) {
		rc = vdb_err_set(e, VDB_EINPUT, "%s: not a vdb root (run vdb-admin init)", path);
		goto fail;
	}
	if ((rc = meta_open(p, 0, &r->meta, e)) != VDB_OK)
		goto fail;
	free(p);
	p = path_join(path, "objects");
	if (p == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto fail;
	}
	if ((rc = store_open_file(p, &r->store, e)) != VDB_OK)
		goto fail;
	free(p);
	*out = r;
	return VDB_OK;
fail:
	free(p);
	root_close(r);
	return rc;
}

int
root_publish_lock(struct root *r, int exclusive, int *fd, int *busy, struct vdb_err *e)
{
	char *p = path_join(r->path, "publish.lock");
	int rc;

	*fd = -1;
	if (p == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	rc = file_flock(p, exclusive ? LOCK_EX | LOCK_NB : LOCK_SH, fd, busy, e);
	free(p);
	return rc;
}

void
root_publish_unlock(int fd)
{
	file_unlock(fd);
}

void
root_close(struct root *r)
{
	if (r == NULL)
		return;
	meta_close(r->meta);
	store_close(r->store);
	free(r->path);
	free(r);
}
