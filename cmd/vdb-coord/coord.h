/* coord.h: vdb-coord, the network front door and supervisor of
 * `vdb-query serve` workers.  See vdb-coord(8); the framing it relays is
 * formats/wire.md.
 *
 * One process, one thread, one poll(2) loop (loop.c).  Files by job:
 *   main.c       options, start-up, exit codes
 *   config.c     the --config file and the option values it shares
 *   listen.c     listening sockets, accept, the connection limit
 *   relay.c      connections: framing, per-connection queues, relaying
 *                requests to workers and responses back, coord's own errors
 *   supervise.c  worker processes: spawn, stop, kill, reap, pool restarts
 *   loop.c       the event loop: signals (self-pipe), timers, shutdown, reload
 *   logging.c    log lines on stderr or syslog(3)
 *   buf.c        growable byte buffers
 */
#ifndef VDB_COORD_H
#define VDB_COORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* formats/wire.md: a request line is at most 64 MiB, '\n' excluded */
#define LINE_MAX_BYTES ((size_t)64 << 20)
/* a worker's response longer than this kills the worker: a runaway
 * worker must not take coord's memory with it */
#define RESP_MAX_BYTES ((size_t)256 << 20)
/* a connection stops being read, and its next request stays queued, while
 * this much of its output is unsent: a client that does not read must
 * not make coord buffer without bound */
#define OUT_HIGH ((size_t)1 << 20)
/* pipelined requests queued behind the one in flight, per connection: at
 * most QUEUE_MAX, and none more once they hold QUEUE_BYTES_MAX; lines
 * read beyond wait unparsed in the input buffer, which is not read
 * meanwhile */
#define QUEUE_MAX 64
#define QUEUE_BYTES_MAX ((size_t)1 << 20)
#define READ_CHUNK ((size_t)64 << 10)
/* after coord's last response on a connection it will not read from
 * again, how long it reads and discards the client's leftovers before
 * closing: closing with unread input sends a TCP RST, which can destroy the
 * response the client has not read yet */
#define LINGER_MS 2000
/* a worker told to stop (stdin closed) gets this long to exit before
 * SIGTERM, and as long again before SIGKILL */
#define STOP_GRACE_MS 5000
/* a worker whose output reached EOF but which has not exited yet */
#define EOF_GRACE_MS 1000
/* pool restarts: daemontools-style back-off */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define BACKOFF_RESET_MS 10000 /* a worker that lived this long resets it */
#define FAIL100_MAX 3 /* exits with 100 before answering: give up */
/* with --timeout 0 a shutdown still waits at most this long */
#define DRAIN_DEFAULT_MS 30000

/* buf.c: bytes p[off, len) of cap allocated */
struct buf {
	char *p;
	size_t off, len, cap;
};

int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_trim(struct buf *b);
void buf_free(struct buf *b);
static inline size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* config.c */
enum {
	CF_LISTEN = 1 << 0,
	CF_WORKERS = 1 << 1,
	CF_MAXCONNS = 1 << 2,
	CF_TIMEOUT = 1 << 3,
	CF_IDLE = 1 << 4,
	CF_SYSLOG = 1 << 5,
	CF_WORKER = 1 << 6,
};

struct config {
	unsigned set; /* CF_* bits: the keys this source gave */
	char **listen;
	size_t nlisten;
	int workers; /* 0: a worker per connection */
	int max_conns;
	int64_t timeout_ms; /* 0: none */
	int64_t idle_ms; /* 0: none */
	int syslog;
	char *worker; /* shell command; NULL: vdb-query serve -d ROOT */
};

void config_defaults(struct config *c);
int config_set(struct config *c, const char *key, const char *val, struct vdb_err *e);
int config_read(const char *path, struct config *c, struct vdb_err *e);
int config_merge(struct config *dst, const struct config *src, struct vdb_err *e);
void config_free(struct config *c);
int config_listen_same(const struct config *a, const struct config *b);

/* relay.c */
struct req {
	struct req *next;
	struct conn *conn; /* NULL once the client is gone: the answer is dropped */
	uint64_t cnum; /* the connection's number, for the log */
	char *peer; /* a copy of its peer, once it is gone */
	char *line; /* the request with its '\n', as forwarded */
	size_t len;
	char *id; /* "id" re-serialized compactly, "null" when absent */
	const char *reject; /* set: coord answers with an input error itself */
	char op[24]; /* "op" for the log when short and plain, else "?" */
	int64_t t0_us; /* when it was queued */
	int64_t deadline; /* ms: the worker is killed at this time; 0 none */
	int requeued; /* given back once by a worker that was gone */
};

enum rd_state {
	RD_OPEN, /* reading requests */
	RD_EOF, /* the client sent EOF: finish the queue, then close */
	RD_DISCARD, /* reading and dropping: after a too-long line, or stopping */
};

struct conn {
	struct conn *prev, *next; /* co.conns */
	struct conn *wprev, *wnext; /* co.waiting: wants a pool worker */
	int waiting;
	int64_t wait_since;
	uint64_t num;
	int fd;
	int dead; /* closed: freed by the sweep at the end of the loop pass */
	char *peer;
	enum rd_state rd;
	int wr_shut;
	int64_t linger_until;
	struct buf in;
	size_t scanned; /* in.p[in.off, in.off + scanned) holds no '\n' */
	struct req *qhead, *qtail;
	size_t qlen, qbytes;
	struct req *inflight; /* owned by the worker it went to */
	struct worker *own; /* per-connection mode */
	struct buf out;
	int64_t last_progress; /* ms: last complete request or byte written */
	uint64_t nreq;
};

struct conn *conn_new(int fd, const char *peer);
void conn_on_read(struct conn *c);
void conn_on_write(struct conn *c);
void conn_close(struct conn *c, const char *why);
void conn_pump(struct conn *c);
void conn_stop(struct conn *c);
int conn_wants_read(const struct conn *c);
void conn_timers(struct conn *c, int64_t now, int64_t *next);
void req_answer(struct req *r, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void req_free(struct req *r);
void relay_response(struct worker *w, size_t len);
int relay_requeue(struct worker *w);
void relay_fail(struct worker *w, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void wait_add(struct conn *c);
void wait_remove(struct conn *c);

/* supervise.c */
enum wstate {
	W_IDLE, /* running, ready for a request */
	W_BUSY, /* a request is in flight */
	W_GONE, /* killed, stopped or dead: takes no more requests */
};

struct worker {
	struct worker *prev, *next; /* co.workers */
	pid_t pid; /* 0 once reaped */
	int fd; /* its stdin and stdout; -1 once closed */
	int dead; /* reaped and closed: freed by the sweep */
	enum wstate state;
	int slot; /* pool slot, or -1 */
	struct conn *owner; /* per-connection mode */
	uint64_t cnum; /* the number of the connection it was started for */
	struct req *req;
	size_t wr_off;
	struct buf in;
	size_t scanned;
	int64_t started;
	int64_t kill_at; /* not reaped by then: SIGTERM, or SIGKILL if termed */
	int termed;
	int timed_out; /* killed for a timeout: its slot restarts at once */
	uint64_t served;
};

struct slot {
	struct worker *w;
	int64_t restart_at; /* 0: none pending */
	int64_t backoff;
	int fails100;
	int failed;
};

struct worker *worker_spawn(int slot, struct conn *owner, struct vdb_err *e);
void worker_on_read(struct worker *w);
int worker_on_write(struct worker *w);
void worker_stop(struct worker *w, int term);
void worker_kill(struct worker *w, const char *why);
void worker_detach(struct worker *w);
void supervise_reap(void);
void supervise_timers(int64_t now, int64_t *next);
void pool_apply(void);
struct worker *pool_idle(void);
int pool_dead(void);
void pool_release(struct worker *w);
void supervise_stop_all(void);

/* listen.c */
struct listener {
	struct listener *next;
	int fd;
	char *name; /* the address as bound: unix:PATH, tcp:1.2.3.4:5 */
	char *path; /* unix: the socket file, removed at exit if still ours */
	dev_t dev;
	ino_t ino;
};

int listen_open(const char *spec, struct vdb_err *e);
void listen_close_all(void);
void listen_on_accept(struct listener *l);

/* logging.c */
void log_open(int use_syslog);
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_req(const struct req *r, const char *status, size_t bytes);

/* loop.c */
int64_t now_ms(void);
int64_t now_us(void);
int loop_run(void);
int loop_signals(struct vdb_err *e);

/* the one coord */
struct coord {
	const char *root;
	const char *query_path; /* vdb-query next to us, or NULL: via PATH */
	const char *config_path;
	struct config cli; /* the command line: overrides the file */
	struct config cfg; /* in effect */
	struct listener *listeners;
	struct conn *conns;
	size_t nconns;
	uint64_t conn_seq;
	struct conn *whead, *wtail; /* connections waiting for a pool worker */
	struct worker *workers;
	size_t nworkers;
	struct slot *slots;
	size_t nslots;
	int stopping;
	int workers_stopped;
	int64_t drain_deadline;
	int64_t accept_pause_until;
	int64_t now; /* ms, refreshed each loop pass */
};

extern struct coord co;

#endif
