#!/bin/sh
# Usage, --help, exit codes, and root selection for every program.
. "$(dirname "$0")/test-lib.sh"

for p in vdb-admin vdb-meta vdb-ingest; do
	test_expect "$p --help prints usage on stdout, exits 0" \
		"$p --help | grep -q '^usage: $p'"
	test_expect "$p with a bad option: usage on stderr, exit 100" \
		"$p --no-such-option 2>&1 >/dev/null | grep -q '^usage: $p'; [ \$? = 0 ] &&
		 { $p --no-such-option 2>/dev/null; [ \$? = 100 ]; }"
done

expect_fail "no root given: exit 100" 100 "vdb-meta: fatal: no root: give -d ROOT or set VDB_ROOT" \
	vdb-meta list
mkdir "$TMP/plain"
expect_fail "a directory that is not a root" 100 "not a vdb root" vdb-meta -d "$TMP/plain" list
echo hello >"$TMP/plain/file"
expect_fail "init refuses a non-empty directory" 100 "not empty and not a vdb root" \
	vdb-admin init "$TMP/plain"
test_expect "the refused directory is untouched" \
	"[ \"\$(ls '$TMP/plain')\" = file ]"
test_expect "init creates the layout" \
	"vdb-admin init '$TMP/r' && test -f '$TMP/r/meta.db' && test -d '$TMP/r/log' &&
	 test -d '$TMP/r/objects' && test -d '$TMP/r/cache'"
test_expect "init again on a root is harmless" \
	"vdb-admin init '$TMP/r' 2>&1 | grep -q 'already a vdb root'"
test_expect "VDB_ROOT selects the root" "VDB_ROOT='$TMP/r' vdb-meta list"
test_expect "-d wins over VDB_ROOT" \
	"VDB_ROOT='$TMP/plain' vdb-meta -d '$TMP/r' list"
sqlite3 "$TMP/other.db" 'CREATE TABLE t(x); PRAGMA application_id = 42;'
mkdir "$TMP/fake" && cp "$TMP/other.db" "$TMP/fake/meta.db"
expect_fail "a foreign meta.db is refused" 100 "not a vdb catalogue" vdb-meta -d "$TMP/fake" list
expect_fail "init refuses a root with a foreign meta.db" 100 "not a vdb catalogue" \
	vdb-admin init "$TMP/fake"
test_done
