/* filter_eval.c: evaluation of compiled filters (filter.c, filter_int.h).
 *
 * filter_eval goes over the rows in chunks of FILTER_CHUNK; each node computes a
 * byte (0/1) per row of the chunk for the rows still "active" (set in the
 * mask and not yet decided by an earlier sibling), so 'and' and 'or' only
 * look at the rows that can still change the answer and stop when none
 * can.  Scratch masks belong to the filter: nothing is allocated per call. */
#include <stdint.h>
#include <string.h>

#include "filter.h"
#include "filter_int.h"

struct ectx {
	const struct filter *f;
	const struct batch *b;
	size_t start; /* the batch row of the chunk's first byte */
	size_t cnt;
	uint8_t *scratch;
};

static size_t eval(const struct ectx *c, uint32_t ni, const uint8_t *act, size_t nact, uint8_t *out,
                   unsigned lvl);

static size_t
ev_i64(const struct ectx *c, const struct node *nd, const uint8_t *act, uint8_t *out)
{
	const int64_t *v = (nd->col < 0 ? c->b->ids : c->b->cols[nd->col].i64) + c->start;
	/* lo <= v <= hi as one unsigned comparison, branch-free */
	uint64_t lo = (uint64_t)nd->lo, w = (uint64_t)nd->hi - lo;
	uint8_t neg = nd->neg;
	size_t k = 0;

	for (size_t i = 0; i < c->cnt; i++) {
		uint8_t r = (uint8_t)((((uint64_t)v[i] - lo) <= w) ^ neg) & act[i];
		out[i] = r;
		k += r;
	}
	return k;
}

static size_t
ev_f64(const struct ectx *c, const struct node *nd, const uint8_t *act, uint8_t *out)
{
	const double *v = c->b->cols[nd->col].f64 + c->start;
	double lo = nd->dlo, hi = nd->dhi;
	uint8_t neg = nd->neg;
	size_t k = 0;

	for (size_t i = 0; i < c->cnt; i++) {
		uint8_t r = (uint8_t)(((v[i] >= lo) & (v[i] <= hi)) ^ neg) & act[i];
		out[i] = r;
		k += r;
	}
	return k;
}

static size_t
ev_bool(const struct ectx *c, const struct node *nd, const uint8_t *act, uint8_t *out)
{
	const uint8_t *v = c->b->cols[nd->col].b + c->start;
	uint8_t want = nd->flags, neg = nd->neg;
	size_t k = 0;

	for (size_t i = 0; i < c->cnt; i++) {
		uint8_t r = (uint8_t)(((v[i] != 0) == want) ^ neg) & act[i];
		out[i] = r;
		k += r;
	}
	return k;
}

static int
in_i64(const int64_t *a, size_t n, int64_t x)
{
	size_t lo = 0, hi = n;

	if (x < a[0] || x > a[n - 1])
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return a[lo] == x;
}

static int
in_f64(const double *a, size_t n, double x)
{
	size_t lo = 0, hi = n;

	if (!(x >= a[0] && x <= a[n - 1])) /* NaN too */
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return a[lo] == x;
}

static size_t
ev_in(const struct ectx *c, const struct node *nd, const uint8_t *act, uint8_t *out)
{
	size_t k = 0;

	if (nd->kind == N_I64_IN) {
		const int64_t *v = (nd->col < 0 ? c->b->ids : c->b->cols[nd->col].i64) + c->start;
		const int64_t *a = c->f->i64s + nd->a;
		for (size_t i = 0; i < c->cnt; i++) {
			uint8_t r = act[i] ? (uint8_t)(in_i64(a, nd->n, v[i]) ^ nd->neg) : 0;
			out[i] = r;
			k += r;
		}
	} else {
		const double *v = c->b->cols[nd->col].f64 + c->start;
		const double *a = c->f->f64s + nd->a;
		for (size_t i = 0; i < c->cnt; i++) {
			uint8_t r = act[i] ? (uint8_t)(in_f64(a, nd->n, v[i]) ^ nd->neg) : 0;
			out[i] = r;
			k += r;
		}
	}
	return k;
}

static int
in_str(const struct filter *f, const struct strref *a, size_t n, const char *s, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = bytes_cmp(f->bytes + a[mid].off, a[mid].len, s, len);
		if (d == 0)
			return 1;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* seg_at: does like segment k match at s (which has room for it)? */
static int
seg_at(const struct filter *f, const struct strref *sg, const char *s)
{
	const char *pb = f->bytes + sg[0].off, *pm = f->bytes + sg[1].off;

	if (sg[1].len == 0)
		return memcmp(s, pb, sg[0].len) == 0;
	for (size_t j = 0; j < sg[0].len; j++)
		if (!pm[j] && s[j] != pb[j])
			return 0;
	return 1;
}

/* seg_find: the leftmost match of a segment in s[0..n), or NULL */
static const char *
seg_find(const struct filter *f, const struct strref *sg, const char *s, size_t n)
{
	size_t len = sg[0].len;

	if (len > n)
		return NULL;
	if (sg[1].len == 0)
		return memmem(s, n, f->bytes + sg[0].off, len);
	for (size_t i = 0; i + len <= n; i++)
		if (seg_at(f, sg, s + i))
			return s + i;
	return NULL;
}

/* like_match: the segments in order, the first at the start and the last
 * at the end when the pattern is anchored there; taking each middle
 * segment's leftmost match is optimal, as '%' between them absorbs any
 * gap, so there is no backtracking. */
static int
like_match(const struct filter *f, const struct node *nd, const char *s, size_t n)
{
	const struct strref *sg = f->strs + nd->a;
	size_t pos = 0, end = n, i = 0, last = nd->n;

	if (n < (uint64_t)nd->lo)
		return 0;
	if (!(nd->flags & LK_PCT)) /* '_'s and bytes only */
		return n == (uint64_t)nd->lo && (nd->n == 0 || seg_at(f, sg, s));
	if (nd->flags & LK_START) {
		if (!seg_at(f, sg, s))
			return 0;
		pos = sg[0].len;
		i = 1;
	}
	if (nd->flags & LK_END) {
		const struct strref *z = sg + 2 * (last - 1);
		if (n - pos < z[0].len || !seg_at(f, z, s + n - z[0].len))
			return 0;
		end = n - z[0].len;
		last--;
	}
	for (; i < last; i++) {
		const char *q = seg_find(f, sg + 2 * i, s + pos, end - pos);
		if (q == NULL)
			return 0;
		pos = (size_t)(q - s) + sg[2 * i].len;
	}
	return 1;
}

static size_t
ev_str(const struct ectx *c, const struct node *nd, const uint8_t *act, uint8_t *out)
{
	const struct filter *f = c->f;
	const struct col *col = &c->b->cols[nd->col];
	const struct strref *a = f->strs + nd->a;
	size_t k = 0;

	for (size_t i = 0; i < c->cnt; i++) {
		uint64_t o = col->soff[c->start + i], z = col->soff[c->start + i + 1];
		const char *s = col->sbuf ? col->sbuf + o : "";
		size_t len = (size_t)(z - o);
		int r = 0, d;
		if (!act[i]) {
			out[i] = 0;
			continue;
		}
		switch (nd->kind) {
		case N_STR_EQ:
			r = len == a->len && (len == 0 || memcmp(s, f->bytes + a->off, len) == 0);
			break;
		case N_STR_RANGE:
			r = 1;
			if (nd->flags & SR_LO) {
				d = bytes_cmp(s, len, f->bytes + a[0].off, a[0].len);
				r = d > 0 || (d == 0 && (nd->flags & SR_LO_INCL));
			}
			if (r && (nd->flags & SR_HI)) {
				d = bytes_cmp(s, len, f->bytes + a[1].off, a[1].len);
				r = d < 0 || (d == 0 && (nd->flags & SR_HI_INCL));
			}
			break;
		case N_STR_IN:
			r = in_str(f, a, nd->n, s, len);
			break;
		case N_LIKE:
			r = like_match(f, nd, s, len);
			break;
		}
		r ^= nd->neg;
		out[i] = (uint8_t)r;
		k += (size_t)r;
	}
	return k;
}

/* eval: out[i] = 1 where act[i] is set and row start + i satisfies node
 * ni, else 0; returns how many are set.  act and out never alias: an and
 * reads its act after its first child wrote out.  Level lvl's two masks
 * are this node's own scratch. */
static size_t
eval(const struct ectx *c, uint32_t ni, const uint8_t *act, size_t nact, uint8_t *out, unsigned lvl)
{
	const struct node *nd = &c->f->nodes[ni];
	const uint32_t *kids = c->f->kids + nd->a;
	uint8_t *s0 = c->scratch + (2 + 2 * (size_t)lvl) * FILTER_CHUNK, *s1 = s0 + FILTER_CHUNK;
	size_t k, cnt = c->cnt;

	switch (nd->kind) {
	case N_TRUE:
		memcpy(out, act, cnt);
		return nact;
	case N_FALSE:
		memset(out, 0, cnt);
		return 0;
	case N_AND: {
		/* each child sees only the rows its elder siblings kept */
		uint8_t *cur = out;
		k = eval(c, kids[0], act, nact, out, lvl + 1);
		for (uint32_t j = 1; j < nd->n && k > 0; j++) {
			uint8_t *nxt = cur == out ? s0 : out;
			k = eval(c, kids[j], cur, k, nxt, lvl + 1);
			cur = nxt;
		}
		if (cur != out)
			memcpy(out, cur, cnt);
		return k;
	}
	case N_OR: {
		/* each child sees only the rows no elder sibling accepted */
		size_t nrem;
		k = eval(c, kids[0], act, nact, out, lvl + 1);
		nrem = nact - k;
		for (size_t i = 0; i < cnt; i++)
			s0[i] = act[i] & (uint8_t)!out[i];
		for (uint32_t j = 1; j < nd->n && nrem > 0; j++) {
			size_t kj = eval(c, kids[j], s0, nrem, s1, lvl + 1);
			if (kj == 0)
				continue;
			for (size_t i = 0; i < cnt; i++) {
				out[i] |= s1[i];
				s0[i] &= (uint8_t)!s1[i];
			}
			k += kj;
			nrem -= kj;
		}
		return k;
	}
	case N_NOT:
		k = eval(c, kids[0], act, nact, out, lvl + 1);
		for (size_t i = 0; i < cnt; i++)
			out[i] = act[i] & (uint8_t)!out[i];
		return nact - k;
	case N_I64:
		return ev_i64(c, nd, act, out);
	case N_F64:
		return ev_f64(c, nd, act, out);
	case N_BOOL:
		return ev_bool(c, nd, act, out);
	case N_I64_IN:
	case N_F64_IN:
		return ev_in(c, nd, act, out);
	default:
		return ev_str(c, nd, act, out);
	}
}

int
filter_eval(struct filter *f, const struct batch *b, size_t from, size_t n, uint8_t *match,
            struct vdb_err *e)
{
	const struct node *root;
	struct ectx c;

	if (f == NULL || b == NULL || (n > 0 && match == NULL))
		return vdb_err_set(e, VDB_EINTERNAL, "filter_eval: no filter, batch or mask");
	if (from > b->n || n > b->n - from)
		return vdb_err_set(e, VDB_EINTERNAL,
		                   "filter_eval: rows %zu..%zu are beyond the batch's %zu", from,
		                   from + n, b->n);
	for (int i = 0; i < VDB_MAX_FIELDS; i++)
		if ((f->used >> i & 1) && b->cols[i].type != f->types[i])
			return vdb_err_set(e, VDB_EINTERNAL,
			                   "filter_eval: the batch's field %d is not the %s the "
			                   "filter was compiled for",
			                   i + 1, ftype_name(f->types[i]));
	if (n == 0)
		return VDB_OK;
	root = &f->nodes[f->root];
	if (root->kind == N_TRUE)
		return VDB_OK;
	if (root->kind == N_FALSE) {
		memset(match, 0, n);
		return VDB_OK;
	}
	c.f = f;
	c.b = b;
	c.scratch = f->scratch;
	for (size_t base = 0; base < n; base += FILTER_CHUNK) {
		uint8_t *act = f->scratch, *out = f->scratch + FILTER_CHUNK, *m = match + base;
		size_t nact = 0;
		c.start = from + base;
		c.cnt = n - base < FILTER_CHUNK ? n - base : FILTER_CHUNK;
		for (size_t i = 0; i < c.cnt; i++) {
			act[i] = m[i] != 0;
			nact += act[i];
		}
		if (nact == 0)
			continue;
		eval(&c, f->root, act, nact, out, 0);
		for (size_t i = 0; i < c.cnt; i++)
			m[i] = out[i] ? m[i] : 0;
	}
	return VDB_OK;
}
