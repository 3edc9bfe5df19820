/* vdb-ingest: validate records and make them durable.  See vdb-ingest(1). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest.h"

static const char USAGE[] =
        "usage: vdb-ingest [-qv] [-d root] [--batch-rows n] [--bulk | --no-bulk]\n"
        "                  [--format jsonl|tsv|fvecs|npy] [--id-offset n] [--linger-ms n]\n"
        "                  [--on-error stop|skip] [--partition name] [--rejects file]\n"
        "                  [--segment-bytes n] [--segment-rows n] collection [file ...]\n"
        "       vdb-ingest [-d root] [--segment-rows n] --flush collection\n"
        "       vdb-ingest [-d root] [--batch-rows n] --delete collection [file ...]\n";

enum {
	OPT_BATCH = 256,
	OPT_BULK,
	OPT_NOBULK,
	OPT_DELETE,
	OPT_FLUSH,
	OPT_FORMAT,
	OPT_IDOFF,
	OPT_LINGER,
	OPT_ONERR,
	OPT_PART,
	OPT_REJ,
	OPT_SEGB,
	OPT_SEGR,
};

static const struct option longopts[] = {
        {"batch-rows", required_argument, NULL, OPT_BATCH},
        {"bulk", no_argument, NULL, OPT_BULK},
        {"delete", no_argument, NULL, OPT_DELETE},
        {"flush", no_argument, NULL, OPT_FLUSH},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {"id-offset", required_argument, NULL, OPT_IDOFF},
        {"linger-ms", required_argument, NULL, OPT_LINGER},
        {"no-bulk", no_argument, NULL, OPT_NOBULK},
        {"on-error", required_argument, NULL, OPT_ONERR},
        {"partition", required_argument, NULL, OPT_PART},
        {"quiet", no_argument, NULL, 'q'},
        {"rejects", required_argument, NULL, OPT_REJ},
        {"root", required_argument, NULL, 'd'},
        {"segment-bytes", required_argument, NULL, OPT_SEGB},
        {"segment-rows", required_argument, NULL, OPT_SEGR},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
};

/* Regular input files are read through a map: if one is truncated under
 * us, the access faults.  Nothing of the current batch was acknowledged. */
static void
on_sigbus(int sig)
{
	static const char msg[] = "vdb-ingest: fatal: an input file shrank while it was read\n";
	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(EXIT_TEMP);
}

static void
usage(void)
{
	fputs(USAGE, stderr);
	exit(EXIT_PERM);
}

static void
fatal(int rc, const struct vdb_err *e)
{
	fprintf(stderr, "vdb-ingest: fatal: %s\n", e->msg);
	exit(vdb_exit_code(rc));
}

static long long
number(const char *opt, const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "vdb-ingest: fatal: --%s: '%s' is not a number from %lld to %lld\n",
		        opt, s, min, max);
		exit(EXIT_PERM);
	}
	return v;
}

/* format_guess: from a file name's extension; jsonl otherwise */
static int
format_guess(const char *name)
{
	const char *dot = name ? strrchr(name, '.') : NULL;
	int f;

	if (dot && rec_format_parse(dot + 1, &f) == 0)
		return f;
	return FMT_JSONL;
}

int
main(int argc, char **argv)
{
	struct ingest g = {0};
	struct vdb_err e = {0};
	const char *rootopt = NULL, *rejects = NULL, *coll;
	int ch, rc, flush = 0, del = 0, bulk = -1, format = -1, quiet = 0, linger, idoff_set = 0;

	g.pname = "_default";
	g.batch_rows = 10000;
	g.seg_bytes = 512ull << 20;
	g.linger_ms = -1;
	while ((ch = getopt_long(argc, argv, "d:hqv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			rootopt = optarg;
			break;
		case 'h':
			fputs(USAGE, stdout);
			return 0;
		case 'q':
			quiet = 1;
			break;
		case 'v':
			g.verbose = 1;
			break;
		case OPT_BATCH:
			g.batch_rows = (size_t)number("batch-rows", optarg, 1, 10000000);
			break;
		case OPT_BULK:
			bulk = 1;
			break;
		case OPT_NOBULK:
			bulk = 0;
			break;
		case OPT_DELETE:
			del = 1;
			break;
		case OPT_FLUSH:
			flush = 1;
			break;
		case OPT_FORMAT:
			if (rec_format_parse(optarg, &format) != 0) {
				fprintf(stderr,
				        "vdb-ingest: fatal: --format: '%s' is not one of "
				        "jsonl, tsv, fvecs, npy\n",
				        optarg);
				return EXIT_PERM;
			}
			break;
		case OPT_IDOFF:
			g.next_id = number("id-offset", optarg, INT64_MIN, INT64_MAX);
			idoff_set = 1;
			break;
		case OPT_LINGER:
			g.linger_ms = (int)number("linger-ms", optarg, 0, 3600000);
			break;
		case OPT_ONERR:
			if (strcmp(optarg, "stop") == 0)
				g.skip = 0;
			else if (strcmp(optarg, "skip") == 0)
				g.skip = 1;
			else {
				fprintf(stderr,
				        "vdb-ingest: fatal: --on-error: want stop or skip\n");
				return EXIT_PERM;
			}
			break;
		case OPT_PART:
			g.pname = optarg;
			break;
		case OPT_REJ:
			rejects = optarg;
			break;
		case OPT_SEGB:
			g.seg_bytes = (uint64_t)number("segment-bytes", optarg, 4096, 1ll << 40);
			break;
		case OPT_SEGR:
			g.seg_rows = (uint64_t)number("segment-rows", optarg, 1, 1ll << 40);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || flush + del > 1 || (flush && argc != 1))
		usage();
	if (del && strcmp(g.pname, "_default") != 0) {
		fprintf(stderr, "vdb-ingest: fatal: --partition does not go with --delete "
		                "(a delete applies to every partition)\n");
		return EXIT_PERM;
	}
	if (rejects && !g.skip) {
		fprintf(stderr, "vdb-ingest: fatal: --rejects goes with --on-error skip\n");
		return EXIT_PERM;
	}
	coll = argv[0];
	argc--;
	argv++;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGBUS, on_sigbus);
	g.format = format >= 0 ? format : format_guess(argc ? argv[0] : NULL);
	if (idoff_set && g.format != FMT_FVECS && g.format != FMT_NPY) {
		fprintf(stderr, "vdb-ingest: fatal: --id-offset applies to fvecs and npy "
		                "(JSONL and TSV records carry their ids)\n");
		return EXIT_PERM;
	}

	if ((rc = root_path(rootopt, &rootopt, &e)) != VDB_OK ||
	    (rc = name_check(coll, "collection", &e)) != VDB_OK ||
	    (rc = name_check(g.pname, "partition", &e)) != VDB_OK ||
	    (rc = root_open(rootopt, &g.root, &e)) != VDB_OK ||
	    (rc = meta_collection_get(g.root->meta, coll, &g.sc, &e)) != VDB_OK ||
	    (rc = meta_partition_get(g.root->meta, g.sc.id, g.pname, &g.pid, &e)) != VDB_OK)
		fatal(rc, &e);
	linger = g.linger_ms;
	g.bulk = bulk >= 0 ? bulk : (g.format == FMT_FVECS || g.format == FMT_NPY);
	g.progress = !quiet && isatty(2);
	if (rejects && (g.rejects = fopen(rejects, "a")) == NULL) {
		vdb_err_errno(&e, VDB_EINPUT, "%s", rejects);
		fatal(VDB_EINPUT, &e);
	}
	if ((rc = ingest_open(&g, &e)) != VDB_OK)
		fatal(rc, &e);

	if (flush) {
		rc = ingest_flush(&g, &e);
	} else if (del) {
		rc = VDB_OK;
		if (argc == 0)
			rc = ingest_delete_fd(&g, stdin, "-", &e);
		for (int i = 0; i < argc && rc == VDB_OK; i++) {
			FILE *f = strcmp(argv[i], "-") ? fopen(argv[i], "r") : stdin;
			if (f == NULL) {
				rc = vdb_err_errno(&e, VDB_EINPUT, "%s", argv[i]);
				break;
			}
			rc = ingest_delete_fd(&g, f, argv[i], &e);
			if (f != stdin)
				fclose(f);
		}
	} else {
		rc = VDB_OK;
		for (int i = 0; i < (argc ? argc : 1) && rc == VDB_OK; i++) {
			const char *name = argc ? argv[i] : "-";
			int fd = strcmp(name, "-") ? open(name, O_RDONLY | O_CLOEXEC) : 0;
			struct stat st;
			if (fd < 0) {
				rc = vdb_err_errno(&e, VDB_EINPUT, "%s", name);
				break;
			}
			/* a pipe may pause: do not sit on rows someone waits for */
			if (g.linger_ms < 0)
				g.linger_ms =
				        (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) ? 0 : 200;
			rc = ingest_fd(&g, fd, name, &e);
			if (fd != 0)
				close(fd);
			g.linger_ms = linger;
		}
		if (rc == VDB_OK)
			rc = ingest_finish(&g, &e);
	}
	ingest_close(&g);
	if (g.rejected)
		fprintf(stderr, "vdb-ingest: %llu records rejected%s%s\n",
		        (unsigned long long)g.rejected, rejects ? ", written to " : "",
		        rejects ? rejects : "");
	if (g.rejects && fclose(g.rejects) != 0 && rc == VDB_OK)
		rc = vdb_err_errno(&e, VDB_ETEMP, "%s: close", rejects);
	root_close(g.root);
	if (rc != VDB_OK) {
		fprintf(stderr, "vdb-ingest: fatal: %s\n", e.msg);
		return vdb_exit_code(rc);
	}
	return 0;
}
