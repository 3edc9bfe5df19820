/* log.c: unit tests for lib/log.c (the append log, formats/log.md). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "crc32c.h"
#include "file.h"
#include "log.h"
#include "unit.h"

#define CID 7

static char *root, *dir;
static struct schema sc;

static void
setup(void)
{
	root = unit_tmpdir();
	dir = unit_path(root, "log/7");
	memset(&sc, 0, sizeof(sc));
	sc.dim = 2;
}

static void
teardown(void)
{
	free(dir);
	unit_rmtree(root);
}

TestSuite(log, .init = setup, .fini = teardown);

/* payload: an insert payload of rows rows, ids from first */
static unsigned char *
payload(uint32_t rows, int64_t first, size_t *len)
{
	struct batch b;
	struct vdb_err e;
	unsigned char *p;

	batch_init(&b, &sc);
	cr_assert_eq(batch_reserve(&b, rows, &e), VDB_OK);
	for (uint32_t r = 0; r < rows; r++) {
		b.ids[r] = first + r;
		b.vec[2 * r] = (float)r;
		b.vec[2 * r + 1] = -(float)first;
	}
	b.n = rows;
	cr_assert_eq(batch_encode(&b, 1000 + (uint64_t)first, &p, len, &e), VDB_OK);
	batch_free(&b);
	return p;
}

static char *
seqpath(uint32_t seq)
{
	return log_file_path(dir, LOG_KIND_INSERT, seq);
}

/* open: log_init + log_lock */
static void
open_stream(struct logstream *ls, uint32_t sealed)
{
	struct vdb_err e;

	cr_assert_eq(log_init(ls, root, CID, LOG_KIND_INSERT, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(log_lock(ls, sealed, &e), VDB_OK, "%s", e.msg);
}

/* three frames of 1, 2 and 3 rows; ends[i] is the end of frame i */
static void
three_frames(struct logstream *ls, uint64_t ends[4])
{
	struct vdb_err e;

	ends[0] = LOG_FILE_HDR;
	for (uint32_t i = 0; i < 3; i++) {
		size_t len;
		unsigned char *p = payload(i + 1, 10 * (int64_t)i, &len);
		cr_assert_eq(log_append(ls, p, len, i + 1, &e), VDB_OK, "%s", e.msg);
		ends[i + 1] = ends[i] + LOG_FRAME_HDR + len;
		free(p);
	}
	cr_assert_eq(ls->end, ends[3]);
}

struct seen {
	int n;
	uint64_t off[16];
	size_t len[16];
	int64_t first_id[16];
};

static int
on_frame(void *arg, const unsigned char *p, size_t len, uint64_t off, struct vdb_err *e)
{
	struct seen *s = arg;
	struct batch b;
	int rc;

	batch_init(&b, &sc);
	rc = batch_decode(&b, p, len, e);
	if (rc == VDB_OK && s->n < 16) {
		s->off[s->n] = off;
		s->len[s->n] = len;
		s->first_id[s->n] = b.ids[0];
		s->n++;
	}
	batch_free(&b);
	return rc;
}

static int
scan_path(const char *path, struct log_scan *res, struct seen *s, struct vdb_err *e)
{
	int fd = open(path, O_RDONLY), rc;

	cr_assert(fd >= 0, "open %s", path);
	rc = log_scan_fd(fd, path, LOG_KIND_INSERT, CID, 0, s ? on_frame : NULL, s, res, e);
	close(fd);
	return rc;
}

static void
flip(const char *path, uint64_t off, unsigned char x)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &c, 1, (off_t)off), 1);
	c ^= x;
	cr_assert_eq(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

Test(log, lock_creates_first_file)
{
	struct logstream ls;
	char *p = seqpath(1);

	open_stream(&ls, 0);
	cr_assert_eq(ls.seq, 1u);
	cr_assert(strstr(p, "/ins-0000000001.log") != NULL, "%s", p);
	cr_assert(unit_exists(p), "%s missing", p);
	cr_assert_eq(unit_file_size(p), LOG_FILE_HDR);
	cr_assert_eq(ls.end, (uint64_t)LOG_FILE_HDR);
	cr_assert_eq(ls.notice[0], '\0');

	/* the header: magic, version, kind, collection, seq, crc */
	size_t len;
	unsigned char *h = unit_read_file(p, &len);
	cr_assert_eq(memcmp(h, "VDBLOG01", 8), 0);
	cr_assert_eq(get_u32(h + 8), 1u);
	cr_assert_eq(get_u32(h + 12), (uint32_t)LOG_KIND_INSERT);
	cr_assert_eq(get_u64(h + 16), (uint64_t)CID);
	cr_assert_eq(get_u32(h + 24), 1u);
	cr_assert_eq(get_u32(h + 28), crc32c(0, h, 28));
	free(h);

	uint32_t *seqs;
	size_t n;
	struct vdb_err e;
	cr_assert_eq(log_list(dir, LOG_KIND_INSERT, &seqs, &n, &e), VDB_OK);
	cr_assert_eq(n, 1u);
	cr_assert_eq(seqs[0], 1u);
	free(seqs);
	cr_assert_eq(log_list(dir, LOG_KIND_DELETE, &seqs, &n, &e), VDB_OK);
	cr_assert_eq(n, 0u);
	free(seqs);
	log_close(&ls);
	free(p);
}

Test(log, append_and_scan)
{
	struct logstream ls;
	struct log_scan res;
	struct seen s;
	struct vdb_err e;
	uint64_t ends[4];
	char *p = seqpath(1);

	open_stream(&ls, 0);
	three_frames(&ls, ends);
	cr_assert_eq(ls.rows, 6u);
	cr_assert_eq(unit_file_size(p), (long long)ends[3]);

	memset(&s, 0, sizeof(s));
	cr_assert_eq(scan_path(p, &res, &s, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(res.frames, 3u);
	cr_assert_eq(res.rows, 6u);
	cr_assert_eq(res.valid_end, ends[3]);
	cr_assert_eq(res.torn, 0);
	cr_assert_eq(s.n, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(s.off[i], ends[i], "frame %d at %llu", i,
		             (unsigned long long)s.off[i]);
		cr_assert_eq(s.first_id[i], 10 * i);
		cr_assert_eq(s.len[i], ends[i + 1] - ends[i] - LOG_FRAME_HDR);
	}

	/* scanning from a frame boundary sees the rest */
	int fd = open(p, O_RDONLY);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(log_scan_fd(fd, p, LOG_KIND_INSERT, CID, ends[1], on_frame, &s, &res, &e),
	             VDB_OK);
	cr_assert_eq(res.frames, 2u);
	cr_assert_eq(res.rows, 5u);
	cr_assert_eq(s.first_id[0], 10);
	/* the header names the stream: another kind or collection is refused */
	cr_assert_eq(log_scan_fd(fd, p, LOG_KIND_DELETE, CID, 0, NULL, NULL, &res, &e),
	             VDB_ECORRUPT);
	cr_assert_eq(log_scan_fd(fd, p, LOG_KIND_INSERT, CID + 1, 0, NULL, NULL, &res, &e),
	             VDB_ECORRUPT);
	close(fd);

	/* a second lock (another "process" after this one) picks up the rows */
	log_close(&ls);
	open_stream(&ls, 0);
	cr_assert_eq(ls.seq, 1u);
	cr_assert_eq(ls.end, ends[3]);
	cr_assert_eq(ls.rows, 6u);
	cr_assert_eq(ls.notice[0], '\0');
	log_close(&ls);
	free(p);
}

static int
fail_second(void *arg, const unsigned char *p, size_t len, uint64_t off, struct vdb_err *e)
{
	(void)p;
	(void)len;
	(void)off;
	if (++*(int *)arg == 2)
		return vdb_err_set(e, VDB_EINPUT, "stop here");
	return VDB_OK;
}

Test(log, scan_callback_error_stops)
{
	struct logstream ls;
	struct log_scan res;
	struct vdb_err e;
	uint64_t ends[4];
	char *p = seqpath(1);
	int calls = 0;

	open_stream(&ls, 0);
	three_frames(&ls, ends);
	log_close(&ls);
	int fd = open(p, O_RDONLY);
	cr_assert_eq(log_scan_fd(fd, p, LOG_KIND_INSERT, CID, 0, fail_second, &calls, &res, &e),
	             VDB_EINPUT);
	cr_assert_eq(calls, 2);
	cr_assert_str_eq(e.msg, "stop here");
	close(fd);
	free(p);
}

Test(log, torn_tail_truncated_by_lock)
{
	struct logstream ls;
	struct log_scan res;
	struct vdb_err e;
	uint64_t ends[4];
	char *p = seqpath(1);

	open_stream(&ls, 0);
	three_frames(&ls, ends);
	log_close(&ls);

	/* an append cut short in the middle of the last frame's payload */
	cr_assert_eq(truncate(p, (off_t)ends[3] - 5), 0);
	open_stream(&ls, 0);
	cr_assert_neq(ls.notice[0], '\0', "no notice of the truncation");
	cr_assert(strstr(ls.notice, "torn") != NULL, "%s", ls.notice);
	cr_assert_eq(ls.end, ends[2]);
	cr_assert_eq(ls.rows, 3u);
	cr_assert_eq(unit_file_size(p), (long long)ends[2], "torn tail not truncated");

	/* the stream goes on where the last good frame ended */
	size_t len;
	unsigned char *pl = payload(4, 100, &len);
	cr_assert_eq(log_append(&ls, pl, len, 4, &e), VDB_OK);
	free(pl);
	log_close(&ls);
	cr_assert_eq(scan_path(p, &res, NULL, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(res.frames, 3u);
	cr_assert_eq(res.rows, 7u);
	cr_assert_eq(res.torn, 0);
	free(p);
}

/* every cut point: the scan ends at the last whole frame before it and
 * calls the rest a torn tail, never corruption */
Test(log, every_cut_is_torn)
{
	struct logstream ls;
	struct log_scan res;
	struct vdb_err e;
	uint64_t ends[4];
	char *p = seqpath(1), *q = unit_path(root, "cut.log");
	size_t len;
	unsigned char *data;

	open_stream(&ls, 0);
	three_frames(&ls, ends);
	log_close(&ls);
	data = unit_read_file(p, &len);
	for (uint64_t cut = LOG_FILE_HDR; cut < ends[3]; cut++) {
		int k = cut >= ends[2] ? 2 : cut >= ends[1] ? 1 : 0;
		unit_write_file(q, data, cut);
		memset(&e, 0, sizeof(e));
		cr_assert_eq(scan_path(q, &res, NULL, &e), VDB_OK, "cut at %llu: %s",
		             (unsigned long long)cut, e.msg);
		cr_assert_eq(res.valid_end, ends[k], "cut at %llu", (unsigned long long)cut);
		cr_assert_eq(res.frames, (uint64_t)k);
		cr_assert_eq(res.torn, cut != ends[k], "cut at %llu", (unsigned long long)cut);
		cr_assert_eq(res.torn_bytes, cut - ends[k]);
	}
	/* a file cut inside its header is damaged, not torn */
	for (uint64_t cut = 0; cut < LOG_FILE_HDR; cut++) {
		unit_write_file(q, data, cut);
		cr_assert_eq(scan_path(q, &res, NULL, &e), VDB_ECORRUPT, "cut at %llu",
		             (unsigned long long)cut);
	}
	free(data);
	free(q);
	free(p);
}

Test(log, garbage_zeros_at_end_are_torn)
{
	struct logstream ls;
	struct log_scan res;
	struct vdb_err e;
	uint64_t ends[4];
	char *p = seqpath(1);
	static const unsigned char zeros[100];

	open_stream(&ls, 0);
	three_frames(&ls, ends);
	log_close(&ls);
	/* zeros a crash can leave after a size update without the data */
	const size_t amounts[] = {1, 15, 16, 17, 100};
	for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		cr_assert_eq(truncate(p, (off_t)ends[3]), 0);
		int fd = open(p, O_WRONLY | O_APPEND);
		cr_assert_eq(write(fd, zeros, amounts[i]), (ssize_t)amounts[i]);
		close(fd);
		cr_assert_eq(scan_path(p, &res, NULL, &e), VDB_OK, "%s", e.msg);
		cr_assert_eq(res.torn, 1);
		cr_assert_eq(res.torn_bytes, amounts[i]);
		cr_assert_eq(res.valid_end, ends[3]);
		cr_assert_eq(res.frames, 3u);
	}
	open_stream(&ls, 0);
	cr_assert(strstr(ls.notice, "torn") != NULL, "%s", ls.notice);
	cr_assert_eq(unit_file_size(p), (long long)ends[3]);
	cr_assert_eq(ls.rows, 6u);
	log_close(&ls);
	free(p);
}

/* a damaged frame with a good one after it is acknowledged data gone bad:
 * VDB_ECORRUPT, and log_lock must not truncate it away */
Test(log, damage_before_a_good_frame_is_corrupt)
{
	struct logstream ls;
	struct log_scan res;
	struct vdb_err e;
	uint64_t ends[4];
	char *p = seqpath(1);

	open_stream(&ls, 0);
	three_frames(&ls, ends);
	log_close(&ls);
	/* every byte of the first and the second frame */
	for (uint64_t off = ends[0]; off < ends[2]; off++) {
		flip(p, off, 0x01);
		memset(&e, 0, sizeof(e));
		cr_assert_eq(scan_path(p, &res, NULL, &e), VDB_ECORRUPT,
		             "byte %llu flipped: rc %d torn %d", (unsigned long long)off, e.rc,
		             res.torn);
		cr_assert(strstr(e.msg, p) != NULL, "%s", e.msg);
		flip(p, off, 0x01);
	}
	cr_assert_eq(scan_path(p, &res, NULL, &e), VDB_OK);

	/* log_lock refuses and leaves every byte in place */
	flip(p, ends[0] + LOG_FRAME_HDR + 3, 0x80);
	cr_assert_eq(log_init(&ls, root, CID, LOG_KIND_INSERT, &e), VDB_OK);
	cr_assert_eq(log_lock(&ls, 0, &e), VDB_ECORRUPT, "%s", e.msg);
	cr_assert_eq(unit_file_size(p), (long long)ends[3], "a corrupt log was truncated");
	log_close(&ls);
	free(p);
}

Test(log, damage_in_the_last_frame_reads_as_torn)
{
	struct logstream ls;
	struct log_scan res;
	struct vdb_err e;
	uint64_t ends[4];
	char *p = seqpath(1);

	open_stream(&ls, 0);
	three_frames(&ls, ends);
	log_close(&ls);
	/* indistinguishable from an interrupted append (formats/log.md) */
	flip(p, ends[2] + LOG_FRAME_HDR + 1, 0x01);
	cr_assert_eq(scan_path(p, &res, NULL, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(res.torn, 1);
	cr_assert_eq(res.valid_end, ends[2]);
	cr_assert_eq(res.frames, 2u);
	free(p);
}

Test(log, damaged_file_header)
{
	struct logstream ls;
	struct log_scan res;
	struct vdb_err e;
	uint64_t ends[4];
	char *p = seqpath(1);

	open_stream(&ls, 0);
	three_frames(&ls, ends);
	log_close(&ls);
	for (uint64_t off = 0; off < LOG_FILE_HDR; off++) {
		flip(p, off, 0x10);
		cr_assert_eq(scan_path(p, &res, NULL, &e), VDB_ECORRUPT, "header byte %llu",
		             (unsigned long long)off);
		flip(p, off, 0x10);
	}
	free(p);
}

Test(log, wrong_payload_kind_is_corrupt)
{
	struct logstream ls;
	struct log_scan res;
	struct vdb_err e;
	unsigned char *p;
	size_t len;
	int64_t ids[2] = {1, 2};
	char *path = seqpath(1);

	open_stream(&ls, 0);
	/* a well-framed delete payload in an insert stream */
	cr_assert_eq(delete_encode(ids, 2, 5, &p, &len, &e), VDB_OK);
	cr_assert_eq(log_append(&ls, p, len, 2, &e), VDB_OK);
	free(p);
	log_close(&ls);
	cr_assert_eq(scan_path(path, &res, NULL, &e), VDB_ECORRUPT);
	cr_assert(strstr(e.msg, "payload") != NULL, "%s", e.msg);
	free(path);
}

Test(log, oversize_append_refused)
{
	struct logstream ls;
	struct vdb_err e;
	char *p = seqpath(1);
	char dummy = 0;

	open_stream(&ls, 0);
	/* refused on the length alone: the buffer is never read */
	cr_assert_neq(log_append(&ls, &dummy, (size_t)LOG_MAX_PAYLOAD + 1, 1, &e), VDB_OK);
	cr_assert_eq(unit_file_size(p), LOG_FILE_HDR);
	cr_assert_eq(ls.end, (uint64_t)LOG_FILE_HDR);
	log_close(&ls);
	free(p);
}

Test(log, rotate_and_seal)
{
	struct logstream ls;
	struct vdb_err e;
	uint64_t ends[4];
	uint32_t *seqs;
	size_t n;
	char *p1 = seqpath(1), *p2 = seqpath(2), *p3 = seqpath(3);

	open_stream(&ls, 0);
	/* an empty active file is not rotated */
	cr_assert_eq(log_rotate(&ls, &e), VDB_OK);
	cr_assert_eq(ls.seq, 1u);
	cr_assert(!unit_exists(p2));

	three_frames(&ls, ends);
	cr_assert_eq(log_rotate(&ls, &e), VDB_OK, "%s", e.msg);
	cr_assert_eq(ls.seq, 2u);
	cr_assert(unit_exists(p2));
	cr_assert_eq(unit_file_size(p2), LOG_FILE_HDR);
	cr_assert_eq(ls.end, (uint64_t)LOG_FILE_HDR);
	cr_assert_eq(ls.rows, 0u);
	cr_assert_eq(unit_file_size(p1), (long long)ends[3], "rotation left file 1 alone");
	/* appends go to the new file */
	size_t len;
	unsigned char *pl = payload(1, 500, &len);
	cr_assert_eq(log_append(&ls, pl, len, 1, &e), VDB_OK);
	free(pl);
	cr_assert_eq(unit_file_size(p2), (long long)(LOG_FILE_HDR + LOG_FRAME_HDR + len));
	cr_assert_eq(unit_file_size(p1), (long long)ends[3]);

	cr_assert_eq(log_list(dir, LOG_KIND_INSERT, &seqs, &n, &e), VDB_OK);
	cr_assert_eq(n, 2u);
	cr_assert_eq(seqs[0], 1u);
	cr_assert_eq(seqs[1], 2u);
	free(seqs);

	/* file 1 sealed into a segment: the next lock removes it */
	log_unlock(&ls);
	cr_assert_eq(log_lock(&ls, 1, &e), VDB_OK, "%s", e.msg);
	cr_assert(!unit_exists(p1), "sealed file 1 still there");
	cr_assert(unit_exists(p2));
	cr_assert_eq(ls.seq, 2u);
	cr_assert_eq(ls.rows, 1u);
	log_close(&ls);

	/* everything sealed: a fresh stream starts after the sealed number,
	 * never reusing one */
	cr_assert_eq(log_init(&ls, root, CID, LOG_KIND_INSERT, &e), VDB_OK);
	cr_assert_eq(log_lock(&ls, 2, &e), VDB_OK, "%s", e.msg);
	cr_assert(!unit_exists(p2));
	cr_assert_eq(ls.seq, 3u);
	cr_assert(unit_exists(p3));
	log_close(&ls);
	free(p1);
	free(p2);
	free(p3);
}

Test(log, delete_stream)
{
	struct logstream ls;
	struct log_scan res;
	struct vdb_err e;
	int64_t ids[3] = {5, -6, 7};
	unsigned char *p;
	size_t len;
	char *path = log_file_path(dir, LOG_KIND_DELETE, 1);

	cr_assert_eq(log_init(&ls, root, CID, LOG_KIND_DELETE, &e), VDB_OK);
	cr_assert_eq(log_lock(&ls, 0, &e), VDB_OK, "%s", e.msg);
	cr_assert(strstr(path, "/del-0000000001.log") != NULL, "%s", path);
	cr_assert(unit_exists(path));
	cr_assert_eq(delete_encode(ids, 3, 9, &p, &len, &e), VDB_OK);
	cr_assert_eq(log_append(&ls, p, len, 3, &e), VDB_OK);
	free(p);
	log_close(&ls);
	int fd = open(path, O_RDONLY);
	cr_assert_eq(log_scan_fd(fd, path, LOG_KIND_DELETE, CID, 0, NULL, NULL, &res, &e), VDB_OK,
	             "%s", e.msg);
	cr_assert_eq(res.frames, 1u);
	cr_assert_eq(res.rows, 3u);
	close(fd);
	/* the insert stream of the same collection is separate */
	char *ins = seqpath(1);
	cr_assert(!unit_exists(ins));
	free(ins);
	free(path);
}
