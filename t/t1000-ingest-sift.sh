#!/bin/sh
# siftsmall from fvecs: 10,000 rows, verify passes, any flipped byte fails it.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create sift --dim 128
test_expect "ingest siftsmall_base.fvecs" \
	"vdb-ingest sift '$SIFT/siftsmall_base.fvecs' >'$TMP/ack' &&
	 grep -q '\"rows\":10000,\"min_id\":0,\"max_id\":9999' '$TMP/ack'"
test_expect "vdb-meta segments shows 10,000 rows" \
	"[ \"\$(vdb-meta segments sift | awk '{n += \$3} END {print n}')\" = 10000 ]"
test_expect "verify passes" "vdb-admin verify"
test_expect "dump gives back every vector bit for bit" \
	"vdb-admin dump sift | head -1 | grep -q '^{\"id\":0,\"vector\":\[0,16,35,5,32,31,14,10,11,78,' &&
	 [ \"\$(vdb-admin dump sift | wc -l)\" = 10000 ]"

obj=$(vdb-meta segments sift | cut -f5)
path=$TMP/r/objects/$(echo "$obj" | cut -c1-2)/$obj
size=$(stat -c %s "$path")
chmod u+w "$path"
# first and last 128 bytes (header, trailer, footer), and 40 spread through the rest
positions="$(seq 0 127) $(seq $((size - 128)) $((size - 1))) $(awk -v s="$size" 'BEGIN { srand(7); for (i = 0; i < 40; i++) print int(rand() * s) }')"
fails=0
for pos in $positions; do
	orig=$(od -An -tu1 -j "$pos" -N1 "$path" | tr -d ' ')
	printf "$(printf '\\%03o' $(((orig + 1) % 256)))" |
		dd of="$path" bs=1 seek="$pos" conv=notrunc 2>/dev/null
	vdb-admin verify >"$TMP/out" 2>/dev/null
	st=$?
	if [ "$st" -ne 1 ] || ! grep -q "object $obj" "$TMP/out"; then
		echo "# flipping byte $pos: verify exited $st"
		fails=$((fails + 1))
	fi
	printf "$(printf '\\%03o' "$orig")" | dd of="$path" bs=1 seek="$pos" conv=notrunc 2>/dev/null
done
test_expect "each of $(echo $positions | wc -w) single-byte flips fails verify naming the object" \
	"[ $fails -eq 0 ]"
test_expect "restored object verifies again" "vdb-admin verify"
test_done
