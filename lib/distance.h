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
/* dist_select: the i < n whose key beats bound — key = d[i], or -d[i]
 * when neg (IP, cosine: higher is closer), and key <= bound; a NaN never —
 * written to idx in increasing order; returns how many.  A search compares
 * every distance with its heap's worst and nearly all lose, so this looks
 * at 16 (or 8) at a time. */
size_t dist_select(const float *d, size_t n, int neg, float bound, uint32_t *idx);
/* dist_sqnorms: out[i] = |x_i|^2 for the n vectors x[i * d ..], or
 * x[rows[i] * d ..] when rows is not NULL */
void dist_sqnorms(const float *x, const uint32_t *rows, size_t n, size_t d, float *out);
/* The L2 shortcut of a batch: with |q|^2 and |x|^2 known, the dot product
 * (one fma per element, dist_block with METRIC_IP) gives |q|^2 + |x|^2 -
 * 2 q.x, which is L2 up to rounding that grows with the norms.
 * dist_select_dot picks the i < n that the exact L2 distance could put at
 * or under bound, allowing for that rounding in full: dot[i] = q.x_i,
 * xx[i] = |x_i|^2, qq = |q|^2 as computed here for dimension d.  Every row
 * it leaves out is surely worse; the picks still need their exact L2
 * distance (dist_rows), which alone decides, so results stay those of the
 * exact kernels.  A norm that overflows picks the row. */
size_t dist_select_dot(const float *dot, const float *xx, size_t n, float qq, size_t d, float bound,
                       uint32_t *idx);
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
