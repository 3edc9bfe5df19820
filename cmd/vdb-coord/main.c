/* vdb-coord: the network front door and supervisor of `vdb-query serve`
 * workers.  See vdb-coord(8), coord.h for the files, formats/wire.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coord.h"
#include "root.h"

static const char USAGE[] =
        "usage: vdb-coord [-d root] [--config file] [--idle-timeout seconds]\n"
        "                 [--listen address]... [--max-conns n] [--syslog]\n"
        "                 [--timeout seconds] [--worker command] [--workers n]\n";

struct coord co;
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
	fprintf(stderr, "vdb-coord: fatal: %s\n", e.msg);
	exit(vdb_exit_code(rc));
}

static void
check(int rc)
{
	if (rc != VDB_OK)
		fatal(rc);
}

/* std_fds: a daemon started with 0, 1 or 2 closed would hand those
 * numbers to sockets, and a worker's stdout could land on a client */
static void
std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			exit(EXIT_INTERNAL);
}

/* inherited_cloexec: descriptors coord inherited (from a shell, a
 * supervisor) stay coord's and do not leak into workers, which get
 * stdin, stdout and stderr only */
static void
inherited_cloexec(void)
{
	DIR *d;
	struct dirent *de;
	int fd;

	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	/* an older kernel: one by one */
	if ((d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		fd = atoi(de->d_name);
		if (fd > 2 && fd != dirfd(d))
			fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
	}
	closedir(d);
}

/* self_dir_query: vdb-query next to our own executable, so an installed
 * or freshly built set of programs finds its own kind before $PATH */
static char *
self_dir_query(void)
{
	size_t cap = 256;
	char *buf = NULL, *slash, *p = NULL;
	ssize_t n;

	for (;;) {
		char *nb = realloc(buf, cap);
		if (nb == NULL)
			goto out;
		buf = nb;
		n = readlink("/proc/self/exe", buf, cap);
		if (n < 0)
			goto out;
		if ((size_t)n < cap)
			break;
		cap *= 2;
	}
	buf[n] = '\0';
	if ((slash = strrchr(buf, '/')) == NULL)
		goto out;
	*slash = '\0';
	if ((p = malloc(strlen(buf) + sizeof("/vdb-query"))) == NULL)
		goto out;
	sprintf(p, "%s/vdb-query", buf);
	if (access(p, X_OK) != 0) {
		free(p);
		p = NULL;
	}
out:
	free(buf);
	return p;
}

static int
in_path(const char *prog)
{
	const char *path = getenv("PATH"), *s, *colon;
	char *p;
	int found = 0;

	for (s = path; s && *s && !found; s = *colon ? colon + 1 : colon) {
		colon = strchrnul(s, ':');
		if ((p = malloc((size_t)(colon - s) + strlen(prog) + 2)) == NULL)
			return 0;
		sprintf(p, "%.*s/%s", (int)(colon - s), s, prog);
		found = access(p, X_OK) == 0;
		free(p);
	}
	return found;
}

/* more_fds: a connection costs one descriptor, and its worker one more */
static void
more_fds(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"help", no_argument, NULL, 'h'},
	        {"idle-timeout", required_argument, NULL, 'I'},
	        {"listen", required_argument, NULL, 'l'},
	        {"max-conns", required_argument, NULL, 'm'},
	        {"root", required_argument, NULL, 'd'},
	        {"syslog", no_argument, NULL, 's'},
	        {"timeout", required_argument, NULL, 't'},
	        {"worker", required_argument, NULL, 'W'},
	        {"workers", required_argument, NULL, 'w'},
	        {NULL, 0, NULL, 0},
	};
	const char *rootopt = NULL, *key;
	struct config file;
	struct listener *l;
	struct stat st;
	int ch, rc;

	std_fds();
	inherited_cloexec();
	config_defaults(&co.cli);
	co.cli.set = 0;
	while ((ch = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		key = NULL;
		switch (ch) {
		case 'c':
			co.config_path = optarg;
			break;
		case 'd':
			rootopt = optarg;
			break;
		case 'h':
			fputs(USAGE, stdout);
			return 0;
		case 'I':
			key = "idle-timeout";
			break;
		case 'l':
			key = "listen";
			break;
		case 'm':
			key = "max-conns";
			break;
		case 's':
			key = "syslog";
			optarg = "yes";
			break;
		case 't':
			key = "timeout";
			break;
		case 'W':
			key = "worker";
			break;
		case 'w':
			key = "workers";
			break;
		default:
			usage();
		}
		if (key && (rc = config_set(&co.cli, key, optarg, &e)) != VDB_OK) {
			vdb_err_prefix(&e, "--");
			fatal(rc);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 0)
		usage();

	check(root_path(rootopt, &co.root, &e));
	if (stat(co.root, &st) != 0)
		check(vdb_err_errno(&e, VDB_EINPUT, "%s", co.root));
	if (!S_ISDIR(st.st_mode))
		check(vdb_err_set(&e, VDB_EINPUT, "%s: not a directory", co.root));
	config_defaults(&co.cfg);
	if (co.config_path) {
		config_defaults(&file);
		check(config_read(co.config_path, &file, &e));
		check(config_merge(&co.cfg, &file, &e));
		config_free(&file);
	}
	check(config_merge(&co.cfg, &co.cli, &e));
	if (co.cfg.nlisten == 0)
		check(vdb_err_set(&e, VDB_EINPUT,
		                  "nothing to listen on: give --listen or 'listen' in the config"));
	/* the worker command finds the root here (formats/wire.md workers
	 * take -d, a --worker shell command reads $VDB_ROOT) */
	if (setenv("VDB_ROOT", co.root, 1) != 0)
		check(vdb_err_errno(&e, VDB_ETEMP, "setenv"));
	co.query_path = self_dir_query();
	if (co.query_path == NULL && co.cfg.worker == NULL && !in_path("vdb-query"))
		check(vdb_err_set(
		        &e, VDB_EINPUT,
		        "vdb-query: not next to vdb-coord nor in PATH (or give --worker)"));
	more_fds();
	check(loop_signals(&e));

	/* bound before the first log line, so a start that fails says one
	 * line only */
	for (size_t i = 0; i < co.cfg.nlisten; i++) {
		if ((rc = listen_open(co.cfg.listen[i], &e)) != VDB_OK) {
			listen_close_all();
			fatal(rc);
		}
	}
	log_open(co.cfg.syslog);
	if (co.cfg.workers > 0)
		log_msg("start: pid %d, root %s, pool of %d workers, timeout %gs, max-conns %d",
		        (int)getpid(), co.root, co.cfg.workers, (double)co.cfg.timeout_ms / 1000,
		        co.cfg.max_conns);
	else
		log_msg("start: pid %d, root %s, a worker per connection, timeout %gs, "
		        "max-conns %d",
		        (int)getpid(), co.root, (double)co.cfg.timeout_ms / 1000, co.cfg.max_conns);
	for (l = co.listeners; l; l = l->next)
		log_msg("listening on %s", l->name);
	pool_apply();
	rc = loop_run();
	listen_close_all();
	return rc;
}
