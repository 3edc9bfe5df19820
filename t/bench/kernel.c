/* kernel: microbenchmark of the distance kernels (lib/distance.c) against
 * the memory bandwidth they are meant to reach.
 *   kernel [-d dim] [-n vectors] [-o offset] [-r repeats]
 *   kernel -b [-n vectors] [-t threads]   the bound alone: prints GB/s
 *   kernel -i                             prints the kernels dist_block uses
 * On n random vectors (default 1,000,000 x 128): (a) the read bandwidth
 * of a plain streaming sum over the array — the bound for one query;
 * (b) dist_block with one query over all of it, as a share of that bound;
 * (c) dist_block in blocks (nq queries x B vectors, as a search calls it),
 * both streaming the array and with one block hot in L2, in GFLOP/s
 * counting 3 flops per dimension per pair for L2 (sub, mul, add), 2 for
 * IP and cosine.  Every ISA the CPU has; best of -r runs.  Single thread.
 * The arrays are 64-byte aligned, as a mapped segment's vectors are; -o
 * shifts x by that many floats to see what misalignment costs (with
 * AVX-512 every load then straddles two cache lines). */
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distance.h"
#include "schema.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#define USAGE                                                                                      \
	"usage: kernel [-d dim] [-n vectors] [-o offset] [-r repeats]\n"                           \
	"       kernel -b [-n vectors] [-t threads]\n"                                             \
	"       kernel -i\n"

static size_t dim = 128, nvec = 1000000, offset;
static int repeats = 3;
static volatile float sink;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* four independent 32-byte accumulators: two loads a cycle, far more than
 * DRAM delivers, so the loop measures the memory and nothing else */
__attribute__((target("avx2"))) static float
sum_avx2(const float *p, size_t n)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	float r[8], s = 0;
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
		a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
		a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
		a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
	}
	_mm256_storeu_ps(r, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < n; i++)
		s += p[i];
	for (int k = 0; k < 8; k++)
		s += r[k];
	return s;
}
#endif

static float
sum_plain(const float *p, size_t n)
{
	float a[16] = {0}, s = 0;
	size_t i = 0;

	for (; i + 16 <= n; i += 16)
		for (int k = 0; k < 16; k++)
			a[k] += p[i + k];
	for (; i < n; i++)
		s += p[i];
	for (int k = 0; k < 16; k++)
		s += a[k];
	return s;
}

static float
sum_stream(const float *p, size_t n)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("avx2"))
		return sum_avx2(p, n);
#endif
	return sum_plain(p, n);
}

/* the bound with T threads: each streams its own slice of the array, as
 * vdb-query -j T splits a scan into chunks */
struct slice {
	const float *p;
	size_t n;
	pthread_barrier_t *bar;
	double t;
};

static void *
slice_sum(void *arg)
{
	struct slice *s = arg;
	double t;

	pthread_barrier_wait(s->bar);
	t = now();
	sink += sum_stream(s->p, s->n);
	s->t = now() - t;
	return NULL;
}

static double
bandwidth(const float *x, size_t n, int threads)
{
	pthread_t tid[64];
	struct slice sl[64];
	pthread_barrier_t bar;
	double best = 1e30;

	for (int r = 0; r < repeats + 2; r++) {
		double t = 0;
		pthread_barrier_init(&bar, NULL, (unsigned)threads);
		for (int i = 0; i < threads; i++) {
			size_t a = n * (size_t)i / (size_t)threads,
			       b = n * (size_t)(i + 1) / (size_t)threads;
			sl[i] = (struct slice){x + a, b - a, &bar, 0};
			if (i > 0)
				pthread_create(&tid[i], NULL, slice_sum, &sl[i]);
		}
		slice_sum(&sl[0]);
		for (int i = 1; i < threads; i++)
			pthread_join(tid[i], NULL);
		pthread_barrier_destroy(&bar);
		for (int i = 0; i < threads; i++)
			if (sl[i].t > t)
				t = sl[i].t;
		if (t < best)
			best = t;
	}
	return (double)(n * sizeof(float)) / best;
}

/* blocks: nq queries against the n vectors of x in blocks of bs; x_hot
 * keeps to the first block (L2-resident) for the same amount of work */
static double
blocks(int metric, const float *q, size_t nq, const float *x, size_t n, size_t bs, int x_hot,
       float *out)
{
	double best = 1e30;

	for (int r = 0; r < repeats; r++) {
		double t = now();
		for (size_t i = 0; i < n; i += bs) {
			size_t m = n - i < bs ? n - i : bs;
			dist_block(metric, q, nq, x + (x_hot ? 0 : i * dim), m, dim, out);
		}
		t = now() - t;
		sink += out[0];
		if (t < best)
			best = t;
	}
	return best;
}

int
main(int argc, char **argv)
{
	static const char *const isas[] = {"avx512", "avx2", "c"};
	static const size_t nqs[] = {8, 16, 32, 64}, bss[] = {256, 512, 1024};
	float *xbuf, *x, *q, *out;
	double bw = 0, tbw = 1e30;
	int ch, bonly = 0, threads = 1;

	while ((ch = getopt(argc, argv, "bd:in:o:r:t:")) != -1) {
		switch (ch) {
		case 'b':
			bonly = 1;
			break;
		case 'i':
			printf("%s\n", dist_isa());
			return 0;
		case 't':
			threads = atoi(optarg);
			break;
		case 'd':
			dim = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			nvec = strtoul(optarg, NULL, 10);
			break;
		case 'o':
			offset = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			repeats = atoi(optarg);
			break;
		default:
			fputs(USAGE, stderr);
			return 100;
		}
	}
	if (dim < 1 || nvec < 1024 || repeats < 1 || threads < 1 || threads > 64) {
		fputs(USAGE, stderr);
		return 100;
	}
	if (offset > 1024) {
		fputs(USAGE, stderr);
		return 100;
	}
	/* sizes rounded up to the alignment, as aligned_alloc wants */
	xbuf = aligned_alloc(64, ((nvec * dim + offset) * sizeof(float) + 63) / 64 * 64);
	q = aligned_alloc(64, (64 * dim * sizeof(float) + 63) / 64 * 64);
	out = aligned_alloc(64, (nvec > 64 * 1024 ? nvec : 64 * 1024) * sizeof(float));
	x = xbuf + offset;
	if (xbuf == NULL || q == NULL || out == NULL) {
		fputs("kernel: fatal: out of memory\n", stderr);
		return 111;
	}
	srand(1);
	for (size_t i = 0; i < nvec * dim; i++)
		x[i] = (float)rand() / (float)RAND_MAX;
	for (size_t i = 0; i < 64 * dim; i++)
		q[i] = (float)rand() / (float)RAND_MAX;
	if (bonly) {
		printf("%.2f\n", bandwidth(x, nvec * dim, threads) / 1e9);
		return 0;
	}

	for (int r = 0; r < repeats + 2; r++) {
		double t = now();
		sink += sum_stream(x, nvec * dim);
		t = now() - t;
		if (t < tbw)
			tbw = t;
	}
	bw = (double)(nvec * dim * sizeof(float)) / tbw;
	printf("%zu x %zu floats (%.0f MB) at 64-byte alignment + %zu floats, best of %d, one "
	       "thread\n",
	       nvec, dim, (double)(nvec * dim * sizeof(float)) / 1e6, offset, repeats);
	printf("(a) streaming sum: %.2f ms, %.2f GB/s  <- the bound for one query\n", tbw * 1e3,
	       bw / 1e9);

	for (size_t s = 0; s < sizeof(isas) / sizeof(isas[0]); s++) {
		static const int metrics[] = {METRIC_L2, METRIC_IP, METRIC_COSINE};
		static const char *const mnames[] = {"L2", "IP", "cos"};

		if (dist_force_isa(isas[s]) != 0) {
			printf("\n[%s] not on this CPU\n", isas[s]);
			continue;
		}
		printf("\n[%s]\n(b) nq=1 over all %zu vectors:\n", isas[s], nvec);
		for (int m = 0; m < 3; m++) {
			double t = blocks(metrics[m], q, 1, x, nvec, nvec, 0, out);
			printf("    %-3s  %7.2f ms/query  %6.1f QPS  %5.2f GB/s  %3.0f%% of "
			       "bound\n",
			       mnames[m], t * 1e3, 1 / t, (double)(nvec * dim * 4) / t / 1e9,
			       100 * tbw / t);
		}
		{
			double t = blocks(METRIC_L2, q, 1, x, nvec, 1024, 0, out);
			printf("    L2 in blocks of 1024: %7.2f ms/query, %3.0f%% of bound\n",
			       t * 1e3, 100 * tbw / t);
		}
		for (int m = 0; m < 3; m++) {
			double fl = metrics[m] == METRIC_L2 ? 3 : 2;
			printf("(c) %s GFLOP/s (%g flops/dim/pair), nq x block; stream | hot in "
			       "L2:\n",
			       mnames[m], fl);
			printf("    nq  ");
			for (size_t b = 0; b < 3; b++)
				printf("   B=%-4zu stream  hot  ", bss[b]);
			printf("\n");
			for (size_t k = 0; k < 4; k++) {
				if (metrics[m] != METRIC_L2 && nqs[k] != 64 && nqs[k] != 8)
					continue;
				printf("    %-3zu ", nqs[k]);
				for (size_t b = 0; b < 3; b++) {
					double flop =
					        fl * (double)nqs[k] * (double)nvec * (double)dim;
					double ts = blocks(metrics[m], q, nqs[k], x, nvec, bss[b],
					                   0, out);
					double th = blocks(metrics[m], q, nqs[k], x, nvec, bss[b],
					                   1, out);
					printf("   %6.1f %8.1f     ", flop / ts / 1e9,
					       flop / th / 1e9);
				}
				printf("\n");
			}
		}
		{
			double t = blocks(METRIC_L2, q, 64, x, nvec, 512, 0, out);
			printf("    L2 nq=64 B=512 streaming: %.1f QPS over %zu vectors\n", 64 / t,
			       nvec);
		}
	}
	free(xbuf);
	free(q);
	free(out);
	return 0;
}
