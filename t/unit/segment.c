/* segment.c: unit tests for lib/segment.c (segment objects, formats/segment.md). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "file.h"
#include "segment.h"
#include "store.h"
#include "unit.h"

#define DIM 4
#define NROWS 3

static char *tmp, *objdir;
static struct store *st;
static struct schema sc;
static struct batch src;

static const char *const STR[NROWS] = {"", "abc", "12345678"};

static void
mkschema(struct schema *s)
{
	memset(s, 0, sizeof(*s));
	s->id = 9;
	snprintf(s->name, sizeof(s->name), "seg");
	s->dim = DIM;
	s->metric = METRIC_IP;
	s->nfields = 2;
	snprintf(s->fields[0].name, sizeof(s->fields[0].name), "n");
	s->fields[0].type = FT_INT64;
	snprintf(s->fields[1].name, sizeof(s->fields[1].name), "s");
	s->fields[1].type = FT_STRING;
	s->fields[1].max_len = 8;
}

static void
setup(void)
{
	struct vdb_err e;

	tmp = unit_tmpdir();
	objdir = unit_path(tmp, "objects");
	cr_assert_eq(store_open_file(objdir, &st, &e), VDB_OK, "%s", e.msg);
	mkschema(&sc);
	batch_init(&src, &sc);
	cr_assert_eq(batch_reserve(&src, NROWS, &e), VDB_OK);
	for (size_t r = 0; r < NROWS; r++) {
		src.ids[r] = (int64_t)r * 10 - 7;
		src.ts[r] = 5000 + 3 * (NROWS - r);
		for (int k = 0; k < DIM; k++)
			src.vec[r * DIM + k] = (float)r - 0.25f * (float)k;
		src.cols[0].i64[r] = -(int64_t)r * 1000;
		cr_assert_eq(batch_put_string(&src, 1, r, STR[r], strlen(STR[r]), &e), VDB_OK);
	}
	src.n = NROWS;
	src.partition_id = 5;
}

static void
teardown(void)
{
	batch_free(&src);
	store_close(st);
	free(objdir);
	unit_rmtree(tmp);
}

TestSuite(segment, .init = setup, .fini = teardown);

static char *
write_seg(const struct batch *b, struct seg_info *info)
{
	struct vdb_err e;
	char *path;

	cr_assert_eq(seg_write(st, b, info, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(store_key_check(info->object), 0, "key '%s'", info->object);
	cr_assert_eq(store_local_path(st, info->object, &path, &e), VDB_OK);
	return path;
}

static void
assert_same_rows(const struct batch *a, size_t abase, const struct batch *b, size_t n)
{
	for (size_t r = 0; r < n; r++) {
		cr_assert_eq(a->ids[abase + r], b->ids[r], "id of row %zu", r);
		cr_assert_eq(a->ts[abase + r], b->ts[r], "ts of row %zu", r);
		cr_assert_eq(memcmp(a->vec + (abase + r) * DIM, b->vec + r * DIM, DIM * 4), 0,
		             "vector of row %zu", r);
		cr_assert_eq(a->cols[0].i64[abase + r], b->cols[0].i64[r]);
		size_t la = a->cols[1].soff[abase + r + 1] - a->cols[1].soff[abase + r];
		size_t lb = b->cols[1].soff[r + 1] - b->cols[1].soff[r];
		cr_assert_eq(la, lb, "string length of row %zu", r);
		cr_assert_eq(memcmp(a->cols[1].sbuf + a->cols[1].soff[abase + r],
		                    b->cols[1].sbuf + b->cols[1].soff[r], la),
		             0);
	}
}

Test(segment, write_open_verify_load)
{
	struct seg_info info;
	struct segment s;
	struct batch b;
	struct vdb_err e;
	uint64_t size;
	char *path = write_seg(&src, &info);

	cr_assert_eq(info.rows, (uint64_t)NROWS);
	cr_assert_eq(info.collection_id, 9);
	cr_assert_eq(info.partition_id, 5);
	cr_assert_eq(info.min_id, -7);
	cr_assert_eq(info.max_id, 13);
	cr_assert_eq(info.min_ts, 5003u);
	cr_assert_eq(info.max_ts, 5009u);
	cr_assert_eq(store_size(st, info.object, &size, &e), VDB_OK);
	cr_assert_eq(info.bytes, size);

	cr_assert_eq(seg_open(path, &s, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(seg_verify(&s, info.object, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(seg_verify(&s, NULL, &e), VDB_OK, "%s", e.msg);
	char other[65];
	memcpy(other, info.object, 65);
	other[0] = other[0] == '0' ? '1' : '0';
	cr_assert_eq(seg_verify(&s, other, &e), VDB_ECORRUPT,
	             "a segment verified under another key");

	cr_assert_eq(s.cid, 9u);
	cr_assert_eq(s.pid, 5u);
	cr_assert_eq(s.rows, (uint64_t)NROWS);
	cr_assert_eq(s.dim, (uint32_t)DIM);
	cr_assert_eq(s.metric, METRIC_IP);
	cr_assert_eq(s.min_ts, 5003u);
	cr_assert_eq(s.max_ts, 5009u);
	cr_assert_eq(s.ncols, 5u);
	cr_assert_str_eq(s.cols[0].name, "_vector");
	cr_assert_str_eq(s.cols[1].name, "_id");
	cr_assert_str_eq(s.cols[2].name, "_ts");
	cr_assert_str_eq(s.cols[3].name, "n");
	cr_assert_str_eq(s.cols[4].name, "s");
	for (uint32_t i = 0; i < s.ncols; i++)
		cr_assert_eq(s.cols[i].off % SEG_ALIGN, 0u, "block %u not aligned", i);
	cr_assert_eq((uintptr_t)s.vectors % 64, 0u, "vectors at %p", (const void *)s.vectors);
	cr_assert_eq(memcmp(s.vectors, src.vec, NROWS * DIM * 4), 0);

	batch_init(&b, &sc);
	cr_assert_eq(seg_load(&s, &b, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.n, (size_t)NROWS);
	cr_assert_eq(b.partition_id, 5);
	assert_same_rows(&src, 0, &b, NROWS);
	/* seg_load appends */
	cr_assert_eq(seg_load(&s, &b, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.n, 2 * (size_t)NROWS);
	struct batch tail;
	batch_init(&tail, &sc);
	for (size_t r = NROWS; r < 2 * NROWS; r++)
		cr_assert_eq(batch_copy_row(&tail, &b, r, &e), VDB_OK);
	assert_same_rows(&src, 0, &tail, NROWS);
	batch_free(&tail);
	batch_free(&b);
	seg_close(&s);

	/* the same bytes from memory */
	size_t len;
	unsigned char *buf = unit_read_file(path, &len);
	cr_assert_eq(seg_open_mem(buf, len, &s, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(seg_verify(&s, info.object, &e), VDB_OK, "%s", e.msg);
	batch_init(&b, &sc);
	cr_assert_eq(seg_load(&s, &b, &e), VDB_OK, "%s", e.msg);
	assert_same_rows(&src, 0, &b, NROWS);
	batch_free(&b);
	seg_close(&s);
	free(buf);
	free(path);
}

/* the key is a function of the content alone */
Test(segment, same_rows_same_key)
{
	struct seg_info a, b;
	char *p1 = write_seg(&src, &a), *p2 = write_seg(&src, &b);

	cr_assert_str_eq(a.object, b.object);
	src.ts[1]++;
	free(p2);
	p2 = write_seg(&src, &b);
	cr_assert_str_neq(a.object, b.object, "a different row wrote the same key");
	free(p1);
	free(p2);
}

/* The key property: every byte of the object is covered by a check.  Any
 * single flipped bit makes seg_open or seg_verify (with the key) fail with
 * VDB_ECORRUPT. */
Test(segment, every_flipped_byte_is_caught)
{
	struct seg_info info;
	struct segment s;
	struct vdb_err e;
	size_t len;
	char *obj = write_seg(&src, &info), *copy = unit_path(tmp, "copy.seg");
	unsigned char *orig = unit_read_file(obj, &len);
	int fd;

	unit_write_file(copy, orig, len);
	fd = open(copy, O_RDWR);
	cr_assert(fd >= 0);
	for (size_t pos = 0; pos < len; pos++) {
		const unsigned char x[] = {0x01, 0x80};
		for (size_t k = 0; k < sizeof(x); k++) {
			unsigned char c = orig[pos] ^ x[k];
			cr_assert_eq(pwrite(fd, &c, 1, (off_t)pos), 1);
			memset(&e, 0, sizeof(e));
			int rc = seg_open(copy, &s, &e);
			if (rc == VDB_OK) {
				rc = seg_verify(&s, info.object, &e);
				seg_close(&s);
			}
			cr_assert_eq(rc, VDB_ECORRUPT, "byte %zu of %zu ^ 0x%02x: rc %d (%s)", pos,
			             len, x[k], rc, e.msg);
			cr_assert_eq(pwrite(fd, &orig[pos], 1, (off_t)pos), 1);
		}
	}
	close(fd);
	/* and restored, it is good again */
	cr_assert_eq(seg_open(copy, &s, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(seg_verify(&s, info.object, &e), VDB_OK, "%s", e.msg);
	seg_close(&s);
	free(orig);
	free(copy);
	free(obj);
}

/* the same, every bit, through seg_open_mem */
Test(segment, every_flipped_bit_in_memory)
{
	struct seg_info info;
	struct segment s;
	struct vdb_err e;
	size_t len;
	char *obj = write_seg(&src, &info);
	unsigned char *buf = unit_read_file(obj, &len);

	for (size_t pos = 0; pos < len; pos++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[pos] ^= (unsigned char)(1u << bit);
			int rc = seg_open_mem(buf, len, &s, &e);
			if (rc == VDB_OK) {
				rc = seg_verify(&s, info.object, &e);
				seg_close(&s);
			}
			cr_assert_eq(rc, VDB_ECORRUPT, "byte %zu bit %d: rc %d", pos, bit, rc);
			buf[pos] ^= (unsigned char)(1u << bit);
		}
	}
	free(buf);
	free(obj);
}

Test(segment, every_truncation_fails_cleanly)
{
	struct seg_info info;
	struct segment s;
	struct vdb_err e;
	size_t len;
	char *obj = write_seg(&src, &info), *copy = unit_path(tmp, "cut.seg");
	unsigned char *orig = unit_read_file(obj, &len);

	for (size_t cut = 0; cut < len; cut++) {
		unit_write_file(copy, orig, cut);
		memset(&e, 0, sizeof(e));
		int rc = seg_open(copy, &s, &e);
		cr_assert_eq(rc, VDB_ECORRUPT, "cut at %zu of %zu: rc %d", cut, len, rc);
		cr_assert(strstr(e.msg, copy) != NULL, "message names the file: %s", e.msg);
		/* an exact-size buffer, so that a read past the end is an ASan error */
		unsigned char *m = malloc(cut ? cut : 1);
		memcpy(m, orig, cut);
		cr_assert_eq(seg_open_mem(m, cut, &s, &e), VDB_ECORRUPT, "mem cut at %zu", cut);
		free(m);
	}
	/* bytes appended after the trailer */
	unsigned char *longer = malloc(len + 64);
	memcpy(longer, orig, len);
	memset(longer + len, 0, 64);
	for (size_t extra = 1; extra <= 64; extra += 7) {
		unit_write_file(copy, longer, len + extra);
		cr_assert_eq(seg_open(copy, &s, &e), VDB_ECORRUPT, "%zu bytes appended", extra);
	}
	/* and a byte lost at the front */
	unit_write_file(copy, orig + 1, len - 1);
	cr_assert_eq(seg_open(copy, &s, &e), VDB_ECORRUPT);
	free(longer);
	free(orig);
	free(copy);
	free(obj);
}

Test(segment, missing_file)
{
	struct segment s;
	struct vdb_err e;
	char *p = unit_path(tmp, "nope.seg");

	cr_assert_eq(seg_open(p, &s, &e), VDB_ENOENT);
	free(p);
}

Test(segment, load_checks_the_schema)
{
	struct seg_info info;
	struct segment s;
	struct vdb_err e;
	struct schema other;
	struct batch b;
	char *path = write_seg(&src, &info);

	cr_assert_eq(seg_open(path, &s, &e), VDB_OK, "%s", e.msg);

	mkschema(&other);
	other.dim = DIM + 1;
	batch_init(&b, &other);
	cr_assert_eq(seg_load(&s, &b, &e), VDB_ECORRUPT, "wrong dimension loaded");
	cr_assert_eq(b.n, 0u);
	batch_free(&b);

	mkschema(&other);
	other.nfields = 1;
	batch_init(&b, &other);
	cr_assert_eq(seg_load(&s, &b, &e), VDB_ECORRUPT, "fewer fields loaded");
	batch_free(&b);

	mkschema(&other);
	snprintf(other.fields[0].name, sizeof(other.fields[0].name), "m");
	batch_init(&b, &other);
	cr_assert_eq(seg_load(&s, &b, &e), VDB_ECORRUPT, "renamed field loaded");
	cr_assert_eq(b.n, 0u);
	batch_free(&b);

	mkschema(&other);
	other.fields[0].type = FT_DOUBLE;
	batch_init(&b, &other);
	cr_assert_eq(seg_load(&s, &b, &e), VDB_ECORRUPT, "int64 column loaded as double");
	batch_free(&b);

	mkschema(&other);
	other.fields[1].type = FT_INT64;
	batch_init(&b, &other);
	cr_assert_eq(seg_load(&s, &b, &e), VDB_ECORRUPT, "string column loaded as int64");
	batch_free(&b);

	seg_close(&s);
	free(path);
}

Test(segment, empty_segment)
{
	struct seg_info info;
	struct segment s;
	struct vdb_err e;
	struct batch empty, b;

	batch_init(&empty, &sc);
	cr_assert_eq(batch_reserve(&empty, 1, &e), VDB_OK);
	char *path = write_seg(&empty, &info);
	cr_assert_eq(info.rows, 0u);
	cr_assert_eq(seg_open(path, &s, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(seg_verify(&s, info.object, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(s.rows, 0u);
	batch_init(&b, &sc);
	cr_assert_eq(seg_load(&s, &b, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.n, 0u);
	seg_close(&s);
	batch_free(&b);
	batch_free(&empty);
	free(path);
}

static int
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
count_objects_fn(void *arg, const char *key)
{
	(void)key;
	(*(int *)arg)++;
	return 0;
}

static int
count_objects(void)
{
	struct vdb_err e;
	int n = 0;

	cr_assert_eq(store_list(st, count_objects_fn, &n, &e), VDB_OK);
	return n;
}

/* more than one write buffer (8 MiB) of vectors, added in uneven pieces */
Test(segment, large_writer_in_pieces)
{
	const size_t D = 64, N = 40000;
	const size_t pieces[] = {1, 999, 33333, 5667};
	struct schema s1;
	struct batch rows, b;
	struct seg_writer *w;
	struct seg_info info;
	struct segment s;
	struct vdb_err e;
	float *v = malloc(N * D * sizeof(float));
	char *path;

	memset(&s1, 0, sizeof(s1));
	s1.id = 3;
	s1.dim = (uint32_t)D;
	for (size_t i = 0; i < N * D; i++)
		v[i] = (float)(i % 9973) * 0.5f - (float)(i / 9973);
	batch_init_scalars(&rows, &s1);
	cr_assert_eq(batch_reserve(&rows, N, &e), VDB_OK);
	for (size_t r = 0; r < N; r++) {
		rows.ids[r] = (int64_t)r;
		rows.ts[r] = 77;
	}
	rows.n = N;
	cr_assert_eq(seg_writer_begin(st, &s1, 1, &w, &e), VDB_OK, "%s", e.msg);
	size_t at = 0;
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		cr_assert_eq(seg_writer_add_vectors(w, v + at * D, pieces[i], &e), VDB_OK, "%s",
		             e.msg);
		at += pieces[i];
	}
	cr_assert_eq(at, N);
	cr_assert_eq(seg_writer_finish(w, &rows, &info, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(store_local_path(st, info.object, &path, &e), VDB_OK);
	cr_assert_eq(seg_open(path, &s, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(seg_verify(&s, info.object, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(s.rows, N);
	cr_assert_eq(memcmp(s.vectors, v, N * D * sizeof(float)), 0, "vectors differ");
	batch_init(&b, &s1);
	cr_assert_eq(seg_load(&s, &b, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.ids[N - 1], (int64_t)N - 1);
	cr_assert_eq(memcmp(b.vec, v, N * D * sizeof(float)), 0);
	seg_close(&s);
	batch_free(&b);
	batch_free(&rows);
	free(path);
	free(v);
}

Test(segment, writer_row_mismatch_and_abort_leave_nothing)
{
	struct seg_writer *w;
	struct seg_info info;
	struct vdb_err e;
	char *stage = unit_path(objdir, "tmp");
	struct batch two;

	/* three vectors, two rows */
	cr_assert_eq(seg_writer_begin(st, &sc, 5, &w, &e), VDB_OK);
	cr_assert_eq(seg_writer_add_vectors(w, src.vec, 3, &e), VDB_OK);
	batch_init(&two, &sc);
	for (size_t r = 0; r < 2; r++)
		cr_assert_eq(batch_copy_row(&two, &src, r, &e), VDB_OK);
	cr_assert_eq(seg_writer_finish(w, &two, &info, &e), VDB_EINTERNAL);
	cr_assert_eq(count_files(stage), 0, "a stage file was left behind");
	cr_assert_eq(count_objects(), 0, "an object was published");

	/* abort midway */
	cr_assert_eq(seg_writer_begin(st, &sc, 5, &w, &e), VDB_OK);
	cr_assert_eq(seg_writer_add_vectors(w, src.vec, 2, &e), VDB_OK);
	seg_writer_abort(w);
	cr_assert_eq(count_files(stage), 0);
	cr_assert_eq(count_objects(), 0);
	batch_free(&two);
	free(stage);
}
