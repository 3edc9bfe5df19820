#include "idmap.h"

#include <stdlib.h>
#include <string.h>

void
idmap_init(struct idmap *m)
{
	memset(m, 0, sizeof(*m));
}

void
idmap_free(struct idmap *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	idmap_init(m);
}

void
idmap_clear(struct idmap *m)
{
	if (m->used)
		memset(m->used, 0, m->cap);
	m->n = 0;
}

static size_t
slot(int64_t key, size_t cap)
{
	/* the top bits of a multiplicative hash depend on every key bit; the
	 * low ones would pile keys like i << 32 into one probe run */
	uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> (64 - __builtin_ctzll((unsigned long long)cap)));
}

static int
grow(struct idmap *m)
{
	struct idmap nm;
	size_t cap = m->cap ? m->cap * 2 : 1024;

	idmap_init(&nm);
	nm.keys = malloc(cap * sizeof(*nm.keys));
	nm.vals = malloc(cap * sizeof(*nm.vals));
	nm.used = calloc(cap, 1);
	nm.cap = cap;
	if (!nm.keys || !nm.vals || !nm.used) {
		idmap_free(&nm);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->used[i])
			idmap_put(&nm, m->keys[i], m->vals[i]);
	idmap_free(m);
	*m = nm;
	return 0;
}

int
idmap_put(struct idmap *m, int64_t key, uint64_t val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
		return -1;
	for (i = slot(key, m->cap); m->used[i]; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			if (val > m->vals[i])
				m->vals[i] = val;
			return 1;
		}
	}
	m->used[i] = 1;
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
	return 0;
}

int
idmap_get(const struct idmap *m, int64_t key, uint64_t *val)
{
	if (m->cap == 0)
		return 0;
	for (size_t i = slot(key, m->cap); m->used[i]; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			*val = m->vals[i];
			return 1;
		}
	}
	return 0;
}
