#!/bin/sh
# Regressions from review: races and hostile shapes around the log.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create c --dim 2
vdb-meta partition create c p
test_expect "a partition dropped and made again under a running ingest gets no rows" \
	"( echo '{\"id\":1,\"vector\":[1,2]}'; sleep 1; echo '{\"id\":2,\"vector\":[1,2]}' ) |
	   vdb-ingest --linger-ms 100 --partition p c >'$TMP/ack' 2>'$TMP/ierr' & pid=\$!;
	 sleep 0.6; vdb-meta partition drop c p && vdb-meta partition create c p; wait \$pid; st=\$?;
	 [ \$st = 100 ] && grep -q \"vdb-ingest: fatal: partition 'p' was dropped\" '$TMP/ierr' &&
	 [ \$(wc -l <'$TMP/ack') = 1 ] && [ -z \"\$(vdb-admin dump c)\" ]"

# ids chosen so that their bytes spell a whole, valid (empty) log frame
log=$TMP/r/log/1/ins-0000000001.log
echo '{"id":5,"vector":[1,2]}' | vdb-ingest c >/dev/null
end1=$(stat -c %s "$log")
printf '{"id":1178747990,"vector":[1,2]}\n{"id":-7446611931277819904,"vector":[3,4]}\n' |
	vdb-ingest c >/dev/null
test_expect "those ids really spell a frame" \
	"[ \"\$(dd if='$log' bs=1 skip=$((end1 + 48)) count=4 2>/dev/null)\" = VDBF ]"
truncate -s $((end1 + 48 + 16 + 5)) "$log"
test_expect "a torn append whose payload holds a frame is still a torn tail" \
	"vdb-admin verify 2>'$TMP/verr' && grep -q 'torn tail' '$TMP/verr' &&
	 echo '{\"id\":6,\"vector\":[1,2]}' | vdb-ingest c >/dev/null 2>'$TMP/ierr' &&
	 grep -q 'truncated a torn tail' '$TMP/ierr' && [ \"\$(ids c | tr '\n' ' ')\" = '5 6 ' ]"

vdb-meta create v --dim 4
{
	vdb-gen -f fvecs -n 3 -d 4
	printf '\040\116\000\000'; head -c 80000 /dev/zero # a row of dim 20000
	vdb-gen -f fvecs -n 3 -d 4 -s 9
} >"$TMP/mixed.fvecs"
test_expect "fvecs from a pipe: a row of another dimension is skipped whole" \
	"cat '$TMP/mixed.fvecs' | vdb-ingest --format fvecs --on-error skip v >/dev/null 2>'$TMP/ierr' &&
	 grep -q ':4: wrong dimension (got 20000, want 4) (skipped)' '$TMP/ierr' &&
	 [ \"\$(ids v | tr '\n' ' ')\" = '0 1 2 4 5 6 ' ]"

vdb-meta create b --dim 2
test_expect "bulk mode: a duplicate id across a segment split inside a chunk is refused" \
	"{ seq 0 8191 | sed 's/.*/{\"id\":&,\"vector\":[1,2]}/'; echo '{\"id\":8191,\"vector\":[1,2]}'; } >'$TMP/dup.jsonl' &&
	 ! vdb-ingest --bulk --segment-rows 8191 b '$TMP/dup.jsonl' >/dev/null 2>'$TMP/ierr' &&
	 grep -q 'dup.jsonl:8193: duplicate id 8191' '$TMP/ierr'"

vdb-meta create t --dim 2 --field s:string:10 --field n:int64
printf 'id\tvector\ts\tn\n1\t1,2\ta\\tb\tNOTINT\n2\t1,2\tok\t3\n' >"$TMP/a.tsv"
test_expect "tsv rejects get the line as read, escapes and all" \
	"vdb-ingest --on-error skip --rejects '$TMP/rej' t '$TMP/a.tsv' >/dev/null 2>&1 &&
	 [ \"\$(cat '$TMP/rej')\" = \"\$(sed -n 2p '$TMP/a.tsv')\" ] && [ \"\$(ids t)\" = 2 ]"

vdb-meta create z --dim 2 --field x:double
test_expect "a negative zero survives dump | ingest" \
	"echo '{\"id\":1,\"vector\":[-0.0,1],\"x\":-0.0}' | vdb-ingest z >/dev/null &&
	 vdb-admin dump z | grep -q '\"vector\":\[-0.0,1\],\"x\":-0.0'"
test_done
