/* store.c: unit tests for lib/store.c and lib/store_file.c (objects). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "unit.h"

static char *tmp, *objdir;
static struct store *st;

static const char K1[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char K2[] = "ab00000000000000000000000000000000000000000000000000000000000001";
static const char K3[] = "ab00000000000000000000000000000000000000000000000000000000000002";

static void
setup(void)
{
	struct vdb_err e;

	tmp = unit_tmpdir();
	objdir = unit_path(tmp, "objects");
	cr_assert_eq(store_open_file(objdir, &st, &e), VDB_OK, "%s", e.msg);
}

static void
teardown(void)
{
	store_close(st);
	free(objdir);
	unit_rmtree(tmp);
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, open_creates_dirs)
{
	char *t = unit_path(objdir, "tmp");
	cr_assert(unit_exists(objdir));
	cr_assert(unit_exists(t));
	free(t);
	/* opening again is fine */
	struct store *s2;
	struct vdb_err e;
	cr_assert_eq(store_open_file(objdir, &s2, &e), VDB_OK, "%s", e.msg);
	store_close(s2);
}

Test(store, put_get_size_range)
{
	struct vdb_err e;
	void *buf;
	size_t len;
	uint64_t size;
	char part[8];
	char *path;

	cr_assert_eq(store_put(st, K1, "hello, world", 12, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(store_size(st, K1, &size, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(size, 12u);
	cr_assert_eq(store_get(st, K1, &buf, &len, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(len, 12u);
	cr_assert_eq(memcmp(buf, "hello, world", 12), 0);
	free(buf);

	memset(part, 0, sizeof(part));
	cr_assert_eq(store_get_range(st, K1, 7, 5, part, &e), VDB_OK, "%s", e.msg);
	cr_assert_str_eq(part, "world");
	cr_assert_eq(store_get_range(st, K1, 0, 0, part, &e), VDB_OK);
	/* past the end: a short read is not silently zero-filled */
	cr_assert_neq(store_get_range(st, K1, 8, 5, part, &e), VDB_OK);
	cr_assert_neq(store_get_range(st, K1, 100, 1, part, &e), VDB_OK);

	/* the object sits at DIR/KEY[0..2]/KEY */
	cr_assert_eq(store_local_path(st, K1, &path, &e), VDB_OK);
	char *want = unit_path(objdir,
	                       "01/"
	                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	cr_assert_str_eq(path, want);
	cr_assert_eq(unit_file_size(path), 12);
	free(want);
	free(path);

	/* nothing left behind in the stage directory */
	char *t = unit_path(objdir, "tmp");
	DIR *d = opendir(t);
	struct dirent *de;
	int n = 0;
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	cr_assert_eq(n, 0, "stage files left in %s", t);
	free(t);
}

Test(store, empty_object)
{
	struct vdb_err e;
	void *buf = NULL;
	size_t len = 99;
	uint64_t size = 99;

	cr_assert_eq(store_put(st, K2, "", 0, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(store_size(st, K2, &size, &e), VDB_OK);
	cr_assert_eq(size, 0u);
	cr_assert_eq(store_get(st, K2, &buf, &len, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(len, 0u);
	free(buf);
}

Test(store, missing_objects)
{
	struct vdb_err e;
	void *buf;
	size_t len;
	uint64_t size;
	char b[4];

	cr_assert_eq(store_size(st, K1, &size, &e), VDB_ENOENT);
	cr_assert_eq(store_get(st, K1, &buf, &len, &e), VDB_ENOENT);
	cr_assert_eq(store_get_range(st, K1, 0, 1, b, &e), VDB_ENOENT);
	cr_assert(strstr(e.msg, K1) != NULL, "%s", e.msg);
	/* deleting what is not there is not an error (delete is idempotent) */
	cr_assert_eq(store_delete(st, K1, &e), VDB_OK);
}

static int
collect(void *arg, const char *key)
{
	char(*keys)[65] = arg;
	for (int i = 0; i < 8; i++) {
		if (keys[i][0] == '\0') {
			snprintf(keys[i], 65, "%s", key);
			return 0;
		}
	}
	return 0;
}

static int
stop_at_first(void *arg, const char *key)
{
	(void)key;
	(*(int *)arg)++;
	return 1;
}

static int
has(char (*keys)[65], const char *k)
{
	for (int i = 0; i < 8; i++)
		if (strcmp(keys[i], k) == 0)
			return 1;
	return 0;
}

Test(store, list_and_delete)
{
	struct vdb_err e;
	char keys[8][65];
	uint64_t size;
	int calls = 0;

	cr_assert_eq(store_put(st, K1, "1", 1, &e), VDB_OK);
	cr_assert_eq(store_put(st, K2, "22", 2, &e), VDB_OK);
	cr_assert_eq(store_put(st, K3, "333", 3, &e), VDB_OK);
	/* things in the tree that are not objects are not listed */
	char *junk = unit_path(objdir, "ab/notakey");
	unit_write_file(junk, "x", 1);
	free(junk);
	junk = unit_path(objdir,
	                 "ab/AB00000000000000000000000000000000000000000000000000000000000003");
	unit_write_file(junk, "x", 1);
	free(junk);
	/* a key filed under the wrong fan-out directory */
	junk = unit_path(objdir,
	                 "ab/cd00000000000000000000000000000000000000000000000000000000000003");
	unit_write_file(junk, "x", 1);
	free(junk);

	memset(keys, 0, sizeof(keys));
	cr_assert_eq(store_list(st, collect, keys, &e), VDB_OK, "%s", e.msg);
	cr_assert(has(keys, K1) && has(keys, K2) && has(keys, K3));
	cr_assert_eq(keys[3][0], '\0', "listed a non-object: %s", keys[3]);

	cr_assert_eq(store_list(st, stop_at_first, &calls, &e), VDB_OK);
	cr_assert_eq(calls, 1, "a non-zero return stops the listing");

	cr_assert_eq(store_delete(st, K2, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(store_size(st, K2, &size, &e), VDB_ENOENT);
	cr_assert_eq(store_size(st, K3, &size, &e), VDB_OK);
	cr_assert_eq(size, 3u);
	memset(keys, 0, sizeof(keys));
	cr_assert_eq(store_list(st, collect, keys, &e), VDB_OK);
	cr_assert(has(keys, K1) && !has(keys, K2) && has(keys, K3));
	cr_assert_eq(keys[2][0], '\0');
}

Test(store, stage_commit_abort)
{
	struct store_stage sg;
	struct vdb_err e;
	void *buf;
	size_t len;
	uint64_t size;

	cr_assert_eq(store_stage(st, &sg, &e), VDB_OK, "%s", e.msg);
	cr_assert(sg.fd >= 0);
	cr_assert(unit_exists(sg.path));
	char *staged = strdup(sg.path);
	store_abort(st, &sg);
	cr_assert(!unit_exists(staged), "abort removes the stage");
	free(staged);

	cr_assert_eq(store_stage(st, &sg, &e), VDB_OK);
	cr_assert_eq(write(sg.fd, "abc", 3), 3);
	/* a bad key is refused and the stage is still the caller's to abort */
	cr_assert_eq(store_commit(st, &sg, "nope", &e), VDB_EINPUT);
	cr_assert_eq(store_commit(st, &sg, K3, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(store_get(st, K3, &buf, &len, &e), VDB_OK);
	cr_assert_eq(len, 3u);
	cr_assert_eq(memcmp(buf, "abc", 3), 0);
	free(buf);
	cr_assert_eq(store_size(st, K3, &size, &e), VDB_OK);
}

Test(store, bad_keys)
{
	char k63[64], k65[66], upper[65], gee[65], slash[65];
	const char *bad[] = {"",    "../etc/passwd", "../../../../etc/passwd", k63, k65, upper, gee,
	                     slash, "ab/../../../x", "0123456789abcdef\n"};
	struct vdb_err e;
	void *buf;
	size_t len;
	uint64_t size;
	char b[4], *path;

	memcpy(k63, K1, 63);
	k63[63] = '\0';
	memcpy(k65, K1, 64);
	k65[64] = '0';
	k65[65] = '\0';
	memcpy(upper, K1, 65);
	upper[10] = 'A';
	memcpy(gee, K1, 65);
	gee[63] = 'g';
	memcpy(slash, K1, 65);
	slash[2] = '/';

	cr_assert_eq(store_key_check(K1), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(store_key_check(bad[i]), -1, "key '%s'", bad[i]);
		cr_expect_eq(store_put(st, bad[i], "x", 1, &e), VDB_EINPUT, "put '%s'", bad[i]);
		cr_expect_eq(store_get(st, bad[i], &buf, &len, &e), VDB_EINPUT, "get '%s'", bad[i]);
		cr_expect_eq(store_get_range(st, bad[i], 0, 1, b, &e), VDB_EINPUT);
		cr_expect_eq(store_size(st, bad[i], &size, &e), VDB_EINPUT);
		cr_expect_eq(store_delete(st, bad[i], &e), VDB_EINPUT);
		cr_expect_eq(store_local_path(st, bad[i], &path, &e), VDB_EINPUT);
		cr_expect_eq(e.rc, VDB_EINPUT);
	}
	/* and nothing was written anywhere */
	char *outside = unit_path(tmp, "etc");
	cr_assert(!unit_exists(outside));
	free(outside);
	cr_assert(!unit_exists("/etc/passwd/x"));
}

Test(store, large_object)
{
	struct vdb_err e;
	size_t n = 3 << 20;
	unsigned char *data = malloc(n), *got = malloc(4096);
	void *buf;
	size_t len;

	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 131 + (i >> 11));
	cr_assert_eq(store_put(st, K1, data, n, &e), VDB_OK);
	cr_assert_eq(store_get(st, K1, &buf, &len, &e), VDB_OK);
	cr_assert_eq(len, n);
	cr_assert_eq(memcmp(buf, data, n), 0);
	cr_assert_eq(store_get_range(st, K1, n - 4096, 4096, got, &e), VDB_OK);
	cr_assert_eq(memcmp(got, data + n - 4096, 4096), 0);
	free(buf);
	free(data);
	free(got);
}
