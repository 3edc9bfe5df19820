/* record.c: unit tests for lib/record.c (input readers, formats/records.md). */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "record.h"
#include "unit.h"

/* ---- fixtures ---- */

/* dim 3; n:int64 x:double f:bool s:string:5 */
static struct schema text_sc, vec_sc;

static void
add(struct schema *s, const char *name, int type, uint32_t max_len)
{
	struct field *f = &s->fields[s->nfields++];
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->type = type;
	f->max_len = max_len;
}

static void
setup(void)
{
	memset(&text_sc, 0, sizeof(text_sc));
	snprintf(text_sc.name, sizeof(text_sc.name), "c");
	text_sc.dim = 3;
	add(&text_sc, "n", FT_INT64, 0);
	add(&text_sc, "x", FT_DOUBLE, 0);
	add(&text_sc, "f", FT_BOOL, 0);
	add(&text_sc, "s", FT_STRING, 5);
	memset(&vec_sc, 0, sizeof(vec_sc));
	snprintf(vec_sc.name, sizeof(vec_sc.name), "v");
	vec_sc.dim = 3;
}

TestSuite(jsonl, .init = setup);
TestSuite(tsv, .init = setup);
TestSuite(fvecs, .init = setup);
TestSuite(npy, .init = setup);
TestSuite(record, .init = setup);

struct rd {
	struct rec_reader r;
	struct batch b;
	int64_t next_id;
	int fd;
	int open_rc;
	struct vdb_err e;
};

/* rd_open: a reader over data (regular file); open_rc is rec_open's */
static void
rd_open(struct rd *d, int format, const struct schema *sc, const char *name, const void *data,
        size_t len)
{
	memset(d, 0, sizeof(*d));
	d->fd = unit_fd(data, len);
	d->next_id = 100;
	batch_init(&d->b, sc);
	d->open_rc = rec_open(&d->r, format, sc, d->fd, name, &d->next_id, &d->e);
}

static void
rd_close(struct rd *d)
{
	rec_close(&d->r);
	batch_free(&d->b);
	close(d->fd);
}

static int
rd_next(struct rd *d)
{
	memset(&d->e, 0, sizeof(d->e));
	return rec_next(&d->r, &d->b, &d->e);
}

static const char *
row_string(const struct batch *b, uint32_t f, size_t r, size_t *len)
{
	*len = b->cols[f].soff[r + 1] - b->cols[f].soff[r];
	return b->cols[f].sbuf + b->cols[f].soff[r];
}

/* expect_bad: rc is VDB_EINPUT with "NAME:N: " and reason in the message */
#define expect_bad(d, rc, name, n, reason, ...)                                                    \
	do {                                                                                       \
		char pre_[300];                                                                    \
		snprintf(pre_, sizeof(pre_), "%s:%d: ", name, n);                                  \
		cr_expect_eq(rc, VDB_EINPUT, __VA_ARGS__);                                         \
		cr_expect(strncmp((d)->e.msg, pre_, strlen(pre_)) == 0,                            \
		          "message '%s' does not start with '%s'", (d)->e.msg, pre_);              \
		cr_expect(strstr((d)->e.msg, reason) != NULL, "message '%s' lacks '%s'",           \
		          (d)->e.msg, reason);                                                     \
	} while (0)

/* ---- JSONL ---- */

#define GOOD2 "{\"id\":2,\"vector\":[4,5,6],\"n\":8,\"x\":1.5,\"f\":false,\"s\":\"zz\"}"

Test(jsonl, good_records)
{
	const char *in =
	        "{\"id\":1,\"vector\":[1,2.5,-3e2],\"n\":7,\"x\":0.5,\"f\":true,\"s\":\"abc\"}\n"
	        "\n"
	        "   \t \n"
	        "  { \"s\" : \"\" , \"f\" : false, \"x\" : 3, \"n\" : -9223372036854775808,"
	        " \"vector\" : [ 0 , -0.0 , 1E-3 ] , \"id\" : 9223372036854775807 }  \r\n"
	        "{\"id\":-5,\"vector\":[3.4028234663852886e38,-3.4028234663852886e38,1],"
	        "\"n\":0,\"x\":-1e300,\"f\":true,\"s\":\"a\\\"\\\\b\"}\n"
	        "{\"id\":6,\"vector\":[1,2,3],\"n\":1,\"x\":2,\"f\":true,\"s\":\"\\u00e9\\u00e9\"}"
	        "\n"
	        "{\"id\":7,\"vector\":[1,2,3],\"n\":1,\"x\":2,\"f\":true,\"s\":\"12345\"}";
	struct rd d;
	const char *s;
	size_t l;

	rd_open(&d, FMT_JSONL, &text_sc, "in.jsonl", in, strlen(in));
	cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(rd_next(&d), VDB_OK, "record %d: %s", i, d.e.msg);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(d.b.n, 5u);
	cr_assert_eq(d.r.recno, 7u, "lines are counted, blank ones too");

	cr_assert_eq(d.b.ids[0], 1);
	cr_assert_eq(d.b.vec[0], 1.0f);
	cr_assert_eq(d.b.vec[1], 2.5f);
	cr_assert_eq(d.b.vec[2], -300.0f);
	cr_assert_eq(d.b.cols[0].i64[0], 7);
	cr_assert_eq(d.b.cols[1].f64[0], 0.5);
	cr_assert_eq(d.b.cols[2].b[0], 1);
	s = row_string(&d.b, 3, 0, &l);
	cr_assert_eq(l, 3u);
	cr_assert_eq(memcmp(s, "abc", 3), 0);

	cr_assert_eq(d.b.ids[1], INT64_MAX);
	cr_assert_eq(d.b.cols[0].i64[1], INT64_MIN);
	cr_assert_eq(d.b.cols[1].f64[1], 3.0);
	cr_assert_eq(d.b.cols[2].b[1], 0);
	cr_assert_eq(d.b.vec[5], 1e-3f);
	row_string(&d.b, 3, 1, &l);
	cr_assert_eq(l, 0u);

	cr_assert_eq(d.b.ids[2], -5);
	cr_assert_eq(d.b.vec[6], FLT_MAX);
	cr_assert_eq(d.b.vec[7], -FLT_MAX);
	cr_assert_eq(d.b.cols[1].f64[2], -1e300);
	s = row_string(&d.b, 3, 2, &l);
	cr_assert_eq(l, 4u);
	cr_assert_eq(memcmp(s, "a\"\\b", 4), 0);

	s = row_string(&d.b, 3, 3, &l);
	cr_assert_eq(l, 4u, "UTF-8 bytes are counted");
	cr_assert_eq(memcmp(s, "\xc3\xa9\xc3\xa9", 4), 0);
	s = row_string(&d.b, 3, 4, &l);
	cr_assert_eq(l, 5u);
	cr_assert_eq(memcmp(s, "12345", 5), 0);
	rd_close(&d);
}

struct bad_case {
	const char *line;
	const char *reason;
};

#define R(v, rest) "{\"id\":1,\"vector\":" v rest "}"
#define F(n, x, f, s) ",\"n\":" n ",\"x\":" x ",\"f\":" f ",\"s\":" s
#define OKF F("7", "0.5", "true", "\"abc\"")

static const struct bad_case json_bad[] = {
        {R("[1,2]", OKF), "wrong dimension (got 2, want 3)"},
        {R("[1,2,3,4]", OKF), "wrong dimension (got 4, want 3)"},
        {R("[]", OKF), "wrong dimension (got 0, want 3)"},
        {R("[1,1e39,3]", OKF), "vector[1] is not a finite float32"},
        {R("[1,2,-1e39]", OKF), "vector[2] is not a finite float32"},
        {R("[3.5e38,2,3]", OKF), "vector[0] is not a finite float32"},
        {R("[1,\"2\",3]", OKF), "vector[1] is not a number"},
        {R("[1,null,3]", OKF), "vector[1] is not a number"},
        {R("[[1],2,3]", OKF), "vector[0] is not a number"},
        {R("[1,true,3]", OKF), "vector[1] is not a number"},
        {R("\"abc\"", OKF), "\"vector\" is not an array"},
        {R("{}", OKF), "\"vector\" is not an array"},
        {R("null", OKF), "\"vector\" is not an array"},
        {R("[1,2,3]", F("1.5", "0.5", "true", "\"abc\"")), "field 'n' wants int64"},
        {R("[1,2,3]", F("\"7\"", "0.5", "true", "\"abc\"")), "field 'n' wants int64"},
        {R("[1,2,3]", F("1e3", "0.5", "true", "\"abc\"")), "field 'n' wants int64"},
        {R("[1,2,3]", F("true", "0.5", "true", "\"abc\"")), "field 'n' wants int64"},
        {R("[1,2,3]", F("null", "0.5", "true", "\"abc\"")), "field 'n' wants int64"},
        {R("[1,2,3]", F("7", "\"0.5\"", "true", "\"abc\"")), "field 'x' wants double"},
        {R("[1,2,3]", F("7", "null", "true", "\"abc\"")), "field 'x' wants double"},
        {R("[1,2,3]", F("7", "[0.5]", "true", "\"abc\"")), "field 'x' wants double"},
        {R("[1,2,3]", F("7", "0.5", "1", "\"abc\"")), "field 'f' wants bool"},
        {R("[1,2,3]", F("7", "0.5", "\"true\"", "\"abc\"")), "field 'f' wants bool"},
        {R("[1,2,3]", F("7", "0.5", "null", "\"abc\"")), "field 'f' wants bool"},
        {R("[1,2,3]", F("7", "0.5", "true", "5")), "field 's' wants string"},
        {R("[1,2,3]", F("7", "0.5", "true", "null")), "field 's' wants string"},
        {R("[1,2,3]", F("7", "0.5", "true", "\"abcdef\"")),
         "field 's' is 6 bytes, longer than its 5"},
        {R("[1,2,3]", F("7", "0.5", "true", "\"\xc3\xa9\xc3\xa9\xc3\xa9\"")),
         "field 's' is 6 bytes"},
        {R("[1,2,3]", F("7", "0.5", "true", "\"\\u00e9\\u00e9\\u00e9\"")), "field 's' is 6 bytes"},
        {R("[1,2,3]", F("7", "0.5", "true", "\"a\\tbcde\"")), "field 's' is 6 bytes"},
        {"{\"id\":1,\"vector\":[1,2,3],\"x\":0.5,\"f\":true,\"s\":\"abc\"}", "missing field 'n'"},
        {"{\"id\":1,\"vector\":[1,2,3],\"n\":7,\"x\":0.5,\"f\":true}", "missing field 's'"},
        {"{\"vector\":[1,2,3]" OKF "}", "missing \"id\""},
        {"{\"id\":1" OKF "}", "missing \"vector\""},
        {"{}", "missing"},
        {R("[1,2,3]", OKF ",\"zz\":1"), "unknown field 'zz'"},
        {R("[1,2,3]", OKF ",\"ID\":1"), "unknown field 'ID'"},
        {R("[1,2,3]", OKF ",\"_ts\":1"), "unknown field '_ts'"},
        {"{\"id\":1,", "malformed JSON"},
        {"{\"id\":1,\"vector\":[1,2,3]", "malformed JSON"},
        {"{id:1}", "malformed JSON"},
        {"{'id':1}", "malformed JSON"},
        {"{\"id\":1,\"id\":1,\"vector\":[1,2,3]" OKF "}", "duplicate"},
        {"{\"id\":1,\"vector\":[1,2,3],\"vector\":[1,2,3]" OKF "}", "malformed JSON"},
        {R("[1,2,3]", OKF ",\"n\":7"), "malformed JSON"},
        {"[1,2,3]", "record is not a JSON object"},
        {"42", "record is not a JSON object"},
        {"\"str\"", "record is not a JSON object"},
        {"null", "record is not a JSON object"},
        {"{\"id\":1.0,\"vector\":[1,2,3]" OKF "}", "\"id\" is not an integer"},
        {"{\"id\":\"1\",\"vector\":[1,2,3]" OKF "}", "\"id\" is not an integer"},
        {"{\"id\":null,\"vector\":[1,2,3]" OKF "}", "\"id\" is not an integer"},
        {"{\"id\":9223372036854775808,\"vector\":[1,2,3]" OKF "}", "malformed JSON"},
        {"{\"id\":-9223372036854775809,\"vector\":[1,2,3]" OKF "}", "malformed JSON"},
        {R("[1,2,3]", F("99999999999999999999", "0.5", "true", "\"abc\"")), "malformed JSON"},
        {R("[1,2,3]", F("7", "1e400", "true", "\"abc\"")), "malformed JSON"},
        {R("[1e400,2,3]", OKF), "malformed JSON"},
        {R("[NaN,2,3]", OKF), "malformed JSON"},
        {R("[Infinity,2,3]", OKF), "malformed JSON"},
        {R("[1,2,3,]", OKF), "malformed JSON"},
        {R("[01,2,3]", OKF), "malformed JSON"},
        {R("[.5,2,3]", OKF), "malformed JSON"},
        {R("[1.,2,3]", OKF), "malformed JSON"},
        {R("[+1,2,3]", OKF), "malformed JSON"},
        {R("[-,2,3]", OKF), "malformed JSON"},
        {R("[1 2,3]", OKF), "malformed JSON"},
        {R("[1,2,3]", F("07", "0.5", "true", "\"abc\"")), "malformed JSON"},
        {R("[1,2,3]", F("7", "0.5", "True", "\"abc\"")), "malformed JSON"},
        {R("[1,2,3]", F("7", "0.5", "truex", "\"abc\"")), "malformed JSON"},
        {R("[1,2,3]", F("7x", "0.5", "true", "\"abc\"")), "malformed JSON"},
        {R("[1,2,3]", F("7", "0.5", "true", "\"a\\u0000b\"")), "malformed JSON"},
        {R("[1,2,3]", F("7", "0.5", "true", "\"\xff\"")), "malformed JSON"},
        {R("[1,2,3]", F("7", "0.5", "true", "\"a\\qb\"")), "malformed JSON"},
        {R("[1,2,3]", F("7", "0.5", "true", "\"a\tb\"")), "malformed JSON"},
        {R("[1,2,3]", OKF) " x", "malformed JSON"},
        {R("[1,2,3]", OKF) R("[1,2,3]", OKF), "malformed JSON"},
        {R("[1,2,3]", OKF ","), "malformed JSON"},
        {"\xef\xbb\xbf" R("[1,2,3]", OKF), "malformed JSON"}, /* a BOM is not skipped */
};

/* each bad line alone (line 1), then a good line (line 2) that must still
 * be read: every JSONL error is skippable */
Test(jsonl, bad_records_then_good)
{
	char buf[1024];

	for (size_t i = 0; i < sizeof(json_bad) / sizeof(json_bad[0]); i++) {
		const struct bad_case *c = &json_bad[i];
		struct rd d;
		int rc;
		snprintf(buf, sizeof(buf), "%s\n%s\n", c->line, GOOD2);
		rd_open(&d, FMT_JSONL, &text_sc, "in.jsonl", buf, strlen(buf));
		cr_assert_eq(d.open_rc, VDB_OK);
		rc = rd_next(&d);
		expect_bad(&d, rc, "in.jsonl", 1, c->reason, "case %zu: %s", i, c->line);
		cr_expect_eq(d.b.n, 0u, "case %zu: a row was added", i);
		cr_expect_eq(d.r.fatal, 0, "case %zu", i);
		rc = rd_next(&d);
		cr_expect_eq(rc, VDB_OK, "case %zu: the good line after it: %s", i, d.e.msg);
		if (rc == VDB_OK) {
			cr_expect_eq(d.b.n, 1u);
			cr_expect_eq(d.b.ids[0], 2);
			cr_expect_eq(d.b.vec[2], 6.0f);
			cr_expect_eq(d.b.cols[0].i64[0], 8);
			size_t l;
			const char *s = row_string(&d.b, 3, 0, &l);
			cr_expect(l == 2 && memcmp(s, "zz", 2) == 0, "case %zu: string", i);
		}
		cr_expect_eq(rd_next(&d), REC_EOF, "case %zu", i);
		rd_close(&d);
	}
}

/* the line number counts every line, blank ones included */
Test(jsonl, line_numbers)
{
	const char *in = GOOD2 "\n\n  \n" GOOD2 "\n{\"id\":1}\r\n\n" GOOD2;
	struct rd d;

	rd_open(&d, FMT_JSONL, &text_sc, "dir/x.jsonl", in, strlen(in));
	cr_assert_eq(rd_next(&d), VDB_OK);
	cr_assert_eq(rd_next(&d), VDB_OK);
	int rc = rd_next(&d);
	expect_bad(&d, rc, "dir/x.jsonl", 5, "missing", "line 5");
	/* the raw record is the whole line as read, CR LF included */
	cr_assert_eq(d.r.rawlen, 10u);
	cr_assert_eq(memcmp(d.r.raw, "{\"id\":1}\r\n", 10), 0);
	cr_assert_eq(rd_next(&d), VDB_OK);
	cr_assert_eq(d.r.recno, 7u);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(d.b.n, 3u);
	rd_close(&d);
}

/* CR LF, a lone CR line, and a CR ending an unterminated last line */
Test(jsonl, carriage_returns)
{
	const char *in = GOOD2 "\r\n\r\n" GOOD2 "\r";
	struct rd d;

	rd_open(&d, FMT_JSONL, &text_sc, "cr.jsonl", in, strlen(in));
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(d.r.recno, 3u);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(d.b.n, 2u);
	rd_close(&d);
}

Test(jsonl, auto_id)
{
	struct schema sc = text_sc;
	const char *in = "{\"vector\":[1,2,3]" OKF "}\n"
	                 "{\"id\":5,\"vector\":[1,2,3]" OKF "}\n"
	                 "{\"vector\":[1,2,3]" OKF "}\n";
	struct rd d;

	sc.auto_id = 1;
	rd_open(&d, FMT_JSONL, &sc, "a.jsonl", in, strlen(in));
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	int rc = rd_next(&d);
	expect_bad(&d, rc, "a.jsonl", 2, "\"id\" given, but the collection assigns ids", "id");
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(d.b.n, 2u);
	cr_assert_eq(d.b.ids[0], 0);
	cr_assert_eq(d.b.ids[1], 0);
	rd_close(&d);
}

/* The reader has a fast path for plain records and falls back to jansson
 * for the rest; both must store the same values, the ones jansson gives
 * (strtod, then rounding to float32).  The escaped string forces the
 * jansson path for the same numbers. */
Test(jsonl, fast_path_matches_jansson)
{
	static const char *nums[] = {
	        "0",
	        "-0",
	        "0.0",
	        "-0.0",
	        "1",
	        "-1",
	        "0.1",
	        "1e-7",
	        "3.141592653589793",
	        "123456789012345678",
	        "9007199254740993",
	        "1.0000000596046448",
	        "1.00000005960464477539",
	        "3.4028234663852886e38",
	        "1e-45",
	        "1.4e-45",
	        "2.5e-46",
	        "0.30000000000000004",
	        "1e22",
	        "1e23",
	        "12345678901234567890e-10",
	        "4.9e-324",
	        "8388609.5",
	        "16777217",
	        "-16777217",
	        "0.000000000000000000000000000000000000001",
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		float want = (float)strtod(nums[i], NULL);
		for (int slow = 0; slow < 2; slow++) {
			struct rd d;
			snprintf(buf, sizeof(buf),
			         "{\"id\":1,\"vector\":[%s,1,2],\"n\":1,\"x\":%s,\"f\":true,"
			         "\"s\":\"%s\"}\n",
			         nums[i], nums[i], slow ? "\\u0061" : "a");
			rd_open(&d, FMT_JSONL, &text_sc, "p.jsonl", buf, strlen(buf));
			cr_assert_eq(rd_next(&d), VDB_OK, "%s: %s", nums[i], d.e.msg);
			/* jansson reads an integer as int64, then converts */
			int is_int = strpbrk(nums[i], ".eE") == NULL;
			double wantd =
			        is_int ? (double)strtoll(nums[i], NULL, 10) : strtod(nums[i], NULL);
			float wantf = is_int ? (float)wantd : want;
			cr_expect_eq(memcmp(&d.b.vec[0], &wantf, 4), 0,
			             "vector %s (%s path): got %a, want %a", nums[i],
			             slow ? "jansson" : "fast", (double)d.b.vec[0], (double)wantf);
			cr_expect_eq(memcmp(&d.b.cols[1].f64[0], &wantd, 8), 0,
			             "double %s (%s path): got %a, want %a", nums[i],
			             slow ? "jansson" : "fast", d.b.cols[1].f64[0], wantd);
			rd_close(&d);
		}
	}
}

/* many records: the read buffer is refilled and compacted many times */
Test(jsonl, many_records)
{
	const int N = 60000;
	size_t cap = (size_t)N * 128, len = 0;
	char *in = malloc(cap);
	struct rd d;

	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(in + len, cap - len,
		                        "{\"id\":%d,\"vector\":[%d,%d.5,-1],\"n\":%d,\"x\":0.25,"
		                        "\"f\":%s,\"s\":\"%c%c\"}\n",
		                        i, i, i, -i, i % 3 ? "true" : "false", 'a' + i % 26,
		                        'a' + i % 7);
	rd_open(&d, FMT_JSONL, &text_sc, "big.jsonl", in, len);
	for (int i = 0; i < N; i++)
		cr_assert_eq(rd_next(&d), VDB_OK, "record %d: %s", i, d.e.msg);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(d.b.n, (size_t)N);
	for (int i = 0; i < N; i++) {
		size_t l;
		const char *s = row_string(&d.b, 3, (size_t)i, &l);
		cr_assert_eq(d.b.ids[i], i);
		cr_assert_eq(d.b.vec[3 * i + 1], (float)i + 0.5f);
		cr_assert_eq(d.b.cols[0].i64[i], -i);
		cr_assert_eq(d.b.cols[2].b[i], i % 3 != 0);
		cr_assert(l == 2 && s[0] == 'a' + i % 26 && s[1] == 'a' + i % 7, "row %d", i);
	}
	rd_close(&d);
	free(in);
}

/* ---- schemas with 63 and 64 fields ----
 * A record's fields, id and vector must all be tracked independently, for
 * every schema vdb allows (up to VDB_MAX_FIELDS = 64 fields). */

static void
wide_schema(struct schema *s, uint32_t nfields)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "wide");
	s->dim = 1;
	for (uint32_t i = 0; i < nfields; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%u", i);
		add(s, name, FT_INT64, 0);
	}
}

/* wide_json: a record with fields [0, nf) except skip, and id/vector if asked */
static size_t
wide_json(char *buf, size_t cap, uint32_t nf, int skip, int with_id, int with_vec)
{
	size_t n = (size_t)snprintf(buf, cap, "{");
	if (with_id)
		n += (size_t)snprintf(buf + n, cap - n, "\"id\":42,");
	if (with_vec)
		n += (size_t)snprintf(buf + n, cap - n, "\"vector\":[1],");
	for (uint32_t i = 0; i < nf; i++)
		if ((int)i != skip)
			n += (size_t)snprintf(buf + n, cap - n, "\"f%u\":%u,", i, i);
	buf[n - 1] = '}';
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}

Test(jsonl, wide_schemas)
{
	char buf[4096];
	struct schema sc;

	for (uint32_t nf = 62; nf <= VDB_MAX_FIELDS; nf++) {
		struct rd d;
		wide_schema(&sc, nf);
		/* a complete record */
		wide_json(buf, sizeof(buf), nf, -1, 1, 1);
		rd_open(&d, FMT_JSONL, &sc, "w.jsonl", buf, strlen(buf));
		cr_expect_eq(rd_next(&d), VDB_OK, "%u fields, complete record: %s", nf, d.e.msg);
		if (d.b.n == 1) {
			cr_expect_eq(d.b.ids[0], 42);
			cr_expect_eq(d.b.cols[nf - 1].i64[0], nf - 1);
		}
		rd_close(&d);
		/* without its id */
		wide_json(buf, sizeof(buf), nf, -1, 0, 1);
		rd_open(&d, FMT_JSONL, &sc, "w.jsonl", buf, strlen(buf));
		int rc = rd_next(&d);
		cr_expect_eq(rc, VDB_EINPUT,
		             "%u fields: a record without \"id\" was accepted (id %lld)", nf,
		             d.b.n ? (long long)d.b.ids[0] : 0);
		rd_close(&d);
		/* without its vector */
		wide_json(buf, sizeof(buf), nf, -1, 1, 0);
		rd_open(&d, FMT_JSONL, &sc, "w.jsonl", buf, strlen(buf));
		rc = rd_next(&d);
		cr_expect_eq(rc, VDB_EINPUT, "%u fields: a record without \"vector\" was accepted",
		             nf);
		rd_close(&d);
		/* without its last field, or the field at bit 62 */
		for (int skip = 62; skip < (int)nf; skip++) {
			wide_json(buf, sizeof(buf), nf, skip, 1, 1);
			rd_open(&d, FMT_JSONL, &sc, "w.jsonl", buf, strlen(buf));
			rc = rd_next(&d);
			cr_expect_eq(rc, VDB_EINPUT,
			             "%u fields: a record without field f%d was accepted", nf,
			             skip);
			rd_close(&d);
		}
	}
}

Test(tsv, wide_schemas)
{
	char buf[8192];
	struct schema sc;

	for (uint32_t nf = 62; nf <= VDB_MAX_FIELDS; nf++) {
		struct rd d;
		size_t n = 0;
		wide_schema(&sc, nf);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "id\tvector");
		for (uint32_t i = 0; i < nf; i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\tf%u", i);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n42\t1");
		for (uint32_t i = 0; i < nf; i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\t%u", i);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n");
		rd_open(&d, FMT_TSV, &sc, "w.tsv", buf, n);
		cr_expect_eq(d.open_rc, VDB_OK, "%u fields: header refused: %s", nf, d.e.msg);
		if (d.open_rc == VDB_OK) {
			cr_expect_eq(rd_next(&d), VDB_OK, "%u fields: %s", nf, d.e.msg);
			if (d.b.n == 1)
				cr_expect_eq(d.b.ids[0], 42);
		}
		rd_close(&d);
		/* a header without "id" must be refused */
		n = (size_t)snprintf(buf, sizeof(buf), "vector");
		for (uint32_t i = 0; i < nf; i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\tf%u", i);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n");
		rd_open(&d, FMT_TSV, &sc, "w.tsv", buf, n);
		cr_expect_eq(d.open_rc, VDB_EINPUT, "%u fields: a header without id was accepted",
		             nf);
		rd_close(&d);
	}
	/* 67 columns: one more than id, vector and 64 fields */
	size_t n = (size_t)snprintf(buf, sizeof(buf), "id\tvector");
	for (uint32_t i = 0; i < VDB_MAX_FIELDS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\tf%u", i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\tf0\n");
	struct rd d;
	rd_open(&d, FMT_TSV, &sc, "w.tsv", buf, n);
	expect_bad(&d, d.open_rc, "w.tsv", 1, "header: too many columns", "67 columns");
	rd_close(&d);
}

/* ---- TSV ---- */

#define HDR "id\tvector\tn\tx\tf\ts\n"
#define TGOOD2 "2\t4,5,6\t8\t1.5\tfalse\tzz"

Test(tsv, good_records)
{
	const char *in = HDR "1\t1,2.5,-3e2\t7\t0.5\ttrue\tabc\n"
	                     "\n"
	                     "-9\t0,0x1p3,1e-3\t-9223372036854775808\t-1e300\t0\t\r\n"
	                     "3\t1,2,3\t+5\t0x1p-2\t1\ta\\tb\\\\\r\n"
	                     "4\t1,2,3\t 6\t7\tfalse\t\\n\\r\\t\\\\x\n"
	                     "5\t1,2,3\t9223372036854775807\t1e308\ttrue\t\xf0\x9f\x98\x80";
	struct rd d;
	const char *s;
	size_t l;

	rd_open(&d, FMT_TSV, &text_sc, "in.tsv", in, strlen(in));
	cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(rd_next(&d), VDB_OK, "record %d: %s", i, d.e.msg);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(d.b.n, 5u);
	cr_assert_eq(d.r.recno, 7u);

	cr_assert_eq(d.b.ids[0], 1);
	cr_assert_eq(d.b.vec[2], -300.0f);
	cr_assert_eq(d.b.cols[0].i64[0], 7);
	cr_assert_eq(d.b.cols[1].f64[0], 0.5);
	cr_assert_eq(d.b.cols[2].b[0], 1);
	s = row_string(&d.b, 3, 0, &l);
	cr_assert(l == 3 && memcmp(s, "abc", 3) == 0);

	cr_assert_eq(d.b.ids[1], -9);
	cr_assert_eq(d.b.vec[4], 8.0f);
	cr_assert_eq(d.b.cols[0].i64[1], INT64_MIN);
	cr_assert_eq(d.b.cols[2].b[1], 0);
	row_string(&d.b, 3, 1, &l);
	cr_assert_eq(l, 0u, "empty string (CR removed)");

	cr_assert_eq(d.b.cols[0].i64[2], 5);
	cr_assert_eq(d.b.cols[1].f64[2], 0.25);
	s = row_string(&d.b, 3, 2, &l);
	cr_assert(l == 4 && memcmp(s, "a\tb\\", 4) == 0, "escapes: %zu", l);

	cr_assert_eq(d.b.cols[0].i64[3], 6);
	s = row_string(&d.b, 3, 3, &l);
	cr_assert(l == 5 && memcmp(s, "\n\r\t\\x", 5) == 0, "max_len counts unescaped bytes");

	cr_assert_eq(d.b.cols[0].i64[4], INT64_MAX);
	s = row_string(&d.b, 3, 4, &l);
	cr_assert(l == 4 && memcmp(s, "\xf0\x9f\x98\x80", 4) == 0, "4-byte UTF-8");
	rd_close(&d);
}

/* a NUL byte is not UTF-8 text: TSV strings never hold one */
Test(tsv, nul_in_string)
{
	static const char in[] = HDR "1\t1,2,3\t7\t0.5\ttrue\ta\0b\n" TGOOD2 "\n";
	struct rd d;

	rd_open(&d, FMT_TSV, &text_sc, "in.tsv", in, sizeof(in) - 1);
	cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
	int rc = rd_next(&d);
	expect_bad(&d, rc, "in.tsv", 2, "field 's' is not UTF-8 text", "NUL");
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(d.b.ids[0], 2);
	rd_close(&d);
}

Test(tsv, columns_in_any_order)
{
	const char *in = "\n\ns\tf\tvector\tx\tid\tn\r\nq\ttrue\t1,2,3\t2.5\t77\t-4\r\n";
	struct rd d;
	size_t l;

	rd_open(&d, FMT_TSV, &text_sc, "o.tsv", in, strlen(in));
	cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(d.b.ids[0], 77);
	cr_assert_eq(d.b.cols[0].i64[0], -4);
	cr_assert_eq(d.b.cols[1].f64[0], 2.5);
	cr_assert_eq(d.b.vec[2], 3.0f);
	const char *s = row_string(&d.b, 3, 0, &l);
	cr_assert(l == 1 && s[0] == 'q');
	rd_close(&d);
}

static const struct bad_case tsv_bad[] = {
        {"1\t1,2\t7\t0.5\ttrue\tabc", "wrong dimension (got 2, want 3)"},
        {"1\t1,2,3,4\t7\t0.5\ttrue\tabc", "wrong dimension (got more than 3)"},
        {"1\t\t7\t0.5\ttrue\tabc", "wrong dimension (got 0, want 3)"},
        {"1\t1,nan,3\t7\t0.5\ttrue\tabc", "vector[1] is not a finite float32"},
        {"1\t1,2,inf\t7\t0.5\ttrue\tabc", "vector[2] is not a finite float32"},
        {"1\t1e39,2,3\t7\t0.5\ttrue\tabc", "vector[0] is not a finite float32"},
        {"1\t1,abc,3\t7\t0.5\ttrue\tabc", "vector[1] is not a finite float32"},
        {"1\t1,,3\t7\t0.5\ttrue\tabc", "vector[1] is not a finite float32"},
        {"1\t1,2,3x\t7\t0.5\ttrue\tabc", "vector[2] is not a finite float32"},
        {"x\t1,2,3\t7\t0.5\ttrue\tabc", "'x' is not an int64"},
        {"1.5\t1,2,3\t7\t0.5\ttrue\tabc", "'1.5' is not an int64"},
        {"\t1,2,3\t7\t0.5\ttrue\tabc", "is not an int64"},
        {"99999999999999999999\t1,2,3\t7\t0.5\ttrue\tabc", "is not an int64"},
        {"1\t1,2,3\t7.5\t0.5\ttrue\tabc", "'7.5' is not an int64"},
        {"1\t1,2,3\t\t0.5\ttrue\tabc", "is not an int64"},
        {"1\t1,2,3\t5 \t0.5\ttrue\tabc", "is not an int64"},
        {"1\t1,2,3\t0x10\t0.5\ttrue\tabc", "is not an int64"},
        {"1\t1,2,3\t7\tabc\ttrue\tabc", "field 'x' wants a finite double"},
        {"1\t1,2,3\t7\tnan\ttrue\tabc", "field 'x' wants a finite double"},
        {"1\t1,2,3\t7\t-inf\ttrue\tabc", "field 'x' wants a finite double"},
        {"1\t1,2,3\t7\t1e999\ttrue\tabc", "field 'x' wants a finite double"},
        {"1\t1,2,3\t7\t1e-320\ttrue\tabc", "field 'x' wants a finite double"},
        {"1\t1,2,3\t7\t\ttrue\tabc", "field 'x' wants a finite double"},
        {"1\t1,2,3\t7\t0.5x\ttrue\tabc", "field 'x' wants a finite double"},
        {"1\t1,2,3\t7\t0.5\tyes\tabc", "field 'f' wants true or false"},
        {"1\t1,2,3\t7\t0.5\tTRUE\tabc", "field 'f' wants true or false"},
        {"1\t1,2,3\t7\t0.5\t\tabc", "field 'f' wants true or false"},
        {"1\t1,2,3\t7\t0.5\t2\tabc", "field 'f' wants true or false"},
        {"1\t1,2,3\t7\t0.5\ttrue\tabcdef", "field 's' is 6 bytes, longer than its 5"},
        {"1\t1,2,3\t7\t0.5\ttrue\ta\\tbcde", "field 's' is 6 bytes, longer than its 5"},
        {"1\t1,2,3\t7\t0.5\ttrue\t\xff\xfe", "field 's' is not UTF-8 text"},
        {"1\t1,2,3\t7\t0.5\ttrue\tab\xc3", "field 's' is not UTF-8 text"},
        {"1\t1,2,3\t7\t0.5\ttrue\ta\xc0\x80", "field 's' is not UTF-8 text"},
        {"1\t1,2,3\t7\t0.5\ttrue\t\xe0\x80\x80", "field 's' is not UTF-8 text"},
        {"1\t1,2,3\t7\t0.5\ttrue\t\xed\xa0\x80", "field 's' is not UTF-8 text"},
        {"1\t1,2,3\t7\t0.5\ttrue\t\xf4\x90\x80\x80", "field 's' is not UTF-8 text"},
        {"1\t1,2,3\t7\t0.5\ttrue\t\x80", "field 's' is not UTF-8 text"},
        {"1\t1,2,3\t7\t0.5\ttrue\ta\\qb", "unknown escape \\q"},
        {"1\t1,2,3\t7\t0.5\ttrue\tab\\", "lone backslash at the end of a field"},
        {"1\t1,2,3\t7\t0.5\ttrue\tabc\textra", "more columns than the header's 6"},
        {"1\t1,2,3\t7\t0.5\ttrue\tabc\t", "more columns than the header's 6"},
        {"1\t1,2,3\t7", "3 columns, the header has 6"},
        {"1", "1 columns, the header has 6"},
};

Test(tsv, bad_records_then_good)
{
	char buf[1024];

	for (size_t i = 0; i < sizeof(tsv_bad) / sizeof(tsv_bad[0]); i++) {
		const struct bad_case *c = &tsv_bad[i];
		struct rd d;
		int rc;
		snprintf(buf, sizeof(buf), HDR "%s\n" TGOOD2 "\n", c->line);
		rd_open(&d, FMT_TSV, &text_sc, "in.tsv", buf, strlen(buf));
		cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
		rc = rd_next(&d);
		expect_bad(&d, rc, "in.tsv", 2, c->reason, "case %zu: %s", i, c->line);
		cr_expect_eq(d.b.n, 0u, "case %zu", i);
		cr_expect_eq(d.r.fatal, 0, "case %zu", i);
		rc = rd_next(&d);
		cr_expect_eq(rc, VDB_OK, "case %zu: the good line after it: %s", i, d.e.msg);
		if (rc == VDB_OK) {
			size_t l;
			const char *s = row_string(&d.b, 3, 0, &l);
			cr_expect_eq(d.b.ids[0], 2);
			cr_expect_eq(d.b.vec[1], 5.0f);
			cr_expect(l == 2 && memcmp(s, "zz", 2) == 0, "case %zu: string", i);
		}
		cr_expect_eq(rd_next(&d), REC_EOF);
		rd_close(&d);
	}
}

Test(tsv, bad_headers)
{
	struct {
		const char *in;
		int line;
		const char *reason;
	} cases[] = {
	        {"", -1, "h.tsv: empty input: no header line"},
	        {"\n  \n\t\n", -1, "h.tsv: empty input: no header line"},
	        {"id\tvector\tn\tx\tf\ts\tzz\n", 1, "header: unknown field 'zz'"},
	        {"id\tvector\tn\tn\tx\tf\ts\n", 1, "header: column 'n' twice"},
	        {"id\tid\tvector\tn\tx\tf\ts\n", 1, "header: column 'id' twice"},
	        {"vector\tn\tx\tf\ts\n", 1, "header: no \"id\" column"},
	        {"id\tn\tx\tf\ts\n", 1, "header: no \"vector\" column"},
	        {"id\tvector\tn\tx\tf\n", 1, "header: no column for field 's'"},
	        {"\n\nid\t\tvector\tn\tx\tf\ts\n", 3, "header: column 2 has no usable name"},
	        {"id\tvector\tn\tx\tf\ts\t\n", 1, "header: column 7 has no usable name"},
	        {"id vector n x f s\n", 1, "header: unknown field"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rd d;
		rd_open(&d, FMT_TSV, &text_sc, "h.tsv", cases[i].in, strlen(cases[i].in));
		if (cases[i].line < 0) { /* about the whole file: "NAME: reason" */
			cr_expect_eq(d.open_rc, VDB_EINPUT, "case %zu", i);
			cr_expect_str_eq(d.e.msg, cases[i].reason, "case %zu", i);
		} else {
			expect_bad(&d, d.open_rc, "h.tsv", cases[i].line, cases[i].reason,
			           "case %zu", i);
		}
		rd_close(&d);
	}

	struct rd d;
	/* "id" in an auto-id collection */
	struct schema sc = text_sc;
	sc.auto_id = 1;
	rd_open(&d, FMT_TSV, &sc, "h.tsv", HDR, strlen(HDR));
	expect_bad(&d, d.open_rc, "h.tsv", 1,
	           "header: \"id\" given, but the collection assigns ids", "auto id");
	rd_close(&d);
	const char *ok = "vector\tn\tx\tf\ts\n1,2,3\t7\t0.5\ttrue\tabc\n";
	rd_open(&d, FMT_TSV, &sc, "h.tsv", ok, strlen(ok));
	cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(d.b.ids[0], 0);
	rd_close(&d);
}

/* ---- fvecs ---- */

struct buf {
	unsigned char *p;
	size_t n, cap;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void
fvec(struct buf *b, int32_t d, const float *v, size_t nv)
{
	put(b, &d, 4);
	put(b, v, nv * 4);
}

static const float V1[3] = {1, 2, 3}, V2[3] = {-0.5f, 0, 1e-30f}, V3[3] = {7, 8, 9};

Test(fvecs, good_rows)
{
	struct buf in = {0};
	struct rd d;

	fvec(&in, 3, V1, 3);
	fvec(&in, 3, V2, 3);
	fvec(&in, 3, V3, 3);
	rd_open(&d, FMT_FVECS, &vec_sc, "in.fvecs", in.p, in.n);
	cr_assert_eq(d.open_rc, VDB_OK);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(d.b.n, 3u);
	cr_assert_eq(memcmp(d.b.vec, V1, 12), 0);
	cr_assert_eq(memcmp(d.b.vec + 3, V2, 12), 0);
	cr_assert_eq(memcmp(d.b.vec + 6, V3, 12), 0);
	cr_assert_eq(d.b.ids[0], 100);
	cr_assert_eq(d.b.ids[2], 102);
	cr_assert_eq(d.next_id, 103);
	rd_close(&d);
	free(in.p);

	/* empty input: no rows, no error */
	rd_open(&d, FMT_FVECS, &vec_sc, "e.fvecs", "", 0);
	cr_assert_eq(rd_next(&d), REC_EOF);
	rd_close(&d);
}

/* skippable errors: the row's id is used up, the next row is read */
Test(fvecs, skippable_errors)
{
	const float nan3[3] = {1, NAN, 3}, inf3[3] = {INFINITY, 1, 2}, two[2] = {1, 2};
	const float four[4] = {1, 2, 3, 4};
	struct {
		int32_t d;
		const float *v;
		size_t nv;
		const char *reason;
	} cases[] = {
	        {3, nan3, 3, "vector[1] is NaN"},
	        {3, inf3, 3, "vector[0] is infinite"},
	        {2, two, 2, "wrong dimension (got 2, want 3)"},
	        {4, four, 4, "wrong dimension (got 4, want 3)"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf in = {0};
		struct rd d;
		fvec(&in, 3, V1, 3);
		fvec(&in, cases[i].d, cases[i].v, cases[i].nv);
		fvec(&in, 3, V3, 3);
		rd_open(&d, FMT_FVECS, &vec_sc, "in.fvecs", in.p, in.n);
		cr_assert_eq(rd_next(&d), VDB_OK);
		int rc = rd_next(&d);
		expect_bad(&d, rc, "in.fvecs", 2, cases[i].reason, "case %zu", i);
		cr_expect_eq(d.r.fatal, 0, "case %zu", i);
		cr_expect_eq(d.r.rawlen, 4 + 4 * cases[i].nv, "case %zu: raw row", i);
		cr_expect_eq(rd_next(&d), VDB_OK, "case %zu: %s", i, d.e.msg);
		cr_expect_eq(rd_next(&d), REC_EOF);
		cr_expect_eq(d.b.n, 2u);
		cr_expect_eq(memcmp(d.b.vec + 3, V3, 12), 0, "case %zu", i);
		/* a row's id is its position plus the offset */
		cr_expect_eq(d.b.ids[1], 102, "case %zu: id %lld", i, (long long)d.b.ids[1]);
		rd_close(&d);
		free(in.p);
	}
}

/* fatal errors: the reader stops (rec_fatal) and returns EOF after */
Test(fvecs, fatal_errors)
{
	struct {
		size_t cut; /* bytes of the second row kept */
		int32_t d;
		const char *reason;
	} cases[] = {
	        {2, 3, "truncated row header"},
	        {3, 3, "truncated row header"},
	        {4, 3, "truncated row (4 of 16 bytes)"},
	        {15, 3, "truncated row (15 of 16 bytes)"},
	        {16, 0, "wrong dimension (got 0, want 3); cannot continue"},
	        {16, 1000000, "wrong dimension (got 1000000, want 3); cannot continue"},
	        {16, -1, "cannot continue"},
	        {16, 5, "wrong dimension (got 5, want 3); cannot continue"}, /* incomplete */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf in = {0};
		struct rd d;
		fvec(&in, 3, V1, 3);
		fvec(&in, cases[i].d, V2, 3);
		in.n = 16 + cases[i].cut; /* nothing after the damaged row */
		rd_open(&d, FMT_FVECS, &vec_sc, "in.fvecs", in.p, in.n);
		cr_assert_eq(rd_next(&d), VDB_OK);
		int rc = rd_next(&d);
		expect_bad(&d, rc, "in.fvecs", 2, cases[i].reason, "case %zu", i);
		cr_expect_eq(d.r.fatal, 1, "case %zu: not fatal", i);
		cr_expect_eq(rd_next(&d), REC_EOF, "case %zu", i);
		cr_expect_eq(d.b.n, 1u);
		rd_close(&d);
		free(in.p);
	}
}

Test(fvecs, refused_for_collections_with_fields)
{
	struct rd d;

	rd_open(&d, FMT_FVECS, &text_sc, "in.fvecs", "", 0);
	cr_assert_eq(d.open_rc, VDB_EINPUT);
	cr_assert(strstr(d.e.msg, "in.fvecs: fvecs rows hold only vectors") != NULL, "%s", d.e.msg);
	cr_assert(strstr(d.e.msg, "'n'") != NULL, "%s", d.e.msg);
	rd_close(&d);
	rd_open(&d, FMT_NPY, &text_sc, "in.npy", "", 0);
	cr_assert_eq(d.open_rc, VDB_EINPUT);
	cr_assert(strstr(d.e.msg, "in.npy: npy rows hold only vectors") != NULL, "%s", d.e.msg);
	rd_close(&d);
}

Test(fvecs, many_rows)
{
	const size_t N = 300000;
	struct buf in = {0};
	struct rd d;

	for (size_t i = 0; i < N; i++) {
		float v[3] = {(float)i, -(float)i, 0.5f};
		fvec(&in, 3, v, 3);
	}
	rd_open(&d, FMT_FVECS, &vec_sc, "big.fvecs", in.p, in.n);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(rd_next(&d), VDB_OK, "row %zu: %s", i, d.e.msg);
	cr_assert_eq(rd_next(&d), REC_EOF);
	for (size_t i = 0; i < N; i++) {
		cr_assert_eq(d.b.vec[3 * i], (float)i);
		cr_assert_eq(d.b.vec[3 * i + 1], -(float)i);
		cr_assert_eq(d.b.ids[i], 100 + (int64_t)i);
	}
	rd_close(&d);
	free(in.p);
}

/* ---- npy ---- */

/* npy_hdr: magic, version, header dict padded to 64 bytes */
static void
npy_hdr(struct buf *b, int ver, const char *dict)
{
	size_t pre = ver == 1 ? 10 : 12, dl = strlen(dict), hl = dl + 1;
	unsigned char v[4];

	while ((pre + hl) % 64)
		hl++;
	put(b, "\x93NUMPY", 6);
	v[0] = (unsigned char)ver;
	v[1] = 0;
	put(b, v, 2);
	if (ver == 1) {
		put_u16(v, (uint16_t)hl);
		put(b, v, 2);
	} else {
		put_u32(v, (uint32_t)hl);
		put(b, v, 4);
	}
	put(b, dict, dl);
	for (size_t i = dl; i + 1 < hl; i++)
		put(b, " ", 1);
	put(b, "\n", 1);
}

#define DICT(descr, rows) "{'descr': '" descr "', 'fortran_order': False, 'shape': (" rows ", 3), }"

Test(npy, good_f4_f8_versions)
{
	for (int ver = 1; ver <= 3; ver++) {
		struct buf in = {0};
		struct rd d;
		npy_hdr(&in, ver, DICT("<f4", "2"));
		put(&in, V1, 12);
		put(&in, V2, 12);
		rd_open(&d, FMT_NPY, &vec_sc, "in.npy", in.p, in.n);
		cr_assert_eq(d.open_rc, VDB_OK, "v%d: %s", ver, d.e.msg);
		cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
		cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
		cr_assert_eq(rd_next(&d), REC_EOF);
		cr_assert_eq(memcmp(d.b.vec, V1, 12), 0);
		cr_assert_eq(memcmp(d.b.vec + 3, V2, 12), 0);
		cr_assert_eq(d.b.ids[1], 101);
		rd_close(&d);
		free(in.p);
	}

	struct buf in = {0};
	struct rd d;
	const double d8[6] = {1, 2, 3, 0.1, -1e-300, 3.4028234663852886e38};
	npy_hdr(&in, 1, "{'descr':'<f8','fortran_order':False,'shape':(2,3)}");
	put(&in, d8, sizeof(d8));
	rd_open(&d, FMT_NPY, &vec_sc, "in.npy", in.p, in.n);
	cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(d.b.vec[3], 0.1f);
	cr_assert_eq(d.b.vec[4], -0.0f);
	cr_assert_eq(d.b.vec[5], FLT_MAX);
	rd_close(&d);
	free(in.p);

	/* zero rows */
	in = (struct buf){0};
	npy_hdr(&in, 1, DICT("<f4", "0"));
	rd_open(&d, FMT_NPY, &vec_sc, "in.npy", in.p, in.n);
	cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), REC_EOF);
	rd_close(&d);
	free(in.p);
}

Test(npy, bad_headers)
{
	struct {
		const char *dict; /* NULL: raw bytes below */
		const char *raw;
		size_t rawlen;
		const char *reason;
	} cases[] = {
	        {NULL, "", 0, "in.npy: not an npy file (bad magic)"},
	        {NULL, "\x93NUMP", 5, "in.npy: not an npy file (bad magic)"},
	        {NULL, "\x93NUMPZ\x01\x00\x10\x00", 10, "in.npy: not an npy file (bad magic)"},
	        {NULL, "PK\x03\x04 zip file, not npy", 22, "in.npy: not an npy file (bad magic)"},
	        {NULL, "\x93NUMPY\x04\x00\x10\x00", 10, "in.npy: npy version 4 unknown"},
	        {NULL, "\x93NUMPY\x01\x00\x40\x00{'descr'", 17, "in.npy: truncated npy header"},
	        {NULL, "\x93NUMPY\x02\x00\x00\x00\x20\x00", 12, "in.npy: npy header of"},
	        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", NULL, 0,
	         "in.npy: npy dtype '>f4'"},
	        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", NULL, 0,
	         "unsupported (want <f4 or <f8)"},
	        {"{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", NULL, 0,
	         "unsupported"},
	        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", NULL, 0,
	         "in.npy: npy in Fortran order is unsupported"},
	        {"{'descr': '<f4', 'shape': (2, 3), }", NULL, 0, "in.npy: malformed npy header"},
	        {"{'shape': (2, 3), 'fortran_order': False}", NULL, 0,
	         "in.npy: malformed npy header"},
	        {"{'fortran_order': False, 'shape': (2, 3), }", NULL, 0,
	         "in.npy: malformed npy header"},
	        {"{'descr': '<f4', 'fortran_order': False, }", NULL, 0,
	         "in.npy: npy shape must be (rows, dim)"},
	        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", NULL, 0,
	         "in.npy: npy shape must be (rows, dim)"},
	        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 1), }", NULL, 0,
	         "in.npy: npy shape must be (rows, dim)"},
	        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", NULL, 0,
	         "in.npy: npy shape must be (rows, dim)"},
	        {"{'descr': '<f4', 'fortran_order': False, 'shape': 6, }", NULL, 0,
	         "in.npy: npy shape must be (rows, dim)"},
	        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", NULL, 0,
	         "in.npy: wrong dimension (got 4, want 3)"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf in = {0};
		struct rd d;
		if (cases[i].dict) {
			npy_hdr(&in, 1, cases[i].dict);
			put(&in, V1, 12);
			put(&in, V2, 12);
		} else if (cases[i].rawlen) {
			put(&in, cases[i].raw, cases[i].rawlen);
		}
		rd_open(&d, FMT_NPY, &vec_sc, "in.npy", in.p, in.n);
		cr_expect_eq(d.open_rc, VDB_EINPUT, "case %zu: rc %d", i, d.open_rc);
		cr_expect(strstr(d.e.msg, cases[i].reason) != NULL, "case %zu: '%s' lacks '%s'", i,
		          d.e.msg, cases[i].reason);
		rd_close(&d);
		free(in.p);
	}
}

Test(npy, row_errors)
{
	const float nan3[3] = {1, 2, NAN};
	const double big8[3] = {1, 1e39, 2};
	struct buf in = {0};
	struct rd d;
	int rc;

	/* NaN: skipped, the next row is read */
	npy_hdr(&in, 1, DICT("<f4", "3"));
	put(&in, V1, 12);
	put(&in, nan3, 12);
	put(&in, V3, 12);
	rd_open(&d, FMT_NPY, &vec_sc, "in.npy", in.p, in.n);
	cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), VDB_OK);
	rc = rd_next(&d);
	expect_bad(&d, rc, "in.npy", 2, "vector[2] is NaN", "npy row");
	cr_assert_eq(d.r.fatal, 0);
	cr_assert_eq(rd_next(&d), VDB_OK, "%s", d.e.msg);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(d.b.n, 2u);
	cr_assert_eq(memcmp(d.b.vec + 3, V3, 12), 0);
	cr_assert_eq(d.b.ids[1], 102, "the NaN row used up its id");
	rd_close(&d);
	free(in.p);

	/* f8 beyond float32: infinite, skipped */
	in = (struct buf){0};
	npy_hdr(&in, 1, DICT("<f8", "1"));
	put(&in, big8, sizeof(big8));
	rd_open(&d, FMT_NPY, &vec_sc, "in.npy", in.p, in.n);
	cr_assert_eq(d.open_rc, VDB_OK, "%s", d.e.msg);
	rc = rd_next(&d);
	expect_bad(&d, rc, "in.npy", 1, "vector[1] is infinite", "npy row");
	cr_assert_eq(rd_next(&d), REC_EOF);
	rd_close(&d);
	free(in.p);

	/* truncated data: fatal */
	in = (struct buf){0};
	npy_hdr(&in, 1, DICT("<f4", "3"));
	put(&in, V1, 12);
	put(&in, V2, 7);
	rd_open(&d, FMT_NPY, &vec_sc, "in.npy", in.p, in.n);
	cr_assert_eq(rd_next(&d), VDB_OK);
	rc = rd_next(&d);
	expect_bad(&d, rc, "in.npy", 2, "truncated row (7 of 12 bytes; 2 rows missing)", "npy row");
	cr_assert_eq(d.r.fatal, 1);
	cr_assert_eq(rd_next(&d), REC_EOF);
	cr_assert_eq(d.b.n, 1u);
	rd_close(&d);
	free(in.p);

	/* rows missing altogether */
	in = (struct buf){0};
	npy_hdr(&in, 1, DICT("<f4", "3"));
	put(&in, V1, 12);
	rd_open(&d, FMT_NPY, &vec_sc, "in.npy", in.p, in.n);
	cr_assert_eq(rd_next(&d), VDB_OK);
	rc = rd_next(&d);
	expect_bad(&d, rc, "in.npy", 2, "truncated row (0 of 12 bytes", "npy row");
	cr_assert_eq(d.r.fatal, 1);
	rd_close(&d);
	free(in.p);

	/* bytes after the promised rows: fatal */
	in = (struct buf){0};
	npy_hdr(&in, 1, DICT("<f4", "1"));
	put(&in, V1, 12);
	put(&in, "xyz", 3);
	rd_open(&d, FMT_NPY, &vec_sc, "in.npy", in.p, in.n);
	cr_assert_eq(rd_next(&d), VDB_OK);
	rc = rd_next(&d);
	expect_bad(&d, rc, "in.npy", 2, "3 bytes after the last row the header promises",
	           "npy row");
	cr_assert_eq(d.r.fatal, 1);
	cr_assert_eq(rd_next(&d), REC_EOF);
	rd_close(&d);
	free(in.p);
}

/* ---- streams ---- */

Test(record, reads_from_a_pipe)
{
	const char *in = "{\"id\":1,\"vector\":[1,2,3]" OKF "}\n" GOOD2;
	struct rec_reader r;
	struct batch b;
	struct vdb_err e;
	int64_t next = 0;
	int p[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write(p[1], in, strlen(in)), (ssize_t)strlen(in));
	close(p[1]);
	batch_init(&b, &text_sc);
	cr_assert_eq(rec_open(&r, FMT_JSONL, &text_sc, p[0], "-", &next, &e), VDB_OK);
	cr_assert_eq(rec_next(&r, &b, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(rec_next(&r, &b, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(rec_next(&r, &b, &e), REC_EOF);
	cr_assert_eq(b.ids[1], 2);
	rec_close(&r);
	batch_free(&b);
	close(p[0]);
}

Test(record, linger_returns_idle)
{
	const char *l1 = "{\"id\":1,\"vector\":[1,2,3]" OKF "}\n";
	struct rec_reader r;
	struct batch b;
	struct vdb_err e;
	int64_t next = 0;
	int p[2];

	cr_assert_eq(pipe(p), 0);
	batch_init(&b, &text_sc);
	cr_assert_eq(rec_open(&r, FMT_JSONL, &text_sc, p[0], "-", &next, &e), VDB_OK);
	r.linger_ms = 20;
	r.pending = 1;
	cr_assert_eq(write(p[1], l1, strlen(l1)), (ssize_t)strlen(l1));
	cr_assert_eq(rec_next(&r, &b, &e), VDB_OK, "%s", e.msg);
	/* nothing more arrives: the caller hears about it instead of blocking */
	cr_assert_eq(rec_next(&r, &b, &e), REC_IDLE);
	cr_assert_eq(b.n, 1u);
	/* half a line, then the rest */
	cr_assert_eq(write(p[1], GOOD2, 10), 10);
	cr_assert_eq(rec_next(&r, &b, &e), REC_IDLE);
	cr_assert_eq(write(p[1], GOOD2 + 10, strlen(GOOD2) - 10), (ssize_t)strlen(GOOD2) - 10);
	cr_assert_eq(write(p[1], "\n", 1), 1);
	cr_assert_eq(rec_next(&r, &b, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.n, 2u);
	cr_assert_eq(b.ids[1], 2);
	close(p[1]);
	cr_assert_eq(rec_next(&r, &b, &e), REC_EOF);
	rec_close(&r);
	batch_free(&b);
	close(p[0]);
}

Test(record, format_names)
{
	int f = -1;

	cr_assert_eq(rec_format_parse("jsonl", &f), 0);
	cr_assert_eq(f, FMT_JSONL);
	cr_assert_eq(rec_format_parse("tsv", &f), 0);
	cr_assert_eq(f, FMT_TSV);
	cr_assert_eq(rec_format_parse("fvecs", &f), 0);
	cr_assert_eq(f, FMT_FVECS);
	cr_assert_eq(rec_format_parse("npy", &f), 0);
	cr_assert_eq(f, FMT_NPY);
	cr_assert_eq(rec_format_parse("json", &f), -1);
	cr_assert_eq(rec_format_parse("csv", &f), -1);
	cr_assert_eq(rec_format_parse("", &f), -1);
}
