#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
vdb_err_set(struct vdb_err *e, int rc, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return rc;
	e->rc = rc;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return rc;
}

int
vdb_err_errno(struct vdb_err *e, int rc, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	size_t n;

	if (saved == ENOMEM || saved == ENOSPC || saved == EIO || saved == EAGAIN ||
	    saved == EWOULDBLOCK || saved == EDQUOT || saved == EINTR || saved == EMFILE ||
	    saved == ENFILE)
		rc = VDB_ETEMP;
	if (e == NULL)
		return rc;
	e->rc = rc;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(saved));
	return rc;
}

void
vdb_err_prefix(struct vdb_err *e, const char *fmt, ...)
{
	char pre[512];
	size_t plen, mlen;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	plen = strlen(pre);
	mlen = strlen(e->msg);
	if (plen + mlen >= sizeof(e->msg))
		mlen = sizeof(e->msg) - 1 - plen;
	memmove(e->msg + plen, e->msg, mlen);
	memcpy(e->msg, pre, plen);
	e->msg[plen + mlen] = '\0';
}

int
vdb_exit_code(int rc)
{
	switch (rc) {
	case VDB_OK:
		return 0;
	case VDB_EINPUT:
	case VDB_ECORRUPT:
	case VDB_ENOENT:
	case VDB_EEXIST:
		return EXIT_PERM;
	case VDB_ETEMP:
		return EXIT_TEMP;
	default:
		return EXIT_INTERNAL;
	}
}
