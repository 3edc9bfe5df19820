/* loop.c: the one event loop.  poll(2) over the listeners, the clients,
 * the workers' sockets and a self-pipe the signal handler writes to;
 * timers are deadlines kept in the connections, workers and slots and
 * scanned each pass (there are at most a few thousand of them).
 *
 * Objects closed during a pass are only marked dead and freed by the sweep
 * between passes, so a pollfd entry never outlives what it points at.
 *
 * Shutdown (SIGTERM, SIGINT): listeners close at once; queued requests
 * are answered "shutdown"; requests in flight finish, within the timeout;
 * then the workers are stopped (stdin closed, SIGTERM, SIGKILL after
 * STOP_GRACE_MS) and reaped.  A second signal cuts the wait short. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"

enum { K_SIG, K_LISTEN, K_CONN, K_WORKER };

struct pref {
	int kind;
	void *p;
};

static int sigfd[2] = {-1, -1};
/* got_chld and got_hup may stand for several signals; got_term counts, as
 * a second SIGTERM means more than the first */
static volatile sig_atomic_t got_chld, got_hup, got_term, term_sig;
static sig_atomic_t terms_seen;
static struct pollfd *pfd;
static struct pref *pref;
static size_t pn, pcap;

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* on_signal: the flag says which; the byte only wakes poll (and may be
 * lost to a full pipe without harm) */
static void
on_signal(int sig)
{
	int saved = errno;
	char b = (char)sig;

	if (sig == SIGCHLD)
		got_chld = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else {
		term_sig = sig;
		got_term++; /* the handler blocks the others: no race with itself */
	}
	if (write(sigfd[1], &b, 1) < 0)
		(void)0;
	errno = saved;
}

int
loop_signals(struct vdb_err *e)
{
	static const int sigs[] = {SIGCHLD, SIGHUP, SIGINT, SIGTERM};
	struct sigaction sa;

	if (pipe2(sigfd, O_NONBLOCK | O_CLOEXEC) != 0)
		return vdb_err_errno(e, VDB_ETEMP, "pipe");
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) != 0)
			return vdb_err_errno(e, VDB_EINTERNAL, "sigaction");
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	if (sigaction(SIGPIPE, &sa, NULL) != 0)
		return vdb_err_errno(e, VDB_EINTERNAL, "sigaction");
	return VDB_OK;
}

static int
padd(int fd, short events, int kind, void *p)
{
	if (pn == pcap) {
		size_t ncap = pcap ? pcap * 2 : 256;
		struct pollfd *np = realloc(pfd, ncap * sizeof(*np));
		struct pref *nr;
		if (np == NULL)
			return -1;
		pfd = np;
		if ((nr = realloc(pref, ncap * sizeof(*nr))) == NULL)
			return -1;
		pref = nr;
		pcap = ncap;
	}
	pfd[pn].fd = fd;
	pfd[pn].events = events;
	pfd[pn].revents = 0;
	pref[pn].kind = kind;
	pref[pn].p = p;
	pn++;
	return 0;
}

static void
sweep(void)
{
	struct conn *c, *cn;
	struct worker *w, *wn;

	for (c = co.conns; c; c = cn) {
		cn = c->next;
		if (!c->dead)
			continue;
		if (c->prev)
			c->prev->next = c->next;
		else
			co.conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		free(c->peer);
		free(c);
	}
	for (w = co.workers; w; w = wn) {
		wn = w->next;
		if (!w->dead)
			continue;
		if (w->prev)
			w->prev->next = w->next;
		else
			co.workers = w->next;
		if (w->next)
			w->next->prev = w->prev;
		buf_free(&w->in);
		free(w);
		co.nworkers--;
	}
}

static void
begin_shutdown(int sig)
{
	struct conn *c, *cn;

	if (co.stopping) {
		log_msg("shutdown: signal %d again: not waiting for requests in flight", sig);
		co.drain_deadline = now_ms();
		return;
	}
	co.stopping = 1;
	log_msg("shutdown: signal %d: %zu connections, %zu workers", sig, co.nconns, co.nworkers);
	listen_close_all();
	co.drain_deadline =
	        now_ms() + (co.cfg.timeout_ms ? co.cfg.timeout_ms : DRAIN_DEFAULT_MS) + LINGER_MS;
	for (c = co.conns; c; c = cn) {
		cn = c->next;
		conn_stop(c);
	}
}

/* stop_progress: once the connections are gone (or the drain time is
 * up), the workers go */
static void
stop_progress(int64_t now, int64_t *next)
{
	struct worker *w, *wn;
	struct conn *c, *cn;

	if (co.workers_stopped)
		return;
	if (co.nconns > 0 && now < co.drain_deadline) {
		if (co.drain_deadline < *next)
			*next = co.drain_deadline;
		return;
	}
	if (co.nconns > 0) {
		log_msg("shutdown: drain time is up: closing %zu connections", co.nconns);
		for (w = co.workers; w; w = wn) {
			wn = w->next;
			if (!w->dead && w->req) {
				worker_kill(w, "shutdown");
				relay_fail(w, "shutdown", "vdb-coord is shutting down");
			}
		}
		for (c = co.conns; c; c = cn) {
			cn = c->next;
			if (!c->dead) {
				conn_on_write(c);
				conn_close(c, "shutdown");
			}
		}
	}
	supervise_stop_all();
}

static void
reload(void)
{
	struct config file, nc, old;
	struct vdb_err e;

	if (co.config_path == NULL) {
		log_msg("reload: no --config file: retrying failed workers only");
		pool_apply();
		return;
	}
	config_defaults(&file);
	config_defaults(&nc);
	if (config_read(co.config_path, &file, &e) != VDB_OK ||
	    config_merge(&nc, &file, &e) != VDB_OK || config_merge(&nc, &co.cli, &e) != VDB_OK) {
		log_err("reload: %s: keeping the configuration in effect", e.msg);
		config_free(&file);
		config_free(&nc);
		pool_apply(); /* failed workers are retried all the same */
		return;
	}
	config_free(&file);
	/* listening sockets are opened once, before anything is accepted */
	if (!config_listen_same(&nc, &co.cfg))
		log_err("reload: listen addresses change only with a restart");
	for (size_t i = 0; i < nc.nlisten; i++)
		free(nc.listen[i]);
	free(nc.listen);
	nc.listen = co.cfg.listen;
	nc.nlisten = co.cfg.nlisten;
	co.cfg.listen = NULL;
	co.cfg.nlisten = 0;
	old = co.cfg;
	co.cfg = nc;
	config_free(&old);
	log_open(co.cfg.syslog);
	log_msg("reload: %s: workers=%d max-conns=%d timeout=%gs idle-timeout=%gs", co.config_path,
	        co.cfg.workers, co.cfg.max_conns, (double)co.cfg.timeout_ms / 1000,
	        (double)co.cfg.idle_ms / 1000);
	pool_apply();
}

static void
handle(size_t i)
{
	short rev = pfd[i].revents;
	struct conn *c;
	struct worker *w;
	char drain[64];

	switch (pref[i].kind) {
	case K_SIG:
		while (read(sigfd[0], drain, sizeof(drain)) > 0)
			;
		break;
	case K_LISTEN:
		if (!co.stopping)
			listen_on_accept(pref[i].p);
		break;
	case K_CONN:
		c = pref[i].p;
		if (c->dead)
			break;
		if (rev & POLLOUT) {
			conn_on_write(c);
			if (!c->dead)
				conn_pump(c);
		}
		if (!c->dead && (rev & (POLLIN | POLLHUP | POLLERR))) {
			if (conn_wants_read(c))
				conn_on_read(c);
			else if (rev & (POLLHUP | POLLERR))
				conn_close(c, "hangup");
		}
		break;
	case K_WORKER:
		w = pref[i].p;
		if (w->dead || w->fd < 0)
			break;
		if (rev & POLLOUT) {
			c = w->req ? w->req->conn : NULL;
			if (worker_on_write(w) && c)
				conn_pump(c); /* gone: its request goes to another */
		}
		if (w->fd >= 0 && (rev & (POLLIN | POLLHUP | POLLERR)))
			worker_on_read(w);
		break;
	}
}

int
loop_run(void)
{
	struct listener *l;
	struct conn *c, *cn;
	struct worker *w;
	int64_t now, next, wait;
	short ev;
	int n;

	for (;;) {
		now = co.now = now_ms();
		next = INT64_MAX;
		supervise_timers(now, &next);
		for (c = co.conns; c; c = cn) {
			cn = c->next;
			conn_timers(c, now, &next);
		}
		if (co.stopping)
			stop_progress(now, &next);
		sweep();
		if (co.stopping && co.conns == NULL && co.workers == NULL)
			break;

		pn = 0;
		if (padd(sigfd[0], POLLIN, K_SIG, NULL) != 0)
			goto nomem;
		if (co.accept_pause_until > now && co.accept_pause_until < next)
			next = co.accept_pause_until;
		for (l = co.listeners; l && co.accept_pause_until <= now; l = l->next)
			if (padd(l->fd, POLLIN, K_LISTEN, l) != 0)
				goto nomem;
		for (c = co.conns; c; c = c->next) {
			if (c->dead)
				continue;
			/* with no events asked, poll still reports a hangup */
			ev = (conn_wants_read(c) ? POLLIN : 0) | (buf_used(&c->out) ? POLLOUT : 0);
			if (padd(c->fd, ev, K_CONN, c) != 0)
				goto nomem;
		}
		for (w = co.workers; w; w = w->next) {
			if (w->dead || w->fd < 0)
				continue;
			ev = POLLIN;
			if (w->req && w->req->line && w->wr_off < w->req->len)
				ev |= POLLOUT;
			if (padd(w->fd, ev, K_WORKER, w) != 0)
				goto nomem;
		}
		wait = next == INT64_MAX ? -1 : next - now_ms();
		if (wait < 0 && next != INT64_MAX)
			wait = 0;
		n = poll(pfd, pn, wait > INT_MAX ? INT_MAX : (int)wait);
		if (n < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			return EXIT_INTERNAL;
		}
		/* workers first, and the reaping: a worker whose output ended
		 * or which exited is known to be gone before a connection's
		 * request can be given to it */
		for (size_t i = 0; n > 0 && i < pn; i++)
			if (pfd[i].revents && (pref[i].kind == K_SIG || pref[i].kind == K_WORKER))
				handle(i);
		if (got_chld) {
			got_chld = 0;
			supervise_reap();
		}
		for (size_t i = 0; n > 0 && i < pn; i++)
			if (pfd[i].revents && (pref[i].kind == K_LISTEN || pref[i].kind == K_CONN))
				handle(i);
		while (terms_seen != got_term) {
			terms_seen++;
			begin_shutdown(term_sig);
		}
		if (got_hup) {
			got_hup = 0;
			if (!co.stopping)
				reload();
		}
	}
	log_msg("shutdown: done");
	return 0;
nomem:
	log_err("out of memory for the poll set");
	return EXIT_TEMP;
}
