/* queries.c: query input — JSONL objects {"vector": [...], "k": K,
 * "filter": "..."} or fvecs records — read in batches; see vdb-query(1). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "query.h"

void
qb_clear(struct qbatch *q)
{
	for (size_t i = 0; i < q->nf; i++)
		free(q->fexpr[i]);
	q->nf = 0;
	q->first += q->n;
	q->n = 0;
}

void
qb_free(struct qbatch *q)
{
	qb_clear(q);
	free(q->vec);
	free(q->k);
	free(q->fid);
	free(q->fexpr);
	memset(q, 0, sizeof *q);
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
qb_add(struct qbatch *q, const struct qopts *o, const float *vec, long k, const char *filter,
       struct vdb_err *e)
{
	size_t dim = o->sc->dim;
	uint32_t fid = SEARCH_NO_FILTER;

	for (size_t i = 0; i < dim; i++)
		if (!isfinite(vec[i]))
			return vdb_err_set(e, VDB_EINPUT, "value %zu of the vector is not finite",
			                   i);
	if (k < 0)
		k = o->k ? o->k : o->has_radius ? 0 : 10;
	else if (k == 0 || k > SEARCH_MAX_K)
		return vdb_err_set(e, VDB_EINPUT, "k %ld out of range 1..%d", k, SEARCH_MAX_K);
	if (filter == NULL)
		filter = o->filter;
	if (q->n == q->cap) {
		size_t nc = q->cap ? q->cap * 2 : 64;
		if (grow((void **)&q->vec, nc, dim * sizeof(float)) ||
		    grow((void **)&q->k, nc, sizeof *q->k) ||
		    grow((void **)&q->fid, nc, sizeof *q->fid) ||
		    grow((void **)&q->fexpr, nc, sizeof *q->fexpr))
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		q->cap = nc;
	}
	if (filter) {
		for (size_t i = 0; i < q->nf && fid == SEARCH_NO_FILTER; i++)
			if (strcmp(q->fexpr[i], filter) == 0)
				fid = (uint32_t)i;
		if (fid == SEARCH_NO_FILTER) {
			/* fexpr has room: nf <= n < cap */
			if ((q->fexpr[q->nf] = strdup(filter)) == NULL)
				return vdb_err_set(e, VDB_ETEMP, "out of memory");
			fid = (uint32_t)q->nf++;
		}
	}
	memcpy(q->vec + q->n * dim, vec, dim * sizeof(float));
	q->k[q->n] = (uint32_t)k;
	q->fid[q->n] = fid;
	q->n++;
	return VDB_OK;
}

int
qb_json(struct qbatch *q, const struct qopts *o, const char *line, size_t len, struct vdb_err *e)
{
	json_error_t je;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
	json_t *v;
	const char *key, *filter = NULL;
	float *vec = NULL;
	long k = -1;
	int rc = VDB_OK;

	if (j == NULL)
		return vdb_err_set(e, VDB_EINPUT, "column %d: %s", je.column, je.text);
	if (!json_is_object(j)) {
		rc = vdb_err_set(e, VDB_EINPUT, "a query is an object {\"vector\": [...]}");
		goto out;
	}
	json_object_foreach (j, key, v) {
		if (strcmp(key, "vector") == 0) {
			size_t n = json_array_size(v);
			if (!json_is_array(v) || n != o->sc->dim) {
				rc = vdb_err_set(
				        e, VDB_EINPUT,
				        "\"vector\" has %zu values, want %u (the collection's "
				        "dimension)",
				        n, o->sc->dim);
				goto out;
			}
			if ((vec = malloc(n * sizeof *vec)) == NULL) {
				rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
				goto out;
			}
			for (size_t i = 0; i < n; i++) {
				json_t *x = json_array_get(v, i);
				double d = json_real_value(x);
				if (!json_is_real(x) || !(fabs(d) <= 3.4028234663852886e38)) {
					rc = vdb_err_set(
					        e, VDB_EINPUT,
					        "\"vector\" value %zu is not a finite float", i);
					goto out;
				}
				vec[i] = (float)d;
			}
		} else if (strcmp(key, "k") == 0) {
			double d = json_real_value(v);
			if (!json_is_real(v) || d != floor(d) || d < 1 || d > SEARCH_MAX_K) {
				rc = vdb_err_set(e, VDB_EINPUT, "\"k\" must be an integer 1..%d",
				                 SEARCH_MAX_K);
				goto out;
			}
			k = (long)d;
		} else if (strcmp(key, "filter") == 0) {
			if (!json_is_string(v)) {
				rc = vdb_err_set(e, VDB_EINPUT, "\"filter\" must be a string");
				goto out;
			}
			filter = json_string_value(v);
		} else {
			rc = vdb_err_set(e, VDB_EINPUT,
			                 "unknown key \"%.64s\" (a query has vector, k, filter)",
			                 key);
			goto out;
		}
	}
	if (vec == NULL) {
		rc = vdb_err_set(e, VDB_EINPUT, "no \"vector\"");
		goto out;
	}
	rc = qb_add(q, o, vec, k, filter, e);
out:
	free(vec);
	json_decref(j);
	return rc;
}

struct qreader {
	int fd, fvecs, regular;
	char *name;
	char *buf;
	size_t pos, len, cap;
	int eof;
	uint64_t line; /* JSONL: lines read; fvecs: records */
	float *vec;
};

int
qr_open(const char *path, int fvecs, struct qreader **out, struct vdb_err *e)
{
	struct qreader *r = calloc(1, sizeof *r);
	struct stat st;

	if (r == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	r->fvecs = fvecs;
	r->fd = 0;
	if (path && strcmp(path, "-") != 0) {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			int rc = vdb_err_errno(e, errno == ENOENT ? VDB_EINPUT : VDB_ETEMP, "%s",
			                       path);
			free(r);
			return rc;
		}
	}
	r->name = strdup(path && strcmp(path, "-") != 0 ? path : "stdin");
	r->cap = 1u << 20;
	r->buf = malloc(r->cap);
	if (r->name == NULL || r->buf == NULL) {
		qr_close(r);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	r->regular = fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode);
	*out = r;
	return VDB_OK;
}

void
qr_close(struct qreader *r)
{
	if (r == NULL)
		return;
	if (r->fd > 0)
		close(r->fd);
	free(r->name);
	free(r->buf);
	free(r->vec);
	free(r);
}

/* fill: read more after what is buffered; 0 on data or EOF */
static int
fill(struct qreader *r, size_t need, struct vdb_err *e)
{
	ssize_t got;

	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	if (need > r->cap || r->len == r->cap) {
		size_t nc = r->cap * 2 > need ? r->cap * 2 : need;
		if (nc > (size_t)QUERY_MAX_LINE + 2 && r->cap >= (size_t)QUERY_MAX_LINE + 2)
			return vdb_err_set(e, VDB_EINPUT, "%s:%llu: query longer than %u bytes",
			                   r->name, (unsigned long long)r->line + 1,
			                   QUERY_MAX_LINE);
		if (nc > (size_t)QUERY_MAX_LINE + 2)
			nc = (size_t)QUERY_MAX_LINE + 2;
		if (grow((void **)&r->buf, nc, 1))
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		r->cap = nc;
	}
	do
		got = read(r->fd, r->buf + r->len, r->cap - r->len);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return vdb_err_errno(e, VDB_ETEMP, "%s", r->name);
	if (got == 0)
		r->eof = 1;
	r->len += (size_t)got;
	return VDB_OK;
}

/* idle: nothing more to read right now (a pipe or terminal) */
static int
idle(const struct qreader *r)
{
	struct pollfd p = {.fd = r->fd, .events = POLLIN};

	return !r->regular && poll(&p, 1, 0) == 0;
}

static int
next_jsonl(struct qreader *r, const struct qopts *o, struct qbatch *q, struct vdb_err *e)
{
	while (q->n < QUERY_BATCH) {
		char *s = r->buf + r->pos, *nl = memchr(s, '\n', r->len - r->pos);
		size_t n;
		int rc;
		if (nl == NULL && !r->eof) {
			if (q->n > 0 && idle(r))
				break;
			if ((rc = fill(r, r->len - r->pos + 1, e)) != VDB_OK)
				return rc;
			continue;
		}
		n = nl ? (size_t)(nl - s) : r->len - r->pos;
		if (nl == NULL && n == 0)
			break; /* the end */
		r->pos += n + (nl != NULL);
		r->line++;
		if (n > QUERY_MAX_LINE)
			return vdb_err_set(e, VDB_EINPUT, "%s:%llu: query longer than %u bytes",
			                   r->name, (unsigned long long)r->line, QUERY_MAX_LINE);
		while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0)
			continue;
		if ((rc = qb_json(q, o, s, n, e)) != VDB_OK) {
			vdb_err_prefix(e, "%s:%llu: ", r->name, (unsigned long long)r->line);
			return rc;
		}
	}
	return VDB_OK;
}

static int
next_fvecs(struct qreader *r, const struct qopts *o, struct qbatch *q, struct vdb_err *e)
{
	size_t dim = o->sc->dim, rec = 4 + 4 * dim;
	int rc;

	if (r->vec == NULL && (r->vec = malloc(dim * sizeof(float))) == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	while (q->n < QUERY_BATCH) {
		size_t avail = r->len - r->pos;
		if (avail >= 4) {
			uint32_t d = get_u32((const unsigned char *)r->buf + r->pos);
			if (d != dim)
				return vdb_err_set(
				        e, VDB_EINPUT,
				        "%s: query %llu: dimension %u, want %zu (the collection's)",
				        r->name, (unsigned long long)r->line + 1, d, dim);
		}
		if (avail < rec) {
			if (r->eof) {
				if (avail == 0)
					break;
				return vdb_err_set(e, VDB_EINPUT,
				                   "%s: query %llu: truncated (%zu bytes of %zu)",
				                   r->name, (unsigned long long)r->line + 1, avail,
				                   rec);
			}
			if (q->n > 0 && idle(r))
				break;
			if ((rc = fill(r, rec, e)) != VDB_OK)
				return rc;
			continue;
		}
		memcpy(r->vec, r->buf + r->pos + 4, dim * 4);
		r->pos += rec;
		r->line++;
		if ((rc = qb_add(q, o, r->vec, -1, NULL, e)) != VDB_OK) {
			vdb_err_prefix(e, "%s: query %llu: ", r->name, (unsigned long long)r->line);
			return rc;
		}
	}
	return VDB_OK;
}

int
qr_next(struct qreader *r, const struct qopts *o, struct qbatch *q, struct vdb_err *e)
{
	qb_clear(q);
	return r->fvecs ? next_fvecs(r, o, q, e) : next_jsonl(r, o, q, e);
}
