/* store.h: object storage.  Objects are immutable and named by a key of 64
 * lowercase hex digits (the SHA-256 a segment or index commits to).  One
 * small interface, one file per backend: store_file.c is the local
 * directory ROOT/objects/ (the embedded default). */
#ifndef VDB_STORE_H
#define VDB_STORE_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define STORE_KEY_LEN 64

struct store;

/* A stage is a local file an object is written into before it is
 * published under its key; the key is known only once it is written. */
struct store_stage {
	int fd;
	char *path;
};

struct store_ops {
	int (*stage)(struct store *s, struct store_stage *st, struct vdb_err *e);
	/* commit: make the staged bytes durable and visible under key */
	int (*commit)(struct store *s, struct store_stage *st, const char *key, struct vdb_err *e);
	void (*abort)(struct store *s, struct store_stage *st);
	int (*get_range)(struct store *s, const char *key, uint64_t off, size_t len, void *buf,
	                 struct vdb_err *e);
	int (*size)(struct store *s, const char *key, uint64_t *size, struct vdb_err *e);
	/* list: fn(arg, key) for every object; fn's non-zero return stops */
	int (*list)(struct store *s, int (*fn)(void *arg, const char *key), void *arg,
	            struct vdb_err *e);
	int (*del)(struct store *s, const char *key, struct vdb_err *e);
	/* sweep: remove the stages last written before `before` (seconds
	 * since the epoch), abandoned by writers that died; *n counts them */
	int (*sweep)(struct store *s, int64_t before, size_t *n, struct vdb_err *e);
	/* local_path: a file that holds the object, for mmap (a remote backend
	 * fetches into ROOT/cache/) */
	int (*local_path)(struct store *s, const char *key, char **path, struct vdb_err *e);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
};

int store_key_check(const char *key);
int store_open_file(const char *dir, struct store **out, struct vdb_err *e);

int store_stage(struct store *s, struct store_stage *st, struct vdb_err *e);
int store_commit(struct store *s, struct store_stage *st, const char *key, struct vdb_err *e);
void store_abort(struct store *s, struct store_stage *st);
int store_put(struct store *s, const char *key, const void *buf, size_t len, struct vdb_err *e);
/* store_get: the whole object, malloc'd */
int store_get(struct store *s, const char *key, void **buf, size_t *len, struct vdb_err *e);
int store_get_range(struct store *s, const char *key, uint64_t off, size_t len, void *buf,
                    struct vdb_err *e);
int store_size(struct store *s, const char *key, uint64_t *size, struct vdb_err *e);
int store_list(struct store *s, int (*fn)(void *arg, const char *key), void *arg,
               struct vdb_err *e);
int store_delete(struct store *s, const char *key, struct vdb_err *e);
int store_sweep(struct store *s, int64_t before, size_t *n, struct vdb_err *e);
int store_local_path(struct store *s, const char *key, char **path, struct vdb_err *e);
void store_close(struct store *s);

#endif
