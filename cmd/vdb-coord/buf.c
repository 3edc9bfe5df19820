/* buf.c: growable byte buffers for connection and worker I/O.  Every
 * size comes from a peer, so growth is checked and failure is returned
 * (the caller drops that one connection), never fatal. */
#include <stdlib.h>
#include <string.h>

#include "coord.h"

int
buf_reserve(struct buf *b, size_t extra)
{
	size_t used = buf_used(b), ncap;
	char *np;

	if (b->cap - b->len >= extra)
		return 0;
	/* slide the live bytes to the front before asking for more memory */
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, used);
		b->off = 0;
		b->len = used;
		if (b->cap - b->len >= extra)
			return 0;
	}
	if (extra > SIZE_MAX / 2 - used)
		return -1;
	ncap = b->cap ? b->cap : 4096;
	while (ncap - used < extra)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (np == NULL)
		return -1;
	b->p = np;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0; /* b->p may be NULL, which memcpy must not see */
	if (buf_reserve(b, n) != 0)
		return -1;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

/* buf_trim: a connection should not keep the memory one big request or
 * response made it allocate: a big buffer that is empty is freed, and one
 * that is nearly so gives its few bytes to a small one */
void
buf_trim(struct buf *b)
{
	size_t used = buf_used(b), ncap = 4096;
	char *np;

	if (b->cap <= 4 * READ_CHUNK || used > b->cap / 16)
		return;
	if (used == 0) {
		buf_free(b);
		return;
	}
	while (ncap < 2 * used)
		ncap *= 2;
	if ((np = malloc(ncap)) == NULL)
		return; /* the big one still holds them */
	memcpy(np, b->p + b->off, used);
	free(b->p);
	b->p = np;
	b->off = 0;
	b->len = used;
	b->cap = ncap;
}

void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
