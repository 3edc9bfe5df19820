/* filter.c: unit tests for lib/filter.c (formats/filter.md): every operator
 * and literal on a small fixed batch, exact integer/double comparison,
 * like patterns, the error table, a randomized comparison against a
 * row-at-a-time reference evaluator, and garbage that must never crash. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

/* ---- the fixed batch ---- */

enum { F_YEAR, F_PRICE, F_ACTIVE, F_TAG, F_TITLE, NF };

static void
mkschema(struct schema *s)
{
	static const struct {
		const char *name;
		int type;
	} fs[NF] = {{"year", FT_INT64},
	            {"price", FT_DOUBLE},
	            {"active", FT_BOOL},
	            {"tag", FT_STRING},
	            {"title", FT_STRING}};

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "c");
	s->dim = 2;
	s->nfields = NF;
	for (int i = 0; i < NF; i++) {
		snprintf(s->fields[i].name, sizeof(s->fields[i].name), "%s", fs[i].name);
		s->fields[i].type = fs[i].type;
		s->fields[i].max_len = fs[i].type == FT_STRING ? VDB_MAX_STRING : 0;
	}
}

struct row {
	int64_t id, year;
	double price;
	int active;
	const char *tag, *title;
};

#define P53 9007199254740992LL /* 2^53 */

static const struct row R[] = {
        {1, 1985, 9.5, 1, "rock", "Abbey"},
        {2, 1990, 10.0, 0, "jazz", "Blue Train"},
        {3, 1999, 2.5, 1, "rock%roll", "a_b"},
        {4, 2000, -0.0, 0, "", "100%"},
        {5, 2024, NAN, 1, "pop", "\\back"},
        {6, INT64_MIN, 1e300, 0, "r", "\xc3\xa9"},
        {7, INT64_MAX, -1e300, 1, "rocky", "x"},
        {8, P53 + 1, 9007199254740992.0, 0, "ROCK", "xyz"},
        {9, P53, 0.1, 1, "roc", ""},
        {10, -5, 3.0, 0, "jazz", "Train"},
};
#define NR (sizeof(R) / sizeof(R[0]))

static struct schema sc;
static struct batch B;

static void
put_row(struct batch *b, size_t r, const struct row *w)
{
	struct vdb_err e;

	b->ids[r] = w->id;
	b->ts[r] = 0;
	b->cols[F_YEAR].i64[r] = w->year;
	b->cols[F_PRICE].f64[r] = w->price;
	b->cols[F_ACTIVE].b[r] = (uint8_t)w->active;
	cr_assert_eq(batch_put_string(b, F_TAG, r, w->tag, strlen(w->tag), &e), VDB_OK);
	cr_assert_eq(batch_put_string(b, F_TITLE, r, w->title, strlen(w->title), &e), VDB_OK);
}

static void
setup(void)
{
	struct vdb_err e;

	mkschema(&sc);
	batch_init_scalars(&B, &sc);
	cr_assert_eq(batch_reserve(&B, NR, &e), VDB_OK);
	for (size_t r = 0; r < NR; r++)
		put_row(&B, r, &R[r]);
	B.n = NR;
}

static void
teardown(void)
{
	batch_free(&B);
}

TestSuite(filter, .init = setup, .fini = teardown);

/* sel: the ids of the rows of B that expr selects, "1 3 5" */
static const char *
sel(const char *expr)
{
	static char out[256];
	struct filter *f;
	struct vdb_err e = {0};
	uint8_t m[NR];
	size_t n = 0;

	cr_assert_eq(filter_parse(expr, &sc, &f, &e), VDB_OK, "'%s': %s", expr, e.msg);
	memset(m, 1, sizeof(m));
	cr_assert_eq(filter_eval(f, &B, 0, NR, m, &e), VDB_OK, "%s", e.msg);
	out[0] = '\0';
	for (size_t r = 0; r < NR; r++)
		if (m[r])
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%lld", n ? " " : "",
			                      (long long)R[r].id);
	filter_free(f);
	return out;
}

#define SEL(expr, want) cr_expect_str_eq(sel(expr), want, "%s", expr)

Test(filter, int_comparisons)
{
	SEL("year > 1990", "3 4 5 7 8 9");
	SEL("1990 < year", "3 4 5 7 8 9");
	SEL("year >= 1990", "2 3 4 5 7 8 9");
	SEL("year < 1990", "1 6 10");
	SEL("year <= 1990", "1 2 6 10");
	SEL("year == 1990", "2");
	SEL("1990 == year", "2");
	SEL("year != 1990", "1 3 4 5 6 7 8 9 10");
	SEL("year == -5", "10");
	SEL("year==+1985", "1");
	SEL("id >= 9", "9 10");
	SEL("id == 3 || id == 4", "3 4");
	SEL("3 >= id", "1 2 3");
}

Test(filter, int_extremes)
{
	SEL("year == -9223372036854775808", "6");
	SEL("year <= -9223372036854775808", "6");
	SEL("year < -9223372036854775808", "");
	SEL("year > -9223372036854775808", "1 2 3 4 5 7 8 9 10");
	SEL("year == 9223372036854775807", "7");
	SEL("year > 9223372036854775807", "");
	SEL("year >= 9223372036854775807", "7");
	SEL("year != 9223372036854775807", "1 2 3 4 5 6 8 9 10");
	/* double literals beyond the int64 range */
	SEL("year < 9223372036854775808.0", "1 2 3 4 5 6 7 8 9 10");
	SEL("year >= 9223372036854775808.0", "");
	SEL("year > -9223372036854775808.0", "1 2 3 4 5 7 8 9 10");
	SEL("year >= -9223372036854775808.0", "1 2 3 4 5 6 7 8 9 10");
	SEL("year < -9223372036854775808.0", "");
	SEL("year < -1e300", "");
	SEL("year > -1e300", "1 2 3 4 5 6 7 8 9 10");
	SEL("year < 1e300", "1 2 3 4 5 6 7 8 9 10");
	SEL("year == 1e300", "");
	SEL("year != 1e300", "1 2 3 4 5 6 7 8 9 10");
}

Test(filter, int_against_double)
{
	SEL("year < 1999.5", "1 2 3 6 10");
	SEL("year <= 1999.5", "1 2 3 6 10");
	SEL("year > 1999.5", "4 5 7 8 9");
	SEL("year >= 1999.5", "4 5 7 8 9");
	SEL("year == 1999.0", "3");
	SEL("year == 1999.5", "");
	SEL("year != 1999.5", "1 2 3 4 5 6 7 8 9 10");
	SEL("year < -4.5", "6 10");
	SEL("year > -5.5 and year < -4.5", "10");
	SEL("year >= 1.985e3 && year <= 1985", "1");
	/* 2^53 + 1 has no double: compared exactly, not through a double */
	SEL("year == 9007199254740993", "8");
	SEL("year == 9007199254740992", "9");
	SEL("year > 9007199254740992", "7 8");
	/* ...while this literal is a double, the nearest one: 2^53 */
	SEL("year == 9007199254740993.0", "9");
	SEL("year > 9007199254740993.0", "7 8");
	SEL("year >= 9007199254740992.0", "7 8 9");
	SEL("year < 9007199254740994.0", "1 2 3 4 5 6 8 9 10");
	SEL("year in [9007199254740993]", "8");
	SEL("year in [9007199254740993.0, 1999.5, 1985e0]", "1 9");
}

Test(filter, double_comparisons)
{
	SEL("price > 2.5", "1 2 6 8 10");
	SEL("price >= 2.5", "1 2 3 6 8 10");
	SEL("price < 2.5", "4 7 9");
	SEL("price == 10", "2");
	SEL("price == 10.0", "2");
	SEL("price == 0", "4"); /* -0.0 == 0 */
	SEL("price == -0.0", "4");
	SEL("price > 0", "1 2 3 6 8 9 10");
	SEL("price < 0", "7");
	SEL("price >= -0.0 and price <= 0.0", "4");
	SEL(".1 == price", "9");
	SEL("price < 1E-3", "4 7");
	SEL("-2.5E+10 > price", "7");
	SEL("2.5 <= price < 10", "1 3 10");
	SEL("10 >= price > 2.5", "1 2 10");
	SEL("price in [2.5, 3, 1e300]", "3 6 10");
	SEL("price not in [2.5, 3, 1e300]", "1 2 4 5 7 8 9");
	/* an int literal compared exactly: 2^53 + 1 lies between doubles */
	SEL("price == 9007199254740992", "8");
	SEL("price == 9007199254740993", "");
	SEL("price < 9007199254740993", "1 2 3 4 7 8 9 10");
	SEL("price > 9007199254740993", "6");
	SEL("price >= 9007199254740991", "6 8");
	SEL("price in [9007199254740993]", "");
}

Test(filter, nan)
{
	/* row 5 holds NaN: no comparison holds but != and its negations */
	SEL("price != 10", "1 3 4 5 6 7 8 9 10");
	SEL("price < 10 or price >= 10", "1 2 3 4 6 7 8 9 10");
	SEL("not (price < 10)", "2 5 6 8");
	SEL("not price < 10", "2 5 6 8");
}

Test(filter, bools)
{
	SEL("active", "1 3 5 7 9");
	SEL("not active", "2 4 6 8 10");
	SEL("!active", "2 4 6 8 10");
	SEL("! active", "2 4 6 8 10");
	SEL("active == true", "1 3 5 7 9");
	SEL("active == True", "1 3 5 7 9");
	SEL("active != TRUE", "2 4 6 8 10");
	SEL("false == active", "2 4 6 8 10");
	SEL("false != active", "1 3 5 7 9");
	SEL("active in [true]", "1 3 5 7 9");
	SEL("active in [false, ]", "2 4 6 8 10");
	SEL("active in [true, false]", "1 2 3 4 5 6 7 8 9 10");
	SEL("active in []", "");
	SEL("active not in []", "1 2 3 4 5 6 7 8 9 10");
	SEL("active not in [false]", "1 3 5 7 9");
	SEL("true", "1 2 3 4 5 6 7 8 9 10");
	SEL("false", "");
	SEL("TRUE and active", "1 3 5 7 9");
	SEL("false or active", "1 3 5 7 9");
	SEL("not false", "1 2 3 4 5 6 7 8 9 10");
	SEL("not not active", "1 3 5 7 9");
	SEL("not not not active", "2 4 6 8 10");
}

Test(filter, strings)
{
	SEL("tag == \"rock\"", "1");
	SEL("tag == 'rock'", "1");
	SEL("'rock' == tag", "1");
	SEL("tag != 'rock'", "2 3 4 5 6 7 8 9 10");
	SEL("tag == ''", "4");
	SEL("tag < 'jazz'", "4 8"); /* "" and "ROCK" sort first */
	SEL("tag <= 'jazz'", "2 4 8 10");
	SEL("tag > 'rock'", "3 7"); /* "rock%roll", "rocky": longer */
	SEL("tag >= 'roc'", "1 3 7 9"); /* not "r": shorter */
	SEL("'r' <= tag < 'rock'", "6 9");
	SEL("'rocky' >= tag > 'rock'", "3 7");
	SEL("tag in ['rock', 'pop', 'nope', 'pop']", "1 5");
	SEL("tag not in ['rock', 'pop']", "2 3 4 6 7 8 9 10");
	SEL("tag in []", "");
	SEL("tag in ['']", "4");
	SEL("title == '\\u00e9'", "6");
	SEL("title == '\\u00E9'", "6");
	SEL("title == '\xc3\xa9'", "6");
	SEL("tag == 'rock\\u0025roll'", "3");
	SEL("title == '\\\\back'", "5");
	SEL("title == \"\\\\back\"", "5");
	SEL("title == 'Blue\\u0020Train'", "2");
	SEL("title == \"a_b\"", "3");
	SEL("title == 'a\\_b'", ""); /* \_ stays two bytes outside like */
	SEL("tag == \"it's\" or tag == 'say \"hi\"' or tag == 'it\\'s' or tag == \"\\\"\"", "");
}

Test(filter, like)
{
	SEL("tag like 'rock%'", "1 3 7");
	SEL("tag like '%ck'", "1");
	SEL("tag like '%oc%'", "1 3 7 9");
	SEL("tag like 'r_ck'", "1");
	SEL("tag like 'r%k%'", "1 3 7");
	SEL("tag like 'r%'", "1 3 6 7 9");
	SEL("tag like 'r'", "6");
	SEL("tag like ''", "4");
	SEL("tag like '%'", "1 2 3 4 5 6 7 8 9 10");
	SEL("tag like '%%'", "1 2 3 4 5 6 7 8 9 10");
	SEL("tag like '_%'", "1 2 3 5 6 7 8 9 10");
	SEL("tag like '___'", "5 9");
	SEL("tag like '%_'", "1 2 3 5 6 7 8 9 10");
	SEL("tag like 'ROCK'", "8");
	SEL("tag like 'j%z'", "2 10");
	SEL("tag like 'j%z%z'", "2 10");
	SEL("tag like 'j%zz%z'", "");
	SEL("tag like 'r%o%c%k%'", "1 3 7");
	SEL("tag like '%o_k%'", "1 3 7");
	SEL("tag like 'rock\\%roll'", "3"); /* \% in a string: two bytes */
	SEL("tag like 'rock\\\\%roll'", "3"); /* \\% decodes to \% too */
	SEL("tag like 'rock%roll'", "3");
	SEL("tag like 'rock\\%'", "");
	SEL("title like '100\\%'", "4");
	SEL("title like '100%'", "4");
	SEL("title like 'a\\_b'", "3");
	SEL("title like 'a_b'", "3");
	SEL("title like '\\\\\\\\back'", "5"); /* pattern \\back: a backslash */
	SEL("title like '_'", "7"); /* one byte; é is two */
	SEL("title like '__'", "6");
	SEL("title like '%Train'", "2 10");
	SEL("title like '%rain%'", "2 10");
	SEL("title like ''", "9");
	SEL("title like '%' and not title like '_%'", "9");
	SEL("tag not in ['x'] and not (tag like '%o%')", "2 4 6 8 10");
	SEL("title LIKE 'x%'", "7 8");
}

Test(filter, precedence_and_keywords)
{
	SEL("active or year > 2000 and price < 5", "1 3 5 7 9");
	SEL("(active or year > 2000) and price < 5", "3 7 9");
	SEL("not active and year > 2000", "8");
	SEL("not (active and year > 2000)", "1 2 3 4 6 8 10");
	SEL("not year > 2000", "1 2 3 4 6 10");
	SEL("active AND year > 2000", "5 7 9");
	SEL("active And year > 2000 Or id == 2", "2 5 7 9");
	SEL("active && year > 2000 || id == 2", "2 5 7 9");
	SEL("NOT active", "2 4 6 8 10");
	SEL("year In [1985, 1990]", "1 2");
	SEL("year NOT IN [1985, 1990]", "3 4 5 6 7 8 9 10");
	SEL("year not  in\t[1985,1990,]", "3 4 5 6 7 8 9 10");
	SEL("(((year == 1985)))", "1");
	SEL("\n year\r\n==\t1985 ", "1");
	SEL("id == 1 or id == 2 or id == 3 and active", "1 2 3");
	SEL("(id == 1 or id == 2 or id == 3) and active", "1 3");
	SEL("id > 1 and id < 9 and id != 5 and not active", "2 4 6 8");
	SEL("((id > 1 and id < 9) and (id != 5 and not active))", "2 4 6 8");
	SEL("(id < 3 or id > 8) or (id == 5)", "1 2 5 9 10");
}

Test(filter, nesting_limit)
{
	char buf[512];
	size_t n = 0;

	for (int i = 0; i < FILTER_MAX_DEPTH; i++)
		buf[n++] = '(';
	n += (size_t)sprintf(buf + n, "id == 1");
	for (int i = 0; i < FILTER_MAX_DEPTH; i++)
		buf[n++] = ')';
	buf[n] = '\0';
	SEL(buf, "1");
	n = 0;
	for (int i = 0; i < FILTER_MAX_DEPTH; i++)
		n += (size_t)sprintf(buf + n, "not ");
	sprintf(buf + n, "active");
	SEL(buf, "1 3 5 7 9");
}

/* ---- evaluation details ---- */

Test(filter, free_null_and_eval_bounds)
{
	struct filter *f;
	struct vdb_err e;
	uint8_t m[NR + 1];

	filter_free(NULL);
	cr_assert_eq(filter_parse("id > 0", &sc, &f, &e), VDB_OK);
	cr_assert_eq(filter_eval(f, &B, 0, 0, m, &e), VDB_OK);
	cr_assert_eq(filter_eval(f, &B, NR, 0, m, &e), VDB_OK);
	cr_assert_eq(filter_eval(f, &B, 1, NR, m, &e), VDB_EINTERNAL);
	cr_assert_eq(filter_eval(f, &B, NR + 1, 0, m, &e), VDB_EINTERNAL);
	filter_free(f);
}

Test(filter, mask_narrowed_only)
{
	struct filter *f;
	struct vdb_err e;
	uint8_t m[NR];

	cr_assert_eq(filter_parse("active or id == 2", &sc, &f, &e), VDB_OK);
	for (size_t r = 0; r < NR; r++)
		m[r] = (uint8_t)(r % 3 ? 7 : 0); /* any non-zero byte is set */
	cr_assert_eq(filter_eval(f, &B, 0, NR, m, &e), VDB_OK);
	for (size_t r = 0; r < NR; r++) {
		int want = (r % 3) && (R[r].active || R[r].id == 2);
		cr_expect_eq(m[r], want ? 7 : 0, "row %zu", r);
	}
	/* a sub-range: row from + i */
	memset(m, 1, sizeof(m));
	cr_assert_eq(filter_eval(f, &B, 4, 3, m, &e), VDB_OK);
	cr_expect(m[0] && !m[1] && m[2] && m[3] == 1);
	filter_free(f);
}

Test(filter, schema_mismatch)
{
	struct schema other = sc;
	struct batch b2;
	struct filter *f;
	struct vdb_err e;
	uint8_t m[1] = {1};

	other.fields[F_PRICE].type = FT_INT64;
	batch_init_scalars(&b2, &other);
	cr_assert_eq(batch_reserve(&b2, 1, &e), VDB_OK);
	b2.n = 1;
	b2.ids[0] = 1;
	b2.cols[F_PRICE].i64[0] = 0;
	cr_assert_eq(filter_parse("price > 1.5", &sc, &f, &e), VDB_OK);
	cr_assert_eq(filter_eval(f, &b2, 0, 1, m, &e), VDB_EINTERNAL);
	filter_free(f);
	batch_free(&b2);
}

Test(filter, clone_is_independent)
{
	struct filter *f, *g;
	struct vdb_err e;
	uint8_t m[NR];

	cr_assert_eq(filter_parse("tag in ['rock', 'pop'] or (year in [1990, -5] and "
	                          "title like '%Train') or price in [0.1]",
	                          &sc, &f, &e),
	             VDB_OK, "%s", e.msg);
	cr_assert_eq(filter_clone(f, &g, &e), VDB_OK);
	filter_free(f);
	memset(m, 1, sizeof(m));
	cr_assert_eq(filter_eval(g, &B, 0, NR, m, &e), VDB_OK);
	for (size_t r = 0; r < NR; r++)
		cr_expect_eq(m[r],
		             (uint8_t)(R[r].id == 1 || R[r].id == 2 || R[r].id == 5 ||
		                       R[r].id == 9 || R[r].id == 10),
		             "row %zu", r);
	filter_free(g);
}

/* a batch of n rows with year = id = row and tag = decimal row */
static void
counting_batch(struct batch *b, size_t n)
{
	struct vdb_err e;
	char s[32];

	batch_init_scalars(b, &sc);
	cr_assert_eq(batch_reserve(b, n, &e), VDB_OK);
	for (size_t r = 0; r < n; r++) {
		int l = snprintf(s, sizeof(s), "%zu", r);
		b->ids[r] = (int64_t)r;
		b->cols[F_YEAR].i64[r] = (int64_t)r;
		b->cols[F_PRICE].f64[r] = (double)r / 2;
		b->cols[F_ACTIVE].b[r] = (uint8_t)(r & 1);
		cr_assert_eq(batch_put_string(b, F_TAG, r, s, (size_t)l, &e), VDB_OK);
		cr_assert_eq(batch_put_string(b, F_TITLE, r, "", 0, &e), VDB_OK);
	}
	b->n = n;
}

Test(filter, large_in_lists, .timeout = 30)
{
	size_t n = 100000, cap = 80000, len = 0, want = 0;
	char *x = malloc(cap), *y = malloc(cap);
	struct batch b;
	struct filter *f, *g;
	struct vdb_err e;
	uint8_t *m = malloc(n), *m2 = malloc(n);

	counting_batch(&b, n);
	/* every 7th number below 70,000 (10,000 elements), in descending order */
	len = (size_t)sprintf(x, "year in [");
	for (int k = 9999; k >= 0; k--)
		len += (size_t)sprintf(x + len, "%d%s", k * 7, k ? "," : "]");
	cr_assert_lt(len, (size_t)FILTER_MAX_LEN);
	len = (size_t)sprintf(y, "tag in [");
	for (int k = 0; k < 6000; k++)
		len += (size_t)sprintf(y + len, "'%d'%s", k * 11, k < 5999 ? "," : "]");
	cr_assert_lt(len, (size_t)FILTER_MAX_LEN);
	cr_assert_eq(filter_parse(x, &sc, &f, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(filter_parse(y, &sc, &g, &e), VDB_OK, "%s", e.msg);
	for (int rep = 0; rep < 10; rep++) {
		memset(m, 1, n);
		memset(m2, 1, n);
		cr_assert_eq(filter_eval(f, &b, 0, n, m, &e), VDB_OK);
		cr_assert_eq(filter_eval(g, &b, 0, n, m2, &e), VDB_OK);
	}
	for (size_t r = 0; r < n; r++) {
		if (m[r] != (r % 7 == 0 && r < 70000))
			cr_assert_fail("year in: row %zu", r);
		if (m2[r] != (r % 11 == 0 && r < 66000))
			cr_assert_fail("tag in: row %zu", r);
		want += m[r];
	}
	cr_assert_eq(want, 10000u);
	filter_free(f);
	filter_free(g);
	batch_free(&b);
	free(x);
	free(y);
	free(m);
	free(m2);
}

Test(filter, chunks_and_offsets)
{
	size_t n = 5000;
	struct batch b;
	struct filter *f;
	struct vdb_err e;
	uint8_t *m = malloc(n);

	counting_batch(&b, n);
	cr_assert_eq(filter_parse("(id >= 1000 and id < 3100 and not active) or tag like '%77'",
	                          &sc, &f, &e),
	             VDB_OK, "%s", e.msg);
	for (size_t from = 0; from < 3000; from += 999) {
		size_t cnt = n - from - from / 3;
		memset(m, 1, n);
		for (size_t i = 0; i < cnt; i += 5)
			m[i] = 0;
		cr_assert_eq(filter_eval(f, &b, from, cnt, m, &e), VDB_OK);
		for (size_t i = 0; i < cnt; i++) {
			size_t r = from + i;
			int want = i % 5 != 0 && ((r >= 1000 && r < 3100 && !(r & 1)) ||
			                          (r >= 77 && r % 100 == 77));
			if (m[i] != want)
				cr_assert_fail("from %zu row %zu: %d", from, r, m[i]);
		}
	}
	filter_free(f);
	batch_free(&b);
	free(m);
}

/* ---- errors ---- */

static const struct {
	const char *expr, *prefix, *text;
} bad[] = {
        {"", "column 1: ", "empty expression"},
        {"  \t ", "column 1: ", "empty expression"},
        {"yaer > 5", "column 1: ", "unknown field 'yaer'"},
        {"Year > 5", "column 1: ", "unknown field 'Year'"},
        {"_x > 1", "column 1: ", "unknown field '_x'"},
        {"vector > 1", "column 1: ", "field 'vector' cannot be filtered"},
        {"tag == 5", "column 8: ", "cannot compare string field 'tag' with a number"},
        {"tag == true", "column 8: ", "cannot compare string field 'tag' with a bool"},
        {"5 < tag", "column 1: ", "cannot compare string field 'tag' with a number"},
        {"year == 'x'", "column 9: ", "cannot compare int64 field 'year' with a string"},
        {"id == 'x'", "column 7: ", "cannot compare int64 field 'id' with a string"},
        {"price > false", "column 9: ", "cannot compare double field 'price' with a bool"},
        {"active == 1", "column 11: ", "cannot compare bool field 'active' with a number"},
        {"active > true", "column 8: ", "bool field 'active' can only be compared with == or !="},
        {"true < active", "column 6: ", "can only be compared with == or !="},
        {"false < active < true", "column 7: ", "can only be compared with == or !="},
        {"(year > 5", "column 10: ", "expected ')' but found end of expression"},
        {"((year > 5) and active", "column 23: ", "expected ')' but found end of expression"},
        {"year > 5)", "column 9: ", "unmatched ')'"},
        {"year >", "column 7: ", "expected a value but found end of expression"},
        {"year > price", "column 8: ", "expected a value but found 'price'"},
        {"year > 'x", "column 8: ", "unterminated string"},
        {"tag == \"abc", "column 8: ", "unterminated string"},
        {"tag == 'ab\\", "column 8: ", "unterminated string"},
        {"year = 5", "column 6: ", "unexpected '='"},
        {"year > 5 & active", "column 10: ", "unexpected '&'"},
        {"year > 5 | active", "column 10: ", "unexpected '|'"},
        {"year > 5 and", "column 13: ", "expected a condition but found end of expression"},
        {"and", "column 1: ", "expected a condition but found 'and'"},
        {"()", "column 2: ", "expected a condition but found ')'"},
        {"not", "column 4: ", "expected a condition"},
        {"year", "column 5: ", "expected a comparison, 'in' or 'like' after int64 field 'year'"},
        {"tag and active", "column 5: ", "after string field 'tag' but found 'and'"},
        {"year like 'a%'", "column 6: ", "like needs a string field, but 'year' is int64"},
        {"id like 'a%'", "column 4: ", "like needs a string field, but 'id' is int64"},
        {"tag like 5", "column 10: ", "expected a string pattern but found '5'"},
        {"tag like 'a\\\\'", "column 10: ", "like pattern ends in a lone backslash"},
        {"year in [1, 'a']", "column 13: ", "cannot compare int64 field 'year' with a string"},
        {"tag in ['a', 2]", "column 14: ", "with a number"},
        {"active in [1]", "column 12: ", "with a number"},
        {"year in [1 2]", "column 12: ", "expected ',' or ']' but found '2'"},
        {"year in [1,", "column 12: ", "expected a value but found end of expression"},
        {"year in [,]", "column 10: ", "expected a value but found ','"},
        {"year in [year]", "column 10: ", "expected a value but found 'year'"},
        {"year in 1", "column 9: ", "expected '[' but found '1'"},
        {"year not like 'x'", "column 10: ", "expected 'in' after 'not' but found 'like'"},
        {"1 < year > 5", "column 10: ", "same direction"},
        {"1 <= year >= 5", "column 11: ", "same direction"},
        {"year > 5 < 7", "column 10: ", "comparisons do not chain"},
        {"(year > 5 < 7)", "column 11: ", "comparisons do not chain"},
        {"1 == year < 5", "column 11: ", "comparisons do not chain"},
        {"1 < year == 5", "column 10: ", "comparisons do not chain"},
        {"5", "column 2: ", "expected a comparison operator but found end of expression"},
        {"'x'", "column 4: ", "expected a comparison operator"},
        {"5 < 6", "column 5: ", "expected a field but found '6'"},
        {"true == false", "column 9: ", "expected a field but found 'false'"},
        {"1 < year < active", "column 12: ", "expected a value but found 'active'"},
        {"year > 5 active", "column 10: ", "expected 'and' or 'or' but found 'active'"},
        {"year > 9223372036854775808", "column 8: ", "out of the int64 range"},
        {"year > -9223372036854775809", "column 8: ", "out of the int64 range"},
        {"year > 99999999999999999999999", "column 8: ", "out of the int64 range"},
        {"price > 1e999", "column 9: ", "'1e999' is out of the double range"},
        {"price > -1.8e308", "column 9: ", "out of the double range"},
        {"year > 007", "column 8: ", "leading zeros are not allowed in '007'"},
        {"year > -00", "column 8: ", "leading zeros"},
        {"year > 0x10", "column 8: ", "malformed number '0x10'"},
        {"year > 1e", "column 8: ", "malformed number '1e'"},
        {"year > 1e+", "column 8: ", "malformed number '1e+'"},
        {"year > 5abc", "column 8: ", "malformed number '5abc'"},
        {"year > 1.2.3", "column 8: ", "malformed number '1.2.3'"},
        {"year > - 5", "column 8: ", "unexpected character '-'"},
        {"year > inf", "column 8: ", "expected a value but found 'inf'"},
        {"year > nan", "column 8: ", "expected a value but found 'nan'"},
        {"tag == 'a\\q'", "column 10: ", "unknown escape '\\q'"},
        {"tag == 'a\\x41'", "column 10: ", "unknown escape '\\x'"},
        {"tag == '\\u12'", "column 9: ", "\\u needs four hex digits"},
        {"tag == '\\u12g4'", "column 9: ", "\\u needs four hex digits"},
        {"tag == '\\u0000'", "column 9: ", "\\u0000 is not allowed"},
        {"tag == '\\uD83D\\uDE00'", "column 9: ", "surrogate \\uD83D"},
        {"tag == '\xff'", "column 9: ", "not valid UTF-8"},
        {"tag == 'ab\xc3'", "column 11: ", "not valid UTF-8"},
        {"tag == '\xc0\xaf'", "column 9: ", "not valid UTF-8"}, /* overlong */
        {"tag == '\xed\xa0\x80'", "column 9: ", "not valid UTF-8"}, /* surrogate */
        {"year # 5", "column 6: ", "unexpected character '#'"},
        {"year > 5 \x80", "column 10: ", "unexpected byte 0x80"},
        {"y\xc3\xa9"
         "ar > 5",
         "column 2: ", "unexpected byte 0xC3"},
        {"year > 5 and and", "column 14: ", "expected a condition but found 'and'"},
        {"year >> 5", "column 7: ", "expected a value but found '>'"},
        {"year =< 5", "column 6: ", "unexpected '='"},
        {"id in [1] in [2]", "column 11: ", "expected 'and' or 'or' but found 'in'"},
};

Test(filter, errors)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct filter *f = (struct filter *)&f;
		struct vdb_err e = {0};
		int rc = filter_parse(bad[i].expr, &sc, &f, &e);
		cr_expect_eq(rc, VDB_EINPUT, "'%s' gave %d", bad[i].expr, rc);
		cr_expect_null(f, "'%s'", bad[i].expr);
		cr_expect_eq(strncmp(e.msg, bad[i].prefix, strlen(bad[i].prefix)), 0,
		             "'%s': '%s' does not start '%s'", bad[i].expr, e.msg, bad[i].prefix);
		cr_expect(strstr(e.msg, bad[i].text) != NULL, "'%s': '%s' lacks '%s'", bad[i].expr,
		          e.msg, bad[i].text);
		filter_free(rc == VDB_OK ? f : NULL);
	}
}

Test(filter, limit_errors)
{
	size_t big = FILTER_MAX_LEN + 1;
	char *s = malloc(big + 64), want[64];
	struct filter *f;
	struct vdb_err e;
	size_t n = 0;

	/* one byte over the length limit (the same expression one shorter parses) */
	memset(s, ' ', big);
	memcpy(s, "id > 1", 6);
	s[big] = '\0';
	cr_assert_eq(filter_parse(s, &sc, &f, &e), VDB_EINPUT);
	snprintf(want, sizeof(want), "column %u: expression longer than %u bytes",
	         FILTER_MAX_LEN + 1, FILTER_MAX_LEN);
	cr_expect_str_eq(e.msg, want);
	s[big - 1] = '\0';
	cr_assert_eq(filter_parse(s, &sc, &f, &e), VDB_OK, "%s", e.msg);
	filter_free(f);

	/* nesting: the 65th '(' or 'not' is refused where it stands */
	for (int i = 0; i <= FILTER_MAX_DEPTH; i++)
		s[n++] = '(';
	sprintf(s + n, "active)");
	cr_assert_eq(filter_parse(s, &sc, &f, &e), VDB_EINPUT);
	cr_expect_str_eq(e.msg, "column 65: expression nested deeper than 64");
	n = 0;
	for (int i = 0; i <= FILTER_MAX_DEPTH; i++)
		n += (size_t)sprintf(s + n, "not ");
	sprintf(s + n, "active");
	cr_assert_eq(filter_parse(s, &sc, &f, &e), VDB_EINPUT);
	cr_expect_str_eq(e.msg, "column 257: expression nested deeper than 64");
	n = 0;
	for (int i = 0; i < 40; i++)
		n += (size_t)sprintf(s + n, "(not ");
	sprintf(s + n, "active");
	cr_assert_eq(filter_parse(s, &sc, &f, &e), VDB_EINPUT);
	cr_expect_str_eq(e.msg, "column 161: expression nested deeper than 64");
	/* a deep tree of ands and ors within the limit */
	n = 0;
	for (int i = 0; i < 32; i++)
		n += (size_t)sprintf(s + n, "(id == %d or (id > 0 and ", i);
	n += (size_t)sprintf(s + n, "active");
	for (int i = 0; i < 32; i++)
		n += (size_t)sprintf(s + n, "))");
	cr_assert_eq(filter_parse(s, &sc, &f, &e), VDB_OK, "%s", e.msg);
	uint8_t m[NR];
	memset(m, 1, sizeof(m));
	cr_assert_eq(filter_eval(f, &B, 0, NR, m, &e), VDB_OK);
	for (size_t r = 0; r < NR; r++)
		cr_expect_eq(m[r], (uint8_t)(R[r].active || R[r].id < 32), "row %zu", r);
	filter_free(f);
	free(s);
}

/* ---- random expressions against a reference evaluator ---- */

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static size_t
pick(size_t n)
{
	return (size_t)(rnd() % n);
}

static const int64_t IPOOL[] = {0,
                                1,
                                -1,
                                2,
                                5,
                                1990,
                                2000,
                                -5,
                                P53,
                                P53 + 1,
                                P53 - 1,
                                -P53 - 1,
                                -P53,
                                INT64_MIN,
                                INT64_MAX,
                                INT64_MAX - 1,
                                INT64_MIN + 1,
                                3,
                                1000000007,
                                -2};
static const double DPOOL[] = {0.0,
                               -0.0,
                               0.5,
                               2.5,
                               -2.5,
                               1990.5,
                               2000.0,
                               9007199254740992.0,
                               9007199254740994.0,
                               1e300,
                               -1e300,
                               9223372036854775808.0,
                               -9223372036854775808.0,
                               1e-300,
                               5e-324,
                               3.0,
                               -5.0,
                               0.1};
static const char *const SPOOL[] = {"",       "a",    "ab",  "abc", "b",        "ba",  "a%",
                                    "%",      "_",    "a_c", "\\",  "\xc3\xa9", "\"'", "A",
                                    "abcabc", "a\\%", "cab", "bca", "\t\n"};
#define NPOOL(a) (sizeof(a) / sizeof(a[0]))

enum { L_INT, L_DBL, L_STR, L_BOOL };

struct lit {
	int kind;
	int64_t i;
	double d;
	const char *s;
	int b;
};

enum { E_CMP, E_RANGE, E_IN, E_LIKE, E_BARE, E_CONST, E_NOT, E_AND, E_OR };
enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };
static const char *const OPS[] = {"==", "!=", "<", "<=", ">", ">="};

/* like pattern elements: a byte, '_' or '%' */
struct pel {
	int kind; /* 0 byte, 1 any one, 2 any run */
	char c;
};

struct expr {
	int kind;
	int field; /* -1 id */
	int op, op2, litfirst, neg;
	struct lit a, b;
	struct lit list[6];
	int nlist;
	struct pel pat[8];
	int npat;
	struct expr *l, *r; /* E_NOT: l */
};

static int
ftype(int field)
{
	return field < 0 ? FT_INT64 : sc.fields[field].type;
}

static void
gen_lit(int type, struct lit *l)
{
	memset(l, 0, sizeof(*l));
	switch (type) {
	case FT_INT64:
	case FT_DOUBLE:
		if (pick(2)) {
			l->kind = L_INT;
			l->i = pick(4) ? IPOOL[pick(NPOOL(IPOOL))] : (int64_t)pick(11) - 5;
		} else {
			l->kind = L_DBL;
			l->d = pick(4) ? DPOOL[pick(NPOOL(DPOOL))]
			               : (double)((int)pick(21) - 10) / 4;
		}
		break;
	case FT_STRING:
		l->kind = L_STR;
		l->s = SPOOL[pick(NPOOL(SPOOL))];
		break;
	default:
		l->kind = L_BOOL;
		l->b = (int)pick(2);
		break;
	}
}

static int
rand_field(void)
{
	return (int)pick(NF + 1) - 1;
}

static struct expr *
gen(int depth)
{
	struct expr *x = calloc(1, sizeof(*x));
	size_t k = depth <= 0 ? pick(6) : pick(9);

	cr_assert_not_null(x);
	x->kind = (int)k;
	x->field = rand_field();
	switch (x->kind) {
	case E_CMP:
		if (ftype(x->field) == FT_BOOL)
			x->op = (int)pick(2);
		else
			x->op = (int)pick(6);
		x->litfirst = (int)pick(2);
		gen_lit(ftype(x->field), &x->a);
		break;
	case E_RANGE:
		while (ftype(x->field) == FT_BOOL)
			x->field = rand_field();
		x->op = OP_LT + (int)pick(4);
		x->op2 = x->op <= OP_LE ? OP_LT + (int)pick(2) : OP_GT + (int)pick(2);
		gen_lit(ftype(x->field), &x->a);
		gen_lit(ftype(x->field), &x->b);
		break;
	case E_IN:
		x->neg = (int)pick(2);
		x->nlist = (int)pick(6);
		for (int i = 0; i < x->nlist; i++)
			gen_lit(ftype(x->field), &x->list[i]);
		break;
	case E_LIKE:
		x->field = pick(2) ? F_TAG : F_TITLE;
		x->npat = (int)pick(7);
		for (int i = 0; i < x->npat; i++) {
			static const char alpha[] = "abc%_\\";
			x->pat[i].kind = pick(3) ? 0 : 1 + (int)pick(2);
			x->pat[i].c = alpha[pick(pick(3) ? 3 : 6)];
		}
		break;
	case E_BARE:
		x->field = F_ACTIVE;
		break;
	case E_CONST:
		x->a.b = (int)pick(2);
		break;
	case E_NOT:
		x->l = gen(depth - 1);
		break;
	default:
		x->l = gen(depth - 1);
		x->r = gen(depth - 1);
		break;
	}
	return x;
}

static void
expr_free(struct expr *x)
{
	if (x == NULL)
		return;
	expr_free(x->l);
	expr_free(x->r);
	free(x);
}

/* ---- printing ---- */

struct buf {
	char s[8192];
	size_t n;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	b->n += (size_t)vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	cr_assert_lt(b->n, sizeof(b->s));
}

static void
sp(struct buf *b)
{
	static const char *const ws[] = {" ", " ", " ", "  ", "\t", "\n", ""};
	put(b, "%s", ws[pick(NPOOL(ws))]);
}

/* word: a keyword in random case */
static void
word(struct buf *b, const char *w)
{
	size_t mode = pick(4);

	for (size_t i = 0; w[i]; i++) {
		char c = w[i];
		if (mode == 1 || (mode == 2 && i == 0) || (mode == 3 && pick(2)))
			c = (char)(c - 'a' + 'A');
		put(b, "%c", c);
	}
}

/* put_str: bytes s[0..n) as a literal in random quotes and escapes */
static void
put_str(struct buf *b, const char *s, size_t n)
{
	char q = pick(2) ? '"' : '\'';

	put(b, "%c", q);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\' && i + 1 < n && (s[i + 1] == '%' || s[i + 1] == '_') && pick(2)) {
			put(b, "\\%c", s[i + 1]); /* \% and \_ stand for themselves */
			i++;
		} else if (c == '\\') {
			put(b, "\\\\");
		} else if (c == (unsigned char)q) {
			put(b, "\\%c", q);
		} else if (c == '\n') {
			put(b, pick(2) ? "\\n" : "\n");
		} else if (c == '\t') {
			put(b, pick(2) ? "\\t" : "\\u0009");
		} else if (c >= 0x20 && c < 0x7f && pick(6) == 0) {
			put(b, pick(2) ? "\\u%04x" : "\\u%04X", c);
		} else if (c == 0xc3 && i + 1 < n && (unsigned char)s[i + 1] == 0xa9 && pick(2)) {
			put(b, "\\u00e9");
			i++;
		} else {
			put(b, "%c", c);
		}
	}
	put(b, "%c", q);
}

static void
put_lit(struct buf *b, const struct lit *l)
{
	char t[64];

	switch (l->kind) {
	case L_INT:
		if (l->i >= 0 && pick(5) == 0)
			put(b, "+%lld", (long long)l->i);
		else
			put(b, "%lld", (long long)l->i);
		break;
	case L_DBL:
		snprintf(t, sizeof(t), pick(2) ? "%.17g" : "%.17E", l->d);
		if (!strpbrk(t, ".eE"))
			strcat(t, ".0");
		put(b, "%s", t);
		break;
	case L_STR:
		put_str(b, l->s, strlen(l->s));
		break;
	default:
		word(b, l->b ? "true" : "false");
		break;
	}
}

static void
put_field(struct buf *b, int field)
{
	put(b, "%s", field < 0 ? "id" : sc.fields[field].name);
}

static int
flip_op(int op)
{
	static const int f[] = {OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE};
	return f[op];
}

static void print(struct buf *b, const struct expr *x);

/* print_sub: a child, with parentheses when precedence needs them (and
 * sometimes when it does not) */
static void
print_sub(struct buf *b, const struct expr *x, int parent)
{
	int need = (parent == E_NOT && (x->kind == E_AND || x->kind == E_OR)) ||
	           (parent == E_AND && x->kind == E_OR);

	if (need || pick(5) == 0) {
		put(b, "(");
		sp(b);
		print(b, x);
		sp(b);
		put(b, ")");
	} else {
		print(b, x);
	}
}

static void
print(struct buf *b, const struct expr *x)
{
	switch (x->kind) {
	case E_CMP:
		if (x->litfirst) {
			put_lit(b, &x->a);
			sp(b);
			put(b, "%s", OPS[flip_op(x->op)]);
			sp(b);
			put_field(b, x->field);
		} else {
			put_field(b, x->field);
			sp(b);
			put(b, "%s", OPS[x->op]);
			sp(b);
			put_lit(b, &x->a);
		}
		break;
	case E_RANGE:
		put_lit(b, &x->a);
		sp(b);
		put(b, "%s", OPS[x->op]);
		sp(b);
		put_field(b, x->field);
		sp(b);
		put(b, "%s", OPS[x->op2]);
		sp(b);
		put_lit(b, &x->b);
		break;
	case E_IN:
		put_field(b, x->field);
		put(b, " ");
		if (x->neg) {
			word(b, "not");
			put(b, " ");
		}
		word(b, "in");
		sp(b);
		put(b, "[");
		for (int i = 0; i < x->nlist; i++) {
			if (i)
				put(b, ",");
			sp(b);
			put_lit(b, &x->list[i]);
		}
		if (x->nlist && pick(4) == 0)
			put(b, ",");
		put(b, "]");
		break;
	case E_LIKE: {
		char p[32];
		size_t n = 0;
		for (int i = 0; i < x->npat; i++) {
			if (x->pat[i].kind == 1) {
				p[n++] = '_';
			} else if (x->pat[i].kind == 2) {
				p[n++] = '%';
			} else {
				char c = x->pat[i].c;
				if (c == '%' || c == '_' || c == '\\')
					p[n++] = '\\';
				p[n++] = c;
			}
		}
		put_field(b, x->field);
		put(b, " ");
		word(b, "like");
		sp(b);
		put_str(b, p, n);
		break;
	}
	case E_BARE:
		put_field(b, x->field);
		break;
	case E_CONST:
		word(b, x->a.b ? "true" : "false");
		break;
	case E_NOT:
		if (pick(2)) {
			word(b, "not");
			put(b, " ");
		} else {
			put(b, "!");
			sp(b);
		}
		print_sub(b, x->l, E_NOT);
		break;
	default:
		print_sub(b, x->l, x->kind);
		put(b, " ");
		if (pick(2))
			word(b, x->kind == E_AND ? "and" : "or");
		else
			put(b, "%s", x->kind == E_AND ? "&&" : "||");
		put(b, " ");
		print_sub(b, x->r, x->kind);
		break;
	}
}

/* ---- the reference: one row at a time, straight from the definitions ---- */

/* the exact comparisons below need a long double that holds every int64 */
_Static_assert(LDBL_MANT_DIG >= 64, "long double must hold an int64 exactly");

static int
ord(int c, int op)
{
	switch (op) {
	case OP_EQ:
		return c == 0;
	case OP_NE:
		return c != 0;
	case OP_LT:
		return c < 0;
	case OP_LE:
		return c <= 0;
	case OP_GT:
		return c > 0;
	}
	return c >= 0;
}

static int
ld_op(long double x, int op, long double y)
{
	switch (op) {
	case OP_EQ:
		return x == y;
	case OP_NE:
		return x != y;
	case OP_LT:
		return x < y;
	case OP_LE:
		return x <= y;
	case OP_GT:
		return x > y;
	}
	return x >= y;
}

static void
row_str(const struct batch *b, int field, size_t r, const char **s, size_t *n)
{
	const struct col *c = &b->cols[field];
	*s = c->sbuf + c->soff[r];
	*n = c->soff[r + 1] - c->soff[r];
}

/* ref_cmp: row r's field OP literal */
static int
ref_cmp(const struct batch *b, size_t r, int field, int op, const struct lit *l)
{
	switch (ftype(field)) {
	case FT_INT64: {
		int64_t v = field < 0 ? b->ids[r] : b->cols[field].i64[r];
		if (l->kind == L_INT)
			return ord((v > l->i) - (v < l->i), op);
		return ld_op((long double)v, op, (long double)l->d);
	}
	case FT_DOUBLE: {
		double v = b->cols[field].f64[r];
		if (l->kind == L_INT)
			return ld_op((long double)v, op, (long double)l->i);
		return ld_op(v, op, l->d);
	}
	case FT_BOOL:
		return ord((b->cols[field].b[r] != 0) != l->b, op);
	default: {
		const char *s;
		size_t n, m = strlen(l->s);
		int c = 0;
		row_str(b, field, r, &s, &n);
		for (size_t i = 0; i < n && i < m && c == 0; i++)
			c = (unsigned char)s[i] - (unsigned char)l->s[i];
		if (c == 0)
			c = (n > m) - (n < m);
		return ord(c, op);
	}
	}
}

static int
ref_like(const struct pel *p, int np, const char *s, size_t n)
{
	if (np == 0)
		return n == 0;
	if (p->kind == 2)
		return ref_like(p + 1, np - 1, s, n) || (n > 0 && ref_like(p, np, s + 1, n - 1));
	if (n == 0 || (p->kind == 0 && *s != p->c))
		return 0;
	return ref_like(p + 1, np - 1, s + 1, n - 1);
}

static int
ref(const struct expr *x, const struct batch *b, size_t r)
{
	switch (x->kind) {
	case E_CMP:
		return ref_cmp(b, r, x->field, x->op, &x->a);
	case E_RANGE: /* a OP field OP b */
		return ref_cmp(b, r, x->field, flip_op(x->op), &x->a) &&
		       ref_cmp(b, r, x->field, x->op2, &x->b);
	case E_IN: {
		int in = 0;
		for (int i = 0; i < x->nlist && !in; i++)
			in = ref_cmp(b, r, x->field, OP_EQ, &x->list[i]);
		return in ^ x->neg;
	}
	case E_LIKE: {
		const char *s;
		size_t n;
		row_str(b, x->field, r, &s, &n);
		return ref_like(x->pat, x->npat, s, n);
	}
	case E_BARE:
		return b->cols[x->field].b[r] != 0;
	case E_CONST:
		return x->a.b;
	case E_NOT:
		return !ref(x->l, b, r);
	case E_AND:
		return ref(x->l, b, r) && ref(x->r, b, r);
	}
	return ref(x->l, b, r) || ref(x->r, b, r);
}

/* random_batch: n rows drawn from the pools, so that equality is common */
static void
random_batch(struct batch *b, size_t n)
{
	struct vdb_err e;

	batch_init_scalars(b, &sc);
	cr_assert_eq(batch_reserve(b, n, &e), VDB_OK);
	for (size_t r = 0; r < n; r++) {
		const char *t = SPOOL[pick(NPOOL(SPOOL))], *u;
		char tb[16];
		b->ids[r] = pick(3) ? IPOOL[pick(NPOOL(IPOOL))] : (int64_t)pick(11) - 5;
		b->cols[F_YEAR].i64[r] =
		        pick(3) ? IPOOL[pick(NPOOL(IPOOL))] : (int64_t)pick(11) - 5;
		switch (pick(4)) {
		case 0:
			b->cols[F_PRICE].f64[r] = DPOOL[pick(NPOOL(DPOOL))];
			break;
		case 1:
			b->cols[F_PRICE].f64[r] = (double)IPOOL[pick(NPOOL(IPOOL))];
			break;
		case 2:
			b->cols[F_PRICE].f64[r] = pick(8) ? (double)((int)pick(21) - 10) / 4 : NAN;
			break;
		default:
			b->cols[F_PRICE].f64[r] = pick(2) ? INFINITY : -INFINITY;
			break;
		}
		b->cols[F_ACTIVE].b[r] = (uint8_t)pick(2);
		/* titles: random short words over the like alphabet */
		size_t tl = pick(6);
		for (size_t i = 0; i < tl; i++)
			tb[i] = "abc%_\\"[pick(pick(4) ? 3 : 6)];
		u = tb;
		cr_assert_eq(batch_put_string(b, F_TAG, r, t, strlen(t), &e), VDB_OK);
		cr_assert_eq(batch_put_string(b, F_TITLE, r, u, tl, &e), VDB_OK);
	}
	b->n = n;
}

Test(filter, random_against_reference, .timeout = 120)
{
	size_t nrows = 1500, cases = 20000, rows_checked = 0;
	struct batch rb;
	uint8_t *m = malloc(nrows), *init = malloc(nrows);
	struct vdb_err e;

	rng_state = 0x9e3779b97f4a7c15ull;
	random_batch(&rb, nrows);
	for (size_t t = 0; t < cases; t++) {
		struct expr *x = gen((int)pick(6));
		struct buf b = {.n = 0};
		struct filter *f, *g;
		size_t from = pick(300), n = nrows - from - pick(300);
		print(&b, x);
		int rc = filter_parse(b.s, &sc, &f, &e);
		cr_assert_eq(rc, VDB_OK, "case %zu: '%s': %s", t, b.s, e.msg);
		/* every other case through a clone */
		if (t & 1) {
			cr_assert_eq(filter_clone(f, &g, &e), VDB_OK);
			filter_free(f);
			f = g;
		}
		for (size_t i = 0; i < n; i++)
			m[i] = init[i] = (uint8_t)(pick(8) != 0);
		cr_assert_eq(filter_eval(f, &rb, from, n, m, &e), VDB_OK, "%s", e.msg);
		for (size_t i = 0; i < n; i++) {
			int want = init[i] && ref(x, &rb, from + i);
			if (m[i] != want)
				cr_assert_fail("case %zu: '%s': row %zu: got %d, want %d", t, b.s,
				               from + i, m[i], want);
		}
		rows_checked += n;

		filter_free(f);
		expr_free(x);
	}
	cr_assert_gt(rows_checked, cases * 900);
	batch_free(&rb);
	free(m);
	free(init);
}

/* ---- garbage ---- */

static void
must_not_crash(const char *s, const struct batch *b, uint8_t *m)
{
	struct filter *f;
	struct vdb_err e = {0};
	int rc = filter_parse(s, &sc, &f, &e);

	if (rc == VDB_OK) {
		memset(m, 1, b->n);
		cr_assert_eq(filter_eval(f, b, 0, b->n, m, &e), VDB_OK, "'%s': %s", s, e.msg);
		filter_free(f);
		return;
	}
	cr_assert_eq(rc, VDB_EINPUT, "'%s' gave %d: %s", s, rc, e.msg);
	cr_assert_null(f);
	unsigned long col;
	char *end;
	cr_assert_eq(strncmp(e.msg, "column ", 7), 0, "'%s': %s", s, e.msg);
	col = strtoul(e.msg + 7, &end, 10);
	cr_assert(col >= 1 && col <= strlen(s) + 1 && end[0] == ':', "'%s': %s", s, e.msg);
}

Test(filter, garbage_never_crashes, .timeout = 120)
{
	static const char *const seeds[] = {
	        "year > 1990 and (price <= 2.5 or not active)",
	        "1 < id <= 5 or tag like 'a%\\_b' and title in ['x', \"y\\u00e9\", '']",
	        "tag not in ['a', 'b',] || !(year == -9223372036854775808)",
	        "(((active))) && price != 1e-3 && 0.5 > price > -.5",
	        "title LIKE \"%\\\\%\" Or TRUE"};
	static const char alpha[] = "()[],<>=!&|'\"\\%_ aAnNdDoOrRtTiIlLkKeE019.-+eEuU"
	                            "\x01\x7f\x80\xc3\xa9\xff\t\n";
	struct batch rb;
	uint8_t *m = malloc(300);
	char s[512];

	rng_state = 42;
	random_batch(&rb, 300);
	for (int t = 0; t < 30000; t++) {
		size_t n;
		if (t % 3 == 0) { /* random bytes, mostly from the language */
			n = pick(60);
			for (size_t i = 0; i < n; i++)
				s[i] = pick(4) ? alpha[pick(sizeof(alpha) - 1)]
				               : (char)(1 + pick(255));
			s[n] = '\0';
		} else { /* a valid expression, mutated */
			struct expr *x = gen((int)pick(4));
			struct buf b = {.n = 0};
			if (pick(2))
				print(&b, x);
			else
				put(&b, "%s", seeds[pick(NPOOL(seeds))]);
			expr_free(x);
			n = b.n < sizeof(s) - 8 ? b.n : sizeof(s) - 8;
			memcpy(s, b.s, n);
			for (int k = (int)pick(4); k >= 0; k--) {
				size_t at = n ? pick(n + 1) : 0;
				switch (pick(4)) {
				case 0: /* delete */
					if (at < n) {
						memmove(s + at, s + at + 1, n - at - 1);
						n--;
					}
					break;
				case 1: /* insert */
					if (n < sizeof(s) - 8) {
						memmove(s + at + 1, s + at, n - at);
						s[at] = alpha[pick(sizeof(alpha) - 1)];
						n++;
					}
					break;
				case 2: /* replace */
					if (at < n)
						s[at] = (char)(1 + pick(255));
					break;
				default: /* truncate */
					n = at;
					break;
				}
			}
			s[n] = '\0';
		}
		must_not_crash(s, &rb, m);
	}
	batch_free(&rb);
	free(m);
}
