/* schema.h: a collection's shape — dimension, metric, scalar fields — and
 * the rules for names.  Shared by vdb-meta (creates it), vdb-ingest
 * (validates against it) and every reader of segments and logs. */
#ifndef VDB_SCHEMA_H
#define VDB_SCHEMA_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define VDB_MAX_DIM 32768
#define VDB_MAX_FIELDS 64
#define VDB_MAX_NAME 255
#define VDB_MAX_STRING 65535

enum ftype { FT_INT64 = 1, FT_DOUBLE = 2, FT_BOOL = 3, FT_STRING = 4 };
enum metric { METRIC_L2 = 0, METRIC_IP = 1, METRIC_COSINE = 2 };

struct field {
	char name[VDB_MAX_NAME + 1];
	int type; /* enum ftype */
	uint32_t max_len; /* strings only: bytes */
};

struct schema {
	int64_t id; /* collection id in meta.db */
	char name[VDB_MAX_NAME + 1];
	uint32_t dim;
	int metric;
	int auto_id;
	uint32_t nfields;
	struct field fields[VDB_MAX_FIELDS];
};

/* name_check: [A-Za-z_][A-Za-z0-9_]{0,254}; what says what is named */
int name_check(const char *name, const char *what, struct vdb_err *e);
/* field_parse: "NAME:TYPE" with TYPE int64|double|bool|string[:MAXLEN] */
int field_parse(const char *spec, struct field *f, struct vdb_err *e);
/* schema_add_field: rejects duplicates, reserved names (id, vector) */
int schema_add_field(struct schema *s, const struct field *f, struct vdb_err *e);
int schema_field_index(const struct schema *s, const char *name); /* -1 if none */
const char *ftype_name(int type);
const char *metric_name(int metric);
int metric_parse(const char *s, int *metric); /* 0 or -1 */

#endif
