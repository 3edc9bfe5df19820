/* segment.c: segment objects.  Spec: formats/segment.md. */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "file.h"

static const char hdr_magic[8] = {'V', 'D', 'B', 'S', 'E', 'G', '0', '1'};
static const char foot_magic[8] = {'V', 'D', 'B', 'F', 'O', 'O', 'T', '1'};
static const char end_magic[8] = {'V', 'D', 'B', 'S', 'E', 'G', 'N', 'D'};

#define WBUF SEG_PIECE
#define NBUF 4
#define NHASH 2
#define DIO_ALIGN 4096
#define ZSTD_LEVEL 3

/* The writer is a pipeline over NBUF buffers, so a bulk import keeps
 * both cores and the disk busy at once: the caller's thread copies rows
 * into a buffer; two hasher threads hash the vector block's pieces (the
 * bulk of the object; its checksum is a tree over 8 MiB pieces precisely
 * so that they can be hashed in parallel); a writer thread writes each
 * buffer with O_DIRECT (no copy into the page cache; buffered writes where
 * the file system refuses O_DIRECT).  Small scalar blocks are hashed by
 * the caller.  The fsync at commit makes it all durable.  Buffers are
 * SEG_PIECE long and start at file offsets that are multiples of it, so
 * each holds at most one piece of the vector block. */
struct wbuf {
	unsigned char *p;
	size_t len;
	uint64_t off; /* file offset of p[0] */
	size_t h0, h1; /* p[h0..h1) is a piece for a hasher */
	int hbusy, wbusy; /* handed over, not yet hashed / written */
};

struct seg_writer {
	struct store *st;
	struct store_stage stage;
	int dfd; /* the stage opened O_DIRECT, or -1 */
	const struct schema *sc;
	int64_t pid;
	uint64_t off, rows; /* bytes emitted so far (the next block's offset) */
	EVP_MD_CTX *md;
	struct seg_col *cols;
	uint32_t ncols;

	struct wbuf b[NBUF];
	int nbuf; /* NBUF with the threads, 1 without */
	uint64_t seq; /* the buffer being filled is b[seq % w->nbuf] */
	size_t hstart; /* where its bytes for the hasher begin */
	int defer; /* the hasher hashes what is emitted (vector block) */

	pthread_t hasher[NHASH], writer;
	int nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running, stop;
	uint64_t queued; /* buffers handed over */
	uint64_t hnext, hdone; /* next for a hasher to take; hashed */
	uint64_t written; /* the writer goes in order */
	int werr; /* errno of a failed write, 0 if none */
	unsigned char (*piece)[32]; /* digest of the vector block's piece i */
	size_t npiece, piece_cap;
};

void
sha256_hex(const unsigned char sha[32], char hex[65])
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = d[sha[i] >> 4];
		hex[2 * i + 1] = d[sha[i] & 15];
	}
	hex[64] = '\0';
}

static void
sha256(const void *p, size_t n, unsigned char out[32])
{
	EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL);
}

static int
pwrite_full(int fd, const unsigned char *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t k = pwrite(fd, p, n, (off_t)off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += k;
		off += (uint64_t)k;
		n -= (size_t)k;
	}
	return 0;
}

/* write_buf: the aligned part O_DIRECT, a ragged tail (only ever the
 * object's last buffer) through the page cache */
static int
write_buf(struct seg_writer *w, const struct wbuf *b)
{
	size_t direct = 0;
	int err;

	if (w->dfd >= 0 && b->off % DIO_ALIGN == 0) {
		direct = b->len & ~(size_t)(DIO_ALIGN - 1);
		if (direct && (err = pwrite_full(w->dfd, b->p, direct, b->off)) != 0) {
			if (err != EINVAL)
				return err;
			/* refused after all: the cache from now on (only this
			 * thread uses dfd while it runs) */
			close(w->dfd);
			w->dfd = -1;
			direct = 0;
		}
	}
	if (direct == b->len)
		return 0;
	err = pwrite_full(w->stage.fd, b->p + direct, b->len - direct, b->off + direct);
	if (!err)
		sync_file_range(w->stage.fd, (off_t)(b->off + direct), (off_t)(b->len - direct),
		                SYNC_FILE_RANGE_WRITE);
	return err;
}

static void *
hasher_main(void *arg)
{
	struct seg_writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->hnext == w->queued && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->hnext == w->queued)
			break;
		uint64_t seq = w->hnext++;
		struct wbuf *b = &w->b[seq % w->nbuf];
		pthread_mutex_unlock(&w->mu);
		unsigned char d[32];
		if (b->h1 > b->h0)
			sha256(b->p + b->h0, b->h1 - b->h0, d);
		pthread_mutex_lock(&w->mu);
		if (b->h1 > b->h0)
			memcpy(w->piece[seq], d, 32);
		b->hbusy = 0;
		w->hdone++;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void *
writer_main(void *arg)
{
	struct seg_writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->written == w->queued && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->written == w->queued)
			break;
		struct wbuf *b = &w->b[w->written % w->nbuf];
		int failed = w->werr; /* after a failure, only drain the queue */
		pthread_mutex_unlock(&w->mu);
		int err = failed ? 0 : write_buf(w, b);
		pthread_mutex_lock(&w->mu);
		if (err && !w->werr)
			w->werr = err;
		b->wbusy = 0;
		w->written++;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* piece_room: a slot for the digest of piece seq (under w->mu when the
 * hashers run: they write into the array) */
static int
piece_room(struct seg_writer *w, uint64_t seq)
{
	if (seq < w->piece_cap)
		return 0;
	size_t cap = w->piece_cap ? w->piece_cap * 2 : 64;
	while (cap <= seq)
		cap *= 2;
	void *np = realloc(w->piece, cap * 32);
	if (np == NULL)
		return -1;
	w->piece = np;
	w->piece_cap = cap;
	return 0;
}

static int
writer_failed(struct seg_writer *w, struct vdb_err *e)
{
	errno = w->werr;
	return vdb_err_errno(e, VDB_ETEMP, "%s: write", w->stage.path);
}

/* flush_buf: hand the buffer being filled over; wait for the next one */
static int
flush_buf(struct seg_writer *w, struct vdb_err *e)
{
	struct wbuf *b = &w->b[w->seq % w->nbuf];
	uint64_t next_off = b->off + b->len;
	int oom, werr = 0;

	if (b->len == 0)
		return VDB_OK;
	b->h0 = w->defer ? w->hstart : 0;
	b->h1 = w->defer ? b->len : 0;
	if (w->defer)
		w->npiece = w->seq + 1;
	if (!w->running) {
		int err;
		if (w->defer && piece_room(w, w->seq) != 0)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		if (b->h1 > b->h0)
			sha256(b->p + b->h0, b->h1 - b->h0, w->piece[w->seq]);
		if ((err = write_buf(w, b)) != 0 && !w->werr)
			w->werr = err;
		werr = w->werr;
	} else {
		pthread_mutex_lock(&w->mu);
		oom = w->defer && piece_room(w, w->seq) != 0;
		if (!oom) {
			b->hbusy = b->wbusy = 1;
			w->queued = w->seq + 1;
			pthread_cond_broadcast(&w->cv);
			/* the next buffer is free once the threads are past it */
			struct wbuf *nb = &w->b[(w->seq + 1) % w->nbuf];
			while (nb->hbusy || nb->wbusy)
				pthread_cond_wait(&w->cv, &w->mu);
		}
		werr = w->werr;
		pthread_mutex_unlock(&w->mu);
		if (oom)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	w->seq++;
	b = &w->b[w->seq % w->nbuf];
	b->off = next_off;
	b->len = 0;
	w->hstart = 0;
	return werr ? writer_failed(w, e) : VDB_OK;
}

/* tree_finish: the vector block's checksum, once its last byte is
 * emitted: SHA-256 over the digests of its pieces (formats/segment.md) */
static int
tree_finish(struct seg_writer *w, unsigned char sha[32], struct vdb_err *e)
{
	struct wbuf *b = &w->b[w->seq % w->nbuf];

	if (w->running) {
		pthread_mutex_lock(&w->mu);
		while (w->hdone < w->queued)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
	}
	if (b->len > w->hstart) {
		if (piece_room(w, w->seq) != 0)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		sha256(b->p + w->hstart, b->len - w->hstart, w->piece[w->seq]);
		w->npiece = w->seq + 1;
	}
	sha256(w->piece, w->npiece * 32, sha);
	w->hstart = b->len;
	w->defer = 0;
	return VDB_OK;
}

/* drain: every emitted byte written; the threads stopped */
static int
drain(struct seg_writer *w, struct vdb_err *e)
{
	int rc = flush_buf(w, e);

	if (w->running) {
		pthread_mutex_lock(&w->mu);
		while (w->hdone < w->queued || w->written < w->queued)
			pthread_cond_wait(&w->cv, &w->mu);
		w->stop = 1;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		for (int i = 0; i < w->nthreads - 1; i++)
			pthread_join(w->hasher[i], NULL);
		pthread_join(w->writer, NULL);
		w->running = 0;
	}
	if (rc == VDB_OK && w->werr)
		rc = writer_failed(w, e);
	return rc;
}

/* emit: bytes of the current block: hashed (here, or by the hasher),
 * buffered, counted */
static int
emit(struct seg_writer *w, const void *p, size_t n, struct vdb_err *e)
{
	const unsigned char *q = p;
	int rc;

	if (!w->defer)
		EVP_DigestUpdate(w->md, p, n);
	w->off += n;
	while (n > 0) {
		struct wbuf *b = &w->b[w->seq % w->nbuf];
		size_t k = WBUF - b->len < n ? WBUF - b->len : n;
		memcpy(b->p + b->len, q, k);
		b->len += k;
		q += k;
		n -= k;
		if (b->len == WBUF && (rc = flush_buf(w, e)) != VDB_OK)
			return rc;
	}
	return VDB_OK;
}

static int
pad_block(struct seg_writer *w, struct vdb_err *e)
{
	static const unsigned char zero[SEG_ALIGN];
	size_t pad = (SEG_ALIGN - w->off % SEG_ALIGN) % SEG_ALIGN;
	return emit(w, zero, pad, e);
}

static struct seg_col *
new_col(struct seg_writer *w, const char *name, int type, int enc)
{
	struct seg_col *nc = realloc(w->cols, (w->ncols + 1) * sizeof(*nc));
	if (nc == NULL)
		return NULL;
	w->cols = nc;
	nc = &w->cols[w->ncols++];
	memset(nc, 0, sizeof(*nc));
	snprintf(nc->name, sizeof(nc->name), "%s", name);
	nc->type = type;
	nc->enc = enc;
	nc->off = w->off;
	return nc;
}

static int
writer_begin(struct store *st, const struct schema *sc, int64_t partition_id, int threads,
             struct seg_writer **out, struct vdb_err *e)
{
	struct seg_writer *w = calloc(1, sizeof(*w));
	int rc;

	if (w == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	w->stage.fd = w->dfd = -1;
	w->st = st;
	w->sc = sc;
	w->pid = partition_id;
	w->nbuf = threads ? NBUF : 1;
	for (int i = 0; i < w->nbuf; i++) {
		void *p;
		if (posix_memalign(&p, DIO_ALIGN, WBUF) != 0) {
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			goto fail;
		}
		w->b[i].p = p;
	}
	if ((w->md = EVP_MD_CTX_new()) == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto fail;
	}
	if ((rc = store_stage(st, &w->stage, e)) != VDB_OK)
		goto fail;
	w->dfd = open(w->stage.path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	/* the header's place, rewritten once the row count is known; not
	 * part of any block's hash */
	memset(w->b[0].p, 0, SEG_HDR);
	w->b[0].len = w->hstart = SEG_HDR;
	w->off = SEG_HDR;
	if (new_col(w, "_vector", SC_VECTOR, SE_RAW) == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto fail;
	}
	w->defer = 1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	/* the writer first, then hashers; with none of them, all is done
	 * here, in order (flush_buf) */
	if (threads && pthread_create(&w->writer, NULL, writer_main, w) == 0) {
		w->nthreads = 1;
		while (w->nthreads - 1 < NHASH &&
		       pthread_create(&w->hasher[w->nthreads - 1], NULL, hasher_main, w) == 0)
			w->nthreads++;
		if (w->nthreads > 1) {
			w->running = 1;
		} else {
			pthread_mutex_lock(&w->mu); /* no wakeup lost */
			w->stop = 1;
			pthread_cond_broadcast(&w->cv);
			pthread_mutex_unlock(&w->mu);
			pthread_join(w->writer, NULL);
			w->stop = 0;
			w->nthreads = 0;
		}
	}
	if (!w->running)
		w->nbuf = 1; /* serial: the buffers past the first stay unused */
	*out = w;
	return VDB_OK;
fail:
	seg_writer_abort(w);
	return rc;
}

int
seg_writer_begin(struct store *st, const struct schema *sc, int64_t partition_id,
                 struct seg_writer **out, struct vdb_err *e)
{
	return writer_begin(st, sc, partition_id, 1, out, e);
}

int
seg_writer_begin_serial(struct store *st, const struct schema *sc, int64_t partition_id,
                        struct seg_writer **out, struct vdb_err *e)
{
	return writer_begin(st, sc, partition_id, 0, out, e);
}

void
seg_writer_abort(struct seg_writer *w)
{
	if (w == NULL)
		return;
	if (w->running)
		drain(w, NULL);
	if (w->dfd >= 0)
		close(w->dfd);
	if (w->stage.path)
		store_abort(w->st, &w->stage);
	EVP_MD_CTX_free(w->md);
	free(w->piece);
	for (int i = 0; i < NBUF; i++)
		free(w->b[i].p);
	free(w->cols);
	free(w);
}

int
seg_writer_add_vectors(struct seg_writer *w, const float *v, size_t n, struct vdb_err *e)
{
	w->rows += n;
	return emit(w, v, n * w->sc->dim * sizeof(float), e);
}

static int
end_block(struct seg_writer *w, struct seg_col *c, struct vdb_err *e)
{
	unsigned int len;
	int rc;

	c->stored = w->off - c->off;
	if ((rc = pad_block(w, e)) != VDB_OK)
		return rc;
	if (w->defer)
		return tree_finish(w, c->sha, e);
	EVP_DigestFinal_ex(w->md, c->sha, &len);
	return VDB_OK;
}

/* zstd_block: one compressed scalar column */
static int
zstd_block(struct seg_writer *w, const char *name, int type, const void *raw, size_t rawlen,
           struct vdb_err *e)
{
	size_t cap = ZSTD_compressBound(rawlen), n;
	void *z = malloc(cap ? cap : 1);
	struct seg_col *c;
	int rc;

	if (z == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory compressing %s", name);
	n = ZSTD_compress(z, cap, raw, rawlen, ZSTD_LEVEL);
	if (ZSTD_isError(n)) {
		free(z);
		return vdb_err_set(e, VDB_EINTERNAL, "zstd: %s", ZSTD_getErrorName(n));
	}
	if ((c = new_col(w, name, type, SE_ZSTD)) == NULL) {
		free(z);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	c->raw = rawlen;
	EVP_DigestInit_ex(w->md, EVP_sha256(), NULL);
	rc = emit(w, z, n, e);
	free(z);
	if (rc == VDB_OK)
		rc = end_block(w, &w->cols[w->ncols - 1], e);
	return rc;
}

static int
string_block(struct seg_writer *w, const char *name, const struct col *c, size_t n,
             struct vdb_err *e)
{
	size_t bytes = n ? c->soff[n] : 0, rawlen = (n + 1) * 8 + bytes;
	unsigned char *raw = malloc(rawlen);
	int rc;

	if (raw == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	if (n)
		memcpy(raw, c->soff, (n + 1) * 8);
	else
		memset(raw, 0, 8);
	if (bytes)
		memcpy(raw + (n + 1) * 8, c->sbuf, bytes);
	rc = zstd_block(w, name, SC_STRING, raw, rawlen, e);
	free(raw);
	return rc;
}

static size_t
footer_size(const struct seg_writer *w)
{
	size_t sz = 48;
	for (uint32_t i = 0; i < w->ncols; i++)
		sz += 64 + ((strlen(w->cols[i].name) + 7) & ~(size_t)7);
	return sz;
}

int
seg_writer_finish(struct seg_writer *w, const struct batch *rows, struct seg_info *info,
                  struct vdb_err *e)
{
	const struct schema *sc = w->sc;
	unsigned char hdr[SEG_HDR], hsha[32], fsha[32], trailer[SEG_TRAILER], *foot = NULL, *q;
	uint64_t min_ts = UINT64_MAX, max_ts = 0;
	int64_t min_id = INT64_MAX, max_id = INT64_MIN;
	size_t n = rows->n, flen;
	char key[65];
	int rc;

	if (n != w->rows) {
		rc = vdb_err_set(e, VDB_EINTERNAL, "segment has %llu vectors but %zu rows",
		                 (unsigned long long)w->rows, n);
		goto fail;
	}
	if ((rc = end_block(w, &w->cols[0], e)) != VDB_OK)
		goto fail;
	w->cols[0].raw = w->cols[0].stored;
	if ((rc = zstd_block(w, "_id", SC_INT64, rows->ids, n * 8, e)) != VDB_OK ||
	    (rc = zstd_block(w, "_ts", SC_INT64, rows->ts, n * 8, e)) != VDB_OK)
		goto fail;
	for (uint32_t i = 0; i < sc->nfields; i++) {
		const struct col *c = &rows->cols[i];
		const char *name = sc->fields[i].name;
		switch (c->type) {
		case FT_INT64:
			rc = zstd_block(w, name, SC_INT64, c->i64, n * 8, e);
			break;
		case FT_DOUBLE:
			rc = zstd_block(w, name, SC_DOUBLE, c->f64, n * 8, e);
			break;
		case FT_BOOL:
			rc = zstd_block(w, name, SC_BOOL, c->b, n, e);
			break;
		case FT_STRING:
			rc = string_block(w, name, c, n, e);
			break;
		}
		if (rc != VDB_OK)
			goto fail;
	}
	if ((rc = drain(w, e)) != VDB_OK)
		goto fail;
	for (size_t r = 0; r < n; r++) {
		if (rows->ids[r] < min_id)
			min_id = rows->ids[r];
		if (rows->ids[r] > max_id)
			max_id = rows->ids[r];
		if (rows->ts[r] < min_ts)
			min_ts = rows->ts[r];
		if (rows->ts[r] > max_ts)
			max_ts = rows->ts[r];
	}
	if (n == 0)
		min_id = max_id = 0, min_ts = max_ts = 0;

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, hdr_magic, 8);
	put_u32(hdr + 8, 1);
	put_u32(hdr + 12, SEG_HDR);
	put_u64(hdr + 16, (uint64_t)sc->id);
	put_u64(hdr + 24, (uint64_t)w->pid);
	put_u64(hdr + 32, n);
	put_u32(hdr + 40, sc->dim);
	put_u32(hdr + 44, (uint32_t)sc->metric);
	put_u64(hdr + 48, min_ts);
	put_u64(hdr + 56, max_ts);
	sha256(hdr, SEG_HDR, hsha);
	if ((rc = file_pwrite_all(w->stage.fd, hdr, SEG_HDR, 0, w->stage.path, e)) != VDB_OK)
		goto fail;

	flen = footer_size(w);
	foot = calloc(1, flen);
	if (foot == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto fail;
	}
	memcpy(foot, foot_magic, 8);
	put_u32(foot + 8, w->ncols);
	memcpy(foot + 16, hsha, 32);
	q = foot + 48;
	for (uint32_t i = 0; i < w->ncols; i++) {
		const struct seg_col *c = &w->cols[i];
		size_t nl = strlen(c->name);
		put_u16(q, (uint16_t)nl);
		q[2] = (unsigned char)c->type;
		q[3] = (unsigned char)c->enc;
		put_u64(q + 8, c->off);
		put_u64(q + 16, c->stored);
		put_u64(q + 24, c->raw);
		memcpy(q + 32, c->sha, 32);
		memcpy(q + 64, c->name, nl);
		q += 64 + ((nl + 7) & ~(size_t)7);
	}
	sha256(foot, flen, fsha);
	put_u64(trailer, w->off);
	put_u64(trailer + 8, flen);
	memcpy(trailer + 16, fsha, 32);
	memcpy(trailer + 48, end_magic, 8);
	if ((rc = file_pwrite_all(w->stage.fd, foot, flen, (off_t)w->off, w->stage.path, e)) !=
	            VDB_OK ||
	    (rc = file_pwrite_all(w->stage.fd, trailer, SEG_TRAILER, (off_t)(w->off + flen),
	                          w->stage.path, e)) != VDB_OK)
		goto fail;
	sha256_hex(fsha, key);
	if ((rc = store_commit(w->st, &w->stage, key, e)) != VDB_OK)
		goto fail;
	memset(info, 0, sizeof(*info));
	info->collection_id = sc->id;
	info->partition_id = w->pid;
	memcpy(info->object, key, 65);
	info->rows = n;
	info->bytes = w->off + flen + SEG_TRAILER;
	info->min_id = min_id;
	info->max_id = max_id;
	info->min_ts = min_ts;
	info->max_ts = max_ts;
	free(foot);
	seg_writer_abort(w); /* stage already published: frees only */
	return VDB_OK;
fail:
	free(foot);
	seg_writer_abort(w);
	return rc;
}

int
seg_write(struct store *st, const struct batch *b, struct seg_info *info, struct vdb_err *e)
{
	struct seg_writer *w;
	int rc;

	if ((rc = seg_writer_begin(st, b->sc, b->partition_id, &w, e)) != VDB_OK)
		return rc;
	if ((rc = seg_writer_add_vectors(w, b->vec, b->n, e)) != VDB_OK) {
		seg_writer_abort(w);
		return rc;
	}
	return seg_writer_finish(w, b, info, e);
}

/* ---- reading ---- */

static int
corrupt(struct vdb_err *e, const char *what)
{
	return vdb_err_set(e, VDB_ECORRUPT, "%s", what);
}

static int
parse(struct segment *s, struct vdb_err *e)
{
	const unsigned char *m = s->map, *t, *q, *end;
	uint64_t foff, flen, prev_end = SEG_HDR;
	unsigned char sha[32];

	if (s->size < SEG_HDR + SEG_TRAILER)
		return corrupt(e, "too short to be a segment");
	t = m + s->size - SEG_TRAILER;
	if (memcmp(t + 48, end_magic, 8) != 0)
		return corrupt(e, "bad trailer magic");
	foff = get_u64(t);
	flen = get_u64(t + 8);
	if (foff < SEG_HDR || flen < 48 || foff > s->size || flen > s->size - foff ||
	    foff + flen != s->size - SEG_TRAILER)
		return corrupt(e, "trailer points outside the object");
	s->footer = m + foff;
	s->footer_len = flen;
	sha256(s->footer, flen, sha);
	if (memcmp(sha, t + 16, 32) != 0)
		return corrupt(e, "footer checksum mismatch");
	if (memcmp(s->footer, foot_magic, 8) != 0)
		return corrupt(e, "bad footer magic");
	if (memcmp(m, hdr_magic, 8) != 0)
		return corrupt(e, "bad header magic");
	if (get_u32(m + 8) != 1 || get_u32(m + 12) != SEG_HDR)
		return corrupt(e, "unknown segment version");
	s->cid = get_u64(m + 16);
	s->pid = get_u64(m + 24);
	s->rows = get_u64(m + 32);
	s->dim = get_u32(m + 40);
	s->metric = (int)get_u32(m + 44);
	s->min_ts = get_u64(m + 48);
	s->max_ts = get_u64(m + 56);
	if (s->dim == 0 || s->dim > VDB_MAX_DIM)
		return corrupt(e, "bad dimension in header");
	s->ncols = get_u32(s->footer + 8);
	if (s->ncols < 3 || s->ncols > VDB_MAX_FIELDS + 3)
		return corrupt(e, "bad column count");
	s->cols = calloc(s->ncols, sizeof(*s->cols));
	if (s->cols == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	q = s->footer + 48;
	end = s->footer + flen;
	for (uint32_t i = 0; i < s->ncols; i++) {
		struct seg_col *c = &s->cols[i];
		size_t nl;
		if ((size_t)(end - q) < 64)
			return corrupt(e, "footer truncated");
		nl = get_u16(q);
		if (nl == 0 || nl > VDB_MAX_NAME || (size_t)(end - q) < 64 + ((nl + 7) & ~7u))
			return corrupt(e, "bad column name length");
		c->type = q[2];
		c->enc = q[3];
		c->off = get_u64(q + 8);
		c->stored = get_u64(q + 16);
		c->raw = get_u64(q + 24);
		memcpy(c->sha, q + 32, 32);
		memcpy(c->name, q + 64, nl);
		c->name[nl] = '\0';
		q += 64 + ((nl + 7) & ~(size_t)7);
		/* blocks tile the file: each starts where the last one's
		 * padding ends, so every byte belongs to a hashed extent */
		if (c->off != prev_end || c->stored > foff - c->off || c->type > SC_STRING ||
		    c->enc > SE_ZSTD)
			return corrupt(e, "column block out of place");
		prev_end = c->off + ((c->stored + SEG_ALIGN - 1) & ~(uint64_t)(SEG_ALIGN - 1));
		if (prev_end > foff)
			return corrupt(e, "column block overlaps the footer");
	}
	if (q != end || prev_end != foff)
		return corrupt(e, "footer and blocks do not tile the object");
	if (strcmp(s->cols[0].name, "_vector") || s->cols[0].type != SC_VECTOR ||
	    s->cols[0].enc != SE_RAW || s->cols[0].stored / 4 / s->dim != s->rows ||
	    s->cols[0].stored != s->rows * s->dim * 4)
		return corrupt(e, "vector block does not match the header");
	if (strcmp(s->cols[1].name, "_id") || strcmp(s->cols[2].name, "_ts") ||
	    s->cols[1].type != SC_INT64 || s->cols[2].type != SC_INT64)
		return corrupt(e, "missing _id or _ts column");
	s->vectors = (const float *)(const void *)(m + s->cols[0].off);
	return VDB_OK;
}

int
seg_open(const char *path, struct segment *s, struct vdb_err *e)
{
	const void *map;
	size_t size;
	int rc;

	memset(s, 0, sizeof(*s));
	if ((rc = file_map(path, SEG_HDR + SEG_TRAILER, "a segment", &map, &size, e)) != VDB_OK)
		return rc;
	s->map = map;
	s->size = size;
	if ((rc = parse(s, e)) != VDB_OK) {
		vdb_err_prefix(e, "%s: ", path);
		seg_close(s);
	}
	return rc;
}

int
seg_open_mem(const void *buf, size_t len, struct segment *s, struct vdb_err *e)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->map = buf;
	s->size = len;
	if ((rc = parse(s, e)) != VDB_OK) {
		free(s->cols);
		s->cols = NULL;
	}
	s->size = 0; /* not ours to unmap */
	return rc;
}

void
seg_close(struct segment *s)
{
	if (s->size)
		munmap((void *)s->map, s->size);
	free(s->cols);
	memset(s, 0, sizeof(*s));
}

/* tree_sha: SHA-256 over the SHA-256 of each piece of map[off, off+len),
 * pieces split at file offsets that are multiples of SEG_PIECE */
static void
tree_sha(const unsigned char *map, uint64_t off, uint64_t len, unsigned char out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[32];
	unsigned int dl;

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while (len > 0) {
		uint64_t k = SEG_PIECE - off % SEG_PIECE;
		if (k > len)
			k = len;
		sha256(map + off, k, d);
		EVP_DigestUpdate(md, d, 32);
		off += k;
		len -= k;
	}
	EVP_DigestFinal_ex(md, out, &dl);
	EVP_MD_CTX_free(md);
}

int
seg_verify_block(const struct segment *s, uint32_t i, struct vdb_err *e)
{
	const struct seg_col *c = &s->cols[i];
	uint64_t ext = (c->stored + SEG_ALIGN - 1) & ~(uint64_t)(SEG_ALIGN - 1);
	unsigned char sha[32];

	if (c->type == SC_VECTOR)
		tree_sha(s->map, c->off, ext, sha);
	else
		sha256(s->map + c->off, ext, sha);
	if (memcmp(sha, c->sha, 32) != 0)
		return vdb_err_set(e, VDB_ECORRUPT, "block '%s' at offset %llu: checksum mismatch",
		                   c->name, (unsigned long long)c->off);
	return VDB_OK;
}

int
seg_verify_meta(const struct segment *s, const char *key, struct vdb_err *e)
{
	unsigned char sha[32];
	char hex[65];

	sha256(s->map, SEG_HDR, sha);
	if (memcmp(sha, s->footer + 16, 32) != 0)
		return corrupt(e, "header checksum mismatch");
	sha256(s->footer, s->footer_len, sha);
	sha256_hex(sha, hex);
	if (key && strcmp(hex, key) != 0)
		return vdb_err_set(e, VDB_ECORRUPT,
		                   "content address mismatch (footer hashes to %s)", hex);
	return VDB_OK;
}

int
seg_verify(const struct segment *s, const char *key, struct vdb_err *e)
{
	int rc = seg_verify_meta(s, key, e);

	for (uint32_t i = 0; i < s->ncols && rc == VDB_OK; i++)
		rc = seg_verify_block(s, i, e);
	return rc;
}

/* column_into: column c decoded into want bytes at p */
static int
column_into(const struct segment *s, const struct seg_col *c, size_t want, void *p,
            struct vdb_err *e)
{
	size_t n;

	if (c->raw != want || (c->enc == SE_RAW && c->stored != want))
		return vdb_err_set(e, VDB_ECORRUPT, "column '%s': %llu bytes, want %zu", c->name,
		                   (unsigned long long)c->raw, want);
	if (c->enc == SE_RAW) {
		if (want)
			memcpy(p, s->map + c->off, want);
		return VDB_OK;
	}
	n = ZSTD_decompress(p, want, s->map + c->off, c->stored);
	if (ZSTD_isError(n) || n != want)
		return vdb_err_set(e, VDB_ECORRUPT, "column '%s': zstd: %s", c->name,
		                   ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short");
	return VDB_OK;
}

static int
column(const struct segment *s, const struct seg_col *c, size_t want, void **out, struct vdb_err *e)
{
	void *p = malloc(want ? want : 1);
	int rc;

	if (p == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	if ((rc = column_into(s, c, want, p, e)) != VDB_OK) {
		free(p);
		return rc;
	}
	*out = p;
	return VDB_OK;
}

/* seg_ctype_of: the column type a schema field type is stored as */
static int
seg_ctype_of(int ftype)
{
	switch (ftype) {
	case FT_INT64:
		return SC_INT64;
	case FT_DOUBLE:
		return SC_DOUBLE;
	case FT_BOOL:
		return SC_BOOL;
	default:
		return SC_STRING;
	}
}

int
seg_load(const struct segment *s, struct batch *b, struct vdb_err *e)
{
	const struct schema *sc = b->sc;
	size_t n = s->rows, base = b->n;
	void *v = NULL;
	int rc;

	if (s->dim != sc->dim || s->ncols != sc->nfields + 3)
		return vdb_err_set(e, VDB_ECORRUPT, "segment shape does not match the collection");
	if (n > SIZE_MAX / 8 / (s->dim + 2))
		return vdb_err_set(e, VDB_ECORRUPT, "segment row count %zu too large", n);
	if ((rc = batch_reserve(b, n, e)) != VDB_OK)
		return rc;
	/* straight into the batch: a 1M-row segment's ids and timestamps
	 * are 16 MB, and a copy of them cost a one-shot query as much as
	 * decoding them */
	if ((rc = column_into(s, &s->cols[1], n * 8, b->ids + base, e)) != VDB_OK ||
	    (rc = column_into(s, &s->cols[2], n * 8, b->ts + base, e)) != VDB_OK)
		goto out;
	if (!b->novec)
		memcpy(b->vec + base * sc->dim, s->vectors, n * sc->dim * 4);
	b->partition_id = (int64_t)s->pid;
	for (uint32_t i = 0; i < sc->nfields; i++) {
		const struct seg_col *c = &s->cols[i + 3];
		struct col *bc = &b->cols[i];
		if (strcmp(c->name, sc->fields[i].name) != 0 || c->type != seg_ctype_of(bc->type)) {
			rc = vdb_err_set(e, VDB_ECORRUPT, "column '%s' where '%s' belongs", c->name,
			                 sc->fields[i].name);
			goto out;
		}
		free(v);
		v = NULL;
		switch (bc->type) {
		case FT_INT64:
		case FT_DOUBLE:
			if ((rc = column_into(s, c, n * 8,
			                      bc->type == FT_INT64 ? (void *)(bc->i64 + base)
			                                           : (void *)(bc->f64 + base),
			                      e)) != VDB_OK)
				goto out;
			break;
		case FT_BOOL:
			if ((rc = column_into(s, c, n, bc->b + base, e)) != VDB_OK)
				goto out;
			break;
		case FT_STRING: {
			const uint64_t *off;
			/* bounded by the schema: a hostile footer cannot make us
			 * allocate what no valid segment could hold */
			if (c->raw < (n + 1) * 8 ||
			    c->raw > (n + 1) * 8 + n * (uint64_t)sc->fields[i].max_len) {
				rc = vdb_err_set(e, VDB_ECORRUPT,
				                 "string column '%s' of %llu bytes", c->name,
				                 (unsigned long long)c->raw);
				goto out;
			}
			if ((rc = column(s, c, c->raw, &v, e)) != VDB_OK)
				goto out;
			off = v;
			for (size_t r = 0; r < n; r++) {
				const char *str = (const char *)v + (n + 1) * 8 + off[r];
				if (off[r] > off[r + 1] || off[r + 1] > c->raw - (n + 1) * 8) {
					rc = vdb_err_set(e, VDB_ECORRUPT, "string offsets");
					goto out;
				}
				rc = batch_put_string(b, i, base + r, str, off[r + 1] - off[r], e);
				if (rc != VDB_OK)
					goto out;
			}
			break;
		}
		}
	}
	b->n = base + n;
out:
	free(v);
	return rc;
}
