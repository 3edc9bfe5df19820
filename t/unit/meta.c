/* meta.c: unit tests for lib/meta.c (the catalogue, formats/meta.md). */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meta.h"
#include "unit.h"

static char *tmp, *dbpath;
static struct meta *m;

static void
setup(void)
{
	struct vdb_err e;

	tmp = unit_tmpdir();
	dbpath = unit_path(tmp, "meta.db");
	cr_assert_eq(meta_open(dbpath, 1, &m, &e), VDB_OK, "%s", e.msg);
}

static void
teardown(void)
{
	meta_close(m);
	free(dbpath);
	unit_rmtree(tmp);
}

TestSuite(meta, .init = setup, .fini = teardown);

static void
mkschema(struct schema *s, const char *name, uint32_t dim)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->dim = dim;
	s->metric = METRIC_COSINE;
	s->auto_id = 1;
	s->nfields = 3;
	snprintf(s->fields[0].name, sizeof(s->fields[0].name), "n");
	s->fields[0].type = FT_INT64;
	snprintf(s->fields[1].name, sizeof(s->fields[1].name), "title");
	s->fields[1].type = FT_STRING;
	s->fields[1].max_len = 10;
	snprintf(s->fields[2].name, sizeof(s->fields[2].name), "ok");
	s->fields[2].type = FT_BOOL;
}

static int64_t
create(const char *name)
{
	struct schema s;
	struct vdb_err e;

	mkschema(&s, name, 8);
	cr_assert_eq(meta_collection_create(m, &s, &e), VDB_OK, "%s: %s", name, e.msg);
	cr_assert(s.id > 0);
	return s.id;
}

static uint64_t
now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

Test(meta, open_and_reopen)
{
	struct meta *m2;
	struct vdb_err e;

	cr_assert_eq(meta_schema_version(m), 2);
	create("c");
	meta_close(m);
	m = NULL;
	cr_assert_eq(meta_open(dbpath, 0, &m, &e), VDB_OK, "%s", e.msg);
	struct schema s;
	cr_assert_eq(meta_collection_get(m, "c", &s, &e), VDB_OK, "%s", e.msg);
	/* a second handle on the same file */
	cr_assert_eq(meta_open(dbpath, 0, &m2, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(meta_collection_get(m2, "c", &s, &e), VDB_OK);
	meta_close(m2);
	char *report;
	cr_assert_eq(meta_integrity(m, &report, &e), VDB_OK);
	cr_assert_null(report, "%s", report);
}

Test(meta, open_missing_without_create)
{
	struct meta *m2 = NULL;
	struct vdb_err e;
	char *p = unit_path(tmp, "absent.db");

	cr_assert_neq(meta_open(p, 0, &m2, &e), VDB_OK);
	cr_assert(!unit_exists(p), "meta_open without create made %s", p);
	free(p);
}

Test(meta, collections)
{
	struct schema s, got, *list;
	struct vdb_err e;
	size_t n;

	mkschema(&s, "zeta", 128);
	cr_assert_eq(meta_collection_create(m, &s, &e), VDB_OK, "%s", e.msg);
	int64_t zid = s.id;
	mkschema(&s, "alpha", 3);
	s.metric = METRIC_L2;
	s.auto_id = 0;
	s.nfields = 0;
	cr_assert_eq(meta_collection_create(m, &s, &e), VDB_OK, "%s", e.msg);
	int64_t aid = s.id;
	cr_assert_neq(aid, zid);

	cr_assert_eq(meta_collection_get(m, "zeta", &got, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(got.id, zid);
	cr_assert_str_eq(got.name, "zeta");
	cr_assert_eq(got.dim, 128u);
	cr_assert_eq(got.metric, METRIC_COSINE);
	cr_assert_eq(got.auto_id, 1);
	cr_assert_eq(got.nfields, 3u);
	cr_assert_str_eq(got.fields[0].name, "n");
	cr_assert_eq(got.fields[0].type, FT_INT64);
	cr_assert_str_eq(got.fields[1].name, "title");
	cr_assert_eq(got.fields[1].type, FT_STRING);
	cr_assert_eq(got.fields[1].max_len, 10u);
	cr_assert_str_eq(got.fields[2].name, "ok");
	cr_assert_eq(got.fields[2].type, FT_BOOL);
	cr_assert_eq(meta_collection_get_id(m, aid, &got, &e), VDB_OK);
	cr_assert_str_eq(got.name, "alpha");
	cr_assert_eq(got.metric, METRIC_L2);
	cr_assert_eq(got.auto_id, 0);
	cr_assert_eq(got.nfields, 0u);

	cr_assert_eq(meta_collection_list(m, &list, &n, &e), VDB_OK);
	cr_assert_eq(n, 2u);
	cr_assert_str_eq(list[0].name, "alpha", "ordered by name");
	cr_assert_str_eq(list[1].name, "zeta");
	cr_assert_eq(list[1].nfields, 3u);
	free(list);

	/* a duplicate name */
	mkschema(&s, "zeta", 4);
	cr_assert_eq(meta_collection_create(m, &s, &e), VDB_EEXIST);
	cr_assert(strstr(e.msg, "zeta") != NULL, "%s", e.msg);
	cr_assert_eq(meta_collection_get(m, "zeta", &got, &e), VDB_OK);
	cr_assert_eq(got.dim, 128u, "the duplicate changed the original");

	/* unknown */
	cr_assert_eq(meta_collection_get(m, "nope", &got, &e), VDB_ENOENT);
	cr_assert_eq(meta_collection_get_id(m, 999, &got, &e), VDB_ENOENT);
	cr_assert_eq(meta_collection_get(m, "ZETA", &got, &e), VDB_ENOENT,
	             "names are case-sensitive");

	/* drop */
	char(*objs)[65] = NULL;
	size_t nobj = 99;
	cr_assert_eq(meta_collection_drop(m, zid, &objs, &nobj, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(nobj, 0u);
	free(objs);
	cr_assert_eq(meta_collection_get(m, "zeta", &got, &e), VDB_ENOENT);
	cr_assert_eq(meta_collection_list(m, &list, &n, &e), VDB_OK);
	cr_assert_eq(n, 1u);
	free(list);
	/* the name is free again, and the new collection gets a new id */
	mkschema(&s, "zeta", 4);
	cr_assert_eq(meta_collection_create(m, &s, &e), VDB_OK, "%s", e.msg);
	cr_assert_neq(s.id, zid, "a dropped collection's id was reused");
	uint32_t sealed = 99;
	cr_assert_eq(meta_stream_sealed(m, s.id, &sealed, &e), VDB_OK);
	cr_assert_eq(sealed, 0u, "a new collection inherited a stream state");
}

Test(meta, empty_list)
{
	struct schema *list = NULL;
	struct vdb_err e;
	size_t n = 7;

	cr_assert_eq(meta_collection_list(m, &list, &n, &e), VDB_OK);
	cr_assert_eq(n, 0u);
	free(list);
}

Test(meta, partitions)
{
	struct part_info *p;
	struct vdb_err e;
	size_t n;
	int64_t pid, pid2;
	int exists;
	char(*objs)[65] = NULL;
	size_t nobj;
	int64_t cid = create("c"), other = create("d");

	cr_assert_eq(meta_partition_list(m, cid, &p, &n, &e), VDB_OK);
	cr_assert_eq(n, 1u);
	cr_assert_str_eq(p[0].name, "_default");
	free(p);

	cr_assert_eq(meta_partition_create(m, cid, "p1", &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(meta_partition_create(m, cid, "p1", &e), VDB_EEXIST);
	cr_assert(strstr(e.msg, "p1") != NULL, "%s", e.msg);
	cr_assert_eq(meta_partition_create(m, cid, "_default", &e), VDB_EEXIST);
	/* the same name in another collection is another partition */
	cr_assert_eq(meta_partition_create(m, other, "p1", &e), VDB_OK, "%s", e.msg);

	cr_assert_eq(meta_partition_list(m, cid, &p, &n, &e), VDB_OK);
	cr_assert_eq(n, 2u);
	cr_assert_str_eq(p[0].name, "_default");
	cr_assert_str_eq(p[1].name, "p1");
	free(p);

	cr_assert_eq(meta_partition_get(m, cid, "p1", &pid, &e), VDB_OK);
	cr_assert_eq(meta_partition_get(m, other, "p1", &pid2, &e), VDB_OK);
	cr_assert_neq(pid, pid2);
	cr_assert_eq(meta_partition_get(m, cid, "p2", &pid2, &e), VDB_ENOENT);
	cr_assert_eq(meta_partition_exists(m, pid, &exists, &e), VDB_OK);
	cr_assert_eq(exists, 1);

	cr_assert_eq(meta_partition_drop(m, cid, "_default", &objs, &nobj, &e), VDB_EINPUT);
	cr_assert(strstr(e.msg, "_default") != NULL, "%s", e.msg);
	cr_assert_eq(meta_partition_drop(m, cid, "p1", &objs, &nobj, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(nobj, 0u);
	free(objs);
	cr_assert_eq(meta_partition_exists(m, pid, &exists, &e), VDB_OK);
	cr_assert_eq(exists, 0);
	cr_assert_eq(meta_partition_drop(m, cid, "p1", &objs, &nobj, &e), VDB_ENOENT);
	cr_assert_eq(meta_partition_get(m, other, "p1", &pid2, &e), VDB_OK,
	             "dropping c's p1 dropped d's");
	cr_assert_eq(meta_partition_list(m, cid, &p, &n, &e), VDB_OK);
	cr_assert_eq(n, 1u);
	free(p);
	/* re-created, it is a new partition: rows of the old one stay gone */
	cr_assert_eq(meta_partition_create(m, cid, "p1", &e), VDB_OK);
	cr_assert_eq(meta_partition_get(m, cid, "p1", &pid2, &e), VDB_OK);
	cr_assert_neq(pid2, pid, "a dropped partition's id was reused");
}

Test(meta, partition_of_missing_collection)
{
	struct vdb_err e;

	memset(&e, 0, sizeof(e));
	int rc = meta_partition_create(m, 4242, "p", &e);
	cr_assert_neq(rc, VDB_OK, "a partition was created for no collection");
	cr_assert_neq(rc, VDB_EEXIST, "a missing collection reported as 'exists': %s", e.msg);
}

/* names reach SQLite only as parameters: hostile text is stored verbatim */
Test(meta, hostile_names_are_data)
{
	const char *evil[] = {
	        "x'); DROP TABLE collections; --",
	        "a'b",
	        "\"; DELETE FROM partitions; --",
	        "%s%n%s",
	        "_default'--",
	};
	struct part_info *p;
	struct schema s, *list;
	struct vdb_err e;
	size_t n;
	int64_t cid = create("c"), pid;

	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++)
		cr_assert_eq(meta_partition_create(m, cid, evil[i], &e), VDB_OK, "'%s': %s",
		             evil[i], e.msg);
	cr_assert_eq(meta_collection_get(m, "c", &s, &e), VDB_OK, "collections gone: %s", e.msg);
	cr_assert_eq(meta_collection_list(m, &list, &n, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(n, 1u);
	free(list);
	cr_assert_eq(meta_partition_list(m, cid, &p, &n, &e), VDB_OK);
	cr_assert_eq(n, 1 + sizeof(evil) / sizeof(evil[0]));
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		cr_assert_str_eq(p[i + 1].name, evil[i]);
		cr_assert_eq(meta_partition_get(m, cid, evil[i], &pid, &e), VDB_OK);
		cr_assert_eq(pid, p[i + 1].id);
	}
	free(p);

	/* a collection named with a quote */
	mkschema(&s, "a'b", 2);
	cr_assert_eq(meta_collection_create(m, &s, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(meta_collection_get(m, "a'b", &s, &e), VDB_OK, "%s", e.msg);
	cr_assert_str_eq(s.name, "a'b");
	cr_assert_eq(meta_collection_get(m, "a", &s, &e), VDB_ENOENT);
	char *report;
	cr_assert_eq(meta_integrity(m, &report, &e), VDB_OK);
	cr_assert_null(report);
}

Test(meta, timestamps_strictly_increase)
{
	struct vdb_err e;
	uint64_t prev = 0, ts, start = now_ms();

	for (int i = 0; i < 10000; i++) {
		cr_assert_eq(meta_ts_alloc(m, &ts, &e), VDB_OK, "%s", e.msg);
		cr_assert_gt(ts, prev, "call %d: %llu after %llu", i, (unsigned long long)ts,
		             (unsigned long long)prev);
		prev = ts;
	}
	uint64_t end = now_ms();
	/* physical part: the wall clock in ms, within slack */
	uint64_t first_phys = prev >> HTS_LOGICAL_BITS;
	cr_assert_geq(first_phys + 2000, start, "ts %llu far behind the clock",
	              (unsigned long long)prev);
	cr_assert_leq(first_phys, end + 2000, "ts ahead of the clock");
	cr_assert_gt(prev, (start - 2000) << HTS_LOGICAL_BITS);

	/* and across a reopen */
	meta_close(m);
	m = NULL;
	cr_assert_eq(meta_open(dbpath, 0, &m, &e), VDB_OK);
	cr_assert_eq(meta_ts_alloc(m, &ts, &e), VDB_OK);
	cr_assert_gt(ts, prev);
}

/* two handles on one catalogue (two processes) never hand out the same
 * timestamp or overlapping id ranges */
Test(meta, two_handles_interleaved)
{
	struct meta *m2;
	struct vdb_err e;
	uint64_t prev = 0, ts;
	int64_t cid = create("c"), first, next = 0;

	cr_assert_eq(meta_open(dbpath, 0, &m2, &e), VDB_OK, "%s", e.msg);
	for (int i = 0; i < 400; i++) {
		struct meta *h = i % 3 ? m : m2;
		cr_assert_eq(meta_ts_alloc(h, &ts, &e), VDB_OK, "%s", e.msg);
		cr_assert_gt(ts, prev, "call %d", i);
		prev = ts;
		cr_assert_eq(meta_autoid_alloc(h, cid, (uint64_t)i % 5 + 1, &first, &e), VDB_OK);
		cr_assert_eq(first, next, "call %d: range at %lld, want %lld", i, (long long)first,
		             (long long)next);
		next = first + i % 5 + 1;
	}
	meta_close(m2);
}

/* a clock behind the last timestamp handed out never makes one go back */
Test(meta, timestamps_survive_a_clock_behind)
{
	struct vdb_err e;
	uint64_t ts;
	sqlite3 *db;
	uint64_t future = (now_ms() + 3600 * 1000) << HTS_LOGICAL_BITS;
	char sql[128];

	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE tso SET last = %llu WHERE id = 1",
	         (unsigned long long)future);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
	cr_assert_eq(meta_ts_alloc(m, &ts, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(ts, future + 1);
	cr_assert_eq(meta_ts_alloc(m, &ts, &e), VDB_OK);
	cr_assert_eq(ts, future + 2);
}

Test(meta, autoid_ranges_do_not_overlap)
{
	struct vdb_err e;
	int64_t cid = create("c"), other = create("d"), first, next = -1;
	const uint64_t sizes[] = {1, 10, 1000, 1, 65536, 3, 0, 7};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		cr_assert_eq(meta_autoid_alloc(m, cid, sizes[i], &first, &e), VDB_OK, "%s", e.msg);
		cr_assert_geq(first, 0);
		if (next >= 0)
			cr_assert_geq(first, next,
			              "range %zu starts at %lld inside the last (ends %lld)", i,
			              (long long)first, (long long)next);
		next = first + (int64_t)sizes[i];
	}
	/* per collection; and kept across a reopen */
	cr_assert_eq(meta_autoid_alloc(m, other, 5, &first, &e), VDB_OK);
	cr_assert_eq(first, 0, "collections count separately");
	meta_close(m);
	m = NULL;
	cr_assert_eq(meta_open(dbpath, 0, &m, &e), VDB_OK);
	cr_assert_eq(meta_autoid_alloc(m, cid, 2, &first, &e), VDB_OK);
	cr_assert_geq(first, next);
}

/* a collection that does not exist (dropped under an ingest) gets no ids;
 * that is not an internal error (exit 101, "a bug") */
Test(meta, autoid_missing_collection)
{
	struct vdb_err e;
	int64_t first;

	memset(&e, 0, sizeof(e));
	int rc = meta_autoid_alloc(m, 4242, 2, &first, &e);
	cr_assert_neq(rc, VDB_OK);
	cr_assert_neq(rc, VDB_EINTERNAL, "missing collection reported as an internal error: %s",
	              e.msg);
}

static struct seg_info
seg(int64_t pid, char c, uint64_t rows)
{
	struct seg_info s;
	memset(&s, 0, sizeof(s));
	s.partition_id = pid;
	memset(s.object, c, 64);
	s.object[64] = '\0';
	s.rows = rows;
	s.bytes = rows * 100;
	s.min_id = -(int64_t)rows;
	s.max_id = (int64_t)rows;
	s.min_ts = 1000 + rows;
	s.max_ts = 2000 + rows;
	return s;
}

Test(meta, seal_commit_and_segments)
{
	struct vdb_err e;
	int64_t cid = create("c"), other = create("d"), pid, opid;
	struct seg_info segs[2], *got;
	size_t n;
	uint32_t sealed;
	int known;

	cr_assert_eq(meta_partition_get(m, cid, "_default", &pid, &e), VDB_OK);
	cr_assert_eq(meta_partition_get(m, other, "_default", &opid, &e), VDB_OK);
	cr_assert_eq(meta_stream_sealed(m, cid, &sealed, &e), VDB_OK);
	cr_assert_eq(sealed, 0u);
	cr_assert_eq(meta_stream_sealed(m, 4242, &sealed, &e), VDB_ENOENT);

	segs[0] = seg(pid, 'a', 10);
	segs[1] = seg(pid, 'b', 20);
	cr_assert_eq(meta_seal_commit(m, cid, segs, 2, 3, &e), VDB_OK, "%s", e.msg);
	cr_assert(segs[0].id > 0 && segs[1].id > segs[0].id, "ids filled in ascending");
	cr_assert_eq(meta_stream_sealed(m, cid, &sealed, &e), VDB_OK);
	cr_assert_eq(sealed, 3u);

	cr_assert_eq(meta_segments(m, cid, &got, &n, &e), VDB_OK);
	cr_assert_eq(n, 2u);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(got[i].id, segs[i].id);
		cr_assert_eq(got[i].collection_id, cid);
		cr_assert_eq(got[i].partition_id, pid);
		cr_assert_str_eq(got[i].partition, "_default");
		cr_assert_str_eq(got[i].object, segs[i].object);
		cr_assert_eq(got[i].rows, segs[i].rows);
		cr_assert_eq(got[i].bytes, segs[i].bytes);
		cr_assert_eq(got[i].min_id, segs[i].min_id);
		cr_assert_eq(got[i].max_id, segs[i].max_id);
		cr_assert_eq(got[i].min_ts, segs[i].min_ts);
		cr_assert_eq(got[i].max_ts, segs[i].max_ts);
		cr_assert(got[i].created > 0);
	}
	free(got);

	/* a lower sealed number never moves the mark back; 0 leaves it */
	struct seg_info s3 = seg(pid, 'c', 5);
	cr_assert_eq(meta_seal_commit(m, cid, &s3, 1, 2, &e), VDB_OK);
	cr_assert_eq(meta_stream_sealed(m, cid, &sealed, &e), VDB_OK);
	cr_assert_eq(sealed, 3u);
	cr_assert_eq(meta_seal_commit(m, cid, NULL, 0, 0, &e), VDB_OK);
	cr_assert_eq(meta_stream_sealed(m, cid, &sealed, &e), VDB_OK);
	cr_assert_eq(sealed, 3u);
	cr_assert_eq(meta_seal_commit(m, cid, NULL, 0, 7, &e), VDB_OK);
	cr_assert_eq(meta_stream_sealed(m, cid, &sealed, &e), VDB_OK);
	cr_assert_eq(sealed, 7u);

	/* another collection's segment, sharing object 'b' */
	struct seg_info os = seg(opid, 'b', 20);
	cr_assert_eq(meta_seal_commit(m, other, &os, 1, 0, &e), VDB_OK);
	cr_assert_eq(meta_segments(m, -1, &got, &n, &e), VDB_OK);
	cr_assert_eq(n, 4u, "all collections");
	free(got);
	cr_assert_eq(meta_segments(m, other, &got, &n, &e), VDB_OK);
	cr_assert_eq(n, 1u);
	free(got);

	uint32_t snap_sealed;
	cr_assert_eq(meta_snapshot(m, cid, &got, &n, &snap_sealed, &e), VDB_OK);
	cr_assert_eq(n, 3u);
	cr_assert_eq(snap_sealed, 7u);
	free(got);

	char key[65];
	memset(key, 'a', 64);
	key[64] = 0;
	cr_assert_eq(meta_object_known(m, key, &known, &e), VDB_OK);
	cr_assert_eq(known, 1);
	memset(key, 'f', 64);
	cr_assert_eq(meta_object_known(m, key, &known, &e), VDB_OK);
	cr_assert_eq(known, 0);

	/* dropping c hands back the objects only c used: a and c, not b */
	char(*objs)[65] = NULL;
	size_t nobj = 0;
	cr_assert_eq(meta_collection_drop(m, cid, &objs, &nobj, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(nobj, 2u);
	int sawa = 0, sawc = 0;
	for (size_t i = 0; i < nobj; i++) {
		sawa |= objs[i][0] == 'a';
		sawc |= objs[i][0] == 'c';
		cr_assert_neq(objs[i][0], 'b', "a shared object was handed out for deletion");
	}
	cr_assert(sawa && sawc);
	free(objs);
	cr_assert_eq(meta_segments(m, cid, &got, &n, &e), VDB_OK);
	cr_assert_eq(n, 0u, "the collection's segments outlived it");
	free(got);
	memset(key, 'b', 64);
	cr_assert_eq(meta_object_known(m, key, &known, &e), VDB_OK);
	cr_assert_eq(known, 1);
}

Test(meta, partition_drop_hands_back_its_objects)
{
	struct vdb_err e;
	int64_t cid = create("c"), pid, p1;
	struct seg_info s[3];
	char(*objs)[65] = NULL;
	size_t nobj = 0, n;
	struct seg_info *got;

	cr_assert_eq(meta_partition_create(m, cid, "p1", &e), VDB_OK);
	cr_assert_eq(meta_partition_get(m, cid, "p1", &p1, &e), VDB_OK);
	cr_assert_eq(meta_partition_get(m, cid, "_default", &pid, &e), VDB_OK);
	s[0] = seg(p1, 'a', 1);
	s[1] = seg(p1, 'b', 2);
	s[2] = seg(pid, 'b', 3); /* same object in the default partition */
	cr_assert_eq(meta_seal_commit(m, cid, s, 3, 0, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(meta_partition_drop(m, cid, "p1", &objs, &nobj, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(nobj, 1u);
	cr_assert_eq(objs[0][0], 'a');
	free(objs);
	cr_assert_eq(meta_segments(m, cid, &got, &n, &e), VDB_OK);
	cr_assert_eq(n, 1u);
	cr_assert_eq(got[0].partition_id, pid);
	free(got);
}

/* seal_commit is one transaction: a failing segment leaves nothing */
Test(meta, seal_commit_is_atomic)
{
	struct vdb_err e;
	int64_t cid = create("c"), pid;
	struct seg_info s[2], *got;
	size_t n;
	uint32_t sealed;

	cr_assert_eq(meta_partition_get(m, cid, "_default", &pid, &e), VDB_OK);
	s[0] = seg(pid, 'a', 1);
	s[1] = seg(999999, 'b', 2); /* no such partition */
	cr_assert_neq(meta_seal_commit(m, cid, s, 2, 5, &e), VDB_OK);
	cr_assert_eq(meta_segments(m, cid, &got, &n, &e), VDB_OK);
	cr_assert_eq(n, 0u, "half a seal was committed");
	free(got);
	cr_assert_eq(meta_stream_sealed(m, cid, &sealed, &e), VDB_OK);
	cr_assert_eq(sealed, 0u);
	/* and the handle is usable after the rollback */
	cr_assert_eq(meta_seal_commit(m, cid, s, 1, 5, &e), VDB_OK, "%s", e.msg);
}

/* ---- files that are not ours ---- */

static void
make_foreign(const char *path, int appid)
{
	sqlite3 *db;
	char sql[128];

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
	                          "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
	                          "INSERT INTO notes (body) VALUES ('keep me');",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", appid);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int
table_count(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", -1,
	                       &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

Test(meta, refuses_other_sqlite_files)
{
	struct meta *m2 = NULL;
	struct vdb_err e;
	char *p = unit_path(tmp, "other.db"), *q = unit_path(tmp, "tagged.db");

	/* another application's database, application_id 0 (the default) */
	make_foreign(p, 0);
	cr_assert_eq(meta_open(p, 0, &m2, &e), VDB_EINPUT, "opened: %s", e.msg);
	cr_assert(strstr(e.msg, "not a vdb catalogue") != NULL, "%s", e.msg);
	cr_assert_eq(table_count(p), 1);

	/* another application's id */
	make_foreign(q, 0x12345678);
	cr_assert_eq(meta_open(q, 0, &m2, &e), VDB_EINPUT);
	cr_assert_eq(meta_open(q, 1, &m2, &e), VDB_EINPUT);
	cr_assert_eq(table_count(q), 1);
	free(p);
	free(q);
}

/* create=1 (vdb-admin init) may stamp an empty file, never another
 * program's database that merely has application_id 0 */
Test(meta, create_adopts_no_foreign_database)
{
	struct meta *m2 = NULL;
	struct vdb_err e;
	char *p = unit_path(tmp, "other.db");

	make_foreign(p, 0);
	memset(&e, 0, sizeof(e));
	int rc = meta_open(p, 1, &m2, &e);
	if (rc == VDB_OK)
		meta_close(m2);
	cr_expect_eq(rc, VDB_EINPUT,
	             "meta_open(create=1) adopted a non-empty foreign SQLite database");
	cr_expect_eq(table_count(p), 1, "vdb tables were added to another program's database");
	free(p);

	/* an empty file is fine to adopt */
	p = unit_path(tmp, "empty.db");
	unit_write_file(p, "", 0);
	cr_assert_eq(meta_open(p, 1, &m2, &e), VDB_OK, "%s", e.msg);
	meta_close(m2);
	free(p);
}

Test(meta, refuses_non_sqlite_files)
{
	struct meta *m2 = NULL;
	struct vdb_err e;
	char *p = unit_path(tmp, "text.db");
	char junk[4096];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)('a' + i % 26);
	unit_write_file(p, junk, sizeof(junk));
	for (int create_flag = 0; create_flag <= 1; create_flag++) {
		int rc = meta_open(p, create_flag, &m2, &e);
		cr_assert_neq(rc, VDB_OK, "create=%d: a text file opened as a catalogue",
		              create_flag);
		cr_assert(rc == VDB_ECORRUPT || rc == VDB_EINPUT, "create=%d: rc %d (%s)",
		          create_flag, rc, e.msg);
	}
	free(p);
}

Test(meta, refuses_a_newer_schema)
{
	struct meta *m2 = NULL;
	struct vdb_err e;
	sqlite3 *db;

	meta_close(m);
	m = NULL;
	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(meta_open(dbpath, 0, &m2, &e), VDB_EINPUT);
	cr_assert(strstr(e.msg, "newer") != NULL, "%s", e.msg);
}
