/* run.c: search a batch of queries and write the answers — JSONL, TSV or
 * ivecs (vdb-query(1), "OUTPUT") — and count rows. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "query.h"

static int
sb_room(struct sbuf *b, size_t n)
{
	if (b->oom)
		return -1;
	if (b->cap - b->n < n + 1) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc - b->n < n + 1)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (np == NULL) {
			b->oom = 1;
			return -1;
		}
		b->p = np;
		b->cap = nc;
	}
	return 0;
}

void
sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (sb_room(b, n) == 0) {
		memcpy(b->p + b->n, s, n);
		b->n += n;
	}
}

void
sb_putc(struct sbuf *b, char c)
{
	if (sb_room(b, 1) == 0)
		b->p[b->n++] = c;
}

void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb_room(b, 64) < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if ((size_t)n >= b->cap - b->n) {
		if (sb_room(b, (size_t)n) < 0)
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
	}
	b->n += (size_t)n;
}

void
sb_json_string(struct sbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	sb_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			sb_putc(b, '\\');
			sb_putc(b, (char)c);
		} else if (c == '\n') {
			sb_put(b, "\\n", 2);
		} else if (c == '\t') {
			sb_put(b, "\\t", 2);
		} else if (c < 0x20 || c == 0x7f) {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			sb_put(b, u, 6);
		} else {
			sb_putc(b, (char)c); /* ingest admitted only valid UTF-8 */
		}
	}
	sb_putc(b, '"');
}

void
sb_free(struct sbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* tsv_string: as formats/records.md escapes TSV */
static void
tsv_string(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '\t':
			sb_put(b, "\\t", 2);
			break;
		case '\n':
			sb_put(b, "\\n", 2);
			break;
		case '\r':
			sb_put(b, "\\r", 2);
			break;
		case '\\':
			sb_put(b, "\\\\", 2);
			break;
		default:
			sb_putc(b, s[i]);
		}
	}
}

/* put_float: the shortest %g that reads back as the same float (0.31, not
 * 0.310000002); JSON has no infinities, so those are null (a float
 * overflows on huge vectors) */
static void
put_float(struct sbuf *b, float v, int json)
{
	char tmp[32];

	if (!isfinite(v)) {
		sb_puts(b, json ? "null" : v > 0 ? "inf" : "-inf");
		return;
	}
	for (int digits = 6; digits <= 9; digits++) {
		snprintf(tmp, sizeof tmp, "%.*g", digits, v);
		if (digits == 9 || strtof(tmp, NULL) == v)
			break;
	}
	sb_puts(b, tmp);
}

static void
put_value(struct sbuf *b, const struct batch *bt, int f, size_t r, int json)
{
	const struct col *c = &bt->cols[f];

	switch (c->type) {
	case FT_INT64:
		sb_printf(b, "%" PRId64, c->i64[r]);
		break;
	case FT_DOUBLE:
		if (isfinite(c->f64[r]))
			sb_printf(b, "%.17g", c->f64[r]);
		else
			sb_put(b, "null", 4);
		break;
	case FT_BOOL:
		sb_put(b, c->b[r] ? "true" : "false", c->b[r] ? 4 : 5);
		break;
	case FT_STRING:
		if (json)
			sb_json_string(b, c->sbuf + c->soff[r], c->soff[r + 1] - c->soff[r]);
		else
			tsv_string(b, c->sbuf + c->soff[r], c->soff[r + 1] - c->soff[r]);
		break;
	}
}

static void
put_jsonl(struct sbuf *b, const struct qopts *o, const struct search_set *set, uint64_t qno,
          const struct hits *h)
{
	sb_printf(b, "{\"query\":%" PRIu64 ",\"hits\":[", qno);
	for (size_t i = 0; i < h->n; i++) {
		const struct hit *x = &h->v[i];
		sb_printf(b, "%s{\"id\":%" PRId64 ",\"distance\":", i ? "," : "", x->id);
		put_float(b, x->dist, 1);
		for (uint32_t f = 0; f < o->nfields; f++) {
			sb_printf(b, ",\"%s\":", o->sc->fields[o->fields[f]].name);
			put_value(b, set->src[x->src].b, o->fields[f], x->row, 1);
		}
		sb_putc(b, '}');
	}
	sb_put(b, "]}", 2);
}

static void
put_tsv(struct sbuf *b, const struct qopts *o, const struct search_set *set, uint64_t qno,
        const struct hits *h)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct hit *x = &h->v[i];
		sb_printf(b, "%" PRIu64 "\t%zu\t%" PRId64 "\t", qno, i + 1, x->id);
		put_float(b, x->dist, 0);
		for (uint32_t f = 0; f < o->nfields; f++) {
			sb_putc(b, '\t');
			put_value(b, set->src[x->src].b, o->fields[f], x->row, 0);
		}
		sb_putc(b, '\n');
	}
}

/* put_ivecs: the TEXMEX layout — a count, then that many int32 ids; a
 * query with fewer than k hits is padded with -1 so every record is k */
static int
put_ivecs(struct sbuf *b, uint32_t k, const struct hits *h, struct vdb_err *e)
{
	size_t n = k ? k : h->n;
	unsigned char w[4];

	put_u32(w, (uint32_t)n);
	sb_put(b, (char *)w, 4);
	for (size_t i = 0; i < n; i++) {
		int64_t id = i < h->n ? h->v[i].id : -1;
		if (id < INT32_MIN || id > INT32_MAX)
			return vdb_err_set(e, VDB_EINPUT,
			                   "id %" PRId64 " does not fit the 32 bits of ivecs", id);
		put_u32(w, (uint32_t)(int32_t)id);
		sb_put(b, (char *)w, 4);
	}
	return VDB_OK;
}

static int
compile(const struct qopts *o, const struct qbatch *q, struct filter ***out, struct vdb_err *e)
{
	struct filter **f = calloc(q->nf ? q->nf : 1, sizeof *f);
	int rc = VDB_OK;

	if (f == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	for (size_t i = 0; i < q->nf && rc == VDB_OK; i++)
		if ((rc = filter_parse(q->fexpr[i], o->sc, &f[i], e)) != VDB_OK)
			vdb_err_prefix(e, "filter: ");
	if (rc != VDB_OK) {
		for (size_t i = 0; i < q->nf; i++)
			filter_free(f[i]);
		free(f);
		return rc;
	}
	*out = f;
	return VDB_OK;
}

int
query_run(struct root *r, const struct qopts *o, struct qbatch *q, struct seg_cache *cache,
          struct sbuf *out, const char *sep, struct vdb_err *e)
{
	struct search_set set;
	struct filter **f = NULL;
	struct hits *h = NULL;
	int rc, open = 0;

	if ((rc = compile(o, q, &f, e)) != VDB_OK)
		return rc;
	if ((h = calloc(q->n ? q->n : 1, sizeof *h)) == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto out;
	}
	if ((rc = search_open(r, o->sc, o->ts, o->partition,
	                      o->exact ? SEARCH_VECTORS : SEARCH_VECTORS | SEARCH_INDEXES, cache,
	                      &set, e)) != VDB_OK)
		goto out;
	open = 1;
	struct search_req rq = {
	        .nq = q->n,
	        .q = q->vec,
	        .k = q->k,
	        .fid = q->fid,
	        .filters = f,
	        .nfilters = q->nf,
	        .has_radius = o->has_radius,
	        .radius = o->radius,
	        .threads = o->threads,
	        .exact = o->exact,
	        .ann = o->ann,
	};
	if ((rc = search_run(&set, &rq, h, e)) != VDB_OK)
		goto out;
	for (size_t i = 0; i < q->n && rc == VDB_OK; i++) {
		switch (o->output) {
		case OUT_JSONL:
			if (sep && i > 0)
				sb_put(out, sep, strlen(sep));
			put_jsonl(out, o, &set, q->first + i, &h[i]);
			if (sep == NULL)
				sb_putc(out, '\n');
			break;
		case OUT_TSV:
			put_tsv(out, o, &set, q->first + i, &h[i]);
			break;
		case OUT_IVECS:
			rc = put_ivecs(out, q->k[i], &h[i], e);
			break;
		}
	}
	if (rc == VDB_OK && out->oom)
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
out:
	if (h)
		for (size_t i = 0; i < q->n; i++)
			hits_free(&h[i]);
	free(h);
	if (open)
		search_close(&set);
	for (size_t i = 0; f && i < q->nf; i++)
		filter_free(f[i]);
	free(f);
	return rc;
}

int
query_count(struct root *r, const struct qopts *o, struct seg_cache *cache, uint64_t *n,
            struct vdb_err *e)
{
	struct search_set set;
	struct filter *f = NULL;
	int rc;

	if (o->filter && (rc = filter_parse(o->filter, o->sc, &f, e)) != VDB_OK) {
		vdb_err_prefix(e, "filter: ");
		return rc;
	}
	if ((rc = search_open(r, o->sc, o->ts, o->partition, 0, cache, &set, e)) == VDB_OK) {
		rc = search_count(&set, f, n, e);
		search_close(&set);
	}
	filter_free(f);
	return rc;
}

int
query_fields(struct qopts *o, const char *list, struct vdb_err *e)
{
	o->nfields = 0;
	if (strcmp(list, "*") == 0) {
		for (uint32_t i = 0; i < o->sc->nfields; i++)
			o->fields[o->nfields++] = (int)i;
		return VDB_OK;
	}
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		char name[VDB_MAX_NAME + 1];
		int f;
		if (n == 0 || n > VDB_MAX_NAME)
			return vdb_err_set(e, VDB_EINPUT, "--fields: bad list '%.64s'", list);
		memcpy(name, p, n);
		name[n] = '\0';
		if ((f = schema_field_index(o->sc, name)) < 0)
			return vdb_err_set(e, VDB_EINPUT,
			                   "--fields: no field '%s' in collection %s", name,
			                   o->sc->name);
		for (uint32_t i = 0; i < o->nfields; i++)
			if (o->fields[i] == f)
				return vdb_err_set(e, VDB_EINPUT, "--fields: '%s' twice", name);
		o->fields[o->nfields++] = f;
		p += n;
		if (*p == ',' && *++p == '\0')
			return vdb_err_set(e, VDB_EINPUT, "--fields: bad list '%.64s'", list);
	}
	return VDB_OK;
}
