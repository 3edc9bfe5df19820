#!/bin/sh
# Compaction merges a partition's small segments and drops deleted rows,
# swaps them in one transaction, builds the new segment's index, and keeps
# the old objects until their grace period is over.  After 20% of the rows
# are deleted, recall through the compacted index is that of a fresh build.
. "$(dirname "$0")/test-lib.sh"
. "$(dirname "$0")/lib-ann.sh"

new_root "$TMP/r"
vdb-meta create c --dim 16 --field year:int64 --field tag:string:16 || exit 1
vdb-meta partition create c p2 || exit 1
vdb-index --type hnsw -p M=8 -p efConstruction=64 c 2>/dev/null || exit 1
# eight small segments in _default, two in p2
for i in 0 1 2 3 4 5 6 7; do
	vdb-gen -f jsonl -n 500 -d 16 -s $i -i $((i * 500)) -y | vdb-ingest --bulk c >/dev/null || exit 1
done
for i in 8 9; do
	vdb-gen -f jsonl -n 500 -d 16 -s $i -i $((i * 500)) -y |
		vdb-ingest --bulk --partition p2 c >/dev/null || exit 1
done
vdb-index c 2>/dev/null || exit 1
seq 0 3 1499 | vdb-ingest --delete c >/dev/null || exit 1 # a third of the first three segments
vdb-gen -f fvecs -n 20 -d 16 -s 99 >"$TMP/q.fvecs"
vdb-query --exact -k 50 --format fvecs c "$TMP/q.fvecs" >"$TMP/before"
segs() { vdb-meta segments c | wc -l; }
test_expect "ten segments before" "[ \$(segs) = 10 ]"

test_expect "--compact merges each partition's segments into one" \
	"vdb-index --compact c 2>'$TMP/e' &&
	 grep -q '^vdb-index: 2 indexes built, 10 segments compacted into 2, 0 indexes retired, 0 objects deleted' '$TMP/e' &&
	 [ \$(segs) = 2 ] &&
	 [ \"\$(vdb-meta segments c | cut -f2 | sort | tr '\n' ' ')\" = '_default p2 ' ]"
test_expect "the deleted rows are gone from the segments" \
	"[ \"\$(vdb-meta segments c | awk '{ n += \$3 } END { print n }')\" = \$((5000 - 500)) ] &&
	 [ \"\$(vdb-query --count c)\" = 4500 ]"
test_expect "the exact answers are the same" \
	"vdb-query --exact -k 50 --format fvecs c '$TMP/q.fvecs' | cmp - '$TMP/before'"
test_expect "every segment has its index" \
	"[ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM indexes')\" = 2 ]"
test_expect "the old objects wait in the trash, and verify is clean" \
	"[ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM trash')\" = 20 ] &&
	 vdb-admin verify >'$TMP/v' 2>'$TMP/ve' && ! grep -q 'note:' '$TMP/ve'"
test_expect "a second compaction has nothing to do" \
	"vdb-index --compact c 2>'$TMP/e' && ! grep -q compacted '$TMP/e' || grep -q ' 0 segments compacted' '$TMP/e'"
test_expect "after the grace period the trash is emptied, with what queries cached" \
	"vdb-query -k 1 --format fvecs c '$TMP/q.fvecs' >/dev/null &&
	 vdb-index --grace 0 --all 2>'$TMP/e' && grep -q ' 20 objects deleted' '$TMP/e' &&
	 [ \$(find '$TMP/r/objects' -type f | wc -l) = 4 ] && vdb-admin verify >/dev/null 2>&1 &&
	 [ \$(ls '$TMP/r/cache/cols' | wc -l) = 2 ] && [ \$(ls '$TMP/r/cache/verified' | wc -l) -le 4 ]"
test_expect "a delete after compaction still hides its row" \
	"id=\$(vdb-query --exact -k 1 --format fvecs c '$TMP/q.fvecs' | head -1 | sed 's/.*\"id\":\([0-9]*\).*/\1/') &&
	 echo \$id | vdb-ingest --delete c >/dev/null &&
	 ! vdb-query -k 50 --format fvecs c '$TMP/q.fvecs' | grep -q \"\\\"id\\\":\$id,\""
# what killed writers leave: an object no row names, stages nobody holds
lo=$(printf leftover | sha256sum | cut -c1-64)
mkdir -p "$TMP/r/objects/$(echo "$lo" | cut -c1-2)"
echo junk >"$TMP/r/objects/$(echo "$lo" | cut -c1-2)/$lo"
tmpd=$TMP/r/objects/tmp
echo a >"$tmpd/stage-old" && echo b >"$tmpd/stage-held" && echo c >"$tmpd/stage-new"
touch -d '2 hours ago' "$tmpd/stage-old" "$tmpd/stage-held"
# the holder's pid is the process that holds the lock (exec, no fork)
sh -c 'exec 9<"$1" && flock 9 && exec sleep 60' sh "$tmpd/stage-held" &
holder=$!
i=0
while flock -n "$tmpd/stage-held" true && [ $i -lt 100 ]; do # till the holder holds it
	sleep 0.05
	i=$((i + 1))
done
test_expect "verify notes the unregistered object" \
	"vdb-admin verify 2>'$TMP/ve' >/dev/null && grep -q \"object $lo is not registered\" '$TMP/ve'"
test_expect "a run puts it in the trash and removes the stage nobody holds" \
	"vdb-index --grace 60 c 2>'$TMP/e' &&
	 grep -q \"^vdb-index: object $lo was never registered: to the trash\$\" '$TMP/e' &&
	 grep -q '^vdb-index: 1 abandoned stages removed\$' '$TMP/e' &&
	 [ ! -e '$tmpd/stage-old' ] && [ -e '$tmpd/stage-held' ] && [ -e '$tmpd/stage-new' ] &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' \"SELECT count(*) FROM trash WHERE object = '$lo'\")\" = 1 ] &&
	 vdb-admin verify 2>'$TMP/ve' >/dev/null && ! grep -q 'is not registered' '$TMP/ve'"
test_expect "after the grace period it is deleted, the registered objects stay" \
	"vdb-index --grace 0 c 2>'$TMP/e' && grep -q ' 1 objects deleted' '$TMP/e' &&
	 ! grep -q 'never registered' '$TMP/e' &&
	 [ ! -e '$TMP/r/objects/$(echo "$lo" | cut -c1-2)/$lo' ] && vdb-admin verify >/dev/null 2>&1"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
rm -f "$tmpd/stage-held" "$tmpd/stage-new"
seg=$(vdb-meta segments c | head -1 | cut -f5)
test_expect "a registered object in the trash leaves it and is not deleted" \
	"sqlite3 '$TMP/r/meta.db' \"INSERT INTO trash (object, since) VALUES ('$seg', 0)\" &&
	 vdb-index --grace 0 c 2>/dev/null &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM trash')\" = 0 ] &&
	 [ -e '$TMP/r/objects/$(echo "$seg" | cut -c1-2)/$seg' ] && vdb-admin verify >/dev/null 2>&1"
# a writer between publishing and registering holds publish.lock shared:
# nothing is deleted meanwhile
: >>"$TMP/r/publish.lock"
sh -c 'exec 9<"$1" && flock -s 9 && exec sleep 60' sh "$TMP/r/publish.lock" &
holder=$!
i=0
while flock -n "$TMP/r/publish.lock" true && [ $i -lt 100 ]; do
	sleep 0.05
	i=$((i + 1))
done
fake=$(printf fake | sha256sum | cut -c1-64)
sqlite3 "$TMP/r/meta.db" "INSERT INTO trash (object, since) VALUES ('$fake', 0)"
test_expect "while a writer publishes, the trash waits (10 s), and the run says so" \
	"vdb-index --grace 0 c 2>'$TMP/e' &&
	 grep -q \"^vdb-index: $TMP/r/publish.lock: writers held it for 10 s: the trash waits for the next run\\$\" '$TMP/e' &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM trash')\" = 1 ]"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
test_expect "and the next run empties it" \
	"vdb-index --grace 0 c 2>/dev/null &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM trash')\" = 0 ]"
# a large segment with few deletes is left alone; small segments past
# the target size start a new group, and a group of one is left alone
test_expect "--segment-bytes bounds a merged segment" \
	"for i in 10 11 12 13; do vdb-gen -f jsonl -n 500 -d 16 -s \$i -i \$((i * 500)) -y | vdb-ingest --bulk c >/dev/null; done &&
	 vdb-index --segment-bytes \$((1600 * 80)) --compact c 2>/dev/null &&
	 vdb-meta segments c | awk '\$2 == \"_default\" { print \$3 }' | sort -n | tr '\n' ' ' >'$TMP/rows' &&
	 [ \"\$(cat '$TMP/rows')\" = '500 1500 3500 ' ]"

# Deletes do not rot the graph: siftsmall with 20% deleted, compacted,
# searched at a small ef, against a fresh build over the same survivors.
Q=$SIFT/siftsmall_query.fvecs
vdb-meta create del --dim 128 && vdb-meta create fresh --dim 128 || exit 1
vdb-ingest --bulk del "$SIFT/siftsmall_base.fvecs" >/dev/null || exit 1
rows "$SIFT/siftsmall_base.fvecs" f4 516 |
	awk 'NR % 5 != 1 { printf "{\"id\":%d,\"vector\":[", NR - 1; for (i = 2; i <= NF; i++) printf "%s%s", (i > 2 ? "," : ""), $i; print "]}" }' |
	vdb-ingest --bulk fresh >/dev/null || exit 1
vdb-index -j 1 --type hnsw del 2>/dev/null && vdb-index -j 1 --type hnsw fresh 2>/dev/null || exit 1
seq 0 5 9999 | vdb-ingest --delete del >/dev/null || exit 1
vdb-query --exact -k 10 --output ivecs fresh "$Q" >"$TMP/gt.ivecs"
for ef in 10 16; do
	vdb-query --ef $ef -k 10 --output ivecs del "$Q" >"$TMP/d.ivecs"
	rd=$(recall "$TMP/d.ivecs" 10 "$TMP/gt.ivecs" 10)
	vdb-query --ef $ef -k 10 --output ivecs fresh "$Q" >"$TMP/f.ivecs"
	rf=$(recall "$TMP/f.ivecs" 10 "$TMP/gt.ivecs" 10)
	echo "# ef $ef: recall with 20% deleted, before compaction $rd; fresh build $rf"
	eval "rd_$ef=$rd rf_$ef=$rf"
done
vdb-index -j 1 --compact del 2>/dev/null || exit 1
for ef in 10 16; do
	vdb-query --ef $ef -k 10 --output ivecs del "$Q" >"$TMP/d.ivecs"
	rc=$(recall "$TMP/d.ivecs" 10 "$TMP/gt.ivecs" 10)
	eval "rf=\$rf_$ef"
	test_expect "ef $ef: after compaction recall $rc is within 0.01 of a fresh build's $rf" \
		"awk -v a=$rc -v b=$rf 'BEGIN { d = a - b; exit !(d <= 0.01 && d >= -0.01) }'"
done
test_done
