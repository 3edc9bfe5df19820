/* store.c: the backend-independent half of object storage. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "file.h"

int
store_key_check(const char *key)
{
	size_t n = strlen(key);

	if (n != STORE_KEY_LEN)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
			return -1;
	return 0;
}

#define CHECK_KEY(key)                                                                             \
	do {                                                                                       \
		if (store_key_check(key) != 0)                                                     \
			return vdb_err_set(e, VDB_EINPUT, "bad object key '%.80s'", key);          \
	} while (0)

int
store_stage(struct store *s, struct store_stage *st, struct vdb_err *e)
{
	return s->ops->stage(s, st, e);
}

int
store_commit(struct store *s, struct store_stage *st, const char *key, struct vdb_err *e)
{
	CHECK_KEY(key);
	return s->ops->commit(s, st, key, e);
}

void
store_abort(struct store *s, struct store_stage *st)
{
	s->ops->abort(s, st);
}

int
store_put(struct store *s, const char *key, const void *buf, size_t len, struct vdb_err *e)
{
	struct store_stage st;
	int rc;

	CHECK_KEY(key);
	if ((rc = store_stage(s, &st, e)) != VDB_OK)
		return rc;
	if ((rc = file_write_all(st.fd, buf, len, st.path, e)) != VDB_OK) {
		store_abort(s, &st);
		return rc;
	}
	return store_commit(s, &st, key, e);
}

int
store_get(struct store *s, const char *key, void **buf, size_t *len, struct vdb_err *e)
{
	uint64_t size;
	void *p;
	int rc;

	if ((rc = store_size(s, key, &size, e)) != VDB_OK)
		return rc;
	p = malloc(size ? size : 1);
	if (p == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory for object %s", key);
	if ((rc = store_get_range(s, key, 0, size, p, e)) != VDB_OK) {
		free(p);
		return rc;
	}
	*buf = p;
	*len = size;
	return VDB_OK;
}

int
store_get_range(struct store *s, const char *key, uint64_t off, size_t len, void *buf,
                struct vdb_err *e)
{
	CHECK_KEY(key);
	return s->ops->get_range(s, key, off, len, buf, e);
}

int
store_size(struct store *s, const char *key, uint64_t *size, struct vdb_err *e)
{
	CHECK_KEY(key);
	return s->ops->size(s, key, size, e);
}

int
store_list(struct store *s, int (*fn)(void *arg, const char *key), void *arg, struct vdb_err *e)
{
	return s->ops->list(s, fn, arg, e);
}

int
store_delete(struct store *s, const char *key, struct vdb_err *e)
{
	CHECK_KEY(key);
	return s->ops->del(s, key, e);
}

int
store_sweep(struct store *s, int64_t before, size_t *n, struct vdb_err *e)
{
	*n = 0;
	return s->ops->sweep(s, before, n, e);
}

int
store_local_path(struct store *s, const char *key, char **path, struct vdb_err *e)
{
	CHECK_KEY(key);
	return s->ops->local_path(s, key, path, e);
}

void
store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}
