#!/bin/sh
# vdb-index: usage, exit codes and error text; bad parameters, hostile
# names, a held lock, damaged segments and damaged indexes.
. "$(dirname "$0")/test-lib.sh"

MAN=$(dirname "$0")/../man/vdb-index.1
test_expect "--help prints the usage on stdout and exits 0" \
	"vdb-index --help | head -1 | grep -q '^usage: vdb-index '"
test_expect "a bad option: usage on stderr, exit 100" \
	"vdb-index --no-such 2>&1 >/dev/null | grep -q '^usage: vdb-index'; [ \$? = 0 ] &&
	 { vdb-index --no-such 2>/dev/null; [ \$? = 100 ]; }"
t_synopsis() {
	mandoc -Tascii "$MAN" | col -bx |
		sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s ' \n' '  ' >"$TMP/m"
	vdb-index --help | sed 's/^usage: //' | tr -s ' \n' '  ' >"$TMP/u"
	[ "$(sed 's/^ //;s/ $//' "$TMP/m")" = "$(sed 's/^ //;s/ $//' "$TMP/u")" ]
}
if command -v mandoc >/dev/null; then
	test_expect "the usage is the man page SYNOPSIS" t_synopsis
	test_expect "the man page passes mandoc -Tlint -Wwarning" \
		"mandoc -Tlint -Wwarning '$MAN' >'$TMP/lint' 2>&1; [ ! -s '$TMP/lint' ]"
fi

new_root "$TMP/r"
vdb-meta create c --dim 8 || exit 1
vdb-gen -f fvecs -n 2000 -d 8 | vdb-ingest --bulk --format fvecs c >/dev/null || exit 1
for a in "--all c" "--compact --type hnsw c" "" "c d" "--all --compact"; do
	test_expect "usage error: vdb-index $a" \
		"vdb-index $a 2>'$TMP/e'; [ \$? = 100 ] && grep -q '^usage: vdb-index' '$TMP/e'"
done
expect_fail "unknown type" 100 "^vdb-index: fatal: --type: 'btree' is not one of flat, hnsw, ivf_flat, ivf_sq8, ivf_pq$" \
	vdb-index --type btree c
expect_fail "unknown parameter" 100 "^vdb-index: fatal: unknown index parameter 'ef' \(M, efConstruction, nlist, m\)$" \
	vdb-index --type hnsw -p ef=3 c
expect_fail "a parameter out of range" 100 "^vdb-index: fatal: M: '1000' is not a number from 2 to 128$" \
	vdb-index --type hnsw -p M=1000 c
expect_fail "a parameter of another type" 100 "^vdb-index: fatal: nlist is a parameter of the IVF types$" \
	vdb-index --type hnsw -p nlist=10 c
expect_fail "m must divide the dimension" 100 "^vdb-index: fatal: m=3 does not divide the dimension 8$" \
	vdb-index --type ivf_pq -p m=3 c
expect_fail "not NAME=VALUE" 100 "^vdb-index: fatal: index parameter 'M' is not NAME=VALUE$" \
	vdb-index --type hnsw -p M c
expect_fail "-p without --type" 100 "^vdb-index: fatal: -p needs --type$" vdb-index -p M=4 c
expect_fail "-j 0" 100 "^vdb-index: fatal: --threads: '0' is not a number from 1 to 256$" vdb-index -j 0 --all
test_expect "a refused spec leaves the old one" "[ \"\$(vdb-meta index c)\" = flat ]"
for name in "../x" "a'b" "x; DROP TABLE segments" "c\"" ""; do
	expect_fail "no such collection: '$name'" 100 "^vdb-index: fatal: no such collection: " vdb-index "$name"
done
test_expect "the catalogue survived the hostile names" "[ \"\$(vdb-meta segments c | wc -l)\" = 1 ]"

# the lock: a second run fails at once (111), or waits with --wait
if command -v flock >/dev/null; then
	flock "$TMP/r/index.lock" sleep 3 &
	fpid=$!
	sleep 0.5
	expect_fail "a held lock: exit 111" 111 "^vdb-index: fatal: $TMP/r/index.lock: another vdb-index is running \(--wait waits for it\)$" \
		vdb-index --all
	test_expect "--wait waits for the lock" "vdb-index --wait --type hnsw c 2>/dev/null && vdb-meta index c | grep -q hnsw"
	wait $fpid
fi
test_expect "the index was built and verify is clean" \
	"[ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM indexes')\" = 1 ] && vdb-admin verify >/dev/null 2>&1"

# damage: a flipped byte in the index object
obj=$(sqlite3 "$TMP/r/meta.db" 'SELECT object FROM indexes')
f=$TMP/r/objects/$(echo "$obj" | cut -c1-2)/$obj
vdb-gen -f fvecs -n 1 -d 8 -s 3 >"$TMP/q.fvecs"
vdb-query -k 5 --format fvecs c "$TMP/q.fvecs" >"$TMP/good" || exit 1
chmod u+w "$f"
cp "$f" "$TMP/saved"
printf '\377' | dd of="$f" bs=1 seek=300 conv=notrunc 2>/dev/null
rm -rf "$TMP/r/cache/verified"
expect_fail "a damaged index: the query fails, exit 100" 100 "^vdb-query: fatal: object [0-9a-f]{64}: index $obj: section [0-9]+ checksum mismatch$" \
	vdb-query -k 5 --format fvecs c "$TMP/q.fvecs"
test_expect "verify reports it, exit 1" \
	"vdb-admin verify >'$TMP/v' 2>/dev/null; [ \$? = 1 ] && grep -q \"^index $obj (segment .* of c): section [0-9]* checksum mismatch\" '$TMP/v'"
test_expect "--exact still answers" "vdb-query --exact -k 5 --format fvecs c '$TMP/q.fvecs' | cmp - '$TMP/good'"
cp "$TMP/saved" "$f"
truncate -s 100 "$f"
expect_fail "a truncated index: exit 100" 100 "too short to be an index" \
	vdb-query -k 5 --format fvecs c "$TMP/q.fvecs"
cp "$TMP/saved" "$f"
test_expect "restored, it answers again" "vdb-query -k 5 --format fvecs c '$TMP/q.fvecs' | cmp - '$TMP/good'"

# a damaged segment is never indexed
seg=$(vdb-meta segments c | cut -f5)
sf=$TMP/r/objects/$(echo "$seg" | cut -c1-2)/$seg
chmod u+w "$sf"
printf '\377' | dd of="$sf" bs=1 seek=100 conv=notrunc 2>/dev/null
vdb-meta index c ivf_flat
expect_fail "a damaged segment: no index, exit 100" 100 "^vdb-index: error: segment $seg: block '_vector' at offset 64: checksum mismatch$" \
	vdb-index c
test_expect "nothing was registered for it" \
	"[ \"\$(sqlite3 '$TMP/r/meta.db' \"SELECT count(*) FROM indexes WHERE type = 'ivf_flat'\")\" = 0 ]"
vdb-meta create after --dim 8 && vdb-gen -f fvecs -n 500 -d 8 | vdb-ingest --bulk --format fvecs after >/dev/null &&
	vdb-meta index after hnsw || exit 1
test_expect "--all goes on past it: the next collection is indexed, the trash emptied, exit 100" \
	"sqlite3 '$TMP/r/meta.db' \"INSERT INTO trash (object, since) VALUES ('$(printf t | sha256sum | cut -c1-64)', 0)\" &&
	 vdb-index --grace 0 --all 2>'$TMP/e'; [ \$? = 100 ] &&
	 grep -q '^vdb-index: error: segment $seg: ' '$TMP/e' &&
	 grep -q '^vdb-index: 1 indexes built, ' '$TMP/e' &&
	 [ \"\$(sqlite3 '$TMP/r/meta.db' 'SELECT count(*) FROM trash')\" = 0 ]"

# vdb-query's knobs
test_expect "--exact with --ef is a usage error" \
	"vdb-query --exact --ef 5 c 2>'$TMP/e'; [ \$? = 100 ] && grep -q '^usage: vdb-query' '$TMP/e'"
expect_fail "--ef 0" 100 "^vdb-query: fatal: --ef: 0 candidates$" vdb-query --ef 0 c
expect_fail "--nprobe too large" 100 "^vdb-query: fatal: --nprobe: bad number '70000' \(at most 65536\)$" vdb-query --nprobe 70000 c
test_expect "serve: a bad knob is an error answer" \
	"echo '{\"op\":\"search\",\"collection\":\"c\",\"vector\":[1,2,3,4,5,6,7,8],\"k\":1,\"ef\":0}' | vdb-query serve |
	 grep -q '\"ef\\\\\" must be an integer 1..65536'"
test_expect "serve: exact with a knob is an error answer" \
	"echo '{\"op\":\"search\",\"collection\":\"c\",\"vector\":[1,2,3,4,5,6,7,8],\"k\":1,\"exact\":true,\"ef\":8}' | vdb-query serve |
	 grep -q 'cannot go with'"
test_done
