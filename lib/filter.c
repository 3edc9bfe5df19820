/* filter.c: boolean expressions over scalar fields and id, parsed and
 * compiled (filter_eval.c evaluates them).  Spec: formats/filter.md.
 *
 * filter_parse is a recursive-descent parser with one token of lookahead;
 * recursion happens only at '(' and 'not', both counted against
 * FILTER_MAX_DEPTH.  It type-checks as it goes and compiles every
 * comparison into a normalized leaf: an int64 comparison becomes an
 * inclusive int64 range, a double comparison an inclusive double range,
 * an in-list a sorted array, a like pattern its '%'-free segments.  Exact
 * integer/double comparison is settled there, once, so evaluation is plain
 * same-type comparisons.  A filter is a few flat arrays (nodes, children,
 * constants) addressed by index, so filter_clone is a handful of copies. */
#include "filter.h"
#include "filter_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tk {
	T_END,
	T_IDENT,
	T_INT,
	T_FLOAT,
	T_STR,
	T_TRUE,
	T_FALSE,
	T_AND,
	T_OR,
	T_NOT,
	T_IN,
	T_LIKE,
	T_LP,
	T_RP,
	T_LB,
	T_RB,
	T_COMMA,
	T_EQ,
	T_NE,
	T_LT,
	T_LE,
	T_GT,
	T_GE,
};

struct tok {
	int kind;
	size_t off, len; /* its text: expr[off .. off + len) */
	int64_t i;
	double d;
	const char *s; /* T_STR: the decoded bytes, in the parser's arena */
	size_t slen;
};

struct fref {
	int col; /* -1 = id */
	int type;
	const char *name;
	size_t off;
};

struct parser {
	const char *s;
	size_t len, pos;
	const struct schema *sc;
	struct filter *f;
	struct vdb_err *e;
	struct tok tok;
	char *arena; /* decoded string literals; never longer than their source */
	size_t narena;
	uint32_t *stk; /* operands of the and/or chains being parsed */
	size_t nstk, cstk;
};

static int parse_or(struct parser *p, unsigned depth, uint32_t *out);

/* ---- growable arrays ---- */

static int
grow(void **ptr, size_t *cap, size_t need, size_t size)
{
	size_t nc = *cap ? *cap : 16;
	void *np;

	if (need <= *cap)
		return 0;
	while (nc < need)
		nc *= 2;
	np = realloc(*ptr, nc * size);
	if (np == NULL)
		return -1;
	*ptr = np;
	*cap = nc;
	return 0;
}

static int
oom(struct parser *p)
{
	return vdb_err_set(p->e, VDB_ETEMP, "out of memory parsing a filter");
}

static int
node_add(struct parser *p, const struct node *nd, uint32_t *idx)
{
	struct filter *f = p->f;

	if (grow((void **)&f->nodes, &f->cnodes, f->nnodes + 1, sizeof(*nd)))
		return oom(p);
	f->nodes[f->nnodes] = *nd;
	if (f->nodes[f->nnodes].height == 0)
		f->nodes[f->nnodes].height = 1;
	*idx = (uint32_t)f->nnodes++;
	return VDB_OK;
}

static int
node_const(struct parser *p, int truth, uint32_t *idx)
{
	struct node nd = {.kind = truth ? N_TRUE : N_FALSE};

	return node_add(p, &nd, idx);
}

/* str_add: bytes s[0..len) as strs[*idx] */
static int
str_add(struct parser *p, const char *s, size_t len, size_t *idx)
{
	struct filter *f = p->f;

	/* one byte more, so that bytes is never NULL once a string exists */
	if (grow((void **)&f->strs, &f->cstrs, f->nstrs + 1, sizeof(struct strref)) ||
	    grow((void **)&f->bytes, &f->cbytes, f->nbytes + len + 1, 1))
		return oom(p);
	if (len)
		memcpy(f->bytes + f->nbytes, s, len);
	f->strs[f->nstrs].off = f->nbytes;
	f->strs[f->nstrs].len = len;
	f->nbytes += len;
	*idx = f->nstrs++;
	return VDB_OK;
}

/* ---- errors ---- */

static int perr(struct parser *p, size_t off, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
perr(struct parser *p, size_t off, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return vdb_err_set(p->e, VDB_EINPUT, "column %zu: %s", off + 1, msg);
}

/* desc: how an error names the token t */
static const char *
desc(const struct parser *p, const struct tok *t, char *buf, size_t size)
{
	if (t->kind == T_END)
		return "end of expression";
	if (t->kind == T_STR)
		return "a string";
	if (t->len > 40)
		snprintf(buf, size, "'%.40s...'", p->s + t->off);
	else
		snprintf(buf, size, "'%.*s'", (int)t->len, p->s + t->off);
	return buf;
}

static int
expected(struct parser *p, const char *what)
{
	char b[64];

	return perr(p, p->tok.off, "expected %s but found %s", what,
	            desc(p, &p->tok, b, sizeof(b)));
}

/* ---- lexer ---- */

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* utf8_len: the length of the well-formed UTF-8 sequence at s (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF), 0 if none */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

static int
lex_string(struct parser *p, size_t i, struct tok *t)
{
	const unsigned char *s = (const unsigned char *)p->s;
	char q = (char)s[i];
	char *o = p->arena + p->narena;
	size_t n = 0;

	t->kind = T_STR;
	for (i++;; i++) {
		unsigned c = s[i];
		if (c == '\0')
			return perr(p, t->off, "unterminated string");
		if (c == (unsigned char)q)
			break;
		if (c == '\\') {
			unsigned x = s[i + 1];
			switch (x) {
			case '"':
			case '\'':
			case '\\':
				o[n++] = (char)x;
				break;
			case 'n':
				o[n++] = '\n';
				break;
			case 't':
				o[n++] = '\t';
				break;
			case 'r':
				o[n++] = '\r';
				break;
			case '%':
			case '_':
				/* kept as two bytes, for like to read as an
				 * escaped wildcard (MySQL does the same) */
				o[n++] = '\\';
				o[n++] = (char)x;
				break;
			case 'u': {
				unsigned u = 0;
				for (int k = 2; k < 6; k++) {
					int h = hexval(s[i + k]);
					if (h < 0)
						return perr(p, i, "\\u needs four hex digits");
					u = u * 16 + (unsigned)h;
				}
				if (u == 0)
					return perr(p, i, "\\u0000 is not allowed in a string");
				if (u >= 0xd800 && u <= 0xdfff)
					return perr(p, i,
					            "surrogate \\u%04X is not allowed "
					            "(write the character itself)",
					            u);
				if (u < 0x80) {
					o[n++] = (char)u;
				} else if (u < 0x800) {
					o[n++] = (char)(0xc0 | u >> 6);
					o[n++] = (char)(0x80 | (u & 0x3f));
				} else {
					o[n++] = (char)(0xe0 | u >> 12);
					o[n++] = (char)(0x80 | ((u >> 6) & 0x3f));
					o[n++] = (char)(0x80 | (u & 0x3f));
				}
				i += 4;
				break;
			}
			case '\0':
				return perr(p, t->off, "unterminated string");
			default:
				if (x > 0x20 && x < 0x7f)
					return perr(p, i, "unknown escape '\\%c' in a string",
					            (char)x);
				return perr(p, i, "unknown escape in a string");
			}
			i++;
			continue;
		}
		size_t l = utf8_len(s + i);
		if (l == 0)
			return perr(p, i, "string is not valid UTF-8");
		memcpy(o + n, s + i, l);
		n += l;
		i += l - 1;
	}
	t->s = o;
	t->slen = n;
	p->narena += n;
	t->len = i + 1 - t->off;
	p->pos = i + 1;
	return VDB_OK;
}

static int
lex_number(struct parser *p, size_t i, struct tok *t)
{
	const char *s = p->s;
	size_t st = i, ds, nint;
	int isf = 0;
	char *end;

	if (s[i] == '+' || s[i] == '-')
		i++;
	ds = i;
	while (is_digit(s[i]))
		i++;
	nint = i - ds;
	if (s[i] == '.') {
		i++;
		isf = 1;
		size_t fs = i;
		while (is_digit(s[i]))
			i++;
		if (nint == 0 && i == fs)
			goto malformed;
	}
	if (s[i] == 'e' || s[i] == 'E') {
		i++;
		isf = 1;
		if (s[i] == '+' || s[i] == '-')
			i++;
		if (!is_digit(s[i]))
			goto malformed;
		while (is_digit(s[i]))
			i++;
	}
	if (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '.')
		goto malformed;
	t->len = i - st;
	p->pos = i;
	if (!isf) {
		if (nint > 1 && s[ds] == '0')
			return perr(p, st, "leading zeros are not allowed in '%.*s'",
			            (int)(t->len > 40 ? 40 : t->len), s + st);
		errno = 0;
		t->i = strtoll(s + st, &end, 10);
		if (errno == ERANGE)
			return perr(p, st, "integer '%.*s' is out of the int64 range",
			            (int)(t->len > 40 ? 40 : t->len), s + st);
		if (end != s + i)
			goto malformed;
		t->kind = T_INT;
	} else {
		/* the span is plain decimal, so strtod reads exactly it (no
		 * program of ours sets a locale with another radix) */
		errno = 0;
		t->d = strtod(s + st, &end);
		if (end != s + i)
			goto malformed;
		if (isinf(t->d))
			return perr(p, st, "number '%.*s' is out of the double range",
			            (int)(t->len > 40 ? 40 : t->len), s + st);
		t->kind = T_FLOAT;
	}
	return VDB_OK;
malformed:
	while (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '.' ||
	       ((s[i] == '+' || s[i] == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E')))
		i++;
	return perr(p, st, "malformed number '%.*s'", (int)(i - st > 40 ? 40 : i - st), s + st);
}

static int
kw(const char *s, size_t len, const char *word)
{
	size_t k;

	for (k = 0; k < len; k++) {
		char c = s[k];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != word[k])
			return 0;
	}
	return word[k] == '\0';
}

/* lex: the next token into p->tok */
static int
lex(struct parser *p)
{
	const char *s = p->s;
	size_t i = p->pos;
	struct tok *t = &p->tok;
	unsigned char c;

	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	memset(t, 0, sizeof(*t));
	t->off = i;
	c = (unsigned char)s[i];
	if (c == '\0') {
		t->kind = T_END;
		p->pos = i;
		return VDB_OK;
	}
	if (is_alpha(c)) {
		static const struct {
			const char *w;
			int kind;
		} kws[] = {{"and", T_AND},   {"or", T_OR},     {"not", T_NOT},    {"in", T_IN},
		           {"like", T_LIKE}, {"true", T_TRUE}, {"false", T_FALSE}};
		size_t j = i;
		while (is_alpha(s[j]) || is_digit(s[j]))
			j++;
		if ((unsigned char)s[j] >= 0x80)
			return perr(p, j, "unexpected byte 0x%02X (names are ASCII)",
			            (unsigned char)s[j]);
		t->len = j - i;
		t->kind = T_IDENT;
		for (size_t k = 0; k < sizeof(kws) / sizeof(kws[0]); k++)
			if (kw(s + i, t->len, kws[k].w))
				t->kind = kws[k].kind;
		p->pos = j;
		return VDB_OK;
	}
	if (is_digit(c) || (c == '.' && is_digit(s[i + 1])) ||
	    ((c == '-' || c == '+') &&
	     (is_digit(s[i + 1]) || (s[i + 1] == '.' && is_digit(s[i + 2])))))
		return lex_number(p, i, t);
	if (c == '"' || c == '\'')
		return lex_string(p, i, t);
	t->len = 1;
	switch (c) {
	case '(':
		t->kind = T_LP;
		break;
	case ')':
		t->kind = T_RP;
		break;
	case '[':
		t->kind = T_LB;
		break;
	case ']':
		t->kind = T_RB;
		break;
	case ',':
		t->kind = T_COMMA;
		break;
	case '<':
		t->kind = T_LT;
		if (s[i + 1] == '=')
			t->kind = T_LE, t->len = 2;
		break;
	case '>':
		t->kind = T_GT;
		if (s[i + 1] == '=')
			t->kind = T_GE, t->len = 2;
		break;
	case '=':
		if (s[i + 1] != '=')
			return perr(p, i, "unexpected '=' (comparison is '==')");
		t->kind = T_EQ, t->len = 2;
		break;
	case '!':
		t->kind = T_NOT;
		if (s[i + 1] == '=')
			t->kind = T_NE, t->len = 2;
		break;
	case '&':
		if (s[i + 1] != '&')
			return perr(p, i, "unexpected '&' (and is '&&')");
		t->kind = T_AND, t->len = 2;
		break;
	case '|':
		if (s[i + 1] != '|')
			return perr(p, i, "unexpected '|' (or is '||')");
		t->kind = T_OR, t->len = 2;
		break;
	default:
		if (c > 0x20 && c < 0x7f)
			return perr(p, i, "unexpected character '%c'", c);
		return perr(p, i, "unexpected byte 0x%02X", c);
	}
	p->pos = i + t->len;
	return VDB_OK;
}

/* ---- compiling comparisons ---- */

static int
is_cmp(int kind)
{
	return kind >= T_EQ && kind <= T_GE;
}

static int
is_lit(int kind)
{
	return kind == T_INT || kind == T_FLOAT || kind == T_STR || kind == T_TRUE ||
	       kind == T_FALSE;
}

/* flip: the operator seen from the other side (5 < x is x > 5) */
static int
flip(int op)
{
	switch (op) {
	case T_LT:
		return T_GT;
	case T_LE:
		return T_GE;
	case T_GT:
		return T_LT;
	case T_GE:
		return T_LE;
	}
	return op;
}

static const char *
lit_kind(int kind)
{
	switch (kind) {
	case T_INT:
	case T_FLOAT:
		return "a number";
	case T_STR:
		return "a string";
	}
	return "a bool";
}

/* check_lit: may field r be compared with literal t? */
static int
check_lit(struct parser *p, const struct fref *r, const struct tok *t)
{
	int ok;

	switch (r->type) {
	case FT_INT64:
	case FT_DOUBLE:
		ok = t->kind == T_INT || t->kind == T_FLOAT;
		break;
	case FT_STRING:
		ok = t->kind == T_STR;
		break;
	default:
		ok = t->kind == T_TRUE || t->kind == T_FALSE;
		break;
	}
	if (ok)
		return VDB_OK;
	return perr(p, t->off, "cannot compare %s field '%s' with %s", ftype_name(r->type), r->name,
	            lit_kind(t->kind));
}

/* an inclusive int64 range, or none */
struct ib {
	int64_t lo, hi;
	int empty;
};

/* d_to_i64: an integral double x as an int64: 0 and *v, or -1 (below the
 * range) or 1 (above it) */
static int
d_to_i64(double x, int64_t *v)
{
	if (x < -9223372036854775808.0)
		return -1;
	if (x >= 9223372036854775808.0)
		return 1;
	*v = (int64_t)x;
	return 0;
}

/* ib_int: the int64 v with v OP L */
static void
ib_int(int op, int64_t L, struct ib *r)
{
	r->lo = INT64_MIN;
	r->hi = INT64_MAX;
	r->empty = 0;
	switch (op) {
	case T_LT:
		if (L == INT64_MIN)
			r->empty = 1;
		else
			r->hi = L - 1;
		break;
	case T_LE:
		r->hi = L;
		break;
	case T_GT:
		if (L == INT64_MAX)
			r->empty = 1;
		else
			r->lo = L + 1;
		break;
	case T_GE:
		r->lo = L;
		break;
	default: /* == (and != before negation) */
		r->lo = r->hi = L;
		break;
	}
}

/* ib_dbl: the int64 v with v OP d, compared as real numbers: v < d is
 * v < ceil(d), v <= d is v <= floor(d), and so on; d is finite. */
static void
ib_dbl(int op, double d, struct ib *r)
{
	double fl = floor(d), ce = ceil(d);
	int64_t v = 0;
	int w;

	r->lo = INT64_MIN;
	r->hi = INT64_MAX;
	r->empty = 0;
	switch (op) {
	case T_LT:
		w = d_to_i64(ce, &v);
		if (w < 0 || (w == 0 && v == INT64_MIN))
			r->empty = 1;
		else if (w == 0)
			r->hi = v - 1;
		break;
	case T_LE:
		w = d_to_i64(fl, &v);
		if (w < 0)
			r->empty = 1;
		else if (w == 0)
			r->hi = v;
		break;
	case T_GT:
		w = d_to_i64(fl, &v);
		if (w > 0 || (w == 0 && v == INT64_MAX))
			r->empty = 1;
		else if (w == 0)
			r->lo = v + 1;
		break;
	case T_GE:
		w = d_to_i64(ce, &v);
		if (w > 0)
			r->empty = 1;
		else if (w == 0)
			r->lo = v;
		break;
	default:
		if (fl != d || d_to_i64(d, &v) != 0)
			r->empty = 1;
		else
			r->lo = r->hi = v;
		break;
	}
}

/* an inclusive double range, or none */
struct db {
	double lo, hi;
	int empty;
};

static void
db_dbl(int op, double d, struct db *r)
{
	r->lo = -INFINITY;
	r->hi = INFINITY;
	r->empty = 0;
	switch (op) {
	case T_LT:
		r->hi = nextafter(d, -INFINITY);
		break;
	case T_LE:
		r->hi = d;
		break;
	case T_GT:
		r->lo = nextafter(d, INFINITY);
		break;
	case T_GE:
		r->lo = d;
		break;
	default:
		r->lo = r->hi = d;
		break;
	}
}

/* db_int: the doubles v with v OP L, compared as real numbers.  When L
 * has no double, it lies strictly between two neighbours lo < L < hi:
 * v < L and v <= L mean v <= lo, v > L and v >= L mean v >= hi, and
 * v == L never holds. */
static void
db_int(int op, int64_t L, struct db *r)
{
	double x = (double)L, lo, hi;
	int64_t v = 0;
	int w = d_to_i64(x, &v);

	if (w == 0 && v == L) {
		db_dbl(op, x, r);
		return;
	}
	if (w > 0 || v > L)
		hi = x, lo = nextafter(x, -INFINITY);
	else
		lo = x, hi = nextafter(x, INFINITY);
	r->lo = -INFINITY;
	r->hi = INFINITY;
	r->empty = 0;
	switch (op) {
	case T_LT:
	case T_LE:
		r->hi = lo;
		break;
	case T_GT:
	case T_GE:
		r->lo = hi;
		break;
	default:
		r->empty = 1;
		break;
	}
}

static void
bounds_i64(int op, const struct tok *t, struct ib *r)
{
	if (t->kind == T_INT)
		ib_int(op, t->i, r);
	else
		ib_dbl(op, t->d, r);
}

static void
bounds_f64(int op, const struct tok *t, struct db *r)
{
	if (t->kind == T_INT)
		db_int(op, t->i, r);
	else
		db_dbl(op, t->d, r);
}

static void
use_field(struct parser *p, const struct fref *r)
{
	if (r->col >= 0) {
		p->f->used |= (uint64_t)1 << r->col;
		p->f->types[r->col] = r->type;
	}
}

static int
leaf_i64(struct parser *p, const struct fref *r, const struct ib *b, int neg, uint32_t *out)
{
	struct node nd = {.kind = N_I64, .neg = (uint8_t)neg, .col = r->col};

	if (b->empty || b->lo > b->hi)
		return node_const(p, neg, out);
	if (b->lo == INT64_MIN && b->hi == INT64_MAX)
		return node_const(p, !neg, out);
	nd.lo = b->lo;
	nd.hi = b->hi;
	use_field(p, r);
	return node_add(p, &nd, out);
}

static int
leaf_f64(struct parser *p, const struct fref *r, const struct db *b, int neg, uint32_t *out)
{
	struct node nd = {.kind = N_F64, .neg = (uint8_t)neg, .col = r->col};

	/* an empty range holds no row, NaN included; [-inf, inf] still
	 * leaves out NaN, so it is not folded to true */
	if (b->empty || b->lo > b->hi)
		return node_const(p, neg, out);
	nd.dlo = b->lo;
	nd.dhi = b->hi;
	use_field(p, r);
	return node_add(p, &nd, out);
}

/* build_cmp: field r OP literal t; op is at column opoff */
static int
build_cmp(struct parser *p, const struct fref *r, int op, size_t opoff, const struct tok *t,
          uint32_t *out)
{
	int neg = op == T_NE, rc;
	int base = neg ? T_EQ : op;

	if (r->type == FT_BOOL && op != T_EQ && op != T_NE)
		return perr(p, opoff,
		            "bool field '%s' can only be compared with == or !=", r->name);
	if ((rc = check_lit(p, r, t)) != VDB_OK)
		return rc;
	switch (r->type) {
	case FT_INT64: {
		struct ib b;
		bounds_i64(base, t, &b);
		return leaf_i64(p, r, &b, neg, out);
	}
	case FT_DOUBLE: {
		struct db b;
		bounds_f64(base, t, &b);
		return leaf_f64(p, r, &b, neg, out);
	}
	case FT_BOOL: {
		struct node nd = {.kind = N_BOOL, .col = r->col};
		nd.flags = (uint8_t)((t->kind == T_TRUE) ^ neg);
		use_field(p, r);
		return node_add(p, &nd, out);
	}
	default: {
		struct node nd = {.col = r->col, .neg = (uint8_t)neg};
		size_t si;
		if ((rc = str_add(p, t->s, t->slen, &si)) != VDB_OK)
			return rc;
		nd.a = (uint32_t)si;
		if (base == T_EQ) {
			nd.kind = N_STR_EQ;
		} else {
			size_t si2;
			/* one bound: strs[a] is the lower, strs[a + 1] the upper */
			if ((rc = str_add(p, t->s, t->slen, &si2)) != VDB_OK)
				return rc;
			nd.kind = N_STR_RANGE;
			nd.flags = base == T_LT   ? SR_HI
			           : base == T_LE ? SR_HI | SR_HI_INCL
			           : base == T_GT ? SR_LO
			                          : SR_LO | SR_LO_INCL;
		}
		use_field(p, r);
		return node_add(p, &nd, out);
	}
	}
}

/* build_range: field r op1 t1 and field r op2 t2, one a lower bound and
 * the other an upper one (LOW < field < HIGH after flipping the first) */
static int
build_range(struct parser *p, const struct fref *r, int op1, const struct tok *t1, int op2,
            const struct tok *t2, uint32_t *out)
{
	int rc;

	if ((rc = check_lit(p, r, t1)) != VDB_OK || (rc = check_lit(p, r, t2)) != VDB_OK)
		return rc;
	switch (r->type) {
	case FT_INT64: {
		struct ib a, b;
		bounds_i64(op1, t1, &a);
		bounds_i64(op2, t2, &b);
		a.empty |= b.empty;
		a.lo = a.lo > b.lo ? a.lo : b.lo;
		a.hi = a.hi < b.hi ? a.hi : b.hi;
		return leaf_i64(p, r, &a, 0, out);
	}
	case FT_DOUBLE: {
		struct db a, b;
		bounds_f64(op1, t1, &a);
		bounds_f64(op2, t2, &b);
		a.empty |= b.empty;
		a.lo = a.lo > b.lo ? a.lo : b.lo;
		a.hi = a.hi < b.hi ? a.hi : b.hi;
		return leaf_f64(p, r, &a, 0, out);
	}
	default: {
		struct node nd = {.kind = N_STR_RANGE, .col = r->col};
		const struct tok *lo = t1, *hi = t2;
		int lop = op1, hop = op2;
		size_t si;
		if (op1 == T_LT || op1 == T_LE) { /* field < t1: t1 is the upper */
			lo = t2, hi = t1;
			lop = op2, hop = op1;
		}
		if ((rc = str_add(p, lo->s, lo->slen, &si)) != VDB_OK)
			return rc;
		nd.a = (uint32_t)si;
		if ((rc = str_add(p, hi->s, hi->slen, &si)) != VDB_OK)
			return rc;
		nd.flags = SR_LO | SR_HI | (lop == T_GE ? SR_LO_INCL : 0) |
		           (hop == T_LE ? SR_HI_INCL : 0);
		use_field(p, r);
		return node_add(p, &nd, out);
	}
	}
}

static int
cmp_i64(const void *a, const void *b, void *unused)
{
	(void)unused;
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int
cmp_f64(const void *a, const void *b, void *unused)
{
	(void)unused;
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
cmp_strref(const void *a, const void *b, void *pool)
{
	const struct strref *x = a, *y = b;
	const char *base = pool;

	return bytes_cmp(base + x->off, x->len, base + y->off, y->len);
}

/* sort_unique: n elements of size at v sorted and their repeats dropped
 * (by cmp), so evaluation can search them; returns how many are left */
static size_t
sort_unique(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *, void *),
            void *arg)
{
	char *b = v;
	size_t k = 0;

	if (n == 0)
		return 0;
	qsort_r(b, n, size, cmp, arg);
	for (size_t j = 0; j < n; j++)
		if (k == 0 || cmp(b + j * size, b + (k - 1) * size, arg) != 0)
			memmove(b + k++ * size, b + j * size, size);
	return k;
}

/* parse_list: '[' value, ... ']' after "field [not] in" */
static int
parse_list(struct parser *p, const struct fref *r, int neg, uint32_t *out)
{
	struct filter *f = p->f;
	struct node nd = {.col = r->col, .neg = (uint8_t)neg};
	size_t count = 0, first;
	int has_true = 0, has_false = 0, rc;

	if (p->tok.kind != T_LB)
		return expected(p, "'['");
	switch (r->type) {
	case FT_INT64:
		nd.kind = N_I64_IN;
		first = f->ni64s;
		break;
	case FT_DOUBLE:
		nd.kind = N_F64_IN;
		first = f->nf64s;
		break;
	case FT_STRING:
		nd.kind = N_STR_IN;
		first = f->nstrs;
		break;
	default:
		nd.kind = N_BOOL;
		first = 0;
		break;
	}
	if ((rc = lex(p)) != VDB_OK)
		return rc;
	while (p->tok.kind != T_RB) {
		struct tok *t = &p->tok;
		if (!is_lit(t->kind))
			return expected(p, "a value");
		if ((rc = check_lit(p, r, t)) != VDB_OK)
			return rc;
		if (++count > FILTER_MAX_LIST)
			return perr(p, t->off, "list longer than %d elements", FILTER_MAX_LIST);
		switch (r->type) {
		case FT_INT64: {
			int64_t v = t->i;
			/* a double that is not an integer in range equals no int64 */
			if (t->kind == T_FLOAT && (floor(t->d) != t->d || d_to_i64(t->d, &v) != 0))
				break;
			if (grow((void **)&f->i64s, &f->ci64s, f->ni64s + 1, sizeof(int64_t)))
				return oom(p);
			f->i64s[f->ni64s++] = v;
			break;
		}
		case FT_DOUBLE: {
			double v = t->d;
			if (t->kind == T_INT) {
				int64_t back = 0;
				v = (double)t->i;
				if (d_to_i64(v, &back) != 0 || back != t->i)
					break; /* no double equals it */
			}
			if (grow((void **)&f->f64s, &f->cf64s, f->nf64s + 1, sizeof(double)))
				return oom(p);
			f->f64s[f->nf64s++] = v;
			break;
		}
		case FT_STRING: {
			size_t si;
			if ((rc = str_add(p, t->s, t->slen, &si)) != VDB_OK)
				return rc;
			break;
		}
		default:
			if (t->kind == T_TRUE)
				has_true = 1;
			else
				has_false = 1;
			break;
		}
		if ((rc = lex(p)) != VDB_OK)
			return rc;
		if (p->tok.kind == T_COMMA) {
			if ((rc = lex(p)) != VDB_OK)
				return rc;
		} else if (p->tok.kind != T_RB) {
			return expected(p, "',' or ']'");
		}
	}
	if ((rc = lex(p)) != VDB_OK)
		return rc;
	switch (nd.kind) {
	case N_I64_IN:
		nd.n = (uint32_t)sort_unique(f->i64s + first, f->ni64s - first, sizeof(int64_t),
		                             cmp_i64, NULL);
		f->ni64s = first + nd.n;
		break;
	case N_F64_IN:
		nd.n = (uint32_t)sort_unique(f->f64s + first, f->nf64s - first, sizeof(double),
		                             cmp_f64, NULL);
		f->nf64s = first + nd.n;
		break;
	case N_STR_IN:
		nd.n = (uint32_t)sort_unique(f->strs + first, f->nstrs - first,
		                             sizeof(struct strref), cmp_strref, f->bytes);
		f->nstrs = first + nd.n;
		break;
	default:
		if (has_true && has_false)
			return node_const(p, !neg, out);
		if (!has_true && !has_false)
			return node_const(p, neg, out);
		nd.flags = (uint8_t)has_true;
		use_field(p, r);
		return node_add(p, &nd, out);
	}
	if (nd.n == 0)
		return node_const(p, neg, out);
	nd.a = (uint32_t)first;
	use_field(p, r);
	return node_add(p, &nd, out);
}

/* build_like: field r like pattern t.  Backslash escapes the next byte;
 * '%' is any run, '_' any one byte.  The pattern is kept as the runs
 * between '%'s ("segments"), each with a mask of its '_' positions. */
static int
build_like(struct parser *p, const struct fref *r, const struct tok *t, uint32_t *out)
{
	struct filter *f = p->f;
	struct node nd = {.kind = N_LIKE, .col = r->col};
	const char *s = t->s;
	size_t m = t->slen, n = 0, minlen = 0, seg = 0, si;
	char *pb = NULL; /* the pattern unescaped: bytes ... */
	uint8_t *pk = NULL; /* ... and kinds: 0 byte, 1 '_', 2 '%' */
	int rc = VDB_OK, wild = 0;

	pb = malloc(m + 1);
	pk = malloc(m + 1);
	if (pb == NULL || pk == NULL) {
		rc = oom(p);
		goto out;
	}
	for (size_t i = 0; i < m; i++) {
		if (s[i] == '\\') {
			if (i + 1 == m) {
				rc = perr(p, t->off, "like pattern ends in a lone backslash");
				goto out;
			}
			pb[n] = s[++i];
			pk[n++] = 0;
		} else if (s[i] == '%') {
			pb[n] = 0;
			pk[n++] = 2;
		} else if (s[i] == '_') {
			pb[n] = 0;
			pk[n++] = 1;
			wild = 1;
		} else {
			pb[n] = s[i];
			pk[n++] = 0;
		}
	}
	nd.a = (uint32_t)f->nstrs;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		int segwild = 0;
		if (pk[i] == 2) {
			nd.flags |= LK_PCT;
			i++;
			continue;
		}
		while (j < n && pk[j] != 2)
			segwild |= pk[j++] == 1;
		if ((rc = str_add(p, pb + i, j - i, &si)) != VDB_OK)
			goto out;
		for (size_t k = i; k < j; k++)
			pb[k] = (char)pk[k]; /* the mask, in place: 1 where '_' */
		if ((rc = str_add(p, pb + i, segwild ? j - i : 0, &si)) != VDB_OK)
			goto out;
		minlen += j - i;
		seg++;
		i = j;
	}
	if (nd.flags & LK_PCT) {
		if (pk[0] != 2)
			nd.flags |= LK_START;
		if (pk[n - 1] != 2)
			nd.flags |= LK_END;
	}
	use_field(p, r);
	if (seg == 0 && (nd.flags & LK_PCT)) {
		rc = node_const(p, 1, out); /* only '%': every string */
		goto out;
	}
	if (!(nd.flags & LK_PCT) && !wild) {
		/* no wildcard at all: plain equality */
		struct node eq = {.kind = N_STR_EQ, .col = r->col, .a = nd.a};
		if (seg == 0 && (rc = str_add(p, "", 0, &si)) != VDB_OK)
			goto out;
		rc = node_add(p, &eq, out);
		goto out;
	}
	nd.n = (uint32_t)seg;
	nd.lo = (int64_t)minlen;
	rc = node_add(p, &nd, out);
out:
	free(pb);
	free(pk);
	return rc;
}

/* ---- parser ---- */

static int
resolve(struct parser *p, const struct tok *t, struct fref *r)
{
	const char *name = p->s + t->off;
	size_t len = t->len;

	r->off = t->off;
	if (len == 2 && memcmp(name, "id", 2) == 0) {
		r->col = -1;
		r->type = FT_INT64;
		r->name = "id";
		return VDB_OK;
	}
	if (len == 6 && memcmp(name, "vector", 6) == 0)
		return perr(
		        p, t->off,
		        "field 'vector' cannot be filtered (vectors are searched, not compared)");
	for (uint32_t i = 0; i < p->sc->nfields && i < VDB_MAX_FIELDS; i++) {
		const struct field *fl = &p->sc->fields[i];
		if (strnlen(fl->name, sizeof(fl->name)) != len || memcmp(fl->name, name, len) != 0)
			continue;
		if (fl->type < FT_INT64 || fl->type > FT_STRING)
			return vdb_err_set(p->e, VDB_EINTERNAL, "field '%s' has unknown type %d",
			                   fl->name, fl->type);
		r->col = (int)i;
		r->type = fl->type;
		r->name = fl->name;
		return VDB_OK;
	}
	if (len > 64)
		return perr(p, t->off, "unknown field '%.64s...'", name);
	return perr(p, t->off, "unknown field '%.*s'", (int)len, name);
}

/* after_cond: what to say about the token after a complete condition */
static int
after_cond(struct parser *p, const char *what)
{
	if (is_cmp(p->tok.kind))
		return perr(p, p->tok.off,
		            "comparisons do not chain (a range is LOW < field < HIGH)");
	return expected(p, what);
}

/* parse_field: a predicate that starts with field r (already consumed) */
static int
parse_field(struct parser *p, const struct fref *r, uint32_t *out)
{
	int k = p->tok.kind, rc;

	if (is_cmp(k)) {
		struct tok op = p->tok, v;
		if ((rc = lex(p)) != VDB_OK)
			return rc;
		if (!is_lit(p->tok.kind))
			return expected(p, "a value");
		v = p->tok;
		if ((rc = build_cmp(p, r, op.kind, op.off, &v, out)) != VDB_OK)
			return rc;
		return lex(p);
	}
	if (k == T_IN || k == T_NOT) {
		if ((rc = lex(p)) != VDB_OK)
			return rc;
		if (k == T_NOT) {
			if (p->tok.kind != T_IN)
				return expected(p, "'in' after 'not'");
			if ((rc = lex(p)) != VDB_OK)
				return rc;
		}
		return parse_list(p, r, k == T_NOT, out);
	}
	if (k == T_LIKE) {
		struct tok v;
		if (r->type != FT_STRING)
			return perr(p, p->tok.off, "like needs a string field, but '%s' is %s",
			            r->name, ftype_name(r->type));
		if ((rc = lex(p)) != VDB_OK)
			return rc;
		if (p->tok.kind != T_STR)
			return expected(p, "a string pattern");
		v = p->tok;
		if ((rc = build_like(p, r, &v, out)) != VDB_OK)
			return rc;
		return lex(p);
	}
	if (r->type == FT_BOOL) { /* a bare bool field is a condition */
		struct node nd = {.kind = N_BOOL, .col = r->col, .flags = 1};
		use_field(p, r);
		return node_add(p, &nd, out);
	}
	char what[400];
	snprintf(what, sizeof(what), "a comparison, 'in' or 'like' after %s field '%s'",
	         ftype_name(r->type), r->name);
	return expected(p, what);
}

/* parse_value_first: LIT OP field, LOW OP field OP HIGH, or true/false */
static int
parse_value_first(struct parser *p, uint32_t *out)
{
	struct tok t = p->tok, op1, op2, v2;
	struct fref r;
	int rc, up1, up2;

	if ((rc = lex(p)) != VDB_OK)
		return rc;
	if (!is_cmp(p->tok.kind)) {
		if (t.kind == T_TRUE || t.kind == T_FALSE)
			return node_const(p, t.kind == T_TRUE, out);
		return expected(p, "a comparison operator");
	}
	op1 = p->tok;
	if ((rc = lex(p)) != VDB_OK)
		return rc;
	if (p->tok.kind != T_IDENT)
		return expected(p, "a field");
	if ((rc = resolve(p, &p->tok, &r)) != VDB_OK || (rc = lex(p)) != VDB_OK)
		return rc;
	if (!is_cmp(p->tok.kind))
		return build_cmp(p, &r, flip(op1.kind), op1.off, &t, out);
	op2 = p->tok;
	if (op1.kind == T_EQ || op1.kind == T_NE || op2.kind == T_EQ || op2.kind == T_NE)
		return perr(p, op2.off, "comparisons do not chain (a range is LOW < field < HIGH)");
	up1 = op1.kind == T_LT || op1.kind == T_LE;
	up2 = op2.kind == T_LT || op2.kind == T_LE;
	if (up1 != up2)
		return perr(p, op2.off,
		            "a range needs both comparisons in the same direction "
		            "(< and <=, or > and >=)");
	if (r.type == FT_BOOL)
		return perr(p, op1.off,
		            "bool field '%s' can only be compared with == or !=", r.name);
	if ((rc = lex(p)) != VDB_OK)
		return rc;
	if (!is_lit(p->tok.kind))
		return expected(p, "a value");
	v2 = p->tok;
	if ((rc = build_range(p, &r, flip(op1.kind), &t, op2.kind, &v2, out)) != VDB_OK)
		return rc;
	return lex(p);
}

static int
parse_primary(struct parser *p, unsigned depth, uint32_t *out)
{
	struct tok t = p->tok;
	struct fref r;
	int rc;

	if (t.kind == T_LP) {
		if (depth + 1 > FILTER_MAX_DEPTH)
			return perr(p, t.off, "expression nested deeper than %d", FILTER_MAX_DEPTH);
		if ((rc = lex(p)) != VDB_OK || (rc = parse_or(p, depth + 1, out)) != VDB_OK)
			return rc;
		if (p->tok.kind != T_RP)
			return after_cond(p, "')'");
		return lex(p);
	}
	if (t.kind == T_IDENT) {
		if ((rc = resolve(p, &t, &r)) != VDB_OK || (rc = lex(p)) != VDB_OK)
			return rc;
		return parse_field(p, &r, out);
	}
	if (is_lit(t.kind))
		return parse_value_first(p, out);
	return expected(p, "a condition");
}

static int
parse_not(struct parser *p, unsigned depth, uint32_t *out)
{
	struct node *nd, nn = {.kind = N_NOT, .n = 1};
	uint32_t k;
	int rc;

	if (p->tok.kind != T_NOT)
		return parse_primary(p, depth, out);
	if (depth + 1 > FILTER_MAX_DEPTH)
		return perr(p, p->tok.off, "expression nested deeper than %d", FILTER_MAX_DEPTH);
	if ((rc = lex(p)) != VDB_OK || (rc = parse_not(p, depth + 1, &k)) != VDB_OK)
		return rc;
	nd = &p->f->nodes[k];
	*out = k;
	switch (nd->kind) {
	case N_TRUE:
		nd->kind = N_FALSE;
		return VDB_OK;
	case N_FALSE:
		nd->kind = N_TRUE;
		return VDB_OK;
	case N_NOT:
		*out = p->f->kids[nd->a];
		return VDB_OK;
	case N_AND:
	case N_OR:
		break;
	default: /* a leaf inverts its own result */
		nd->neg ^= 1;
		return VDB_OK;
	}
	nn.height = (uint16_t)(nd->height + 1);
	if (grow((void **)&p->f->kids, &p->f->ckids, p->f->nkids + 1, sizeof(uint32_t)))
		return oom(p);
	nn.a = (uint32_t)p->f->nkids;
	p->f->kids[p->f->nkids++] = k;
	return node_add(p, &nn, out);
}

/* parse_chain: operands joined by op (T_AND: not-expressions, T_OR:
 * and-chains), flattened into one node; a constant operand that decides
 * the chain makes it that constant, one that cannot is dropped */
static int
parse_chain(struct parser *p, unsigned depth, int op, uint32_t *out)
{
	struct filter *f = p->f;
	int nkind = op == T_AND ? N_AND : N_OR;
	int absorb = op == T_AND ? N_FALSE : N_TRUE;
	int unit = op == T_AND ? N_TRUE : N_FALSE;
	size_t base = p->nstk, n;
	uint32_t k, decided = UINT32_MAX, unitk = UINT32_MAX;
	int rc;

	for (;;) {
		const struct node *nd;
		rc = op == T_AND ? parse_not(p, depth, &k) : parse_chain(p, depth, T_AND, &k);
		if (rc != VDB_OK)
			goto out;
		nd = &f->nodes[k];
		if (nd->kind == absorb) {
			decided = k;
		} else if (nd->kind == unit) {
			unitk = k;
		} else {
			const uint32_t *src = nd->kind == nkind ? f->kids + nd->a : &k;
			size_t cnt = nd->kind == nkind ? nd->n : 1;
			if (grow((void **)&p->stk, &p->cstk, p->nstk + cnt, sizeof(uint32_t))) {
				rc = oom(p);
				goto out;
			}
			memcpy(p->stk + p->nstk, src, cnt * sizeof(uint32_t));
			p->nstk += cnt;
		}
		if (p->tok.kind != op)
			break;
		if ((rc = lex(p)) != VDB_OK)
			goto out;
	}
	n = p->nstk - base;
	if (decided != UINT32_MAX) {
		*out = decided;
	} else if (n == 0) {
		*out = unitk;
	} else if (n == 1) {
		*out = p->stk[base];
	} else {
		struct node nd = {.kind = (uint8_t)nkind, .n = (uint32_t)n};
		uint16_t h = 0;
		if (grow((void **)&f->kids, &f->ckids, f->nkids + n, sizeof(uint32_t))) {
			rc = oom(p);
			goto out;
		}
		nd.a = (uint32_t)f->nkids;
		for (size_t i = 0; i < n; i++) {
			uint32_t c = p->stk[base + i];
			f->kids[f->nkids++] = c;
			if (f->nodes[c].height > h)
				h = f->nodes[c].height;
		}
		nd.height = (uint16_t)(h + 1);
		rc = node_add(p, &nd, out);
	}
out:
	p->nstk = base;
	return rc;
}

static int
parse_or(struct parser *p, unsigned depth, uint32_t *out)
{
	return parse_chain(p, depth, T_OR, out);
}

int
filter_parse(const char *expr, const struct schema *sc, struct filter **out, struct vdb_err *e)
{
	struct parser p;
	struct filter *f = NULL;
	size_t len;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || expr == NULL || sc == NULL)
		return vdb_err_set(e, VDB_EINTERNAL, "filter_parse: no expression or schema");
	memset(&p, 0, sizeof(p));
	len = strnlen(expr, (size_t)FILTER_MAX_LEN + 1);
	if (len > FILTER_MAX_LEN)
		return vdb_err_set(e, VDB_EINPUT, "column %u: expression longer than %u bytes",
		                   FILTER_MAX_LEN + 1, FILTER_MAX_LEN);
	p.s = expr;
	p.len = len;
	p.sc = sc;
	p.e = e;
	p.f = f = calloc(1, sizeof(*f));
	p.arena = malloc(len + 1);
	if (f == NULL || p.arena == NULL) {
		rc = oom(&p);
		goto out;
	}
	if ((rc = lex(&p)) != VDB_OK)
		goto out;
	if (p.tok.kind == T_END) {
		rc = perr(&p, 0, "empty expression");
		goto out;
	}
	if ((rc = parse_or(&p, 0, &f->root)) != VDB_OK)
		goto out;
	if (p.tok.kind == T_RP) {
		rc = perr(&p, p.tok.off, "unmatched ')'");
		goto out;
	}
	if (p.tok.kind != T_END) {
		rc = after_cond(&p, "'and' or 'or'");
		goto out;
	}
	/* two masks for the chunk, two per level of and/or below the root */
	f->nscratch = (2 + 2 * (size_t)f->nodes[f->root].height) * FILTER_CHUNK;
	if ((f->scratch = malloc(f->nscratch)) == NULL) {
		rc = oom(&p);
		goto out;
	}
	*out = f;
	f = NULL;
out:
	filter_free(f);
	free(p.arena);
	free(p.stk);
	return rc;
}

void
filter_free(struct filter *f)
{
	if (f == NULL)
		return;
	free(f->nodes);
	free(f->kids);
	free(f->i64s);
	free(f->f64s);
	free(f->strs);
	free(f->bytes);
	free(f->scratch);
	free(f);
}

static int
dup_array(void **dst, size_t *cap, const void *src, size_t n, size_t size)
{
	*cap = 0;
	*dst = NULL;
	if (n == 0)
		return 0;
	if ((*dst = malloc(n * size)) == NULL)
		return -1;
	memcpy(*dst, src, n * size);
	*cap = n;
	return 0;
}

int
filter_clone(const struct filter *f, struct filter **out, struct vdb_err *e)
{
	struct filter *c;

	*out = NULL;
	if (f == NULL)
		return vdb_err_set(e, VDB_EINTERNAL, "filter_clone: no filter");
	if ((c = malloc(sizeof(*c))) == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory cloning a filter");
	*c = *f;
	c->scratch = NULL;
	c->kids = NULL, c->i64s = NULL, c->f64s = NULL, c->strs = NULL, c->bytes = NULL;
	if (dup_array((void **)&c->nodes, &c->cnodes, f->nodes, f->nnodes, sizeof(*f->nodes)) ||
	    dup_array((void **)&c->kids, &c->ckids, f->kids, f->nkids, sizeof(*f->kids)) ||
	    dup_array((void **)&c->i64s, &c->ci64s, f->i64s, f->ni64s, sizeof(*f->i64s)) ||
	    dup_array((void **)&c->f64s, &c->cf64s, f->f64s, f->nf64s, sizeof(*f->f64s)) ||
	    dup_array((void **)&c->strs, &c->cstrs, f->strs, f->nstrs, sizeof(*f->strs)) ||
	    dup_array((void **)&c->bytes, &c->cbytes, f->bytes, f->nbytes, 1) ||
	    (c->scratch = malloc(f->nscratch)) == NULL) {
		filter_free(c);
		return vdb_err_set(e, VDB_ETEMP, "out of memory cloning a filter");
	}
	*out = c;
	return VDB_OK;
}
