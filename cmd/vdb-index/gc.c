/* gc.c: objects no row references any more — old segments after a
 * compaction, superseded indexes — are deleted once they have waited out
 * the grace period in the trash: a query that read the catalogue before
 * the swap may still be about to open them. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "store.h"
#include "vindex.h"

/* forget_derived: what queries derived from an object goes with it */
static void
forget_derived(const char *root, const char *key)
{
	char *cols = path_fmt("%s/cache/cols/%s", root, key);
	char *mark = path_fmt("%s/cache/verified/%s", root, key);

	if (cols)
		unlink(cols);
	if (mark)
		unlink(mark);
	free(cols);
	free(mark);
}

int
vindex_gc(struct vindex *x, struct vdb_err *e)
{
	char(*objs)[65] = NULL;
	size_t n = 0;
	int rc;

	if ((rc = meta_trash_due(x->r->meta, (int64_t)time(NULL) - x->grace, &objs, &n, e)) !=
	    VDB_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		rc = store_delete(x->r->store, objs[i], e);
		/* gone already: an earlier run died between the two steps */
		if (rc == VDB_ENOENT)
			rc = VDB_OK;
		if (rc != VDB_OK || (rc = meta_trash_forget(x->r->meta, objs[i], e)) != VDB_OK)
			break;
		forget_derived(x->r->path, objs[i]);
		x->deleted++;
	}
	free(objs);
	return rc;
}
