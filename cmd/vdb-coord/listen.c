/* listen.c: the listening sockets (unix:PATH, tcp:HOST:PORT), accepting
 * connections, and the connection limit. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "coord.h"

#define ACCEPT_BURST 64 /* per wake-up, so one listener cannot starve the rest */
#define ACCEPT_PAUSE_MS 100 /* out of descriptors: let connections close first */

static int
add_listener(int fd, const char *name, const char *path, struct vdb_err *e)
{
	struct listener *l = calloc(1, sizeof(*l)), **tail;
	struct stat st;

	if (l == NULL || (l->name = strdup(name)) == NULL ||
	    (path && (l->path = strdup(path)) == NULL)) {
		if (l)
			free(l->name);
		free(l);
		close(fd);
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	}
	l->fd = fd;
	if (path && stat(path, &st) == 0) {
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
	for (tail = &co.listeners; *tail; tail = &(*tail)->next)
		;
	*tail = l;
	return VDB_OK;
}

/* listen_unix: a socket file left by a coord that died is removed, but
 * only when nothing answers on it: two coords must not steal each
 * other's socket */
static int
listen_unix(const char *spec, struct vdb_err *e)
{
	const char *path = spec + 5;
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int fd, probe, rc;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return vdb_err_set(e, VDB_EINPUT, "%s: socket path too long", spec);
	memcpy(sa.sun_path, path, strlen(path));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return vdb_err_set(e, VDB_ETEMP, "%s: exists and is not a socket", spec);
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (probe < 0)
			return vdb_err_errno(e, VDB_ETEMP, "%s: socket", spec);
		rc = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
			close(probe);
			return vdb_err_set(e, VDB_ETEMP, "%s: a server is listening there", spec);
		}
		if (errno != ECONNREFUSED) {
			vdb_err_errno(e, VDB_ETEMP, "%s: connect", spec);
			close(probe);
			return VDB_ETEMP;
		}
		close(probe);
		if (unlink(path) != 0 && errno != ENOENT)
			return vdb_err_errno(e, VDB_ETEMP, "%s: removing the stale socket", spec);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return vdb_err_errno(e, VDB_ETEMP, "%s: socket", spec);
	/* at most rw for owner and group, less if the umask says so */
	old = umask(0);
	umask(old | 0117);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0 || listen(fd, SOMAXCONN) != 0) {
		vdb_err_errno(e, VDB_ETEMP, "%s: %s", spec, rc != 0 ? "bind" : "listen");
		close(fd);
		return VDB_ETEMP;
	}
	return add_listener(fd, spec, path, e);
}

static char *
sockaddr_name(const struct sockaddr *sa, socklen_t len, const char *prefix, char *out,
              size_t outlen)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(out, outlen, "%s?", prefix);
	else if (sa->sa_family == AF_INET6)
		snprintf(out, outlen, "%s[%s]:%s", prefix, host, serv);
	else
		snprintf(out, outlen, "%s%s:%s", prefix, host, serv);
	return out;
}

/* listen_tcp: every address HOST resolves to is bound (localhost: both
 * 127.0.0.1 and ::1), IPv6 sockets v6-only so the two can share a port;
 * an address family the host lacks is skipped if another one binds */
static int
listen_tcp(const char *spec, struct vdb_err *e)
{
	const char *hp = spec + 4, *colon = strrchr(hp, ':');
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sl;
	char *host, name[NI_MAXHOST + NI_MAXSERV + 8];
	int rc = VDB_OK, fd, one = 1, gai, bound = 0, skipped = 0;

	host = strndup(hp, (size_t)(colon - hp));
	if (host == NULL)
		return vdb_err_set(e, VDB_ETEMP, "out of memory");
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	gai = getaddrinfo(*host && strcmp(host, "*") ? host : NULL, colon + 1, &hints, &res);
	if (gai != 0) {
		rc = vdb_err_set(e,
		                 gai == EAI_AGAIN || gai == EAI_FAIL || gai == EAI_MEMORY ||
		                                 gai == EAI_SYSTEM
		                         ? VDB_ETEMP
		                         : VDB_EINPUT,
		                 "%s: %s", spec, gai_strerror(gai));
		goto out;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		            ai->ai_protocol);
		if (fd < 0) {
			if (errno == EAFNOSUPPORT) {
				skipped++;
				continue;
			}
			rc = vdb_err_errno(e, VDB_ETEMP, "%s: socket", spec);
			goto out;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
			if (errno == EADDRNOTAVAIL && ai->ai_family == AF_INET6) {
				close(fd);
				skipped++;
				continue;
			}
			rc = vdb_err_errno(e, VDB_ETEMP, "%s: bind", spec);
			close(fd);
			goto out;
		}
		sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
			rc = vdb_err_errno(e, VDB_ETEMP, "%s: getsockname", spec);
			close(fd);
			goto out;
		}
		/* the name says the real port, so "tcp:127.0.0.1:0" can be found */
		sockaddr_name((struct sockaddr *)&ss, sl, "tcp:", name, sizeof(name));
		if ((rc = add_listener(fd, name, NULL, e)) != VDB_OK)
			goto out;
		bound++;
	}
	if (bound == 0)
		rc = vdb_err_set(e, VDB_ETEMP, "%s: no address to listen on%s", spec,
		                 skipped ? " (address family not available)" : "");
out:
	if (res)
		freeaddrinfo(res);
	free(host);
	return rc;
}

int
listen_open(const char *spec, struct vdb_err *e)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return listen_unix(spec, e);
	return listen_tcp(spec, e);
}

/* listen_close_all: stop accepting; a socket file is removed only if it
 * is still the one we made (not a successor's) */
void
listen_close_all(void)
{
	struct listener *l, *next;
	struct stat st;

	for (l = co.listeners; l; l = next) {
		next = l->next;
		close(l->fd);
		if (l->path && stat(l->path, &st) == 0 && st.st_dev == l->dev &&
		    st.st_ino == l->ino)
			unlink(l->path);
		free(l->name);
		free(l->path);
		free(l);
	}
	co.listeners = NULL;
}

static void
peer_name(int fd, const struct sockaddr_storage *ss, socklen_t sl, char *out, size_t outlen)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	if (ss->ss_family == AF_UNIX) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
			snprintf(out, outlen, "unix:uid=%u", (unsigned)cred.uid);
		else
			snprintf(out, outlen, "unix");
		return;
	}
	sockaddr_name((const struct sockaddr *)ss, sl, "", out, outlen);
}

/* overloaded: past --max-conns the client still hears why, in the wire
 * format, before the close; best effort, never blocking */
static void
overloaded(int fd, const char *peer)
{
	char msg[160];
	int n;

	n = snprintf(msg, sizeof(msg),
	             "{\"id\":null,\"error\":{\"code\":\"overloaded\",\"message\":"
	             "\"connection limit (%d) reached\"}}\n",
	             co.cfg.max_conns);
	if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		(void)0; /* the client is gone already: nothing to tell */
	shutdown(fd, SHUT_WR);
	close(fd);
	log_msg("conn=%llu peer=%s refused: overloaded (max-conns %d)",
	        (unsigned long long)++co.conn_seq, peer, co.cfg.max_conns);
}

void
listen_on_accept(struct listener *l)
{
	struct sockaddr_storage ss;
	char peer[NI_MAXHOST + NI_MAXSERV + 8];
	socklen_t sl;
	int fd;

	for (int i = 0; i < ACCEPT_BURST; i++) {
		sl = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			log_err("%s: accept: %s; pausing %d ms", l->name, strerror(errno),
			        ACCEPT_PAUSE_MS);
			co.accept_pause_until = now_ms() + ACCEPT_PAUSE_MS;
			return;
		}
		peer_name(fd, &ss, sl, peer, sizeof(peer));
		if (co.nconns >= (size_t)co.cfg.max_conns) {
			overloaded(fd, peer);
			continue;
		}
		if (conn_new(fd, peer) == NULL) {
			log_err("conn from %s: out of memory; closed", peer);
			close(fd);
		}
	}
}
