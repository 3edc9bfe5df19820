/* err.h: the one error vocabulary of lib/.  lib/ never prints or exits; it
 * returns one of these codes and fills a struct vdb_err with the detail the
 * program prints.  Exit statuses follow ../shared/style.md. */
#ifndef VDB_ERR_H
#define VDB_ERR_H

enum vdb_rc {
	VDB_OK = 0,
	VDB_EINPUT, /* bad input or usage: retrying will not help (100) */
	VDB_ECORRUPT, /* a checksum or structure check failed (100) */
	VDB_ENOENT, /* no such collection, partition, object (100) */
	VDB_EEXIST, /* already exists (100) */
	VDB_ETEMP, /* I/O error, lock busy, out of memory: retry may help (111) */
	VDB_EINTERNAL, /* a bug (101) */
};

enum {
	EXIT_NEGATIVE = 1,
	EXIT_PERM = 100,
	EXIT_INTERNAL = 101,
	EXIT_TEMP = 111,
};

struct vdb_err {
	int rc;
	char msg[1024]; /* truncated, never overflowed */
};

int vdb_err_set(struct vdb_err *e, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* vdb_err_errno: like vdb_err_set with ": strerror(errno)" appended; ENOSPC,
 * EIO and friends map to VDB_ETEMP, the rest to the rc given. */
int vdb_err_errno(struct vdb_err *e, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* vdb_err_prefix: prepend context ("FILE:LINE: ") to an existing message. */
void vdb_err_prefix(struct vdb_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vdb_exit_code(int rc);

#endif
