#!/bin/sh
# formats/segment.md read with nothing but dd, od and sha256sum: the trailer,
# the footer, the vector column's piece hash across 8 MiB pieces, the key.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create v --dim 128
vdb-gen -f fvecs -n 40000 -d 128 >"$TMP/a.fvecs" # 20 MB of vectors: 3 pieces
vdb-ingest -q v "$TMP/a.fvecs" >/dev/null
key=$(vdb-meta segments v | cut -f5)
obj=$TMP/r/objects/$(echo "$key" | cut -c1-2)/$key
size=$(stat -c %s "$obj")
u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }
hexat() { od -An -tx1 -j "$2" -N"$3" "$1" | tr -d ' \n'; }

foff=$(u64 "$obj" $((size - 56)))
flen=$(u64 "$obj" $((size - 48)))
test_expect "the trailer ends the object and names the footer" \
	"[ \$((foff + flen + 56)) = $size ] && [ \"\$(dd if='$obj' bs=1 skip=$((size - 8)) count=8 2>/dev/null)\" = VDBSEGND ]"
test_expect "the key is the SHA-256 of the footer" \
	"[ \"\$(dd if='$obj' bs=4096 iflag=skip_bytes,count_bytes skip=$foff count=$flen 2>/dev/null | sha256sum | cut -c1-64)\" = $key ]"

# the first column entry (the vectors) starts at footer + 48
voff=$(u64 "$obj" $((foff + 56)))
vstored=$(u64 "$obj" $((foff + 64)))
want=$(hexat "$obj" $((foff + 80)) 32)
ext=$(((vstored + 63) / 64 * 64))
piece=8388608
: >"$TMP/digests"
at=$voff
left=$ext
while [ "$left" -gt 0 ]; do
	k=$((piece - at % piece))
	[ $k -gt $left ] && k=$left
	dd if="$obj" bs=65536 iflag=skip_bytes,count_bytes skip=$at count=$k 2>/dev/null |
		sha256sum | cut -c1-64 | xxd -r -p >>"$TMP/digests"
	at=$((at + k))
	left=$((left - k))
done
test_expect "the vector block is $((ext / 1048576)) MiB at offset 64" "[ $voff = 64 ] && [ $vstored = $((40000 * 128 * 4)) ]"
test_expect "its hash is SHA-256 over the SHA-256 of each 8 MiB piece" \
	"[ \$(stat -c %s '$TMP/digests') = 96 ] && [ \"\$(sha256sum <'$TMP/digests' | cut -c1-64)\" = '$want' ]"
test_expect "verify agrees" "vdb-admin verify"
chmod u+w "$obj"
printf 'x' | dd of="$obj" bs=1 seek=$((piece + 12345)) conv=notrunc 2>/dev/null
test_expect "a byte changed in the second piece fails verify" \
	"! vdb-admin verify >'$TMP/vout' 2>/dev/null && grep -q \"block '_vector' at offset 64: checksum mismatch\" '$TMP/vout'"
test_done
