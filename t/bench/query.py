#!/usr/bin/python3
"""make bench, exact search: vdb-query (FLAT) against FAISS IndexFlatL2.

Run by t/bench/query.sh with Debian's python3 (python3-numpy, python3-faiss:
bench-only peers, never a dependency of vdb).  vdb is driven through
`vdb-query serve` so both sides are measured in steady state, without
process start-up; the one-shot command line is timed separately.

  query.py BIN ROOT COLLECTION BASE.fvecs QUERIES.fvecs NAME BW_GBS
"""
import json
import os
import subprocess
import sys

import faiss
import numpy as np

from faisspeer import best, blas, set_threads, vecs


class Serve:
    def __init__(self, binary, root, threads):
        self.p = subprocess.Popen(
            [binary, "-d", root, "-j", str(threads), "serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(self, line):
        self.p.stdin.write(line)
        self.p.stdin.flush()
        return self.p.stdout.readline()

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def request(coll, qs, k):
    vecs = ",".join("[" + ",".join("%.9g" % x for x in q) + "]" for q in qs)
    return ('{"op":"search","collection":"%s","k":%d,"vectors":[%s]}\n'
            % (coll, k, vecs)).encode()


def main():
    binary, root, coll, base_path, q_path, name, bw = sys.argv[1:8]
    bw = float(bw)
    base = vecs(base_path)
    qs = vecs(q_path)
    n, d = base.shape
    k = 10
    nq_single = min(len(qs), int(os.environ.get("BENCH_SINGLE", "20")))
    rounds = int(os.environ.get("BENCH_QROUNDS", "3"))
    bound = bw * 1e9 / (n * d * 4)  # queries/s if each reads every vector once
    bound2 = float(os.environ.get("BW2", 2 * bw)) * 1e9 / (n * d * 4)
    rows = []

    index = faiss.IndexFlatL2(d)
    index.add(base)

    def faiss_times(threads):
        set_threads(threads)
        fb = best(lambda: index.search(qs, k), rounds)
        fs = best(lambda: [index.search(qs[i:i + 1], k)
                           for i in range(nq_single)], rounds)
        return fb, fs

    if os.environ.get("BENCH_FAISS_ONLY"):
        print(json.dumps([faiss_times(t) for t in (1, 2)]))
        return
    # FAISS gets the better of OpenMP's two wait policies, cell by cell:
    # spinning threads help it on small sets and fight OpenBLAS's on
    # large ones; the policy is read once, at start-up, so the other one
    # runs in a second process
    other = "ACTIVE" if os.environ.get("OMP_WAIT_POLICY") == "PASSIVE" else "PASSIVE"
    alt = json.loads(subprocess.run(
        [sys.executable] + sys.argv, check=True, stdout=subprocess.PIPE,
        env=dict(os.environ, BENCH_FAISS_ONLY="1", OMP_WAIT_POLICY=other)).stdout)
    batch_req = request(coll, qs, k)
    single_req = [request(coll, [q], k) for q in qs[:nq_single]]
    # vdb before any FAISS search of this process: FAISS's OpenMP and
    # OpenBLAS threads go on spinning a while after a search, on the cores
    # vdb would run on
    ans = []
    vdb = {}
    for threads in (1, 2):
        s = Serve(binary, root, threads)
        s.ask(single_req[0])  # maps and checks the segments once
        vdb[threads] = (best(lambda: ans.append(s.ask(batch_req)), rounds),
                        best(lambda: [s.ask(r) for r in single_req], rounds))
        s.close()
    for threads in (1, 2):
        vb, vs = vdb[threads]
        fb, fs = faiss_times(threads)
        fb = min(fb, alt[threads - 1][0])
        fs = min(fs, alt[threads - 1][1])
        rows.append((threads, "batch of %d" % len(qs), len(qs) / vb,
                     len(qs) / fb, None))
        rows.append((threads, "one at a time", nq_single / vs,
                     nq_single / fs, bound if threads == 1 else bound2))
    # agreement of the top-k with FAISS (exact both; float rounding may
    # reorder near-ties)
    res = json.loads(ans[-1])["results"]
    _, fi = index.search(qs, k)
    agree = np.mean([len(set(h["id"] for h in r["hits"]) & set(fi[i]))
                     for i, r in enumerate(res)]) / k

    print("== exact search, %s: %d x %d, k=%d ==" % (name, n, d, k))
    print("FAISS %s, BLAS %s, the better of OMP_WAIT_POLICY active and passive"
          % (faiss.__version__, blas()))
    print("%-3s %-15s %12s %12s %8s %14s" %
          ("-j", "queries", "vdb q/s", "FAISS q/s", "vdb/FAISS", "vdb/bw-bound"))
    for threads, what, v, f, b in rows:
        print("%-3d %-15s %12.1f %12.1f %7.2fx %14s" %
              (threads, what, v, f, v / f,
               "%.0f%% of %.1f" % (100 * v / b, b) if b else "-"))
    print("bound = memory read bandwidth / %d MB read per query"
          % (n * d * 4 // 1000000))
    print("top-%d agreement with FAISS: %.4f" % (k, agree))


if __name__ == "__main__":
    main()
