/* jscan.h: finding a JSON object's top-level values by key without
 * parsing all of it.  A request or response line may be 64 MiB of numbers
 * (formats/wire.md): a jansson tree of it costs many times that, while
 * vdb-coord needs only "id" and "op" and vdb-query serve reads the
 * vectors itself.  Malformed text gets NULL, never a guess: callers then
 * leave the text to jansson, which says what is wrong. */
#ifndef VDB_JSCAN_H
#define VDB_JSCAN_H

#include <stddef.h>

struct jspan {
	const char *p; /* the value's text; NULL: the key is absent */
	size_t len;
	int escaped; /* the key was written with escapes ("\u0069d") */
};

/* jscan_ws: past JSON whitespace */
const char *jscan_ws(const char *p, const char *end);
/* jscan_value: past the one value at p, or NULL if there is none */
const char *jscan_value(const char *p, const char *end);
/* jscan_object: the object at p, up to end: where the value of each
 * keys[i] is, in vals[i] (keys compared as JSON compares them; a repeated
 * key: jansson keeps the last, and so do we).  Returns the end of the
 * object, or NULL if it is malformed. */
const char *jscan_object(const char *p, const char *end, const char *const *keys,
                         struct jspan *vals, size_t nkeys);

#endif
