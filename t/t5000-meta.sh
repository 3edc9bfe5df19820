#!/bin/sh
# vdb-meta: collections, partitions, segments, timestamps.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
test_expect "create with every field type" \
	"vdb-meta create docs --dim 3 --metric cosine --field year:int64 --field score:double \
		--field ok:bool --field title:string:20 --field body:string"
test_expect "show prints the schema as JSON" \
	"vdb-meta show docs >'$TMP/s' &&
	 grep -q '^{\"name\":\"docs\",\"id\":1,\"dim\":3,\"metric\":\"cosine\",\"auto_id\":false,\"fields\":\[{\"name\":\"year\",\"type\":\"int64\"},{\"name\":\"score\",\"type\":\"double\"},{\"name\":\"ok\",\"type\":\"bool\"},{\"name\":\"title\",\"type\":\"string\",\"max_len\":20},{\"name\":\"body\",\"type\":\"string\",\"max_len\":65535}\],\"partitions\":\[\"_default\"\],\"segments\":0,\"sealed_rows\":0,\"sealed_bytes\":0,\"index\":\"flat\"}$' '$TMP/s'"
expect_fail "a collection name twice" 100 "vdb-meta: fatal: collection 'docs' exists" \
	vdb-meta create docs --dim 3
expect_fail "--dim is required" 100 "create: --dim is required" vdb-meta create x
expect_fail "dimension 0" 100 "--dim: '0' is not from 1 to 32768" vdb-meta create x --dim 0
expect_fail "dimension too large" 100 "--dim: '40000' is not from 1 to 32768" vdb-meta create x --dim 40000
expect_fail "bad metric" 100 "--metric: want l2, ip or cosine" vdb-meta create x --dim 2 --metric hamming
expect_fail "bad type" 100 "unknown type" vdb-meta create x --dim 2 --field a:float
expect_fail "reserved field name" 100 "field name 'id' is reserved" vdb-meta create x --dim 2 --field id:int64
expect_fail "field twice" 100 "field 'a' given twice" vdb-meta create x --dim 2 --field a:int64 --field a:bool
expect_fail "string length 0" 100 "string length must be 1 to 65535" vdb-meta create x --dim 2 --field a:string:0
test_expect "a failed create leaves nothing behind" "[ \"\$(vdb-meta list)\" = docs ]"
test_expect "list" "vdb-meta create a --dim 2 && [ \"\$(vdb-meta list | tr '\n' ' ')\" = 'a docs ' ]"
test_expect "partitions: create, list" \
	"vdb-meta partition create docs p1 && vdb-meta partition create docs p2 &&
	 [ \"\$(vdb-meta partition list docs | tr '\n' ' ')\" = '_default p1 p2 ' ]"
expect_fail "a partition twice" 100 "partition 'p1' exists" vdb-meta partition create docs p1
expect_fail "_default cannot be dropped" 100 "the _default partition cannot be dropped" \
	vdb-meta partition drop docs _default
expect_fail "drop a partition that is not there" 100 "no such partition: 'zz'" \
	vdb-meta partition drop docs zz
test_expect "partition drop" \
	"vdb-meta partition drop docs p2 && [ \"\$(vdb-meta partition list docs | tr '\n' ' ')\" = '_default p1 ' ]"
expect_fail "show a collection that is not there" 100 "no such collection: 'nope'" vdb-meta show nope
expect_fail "partition subcommand unknown" 100 "" sh -c "vdb-meta partition frob docs p 2>&1 >/dev/null | head -1 | grep usage >&2; exit 100"

test_expect "segments lists sealed segments: id, partition, rows, bytes, sha256, ids, ts" \
	"printf '{\"id\":5,\"vector\":[1,2],\"x\":1}\n' >'$TMP/bad' ;
	 printf '{\"id\":5,\"vector\":[1,2]}\n{\"id\":9,\"vector\":[3,4]}\n' | vdb-ingest a >/dev/null &&
	 vdb-ingest --flush a >/dev/null &&
	 vdb-meta segments a | awk -F'\t' 'NF == 9 && \$1 == 1 && \$2 == \"_default\" && \$3 == 2 &&
		length(\$5) == 64 && \$5 !~ /[^0-9a-f]/ && \$6 == 5 && \$7 == 9 && \$8 == \$9 { ok = 1 } END { exit !ok }'"
test_expect "timestamps strictly increase across processes" \
	"for i in \$(seq 50); do vdb-meta ts; done | cut -f1 >'$TMP/ts' &&
	 sort -n -c -u '$TMP/ts' && [ \$(wc -l <'$TMP/ts') = 50 ]"
test_expect "concurrent timestamp takers never share one" \
	"for j in 1 2 3 4; do (for i in \$(seq 25); do vdb-meta ts; done > '$TMP/ts.'\$j) & done; wait;
	 cat '$TMP'/ts.? | cut -f1 | sort | uniq -d | wc -l | grep -qx 0 && [ \$(cat '$TMP'/ts.? | wc -l) = 100 ]"
test_expect "a timestamp is physical ms << 18 | logical" \
	"vdb-meta ts | awk -v now=\$(date +%s) '{ if (\$2 < (now - 60) * 1000 || \$2 > (now + 60) * 1000) exit 1;
	 if (\$3 >= 262144) exit 1 }'"
test_expect "drop removes the collection, its log and its objects" \
	"obj=\$(vdb-meta segments a | cut -f5) && id=\$(vdb-meta show a | sed 's/.*\"id\":\([0-9]*\).*/\1/') &&
	 vdb-meta drop a && ! vdb-meta show a 2>/dev/null && [ ! -e '$TMP/r/log/'\$id ] &&
	 [ ! -e '$TMP/r/objects/'\$(echo \$obj | cut -c1-2)/\$obj ] && vdb-admin verify"
test_expect "ids of dropped collections and partitions are never reused" \
	"vdb-meta create r1 --dim 2 && id1=\$(vdb-meta show r1 | sed 's/.*\"id\":\([0-9]*\).*/\\1/') &&
	 vdb-meta partition create r1 p && printf '{\"id\":1,\"vector\":[1,2]}\n' | vdb-ingest --partition p r1 >/dev/null &&
	 vdb-meta partition drop r1 p && vdb-meta partition create r1 q &&
	 [ -z \"\$(vdb-admin dump r1)\" ] && vdb-ingest --flush r1 >/dev/null && [ -z \"\$(vdb-meta segments r1)\" ] &&
	 vdb-meta drop r1 && vdb-meta create r2 --dim 2 &&
	 [ \"\$(vdb-meta show r2 | sed 's/.*\"id\":\([0-9]*\).*/\\1/')\" -gt \$id1 ]"
test_expect "the catalogue is WAL-mode SQLite with a schema version" \
	"[ \"\$(sqlite3 '$TMP/r/meta.db' 'PRAGMA journal_mode')\" = wal ] &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' 'PRAGMA user_version')\" = 2 ]"
test_done
