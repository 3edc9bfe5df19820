/* index.c: index objects (index.h, formats/index.md) — the container and
 * a collection's index specification. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "schema.h"
#include "segment.h"

static const char hdr_magic[8] = {'V', 'D', 'B', 'I', 'D', 'X', '0', '1'};
static const char foot_magic[8] = {'V', 'D', 'B', 'I', 'F', 'O', 'T', '1'};
static const char end_magic[8] = {'V', 'D', 'B', 'I', 'D', 'X', 'N', 'D'};

#define FOOT_HDR 48
#define FOOT_ENT 64

/* ---- specification ---- */

static const char *const type_names[] = {"flat", "hnsw", "ivf_flat", "ivf_sq8", "ivf_pq"};

const char *
index_type_name(int type)
{
	if (type < 0 || type > IDX_IVF_PQ)
		return "?";
	return type_names[type];
}

int
index_type_parse(const char *s)
{
	for (int i = 0; i <= IDX_IVF_PQ; i++)
		if (strcasecmp(s, type_names[i]) == 0)
			return i;
	return -1;
}

static int
parse_u32(const char *name, const char *v, uint32_t lo, uint32_t hi, uint32_t *out,
          struct vdb_err *e)
{
	char *end;
	unsigned long long x;

	errno = 0;
	if (v[0] < '0' || v[0] > '9')
		goto bad;
	x = strtoull(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		goto bad;
	*out = (uint32_t)x;
	return VDB_OK;
bad:
	return vdb_err_set(e, VDB_EINPUT, "%s: '%.40s' is not a number from %u to %u", name, v, lo,
	                   hi);
}

int
index_spec_set(struct index_spec *s, const char *name, const char *value, struct vdb_err *e)
{
	if (strcmp(name, "M") == 0)
		return parse_u32("M", value, 2, HNSW_MAX_M, &s->m, e);
	if (strcmp(name, "efConstruction") == 0 || strcmp(name, "ef_construction") == 0)
		return parse_u32("efConstruction", value, 1, HNSW_MAX_EFC, &s->ef_construction, e);
	if (strcmp(name, "nlist") == 0)
		return parse_u32("nlist", value, 1, IVF_MAX_NLIST, &s->nlist, e);
	if (strcmp(name, "m") == 0 || strcmp(name, "pq_m") == 0)
		return parse_u32("m", value, 1, VDB_MAX_DIM, &s->pq_m, e);
	return vdb_err_set(e, VDB_EINPUT,
	                   "unknown index parameter '%.40s' (M, efConstruction, nlist, m)", name);
}

int
index_spec_set_kv(struct index_spec *s, const char *kv, struct vdb_err *e)
{
	const char *eq = strchr(kv, '=');
	char name[32];

	if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof name)
		return vdb_err_set(e, VDB_EINPUT, "index parameter '%.60s' is not NAME=VALUE", kv);
	memcpy(name, kv, eq - kv);
	name[eq - kv] = '\0';
	return index_spec_set(s, name, eq + 1, e);
}

int
index_spec_check(const struct index_spec *s, uint32_t dim, struct vdb_err *e)
{
	int hnsw = s->type == IDX_HNSW, ivf = s->type >= IDX_IVF_FLAT;

	if (s->type < 0 || s->type > IDX_IVF_PQ)
		return vdb_err_set(e, VDB_EINPUT, "unknown index type %d", s->type);
	if (!hnsw && (s->m || s->ef_construction))
		return vdb_err_set(e, VDB_EINPUT, "M and efConstruction are HNSW parameters");
	if (!ivf && s->nlist)
		return vdb_err_set(e, VDB_EINPUT, "nlist is a parameter of the IVF types");
	if (s->type != IDX_IVF_PQ && s->pq_m)
		return vdb_err_set(e, VDB_EINPUT, "m is an IVF_PQ parameter");
	if (s->type == IDX_IVF_PQ && s->pq_m && dim % s->pq_m != 0)
		return vdb_err_set(e, VDB_EINPUT, "m=%u does not divide the dimension %u", s->pq_m,
		                   dim);
	return VDB_OK;
}

void
index_spec_resolve(const struct index_spec *s, uint64_t rows, uint32_t dim, struct index_spec *out)
{
	*out = *s;
	if (s->type == IDX_HNSW) {
		if (!out->m)
			out->m = HNSW_DEFAULT_M;
		if (!out->ef_construction)
			out->ef_construction = HNSW_DEFAULT_EFC;
	}
	if (s->type >= IDX_IVF_FLAT && !out->nlist) {
		/* 4 sqrt(rows), as FAISS's guide starts from: lists of about
		 * sqrt(rows) / 4 rows balance the centroid scan and the list scan */
		uint64_t n = 1;
		while (n * n < rows)
			n++;
		n *= 4;
		if (n > rows / 39) /* k-means wants >= 39 points per centroid */
			n = rows / 39;
		out->nlist = n < 1 ? 1 : n > IVF_MAX_NLIST ? IVF_MAX_NLIST : (uint32_t)n;
	}
	if (s->type == IDX_IVF_PQ && !out->pq_m) {
		/* 4 dimensions per sub-quantizer where the dimension allows */
		uint32_t m = dim / 4 ? dim / 4 : 1;
		while (dim % m)
			m--;
		out->pq_m = m;
	}
}

void
index_spec_format(const struct index_spec *s, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s", index_type_name(s->type));

	if (n < 0 || (size_t)n >= len)
		return;
	if (s->m)
		n += snprintf(buf + n, len - n, " M=%u", s->m);
	if ((size_t)n < len && s->ef_construction)
		n += snprintf(buf + n, len - n, " efConstruction=%u", s->ef_construction);
	if ((size_t)n < len && s->nlist)
		n += snprintf(buf + n, len - n, " nlist=%u", s->nlist);
	if ((size_t)n < len && s->pq_m)
		snprintf(buf + n, len - n, " m=%u", s->pq_m);
}

/* ---- writing ---- */

static uint64_t
pad64(uint64_t x)
{
	return (x + IDX_ALIGN - 1) & ~(uint64_t)(IDX_ALIGN - 1);
}

/* sha256 and sha256_padded: 0, or -1 when OpenSSL fails (no memory) */
static int
sha256(const void *p, size_t n, unsigned char out[32])
{
	return EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

/* sha256_padded: the SHA-256 of len bytes followed by zeros up to pad64 */
static int
sha256_padded(const void *p, uint64_t len, unsigned char out[32])
{
	static const unsigned char zero[IDX_ALIGN];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	if (md == NULL)
		return -1;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	     (len == 0 || EVP_DigestUpdate(md, p, len) == 1) &&
	     (pad64(len) == len || EVP_DigestUpdate(md, zero, pad64(len) - len) == 1) &&
	     EVP_DigestFinal_ex(md, out, NULL) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

static int
hash_failed(struct vdb_err *e)
{
	return vdb_err_set(e, VDB_ETEMP, "SHA-256 failed (out of memory?)");
}

static void
hdr_encode(const struct index_hdr *h, uint32_t nsec, unsigned char *p)
{
	memset(p, 0, IDX_HDR);
	memcpy(p, hdr_magic, 8);
	put_u32(p + 8, 1);
	put_u32(p + 12, IDX_HDR);
	put_u32(p + 16, h->type);
	put_u32(p + 20, h->metric);
	put_u32(p + 24, h->dim);
	put_u32(p + 28, nsec);
	put_u64(p + 32, h->rows);
	memcpy(p + 40, h->seg, 32);
	for (int i = 0; i < IDX_NPARAM; i++)
		put_u32(p + 72 + 4 * i, h->param[i]);
}

int
index_write(struct store *st, const struct index_hdr *h, const struct index_sec *secs, size_t nsec,
            char key[65], uint64_t *bytes, struct vdb_err *e)
{
	static const unsigned char zero[IDX_ALIGN];
	unsigned char hdr[IDX_HDR], trailer[IDX_TRAILER], fsha[32], *foot;
	struct store_stage stage;
	uint64_t off = IDX_HDR, flen = FOOT_HDR + nsec * FOOT_ENT;
	int rc;

	if (nsec > IDX_MAX_SECTIONS)
		return vdb_err_set(e, VDB_EINTERNAL, "too many index sections");
	foot = calloc(1, flen);
	if (foot == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	hdr_encode(h, (uint32_t)nsec, hdr);
	memcpy(foot, foot_magic, 8);
	put_u32(foot + 8, (uint32_t)nsec);
	if (sha256(hdr, IDX_HDR, foot + 16) != 0) {
		free(foot);
		return hash_failed(e);
	}
	if ((rc = store_stage(st, &stage, e)) != VDB_OK) {
		free(foot);
		return rc;
	}
	if ((rc = file_pwrite_all(stage.fd, hdr, IDX_HDR, 0, stage.path, e)) != VDB_OK)
		goto fail;
	for (size_t i = 0; i < nsec; i++) {
		unsigned char *q = foot + FOOT_HDR + i * FOOT_ENT;
		uint64_t len = secs[i].len, pad = pad64(len) - len;
		put_u32(q, secs[i].id);
		put_u64(q + 8, off);
		put_u64(q + 16, len);
		if (sha256_padded(secs[i].p, len, q + 32) != 0) {
			rc = hash_failed(e);
			goto fail;
		}
		if (len && (rc = file_pwrite_all(stage.fd, secs[i].p, len, (off_t)off, stage.path,
		                                 e)) != VDB_OK)
			goto fail;
		if (pad && (rc = file_pwrite_all(stage.fd, zero, pad, (off_t)(off + len),
		                                 stage.path, e)) != VDB_OK)
			goto fail;
		off += len + pad;
	}
	if (sha256(foot, flen, fsha) != 0) {
		rc = hash_failed(e);
		goto fail;
	}
	put_u64(trailer, off);
	put_u64(trailer + 8, flen);
	memcpy(trailer + 16, fsha, 32);
	memcpy(trailer + 48, end_magic, 8);
	if ((rc = file_pwrite_all(stage.fd, foot, flen, (off_t)off, stage.path, e)) != VDB_OK ||
	    (rc = file_pwrite_all(stage.fd, trailer, IDX_TRAILER, (off_t)(off + flen), stage.path,
	                          e)) != VDB_OK)
		goto fail;
	sha256_hex(fsha, key);
	*bytes = off + flen + IDX_TRAILER;
	free(foot);
	return store_commit(st, &stage, key, e);
fail:
	free(foot);
	store_abort(st, &stage);
	return rc;
}

/* ---- reading ---- */

static int
corrupt(struct vdb_err *e, const char *what)
{
	return vdb_err_set(e, VDB_ECORRUPT, "%s", what);
}

static int
parse(struct index_file *f, struct vdb_err *e)
{
	const unsigned char *m = f->map, *t;
	uint64_t foff, flen, prev = IDX_HDR;
	unsigned char sha[32];

	if (f->size < IDX_HDR + FOOT_HDR + IDX_TRAILER)
		return corrupt(e, "too short to be an index");
	t = m + f->size - IDX_TRAILER;
	if (memcmp(t + 48, end_magic, 8) != 0)
		return corrupt(e, "bad trailer magic");
	foff = get_u64(t);
	flen = get_u64(t + 8);
	if (foff < IDX_HDR || flen < FOOT_HDR || foff > f->size || flen > f->size - foff ||
	    foff + flen != f->size - IDX_TRAILER)
		return corrupt(e, "trailer points outside the object");
	f->footer = m + foff;
	f->footer_len = flen;
	if (sha256(f->footer, flen, sha) != 0)
		return hash_failed(e);
	if (memcmp(sha, t + 16, 32) != 0)
		return corrupt(e, "footer checksum mismatch");
	if (memcmp(f->footer, foot_magic, 8) != 0)
		return corrupt(e, "bad footer magic");
	if (memcmp(m, hdr_magic, 8) != 0)
		return corrupt(e, "bad header magic");
	if (get_u32(m + 8) != 1 || get_u32(m + 12) != IDX_HDR)
		return corrupt(e, "unknown index version");
	f->h.type = get_u32(m + 16);
	f->h.metric = get_u32(m + 20);
	f->h.dim = get_u32(m + 24);
	f->nsec = get_u32(m + 28);
	f->h.rows = get_u64(m + 32);
	memcpy(f->h.seg, m + 40, 32);
	for (int i = 0; i < IDX_NPARAM; i++)
		f->h.param[i] = get_u32(m + 72 + 4 * i);
	if (f->h.type < IDX_HNSW || f->h.type > IDX_IVF_PQ)
		return corrupt(e, "unknown index type in header");
	if (f->h.metric > METRIC_COSINE)
		return corrupt(e, "unknown metric in header");
	if (f->h.dim == 0 || f->h.dim > VDB_MAX_DIM)
		return corrupt(e, "bad dimension in header");
	if (f->h.rows > SEG_MAX_ROWS)
		return corrupt(e, "too many rows in header");
	if (f->nsec > IDX_MAX_SECTIONS || get_u32(f->footer + 8) != f->nsec ||
	    flen != FOOT_HDR + (uint64_t)f->nsec * FOOT_ENT)
		return corrupt(e, "bad section count");
	for (uint32_t i = 0; i < f->nsec; i++) {
		const unsigned char *q = f->footer + FOOT_HDR + (size_t)i * FOOT_ENT;
		struct index_section *s = &f->sec[i];
		s->id = get_u32(q);
		s->off = get_u64(q + 8);
		s->len = get_u64(q + 16);
		s->sha = q + 32;
		/* sections tile the object, as a segment's blocks do */
		if (s->off != prev || s->len > foff - s->off || pad64(s->len) > foff - s->off)
			return corrupt(e, "section out of place");
		for (uint32_t j = 0; j < i; j++)
			if (f->sec[j].id == s->id)
				return corrupt(e, "section listed twice");
		prev = s->off + pad64(s->len);
	}
	if (prev != foff)
		return corrupt(e, "footer and sections do not tile the object");
	return VDB_OK;
}

int
index_open(const char *path, struct index_file *f, struct vdb_err *e)
{
	const void *map;
	size_t size;
	int rc;

	memset(f, 0, sizeof *f);
	if ((rc = file_map(path, IDX_HDR + FOOT_HDR + IDX_TRAILER, "an index", &map, &size, e)) !=
	    VDB_OK)
		return rc;
	f->map = map;
	f->size = size;
	if ((rc = parse(f, e)) != VDB_OK) {
		vdb_err_prefix(e, "%s: ", path);
		index_close(f);
	}
	return rc;
}

int
index_open_mem(const void *buf, size_t len, struct index_file *f, struct vdb_err *e)
{
	int rc;

	memset(f, 0, sizeof *f);
	f->map = buf;
	f->size = len;
	rc = parse(f, e);
	f->size = 0; /* not ours to unmap */
	return rc;
}

void
index_close(struct index_file *f)
{
	if (f->map && f->size)
		munmap((void *)f->map, f->size);
	memset(f, 0, sizeof *f);
}

int
index_verify(const struct index_file *f, const char *key, struct vdb_err *e)
{
	unsigned char sha[32];
	char hex[65];

	if (sha256(f->footer, f->footer_len, sha) != 0)
		return hash_failed(e);
	sha256_hex(sha, hex);
	if (strcmp(hex, key) != 0)
		return corrupt(e, "footer does not hash to the object key");
	if (sha256(f->map, IDX_HDR, sha) != 0)
		return hash_failed(e);
	if (memcmp(sha, f->footer + 16, 32) != 0)
		return corrupt(e, "header checksum mismatch");
	for (uint32_t i = 0; i < f->nsec; i++) {
		const struct index_section *s = &f->sec[i];
		/* the padding is zero in a good object: hashing the whole
		 * extent covers it */
		if (sha256(f->map + s->off, pad64(s->len), sha) != 0)
			return hash_failed(e);
		if (memcmp(sha, s->sha, 32) != 0)
			return vdb_err_set(e, VDB_ECORRUPT, "section %u checksum mismatch", s->id);
	}
	return VDB_OK;
}

const void *
index_section(const struct index_file *f, uint32_t id, uint64_t want, uint64_t *len)
{
	for (uint32_t i = 0; i < f->nsec; i++) {
		if (f->sec[i].id != id)
			continue;
		if (want != UINT64_MAX && f->sec[i].len != want)
			return NULL;
		if (len)
			*len = f->sec[i].len;
		return f->map + f->sec[i].off;
	}
	return NULL;
}
