/* jscan.c: JSON text scanned, not parsed (jscan.h).  Values are skipped
 * by bracket depth and string quotes; what a caller wants parsed it hands
 * to jansson itself. */
#include "jscan.h"

#include <jansson.h>
#include <string.h>

const char *
jscan_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

static const char *
skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

const char *
jscan_value(const char *p, const char *end)
{
	const char *start = p;
	size_t depth = 0;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return skip_string(p, end);
	if (*p == '{' || *p == '[') {
		while (p < end) {
			if (*p == '"') {
				if ((p = skip_string(p, end)) == NULL)
					return NULL;
				continue;
			}
			if (*p == '{' || *p == '[')
				depth++;
			else if ((*p == '}' || *p == ']') && --depth == 0)
				return p + 1;
			p++;
		}
		return NULL;
	}
	while (p < end && !strchr(",}] \t\r\n", *p))
		p++;
	return p > start ? p : NULL;
}

/* key_is: a key compared as JSON compares it ("\u0069d" is "id"); a key
 * longer than want with every character escaped is not want, and is not
 * given to jansson */
static int
key_is(const char *k, size_t klen, const char *want)
{
	size_t wlen = strlen(want);
	json_t *s;
	int eq;

	if (memchr(k, '\\', klen) == NULL)
		return klen == wlen + 2 && memcmp(k + 1, want, wlen) == 0;
	if (klen > 6 * wlen + 2)
		return 0;
	s = json_loadb(k, klen, JSON_DECODE_ANY, NULL);
	eq = json_is_string(s) && strcmp(json_string_value(s), want) == 0;
	json_decref(s);
	return eq;
}

const char *
jscan_object(const char *p, const char *end, const char *const *keys, struct jspan *vals,
             size_t nkeys)
{
	const char *k, *kend, *v;
	size_t i;

	for (i = 0; i < nkeys; i++) {
		vals[i].p = NULL;
		vals[i].len = 0;
		vals[i].escaped = 0;
	}
	if (p == end || *p != '{')
		return NULL;
	p = jscan_ws(p + 1, end);
	if (p < end && *p == '}')
		return p + 1;
	for (;;) {
		if (p == end || *p != '"')
			return NULL;
		k = p;
		if ((kend = p = skip_string(p, end)) == NULL)
			return NULL;
		if ((p = jscan_ws(p, end)) == end || *p != ':')
			return NULL;
		v = jscan_ws(p + 1, end);
		if ((p = jscan_value(v, end)) == NULL)
			return NULL;
		for (i = 0; i < nkeys; i++)
			if (key_is(k, (size_t)(kend - k), keys[i])) {
				vals[i].p = v;
				vals[i].len = (size_t)(p - v);
				vals[i].escaped = memchr(k, '\\', (size_t)(kend - k)) != NULL;
				break;
			}
		p = jscan_ws(p, end);
		if (p < end && *p == ',') {
			p = jscan_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			return p + 1;
		return NULL;
	}
}
