/* root.h: a vdb root — the data directory every program works on
 * (../shared/design.md, "Data directory"): meta.db, log/, objects/, cache/. */
#ifndef VDB_ROOT_H
#define VDB_ROOT_H
#include "err.h"
#include "meta.h"
#include "store.h"

struct root {
	char *path;
	struct meta *meta;
	struct store *store;
};

/* root_path: -d ROOT if given, else $VDB_ROOT */
int root_path(const char *opt, const char **path, struct vdb_err *e);
/* root_init: create a root; an existing root is left as it is (*existed
 * set); a non-empty directory that is not a root is refused */
int root_init(const char *path, int *existed, struct vdb_err *e);
int root_open(const char *path, struct root **out, struct vdb_err *e);
void root_close(struct root *r);
/* root_publish_lock: ROOT/publish.lock.  A writer that publishes objects
 * before it registers them (a seal, a bulk import) holds it shared
 * (blocking) from before its first publish to after its commit;
 * vdb-index's sweep holds it exclusively (never waiting: *busy), so that an
 * object no catalogue row names while it holds it was left by a writer
 * that died.  root_publish_unlock(fd) drops it; fd -1 is fine. */
int root_publish_lock(struct root *r, int exclusive, int *fd, int *busy, struct vdb_err *e);
void root_publish_unlock(int fd);

#endif
