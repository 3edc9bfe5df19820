/* colcache.c: decoded scalar columns cached per segment (colcache.h).
 *
 * ROOT/cache/cols/KEY: a 64-byte header — magic "VDBCOLS1", u32 version 1,
 * u32 column count C (2 + fields), u64 rows n, u64 the segment's footer
 * offset (a second tie to the segment beside its key), 32 reserved bytes —
 * then C entries of (u64 offset, u64 length), then the columns in the
 * order _id, _ts, fields, each in the raw form formats/segment.md gives
 * it, at 64-byte aligned offsets.  Little-endian, as the segment. */
#include "colcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

#define CC_HDR 64
static const char magic[8] = {'V', 'D', 'B', 'C', 'O', 'L', 'S', '1'};

static uint64_t
pad64(uint64_t x)
{
	return (x + 63) & ~(uint64_t)63;
}

/* want: the raw length of column i (0 ids, 1 ts, 2.. fields) of n rows;
 * strings: 0, as only the segment knows theirs */
static uint64_t
want_len(const struct schema *sc, uint32_t i, uint64_t n)
{
	if (i < 2)
		return 8 * n;
	switch (sc->fields[i - 2].type) {
	case FT_INT64:
	case FT_DOUBLE:
		return 8 * n;
	case FT_BOOL:
		return n;
	default:
		return 0;
	}
}

/* layout: offsets of the C columns of b in a cache file, and its size */
static uint64_t
layout(const struct batch *b, uint32_t ncols, uint64_t *off, uint64_t *len)
{
	uint64_t at = pad64(CC_HDR + 16 * (uint64_t)ncols), n = b->n;

	for (uint32_t i = 0; i < ncols; i++) {
		len[i] = want_len(b->sc, i, n);
		if (i >= 2 && b->sc->fields[i - 2].type == FT_STRING)
			len[i] = 8 * (n + 1) + b->cols[i - 2].soff[n];
		off[i] = at;
		at = pad64(at + len[i]);
	}
	return at;
}

static int
put(int fd, const void *p, uint64_t len, uint64_t off, const char *path, struct vdb_err *e)
{
	return len ? file_pwrite_all(fd, p, len, (off_t)off, path, e) : VDB_OK;
}

/* cache_write: b's columns to the cache, atomically; errors are the
 * caller's to ignore */
static int
cache_write(const char *root, const char *key, const struct segment *s, const struct batch *b,
            struct vdb_err *e)
{
	uint32_t ncols = 2 + b->sc->nfields;
	uint64_t *off = calloc(ncols, 8), *len = calloc(ncols, 8), size;
	unsigned char *hdr = NULL;
	char *dir = path_fmt("%s/cache/cols", root),
	     *path = path_fmt("%s/cache/cols/%s", root, key);
	char *tmp = path_fmt("%s/cache/cols/.%s.XXXXXX", root, key);
	int fd = -1, rc;

	if (!off || !len || !dir || !path || !tmp) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto out;
	}
	size = layout(b, ncols, off, len);
	if ((hdr = calloc(1, off[0] ? off[0] : CC_HDR)) == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto out;
	}
	memcpy(hdr, magic, 8);
	put_u32(hdr + 8, 1);
	put_u32(hdr + 12, ncols);
	put_u64(hdr + 16, b->n);
	put_u64(hdr + 24, (uint64_t)(s->footer - s->map));
	for (uint32_t i = 0; i < ncols; i++) {
		put_u64(hdr + CC_HDR + 16 * i, off[i]);
		put_u64(hdr + CC_HDR + 16 * i + 8, len[i]);
	}
	if ((rc = file_mkdir(dir, e)) != VDB_OK)
		goto out;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		rc = vdb_err_errno(e, VDB_ETEMP, "%s", tmp);
		goto out;
	}
	if ((rc = put(fd, hdr, off[0], 0, tmp, e)) != VDB_OK ||
	    (rc = put(fd, b->ids, len[0], off[0], tmp, e)) != VDB_OK ||
	    (rc = put(fd, b->ts, len[1], off[1], tmp, e)) != VDB_OK)
		goto out;
	for (uint32_t i = 2; i < ncols && rc == VDB_OK; i++) {
		const struct col *c = &b->cols[i - 2];
		switch (c->type) {
		case FT_INT64:
			rc = put(fd, c->i64, len[i], off[i], tmp, e);
			break;
		case FT_DOUBLE:
			rc = put(fd, c->f64, len[i], off[i], tmp, e);
			break;
		case FT_BOOL:
			rc = put(fd, c->b, len[i], off[i], tmp, e);
			break;
		default:
			if ((rc = put(fd, c->soff, 8 * (b->n + 1), off[i], tmp, e)) == VDB_OK)
				rc = put(fd, c->sbuf, len[i] - 8 * (b->n + 1),
				         off[i] + 8 * (b->n + 1), tmp, e);
		}
	}
	if (rc == VDB_OK && ftruncate(fd, (off_t)size) != 0)
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: truncate", tmp);
	/* as readable as the objects it comes from */
	if (rc == VDB_OK && fchmod(fd, 0444) != 0)
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: chmod", tmp);
	/* durable before it is named: after a crash a file system may keep
	 * the rename and lose unsynced pages, and zeroed ids or timestamps
	 * would still fit the segment's shape.  Once written the cache is
	 * trusted as a checked segment is (vdb-admin verify re-checks it). */
	if (rc == VDB_OK)
		rc = file_sync(fd, tmp, e);
	if (rc == VDB_OK && rename(tmp, path) != 0)
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: rename", path);
out:
	if (fd >= 0) {
		close(fd);
		if (rc != VDB_OK)
			unlink(tmp);
	}
	free(off);
	free(len);
	free(hdr);
	free(dir);
	free(path);
	free(tmp);
	return rc;
}

/* cache_map: the cache file of key as b's columns, or VDB_ENOENT when
 * there is none or it does not fit the segment; *opened (if not NULL)
 * tells the two apart, for the file that was there when it looked */
static int
cache_map(const char *root, const char *key, const struct segment *s, struct batch *b,
          struct colmap *cm, int *opened, struct vdb_err *e)
{
	const struct schema *sc = b->sc;
	uint32_t ncols = 2 + sc->nfields;
	uint64_t n = s->rows;
	char *path = path_fmt("%s/cache/cols/%s", root, key);
	unsigned char *m = MAP_FAILED;
	struct stat st;
	size_t size = 0;
	int fd = -1, rc = VDB_ENOENT;

	if (path == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto out;
	if (opened)
		*opened = 1;
	if (fstat(fd, &st) != 0)
		goto out;
	size = (size_t)st.st_size;
	if (size < CC_HDR + 16 * (uint64_t)ncols)
		goto out;
	if ((m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
		goto out;
	if (memcmp(m, magic, 8) != 0 || get_u32(m + 8) != 1 || get_u32(m + 12) != ncols ||
	    get_u64(m + 16) != n || get_u64(m + 24) != (uint64_t)(s->footer - s->map))
		goto out;
	for (uint32_t i = 0; i < ncols; i++) {
		uint64_t off = get_u64(m + CC_HDR + 16 * i), len = get_u64(m + CC_HDR + 16 * i + 8);
		uint64_t want = want_len(sc, i, n);
		int str = i >= 2 && sc->fields[i - 2].type == FT_STRING;
		if (off % 64 || off > size || len > size - off || (!str && len != want) ||
		    (str && (len < 8 * (n + 1) ||
		             len - 8 * (n + 1) > n * (uint64_t)sc->fields[i - 2].max_len)))
			goto out;
		void *p = m + off;
		if (i == 0)
			b->ids = p;
		else if (i == 1)
			b->ts = p;
		else {
			struct col *c = &b->cols[i - 2];
			switch (c->type) {
			case FT_INT64:
				c->i64 = p;
				break;
			case FT_DOUBLE:
				c->f64 = p;
				break;
			case FT_BOOL:
				c->b = p;
				break;
			default: {
				/* the offsets are trusted by every reader: check them,
				 * as seg_load checks the segment's */
				const uint64_t *so = p;
				uint64_t blen = len - 8 * (n + 1);
				for (uint64_t r = 0; r < n; r++)
					if (so[r] > so[r + 1] || so[r + 1] > blen)
						goto out;
				if (so[0] != 0)
					goto out;
				c->soff = (uint64_t *)p;
				c->sbuf = (char *)p + 8 * (n + 1);
			}
			}
		}
	}
	b->n = n;
	b->partition_id = (int64_t)s->pid;
	cm->map = m;
	cm->len = size;
	m = MAP_FAILED;
	rc = VDB_OK;
out:
	if (rc != VDB_OK) {
		/* a view half set up points into the map: start over */
		const struct schema *keep = b->sc;
		memset(b, 0, sizeof *b);
		batch_init_scalars(b, keep);
	}
	if (m != MAP_FAILED)
		munmap(m, size);
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

int
colcache_load(const char *root, const char *key, const struct segment *s, struct batch *b,
              struct colmap *cm, struct vdb_err *e)
{
	struct vdb_err ignore;
	int rc;

	memset(cm, 0, sizeof *cm);
	if (s->ncols != b->sc->nfields + 3)
		return vdb_err_set(e, VDB_ECORRUPT, "segment shape does not match the collection");
	if ((rc = cache_map(root, key, s, b, cm, NULL, e)) != VDB_ENOENT)
		return rc;
	/* decoded from the segment: its blocks checked first, as the cache
	 * will be trusted from now on */
	for (uint32_t i = 1; i < s->ncols; i++)
		if ((rc = seg_verify_block(s, i, e)) != VDB_OK)
			return rc;
	if ((rc = seg_load(s, b, e)) != VDB_OK)
		return rc;
	/* best effort: without it the next process decodes again */
	cache_write(root, key, s, b, &ignore);
	return VDB_OK;
}

void
colcache_free(struct batch *b, struct colmap *cm)
{
	if (cm->map) {
		const struct schema *sc = b->sc;
		munmap(cm->map, cm->len);
		memset(b, 0, sizeof *b);
		batch_init_scalars(b, sc);
	} else {
		batch_free(b);
	}
	memset(cm, 0, sizeof *cm);
}

int
colcache_check(const char *root, const char *key, const struct segment *s, const struct schema *sc,
               struct vdb_err *e)
{
	struct batch mapped, dec;
	struct colmap cm = {0};
	int rc, same = 1, opened = 0;

	batch_init_scalars(&mapped, sc);
	batch_init_scalars(&dec, sc);
	/* whether the file that was opened fits, not whether one is there a
	 * moment later: a query may be writing it meanwhile */
	if ((rc = cache_map(root, key, s, &mapped, &cm, &opened, e)) == VDB_ENOENT) {
		char *path = path_fmt("%s/cache/cols/%s", root, key);
		if (opened)
			rc = vdb_err_set(e, VDB_ECORRUPT, "%s does not fit its segment",
			                 path ? path : key);
		else
			rc = VDB_OK;
		free(path);
		goto out;
	}
	if (rc != VDB_OK || (rc = seg_load(s, &dec, e)) != VDB_OK)
		goto out;
	same = memcmp(mapped.ids, dec.ids, 8 * dec.n) == 0 &&
	       memcmp(mapped.ts, dec.ts, 8 * dec.n) == 0;
	for (uint32_t i = 0; i < sc->nfields && same; i++) {
		const struct col *a = &mapped.cols[i], *d = &dec.cols[i];
		switch (a->type) {
		case FT_INT64:
			same = memcmp(a->i64, d->i64, 8 * dec.n) == 0;
			break;
		case FT_DOUBLE:
			same = memcmp(a->f64, d->f64, 8 * dec.n) == 0;
			break;
		case FT_BOOL:
			same = memcmp(a->b, d->b, dec.n) == 0;
			break;
		default:
			same = memcmp(a->soff, d->soff, 8 * (dec.n + 1)) == 0 &&
			       memcmp(a->sbuf, d->sbuf, d->soff[dec.n]) == 0;
		}
	}
	if (!same)
		rc = vdb_err_set(e, VDB_ECORRUPT,
		                 "cache/cols/%s differs from its segment (delete it: it is "
		                 "decoded again)",
		                 key);
out:
	colcache_free(&mapped, &cm);
	batch_free(&dec);
	return rc;
}
