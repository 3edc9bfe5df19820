#!/bin/sh
# The append log: torn tails, corruption, concurrent writers, sealing.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create c --dim 4 --field tag:string:8
vdb-gen -f jsonl -n 100 -d 4 | sed 's/}$/,"tag":"x"}/' >"$TMP/a.jsonl"
log=$TMP/r/log/1/ins-0000000001.log
vdb-ingest --batch-rows 10 c "$TMP/a.jsonl" >/dev/null

size=$(stat -c %s "$log")
head -c 200 "$TMP/a.jsonl" >>"$log"
test_expect "verify calls a torn tail a note, not a problem" \
	"vdb-admin verify 2>'$TMP/verr' && grep -q 'torn tail of 200 bytes' '$TMP/verr'"
test_expect "readers ignore the torn tail" "[ \"\$(ids c | wc -l)\" = 100 ]"
test_expect "the next ingest truncates it and says so" \
	"echo '{\"id\":1000,\"vector\":[1,2,3,4],\"tag\":\"y\"}' | vdb-ingest c 2>'$TMP/ierr' >/dev/null &&
	 grep -q 'warning: .*ins-0000000001.log: truncated a torn tail of 200 bytes at offset $size' '$TMP/ierr' &&
	 [ \"\$(ids c | wc -l)\" = 101 ] && vdb-admin verify"

cp "$log" "$TMP/log.bak"
# flip a byte inside the first frame's payload: acknowledged data is damaged
printf 'Z' | dd of="$log" bs=1 seek=100 conv=notrunc 2>/dev/null
test_expect "verify reports a damaged frame followed by good ones" \
	"! vdb-admin verify >'$TMP/vout' 2>/dev/null &&
	 grep -q 'ins-0000000001.log: bad frame at offset 32 followed by a good one' '$TMP/vout'"
expect_fail "ingest refuses to truncate acknowledged data" 100 \
	"vdb-ingest: fatal: .*bad frame at offset 32 followed by a good one" \
	sh -c "echo '{\"id\":2000,\"vector\":[1,2,3,4],\"tag\":\"y\"}' | vdb-ingest c"
test_expect "the damaged log is left as it was" "[ \$(stat -c %s '$log') = \$(stat -c %s '$TMP/log.bak') ]"
expect_fail "a reader reports the damage instead of returning it" 100 "bad frame at offset 32" \
	vdb-admin dump c
cp "$TMP/log.bak" "$log"

test_expect "two ingesters on one collection: every row exactly once" \
	"vdb-gen -f jsonl -n 3000 -d 4 -i 10000 | sed 's/}\$/,\"tag\":\"a\"}/' >'$TMP/p1' &&
	 vdb-gen -f jsonl -n 3000 -d 4 -i 20000 | sed 's/}\$/,\"tag\":\"b\"}/' >'$TMP/p2' &&
	 { vdb-ingest --batch-rows 7 --segment-rows 500 c '$TMP/p1' >'$TMP/ack1' & p=\$!;
	   vdb-ingest --batch-rows 11 --segment-rows 500 c '$TMP/p2' >'$TMP/ack2';
	   wait \$p; } &&
	 [ \"\$(ids c | uniq -d)\" = '' ] && [ \"\$(ids c | wc -l)\" = 6101 ] &&
	 [ \"\$(vdb-meta segments c | wc -l)\" -ge 10 ] && vdb-admin verify"
test_expect "the log keeps only unsealed rows" \
	"vdb-ingest --flush c >/dev/null && [ \"\$(ls '$TMP/r/log/1' | grep -c '^ins-')\" = 1 ] &&
	 [ \$(stat -c %s \$(ls '$TMP/r/log/1'/ins-* )) = 32 ] && [ \"\$(ids c | wc -l)\" = 6101 ]"
test_expect "--segment-bytes seals by size" \
	"vdb-gen -f jsonl -n 2000 -d 4 -i 50000 | sed 's/}\$/,\"tag\":\"b\"}/' |
	 vdb-ingest --batch-rows 100 --segment-bytes 8192 c >/dev/null &&
	 [ \"\$(vdb-meta segments c | awk '\$7 >= 50000' | wc -l)\" -ge 5 ]"

vdb-meta create full --dim 64
vdb-gen -f jsonl -n 3000 -d 64 >"$TMP/big.jsonl"
test_expect "a write that fails (file size limit): exit 111, a clear error, nothing half-written" \
	"(trap '' XFSZ; ulimit -f 1024; vdb-ingest --batch-rows 500 full '$TMP/big.jsonl' >'$TMP/ack' 2>'$TMP/ierr'); [ \$? = 111 ] &&
	 grep -q 'vdb-ingest: fatal: .*ins-0000000001.log: write: File too large' '$TMP/ierr' &&
	 [ \"\$(ids full | wc -l)\" = \$(awk -F'\"rows\":' '{ split(\$2, a, \",\"); n += a[1] } END { print n + 0 }' '$TMP/ack') ] &&
	 vdb-admin verify 2>/dev/null"
test_expect "after the failure the next ingest goes on" \
	"vdb-gen -f jsonl -n 10 -d 64 -i 100000 | vdb-ingest full >/dev/null && ids full | grep -qx 100009"
test_expect "a bulk import that cannot write leaves no object and no registration" \
	"vdb-meta create fb --dim 128 && vdb-gen -f fvecs -n 20000 -d 128 >'$TMP/big.fvecs' &&
	 (trap '' XFSZ; ulimit -f 4096; vdb-ingest fb '$TMP/big.fvecs' >/dev/null 2>'$TMP/ierr'); [ \$? = 111 ] &&
	 grep -q 'File too large' '$TMP/ierr' && [ -z \"\$(vdb-meta segments fb)\" ] &&
	 [ -z \"\$(ls '$TMP/r/objects/tmp')\" ] && vdb-admin verify 2>/dev/null"

obj=$(vdb-meta segments c | head -1 | cut -f5)
objpath=$TMP/r/objects/$(echo "$obj" | cut -c1-2)/$obj
mv "$objpath" "$TMP/obj.bak"
test_expect "verify reports a registered object that is missing" \
	"! vdb-admin verify >'$TMP/vout' 2>/dev/null && grep -q \"object $obj\" '$TMP/vout'"
mv "$TMP/obj.bak" "$objpath"
cp "$objpath" "$TMP/r/objects/00"
# another key than the original's, whatever it starts with
fan=ab
[ "$(echo "$obj" | cut -c1-2)" = ab ] && fan=cd
mkdir -p "$TMP/r/objects/$fan" && cp "$objpath" "$TMP/r/objects/$fan/$fan$(echo "$obj" | cut -c3-)"
test_expect "an unregistered object is a note" \
	"vdb-admin verify 2>'$TMP/verr' && grep -q 'is not registered' '$TMP/verr'"
test_done
