/* schema.c: unit tests for lib/schema.c (names, field specs, schemas). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "schema.h"

static char *
repeat(char c, size_t n)
{
	static char buf[1024];
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

Test(name_check, accepts)
{
	const char *good[] = {"a", "_", "A", "abc", "A_1", "_x9", "snake_case_99", "Z0"};
	struct vdb_err e;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(name_check(good[i], "collection", &e), VDB_OK, "'%s': %s", good[i],
		             e.msg);
	cr_assert_eq(name_check(repeat('n', 255), "collection", &e), VDB_OK);
}

Test(name_check, rejects)
{
	const char *bad[] = {
	        "",
	        "1abc",
	        "9",
	        "../etc",
	        "..",
	        "a/b",
	        "a'b",
	        "a\"b",
	        "'",
	        "a b",
	        " a",
	        "a ",
	        "x; DROP TABLE collections",
	        "x;",
	        "a-b",
	        "a.b",
	        "a\tb",
	        "a\nb",
	        "caf\xc3\xa9",
	        "a\x7f",
	        "$x",
	        "a*",
	};
	struct vdb_err e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		cr_expect_eq(name_check(bad[i], "partition", &e), VDB_EINPUT, "'%s' accepted",
		             bad[i]);
		cr_expect_eq(e.rc, VDB_EINPUT);
		cr_expect(strstr(e.msg, "partition") != NULL, "message '%s' lacks what", e.msg);
	}
	memset(&e, 0, sizeof(e));
	cr_assert_eq(name_check(repeat('n', 256), "collection", &e), VDB_EINPUT);
	cr_assert(strstr(e.msg, "255") != NULL, "%s", e.msg);
	cr_assert_eq(name_check(repeat('n', 1000), "collection", &e), VDB_EINPUT);
}

Test(field_parse, scalar_types)
{
	struct field f;
	struct vdb_err e;

	cr_assert_eq(field_parse("n:int64", &f, &e), VDB_OK, "%s", e.msg);
	cr_assert_str_eq(f.name, "n");
	cr_assert_eq(f.type, FT_INT64);
	cr_assert_eq(f.max_len, 0u);

	cr_assert_eq(field_parse("price:double", &f, &e), VDB_OK, "%s", e.msg);
	cr_assert_str_eq(f.name, "price");
	cr_assert_eq(f.type, FT_DOUBLE);

	cr_assert_eq(field_parse("_ok:bool", &f, &e), VDB_OK, "%s", e.msg);
	cr_assert_str_eq(f.name, "_ok");
	cr_assert_eq(f.type, FT_BOOL);
}

Test(field_parse, strings)
{
	struct field f;
	struct vdb_err e;

	cr_assert_eq(field_parse("s:string", &f, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(f.type, FT_STRING);
	cr_assert_eq(f.max_len, (uint32_t)VDB_MAX_STRING);

	cr_assert_eq(field_parse("title:string:10", &f, &e), VDB_OK, "%s", e.msg);
	cr_assert_str_eq(f.name, "title");
	cr_assert_eq(f.type, FT_STRING);
	cr_assert_eq(f.max_len, 10u);

	cr_assert_eq(field_parse("s:string:1", &f, &e), VDB_OK);
	cr_assert_eq(f.max_len, 1u);
	cr_assert_eq(field_parse("s:string:65535", &f, &e), VDB_OK);
	cr_assert_eq(f.max_len, 65535u);
}

Test(field_parse, rejects)
{
	const char *bad[] = {
	        "n", /* no type */
	        "n:", /* empty type */
	        ":int64", /* empty name */
	        "1n:int64", /* bad name */
	        "a b:int64", /* bad name */
	        "id;x:int64", /* bad name */
	        "n:float", /* unknown type */
	        "n:INT64", /* types are lowercase */
	        "n:int", /* prefix of a type */
	        "n:int64x", /* a type with a tail */
	        "n:strings", /* ditto */
	        "n:int64:5", /* only strings take a length */
	        "n:double:8", /* ditto */
	        "n:bool:1", /* ditto */
	        "s:string:0", /* too short */
	        "s:string:65536", /* too long */
	        "s:string:70000", /* too long */
	        "s:string:", /* empty length */
	        "s:string:abc", /* not a number */
	        "s:string:10x", /* trailing junk */
	        "s:string:-1", /* negative */
	        "s:string:99999999999999999999999", /* overflow */
	};
	struct field f;
	struct vdb_err e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		cr_expect_eq(field_parse(bad[i], &f, &e), VDB_EINPUT, "'%s' accepted", bad[i]);
		cr_expect(e.msg[0] != '\0', "'%s': no message", bad[i]);
	}
	/* a name longer than 255 */
	char spec[400];
	memset(spec, 'a', 300);
	strcpy(spec + 300, ":int64");
	cr_assert_eq(field_parse(spec, &f, &e), VDB_EINPUT);
}

static struct field
mkfield(const char *name, int type)
{
	struct field f;
	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "%s", name);
	f.type = type;
	return f;
}

Test(schema_add_field, reserved_and_duplicates)
{
	struct schema s;
	struct field f;
	struct vdb_err e;

	memset(&s, 0, sizeof(s));
	f = mkfield("id", FT_INT64);
	cr_assert_eq(schema_add_field(&s, &f, &e), VDB_EINPUT);
	cr_assert(strstr(e.msg, "reserved") != NULL, "%s", e.msg);
	f = mkfield("vector", FT_STRING);
	cr_assert_eq(schema_add_field(&s, &f, &e), VDB_EINPUT);
	f = mkfield("_x", FT_BOOL);
	cr_assert_eq(schema_add_field(&s, &f, &e), VDB_EINPUT);
	f = mkfield("_", FT_BOOL);
	cr_assert_eq(schema_add_field(&s, &f, &e), VDB_EINPUT);
	cr_assert_eq(s.nfields, 0u);

	f = mkfield("a", FT_INT64);
	cr_assert_eq(schema_add_field(&s, &f, &e), VDB_OK);
	f = mkfield("b", FT_DOUBLE);
	cr_assert_eq(schema_add_field(&s, &f, &e), VDB_OK);
	f = mkfield("a", FT_STRING);
	cr_assert_eq(schema_add_field(&s, &f, &e), VDB_EINPUT);
	cr_assert(strstr(e.msg, "twice") != NULL, "%s", e.msg);
	cr_assert_eq(s.nfields, 2u);
	cr_assert_eq(s.fields[0].type, FT_INT64);
	/* names are case-sensitive: "A" is not "a" */
	f = mkfield("A", FT_INT64);
	cr_assert_eq(schema_add_field(&s, &f, &e), VDB_OK);

	cr_assert_eq(schema_field_index(&s, "a"), 0);
	cr_assert_eq(schema_field_index(&s, "b"), 1);
	cr_assert_eq(schema_field_index(&s, "A"), 2);
	cr_assert_eq(schema_field_index(&s, "c"), -1);
	cr_assert_eq(schema_field_index(&s, "id"), -1);
	cr_assert_eq(schema_field_index(&s, ""), -1);
}

Test(schema_add_field, at_most_64_fields)
{
	struct schema s;
	struct field f;
	struct vdb_err e;
	char name[16];

	memset(&s, 0, sizeof(s));
	for (int i = 0; i < VDB_MAX_FIELDS; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		f = mkfield(name, FT_INT64);
		cr_assert_eq(schema_add_field(&s, &f, &e), VDB_OK, "field %d: %s", i, e.msg);
	}
	cr_assert_eq(s.nfields, 64u);
	f = mkfield("one_more", FT_INT64);
	cr_assert_eq(schema_add_field(&s, &f, &e), VDB_EINPUT);
	cr_assert(strstr(e.msg, "64") != NULL, "%s", e.msg);
	cr_assert_eq(s.nfields, 64u);
	cr_assert_eq(schema_field_index(&s, "f63"), 63);
}

Test(schema, names_round_trip)
{
	int m = -1;

	cr_assert_eq(metric_parse("l2", &m), 0);
	cr_assert_eq(m, METRIC_L2);
	cr_assert_eq(metric_parse("ip", &m), 0);
	cr_assert_eq(m, METRIC_IP);
	cr_assert_eq(metric_parse("cosine", &m), 0);
	cr_assert_eq(m, METRIC_COSINE);
	cr_assert_eq(metric_parse("L2", &m), -1);
	cr_assert_eq(metric_parse("", &m), -1);
	cr_assert_eq(metric_parse("euclid", &m), -1);
	for (int i = METRIC_L2; i <= METRIC_COSINE; i++) {
		cr_assert_eq(metric_parse(metric_name(i), &m), 0);
		cr_assert_eq(m, i);
	}
	cr_assert_str_eq(ftype_name(FT_INT64), "int64");
	cr_assert_str_eq(ftype_name(FT_DOUBLE), "double");
	cr_assert_str_eq(ftype_name(FT_BOOL), "bool");
	cr_assert_str_eq(ftype_name(FT_STRING), "string");
	cr_assert_str_eq(ftype_name(0), "?");
	cr_assert_str_eq(metric_name(7), "?");
	/* every type name parses back to its type */
	for (int t = FT_INT64; t <= FT_STRING; t++) {
		char spec[32];
		struct field f;
		struct vdb_err e;
		snprintf(spec, sizeof(spec), "x:%s", ftype_name(t));
		cr_assert_eq(field_parse(spec, &f, &e), VDB_OK);
		cr_assert_eq(f.type, t);
	}
}
