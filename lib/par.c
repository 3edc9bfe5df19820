/* par.c: par_run (par.h). */
#include "par.h"

#include <pthread.h>
#include <stdlib.h>

struct par {
	void (*fn)(void *ctx, int t);
	void *ctx;
	int t;
};

static void *
par_main(void *p)
{
	struct par *a = p;

	a->fn(a->ctx, a->t);
	return NULL;
}

void
par_run(int threads, void (*fn)(void *, int), void *ctx)
{
	pthread_t *tid = NULL;
	struct par *a = NULL;
	int *ok = NULL;

	if (threads > 1) {
		tid = calloc((size_t)threads, sizeof *tid);
		a = calloc((size_t)threads, sizeof *a);
		ok = calloc((size_t)threads, sizeof *ok);
	}
	if (tid == NULL || a == NULL || ok == NULL) {
		for (int t = 0; t < (threads < 1 ? 1 : threads); t++)
			fn(ctx, t);
		goto out;
	}
	for (int t = 1; t < threads; t++) {
		a[t] = (struct par){fn, ctx, t};
		ok[t] = pthread_create(&tid[t], NULL, par_main, &a[t]) == 0;
	}
	fn(ctx, 0);
	for (int t = 1; t < threads; t++) {
		if (ok[t])
			pthread_join(tid[t], NULL);
		else
			fn(ctx, t);
	}
out:
	free(tid);
	free(a);
	free(ok);
}
