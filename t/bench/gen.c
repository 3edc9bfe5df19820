/* vdb-gen: deterministic test vectors for t/ and bench/ (not installed).
 *   vdb-gen [-f fvecs|jsonl|tsv|npy] [-n rows] [-d dim] [-s seed] [-i first-id] [-y]
 * -y adds a "year" int64 field and a "tag" string field (jsonl, tsv). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t state;

static float
next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	/* in [-1, 1), like normalised embeddings */
	return (float)((state >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

int
main(int argc, char **argv)
{
	const char *fmt = "fvecs";
	long long n = 1000, first = 0;
	int dim = 128, ch, fields = 0;
	float *v;
	char *line;

	state = 88172645463325252ull;
	while ((ch = getopt(argc, argv, "f:n:d:s:i:y")) != -1) {
		switch (ch) {
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
			        "usage: vdb-gen [-f fvecs|jsonl|tsv|npy] [-n rows] [-d dim] "
			        "[-s seed] [-i first-id] [-y]\n");
			return 100;
		}
	}
	if (dim < 1 || n < 0)
		return 100;
	v = malloc((size_t)dim * sizeof(float));
	line = malloc((size_t)dim * 16 + 256);
	if (!v || !line)
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
	free(v);
	free(line);
	return fflush(stdout) ? 111 : 0;
}
