/* logging.c: one line per event and per request, on stderr (with an
 * ISO-8601 UTC time) or to syslog(3) (which stamps its own).  Request
 * bodies are never logged: only the id and op coord peeked at, and the id
 * only up to ID_LOG_MAX bytes, so a client cannot fill the log. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"

#define ID_LOG_MAX 64

static int use_syslog;

void
log_open(int on)
{
	if (on && !use_syslog)
		openlog("vdb-coord", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && use_syslog)
		closelog();
	use_syslog = on;
}

/* emit: one write(2) per line, so lines from workers sharing stderr do
 * not cut into ours */
static void
emit(int prio, const char *msg)
{
	char line[4096], stamp[32];
	struct timespec ts;
	struct tm tm;
	size_t n, off = 0;
	ssize_t w;
	int len;

	if (use_syslog) {
		syslog(prio, "%s", msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* a line is at most sizeof(line): everything in it is bounded by coord */
	len = snprintf(line, sizeof(line), "%s.%03ldZ vdb-coord: %s%s\n", stamp,
	               ts.tv_nsec / 1000000, prio == LOG_ERR ? "error: " : "", msg);
	if (len < 0)
		return;
	n = (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1;
	line[n - 1] = '\n';
	while (off < n) {
		w = write(STDERR_FILENO, line + off, n - off);
		if (w <= 0)
			return; /* nowhere else to say it */
		off += (size_t)w;
	}
}

static void
vlog(int prio, const char *fmt, va_list ap)
{
	char msg[3072];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	emit(prio, msg);
}

void
log_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}

void
log_req(const struct req *r, const char *status, size_t bytes)
{
	const char *peer = r->conn ? r->conn->peer : r->peer ? r->peer : "-";
	int64_t us = now_us() - r->t0_us;
	const char *id = r->id ? r->id : "null";
	int idlen = (int)strlen(id);

	log_msg("conn=%llu peer=%s id=%.*s%s op=%s status=%s ms=%.3f bytes=%zu",
	        (unsigned long long)r->cnum, peer, idlen > ID_LOG_MAX ? ID_LOG_MAX : idlen, id,
	        idlen > ID_LOG_MAX ? "..." : "", r->op, status, (double)us / 1000.0, bytes);
}
