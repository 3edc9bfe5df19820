/* kmeans.h: k-means for the IVF indexes (ivf.h): the coarse quantizer's
 * lists and the product quantizer's codebooks.  As FAISS does it: trained
 * on a random sample of at most max_per_centroid points per centroid,
 * started from k distinct points chosen at random, Lloyd's iterations, and
 * an empty cluster takes over half of a large one (chosen with probability
 * growing with its size) by splitting its centroid in two.
 *
 * The result depends on the seed and the points only, not on the number of
 * threads: a point's assignment is its own, and each centroid is the sum
 * of its points in index order, computed by one thread.  Nor does it
 * depend on the ISA: every kernel computes the same bits. */
#ifndef VDB_KMEANS_H
#define VDB_KMEANS_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct kmeans_opt {
	uint32_t niter; /* Lloyd iterations, at most */
	uint32_t max_per_centroid; /* train on at most k * this points (0: all) */
	/* spherical: a point goes to the centroid of the largest inner product,
	 * and centroids are unit vectors, the mean direction of their points'
	 * directions (points need not be normalized) */
	int spherical;
	uint64_t seed;
	int threads; /* >= 1 */
	/* called from the calling thread after each iteration, or NULL */
	void (*progress)(void *arg, uint32_t iter, uint32_t niter);
	void *parg;
};

/* kmeans_train: k centroids into cent (k * d floats) for the n points
 * x[rows[i] * d ..] (rows NULL: x[i * d ..]).  n may be anything: with
 * n <= k the centroids are the points, repeated as needed (n = 0: zeros). */
int kmeans_train(const float *x, const uint32_t *rows, uint64_t n, uint32_t d, uint32_t k,
                 const struct kmeans_opt *o, float *cent, struct vdb_err *e);

/* kmeans_assign: assign[i] := the centroid nearest to point i (as in
 * kmeans_train) — smallest L2 distance, or largest inner product when
 * spherical; ties go to the smaller centroid, and a point whose every
 * distance is NaN to centroid 0.  Points as in kmeans_train.  Every ISA
 * gives the same answer. */
int kmeans_assign(const float *x, const uint32_t *rows, uint64_t n, uint32_t d, const float *cent,
                  uint32_t k, int spherical, int threads, uint32_t *assign, struct vdb_err *e);

/* kmeans_sample: m of the indices 0 .. n-1 (m <= n), increasing, chosen
 * at random from seed: what kmeans_train trains on when n is large */
void kmeans_sample(uint64_t n, uint64_t m, uint64_t seed, uint32_t *out);

#endif
