/* config.c: the --config file (one `key value` per line, whole-line `#`
 * comments; vdb-coord(8), "CONFIGURATION FILE") and the values it shares
 * with the command line.  Both go through config_set, so an option and a
 * key accept the same values and give the same messages. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "coord.h"

#define WORKERS_MAX 1024
#define MAXCONNS_MAX 65536
#define SECONDS_MAX 86400

static const struct {
	const char *key;
	unsigned bit;
} keys[] = {
        {"idle-timeout", CF_IDLE}, {"listen", CF_LISTEN},   {"max-conns", CF_MAXCONNS},
        {"syslog", CF_SYSLOG},     {"timeout", CF_TIMEOUT}, {"worker", CF_WORKER},
        {"workers", CF_WORKERS},
};

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->workers = 0;
	c->max_conns = 256;
	c->timeout_ms = 30000;
	c->idle_ms = 300000;
}

static unsigned
key_bit(const char *key)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].key, key) == 0)
			return keys[i].bit;
	return 0;
}

static int
parse_int(const char *key, const char *val, long lo, long hi, int *out, struct vdb_err *e)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (*val == '\0' || *end != '\0' || errno || v < lo || v > hi)
		return vdb_err_set(e, VDB_EINPUT, "%s: '%s' is not a number from %ld to %ld", key,
		                   val, lo, hi);
	*out = (int)v;
	return VDB_OK;
}

/* parse_seconds: decimal seconds, so tests and impatient operators can
 * say 0.5; rounded up to whole milliseconds so 0.0001 is not "none" */
static int
parse_seconds(const char *key, const char *val, int64_t *ms, struct vdb_err *e)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(val, &end);
	if (*val == '\0' || *end != '\0' || errno || !isfinite(v) || v < 0 || v > SECONDS_MAX)
		return vdb_err_set(e, VDB_EINPUT,
		                   "%s: '%s' is not a number of seconds from 0 to %d", key, val,
		                   SECONDS_MAX);
	*ms = (int64_t)ceil(v * 1000);
	return VDB_OK;
}

/* listen_check: the syntax only; listen.c binds */
static int
listen_check(const char *val, struct vdb_err *e)
{
	struct sockaddr_un sun;
	const char *colon;

	if (strncmp(val, "unix:", 5) == 0) {
		if (val[5] == '\0')
			return vdb_err_set(e, VDB_EINPUT, "listen: '%s': no socket path", val);
		if (strlen(val + 5) >= sizeof(sun.sun_path))
			return vdb_err_set(e, VDB_EINPUT,
			                   "listen: '%s': socket path longer than %zu bytes", val,
			                   sizeof(sun.sun_path) - 1);
		return VDB_OK;
	}
	if (strncmp(val, "tcp:", 4) == 0) {
		colon = strrchr(val + 4, ':');
		if (colon == NULL || colon[1] == '\0' || colon == val + 4)
			return vdb_err_set(e, VDB_EINPUT, "listen: '%s': want tcp:HOST:PORT", val);
		return VDB_OK;
	}
	return vdb_err_set(e, VDB_EINPUT, "listen: '%s': want unix:PATH or tcp:HOST:PORT", val);
}

int
config_set(struct config *c, const char *key, const char *val, struct vdb_err *e)
{
	unsigned bit = key_bit(key);
	int rc = VDB_OK;

	switch (bit) {
	case CF_LISTEN: {
		char **nv, *s;
		if ((rc = listen_check(val, e)) != VDB_OK)
			return rc;
		nv = realloc(c->listen, (c->nlisten + 1) * sizeof(*nv));
		if (nv == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		c->listen = nv;
		if ((s = strdup(val)) == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		c->listen[c->nlisten++] = s;
		break;
	}
	case CF_WORKERS:
		rc = parse_int(key, val, 0, WORKERS_MAX, &c->workers, e);
		break;
	case CF_MAXCONNS:
		rc = parse_int(key, val, 1, MAXCONNS_MAX, &c->max_conns, e);
		break;
	case CF_TIMEOUT:
		rc = parse_seconds(key, val, &c->timeout_ms, e);
		break;
	case CF_IDLE:
		rc = parse_seconds(key, val, &c->idle_ms, e);
		break;
	case CF_SYSLOG:
		if (strcmp(val, "yes") == 0)
			c->syslog = 1;
		else if (strcmp(val, "no") == 0)
			c->syslog = 0;
		else
			rc = vdb_err_set(e, VDB_EINPUT, "syslog: '%s' is not yes or no", val);
		break;
	case CF_WORKER:
		if (*val == '\0')
			return vdb_err_set(e, VDB_EINPUT, "worker: empty command");
		free(c->worker);
		if ((c->worker = strdup(val)) == NULL)
			return vdb_err_set(e, VDB_ETEMP, "out of memory");
		break;
	default:
		return vdb_err_set(e, VDB_EINPUT, "unknown key '%s'", key);
	}
	if (rc == VDB_OK)
		c->set |= bit;
	return rc;
}

/* config_read: a file into c (from config_defaults); on error c holds
 * what was read so far and the message is prefixed with FILE:LINE */
int
config_read(const char *path, struct config *c, struct vdb_err *e)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *key, *val, *p;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int rc = VDB_OK;
	unsigned bit;

	if (f == NULL)
		return vdb_err_errno(e, VDB_EINPUT, "%s", path);
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n > 0 && isspace((unsigned char)line[n - 1]))
			line[--n] = '\0';
		for (key = line; isspace((unsigned char)*key); key++)
			;
		if (*key == '\0' || *key == '#')
			continue;
		for (p = key; *p && !isspace((unsigned char)*p); p++)
			;
		val = p;
		if (*p) {
			*p = '\0';
			for (val = p + 1; isspace((unsigned char)*val); val++)
				;
		}
		bit = key_bit(key);
		if (bit == 0) {
			rc = vdb_err_set(e, VDB_EINPUT, "unknown key '%s'", key);
		} else if (*val == '\0') {
			rc = vdb_err_set(e, VDB_EINPUT, "%s: no value", key);
		} else if (bit != CF_LISTEN && (c->set & bit)) {
			rc = vdb_err_set(e, VDB_EINPUT, "%s: given twice", key);
		} else {
			rc = config_set(c, key, val, e);
		}
		if (rc != VDB_OK) {
			vdb_err_prefix(e, "%s:%zu: ", path, lineno);
			goto out;
		}
	}
	if (ferror(f))
		rc = vdb_err_errno(e, VDB_ETEMP, "%s", path);
out:
	free(line);
	fclose(f);
	return rc;
}

/* config_merge: what src set overrides dst; a list of listen addresses
 * replaces the other list whole */
int
config_merge(struct config *dst, const struct config *src, struct vdb_err *e)
{
	if (src->set & CF_LISTEN) {
		for (size_t i = 0; i < dst->nlisten; i++)
			free(dst->listen[i]);
		dst->nlisten = 0;
		for (size_t i = 0; i < src->nlisten; i++)
			if (config_set(dst, "listen", src->listen[i], e) != VDB_OK)
				return e->rc;
	}
	if (src->set & CF_WORKERS)
		dst->workers = src->workers;
	if (src->set & CF_MAXCONNS)
		dst->max_conns = src->max_conns;
	if (src->set & CF_TIMEOUT)
		dst->timeout_ms = src->timeout_ms;
	if (src->set & CF_IDLE)
		dst->idle_ms = src->idle_ms;
	if (src->set & CF_SYSLOG)
		dst->syslog = src->syslog;
	if ((src->set & CF_WORKER) && config_set(dst, "worker", src->worker, e) != VDB_OK)
		return e->rc;
	dst->set |= src->set;
	return VDB_OK;
}

int
config_listen_same(const struct config *a, const struct config *b)
{
	if (a->nlisten != b->nlisten)
		return 0;
	for (size_t i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i], b->listen[i]) != 0)
			return 0;
	return 1;
}

void
config_free(struct config *c)
{
	for (size_t i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->listen);
	free(c->worker);
	memset(c, 0, sizeof(*c));
}
