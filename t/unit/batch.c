/* batch.c: unit tests for lib/batch.c (columnar rows, log payloads). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "file.h"

#define DIM 3
#define NROWS 5

/* i:int64 d:double b:bool s:string:16 t:string */
static void
mkschema(struct schema *s, uint32_t dim, uint32_t smax)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "c");
	s->dim = dim;
	s->nfields = 5;
	snprintf(s->fields[0].name, sizeof(s->fields[0].name), "i");
	s->fields[0].type = FT_INT64;
	snprintf(s->fields[1].name, sizeof(s->fields[1].name), "d");
	s->fields[1].type = FT_DOUBLE;
	snprintf(s->fields[2].name, sizeof(s->fields[2].name), "b");
	s->fields[2].type = FT_BOOL;
	snprintf(s->fields[3].name, sizeof(s->fields[3].name), "s");
	s->fields[3].type = FT_STRING;
	s->fields[3].max_len = smax;
	snprintf(s->fields[4].name, sizeof(s->fields[4].name), "t");
	s->fields[4].type = FT_STRING;
	s->fields[4].max_len = VDB_MAX_STRING;
}

static const char *const S[NROWS] = {"", "hello", "", "multi\nline \xc3\xa9", "0123456789abcdef"};
static const char *const T[NROWS] = {"x", "", "", "a", "zz"};

/* fill: NROWS rows with awkward values (empty strings, extremes, -0.0) */
static void
fill(struct batch *b)
{
	struct vdb_err e;
	size_t n = b->n;

	cr_assert_eq(batch_reserve(b, NROWS, &e), VDB_OK);
	for (size_t r = 0; r < NROWS; r++) {
		size_t row = n + r;
		b->ids[row] = r == 0 ? INT64_MIN : r == 1 ? INT64_MAX : (int64_t)r * 1000 - 7;
		b->ts[row] = 0;
		for (int k = 0; k < DIM; k++)
			b->vec[row * DIM + k] = (float)r * 0.5f - (float)k;
		b->cols[0].i64[row] = r == 2 ? INT64_MIN : (int64_t)(r * r) - 3;
		b->cols[1].f64[row] = r == 3 ? -0.0 : r == 4 ? 1e300 : (double)r / 3.0;
		b->cols[2].b[row] = (uint8_t)(r % 2);
		cr_assert_eq(batch_put_string(b, 3, row, S[r], strlen(S[r]), &e), VDB_OK);
		cr_assert_eq(batch_put_string(b, 4, row, T[r], strlen(T[r]), &e), VDB_OK);
	}
	b->vec[DIM] = -0.0f;
	b->vec[DIM + 1] = 1e-45f; /* denormal */
	b->n = n + NROWS;
}

static void
assert_row_eq(const struct batch *a, size_t ra, const struct batch *b, size_t rb)
{
	cr_assert_eq(a->ids[ra], b->ids[rb], "id of row %zu", ra);
	cr_assert_eq(memcmp(a->vec + ra * DIM, b->vec + rb * DIM, DIM * sizeof(float)), 0,
	             "vector of row %zu", ra);
	cr_assert_eq(a->cols[0].i64[ra], b->cols[0].i64[rb]);
	cr_assert_eq(memcmp(&a->cols[1].f64[ra], &b->cols[1].f64[rb], 8), 0);
	cr_assert_eq(a->cols[2].b[ra], b->cols[2].b[rb]);
	for (int f = 3; f <= 4; f++) {
		const struct col *x = &a->cols[f], *y = &b->cols[f];
		size_t lx = x->soff[ra + 1] - x->soff[ra], ly = y->soff[rb + 1] - y->soff[rb];
		cr_assert_eq(lx, ly, "string %d of row %zu: length %zu vs %zu", f, ra, lx, ly);
		cr_assert_eq(memcmp(x->sbuf + x->soff[ra], y->sbuf + y->soff[rb], lx), 0);
	}
}

static void
assert_strings(const struct batch *b, size_t base)
{
	for (size_t r = 0; r < NROWS; r++) {
		const struct col *c = &b->cols[3];
		size_t l = c->soff[base + r + 1] - c->soff[base + r];
		cr_assert_eq(l, strlen(S[r]), "row %zu", r);
		cr_assert_eq(memcmp(c->sbuf + c->soff[base + r], S[r], l), 0);
		c = &b->cols[4];
		l = c->soff[base + r + 1] - c->soff[base + r];
		cr_assert_eq(l, strlen(T[r]), "row %zu", r);
		cr_assert_eq(memcmp(c->sbuf + c->soff[base + r], T[r], l), 0);
	}
}

static struct schema sc;
static struct batch src;
static unsigned char *pl;
static size_t pllen;

static void
setup(void)
{
	struct vdb_err e;

	mkschema(&sc, DIM, 16);
	batch_init(&src, &sc);
	fill(&src);
	src.partition_id = 42;
	cr_assert_eq(batch_encode(&src, 0x123456789abcull, &pl, &pllen, &e), VDB_OK, "%s", e.msg);
}

static void
teardown(void)
{
	batch_free(&src);
	free(pl);
}

TestSuite(batch, .init = setup, .fini = teardown);

Test(batch, encode_layout)
{
	int kind;
	uint32_t rows;
	uint64_t ts;

	cr_assert_eq(pllen, batch_payload_size(&src));
	cr_assert_eq(pl[0], PAYLOAD_INSERT);
	cr_assert_eq(pl[1], 1);
	cr_assert_eq(get_u32(pl + 4), 5u);
	cr_assert_eq(get_u64(pl + 8), 0x123456789abcull);
	cr_assert_eq(get_u64(pl + 16), 42u);
	cr_assert_eq(get_u32(pl + 24), (uint32_t)NROWS);
	cr_assert_eq(get_u32(pl + 28), (uint32_t)DIM);
	cr_assert_eq(payload_peek(pl, pllen, &kind, &rows, &ts), 0);
	cr_assert_eq(kind, PAYLOAD_INSERT);
	cr_assert_eq(rows, (uint32_t)NROWS);
	cr_assert_eq(ts, 0x123456789abcull);
	cr_assert_eq(payload_peek(pl, PAYLOAD_INSERT_HDR - 1, &kind, &rows, &ts), -1);
	cr_assert_eq(payload_peek(pl, 3, &kind, &rows, &ts), -1);
}

Test(batch, round_trip)
{
	struct batch b;
	struct vdb_err e;

	batch_init(&b, &sc);
	cr_assert_eq(batch_decode(&b, pl, pllen, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.n, (size_t)NROWS);
	cr_assert_eq(b.partition_id, 42);
	for (size_t r = 0; r < NROWS; r++) {
		assert_row_eq(&src, r, &b, r);
		cr_assert_eq(b.ts[r], 0x123456789abcull, "every row carries the payload ts");
	}
	assert_strings(&b, 0);

	/* decode appends */
	cr_assert_eq(batch_decode(&b, pl, pllen, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.n, 2 * (size_t)NROWS);
	for (size_t r = 0; r < NROWS; r++)
		assert_row_eq(&src, r, &b, NROWS + r);
	assert_strings(&b, NROWS);

	/* and re-encoding the decoded rows gives the same bytes twice over */
	unsigned char *p2;
	size_t l2;
	batch_truncate(&b, NROWS);
	cr_assert_eq(batch_encode(&b, 0x123456789abcull, &p2, &l2, &e), VDB_OK);
	cr_assert_eq(l2, pllen);
	cr_assert_eq(memcmp(p2, pl, pllen), 0);
	free(p2);
	batch_free(&b);
}

/* a scalars-only batch decodes everything but the vectors */
Test(batch, decode_into_scalars_batch)
{
	struct batch b;
	struct vdb_err e;

	batch_init_scalars(&b, &sc);
	cr_assert_eq(batch_decode(&b, pl, pllen, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.n, (size_t)NROWS);
	cr_assert_null(b.vec);
	for (size_t r = 0; r < NROWS; r++) {
		cr_assert_eq(b.ids[r], src.ids[r]);
		cr_assert_eq(b.cols[0].i64[r], src.cols[0].i64[r]);
	}
	assert_strings(&b, 0);
	/* it stays scalars-only across batch_free */
	batch_free(&b);
	cr_assert_eq(b.novec, 1);
	cr_assert_eq(batch_decode(&b, pl, pllen, &e), VDB_OK);
	cr_assert_null(b.vec);
	batch_free(&b);
}

Test(batch, empty_batch_round_trip)
{
	struct batch a, b;
	unsigned char *p;
	size_t len;
	struct vdb_err e;

	batch_init(&a, &sc);
	batch_init(&b, &sc);
	cr_assert_eq(batch_reserve(&a, 1, &e), VDB_OK);
	cr_assert_eq(batch_encode(&a, 5, &p, &len, &e), VDB_OK);
	cr_assert_eq(len, (size_t)PAYLOAD_INSERT_HDR);
	cr_assert_eq(batch_decode(&b, p, len, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.n, 0u);
	free(p);
	batch_free(&a);
	batch_free(&b);
}

Test(batch, every_truncation_is_corrupt)
{
	struct batch b;
	struct vdb_err e;

	batch_init(&b, &sc);
	for (size_t len = 0; len < pllen; len++) {
		unsigned char *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
		memcpy(copy, pl, len);
		memset(&e, 0, sizeof(e));
		cr_assert_eq(batch_decode(&b, copy, len, &e), VDB_ECORRUPT, "prefix of %zu/%zu",
		             len, pllen);
		cr_assert_eq(b.n, 0u, "prefix of %zu left rows behind", len);
		cr_assert(e.msg[0] != '\0');
		free(copy);
	}
	batch_free(&b);
}

Test(batch, stray_trailing_bytes)
{
	struct batch b;
	struct vdb_err e;
	unsigned char *p = malloc(pllen + 8);

	memcpy(p, pl, pllen);
	memset(p + pllen, 0, 8);
	batch_init(&b, &sc);
	for (size_t extra = 1; extra <= 8; extra++) {
		cr_assert_eq(batch_decode(&b, p, pllen + extra, &e), VDB_ECORRUPT, "%zu extra",
		             extra);
		cr_assert(strstr(e.msg, "stray") != NULL, "%s", e.msg);
		cr_assert_eq(b.n, 0u);
	}
	free(p);
	batch_free(&b);
}

Test(batch, wrong_shape)
{
	struct schema other;
	struct batch b;
	struct vdb_err e;

	/* wrong dimension */
	mkschema(&other, DIM + 1, 16);
	batch_init(&b, &other);
	cr_assert_eq(batch_decode(&b, pl, pllen, &e), VDB_ECORRUPT);
	cr_assert_eq(b.n, 0u);
	batch_free(&b);

	/* wrong number of fields (one fewer, one more) */
	mkschema(&other, DIM, 16);
	other.nfields = 4;
	batch_init(&b, &other);
	cr_assert_eq(batch_decode(&b, pl, pllen, &e), VDB_ECORRUPT);
	batch_free(&b);
	mkschema(&other, DIM, 16);
	other.nfields = 6;
	other.fields[5] = other.fields[0];
	snprintf(other.fields[5].name, sizeof(other.fields[5].name), "z");
	batch_init(&b, &other);
	cr_assert_eq(batch_decode(&b, pl, pllen, &e), VDB_ECORRUPT);
	batch_free(&b);

	/* a string longer than the schema allows ("0123456789abcdef" > 8) */
	mkschema(&other, DIM, 8);
	batch_init(&b, &other);
	cr_assert_eq(batch_decode(&b, pl, pllen, &e), VDB_ECORRUPT);
	cr_assert_eq(b.n, 0u);
	batch_free(&b);
}

Test(batch, bad_header_bytes)
{
	struct batch b;
	struct vdb_err e;
	unsigned char *p = malloc(pllen);

	batch_init(&b, &sc);
	/* kind, version, nfields, dim */
	const size_t at[] = {0, 1, 4, 28};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		memcpy(p, pl, pllen);
		p[at[i]] ^= 0x04;
		cr_assert_eq(batch_decode(&b, p, pllen, &e), VDB_ECORRUPT, "byte %zu", at[i]);
	}
	/* a row count that cannot fit must be refused before any allocation */
	memcpy(p, pl, pllen);
	put_u32(p + 24, 0xFFFFFFFFu);
	cr_assert_eq(batch_decode(&b, p, pllen, &e), VDB_ECORRUPT);
	put_u32(p + 24, NROWS + 1);
	cr_assert_eq(batch_decode(&b, p, pllen, &e), VDB_ECORRUPT);
	put_u32(p + 24, NROWS - 1);
	cr_assert_eq(batch_decode(&b, p, pllen, &e), VDB_ECORRUPT);
	cr_assert_eq(b.n, 0u);
	free(p);
	batch_free(&b);
}

Test(batch, bool_value_two)
{
	struct batch b;
	struct vdb_err e;
	unsigned char *p = malloc(pllen);
	/* header, ids, vectors, i (int64), d (double), then the bools */
	size_t boff = PAYLOAD_INSERT_HDR + NROWS * 8 + NROWS * DIM * 4 + NROWS * 8 + NROWS * 8;

	batch_init(&b, &sc);
	for (size_t r = 0; r < NROWS; r++) {
		memcpy(p, pl, pllen);
		cr_assert_eq(p[boff + r], r % 2, "bool column not where expected");
		p[boff + r] = 2;
		cr_assert_eq(batch_decode(&b, p, pllen, &e), VDB_ECORRUPT, "row %zu", r);
		cr_assert(strstr(e.msg, "bool") != NULL, "%s", e.msg);
		p[boff + r] = 0xff;
		cr_assert_eq(batch_decode(&b, p, pllen, &e), VDB_ECORRUPT, "row %zu", r);
		cr_assert_eq(b.n, 0u);
	}
	free(p);
	batch_free(&b);
}

Test(batch, string_lengths_lie)
{
	struct batch b;
	struct vdb_err e;
	unsigned char *p = malloc(pllen);
	/* the string lengths of field s follow the bools */
	size_t loff = PAYLOAD_INSERT_HDR + NROWS * 8 + NROWS * DIM * 4 + NROWS * 16 + NROWS;

	batch_init(&b, &sc);
	memcpy(p, pl, pllen);
	cr_assert_eq(get_u32(p + loff + 4), 5u, "string lengths not where expected");
	/* longer: the bytes run short (or stray bytes vanish) */
	put_u32(p + loff + 4, 6);
	cr_assert_eq(batch_decode(&b, p, pllen, &e), VDB_ECORRUPT);
	/* shorter: bytes left over */
	put_u32(p + loff + 4, 4);
	cr_assert_eq(batch_decode(&b, p, pllen, &e), VDB_ECORRUPT);
	/* huge */
	put_u32(p + loff + 4, 0xFFFFFFF0u);
	cr_assert_eq(batch_decode(&b, p, pllen, &e), VDB_ECORRUPT);
	cr_assert_eq(b.n, 0u);
	free(p);
	batch_free(&b);
}

Test(batch, delete_round_trip)
{
	const int64_t ids[] = {1, -1, INT64_MIN, INT64_MAX, 0, 77};
	const int64_t *got;
	unsigned char *p;
	size_t len, n;
	uint64_t ts;
	int kind;
	uint32_t rows;
	struct vdb_err e;

	cr_assert_eq(delete_encode(ids, 6, 99, &p, &len, &e), VDB_OK);
	cr_assert_eq(len, (size_t)PAYLOAD_DELETE_HDR + 6 * 8);
	cr_assert_eq(delete_decode(p, len, &got, &n, &ts, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(n, 6u);
	cr_assert_eq(ts, 99u);
	cr_assert_eq(memcmp(got, ids, sizeof(ids)), 0);
	cr_assert_eq(payload_peek(p, len, &kind, &rows, &ts), 0);
	cr_assert_eq(kind, PAYLOAD_DELETE);
	cr_assert_eq(rows, 6u);
	cr_assert_eq(ts, 99u);

	/* an insert decoder refuses a delete payload and vice versa */
	struct batch b;
	batch_init(&b, &sc);
	cr_assert_eq(batch_decode(&b, p, len, &e), VDB_ECORRUPT);
	batch_free(&b);
	cr_assert_eq(delete_decode(pl, pllen, &got, &n, &ts, &e), VDB_ECORRUPT);

	/* bad lengths: every other length up to one id too many */
	unsigned char *q = calloc(1, len + 16);
	memcpy(q, p, len);
	for (size_t l = 0; l <= len + 16; l++) {
		if (l == len)
			continue;
		cr_assert_eq(delete_decode(q, l, &got, &n, &ts, &e), VDB_ECORRUPT, "length %zu", l);
	}
	/* a count that does not match the length */
	put_u32(q + 4, 5);
	cr_assert_eq(delete_decode(q, len, &got, &n, &ts, &e), VDB_ECORRUPT);
	put_u32(q + 4, 7);
	cr_assert_eq(delete_decode(q, len, &got, &n, &ts, &e), VDB_ECORRUPT);
	put_u32(q + 4, 6);
	q[1] = 2; /* version */
	cr_assert_eq(delete_decode(q, len, &got, &n, &ts, &e), VDB_ECORRUPT);
	free(q);
	free(p);

	/* no ids at all */
	cr_assert_eq(delete_encode(ids, 0, 5, &p, &len, &e), VDB_OK);
	cr_assert_eq(len, (size_t)PAYLOAD_DELETE_HDR);
	cr_assert_eq(delete_decode(p, len, &got, &n, &ts, &e), VDB_OK);
	cr_assert_eq(n, 0u);
	cr_assert_eq(ts, 5u);
	free(p);
}

Test(batch, copy_row)
{
	struct batch dst;
	struct vdb_err e;
	const size_t order[] = {4, 0, 2, 3, 1, 1};

	batch_init(&dst, &sc);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		cr_assert_eq(batch_copy_row(&dst, &src, order[i], &e), VDB_OK);
	cr_assert_eq(dst.n, 6u);
	for (size_t i = 0; i < 6; i++)
		assert_row_eq(&src, order[i], &dst, i);

	/* many copies: the destination grows past its first capacity and
	 * its string buffer past 4096 bytes */
	for (size_t i = 0; i < 3000; i++)
		cr_assert_eq(batch_copy_row(&dst, &src, i % NROWS, &e), VDB_OK);
	cr_assert_eq(dst.n, 3006u);
	for (size_t i = 0; i < 3000; i++)
		assert_row_eq(&src, i % NROWS, &dst, 6 + i);

	/* truncate drops rows; new rows fill in after */
	batch_truncate(&dst, 2);
	cr_assert_eq(dst.n, 2u);
	cr_assert_eq(batch_copy_row(&dst, &src, 3, &e), VDB_OK);
	assert_row_eq(&src, 3, &dst, 2);
	assert_row_eq(&src, 0, &dst, 1);
	batch_clear(&dst);
	cr_assert_eq(dst.n, 0u);
	cr_assert_eq(batch_copy_row(&dst, &src, 1, &e), VDB_OK);
	assert_row_eq(&src, 1, &dst, 0);
	batch_free(&dst);
	cr_assert_eq(dst.n, 0u);
	cr_assert_null(dst.ids);
}

Test(batch, long_strings)
{
	struct schema s1;
	struct batch a, b;
	struct vdb_err e;
	unsigned char *p;
	size_t len;
	char *big = malloc(VDB_MAX_STRING);

	memset(&s1, 0, sizeof(s1));
	s1.dim = 1;
	s1.nfields = 1;
	snprintf(s1.fields[0].name, sizeof(s1.fields[0].name), "s");
	s1.fields[0].type = FT_STRING;
	s1.fields[0].max_len = VDB_MAX_STRING;
	for (size_t i = 0; i < VDB_MAX_STRING; i++)
		big[i] = (char)('a' + i % 26);
	batch_init(&a, &s1);
	batch_init(&b, &s1);
	cr_assert_eq(batch_reserve(&a, 3, &e), VDB_OK);
	for (size_t r = 0; r < 3; r++) {
		a.ids[r] = (int64_t)r;
		a.vec[r] = 1.0f;
		size_t l = r == 1 ? 0 : VDB_MAX_STRING - r;
		cr_assert_eq(batch_put_string(&a, 0, r, big, l, &e), VDB_OK);
	}
	a.n = 3;
	cr_assert_eq(batch_encode(&a, 1, &p, &len, &e), VDB_OK);
	cr_assert_eq(batch_decode(&b, p, len, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(b.n, 3u);
	cr_assert_eq(b.cols[0].soff[1], (uint64_t)VDB_MAX_STRING);
	cr_assert_eq(b.cols[0].soff[2], (uint64_t)VDB_MAX_STRING);
	cr_assert_eq(b.cols[0].soff[3], (uint64_t)(2 * VDB_MAX_STRING - 2));
	cr_assert_eq(memcmp(b.cols[0].sbuf, big, VDB_MAX_STRING), 0);
	cr_assert_eq(memcmp(b.cols[0].sbuf + VDB_MAX_STRING, big, VDB_MAX_STRING - 2), 0);
	free(p);
	free(big);
	batch_free(&a);
	batch_free(&b);
}
