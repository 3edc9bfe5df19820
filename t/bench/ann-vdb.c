/* ann-vdb: vdb's side of the ANN bench (t/bench/ann.sh).  Opens a
 * collection once, as a long-lived vdb-query serve does, and searches it
 * through its indexes with the library's own search_run — the call
 * hnswlib's searchKnn and FAISS's search are measured by — one query at a
 * time and as one batch, single thread, k = 10, over a sweep of ef or
 * nprobe:
 *   ann-vdb -d root -c collection -i index -D data -p ef|nprobe
 *           [-b build_s] [-m rss_mb] [-r rounds] [-R refine]
 *           query.fvecs gt.ivecs value...
 * One line per measurement, the format of ann.sh.  Recall@10 counts the
 * ground truth's first 10 ids among the 10 hits (ids are the rows of the
 * base file, as vdb-ingest numbers an fvecs import). */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meta.h"
#include "root.h"
#include "search.h"

#define K 10

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* read_vecs: an fvecs or ivecs file of n records of dim 4-byte values */
static void *
read_vecs(const char *path, size_t *n, uint32_t *dim)
{
	FILE *f = fopen(path, "rb");
	int32_t d;
	long size;
	char *buf;

	if (f == NULL || fread(&d, 4, 1, f) != 1 || d <= 0 || fseek(f, 0, SEEK_END) != 0 ||
	    (size = ftell(f)) <= 0 || size % (4 + 4 * (long)d) != 0) {
		fprintf(stderr, "ann-vdb: %s: not an fvecs/ivecs file\n", path);
		exit(100);
	}
	*dim = (uint32_t)d;
	*n = (size_t)size / (4 + 4 * (size_t)d);
	buf = malloc((size_t)size);
	rewind(f);
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "ann-vdb: %s: read failed\n", path);
		exit(111);
	}
	fclose(f);
	/* drop the per-record dimension words */
	for (size_t i = 0; i < *n; i++)
		memmove(buf + i * 4 * (size_t)d, buf + i * (4 + 4 * (size_t)d) + 4, 4 * (size_t)d);
	return buf;
}

static void
check(int rc, const struct vdb_err *e)
{
	if (rc != VDB_OK) {
		fprintf(stderr, "ann-vdb: %s\n", e->msg);
		exit(vdb_exit_code(rc));
	}
}

int
main(int argc, char **argv)
{
	const char *root = NULL, *coll = NULL, *index = "hnsw", *data = "?", *param = "ef";
	const char *build_s = "0", *rss = "0";
	int rounds = 3, ch;
	uint32_t refine = 0, qdim, gdim;
	size_t nq, ng;
	struct vdb_err e;
	struct root *r;
	struct schema sc;
	struct search_set set;

	while ((ch = getopt(argc, argv, "D:R:b:c:d:i:m:p:r:")) != -1) {
		switch (ch) {
		case 'D':
			data = optarg;
			break;
		case 'R':
			refine = (uint32_t)atoi(optarg);
			break;
		case 'b':
			build_s = optarg;
			break;
		case 'c':
			coll = optarg;
			break;
		case 'd':
			root = optarg;
			break;
		case 'i':
			index = optarg;
			break;
		case 'm':
			rss = optarg;
			break;
		case 'p':
			param = optarg;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: ann-vdb -d root -c collection -i index -D data "
			                "-p ef|nprobe [-b build_s] [-m rss_mb] [-r rounds] "
			                "[-R refine] query.fvecs gt.ivecs value...\n");
			return 100;
		}
	}
	argc -= optind;
	argv += optind;
	if (root == NULL || coll == NULL || argc < 3 || rounds < 1)
		return 100;
	float *q = read_vecs(argv[0], &nq, &qdim);
	int32_t *gt = read_vecs(argv[1], &ng, &gdim);
	if (ng < nq || gdim < K) {
		fprintf(stderr, "ann-vdb: the ground truth has fewer queries or ids than needed\n");
		return 100;
	}
	check(root_open(root, &r, &e), &e);
	check(meta_collection_get(r->meta, coll, &sc, &e), &e);
	if (sc.dim != qdim) {
		fprintf(stderr, "ann-vdb: queries have dimension %u, the collection %u\n", qdim,
		        sc.dim);
		return 100;
	}
	check(search_open(r, &sc, 0, -1, SEARCH_VECTORS | SEARCH_INDEXES, NULL, &set, &e), &e);
	uint32_t *kk = malloc(nq * sizeof *kk);
	struct hits *h = calloc(nq, sizeof *h);
	for (size_t i = 0; i < nq; i++)
		kk[i] = K;
	for (int a = 2; a < argc; a++) {
		uint32_t v = (uint32_t)atoi(argv[a]);
		struct search_req rq = {.nq = 1, .k = kk, .threads = 1};
		double best = 1e30, bbest = 1e30;
		size_t found = 0;
		if (strcmp(param, "ef") == 0)
			rq.ann.ef = v;
		else
			rq.ann.nprobe = v;
		rq.ann.refine = refine;
		for (int round = 0; round < rounds; round++) {
			double t0 = now();
			for (size_t i = 0; i < nq; i++) {
				rq.q = q + i * qdim;
				check(search_run(&set, &rq, &h[i], &e), &e);
			}
			double t = now() - t0;
			if (t < best)
				best = t;
			if (round == 0)
				for (size_t i = 0; i < nq; i++)
					for (size_t j = 0; j < h[i].n && j < K; j++)
						for (size_t g = 0; g < K; g++)
							found += h[i].v[j].id == gt[i * gdim + g];
			for (size_t i = 0; i < nq; i++)
				hits_free(&h[i]);
		}
		rq.nq = nq;
		rq.q = q;
		for (int round = 0; round < rounds; round++) {
			double t0 = now();
			check(search_run(&set, &rq, h, &e), &e);
			double t = now() - t0;
			if (t < bbest)
				bbest = t;
			for (size_t i = 0; i < nq; i++)
				hits_free(&h[i]);
		}
		double recall = (double)found / (double)(nq * K);
		printf("ann engine=vdb index=%s data=%s mode=single build_s=%s rss_mb=%s param=%s "
		       "value=%u recall=%.4f qps=%.1f\n",
		       index, data, build_s, rss, param, v, recall, (double)nq / best);
		printf("ann engine=vdb index=%s data=%s mode=batch build_s=%s rss_mb=%s param=%s "
		       "value=%u recall=%.4f qps=%.1f\n",
		       index, data, build_s, rss, param, v, recall, (double)nq / bbest);
		fflush(stdout);
	}
	search_close(&set);
	root_close(r);
	free(kk);
	free(h);
	free(q);
	free(gt);
	return 0;
}
