# ann-vdb.sh: vdb's side of t/bench/ann.sh, sourced by it: run_vdb DATA
# BASE QUERY GT NLIST appends vdb's lines to $OUT — for HNSW (M=$M,
# efConstruction=$EFC over $EFS), IVF_FLAT and IVF_PQ (nlist=NLIST, m=$PQ_M
# over $NPROBES): build seconds and peak RSS of a single-threaded
# vdb-index (GNU time), then recall and queries/s from ann-vdb, which
# searches an open collection one query at a time and in one batch.  For
# the 1M set it also times one-shot vdb-query processes on the HNSW
# collection, the page cache warm.

# vdb_build ROOT COLL TYPE PARAMS...: "seconds rss_mb" of one index build
vdb_build() {
	root=$1 coll=$2
	shift 2
	/usr/bin/time -f '%e %M' -o "$root.time" "$BIN/vdb-index" -d "$root" -j 1 --type "$@" \
		"$coll" 2>/dev/null || return 1
	awk '{ printf "%s %.0f\n", $1, $2 / 1024 }' "$root.time"
}

run_vdb() { # DATA BASE QUERY GT NLIST
	data=$1 base=$2 query=$3 gt=$4 nlist=$5
	root=$BUILD/bench-data/ann-vdb-$data
	rm -rf "$root" "$root.time"
	mkdir -p "$(dirname "$root")"
	"$BIN/vdb-admin" init "$root" >/dev/null
	for t in hnsw ivf_flat ivf_pq; do
		"$BIN/vdb-meta" -d "$root" create "$t" --dim "$(od -An -t d4 -N 4 "$base" | tr -d ' ')"
		"$BIN/vdb-ingest" -d "$root" --bulk "$t" "$base" >/dev/null
	done
	if wanted vdb hnsw; then
		echo "ann: vdb hnsw $data ..." >&2
		set -- $(vdb_build "$root" hnsw hnsw -p "M=$M" -p "efConstruction=$EFC")
		echo "ann: vdb hnsw $data: built in $1 s, peak RSS $2 MB" >&2
		"$BIN/ann-vdb" -d "$root" -c hnsw -i hnsw -D "$data" -p ef -b "$1" -m "$2" \
			-r "$ROUNDS" "$query" "$gt" $EFS >>"$OUT"
		oneshot
	fi
	if wanted vdb ivf_flat; then
		echo "ann: vdb ivf_flat $data ..." >&2
		set -- $(vdb_build "$root" ivf_flat ivf_flat -p "nlist=$nlist")
		echo "ann: vdb ivf_flat $data: built in $1 s, peak RSS $2 MB" >&2
		"$BIN/ann-vdb" -d "$root" -c ivf_flat -i ivf_flat -D "$data" -p nprobe -b "$1" \
			-m "$2" -r "$ROUNDS" "$query" "$gt" $NPROBES >>"$OUT"
	fi
	if wanted vdb ivf_pq; then
		echo "ann: vdb ivf_pq $data ..." >&2
		set -- $(vdb_build "$root" ivf_pq ivf_pq -p "nlist=$nlist" -p "m=$PQ_M")
		echo "ann: vdb ivf_pq $data: built in $1 s, peak RSS $2 MB" >&2
		"$BIN/ann-vdb" -d "$root" -c ivf_pq -i ivf_pq -D "$data" -p nprobe -b "$1" \
			-m "$2" -r "$ROUNDS" "$query" "$gt" $NPROBES >>"$OUT"
		# plain IVF_PQ, as FAISS's IndexIVFPQ ranks: by the codes alone
		# (refine 1 only recomputes the k kept)
		"$BIN/ann-vdb" -d "$root" -c ivf_pq -i ivf_pq_refine1 -D "$data" -p nprobe \
			-b "$1" -m "$2" -R 1 -r "$ROUNDS" "$query" "$gt" $NPROBES >>"$OUT"
	fi
}

# oneshot: what a shell script pays per query — whole vdb-query processes
# with one query on the HNSW collection, the page cache warm (the first
# run also writes the column cache): the mean of 20, and one --exact
oneshot() {
	head -c $((4 + 4 * $(od -An -t d4 -N 4 "$query" | tr -d ' '))) "$query" >"$root.q1"
	"$BIN/vdb-query" -d "$root" -k 10 --format fvecs hnsw <"$root.q1" >/dev/null
	t0=$(date +%s%N)
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		"$BIN/vdb-query" -d "$root" -k 10 --format fvecs hnsw <"$root.q1" >/dev/null
	done
	t1=$(date +%s%N)
	"$BIN/vdb-query" -d "$root" --exact -k 10 --format fvecs hnsw <"$root.q1" >/dev/null
	t2=$(date +%s%N)
	"$BIN/vdb-query" -d "$root" --exact -k 10 --format fvecs hnsw <"$root.q1" >/dev/null
	t3=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v data="$data" 'BEGIN {
		printf "ann-oneshot engine=vdb index=hnsw data=%s ms=%.1f ms_exact=%.1f\n",
			data, (b - a) / 20 / 1e6, (d - c) / 1e6 }' >>"$OUT"
}
