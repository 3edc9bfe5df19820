# test-lib.sh: TAP for t/tNNNN-*.sh, in the manner of git's t/test-lib.sh.
# A test script sources this, calls the helpers, and ends with test_done.
set -u
: "${BUILD:=$(cd "$(dirname "$0")/.." && pwd)/build}"
BIN=$BUILD/bin
PATH=$BIN:$PATH
export PATH
SIFT=${SIFT:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data/siftsmall}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vdb-test.XXXXXX")
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
unset VDB_ROOT
test_count=0
test_failed=0

ok() { test_count=$((test_count + 1)); echo "ok $test_count - $1"; }
not_ok() {
	test_count=$((test_count + 1))
	test_failed=$((test_failed + 1))
	echo "not ok $test_count - $1"
	if [ -s "$TMP/out" ]; then sed 's/^/#  out: /' "$TMP/out" | head -20; fi
	if [ -s "$TMP/err" ]; then sed 's/^/#  err: /' "$TMP/err" | head -20; fi
}

# test_expect DESC SCRIPT: passes when SCRIPT (eval'd) exits 0
test_expect() {
	: >"$TMP/out"
	: >"$TMP/err"
	if (eval "$2") >"$TMP/out" 2>"$TMP/err"; then ok "$1"; else not_ok "$1"; fi
}

# run CMD...: run it, keep stdout in $TMP/out, stderr in $TMP/err, status in $rc
run() {
	"$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
}

# expect_fail DESC STATUS PATTERN CMD...: CMD exits STATUS and its stderr
# is exactly one line matching the grep -E PATTERN
expect_fail() {
	desc=$1 want=$2 pat=$3
	shift 3
	run "$@"
	lines=$(wc -l <"$TMP/err")
	if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ] && grep -Eq -- "$pat" "$TMP/err"; then
		ok "$desc"
	else
		echo "# want status $want and one line matching: $pat; got status $rc, $lines lines"
		not_ok "$desc"
	fi
}

# new_root DIR: a fresh root, exported as VDB_ROOT
new_root() {
	rm -rf "$1"
	vdb-admin init "$1" || exit 1
	VDB_ROOT=$1
	export VDB_ROOT
}

# ids: the ids of a collection's live rows, sorted numerically
ids() {
	vdb-admin dump "$1" | sed 's/^{"id":\(-\{0,1\}[0-9]*\),.*/\1/' | sort -n
}

test_done() {
	echo "1..$test_count"
	[ "$test_failed" -eq 0 ]
}
