#include "schema.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
name_check(const char *name, const char *what, struct vdb_err *e)
{
	size_t n = strlen(name);

	if (n == 0 || n > VDB_MAX_NAME)
		return vdb_err_set(e, VDB_EINPUT, "%s name must be 1 to %d characters", what,
		                   VDB_MAX_NAME);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
		         (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return vdb_err_set(e, VDB_EINPUT,
			                   "bad %s name (want [A-Za-z_][A-Za-z0-9_]*): "
			                   "character %zu",
			                   what, i + 1);
	}
	return VDB_OK;
}

const char *
ftype_name(int type)
{
	switch (type) {
	case FT_INT64:
		return "int64";
	case FT_DOUBLE:
		return "double";
	case FT_BOOL:
		return "bool";
	case FT_STRING:
		return "string";
	}
	return "?";
}

const char *
metric_name(int metric)
{
	switch (metric) {
	case METRIC_L2:
		return "l2";
	case METRIC_IP:
		return "ip";
	case METRIC_COSINE:
		return "cosine";
	}
	return "?";
}

int
metric_parse(const char *s, int *metric)
{
	if (strcmp(s, "l2") == 0)
		*metric = METRIC_L2;
	else if (strcmp(s, "ip") == 0)
		*metric = METRIC_IP;
	else if (strcmp(s, "cosine") == 0)
		*metric = METRIC_COSINE;
	else
		return -1;
	return 0;
}

int
field_parse(const char *spec, struct field *f, struct vdb_err *e)
{
	const char *colon = strchr(spec, ':');
	const char *type, *len;
	size_t nlen, tlen;
	int rc;

	memset(f, 0, sizeof(*f));
	if (colon == NULL)
		return vdb_err_set(e, VDB_EINPUT, "field '%.300s': want NAME:TYPE", spec);
	nlen = (size_t)(colon - spec);
	if (nlen == 0 || nlen > VDB_MAX_NAME)
		return vdb_err_set(e, VDB_EINPUT, "field '%.300s': bad name length", spec);
	memcpy(f->name, spec, nlen);
	f->name[nlen] = '\0';
	if ((rc = name_check(f->name, "field", e)) != VDB_OK)
		return rc;
	type = colon + 1;
	len = strchr(type, ':');
	tlen = len ? (size_t)(len - type) : strlen(type);
	if (tlen == 5 && strncmp(type, "int64", 5) == 0)
		f->type = FT_INT64;
	else if (tlen == 6 && strncmp(type, "double", 6) == 0)
		f->type = FT_DOUBLE;
	else if (tlen == 4 && strncmp(type, "bool", 4) == 0)
		f->type = FT_BOOL;
	else if (tlen == 6 && strncmp(type, "string", 6) == 0)
		f->type = FT_STRING;
	else
		return vdb_err_set(e, VDB_EINPUT,
		                   "field '%.300s': unknown type (want int64, double, bool, "
		                   "string[:MAXLEN])",
		                   spec);
	if (f->type == FT_STRING) {
		f->max_len = VDB_MAX_STRING;
		if (len) {
			char *end;
			errno = 0;
			unsigned long v = strtoul(len + 1, &end, 10);
			if (len[1] < '0' || len[1] > '9' || errno || *end || v == 0 ||
			    v > VDB_MAX_STRING)
				return vdb_err_set(e, VDB_EINPUT,
				                   "field '%.300s': string length must be 1 to %d",
				                   spec, VDB_MAX_STRING);
			f->max_len = (uint32_t)v;
		}
	} else if (len) {
		return vdb_err_set(e, VDB_EINPUT, "field '%.300s': only string takes a length",
		                   spec);
	}
	return VDB_OK;
}

int
schema_field_index(const struct schema *s, const char *name)
{
	for (uint32_t i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
schema_add_field(struct schema *s, const struct field *f, struct vdb_err *e)
{
	if (strcmp(f->name, "id") == 0 || strcmp(f->name, "vector") == 0 || f->name[0] == '_')
		return vdb_err_set(e, VDB_EINPUT, "field name '%s' is reserved", f->name);
	if (schema_field_index(s, f->name) >= 0)
		return vdb_err_set(e, VDB_EINPUT, "field '%s' given twice", f->name);
	if (s->nfields >= VDB_MAX_FIELDS)
		return vdb_err_set(e, VDB_EINPUT, "too many fields (at most %d)", VDB_MAX_FIELDS);
	s->fields[s->nfields++] = *f;
	return VDB_OK;
}
