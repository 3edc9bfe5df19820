/* par.h: run one function on several threads at once — the shape every
 * index build's parallel step has (k-means assignment, encoding). */
#ifndef VDB_PAR_H
#define VDB_PAR_H

/* par_run: fn(ctx, t) for every t < threads, at once, t = 0 on the
 * calling thread; returns when all are done.  A thread that cannot be
 * started has its share run on the calling thread afterwards, so fn must
 * take its work by t or from a shared counter: the result is the same
 * however many threads really ran. */
void par_run(int threads, void (*fn)(void *ctx, int t), void *ctx);

#endif
