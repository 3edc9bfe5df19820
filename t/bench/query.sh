#!/bin/sh
# make bench, exact search: vdb-query against FAISS IndexFlatL2 on siftsmall
# and on BENCH_ROWS (1000000) x 128 generated vectors; single thread and
# -j 2, a batch of queries and one query at a time; against the memory
# bandwidth bound of a scan.  Needs Debian's python3-numpy and python3-faiss
# (bench-only peers); without them it says so and stops.
set -eu
: "${BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
BIN=$BUILD/bin
HERE=$(cd "$(dirname "$0")" && pwd)
SIFT=${SIFT:-$(cd "$HERE/../../.." && pwd)/shared/data/siftsmall}
N=${BENCH_ROWS:-1000000}
NQ=${BENCH_QUERIES:-100}
DIR=${BENCH_DIR:-$BUILD/bench-data}
PY=/usr/bin/python3
mkdir -p "$DIR"

if ! $PY -c 'import faiss, numpy' 2>/dev/null; then
	echo "query bench: needs python3-faiss and python3-numpy (apt-get install python3-faiss)" >&2
	exit 1
fi

# the bound: how fast one thread, then two, can read the vectors at all
bw1=$("$BIN/vdb-kbench" -b -n "$N" -t 1)
bw2=$("$BIN/vdb-kbench" -b -n "$N" -t 2)
echo "memory read bandwidth over $N x 128 floats: $bw1 GB/s (1 thread), $bw2 GB/s (2 threads)"
echo "distance kernels: $("$BIN/vdb-kbench" -i)"

run() { # name base.fvecs queries.fvecs
	root=$DIR/query-root-$(echo "$1" | tr -c "a-z0-9\n" _)
	if [ ! -s "$root/ok" ]; then
		rm -rf "$root"
		"$BIN/vdb-admin" init "$root" >/dev/null
		"$BIN/vdb-meta" -d "$root" create v --dim 128
		"$BIN/vdb-ingest" -d "$root" -q v "$2" >/dev/null
		echo ok >"$root/ok"
	fi
	# the one-shot command line, process start-up and all (page cache warm)
	"$BIN/vdb-query" -d "$root" -k 10 v "$3" >/dev/null
	t0=$(date +%s.%N)
	"$BIN/vdb-query" -d "$root" -k 10 v "$3" >/dev/null
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v q="$(($(stat -c %s "$3") / 516))" -v n="$1" \
		'BEGIN { printf "one-shot vdb-query -k 10 (%s, %d queries): %.1f ms\n", n, q, (b - a) * 1000 }'
	BW2=$bw2 $PY "$HERE/query.py" "$BIN/vdb-query" "$root" v "$2" "$3" "$1" "$bw1"
}

run siftsmall "$SIFT/siftsmall_base.fvecs" "$SIFT/siftsmall_query.fvecs"
if [ ! -s "$DIR/base-$N.fvecs" ]; then
	"$BIN/vdb-gen" -f fvecs -n "$N" -d 128 >"$DIR/base-$N.fvecs"
fi
if [ ! -s "$DIR/queries-$NQ.fvecs" ]; then
	"$BIN/vdb-gen" -f fvecs -n "$NQ" -d 128 -s 99 >"$DIR/queries-$NQ.fvecs"
fi
run "$N x 128" "$DIR/base-$N.fvecs" "$DIR/queries-$NQ.fvecs"
