/* search.c: exact search (search.h).  The scan is cut into chunks of rows;
 * threads take chunks in turn and keep a bounded heap per query.  Within a
 * chunk each filter narrows the live rows first, then the distance kernels
 * run over blocks of queries × blocks of surviving rows (distance.h) and
 * only distances that beat a heap's worst are looked at twice. */
#include "search.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "colcache.h"
#include "distance.h"
#include "file.h"

#define CHUNK 16384 /* rows a thread takes at a time, at most */
#define VB 256 /* vectors per kernel call: 128 KiB of 128-d floats, in L2 */
#define QB 16 /* queries per kernel call */
/* L2 for at least this many queries at once goes by the dot product (one
 * fma per element instead of a subtraction and an fma) and recomputes
 * the few rows it picks exactly (dist_select_dot); fewer queries are
 * bound by memory, where the direct kernel costs nothing more */
#define DOT_MIN_NQ 4

/* ---- segments, cached across searches ---- */

struct cache_ent {
	char key[65];
	struct segment seg;
	struct batch b; /* ids, ts, fields */
	struct colmap cm; /* b's arrays, when mapped from ROOT/cache/cols */
	int vec_ok; /* vector block checked */
	int used; /* in the latest snapshot */
	/* the segment's index, when the snapshot names one */
	char ikey[65];
	int has_ann;
	struct ann ann;
	/* scratch memory of searches through it (an HNSW search's visited
	 * set is as long as the segment): kept between searches, one per
	 * thread that searches at once */
	pthread_mutex_t mu;
	struct ann_scratch **spare;
	size_t nspare, capspare;
};

struct seg_cache {
	struct cache_ent **v;
	size_t n, cap;
};

struct seg_cache *
seg_cache_new(void)
{
	return calloc(1, sizeof(struct seg_cache));
}

static void
ent_drop_ann(struct cache_ent *c)
{
	for (size_t i = 0; i < c->nspare; i++)
		ann_scratch_free(c->spare[i]);
	free(c->spare);
	c->spare = NULL;
	c->nspare = c->capspare = 0;
	if (c->has_ann)
		ann_close(&c->ann);
	c->has_ann = 0;
	c->ikey[0] = '\0';
}

static void
ent_free(struct cache_ent *c)
{
	if (c == NULL)
		return;
	ent_drop_ann(c);
	pthread_mutex_destroy(&c->mu);
	colcache_free(&c->b, &c->cm);
	seg_close(&c->seg);
	free(c);
}

/* scratch_take, scratch_give: a thread's scratch for the entry's index */
static struct ann_scratch *
scratch_take(struct cache_ent *c)
{
	struct ann_scratch *s = NULL;

	pthread_mutex_lock(&c->mu);
	if (c->nspare > 0)
		s = c->spare[--c->nspare];
	pthread_mutex_unlock(&c->mu);
	return s ? s : ann_scratch_new(&c->ann);
}

static void
scratch_give(struct cache_ent *c, struct ann_scratch *s)
{
	pthread_mutex_lock(&c->mu);
	if (c->nspare == c->capspare) {
		size_t nc = c->capspare ? 2 * c->capspare : 4;
		struct ann_scratch **nv = realloc(c->spare, nc * sizeof *nv);
		if (nv == NULL) {
			pthread_mutex_unlock(&c->mu);
			ann_scratch_free(s);
			return;
		}
		c->spare = nv;
		c->capspare = nc;
	}
	c->spare[c->nspare++] = s;
	pthread_mutex_unlock(&c->mu);
}

void
seg_cache_free(struct seg_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		ent_free(c->v[i]);
	free(c->v);
	free(c);
}

/* check_once: a check over a whole object (a segment's vector block, an
 * index: hundreds of MB of SHA-256, far more than a query costs) is done
 * once per object on this root and remembered in ROOT/cache/verified/KEY
 * (vdb-admin verify re-checks everything) */
static int
check_once(struct root *r, const char *key, int (*check)(const void *arg, struct vdb_err *e),
           const void *arg, struct vdb_err *e)
{
	char *dir = path_fmt("%s/cache/verified", r->path);
	char *mark = path_fmt("%s/cache/verified/%s", r->path, key);
	int rc = VDB_OK;

	if (dir == NULL || mark == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto out;
	}
	if (access(mark, F_OK) != 0) {
		if ((rc = check(arg, e)) != VDB_OK)
			goto out;
		/* best effort: without the mark the next search checks again */
		if (mkdir(dir, 0755) == 0 || errno == EEXIST) {
			int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			if (fd >= 0)
				close(fd);
		}
	}
out:
	free(dir);
	free(mark);
	return rc;
}

static int
check_vectors(const void *arg, struct vdb_err *e)
{
	return seg_verify_block(&((const struct cache_ent *)arg)->seg, 0, e);
}

static int
check_index(const void *arg, struct vdb_err *e)
{
	const struct cache_ent *c = arg;
	return index_verify(&c->ann.f, c->ikey, e);
}

/* ent_open_ann: the index ikey of segment c, checked against it */
static int
ent_open_ann(struct root *r, struct cache_ent *c, const char *ikey, struct vdb_err *e)
{
	char *path = NULL;
	int rc;

	ent_drop_ann(c);
	if ((rc = store_local_path(r->store, ikey, &path, e)) != VDB_OK)
		goto out;
	if ((rc = ann_open(path, &c->ann, e)) != VDB_OK)
		goto out;
	c->has_ann = 1;
	memcpy(c->ikey, ikey, 64);
	c->ikey[64] = '\0';
	if ((rc = ann_match(&c->ann, &c->seg, c->key, e)) != VDB_OK ||
	    (rc = check_once(r, ikey, check_index, c, e)) != VDB_OK)
		goto out;
out:
	free(path);
	if (rc != VDB_OK) {
		ent_drop_ann(c);
		vdb_err_prefix(e, "index %.64s: ", ikey);
	}
	return rc;
}

static int
ent_open(struct root *r, const struct schema *sc, const char *key, struct cache_ent **out,
         struct vdb_err *e)
{
	struct cache_ent *c = calloc(1, sizeof *c);
	char *path = NULL;
	int rc;

	if (c == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	memcpy(c->key, key, 65);
	c->key[64] = '\0';
	pthread_mutex_init(&c->mu, NULL);
	batch_init_scalars(&c->b, sc);
	if ((rc = store_local_path(r->store, key, &path, e)) != VDB_OK)
		goto out;
	if ((rc = seg_open(path, &c->seg, e)) != VDB_OK)
		goto out;
	if ((rc = seg_verify_meta(&c->seg, key, e)) != VDB_OK)
		goto out;
	if (c->seg.ncols < 3 || c->seg.cols[0].type != SC_VECTOR) {
		rc = vdb_err_set(e, VDB_ECORRUPT, "segment has no vector block first");
		goto out;
	}
	rc = colcache_load(r->path, key, &c->seg, &c->b, &c->cm, e);
out:
	free(path);
	if (rc != VDB_OK) {
		vdb_err_prefix(e, "object %s: ", key);
		ent_free(c);
		return rc;
	}
	*out = c;
	return VDB_OK;
}

/* gone: an object the snapshot names is missing.  If the catalogue no
 * longer names it either, vdb-index deleted it after its grace period
 * while this search still read an older catalogue: a retry reads the
 * new one (111).  Otherwise it is lost (100; vdb-admin verify says so). */
static int
gone(struct root *r, const char *key, int rc, struct vdb_err *e)
{
	struct vdb_err ke;
	int known = 1;

	if (rc == VDB_ENOENT && meta_object_known(r->meta, key, &known, &ke) == VDB_OK && !known)
		return vdb_err_set(e, VDB_ETEMP,
		                   "object %s was deleted after its grace period under this search "
		                   "(a retry reads the catalogue again)",
		                   key);
	return rc;
}

static int
cache_get(struct seg_cache *cache, struct root *r, const struct schema *sc, const char *key,
          const char *ikey, int vectors, int indexes, struct cache_ent **out, struct vdb_err *e)
{
	struct cache_ent *c = NULL;
	int rc;

	for (size_t i = 0; i < cache->n; i++)
		if (strcmp(cache->v[i]->key, key) == 0)
			c = cache->v[i];
	if (c == NULL) {
		if (cache->n == cache->cap) {
			size_t nc = cache->cap ? cache->cap * 2 : 16;
			struct cache_ent **nv = realloc(cache->v, nc * sizeof *nv);
			if (nv == NULL)
				return vdb_err_set(e, VDB_ETEMP, "out of memory");
			cache->v = nv;
			cache->cap = nc;
		}
		if ((rc = ent_open(r, sc, key, &c, e)) != VDB_OK)
			return gone(r, key, rc, e);
		cache->v[cache->n++] = c;
	}
	if (vectors && !c->vec_ok) {
		if ((rc = check_once(r, c->key, check_vectors, c, e)) != VDB_OK) {
			vdb_err_prefix(e, "object %s: ", key);
			return rc;
		}
		c->vec_ok = 1;
	}
	/* an index rebuilt since (another spec) replaces the one open */
	if (indexes && ikey[0] && (!c->has_ann || strcmp(c->ikey, ikey) != 0) &&
	    (rc = ent_open_ann(r, c, ikey, e)) != VDB_OK &&
	    /* an index retired and deleted under us: the segment is
	     * searched exactly, which is correct, only slower */
	    gone(r, ikey, rc, e) != VDB_ETEMP) {
		vdb_err_prefix(e, "object %s: ", key);
		return rc;
	}
	if (!ikey[0] && c->has_ann)
		ent_drop_ann(c);
	c->used = 1;
	*out = c;
	return VDB_OK;
}

/* cache_keep: a segment the snapshot has but this search skips (another
 * partition) stays cached for the next search that wants it */
static void
cache_keep(struct seg_cache *cache, const char *key)
{
	for (size_t i = 0; i < cache->n; i++)
		if (strcmp(cache->v[i]->key, key) == 0)
			cache->v[i]->used = 1;
}

/* cache_trim: drop what the latest snapshot did not use (compacted or
 * dropped segments), so a long-lived server does not keep them mapped */
static void
cache_trim(struct seg_cache *cache)
{
	size_t k = 0;

	for (size_t i = 0; i < cache->n; i++) {
		if (cache->v[i]->used) {
			cache->v[i]->used = 0;
			cache->v[k++] = cache->v[i];
		} else {
			ent_free(cache->v[i]);
		}
	}
	cache->n = k;
}

/* ---- the snapshot's sources ---- */

static int
add_source(struct search_set *set, size_t *cap, const float *vec, const struct batch *b,
           struct batch *own, struct cache_ent *ent, const struct ann *ann, int all_live,
           struct vdb_err *e)
{
	struct source *s;

	if (set->nsrc == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct source *nv = realloc(set->src, nc * sizeof *nv);
		if (nv == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		set->src = nv;
		*cap = nc;
	}
	s = &set->src[set->nsrc];
	s->vec = vec;
	s->b = b;
	s->own = own;
	s->ent = ent;
	s->ann = ann;
	s->all_live = all_live;
	s->live = malloc(b->n ? b->n : 1);
	if (s->live == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	set->nsrc++;
	return VDB_OK;
}

struct tail_ctx {
	struct search_set *set;
	size_t *cap;
	int64_t partition;
	struct batch *cur;
};

static int
tail_flush(struct tail_ctx *t, struct vdb_err *e)
{
	struct batch *b = t->cur;
	int rc;

	t->cur = NULL;
	if (b == NULL)
		return VDB_OK;
	if ((rc = add_source(t->set, t->cap, b->vec, b, b, NULL, NULL, 0, e)) != VDB_OK) {
		batch_free(b);
		free(b);
	}
	return rc;
}

/* on_frame: frames in a row for one partition go into one batch, so a tail
 * of many small batches is still searched in large blocks */
static int
on_frame(void *arg, const unsigned char *p, size_t len, uint64_t off, struct vdb_err *e)
{
	struct tail_ctx *t = arg;
	int64_t pid;
	int rc;

	if (len < PAYLOAD_INSERT_HDR || p[0] != PAYLOAD_INSERT)
		return vdb_err_set(e, VDB_ECORRUPT, "frame at offset %llu: not an insert",
		                   (unsigned long long)off);
	pid = (int64_t)get_u64(p + 16);
	if (t->partition >= 0 && pid != t->partition)
		return VDB_OK;
	if (t->cur && (t->cur->partition_id != pid || t->cur->n >= (1u << 24)) &&
	    (rc = tail_flush(t, e)) != VDB_OK)
		return rc;
	if (t->cur == NULL) {
		t->cur = malloc(sizeof *t->cur);
		if (t->cur == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		batch_init(t->cur, t->set->sc);
	}
	if ((rc = batch_decode(t->cur, p, len, e)) != VDB_OK)
		vdb_err_prefix(e, "log frame at offset %llu: ", (unsigned long long)off);
	return rc;
}

void
search_close(struct search_set *set)
{
	for (size_t i = 0; i < set->nsrc; i++) {
		free(set->src[i].live);
		if (set->src[i].own) {
			batch_free(set->src[i].own);
			free(set->src[i].own);
		}
	}
	free(set->src);
	seg_cache_free(set->own_cache);
	snapshot_free(&set->snap);
	memset(set, 0, sizeof *set);
}

int
search_open(struct root *r, const struct schema *sc, uint64_t ts, int64_t partition, int what,
            struct seg_cache *cache, struct search_set *set, struct vdb_err *e)
{
	int vectors = (what & SEARCH_VECTORS) != 0, indexes = vectors && (what & SEARCH_INDEXES);
	size_t cap = 0;
	struct tail_ctx t = {.set = set, .cap = &cap, .partition = partition};
	int rc;

	memset(set, 0, sizeof *set);
	set->root = r;
	set->sc = sc;
	if (cache == NULL && (cache = set->own_cache = seg_cache_new()) == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	set->cache = cache;
	if ((rc = snapshot_take(r, sc, ts, &set->snap, e)) != VDB_OK) {
		search_close(set);
		return rc;
	}
	for (size_t i = 0; i < set->snap.nsegs; i++) {
		struct cache_ent *c = NULL;
		if (partition >= 0 && set->snap.segs[i].partition_id != partition) {
			cache_keep(cache, set->snap.segs[i].object);
			continue;
		}
		if ((rc = cache_get(cache, r, sc, set->snap.segs[i].object, set->snap.segs[i].index,
		                    vectors, indexes, &c, e)))
			goto out;
		if (c->b.n > SEG_MAX_ROWS) { /* not one vdb wrote: rows are 32-bit here */
			rc = vdb_err_set(e, VDB_EINPUT, "object %s: %zu rows, more than %llu",
			                 c->key, (size_t)c->b.n, SEG_MAX_ROWS);
			goto out;
		}
		if ((rc = add_source(set, &cap, c->seg.vectors, &c->b, NULL, c,
		                     indexes && c->has_ann ? &c->ann : NULL,
		                     snapshot_all_live(&set->snap, &set->snap.segs[i]), e)) !=
		    VDB_OK)
			goto out;
	}
	cache_trim(cache);
	if ((rc = snapshot_log(&set->snap, sc->id, on_frame, &t, e)) != VDB_OK)
		goto out;
	if ((rc = tail_flush(&t, e)) != VDB_OK)
		goto out;
	for (size_t i = 0; i < set->nsrc; i++) {
		struct source *src = &set->src[i];
		/* a million rows' ids and timestamps not read at all is what
		 * lets a one-shot query through an index take milliseconds */
		if (src->all_live) {
			memset(src->live, 1, src->b->n);
			src->nlive = src->b->n;
			continue;
		}
		snapshot_live(&set->snap, src->b, src->live);
		src->nlive = 0;
		for (size_t row = 0; row < src->b->n; row++)
			src->nlive += src->live[row];
	}
out:
	if (t.cur) {
		batch_free(t.cur);
		free(t.cur);
	}
	if (rc != VDB_OK)
		search_close(set);
	return rc;
}

int
search_count(struct search_set *set, struct filter *f, uint64_t *count, struct vdb_err *e)
{
	uint8_t *m = malloc(CHUNK);
	uint64_t n = 0;
	int rc = VDB_OK;

	if (m == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	for (size_t s = 0; s < set->nsrc && rc == VDB_OK; s++) {
		const struct source *src = &set->src[s];
		for (size_t from = 0; from < src->b->n && rc == VDB_OK; from += CHUNK) {
			size_t len = src->b->n - from < CHUNK ? src->b->n - from : CHUNK;
			memcpy(m, src->live + from, len);
			if (f && (rc = filter_eval(f, src->b, from, len, m, e)) != VDB_OK)
				break;
			for (size_t i = 0; i < len; i++)
				n += m[i];
		}
	}
	free(m);
	*count = n;
	return rc;
}

/* ---- the scan ---- */

/* Heaps hold a key that is smaller for better hits (the distance, or the
 * negated similarity), so one comparison serves every metric.  The root
 * is the worst hit kept. */
static inline int
worse(const struct hit *a, const struct hit *b)
{
	if (a->dist != b->dist)
		return a->dist > b->dist;
	if (a->id != b->id)
		return a->id > b->id;
	if (a->src != b->src)
		return a->src > b->src;
	return a->row > b->row;
}

static void
sift_down(struct hit *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, w = i;
		if (l < n && worse(&h[l], &h[w]))
			w = l;
		if (l + 1 < n && worse(&h[l + 1], &h[w]))
			w = l + 1;
		if (w == i)
			return;
		struct hit t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

static void
sift_up(struct hit *h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!worse(&h[i], &h[p]))
			return;
		struct hit t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

/* per query, per thread: a heap of at most k hits (k > 0) or every hit
 * within the radius (k == 0) */
struct qstate {
	struct hits h;
	uint32_t k;
	float bound; /* a hit's key must be <= this to be looked at */
};

/* qs_push: -1 out of memory, -2 a radius search without k past
 * SEARCH_MAX_HITS */
static int
qs_push(struct qstate *s, const struct hit *x)
{
	if (s->k == 0 && s->h.n >= SEARCH_MAX_HITS)
		return -2;
	if (s->k == 0 || s->h.n < s->k) {
		if (s->h.n == s->h.cap) {
			size_t nc = s->h.cap ? s->h.cap * 2 : 64;
			if (s->k && nc > s->k)
				nc = s->k;
			struct hit *nv = realloc(s->h.v, nc * sizeof *nv);
			if (nv == NULL)
				return -1;
			s->h.v = nv;
			s->h.cap = nc;
		}
		s->h.v[s->h.n++] = *x;
		if (s->k) {
			sift_up(s->h.v, s->h.n - 1);
			if (s->h.n == s->k)
				s->bound = s->h.v[0].dist;
		}
		return 0;
	}
	if (!worse(&s->h.v[0], x))
		return 0;
	s->h.v[0] = *x;
	sift_down(s->h.v, s->h.n, 0);
	s->bound = s->h.v[0].dist;
	return 0;
}

/* queries grouped by filter: each group's queries copied together so a
 * kernel call takes a contiguous block of them */
struct group {
	uint32_t filter; /* SEARCH_NO_FILTER or an index */
	size_t nq;
	uint32_t *qi; /* the original query numbers */
	float *q; /* nq * dim */
	float *qq; /* |q|^2 of each */
};

/* a work item: rows of a source scanned exactly for every group, or
 * (ann) queries of one group searched through the source's index */
struct item {
	uint32_t src;
	uint32_t group; /* ann: the group */
	int ann;
	size_t from, len; /* rows; ann: the group's queries */
};

struct job {
	struct search_set *set;
	const struct search_req *rq;
	struct group *groups;
	size_t ngroups;
	size_t chunk; /* rows per work item, at most CHUNK */
	size_t nitems;
	struct item *items;
	atomic_size_t next;
	atomic_int failed;
	int neg; /* key = -distance (IP, cosine) */
	float rbound; /* the radius as a key bound; +inf without */
	pthread_mutex_t lock;
	struct vdb_err err;
};

struct worker {
	struct job *job;
	struct qstate *qs; /* rq->nq */
	struct filter **f; /* clones, one per filter */
	uint8_t *mask;
	uint32_t *rows;
	float *d; /* QB * VB */
	uint32_t *sel; /* VB: dist_select's picks */
	float *xx; /* VB: |x|^2 of a block's rows (the L2 shortcut) */
	uint32_t *srows; /* VB: the picks' rows */
	float *ex; /* VB: the picks' exact distances */
	uint8_t *amask; /* a whole source's rows: an index search's allowed rows */
	size_t amask_cap;
	struct ann_hit *ahits; /* k of an index search */
	size_t ahits_cap;
	int rc;
};

static void
job_fail(struct job *j, int rc, const struct vdb_err *e)
{
	pthread_mutex_lock(&j->lock);
	if (!atomic_load(&j->failed)) {
		j->err = *e;
		atomic_store(&j->failed, rc);
	}
	pthread_mutex_unlock(&j->lock);
}

/* offer: row r of src, at key, to a query's heap if it can get in (the
 * heap may have got better since the row was selected; NaN never gets in) */
static int
offer(const struct job *j, struct qstate *s, const struct source *src, uint32_t r, float key)
{
	if (!(key <= s->bound) || !(key <= j->rbound))
		return 0;
	struct hit h = {src->b->ids[r], key, (uint32_t)(src - j->set->src), r};
	return qs_push(s, &h);
}

/* scan_dot: the L2 shortcut (DOT_MIN_NQ) for queries q0 .. q0+nq of a
 * group: dot products for all, exact distances for the rows they pick */
static int
scan_dot(struct worker *w, const struct group *g, size_t q0, size_t nq, const struct source *src,
         size_t from, const uint32_t *rows, size_t n)
{
	const struct job *j = w->job;
	size_t dim = j->set->sc->dim;
	const float *qv = g->q + q0 * dim;
	int rc;

	if (rows)
		dist_rows(METRIC_IP, qv, nq, src->vec, rows, n, dim, w->d);
	else
		dist_block(METRIC_IP, qv, nq, src->vec + from * dim, n, dim, w->d);
	for (size_t a = 0; a < nq; a++) {
		struct qstate *s = &w->qs[g->qi[q0 + a]];
		size_t nsel = dist_select_dot(w->d + a * n, w->xx, n, g->qq[q0 + a], dim,
		                              s->bound < j->rbound ? s->bound : j->rbound, w->sel);
		if (nsel == 0)
			continue;
		for (size_t t = 0; t < nsel; t++)
			w->srows[t] = rows ? rows[w->sel[t]] : (uint32_t)(from + w->sel[t]);
		dist_rows(METRIC_L2, qv + a * dim, 1, src->vec, w->srows, nsel, dim, w->ex);
		for (size_t t = 0; t < nsel; t++)
			if ((rc = offer(j, s, src, w->srows[t], w->ex[t])) < 0)
				return rc;
	}
	return 0;
}

/* scan_block: distances of a group's queries to n rows (rows == NULL: the
 * contiguous rows from..from+n), into the heaps */
static int
scan_block(struct worker *w, const struct group *g, const struct source *src, size_t from,
           const uint32_t *rows, size_t n)
{
	const struct job *j = w->job;
	size_t dim = j->set->sc->dim;
	int metric = j->set->sc->metric;
	int dot = metric == METRIC_L2 && g->nq >= DOT_MIN_NQ;
	int rc;

	if (dot)
		dist_sqnorms(rows ? src->vec : src->vec + from * dim, rows, n, dim, w->xx);
	for (size_t q0 = 0; q0 < g->nq; q0 += QB) {
		size_t nq = g->nq - q0 < QB ? g->nq - q0 : QB;
		const float *qv = g->q + q0 * dim;
		if (dot) {
			if ((rc = scan_dot(w, g, q0, nq, src, from, rows, n)) < 0)
				return rc;
			continue;
		}
		if (rows)
			dist_rows(metric, qv, nq, src->vec, rows, n, dim, w->d);
		else
			dist_block(metric, qv, nq, src->vec + from * dim, n, dim, w->d);
		for (size_t a = 0; a < nq; a++) {
			struct qstate *s = &w->qs[g->qi[q0 + a]];
			const float *d = w->d + a * n;
			size_t nsel = dist_select(
			        d, n, j->neg, s->bound < j->rbound ? s->bound : j->rbound, w->sel);
			for (size_t t = 0; t < nsel; t++) {
				size_t i = w->sel[t];
				uint32_t r = rows ? rows[i] : (uint32_t)(from + i);
				if ((rc = offer(j, s, src, r, j->neg ? -d[i] : d[i])) < 0)
					return rc;
			}
		}
	}
	return 0;
}

/* scan_rows: the rows from..from+len that mask permits (NULL: all) for
 * group g; -1 out of memory, -2 too many radius hits */
static int
scan_rows(struct worker *w, const struct group *g, const struct source *src, size_t from,
          size_t len, const uint8_t *mask)
{
	size_t nm = 0;
	int r = 0;

	if (mask)
		for (size_t i = 0; i < len; i++)
			if (mask[i])
				w->rows[nm++] = (uint32_t)(from + i);
	if (mask == NULL || nm == len) {
		for (size_t b = 0; b < len && r == 0; b += VB)
			r = scan_block(w, g, src, from + b, NULL, len - b < VB ? len - b : VB);
	} else {
		for (size_t b = 0; b < nm && r == 0; b += VB)
			r = scan_block(w, g, src, 0, w->rows + b, nm - b < VB ? nm - b : VB);
	}
	return r;
}

/* item_fail: a scan's negative return as the job's error */
static int
item_fail(struct job *j, int r)
{
	struct vdb_err e;

	if (r == -2) {
		vdb_err_set(&e, VDB_EINPUT,
		            "more than %d hits within the radius for one query; give k",
		            SEARCH_MAX_HITS);
		job_fail(j, VDB_EINPUT, &e);
	} else {
		vdb_err_set(&e, VDB_ETEMP, "out of memory");
		job_fail(j, VDB_ETEMP, &e);
	}
	return -1;
}

static int
scan_chunk(struct worker *w, const struct item *it)
{
	struct job *j = w->job;
	const struct source *src = &j->set->src[it->src];
	size_t from = it->from, len = it->len;
	struct vdb_err e;
	int rc, r;

	for (size_t gi = 0; gi < j->ngroups; gi++) {
		const struct group *g = &j->groups[gi];
		memcpy(w->mask, src->live + from, len);
		if (g->filter != SEARCH_NO_FILTER &&
		    (rc = filter_eval(w->f[g->filter], src->b, from, len, w->mask, &e)) != VDB_OK) {
			job_fail(j, rc, &e);
			return -1;
		}
		if ((r = scan_rows(w, g, src, from, len, w->mask)) < 0)
			return item_fail(j, r);
	}
	return 0;
}

/* exact_all: every row of src that allow permits (NULL: all), for the
 * queries of sub */
static int
exact_all(struct worker *w, const struct group *sub, const struct source *src, const uint8_t *allow)
{
	int r = 0;

	for (size_t from = 0; from < src->b->n && r == 0; from += CHUNK) {
		size_t len = src->b->n - from < CHUNK ? src->b->n - from : CHUNK;
		r = scan_rows(w, sub, src, from, len, allow ? allow + from : NULL);
	}
	return r;
}

/* ann_item: queries of one group through a source's index — or, when the
 * group's filter leaves few rows, exactly over those rows */
static int
ann_item(struct worker *w, const struct item *it)
{
	struct job *j = w->job;
	const struct search_req *rq = j->rq;
	const struct source *src = &j->set->src[it->src];
	const struct group *g = &j->groups[it->group];
	size_t n = src->b->n, dim = j->set->sc->dim;
	const uint8_t *allow = src->nlive < n ? src->live : NULL;
	uint64_t allowed = src->nlive;
	uint32_t kmax = 0;
	struct group sub = *g;
	struct ann_params knobs;
	struct ann_scratch *scr = NULL;
	struct vdb_err e;
	int rc, r = 0;

	sub.qi = g->qi + it->from;
	sub.q = g->q + it->from * dim;
	sub.qq = g->qq + it->from;
	sub.nq = it->len;
	for (size_t i = 0; i < sub.nq; i++)
		if (rq->k[sub.qi[i]] > kmax)
			kmax = rq->k[sub.qi[i]];
	if (g->filter != SEARCH_NO_FILTER) {
		if (w->amask_cap < n) {
			uint8_t *nm = realloc(w->amask, n);
			if (nm == NULL)
				return item_fail(j, -1);
			w->amask = nm;
			w->amask_cap = n;
		}
		memcpy(w->amask, src->live, n);
		allowed = 0;
		for (size_t from = 0; from < n; from += CHUNK) {
			size_t len = n - from < CHUNK ? n - from : CHUNK;
			if ((rc = filter_eval(w->f[g->filter], src->b, from, len, w->amask + from,
			                      &e)) != VDB_OK) {
				job_fail(j, rc, &e);
				return -1;
			}
		}
		for (size_t i = 0; i < n; i++)
			allowed += w->amask[i];
		allow = w->amask;
	}
	if (allowed == 0)
		return 0;
	if (kmax == 0 || ann_plan(src->ann, allowed, kmax, &rq->ann, &knobs)) {
		if ((r = exact_all(w, &sub, src, allow)) < 0)
			return item_fail(j, r);
		return 0;
	}
	if (w->ahits_cap < kmax) {
		struct ann_hit *nh = realloc(w->ahits, kmax * sizeof *nh);
		if (nh == NULL)
			return item_fail(j, -1);
		w->ahits = nh;
		w->ahits_cap = kmax;
	}
	if ((scr = scratch_take(src->ent)) == NULL)
		return item_fail(j, -1);
	for (size_t i = 0; i < sub.nq && r == 0; i++) {
		uint32_t qi = sub.qi[i], k = rq->k[qi], nout = 0;
		struct qstate *qs = &w->qs[qi];
		if (k == 0) { /* a radius without k: every row within it */
			struct group one = sub;
			one.qi += i;
			one.q += i * dim;
			one.qq += i;
			one.nq = 1;
			r = exact_all(w, &one, src, allow);
			continue;
		}
		if ((rc = ann_search(src->ann, src->vec, sub.q + i * dim, k, &knobs, allow, scr,
		                     w->ahits, &nout, &e)) != VDB_OK) {
			vdb_err_prefix(&e, "index %s: ", src->ent->ikey);
			scratch_give(src->ent, scr);
			job_fail(j, rc, &e);
			return -1;
		}
		for (uint32_t h = 0; h < nout && r == 0; h++)
			r = offer(j, qs, src, w->ahits[h].row, w->ahits[h].key);
	}
	scratch_give(src->ent, scr);
	return r < 0 ? item_fail(j, r) : 0;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct job *j = w->job;

	for (;;) {
		size_t c = atomic_fetch_add(&j->next, 1);
		if (c >= j->nitems || atomic_load(&j->failed))
			break;
		const struct item *it = &j->items[c];
		if ((it->ann ? ann_item(w, it) : scan_chunk(w, it)) < 0)
			break;
	}
	return NULL;
}

/* The helper threads of search_run live as long as the process: a server
 * searches small collections many times a second, and starting threads
 * for each search cost as much as the threads saved.  One search at a
 * time uses them; a search that finds them busy (another thread of the
 * caller's is searching) starts threads of its own. */
#define POOL_MAX 256

static struct {
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	int nthreads; /* started so far */
	int busy; /* a search_run holds the pool */
	uint64_t gen; /* bumped per search */
	struct worker *w; /* w[1 .. nw) are the pool's to run */
	int nw;
	int pending; /* of those, not finished yet */
	uint64_t born[POOL_MAX]; /* gen when thread i was started */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .go = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static void *
pool_main(void *arg)
{
	int me = (int)(intptr_t)arg; /* runs w[me] of each search with nw > me */
	uint64_t seen;

	pthread_mutex_lock(&pool.mu);
	/* not pool.gen now: the search it was started for may have begun */
	seen = pool.born[me];
	for (;;) {
		while (pool.gen == seen)
			pthread_cond_wait(&pool.go, &pool.mu);
		seen = pool.gen;
		if (me >= pool.nw)
			continue;
		struct worker *w = &pool.w[me];
		pthread_mutex_unlock(&pool.mu);
		worker_main(w);
		pthread_mutex_lock(&pool.mu);
		if (--pool.pending == 0)
			pthread_cond_signal(&pool.done);
	}
	return NULL;
}

/* pool_take: the pool, grown to nw - 1 threads, or 0 if another search
 * has it or no thread at all could be started */
static int
pool_take(int nw)
{
	pthread_mutex_lock(&pool.mu);
	if (pool.busy) {
		pthread_mutex_unlock(&pool.mu);
		return 0;
	}
	while (pool.nthreads < nw - 1 && pool.nthreads + 1 < POOL_MAX) {
		pthread_t t;
		pthread_attr_t a;
		int ok;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		pool.born[pool.nthreads + 1] = pool.gen;
		/* numbered from 1: w[0] is the caller's */
		ok = pthread_create(&t, &a, pool_main, (void *)(intptr_t)(pool.nthreads + 1)) == 0;
		pthread_attr_destroy(&a);
		if (!ok)
			break;
		pool.nthreads++;
	}
	if (pool.nthreads == 0) {
		pthread_mutex_unlock(&pool.mu);
		return 0;
	}
	pool.busy = 1;
	pthread_mutex_unlock(&pool.mu);
	return 1;
}

/* pool_run: w[1 .. nw) on the pool's threads (as many as it has), w[0] on
 * the caller's; returns when all are done */
static void
pool_run(struct worker *w, int nw)
{
	pthread_mutex_lock(&pool.mu);
	pool.w = w;
	pool.nw = nw < pool.nthreads + 1 ? nw : pool.nthreads + 1;
	pool.pending = pool.nw - 1;
	pool.gen++;
	pthread_cond_broadcast(&pool.go);
	pthread_mutex_unlock(&pool.mu);
	worker_main(&w[0]);
	pthread_mutex_lock(&pool.mu);
	while (pool.pending > 0)
		pthread_cond_wait(&pool.done, &pool.mu);
	pool.w = NULL;
	pool.busy = 0;
	pthread_mutex_unlock(&pool.mu);
}

static void
worker_free(struct worker *w, const struct search_req *rq)
{
	if (w->qs)
		for (size_t q = 0; q < rq->nq; q++)
			free(w->qs[q].h.v);
	if (w->f)
		for (size_t i = 0; i < rq->nfilters; i++)
			filter_free(w->f[i]);
	free(w->qs);
	free(w->f);
	free(w->mask);
	free(w->rows);
	free(w->d);
	free(w->sel);
	free(w->xx);
	free(w->srows);
	free(w->ex);
	free(w->amask);
	free(w->ahits);
}

static int
worker_init(struct worker *w, struct job *j, struct vdb_err *e)
{
	const struct search_req *rq = j->rq;
	int rc;

	memset(w, 0, sizeof *w);
	w->job = j;
	w->qs = calloc(rq->nq ? rq->nq : 1, sizeof *w->qs);
	w->f = calloc(rq->nfilters ? rq->nfilters : 1, sizeof *w->f);
	w->mask = malloc(CHUNK);
	w->rows = malloc(CHUNK * sizeof *w->rows);
	w->d = malloc(QB * VB * sizeof *w->d);
	w->sel = malloc(VB * sizeof *w->sel);
	w->xx = malloc(VB * sizeof *w->xx);
	w->srows = malloc(VB * sizeof *w->srows);
	w->ex = malloc(VB * sizeof *w->ex);
	if (!w->qs || !w->f || !w->mask || !w->rows || !w->d || !w->sel || !w->xx || !w->srows ||
	    !w->ex)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	for (size_t q = 0; q < rq->nq; q++) {
		w->qs[q].k = rq->k[q];
		w->qs[q].bound = INFINITY;
	}
	for (size_t i = 0; i < rq->nfilters; i++)
		if ((rc = filter_clone(rq->filters[i], &w->f[i], e)) != VDB_OK)
			return rc;
	return VDB_OK;
}

static int
cmp_u32_by_filter(const void *a, const void *b, void *arg)
{
	const uint32_t *fid = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	uint32_t fx = fid ? fid[x] : SEARCH_NO_FILTER, fy = fid ? fid[y] : SEARCH_NO_FILTER;

	if (fx != fy)
		return fx < fy ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int
make_groups(struct job *j, struct vdb_err *e)
{
	const struct search_req *rq = j->rq;
	size_t dim = j->set->sc->dim;
	uint32_t *order = malloc((rq->nq ? rq->nq : 1) * sizeof *order);
	int rc = VDB_OK;

	j->groups = calloc(rq->nq ? rq->nq : 1, sizeof *j->groups);
	if (order == NULL || j->groups == NULL) {
		free(order);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	for (size_t q = 0; q < rq->nq; q++)
		order[q] = (uint32_t)q;
	qsort_r(order, rq->nq, sizeof *order, cmp_u32_by_filter, (void *)rq->fid);
	for (size_t a = 0; a < rq->nq;) {
		uint32_t f = rq->fid ? rq->fid[order[a]] : SEARCH_NO_FILTER;
		size_t b = a;
		while (b < rq->nq && (rq->fid ? rq->fid[order[b]] : SEARCH_NO_FILTER) == f)
			b++;
		struct group *g = &j->groups[j->ngroups++];
		g->filter = f;
		g->nq = b - a;
		g->qi = malloc(g->nq * sizeof *g->qi);
		g->q = malloc(g->nq * dim * sizeof *g->q);
		g->qq = malloc(g->nq * sizeof *g->qq);
		if (g->qi == NULL || g->q == NULL || g->qq == NULL) {
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			break;
		}
		for (size_t i = 0; i < g->nq; i++) {
			g->qi[i] = order[a + i];
			memcpy(g->q + i * dim, rq->q + (size_t)order[a + i] * dim,
			       dim * sizeof(float));
		}
		dist_sqnorms(g->q, NULL, g->nq, dim, g->qq);
		a = b;
	}
	free(order);
	return rc;
}

static int
cmp_hit(const void *a, const void *b)
{
	return worse(a, b) ? 1 : worse(b, a) ? -1 : 0;
}

void
hits_free(struct hits *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

/* merge: the threads' hits for each query, sorted, cut to k, keys turned
 * back into distances */
static int
merge(struct job *j, struct worker *w, int nw, struct hits *out, struct vdb_err *e)
{
	const struct search_req *rq = j->rq;

	for (size_t q = 0; q < rq->nq; q++) {
		size_t n = 0;
		for (int t = 0; t < nw; t++)
			n += w[t].qs[q].h.n;
		if (nw == 1) {
			out[q] = w[0].qs[q].h; /* taken over */
			w[0].qs[q].h.v = NULL;
			w[0].qs[q].h.n = 0;
		} else {
			out[q].v = malloc((n ? n : 1) * sizeof(struct hit));
			if (out[q].v == NULL)
				return vdb_err_set(e, VDB_ETEMP, "out of memory");
			out[q].n = 0;
			out[q].cap = n;
			for (int t = 0; t < nw; t++) {
				if (w[t].qs[q].h.n > 0) /* else v may be NULL: not for memcpy */
					memcpy(out[q].v + out[q].n, w[t].qs[q].h.v,
					       w[t].qs[q].h.n * sizeof(struct hit));
				out[q].n += w[t].qs[q].h.n;
				/* each thread's heap goes as soon as it is copied:
				 * threads x queries x k hits would otherwise peak */
				hits_free(&w[t].qs[q].h);
			}
		}
		if (out[q].n > 1)
			qsort(out[q].v, out[q].n, sizeof(struct hit), cmp_hit);
		if (rq->k[q] && out[q].n > rq->k[q]) {
			struct hit *nv = realloc(out[q].v, rq->k[q] * sizeof(struct hit));
			out[q].n = rq->k[q];
			if (nv != NULL) {
				out[q].v = nv;
				out[q].cap = rq->k[q];
			}
		}
		if (rq->k[q] == 0 && out[q].n > SEARCH_MAX_HITS)
			return vdb_err_set(
			        e, VDB_EINPUT,
			        "more than %d hits within the radius for one query; give k",
			        SEARCH_MAX_HITS);
		if (j->neg)
			for (size_t i = 0; i < out[q].n; i++)
				out[q].v[i].dist = -out[q].v[i].dist;
	}
	return VDB_OK;
}

static int
push_item(struct job *j, size_t *cap, struct item it, struct vdb_err *e)
{
	if (j->nitems == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct item *nv = realloc(j->items, nc * sizeof *nv);
		if (nv == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		j->items = nv;
		*cap = nc;
	}
	j->items[j->nitems++] = it;
	return VDB_OK;
}

/* make_items: chunks of rows for the exact scan; for a segment searched
 * through its index, slices of each group's queries — small enough that
 * nw threads share them, and for a filtered group large enough that the
 * filter's pass over the whole segment (once per slice) stays small
 * beside the searches */
static int
make_items(struct job *j, int nw, struct vdb_err *e)
{
	const struct search_set *set = j->set;
	size_t cap = 0;
	int rc = VDB_OK;

	for (size_t s = 0; s < set->nsrc && rc == VDB_OK; s++) {
		const struct source *src = &set->src[s];
		if (src->ann == NULL || j->rq->exact) {
			for (size_t from = 0; from < src->b->n && rc == VDB_OK; from += j->chunk) {
				size_t len = src->b->n - from;
				struct item it = {(uint32_t)s, 0, 0, from,
				                  len < j->chunk ? len : j->chunk};
				rc = push_item(j, &cap, it, e);
			}
			continue;
		}
		for (size_t gi = 0; gi < j->ngroups && rc == VDB_OK; gi++) {
			const struct group *g = &j->groups[gi];
			size_t slice = (g->nq + 4 * (size_t)nw - 1) / (4 * (size_t)nw);
			if (g->filter != SEARCH_NO_FILTER && slice < 32)
				slice = 32;
			for (size_t q = 0; q < g->nq && rc == VDB_OK; q += slice) {
				struct item it = {(uint32_t)s, (uint32_t)gi, 1, q,
				                  g->nq - q < slice ? g->nq - q : slice};
				rc = push_item(j, &cap, it, e);
			}
		}
	}
	return rc;
}

int
search_run(struct search_set *set, const struct search_req *rq, struct hits *out, struct vdb_err *e)
{
	struct job j = {.set = set, .rq = rq};
	int nw = rq->threads > 0 ? rq->threads : 1, started = 0, rc;
	struct worker *w = NULL;
	pthread_t *tid = NULL;

	memset(out, 0, rq->nq * sizeof *out);
	pthread_mutex_init(&j.lock, NULL);
	atomic_init(&j.next, 0);
	atomic_init(&j.failed, 0);
	j.neg = set->sc->metric != METRIC_L2;
	j.rbound = INFINITY;
	if (rq->has_radius)
		j.rbound = j.neg ? -rq->radius : rq->radius;
	/* with threads, at least four work items each where the rows allow,
	 * so a small collection (or its last chunks) does not leave a thread
	 * idle; never under 4 * VB rows, where a thread costs more than it
	 * saves */
	size_t total = 0;
	for (size_t s = 0; s < set->nsrc; s++)
		total += set->src[s].b->n;
	j.chunk = CHUNK;
	if (nw > 1) {
		size_t per = (total / (4 * (size_t)nw) + VB - 1) / VB * VB;
		j.chunk = per < 4 * VB ? 4 * VB : per < CHUNK ? per : CHUNK;
	}
	for (size_t s = 0; s < set->nsrc; s++) {
		if (set->src[s].vec == NULL) {
			rc = vdb_err_set(e, VDB_EINTERNAL,
			                 "search over a set opened without vectors");
			goto out;
		}
	}
	if ((rc = make_groups(&j, e)) != VDB_OK || (rc = make_items(&j, nw, e)) != VDB_OK)
		goto out;
	if ((size_t)nw > j.nitems)
		nw = j.nitems ? (int)j.nitems : 1;
	w = calloc(nw, sizeof *w);
	tid = calloc(nw, sizeof *tid);
	if (w == NULL || tid == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto out;
	}
	for (int t = 0; t < nw; t++) {
		if ((rc = worker_init(&w[t], &j, e)) != VDB_OK) {
			nw = t + 1;
			goto out;
		}
	}
	/* the calling thread is worker 0; fewer threads than nw (the pool's
	 * or ours could not all start) take up the chunks between them */
	if (nw == 1) {
		worker_main(&w[0]);
	} else if (nw <= POOL_MAX && pool_take(nw)) {
		pool_run(w, nw);
	} else {
		for (started = 1; started < nw; started++)
			if (pthread_create(&tid[started], NULL, worker_main, &w[started]) != 0)
				break;
		worker_main(&w[0]);
		for (int t = 1; t < started; t++)
			pthread_join(tid[t], NULL);
	}
	if ((rc = atomic_load(&j.failed)) != 0) {
		*e = j.err;
		goto out;
	}
	rc = merge(&j, w, nw, out, e);
out:
	if (rc != VDB_OK)
		for (size_t q = 0; q < rq->nq; q++)
			hits_free(&out[q]);
	if (w)
		for (int t = 0; t < nw; t++)
			worker_free(&w[t], rq);
	for (size_t g = 0; g < j.ngroups; g++) {
		free(j.groups[g].qi);
		free(j.groups[g].q);
		free(j.groups[g].qq);
	}
	free(j.groups);
	free(w);
	free(tid);
	free(j.items);
	pthread_mutex_destroy(&j.lock);
	return rc;
}
