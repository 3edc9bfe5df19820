/* vdb-admin: create and check a root.  See vdb-admin(1). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "schema.h"

static const char USAGE[] = "usage: vdb-admin init root\n"
                            "       vdb-admin [-d root] verify\n"
                            "       vdb-admin [-d root] dump collection\n";

static void
usage(void)
{
	fputs(USAGE, stderr);
	exit(EXIT_PERM);
}

static int
fail(int rc, const struct vdb_err *e)
{
	fprintf(stderr, "vdb-admin: fatal: %s\n", e->msg);
	return vdb_exit_code(rc);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"help", no_argument, NULL, 'h'},
	        {"root", required_argument, NULL, 'd'},
	        {NULL, 0, NULL, 0},
	};
	struct vdb_err e = {0};
	const char *rootopt = NULL;
	struct root *r = NULL;
	unsigned long problems = 0;
	int ch, rc, existed;

	while ((ch = getopt_long(argc, argv, "+d:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			rootopt = optarg;
			break;
		case 'h':
			fputs(USAGE, stdout);
			return 0;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (strcmp(argv[0], "init") == 0) {
		if (argc != 2)
			usage();
		if ((rc = root_init(argv[1], &existed, &e)) != VDB_OK)
			return fail(rc, &e);
		if (existed)
			fprintf(stderr, "vdb-admin: %s is already a vdb root\n", argv[1]);
		return 0;
	}
	if (strcmp(argv[0], "verify") == 0 ? argc != 1
	    : strcmp(argv[0], "dump") == 0 ? argc != 2
	                                   : 1)
		usage();
	if ((rc = root_path(rootopt, &rootopt, &e)) != VDB_OK ||
	    (rc = root_open(rootopt, &r, &e)) != VDB_OK)
		return fail(rc, &e);
	if (strcmp(argv[0], "verify") == 0)
		rc = admin_verify(r, &problems, &e);
	else if ((rc = name_check(argv[1], "collection", &e)) == VDB_OK)
		rc = admin_dump(r, argv[1], &e);
	root_close(r);
	if (fflush(stdout) != 0 && rc == VDB_OK)
		rc = vdb_err_errno(&e, VDB_ETEMP, "stdout");
	if (rc != VDB_OK)
		return fail(rc, &e);
	return problems ? EXIT_NEGATIVE : 0;
}
