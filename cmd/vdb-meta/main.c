/* vdb-meta: collections, partitions, segments and timestamps in the
 * catalogue.  See vdb-meta(1). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "index.h"
#include "meta.h"
#include "root.h"
#include "schema.h"

static const char USAGE[] =
        "usage: vdb-meta [-d root] create name --dim n [--auto-id] [--field name:type]...\n"
        "                [--metric l2|ip|cosine]\n"
        "       vdb-meta [-d root] list\n"
        "       vdb-meta [-d root] show name\n"
        "       vdb-meta [-d root] drop name\n"
        "       vdb-meta [-d root] index name [type [param=value]...]\n"
        "       vdb-meta [-d root] partition create|list|drop collection [partition]\n"
        "       vdb-meta [-d root] segments name\n"
        "       vdb-meta [-d root] ts\n";

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
	fprintf(stderr, "vdb-meta: fatal: %s\n", e.msg);
	exit(vdb_exit_code(rc));
}

static void
check(int rc)
{
	if (rc != VDB_OK)
		fatal(rc);
}

static void
out_flush(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		vdb_err_errno(&e, VDB_ETEMP, "stdout");
		fatal(VDB_ETEMP);
	}
}

static int
cmd_create(struct root *r, int argc, char **argv)
{
	static const struct option opts[] = {
	        {"auto-id", no_argument, NULL, 'a'},
	        {"dim", required_argument, NULL, 'n'},
	        {"field", required_argument, NULL, 'f'},
	        {"metric", required_argument, NULL, 'm'},
	        {NULL, 0, NULL, 0},
	};
	struct schema s;
	struct field f;
	char *end;
	long dim = 0;
	int ch;

	memset(&s, 0, sizeof(s));
	s.metric = METRIC_L2;
	optind = 0; /* GNU getopt: start over, permuting the name past options */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			s.auto_id = 1;
			break;
		case 'n':
			errno = 0;
			dim = strtol(optarg, &end, 10);
			if (errno || *end || dim < 1 || dim > VDB_MAX_DIM) {
				vdb_err_set(&e, VDB_EINPUT, "--dim: '%s' is not from 1 to %d",
				            optarg, VDB_MAX_DIM);
				fatal(VDB_EINPUT);
			}
			break;
		case 'f':
			check(field_parse(optarg, &f, &e));
			check(schema_add_field(&s, &f, &e));
			break;
		case 'm':
			if (metric_parse(optarg, &s.metric) != 0) {
				vdb_err_set(&e, VDB_EINPUT, "--metric: want l2, ip or cosine");
				fatal(VDB_EINPUT);
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if (dim == 0) {
		vdb_err_set(&e, VDB_EINPUT, "create: --dim is required");
		fatal(VDB_EINPUT);
	}
	check(name_check(argv[optind], "collection", &e));
	snprintf(s.name, sizeof(s.name), "%s", argv[optind]);
	s.dim = (uint32_t)dim;
	check(meta_collection_create(r->meta, &s, &e));
	return 0;
}

static json_t *
schema_json(struct root *r, const struct schema *s)
{
	json_t *o = json_object(), *fields = json_array(), *parts = json_array();
	struct part_info *pv;
	struct seg_info *sv;
	size_t np, ns;
	uint64_t rows = 0, bytes = 0;
	struct index_spec spec;
	char text[META_SPEC_MAX];

	json_object_set_new(o, "name", json_string(s->name));
	json_object_set_new(o, "id", json_integer(s->id));
	json_object_set_new(o, "dim", json_integer(s->dim));
	json_object_set_new(o, "metric", json_string(metric_name(s->metric)));
	json_object_set_new(o, "auto_id", json_boolean(s->auto_id));
	for (uint32_t i = 0; i < s->nfields; i++) {
		json_t *f = json_object();
		json_object_set_new(f, "name", json_string(s->fields[i].name));
		json_object_set_new(f, "type", json_string(ftype_name(s->fields[i].type)));
		if (s->fields[i].type == FT_STRING)
			json_object_set_new(f, "max_len", json_integer(s->fields[i].max_len));
		json_array_append_new(fields, f);
	}
	json_object_set_new(o, "fields", fields);
	check(meta_partition_list(r->meta, s->id, &pv, &np, &e));
	for (size_t i = 0; i < np; i++)
		json_array_append_new(parts, json_string(pv[i].name));
	free(pv);
	json_object_set_new(o, "partitions", parts);
	check(meta_segments(r->meta, s->id, &sv, &ns, &e));
	for (size_t i = 0; i < ns; i++) {
		rows += sv[i].rows;
		bytes += sv[i].bytes;
	}
	free(sv);
	json_object_set_new(o, "segments", json_integer((json_int_t)ns));
	json_object_set_new(o, "sealed_rows", json_integer((json_int_t)rows));
	json_object_set_new(o, "sealed_bytes", json_integer((json_int_t)bytes));
	check(meta_index_spec_get(r->meta, s->id, &spec, &e));
	index_spec_format(&spec, text, sizeof text);
	json_object_set_new(o, "index", json_string(text));
	return o;
}

static int
cmd_show(struct root *r, const char *name)
{
	struct schema s;
	json_t *o;
	char *txt;

	check(meta_collection_get(r->meta, name, &s, &e));
	o = schema_json(r, &s);
	txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (txt == NULL) {
		vdb_err_set(&e, VDB_ETEMP, "out of memory");
		fatal(VDB_ETEMP);
	}
	printf("%s\n", txt);
	free(txt);
	json_decref(o);
	return 0;
}

static int
cmd_list(struct root *r)
{
	struct schema *v;
	size_t n;

	check(meta_collection_list(r->meta, &v, &n, &e));
	for (size_t i = 0; i < n; i++)
		printf("%s\n", v[i].name);
	free(v);
	return 0;
}

/* delete_objects: after the catalogue let go of them */
static void
delete_objects(struct root *r, char (*obj)[65], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct vdb_err de;
		if (store_delete(r->store, obj[i], &de) != VDB_OK)
			fprintf(stderr, "vdb-meta: warning: %s (left behind)\n", de.msg);
	}
	free(obj);
}

static void
remove_log_dir(struct root *r, int64_t cid)
{
	char *dir = path_fmt("%s/log/%lld", r->path, (long long)cid);
	DIR *dp = dir ? opendir(dir) : NULL;
	struct dirent *d;

	if (dp) {
		while ((d = readdir(dp)) != NULL) {
			char *p;
			if (d->d_name[0] == '.')
				continue;
			p = path_join(dir, d->d_name);
			if (p)
				unlink(p);
			free(p);
		}
		closedir(dp);
		rmdir(dir);
	}
	free(dir);
}

/* lock_collection: wait for a running seal, append or delete to finish
 * and hold them off; the order is the seal's (seal, then append) so the
 * two never deadlock */
static void
lock_collection(struct root *r, int64_t cid, int lockfd[3])
{
	static const char *locks[] = {"seal.lock", "append.lock", "delete.lock"};
	char *dir = path_fmt("%s/log/%lld", r->path, (long long)cid), *lock;

	for (int i = 0; i < 3; i++)
		lockfd[i] = -1;
	if (dir && file_mkdir(dir, NULL) == VDB_OK) {
		for (int i = 0; i < 3; i++) {
			lock = path_join(dir, locks[i]);
			if (lock)
				check(file_lock(lock, 0, &lockfd[i], &e));
			free(lock);
		}
	}
	free(dir);
}

static void
unlock_collection(int lockfd[3])
{
	for (int i = 0; i < 3; i++)
		file_unlock(lockfd[i]);
}

static int
cmd_drop(struct root *r, const char *name)
{
	struct schema s;
	char(*obj)[65] = NULL;
	size_t n = 0;
	int lockfd[3];

	check(meta_collection_get(r->meta, name, &s, &e));
	lock_collection(r, s.id, lockfd);
	check(meta_collection_drop(r->meta, s.id, &obj, &n, &e));
	remove_log_dir(r, s.id);
	unlock_collection(lockfd);
	delete_objects(r, obj, n);
	return 0;
}

static int
cmd_partition(struct root *r, int argc, char **argv)
{
	struct schema s;
	struct part_info *pv;
	char(*obj)[65] = NULL;
	size_t n;

	if (argc < 3 ||
	    (strcmp(argv[1], "list") && strcmp(argv[1], "create") && strcmp(argv[1], "drop")))
		usage();
	check(meta_collection_get(r->meta, argv[2], &s, &e));
	if (strcmp(argv[1], "list") == 0 && argc == 3) {
		check(meta_partition_list(r->meta, s.id, &pv, &n, &e));
		for (size_t i = 0; i < n; i++)
			printf("%s\n", pv[i].name);
		free(pv);
		return 0;
	}
	if (argc != 4)
		usage();
	check(name_check(argv[3], "partition", &e));
	if (strcmp(argv[1], "create") == 0) {
		check(meta_partition_create(r->meta, s.id, argv[3], &e));
	} else if (strcmp(argv[1], "drop") == 0) {
		int lockfd[3];
		lock_collection(r, s.id, lockfd);
		check(meta_partition_drop(r->meta, s.id, argv[3], &obj, &n, &e));
		unlock_collection(lockfd);
		delete_objects(r, obj, n);
	} else {
		usage();
	}
	return 0;
}

static int
cmd_segments(struct root *r, const char *name)
{
	struct schema s;
	struct seg_info *v;
	size_t n;

	check(meta_collection_get(r->meta, name, &s, &e));
	check(meta_segments(r->meta, s.id, &v, &n, &e));
	for (size_t i = 0; i < n; i++)
		printf("%" PRId64 "\t%s\t%" PRIu64 "\t%" PRIu64 "\t%s\t%" PRId64 "\t%" PRId64
		       "\t%" PRIu64 "\t%" PRIu64 "\n",
		       v[i].id, v[i].partition, v[i].rows, v[i].bytes, v[i].object, v[i].min_id,
		       v[i].max_id, v[i].min_ts, v[i].max_ts);
	free(v);
	return 0;
}

/* cmd_index: print the collection's index spec, or set it (vdb-index
 * builds what it asks for) */
static int
cmd_index(struct root *r, int argc, char **argv)
{
	struct schema s;
	struct index_spec spec;
	char text[META_SPEC_MAX];

	check(meta_collection_get(r->meta, argv[1], &s, &e));
	if (argc == 2) {
		check(meta_index_spec_get(r->meta, s.id, &spec, &e));
		index_spec_format(&spec, text, sizeof text);
		printf("%s\n", text);
		return 0;
	}
	memset(&spec, 0, sizeof spec);
	if ((spec.type = index_type_parse(argv[2])) < 0) {
		vdb_err_set(&e, VDB_EINPUT,
		            "unknown index type '%.40s' (flat, hnsw, ivf_flat, ivf_sq8, ivf_pq)",
		            argv[2]);
		fatal(VDB_EINPUT);
	}
	for (int i = 3; i < argc; i++)
		check(index_spec_set_kv(&spec, argv[i], &e));
	check(index_spec_check(&spec, s.dim, &e));
	check(meta_index_spec_set(r->meta, s.id, &spec, &e));
	return 0;
}

static int
cmd_ts(struct root *r)
{
	uint64_t ts;

	check(meta_ts_alloc(r->meta, &ts, &e));
	printf("%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", ts, ts >> HTS_LOGICAL_BITS,
	       ts & ((1u << HTS_LOGICAL_BITS) - 1));
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"help", no_argument, NULL, 'h'},
	        {"root", required_argument, NULL, 'd'},
	        {NULL, 0, NULL, 0},
	};
	const char *rootopt = NULL, *cmd;
	struct root *r;
	int ch, rc;

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
	cmd = argv[0];
	if (strcmp(cmd, "create") && strcmp(cmd, "list") && strcmp(cmd, "show") &&
	    strcmp(cmd, "drop") && strcmp(cmd, "partition") && strcmp(cmd, "segments") &&
	    strcmp(cmd, "ts") && strcmp(cmd, "index"))
		usage();
	if ((strcmp(cmd, "list") == 0 || strcmp(cmd, "ts") == 0) && argc != 1)
		usage();
	if ((strcmp(cmd, "show") == 0 || strcmp(cmd, "drop") == 0 ||
	     strcmp(cmd, "segments") == 0) &&
	    argc != 2)
		usage();
	if (strcmp(cmd, "index") == 0 && argc < 2)
		usage();
	check(root_path(rootopt, &rootopt, &e));
	check(root_open(rootopt, &r, &e));
	if (strcmp(cmd, "create") == 0)
		rc = cmd_create(r, argc, argv);
	else if (strcmp(cmd, "list") == 0)
		rc = cmd_list(r);
	else if (strcmp(cmd, "show") == 0)
		rc = cmd_show(r, argv[1]);
	else if (strcmp(cmd, "drop") == 0)
		rc = cmd_drop(r, argv[1]);
	else if (strcmp(cmd, "partition") == 0)
		rc = cmd_partition(r, argc, argv);
	else if (strcmp(cmd, "segments") == 0)
		rc = cmd_segments(r, argv[1]);
	else if (strcmp(cmd, "index") == 0)
		rc = cmd_index(r, argc, argv);
	else
		rc = cmd_ts(r);
	out_flush();
	root_close(r);
	return rc;
}
