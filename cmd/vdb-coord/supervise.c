/* supervise.c: worker processes.  A worker is `vdb-query serve -d ROOT`
 * (or --worker COMMAND under /bin/sh -c) with a socketpair to coord as its
 * stdin and stdout and coord's stderr as its own; nothing else is
 * inherited (every other descriptor is close-on-exec).  Each worker leads
 * its own process group, so a kill also reaches anything it started.
 *
 * Worker states (enum wstate) and the events that move them:
 *   IDLE --request--> BUSY --response--> IDLE
 *   IDLE|BUSY --timeout, kill, stop, EOF, exit--> GONE --reaped--> freed
 * A request still attached when the worker is reaped is answered with a
 * `worker` error carrying the exit status.
 *
 * Pool mode keeps co.cfg.workers slots filled.  A slot whose worker dies
 * is refilled after a back-off that starts at BACKOFF_MIN_MS and doubles
 * to BACKOFF_MAX_MS, reset once a worker has lived BACKOFF_RESET_MS; a
 * worker killed for a timeout is replaced at once (the worker was not at
 * fault).  Exit 100 before answering anything is "bad root or usage":
 * after FAIL100_MAX in a row the slot gives up until the next SIGHUP. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coord.h"

extern char **environ;

/* worker_who: its pool slot, or the connection it was started for, which
 * may be gone by the time it exits */
static void
worker_who(const struct worker *w, char *out, size_t n)
{
	if (w->slot >= 0)
		snprintf(out, n, "slot %d", w->slot);
	else
		snprintf(out, n, "conn=%llu", (unsigned long long)w->cnum);
}

struct worker *
worker_spawn(int slot, struct conn *owner, struct vdb_err *e)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	struct worker *w;
	char who[64];
	char *argv[6];
	pid_t pid;
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		vdb_err_errno(e, VDB_ETEMP, "socketpair");
		return NULL;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, sv[1], STDOUT_FILENO);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                      POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	/* coord ignores SIGPIPE, and an ignored signal stays ignored across
	 * exec: the worker gets the defaults back */
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGCHLD);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	posix_spawnattr_setsigdefault(&at, &dfl);
	if (co.cfg.worker) {
		argv[0] = "sh";
		argv[1] = "-c";
		argv[2] = co.cfg.worker;
		argv[3] = NULL;
		rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
	} else {
		argv[0] = "vdb-query";
		argv[1] = "serve";
		argv[2] = "-d";
		argv[3] = (char *)co.root;
		argv[4] = NULL;
		rc = co.query_path ? posix_spawn(&pid, co.query_path, &fa, &at, argv, environ)
		                   : posix_spawnp(&pid, "vdb-query", &fa, &at, argv, environ);
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		errno = rc;
		vdb_err_errno(e, VDB_ETEMP, "%s", co.cfg.worker ? "/bin/sh" : "vdb-query");
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL || fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0) {
		vdb_err_set(e, VDB_ETEMP, "out of memory");
		free(w);
		close(sv[0]);
		kill(-pid, SIGKILL); /* reaped as a stranger by supervise_reap */
		return NULL;
	}
	w->pid = pid;
	w->fd = sv[0];
	w->state = W_IDLE;
	w->slot = slot;
	w->owner = owner;
	w->cnum = owner ? owner->num : 0;
	w->started = now_ms();
	w->next = co.workers;
	if (co.workers)
		co.workers->prev = w;
	co.workers = w;
	co.nworkers++;
	worker_who(w, who, sizeof(who));
	log_msg("worker pid=%d started (%s)", (int)pid, who);
	return w;
}

/* worker_detach: the worker takes no more requests */
void
worker_detach(struct worker *w)
{
	w->state = W_GONE;
	if (w->owner) {
		if (w->owner->own == w)
			w->owner->own = NULL;
		w->owner = NULL;
	}
}

/* worker_stop: the polite way: EOF on its stdin ends vdb-query serve by
 * itself (formats/wire.md); SIGTERM if it has not gone STOP_GRACE_MS
 * later (or at once: term), SIGKILL after as long again */
void
worker_stop(struct worker *w, int term)
{
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	worker_detach(w);
	if (w->pid > 0 && term && !w->termed) {
		kill(-w->pid, SIGTERM);
		w->termed = 1;
		w->kill_at = 0;
	}
	if (w->pid > 0 && w->kill_at == 0)
		w->kill_at = now_ms() + STOP_GRACE_MS;
}

void
worker_kill(struct worker *w, const char *why)
{
	if (w->pid > 0) {
		kill(-w->pid, SIGKILL);
		log_msg("worker pid=%d killed: %s", (int)w->pid, why);
	}
	w->kill_at = 0;
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	worker_detach(w);
}

/* worker_eof: its output ended; the exit status, which the answer to an
 * attached request needs, comes with the reaping, which must not take
 * long */
static void
worker_eof(struct worker *w)
{
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	worker_detach(w);
	if (w->pid > 0 && w->kill_at == 0) {
		w->termed = 1; /* straight to SIGKILL: it is on its way out */
		w->kill_at = now_ms() + EOF_GRACE_MS;
	}
}

void
worker_on_read(struct worker *w)
{
	char *start, *nl;
	ssize_t n;

	while (w->fd >= 0) {
		if (buf_reserve(&w->in, READ_CHUNK) != 0) {
			worker_kill(w, "out of memory for its response");
			relay_fail(w, "worker", "out of memory for the response");
			return;
		}
		n = read(w->fd, w->in.p + w->in.len, w->in.cap - w->in.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				worker_eof(w);
			return;
		}
		if (n == 0) {
			worker_eof(w);
			return;
		}
		w->in.len += (size_t)n;
		if (w->req == NULL) {
			/* nobody asked: a worker out of step cannot be trusted
			 * with the next request */
			if (w->state == W_IDLE)
				worker_kill(w, "wrote without a request");
			buf_free(&w->in);
			w->scanned = 0;
			continue;
		}
		/* a response relayed may have emptied (and freed) the buffer */
		while (w->req && w->fd >= 0 && buf_used(&w->in) > w->scanned) {
			start = w->in.p + w->in.off;
			nl = memchr(start + w->scanned, '\n', buf_used(&w->in) - w->scanned);
			if (nl == NULL) {
				w->scanned = buf_used(&w->in);
				break;
			}
			relay_response(w, (size_t)(nl - start) + 1);
		}
		if (w->req && buf_used(&w->in) > RESP_MAX_BYTES) {
			worker_kill(w, "response too long");
			relay_fail(w, "worker", "response longer than %zu bytes; worker killed",
			           RESP_MAX_BYTES);
		}
	}
}

/* worker_on_write: 1 if the worker was gone before it got a byte of its
 * request, which went back to its connection (relay_requeue) */
int
worker_on_write(struct worker *w)
{
	struct req *r = w->req;
	ssize_t n;
	int gone;

	if (r == NULL || r->line == NULL || w->fd < 0)
		return 0;
	while (w->wr_off < r->len) {
		n = send(w->fd, r->line + w->wr_off, r->len - w->wr_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			/* it died: the reaping answers, unless nothing was
			 * sent and another worker can have it */
			gone = w->wr_off == 0 && (errno == EPIPE || errno == ECONNRESET);
			worker_eof(w);
			return gone && relay_requeue(w);
		}
		w->wr_off += (size_t)n;
	}
	/* sent: the worker has it, coord needs only the length */
	free(r->line);
	r->line = NULL;
	return 0;
}

static int64_t
backoff_next(struct slot *s)
{
	s->backoff = s->backoff ? s->backoff * 2 : BACKOFF_MIN_MS;
	if (s->backoff > BACKOFF_MAX_MS)
		s->backoff = BACKOFF_MAX_MS;
	return s->backoff;
}

static void
slot_spawn(int i)
{
	struct slot *s = &co.slots[i];
	struct vdb_err e;
	struct worker *w;

	s->restart_at = 0;
	if ((w = worker_spawn(i, NULL, &e)) == NULL) {
		s->restart_at = now_ms() + backoff_next(s);
		log_err("worker slot %d: %s; retrying in %lld ms", i, e.msg, (long long)s->backoff);
		return;
	}
	s->w = w;
	pool_release(w);
}

int
pool_dead(void)
{
	if (co.cfg.workers == 0 || co.nslots < (size_t)co.cfg.workers)
		return 0;
	for (int i = 0; i < co.cfg.workers; i++)
		if (!co.slots[i].failed)
			return 0;
	return 1;
}

/* flush_waiters: after a switch to per-connection mode, or when the pool
 * gave up, every waiting connection is pumped once (and does not come
 * back to the list) */
static void
flush_waiters(void)
{
	struct conn *c;

	while ((c = co.whead) != NULL) {
		wait_remove(c);
		conn_pump(c);
	}
}

static void
slot_exited(struct worker *w, int status)
{
	struct slot *s = &co.slots[w->slot];
	int64_t now = now_ms();

	if (s->w != w)
		return;
	s->w = NULL;
	if (co.stopping || w->slot >= co.cfg.workers)
		return;
	if (w->timed_out) {
		s->restart_at = now;
		return;
	}
	if (now - w->started >= BACKOFF_RESET_MS)
		s->backoff = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_PERM && w->served == 0) {
		if (++s->fails100 >= FAIL100_MAX) {
			s->failed = 1;
			log_err("worker slot %d: exit 100 before answering, %d times in a row: "
			        "giving up until SIGHUP",
			        w->slot, s->fails100);
			if (pool_dead())
				flush_waiters();
			return;
		}
	} else {
		s->fails100 = 0;
	}
	s->restart_at = now + backoff_next(s);
	log_msg("worker slot %d: restarting in %lld ms", w->slot, (long long)s->backoff);
}

static void
worker_reaped(struct worker *w, int status)
{
	char who[64], how[64];
	pid_t pid = w->pid;

	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "ended with wait status %d", status);
	worker_who(w, who, sizeof(who));
	log_msg("worker pid=%d %s (%s, %llu served)", (int)pid, how, who,
	        (unsigned long long)w->served);
	w->pid = 0;
	w->kill_at = 0;
	worker_detach(w);
	/* it is dead, so all it wrote is in the socket: an answer written
	 * just before exiting is still an answer */
	if (w->fd >= 0)
		worker_on_read(w);
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	if (w->req)
		relay_fail(w, "worker", "worker %s", how);
	w->dead = 1;
	if (w->slot >= 0)
		slot_exited(w, status);
}

void
supervise_reap(void)
{
	struct worker *w;
	siginfo_t si;
	int status;
	pid_t pid;

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
			return;
		pid = si.si_pid;
		/* still a zombie, so its process group id cannot have been
		 * reused: whatever the worker left running goes too */
		kill(-pid, SIGKILL);
		if (waitpid(pid, &status, 0) != pid)
			return;
		for (w = co.workers; w; w = w->next)
			if (w->pid == pid)
				break;
		if (w)
			worker_reaped(w, status);
	}
}

void
supervise_timers(int64_t now, int64_t *next)
{
	struct worker *w, *wn;
	struct req *r;

	for (w = co.workers; w; w = wn) {
		wn = w->next;
		if (w->dead)
			continue;
		r = w->req;
		if (w->state == W_BUSY && r && r->deadline) {
			if (now >= r->deadline) {
				w->timed_out = 1;
				worker_kill(w, "request timed out");
				relay_fail(w, "timeout", "no response within %g s; worker killed",
				           (double)co.cfg.timeout_ms / 1000);
			} else if (r->deadline < *next) {
				*next = r->deadline;
			}
		}
		if (w->pid > 0 && w->kill_at) {
			if (now >= w->kill_at && !w->termed) {
				kill(-w->pid, SIGTERM);
				w->termed = 1;
				w->kill_at = now + STOP_GRACE_MS;
			} else if (now >= w->kill_at) {
				kill(-w->pid, SIGKILL);
				log_msg("worker pid=%d did not exit: killed", (int)w->pid);
				w->kill_at = 0;
			} else if (w->kill_at < *next) {
				*next = w->kill_at;
			}
		}
	}
	if (co.stopping)
		return;
	for (int i = 0; i < co.cfg.workers && (size_t)i < co.nslots; i++) {
		struct slot *s = &co.slots[i];
		if (s->restart_at == 0 || s->failed)
			continue;
		if (now >= s->restart_at)
			slot_spawn(i);
		else if (s->restart_at < *next)
			*next = s->restart_at;
	}
}

struct worker *
pool_idle(void)
{
	for (int i = 0; i < co.cfg.workers && (size_t)i < co.nslots; i++) {
		struct worker *w = co.slots[i].w;
		if (w && w->state == W_IDLE && w->pid > 0)
			return w;
	}
	return NULL;
}

/* slot_leave: a worker stopped because the pool shrank leaves its slot
 * at once: should the pool grow back before it has exited, the slot is
 * filled again at once, and its exit is no crash of the slot's worker */
static void
slot_leave(struct worker *w)
{
	if (co.slots[w->slot].w == w)
		co.slots[w->slot].w = NULL;
	worker_stop(w, 0);
}

/* pool_release: a pool worker is free: the longest-waiting connection
 * gets it (a connection just answered queues behind the others) */
void
pool_release(struct worker *w)
{
	struct conn *c;

	if (w->slot >= co.cfg.workers) {
		slot_leave(w); /* the pool shrank on reload */
		return;
	}
	while (w->state == W_IDLE && (c = co.whead) != NULL) {
		wait_remove(c);
		conn_pump(c);
	}
}

/* pool_apply: make the pool match co.cfg.workers (start, reload) */
void
pool_apply(void)
{
	size_t n = (size_t)co.cfg.workers;
	struct slot *ns;

	if (n > co.nslots) {
		ns = realloc(co.slots, n * sizeof(*ns));
		if (ns == NULL) {
			log_err("pool: out of memory for %zu workers", n);
			return;
		}
		memset(ns + co.nslots, 0, (n - co.nslots) * sizeof(*ns));
		co.slots = ns;
		co.nslots = n;
	}
	for (size_t i = 0; i < co.nslots; i++) {
		struct slot *s = &co.slots[i];
		if (i < n) {
			s->failed = 0;
			s->fails100 = 0;
			if (s->w == NULL && s->restart_at == 0)
				slot_spawn((int)i);
		} else {
			s->restart_at = 0;
			/* a busy one goes when pool_release sees it done */
			if (s->w && s->w->state == W_IDLE)
				slot_leave(s->w);
		}
	}
	if (n == 0 || pool_dead())
		flush_waiters();
}

void
supervise_stop_all(void)
{
	for (struct worker *w = co.workers; w; w = w->next)
		if (!w->dead && w->pid > 0)
			worker_stop(w, 1);
	co.workers_stopped = 1;
}
