#!/bin/sh
# JSONL, TSV, fvecs and npy; acks; partitions; auto ids; flush; deletes.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create c --dim 8 --field year:int64 --field tag:string:10
vdb-gen -f jsonl -n 25 -d 8 -y >"$TMP/a.jsonl"
vdb-gen -f tsv -n 25 -d 8 -y -i 100 >"$TMP/a.tsv"

test_expect "jsonl: one ack per batch, after the rows are durable" \
	"vdb-ingest --batch-rows 10 c '$TMP/a.jsonl' >'$TMP/ack' &&
	 [ \$(wc -l <'$TMP/ack') = 3 ] &&
	 grep -q '^{\"rows\":10,\"min_id\":0,\"max_id\":9,\"ts\":[0-9]*,\"partition\":\"_default\"}$' '$TMP/ack' &&
	 grep -q '^{\"rows\":5,\"min_id\":20,\"max_id\":24,' '$TMP/ack'"
test_expect "acked rows are readable before any seal" \
	"[ \"\$(ids c | wc -l)\" = 25 ] && [ -z \"\$(vdb-meta segments c)\" ]"
test_expect "timestamps in acks increase" \
	"sed 's/.*\"ts\":\([0-9]*\).*/\1/' '$TMP/ack' | sort -c -n"
test_expect "tsv from stdin" \
	"vdb-ingest --format tsv c <'$TMP/a.tsv' >'$TMP/ack' && grep -q '\"rows\":25,\"min_id\":100,\"max_id\":124' '$TMP/ack'"
test_expect "fields survive: year and tag" \
	"vdb-admin dump c | grep -q '^{\"id\":101,\"vector\":\[.*\],\"year\":1951,\"tag\":\"t1\"}$'"
test_expect "--flush seals the log into a segment" \
	"vdb-ingest --flush c >'$TMP/ack' && grep -q '\"rows\":50' '$TMP/ack' &&
	 [ \"\$(vdb-meta segments c | awk '{n += \$3} END {print n}')\" = 50 ] &&
	 [ \"\$(ids c | wc -l)\" = 50 ]"
test_expect "--flush with nothing to seal prints nothing" \
	"vdb-ingest --flush c >'$TMP/ack' && [ ! -s '$TMP/ack' ]"
test_expect "dump piped into ingest copies a collection" \
	"vdb-meta create c2 --dim 8 --field year:int64 --field tag:string:10 &&
	 vdb-admin dump c | vdb-ingest -q c2 >/dev/null &&
	 vdb-admin dump c | sort >'$TMP/d1' && vdb-admin dump c2 | sort >'$TMP/d2' &&
	 cmp '$TMP/d1' '$TMP/d2'"

test_expect "deletes hide rows, sealed and unsealed" \
	"printf '3\n\n120\n' | vdb-ingest --delete c >'$TMP/ack' &&
	 grep -q '^{\"deleted\":2,\"ts\":[0-9]*}$' '$TMP/ack' &&
	 ! ids c | grep -qx 3 && ! ids c | grep -qx 120 && [ \"\$(ids c | wc -l)\" = 48 ]"
test_expect "a row inserted again after its delete is live" \
	"vdb-admin dump c2 | grep '^{\"id\":3,' | vdb-ingest c >/dev/null && ids c | grep -qx 3"
expect_fail "a bad id in a delete list" 100 "vdb-ingest: fatal: -:2: not an id: 'x'" \
	sh -c "printf '1\nx\n' | vdb-ingest --delete c"

vdb-meta create f --dim 16
vdb-gen -f fvecs -n 1000 -d 16 >"$TMP/a.fvecs"
vdb-gen -f npy -n 1000 -d 16 >"$TMP/a.npy"
test_expect "fvecs bulk import writes segments directly, acked per segment" \
	"vdb-ingest --segment-rows 300 f '$TMP/a.fvecs' >'$TMP/ack' &&
	 [ \$(wc -l <'$TMP/ack') = 4 ] && grep -q '\"segment\":\"[0-9a-f]\{64\}\"' '$TMP/ack' &&
	 [ \"\$(vdb-meta segments f | wc -l)\" = 4 ] && [ ! -e '$TMP/r/log/3/ins-0000000001.log' ]"
vdb-admin dump f >"$TMP/f.dump"
test_expect "npy rows continue with --id-offset" \
	"vdb-ingest --id-offset 1000 f '$TMP/a.npy' >'$TMP/ack' &&
	 grep -q '\"min_id\":1000,\"max_id\":1999' '$TMP/ack' && [ \"\$(ids f | wc -l)\" = 2000 ]"
test_expect "fvecs and npy of the same vectors hold the same data" \
	"vdb-admin dump f | sed 's/^{\"id\":[0-9]*,//' | sort | uniq -c | awk '\$1 != 2 {exit 1}'"
test_expect "fvecs through the log with --no-bulk" \
	"vdb-ingest --no-bulk --id-offset 5000 --batch-rows 500 f '$TMP/a.fvecs' >'$TMP/ack' &&
	 [ \$(wc -l <'$TMP/ack') = 2 ] && [ \"\$(ids f | wc -l)\" = 3000 ]"

if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	shm=$(mktemp -d /dev/shm/vdb-test.XXXXXX)
	test_expect "a root on tmpfs, where O_DIRECT is refused, works the same" \
		"vdb-admin init '$shm/r' && vdb-meta -d '$shm/r' create f --dim 16 &&
		 vdb-ingest -d '$shm/r' --segment-rows 300 f '$TMP/a.fvecs' >/dev/null &&
		 vdb-admin -d '$shm/r' verify 2>/dev/null &&
		 vdb-admin -d '$shm/r' dump f | cmp - '$TMP/f.dump'"
	rm -rf "$shm"
fi

vdb-meta create auto --dim 8 --auto-id
test_expect "auto ids are assigned and never reused" \
	"vdb-gen -f jsonl -n 5 -d 8 | sed 's/\"id\":[0-9]*,//' | vdb-ingest auto >'$TMP/ack' &&
	 vdb-gen -f jsonl -n 5 -d 8 | sed 's/\"id\":[0-9]*,//' | vdb-ingest auto >>'$TMP/ack' &&
	 grep -q '\"min_id\":0,\"max_id\":4' '$TMP/ack' && grep -q '\"min_id\":5,\"max_id\":9' '$TMP/ack'"
test_expect "fvecs into an auto-id collection" \
	"vdb-gen -f fvecs -n 3 -d 8 | vdb-ingest --format fvecs auto | grep -q '\"min_id\":10,\"max_id\":12'"

vdb-meta partition create c p2023
test_expect "--partition puts rows in that partition's segments" \
	"vdb-gen -f jsonl -n 4 -d 8 -y -i 500 | vdb-ingest --partition p2023 c >/dev/null &&
	 vdb-ingest --flush c >/dev/null &&
	 vdb-meta segments c | awk '\$2 == \"p2023\" {n += \$3} END {exit n != 4}'"
test_expect "dropping a partition drops its rows and objects" \
	"obj=\$(vdb-meta segments c | awk '\$2 == \"p2023\" {print \$5}') &&
	 vdb-meta partition drop c p2023 && ! ids c | grep -qx 500 &&
	 [ ! -e '$TMP/r/objects/'\$(echo \$obj | cut -c1-2)/\$obj ] && vdb-admin verify"
expect_fail "unknown partition" 100 "vdb-ingest: fatal: no such partition: 'nope'" \
	vdb-ingest --partition nope c "$TMP/a.jsonl"
test_expect "a pipe that pauses still gets its rows acknowledged" \
	"( vdb-gen -f jsonl -n 2 -d 8 -y -i 900; sleep 1.5; echo DONE >'$TMP/late' ) |
	 vdb-ingest --linger-ms 100 c >'$TMP/ack' &
	 pid=\$!; sleep 1; [ ! -e '$TMP/late' ] && grep -q '\"min_id\":900,\"max_id\":901' '$TMP/ack'; r=\$?;
	 wait \$pid; exit \$r"
test_done
