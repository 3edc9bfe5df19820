/* vdb-index: build the indexes a collection's spec asks for, compact
 * segments, and delete what the trash has held past its grace period.
 * Safe from cron: one run at a time per root (ROOT/index.lock), and every
 * step is published before it is registered, so a run killed anywhere
 * leaves the catalogue as it was before that step.  See vdb-index(1). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "file.h"
#include "index.h"
#include "meta.h"
#include "root.h"
#include "vindex.h"

static const char USAGE[] =
        "usage: vdb-index [-d root] [-j threads] [--grace seconds] [--wait]\n"
        "                 [--type type [-p name=value]...] collection\n"
        "       vdb-index [-d root] [-j threads] [--grace seconds] [--wait] --all\n"
        "       vdb-index [-d root] [-j threads] [--grace seconds] [--wait]\n"
        "                 [--segment-bytes n] --compact collection\n";

static struct vdb_err e;
/* -p values, at most one per argument; applied once the type is known */
static const char **params;

static void
usage(void)
{
	fputs(USAGE, stderr);
	exit(EXIT_PERM);
}

static void
fatal(int rc)
{
	fprintf(stderr, "vdb-index: fatal: %s\n", e.msg);
	exit(vdb_exit_code(rc));
}

static void
check(int rc)
{
	if (rc != VDB_OK)
		fatal(rc);
}

static long long
number(const char *name, const char *s, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "vdb-index: fatal: --%s: '%s' is not a number from %lld to %lld\n",
		        name, s, lo, hi);
		exit(EXIT_PERM);
	}
	return v;
}

enum { OPT_ALL = 256, OPT_COMPACT, OPT_GRACE, OPT_SEGB, OPT_TYPE, OPT_WAIT };

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"all", no_argument, NULL, OPT_ALL},
	        {"compact", no_argument, NULL, OPT_COMPACT},
	        {"grace", required_argument, NULL, OPT_GRACE},
	        {"help", no_argument, NULL, 'h'},
	        {"param", required_argument, NULL, 'p'},
	        {"root", required_argument, NULL, 'd'},
	        {"segment-bytes", required_argument, NULL, OPT_SEGB},
	        {"threads", required_argument, NULL, 'j'},
	        {"type", required_argument, NULL, OPT_TYPE},
	        {"wait", no_argument, NULL, OPT_WAIT},
	        {NULL, 0, NULL, 0},
	};
	struct vindex x;
	struct index_spec spec;
	const char *rootopt = NULL;
	char *lockpath = NULL;
	int ch, all = 0, compact = 0, wait = 0, set_spec = 0, nparams = 0, lockfd = -1, busy;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	params = calloc((size_t)argc, sizeof *params);
	if (params == NULL) {
		fprintf(stderr, "vdb-index: fatal: out of memory\n");
		return EXIT_TEMP;
	}
	memset(&x, 0, sizeof x);
	memset(&spec, 0, sizeof spec);
	x.threads = ncpu > 0 ? (int)ncpu : 1;
	x.grace = 600;
	x.segment_bytes = 512ull << 20;
	while ((ch = getopt_long(argc, argv, "d:hj:p:", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			rootopt = optarg;
			break;
		case 'h':
			fputs(USAGE, stdout);
			return 0;
		case 'j':
			x.threads = (int)number("threads", optarg, 1, 256);
			break;
		case 'p':
			/* applied once the type is known */
			params[nparams++] = optarg;
			break;
		case OPT_ALL:
			all = 1;
			break;
		case OPT_COMPACT:
			compact = 1;
			break;
		case OPT_GRACE:
			x.grace = number("grace", optarg, 0, INT_MAX);
			break;
		case OPT_SEGB:
			x.segment_bytes =
			        (uint64_t)number("segment-bytes", optarg, 4096, 1ll << 40);
			break;
		case OPT_TYPE:
			if ((spec.type = index_type_parse(optarg)) < 0) {
				fprintf(stderr,
				        "vdb-index: fatal: --type: '%s' is not one of flat, hnsw, "
				        "ivf_flat, ivf_sq8, ivf_pq\n",
				        optarg);
				return EXIT_PERM;
			}
			set_spec = 1;
			break;
		case OPT_WAIT:
			wait = 1;
			break;
		default:
			usage();
		}
	}
	if (nparams && !set_spec) {
		fprintf(stderr, "vdb-index: fatal: -p needs --type\n");
		return EXIT_PERM;
	}
	for (int i = 0; i < nparams; i++)
		check(index_spec_set_kv(&spec, params[i], &e));
	argc -= optind;
	argv += optind;
	if (all + compact > 1 || (all && (argc != 0 || set_spec)) || (!all && argc != 1) ||
	    (compact && set_spec))
		usage();
	x.progress = isatty(2);
	check(root_path(rootopt, &rootopt, &e));
	check(root_open(rootopt, &x.r, &e));
	if ((lockpath = path_join(rootopt, "index.lock")) == NULL) {
		vdb_err_set(&e, VDB_ETEMP, "out of memory");
		fatal(VDB_ETEMP);
	}
	if (file_flock(lockpath, LOCK_EX | (wait ? 0 : LOCK_NB), &lockfd, &busy, &e) != VDB_OK) {
		if (busy)
			vdb_err_set(&e, VDB_ETEMP,
			            "%s: another vdb-index is running (--wait waits for it)",
			            lockpath);
		fatal(VDB_ETEMP);
	}
	if (all) {
		struct schema *v;
		size_t n;
		check(meta_collection_list(x.r->meta, &v, &n, &e));
		for (size_t i = 0; i < n; i++)
			check(vindex_build(&x, &v[i], &e));
		free(v);
	} else {
		struct schema sc;
		check(meta_collection_get(x.r->meta, argv[0], &sc, &e));
		if (set_spec) {
			check(index_spec_check(&spec, sc.dim, &e));
			check(meta_index_spec_set(x.r->meta, sc.id, &spec, &e));
		}
		if (compact)
			check(vindex_compact(&x, &sc, &e));
		check(vindex_build(&x, &sc, &e));
	}
	check(vindex_gc(&x, &e));
	if (x.progress || x.built || x.compacted || x.deleted || x.retired)
		fprintf(stderr,
		        "vdb-index: %llu indexes built, %llu segments compacted into %llu, %llu "
		        "indexes retired, %llu objects deleted\n",
		        (unsigned long long)x.built, (unsigned long long)x.compacted,
		        (unsigned long long)x.merged_into, (unsigned long long)x.retired,
		        (unsigned long long)x.deleted);
	file_unlock(lockfd);
	free(lockpath);
	free(params);
	root_close(x.r);
	return x.failed ? vdb_exit_code(x.failed) : 0;
}
