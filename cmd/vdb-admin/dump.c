/* dump.c: vdb-admin dump — every live row of a collection as JSONL in the
 * form vdb-ingest reads, so a dump piped into vdb-ingest copies it. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "admin.h"
#include "scan.h"

static int
put_string(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	int rc = j ? json_dumpf(j, stdout, JSON_ENCODE_ANY) : -1;
	json_decref(j);
	return rc;
}

/* put_number: enough digits to read back the same value; a negative zero
 * written "-0" would read back as the integer 0 */
static void
put_number(const char *sep, double v, int digits)
{
	if (v == 0 && signbit(v))
		printf("%s-0.0", sep);
	else
		printf("%s%.*g", sep, digits, v);
}

static int
dump_batch(void *arg, const struct batch *b, const uint8_t *live, struct vdb_err *e)
{
	const struct schema *sc = arg;

	for (size_t r = 0; r < b->n; r++) {
		if (!live[r])
			continue;
		printf("{\"id\":%" PRId64 ",\"vector\":[", b->ids[r]);
		for (uint32_t k = 0; k < sc->dim; k++)
			put_number(k ? "," : "", b->vec[r * sc->dim + k], 9);
		putchar(']');
		for (uint32_t i = 0; i < sc->nfields; i++) {
			const struct col *c = &b->cols[i];
			printf(",\"%s\":", sc->fields[i].name);
			switch (c->type) {
			case FT_INT64:
				printf("%" PRId64, c->i64[r]);
				break;
			case FT_DOUBLE:
				put_number("", c->f64[r], 17);
				break;
			case FT_BOOL:
				fputs(c->b[r] ? "true" : "false", stdout);
				break;
			case FT_STRING:
				if (put_string(c->sbuf + c->soff[r], c->soff[r + 1] - c->soff[r]))
					return vdb_err_set(e, VDB_ETEMP, "out of memory");
				break;
			}
		}
		fputs("}\n", stdout);
	}
	if (ferror(stdout))
		return vdb_err_errno(e, VDB_ETEMP, "stdout");
	return VDB_OK;
}

int
admin_dump(struct root *r, const char *collection, struct vdb_err *e)
{
	struct schema sc;
	int rc;

	if ((rc = meta_collection_get(r->meta, collection, &sc, e)) != VDB_OK)
		return rc;
	return scan_collection(r, &sc, dump_batch, &sc, e);
}
