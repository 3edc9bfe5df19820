/* record.c: input record readers.  Formats: formats/records.md. */
#include "record.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

#define READ_CHUNK (1u << 20)

int
rec_format_parse(const char *s, int *format)
{
	if (strcmp(s, "jsonl") == 0)
		*format = FMT_JSONL;
	else if (strcmp(s, "tsv") == 0)
		*format = FMT_TSV;
	else if (strcmp(s, "fvecs") == 0)
		*format = FMT_FVECS;
	else if (strcmp(s, "npy") == 0)
		*format = FMT_NPY;
	else
		return -1;
	return 0;
}

/* bad: a record error at the current record */
static int bad(struct rec_reader *r, struct vdb_err *e, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
bad(struct rec_reader *r, struct vdb_err *e, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return vdb_err_set(e, VDB_EINPUT, "%s:%llu: %s", r->name, (unsigned long long)r->recno,
	                   msg);
}

/* fill: make at least need bytes available at buf[pos..len), unless EOF.
 * Returns VDB_OK, REC_IDLE or an I/O error. */
static int
fill(struct rec_reader *r, size_t need, struct vdb_err *e)
{
	while (r->len - r->pos < need && !r->eof) {
		ssize_t n;
		if (r->pos > 0 && r->pos == r->len) {
			r->pos = r->len = 0;
		} else if (r->pos > 0 && r->cap - r->len < READ_CHUNK) {
			memmove(r->buf, r->buf + r->pos, r->len - r->pos);
			r->len -= r->pos;
			r->pos = 0;
		}
		if (r->cap - r->len < READ_CHUNK || r->cap - r->pos < need) {
			size_t cap = r->cap ? r->cap : 4 * READ_CHUNK;
			while (cap - r->len < READ_CHUNK || cap - r->pos < need)
				cap *= 2;
			unsigned char *nb = realloc(r->buf, cap);
			if (nb == NULL)
				return vdb_err_set(e, VDB_ETEMP, "out of memory");
			r->buf = nb;
			r->cap = cap;
		}
		if (r->linger_ms > 0 && r->pending) {
			struct pollfd p = {.fd = r->fd, .events = POLLIN};
			int pr = poll(&p, 1, r->linger_ms);
			if (pr == 0)
				return REC_IDLE;
		}
		n = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vdb_err_errno(e, VDB_ETEMP, "%s: read", r->name);
		}
		if (n == 0)
			r->eof = 1;
		r->len += (size_t)n;
	}
	return VDB_OK;
}

/* ---- JSONL ---- */

static int
json_vector(struct rec_reader *r, json_t *v, float *out, struct vdb_err *e)
{
	size_t n, i;
	json_t *x;

	if (!json_is_array(v))
		return bad(r, e, "\"vector\" is not an array");
	n = json_array_size(v);
	if (n != r->sc->dim)
		return bad(r, e, "wrong dimension (got %zu, want %u)", n, r->sc->dim);
	json_array_foreach (v, i, x) {
		double d;
		if (json_is_real(x))
			d = json_real_value(x);
		else if (json_is_integer(x))
			d = (double)json_integer_value(x);
		else
			return bad(r, e, "vector[%zu] is not a number", i);
		if (!isfinite(d) || fabs(d) > FLT_MAX)
			return bad(r, e, "vector[%zu] is not a finite float32 (%g)", i, d);
		out[i] = (float)d;
	}
	return VDB_OK;
}

static int
set_field(struct rec_reader *r, struct batch *b, uint32_t f, size_t row, json_t *v,
          struct vdb_err *e)
{
	const struct field *fd = &r->sc->fields[f];
	struct col *c = &b->cols[f];

	switch (fd->type) {
	case FT_INT64:
		if (!json_is_integer(v))
			return bad(r, e, "field '%s' wants int64", fd->name);
		c->i64[row] = json_integer_value(v);
		return VDB_OK;
	case FT_DOUBLE:
		if (json_is_real(v))
			c->f64[row] = json_real_value(v);
		else if (json_is_integer(v))
			c->f64[row] = (double)json_integer_value(v);
		else
			return bad(r, e, "field '%s' wants double", fd->name);
		if (!isfinite(c->f64[row]))
			return bad(r, e, "field '%s' is not finite", fd->name);
		return VDB_OK;
	case FT_BOOL:
		if (!json_is_boolean(v))
			return bad(r, e, "field '%s' wants bool", fd->name);
		c->b[row] = json_is_true(v);
		return VDB_OK;
	case FT_STRING:
		if (!json_is_string(v))
			return bad(r, e, "field '%s' wants string", fd->name);
		if (json_string_length(v) > fd->max_len)
			return bad(r, e, "field '%s' is %zu bytes, longer than its %u", fd->name,
			           json_string_length(v), fd->max_len);
		return batch_put_string(b, f, row, json_string_value(v), json_string_length(v), e);
	}
	return vdb_err_set(e, VDB_EINTERNAL, "field type %d", fd->type);
}

static int
parse_json(struct rec_reader *r, const char *line, size_t len, struct batch *b, struct vdb_err *e)
{
	const struct schema *sc = r->sc;
	size_t row = b->n;
	uint64_t seen = 0; /* bit i: field i */
	int have_id = 0, have_vec = 0;
	json_error_t jerr;
	const char *key;
	json_t *o, *v;
	int rc = VDB_OK;

	o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (o == NULL)
		return bad(r, e, "malformed JSON at column %d: %s", jerr.column, jerr.text);
	if (!json_is_object(o)) {
		rc = bad(r, e, "record is not a JSON object");
		goto out;
	}
	json_object_foreach (o, key, v) {
		int f;
		if (strcmp(key, "id") == 0) {
			if (sc->auto_id) {
				rc = bad(r, e, "\"id\" given, but the collection assigns ids");
				goto out;
			}
			if (!json_is_integer(v)) {
				rc = bad(r, e, "\"id\" is not an integer");
				goto out;
			}
			b->ids[row] = json_integer_value(v);
			have_id = 1;
		} else if (strcmp(key, "vector") == 0) {
			if ((rc = json_vector(r, v, b->vec + row * sc->dim, e)) != VDB_OK)
				goto out;
			have_vec = 1;
		} else if ((f = schema_field_index(sc, key)) >= 0) {
			if ((rc = set_field(r, b, (uint32_t)f, row, v, e)) != VDB_OK)
				goto out;
			seen |= 1ull << f;
		} else {
			rc = bad(r, e, "unknown field '%.200s'", key);
			goto out;
		}
	}
	if (!sc->auto_id && !have_id) {
		rc = bad(r, e, "missing \"id\"");
		goto out;
	}
	if (!have_vec) {
		rc = bad(r, e, "missing \"vector\"");
		goto out;
	}
	for (uint32_t i = 0; i < sc->nfields; i++) {
		if (!(seen & 1ull << i)) {
			rc = bad(r, e, "missing field '%s'", sc->fields[i].name);
			goto out;
		}
	}
out:
	json_decref(o);
	return rc;
}

/* ---- JSONL fast path ----
 * jansson builds a tree with an allocation per value, which costs more
 * than everything else in ingest together.  The common record — a flat
 * object of numbers, plain ASCII strings, booleans and one array of
 * numbers — is scanned here straight into the batch.  This accepts a
 * strict subset of JSON and produces the values jansson would; anything
 * else (escapes, non-ASCII, nesting, null, duplicate or unknown keys,
 * any error) returns FAST_NO and the line goes to jansson, which stays
 * the authority on what is valid and on every error message. */

#define FAST_NO 1

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

struct scan {
	const char *p, *end;
};

static void
ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* fast_number: a JSON number; *is_int when it has no fraction or
 * exponent.  Exact (Clinger's fast path) or strtod, as jansson does. */
static int
fast_number(struct scan *s, double *d, int64_t *i, int *is_int, int for_float)
{
	const char *start = s->p, *q = s->p;
	uint64_t m = 0;
	int digits = 0, frac = 0, neg = 0, exp = 0, eneg = 0;

	if (q < s->end && *q == '-')
		neg = 1, q++;
	if (q >= s->end || *q < '0' || *q > '9')
		return -1;
	if (*q == '0' && q + 1 < s->end && q[1] >= '0' && q[1] <= '9')
		return -1; /* leading zero: invalid JSON, jansson says so */
	for (; q < s->end && *q >= '0' && *q <= '9'; q++, digits++)
		m = m * 10 + (uint64_t)(*q - '0');
	*is_int = 1;
	if (q < s->end && *q == '.') {
		*is_int = 0;
		q++;
		if (q >= s->end || *q < '0' || *q > '9')
			return -1;
		for (; q < s->end && *q >= '0' && *q <= '9'; q++, digits++, frac++)
			m = m * 10 + (uint64_t)(*q - '0');
	}
	if (q < s->end && (*q == 'e' || *q == 'E')) {
		*is_int = 0;
		q++;
		if (q < s->end && (*q == '+' || *q == '-'))
			eneg = *q++ == '-';
		if (q >= s->end || *q < '0' || *q > '9')
			return -1;
		for (; q < s->end && *q >= '0' && *q <= '9'; q++)
			if (exp < 10000)
				exp = exp * 10 + (*q - '0');
	}
	s->p = q;
	if (digits > 19)
		goto slow;
	if (*is_int) {
		if (m > (uint64_t)INT64_MAX + (uint64_t)neg)
			return -1; /* jansson: integer overflow */
		*i = neg ? (int64_t)(0 - m) : (int64_t)m;
		*d = (double)*i; /* as jansson: "-0" is the integer 0 */
		return 0;
	}
	exp = (eneg ? -exp : exp) - frac;
	if (m <= (1ull << 53) && exp >= -22 && exp <= 22) {
		*d = exp < 0 ? (double)m / pow10_exact[-exp] : (double)m * pow10_exact[exp];
		if (neg)
			*d = -*d;
		return 0;
	}
	/* a value bound for float32 (17-digit exports of float32 data are
	 * common): 64-bit-mantissa arithmetic is exact in m and 10^|exp|
	 * and rounds once before the rounding to float — as close as the
	 * double jansson would produce and round again */
	if (for_float && exp >= -22 && exp <= 22) {
		long double v = exp < 0 ? (long double)m / (long double)pow10_exact[-exp]
		                        : (long double)m * (long double)pow10_exact[exp];
		*d = (double)(neg ? -v : v);
		return 0;
	}
slow : {
	char tmp[64];
	char *end;
	if ((size_t)(q - start) >= sizeof(tmp))
		return -1;
	memcpy(tmp, start, (size_t)(q - start));
	tmp[q - start] = '\0';
	errno = 0;
	*d = strtod(tmp, &end);
	if (errno || *end || *is_int)
		return -1;
	return 0;
}
}

/* fast_string: a string without escapes, control bytes or non-ASCII */
static int
fast_string(struct scan *s, const char **str, size_t *len)
{
	const char *q;

	if (s->p >= s->end || *s->p != '"')
		return -1;
	for (q = s->p + 1; q < s->end; q++) {
		unsigned char c = (unsigned char)*q;
		if (c == '"')
			break;
		if (c == '\\' || c < 0x20 || c >= 0x80)
			return -1;
	}
	if (q >= s->end)
		return -1;
	*str = s->p + 1;
	*len = (size_t)(q - s->p - 1);
	s->p = q + 1;
	return 0;
}

static int
fast_vector(struct rec_reader *r, struct scan *s, float *out)
{
	uint32_t k = 0, dim = r->sc->dim;
	double d;
	int64_t i;
	int is_int;

	if (*s->p != '[')
		return -1;
	s->p++;
	ws(s);
	for (;;) {
		if (k == dim || fast_number(s, &d, &i, &is_int, 1) != 0 || !isfinite(d) ||
		    fabs(d) > FLT_MAX)
			return -1;
		out[k++] = (float)d;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return k == dim ? 0 : -1;
		}
		return -1;
	}
}

static int
fast_field(struct rec_reader *r, struct scan *s, struct batch *b, uint32_t f, size_t row)
{
	const struct field *fd = &r->sc->fields[f];
	struct col *c = &b->cols[f];
	const char *str;
	size_t len;
	double d;
	int64_t i;
	int is_int;

	switch (fd->type) {
	case FT_INT64:
		if (fast_number(s, &d, &i, &is_int, 0) != 0 || !is_int)
			return -1;
		c->i64[row] = i;
		return 0;
	case FT_DOUBLE:
		if (fast_number(s, &d, &i, &is_int, 0) != 0 || !isfinite(d))
			return -1;
		c->f64[row] = d;
		return 0;
	case FT_BOOL:
		if (s->end - s->p >= 4 && memcmp(s->p, "true", 4) == 0) {
			c->b[row] = 1;
			s->p += 4;
		} else if (s->end - s->p >= 5 && memcmp(s->p, "false", 5) == 0) {
			c->b[row] = 0;
			s->p += 5;
		} else {
			return -1;
		}
		return 0;
	case FT_STRING:
		if (fast_string(s, &str, &len) != 0 || len > fd->max_len)
			return -1;
		return batch_put_string(b, f, row, str, len, NULL) == VDB_OK ? 0 : -1;
	}
	return -1;
}

static int
json_fast(struct rec_reader *r, const char *line, size_t len, struct batch *b)
{
	const struct schema *sc = r->sc;
	struct scan s = {line, line + len};
	uint64_t seen = 0, want;
	int have_id = 0, have_vec = 0;
	size_t row = b->n;

	ws(&s);
	if (s.p >= s.end || *s.p++ != '{')
		return FAST_NO;
	ws(&s);
	if (s.p < s.end && *s.p == '}')
		return FAST_NO;
	for (;;) {
		const char *key;
		size_t klen;
		if (fast_string(&s, &key, &klen) != 0)
			return FAST_NO;
		ws(&s);
		if (s.p >= s.end || *s.p++ != ':')
			return FAST_NO;
		ws(&s);
		if (s.p >= s.end)
			return FAST_NO;
		if (klen == 2 && memcmp(key, "id", 2) == 0) {
			double d;
			int is_int;
			if (have_id || sc->auto_id ||
			    fast_number(&s, &d, &b->ids[row], &is_int, 0) != 0 || !is_int)
				return FAST_NO;
			have_id = 1;
		} else if (klen == 6 && memcmp(key, "vector", 6) == 0) {
			if (have_vec || fast_vector(r, &s, b->vec + row * sc->dim) != 0)
				return FAST_NO;
			have_vec = 1;
		} else {
			int f = -1;
			for (uint32_t i = 0; i < sc->nfields; i++)
				if (strlen(sc->fields[i].name) == klen &&
				    memcmp(sc->fields[i].name, key, klen) == 0)
					f = (int)i;
			if (f < 0 || (seen & 1ull << f) ||
			    fast_field(r, &s, b, (uint32_t)f, row) != 0)
				return FAST_NO;
			seen |= 1ull << f;
		}
		ws(&s);
		if (s.p < s.end && *s.p == ',') {
			s.p++;
			ws(&s);
			continue;
		}
		if (s.p < s.end && *s.p == '}') {
			s.p++;
			break;
		}
		return FAST_NO;
	}
	ws(&s);
	want = sc->nfields == 64 ? ~0ull : (1ull << sc->nfields) - 1;
	if (s.p != s.end || seen != want || !have_vec || have_id == sc->auto_id)
		return FAST_NO;
	return VDB_OK;
}

/* ---- TSV ---- */

/* utf8_ok: well-formed UTF-8 without NUL, what a JSON string can hold */
static int
utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;
		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return 0;
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* tsv_unescape: s[0..n) without its escapes, into r->scratch (the line
 * itself stays as read, for --rejects) */
static int
tsv_unescape(struct rec_reader *r, const char *s, size_t n, const char **out, size_t *outlen,
             struct vdb_err *e)
{
	size_t o = 0;

	if (n > r->scratch_cap) {
		char *ns = realloc(r->scratch, n);
		if (ns == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		r->scratch = ns;
		r->scratch_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			r->scratch[o++] = s[i];
			continue;
		}
		if (++i == n)
			return bad(r, e, "lone backslash at the end of a field");
		switch (s[i]) {
		case 't':
			r->scratch[o++] = '\t';
			break;
		case 'n':
			r->scratch[o++] = '\n';
			break;
		case 'r':
			r->scratch[o++] = '\r';
			break;
		case '\\':
			r->scratch[o++] = '\\';
			break;
		default:
			return bad(r, e, "unknown escape \\%c", s[i]);
		}
	}
	*out = r->scratch;
	*outlen = o;
	return VDB_OK;
}

static int
tsv_header(struct rec_reader *r, char *line, size_t len, struct vdb_err *e)
{
	uint64_t seen = 0; /* bit i: field i */
	int have_id = 0, have_vec = 0;
	char *p = line, *end = line + len;

	r->tsv_ncols = 0;
	while (p <= end) {
		char *tab = memchr(p, '\t', (size_t)(end - p));
		size_t n = tab ? (size_t)(tab - p) : (size_t)(end - p);
		char name[VDB_MAX_NAME + 1];
		int which;
		if (r->tsv_ncols == TSV_MAX_COLS)
			return bad(r, e, "header: too many columns");
		if (n == 0 || n > VDB_MAX_NAME)
			return bad(r, e, "header: column %d has no usable name", r->tsv_ncols + 1);
		memcpy(name, p, n);
		name[n] = '\0';
		if (strcmp(name, "id") == 0) {
			if (r->sc->auto_id)
				return bad(r, e,
				           "header: \"id\" given, but the collection assigns "
				           "ids");
			which = -1;
		} else if (strcmp(name, "vector") == 0) {
			which = -2;
		} else if ((which = schema_field_index(r->sc, name)) < 0) {
			return bad(r, e, "header: unknown field '%s'", name);
		}
		if ((which == -1 && have_id) || (which == -2 && have_vec) ||
		    (which >= 0 && (seen & 1ull << which)))
			return bad(r, e, "header: column '%s' twice", name);
		if (which == -1)
			have_id = 1;
		else if (which == -2)
			have_vec = 1;
		else
			seen |= 1ull << which;
		r->tsv_cols[r->tsv_ncols++] = which;
		if (tab == NULL)
			break;
		p = tab + 1;
	}
	if (!r->sc->auto_id && !have_id)
		return bad(r, e, "header: no \"id\" column");
	if (!have_vec)
		return bad(r, e, "header: no \"vector\" column");
	for (uint32_t i = 0; i < r->sc->nfields; i++)
		if (!(seen & 1ull << i))
			return bad(r, e, "header: no column for field '%s'", r->sc->fields[i].name);
	return VDB_OK;
}

/* tsv_number: the whole of s[0..n) as a finite double */
static int
tsv_number(const char *s, size_t n, double *v)
{
	char tmp[128], *end;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	*v = strtod(tmp, &end);
	return (*end || errno == ERANGE || !isfinite(*v)) ? -1 : 0;
}

static int
tsv_value(struct rec_reader *r, struct batch *b, int which, size_t row, char *s, size_t n,
          struct vdb_err *e)
{
	uint32_t dim = r->sc->dim;
	double d;

	if (which == -1 || (which >= 0 && r->sc->fields[which].type == FT_INT64)) {
		char tmp[32], *end;
		long long v;
		if (n == 0 || n >= sizeof(tmp))
			return bad(r, e, "'%.*s' is not an int64", (int)(n > 40 ? 40 : n), s);
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		errno = 0;
		v = strtoll(tmp, &end, 10);
		if (*end || errno)
			return bad(r, e, "'%s' is not an int64", tmp);
		if (which == -1)
			b->ids[row] = v;
		else
			b->cols[which].i64[row] = v;
		return VDB_OK;
	}
	if (which == -2) {
		char *p = s, *end = s + n;
		uint32_t k = 0;
		while (p < end) {
			char *comma = memchr(p, ',', (size_t)(end - p));
			size_t len = comma ? (size_t)(comma - p) : (size_t)(end - p);
			if (k == dim)
				return bad(r, e, "wrong dimension (got more than %u)", dim);
			if (tsv_number(p, len, &d) != 0 || fabs(d) > FLT_MAX)
				return bad(r, e, "vector[%u] is not a finite float32", k);
			b->vec[row * dim + k++] = (float)d;
			p = comma ? comma + 1 : end;
		}
		if (k != dim)
			return bad(r, e, "wrong dimension (got %u, want %u)", k, dim);
		return VDB_OK;
	}
	const struct field *f = &r->sc->fields[which];
	switch (f->type) {
	case FT_DOUBLE:
		if (tsv_number(s, n, &d) != 0)
			return bad(r, e, "field '%s' wants a finite double", f->name);
		b->cols[which].f64[row] = d;
		return VDB_OK;
	case FT_BOOL:
		if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 1 && s[0] == '1'))
			b->cols[which].b[row] = 1;
		else if ((n == 5 && memcmp(s, "false", 5) == 0) || (n == 1 && s[0] == '0'))
			b->cols[which].b[row] = 0;
		else
			return bad(r, e, "field '%s' wants true or false", f->name);
		return VDB_OK;
	case FT_STRING: {
		const char *str = NULL;
		int rc = tsv_unescape(r, s, n, &str, &n, e);
		if (rc != VDB_OK)
			return rc;
		if (n > f->max_len)
			return bad(r, e, "field '%s' is %zu bytes, longer than its %u", f->name, n,
			           f->max_len);
		if (!utf8_ok((const unsigned char *)str, n))
			return bad(r, e, "field '%s' is not UTF-8 text", f->name);
		return batch_put_string(b, (uint32_t)which, row, str, n, e);
	}
	}
	return vdb_err_set(e, VDB_EINTERNAL, "tsv column kind %d", which);
}

static int
parse_tsv(struct rec_reader *r, char *line, size_t len, struct batch *b, struct vdb_err *e)
{
	char *p = line, *end = line + len;
	int col = 0, rc;

	for (;;) {
		char *tab = memchr(p, '\t', (size_t)(end - p));
		size_t n = tab ? (size_t)(tab - p) : (size_t)(end - p);
		if (col == r->tsv_ncols)
			return bad(r, e, "more columns than the header's %d", r->tsv_ncols);
		if ((rc = tsv_value(r, b, r->tsv_cols[col], b->n, p, n, e)) != VDB_OK)
			return rc;
		col++;
		if (tab == NULL)
			break;
		p = tab + 1;
	}
	if (col != r->tsv_ncols)
		return bad(r, e, "%d columns, the header has %d", col, r->tsv_ncols);
	return VDB_OK;
}

/* next_line: the next non-blank line, without its newline (or CR LF) */
static int
next_line(struct rec_reader *r, char **line, size_t *len, struct vdb_err *e)
{
	size_t scanned = 0;
	int rc;

	for (;;) {
		unsigned char *nl =
		        r->len > r->pos + scanned
		                ? memchr(r->buf + r->pos + scanned, '\n', r->len - r->pos - scanned)
		                : NULL;
		if (nl == NULL && !r->eof) {
			scanned = r->len - r->pos;
			if (scanned > REC_MAX_LINE) {
				r->fatal = 1;
				r->recno++;
				r->raw = NULL;
				r->rawlen = 0;
				return bad(r, e, "line longer than %u bytes", REC_MAX_LINE);
			}
			if ((rc = fill(r, scanned + 1, e)) != VDB_OK)
				return rc;
			continue;
		}
		size_t n = nl ? (size_t)(nl - (r->buf + r->pos)) : r->len - r->pos;
		if (nl == NULL && n == 0)
			return REC_EOF;
		*line = (char *)r->buf + r->pos;
		r->raw = r->buf + r->pos;
		r->rawlen = n + (nl != NULL);
		r->pos += n + (nl != NULL);
		r->recno++;
		scanned = 0;
		if (n > REC_MAX_LINE) /* however the reads fell: the same limit */
			return bad(r, e, "line longer than %u bytes", REC_MAX_LINE);
		if (n > 0 && (*line)[n - 1] == '\r')
			n--;
		size_t i = 0;
		while (i < n && ((*line)[i] == ' ' || (*line)[i] == '\t'))
			i++;
		if (i == n)
			continue; /* blank */
		*len = n;
		return VDB_OK;
	}
}

/* ---- binary ---- */

static int
check_row(struct rec_reader *r, const float *v, struct vdb_err *e)
{
	uint32_t dim = r->sc->dim, bad_bits = 0;

	/* a NaN or infinity has every exponent bit set: one branch-free pass
	 * the compiler vectorises, and a slow one only to name the culprit */
	for (uint32_t i = 0; i < dim; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		bad_bits |= (u & 0x7f800000u) == 0x7f800000u;
	}
	if (bad_bits == 0)
		return VDB_OK;
	for (uint32_t i = 0; i < dim; i++)
		if (!isfinite(v[i]))
			return bad(r, e, "vector[%u] is %s", i, isnan(v[i]) ? "NaN" : "infinite");
	return VDB_OK;
}

static int
next_fvecs(struct rec_reader *r, struct batch *b, struct vdb_err *e)
{
	size_t dim = r->sc->dim, row = (dim + 1) * 4;
	uint32_t d;
	int rc;

	if ((rc = fill(r, row, e)) != VDB_OK)
		return rc;
	if (r->len == r->pos)
		return REC_EOF;
	/* a row of another sane length: have all of it, to skip it whole */
	if (r->len - r->pos >= 4) {
		d = get_u32(r->buf + r->pos);
		if (d != dim && d >= 1 && d <= VDB_MAX_DIM &&
		    (rc = fill(r, 4 + (size_t)d * 4, e)) != VDB_OK)
			return rc;
	}
	r->recno++;
	r->raw = r->buf + r->pos;
	if (r->len - r->pos < 4) {
		r->fatal = 1;
		r->rawlen = r->len - r->pos;
		r->pos = r->len;
		return bad(r, e, "truncated row header");
	}
	d = get_u32(r->buf + r->pos);
	if (d != dim) {
		/* rows say their own length: skip a sane one, stop on nonsense */
		if (d == 0 || d > VDB_MAX_DIM || r->len - r->pos < 4 + (size_t)d * 4) {
			r->fatal = 1;
			r->rawlen = r->len - r->pos;
			r->pos = r->len;
			return bad(r, e, "wrong dimension (got %u, want %zu); cannot continue", d,
			           dim);
		}
		r->rawlen = 4 + (size_t)d * 4;
		r->pos += r->rawlen;
		(*r->next_id)++;
		return bad(r, e, "wrong dimension (got %u, want %zu)", d, dim);
	}
	if (r->len - r->pos < row) {
		r->fatal = 1;
		r->rawlen = r->len - r->pos;
		r->pos = r->len;
		return bad(r, e, "truncated row (%zu of %zu bytes)", r->rawlen, row);
	}
	r->rawlen = row;
	float *dst = b->vec + b->n * dim;
	memcpy(dst, r->buf + r->pos + 4, dim * 4);
	r->pos += row;
	b->ids[b->n] = (*r->next_id)++;
	return check_row(r, dst, e);
}

static int
next_npy(struct rec_reader *r, struct batch *b, struct vdb_err *e)
{
	size_t dim = r->sc->dim, row = dim * (r->npy_f8 ? 8 : 4);
	float *dst = b->vec + b->n * dim;
	int rc;

	if ((rc = fill(r, row, e)) != VDB_OK)
		return rc;
	if (r->npy_left == 0) {
		if (r->len != r->pos) {
			r->fatal = 1;
			r->recno++;
			r->raw = r->buf + r->pos;
			r->rawlen = r->len - r->pos;
			return bad(r, e, "%zu bytes after the last row the header promises",
			           r->len - r->pos);
		}
		return REC_EOF;
	}
	r->recno++;
	r->raw = r->buf + r->pos;
	if (r->len - r->pos < row) {
		r->fatal = 1;
		r->rawlen = r->len - r->pos;
		r->pos = r->len;
		return bad(r, e, "truncated row (%zu of %zu bytes; %llu rows missing)", r->rawlen,
		           row, (unsigned long long)r->npy_left);
	}
	if (r->npy_f8) {
		for (size_t i = 0; i < dim; i++) {
			double d;
			memcpy(&d, r->buf + r->pos + 8 * i, 8);
			if (isfinite(d) && fabs(d) > FLT_MAX)
				d = INFINITY;
			dst[i] = (float)d;
		}
	} else {
		memcpy(dst, r->buf + r->pos, row);
	}
	r->rawlen = row;
	r->pos += row;
	r->npy_left--;
	b->ids[b->n] = (*r->next_id)++;
	return check_row(r, dst, e);
}

/* npy_header: version 1-3 header with descr '<f4' or '<f8', C order and
 * a 2-d shape (rows, dim) */
static int
npy_header(struct rec_reader *r, struct vdb_err *e)
{
	size_t hlen, pre;
	char *h, *p;
	unsigned long long rows, cols;
	int rc;

	r->recno = 0;
	if ((rc = fill(r, 12, e)) != VDB_OK)
		return rc;
	if (r->len < 10 || memcmp(r->buf, "\x93NUMPY", 6) != 0)
		return vdb_err_set(e, VDB_EINPUT, "%s: not an npy file (bad magic)", r->name);
	if (r->buf[6] == 1) {
		hlen = get_u16(r->buf + 8);
		pre = 10;
	} else if (r->buf[6] == 2 || r->buf[6] == 3) {
		if (r->len < 12)
			return vdb_err_set(e, VDB_EINPUT, "%s: truncated npy header", r->name);
		hlen = get_u32(r->buf + 8);
		pre = 12;
	} else {
		return vdb_err_set(e, VDB_EINPUT, "%s: npy version %u unknown", r->name, r->buf[6]);
	}
	if (hlen > 1 << 20)
		return vdb_err_set(e, VDB_EINPUT, "%s: npy header of %zu bytes", r->name, hlen);
	if ((rc = fill(r, pre + hlen, e)) != VDB_OK)
		return rc;
	if (r->len < pre + hlen)
		return vdb_err_set(e, VDB_EINPUT, "%s: truncated npy header", r->name);
	h = malloc(hlen + 1);
	if (h == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	memcpy(h, r->buf + pre, hlen);
	h[hlen] = '\0';
	rc = VDB_EINPUT;
	if ((p = strstr(h, "'descr':")) == NULL)
		goto bad_header;
	p += 8;
	while (*p == ' ')
		p++;
	if (strncmp(p, "'<f4'", 5) == 0)
		r->npy_f8 = 0;
	else if (strncmp(p, "'<f8'", 5) == 0)
		r->npy_f8 = 1;
	else {
		vdb_err_set(e, VDB_EINPUT, "%s: npy dtype %.10s unsupported (want <f4 or <f8)",
		            r->name, p);
		goto out;
	}
	if ((p = strstr(h, "'fortran_order':")) == NULL)
		goto bad_header;
	p += 16;
	while (*p == ' ')
		p++;
	if (strncmp(p, "False", 5) != 0) {
		vdb_err_set(e, VDB_EINPUT, "%s: npy in Fortran order is unsupported", r->name);
		goto out;
	}
	int used = 0;
	if ((p = strstr(h, "'shape':")) == NULL ||
	    sscanf(p + 8, " (%llu, %llu)%n", &rows, &cols, &used) != 2 || used == 0) {
		vdb_err_set(e, VDB_EINPUT, "%s: npy shape must be (rows, dim)", r->name);
		goto out;
	}
	if (cols != r->sc->dim) {
		vdb_err_set(e, VDB_EINPUT, "%s: wrong dimension (got %llu, want %u)", r->name, cols,
		            r->sc->dim);
		goto out;
	}
	r->npy_left = rows;
	r->pos = pre + hlen;
	rc = VDB_OK;
	goto out;
bad_header:
	vdb_err_set(e, VDB_EINPUT, "%s: malformed npy header", r->name);
out:
	free(h);
	return rc;
}

int
rec_open(struct rec_reader *r, int format, const struct schema *sc, int fd, const char *name,
         int64_t *next_id, struct vdb_err *e)
{
	char *line;
	size_t len;
	int rc;

	memset(r, 0, sizeof(*r));
	r->format = format;
	r->sc = sc;
	r->fd = fd;
	r->name = name;
	r->next_id = next_id;
	/* a regular file is read in place: one copy fewer for every byte.
	 * Private and writable, because TSV unescapes strings where they lie */
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    (uint64_t)st.st_size < SIZE_MAX / 2) {
		void *m =
		        mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
			r->buf = m;
			r->cap = r->len = (size_t)st.st_size;
			r->eof = r->mapped = 1;
		}
	}
	if ((format == FMT_FVECS || format == FMT_NPY) && sc->nfields > 0)
		return vdb_err_set(e, VDB_EINPUT,
		                   "%s: %s rows hold only vectors, but collection '%s' has "
		                   "field '%s' (use JSONL or TSV)",
		                   name, format == FMT_NPY ? "npy" : "fvecs", sc->name,
		                   sc->fields[0].name);
	if (format == FMT_NPY)
		return npy_header(r, e);
	if (format == FMT_TSV) {
		rc = next_line(r, &line, &len, e);
		if (rc == REC_EOF)
			return vdb_err_set(e, VDB_EINPUT, "%s: empty input: no header line", name);
		if (rc != VDB_OK)
			return rc;
		return tsv_header(r, line, len, e);
	}
	return VDB_OK;
}

void
rec_close(struct rec_reader *r)
{
	if (r->mapped)
		munmap(r->buf, r->cap);
	else
		free(r->buf);
	free(r->scratch);
	r->scratch = NULL;
	r->buf = NULL;
}

/* drop_behind: give back the pages of a mapped input already read, up to
 * the current record (kept for --rejects), so a large file does not sit
 * in our resident set */
static void
drop_behind(struct rec_reader *r)
{
	size_t upto = (size_t)(r->raw - r->buf) & ~(size_t)((1u << 20) - 1);

	if (upto >= r->dropped + (32u << 20)) {
		madvise(r->buf + r->dropped, upto - r->dropped, MADV_DONTNEED);
		r->dropped = upto;
	}
}

int
rec_next(struct rec_reader *r, struct batch *b, struct vdb_err *e)
{
	char *line;
	size_t len;
	int rc;

	if (r->fatal)
		return REC_EOF;
	if ((rc = batch_reserve(b, 1, e)) != VDB_OK)
		return rc;
	switch (r->format) {
	case FMT_FVECS:
		rc = next_fvecs(r, b, e);
		break;
	case FMT_NPY:
		rc = next_npy(r, b, e);
		break;
	default:
		rc = next_line(r, &line, &len, e);
		if (rc != VDB_OK)
			return rc;
		if (r->format == FMT_TSV)
			rc = parse_tsv(r, line, len, b, e);
		else if ((rc = json_fast(r, line, len, b)) == FAST_NO)
			rc = parse_json(r, line, len, b, e);
		break;
	}
	if (rc == VDB_OK) {
		if (r->sc->auto_id && r->format <= FMT_TSV)
			b->ids[b->n] = 0; /* assigned when the batch commits */
		b->n++;
	}
	if (r->mapped && r->raw)
		drop_behind(r);
	return rc;
}
