#!/bin/sh
# Bad input: each gets one clear line, exit 100, and loses nothing acknowledged.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create c --dim 4 --field year:int64 --field tag:string:5 --field score:double \
	--field ok:bool
good='{"id":1,"vector":[1,2,3,4],"year":2001,"tag":"ab","score":0.5,"ok":true}'

# bad_json DESC LINE PATTERN: LINE alone in a file is refused with PATTERN
bad_json() {
	printf '%s\n' "$2" >"$TMP/bad.jsonl"
	expect_fail "jsonl: $1" 100 "^vdb-ingest: fatal: $TMP/bad.jsonl:1: $3" \
		vdb-ingest c "$TMP/bad.jsonl"
}
bad_json "wrong dimension" '{"id":1,"vector":[1,2,3],"year":2001,"tag":"ab","score":0.5,"ok":true}' \
	'wrong dimension \(got 3, want 4\)$'
bad_json "NaN" '{"id":1,"vector":[1,NaN,3,4],"year":2001,"tag":"ab","score":0.5,"ok":true}' \
	'malformed JSON at column [0-9]+: invalid token'
bad_json "beyond float32" '{"id":1,"vector":[1,1e39,3,4],"year":2001,"tag":"ab","score":0.5,"ok":true}' \
	'vector\[1\] is not a finite float32'
bad_json "beyond double" '{"id":1,"vector":[1,1e999,3,4],"year":2001,"tag":"ab","score":0.5,"ok":true}' \
	'malformed JSON at column [0-9]+: real number overflow'
bad_json "vector of strings" '{"id":1,"vector":[1,"2",3,4],"year":2001,"tag":"ab","score":0.5,"ok":true}' \
	'vector\[1\] is not a number'
bad_json "string id" '{"id":"1","vector":[1,2,3,4],"year":2001,"tag":"ab","score":0.5,"ok":true}' \
	'"id" is not an integer'
bad_json "double for int64" '{"id":1,"vector":[1,2,3,4],"year":2001.5,"tag":"ab","score":0.5,"ok":true}' \
	"field 'year' wants int64"
bad_json "number for string" '{"id":1,"vector":[1,2,3,4],"year":2001,"tag":5,"score":0.5,"ok":true}' \
	"field 'tag' wants string"
bad_json "string for bool" '{"id":1,"vector":[1,2,3,4],"year":2001,"tag":"ab","score":0.5,"ok":"yes"}' \
	"field 'ok' wants bool"
bad_json "missing field" '{"id":1,"vector":[1,2,3,4],"year":2001,"tag":"ab","ok":true}' \
	"missing field 'score'"
bad_json "missing vector" '{"id":1,"year":2001,"tag":"ab","score":0.5,"ok":true}' 'missing "vector"'
bad_json "missing id" '{"vector":[1,2,3,4],"year":2001,"tag":"ab","score":0.5,"ok":true}' 'missing "id"'
bad_json "unknown field" '{"id":1,"vector":[1,2,3,4],"year":2001,"tag":"ab","score":0.5,"ok":true,"x":1}' \
	"unknown field 'x'"
bad_json "oversize string" '{"id":1,"vector":[1,2,3,4],"year":2001,"tag":"abcdef","score":0.5,"ok":true}' \
	"field 'tag' is 6 bytes, longer than its 5"
bad_json "malformed JSON" '{"id":1,"vector":[1,2,3,4],' 'malformed JSON at column'
bad_json "duplicate key" '{"id":1,"id":2,"vector":[1,2,3,4],"year":2001,"tag":"ab","score":0.5,"ok":true}' \
	'malformed JSON at column [0-9]+: duplicate object key'
bad_json "not an object" '[1,2,3]' 'record is not a JSON object'
bad_json "SQL in a string is just data, but too long" \
	'{"id":1,"vector":[1,2,3,4],"year":2001,"tag":"x\u0027);DROP TABLE collections;--","score":0.5,"ok":true}' \
	"field 'tag' is [0-9]+ bytes"
printf '{"id":1,"vector":[1,2,3,4],"year":2001,"tag":"\377","score":0.5,"ok":true}\n' >"$TMP/bad.jsonl"
expect_fail "jsonl: invalid UTF-8" 100 "bad.jsonl:1: malformed JSON at column [0-9]+: unable to decode byte" \
	vdb-ingest c "$TMP/bad.jsonl"
printf '%s\n%s\n' "$good" "$good" >"$TMP/dup.jsonl"
expect_fail "duplicate id in a batch" 100 "dup.jsonl:2: duplicate id 1 in the batch" \
	vdb-ingest c "$TMP/dup.jsonl"
test_expect "nothing of those got in" "[ -z \"\$(vdb-admin dump c)\" ]"

# stop mode: earlier batches stay, the bad batch is not acknowledged
{
	for i in 1 2 3; do echo "$good" | sed "s/\"id\":1/\"id\":$i/"; done
	echo '{"id":4,"vector":[1,2,3],"year":2001,"tag":"ab","score":0.5,"ok":true}'
	echo "$good" | sed 's/"id":1/"id":5/'
} >"$TMP/mixed.jsonl"
expect_fail "stop at the first bad record" 100 "mixed.jsonl:4: wrong dimension" \
	vdb-ingest --batch-rows 2 c "$TMP/mixed.jsonl"
test_expect "the acknowledged batch is there, the bad batch is not" \
	"[ \"\$(ids c | tr '\n' ' ')\" = '1 2 ' ]"
vdb-meta create s --dim 4 --field year:int64 --field tag:string:5 --field score:double --field ok:bool
echo "$good" >>"$TMP/mixed.jsonl"
test_expect "skip mode keeps going and writes rejects" \
	"vdb-ingest --batch-rows 10 --on-error skip --rejects '$TMP/rej' s '$TMP/mixed.jsonl' \
		>'$TMP/ack' 2>'$TMP/err2' &&
	 grep -q 'mixed.jsonl:4: wrong dimension (got 3, want 4) (skipped)' '$TMP/err2' &&
	 grep -q 'mixed.jsonl:6: duplicate id 1 in the batch (skipped)' '$TMP/err2' &&
	 grep -q '2 records rejected, written to' '$TMP/err2' &&
	 [ \"\$(wc -l <'$TMP/rej')\" = 2 ] && grep -q '\"id\":4' '$TMP/rej' &&
	 [ \"\$(ids s | tr '\n' ' ')\" = '1 2 3 5 ' ]"
expect_fail "--id-offset with JSONL" 100 "--id-offset applies to fvecs and npy" \
	vdb-ingest --id-offset 5 c "$TMP/mixed.jsonl"
expect_fail "--partition with --delete" 100 "--partition does not go with --delete" \
	vdb-ingest --partition p --delete c
: >"$TMP/empty.tsv"
expect_fail "tsv: empty input" 100 "empty.tsv: empty input: no header line" vdb-ingest c "$TMP/empty.tsv"
expect_fail "--rejects without --on-error skip" 100 "--rejects goes with --on-error skip" \
	vdb-ingest --rejects x c "$TMP/mixed.jsonl"
expect_fail "a file that does not exist" 100 "vdb-ingest: fatal: $TMP/nope: No such file or directory" \
	vdb-ingest c "$TMP/nope"
test_expect "empty input acknowledges nothing" "vdb-ingest c </dev/null >'$TMP/ack' && [ ! -s '$TMP/ack' ]"
head -c 67200000 /dev/zero | tr '\0' ' ' >"$TMP/long.jsonl"
expect_fail "a line longer than 64 MiB" 100 "long.jsonl:1: line longer than 67108864 bytes" \
	vdb-ingest c "$TMP/long.jsonl"
rm -f "$TMP/long.jsonl"

# tsv
printf 'id\tvector\tyear\ttag\tscore\tok\n7\t1,2,3,4\t2001\tab\t0.5\ttrue\n8\t1,2,3\t2001\tab\t0.5\ttrue\n' >"$TMP/a.tsv"
expect_fail "tsv: wrong dimension" 100 "a.tsv:3: wrong dimension \(got 3, want 4\)" vdb-ingest c "$TMP/a.tsv"
printf 'id\tvector\tyear\n' >"$TMP/b.tsv"
expect_fail "tsv: header without a field" 100 "b.tsv:1: header: no column for field 'tag'" \
	vdb-ingest c "$TMP/b.tsv"
printf 'id\tvector\tyear\ttag\tscore\tok\tzzz\n' >"$TMP/b.tsv"
expect_fail "tsv: unknown column" 100 "b.tsv:1: header: unknown field 'zzz'" vdb-ingest c "$TMP/b.tsv"
printf 'id\tvector\tyear\ttag\tscore\tok\n9\t1,2,3,4\tnan\tab\t0.5\ttrue\n' >"$TMP/b.tsv"
expect_fail "tsv: not an int64" 100 "b.tsv:2: 'nan' is not an int64" vdb-ingest c "$TMP/b.tsv"
printf 'id\tvector\tyear\ttag\tscore\tok\n9\t1,2,inf,4\t1\tab\t0.5\ttrue\n' >"$TMP/b.tsv"
expect_fail "tsv: infinity" 100 "b.tsv:2: vector\[2\] is not a finite float32" vdb-ingest c "$TMP/b.tsv"

printf 'id\tvector\tyear\ttag\tscore\tok\n9\t1,2,3,4\t1\ta\377\t0.5\ttrue\n' >"$TMP/b.tsv"
expect_fail "tsv: a string that is not UTF-8" 100 "b.tsv:2: field 'tag' is not UTF-8 text" \
	vdb-ingest c "$TMP/b.tsv"

fields=$(for i in $(seq 64); do printf ' --field f%d:int64' "$i"; done)
vdb-meta create wide --dim 2 $fields
vals=$(for i in $(seq 64); do printf ',"f%d":%d' "$i" "$i"; done)
printf '{"vector":[1,2]%s}\n' "$vals" >"$TMP/wide.jsonl"
expect_fail "64 fields and no id" 100 "wide.jsonl:1: missing \"id\"" vdb-ingest wide "$TMP/wide.jsonl"
printf '{"id":3,"vector":[1,2]%s}\n' "$vals" >"$TMP/wide.jsonl"
test_expect "64 fields and an id" "vdb-ingest wide '$TMP/wide.jsonl' >/dev/null && [ \"\$(ids wide)\" = 3 ]"

# binary formats
vdb-meta create v --dim 4
printf '\004\000\000\000\000\000\200\077\000\000\200\077\000\000\200\077\000\000\200\077' >"$TMP/one.fvecs"
cat "$TMP/one.fvecs" "$TMP/one.fvecs" | head -c 30 >"$TMP/trunc.fvecs"
expect_fail "fvecs: truncated row" 100 "trunc.fvecs:2: truncated row \(10 of 20 bytes\)" \
	vdb-ingest v "$TMP/trunc.fvecs"
printf '\003\000\000\000\000\000\200\077\000\000\200\077\000\000\200\077' >"$TMP/d3.fvecs"
expect_fail "fvecs: wrong dimension" 100 "d3.fvecs:1: wrong dimension \(got 3, want 4\)" \
	vdb-ingest v "$TMP/d3.fvecs"
printf '\377\377\377\177\000\000\200\077' >"$TMP/huge.fvecs"
expect_fail "fvecs: a huge dimension header" 100 "huge.fvecs:1: wrong dimension \(got 2147483647, want 4\); cannot continue" \
	vdb-ingest v "$TMP/huge.fvecs"
printf '\004\000\000\000\000\000\200\077\000\000\300\177\000\000\200\077\000\000\200\077' >"$TMP/nan.fvecs"
expect_fail "fvecs: NaN" 100 "nan.fvecs:1: vector\[1\] is NaN" vdb-ingest v "$TMP/nan.fvecs"
printf '\004\000\000\000\000\000\200\077\000\000\200\177\000\000\200\077\000\000\200\077' >"$TMP/inf.fvecs"
expect_fail "fvecs: infinity" 100 "inf.fvecs:1: vector\[1\] is infinite" vdb-ingest v "$TMP/inf.fvecs"
test_expect "skip mode skips a NaN row and keeps the good ones" \
	"cat '$TMP/one.fvecs' '$TMP/nan.fvecs' '$TMP/one.fvecs' >'$TMP/mix.fvecs' &&
	 vdb-ingest --on-error skip v '$TMP/mix.fvecs' >'$TMP/ack' 2>/dev/null &&
	 [ \"\$(ids v | tr '\n' ' ')\" = '0 2 ' ]"
vdb-gen -f npy -n 10 -d 4 >"$TMP/a.npy"
head -c 164 "$TMP/a.npy" >"$TMP/t.npy"
expect_fail "npy: truncated" 100 "t.npy:3: truncated row \(4 of 16 bytes; 8 rows missing\)" \
	vdb-ingest v "$TMP/t.npy"
vdb-gen -f npy -n 10 -d 5 >"$TMP/d5.npy"
expect_fail "npy: wrong dimension" 100 "d5.npy: wrong dimension \(got 5, want 4\)" vdb-ingest v "$TMP/d5.npy"
h="{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4, 1), }"
{ printf '\223NUMPY\001\000\166\000'; printf "%-117s\n" "$h"; } >"$TMP/3d.npy"
expect_fail "npy: three dimensions" 100 "3d.npy: npy shape must be \(rows, dim\)" vdb-ingest v "$TMP/3d.npy"
expect_fail "npy: not npy" 100 "one.fvecs: not an npy file" vdb-ingest --format npy v "$TMP/one.fvecs"
test_expect "nothing half-present after the binary failures" "[ \"\$(ids v | tr '\n' ' ')\" = '0 2 ' ]"

expect_fail "fvecs into a collection with fields" 100 "one.fvecs: fvecs rows hold only vectors, but collection 'c' has field 'year'" \
	vdb-ingest c "$TMP/one.fvecs"

# hostile names
for name in '../x' "a'b" 'x; DROP TABLE collections; --' '' 'ünï' "$(printf 'a%.0s' $(seq 300))"; do
	expect_fail "hostile collection name '$(echo "$name" | cut -c1-20)'" 100 "bad collection name|collection name must be" \
		vdb-meta create "$name" --dim 4
	expect_fail "hostile name to ingest '$(echo "$name" | cut -c1-20)'" 100 "collection name" \
		vdb-ingest "$name" "$TMP/one.fvecs"
done
expect_fail "hostile partition name" 100 "bad partition name" vdb-meta partition create c '../../etc'
expect_fail "hostile partition to ingest" 100 "bad partition name" vdb-ingest --partition "p'" c
expect_fail "hostile field name" 100 "bad field name" vdb-meta create h --dim 4 --field "a b:int64"
test_expect "the catalogue is intact and verify passes" \
	"vdb-meta list | tr '\n' ' ' | grep -qx 'c s v wide ' && vdb-admin verify"
test_done
