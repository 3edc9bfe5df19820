/* vdb-gen: deterministic test vectors for t/ and bench/ (not installed).
 *   vdb-gen [-c] [-f fvecs|jsonl|tsv|npy] [-n rows] [-d dim] [-s seed] [-i first-id] [-y]
 * -y adds a "year" int64 field and a "tag" string field (jsonl, tsv).
 * Without -c the components are uniform in [-1, 1): fine for exact search,
 * meaningless for graph or IVF indexes (no neighbourhood structure).
 * -c draws them from a fixed clustered, SIFT-like distribution instead
 * (clustered() below): the approximate-search bench's data set
 * (t/bench/ann-data.sh).  -s then picks another sample of the same
 * distribution, e.g. queries that are not in the base. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t state;

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static float
next(void)
{
	xorshift(&state);
	/* in [-1, 1), like normalised embeddings */
	return (float)((state >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* ---- -c: a clustered, SIFT-like distribution ----
 * A mixture of CL_K Gaussian components in CL_DI intrinsic dimensions,
 * mapped by one fixed random linear map to dim dimensions, plus a little
 * isotropic noise in all dim.  Real descriptors (SIFT, embeddings) are
 * like this: clustered, of low intrinsic dimension inside a high ambient
 * one, with clusters of unequal size and spread.  The components vary in
 * weight, in overall scale and per axis, so some neighbourhoods are dense
 * and some sparse, and clusters overlap, as they do in SIFT.  The
 * constants were calibrated (t/bench/ann-data.sh says how) so that
 * hnswlib at M=16, efConstruction=200 reaches recall@10 0.95 at about the
 * ef it needs on SIFT1M.  The model comes from its own fixed seed: it
 * depends on dim only, so -s and -n change the sample, never the
 * distribution. */
#define CL_K 1000 /* mixture components */
#define CL_DI 24 /* intrinsic dimensions */
#define CL_SPREAD 0.7 /* sd of the components' centres */
#define CL_SCALE_LO 0.25 /* a component's scale, log-uniform in [LO, HI] */
#define CL_SCALE_HI 1.0
#define CL_AXIS 2.0 /* per axis a further factor, log-uniform in [1/AXIS, AXIS] */
#define CL_WEIGHT 10.0 /* component weights, log-uniform in [1, WEIGHT] */
#define CL_NOISE 0.1 /* sd of the isotropic noise, per ambient dimension */

struct cl {
	int dim;
	double *map; /* dim x CL_DI */
	double *centre; /* CL_K x CL_DI */
	double *sd; /* CL_K x CL_DI */
	double *cum; /* CL_K: cumulative weights, the last 1 */
	double *y; /* CL_DI: scratch */
};

/* uniform in (0, 1), never 0 (for log) */
static double
uniform(uint64_t *s)
{
	return ((double)(xorshift(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* standard normal, Box-Muller; the second value is dropped so that a
 * stream is a plain function of its seed */
static double
gauss(uint64_t *s)
{
	double u = uniform(s), v = uniform(s);
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static double
loguniform(uint64_t *s, double lo, double hi)
{
	return lo * exp(log(hi / lo) * uniform(s));
}

static int
cl_init(struct cl *c, int dim)
{
	uint64_t ms = 0x243F6A8885A308D3ull; /* the model's own seed */
	double total = 0;

	c->dim = dim;
	c->map = malloc((size_t)dim * CL_DI * sizeof(double));
	c->centre = malloc((size_t)CL_K * CL_DI * sizeof(double));
	c->sd = malloc((size_t)CL_K * CL_DI * sizeof(double));
	c->cum = malloc((size_t)CL_K * sizeof(double));
	c->y = malloc((size_t)CL_DI * sizeof(double));
	if (!c->map || !c->centre || !c->sd || !c->cum || !c->y)
		return -1;
	/* columns of norm about 1: distances in the intrinsic space are kept */
	for (size_t i = 0; i < (size_t)dim * CL_DI; i++)
		c->map[i] = gauss(&ms) / sqrt((double)dim);
	for (int k = 0; k < CL_K; k++) {
		double scale = loguniform(&ms, CL_SCALE_LO, CL_SCALE_HI);
		for (int j = 0; j < CL_DI; j++) {
			c->centre[k * CL_DI + j] = CL_SPREAD * gauss(&ms);
			c->sd[k * CL_DI + j] = scale * loguniform(&ms, 1 / CL_AXIS, CL_AXIS);
		}
		total += loguniform(&ms, 1, CL_WEIGHT);
		c->cum[k] = total;
	}
	for (int k = 0; k < CL_K; k++)
		c->cum[k] /= total;
	c->cum[CL_K - 1] = 1;
	return 0;
}

static void
cl_free(struct cl *c)
{
	free(c->map);
	free(c->centre);
	free(c->sd);
	free(c->cum);
	free(c->y);
}

/* one vector of the distribution, from the sample stream s */
static void
clustered(const struct cl *c, uint64_t *s, float *v)
{
	double u = uniform(s);
	int lo = 0, hi = CL_K - 1;

	while (lo < hi) { /* the first component whose cum > u */
		int mid = (lo + hi) / 2;
		if (c->cum[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	for (int j = 0; j < CL_DI; j++)
		c->y[j] = c->centre[lo * CL_DI + j] + c->sd[lo * CL_DI + j] * gauss(s);
	for (int i = 0; i < c->dim; i++) {
		const double *m = c->map + (size_t)i * CL_DI;
		double x = CL_NOISE * gauss(s);
		for (int j = 0; j < CL_DI; j++)
			x += m[j] * c->y[j];
		v[i] = (float)x;
	}
}

int
main(int argc, char **argv)
{
	const char *fmt = "fvecs";
	long long n = 1000, first = 0;
	int dim = 128, ch, fields = 0, cluster = 0;
	struct cl cl = {0};
	float *v;
	char *line;

	state = 88172645463325252ull;
	while ((ch = getopt(argc, argv, "cf:n:d:s:i:y")) != -1) {
		switch (ch) {
		case 'c':
			cluster = 1;
			break;
		case 'f':
			fmt = optarg;
			break;
		case 'n':
			n = atoll(optarg);
			break;
		case 'd':
			dim = atoi(optarg);
			break;
		case 's':
			state ^= (uint64_t)atoll(optarg) * 0x9E3779B97F4A7C15ull;
			break;
		case 'i':
			first = atoll(optarg);
			break;
		case 'y':
			fields = 1;
			break;
		default:
			fprintf(stderr,
			        "usage: vdb-gen [-c] [-f fvecs|jsonl|tsv|npy] [-n rows] [-d dim] "
			        "[-s seed] [-i first-id] [-y]\n");
			return 100;
		}
	}
	if (dim < 1 || n < 0)
		return 100;
	v = malloc((size_t)dim * sizeof(float));
	line = malloc((size_t)dim * 16 + 256);
	if (!v || !line || (cluster && cl_init(&cl, dim) < 0))
		return 111;
	if (strcmp(fmt, "npy") == 0) {
		char h[128];
		int hl = snprintf(h, sizeof(h),
		                  "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %d), }",
		                  n, dim);
		int total = 10 + hl + 1, pad = (64 - total % 64) % 64;
		unsigned short len = (unsigned short)(hl + pad + 1);
		fwrite("\x93NUMPY\x01\x00", 1, 8, stdout);
		fwrite(&len, 2, 1, stdout);
		fwrite(h, 1, (size_t)hl, stdout);
		for (int i = 0; i < pad; i++)
			putchar(' ');
		putchar('\n');
	}
	if (strcmp(fmt, "tsv") == 0)
		printf(fields ? "id\tvector\tyear\ttag\n" : "id\tvector\n");
	for (long long r = 0; r < n; r++) {
		if (cluster)
			clustered(&cl, &state, v);
		else
			for (int k = 0; k < dim; k++)
				v[k] = next();
		if (strcmp(fmt, "fvecs") == 0) {
			fwrite(&dim, 4, 1, stdout);
			fwrite(v, 4, (size_t)dim, stdout);
		} else if (strcmp(fmt, "npy") == 0) {
			fwrite(v, 4, (size_t)dim, stdout);
		} else {
			int tsv = strcmp(fmt, "tsv") == 0;
			char *p = line;
			p += sprintf(p, tsv ? "%lld\t" : "{\"id\":%lld,\"vector\":[", first + r);
			for (int k = 0; k < dim; k++)
				p += sprintf(p, k ? ",%.9g" : "%.9g", (double)v[k]);
			if (tsv)
				p += fields ? sprintf(p, "\t%lld\tt%lld\n", 1950 + r % 70, r % 7)
				            : sprintf(p, "\n");
			else
				p += fields ? sprintf(p, "],\"year\":%lld,\"tag\":\"t%lld\"}\n",
				                      1950 + r % 70, r % 7)
				            : sprintf(p, "]}\n");
			fwrite(line, 1, (size_t)(p - line), stdout);
		}
	}
	if (cluster)
		cl_free(&cl);
	free(v);
	free(line);
	return fflush(stdout) ? 111 : 0;
}
