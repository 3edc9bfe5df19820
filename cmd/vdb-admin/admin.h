/* admin.h: vdb-admin's commands, one file each. */
#ifndef VDB_ADMIN_H
#define VDB_ADMIN_H
#include "err.h"
#include "root.h"

/* admin_verify: problems on stdout, notes on stderr; *problems counted */
int admin_verify(struct root *r, unsigned long *problems, struct vdb_err *e);
int admin_dump(struct root *r, const char *collection, struct vdb_err *e);

#endif
