/* ann-hnswlib: the hnswlib side of the approximate-search bench
 * (t/bench/ann.sh).  Not part of vdb and never linked with it: a peer,
 * built from Debian's libhnswlib-dev headers (header-only) with
 *   g++ -O3 -march=native -o ann-hnswlib t/bench/ann-hnswlib.cpp
 * so hnswlib gets every SIMD extension this CPU has; it prints which
 * distance function it ended up with.
 *
 *   ann-hnswlib [-d data-name] [-e efConstruction] [-m M] [-r rounds] [-t threads]
 *               base.fvecs query.fvecs gt.ivecs ef ...
 *
 * Builds a HierarchicalNSW<float> over L2Space from base (rows added in
 * file order, labels = row numbers, one thread unless -t), timing the adds
 * only; then for each ef, one query at a time (searchKnn, k = 10, one
 * thread), recall@10 against the first 10 ids of each gt row and queries
 * per second, the best of -r rounds by wall clock.  A round runs the query
 * set as many times as it takes to make at least 1000 queries, so a small
 * query set is not timed on a few milliseconds.  Peak RSS (ru_maxrss) is
 * that of the whole process; the base is streamed into the index, never
 * held whole beside it, so it is the index (vectors and graph) plus the
 * queries and ground truth.
 *
 * stdout: one line per ef, the format every engine of the bench shares:
 *   ann engine=hnswlib index=hnsw data=D mode=single build_s=X rss_mb=X
 *       param=ef value=V recall=X qps=X
 * stderr: notes (distance function, RSS after load and build).
 * -t > 1 builds with that many threads (hnswlib's addPoint is thread-safe):
 * for calibrating data sets faster, never for the bench's numbers. */
#include <getopt.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <hnswlib/hnswlib.h>

#define USAGE                                                                                      \
	"usage: ann-hnswlib [-d data-name] [-e efConstruction] [-m M] [-r rounds] [-t threads]\n"  \
	"                   base.fvecs query.fvecs gt.ivecs ef ...\n"

static const size_t K = 10;

static double
seconds(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double
now(void)
{
	return seconds(CLOCK_MONOTONIC);
}

static double
peak_rss_mb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

[[noreturn]] static void
die(int code, const char *what, const char *path)
{
	fprintf(stderr, "ann-hnswlib: fatal: %s: %s\n", path, what);
	exit(code);
}

/* the shape of an .fvecs / .ivecs file: rows of (int32 d, d x 4 bytes) */
static FILE *
vecs_open(const char *path, size_t *rows, size_t *dim)
{
	FILE *f = fopen(path, "rb");
	int32_t d;
	long size;

	if (!f)
		die(111, "cannot open", path);
	if (fread(&d, 4, 1, f) != 1 || d < 1)
		die(100, "not an fvecs/ivecs file", path);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	if (size % (4 + 4 * (long)d))
		die(100, "size is not a whole number of rows", path);
	fseek(f, 0, SEEK_SET);
	*rows = (size_t)size / (4 + 4 * (size_t)d);
	*dim = (size_t)d;
	return f;
}

/* one row into out (dim values), false at the end */
static bool
vecs_row(FILE *f, size_t dim, void *out, const char *path)
{
	int32_t d;

	if (fread(&d, 4, 1, f) != 1)
		return false;
	if ((size_t)d != dim || fread(out, 4, dim, f) != dim)
		die(100, "rows of different dimensions", path);
	return true;
}

/* a whole (small) file: the queries, the ground truth */
template <typename T>
static std::vector<T>
vecs_load(const char *path, size_t *rows, size_t *dim)
{
	FILE *f = vecs_open(path, rows, dim);
	std::vector<T> v(*rows * *dim);
	for (size_t i = 0; i < *rows; i++)
		vecs_row(f, *dim, &v[i * *dim], path);
	fclose(f);
	return v;
}

static const char *
dist_name(hnswlib::L2Space &space)
{
	hnswlib::DISTFUNC<float> f = space.get_dist_func();
#if defined(USE_AVX512)
	if (f == hnswlib::L2SqrSIMD16ExtAVX512)
		return "L2SqrSIMD16ExtAVX512";
#endif
#if defined(USE_AVX)
	if (f == hnswlib::L2SqrSIMD16ExtAVX)
		return "L2SqrSIMD16ExtAVX";
#endif
#if defined(USE_SSE)
	if (f == hnswlib::L2SqrSIMD16ExtSSE)
		return "L2SqrSIMD16ExtSSE";
	if (f == hnswlib::L2SqrSIMD4Ext)
		return "L2SqrSIMD4Ext";
	if (f == hnswlib::L2SqrSIMD16ExtResiduals)
		return "L2SqrSIMD16ExtResiduals";
	if (f == hnswlib::L2SqrSIMD4ExtResiduals)
		return "L2SqrSIMD4ExtResiduals";
#endif
	if (f == hnswlib::L2Sqr)
		return "L2Sqr (scalar)";
	return "unknown";
}

int
main(int argc, char **argv)
{
	const char *data = "?";
	size_t m = 16, efc = 200, rounds = 3, threads = 1;
	size_t n, dim, nq, qdim, ngt, gtdim;
	int ch;

	while ((ch = getopt(argc, argv, "d:e:m:r:t:")) != -1) {
		switch (ch) {
		case 'd':
			data = optarg;
			break;
		case 'e':
			efc = strtoul(optarg, nullptr, 10);
			break;
		case 'm':
			m = strtoul(optarg, nullptr, 10);
			break;
		case 'r':
			rounds = strtoul(optarg, nullptr, 10);
			break;
		case 't':
			threads = strtoul(optarg, nullptr, 10);
			break;
		default:
			fputs(USAGE, stderr);
			return 100;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 4 || m < 2 || efc < 1 || rounds < 1 || threads < 1) {
		fputs(USAGE, stderr);
		return 100;
	}
	const char *base_path = argv[0], *q_path = argv[1], *gt_path = argv[2];

	std::vector<float> q = vecs_load<float>(q_path, &nq, &qdim);
	std::vector<int32_t> gt = vecs_load<int32_t>(gt_path, &ngt, &gtdim);
	FILE *bf = vecs_open(base_path, &n, &dim);
	if (qdim != dim)
		die(100, "queries and base differ in dimension", q_path);
	if (ngt != nq || gtdim < K)
		die(100, "ground truth does not match the queries (or has fewer than 10 ids)",
		    gt_path);

	hnswlib::L2Space space(dim);
	fprintf(stderr,
	        "hnswlib: %zu x %zu, M=%zu efConstruction=%zu, %zu build thread(s); "
	        "distance %s; compiled with AVX512F %s, AVX %s\n",
	        n, dim, m, efc, threads, dist_name(space),
#ifdef __AVX512F__
	        "yes",
#else
	        "no",
#endif
#ifdef __AVX__
	        "yes"
#else
	        "no"
#endif
	);
	fprintf(stderr, "hnswlib: peak RSS after loading queries and ground truth: %.0f MB\n",
	        peak_rss_mb());

	/* build: the base read in chunks, only the adds timed */
	auto *index = new hnswlib::HierarchicalNSW<float>(&space, n, m, efc);
	const size_t chunk = 16384;
	std::vector<float> buf(chunk * dim);
	double build = 0, cpu = 0;
	for (size_t done = 0; done < n;) {
		size_t c = std::min(chunk, n - done);
		for (size_t i = 0; i < c; i++)
			if (!vecs_row(bf, dim, &buf[i * dim], base_path))
				die(100, "shorter than it was", base_path);
		double t0 = now(), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
		if (threads == 1) {
			for (size_t i = 0; i < c; i++)
				index->addPoint(&buf[i * dim], done + i);
		} else {
			std::atomic<size_t> next(0);
			std::vector<std::thread> pool;
			for (size_t t = 0; t < threads; t++)
				pool.emplace_back([&] {
					for (size_t i; (i = next++) < c;)
						index->addPoint(&buf[i * dim], done + i);
				});
			for (auto &th : pool)
				th.join();
		}
		build += now() - t0;
		cpu += seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
		done += c;
	}
	fclose(bf);
	std::vector<float>().swap(buf);
	/* CPU seconds beside wall seconds: on a busy machine the first grows
	 * with the others' load, the second much less */
	fprintf(stderr, "hnswlib: build %.2f s (CPU %.2f s), peak RSS after build: %.0f MB\n",
	        build, cpu, peak_rss_mb());

	size_t reps = (1000 + nq - 1) / nq;
	std::vector<hnswlib::labeltype> got(nq * K);
	for (int a = 3; a < argc; a++) {
		size_t ef = strtoul(argv[a], nullptr, 10);
		if (ef < 1)
			die(100, "ef must be a positive number", argv[a]);
		index->setEf(std::max(ef, K));
		double best = 1e300;
		for (size_t r = 0; r < rounds; r++) {
			double t0 = now();
			for (size_t rep = 0; rep < reps; rep++)
				for (size_t i = 0; i < nq; i++) {
					auto res = index->searchKnn(&q[i * dim], K);
					std::fill(&got[i * K], &got[i * K + K], (size_t)-1);
					/* farthest first: fill from the back */
					for (size_t j = res.size(); j-- > 0; res.pop())
						got[i * K + j] = res.top().second;
				}
			best = std::min(best, now() - t0);
		}
		size_t hits = 0;
		for (size_t i = 0; i < nq; i++)
			for (size_t j = 0; j < K; j++)
				hits += std::count(&gt[i * gtdim], &gt[i * gtdim + K],
				                   (int32_t)got[i * K + j]);
		printf("ann engine=hnswlib index=hnsw data=%s mode=single build_s=%.2f rss_mb=%.0f "
		       "param=ef value=%zu recall=%.4f qps=%.0f\n",
		       data, build, peak_rss_mb(), ef, (double)hits / (double)(nq * K),
		       (double)(nq * reps) / best);
		fflush(stdout);
	}
	delete index;
	return 0;
}
