/* coord-load: many clients on one vdb-coord, each sending requests with
 * ids of its own and checking that every response is the one for its
 * request, in order (formats/wire.md).  One thread, poll(2), one
 * connection per client.  Used by t/t4000-coord.sh.
 *
 *   coord-load [-c clients] [-p depth] [-s seconds] [-q request] [-a answer]
 *              unix:PATH|tcp:HOST:PORT
 *
 * Request N of client C is {"id":ID, followed by the -q text, and its
 * answer must be {"id":ID, followed by the -a text, byte for byte; the
 * defaults suit the stand-in worker of t/lib-coord.sh.
 * Prints one summary line; exits 0 only if every client got a correct
 * answer to every request it sent. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HIST_US 10 /* histogram bucket width */
#define HIST_N 1000000 /* 10 s */

struct client {
	int fd;
	uint64_t sent, ok, bad;
	uint64_t next_ack; /* sequence number of the next response expected */
	int64_t *sent_at; /* ring of depth send times */
	char *in; /* a response line being read */
	size_t inlen, incap;
	char *out; /* one request being written */
	size_t outoff, outlen;
	int closed;
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
dial(const char *addr)
{
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un sa;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", addr + 5);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	if (strncmp(addr, "tcp:", 4) == 0) {
		const char *colon = strrchr(addr + 4, ':');
		struct addrinfo hints, *res;
		char host[256];
		int fd = -1;
		if (colon == NULL || (size_t)(colon - addr - 4) >= sizeof(host))
			return -1;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr - 4), addr + 4);
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
			return -1;
		fd = socket(res->ai_family, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
		return fd;
	}
	return -1;
}

static const char *req_tail = "\"op\":\"search\",\"collection\":\"load\"}";
static const char *ans_tail = "\"results\":[]}";
static char *want;

static uint64_t
req_id(size_t client, uint64_t seq)
{
	return (uint64_t)client * 1000000000u + seq;
}

/* check: the response must be for the oldest unanswered request */
static void
check(struct client *c, size_t ci, const char *line, size_t len, uint64_t *hist, int depth)
{
	int n = sprintf(want, "{\"id\":%llu,%s", (unsigned long long)req_id(ci, c->next_ack),
	                ans_tail);
	int64_t lat = now_us() - c->sent_at[c->next_ack % (uint64_t)depth];
	size_t b = (size_t)(lat / HIST_US);

	hist[b < HIST_N ? b : HIST_N - 1]++;
	if ((size_t)n == len && memcmp(line, want, len) == 0)
		c->ok++;
	else {
		if (c->bad < 3)
			fprintf(stderr, "coord-load: client %zu: want %.200s, got %.*s\n", ci, want,
			        (int)(len > 200 ? 200 : len), line);
		c->bad++;
	}
	c->next_ack++;
}

int
main(int argc, char **argv)
{
	size_t nclients = 200;
	int depth = 4, ch, rc = 0;
	double seconds = 5;
	struct client *cl;
	struct pollfd *pfd;
	uint64_t *hist, sent = 0, ok = 0, bad = 0, lost = 0, total = 0, acc = 0;
	int64_t t0, stop_at, drain_until, elapsed;
	double p50 = 0, p99 = 0;

	while ((ch = getopt(argc, argv, "a:c:p:q:s:")) != -1) {
		switch (ch) {
		case 'a':
			ans_tail = optarg;
			break;
		case 'q':
			req_tail = optarg;
			break;
		case 'c':
			nclients = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			depth = atoi(optarg);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || nclients == 0 || depth < 1 || seconds <= 0)
		goto usage;
	cl = calloc(nclients, sizeof(*cl));
	pfd = calloc(nclients, sizeof(*pfd));
	hist = calloc(HIST_N, sizeof(*hist));
	want = malloc(strlen(ans_tail) + 32);
	if (cl == NULL || pfd == NULL || hist == NULL || want == NULL)
		return 2;
	for (size_t i = 0; i < nclients; i++) {
		cl[i].fd = dial(argv[optind]);
		if (cl[i].fd < 0) {
			fprintf(stderr, "coord-load: client %zu: cannot connect to %s: %s\n", i,
			        argv[optind], strerror(errno));
			return 1;
		}
		cl[i].sent_at = calloc((size_t)depth, sizeof(int64_t));
		cl[i].out = malloc(strlen(req_tail) + 32);
		if (cl[i].sent_at == NULL || cl[i].out == NULL)
			return 2;
	}
	t0 = now_us();
	stop_at = t0 + (int64_t)(seconds * 1e6);
	drain_until = stop_at + 10000000;
	for (;;) {
		int64_t now = now_us();
		int active = 0;
		for (size_t i = 0; i < nclients; i++) {
			struct client *c = &cl[i];
			/* keep depth requests in flight until the time is up */
			if (!c->closed && c->outlen == 0 && now < stop_at &&
			    c->sent - c->next_ack < (uint64_t)depth) {
				c->outlen = (size_t)sprintf(c->out, "{\"id\":%llu,%s\n",
				                            (unsigned long long)req_id(i, c->sent),
				                            req_tail);
				c->outoff = 0;
				c->sent_at[c->sent % (uint64_t)depth] = now;
				c->sent++;
			}
			pfd[i].fd = c->closed ? -1 : c->fd;
			pfd[i].events = POLLIN | (c->outlen ? POLLOUT : 0);
			pfd[i].revents = 0;
			if (!c->closed && (c->sent > c->next_ack || now < stop_at))
				active++;
		}
		if (active == 0 || now >= drain_until)
			break;
		if (poll(pfd, nclients, 100) < 0 && errno != EINTR)
			return 2;
		for (size_t i = 0; i < nclients; i++) {
			struct client *c = &cl[i];
			ssize_t n;
			if (pfd[i].revents & POLLOUT) {
				n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
				if (n > 0 && (c->outoff += (size_t)n) == c->outlen)
					c->outlen = 0;
			}
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				char *nl;
				if (c->incap - c->inlen < 4096) {
					c->incap = c->incap ? c->incap * 2 : 8192;
					if ((c->in = realloc(c->in, c->incap)) == NULL)
						return 2;
				}
				n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
				if (n <= 0) {
					c->closed = 1;
					continue;
				}
				c->inlen += (size_t)n;
				while ((nl = memchr(c->in, '\n', c->inlen)) != NULL) {
					size_t len = (size_t)(nl - c->in);
					if (c->next_ack < c->sent)
						check(c, i, c->in, len, hist, depth);
					else
						c->bad++; /* an answer to nothing */
					memmove(c->in, nl + 1, c->inlen - len - 1);
					c->inlen -= len + 1;
				}
			}
		}
	}
	elapsed = now_us() - t0;
	for (size_t i = 0; i < nclients; i++) {
		struct client *c = &cl[i];
		sent += c->sent;
		ok += c->ok;
		bad += c->bad;
		lost += c->sent - c->next_ack;
		if (c->ok != c->sent || c->bad) {
			if (rc == 0)
				fprintf(stderr,
				        "coord-load: client %zu: sent %llu, answered correctly "
				        "%llu, "
				        "wrong %llu%s\n",
				        i, (unsigned long long)c->sent, (unsigned long long)c->ok,
				        (unsigned long long)c->bad, c->closed ? ", closed" : "");
			rc = 1;
		}
		close(c->fd);
		free(c->in);
		free(c->out);
		free(c->sent_at);
	}
	for (size_t b = 0; b < HIST_N; b++)
		total += hist[b];
	for (size_t b = 0; b < HIST_N && total; b++) {
		acc += hist[b];
		if (p50 == 0 && acc * 2 >= total)
			p50 = (double)(b + 1) * HIST_US / 1000;
		if (acc * 100 >= total * 99) {
			p99 = (double)(b + 1) * HIST_US / 1000;
			break;
		}
	}
	printf("clients %zu depth %d seconds %.1f sent %llu ok %llu wrong %llu lost %llu "
	       "rate %.0f/s p50 %.2f ms p99 %.2f ms\n",
	       nclients, depth, (double)elapsed / 1e6, (unsigned long long)sent,
	       (unsigned long long)ok, (unsigned long long)bad, (unsigned long long)lost,
	       (double)ok / ((double)elapsed / 1e6), p50, p99);
	free(cl);
	free(pfd);
	free(hist);
	free(want);
	return rc;
usage:
	fputs("usage: coord-load [-c clients] [-p depth] [-s seconds] [-q request] [-a answer]\n"
	      "                  unix:PATH|tcp:HOST:PORT\n",
	      stderr);
	return 2;
}
