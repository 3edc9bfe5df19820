#!/bin/sh
# Approximate search against peers: vdb's HNSW, IVF_FLAT and IVF_PQ beside
# hnswlib (ann-hnswlib.cpp) and FAISS (ann-faiss.py) on siftsmall and on
# the 1M x 128 set of ann-data.sh: build seconds, peak RSS, and recall@10
# and queries/s over an ef or nprobe sweep.  One core each (every engine
# single-threaded), one engine at a time, one index per process so its
# peak RSS is its own.  Every measurement is one line
#   ann engine=E index=I data=D mode=single|batch build_s=X rss_mb=X
#       param=ef|nprobe value=V recall=X qps=X
# collected in $ANN_OUT; ann-table.py prints them side by side.
# Needs g++, Debian's libhnswlib-dev, python3-faiss and python3-numpy
# (bench-only peers, never dependencies of vdb); without them it says so
# and stops.  Wall-clock numbers: run it on an otherwise idle machine (the
# steps print the load average and the build's CPU seconds, to tell).
#
# The knobs, as environment variables (defaults in brackets).  The IVF and
# PQ ones must be what vdb itself uses, so the lines compare like with
# like; the defaults are vdb's own for these sizes (index_spec_resolve in
# lib/index.c, and lib/ivf.c):
#   ANN_SETS         data sets to run                [siftsmall 1m]
#   ANN_INDEXES      index types to run              [hnsw ivf_flat ivf_pq]
#   ANN_ENGINES      engines to run (FAISS's 1M HNSW build is the
#                    longest step: leave faiss out to skip it) [vdb hnswlib faiss]
#   ANN_M, ANN_EFC   HNSW M and efConstruction       [16, 200]
#   ANN_EFS          the ef sweep                    [10 16 24 32 48 64 96 128 192 256]
#   ANN_NPROBES      the nprobe sweep                [1 2 4 8 16 32 64]
#   ANN_NLIST_SMALL  IVF lists on siftsmall          [256: min(4 sqrt(n), n / 39)]
#   ANN_NLIST_1M     IVF lists on the 1M set         [4000: 4 sqrt(n)]
#   ANN_PQ_M         PQ sub-quantizers, 8 bits each  [32: dim / 4]
#   ANN_PQ_REFINE    FAISS IVF_PQ re-ranks refine x k candidates exactly
#                    (IndexRefineFlat), as vdb's IVF_PQ does by default
#                    (ivf_default_refine); 0: plain IVFPQ        [10]
#                    Above 1, plain IVFPQ runs as well, as index
#                    ivf_pq_refine1: the peer of vdb's IVF_PQ at refine 1
#                    (the PQ ranking alone picks the k)
#   ANN_TRAIN_PER_LIST  k-means training rows per list, at most the whole
#                    base (vdb's PER_CENTROID and FAISS's own default) [256]
#   ANN_ROUNDS       timing: best of                 [3]
#   ANN_DATA         where ann-data.sh keeps the 1M set [$BUILD/bench-data/ann-1m]
#   ANN_OUT          the result lines                [$BUILD/bench-data/ann-results.txt]
set -eu
: "${BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build}"
BIN=$BUILD/bin
HERE=$(cd "$(dirname "$0")" && pwd)
SIFT=${SIFT:-$(cd "$HERE/../../.." && pwd)/shared/data/siftsmall}
PY=/usr/bin/python3
SETS=${ANN_SETS:-siftsmall 1m}
INDEXES=${ANN_INDEXES:-hnsw ivf_flat ivf_pq}
ENGINES=${ANN_ENGINES:-vdb hnswlib faiss}
M=${ANN_M:-16}
EFC=${ANN_EFC:-200}
EFS=${ANN_EFS:-10 16 24 32 48 64 96 128 192 256}
NPROBES=${ANN_NPROBES:-1 2 4 8 16 32 64}
NLIST_SMALL=${ANN_NLIST_SMALL:-256}
NLIST_1M=${ANN_NLIST_1M:-4000}
PQ_M=${ANN_PQ_M:-32}
PQ_REFINE=${ANN_PQ_REFINE:-10}
TRAIN_PER_LIST=${ANN_TRAIN_PER_LIST:-256}
ROUNDS=${ANN_ROUNDS:-3}
export ANN_DATA="${ANN_DATA:-$BUILD/bench-data/ann-1m}"
OUT=${ANN_OUT:-$BUILD/bench-data/ann-results.txt}
# single thread, whatever a library would otherwise decide for itself
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

if ! $PY -c 'import faiss, numpy' 2>/dev/null; then
	echo "ann bench: needs python3-faiss and python3-numpy (apt-get install python3-faiss)" >&2
	exit 1
fi
if [ ! -f /usr/include/hnswlib/hnswlib.h ]; then
	echo "ann bench: needs hnswlib's headers (apt-get install libhnswlib-dev)" >&2
	exit 1
fi

# hnswlib is header-only: compiled here, for this CPU, so it gets every
# SIMD extension the machine has (ann-hnswlib prints the distance it uses)
if [ ! -x "$BIN/ann-hnswlib" ] ||
	[ -n "$(find "$HERE/ann-hnswlib.cpp" -newer "$BIN/ann-hnswlib")" ]; then
	mkdir -p "$BIN"
	${CXX:-g++} -O3 -march=native -o "$BIN/ann-hnswlib" "$HERE/ann-hnswlib.cpp" -lpthread
fi

mkdir -p "$(dirname "$OUT")"
: >"$OUT"

# step NAME COMMAND...: run one measurement process, its lines into $OUT,
# its notes on stderr; say how long it took and how busy the machine was
# (the 1-minute load average: above 1 someone else shared the cores)
step() {
	name=$1
	shift
	echo "ann: $name ... (load $(cut -d' ' -f1 /proc/loadavg))" >&2
	t0=$(date +%s)
	"$@" >>"$OUT"
	echo "ann: $name: $(($(date +%s) - t0)) s (load $(cut -d' ' -f1 /proc/loadavg))" >&2
}

# wanted ENGINE INDEX: true if ANN_ENGINES and ANN_INDEXES have them
wanted() {
	case " $ENGINES " in
	*" $1 "*) ;;
	*) return 1 ;;
	esac
	case " $INDEXES " in
	*" $2 "*) return 0 ;;
	*) return 1 ;;
	esac
}

# run_vdb DATA BASE QUERY GT NLIST: vdb's own lines (t/bench/ann-vdb.sh)
. "$HERE/ann-vdb.sh"

peers() { # DATA BASE QUERY GT NLIST
	train=$(($5 * TRAIN_PER_LIST))
	if wanted hnswlib hnsw; then
		# shellcheck disable=SC2086 # $EFS: one argument per ef
		step "hnswlib hnsw $1" "$BIN/ann-hnswlib" -d "$1" -m "$M" -e "$EFC" \
			-r "$ROUNDS" "$2" "$3" "$4" $EFS
	fi
	if wanted faiss hnsw; then
		step "faiss hnsw $1" $PY "$HERE/ann-faiss.py" hnsw --data "$1" --M "$M" \
			--efc "$EFC" --rounds "$ROUNDS" --sweep "$EFS" "$2" "$3" "$4"
	fi
	if wanted faiss ivf_flat; then
		step "faiss ivf_flat $1" $PY "$HERE/ann-faiss.py" ivf_flat --data "$1" \
			--nlist "$5" --train "$train" --rounds "$ROUNDS" --sweep "$NPROBES" \
			"$2" "$3" "$4"
	fi
	if wanted faiss ivf_pq; then
		step "faiss ivf_pq $1" $PY "$HERE/ann-faiss.py" ivf_pq --data "$1" \
			--nlist "$5" --pq-m "$PQ_M" --refine "$PQ_REFINE" --train "$train" \
			--rounds "$ROUNDS" --sweep "$NPROBES" "$2" "$3" "$4"
	fi
	if wanted faiss ivf_pq && [ "$PQ_REFINE" -gt 1 ]; then
		step "faiss ivf_pq_refine1 $1" $PY "$HERE/ann-faiss.py" ivf_pq \
			--label ivf_pq_refine1 --data "$1" --nlist "$5" --pq-m "$PQ_M" \
			--train "$train" --rounds "$ROUNDS" --sweep "$NPROBES" "$2" "$3" "$4"
	fi
}

bench_set() { # DATA BASE QUERY GT NLIST
	run_vdb "$@"
	peers "$@"
}

for set in $SETS; do
	case $set in
	siftsmall)
		bench_set siftsmall "$SIFT/siftsmall_base.fvecs" "$SIFT/siftsmall_query.fvecs" \
			"$SIFT/siftsmall_groundtruth.ivecs" "$NLIST_SMALL"
		;;
	1m)
		step "data 1m (made if missing)" sh "$HERE/ann-data.sh"
		bench_set 1m "$ANN_DATA/base.fvecs" "$ANN_DATA/query.fvecs" "$ANN_DATA/gt.ivecs" \
			"$NLIST_1M"
		;;
	*)
		echo "ann bench: unknown data set '$set' (siftsmall, 1m)" >&2
		exit 100
		;;
	esac
done

echo "ann: result lines in $OUT" >&2
$PY "$HERE/ann-table.py" "$OUT"
