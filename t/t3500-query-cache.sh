#!/bin/sh
# The decoded-column cache (ROOT/cache/cols): made by the first query,
# mapped by the next, rebuilt when missing or the wrong shape, and a
# cache that differs from its segment is found by vdb-admin verify.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create c --dim 4 --field year:int64 --field tag:string:16 --field ok:bool --field x:double || exit 1
vdb-gen -f jsonl -n 3000 -d 4 -y | sed 's/}$/,"ok":true,"x":1.5}/' | vdb-ingest --bulk c >/dev/null || exit 1
seg=$(vdb-meta segments c | cut -f5)
C=$TMP/r/cache/cols/$seg
vdb-gen -f fvecs -n 3 -d 4 -s 9 >"$TMP/q.fvecs"
q() { vdb-query -k 7 --fields '*' --filter 'year > 1990 and tag != "t1"' --format fvecs c "$TMP/q.fvecs"; }
test_expect "no cache before the first query" "[ ! -e '$C' ]"
q >"$TMP/a" || exit 1
test_expect "the first query writes it, read-only" "[ -f '$C' ] && [ ! -w '$C' ] || [ \$(id -u) = 0 ]"
test_expect "the next query gives the same answer from it" "q | cmp - '$TMP/a'"
test_expect "vdb-admin dump agrees with the answer's fields" \
	"vdb-admin dump c | grep -c '\"ok\":true' | grep -qx 3000"
test_expect "verify finds it consistent" "vdb-admin verify >/dev/null 2>&1"
cp "$C" "$TMP/saved"
chmod u+w "$C"
# a flipped byte inside the ids: same shape, different content
printf '\001' | dd of="$C" bs=1 seek=$((1024 + 5)) conv=notrunc 2>/dev/null
test_expect "verify reports a cache that differs from its segment" \
	"vdb-admin verify >'$TMP/v' 2>/dev/null; [ \$? = 1 ] && grep -q 'cache/cols/$seg differs from its segment' '$TMP/v'"
rm -f "$C"
test_expect "deleted, it is decoded and written again" "q | cmp - '$TMP/a' && cmp '$C' '$TMP/saved'"
chmod u+w "$C"
truncate -s 100 "$C"
test_expect "verify reports a cache that does not fit its segment" \
	"vdb-admin verify >'$TMP/v' 2>/dev/null; [ \$? = 1 ] && grep -q 'cache/cols/$seg does not fit its segment' '$TMP/v'"
test_expect "a truncated cache is not used, and is replaced" "q | cmp - '$TMP/a' && cmp '$C' '$TMP/saved'"
chmod u+w "$C"
printf 'XXXXXXXX' | dd of="$C" bs=1 seek=0 conv=notrunc 2>/dev/null
test_expect "a cache with a wrong header is not used, and is replaced" "q | cmp - '$TMP/a' && cmp '$C' '$TMP/saved'"
chmod u+w "$C"
# the tag column's second string offset pointing past the data: the
# cache's header entry 3 (ids, ts, year, tag) gives where the offsets are
off=$(od -An -t u8 -j $((64 + 16 * 3)) -N 8 "$C" | tr -d ' ')
printf '\377\377\377\377' | dd of="$C" bs=1 seek=$((off + 8 + 4)) conv=notrunc 2>/dev/null
test_expect "a cache with string offsets out of range is not used, and is replaced" \
	"q | cmp - '$TMP/a' && cmp '$C' '$TMP/saved'"
rm -f "$C"
q >/dev/null
test_expect "an empty segment caches too" \
	"vdb-meta create e --dim 4 && vdb-ingest --bulk e </dev/null >/dev/null 2>&1;
	 vdb-query -k 3 --format fvecs e '$TMP/q.fvecs' >/dev/null && vdb-admin verify >/dev/null 2>&1"
test_done
