#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int
file_write_all(int fd, const void *buf, size_t len, const char *path, struct vdb_err *e)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vdb_err_errno(e, VDB_ETEMP, "%s: write", path);
		}
		p += n;
		len -= (size_t)n;
	}
	return VDB_OK;
}

int
file_pwrite_all(int fd, const void *buf, size_t len, off_t off, const char *path, struct vdb_err *e)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vdb_err_errno(e, VDB_ETEMP, "%s: write", path);
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return VDB_OK;
}

int
file_pread_all(int fd, void *buf, size_t len, off_t off, const char *path, struct vdb_err *e)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vdb_err_errno(e, VDB_ETEMP, "%s: read", path);
		}
		if (n == 0)
			return vdb_err_set(e, VDB_ECORRUPT, "%s: short read at offset %lld", path,
			                   (long long)off);
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return VDB_OK;
}

int
file_sync(int fd, const char *path, struct vdb_err *e)
{
	if (fsync(fd) != 0)
		return vdb_err_errno(e, VDB_ETEMP, "%s: fsync", path);
	return VDB_OK;
}

int
file_sync_dir(const char *dir, struct vdb_err *e)
{
	int fd, rc;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_errno(e, VDB_ETEMP, "%s: open directory", dir);
	rc = file_sync(fd, dir, e);
	close(fd);
	return rc;
}

int
file_mkdir(const char *path, struct vdb_err *e)
{
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		return vdb_err_errno(e, VDB_ETEMP, "%s: mkdir", path);
	return VDB_OK;
}

int
file_lock(const char *path, int nonblock, int *fdout, struct vdb_err *e)
{
	return file_flock(path, LOCK_EX | (nonblock ? LOCK_NB : 0), fdout, NULL, e);
}

int
file_flock(const char *path, int op, int *fdout, int *busy, struct vdb_err *e)
{
	int fd;

	if (busy)
		*busy = 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return vdb_err_errno(e, VDB_ETEMP, "%s: open lock", path);
	while (flock(fd, op) != 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			close(fd);
			if (busy)
				*busy = 1;
			return vdb_err_set(e, VDB_ETEMP, "%s: locked by another process", path);
		}
		vdb_err_errno(e, VDB_ETEMP, "%s: lock", path);
		close(fd);
		return VDB_ETEMP;
	}
	*fdout = fd;
	return VDB_OK;
}

void
file_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* closing drops the flock */
}

char *
path_join(const char *a, const char *b)
{
	return path_fmt("%s/%s", a, b);
}

char *
path_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

int
file_map(const char *path, size_t min, const char *what, const void **map, size_t *size,
         struct vdb_err *e)
{
	struct stat st;
	void *m;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vdb_err_errno(e, errno == ENOENT ? VDB_ENOENT : VDB_ETEMP, "%s", path);
	if (fstat(fd, &st) != 0) {
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: stat", path);
		close(fd);
		return rc;
	}
	if ((uint64_t)st.st_size < min) {
		close(fd);
		return vdb_err_set(e, VDB_ECORRUPT, "%s: too short to be %s", path, what);
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return vdb_err_errno(e, VDB_ETEMP, "%s: mmap", path);
	*map = m;
	*size = (size_t)st.st_size;
	return VDB_OK;
}
