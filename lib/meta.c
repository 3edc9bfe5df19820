/* meta.c: the catalogue.  Spec: formats/meta.md. */
#include "meta.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prepared statements are kept for the life of the connection: a
 * long-lived reader (vdb-query serve) takes a snapshot per request, and
 * preparing its handful of statements anew each time cost more than a
 * small search.  Keyed by the SQL text; one in use is not handed out
 * again (a second user gets a statement of its own, finalized after). */
#define STMT_CACHE 32

struct stmt_slot {
	const char *sql;
	sqlite3_stmt *st;
	int busy;
};

struct meta {
	sqlite3 *db;
	char *path;
	struct stmt_slot stmts[STMT_CACHE];
	int nstmts;
};

/* Each entry migrates user_version i to i+1; append, never edit. */
static const char *migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE collections ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  name TEXT NOT NULL UNIQUE,"
        "  dim INTEGER NOT NULL CHECK (dim BETWEEN 1 AND 32768),"
        "  metric TEXT NOT NULL CHECK (metric IN ('l2','ip','cosine')),"
        "  auto_id INTEGER NOT NULL DEFAULT 0,"
        "  next_auto_id INTEGER NOT NULL DEFAULT 0,"
        "  created INTEGER NOT NULL);"
        "CREATE TABLE fields ("
        "  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
        "  pos INTEGER NOT NULL,"
        "  name TEXT NOT NULL,"
        "  type TEXT NOT NULL CHECK (type IN ('int64','double','bool','string')),"
        "  max_len INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (collection_id, pos), UNIQUE (collection_id, name));"
        "CREATE TABLE partitions ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
        "  name TEXT NOT NULL,"
        "  created INTEGER NOT NULL,"
        "  UNIQUE (collection_id, name));"
        "CREATE TABLE segments ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
        "  partition_id INTEGER NOT NULL REFERENCES partitions(id) ON DELETE CASCADE,"
        "  object TEXT NOT NULL,"
        "  rows INTEGER NOT NULL, bytes INTEGER NOT NULL,"
        "  min_id INTEGER NOT NULL, max_id INTEGER NOT NULL,"
        "  min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL,"
        "  created INTEGER NOT NULL);"
        "CREATE INDEX segments_collection ON segments(collection_id);"
        "CREATE INDEX segments_object ON segments(object);"
        "CREATE TABLE streams ("
        "  collection_id INTEGER PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,"
        "  sealed_seq INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE tso (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);"
        "INSERT INTO tso VALUES (1, 0);",
        /* 1 -> 2: indexes, and objects waiting out their grace period */
        "CREATE TABLE collection_index ("
        "  collection_id INTEGER PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,"
        "  type TEXT NOT NULL CHECK (type IN ('flat','hnsw','ivf_flat','ivf_sq8','ivf_pq')),"
        "  m INTEGER NOT NULL DEFAULT 0,"
        "  ef_construction INTEGER NOT NULL DEFAULT 0,"
        "  nlist INTEGER NOT NULL DEFAULT 0,"
        "  pq_m INTEGER NOT NULL DEFAULT 0,"
        "  spec TEXT NOT NULL);"
        "CREATE TABLE indexes ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
        "  segment_object TEXT NOT NULL,"
        "  spec TEXT NOT NULL,"
        "  type TEXT NOT NULL CHECK (type IN ('hnsw','ivf_flat','ivf_sq8','ivf_pq')),"
        "  object TEXT NOT NULL,"
        "  bytes INTEGER NOT NULL,"
        "  created INTEGER NOT NULL,"
        "  UNIQUE (collection_id, segment_object, spec));"
        "CREATE INDEX indexes_object ON indexes(object);"
        "CREATE TABLE trash ("
        "  object TEXT PRIMARY KEY,"
        "  since INTEGER NOT NULL);",
};
#define NMIGRATIONS (int)(sizeof(migrations) / sizeof(migrations[0]))

static int
dberr(struct meta *m, struct vdb_err *e, const char *what)
{
	int code = sqlite3_errcode(m->db);
	int rc = VDB_EINTERNAL;

	if (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_IOERR ||
	    code == SQLITE_FULL || code == SQLITE_NOMEM || code == SQLITE_CANTOPEN ||
	    code == SQLITE_READONLY)
		rc = VDB_ETEMP;
	else if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
		rc = VDB_ECORRUPT;
	else if (sqlite3_extended_errcode(m->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
		rc = VDB_ETEMP; /* dropped under us: a retry sees the new state */
	else if (code == SQLITE_CONSTRAINT)
		rc = VDB_EEXIST;
	return vdb_err_set(e, rc, "%s: %s: %s", m->path, what, sqlite3_errmsg(m->db));
}

static int
exec(struct meta *m, const char *sql, struct vdb_err *e)
{
	if (sqlite3_exec(m->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return dberr(m, e, sql);
	return VDB_OK;
}

static int
prep(struct meta *m, const char *sql, sqlite3_stmt **st, struct vdb_err *e)
{
	struct stmt_slot *c = NULL;

	for (int i = 0; i < m->nstmts; i++)
		if (strcmp(m->stmts[i].sql, sql) == 0) {
			c = &m->stmts[i];
			if (!c->busy) {
				c->busy = 1;
				*st = c->st;
				return VDB_OK;
			}
			break;
		}
	if (sqlite3_prepare_v2(m->db, sql, -1, st, NULL) != SQLITE_OK)
		return dberr(m, e, "prepare");
	if (c == NULL && m->nstmts < STMT_CACHE) {
		/* sqlite3_sql: the statement's own copy of the text */
		m->stmts[m->nstmts++] = (struct stmt_slot){sqlite3_sql(*st), *st, 1};
	}
	return VDB_OK;
}

/* unprep: done with a statement from prep: a kept one is reset for the
 * next user (which also ends its read of the database), others finalized */
static void
unprep(struct meta *m, sqlite3_stmt *st)
{
	for (int i = 0; i < m->nstmts; i++)
		if (m->stmts[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			m->stmts[i].busy = 0;
			return;
		}
	sqlite3_finalize(st);
}

/* grow: room for one more element in a malloc'd array of *cap */
static int
grow(void *vp, size_t len, size_t *cap, size_t size)
{
	void **v = vp, *nv;

	if (len < *cap)
		return 0;
	nv = realloc(*v, (*cap ? *cap * 2 : 16) * size);
	if (nv == NULL)
		return -1;
	*v = nv;
	*cap = *cap ? *cap * 2 : 16;
	return 0;
}

static int
rollback(struct meta *m, int rc)
{
	sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int
pragma_int(struct meta *m, const char *sql, int *v, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prep(m, sql, &st, e)) != VDB_OK)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = dberr(m, e, sql);
	} else {
		*v = sqlite3_column_int(st, 0);
	}
	unprep(m, st);
	return rc;
}

static int
migrate(struct meta *m, struct vdb_err *e)
{
	int ver, rc;
	char sql[64];

	if ((rc = exec(m, "BEGIN IMMEDIATE", e)) != VDB_OK)
		return rc;
	if ((rc = pragma_int(m, "PRAGMA user_version", &ver, e)) != VDB_OK)
		return rollback(m, rc);
	if (ver > NMIGRATIONS) {
		vdb_err_set(e, VDB_EINPUT,
		            "%s: catalogue schema version %d is newer than this vdb (%d)", m->path,
		            ver, NMIGRATIONS);
		return rollback(m, VDB_EINPUT);
	}
	for (; ver < NMIGRATIONS; ver++) {
		if ((rc = exec(m, migrations[ver], e)) != VDB_OK)
			return rollback(m, rc);
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", ver + 1);
		if ((rc = exec(m, sql, e)) != VDB_OK)
			return rollback(m, rc);
	}
	if ((rc = exec(m, "COMMIT", e)) != VDB_OK)
		return rollback(m, rc);
	return VDB_OK;
}

int
meta_open(const char *path, int create, struct meta **out, struct vdb_err *e)
{
	struct meta *m;
	int appid, rc, flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	char sql[64];

	if (create)
		flags |= SQLITE_OPEN_CREATE;
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->path = strdup(path)) == NULL) {
		free(m);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	if (sqlite3_open_v2(path, &m->db, flags, NULL) != SQLITE_OK) {
		rc = dberr(m, e, "open");
		goto fail;
	}
	sqlite3_busy_timeout(m->db, 30000);
	if ((rc = pragma_int(m, "PRAGMA application_id", &appid, e)) != VDB_OK)
		goto fail;
	if (appid != META_APPLICATION_ID) {
		int tables = 1;
		/* only an empty database may become ours: never adopt another
		 * program's SQLite file that merely lacks an application id */
		if (create && appid == 0 &&
		    pragma_int(m, "SELECT count(*) FROM sqlite_master", &tables, e) != VDB_OK)
			tables = 1;
		if (!create || appid != 0 || tables != 0) {
			rc = vdb_err_set(e, VDB_EINPUT, "%s: not a vdb catalogue", path);
			goto fail;
		}
		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", META_APPLICATION_ID);
		if ((rc = exec(m, sql, e)) != VDB_OK)
			goto fail;
	}
	if ((rc = exec(m, "PRAGMA journal_mode = WAL", e)) != VDB_OK ||
	    (rc = exec(m, "PRAGMA synchronous = FULL", e)) != VDB_OK ||
	    (rc = exec(m, "PRAGMA foreign_keys = ON", e)) != VDB_OK)
		goto fail;
	if ((rc = migrate(m, e)) != VDB_OK)
		goto fail;
	*out = m;
	return VDB_OK;
fail:
	meta_close(m);
	return rc;
}

void
meta_close(struct meta *m)
{
	if (m == NULL)
		return;
	for (int i = 0; i < m->nstmts; i++)
		sqlite3_finalize(m->stmts[i].st);
	sqlite3_close(m->db);
	free(m->path);
	free(m);
}

int
meta_schema_version(struct meta *m)
{
	int v = -1;
	pragma_int(m, "PRAGMA user_version", &v, NULL);
	return v;
}

int
meta_collection_create(struct meta *m, struct schema *s, struct vdb_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	int64_t now = (int64_t)time(NULL);

	if ((rc = exec(m, "BEGIN IMMEDIATE", e)) != VDB_OK)
		return rc;
	if ((rc = prep(m,
	               "INSERT INTO collections (name, dim, metric, auto_id, created) "
	               "VALUES (?, ?, ?, ?, ?)",
	               &st, e)) != VDB_OK)
		goto fail;
	sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)s->dim);
	sqlite3_bind_text(st, 3, metric_name(s->metric), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, s->auto_id);
	sqlite3_bind_int64(st, 5, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		if (sqlite3_errcode(m->db) == SQLITE_CONSTRAINT)
			rc = vdb_err_set(e, VDB_EEXIST, "collection '%s' exists", s->name);
		else
			rc = dberr(m, e, "create collection");
		goto fail;
	}
	unprep(m, st);
	st = NULL;
	s->id = sqlite3_last_insert_rowid(m->db);
	if ((rc = prep(m, "INSERT INTO fields VALUES (?, ?, ?, ?, ?)", &st, e)) != VDB_OK)
		goto fail;
	for (uint32_t i = 0; i < s->nfields; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, s->id);
		sqlite3_bind_int(st, 2, (int)i);
		sqlite3_bind_text(st, 3, s->fields[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, ftype_name(s->fields[i].type), -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, (int)s->fields[i].max_len);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = dberr(m, e, "create field");
			goto fail;
		}
	}
	unprep(m, st);
	st = NULL;
	if ((rc = prep(m,
	               "INSERT INTO partitions (collection_id, name, created) "
	               "VALUES (?, '_default', ?)",
	               &st, e)) != VDB_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, s->id);
	sqlite3_bind_int64(st, 2, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = dberr(m, e, "create partition");
		goto fail;
	}
	unprep(m, st);
	st = NULL;
	if ((rc = prep(m, "INSERT INTO streams (collection_id) VALUES (?)", &st, e)) != VDB_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, s->id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = dberr(m, e, "create stream");
		goto fail;
	}
	unprep(m, st);
	return exec(m, "COMMIT", e) == VDB_OK ? VDB_OK : rollback(m, e->rc);
fail:
	unprep(m, st);
	return rollback(m, rc);
}

static int
load_fields(struct meta *m, struct schema *s, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((rc = prep(m,
	               "SELECT name, type, max_len FROM fields WHERE collection_id = ? "
	               "ORDER BY pos",
	               &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, s->id);
	s->nfields = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW && s->nfields < VDB_MAX_FIELDS) {
		struct field *f = &s->fields[s->nfields++];
		const char *type = (const char *)sqlite3_column_text(st, 1);
		snprintf(f->name, sizeof(f->name), "%s", sqlite3_column_text(st, 0));
		f->type = strcmp(type, "int64") == 0    ? FT_INT64
		          : strcmp(type, "double") == 0 ? FT_DOUBLE
		          : strcmp(type, "bool") == 0   ? FT_BOOL
		                                        : FT_STRING;
		f->max_len = (uint32_t)sqlite3_column_int(st, 2);
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		rc = dberr(m, e, "read fields");
	unprep(m, st);
	return rc;
}

static void
row_schema(sqlite3_stmt *st, struct schema *s)
{
	memset(s, 0, sizeof(*s));
	s->id = sqlite3_column_int64(st, 0);
	snprintf(s->name, sizeof(s->name), "%s", sqlite3_column_text(st, 1));
	s->dim = (uint32_t)sqlite3_column_int(st, 2);
	metric_parse((const char *)sqlite3_column_text(st, 3), &s->metric);
	s->auto_id = sqlite3_column_int(st, 4);
}

#define COLL_COLS "SELECT id, name, dim, metric, auto_id FROM collections "

static int
collection_get(struct meta *m, const char *name, int64_t id, struct schema *s, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((rc = prep(m, name ? COLL_COLS "WHERE name = ?" : COLL_COLS "WHERE id = ?", &st, e)) !=
	    VDB_OK)
		return rc;
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		row_schema(st, s);
	} else if (r == SQLITE_DONE) {
		if (name)
			rc = vdb_err_set(e, VDB_ENOENT, "no such collection: '%.300s'", name);
		else
			rc = vdb_err_set(e, VDB_ENOENT, "no such collection: id %lld",
			                 (long long)id);
	} else {
		rc = dberr(m, e, "read collection");
	}
	unprep(m, st);
	if (rc == VDB_OK)
		rc = load_fields(m, s, e);
	return rc;
}

int
meta_collection_get(struct meta *m, const char *name, struct schema *s, struct vdb_err *e)
{
	return collection_get(m, name, 0, s, e);
}

int
meta_collection_get_id(struct meta *m, int64_t id, struct schema *s, struct vdb_err *e)
{
	return collection_get(m, NULL, id, s, e);
}

int
meta_collection_list(struct meta *m, struct schema **out, size_t *n, struct vdb_err *e)
{
	sqlite3_stmt *st;
	struct schema *v = NULL;
	size_t len = 0, cap = 0;
	int rc, r;

	if ((rc = prep(m, COLL_COLS "ORDER BY name", &st, e)) != VDB_OK)
		return rc;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (grow(&v, len, &cap, sizeof(*v)) != 0) {
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			goto out;
		}
		row_schema(st, &v[len++]);
	}
	if (r != SQLITE_DONE)
		rc = dberr(m, e, "list collections");
out:
	unprep(m, st);
	for (size_t i = 0; rc == VDB_OK && i < len; i++)
		rc = load_fields(m, &v[i], e);
	if (rc != VDB_OK) {
		free(v);
		return rc;
	}
	*out = v;
	*n = len;
	return VDB_OK;
}

/* collect_objects: object keys selected by sql with one int64 parameter */
static int
collect_objects(struct meta *m, const char *sql, int64_t a, char (**out)[65], size_t *n,
                struct vdb_err *e)
{
	sqlite3_stmt *st;
	char(*v)[65] = NULL;
	size_t len = 0, cap = 0;
	int rc, r;

	if ((rc = prep(m, sql, &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, a);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (grow(&v, len, &cap, sizeof(*v)) != 0) {
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			break;
		}
		snprintf(v[len++], 65, "%s", sqlite3_column_text(st, 0));
	}
	if (rc == VDB_OK && r != SQLITE_DONE)
		rc = dberr(m, e, "list objects");
	unprep(m, st);
	if (rc != VDB_OK) {
		free(v);
		return rc;
	}
	*out = v;
	*n = len;
	return VDB_OK;
}

static int
step_done(struct meta *m, sqlite3_stmt *st, const char *what, struct vdb_err *e)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? VDB_OK : dberr(m, e, what);
	unprep(m, st);
	return rc;
}

/* drop_owned: with a transaction open, collect the objects that only the
 * rows keyed by id reference (for the caller to delete once committed),
 * delete those rows, and commit; roll back on any failure */
static int
drop_owned(struct meta *m, const char *sql_objects, const char *sql_delete, int64_t id,
           char (**objects)[65], size_t *nobj, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc;

	*objects = NULL;
	if ((rc = collect_objects(m, sql_objects, id, objects, nobj, e)) != VDB_OK)
		goto fail;
	if ((rc = prep(m, sql_delete, &st, e)) != VDB_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = step_done(m, st, "drop", e)) != VDB_OK || (rc = exec(m, "COMMIT", e)) != VDB_OK)
		goto fail;
	return VDB_OK;
fail:
	free(*objects);
	*objects = NULL;
	return rollback(m, rc);
}

int
meta_collection_drop(struct meta *m, int64_t id, char (**objects)[65], size_t *nobj,
                     struct vdb_err *e)
{
	int rc;

	if ((rc = exec(m, "BEGIN IMMEDIATE", e)) != VDB_OK)
		return rc;
	return drop_owned(m,
	                  "SELECT DISTINCT object FROM segments WHERE collection_id = ?1 "
	                  "AND object NOT IN (SELECT object FROM segments "
	                  "WHERE collection_id != ?1) "
	                  "UNION SELECT object FROM indexes WHERE collection_id = ?1 "
	                  "AND object NOT IN (SELECT object FROM indexes "
	                  "WHERE collection_id != ?1)",
	                  "DELETE FROM collections WHERE id = ?", id, objects, nobj, e);
}

int
meta_partition_create(struct meta *m, int64_t cid, const char *name, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prep(m,
	               "INSERT INTO partitions (collection_id, name, created) "
	               "VALUES (?, ?, ?)",
	               &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, cid);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
	rc = step_done(m, st, "create partition", e);
	if (rc == VDB_EEXIST)
		vdb_err_set(e, VDB_EEXIST, "partition '%s' exists", name);
	return rc;
}

int
meta_partition_get(struct meta *m, int64_t cid, const char *name, int64_t *pid, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((rc = prep(m, "SELECT id FROM partitions WHERE collection_id = ? AND name = ?", &st,
	               e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, cid);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*pid = sqlite3_column_int64(st, 0);
	else if (r == SQLITE_DONE)
		rc = vdb_err_set(e, VDB_ENOENT, "no such partition: '%.300s'", name);
	else
		rc = dberr(m, e, "read partition");
	unprep(m, st);
	return rc;
}

int
meta_partition_list(struct meta *m, int64_t cid, struct part_info **out, size_t *n,
                    struct vdb_err *e)
{
	sqlite3_stmt *st;
	struct part_info *v = NULL;
	size_t len = 0, cap = 0;
	int rc, r;

	if ((rc = prep(m, "SELECT id, name FROM partitions WHERE collection_id = ? ORDER BY id",
	               &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, cid);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (grow(&v, len, &cap, sizeof(*v)) != 0) {
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			break;
		}
		v[len].id = sqlite3_column_int64(st, 0);
		snprintf(v[len].name, sizeof(v[len].name), "%s", sqlite3_column_text(st, 1));
		len++;
	}
	if (rc == VDB_OK && r != SQLITE_DONE)
		rc = dberr(m, e, "list partitions");
	unprep(m, st);
	if (rc != VDB_OK) {
		free(v);
		return rc;
	}
	*out = v;
	*n = len;
	return VDB_OK;
}

int
meta_partition_exists(struct meta *m, int64_t pid, int *exists, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((rc = prep(m, "SELECT 1 FROM partitions WHERE id = ?", &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, pid);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW || r == SQLITE_DONE)
		*exists = r == SQLITE_ROW;
	else
		rc = dberr(m, e, "read partition");
	unprep(m, st);
	return rc;
}

int
meta_partition_drop(struct meta *m, int64_t cid, const char *name, char (**objects)[65],
                    size_t *nobj, struct vdb_err *e)
{
	int64_t pid;
	int rc;

	if (strcmp(name, "_default") == 0)
		return vdb_err_set(e, VDB_EINPUT, "the _default partition cannot be dropped");
	if ((rc = exec(m, "BEGIN IMMEDIATE", e)) != VDB_OK)
		return rc;
	if ((rc = meta_partition_get(m, cid, name, &pid, e)) != VDB_OK)
		return rollback(m, rc);
	return drop_owned(m,
	                  "SELECT DISTINCT object FROM segments WHERE partition_id = ?1 "
	                  "AND object NOT IN (SELECT object FROM segments "
	                  "WHERE partition_id != ?1)",
	                  "DELETE FROM partitions WHERE id = ?", pid, objects, nobj, e);
}

int
meta_ts_last(struct meta *m, uint64_t *ts, struct vdb_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = prep(m, "SELECT last FROM tso WHERE id = 1", &st, e)) != VDB_OK)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = dberr(m, e, "read tso");
	else
		*ts = (uint64_t)sqlite3_column_int64(st, 0);
	unprep(m, st);
	return rc;
}

int
meta_ts_alloc(struct meta *m, uint64_t *ts, struct vdb_err *e)
{
	sqlite3_stmt *st = NULL;
	struct timespec now;
	uint64_t last, phys, next;
	int rc;

	if ((rc = exec(m, "BEGIN IMMEDIATE", e)) != VDB_OK)
		return rc;
	if ((rc = prep(m, "SELECT last FROM tso WHERE id = 1", &st, e)) != VDB_OK)
		goto fail;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = dberr(m, e, "read tso");
		goto fail;
	}
	last = (uint64_t)sqlite3_column_int64(st, 0);
	unprep(m, st);
	st = NULL;
	clock_gettime(CLOCK_REALTIME, &now);
	phys = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	/* a clock that steps back never makes a timestamp go back: the
	 * logical counter carries on from the last one handed out */
	next = phys << HTS_LOGICAL_BITS;
	if (next <= last)
		next = last + 1;
	if ((rc = prep(m, "UPDATE tso SET last = ? WHERE id = 1", &st, e)) != VDB_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, (int64_t)next);
	rc = step_done(m, st, "update tso", e);
	st = NULL;
	if (rc != VDB_OK)
		goto fail;
	if ((rc = exec(m, "COMMIT", e)) != VDB_OK)
		goto fail;
	*ts = next;
	return VDB_OK;
fail:
	unprep(m, st);
	return rollback(m, rc);
}

int
meta_autoid_alloc(struct meta *m, int64_t cid, uint64_t n, int64_t *first, struct vdb_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = prep(m,
	               "UPDATE collections SET next_auto_id = next_auto_id + ? WHERE id = ? "
	               "RETURNING next_auto_id",
	               &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)n);
	sqlite3_bind_int64(st, 2, cid);
	int r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		rc = vdb_err_set(e, VDB_ENOENT, "no such collection: id %lld (dropped?)",
		                 (long long)cid);
	} else if (r != SQLITE_ROW) {
		rc = dberr(m, e, "allocate ids");
	} else {
		*first = sqlite3_column_int64(st, 0) - (int64_t)n;
		/* the statement's own transaction commits as it finishes: ids
		 * are handed out only once that is known to have worked */
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = dberr(m, e, "allocate ids");
	}
	unprep(m, st);
	return rc;
}

/* each segment with the index a search should use: one of the current
 * spec if built, else the newest of another spec (still correct, and
 * better than none until vdb-index catches up); none when the spec is
 * flat */
#define SEG_COLS                                                                                   \
	"SELECT s.id, s.collection_id, s.partition_id, p.name, s.object, s.rows, s.bytes, "        \
	"s.min_id, s.max_id, s.min_ts, s.max_ts, s.created, ix.object, ix.type, ix.cur "           \
	"FROM segments s JOIN partitions p ON p.id = s.partition_id "                              \
	"LEFT JOIN (SELECT i.collection_id, i.segment_object, i.object, i.type, "                  \
	"i.spec = c.spec AS cur, ROW_NUMBER() OVER (PARTITION BY i.collection_id, "                \
	"i.segment_object ORDER BY i.spec = c.spec DESC, i.id DESC) AS rn FROM indexes i "         \
	"JOIN collection_index c ON c.collection_id = i.collection_id AND c.type != 'flat') ix "   \
	"ON ix.collection_id = s.collection_id AND ix.segment_object = s.object AND ix.rn = 1 "

int
meta_segments(struct meta *m, int64_t cid, struct seg_info **out, size_t *n, struct vdb_err *e)
{
	sqlite3_stmt *st;
	struct seg_info *v = NULL;
	size_t len = 0, cap = 0;
	int rc, r;

	if ((rc = prep(m, SEG_COLS "WHERE ?1 < 0 OR s.collection_id = ?1 ORDER BY s.id", &st, e)) !=
	    VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, cid);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (grow(&v, len, &cap, sizeof(*v)) != 0) {
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			break;
		}
		struct seg_info *s = &v[len++];
		s->id = sqlite3_column_int64(st, 0);
		s->collection_id = sqlite3_column_int64(st, 1);
		s->partition_id = sqlite3_column_int64(st, 2);
		snprintf(s->partition, sizeof(s->partition), "%s", sqlite3_column_text(st, 3));
		snprintf(s->object, sizeof(s->object), "%s", sqlite3_column_text(st, 4));
		s->rows = (uint64_t)sqlite3_column_int64(st, 5);
		s->bytes = (uint64_t)sqlite3_column_int64(st, 6);
		s->min_id = sqlite3_column_int64(st, 7);
		s->max_id = sqlite3_column_int64(st, 8);
		s->min_ts = (uint64_t)sqlite3_column_int64(st, 9);
		s->max_ts = (uint64_t)sqlite3_column_int64(st, 10);
		s->created = sqlite3_column_int64(st, 11);
		s->index[0] = '\0';
		s->index_type = IDX_FLAT;
		s->index_current = 0;
		if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
			snprintf(s->index, sizeof(s->index), "%s", sqlite3_column_text(st, 12));
			s->index_type = index_type_parse((const char *)sqlite3_column_text(st, 13));
			s->index_current = sqlite3_column_int(st, 14);
		}
	}
	if (rc == VDB_OK && r != SQLITE_DONE)
		rc = dberr(m, e, "list segments");
	unprep(m, st);
	if (rc != VDB_OK) {
		free(v);
		return rc;
	}
	*out = v;
	*n = len;
	return VDB_OK;
}

int
meta_stream_sealed(struct meta *m, int64_t cid, uint32_t *sealed_seq, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((rc = prep(m, "SELECT sealed_seq FROM streams WHERE collection_id = ?", &st, e)) !=
	    VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, cid);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*sealed_seq = (uint32_t)sqlite3_column_int64(st, 0);
	else if (r == SQLITE_DONE)
		rc = vdb_err_set(e, VDB_ENOENT, "no stream for collection %lld", (long long)cid);
	else
		rc = dberr(m, e, "read stream");
	unprep(m, st);
	return rc;
}

int
meta_snapshot(struct meta *m, int64_t cid, struct seg_info **segs, size_t *n, uint32_t *sealed_seq,
              struct vdb_err *e)
{
	int rc;

	if ((rc = exec(m, "BEGIN", e)) != VDB_OK)
		return rc;
	if ((rc = meta_segments(m, cid, segs, n, e)) != VDB_OK)
		return rollback(m, rc);
	if ((rc = meta_stream_sealed(m, cid, sealed_seq, e)) != VDB_OK) {
		free(*segs);
		return rollback(m, rc);
	}
	exec(m, "COMMIT", NULL);
	return VDB_OK;
}

/* insert_segments: register segs (ids filled in) inside the caller's
 * transaction */
static int
insert_segments(struct meta *m, int64_t cid, struct seg_info *segs, size_t n, int64_t now,
                struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prep(m,
	               "INSERT INTO segments (collection_id, partition_id, object, rows, "
	               "bytes, min_id, max_id, min_ts, max_ts, created) "
	               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               &st, e)) != VDB_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, cid);
		sqlite3_bind_int64(st, 2, segs[i].partition_id);
		sqlite3_bind_text(st, 3, segs[i].object, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (int64_t)segs[i].rows);
		sqlite3_bind_int64(st, 5, (int64_t)segs[i].bytes);
		sqlite3_bind_int64(st, 6, segs[i].min_id);
		sqlite3_bind_int64(st, 7, segs[i].max_id);
		sqlite3_bind_int64(st, 8, (int64_t)segs[i].min_ts);
		sqlite3_bind_int64(st, 9, (int64_t)segs[i].max_ts);
		sqlite3_bind_int64(st, 10, now);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = dberr(m, e, "register segment");
			break;
		}
		segs[i].id = sqlite3_last_insert_rowid(m->db);
		segs[i].collection_id = cid;
		segs[i].created = now;
	}
	unprep(m, st);
	return rc;
}

int
meta_seal_commit(struct meta *m, int64_t cid, struct seg_info *segs, size_t n, uint32_t sealed_seq,
                 struct vdb_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	int64_t now = (int64_t)time(NULL);

	if ((rc = exec(m, "BEGIN IMMEDIATE", e)) != VDB_OK)
		return rc;
	if ((rc = insert_segments(m, cid, segs, n, now, e)) != VDB_OK)
		goto fail;
	if (sealed_seq != 0) {
		if ((rc = prep(m,
		               "UPDATE streams SET sealed_seq = ? WHERE collection_id = ? "
		               "AND sealed_seq < ?",
		               &st, e)) != VDB_OK)
			goto fail;
		sqlite3_bind_int64(st, 1, sealed_seq);
		sqlite3_bind_int64(st, 2, cid);
		sqlite3_bind_int64(st, 3, sealed_seq);
		rc = step_done(m, st, "mark log sealed", e);
		st = NULL;
		if (rc != VDB_OK)
			goto fail;
	}
	if ((rc = exec(m, "COMMIT", e)) != VDB_OK)
		goto fail;
	return VDB_OK;
fail:
	return rollback(m, rc);
}

/* has_key: does sql, with key as its one parameter, give a row? */
static int
has_key(struct meta *m, const char *sql, const char *key, int *has, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	if ((rc = prep(m, sql, &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW || r == SQLITE_DONE)
		*has = r == SQLITE_ROW;
	else
		rc = dberr(m, e, "look up object");
	unprep(m, st);
	return rc;
}

int
meta_object_known(struct meta *m, const char *key, int *known, struct vdb_err *e)
{
	return has_key(m,
	               "SELECT 1 FROM segments WHERE object = ?1 UNION ALL "
	               "SELECT 1 FROM indexes WHERE object = ?1 LIMIT 1",
	               key, known, e);
}

int
meta_integrity(struct meta *m, char **report, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc;

	*report = NULL;
	if ((rc = prep(m, "PRAGMA integrity_check", &st, e)) != VDB_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		if (r && strcmp(r, "ok") != 0)
			*report = strdup(r);
	} else {
		rc = dberr(m, e, "integrity_check");
	}
	unprep(m, st);
	return rc;
}

/* ---- indexes and the trash (formats/meta.md, version 2) ---- */

int
meta_index_spec_get(struct meta *m, int64_t cid, struct index_spec *s, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	memset(s, 0, sizeof *s);
	s->type = IDX_FLAT;
	if ((rc = prep(m,
	               "SELECT type, m, ef_construction, nlist, pq_m FROM collection_index "
	               "WHERE collection_id = ?",
	               &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, cid);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		s->type = index_type_parse((const char *)sqlite3_column_text(st, 0));
		s->m = (uint32_t)sqlite3_column_int64(st, 1);
		s->ef_construction = (uint32_t)sqlite3_column_int64(st, 2);
		s->nlist = (uint32_t)sqlite3_column_int64(st, 3);
		s->pq_m = (uint32_t)sqlite3_column_int64(st, 4);
		if (s->type < 0)
			rc = vdb_err_set(e, VDB_ECORRUPT, "unknown index type in meta.db");
	} else if (r != SQLITE_DONE) {
		rc = dberr(m, e, "read index spec");
	}
	unprep(m, st);
	return rc;
}

int
meta_index_spec_set(struct meta *m, int64_t cid, const struct index_spec *s, struct vdb_err *e)
{
	sqlite3_stmt *st;
	char text[META_SPEC_MAX];
	int rc;

	index_spec_format(s, text, sizeof text);
	if ((rc = prep(m,
	               "INSERT OR REPLACE INTO collection_index "
	               "(collection_id, type, m, ef_construction, nlist, pq_m, spec) "
	               "VALUES (?, ?, ?, ?, ?, ?, ?)",
	               &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, cid);
	sqlite3_bind_text(st, 2, index_type_name(s->type), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, s->m);
	sqlite3_bind_int64(st, 4, s->ef_construction);
	sqlite3_bind_int64(st, 5, s->nlist);
	sqlite3_bind_int64(st, 6, s->pq_m);
	sqlite3_bind_text(st, 7, text, -1, SQLITE_TRANSIENT);
	return step_done(m, st, "set index spec", e);
}

static int
index_insert(struct meta *m, int64_t cid, const struct index_reg *r, int64_t now, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prep(m,
	               "INSERT INTO indexes (collection_id, segment_object, spec, type, object, "
	               "bytes, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
	               &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, cid);
	sqlite3_bind_text(st, 2, r->seg, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->spec, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, index_type_name(r->type), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->object, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)r->bytes);
	sqlite3_bind_int64(st, 7, now);
	rc = step_done(m, st, "register index", e);
	if (rc == VDB_EEXIST)
		vdb_err_set(e, VDB_EEXIST, "segment %.64s already has an index '%s'", r->seg,
		            r->spec);
	return rc;
}

int
meta_index_register(struct meta *m, int64_t cid, const struct index_reg *r, struct vdb_err *e)
{
	return index_insert(m, cid, r, (int64_t)time(NULL), e);
}

/* the index rows of ?1 that no search will pick again */
#define DEAD_INDEXES                                                                               \
	"FROM indexes i WHERE i.collection_id = ?1 AND ("                                          \
	"i.segment_object NOT IN (SELECT object FROM segments WHERE collection_id = ?1) "          \
	"OR NOT EXISTS (SELECT 1 FROM collection_index c WHERE c.collection_id = ?1 "              \
	"AND c.type != 'flat') "                                                                   \
	"OR (i.spec != (SELECT spec FROM collection_index WHERE collection_id = ?1) "              \
	"AND EXISTS (SELECT 1 FROM indexes j WHERE j.collection_id = ?1 "                          \
	"AND j.segment_object = i.segment_object "                                                 \
	"AND j.spec = (SELECT spec FROM collection_index WHERE collection_id = ?1))))"

static int
exec_i64(struct meta *m, const char *sql, int64_t a, int64_t b, const char *what, size_t *changes,
         struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prep(m, sql, &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) > 1)
		sqlite3_bind_int64(st, 2, b);
	rc = sqlite3_step(st) == SQLITE_DONE ? VDB_OK : dberr(m, e, what);
	if (changes)
		*changes = (size_t)sqlite3_changes(m->db);
	unprep(m, st);
	return rc;
}

/* trash_unreferenced: an object whose row just went goes to the trash,
 * unless another row still references it */
static int
trash_unreferenced(struct meta *m, const char *object, int64_t now, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prep(m,
	               "INSERT OR IGNORE INTO trash (object, since) SELECT ?1, ?2 "
	               "WHERE ?1 NOT IN (SELECT object FROM segments) "
	               "AND ?1 NOT IN (SELECT object FROM indexes)",
	               &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, object, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now);
	return step_done(m, st, "trash object", e);
}

int
meta_index_retire(struct meta *m, int64_t cid, int64_t now, size_t *n, struct vdb_err *e)
{
	char(*objs)[65] = NULL;
	size_t nobj = 0;
	int rc;

	*n = 0;
	if ((rc = exec(m, "BEGIN IMMEDIATE", e)) != VDB_OK)
		return rc;
	if ((rc = collect_objects(m, "SELECT i.object " DEAD_INDEXES, cid, &objs, &nobj, e)) !=
	    VDB_OK)
		goto fail;
	if ((rc = exec_i64(m, "DELETE FROM indexes WHERE id IN (SELECT i.id " DEAD_INDEXES ")", cid,
	                   0, "retire indexes", n, e)) != VDB_OK)
		goto fail;
	for (size_t i = 0; i < nobj; i++)
		if ((rc = trash_unreferenced(m, objs[i], now, e)) != VDB_OK)
			goto fail;
	if ((rc = exec(m, "COMMIT", e)) != VDB_OK)
		goto fail;
	free(objs);
	return VDB_OK;
fail:
	free(objs);
	*n = 0;
	return rollback(m, rc);
}

int
meta_indexes(struct meta *m, int64_t cid, struct index_row **out, size_t *n, struct vdb_err *e)
{
	sqlite3_stmt *st;
	struct index_row *v = NULL;
	size_t len = 0, cap = 0;
	int rc, r;

	if ((rc = prep(m,
	               "SELECT collection_id, segment_object, object, spec, type, bytes "
	               "FROM indexes WHERE ?1 < 0 OR collection_id = ?1 ORDER BY id",
	               &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_int64(st, 1, cid);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (grow(&v, len, &cap, sizeof(*v)) != 0) {
			rc = vdb_err_set(e, VDB_ETEMP, "out of memory");
			break;
		}
		struct index_row *x = &v[len++];
		x->collection_id = sqlite3_column_int64(st, 0);
		snprintf(x->seg, sizeof x->seg, "%s", sqlite3_column_text(st, 1));
		snprintf(x->object, sizeof x->object, "%s", sqlite3_column_text(st, 2));
		snprintf(x->spec, sizeof x->spec, "%s", sqlite3_column_text(st, 3));
		x->type = index_type_parse((const char *)sqlite3_column_text(st, 4));
		x->bytes = (uint64_t)sqlite3_column_int64(st, 5);
	}
	if (rc == VDB_OK && r != SQLITE_DONE)
		rc = dberr(m, e, "list indexes");
	unprep(m, st);
	if (rc != VDB_OK) {
		free(v);
		return rc;
	}
	*out = v;
	*n = len;
	return VDB_OK;
}

/* take_objects: (*more)[0..*nmore) appended to (*to)[0..*nto); *more freed */
static int
take_objects(char (**to)[65], size_t *nto, char (**more)[65], size_t *nmore, struct vdb_err *e)
{
	if (*nmore) {
		void *nv = realloc(*to, (*nto + *nmore) * sizeof **to);
		if (nv == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		*to = nv;
		memcpy(*to + *nto, *more, *nmore * sizeof **more);
		*nto += *nmore;
	}
	free(*more);
	*more = NULL;
	*nmore = 0;
	return VDB_OK;
}

int
meta_compact_commit(struct meta *m, int64_t cid, const int64_t *old, size_t nold,
                    struct seg_info *segs, size_t n, const struct index_reg *idx, size_t nidx,
                    int64_t now, struct vdb_err *e)
{
	char(*gone)[65] = NULL, (*more)[65] = NULL;
	size_t ngone = 0, nmore = 0, ch;
	int rc;

	if ((rc = exec(m, "BEGIN IMMEDIATE", e)) != VDB_OK)
		return rc;
	for (size_t i = 0; i < nold; i++) {
		/* the objects of the old segment and its indexes, before the
		 * rows go */
		if ((rc = collect_objects(m,
		                          "SELECT object FROM segments WHERE id = ?1 UNION "
		                          "SELECT i.object FROM indexes i JOIN segments s "
		                          "ON i.segment_object = s.object "
		                          "AND i.collection_id = s.collection_id WHERE s.id = ?1",
		                          old[i], &more, &nmore, e)) != VDB_OK)
			goto fail;
		if ((rc = exec_i64(m, "DELETE FROM segments WHERE id = ?1 AND collection_id = ?2",
		                   old[i], cid, "replace segment", &ch, e)) != VDB_OK)
			goto fail;
		if (ch != 1) {
			rc = vdb_err_set(e, VDB_ETEMP,
			                 "segment %lld is no longer registered (dropped meanwhile)",
			                 (long long)old[i]);
			goto fail;
		}
		if ((rc = take_objects(&gone, &ngone, &more, &nmore, e)) != VDB_OK)
			goto fail;
	}
	/* the new segments, as a seal registers them (within this
	 * transaction: SQLite transactions do not nest, and meta_seal_commit
	 * opens its own) */
	if ((rc = insert_segments(m, cid, segs, n, now, e)) != VDB_OK)
		goto fail;
	for (size_t i = 0; i < nidx; i++)
		if ((rc = index_insert(m, cid, &idx[i], now, e)) != VDB_OK)
			goto fail;
	/* index rows of segments no longer registered anywhere in cid (also
	 * those of a partition dropped since the last build): their objects
	 * go to the trash with the rest */
	if ((rc = collect_objects(m,
	                          "SELECT object FROM indexes WHERE collection_id = ?1 AND "
	                          "segment_object NOT IN "
	                          "(SELECT object FROM segments WHERE collection_id = ?1)",
	                          cid, &more, &nmore, e)) != VDB_OK ||
	    (rc = take_objects(&gone, &ngone, &more, &nmore, e)) != VDB_OK)
		goto fail;
	if ((rc = exec_i64(m,
	                   "DELETE FROM indexes WHERE collection_id = ?1 AND segment_object "
	                   "NOT IN (SELECT object FROM segments WHERE collection_id = ?1)",
	                   cid, 0, "drop old indexes", NULL, e)) != VDB_OK)
		goto fail;
	for (size_t i = 0; i < ngone; i++)
		if ((rc = trash_unreferenced(m, gone[i], now, e)) != VDB_OK)
			goto fail;
	if ((rc = exec(m, "COMMIT", e)) != VDB_OK)
		goto fail;
	free(gone);
	return VDB_OK;
fail:
	free(gone);
	free(more);
	return rollback(m, rc);
}

int
meta_trash_due(struct meta *m, int64_t before, char (**out)[65], size_t *n, struct vdb_err *e)
{
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = exec(m, "BEGIN IMMEDIATE", e)) != VDB_OK)
		return rc;
	/* content-addressed: the same bytes may have been registered again */
	if ((rc = exec(m,
	               "DELETE FROM trash WHERE object IN (SELECT object FROM segments) "
	               "OR object IN (SELECT object FROM indexes)",
	               e)) != VDB_OK)
		return rollback(m, rc);
	if ((rc = collect_objects(m, "SELECT object FROM trash WHERE since <= ?1 ORDER BY object",
	                          before, out, n, e)) != VDB_OK)
		return rollback(m, rc);
	if ((rc = exec(m, "COMMIT", e)) != VDB_OK) {
		free(*out);
		*out = NULL;
		*n = 0;
		return rollback(m, rc);
	}
	return VDB_OK;
}

int
meta_trash_put(struct meta *m, const char *key, int64_t now, struct vdb_err *e)
{
	return trash_unreferenced(m, key, now, e);
}

int
meta_trash_forget(struct meta *m, const char *key, struct vdb_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prep(m, "DELETE FROM trash WHERE object = ?", &st, e)) != VDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	return step_done(m, st, "forget trashed object", e);
}

int
meta_trash_has(struct meta *m, const char *key, int *has, struct vdb_err *e)
{
	return has_key(m, "SELECT 1 FROM trash WHERE object = ?", key, has, e);
}

int
meta_objects_named(struct meta *m, char (**out)[65], size_t *n, struct vdb_err *e)
{
	/* "?1 = ?1": the one parameter collect_objects binds, named so the
	 * bind is not out of range */
	return collect_objects(m,
	                       "SELECT object FROM segments WHERE ?1 = ?1 UNION SELECT object "
	                       "FROM indexes UNION SELECT object FROM trash ORDER BY 1",
	                       0, out, n, e);
}
