"""faisspeer: what the benches that run FAISS beside vdb share (query.py,
ann-faiss.py): which BLAS this run has, the thread count, .fvecs/.ivecs
files, best-of timing.  Debian's python3 with python3-faiss and
python3-numpy: bench-only peers, never a dependency of vdb."""
import ctypes
import os
import time

import faiss
import numpy as np


def blas():
    """the BLAS FAISS's sgemm runs on (batched searches, IVF training):
    Debian's reference libblas3 is several times slower than OpenBLAS
    (libopenblas0-pthread), so say which one this run had"""
    for line in open("/proc/self/maps"):
        f = line.split()
        if len(f) >= 6 and ("libblas" in f[5] or "libopenblas" in f[5]):
            return os.path.realpath(f[5])
    return "none found"


def set_threads(n):
    """FAISS's OpenMP threads, and OpenBLAS's own pool when it is there"""
    faiss.omp_set_num_threads(n)
    try:
        ctypes.CDLL("libblas.so.3").openblas_set_num_threads(n)
    except (OSError, AttributeError):
        pass


def vecs(path, dtype=np.float32):
    """a whole .fvecs (or, with np.int32, .ivecs) file as rows"""
    a = np.fromfile(path, dtype=np.int32)
    return a.reshape(-1, a[0] + 1)[:, 1:].view(dtype).copy()


def best(fn, rounds):
    """the best of rounds runs (seconds): the machine's noise only adds"""
    t = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)
