/* vdb-query: exact k-nearest-neighbour and range search, row counts, and a
 * request/response server on stdin/stdout.  See vdb-query(1). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query.h"

static const char USAGE[] =
        "usage: vdb-query [-d root] [-j threads] [-k k] [--fields list] [--filter expr]\n"
        "                 [--format jsonl|fvecs] [--output jsonl|tsv|ivecs]\n"
        "                 [--partition name] [--radius r] [--ts ts]\n"
        "                 [--exact | [--ef n] [--nprobe n] [--refine n]] collection [file ...]\n"
        "       vdb-query [-d root] --count [--filter expr] [--partition name] [--ts ts]\n"
        "                 collection\n"
        "       vdb-query [-d root] [-j threads] serve\n";

static struct vdb_err e;

static void
usage(void)
{
	fputs(USAGE, stderr);
	exit(EXIT_PERM);
}

static void
fatal(int rc)
{
	fprintf(stderr, "vdb-query: fatal: %s\n", e.msg);
	exit(vdb_exit_code(rc));
}

static void
check(int rc)
{
	if (rc != VDB_OK)
		fatal(rc);
}

static void
bad(const char *fmt, const char *arg)
{
	fputs("vdb-query: fatal: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(EXIT_PERM);
}

static unsigned long long
number(const char *opt, const char *s, unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno || v > max) {
		fprintf(stderr, "vdb-query: fatal: %s: bad number '%s' (at most %llu)\n", opt, s,
		        max);
		exit(EXIT_PERM);
	}
	return v;
}

static void
write_out(struct sbuf *b)
{
	if (b->n && fwrite(b->p, 1, b->n, stdout) != b->n) {
		vdb_err_errno(&e, VDB_ETEMP, "stdout");
		fatal(VDB_ETEMP);
	}
	b->n = 0;
	if (fflush(stdout) != 0) {
		vdb_err_errno(&e, VDB_ETEMP, "stdout");
		fatal(VDB_ETEMP);
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"count", no_argument, NULL, 'c'},
	        {"ef", required_argument, NULL, 'E'},
	        {"exact", no_argument, NULL, 'X'},
	        {"fields", required_argument, NULL, 'F'},
	        {"filter", required_argument, NULL, 'w'},
	        {"format", required_argument, NULL, 'f'},
	        {"help", no_argument, NULL, 'h'},
	        {"nprobe", required_argument, NULL, 'N'},
	        {"output", required_argument, NULL, 'o'},
	        {"partition", required_argument, NULL, 'p'},
	        {"radius", required_argument, NULL, 'r'},
	        {"refine", required_argument, NULL, 'R'},
	        {"ts", required_argument, NULL, 't'},
	        {NULL, 0, NULL, 0},
	};
	const char *rootopt = NULL, *rootpath, *fields = NULL, *partition = NULL;
	struct qopts o = {.partition = -1, .threads = 1, .output = OUT_JSONL};
	struct schema sc;
	struct root *r;
	int ch, count = 0, fvecs = -1;
	char *end;

	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt_long(argc, argv, "d:hj:k:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			count = 1;
			break;
		case 'd':
			rootopt = optarg;
			break;
		case 'E':
			o.ann.ef = (uint32_t)number("--ef", optarg, QUERY_MAX_EF);
			if (o.ann.ef == 0)
				bad("--ef: %s candidates", optarg);
			break;
		case 'F':
			fields = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "jsonl") == 0)
				fvecs = 0;
			else if (strcmp(optarg, "fvecs") == 0)
				fvecs = 1;
			else
				bad("--format: '%s' is not jsonl or fvecs", optarg);
			break;
		case 'h':
			fputs(USAGE, stdout);
			return 0;
		case 'j':
			o.threads = (int)number("-j", optarg, 256);
			if (o.threads == 0)
				bad("-j: %s threads", optarg);
			break;
		case 'k':
			o.k = (uint32_t)number("-k", optarg, SEARCH_MAX_K);
			if (o.k == 0)
				bad("-k: %s hits asked for", optarg);
			break;
		case 'N':
			o.ann.nprobe = (uint32_t)number("--nprobe", optarg, IVF_MAX_NLIST);
			if (o.ann.nprobe == 0)
				bad("--nprobe: %s lists", optarg);
			break;
		case 'R':
			o.ann.refine = (uint32_t)number("--refine", optarg, QUERY_MAX_REFINE);
			if (o.ann.refine == 0)
				bad("--refine: %s", optarg);
			break;
		case 'X':
			o.exact = 1;
			break;
		case 'o':
			if (strcmp(optarg, "jsonl") == 0)
				o.output = OUT_JSONL;
			else if (strcmp(optarg, "tsv") == 0)
				o.output = OUT_TSV;
			else if (strcmp(optarg, "ivecs") == 0)
				o.output = OUT_IVECS;
			else
				bad("--output: '%s' is not jsonl, tsv or ivecs", optarg);
			break;
		case 'p':
			partition = optarg;
			break;
		case 'r':
			errno = 0;
			o.radius = strtof(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || errno || !isfinite(o.radius))
				bad("--radius: bad number '%s'", optarg);
			o.has_radius = 1;
			break;
		case 't':
			o.ts = number("--ts", optarg, UINT64_MAX);
			break;
		case 'w':
			o.filter = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	check(root_path(rootopt, &rootpath, &e));
	if (strcmp(argv[0], "serve") == 0) {
		if (argc != 1 || count || fields || o.filter || partition || o.k || o.has_radius ||
		    o.ts || fvecs >= 0 || o.output != OUT_JSONL || o.exact || o.ann.ef ||
		    o.ann.nprobe || o.ann.refine)
			usage();
		return serve(rootpath, o.threads);
	}
	if (count && (argc != 1 || fields || o.k || o.has_radius || fvecs >= 0 ||
	              o.output != OUT_JSONL || o.exact || o.ann.ef || o.ann.nprobe || o.ann.refine))
		usage();
	if (o.exact && (o.ann.ef || o.ann.nprobe || o.ann.refine))
		usage();
	check(root_open(rootpath, &r, &e));
	check(meta_collection_get(r->meta, argv[0], &sc, &e));
	o.sc = &sc;
	if (partition) {
		struct part_info *pv;
		size_t n;
		check(meta_partition_list(r->meta, sc.id, &pv, &n, &e));
		for (size_t i = 0; i < n && o.partition < 0; i++)
			if (strcmp(pv[i].name, partition) == 0)
				o.partition = pv[i].id;
		free(pv);
		if (o.partition < 0) {
			vdb_err_set(&e, VDB_ENOENT, "no partition '%.255s' in collection %s",
			            partition, sc.name);
			fatal(VDB_ENOENT);
		}
	}
	if (fields)
		check(query_fields(&o, fields, &e));
	if (count) {
		uint64_t n;
		check(query_count(r, &o, NULL, &n, &e));
		printf("%" PRIu64 "\n", n);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			vdb_err_errno(&e, VDB_ETEMP, "stdout");
			fatal(VDB_ETEMP);
		}
		root_close(r);
		return 0;
	}
	if (o.output == OUT_IVECS && o.nfields)
		bad("%s", "--output ivecs: has no room for --fields");

	struct qbatch q = {0};
	struct sbuf out = {0};
	struct seg_cache *cache = seg_cache_new();
	if (cache == NULL) {
		vdb_err_set(&e, VDB_ETEMP, "out of memory");
		fatal(VDB_ETEMP);
	}
	if (o.output == OUT_TSV) {
		sb_puts(&out, "query\trank\tid\tdistance");
		for (uint32_t f = 0; f < o.nfields; f++)
			sb_printf(&out, "\t%s", sc.fields[o.fields[f]].name);
		sb_putc(&out, '\n');
	}
	for (int i = argc > 1 ? 1 : 0; i < argc || (argc == 1 && i == 0); i++) {
		const char *path = argc > 1 ? argv[i] : NULL;
		struct qreader *qr;
		int isfv = fvecs;
		if (isfv < 0) {
			size_t n = path ? strlen(path) : 0;
			isfv = n > 6 && strcmp(path + n - 6, ".fvecs") == 0;
		}
		check(qr_open(path, isfv, &qr, &e));
		for (;;) {
			check(qr_next(qr, &o, &q, &e));
			if (q.n == 0)
				break;
			check(query_run(r, &o, &q, cache, &out, NULL, &e));
			write_out(&out);
		}
		qr_close(qr);
		if (argc == 1)
			break;
	}
	write_out(&out);
	sb_free(&out);
	qb_free(&q);
	seg_cache_free(cache);
	root_close(r);
	return 0;
}
