#!/bin/sh
# vdb-query on bad input: one clear line, the documented exit status, no
# partial answer passed off as a whole one.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create c --dim 4 --field year:int64
printf '{"id":1,"vector":[1,2,3,4],"year":1}\n{"id":3000000000,"vector":[1,2,3,5],"year":2}\n' |
	vdb-ingest c >/dev/null

usage_fail() { # DESC CMD...: exit 100 with the usage on stderr
	desc=$1
	shift
	run "$@"
	if [ "$rc" = 100 ] && head -1 "$TMP/err" | grep -q '^usage: vdb-query \[-d root\]' && [ ! -s "$TMP/out" ]; then
		ok "$desc"
	else
		not_ok "$desc"
	fi
}
usage_fail "no collection given" vdb-query
expect_fail "unknown collection" 100 "vdb-query: fatal: no such collection: 'nope'" \
	vdb-query nope </dev/null
expect_fail "hostile collection name" 100 "vdb-query: fatal: .*collection" \
	vdb-query "../x'; DROP TABLE collections; --" </dev/null
expect_fail "missing query file" 100 "vdb-query: fatal: $TMP/none: No such file" \
	vdb-query c "$TMP/none"
expect_fail "-k 0" 100 "vdb-query: fatal: -k: 0 hits" vdb-query -k 0 c
expect_fail "-k too large" 100 "vdb-query: fatal: -k: bad number '16385'" vdb-query -k 16385 c
expect_fail "-j 0" 100 "vdb-query: fatal: -j: 0 threads" vdb-query -j 0 c
expect_fail "bad --output" 100 "vdb-query: fatal: --output: 'xml'" vdb-query --output xml c
expect_fail "bad --format" 100 "vdb-query: fatal: --format: 'csv'" vdb-query --format csv c
expect_fail "bad --radius" 100 "vdb-query: fatal: --radius: bad number 'nan'" vdb-query --radius nan c
expect_fail "bad --ts" 100 "vdb-query: fatal: --ts: bad number 'x'" vdb-query --ts x c
expect_fail "--fields with an unknown field" 100 "vdb-query: fatal: --fields: no field 'nope'" \
	vdb-query --fields year,nope c
expect_fail "--fields with ivecs" 100 "vdb-query: fatal: --output ivecs" \
	vdb-query --fields year --output ivecs c
usage_fail "--count with -k" vdb-query --count -k 3 c
usage_fail "serve with a collection" vdb-query serve c
test_expect "--help: the usage on stdout, exit 0" "vdb-query --help | grep -q '^usage: vdb-query'"

printf '{"vector":[1,2,3,4]}\n{"vector":[1,2,3]}\n' >"$TMP/q"
expect_fail "wrong dimension: file, line and what" 100 \
	"vdb-query: fatal: $TMP/q:2: \"vector\" has 3 values, want 4" vdb-query c "$TMP/q"
expect_fail "no partial answer before a bad line in the same batch" 100 "" vdb-query c "$TMP/q"
test_expect "... stdout is empty" "[ ! -s '$TMP/out' ]"
expect_fail "not JSON" 100 "vdb-query: fatal: stdin:1: column [0-9]+: " \
	sh -c 'echo "{vector: [1,2,3,4]}" | vdb-query c'
expect_fail "NaN is not JSON" 100 "vdb-query: fatal: stdin:1: column" \
	sh -c 'echo "{\"vector\":[NaN,1,2,3]}" | vdb-query c'
expect_fail "a value beyond float" 100 "vdb-query: fatal: stdin:1: \"vector\" value 2 is not a finite float" \
	sh -c 'echo "{\"vector\":[1,2,1e39,3]}" | vdb-query c'
expect_fail "a string in a vector" 100 "vdb-query: fatal: stdin:1: \"vector\" value 0 is not a finite float" \
	sh -c 'echo "{\"vector\":[\"1\",2,3,4]}" | vdb-query c'
expect_fail "unknown key" 100 "vdb-query: fatal: stdin:1: unknown key \"filtr\"" \
	sh -c 'echo "{\"vector\":[1,2,3,4],\"filtr\":\"year > 1\"}" | vdb-query c'
expect_fail "duplicate key" 100 "vdb-query: fatal: stdin:1: column" \
	sh -c 'echo "{\"vector\":[1,2,3,4],\"vector\":[1,2,3,4]}" | vdb-query c'
expect_fail "per-query k out of range" 100 "vdb-query: fatal: stdin:1: \"k\" must be an integer 1..16384" \
	sh -c 'echo "{\"vector\":[1,2,3,4],\"k\":0}" | vdb-query c'
expect_fail "a query that is not an object" 100 "vdb-query: fatal: stdin:1: a query is an object" \
	sh -c 'echo "[1,2,3,4]" | vdb-query c'
expect_fail "no vector" 100 "vdb-query: fatal: stdin:1: no \"vector\"" \
	sh -c 'echo "{\"k\":3}" | vdb-query c'
expect_fail "a bad filter points at the column" 100 "vdb-query: fatal: filter: column 8: " \
	sh -c 'echo "{\"vector\":[1,2,3,4]}" | vdb-query --filter "year > " c'
expect_fail "a bad per-query filter" 100 "vdb-query: fatal: filter: column 1: .*nope" \
	sh -c 'echo "{\"vector\":[1,2,3,4],\"filter\":\"nope == 1\"}" | vdb-query c'
expect_fail "a query line over 64 MiB" 100 "vdb-query: fatal: stdin:1: query longer than 67108864 bytes" \
	sh -c 'head -c 70000000 /dev/zero | tr "\0" " " | vdb-query c'
expect_fail "an id beyond int32 cannot be written as ivecs" 100 \
	"vdb-query: fatal: id 3000000000 does not fit the 32 bits of ivecs" \
	sh -c 'echo "{\"vector\":[1,2,3,5]}" | vdb-query --output ivecs c'

# fvecs queries
printf '\004\000\000\000' >"$TMP/short.fvecs"
expect_fail "truncated fvecs" 100 "vdb-query: fatal: $TMP/short.fvecs: query 1: truncated \(4 bytes of 20\)" \
	vdb-query c "$TMP/short.fvecs"
printf '\003\000\000\000\000\000\200\077\000\000\200\077\000\000\200\077' >"$TMP/d3.fvecs"
expect_fail "fvecs of the wrong dimension" 100 "vdb-query: fatal: $TMP/d3.fvecs: query 1: dimension 3, want 4" \
	vdb-query c "$TMP/d3.fvecs"
printf '\004\000\000\000\000\000\300\177\000\000\200\077\000\000\200\077\000\000\200\077' >"$TMP/nan.fvecs"
expect_fail "NaN in an fvecs query" 100 "vdb-query: fatal: $TMP/nan.fvecs: query 1: value 0 of the vector is not finite" \
	vdb-query c "$TMP/nan.fvecs"

# corrupt stored data is reported, never returned
vdb-ingest --flush c >/dev/null
obj=$(vdb-meta segments c | cut -f5)
path=$TMP/r/objects/$(echo "$obj" | cut -c1-2)/$obj
chmod u+w "$path"
cp "$path" "$TMP/orig"
printf 'X' | dd of="$path" bs=1 seek=70 conv=notrunc 2>/dev/null
expect_fail "a flipped vector byte: corrupt, with the object named" 100 \
	"vdb-query: fatal: object $obj: block '_vector' at offset 64: checksum mismatch" \
	sh -c 'echo "{\"vector\":[1,2,3,4]}" | vdb-query c'
test_expect "... and no answer on stdout" "[ ! -s '$TMP/out' ]"
cp "$TMP/orig" "$path"
size=$(stat -c %s "$path")
printf 'X' | dd of="$path" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
expect_fail "a flipped footer byte: corrupt" 100 "vdb-query: fatal: .*object $obj" \
	vdb-query --count c
cp "$TMP/orig" "$path"
test_expect "the restored object answers again" "[ \"\$(vdb-query --count c)\" = 2 ]"

# a radius search without -k stops past 1048576 hits for one query
vdb-meta create wide --dim 1 && vdb-gen -f fvecs -n 1048577 -d 1 >"$TMP/wide.fvecs" &&
	vdb-ingest -q wide "$TMP/wide.fvecs" >/dev/null || echo "# wide not set up"
expect_fail "a radius search past 1048576 hits for one query" 100 \
	"^vdb-query: fatal: more than 1048576 hits within the radius for one query; give k$" \
	sh -c 'echo "{\"vector\":[0]}" | vdb-query --radius 1e30 wide'
test_expect "... with -k it answers" \
	"echo '{\"vector\":[0]}' | vdb-query --radius 1e30 -k 3 wide | grep -q '\"hits\":\[{.*},{.*},{.*}\]'"
rm -f "$TMP/wide.fvecs"
test_done
