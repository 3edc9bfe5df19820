#!/bin/sh
# make bench: ingest throughput against the disk's own fsync'd write rate.
#   BENCH_ROWS (1000000) x 128-d vectors, generated once into BENCH_DIR;
#   BENCH_ROUNDS (3) rounds of dd / fvecs bulk / JSONL; medians reported.
set -eu
: "${BUILD:=$(cd "$(dirname "$0")/.." && pwd)/build}"
BIN=$BUILD/bin
N=${BENCH_ROWS:-1000000}
D=128
ROUNDS=${BENCH_ROUNDS:-3}
DIR=${BENCH_DIR:-$BUILD/bench-data}
mkdir -p "$DIR"
now() { date +%s.%N; }
# settle: the root's file system may trim freed blocks (mount -o discard)
# in the background; let deletes finish before the next measurement
settle() { sync; sleep 2; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# rss CMD...: run, print peak RSS (MiB) on fd 3
# (GNU time, Debian package "time"; without it, no RSS column)
rss() {
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f %M -o "$DIR/rss" "$@" && awk '{ printf "%.0f\n", $1 / 1024 }' "$DIR/rss" >&3
	else
		"$@" && echo "?" >&3
	fi
}

if [ ! -s "$DIR/base-$N.fvecs" ] || [ ! -s "$DIR/base-$N.jsonl" ]; then
	echo "generating $N x $D vectors in $DIR ..." >&2
	"$BIN/vdb-gen" -f fvecs -n "$N" -d $D >"$DIR/base-$N.fvecs"
	"$BIN/vdb-gen" -f jsonl -n "$N" -d $D >"$DIR/base-$N.jsonl"
fi
vbytes=$((N * D * 4))
mb=$(awk -v b=$vbytes 'BEGIN { print b / 1e6 }')
jsize=$(stat -c %s "$DIR/base-$N.jsonl")
ROOT=$DIR/root
export VDB_ROOT=$ROOT
: >"$DIR/t.dd"; : >"$DIR/t.fvecs"; : >"$DIR/t.jsonl"; : >"$DIR/t.flush"; : >"$DIR/t.jbulk"
: >"$DIR/rss.fvecs"; : >"$DIR/rss.jsonl"

r=1
while [ $r -le "$ROUNDS" ]; do
	rm -rf "$ROOT"
	"$BIN/vdb-admin" init "$ROOT"
	"$BIN/vdb-meta" create f --dim $D
	"$BIN/vdb-meta" create j --dim $D
	"$BIN/vdb-meta" create b --dim $D
	settle
	t0=$(now)
	dd if=/dev/zero of="$DIR/dd.tmp" bs=1M count=$((vbytes / 1048576)) conv=fsync 2>/dev/null
	t1=$(now)
	rm -f "$DIR/dd.tmp"
	settle
	echo "$t0 $t1" | awk -v mb="$(awk -v b=$((vbytes / 1048576 * 1048576)) 'BEGIN { print b / 1e6 }')" \
		'{ print mb / ($2 - $1) }' >>"$DIR/t.dd"
	t0=$(now)
	rss "$BIN/vdb-ingest" -q f "$DIR/base-$N.fvecs" >/dev/null 3>>"$DIR/rss.fvecs"
	t1=$(now)
	echo "$t0 $t1" | awk -v mb="$mb" '{ print mb / ($2 - $1) }' >>"$DIR/t.fvecs"
	settle
	t0=$(now)
	rss "$BIN/vdb-ingest" -q j "$DIR/base-$N.jsonl" >/dev/null 3>>"$DIR/rss.jsonl"
	t1=$(now)
	"$BIN/vdb-ingest" --flush j >/dev/null
	t2=$(now)
	echo "$t0 $t1" | awk -v n="$N" '{ print n / ($2 - $1) }' >>"$DIR/t.jsonl"
	echo "$t0 $t2" | awk -v n="$N" '{ print n / ($2 - $1) }' >>"$DIR/t.flush"
	settle
	t0=$(now)
	"$BIN/vdb-ingest" -q --bulk b "$DIR/base-$N.jsonl" >/dev/null
	t1=$(now)
	echo "$t0 $t1" | awk -v n="$N" '{ print n / ($2 - $1) }' >>"$DIR/t.jbulk"
	"$BIN/vdb-admin" verify 2>/dev/null
	r=$((r + 1))
done

dd_rate=$(median <"$DIR/t.dd")
fv_rate=$(median <"$DIR/t.fvecs")
echo
echo "vdb ingest benchmark: $N x $D float32 vectors ($mb MB of vectors), $ROUNDS rounds, medians"
echo "machine: $(nproc) cores, $(uname -r), root on $(df -P "$DIR" | awk 'NR == 2 { print $1 }')"
printf '%-52s %12s\n' "measure" "result"
printf '%-52s %9.0f MB/s   (rounds: %s)\n' "disk: dd bs=1M conv=fsync, $mb MB" "$dd_rate" "$(tr '\n' ' ' <"$DIR/t.dd")"
printf '%-52s %9.0f MB/s   (rounds: %s)\n' "fvecs bulk import (vector bytes/s, fsync'd)" "$fv_rate" "$(tr '\n' ' ' <"$DIR/t.fvecs")"
printf '%-52s %9.0f %%      (goal >= 80 %%; per round: %s)\n' "  fvecs / disk (medians)" \
	"$(awk -v a="$fv_rate" -v b="$dd_rate" 'BEGIN { print 100 * a / b }')" \
	"$(paste -d' ' "$DIR/t.fvecs" "$DIR/t.dd" | awk '{ printf "%.0f%% ", 100 * $1 / $2 }')"
printf '%-52s %9.0f vec/s  (goal >= 150000; %s MB JSONL)\n' "JSONL through the log (acked, fdatasync per batch)" "$(median <"$DIR/t.jsonl")" "$((jsize / 1000000))"
printf '%-52s %9.0f vec/s\n' "JSONL through the log, then --flush into a segment" "$(median <"$DIR/t.flush")"
printf '%-52s %9.0f vec/s\n' "JSONL --bulk (segments written directly)" "$(median <"$DIR/t.jbulk")"
printf '%-52s %9s MiB\n' "peak RSS: fvecs bulk / JSONL log" "$(median <"$DIR/rss.fvecs") / $(median <"$DIR/rss.jsonl")"
