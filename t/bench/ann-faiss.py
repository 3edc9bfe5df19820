#!/usr/bin/python3
"""The FAISS side of the approximate-search bench (t/bench/ann.sh).

Run with Debian's /usr/bin/python3 (python3-faiss, python3-numpy: bench-only
peers, never a dependency of vdb).  One index type per process, so that the
peak RSS it reports is that index's (plus the interpreter's, printed on
stderr as the baseline):

  ann-faiss.py hnsw     [options] BASE QUERY GT   sweep: efSearch
  ann-faiss.py ivf_flat [options] BASE QUERY GT   sweep: nprobe
  ann-faiss.py ivf_pq   [options] BASE QUERY GT   sweep: nprobe
  ann-faiss.py gt BASE QUERY OUT.ivecs            exact top-100, for ann-data.sh

Single thread throughout (OpenMP and OpenBLAS), as the bench compares one
core against one core.  Build seconds are train + add.  The base is
streamed from the file in chunks, never held whole beside the index (only
the training sample is), so RSS is the index's, as for ann-hnswlib.  Each
point of the sweep is searched one query at a time (index.search on one
row: what a server answering single requests does; it includes the
Python/SWIG call, whose cost is printed on stderr) and as one batch of all
queries; best of --rounds by wall clock, each round at least 1000 queries.

stdout, one line per measurement, the format every engine shares:
  ann engine=faiss index=I data=D mode=single|batch build_s=X rss_mb=X
      param=ef|nprobe value=V recall=X qps=X
"""
import argparse
import os
import resource
import sys
import time

import faiss
import numpy as np

from faisspeer import best, blas, set_threads, vecs

K = 10


def note(msg):
    print("faiss: " + msg, file=sys.stderr, flush=True)


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def shape(path):
    """rows and dimension of an .fvecs/.ivecs file"""
    with open(path, "rb") as f:
        d = int(np.frombuffer(f.read(4), dtype=np.int32)[0])
    size = os.path.getsize(path)
    if d < 1 or size % (4 + 4 * d):
        sys.exit("ann-faiss: fatal: %s: not an fvecs/ivecs file" % path)
    return size // (4 + 4 * d), d


def chunks(path, rows=65536):
    """the base, a chunk of rows at a time"""
    n, d = shape(path)
    with open(path, "rb") as f:
        for start in range(0, n, rows):
            c = min(rows, n - start)
            a = np.fromfile(f, dtype=np.int32, count=c * (d + 1))
            yield a.reshape(c, d + 1)[:, 1:].view(np.float32)


def sample(path, count):
    """count rows of the base, spread evenly by a fixed seed (the training
    set of IVF's k-means and PQ's codebooks); the whole base if count >= n"""
    n, d = shape(path)
    count = min(count, n)
    keep = (np.arange(n) if count == n else
            np.sort(np.random.default_rng(1234).choice(n, count, replace=False)))
    # filled in place: a list of pieces stacked at the end would hold the
    # sample twice, and the peak RSS with it
    out = np.empty((count, d), np.float32)
    start = got = 0
    for c in chunks(path):
        sel = keep[(keep >= start) & (keep < start + len(c))] - start
        out[got:got + len(sel)] = c[sel]
        got += len(sel)
        start += len(c)
    return out


def call_overhead(d, rounds):
    """what one index.search call costs with nearly nothing to search: the
    part of a one-at-a-time query that is Python and SWIG, not FAISS"""
    ix = faiss.IndexFlatL2(d)
    ix.add(np.zeros((1, d), np.float32))
    q = np.zeros((1, d), np.float32)
    return best(lambda: [ix.search(q, 1) for _ in range(10000)], rounds) / 10000


def build(args, d):
    """the index, its build seconds (train + add) by wall clock and CPU,
    what to set per sweep point, and what it is"""
    if args.index == "hnsw":
        index = faiss.IndexHNSWFlat(d, args.M)
        index.hnsw.efConstruction = args.efc

        def setp(v):
            index.hnsw.efSearch = v
        what = "IndexHNSWFlat M=%d efConstruction=%d" % (args.M, args.efc)
        train = None
    else:
        quantizer = faiss.IndexFlatL2(d)
        if args.index == "ivf_flat":
            ivf = faiss.IndexIVFFlat(quantizer, d, args.nlist)
            what = "IndexIVFFlat nlist=%d" % args.nlist
        else:
            ivf = faiss.IndexIVFPQ(quantizer, d, args.nlist, args.pq_m, 8)
            what = "IndexIVFPQ nlist=%d m=%d x 8 bits" % (args.nlist, args.pq_m)
        ivf.cp.verbose = False
        index = ivf
        if args.index == "ivf_pq" and args.refine > 0:
            # exact re-ranking of the refine x k best by PQ distance, as vdb's
            # IVF_PQ does (ivf.h): a flat copy of the vectors beside the codes
            index = faiss.IndexRefineFlat(ivf)
            index.k_factor = args.refine
            what += ", IndexRefineFlat k_factor=%d" % args.refine

        def setp(v):
            ivf.nprobe = v
        n, _ = shape(args.base)
        train = min(n, args.train)
        what += ", k-means on %d rows" % train
    t = cpu = 0.0
    if train is not None:
        x = sample(args.base, train)
        t0, c0 = time.perf_counter(), time.process_time()
        index.train(x)
        t += time.perf_counter() - t0
        cpu += time.process_time() - c0
        del x
    for c in chunks(args.base):
        t0, c0 = time.perf_counter(), time.process_time()
        index.add(c)
        t += time.perf_counter() - t0
        cpu += time.process_time() - c0
    # CPU seconds beside wall seconds: on a busy machine the first grows
    # with the others' load, the second much less
    return index, t, cpu, setp, what


def run(args):
    set_threads(1)
    q = vecs(args.query)
    gt = vecs(args.gt, np.int32)[:, :K]
    n, d = shape(args.base)
    if q.shape[1] != d or len(gt) != len(q):
        sys.exit("ann-faiss: fatal: base, queries and ground truth do not match")
    note("%s, BLAS %s; peak RSS before the index: %.0f MB"
         % (faiss.__version__, blas(), rss_mb()))
    index, build_s, cpu, setp, what = build(args, d)
    note("%s over %d x %d: build %.2f s (CPU %.2f s), peak RSS after build %.0f MB"
         % (what, n, d, build_s, cpu, rss_mb()))
    note("one index.search call's own cost (Python, SWIG): %.1f us"
         % (call_overhead(d, args.rounds) * 1e6))
    param = "ef" if args.index == "hnsw" else "nprobe"
    reps = -(-1000 // len(q))  # rounds of at least 1000 queries
    singles = [q[i:i + 1] for i in range(len(q))]
    for v in args.sweep:
        setp(v)
        _, got = index.search(q, K)
        recall = sum(len(set(g) & set(t)) for g, t in zip(got, gt)) / gt.size
        ts = best(lambda: [index.search(s, K) for _ in range(reps) for s in singles],
                  args.rounds)
        tb = best(lambda: [index.search(q, K) for _ in range(reps)], args.rounds)
        for mode, t in (("single", ts), ("batch", tb)):
            print("ann engine=faiss index=%s data=%s mode=%s build_s=%.2f rss_mb=%.0f "
                  "param=%s value=%d recall=%.4f qps=%.0f"
                  % (args.label or args.index, args.data, mode, build_s, rss_mb(), param, v, recall,
                     reps * len(q) / t), flush=True)


def ground_truth(base_path, q_path, out_path, k=100):
    """exact top-k ids of each query, nearest first.  FAISS's IndexFlatL2
    finds candidates (with BLAS: |x|^2 - 2 x.q + |q|^2 in float32, which can
    reorder near-ties), then the candidates' distances are recomputed in
    float64 and sorted, ties by the smaller id, as vdb's exact search
    breaks them.  Says how many queries have a tie, or a near-tie that
    float32 distances might order either way, at rank 10."""
    q = vecs(q_path)
    index = faiss.IndexFlatL2(q.shape[1])
    for c in chunks(base_path):
        index.add(c)
    _, cand = index.search(q, k + 28)
    out = np.empty((len(q), k + 1), np.int32)
    out[:, 0] = k
    ties = near = 0
    for i, c in enumerate(cand):
        x = np.vstack([index.reconstruct(int(j)) for j in c]).astype(np.float64)
        dist = ((x - q[i].astype(np.float64)) ** 2).sum(axis=1)
        order = np.lexsort((c, dist))
        out[i, 1:] = c[order[:k]]
        d10, d11 = dist[order[K - 1]], dist[order[K]]
        ties += d10 == d11
        near += d11 - d10 <= 1e-6 * d11
    out.tofile(out_path)
    print("ground truth: %d queries x top %d; ties at rank 10: %d, near-ties "
          "(within 1e-6): %d" % (len(q), k, ties, near), file=sys.stderr)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "gt":
        ground_truth(*sys.argv[2:5])
        return
    p = argparse.ArgumentParser(prog="ann-faiss.py")
    p.add_argument("index", choices=["hnsw", "ivf_flat", "ivf_pq"])
    p.add_argument("base")
    p.add_argument("query")
    p.add_argument("gt")
    p.add_argument("--data", default="?", help="the data set's name in the output")
    p.add_argument("--label", help="the index's name in the output (default: its type)")
    p.add_argument("--M", type=int, default=16, help="HNSW links per node")
    p.add_argument("--efc", type=int, default=200, help="HNSW efConstruction")
    p.add_argument("--nlist", type=int, default=256, help="IVF lists")
    p.add_argument("--pq-m", type=int, default=32, help="PQ sub-quantizers (8 bits each)")
    p.add_argument("--refine", type=int, default=0,
                   help="IVF_PQ: re-rank refine x k candidates exactly (0: no)")
    p.add_argument("--train", type=int, default=10 ** 9,
                   help="IVF: k-means (and PQ) training rows (default: all)")
    p.add_argument("--rounds", type=int, default=3, help="timing: best of")
    p.add_argument("--sweep", type=lambda s: [int(v) for v in s.split()],
                   default=[1, 2, 4, 8, 16, 32, 64], help="efSearch or nprobe values")
    run(p.parse_args())


if __name__ == "__main__":
    main()
