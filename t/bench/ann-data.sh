#!/bin/sh
# The approximate-search bench's data set (t/bench/ann.sh): in $ANN_DATA
# (default $BUILD/bench-data/ann-1m), made only if missing or of the wrong
# size:
#   base.fvecs   ANN_ROWS (1000000) x 128, vdb-gen -c
#   query.fvecs  ANN_QUERIES (1000) x 128, vdb-gen -c -s 1: the same
#                distribution, another sample, so no query is in the base
#   gt.ivecs     the exact top 100 ids of each query, nearest first, ties
#                by the smaller id (ann-faiss.py gt: FAISS IndexFlatL2
#                candidates, re-ranked in float64)
# Uniform random vectors would not do: they have no neighbourhoods, so a
# graph or an IVF index has nothing to find and every engine looks alike.
# vdb-gen -c is a mixture of 1000 Gaussians in 24 intrinsic dimensions
# mapped into 128, plus noise (t/bench/gen.c), calibrated to be about as
# hard as SIFT1M: with hnswlib at M=16, efConstruction=200 over these 1M
# rows and 1000 queries, recall@10 is
#   ef      10    16    32    48    64    96   128   256
#   recall 0.71  0.80  0.89  0.93  0.94  0.96  0.97  0.99
# (0.95 between ef 64 and 96; SIFT1M needs an ef of about 50 to 150).
# The median relative contrast (mean distance / nearest distance) of a
# query is 2.6; siftsmall's is 2.8.  Calibrated on samples of 100,000 rows
# first: 20 intrinsic dimensions, centres spread 2.0 and noise 0.05 gave
# 0.97 at ef 10 already; 24 dimensions, spread 0.7, noise 0.1 gave 0.95 at
# ef ~45 there, and the numbers above at 1M.
# Needs Debian's python3-faiss and python3-numpy for the ground truth.
set -eu
: "${BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${ANN_DATA:-$BUILD/bench-data/ann-1m}
N=${ANN_ROWS:-1000000}
NQ=${ANN_QUERIES:-1000}
PY=/usr/bin/python3
mkdir -p "$DIR"

# whole FILE ROWS: true if FILE holds exactly ROWS 128-dimensional rows
whole() {
	[ -s "$1" ] && [ "$(stat -c %s "$1")" -eq $(($2 * 516)) ]
}

# made under a temporary name and renamed, so that an interrupted run
# never leaves a short file that the next run would take for done
fresh=
if ! whole "$DIR/base.fvecs" "$N"; then
	"$BUILD/bin/vdb-gen" -c -f fvecs -n "$N" -d 128 >"$DIR/base.fvecs.tmp"
	mv "$DIR/base.fvecs.tmp" "$DIR/base.fvecs"
	fresh=1
fi
if ! whole "$DIR/query.fvecs" "$NQ"; then
	"$BUILD/bin/vdb-gen" -c -f fvecs -n "$NQ" -d 128 -s 1 >"$DIR/query.fvecs.tmp"
	mv "$DIR/query.fvecs.tmp" "$DIR/query.fvecs"
	fresh=1
fi
# gt rows are 4 + 100 x 4 bytes
if [ -n "$fresh" ] || [ ! -s "$DIR/gt.ivecs" ] ||
	[ "$(stat -c %s "$DIR/gt.ivecs")" -ne $((NQ * 404)) ]; then
	$PY "$HERE/ann-faiss.py" gt "$DIR/base.fvecs" "$DIR/query.fvecs" "$DIR/gt.ivecs.tmp"
	mv "$DIR/gt.ivecs.tmp" "$DIR/gt.ivecs"
fi
