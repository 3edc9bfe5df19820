/* distance.h: the distance kernels of exact search — squared L2, inner
 * product, cosine — in AVX-512, AVX2+FMA and plain C, the best one the CPU
 * has chosen once at run time.  A pair's distance never depends on which
 * other queries or vectors it was computed beside (the same summation
 * order for nq = 1 as inside a block), so results do not change with
 * batching or threads on one machine. */
#ifndef VDB_DISTANCE_H
#define VDB_DISTANCE_H
#include <stddef.h>
#include <stdint.h>

/* dist_block: out[q * n + i] = distance of query q (q[q * d ..]) to vector
 * i (x[i * d ..]) for q < nq, i < n.  metric is enum metric (schema.h):
 *   METRIC_L2      sum (q - x)^2
 *   METRIC_IP      sum q * x                     (higher is closer)
 *   METRIC_COSINE  sum q * x / (|q| |x|), 0 if either norm is 0 (higher is
 *                  closer); |q| and |x| computed here
 * x need not be aligned; nq and n may be anything >= 1. */
void dist_block(int metric, const float *q, size_t nq, const float *x, size_t n, size_t d,
                float *out);
/* dist_rows: the same for the n vectors x[rows[j] * d ..] (a filtered
 * scan's survivors): out[q * n + j] */
void dist_rows(int metric, const float *q, size_t nq, const float *x, const uint32_t *rows,
               size_t n, size_t d, float *out);
/* dist_isa: "avx512", "avx2" or "c" — what dist_block uses; $VDB_ISA
 * (avx512|avx2|c) lowers the choice, for tests and benchmarks */
const char *dist_isa(void);
/* dist_force_isa: make dist_block use isa ("avx512", "avx2", "c") from now
 * on, in every thread; NULL goes back to the choice made at first use.
 * -1 if the name is unknown or the CPU lacks it.  For tests and benchmarks:
 * results differ between ISAs in the last bits, so a running search must
 * not see it change. */
int dist_force_isa(const char *isa);

#endif
