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

/* buf_trim: an idle connection should not keep the memory one big
 * request made it allocate */
void
buf_trim(struct buf *b)
{
	if (buf_used(b) == 0 && b->cap > 4 * READ_CHUNK)
		buf_free(b);
}

void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
