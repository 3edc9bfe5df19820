/* hnsw.c: Hierarchical Navigable Small World graphs (hnsw.h); the sections
 * and header parameters are specified in formats/index.md, "HNSW".
 *
 * The graph is hnswlib's (Malkov & Yashunin's algorithms 1-4 with the
 * neighbour-selection heuristic, M links per node above level 0 and M0 at
 * level 0), laid out for a reader that searches it in place from mmap:
 *   - level 0 is one array of rows x M0 u32, links first, unused slots
 *     0xffffffff: no count to read, and with M0 a multiple of 16 a row's
 *     list is whole cache lines;
 *   - the upper levels name nodes by their position among the rows that
 *     have upper levels, so walking them needs no search for where a
 *     node's lists are.
 *
 * Searching differs from hnswlib in how it spends time, not in what it
 * finds.  The distances of all unvisited neighbours of a node are
 * computed together, four vectors interleaved (one accumulator each, so a
 * distance never depends on its neighbours in the batch), with the next
 * four vectors prefetched.  The candidates are one sorted array of ef
 * entries (struct of arrays, so that AVX-512 finds a new entry's place in
 * a few compares), each walk is compiled once per ISA and metric with its
 * kernel inlined, and visited rows carry a generation byte; the link
 * lists of new candidates are prefetched.  The final keys come from
 * dist_rows, so they are those of exact search bit for bit. */
#include "hnsw.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "schema.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define HNSW_X86 1
#include <immintrin.h>
#else
#define HNSW_X86 0
#endif

#define NONE 0xffffffffu
/* levels above this are clipped: a node reaches level l with probability
 * M^-l, so even M = 2 over 2^32 rows stays far below */
#define MAX_LEVEL 48
/* a reader's bound on level-0 slots: m0_of(HNSW_MAX_M) is 256 */
#define MAX_M0 4096
#define SEED 0x5eed5eed5eed5eedull

enum { ISA_C, ISA_AVX2, ISA_AVX512 };

/* ---- distances during the walk ----------------------------------------
 * Smaller is closer: L2 the squared distance, IP the negated dot product,
 * cosine the negated cosine (the full one, as the build's heuristic
 * compares distances measured from different nodes).  A NaN counts as
 * infinitely far, so it never ends or steers a walk. */

enum { K_L2, K_IP, K_COS, K_COSN };

struct dctx {
	const float *q;
	const float *vec;
	size_t dim;
	float qn; /* cosine: sqrt(|q|^2) */
	const float *norms; /* build, cosine: sqrt(|x|^2) per row */
};

typedef void (*batch_fn)(const struct dctx *c, const uint32_t *rows, size_t n, float *out);

static inline float
fin(const int kind, float s, float xx, const struct dctx *c, uint32_t row)
{
	float xn;

	switch (kind) {
	case K_L2:
		break;
	case K_IP:
		s = -s;
		break;
	default:
		xn = kind == K_COSN ? c->norms[row] : sqrtf(xx);
		s = c->qn == 0 || xn == 0 ? 0 : -s / (c->qn * xn);
		break;
	}
	return s != s ? INFINITY : s;
}

static inline void
pf_lines(const void *p, size_t bytes)
{
#if HNSW_X86
	for (size_t b = 0; b < bytes; b += 64)
		_mm_prefetch((const char *)p + b, _MM_HINT_T0);
#else
	(void)p;
	(void)bytes;
#endif
}

static inline void
kern_c(const int kind, const struct dctx *c, const uint32_t *rows, size_t n, float *out)
{
	const size_t d = c->dim;

	for (size_t i = 0; i < n; i++) {
		const float *x = c->vec + (size_t)rows[i] * d;
		float s = 0, xx = 0;
		for (size_t k = 0; k < d; k++) {
			if (kind == K_L2) {
				float t = c->q[k] - x[k];
				s += t * t;
			} else {
				s += c->q[k] * x[k];
				if (kind == K_COS)
					xx += x[k] * x[k];
			}
		}
		out[i] = fin(kind, s, xx, c, rows[i]);
	}
}

#if HNSW_X86

#define I512 __attribute__((target("avx512f"), always_inline)) static inline
/* not always_inline: the walks of every ISA name them, and flatten
 * inlines them where the target allows */
#define T512 __attribute__((target("avx512f"))) static inline

I512 float
hsum512(__m512 a)
{
	__m256 h = _mm256_add_ps(_mm512_castps512_ps256(a),
	                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

I512 void
step512(const int kind, __m512 qv, __m512 xv, __m512 *acc, __m512 *xx)
{
	if (kind == K_L2) {
		__m512 s = _mm512_sub_ps(qv, xv);
		*acc = _mm512_fmadd_ps(s, s, *acc);
	} else {
		*acc = _mm512_fmadd_ps(qv, xv, *acc);
		if (kind == K_COS)
			*xx = _mm512_fmadd_ps(xv, xv, *xx);
	}
}

/* kern512: four vectors at a time, so that four independent chains of
 * fmas hide each other's latency, the next four asked for meanwhile.  A
 * short last group repeats its last vector. */
T512 void
kern512(const int kind, const struct dctx *c, const uint32_t *rows, size_t n, float *out)
{
	const size_t d = c->dim, dm = d & ~(size_t)15;
	const __mmask16 tm = (__mmask16)((1u << (d & 15)) - 1);
	const float *q = c->q;

	for (size_t i = 0; i < n; i += 4) {
		const float *x[4];
		__m512 acc[4], xx[4];

#pragma GCC unroll 4
		for (int t = 0; t < 4; t++) {
			x[t] = c->vec + (size_t)rows[i + t < n ? i + t : n - 1] * d;
			acc[t] = xx[t] = _mm512_setzero_ps();
		}
		for (size_t t = i + 4; t < i + 8 && t < n; t++)
			pf_lines(c->vec + (size_t)rows[t] * d, d * sizeof(float));
		for (size_t k = 0; k < dm; k += 16) {
			__m512 qv = _mm512_loadu_ps(q + k);
#pragma GCC unroll 4
			for (int t = 0; t < 4; t++)
				step512(kind, qv, _mm512_loadu_ps(x[t] + k), &acc[t], &xx[t]);
		}
		if (d & 15) {
			__m512 qv = _mm512_maskz_loadu_ps(tm, q + dm);
#pragma GCC unroll 4
			for (int t = 0; t < 4; t++)
				step512(kind, qv, _mm512_maskz_loadu_ps(tm, x[t] + dm), &acc[t],
				        &xx[t]);
		}
		for (size_t t = 0; t < 4 && i + t < n; t++)
			out[i + t] = fin(kind, hsum512(acc[t]), kind == K_COS ? hsum512(xx[t]) : 0,
			                 c, rows[i + t]);
	}
}

#define I256 __attribute__((target("avx2,fma"), always_inline)) static inline
#define T256 __attribute__((target("avx2,fma"))) static inline

I256 float
hsum256(__m256 a)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* kern256: as kern512, 8 lanes */
T256 void
kern256(const int kind, const struct dctx *c, const uint32_t *rows, size_t n, float *out)
{
	const size_t d = c->dim, dm = d & ~(size_t)7;
	const float *q = c->q;
	__m256i tm = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(d & 7)),
	                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));

	for (size_t i = 0; i < n; i += 4) {
		const float *x[4];
		__m256 acc[4], xx[4];

#pragma GCC unroll 4
		for (int t = 0; t < 4; t++) {
			x[t] = c->vec + (size_t)rows[i + t < n ? i + t : n - 1] * d;
			acc[t] = xx[t] = _mm256_setzero_ps();
		}
		for (size_t t = i + 4; t < i + 8 && t < n; t++)
			pf_lines(c->vec + (size_t)rows[t] * d, d * sizeof(float));
		for (size_t k = 0; k < d; k += 8) {
			__m256 qv = k < dm ? _mm256_loadu_ps(q + k) : _mm256_maskload_ps(q + k, tm);
#pragma GCC unroll 4
			for (int t = 0; t < 4; t++) {
				__m256 xv = k < dm ? _mm256_loadu_ps(x[t] + k)
				                   : _mm256_maskload_ps(x[t] + k, tm);
				if (kind == K_L2) {
					__m256 s = _mm256_sub_ps(qv, xv);
					acc[t] = _mm256_fmadd_ps(s, s, acc[t]);
				} else {
					acc[t] = _mm256_fmadd_ps(qv, xv, acc[t]);
					if (kind == K_COS)
						xx[t] = _mm256_fmadd_ps(xv, xv, xx[t]);
				}
			}
		}
		for (size_t t = 0; t < 4 && i + t < n; t++)
			out[i + t] = fin(kind, hsum256(acc[t]), kind == K_COS ? hsum256(xx[t]) : 0,
			                 c, rows[i + t]);
	}
}

#endif /* HNSW_X86 */

/* kern: the batch kernel of isa */
#if HNSW_X86
#define KERN(isa, kind, c, rows, n, out)                                                           \
	((isa) == ISA_AVX512 ? kern512(kind, c, rows, n, out)                                      \
	 : (isa) == ISA_AVX2 ? kern256(kind, c, rows, n, out)                                      \
	                     : kern_c(kind, c, rows, n, out))
#else
#define KERN(isa, kind, c, rows, n, out) kern_c(kind, c, rows, n, out)
#endif

/* ---- candidates ---------------------------------------------------------
 * The candidate list: ef entries sorted by (distance, row), as three
 * arrays.  A new entry's place is the number of entries before it, which
 * AVX-512 counts 16 at a time; the next node to expand is the first entry
 * not yet done. */

struct pool {
	float *d;
	uint32_t *id;
	uint8_t *done;
	uint32_t n, cap;
};

static inline int
cand_lt(float da, uint32_t ia, float db, uint32_t ib)
{
	return da < db || (da == db && ia < ib);
}

static inline uint32_t
pos_c(const struct pool *p, float d, uint32_t id)
{
	uint32_t lo = 0, hi = p->n;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (cand_lt(p->d[mid], p->id[mid], d, id))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

#if HNSW_X86
/* pos512: the entries before (d, id) are a prefix; count it a block at a
 * time until a block has one that is not before */
T512 uint32_t
pos512(const struct pool *p, float d, uint32_t id)
{
	const __m512 vd = _mm512_set1_ps(d);
	uint32_t cnt = 0;

	for (uint32_t i = 0; i < p->n; i += 16) {
		__mmask16 ok = p->n - i >= 16 ? 0xffff : (__mmask16)((1u << (p->n - i)) - 1);
		__m512 x = _mm512_maskz_loadu_ps(ok, p->d + i);
		__mmask16 lt = _mm512_mask_cmp_ps_mask(ok, x, vd, _CMP_LT_OQ);
		__mmask16 eq = _mm512_mask_cmp_ps_mask(ok, x, vd, _CMP_EQ_OQ);
		if (eq)
			lt |= _mm512_mask_cmplt_epu32_mask(eq,
			                                   _mm512_maskz_loadu_epi32(eq, p->id + i),
			                                   _mm512_set1_epi32((int)id));
		cnt += (uint32_t)__builtin_popcount(lt);
		if (lt != ok)
			break;
	}
	return cnt;
}
#define POS(isa, p, d, id) ((isa) == ISA_AVX512 ? pos512(p, d, id) : pos_c(p, d, id))
#else
#define POS(isa, p, d, id) pos_c(p, d, id)
#endif

/* pool_put: (d, id) in its place, the worst entry dropped when full;
 * returns the place, or cap if it is not among the best cap.  done may be
 * NULL (a result list). */
static inline uint32_t
pool_put(const int isa, struct pool *p, float d, uint32_t id)
{
	uint32_t at, keep;

	if (p->n == p->cap && !cand_lt(d, id, p->d[p->cap - 1], p->id[p->cap - 1]))
		return p->cap;
	at = POS(isa, p, d, id);
	keep = p->n < p->cap ? p->n : p->cap - 1;
	if (keep > at) {
		memmove(p->d + at + 1, p->d + at, (keep - at) * sizeof *p->d);
		memmove(p->id + at + 1, p->id + at, (keep - at) * sizeof *p->id);
		if (p->done)
			memmove(p->done + at + 1, p->done + at, keep - at);
	}
	p->d[at] = d;
	p->id[at] = id;
	if (p->done)
		p->done[at] = 0;
	if (p->n < p->cap)
		p->n++;
	return at;
}

struct cand {
	float d;
	uint32_t id;
};

/* a binary min-heap of candidates (filtered search: it holds rows the
 * results may not, so it is not bounded by ef) */
static void
heap_push(struct cand *h, size_t *n, struct cand c)
{
	size_t i = (*n)++;

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!cand_lt(c.d, c.id, h[p].d, h[p].id))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = c;
}

static void
heap_pop(struct cand *h, size_t *n)
{
	struct cand last = h[--(*n)];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, m;
		if (l >= *n)
			break;
		m = l + 1 < *n && cand_lt(h[l + 1].d, h[l + 1].id, h[l].d, h[l].id) ? l + 1 : l;
		if (!cand_lt(h[m].d, h[m].id, last.d, last.id))
			break;
		h[i] = h[m];
		i = m;
	}
	if (*n)
		h[i] = last;
}

/* ---- scratch ------------------------------------------------------------ */

struct hnsw_scratch {
	uint64_t rows;
	uint8_t *vis; /* vis[row] == gen: visited by this search */
	uint8_t gen;
	struct pool pool;
	uint32_t alloc; /* the pool's room */
	struct cand *heap;
	size_t heapcap;
	uint32_t *nb; /* a node's unvisited neighbours */
	float *nd; /* their distances */
	uint32_t *lbuf; /* a list copied (build) */
	uint32_t *up; /* upper positions of nb (search) */
	uint32_t nbcap;
	struct ann_hit *hits;
	float *keys;
};

static void
scratch_free(struct hnsw_scratch *s)
{
	if (s == NULL)
		return;
	free(s->vis);
	free(s->pool.d);
	free(s->pool.id);
	free(s->pool.done);
	free(s->heap);
	free(s->nb);
	free(s->nd);
	free(s->lbuf);
	free(s->up);
	free(s->hits);
	free(s->keys);
	free(s);
}

static struct hnsw_scratch *
scratch_new(uint64_t rows, uint32_t nbcap)
{
	struct hnsw_scratch *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->rows = rows;
	s->vis = calloc(rows + 4, 1); /* scan512 reads 4 bytes at a tag */
	s->nbcap = nbcap;
	s->nb = malloc(nbcap * sizeof *s->nb);
	s->nd = malloc(nbcap * sizeof *s->nd);
	s->lbuf = malloc(nbcap * sizeof *s->lbuf);
	s->up = malloc(nbcap * sizeof *s->up);
	if (s->vis == NULL || s->nb == NULL || s->nd == NULL || s->lbuf == NULL || s->up == NULL) {
		scratch_free(s);
		return NULL;
	}
	return s;
}

/* scratch_cap: room for a candidate list of ef */
static int
scratch_cap(struct hnsw_scratch *s, uint32_t ef)
{
	void *p[5];

	if (ef <= s->alloc)
		return 0;
	p[0] = realloc(s->pool.d, ef * sizeof *s->pool.d);
	if (p[0])
		s->pool.d = p[0];
	p[1] = realloc(s->pool.id, ef * sizeof *s->pool.id);
	if (p[1])
		s->pool.id = p[1];
	p[2] = realloc(s->pool.done, ef);
	if (p[2])
		s->pool.done = p[2];
	p[3] = realloc(s->hits, ef * sizeof *s->hits);
	if (p[3])
		s->hits = p[3];
	p[4] = realloc(s->keys, ef * sizeof *s->keys);
	if (p[4])
		s->keys = p[4];
	for (int i = 0; i < 5; i++)
		if (p[i] == NULL)
			return -1;
	s->alloc = ef;
	return 0;
}

/* visit_begin: a new generation; the tags are cleared once in 255 */
static void
visit_begin(struct hnsw_scratch *s)
{
	if (++s->gen == 0) {
		memset(s->vis, 0, s->rows);
		s->gen = 1;
	}
}

struct hnsw_scratch *
hnsw_scratch_new(const struct hnsw *g)
{
	return scratch_new(g->rows, (g->m0 > g->m ? g->m0 : g->m) + 1);
}

void
hnsw_scratch_free(struct hnsw_scratch *s)
{
	scratch_free(s);
}

static int
corrupt(struct vdb_err *e, const char *what)
{
	return vdb_err_set(e, VDB_ECORRUPT, "hnsw: %s", what);
}

/* ---- the graph being built ---------------------------------------------- */

struct bld {
	const float *vec;
	uint64_t n;
	size_t dim;
	uint32_t m, m0, efc;
	int threads;
	int metric;
	float *norms; /* cosine */
	uint8_t *level;
	uint32_t *uidx; /* row -> position among the upper rows */
	uint32_t *l0, *urows, *uoff, *ulinks;
	uint64_t nupper, nlists;
	atomic_uchar *lock; /* one per row, over all its lists */
	pthread_mutex_t ep_lock;
	uint32_t entry;
	int max_level; /* -1: empty */
	atomic_uint_fast64_t next, done;
	index_progress_fn progress;
	void *parg;
};

/* the list of row at level l and its capacity */
static inline uint32_t *
list_of(const struct bld *b, uint32_t row, int l, uint32_t *cap)
{
	if (l == 0) {
		*cap = b->m0;
		return b->l0 + (size_t)row * b->m0;
	}
	*cap = b->m;
	return b->ulinks + ((size_t)b->uoff[b->uidx[row]] + (size_t)l - 1) * b->m;
}

/* a spinlock in a byte, one per row: a list is held only to copy it or
 * to add one link (or prune, now and then), and a mutex per row would
 * cost 40 bytes */
static inline void
lk(const struct bld *b, uint32_t row)
{
	if (b->threads == 1)
		return;
	while (atomic_exchange_explicit(&b->lock[row], 1, memory_order_acquire))
		while (atomic_load_explicit(&b->lock[row], memory_order_relaxed))
#if HNSW_X86
			_mm_pause();
#else
			;
#endif
}

static inline void
unlk(const struct bld *b, uint32_t row)
{
	if (b->threads > 1)
		atomic_store_explicit(&b->lock[row], 0, memory_order_release);
}

/* links: row's neighbours at level l, as rows, copied under its lock */
static uint32_t
links(const struct bld *b, uint32_t row, int l, uint32_t *out)
{
	uint32_t cap, n = 0;
	const uint32_t *lst = list_of(b, row, l, &cap);

	lk(b, row);
	while (n < cap && lst[n] != NONE) {
		out[n] = lst[n];
		n++;
	}
	unlk(b, row);
	if (l > 0)
		for (uint32_t j = 0; j < n; j++)
			out[j] = b->urows[out[j]];
	return n;
}

/* ---- the walk -------------------------------------------------------------
 * One layer's best-first search (the paper's SEARCH-LAYER) with every
 * row allowed, for searches (level 0 of a mapped graph) and for the build
 * (any level of the graph being built).  The candidate list is the result
 * list: a node is expanded once, and the walk ends when every entry has
 * been — which is hnswlib's rule of stopping at the first candidate worse
 * than the worst result. */

struct walk {
	const struct hnsw *g; /* searching: the mapped graph */
	const struct bld *b; /* building: the graph, at level */
	int level;
	struct dctx dc;
	struct hnsw_scratch *s;
};

#if HNSW_X86
/* scan512: nbrs' loop 16 links at a time: their visited tags gathered
 * (a 4-byte read at vis + v, hence vis's slack), the unvisited packed by
 * one compress, so that no branch waits on a tag.  Row numbers are
 * signed indexes to the gather: rows < 2^31 only. */
T512 int
scan512(struct hnsw_scratch *s, const uint32_t *lst, uint32_t cap, uint64_t lim, uint32_t *nn)
{
	const __m512i none = _mm512_set1_epi32(-1), vlim = _mm512_set1_epi32((int)lim),
	              vgen = _mm512_set1_epi32(s->gen), byte = _mm512_set1_epi32(0xff);
	uint32_t n = 0;

	for (uint32_t j = 0; j < cap; j += 16) {
		__mmask16 in = cap - j >= 16 ? 0xffff : (__mmask16)((1u << (cap - j)) - 1);
		__m512i v = _mm512_maskz_loadu_epi32(in, lst + j), tag;
		__mmask16 live = _mm512_mask_cmpneq_epu32_mask(in, v, none), fresh;
		__mmask16 unused = in & ~live;
		uint32_t end;

		/* a list ends at its first unused slot, as the C loop reads
		 * it, whatever a damaged file has after it */
		if (unused)
			live &= (__mmask16)((unused & -unused) - 1);
		if (_mm512_mask_cmpge_epu32_mask(live, v, vlim))
			return -1;
		tag = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, v, s->vis, 1);
		fresh = _mm512_mask_cmpneq_epi32_mask(live, _mm512_and_si512(tag, byte), vgen);
		_mm512_mask_compressstoreu_epi32(s->nb + n, fresh, v);
		/* marking one at a time also drops a row listed twice */
		end = n + (uint32_t)__builtin_popcount(fresh);
		for (uint32_t t = n; t < end; t++) {
			uint32_t x = s->nb[t];
			if (s->vis[x] != s->gen) {
				s->vis[x] = s->gen;
				s->nb[n++] = x;
			}
		}
		if (live != in)
			break;
	}
	*nn = n;
	return 0;
}
#endif

/* nbrs: the unvisited neighbours of row into s->nb, marked visited; -1
 * on a link out of range */
static inline int
nbrs(const int isa, const struct walk *w, uint32_t row, uint32_t *nn)
{
	struct hnsw_scratch *s = w->s;
	const uint32_t *lst;
	uint32_t cap, n = 0;
	uint64_t lim;

	if (w->g) {
		lst = w->g->l0 + (size_t)row * w->g->m0;
		cap = w->g->m0;
		lim = w->g->rows;
	} else {
		cap = links(w->b, row, w->level, s->lbuf);
		lst = s->lbuf;
		lim = w->b->n;
	}
#if HNSW_X86
	if (isa == ISA_AVX512 && lim <= INT32_MAX)
		return scan512(s, lst, cap, lim, nn);
#else
	(void)isa;
#endif
	for (uint32_t j = 0; j < cap; j++) {
		uint32_t v = lst[j];
		if (v == NONE)
			break;
		if (v >= lim)
			return -1;
		if (s->vis[v] == s->gen)
			continue;
		s->vis[v] = s->gen;
		s->nb[n++] = v;
	}
	*nn = n;
	return 0;
}

/* walk_core: from ep (at distance epd) with s->pool.cap candidates; the
 * number found, or -1 for a link out of range */
static inline int
walk_core(const int isa, const int kind, struct walk *w, uint32_t ep, float epd)
{
	struct hnsw_scratch *s = w->s;
	struct pool *p = &s->pool;
	const uint32_t *l0 = w->g ? w->g->l0 : w->level == 0 ? w->b->l0 : NULL;
	const uint32_t m0 = w->g ? w->g->m0 : w->b->m0;
	const size_t vb = w->dc.dim * sizeof(float);
	uint32_t k = 0;

	p->n = 0;
	s->vis[ep] = s->gen;
	pool_put(isa, p, epd, ep);
	for (;;) {
		uint32_t cpos, nn, low = p->n;

		while (k < p->n && p->done[k])
			k++;
		if (k >= p->n)
			break;
		cpos = k;
		p->done[cpos] = 1;
		if (nbrs(isa, w, p->id[cpos], &nn) != 0)
			return -1;
		for (uint32_t j = 0; j < nn && j < 4; j++)
			pf_lines(w->dc.vec + (size_t)s->nb[j] * w->dc.dim, vb);
		if (nn)
			KERN(isa, kind, &w->dc, s->nb, nn, s->nd);
		for (uint32_t j = 0; j < nn; j++) {
			uint32_t at = pool_put(isa, p, s->nd[j], s->nb[j]);
			if (at == p->cap)
				continue;
			if (at < low)
				low = at;
			/* a new candidate is likely to be expanded soon */
			if (l0)
				pf_lines(l0 + (size_t)s->nb[j] * m0, m0 * sizeof *l0);
		}
		k = low < cpos + 1 ? low : cpos + 1;
	}
	return (int)p->n;
}

typedef int (*walk_fn)(struct walk *w, uint32_t ep, float epd);

/* one walk and one plain batch kernel per ISA and distance, each with its
 * kernel and its candidate list's code inlined */
#define INSTANCES(pfx, attr, isa)                                                                  \
	attr int pfx##_w_l2(struct walk *w, uint32_t ep, float epd)                                \
	{                                                                                          \
		return walk_core(isa, K_L2, w, ep, epd);                                           \
	}                                                                                          \
	attr int pfx##_w_ip(struct walk *w, uint32_t ep, float epd)                                \
	{                                                                                          \
		return walk_core(isa, K_IP, w, ep, epd);                                           \
	}                                                                                          \
	attr int pfx##_w_cos(struct walk *w, uint32_t ep, float epd)                               \
	{                                                                                          \
		return walk_core(isa, K_COS, w, ep, epd);                                          \
	}                                                                                          \
	attr int pfx##_w_cosn(struct walk *w, uint32_t ep, float epd)                              \
	{                                                                                          \
		return walk_core(isa, K_COSN, w, ep, epd);                                         \
	}                                                                                          \
	attr void pfx##_b_l2(const struct dctx *c, const uint32_t *rows, size_t n, float *out)     \
	{                                                                                          \
		KERN(isa, K_L2, c, rows, n, out);                                                  \
	}                                                                                          \
	attr void pfx##_b_ip(const struct dctx *c, const uint32_t *rows, size_t n, float *out)     \
	{                                                                                          \
		KERN(isa, K_IP, c, rows, n, out);                                                  \
	}                                                                                          \
	attr void pfx##_b_cos(const struct dctx *c, const uint32_t *rows, size_t n, float *out)    \
	{                                                                                          \
		KERN(isa, K_COS, c, rows, n, out);                                                 \
	}                                                                                          \
	attr void pfx##_b_cosn(const struct dctx *c, const uint32_t *rows, size_t n, float *out)   \
	{                                                                                          \
		KERN(isa, K_COSN, c, rows, n, out);                                                \
	}

#define FLAT __attribute__((flatten)) static
INSTANCES(c, FLAT, ISA_C)
#if HNSW_X86
#define FLAT512 __attribute__((flatten, target("avx512f"))) static
#define FLAT256 __attribute__((flatten, target("avx2,fma"))) static
INSTANCES(avx512, FLAT512, ISA_AVX512)
INSTANCES(avx2, FLAT256, ISA_AVX2)
#endif

struct kernels {
	int isa;
	walk_fn walk;
	batch_fn batch;
};

/* pick: the code for the ISA distance.c uses (so that $VDB_ISA and
 * dist_force_isa reach the walk too) and the metric; norms: cosine with
 * the norms known */
static struct kernels
pick(int metric, int norms)
{
	static const walk_fn wc[] = {c_w_l2, c_w_ip, c_w_cos, c_w_cosn};
	static const batch_fn bc[] = {c_b_l2, c_b_ip, c_b_cos, c_b_cosn};
	int kind = metric == METRIC_L2 ? K_L2 : metric == METRIC_IP ? K_IP : norms ? K_COSN : K_COS;
	const char *isa = dist_isa();

#if HNSW_X86
	static const walk_fn w512[] = {avx512_w_l2, avx512_w_ip, avx512_w_cos, avx512_w_cosn};
	static const batch_fn b512[] = {avx512_b_l2, avx512_b_ip, avx512_b_cos, avx512_b_cosn};
	static const walk_fn w256[] = {avx2_w_l2, avx2_w_ip, avx2_w_cos, avx2_w_cosn};
	static const batch_fn b256[] = {avx2_b_l2, avx2_b_ip, avx2_b_cos, avx2_b_cosn};
	if (strcmp(isa, "avx512") == 0)
		return (struct kernels){ISA_AVX512, w512[kind], b512[kind]};
	if (strcmp(isa, "avx2") == 0)
		return (struct kernels){ISA_AVX2, w256[kind], b256[kind]};
#else
	(void)isa;
#endif
	return (struct kernels){ISA_C, wc[kind], bc[kind]};
}

static float
norm(const float *x, size_t d)
{
	float s = 0;

	for (size_t k = 0; k < d; k++)
		s += x[k] * x[k];
	return sqrtf(s);
}

/* ---- searching ---------------------------------------------------------- */

/* upper_walk: greedy descent from the entry point to level 1; *row and
 * *d the closest found */
static int
upper_walk(const struct hnsw *g, const struct dctx *c, batch_fn dist, struct hnsw_scratch *s,
           uint32_t *row, float *d, struct vdb_err *e)
{
	uint32_t cur = g->entry_up, m = g->m;

	visit_begin(s);
	s->vis[g->entry] = s->gen;
	for (uint32_t l = g->max_level; l > 0; l--) {
		for (;;) {
			const uint32_t *lst =
			        g->upper_links + ((size_t)g->upper_off[cur] + l - 1) * m;
			uint32_t nn = 0, best = NONE;

			for (uint32_t j = 0; j < m && lst[j] != NONE; j++) {
				uint32_t v = lst[j], r;
				/* a node without level l would send the walk
				 * to another node's lists */
				if (v >= g->nupper || g->upper_off[v + 1] - g->upper_off[v] < l)
					return corrupt(e, "upper link out of range");
				/* a node seen before lost to one no farther
				 * than the current: it cannot win now */
				r = g->upper_rows[v];
				if (s->vis[r] == s->gen)
					continue;
				s->vis[r] = s->gen;
				s->up[nn] = v;
				s->nb[nn++] = r;
			}
			if (nn == 0)
				break;
			/* the next hop's list is one of these */
			for (uint32_t j = 0; j < nn; j++)
				pf_lines(g->upper_links +
				                 ((size_t)g->upper_off[s->up[j]] + l - 1) * m,
				         m * 4);
			for (uint32_t j = 0; j < nn && j < 4; j++)
				pf_lines(c->vec + (size_t)s->nb[j] * c->dim,
				         c->dim * sizeof(float));
			dist(c, s->nb, nn, s->nd);
			for (uint32_t j = 0; j < nn; j++)
				if (s->nd[j] < *d) {
					*d = s->nd[j];
					best = j;
				}
			if (best == NONE)
				break;
			*row = s->nb[best];
			cur = s->up[best];
		}
	}
	return VDB_OK;
}

/* walk_allow: level 0 when some rows may not be returned.  They are
 * walked through, but the results (s->pool, ef) hold allowed rows only,
 * and the walk goes on until ef of those are found or it runs out — the
 * candidates (s->heap) are bounded by nothing but the graph (hnswlib's
 * filtered search). */
static int
walk_allow(const struct walk *w, struct kernels kn, uint32_t ep, float epd, const uint8_t *allow,
           struct vdb_err *e)
{
	struct hnsw_scratch *s = w->s;
	struct pool r = s->pool;
	size_t nh = 0;

	r.done = NULL;
	r.n = 0;
	s->vis[ep] = s->gen;
	if (s->heapcap == 0) {
		if ((s->heap = malloc(1024 * sizeof *s->heap)) == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		s->heapcap = 1024;
	}
	heap_push(s->heap, &nh, (struct cand){epd, ep});
	if (allow[ep])
		pool_put(kn.isa, &r, epd, ep);
	while (nh) {
		struct cand cur = s->heap[0];
		uint32_t nn;

		if (r.n == r.cap && cand_lt(r.d[r.cap - 1], r.id[r.cap - 1], cur.d, cur.id))
			break;
		heap_pop(s->heap, &nh);
		if (nbrs(kn.isa, w, cur.id, &nn) != 0)
			return corrupt(e, "level-0 link out of range");
		if (nn == 0)
			continue;
		kn.batch(&w->dc, s->nb, nn, s->nd);
		if (nh + nn > s->heapcap) {
			size_t cap = s->heapcap * 2 > nh + nn ? s->heapcap * 2 : nh + nn;
			struct cand *h = realloc(s->heap, cap * sizeof *h);
			if (h == NULL)
				return vdb_err_set(e, VDB_ETEMP, "out of memory");
			s->heap = h;
			s->heapcap = cap;
		}
		for (uint32_t j = 0; j < nn; j++) {
			float d = s->nd[j];
			uint32_t v = s->nb[j];
			if (r.n == r.cap && !cand_lt(d, v, r.d[r.cap - 1], r.id[r.cap - 1]))
				continue;
			heap_push(s->heap, &nh, (struct cand){d, v});
			if (allow[v])
				pool_put(kn.isa, &r, d, v);
		}
	}
	s->pool.n = r.n;
	return VDB_OK;
}

static inline int
hit_lt(const struct ann_hit *x, const struct ann_hit *y)
{
	return x->key < y->key || (x->key == y->key && x->row < y->row);
}

/* 40 holds recall@10 on siftsmall's 10,000 rows above 0.99 (0.95 needs
 * about 14).  A larger graph hides the true neighbours deeper: on a
 * million SIFT-like rows 0.95 took about 80, so the list grows as
 * rows^0.2 past 10,000 (63 at 100,000, 100 at a million), which keeps the
 * default near 0.95 or better at a few per cent of the exact cost.  A
 * larger k wants a list half again as long, as the last of the list are
 * the least sure. */
uint32_t
hnsw_default_ef(uint32_t k, uint64_t rows)
{
	double base = rows > 10000 ? 40.0 * pow((double)rows / 10000.0, 0.2) : 40.0;
	uint64_t ef = (uint64_t)k + k / 2;

	if (base > 65536.0)
		base = 65536.0;
	if ((double)ef < base)
		ef = (uint64_t)(base + 0.5);
	return ef > UINT32_MAX ? UINT32_MAX : (uint32_t)ef;
}

int
hnsw_search(const struct hnsw *g, const float *vec, const float *q, uint32_t k, uint32_t ef,
            const uint8_t *allow, struct hnsw_scratch *s, struct ann_hit *out, uint32_t *nout,
            struct vdb_err *e)
{
	struct kernels kn = pick(g->metric, 0);
	struct walk w = {.g = g, .dc = {.q = q, .vec = vec, .dim = g->dim}, .s = s};
	uint32_t row = g->entry, n, got = 0;
	float d;
	int rc;

	*nout = 0;
	if (k == 0 || g->rows == 0)
		return VDB_OK;
	if (s->rows != g->rows || s->nbcap <= g->m0 || s->nbcap <= g->m)
		return vdb_err_set(e, VDB_EINTERNAL, "hnsw: scratch of another index");
	if (ef == 0)
		ef = hnsw_default_ef(k, g->rows);
	if (ef < k)
		ef = k;
	if (ef > g->rows)
		ef = (uint32_t)g->rows;
	if (scratch_cap(s, ef) != 0)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	s->pool.cap = ef;
	if (g->metric == METRIC_COSINE)
		w.dc.qn = norm(q, g->dim);
	kn.batch(&w.dc, &row, 1, &d);
	if (g->max_level > 0 && (rc = upper_walk(g, &w.dc, kn.batch, s, &row, &d, e)) != VDB_OK)
		return rc;
	visit_begin(s);
	if (allow) {
		if ((rc = walk_allow(&w, kn, row, d, allow, e)) != VDB_OK)
			return rc;
	} else if (kn.walk(&w, row, d) < 0) {
		return corrupt(e, "level-0 link out of range");
	}
	n = s->pool.n;
	/* the walk's distances rank; the keys are exact search's own */
	dist_rows(g->metric, q, 1, vec, s->pool.id, n, g->dim, s->keys);
	for (uint32_t i = 0; i < n; i++) {
		float key = g->metric == METRIC_L2 ? s->keys[i] : -s->keys[i];
		if (key != key)
			continue;
		s->hits[got].row = s->pool.id[i];
		s->hits[got].key = key;
		got++;
	}
	/* nearly in order already: the walk ranked them */
	for (uint32_t i = 1; i < got; i++) {
		struct ann_hit t = s->hits[i];
		uint32_t j = i;
		for (; j > 0 && hit_lt(&t, &s->hits[j - 1]); j--)
			s->hits[j] = s->hits[j - 1];
		s->hits[j] = t;
	}
	if (got > k)
		got = k;
	memcpy(out, s->hits, got * sizeof *out);
	*nout = got;
	return VDB_OK;
}

/* ---- opening and checking ----------------------------------------------- */

int
hnsw_open(const struct index_file *f, struct hnsw *g, struct vdb_err *e)
{
	const uint32_t *p = f->h.param;
	uint64_t rows = f->h.rows, nupper, nlists;
	uint32_t lo, hi;

	memset(g, 0, sizeof *g);
	if (f->h.type != IDX_HNSW)
		return vdb_err_set(e, VDB_EINTERNAL, "hnsw_open: not an HNSW index");
	g->metric = (int)f->h.metric;
	g->dim = f->h.dim;
	g->rows = rows;
	g->m = p[0];
	g->m0 = p[1];
	g->ef_construction = p[2];
	g->max_level = p[3];
	g->entry = p[4];
	nupper = g->nupper = p[5];
	nlists = p[6];
	if (g->m < 2 || g->m > HNSW_MAX_M || g->m0 < 1 || g->m0 > MAX_M0)
		return corrupt(e, "bad M or M0 in header");
	if (p[7] != 0)
		return corrupt(e, "unknown parameter in header");
	if (f->nsec != 4)
		return corrupt(e, "sections other than the four of HNSW");
	if (nupper > rows || g->max_level > MAX_LEVEL)
		return corrupt(e, "bad level counts in header");
	if (rows == 0 ? g->entry != NONE || g->max_level || nlists : g->entry >= rows)
		return corrupt(e, "bad entry point in header");
	/* every length below is a product of numbers under 2^32 and 2^12 */
	g->l0 = index_section(f, HNSW_SEC_L0, rows * g->m0 * 4, NULL);
	g->upper_rows = index_section(f, HNSW_SEC_UPPER_ROWS, nupper * 4, NULL);
	g->upper_off = index_section(f, HNSW_SEC_UPPER_OFF, (nupper + 1) * 4, NULL);
	g->upper_links = index_section(f, HNSW_SEC_UPPER_LINKS, nlists * g->m * 4, NULL);
	if (g->l0 == NULL || g->upper_rows == NULL || g->upper_off == NULL ||
	    g->upper_links == NULL)
		return corrupt(e, "a section is missing or of the wrong length");
	if (((uintptr_t)g->l0 | (uintptr_t)g->upper_rows | (uintptr_t)g->upper_off |
	     (uintptr_t)g->upper_links) %
	            4 !=
	    0)
		return vdb_err_set(e, VDB_EINTERNAL, "hnsw: index not aligned in memory");
	/* the upper levels' directory, which searches follow unchecked */
	if (g->upper_off[0] != 0 || g->upper_off[nupper] != nlists)
		return corrupt(e, "upper offsets do not span the upper links");
	for (uint64_t i = 0; i < nupper; i++) {
		uint32_t lv = g->upper_off[i + 1] - g->upper_off[i];
		if (g->upper_off[i + 1] <= g->upper_off[i] || lv > g->max_level)
			return corrupt(e, "bad upper offsets");
		if (g->upper_rows[i] >= rows || (i > 0 && g->upper_rows[i] <= g->upper_rows[i - 1]))
			return corrupt(e, "upper rows not ascending");
	}
	g->entry_up = NONE;
	if (g->max_level == 0)
		return VDB_OK;
	lo = 0;
	hi = (uint32_t)nupper;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (g->upper_rows[mid] < g->entry)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == nupper || g->upper_rows[lo] != g->entry ||
	    g->upper_off[lo + 1] - g->upper_off[lo] != g->max_level)
		return corrupt(e, "entry point not on the top level");
	g->entry_up = lo;
	return VDB_OK;
}

/* list_check: links < lim, unused slots only after the last link */
static int
list_check(const uint32_t *l, uint32_t cap, uint64_t lim)
{
	uint32_t j = 0;

	while (j < cap && l[j] != NONE)
		if (l[j++] >= lim)
			return -1;
	while (j < cap)
		if (l[j++] != NONE)
			return -1;
	return 0;
}

int
hnsw_check(const struct hnsw *g, struct vdb_err *e)
{
	for (uint64_t r = 0; r < g->rows; r++)
		if (list_check(g->l0 + r * g->m0, g->m0, g->rows) != 0)
			return vdb_err_set(e, VDB_ECORRUPT, "hnsw: row %llu: bad level-0 links",
			                   (unsigned long long)r);
	for (uint64_t i = 0; i < g->nupper; i++) {
		uint32_t lv = g->upper_off[i + 1] - g->upper_off[i];
		for (uint32_t l = 1; l <= lv; l++) {
			const uint32_t *lst =
			        g->upper_links + ((size_t)g->upper_off[i] + l - 1) * g->m;
			int bad = list_check(lst, g->m, g->nupper);
			for (uint32_t j = 0; !bad && j < g->m && lst[j] != NONE; j++)
				bad = g->upper_off[lst[j] + 1] - g->upper_off[lst[j]] < l;
			if (bad)
				return vdb_err_set(e, VDB_ECORRUPT,
				                   "hnsw: row %u: bad links on level %u",
				                   g->upper_rows[i], l);
		}
	}
	return VDB_OK;
}

/* ---- building ------------------------------------------------------------ */

struct worker {
	struct bld *b;
	struct kernels kn;
	struct hnsw_scratch *s;
	struct cand *sel; /* a selection */
	uint32_t *chosen; /* the node being inserted: its links, m per level */
	uint32_t nchosen[MAX_LEVEL + 1];
	struct cand *pr; /* pruning candidates */
	uint32_t *tmp;
	float *tmpd;
	int report; /* the caller's thread: it calls progress */
};

static struct dctx
dctx_of(const struct bld *b, uint32_t row)
{
	struct dctx c = {.q = b->vec + (size_t)row * b->dim,
	                 .vec = b->vec,
	                 .dim = b->dim,
	                 .norms = b->norms};

	if (b->norms)
		c.qn = b->norms[row];
	return c;
}

/* heuristic: of the candidates cd[0..nc) (sorted, closest first), keep in
 * order those closer to the base than to every one kept before, up to mx
 * (hnswlib's getNeighborsByHeuristic2); returns how many, in cd[0..) */
static uint32_t
heuristic(struct worker *w, struct cand *cd, uint32_t nc, uint32_t mx)
{
	struct bld *b = w->b;
	uint32_t ns = 0;

	if (nc < mx)
		return nc;
	for (uint32_t i = 0; i < nc && ns < mx; i++) {
		struct dctx c = dctx_of(b, cd[i].id);
		int good = 1;

		/* four at a time: most candidates fall to one of the first */
		for (uint32_t j = 0; j < ns && good; j += 4) {
			uint32_t m = ns - j < 4 ? ns - j : 4;
			for (uint32_t t = 0; t < m; t++)
				w->tmp[t] = cd[j + t].id;
			w->kn.batch(&c, w->tmp, m, w->tmpd);
			for (uint32_t t = 0; t < m; t++)
				if (w->tmpd[t] < cd[i].d)
					good = 0;
		}
		if (good)
			cd[ns++] = cd[i];
	}
	return ns;
}

static int
cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (cand_lt(x->d, x->id, y->d, y->id))
		return -1;
	return cand_lt(y->d, y->id, x->d, x->id);
}

/* set_links: x's links at level l are sel[0..ns), kept in w->chosen for
 * link_back */
static void
set_links(struct worker *w, uint32_t x, const struct cand *sel, uint32_t ns, int l)
{
	struct bld *b = w->b;
	uint32_t cap, *lst = list_of(b, x, l, &cap), *keep = w->chosen + (size_t)l * b->m;

	lk(b, x);
	for (uint32_t j = 0; j < ns; j++)
		lst[j] = l ? b->uidx[sel[j].id] : sel[j].id;
	unlk(b, x);
	for (uint32_t j = 0; j < ns; j++)
		keep[j] = sel[j].id;
	w->nchosen[l] = ns;
}

/* link_back: each of x's links at level l links back to x, pruning its
 * list with the heuristic when it is full */
static void
link_back(struct worker *w, uint32_t x, int l)
{
	struct bld *b = w->b;
	uint32_t cap, xv = l ? b->uidx[x] : x;
	const uint32_t *keep = w->chosen + (size_t)l * b->m;

	for (uint32_t j = 0; j < w->nchosen[l]; j++) {
		uint32_t y = keep[j], nl = 0, *ly = list_of(b, y, l, &cap);
		struct dctx c = dctx_of(b, y);

		lk(b, y);
		while (nl < cap && ly[nl] != NONE)
			nl++;
		if (nl < cap) {
			ly[nl] = xv;
			unlk(b, y);
			continue;
		}
		for (uint32_t t = 0; t < nl; t++)
			w->tmp[t] = l ? b->urows[ly[t]] : ly[t];
		w->tmp[nl] = x;
		w->kn.batch(&c, w->tmp, nl + 1, w->tmpd);
		for (uint32_t t = 0; t <= nl; t++) {
			w->pr[t].d = w->tmpd[t];
			w->pr[t].id = w->tmp[t];
		}
		qsort(w->pr, nl + 1, sizeof *w->pr, cand_cmp);
		nl = heuristic(w, w->pr, nl + 1, cap);
		for (uint32_t t = 0; t < cap; t++)
			ly[t] = t < nl ? (l ? b->uidx[w->pr[t].id] : w->pr[t].id) : NONE;
		unlk(b, y);
	}
}

static void
insert(struct worker *w, uint32_t x)
{
	struct bld *b = w->b;
	struct hnsw_scratch *s = w->s;
	struct walk wk = {.b = b, .dc = dctx_of(b, x), .s = s};
	int lx = b->level[x], maxl, held;
	uint32_t ep;
	float d;

	/* a node above the top holds the entry point until it is linked, so
	 * that nobody starts from a node with no links yet */
	pthread_mutex_lock(&b->ep_lock);
	ep = b->entry;
	maxl = b->max_level;
	held = lx > maxl;
	if (!held)
		pthread_mutex_unlock(&b->ep_lock);
	if (ep != NONE) {
		w->kn.batch(&wk.dc, &ep, 1, &d);
		/* greedy descent, skipping nodes seen before (upper_walk) */
		visit_begin(s);
		s->vis[ep] = s->gen;
		for (int l = maxl; l > lx; l--) {
			int changed = 1;
			while (changed) {
				uint32_t nl = links(b, ep, l, s->lbuf), nn = 0;
				changed = 0;
				for (uint32_t j = 0; j < nl; j++)
					if (s->vis[s->lbuf[j]] != s->gen) {
						s->vis[s->lbuf[j]] = s->gen;
						s->nb[nn++] = s->lbuf[j];
					}
				if (nn)
					w->kn.batch(&wk.dc, s->nb, nn, s->nd);
				for (uint32_t j = 0; j < nn; j++)
					if (s->nd[j] < d) {
						d = s->nd[j];
						ep = s->nb[j];
						changed = 1;
					}
			}
		}
		for (int l = lx < maxl ? lx : maxl; l >= 0; l--) {
			uint32_t n, ns;
			wk.level = l;
			visit_begin(s);
			/* links in the graph being built are all < n */
			n = (uint32_t)w->kn.walk(&wk, ep, d);
			for (uint32_t j = 0; j < n; j++) {
				w->sel[j].d = s->pool.d[j];
				w->sel[j].id = s->pool.id[j];
			}
			ns = heuristic(w, w->sel, n, b->m);
			set_links(w, x, w->sel, ns, l);
			ep = w->sel[0].id;
			d = w->sel[0].d;
		}
		/* only now can others find x: with every list of x written, a
		 * walk that reaches x on any level goes on from it (back-links
		 * made level by level would let a walk reach x on a level whose
		 * list was still empty, and the link it then gave x be lost
		 * when x's list was written).  One thread builds the same
		 * graph either way: a walk reads one level, a back-link writes
		 * another node's list on its own level. */
		for (int l = lx < maxl ? lx : maxl; l >= 0; l--)
			link_back(w, x, l);
	}
	if (held) {
		b->entry = x;
		b->max_level = lx;
		pthread_mutex_unlock(&b->ep_lock);
	}
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct bld *b = w->b;
	uint64_t x, step = b->n / 256 + 1, next_report = step;

	while ((x = atomic_fetch_add(&b->next, 1)) < b->n) {
		uint64_t done;
		insert(w, (uint32_t)x);
		done = atomic_fetch_add(&b->done, 1) + 1;
		if (b->progress && w->report && done >= next_report) {
			b->progress(b->parg, done, b->n);
			next_report = done + step;
		}
	}
	return NULL;
}

static void
worker_free(struct worker *w)
{
	scratch_free(w->s);
	free(w->sel);
	free(w->chosen);
	free(w->pr);
	free(w->tmp);
	free(w->tmpd);
}

static int
worker_init(struct worker *w, struct bld *b)
{
	uint32_t mx = (b->m0 > b->m ? b->m0 : b->m) + 1;

	memset(w, 0, sizeof *w);
	w->b = b;
	w->kn = pick(b->metric, b->norms != NULL);
	w->s = scratch_new(b->n, mx);
	w->sel = malloc(b->efc * sizeof *w->sel);
	w->chosen = malloc((size_t)(MAX_LEVEL + 1) * b->m * sizeof *w->chosen);
	w->pr = malloc(mx * sizeof *w->pr);
	w->tmp = malloc(mx * sizeof *w->tmp);
	w->tmpd = malloc(mx * sizeof *w->tmpd);
	if (w->s == NULL || scratch_cap(w->s, b->efc) != 0 || w->sel == NULL || w->chosen == NULL ||
	    w->pr == NULL || w->tmp == NULL || w->tmpd == NULL) {
		worker_free(w);
		return -1;
	}
	w->s->pool.cap = b->efc;
	return 0;
}

/* m0_of: level-0 slots for M.  2M, as hnswlib, rounded up to whole cache
 * lines (or a power of two under one, so that no list straddles two):
 * the slots a cache line holds anyway are used as links. */
static uint32_t
m0_of(uint32_t m)
{
	uint32_t m0 = 2 * m, p = 1;

	if (m0 >= 16)
		return (m0 + 15) & ~15u;
	while (p < m0)
		p *= 2;
	return p;
}

void
hnsw_built_free(struct hnsw_built *b)
{
	for (size_t i = 0; i < sizeof b->mem / sizeof b->mem[0]; i++)
		free(b->mem[i]);
	memset(b, 0, sizeof *b);
}

static void *
alloc64(size_t n)
{
	return aligned_alloc(64, (n + 63) / 64 * 64 + 64);
}

int
hnsw_build(const float *vec, uint64_t n, uint32_t dim, int metric, const struct index_spec *spec,
           int threads, index_progress_fn progress, void *parg, struct hnsw_built *out,
           struct vdb_err *e)
{
	struct bld b = {0};
	struct worker *ws = NULL;
	pthread_t *tid = NULL;
	double mult;
	uint64_t rng = SEED, nl = 0, u = 0;
	int rc = VDB_OK, nt = 0, started = 0;

	memset(out, 0, sizeof *out);
	if (spec->m < 2 || spec->m > HNSW_MAX_M || spec->ef_construction < 1 ||
	    spec->ef_construction > HNSW_MAX_EFC)
		return vdb_err_set(e, VDB_EINPUT, "hnsw: M or efConstruction out of range");
	if (n > 0xffffffffull)
		return vdb_err_set(e, VDB_EINPUT, "hnsw: too many rows");
	if (metric != METRIC_L2 && metric != METRIC_IP && metric != METRIC_COSINE)
		return vdb_err_set(e, VDB_EINPUT, "hnsw: unknown metric");
	if (threads < 1)
		threads = 1;
	/* below a few rows per thread, threads only contend */
	if ((uint64_t)threads > n / 64 + 1)
		threads = (int)(n / 64 + 1);
	b.vec = vec;
	b.n = n;
	b.dim = dim;
	b.metric = metric;
	b.m = spec->m;
	b.m0 = m0_of(spec->m);
	/* as hnswlib: a candidate list shorter than M would starve the
	 * heuristic */
	b.efc = spec->ef_construction > spec->m ? spec->ef_construction : spec->m;
	b.entry = NONE;
	b.max_level = -1;
	b.progress = progress;
	b.parg = parg;
	pthread_mutex_init(&b.ep_lock, NULL);

	/* levels first, from one sequence, so the graph does not depend on
	 * which thread inserts what */
	b.level = malloc(n ? n : 1);
	b.uidx = malloc((n ? n : 1) * sizeof *b.uidx);
	b.lock = calloc(n ? n : 1, sizeof *b.lock);
	if (b.level == NULL || b.uidx == NULL || b.lock == NULL)
		goto oom;
	mult = 1 / log((double)b.m);
	for (uint64_t i = 0; i < n; i++) {
		/* splitmix64 */
		uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
		double r, lv;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		r = ((double)(z >> 11) + 1) * 0x1p-53; /* (0, 1] */
		lv = -log(r) * mult;
		b.level[i] = lv >= MAX_LEVEL ? MAX_LEVEL : (uint8_t)lv;
		if (b.level[i]) {
			b.uidx[i] = (uint32_t)b.nupper++;
			nl += b.level[i];
		} else {
			b.uidx[i] = NONE;
		}
	}
	if (nl > 0xffffffffull) {
		rc = vdb_err_set(e, VDB_EINPUT, "hnsw: too many upper links for M=%u", b.m);
		goto done;
	}
	b.nlists = nl;
	b.l0 = alloc64(n * b.m0 * sizeof *b.l0);
	b.urows = alloc64(b.nupper * sizeof *b.urows);
	b.uoff = alloc64((b.nupper + 1) * sizeof *b.uoff);
	b.ulinks = alloc64(b.nlists * b.m * sizeof *b.ulinks);
	if (b.l0 == NULL || b.urows == NULL || b.uoff == NULL || b.ulinks == NULL)
		goto oom;
	memset(b.l0, 0xff, n * b.m0 * sizeof *b.l0);
	memset(b.ulinks, 0xff, b.nlists * b.m * sizeof *b.ulinks);
	b.uoff[0] = 0;
	for (uint64_t i = 0; i < n; i++)
		if (b.level[i]) {
			b.urows[u] = (uint32_t)i;
			b.uoff[u + 1] = b.uoff[u] + b.level[i];
			u++;
		}
	if (metric == METRIC_COSINE) {
		if ((b.norms = malloc((n ? n : 1) * sizeof *b.norms)) == NULL)
			goto oom;
		dist_sqnorms(vec, NULL, n, dim, b.norms);
		for (uint64_t i = 0; i < n; i++)
			b.norms[i] = sqrtf(b.norms[i]);
	}

	ws = calloc((size_t)threads, sizeof *ws);
	tid = calloc((size_t)threads, sizeof *tid);
	if (ws == NULL || tid == NULL)
		goto oom;
	for (nt = 0; nt < threads; nt++)
		if (worker_init(&ws[nt], &b) != 0)
			break;
	if (nt == 0)
		goto oom;
	/* the locks are skipped with one thread, which is decided before any
	 * starts (if fewer start, locking is still right) */
	b.threads = nt;
	for (started = 1; started < nt; started++)
		if (pthread_create(&tid[started], NULL, work, &ws[started]) != 0)
			break;
	ws[0].report = 1;
	work(&ws[0]);
	for (int t = 1; t < started; t++)
		pthread_join(tid[t], NULL);
	if (progress)
		progress(parg, n, n);

	out->param[0] = b.m;
	out->param[1] = b.m0;
	out->param[2] = b.efc;
	out->param[3] = n ? (uint32_t)b.max_level : 0;
	out->param[4] = b.entry;
	out->param[5] = (uint32_t)b.nupper;
	out->param[6] = (uint32_t)b.nlists;
	out->sec[0] = (struct index_sec){HNSW_SEC_L0, b.l0, n * b.m0 * 4};
	out->sec[1] = (struct index_sec){HNSW_SEC_UPPER_ROWS, b.urows, b.nupper * 4};
	out->sec[2] = (struct index_sec){HNSW_SEC_UPPER_OFF, b.uoff, (b.nupper + 1) * 4};
	out->sec[3] = (struct index_sec){HNSW_SEC_UPPER_LINKS, b.ulinks, b.nlists * b.m * 4};
	out->nsec = 4;
	out->mem[0] = b.l0;
	out->mem[1] = b.urows;
	out->mem[2] = b.uoff;
	out->mem[3] = b.ulinks;
	b.l0 = b.urows = b.uoff = b.ulinks = NULL;
	goto done;
oom:
	rc = vdb_err_set(e, VDB_ETEMP, "hnsw: out of memory");
done:
	for (int t = 0; t < nt; t++)
		worker_free(&ws[t]);
	free(ws);
	free(tid);
	free(b.level);
	free(b.uidx);
	free(b.lock);
	free(b.norms);
	free(b.l0);
	free(b.urows);
	free(b.uoff);
	free(b.ulinks);
	pthread_mutex_destroy(&b.ep_lock);
	return rc;
}
