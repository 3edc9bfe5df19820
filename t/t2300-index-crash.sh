#!/bin/sh
# Crash safety of vdb-index: killed with SIGKILL at a random moment during
# --all and during --compact, INDEX_CRASH_TRIALS times each (10), while a
# reader queries without pause.  After each kill a rerun completes, verify
# finds no problem, and no query ever failed or returned a deleted row.
. "$(dirname "$0")/test-lib.sh"

N=${INDEX_CRASH_TRIALS:-10}
new_root "$TMP/r"
vdb-meta create c --dim 32 --field year:int64 --field tag:string:16 || exit 1
# 12 segments of 2000 rows: a build of all of them takes long enough that
# a kill lands inside it
for i in 0 1 2 3 4 5 6 7 8 9 10 11; do
	vdb-gen -f jsonl -n 2000 -d 32 -s $i -i $((i * 2000)) -y | vdb-ingest --bulk c >/dev/null || exit 1
done
seq 0 7 23999 >"$TMP/del"
vdb-ingest --delete c "$TMP/del" >/dev/null || exit 1
vdb-gen -f fvecs -n 5 -d 32 -s 77 >"$TMP/q.fvecs"

# the reader: queries in a loop until told to stop; a failed query or a
# deleted id in an answer is written to $TMP/bad
# (the runs keep the default grace period: it is what keeps a reader that
# read the catalogue before a swap from finding its objects gone)
reader() {
	n=0
	while [ ! -e "$TMP/stop" ] && [ $n -lt 100000 ]; do
		if ! vdb-query -k 20 --format fvecs c "$TMP/q.fvecs" >"$TMP/rq" 2>"$TMP/rqe"; then
			echo "query failed: $(cat "$TMP/rqe")" >>"$TMP/bad"
		fi
		grep -o '"id":[0-9]*' "$TMP/rq" | cut -d: -f2 | awk '$1 < 24000 && $1 % 7 == 0 { print "deleted id " $1 " returned" }' >>"$TMP/bad"
		n=$((n + 1))
	done
}
: >"$TMP/bad"
reader &
rpid=$!

trial() { # what: --all or --compact
	delay=$(awk -v s="$1$i" 'BEGIN { srand(length(s) * 1000 + '"$i"'); printf "%.3f", rand() * 0.6 }')
	if [ "$1" = --all ]; then
		# a new spec each time, so there is always something to build
		vdb-meta index c hnsw M=$((6 + i % 5)) efConstruction=40 || return 1
		vdb-index -j 2 --all 2>"$TMP/ie" &
	else
		# fresh small segments each time, so there is always something to merge
		vdb-gen -f jsonl -n 300 -d 32 -s $((100 + i)) -i $((100000 + i * 300)) -y | vdb-ingest --bulk c >/dev/null
		vdb-gen -f jsonl -n 300 -d 32 -s $((200 + i)) -i $((200000 + i * 300)) -y | vdb-ingest --bulk c >/dev/null
		vdb-index -j 2 --segment-bytes 2000000 --compact c 2>"$TMP/ie" &
	fi
	pid=$!
	sleep "$delay"
	kill -9 $pid 2>/dev/null && kills=$((kills + 1))
	wait $pid 2>/dev/null
	if ! vdb-index $1 $([ "$1" = --compact ] && echo --segment-bytes 2000000 c) 2>"$TMP/ie2"; then
		echo "# rerun failed: $(cat "$TMP/ie2")"
		return 1
	fi
	vdb-admin verify >"$TMP/v" 2>"$TMP/ve" || { echo "# verify: $(cat "$TMP/v")"; return 1; }
	[ "$(vdb-query --count c)" = "$expect" ] || { echo "# count $(vdb-query --count c), want $expect"; return 1; }
}

kills=0
expect=$((24000 - $(wc -l <"$TMP/del")))
ok_all=1 ok_compact=1
i=0
while [ $i -lt "$N" ]; do
	trial --all || ok_all=0
	expect=$((expect + 600))
	trial --compact || ok_compact=0
	i=$((i + 1))
done
touch "$TMP/stop"
wait $rpid
test_expect "kill -9 during --all, $N times: reruns finish, verify passes" "[ $ok_all = 1 ]"
test_expect "kill -9 during --compact, $N times: reruns finish, verify passes, no row lost" "[ $ok_compact = 1 ]"
test_expect "no query failed or returned a deleted row ($kills kills)" "[ ! -s '$TMP/bad' ] || { head -5 '$TMP/bad'; false; }"
test_expect "every segment ends up indexed" \
	"[ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM segments s WHERE NOT EXISTS (SELECT 1 FROM indexes i WHERE i.segment_object = s.object)')\" = 0 ]"
test_expect "after the grace period nothing the kills left remains" \
	"vdb-index --grace 0 --all 2>/dev/null && vdb-admin verify >/dev/null 2>'$TMP/ve' &&
	 ! grep -q 'not registered\\|never published' '$TMP/ve' &&
	 [ -z \"\$(ls '$TMP/r/objects/tmp')\" ] &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM trash')\" = 0 ]"
test_done
