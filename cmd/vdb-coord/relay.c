/* relay.c: client connections.  Requests are framed by newline
 * (formats/wire.md), queued per connection, and sent to a worker one at a
 * time, so responses come back in request order however much a client
 * pipelines.  coord relays instead of handing the socket to the worker so
 * that it can still answer when it has killed the worker (timeout) or the
 * worker died: the client always gets one response per request.
 *
 * A connection, besides its queue:
 *   rd        RD_OPEN -> RD_EOF (client EOF) or RD_DISCARD (line too long,
 *             shutdown) -> closed once queue, in-flight and output are done
 *   inflight  NULL, or the request its worker (own or pool) is answering
 *   waiting   on co.waiting: it has a request and no pool worker is free
 * A connection is read only while its queue and unsent output are small
 * (conn_wants_read), at most READ_CHUNK at a time, and lines are queued
 * only up to the queue's limits (conn_frame), the rest waiting in the
 * input buffer: a client that pipelines without reading cannot make coord
 * buffer without bound. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coord.h"
#include "jscan.h"

#define ID_MAX_BYTES ((size_t)64 << 10) /* a longer "id" is answered as null */
#define READ_BURST ((size_t)1 << 20) /* per connection per wake-up */

struct conn *
conn_new(int fd, const char *peer)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->peer = strdup(peer)) == NULL) {
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->num = ++co.conn_seq;
	c->rd = RD_OPEN;
	c->last_progress = now_ms();
	c->next = co.conns;
	if (co.conns)
		co.conns->prev = c;
	co.conns = c;
	co.nconns++;
	log_msg("conn=%llu peer=%s open", (unsigned long long)c->num, c->peer);
	return c;
}

void
req_free(struct req *r)
{
	if (r == NULL)
		return;
	free(r->line);
	free(r->id);
	free(r->peer);
	free(r);
}

/* A peek at the request: the top-level "id" and "op" without building the
 * whole tree, which for a 64 MiB array of numbers would cost jansson
 * gigabytes (jscan.h); only the id's and op's own text goes to jansson.
 * Anything malformed leaves id null and op "?": the worker will say what
 * is wrong with it. */
static void
req_peek(struct req *r, const char *line, size_t len)
{
	static const char *const keys[] = {"id", "op"};
	const char *end = line + len, *p;
	struct jspan v[2];
	json_t *j;

	p = jscan_object(jscan_ws(line, end), end, keys, v, 2);
	if (p == NULL || jscan_ws(p, end) != end)
		return;
	if (v[0].p && v[0].len <= ID_MAX_BYTES &&
	    (j = json_loadb(v[0].p, v[0].len, JSON_DECODE_ANY, NULL)) != NULL) {
		r->id = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(j);
	}
	if (v[1].p && v[1].len < sizeof(r->op) + 2 &&
	    (j = json_loadb(v[1].p, v[1].len, JSON_DECODE_ANY, NULL)) != NULL) {
		const char *s = json_string_value(j);
		size_t n = s ? strlen(s) : 0;
		/* only a plain word goes in the log as it is */
		if (n > 0 && n < sizeof(r->op) &&
		    strspn(s, "abcdefghijklmnopqrstuvwxyz"
		              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n)
			memcpy(r->op, s, n + 1);
		json_decref(j);
	}
}

static struct req *
req_new(struct conn *c, const char *line, size_t len, const char *reject)
{
	struct req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	strcpy(r->op, "?");
	r->conn = c;
	r->cnum = c->num;
	r->reject = reject;
	r->t0_us = now_us();
	if (reject == NULL) {
		if ((r->line = malloc(len + 1)) == NULL) {
			free(r);
			return NULL;
		}
		memcpy(r->line, line, len);
		r->line[len] = '\n';
		r->len = len + 1;
		req_peek(r, line, len);
	}
	return r;
}

static int
conn_enqueue(struct conn *c, const char *line, size_t len, const char *reject)
{
	struct req *r = req_new(c, line, len, reject);

	if (r == NULL) {
		conn_close(c, "out of memory");
		return -1;
	}
	if (c->qtail)
		c->qtail->next = r;
	else
		c->qhead = r;
	c->qtail = r;
	c->qlen++;
	c->qbytes += r->len;
	c->nreq++;
	c->last_progress = now_ms();
	return 0;
}

static struct req *
conn_dequeue(struct conn *c)
{
	struct req *r = c->qhead;

	c->qhead = r->next;
	if (c->qhead == NULL)
		c->qtail = NULL;
	r->next = NULL;
	c->qlen--;
	c->qbytes -= r->len;
	return r;
}

/* too_long: the rest of the line cannot be framed, so nothing after it
 * can be trusted to be a request: answer, then read and drop until close */
static void
too_long(struct conn *c)
{
	if (c->rd == RD_OPEN)
		c->rd = RD_DISCARD;
	buf_free(&c->in);
	c->scanned = 0;
	conn_enqueue(c, NULL, 0, "request line longer than 67108864 bytes");
}

/* blank: a line of spaces, tabs and CRs only is no request (wire.md),
 * as vdb-query serve skips it: forwarded, it would never be answered */
static int
blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

/* conn_frame: queue the complete lines in c->in while the queue is under
 * its limits; the rest waits in c->in, and conn_pump frames it as the
 * queue drains.  A pipelining client thus has at most QUEUE_MAX requests
 * queued, whatever one read brought. */
static void
conn_frame(struct conn *c)
{
	char *start, *nl;
	size_t avail, len;

	while (!c->dead && (c->rd == RD_OPEN || c->rd == RD_EOF) && c->qlen < QUEUE_MAX &&
	       c->qbytes < QUEUE_BYTES_MAX) {
		avail = buf_used(&c->in);
		if (avail == c->scanned)
			break; /* nothing new; the buffer may be freed */
		start = c->in.p + c->in.off;
		nl = memchr(start + c->scanned, '\n', avail - c->scanned);
		if (nl == NULL) {
			c->scanned = avail;
			if (avail > LINE_MAX_BYTES + 1) /* + 1: a '\r' may still come */
				too_long(c);
			break;
		}
		len = (size_t)(nl - start);
		if (len > 0 && start[len - 1] == '\r')
			len--;
		if (len > LINE_MAX_BYTES) {
			too_long(c);
			break;
		}
		if (!blank(start, len) && conn_enqueue(c, start, len, NULL) != 0)
			return;
		buf_consume(&c->in, (size_t)(nl - start) + 1);
		c->scanned = 0;
	}
	/* one big request must not leave its buffer behind */
	if (!c->dead)
		buf_trim(&c->in);
}

int
conn_wants_read(const struct conn *c)
{
	if (c->dead)
		return 0;
	switch (c->rd) {
	case RD_OPEN:
		return c->qlen < QUEUE_MAX && c->qbytes < QUEUE_BYTES_MAX &&
		       buf_used(&c->out) < OUT_HIGH;
	case RD_DISCARD:
		return 1;
	default:
		return 0;
	}
}

/* conn_eof: a last line without '\n' is still a request: it is given
 * one, and the lines still in c->in are framed as the queue drains */
static void
conn_eof(struct conn *c)
{
	size_t len = buf_used(&c->in);

	if (c->rd == RD_OPEN) {
		if (len > 0 && c->in.p[c->in.off + len - 1] != '\n' &&
		    buf_append(&c->in, "\n", 1) != 0) {
			conn_close(c, "out of memory");
			return;
		}
		c->rd = RD_EOF;
		conn_frame(c);
		return;
	}
	buf_free(&c->in);
	c->scanned = 0;
	if (c->wr_shut) /* lingering, and now the client is done too */
		conn_close(c, "done");
	else
		c->rd = RD_EOF;
}

void
conn_on_read(struct conn *c)
{
	static char sink[READ_CHUNK]; /* for input read only to be dropped */
	size_t total = 0;
	ssize_t n;

	while (!c->dead && conn_wants_read(c) && total < READ_BURST) {
		if (c->rd == RD_DISCARD) {
			n = read(c->fd, sink, sizeof(sink));
		} else {
			if (buf_reserve(&c->in, READ_CHUNK) != 0) {
				conn_close(c, "out of memory");
				return;
			}
			n = read(c->fd, c->in.p + c->in.len, READ_CHUNK);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c, strerror(errno));
			break;
		}
		if (n == 0) {
			conn_eof(c);
			break;
		}
		total += (size_t)n;
		if (c->rd == RD_OPEN) {
			c->in.len += (size_t)n;
			conn_frame(c);
		}
	}
	if (!c->dead)
		conn_pump(c);
}

void
conn_on_write(struct conn *c)
{
	ssize_t n;

	while (!c->dead && buf_used(&c->out) > 0) {
		n = send(c->fd, c->out.p + c->out.off, buf_used(&c->out), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c, strerror(errno));
			return;
		}
		buf_consume(&c->out, (size_t)n);
		c->last_progress = now_ms();
	}
	if (!c->dead)
		buf_trim(&c->out);
}

static void
conn_out(struct conn *c, const char *line, size_t len)
{
	if (c == NULL || c->dead)
		return;
	if (buf_append(&c->out, line, len) != 0) {
		conn_close(c, "out of memory");
		return;
	}
	conn_on_write(c);
}

void
req_answer(struct req *r, const char *code, const char *fmt, ...)
{
	char msg[1024], *qmsg, *line;
	json_t *s;
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s = json_string(msg);
	qmsg = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
	json_decref(s);
	len = strlen(r->id ? r->id : "null") + strlen(code) + (qmsg ? strlen(qmsg) : 2) + 48;
	line = malloc(len);
	if (line == NULL) {
		free(qmsg);
		if (r->conn)
			conn_close(r->conn, "out of memory");
		return;
	}
	len = (size_t)snprintf(line, len,
	                       "{\"id\":%s,\"error\":{\"code\":\"%s\",\"message\":%s}}\n",
	                       r->id ? r->id : "null", code, qmsg ? qmsg : "\"\"");
	free(qmsg);
	log_req(r, code, len);
	conn_out(r->conn, line, len);
	free(line);
}

void
wait_add(struct conn *c)
{
	if (c->waiting)
		return;
	c->waiting = 1;
	c->wait_since = now_ms();
	c->wnext = NULL;
	c->wprev = co.wtail;
	if (co.wtail)
		co.wtail->wnext = c;
	else
		co.whead = c;
	co.wtail = c;
}

void
wait_remove(struct conn *c)
{
	if (!c->waiting)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		co.whead = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		co.wtail = c->wprev;
	c->wprev = c->wnext = NULL;
	c->waiting = 0;
}

static void
dispatch(struct conn *c, struct worker *w)
{
	struct req *r = conn_dequeue(c);

	wait_remove(c);
	c->inflight = r;
	w->req = r;
	w->wr_off = 0;
	w->state = W_BUSY;
	r->deadline = co.cfg.timeout_ms ? now_ms() + co.cfg.timeout_ms : 0;
	/* a request given back (the worker was gone) is still at the head of
	 * the queue, where the loop of conn_pump finds it */
	(void)worker_on_write(w);
}

/* conn_finish: everything asked has been answered and sent */
static void
conn_finish(struct conn *c)
{
	if (c->dead || c->rd == RD_OPEN || c->qhead || c->inflight || buf_used(&c->out) ||
	    buf_used(&c->in))
		return;
	if (c->rd == RD_EOF) {
		conn_close(c, "done");
		return;
	}
	if (!c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = 1;
		c->linger_until = now_ms() + LINGER_MS;
	}
}

/* conn_pump: move the connection on: answer what coord answers itself,
 * send the next request to a worker, or wait for one */
void
conn_pump(struct conn *c)
{
	struct vdb_err e;
	struct worker *w;
	struct req *r;

	for (;;) {
		conn_frame(c); /* the queue may have room again */
		if (c->dead || c->inflight || c->qhead == NULL || buf_used(&c->out) >= OUT_HIGH)
			break;
		r = c->qhead;
		if (r->reject || co.stopping) {
			r = conn_dequeue(c);
			if (r->reject)
				req_answer(r, "input", "%s", r->reject);
			else
				req_answer(r, "shutdown", "vdb-coord is shutting down");
			req_free(r);
			continue;
		}
		if (co.cfg.workers > 0) {
			/* reloaded from per-connection to pool mode */
			if (c->own && c->own->state == W_IDLE)
				worker_stop(c->own, 0);
			if (pool_dead()) {
				r = conn_dequeue(c);
				req_answer(r, "worker",
				           "no worker: every pool worker failed at start-up");
				req_free(r);
				continue;
			}
			if ((w = pool_idle()) == NULL) {
				wait_add(c);
				break;
			}
		} else if ((w = c->own) == NULL) {
			if ((w = worker_spawn(-1, c, &e)) == NULL) {
				r = conn_dequeue(c);
				req_answer(r, "worker", "cannot start a worker: %s", e.msg);
				req_free(r);
				continue;
			}
			c->own = w;
		}
		dispatch(c, w);
	}
	conn_finish(c);
}

/* conn_stop: shutdown: read no more requests; those read and not sent are
 * answered "shutdown" */
void
conn_stop(struct conn *c)
{
	if (c->dead)
		return;
	wait_remove(c);
	if (c->rd == RD_OPEN) {
		c->rd = RD_DISCARD;
		buf_free(&c->in);
		c->scanned = 0;
	}
	conn_pump(c);
}

void
conn_close(struct conn *c, const char *why)
{
	struct worker *w;
	struct req *r;
	size_t dropped = 0;

	if (c->dead)
		return;
	wait_remove(c);
	while (c->qhead) {
		req_free(conn_dequeue(c));
		dropped++;
	}
	/* the worker keeps the request: its answer is logged and dropped */
	if ((r = c->inflight) != NULL) {
		r->conn = NULL;
		r->peer = strdup(c->peer);
		c->inflight = NULL;
		dropped++;
	}
	/* inetd-style: the connection's own worker goes with it */
	if ((w = c->own) != NULL) {
		if (w->state == W_BUSY)
			worker_kill(w, "its connection closed");
		else
			worker_stop(w, 0);
		c->own = NULL;
	}
	close(c->fd);
	c->fd = -1;
	c->dead = 1;
	co.nconns--;
	buf_free(&c->in);
	buf_free(&c->out);
	log_msg("conn=%llu peer=%s closed: %s (%llu requests, %zu unanswered)",
	        (unsigned long long)c->num, c->peer, why, (unsigned long long)c->nreq, dropped);
}

void
conn_timers(struct conn *c, int64_t now, int64_t *next)
{
	int64_t dl;
	struct req *r;

	if (c->dead)
		return;
	if (c->wr_shut) {
		if (now >= c->linger_until) {
			conn_close(c, "done");
			return;
		}
		if (c->linger_until < *next)
			*next = c->linger_until;
	}
	/* a pool that stays busy (or keeps failing) must not hold a request
	 * for ever: waiting for a worker counts against the same timeout */
	if (c->waiting && co.cfg.timeout_ms) {
		dl = c->wait_since + co.cfg.timeout_ms;
		if (now >= dl) {
			wait_remove(c);
			r = conn_dequeue(c);
			req_answer(r, "timeout", "no worker was free for %g s",
			           (double)co.cfg.timeout_ms / 1000);
			req_free(r);
			conn_pump(c);
		} else if (dl < *next) {
			*next = dl;
		}
	}
	/* idle: nothing in flight, nothing waiting for the pool, and no
	 * complete request or written byte for idle-timeout; a client that
	 * dribbles a line or never reads its output is idle too */
	if (!c->dead && !c->inflight && !c->waiting && co.cfg.idle_ms) {
		dl = c->last_progress + co.cfg.idle_ms;
		if (now >= dl)
			conn_close(c, "idle timeout");
		else if (dl < *next)
			*next = dl;
	}
}

/* response_status: "ok", or the code of an error response.  Only the
 * top-level keys are looked at, with the scanner of req_peek: the
 * response may be 256 MiB, and "error" may be anywhere in it (an id, a
 * field); jansson sees the code's text alone. */
static void
response_status(const char *line, size_t len, char *code, size_t codelen)
{
	static const char *const top[] = {"error"}, *const sub[] = {"code"};
	const char *end = line + len, *p, *s;
	struct jspan err, cs;
	json_t *j;

	snprintf(code, codelen, "ok");
	if (memmem(line, len, "\"error\"", 7) == NULL)
		return;
	p = jscan_object(jscan_ws(line, end), end, top, &err, 1);
	if (p == NULL || jscan_ws(p, end) != end || err.p == NULL)
		return;
	snprintf(code, codelen, "error");
	if (jscan_object(err.p, err.p + err.len, sub, &cs, 1) == NULL || cs.p == NULL ||
	    cs.len > codelen + 1)
		return;
	j = json_loadb(cs.p, cs.len, JSON_DECODE_ANY, NULL);
	s = json_string_value(j);
	if (s && strlen(s) < codelen && strspn(s, "abcdefghijklmnopqrstuvwxyz_") == strlen(s))
		snprintf(code, codelen, "%s", s);
	json_decref(j);
}

/* relay_response: the worker's line for w->req (len bytes with '\n') */
void
relay_response(struct worker *w, size_t len)
{
	struct req *r = w->req;
	struct conn *c = r->conn;
	const char *line = w->in.p + w->in.off;
	int early = w->wr_off < r->len;
	char code[24];

	response_status(line, len - 1, code, sizeof(code));
	log_req(r, code, len);
	w->req = NULL;
	w->served++;
	if (c && !c->dead) {
		c->inflight = NULL;
		if (buf_used(&c->out) == 0 && buf_used(&w->in) == len) {
			/* the usual case: hand the buffer over instead of copying */
			struct buf t = c->out;
			c->out = w->in;
			w->in = t;
		} else if (buf_append(&c->out, line, len) != 0) {
			conn_close(c, "out of memory");
		}
	}
	if (buf_used(&w->in) > 0)
		buf_consume(&w->in, len);
	w->scanned = 0;
	buf_trim(&w->in);
	req_free(r);
	/* more output, or an answer before the whole request was read: the
	 * worker is out of step, and its next line would go to the wrong
	 * request */
	if (early || buf_used(&w->in) > 0)
		worker_kill(w, "wrote more than one line per request");
	else if (w->state == W_BUSY)
		w->state = W_IDLE; /* not if it is GONE: reaped or stopped */
	if (c && !c->dead)
		conn_on_write(c);
	if (w->state == W_IDLE) {
		if (w->slot >= 0)
			pool_release(w);
		else if (w->owner == NULL)
			worker_stop(w, 0);
	}
	if (c && !c->dead)
		conn_pump(c);
}

/* relay_requeue: w failed before it was sent a byte of its request (its
 * socket was closed): the request goes back to the head of its
 * connection's queue, for another worker, once.  1 if it did; the caller
 * pumps the connection. */
int
relay_requeue(struct worker *w)
{
	struct req *r = w->req;
	struct conn *c = r ? r->conn : NULL;

	if (c == NULL || c->dead || r->requeued || w->wr_off > 0 || r->line == NULL)
		return 0;
	w->req = NULL;
	c->inflight = NULL;
	r->requeued = 1;
	r->deadline = 0;
	r->next = c->qhead;
	c->qhead = r;
	if (c->qtail == NULL)
		c->qtail = r;
	c->qlen++;
	c->qbytes += r->len;
	return 1;
}

/* relay_fail: coord answers for the request w was handling (timeout, the
 * worker died) and the connection moves on to its next request */
void
relay_fail(struct worker *w, const char *code, const char *fmt, ...)
{
	struct req *r = w->req;
	struct conn *c;
	char msg[512];
	va_list ap;

	if (r == NULL)
		return;
	c = r->conn;
	w->req = NULL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c && !c->dead)
		c->inflight = NULL;
	req_answer(r, code, "%s", msg);
	req_free(r);
	if (c && !c->dead)
		conn_pump(c);
}
