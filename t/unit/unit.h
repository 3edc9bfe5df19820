/* unit.h: small helpers shared by the Criterion unit tests in t/unit/.
 * Header-only (the Makefile builds one binary per t/unit/X.c). */
#ifndef VDB_UNIT_H
#define VDB_UNIT_H
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* unit_xorshift: the next 32 bits of the xorshift64 generator *state
 * (test data the same on every run, without libc's rand state) */
static inline uint32_t
unit_xorshift(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return (uint32_t)(*state >> 32);
}

/* unit_gauss: roughly N(0, 1) from *state, the sum of 12 uniforms */
static inline float
unit_gauss(uint64_t *state)
{
	float s = 0;

	for (int i = 0; i < 12; i++)
		s += (float)unit_xorshift(state) / 4294967296.0f;
	return s - 6;
}

/* unit_tmpdir: a fresh directory under $TMPDIR (or /tmp); malloc'd */
static inline char *
unit_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&p, "%s/vdb-unit-XXXXXX", base) < 0)
		cr_assert_fail("out of memory");
	if (mkdtemp(p) == NULL)
		cr_assert_fail("mkdtemp %s: %s", p, strerror(errno));
	return p;
}

static inline int
unit_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* unit_rmtree: rm -rf dir, then free it */
static inline void
unit_rmtree(char *dir)
{
	if (dir == NULL)
		return;
	nftw(dir, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* unit_path: malloc'd "dir/name" */
static inline char *
unit_path(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		cr_assert_fail("out of memory");
	return p;
}

/* unit_file_size: st_size of path, -1 if it does not exist */
static inline long long
unit_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static inline int
unit_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* unit_write_file: path := buf[0..len) */
static inline void
unit_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len, "write %s", path);
	close(fd);
}

/* unit_read_file: the whole of path, malloc'd (len bytes, plus a NUL) */
static inline unsigned char *
unit_read_file(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *p;
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert(fstat(fd, &st) == 0);
	p = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(p);
	cr_assert_eq(pread(fd, p, (size_t)st.st_size, 0), (ssize_t)st.st_size);
	p[st.st_size] = 0;
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

/* unit_fd: a readable, seekable fd holding buf[0..len), positioned at 0 */
static inline int
unit_fd(const void *buf, size_t len)
{
	FILE *f = tmpfile();
	int fd;

	cr_assert_not_null(f, "tmpfile: %s", strerror(errno));
	fd = dup(fileno(f));
	fclose(f);
	cr_assert(fd >= 0);
	if (len)
		cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

#endif
