/* log.c: the append log.  Spec: formats/log.md. */
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "crc32c.h"
#include "file.h"

static const char file_magic[8] = {'V', 'D', 'B', 'L', 'O', 'G', '0', '1'};
static const unsigned char frame_magic[4] = {'V', 'D', 'B', 'F'};

static const char *
kind_prefix(int kind)
{
	return kind == LOG_KIND_INSERT ? "ins" : "del";
}

char *
log_file_path(const char *dir, int kind, uint32_t seq)
{
	return path_fmt("%s/%s-%010u.log", dir, kind_prefix(kind), seq);
}

int
log_init(struct logstream *ls, const char *root, int64_t cid, int kind, struct vdb_err *e)
{
	char *logdir;
	int rc;

	memset(ls, 0, sizeof(*ls));
	ls->lockfd = ls->fd = -1;
	ls->kind = kind;
	ls->cid = cid;
	logdir = path_join(root, "log");
	ls->dir = path_fmt("%s/log/%lld", root, (long long)cid);
	if (logdir == NULL || ls->dir == NULL) {
		free(logdir);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	rc = file_mkdir(logdir, e);
	if (rc == VDB_OK && access(ls->dir, F_OK) != 0) {
		/* the new directory's entry is durable before the first ack */
		if ((rc = file_mkdir(ls->dir, e)) == VDB_OK)
			rc = file_sync_dir(logdir, e);
	}
	free(logdir);
	return rc;
}

void
log_close(struct logstream *ls)
{
	log_unlock(ls);
	if (ls->fd >= 0)
		close(ls->fd);
	free(ls->path);
	free(ls->dir);
	memset(ls, 0, sizeof(*ls));
	ls->fd = ls->lockfd = -1;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int
log_list(const char *dir, int kind, uint32_t **seqs, size_t *n, struct vdb_err *e)
{
	const char *pre = kind_prefix(kind);
	uint32_t *v = NULL;
	size_t len = 0, cap = 0;
	struct dirent *d;
	DIR *dp;

	dp = opendir(dir);
	if (dp == NULL) {
		if (errno == ENOENT) {
			*seqs = NULL;
			*n = 0;
			return VDB_OK;
		}
		return vdb_err_errno(e, VDB_ETEMP, "%s: opendir", dir);
	}
	while ((d = readdir(dp)) != NULL) {
		unsigned seq;
		char tail[8];
		if (strncmp(d->d_name, pre, 3) != 0 || strlen(d->d_name) != 18 ||
		    sscanf(d->d_name + 3, "-%10u.%3s", &seq, tail) != 2 || strcmp(tail, "log") != 0)
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : 8;
			uint32_t *nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				closedir(dp);
				return vdb_err_set(e, VDB_ETEMP, "out of memory");
			}
			v = nv;
		}
		v[len++] = seq;
	}
	closedir(dp);
	if (len)
		qsort(v, len, sizeof(*v), cmp_u32);
	*seqs = v;
	*n = len;
	return VDB_OK;
}

static void
file_header(unsigned char h[LOG_FILE_HDR], int kind, int64_t cid, uint32_t seq)
{
	memcpy(h, file_magic, 8);
	put_u32(h + 8, 1);
	put_u32(h + 12, (uint32_t)kind);
	put_u64(h + 16, (uint64_t)cid);
	put_u32(h + 24, seq);
	put_u32(h + 28, crc32c(0, h, 28));
}

/* create_file: header written under a temporary name, synced, renamed, so
 * a log file never exists without its whole header */
static int
create_file(struct logstream *ls, uint32_t seq, struct vdb_err *e)
{
	unsigned char h[LOG_FILE_HDR];
	char *tmp = NULL, *path = NULL;
	int fd = -1, rc;

	tmp = path_fmt("%s/%s-%010u.tmp", ls->dir, kind_prefix(ls->kind), seq);
	path = log_file_path(ls->dir, ls->kind, seq);
	if (tmp == NULL || path == NULL) {
		rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
		goto fail;
	}
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: create", tmp);
		goto fail;
	}
	file_header(h, ls->kind, ls->cid, seq);
	if ((rc = file_write_all(fd, h, sizeof(h), tmp, e)) != VDB_OK ||
	    (rc = file_sync(fd, tmp, e)) != VDB_OK)
		goto fail;
	if (rename(tmp, path) != 0) {
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: rename", path);
		goto fail;
	}
	if ((rc = file_sync_dir(ls->dir, e)) != VDB_OK)
		goto fail;
	if (ls->fd >= 0)
		close(ls->fd);
	free(ls->path);
	ls->fd = fd;
	ls->path = path;
	ls->seq = seq;
	ls->end = LOG_FILE_HDR;
	ls->rows = 0;
	free(tmp);
	return VDB_OK;
fail:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(tmp);
	free(path);
	return rc;
}

int
log_lock(struct logstream *ls, uint32_t sealed_seq, struct vdb_err *e)
{
	uint32_t *seqs = NULL, active = 0;
	size_t n = 0;
	struct stat st;
	struct log_scan res;
	char *lockpath;
	int rc;

	ls->notice[0] = '\0';
	lockpath = path_join(ls->dir, ls->kind == LOG_KIND_INSERT ? "append.lock" : "delete.lock");
	if (lockpath == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	rc = file_lock(lockpath, 0, &ls->lockfd, e);
	free(lockpath);
	if (rc != VDB_OK)
		return rc;
	if ((rc = log_list(ls->dir, ls->kind, &seqs, &n, e)) != VDB_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (seqs[i] <= sealed_seq) {
			/* sealed into a segment before a crash cut the cleanup short */
			char *p = log_file_path(ls->dir, ls->kind, seqs[i]);
			if (p)
				unlink(p);
			free(p);
		} else {
			active = seqs[i];
		}
	}
	free(seqs);
	if (active == 0) {
		uint32_t next = sealed_seq + 1;
		if (ls->seq >= next)
			next = ls->seq + 1; /* never reuse a number */
		rc = create_file(ls, next, e);
		goto out;
	}
	if (active != ls->seq || ls->fd < 0) {
		if (ls->fd >= 0)
			close(ls->fd);
		free(ls->path);
		ls->path = log_file_path(ls->dir, ls->kind, active);
		if (ls->path == NULL) {
			ls->fd = -1;
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			goto fail;
		}
		ls->fd = open(ls->path, O_RDWR | O_CLOEXEC);
		if (ls->fd < 0) {
			rc = vdb_err_errno(e, VDB_ETEMP, "%s: open", ls->path);
			goto fail;
		}
		ls->seq = active;
		ls->end = 0;
		ls->rows = 0;
		/* made by another process, which may have died before its
		 * directory fsync: ours must not ack into a file that a power
		 * loss could unname */
		if ((rc = file_sync_dir(ls->dir, e)) != VDB_OK)
			goto fail;
	}
	if (fstat(ls->fd, &st) != 0) {
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: stat", ls->path);
		goto fail;
	}
	if ((uint64_t)st.st_size != ls->end) {
		/* someone else appended (or crashed appending) since we looked */
		rc = log_scan_fd(ls->fd, ls->path, ls->kind, ls->cid, ls->end, NULL, NULL, &res, e);
		if (rc != VDB_OK)
			goto fail;
		ls->rows += res.rows;
		ls->end = res.valid_end;
		if (res.torn) {
			if (ftruncate(ls->fd, (off_t)res.valid_end) != 0) {
				rc = vdb_err_errno(e, VDB_ETEMP, "%s: truncate", ls->path);
				goto fail;
			}
			if ((rc = file_sync(ls->fd, ls->path, e)) != VDB_OK)
				goto fail;
			snprintf(ls->notice, sizeof(ls->notice),
			         "%s: truncated a torn tail of %llu bytes at offset %llu "
			         "(an append that was never acknowledged)",
			         ls->path, (unsigned long long)res.torn_bytes,
			         (unsigned long long)res.valid_end);
		}
	}
out:
	if (rc == VDB_OK)
		return VDB_OK;
fail:
	log_unlock(ls);
	return rc;
}

void
log_unlock(struct logstream *ls)
{
	file_unlock(ls->lockfd);
	ls->lockfd = -1;
}

int
log_append(struct logstream *ls, const void *payload, size_t len, uint32_t rows, struct vdb_err *e)
{
	unsigned char h[LOG_FRAME_HDR];
	int rc;

	if (len > LOG_MAX_PAYLOAD)
		return vdb_err_set(e, VDB_EINTERNAL, "frame of %zu bytes exceeds the limit", len);
	memcpy(h, frame_magic, 4);
	put_u32(h + 4, (uint32_t)len);
	put_u32(h + 8, crc32c(0, payload, len));
	put_u32(h + 12, crc32c(0, h, 12));
	if ((rc = file_pwrite_all(ls->fd, h, sizeof(h), (off_t)ls->end, ls->path, e)) != VDB_OK ||
	    (rc = file_pwrite_all(ls->fd, payload, len, (off_t)(ls->end + sizeof(h)), ls->path,
	                          e)) != VDB_OK)
		goto undo;
	if (fdatasync(ls->fd) != 0) {
		rc = vdb_err_errno(e, VDB_ETEMP, "%s: fdatasync", ls->path);
		goto undo;
	}
	ls->end += sizeof(h) + len;
	ls->rows += rows;
	return VDB_OK;
undo:
	/* leave no half frame behind a failed (unacknowledged) append */
	if (ftruncate(ls->fd, (off_t)ls->end) == 0)
		fdatasync(ls->fd);
	return rc;
}

int
log_rotate(struct logstream *ls, struct vdb_err *e)
{
	if (ls->end <= LOG_FILE_HDR)
		return VDB_OK;
	return create_file(ls, ls->seq + 1, e);
}

/* frame_at: is there a whole, good frame at buf[0..len)? its size or 0 */
static size_t
frame_at(const unsigned char *buf, size_t len)
{
	uint32_t plen;

	if (len < LOG_FRAME_HDR || memcmp(buf, frame_magic, 4) != 0 ||
	    get_u32(buf + 12) != crc32c(0, buf, 12))
		return 0;
	plen = get_u32(buf + 4);
	if (plen > LOG_MAX_PAYLOAD || plen > len - LOG_FRAME_HDR ||
	    get_u32(buf + 8) != crc32c(0, buf + LOG_FRAME_HDR, plen))
		return 0;
	return LOG_FRAME_HDR + plen;
}

/* classify_defect: a bad frame at off.  A torn append leaves at most one
 * frame's worth of bytes and no good frame after it; anything else is
 * damage to acknowledged data and must not be truncated away. */
static int
classify_defect(int fd, const char *path, uint64_t off, uint64_t size, struct log_scan *res,
                struct vdb_err *e)
{
	uint64_t rest = size - off;
	unsigned char *buf;
	int rc;

	if (rest > (uint64_t)LOG_FRAME_HDR + LOG_MAX_PAYLOAD)
		return vdb_err_set(e, VDB_ECORRUPT,
		                   "%s: bad frame at offset %llu with %llu bytes after it", path,
		                   (unsigned long long)off, (unsigned long long)rest);
	buf = malloc(rest ? rest : 1);
	if (buf == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	if ((rc = file_pread_all(fd, buf, rest, (off_t)off, path, e)) != VDB_OK)
		goto out;
	/* An intact header tells its frame's length, and what lies inside the
	 * payload is the writer's data (ids and vectors can spell a frame), so
	 * the search for a good frame after the damage starts past it; a
	 * frame reaching to the end of the file is simply torn. */
	uint64_t from = 1;
	if (rest >= LOG_FRAME_HDR && memcmp(buf, frame_magic, 4) == 0 &&
	    get_u32(buf + 12) == crc32c(0, buf, 12) && get_u32(buf + 4) <= LOG_MAX_PAYLOAD)
		from = LOG_FRAME_HDR + (uint64_t)get_u32(buf + 4);
	for (uint64_t p = from; p + LOG_FRAME_HDR <= rest; p++) {
		if (buf[p] == 'V' && frame_at(buf + p, rest - p)) {
			rc = vdb_err_set(e, VDB_ECORRUPT,
			                 "%s: bad frame at offset %llu followed by a good one at "
			                 "%llu",
			                 path, (unsigned long long)off,
			                 (unsigned long long)(off + p));
			goto out;
		}
	}
	res->torn = 1;
	res->torn_bytes = rest;
out:
	free(buf);
	return rc;
}

int
log_scan_fd(int fd, const char *path, int kind, int64_t cid, uint64_t from, log_frame_fn fn,
            void *arg, struct log_scan *res, struct vdb_err *e)
{
	unsigned char h[LOG_FILE_HDR], *buf = NULL;
	size_t cap = 0;
	struct stat st;
	uint64_t off, size;
	int rc = VDB_OK;

	memset(res, 0, sizeof(*res));
	if (fstat(fd, &st) != 0)
		return vdb_err_errno(e, VDB_ETEMP, "%s: stat", path);
	size = (uint64_t)st.st_size;
	if (from == 0) {
		if (size < LOG_FILE_HDR)
			return vdb_err_set(e, VDB_ECORRUPT, "%s: file header truncated", path);
		if ((rc = file_pread_all(fd, h, LOG_FILE_HDR, 0, path, e)) != VDB_OK)
			return rc;
		if (memcmp(h, file_magic, 8) != 0 || get_u32(h + 28) != crc32c(0, h, 28))
			return vdb_err_set(e, VDB_ECORRUPT, "%s: bad file header", path);
		if (get_u32(h + 8) != 1)
			return vdb_err_set(e, VDB_ECORRUPT, "%s: log version %u unknown", path,
			                   get_u32(h + 8));
		if (get_u32(h + 12) != (uint32_t)kind || get_u64(h + 16) != (uint64_t)cid)
			return vdb_err_set(e, VDB_ECORRUPT,
			                   "%s: header names kind %u, collection %llu", path,
			                   get_u32(h + 12), (unsigned long long)get_u64(h + 16));
		from = LOG_FILE_HDR;
	}
	off = from;
	while (off < size) {
		unsigned char fh[LOG_FRAME_HDR];
		uint32_t plen, rows;
		uint64_t ts;
		int pk;

		if (size - off < LOG_FRAME_HDR)
			goto defect;
		if ((rc = file_pread_all(fd, fh, LOG_FRAME_HDR, (off_t)off, path, e)) != VDB_OK)
			goto shrunk;
		plen = get_u32(fh + 4);
		if (memcmp(fh, frame_magic, 4) != 0 || get_u32(fh + 12) != crc32c(0, fh, 12) ||
		    plen > LOG_MAX_PAYLOAD || plen > size - off - LOG_FRAME_HDR)
			goto defect;
		if (plen > cap) {
			unsigned char *nb = realloc(buf, plen);
			if (nb == NULL) {
				rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
				goto out;
			}
			buf = nb;
			cap = plen;
		}
		if ((rc = file_pread_all(fd, buf, plen, (off_t)(off + LOG_FRAME_HDR), path, e)) !=
		    VDB_OK)
			goto shrunk;
		if (get_u32(fh + 8) != crc32c(0, buf, plen))
			goto defect;
		if (payload_peek(buf, plen, &pk, &rows, &ts) != 0 ||
		    pk != (kind == LOG_KIND_INSERT ? PAYLOAD_INSERT : PAYLOAD_DELETE)) {
			rc = vdb_err_set(e, VDB_ECORRUPT, "%s: frame at offset %llu: bad payload",
			                 path, (unsigned long long)off);
			goto out;
		}
		if (fn && (rc = fn(arg, buf, plen, off, e)) != VDB_OK)
			goto out;
		res->frames++;
		res->rows += rows;
		off += LOG_FRAME_HDR + plen;
		continue;
	defect:
		rc = classify_defect(fd, path, off, size, res, e);
		break;
	shrunk:
		/* a short read where the size said there were bytes: an appender
		 * truncated a torn tail under us; what was good is what we read */
		if (rc == VDB_ECORRUPT && fstat(fd, &st) == 0 && (uint64_t)st.st_size < size) {
			rc = VDB_OK;
			res->torn = 1;
		}
		break;
	}
	res->valid_end = off;
out:
	free(buf);
	return rc;
}
