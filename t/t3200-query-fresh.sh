#!/bin/sh
# Fresh data and deletes: a record is found as soon as vdb-ingest has
# acknowledged it, before any seal; a deleted id never comes back, before
# or after sealing; --ts searches the past; --count and --partition.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create c --dim 3 --field year:int64 --field tag:string:8
vdb-meta partition create c p2

q() { echo "{\"vector\":[$1]}"; }

test_expect "an empty collection answers with no hits" \
	"q 1,2,3 | vdb-query c >'$TMP/o' && grep -qx '{\"query\":0,\"hits\":\[\]}' '$TMP/o'"
test_expect "--count of an empty collection is 0" "[ \"\$(vdb-query --count c)\" = 0 ]"

# A writer that keeps its pipe open: each record must be searchable as soon
# as its acknowledgement line appears, with no seal and no EOF.
mkfifo "$TMP/in"
# there before the writer opens it: its redirection waits for the fifo
: >"$TMP/acks"
vdb-ingest --batch-rows 1 c <"$TMP/in" >"$TMP/acks" 2>"$TMP/ierr" &
ipid=$!
exec 3>"$TMP/in"
fresh_ok=1
for i in 1 2 3 4 5; do
	echo "{\"id\":$i,\"vector\":[$i,0,0],\"year\":$((2000 + i)),\"tag\":\"t$i\"}" >&3
	n=0
	while [ "$(wc -l <"$TMP/acks")" -lt "$i" ] && [ $n -lt 100 ]; do
		sleep 0.05
		n=$((n + 1))
	done
	if ! q "$i,0,0" | vdb-query -k 1 c | grep -q "^{\"query\":0,\"hits\":\[{\"id\":$i,\"distance\":0}\]}$"; then
		echo "# record $i not found right after its acknowledgement"
		fresh_ok=0
	fi
done
exec 3>&-
wait $ipid
test_expect "each record is found right after its acknowledgement, before any seal" "[ $fresh_ok = 1 ]"
test_expect "nothing is sealed yet" "[ -z \"\$(vdb-meta segments c)\" ]"
test_expect "fields come from the log tail" \
	"q 2,0,0 | vdb-query -k 1 --fields year,tag c | grep -qx '{\"query\":0,\"hits\":\[{\"id\":2,\"distance\":0,\"year\":2002,\"tag\":\"t2\"}\]}'"

ts_before=$(vdb-meta ts | cut -f1)
echo 2 | vdb-ingest --delete c >/dev/null
test_expect "a deleted id is gone at once (log tail)" \
	"q 2,0,0 | vdb-query -k 5 c >'$TMP/o' && ! grep -q '\"id\":2,' '$TMP/o' && grep -q '\"id\":1,' '$TMP/o'"
test_expect "--count after the delete" "[ \"\$(vdb-query --count c)\" = 4 ]"
test_expect "--ts before the delete still sees it" \
	"q 2,0,0 | vdb-query -k 1 --ts $ts_before c | grep -q '\"id\":2,\"distance\":0}'"
test_expect "--count --ts before the delete" "[ \"\$(vdb-query --count --ts $ts_before c)\" = 5 ]"
expect_fail "--ts in the future is refused" 100 "vdb-query: fatal: timestamp [0-9]+ is in the future" \
	vdb-query --count --ts 18446744073709551615 c

vdb-ingest --flush c >/dev/null
test_expect "sealed now" "[ -n \"\$(vdb-meta segments c)\" ]"
test_expect "a deleted id stays gone after sealing" \
	"q 2,0,0 | vdb-query -k 5 c >'$TMP/o' && ! grep -q '\"id\":2,' '$TMP/o' && [ \$(grep -o '\"id\"' '$TMP/o' | wc -l) = 4 ]"
echo 3 | vdb-ingest --delete c >/dev/null
test_expect "a delete after the seal hides a sealed row" \
	"q 3,0,0 | vdb-query -k 5 c >'$TMP/o' && ! grep -q '\"id\":3,' '$TMP/o'"
vdb-ingest --flush c >/dev/null
test_expect "... and it stays hidden after the next seal" \
	"q 3,0,0 | vdb-query -k 5 c >'$TMP/o' && ! grep -q '\"id\":3,' '$TMP/o' && [ \"\$(vdb-query --count c)\" = 3 ]"
test_expect "re-inserting a deleted id brings back the new row only" \
	"echo '{\"id\":3,\"vector\":[9,9,9],\"year\":1,\"tag\":\"new\"}' | vdb-ingest c >/dev/null &&
	 q 9,9,9 | vdb-query -k 1 --fields tag c | grep -qx '{\"query\":0,\"hits\":\[{\"id\":3,\"distance\":0,\"tag\":\"new\"}\]}' &&
	 q 3,0,0 | vdb-query -k 1 c | grep -qv '\"id\":3,\"distance\":0}'"

echo '{"id":100,"vector":[0,0,7],"year":1,"tag":"p"}' | vdb-ingest --partition p2 c >/dev/null
test_expect "--partition searches only that partition" \
	"q 0,0,7 | vdb-query --partition p2 -k 10 c >'$TMP/o' && [ \$(grep -o '\"id\"' '$TMP/o' | wc -l) = 1 ] &&
	 q 0,0,7 | vdb-query --partition _default -k 10 c | grep -vq '\"id\":100,'"
test_expect "--count --partition" "[ \"\$(vdb-query --count --partition p2 c)\" = 1 ]"
expect_fail "an unknown partition" 100 "vdb-query: fatal: no partition 'nope' in collection c" \
	vdb-query --partition nope c
vdb-meta partition drop c p2
test_expect "rows of a dropped partition are not found" \
	"q 0,0,7 | vdb-query -k 10 c | grep -vq '\"id\":100,'"

# cosine and inner product: higher is closer
vdb-meta create cos --dim 2 --metric cosine
vdb-meta create ip --dim 2 --metric ip
printf '{"id":1,"vector":[1,0]}\n{"id":2,"vector":[3,3]}\n{"id":3,"vector":[0,0]}\n{"id":4,"vector":[-1,0]}\n' >"$TMP/v"
vdb-ingest cos "$TMP/v" >/dev/null
vdb-ingest ip "$TMP/v" >/dev/null
test_expect "cosine: similarity, highest first; a zero vector scores 0" \
	"q 2,0 | vdb-query -k 4 cos | grep -qx '{\"query\":0,\"hits\":\[{\"id\":1,\"distance\":1},{\"id\":2,\"distance\":0.70710[0-9]*},{\"id\":3,\"distance\":0},{\"id\":4,\"distance\":-1}\]}'"
test_expect "inner product: highest first" \
	"q 2,0 | vdb-query -k 4 ip | grep -qx '{\"query\":0,\"hits\":\[{\"id\":2,\"distance\":6},{\"id\":1,\"distance\":2},{\"id\":3,\"distance\":0},{\"id\":4,\"distance\":-2}\]}'"
test_expect "inner product --radius keeps scores >= r" \
	"q 2,0 | vdb-query --radius 2 ip | grep -qx '{\"query\":0,\"hits\":\[{\"id\":2,\"distance\":6},{\"id\":1,\"distance\":2}\]}'"
test_expect "ties are broken by the smaller id" \
	"printf '{\"id\":9,\"vector\":[5,5]}\n{\"id\":7,\"vector\":[5,5]}\n{\"id\":8,\"vector\":[5,5]}\n' | vdb-ingest ip >/dev/null &&
	 vdb-ingest --flush ip >/dev/null &&
	 q 1,1 | vdb-query -k 3 ip | grep -qx '{\"query\":0,\"hits\":\[{\"id\":7,\"distance\":10},{\"id\":8,\"distance\":10},{\"id\":9,\"distance\":10}\]}'"
test_done
