/* file.h: durable file primitives.  Everything that acknowledges a write
 * goes through here so that "fsync before ack" is written once. */
#ifndef VDB_FILE_H
#define VDB_FILE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

int file_write_all(int fd, const void *buf, size_t len, const char *path, struct vdb_err *e);
int file_pwrite_all(int fd, const void *buf, size_t len, off_t off, const char *path,
                    struct vdb_err *e);
/* file_pread_all: exactly len bytes or VDB_ECORRUPT ("short read") */
int file_pread_all(int fd, void *buf, size_t len, off_t off, const char *path, struct vdb_err *e);
int file_sync(int fd, const char *path, struct vdb_err *e);
/* file_sync_dir: fsync the directory holding path (or path itself if a dir) */
int file_sync_dir(const char *dir, struct vdb_err *e);
int file_mkdir(const char *path, struct vdb_err *e); /* EEXIST is fine */
/* file_lock: flock(2) on path (created if missing); blocking unless
 * nonblock, then VDB_ETEMP "locked by another process". */
int file_lock(const char *path, int nonblock, int *fdout, struct vdb_err *e);
/* file_flock: the same with flock's op (LOCK_SH or LOCK_EX, | LOCK_NB);
 * *busy (if not NULL) tells a held lock from other failures */
int file_flock(const char *path, int op, int *fdout, int *busy, struct vdb_err *e);
void file_unlock(int fd);
/* file_map: path mapped read-only whole (*map, *size); one shorter than
 * min bytes is VDB_ECORRUPT "PATH: too short to be WHAT" */
int file_map(const char *path, size_t min, const char *what, const void **map, size_t *size,
             struct vdb_err *e);
/* path_join: malloc'd "a/b"; NULL only when out of memory */
char *path_join(const char *a, const char *b);
char *path_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void
put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}
static inline void
put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline void
put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t
get_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t
get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

#endif
