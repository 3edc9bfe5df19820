/* batch.c: columnar rows and the log payloads.  Spec: formats/log.md. */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "file.h"

void
batch_init(struct batch *b, const struct schema *sc)
{
	memset(b, 0, sizeof(*b));
	b->sc = sc;
	for (uint32_t i = 0; i < sc->nfields; i++)
		b->cols[i].type = sc->fields[i].type;
}

void
batch_init_scalars(struct batch *b, const struct schema *sc)
{
	batch_init(b, sc);
	b->novec = 1;
}

void
batch_free(struct batch *b)
{
	int novec = b->novec;

	free(b->ids);
	free(b->ts);
	free(b->vec);
	for (uint32_t i = 0; i < b->sc->nfields; i++) {
		struct col *c = &b->cols[i];
		free(c->i64);
		free(c->f64);
		free(c->b);
		free(c->soff);
		free(c->sbuf);
	}
	batch_init(b, b->sc);
	b->novec = novec;
}

void
batch_clear(struct batch *b)
{
	batch_truncate(b, 0);
}

void
batch_truncate(struct batch *b, size_t n)
{
	if (n < b->n)
		b->n = n;
}

static int
grow(void **p, size_t n, size_t size)
{
	void *np = realloc(*p, n * size);
	if (np == NULL)
		return -1;
	*p = np;
	return 0;
}

int
batch_reserve(struct batch *b, size_t more, struct vdb_err *e)
{
	size_t need = b->n + more, cap = b->cap ? b->cap : 64;
	uint32_t dim = b->sc->dim;

	if (need <= b->cap && b->cap > 0) /* after a reserve, columns are never NULL */
		return VDB_OK;
	while (cap < need)
		cap *= 2;
	if (grow((void **)&b->ids, cap, sizeof(int64_t)) ||
	    grow((void **)&b->ts, cap, sizeof(uint64_t)) ||
	    (!b->novec && grow((void **)&b->vec, cap, (size_t)dim * sizeof(float))))
		goto oom;
	for (uint32_t i = 0; i < b->sc->nfields; i++) {
		struct col *c = &b->cols[i];
		switch (c->type) {
		case FT_INT64:
			if (grow((void **)&c->i64, cap, sizeof(int64_t)))
				goto oom;
			break;
		case FT_DOUBLE:
			if (grow((void **)&c->f64, cap, sizeof(double)))
				goto oom;
			break;
		case FT_BOOL:
			if (grow((void **)&c->b, cap, 1))
				goto oom;
			break;
		case FT_STRING:
			if (grow((void **)&c->soff, cap + 1, sizeof(uint64_t)))
				goto oom;
			if (b->cap == 0)
				c->soff[0] = 0;
			break;
		}
	}
	b->cap = cap;
	return VDB_OK;
oom:
	return vdb_err_set(e, VDB_ETEMP, "out of memory for %zu rows", need);
}

int
batch_put_string(struct batch *b, uint32_t f, size_t r, const char *s, size_t len,
                 struct vdb_err *e)
{
	struct col *c = &b->cols[f];
	uint64_t start = c->soff[r];

	if (start + len > c->scap) {
		size_t cap = c->scap ? c->scap : 4096;
		while (cap < start + len)
			cap *= 2;
		if (grow((void **)&c->sbuf, cap, 1))
			return vdb_err_set(e, VDB_ETEMP, "out of memory for strings");
		c->scap = cap;
	}
	if (len)
		memcpy(c->sbuf + start, s, len);
	c->soff[r + 1] = start + len;
	return VDB_OK;
}

int
batch_copy_row(struct batch *dst, const struct batch *src, size_t r, struct vdb_err *e)
{
	size_t d = dst->n, dim = dst->sc->dim;
	int rc;

	if ((rc = batch_reserve(dst, 1, e)) != VDB_OK)
		return rc;
	dst->ids[d] = src->ids[r];
	dst->ts[d] = src->ts[r];
	if (!dst->novec)
		memcpy(dst->vec + d * dim, src->vec + r * dim, dim * sizeof(float));
	for (uint32_t i = 0; i < dst->sc->nfields; i++) {
		const struct col *s = &src->cols[i];
		struct col *c = &dst->cols[i];
		switch (c->type) {
		case FT_INT64:
			c->i64[d] = s->i64[r];
			break;
		case FT_DOUBLE:
			c->f64[d] = s->f64[r];
			break;
		case FT_BOOL:
			c->b[d] = s->b[r];
			break;
		case FT_STRING:
			rc = batch_put_string(dst, i, d, s->sbuf + s->soff[r],
			                      s->soff[r + 1] - s->soff[r], e);
			if (rc != VDB_OK)
				return rc;
			break;
		}
	}
	dst->n++;
	return VDB_OK;
}

size_t
batch_payload_size(const struct batch *b)
{
	size_t n = b->n, sz = PAYLOAD_INSERT_HDR + n * 8 + n * b->sc->dim * sizeof(float);

	for (uint32_t i = 0; i < b->sc->nfields; i++) {
		const struct col *c = &b->cols[i];
		switch (c->type) {
		case FT_INT64:
		case FT_DOUBLE:
			sz += n * 8;
			break;
		case FT_BOOL:
			sz += n;
			break;
		case FT_STRING:
			sz += n * 4 + (n ? c->soff[n] : 0);
			break;
		}
	}
	return sz;
}

/* Little-endian hosts only (checked in batch_encode): columns are copied
 * as they lie in memory. */
int
batch_encode(const struct batch *b, uint64_t ts, unsigned char **out, size_t *len,
             struct vdb_err *e)
{
	size_t n = b->n, sz = batch_payload_size(b);
	unsigned char *p, *q;

	_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "vdb needs a little-endian host");
	p = malloc(sz);
	if (p == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory for a %zu-byte frame", sz);
	memset(p, 0, PAYLOAD_INSERT_HDR);
	p[0] = PAYLOAD_INSERT;
	p[1] = 1;
	put_u32(p + 4, b->sc->nfields);
	put_u64(p + 8, ts);
	put_u64(p + 16, (uint64_t)b->partition_id);
	put_u32(p + 24, (uint32_t)n);
	put_u32(p + 28, b->sc->dim);
	q = p + PAYLOAD_INSERT_HDR;
	if (n == 0)
		goto done; /* an empty batch has no columns to copy */
	memcpy(q, b->ids, n * 8);
	q += n * 8;
	memcpy(q, b->vec, n * b->sc->dim * sizeof(float));
	q += n * b->sc->dim * sizeof(float);
	for (uint32_t i = 0; i < b->sc->nfields; i++) {
		const struct col *c = &b->cols[i];
		switch (c->type) {
		case FT_INT64:
			memcpy(q, c->i64, n * 8);
			q += n * 8;
			break;
		case FT_DOUBLE:
			memcpy(q, c->f64, n * 8);
			q += n * 8;
			break;
		case FT_BOOL:
			memcpy(q, c->b, n);
			q += n;
			break;
		case FT_STRING:
			for (size_t r = 0; r < n; r++, q += 4)
				put_u32(q, (uint32_t)(c->soff[r + 1] - c->soff[r]));
			if (c->soff[n]) { /* all empty: sbuf was never allocated */
				memcpy(q, c->sbuf, c->soff[n]);
				q += c->soff[n];
			}
			break;
		}
	}
done:
	*out = p;
	*len = sz;
	return VDB_OK;
}

int
payload_peek(const unsigned char *p, size_t len, int *kind, uint32_t *rows, uint64_t *ts)
{
	if (len < PAYLOAD_DELETE_HDR)
		return -1;
	*kind = p[0];
	if (p[0] == PAYLOAD_INSERT) {
		if (len < PAYLOAD_INSERT_HDR)
			return -1;
		*rows = get_u32(p + 24);
	} else if (p[0] == PAYLOAD_DELETE) {
		*rows = get_u32(p + 4);
	} else {
		return -1;
	}
	*ts = get_u64(p + 8);
	return 0;
}

int
batch_decode(struct batch *b, const unsigned char *p, size_t len, struct vdb_err *e)
{
	const unsigned char *q, *end = p + len;
	uint32_t n, dim = b->sc->dim;
	size_t base = b->n;
	uint64_t ts;
	int rc;

	if (len < PAYLOAD_INSERT_HDR || p[0] != PAYLOAD_INSERT || p[1] != 1)
		return vdb_err_set(e, VDB_ECORRUPT, "not an insert payload");
	if (get_u32(p + 4) != b->sc->nfields || get_u32(p + 28) != dim)
		return vdb_err_set(e, VDB_ECORRUPT,
		                   "payload shape (%u fields, dim %u) does not match the schema",
		                   get_u32(p + 4), get_u32(p + 28));
	ts = get_u64(p + 8);
	n = get_u32(p + 24);
	/* fixed-width columns alone must fit before anything is allocated */
	if ((len - PAYLOAD_INSERT_HDR) / ((size_t)dim * 4 + 8) < n)
		return vdb_err_set(e, VDB_ECORRUPT, "payload claims %u rows in %zu bytes", n, len);
	if ((rc = batch_reserve(b, n, e)) != VDB_OK)
		return rc;
	q = p + PAYLOAD_INSERT_HDR;
	memcpy(b->ids + base, q, (size_t)n * 8);
	q += (size_t)n * 8;
	if (!b->novec)
		memcpy(b->vec + base * dim, q, (size_t)n * dim * 4);
	q += (size_t)n * dim * 4;
	for (size_t r = 0; r < n; r++)
		b->ts[base + r] = ts;
	for (uint32_t i = 0; i < b->sc->nfields; i++) {
		struct col *c = &b->cols[i];
		size_t w = c->type == FT_BOOL ? 1 : c->type == FT_STRING ? 4 : 8;
		if ((size_t)(end - q) / w < n)
			goto short_payload;
		switch (c->type) {
		case FT_INT64:
			memcpy(c->i64 + base, q, (size_t)n * 8);
			break;
		case FT_DOUBLE:
			memcpy(c->f64 + base, q, (size_t)n * 8);
			break;
		case FT_BOOL:
			for (size_t r = 0; r < n; r++) {
				if (q[r] > 1)
					return vdb_err_set(e, VDB_ECORRUPT, "bool value %u", q[r]);
				c->b[base + r] = q[r];
			}
			break;
		case FT_STRING: {
			const unsigned char *lens = q, *s = q + (size_t)n * 4;
			size_t total = 0;
			for (size_t r = 0; r < n; r++)
				total += get_u32(lens + 4 * r);
			if ((size_t)(end - s) < total)
				goto short_payload;
			for (size_t r = 0; r < n; r++) {
				uint32_t l = get_u32(lens + 4 * r);
				if (l > b->sc->fields[i].max_len)
					return vdb_err_set(e, VDB_ECORRUPT,
					                   "string longer than field");
				if ((rc = batch_put_string(b, i, base + r, (const char *)s, l, e)))
					return rc;
				s += l;
			}
			q = s;
			continue;
		}
		}
		q += (size_t)n * w;
	}
	if (q != end)
		return vdb_err_set(e, VDB_ECORRUPT, "%zu stray bytes after the last column",
		                   (size_t)(end - q));
	b->n = base + n;
	b->partition_id = (int64_t)get_u64(p + 16);
	return VDB_OK;
short_payload:
	return vdb_err_set(e, VDB_ECORRUPT, "payload shorter than its columns");
}

int
delete_encode(const int64_t *ids, size_t n, uint64_t ts, unsigned char **out, size_t *len,
              struct vdb_err *e)
{
	size_t sz = PAYLOAD_DELETE_HDR + n * 8;
	unsigned char *p = malloc(sz);

	if (p == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	memset(p, 0, PAYLOAD_DELETE_HDR);
	p[0] = PAYLOAD_DELETE;
	p[1] = 1;
	put_u32(p + 4, (uint32_t)n);
	put_u64(p + 8, ts);
	memcpy(p + PAYLOAD_DELETE_HDR, ids, n * 8);
	*out = p;
	*len = sz;
	return VDB_OK;
}

int
delete_decode(const unsigned char *p, size_t len, const int64_t **ids, size_t *n, uint64_t *ts,
              struct vdb_err *e)
{
	if (len < PAYLOAD_DELETE_HDR || p[0] != PAYLOAD_DELETE || p[1] != 1)
		return vdb_err_set(e, VDB_ECORRUPT, "not a delete payload");
	*n = get_u32(p + 4);
	if ((len - PAYLOAD_DELETE_HDR) / 8 != *n || (len - PAYLOAD_DELETE_HDR) % 8)
		return vdb_err_set(e, VDB_ECORRUPT, "delete payload length does not match %zu ids",
		                   *n);
	*ts = get_u64(p + 8);
	*ids = (const int64_t *)(const void *)(p + PAYLOAD_DELETE_HDR);
	return VDB_OK;
}
