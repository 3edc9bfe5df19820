/* serve.c: vdb-query serve — newline-framed JSON requests on stdin, one
 * response line each on stdout (formats/wire.md).  Segments stay mapped
 * and decoded between requests; every request takes its own snapshot. */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jscan.h"
#include "query.h"

/* a collection this server has searched, with its segments; allocated
 * once and never moved, because cached batches point at its schema (a
 * collection's schema never changes) */
struct coll {
	struct schema sc;
	struct seg_cache *cache;
};

/* A request's "vector" or "vectors" read straight from its text
 * (fast_read): a batch of queries is mostly numbers, and a tree of them
 * (jansson) cost a fifth of a small batch's search.  Only a value that is
 * plainly right is read here; anything else goes to jansson, which gives
 * the errors. */
struct fastvec {
	int on; /* this request's vectors are here */
	int many; /* "vectors" rather than "vector" */
	float *v; /* every number, in order */
	size_t n, cap;
	size_t *len; /* numbers in each vector */
	size_t nvec, lcap;
	char *line; /* the request with that value replaced by 0 */
	size_t linelen, linecap;
};

struct server {
	struct root *r;
	int threads;
	struct coll **c;
	size_t nc;
	struct sbuf out;
	struct qbatch q;
	struct fastvec fv;
};

static const char *
code_name(int rc)
{
	switch (rc) {
	case VDB_EINPUT:
	case VDB_EEXIST:
		return "input";
	case VDB_ENOENT:
		return "notfound";
	case VDB_ECORRUPT:
		return "corrupt";
	case VDB_ETEMP:
		return "temporary";
	default:
		return "internal";
	}
}

static int
coll_get(struct server *s, const char *name, struct coll **out, struct vdb_err *e)
{
	struct schema sc;
	struct coll *c, **nv;
	int rc;

	if ((rc = meta_collection_get(s->r->meta, name, &sc, e)) != VDB_OK)
		return rc;
	for (size_t i = 0; i < s->nc; i++)
		if (s->c[i]->sc.id == sc.id) {
			*out = s->c[i];
			return VDB_OK;
		}
	if ((nv = realloc(s->c, (s->nc + 1) * sizeof *nv)) == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	s->c = nv;
	if ((c = calloc(1, sizeof *c)) == NULL || (c->cache = seg_cache_new()) == NULL) {
		free(c);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	c->sc = sc;
	s->c[s->nc++] = c;
	*out = c;
	return VDB_OK;
}

static int
get_string(json_t *req, const char *key, const char **out, struct vdb_err *e)
{
	json_t *v = json_object_get(req, key);

	*out = NULL;
	if (v == NULL)
		return VDB_OK;
	if (!json_is_string(v))
		return vdb_err_set(e, VDB_EINPUT, "\"%s\" must be a string", key);
	*out = json_string_value(v);
	return VDB_OK;
}

static int
add_vector(struct server *s, const struct qopts *o, json_t *v, long k, struct vdb_err *e)
{
	size_t n = json_array_size(v);
	float *vec;
	int rc = VDB_OK;

	if (!json_is_array(v) || n != o->sc->dim)
		return vdb_err_set(e, VDB_EINPUT, "a vector has %zu values, want %u", n,
		                   o->sc->dim);
	if ((vec = malloc(n * sizeof *vec)) == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	for (size_t i = 0; i < n && rc == VDB_OK; i++) {
		json_t *x = json_array_get(v, i);
		double d = json_number_value(x);
		if (!json_is_number(x) || !(fabs(d) <= 3.4028234663852886e38))
			rc = vdb_err_set(e, VDB_EINPUT, "vector value %zu is not a finite float",
			                 i);
		vec[i] = (float)d;
	}
	if (rc == VDB_OK)
		rc = qb_add(&s->q, o, vec, k, NULL, e);
	free(vec);
	return rc;
}

/* ---- fast_read: see struct fastvec ---- */

/* fj_number: a JSON number read as jansson reads it (an integer as a
 * 64-bit integer, made a double; anything else by strtod), if it is one
 * and a finite float; else NULL */
static const char *
fj_number(const char *p, const char *end, float *out)
{
	const char *q = p;
	char tok[64];
	int is_int = 1;
	double d;

	if (q < end && *q == '-')
		q++;
	if (q >= end || *q < '0' || *q > '9')
		return NULL;
	if (*q == '0')
		q++;
	else
		while (q < end && *q >= '0' && *q <= '9')
			q++;
	if (q < end && *q == '.') {
		is_int = 0;
		if (++q >= end || *q < '0' || *q > '9')
			return NULL;
		while (q < end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		is_int = 0;
		if (++q < end && (*q == '+' || *q == '-'))
			q++;
		if (q >= end || *q < '0' || *q > '9')
			return NULL;
		while (q < end && *q >= '0' && *q <= '9')
			q++;
	}
	/* long integers: jansson's range rules; long reals: rare */
	if ((size_t)(q - p) >= (is_int ? 19 : sizeof tok))
		return NULL;
	memcpy(tok, p, (size_t)(q - p));
	tok[q - p] = '\0';
	d = is_int ? (double)strtoll(tok, NULL, 10) : strtod(tok, NULL);
	if (!(fabs(d) <= 3.4028234663852886e38))
		return NULL;
	*out = (float)d;
	return q;
}

/* fj_vector: [n, n, ...] into fv, its length recorded */
static const char *
fj_vector(struct fastvec *fv, const char *p, const char *end)
{
	size_t n0 = fv->n;

	if (p >= end || *p != '[')
		return NULL;
	p = jscan_ws(p + 1, end);
	if (p < end && *p == ']')
		p++;
	else
		for (;;) {
			if (fv->n == fv->cap) {
				size_t nc = fv->cap ? fv->cap * 2 : 1024;
				float *nv = realloc(fv->v, nc * sizeof *nv);
				if (nv == NULL)
					return NULL;
				fv->v = nv;
				fv->cap = nc;
			}
			if ((p = fj_number(p, end, &fv->v[fv->n])) == NULL)
				return NULL;
			fv->n++;
			p = jscan_ws(p, end);
			if (p < end && *p == ']') {
				p++;
				break;
			}
			if (p >= end || *p != ',')
				return NULL;
			p = jscan_ws(p + 1, end);
		}
	if (fv->nvec == fv->lcap) {
		size_t nc = fv->lcap ? fv->lcap * 2 : 64;
		size_t *nl = realloc(fv->len, nc * sizeof *nl);
		if (nl == NULL)
			return NULL;
		fv->len = nl;
		fv->lcap = nc;
	}
	fv->len[fv->nvec++] = fv->n - n0;
	return p;
}

/* fj_vectors: [vector, ...], at least one, into fv */
static const char *
fj_vectors(struct fastvec *fv, const char *p, const char *end)
{
	if (p >= end || *p != '[')
		return NULL;
	p = jscan_ws(p + 1, end);
	for (;;) {
		if ((p = fj_vector(fv, p, end)) == NULL)
			return NULL;
		p = jscan_ws(p, end);
		if (p < end && *p == ']')
			return p + 1;
		if (p >= end || *p != ',')
			return NULL;
		p = jscan_ws(p + 1, end);
	}
}

/* fast_read: fv->on if the request's one "vector" or "vectors" was read;
 * then fv->line is the request with that value replaced by 0 */
static void
fast_read(struct fastvec *fv, const char *line, size_t len)
{
	static const char *const keys[] = {"vector", "vectors"};
	const char *end = line + len, *p;
	struct jspan v[2], *sp;

	fv->on = 0;
	fv->n = fv->nvec = 0;
	p = jscan_object(jscan_ws(line, end), end, keys, v, 2);
	/* malformed, neither or both, or a key written with escapes:
	 * jansson's, and its errors */
	if (p == NULL || jscan_ws(p, end) != end || (v[0].p == NULL) == (v[1].p == NULL))
		return;
	sp = v[0].p ? &v[0] : &v[1];
	fv->many = sp == &v[1];
	if (sp->escaped || (fv->many ? fj_vectors(fv, sp->p, sp->p + sp->len)
	                             : fj_vector(fv, sp->p, sp->p + sp->len)) != sp->p + sp->len)
		return;
	if (fv->linecap < len + 1) {
		char *nl = realloc(fv->line, len + 1);
		if (nl == NULL)
			return;
		fv->line = nl;
		fv->linecap = len + 1;
	}
	fv->linelen = (size_t)(sp->p - line);
	memcpy(fv->line, line, fv->linelen);
	fv->line[fv->linelen++] = '0';
	memcpy(fv->line + fv->linelen, sp->p + sp->len, (size_t)(end - sp->p - sp->len));
	fv->linelen += (size_t)(end - sp->p - sp->len);
	fv->on = 1;
}

/* req_bounds: one request's memory is bounded: its heaps hold up to
 * vectors x k hits (formats/wire.md) */
static int
req_bounds(size_t nvec, long k, struct vdb_err *e)
{
	if (nvec > SERVE_MAX_QUERIES)
		return vdb_err_set(e, VDB_EINPUT, "more than %d vectors in one request",
		                   SERVE_MAX_QUERIES);
	if (nvec * (size_t)(k > 0 ? k : 10) > SERVE_MAX_HITS)
		return vdb_err_set(e, VDB_EINPUT,
		                   "%zu vectors x k %ld: more than %d hits in one request", nvec,
		                   k > 0 ? k : 10L, SERVE_MAX_HITS);
	return VDB_OK;
}

/* fast_vectors: handle's use of what fast_read read, with handle's checks
 * and errors */
static int
fast_vectors(struct server *s, const struct qopts *o, long k, struct vdb_err *e)
{
	struct fastvec *fv = &s->fv;
	size_t off = 0;
	int rc;

	if (fv->many && (rc = req_bounds(fv->nvec, k, e)) != VDB_OK)
		return rc;
	for (size_t i = 0; i < fv->nvec; i++) {
		if (fv->len[i] != o->sc->dim)
			rc = vdb_err_set(e, VDB_EINPUT, "a vector has %zu values, want %u",
			                 fv->len[i], o->sc->dim);
		else
			rc = qb_add(&s->q, o, fv->v + off, k, NULL, e);
		if (rc != VDB_OK) {
			if (fv->many)
				vdb_err_prefix(e, "query %zu: ", i);
			return rc;
		}
		off += fv->len[i];
	}
	return VDB_OK;
}

static const char *const known[] = {"id",     "op",     "collection", "vectors", "vector", "k",
                                    "filter", "fields", "partition",  "radius",  "ts",     "exact",
                                    "ef",     "nprobe", "refine",     NULL};

/* get_knob: an optional positive integer up to max */
static int
get_knob(json_t *req, const char *key, uint32_t max, uint32_t *out, struct vdb_err *e)
{
	json_t *v = json_object_get(req, key);

	if (v == NULL)
		return VDB_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > max)
		return vdb_err_set(e, VDB_EINPUT, "\"%s\" must be an integer 1..%u", key, max);
	*out = (uint32_t)json_integer_value(v);
	return VDB_OK;
}

/* handle: one request; the answer's body (after the id) goes to s->out */
static int
handle(struct server *s, json_t *req, struct vdb_err *e)
{
	const char *op, *name, *filter, *partition, *key;
	struct qopts o = {.partition = -1, .threads = s->threads, .output = OUT_JSONL};
	struct coll *c;
	json_t *v;
	long k = -1;
	int rc;

	json_object_foreach (req, key, v) {
		int ok = 0;
		for (int i = 0; known[i]; i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok)
			return vdb_err_set(e, VDB_EINPUT, "unknown key \"%.64s\"", key);
	}
	if ((rc = get_string(req, "op", &op, e)) != VDB_OK)
		return rc;
	if (op == NULL)
		return vdb_err_set(e, VDB_EINPUT, "no \"op\"");
	if (strcmp(op, "ping") == 0) {
		sb_put(&s->out, ",\"ok\":true", 10);
		return VDB_OK;
	}
	if (strcmp(op, "search") != 0 && strcmp(op, "count") != 0)
		return vdb_err_set(e, VDB_EINPUT, "unknown op \"%.64s\" (search, count, ping)", op);
	if ((rc = get_string(req, "collection", &name, e)) != VDB_OK ||
	    (rc = get_string(req, "filter", &filter, e)) != VDB_OK ||
	    (rc = get_string(req, "partition", &partition, e)) != VDB_OK)
		return rc;
	if (name == NULL)
		return vdb_err_set(e, VDB_EINPUT, "no \"collection\"");
	if ((rc = coll_get(s, name, &c, e)) != VDB_OK)
		return rc;
	o.sc = &c->sc;
	o.filter = filter;
	if ((v = json_object_get(req, "ts"))) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0)
			return vdb_err_set(e, VDB_EINPUT, "\"ts\" must be a positive integer");
		o.ts = (uint64_t)json_integer_value(v);
	}
	if (partition) {
		struct part_info *pv;
		size_t n;
		if ((rc = meta_partition_list(s->r->meta, c->sc.id, &pv, &n, e)) != VDB_OK)
			return rc;
		for (size_t i = 0; i < n && o.partition < 0; i++)
			if (strcmp(pv[i].name, partition) == 0)
				o.partition = pv[i].id;
		free(pv);
		if (o.partition < 0)
			return vdb_err_set(e, VDB_ENOENT, "no partition '%.255s' in collection %s",
			                   partition, c->sc.name);
	}
	if (strcmp(op, "count") == 0) {
		uint64_t n;
		if (json_object_get(req, "vector") || json_object_get(req, "vectors") ||
		    json_object_get(req, "k") || json_object_get(req, "fields") ||
		    json_object_get(req, "radius") || json_object_get(req, "exact") ||
		    json_object_get(req, "ef") || json_object_get(req, "nprobe") ||
		    json_object_get(req, "refine"))
			return vdb_err_set(e, VDB_EINPUT,
			                   "count takes collection, filter, partition and ts");
		if ((rc = query_count(s->r, &o, c->cache, &n, e)) != VDB_OK)
			return rc;
		sb_printf(&s->out, ",\"count\":%" PRIu64, n);
		return VDB_OK;
	}
	if ((v = json_object_get(req, "k"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > SEARCH_MAX_K)
			return vdb_err_set(e, VDB_EINPUT, "\"k\" must be an integer 1..%d",
			                   SEARCH_MAX_K);
		k = (long)json_integer_value(v);
	}
	if ((v = json_object_get(req, "exact"))) {
		if (!json_is_boolean(v))
			return vdb_err_set(e, VDB_EINPUT, "\"exact\" must be true or false");
		o.exact = json_is_true(v);
	}
	if ((rc = get_knob(req, "ef", QUERY_MAX_EF, &o.ann.ef, e)) != VDB_OK ||
	    (rc = get_knob(req, "nprobe", IVF_MAX_NLIST, &o.ann.nprobe, e)) != VDB_OK ||
	    (rc = get_knob(req, "refine", QUERY_MAX_REFINE, &o.ann.refine, e)) != VDB_OK)
		return rc;
	/* as on the command line: the knobs of an index search mean nothing
	 * to an exact one, and a caller who gives both has a mistake */
	if (o.exact && (o.ann.ef || o.ann.nprobe || o.ann.refine))
		return vdb_err_set(
		        e, VDB_EINPUT,
		        "\"exact\": true cannot go with \"ef\", \"nprobe\" or \"refine\"");
	if ((v = json_object_get(req, "radius"))) {
		double d = json_number_value(v);
		if (!json_is_number(v) || !(fabs(d) <= 3.4028234663852886e38))
			return vdb_err_set(e, VDB_EINPUT, "\"radius\" must be a finite number");
		o.has_radius = 1;
		o.radius = (float)d;
	}
	if ((v = json_object_get(req, "fields"))) {
		size_t i;
		json_t *f;
		if (!json_is_array(v))
			return vdb_err_set(e, VDB_EINPUT, "\"fields\" must be an array of names");
		json_array_foreach (v, i, f) {
			const char *fn = json_string_value(f);
			int fi;
			if (fn == NULL)
				return vdb_err_set(e, VDB_EINPUT,
				                   "\"fields\" must be an array of names");
			if (strcmp(fn, "*") == 0 && json_array_size(v) == 1) {
				if ((rc = query_fields(&o, "*", e)) != VDB_OK)
					return rc;
				break;
			}
			if ((fi = schema_field_index(o.sc, fn)) < 0)
				return vdb_err_set(e, VDB_EINPUT,
				                   "no field '%.255s' in collection %s", fn,
				                   o.sc->name);
			for (uint32_t j = 0; j < o.nfields; j++)
				if (o.fields[j] == fi)
					return vdb_err_set(e, VDB_EINPUT, "field '%s' twice", fn);
			o.fields[o.nfields++] = fi;
		}
	}
	qb_clear(&s->q);
	s->q.first = 0;
	if ((v = json_object_get(req, "vector")) && json_object_get(req, "vectors"))
		return vdb_err_set(e, VDB_EINPUT, "both \"vector\" and \"vectors\"");
	if (s->fv.on) {
		if ((rc = fast_vectors(s, &o, k, e)) != VDB_OK)
			return rc;
	} else if (v) {
		if ((rc = add_vector(s, &o, v, k, e)) != VDB_OK)
			return rc;
	} else if ((v = json_object_get(req, "vectors"))) {
		size_t i;
		json_t *x;
		if (!json_is_array(v) || json_array_size(v) == 0)
			return vdb_err_set(e, VDB_EINPUT,
			                   "\"vectors\" must be an array of vectors");
		if ((rc = req_bounds(json_array_size(v), k, e)) != VDB_OK)
			return rc;
		json_array_foreach (v, i, x) {
			if ((rc = add_vector(s, &o, x, k, e)) != VDB_OK) {
				vdb_err_prefix(e, "query %zu: ", i);
				return rc;
			}
		}
	} else {
		return vdb_err_set(e, VDB_EINPUT, "no \"vector\" or \"vectors\"");
	}
	sb_put(&s->out, ",\"results\":[", 12);
	if ((rc = query_run(s->r, &o, &s->q, c->cache, &s->out, ",", e)) != VDB_OK)
		return rc;
	sb_putc(&s->out, ']');
	return VDB_OK;
}

/* respond: {"id":ID<body>}\n, or {"id":ID,"error":{...}}\n */
static void
respond(struct server *s, const char *line, size_t len)
{
	struct vdb_err e;
	json_error_t je;
	json_t *req = NULL, *id = NULL;
	char *ids = NULL;
	size_t head;
	int rc = VDB_OK;

	s->out.n = 0;
	s->out.oom = 0;
	fast_read(&s->fv, line, len);
	if (s->fv.on)
		req = json_loadb(s->fv.line, s->fv.linelen, JSON_REJECT_DUPLICATES, &je);
	if (req == NULL) {
		/* the text as sent decides, and its columns are the error's */
		s->fv.on = 0;
		req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	}
	if (req == NULL)
		rc = vdb_err_set(&e, VDB_EINPUT, "column %d: %s", je.column, je.text);
	else if (!json_is_object(req))
		rc = vdb_err_set(&e, VDB_EINPUT, "a request is a JSON object");
	else if ((id = json_object_get(req, "id")) && !json_is_string(id) && !json_is_integer(id))
		rc = vdb_err_set(&e, VDB_EINPUT, "\"id\" must be a string or an integer");
	else if (id && (ids = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT)) == NULL)
		rc = vdb_err_set(&e, VDB_ETEMP, "out of memory");
	sb_put(&s->out, "{\"id\":", 6);
	if (ids)
		sb_put(&s->out, ids, strlen(ids));
	else
		sb_put(&s->out, "null", 4);
	head = s->out.n;
	if (rc == VDB_OK)
		rc = handle(s, req, &e);
	if (rc == VDB_OK && s->out.oom)
		rc = vdb_err_set(&e, VDB_ETEMP, "out of memory");
	if (rc == VDB_OK && s->out.n > QUERY_MAX_LINE)
		rc = vdb_err_set(
		        &e, VDB_EINPUT,
		        "response longer than %u bytes: ask for fewer vectors or a smaller k",
		        QUERY_MAX_LINE);
	if (rc != VDB_OK) {
		s->out.n = head;
		s->out.oom = 0;
		sb_put(&s->out, ",\"error\":{\"code\":\"", 18);
		sb_put(&s->out, code_name(rc), strlen(code_name(rc)));
		sb_put(&s->out, "\",\"message\":", 12);
		sb_json_string(&s->out, e.msg, strlen(e.msg));
		sb_putc(&s->out, '}');
	}
	sb_put(&s->out, "}\n", 2);
	free(ids);
	json_decref(req);
}

static int
write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
serve(const char *rootpath, int threads)
{
	struct server s = {.threads = threads};
	struct vdb_err e;
	char *buf = NULL;
	size_t len = 0, cap = 0, pos = 0;
	int rc, eof = 0, status = 0;

	if ((rc = root_open(rootpath, &s.r, &e)) != VDB_OK) {
		fprintf(stderr, "vdb-query: fatal: %s\n", e.msg);
		return vdb_exit_code(rc);
	}
	for (;;) {
		char *nl = buf ? memchr(buf + pos, '\n', len - pos) : NULL;
		if (nl == NULL && !eof) {
			ssize_t got;
			if (pos > 0) {
				memmove(buf, buf + pos, len - pos);
				len -= pos;
				pos = 0;
			}
			if (len > QUERY_MAX_LINE) {
				/* unframeable: say so and stop */
				static const char msg[] =
				        "{\"id\":null,\"error\":{\"code\":\"input\",\"message\":"
				        "\"request line longer than 67108864 bytes\"}}\n";
				write_all(msg, sizeof msg - 1);
				fprintf(stderr, "vdb-query: fatal: request line longer than "
				                "67108864 bytes\n");
				status = EXIT_PERM;
				break;
			}
			if (len == cap) {
				size_t nc = cap ? cap * 2 : 1u << 16;
				char *nb;
				if (nc > (size_t)QUERY_MAX_LINE + 1)
					nc = (size_t)QUERY_MAX_LINE + 1;
				if ((nb = realloc(buf, nc)) == NULL) {
					fprintf(stderr, "vdb-query: fatal: out of memory\n");
					status = EXIT_TEMP;
					break;
				}
				buf = nb;
				cap = nc;
			}
			got = read(0, buf + len, cap - len);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				fprintf(stderr, "vdb-query: fatal: stdin: %s\n", strerror(errno));
				status = EXIT_TEMP;
				break;
			}
			if (got == 0)
				eof = 1;
			len += (size_t)got;
			continue;
		}
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		char *line = buf + pos;
		if (nl == NULL && n == 0)
			break; /* EOF after the last request */
		pos += n + (nl != NULL);
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		if (n == 0)
			continue;
		respond(&s, line, n);
		if (s.out.oom || write_all(s.out.p, s.out.n) < 0) {
			if (!s.out.oom && errno == EPIPE)
				break; /* the client went away: nothing left to answer */
			fprintf(stderr, "vdb-query: fatal: stdout: %s\n",
			        s.out.oom ? "out of memory" : strerror(errno));
			status = EXIT_TEMP;
			break;
		}
		/* one big request or answer does not pin its memory for the
		 * session */
		if (s.out.cap > (8u << 20))
			sb_free(&s.out);
		if (s.fv.linecap > (8u << 20)) {
			free(s.fv.v);
			free(s.fv.len);
			free(s.fv.line);
			memset(&s.fv, 0, sizeof s.fv);
		}
	}
	free(buf);
	sb_free(&s.out);
	qb_free(&s.q);
	free(s.fv.v);
	free(s.fv.len);
	free(s.fv.line);
	for (size_t i = 0; i < s.nc; i++) {
		seg_cache_free(s.c[i]->cache);
		free(s.c[i]);
	}
	free(s.c);
	root_close(s.r);
	return status;
}
