#!/bin/sh
# Every index type on siftsmall: recall@10 at the default parameters meets
# its bar, rises with nprobe / ef, and --exact still gives the ground truth.
. "$(dirname "$0")/test-lib.sh"
. "$(dirname "$0")/lib-ann.sh"

Q=$SIFT/siftsmall_query.fvecs
GT=$SIFT/siftsmall_groundtruth.ivecs
new_root "$TMP/r"

# bar TYPE: recall@10 a type must reach at its defaults (the issue's bars)
bar() { case $1 in hnsw | ivf_flat) echo 0.95 ;; ivf_sq8) echo 0.90 ;; ivf_pq) echo 0.70 ;; esac; }

for t in hnsw ivf_flat ivf_sq8 ivf_pq; do
	vdb-meta create "s_$t" --dim 128 || exit 1
	vdb-ingest "s_$t" "$SIFT/siftsmall_base.fvecs" >/dev/null || exit 1
	test_expect "$t: vdb-index builds the index of the one segment" \
		"vdb-index --type $t s_$t 2>'$TMP/err.b' &&
		 grep -q '^vdb-index: 1 indexes built' '$TMP/err.b' &&
		 vdb-meta index s_$t | grep -q '^$t'"
	vdb-query -k 10 --output ivecs "s_$t" "$Q" >"$TMP/$t.ivecs"
	r=$(recall "$TMP/$t.ivecs" 10 "$GT" 100)
	test_expect "$t: recall@10 $r at the defaults >= $(bar $t)" "at_least $r $(bar $t)"
	test_expect "$t: --exact gives the exact answer" \
		"vdb-query --exact -k 10 --output ivecs s_$t '$Q' >'$TMP/x.ivecs' &&
		 [ \"\$(recall '$TMP/x.ivecs' 10 '$GT' 100)\" = 1.0000 ]"
done

# the knobs: more work, better recall
r1=$(vdb-query --nprobe 1 -k 10 --output ivecs s_ivf_flat "$Q" >"$TMP/a" && recall "$TMP/a" 10 "$GT" 100)
r2=$(vdb-query --nprobe 64 -k 10 --output ivecs s_ivf_flat "$Q" >"$TMP/a" && recall "$TMP/a" 10 "$GT" 100)
test_expect "ivf_flat: nprobe 1 ($r1) < nprobe 64 ($r2)" "at_least $r2 $r1 && [ $r1 != $r2 ]"
r3=$(vdb-query --nprobe 64 -k 10 --output ivecs s_ivf_pq "$Q" >"$TMP/a" && recall "$TMP/a" 10 "$GT" 100)
test_expect "ivf_pq: nprobe 64 ($r3) at least the default's" \
	"at_least $r3 \$(recall '$TMP/ivf_pq.ivecs' 10 '$GT' 100)"
r4=$(vdb-query --ef 10 -k 10 --output ivecs s_hnsw "$Q" >"$TMP/a" && recall "$TMP/a" 10 "$GT" 100)
r5=$(vdb-query --ef 200 -k 10 --output ivecs s_hnsw "$Q" >"$TMP/a" && recall "$TMP/a" 10 "$GT" 100)
test_expect "hnsw: ef 10 ($r4) <= ef 200 ($r5)" "at_least $r5 $r4"

# distances through an index are the exact ones: every hit's distance
# equals what the exact search says for the same id
test_expect "hnsw hits carry exact distances" \
	"vdb-query -k 10 --format fvecs s_hnsw <'$Q' | head -5 >'$TMP/h.jsonl' &&
	 vdb-query --exact -k 10000 --format fvecs s_hnsw <'$Q' | head -5 >'$TMP/x.jsonl' &&
	 awk 'NR == FNR { s = \$0; while (match(s, /\"id\":[0-9]+,\"distance\":[^,}]*/)) { p[FNR \":\" substr(s, RSTART, RLENGTH)] = 1; s = substr(s, RSTART + RLENGTH) } next }
	      { s = \$0; while (match(s, /\"id\":[0-9]+,\"distance\":[^,}]*/)) { if (!((FNR \":\" substr(s, RSTART, RLENGTH)) in p)) bad++; n++; s = substr(s, RSTART + RLENGTH) } }
	      END { exit !(n == 50 && bad == 0) }' '$TMP/x.jsonl' '$TMP/h.jsonl'"

# one index per segment, idempotent runs, a spec change rebuilds
test_expect "a second run builds nothing" \
	"vdb-index --all 2>'$TMP/e2'; ! grep -q 'indexes built' '$TMP/e2' || grep -q '^vdb-index: 0 indexes built' '$TMP/e2'"
test_expect "vdb-meta show names the index" \
	"vdb-meta show s_hnsw | grep -q '\"index\":\"hnsw\"'"
test_expect "a new spec rebuilds and retires the old index to the trash" \
	"vdb-meta index s_hnsw hnsw M=8 efConstruction=50 &&
	 [ \"\$(vdb-meta index s_hnsw)\" = 'hnsw M=8 efConstruction=50' ] &&
	 vdb-index --all 2>'$TMP/e3' && grep -q '^vdb-index: 1 indexes built, 0 segments compacted into 0, 1 indexes retired, 0 objects deleted' '$TMP/e3' &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM trash')\" = 1 ]"
test_expect "--grace 0 deletes what the trash holds" \
	"n=\$(find '$TMP/r/objects' -type f | wc -l) &&
	 vdb-index --grace 0 --all 2>'$TMP/e4' && grep -q '1 objects deleted' '$TMP/e4' &&
	 [ \$(find '$TMP/r/objects' -type f | wc -l) = \$((n - 1)) ] &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM trash')\" = 0 ]"
test_expect "flat drops back to the exact scan and retires the index" \
	"vdb-meta index s_ivf_sq8 flat && vdb-index --grace 0 s_ivf_sq8 2>/dev/null &&
	 vdb-query -k 10 --output ivecs s_ivf_sq8 '$Q' >'$TMP/f.ivecs' &&
	 [ \"\$(recall '$TMP/f.ivecs' 10 '$GT' 100)\" = 1.0000 ] &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' \"SELECT count(*) FROM indexes i JOIN collections c ON c.id = i.collection_id WHERE c.name = 's_ivf_sq8'\")\" = 0 ]"
test_expect "vdb-admin verify checks the indexes" \
	"vdb-admin verify >'$TMP/v' 2>&1 && grep -q 'index' '$TMP/v'"
test_done
