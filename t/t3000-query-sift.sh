#!/bin/sh
# siftsmall: exact search gives the ground truth (recall@100 = 1.0, allowing
# only exact distance ties), the same answer however it is asked.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create sift --dim 128
vdb-ingest sift "$SIFT/siftsmall_base.fvecs" >/dev/null || exit 1
Q=$SIFT/siftsmall_query.fvecs
GT=$SIFT/siftsmall_groundtruth.ivecs

# rows: one line per ivecs/fvecs record ("n v1 v2 ..."), for awk
rows() { od -An -v -t "$2" -w"$3" "$1" | awk '{$1 = $1; print}'; }

test_expect "ivecs output has 100 queries x 100 ids" \
	"vdb-query -k 100 --output ivecs sift '$Q' >'$TMP/res.ivecs' &&
	 [ \"\$(stat -c %s '$TMP/res.ivecs')\" = \$((100 * 404)) ]"

# Where an id list differs from the ground truth, the distances must be the
# same multiset: the lists differ only in how exact ties are ordered.
# Distances come from vdb-query itself, for the ground truth's ids by a
# filter, which on integer-valued SIFT data are exact.
rows "$TMP/res.ivecs" d4 404 >"$TMP/res.rows"
rows "$GT" d4 404 >"$TMP/gt.rows"
rows "$Q" f4 516 | awk '{ printf "{\"vector\":["; for (i = 2; i <= NF; i++) printf "%s%s", (i > 2 ? "," : ""), $i; print "]}" }' >"$TMP/q.jsonl"
vdb-query -k 100 sift "$TMP/q.jsonl" >"$TMP/res.jsonl"
paste -d'|' "$TMP/res.rows" "$TMP/gt.rows" | awk -F'|' '$1 != $2 { print NR }' >"$TMP/differ"
test_expect "differing queries are few (ties)" "[ \$(wc -l <'$TMP/differ') -le 20 ]"
ok=1
for n in $(cat "$TMP/differ"); do
	ids=$(sed -n "${n}p" "$TMP/gt.rows" | cut -d' ' -f2- | tr ' ' ',')
	sed -n "${n}p" "$TMP/q.jsonl" |
		vdb-query -k 100 --filter "id in [$ids]" sift | grep -o '"distance":[^,}]*' >"$TMP/gtd"
	sed -n "${n}p" "$TMP/res.jsonl" | grep -o '"distance":[^,}]*' >"$TMP/ourd"
	if ! cmp -s "$TMP/gtd" "$TMP/ourd" || [ "$(wc -l <"$TMP/ourd")" != 100 ]; then
		echo "# query $((n - 1)): distances differ from the ground truth's"
		ok=0
	fi
done
test_expect "recall@100 = 1.0 up to exact ties ($(wc -l <"$TMP/differ") queries reorder ties)" "[ $ok = 1 ]"
hit_ids() { awk '{ s = $0; o = ""; while (match(s, /"id":-?[0-9]+/)) { o = o (o == "" ? "" : " ") substr(s, RSTART + 5, RLENGTH - 5); s = substr(s, RSTART + RLENGTH) } print o }' "$@"; }
test_expect "JSONL ids equal the ivecs ids" \
	"hit_ids '$TMP/res.jsonl' >'$TMP/j.ids' && cut -d' ' -f2- '$TMP/res.rows' | cmp - '$TMP/j.ids'"
test_expect "-j 2 gives the same bytes" \
	"vdb-query -j 2 -k 100 --output ivecs sift '$Q' | cmp - '$TMP/res.ivecs'"
test_expect "one query at a time gives the same lines" \
	"for i in 1 17 42 99; do
	   sed -n \"\${i}p\" '$TMP/q.jsonl' | vdb-query -k 100 sift | sed 's/^{\"query\":0/{\"query\":'\$((i - 1))'/' |
	     cmp - \"\$(sed -n \"\${i}p\" '$TMP/res.jsonl' >'$TMP/one'; echo '$TMP/one')\" || exit 1
	 done"
for isa in avx2 c; do
	test_expect "VDB_ISA=$isa gives the same answer" \
		"VDB_ISA=$isa vdb-query -k 100 sift '$TMP/q.jsonl' | cmp - '$TMP/res.jsonl'"
done
test_expect "queries from stdin as fvecs" \
	"vdb-query --format fvecs -k 100 --output ivecs sift <'$Q' | cmp - '$TMP/res.ivecs'"
test_expect "tsv: a header, then one hit per line, ranks from 1" \
	"vdb-query -k 3 --output tsv sift '$Q' >'$TMP/t' &&
	 [ \"\$(head -1 '$TMP/t')\" = \"\$(printf 'query\trank\tid\tdistance')\" ] &&
	 [ \$(wc -l <'$TMP/t') = 301 ] &&
	 awk -F'\t' 'NR > 1 && (\$2 < 1 || \$2 > 3) { exit 1 }' '$TMP/t' &&
	 [ \"\$(sed -n 2p '$TMP/t' | cut -f1-3)\" = \"\$(printf '0\t1\t%s' \$(cut -d' ' -f2 '$TMP/gt.rows' | head -1))\" ]"
test_expect "count sees all 10,000 rows" "[ \"\$(vdb-query --count sift)\" = 10000 ]"
test_expect "range search: every hit within the radius, closest first" \
	"head -1 '$TMP/q.jsonl' | vdb-query --radius 112211 sift >'$TMP/rr' &&
	 grep -o '\"distance\":[0-9.e+]*' '$TMP/rr' | cut -d: -f2 >'$TMP/rd' &&
	 [ \$(wc -l <'$TMP/rd') -ge 50 ] && awk '\$1 > 112211 { exit 1 }' '$TMP/rd' && sort -g '$TMP/rd' | cmp - '$TMP/rd' &&
	 head -1 '$TMP/q.jsonl' | vdb-query -k 50 sift | grep -o '\"distance\":[0-9.e+]*' | cut -d: -f2 | cmp - '$TMP/rd'"
test_expect "range search with -k is bounded by k" \
	"head -1 '$TMP/q.jsonl' | vdb-query --radius 1e9 -k 7 sift | grep -o '\"id\"' | wc -l | grep -qx 7"
test_done
