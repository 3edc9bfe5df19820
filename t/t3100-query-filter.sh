#!/bin/sh
# Filters, property-tested: random records in sealed segments, a second
# partition and the log tail, with deletes and ids inserted again; random
# expressions over every construct of formats/filter.md; vdb-query's counts
# and hits checked against a brute-force oracle written independently of
# lib/filter.c (t/lib-oracle.py).  Malformed filters: exit 100, one line
# naming the column.  FILTER_SEED=N repeats a run; FILTER_ROWS and
# FILTER_EXPRS change its size.
. "$(dirname "$0")/test-lib.sh"

PY=/usr/bin/python3
ORACLE=$(cd "$(dirname "$0")" && pwd)/lib-oracle.py
seed=${FILTER_SEED:-3100}
rows=${FILTER_ROWS:-3000}
nexpr=${FILTER_EXPRS:-300}
echo "# seed $seed, $rows rows, $nexpr expressions (FILTER_SEED=$seed sh $0 repeats this run)"

D=$TMP/data
mkdir "$D"
if ! "$PY" "$ORACLE" gen "$D" "$seed" "$rows" "$nexpr"; then
	not_ok "lib-oracle.py gen"
	test_done
	exit 1
fi
new_root "$TMP/r"
vdb-meta create c --dim 4 --field year:int64 --field score:double --field ok:bool \
	--field tag:string:16 || exit 1

# load: the plan the oracle wrote, step by step
load() {
	while read -r op a rest; do
		case $op in
		ingest) vdb-ingest -q $rest c "$D/$a" >/dev/null ;;
		flush) vdb-ingest --flush $a $rest c >/dev/null ;;
		delete) vdb-ingest --delete c "$D/$a" >/dev/null ;;
		partition) vdb-meta partition create c "$a" ;;
		*) false ;;
		esac || { echo "plan step failed: $op $a $rest"; return 1; }
	done <"$D/plan"
}
test_expect "load: segments, a second partition, the log tail, deletes, ids again" \
	"load && [ \"\$(vdb-meta segments c | wc -l)\" -ge 3 ] &&
	 ids c | cmp - '$D/live.ids' &&
	 [ \"\$(vdb-query --count c)\" = \$(wc -l <'$D/live.ids') ]"

check() { "$PY" "$ORACLE" check "$D" "$@"; }

# One run holds three queries per expression, each with its own "filter"
# (and some their own k), and a few with none: top-k ids and distances in
# order, ties by the smaller id, and every field of every hit.
test_expect "search: top-k under $nexpr random filters equals the oracle's" \
	"vdb-query -k 10 --fields '*' c '$D/search.jsonl' >'$D/search.out' &&
	 check search '$D/search.out'"
# k larger than the collection: every matching row, in order
test_expect "search: k = 16384 returns exactly the matching rows, in order" \
	"vdb-query -k 16384 c '$D/full.jsonl' >'$D/full.out' && check full '$D/full.out'"
test_expect "search: --filter applies to queries without \"filter\", theirs replaces it" \
	"vdb-query --filter \"\$(cat '$D/global.expr')\" c '$D/global.jsonl' >'$D/global.out' &&
	 check global '$D/global.out'"
test_expect "serve: count requests, also in one partition, equal the oracle's" \
	"vdb-query serve <'$D/serve.jsonl' >'$D/serve.out' && check serve '$D/serve.out'"

tab=$(printf '\t')
cli_counts() {
	while IFS= read -r line; do
		i=${line%%"$tab"*}
		printf '%s %s\n' "$i" "$(vdb-query --count --filter "${line#*"$tab"}" c 2>&1)"
	done <"$D/cli.txt" >"$D/cli.out"
	check cli "$D/cli.out"
}
test_expect "vdb-query --count --filter equals the oracle's count" cli_counts

# ---- limits

# parens N: N '(' around ok; nots N: N '!' before ok
parens() { printf "%$1s" "" | tr ' ' '('; printf ok; printf "%$1s" "" | tr ' ' ')'; }
nots() { printf "%$1s" "" | tr ' ' '!'; printf ok; }
n_ok=$(vdb-query --count --filter ok c)
test_expect "64 levels of parentheses are allowed" \
	"[ \"\$(vdb-query --count --filter \"\$(parens 64)\" c)\" = '$n_ok' ]"
test_expect "64 nested nots are allowed" \
	"[ \"\$(vdb-query --count --filter \"\$(nots 64)\" c)\" = '$n_ok' ]"
test_expect "an expression of 65536 bytes is allowed" \
	"[ \"\$(vdb-query --count --filter \"ok\$(printf '%65534s' '')\" c)\" = '$n_ok' ]"
expect_fail "65 levels of parentheses are too deep" 100 \
	'^vdb-query: fatal: filter: column 65: .*deeper than 64' \
	vdb-query --count --filter "$(parens 65)" c
expect_fail "65 nested nots are too deep" 100 \
	'^vdb-query: fatal: filter: column 65: .*deeper than 64' \
	vdb-query --count --filter "$(nots 65)" c
expect_fail "an expression longer than 65536 bytes" 100 \
	'^vdb-query: fatal: filter: column 65537: .*longer than 65536 bytes' \
	vdb-query --count --filter "ok$(printf '%65535s' '')" c

# ---- malformed filters: exit 100, one line, the 1-based byte column
bad() {
	expect_fail "malformed: ${4:-$1}" 100 "^vdb-query: fatal: filter: column $2: .*$3" \
		vdb-query --count --filter "$1" c
}
bad "(year > 1" 10 "expected '\\)'"
bad "(year > 1 or (ok)" 18 "expected '\\)'"
bad "year > 1 and" 13 "expected a condition"
bad "year > 1 &&" 12 "expected a condition"
bad "nope > 1" 1 "unknown field 'nope'"
bad "Year > 1" 1 "unknown field 'Year'"
bad "ok and nope" 8 "unknown field"
bad "vector == 1" 1 "vector"
bad 'year == "x"' 9 "int64"
bad "score != true" 10 "double"
bad "tag == 5" 8 "string"
bad "ok == 1" 7 "bool"
bad "tag in [\"a\", 5]" 14 "string"
bad 'tag == "abc' 8 "unterminated string"
bad "tag == 'it\\'s" 8 "unterminated string"
bad 'tag == "a\q"' 10 "escape"
bad 'tag == "\u12"' 9 "hex"
bad 'tag == "\u0000"' 9 "u0000"
bad 'tag == "\ud83d\ude00"' 9 "surrogate"
bad "$(printf 'tag == "ab\377"')" 11 "not valid UTF-8" 'tag == "ab\377" (a byte that is not UTF-8)'
bad "year in [1," 12 "expected a value"
bad "year in [1 2]" 12 "expected ',' or ']'"
bad "year in [,]" 10 "expected a value"
bad "year in 1" 9 "expected '\\['"
bad "year in [1" 11 "expected ',' or ']'"
bad "tag like 5" 10 "expected a string pattern"
bad "year like '1%'" 6 "like needs a string field"
bad "tag like 'a\\\\'" 10 "lone backslash"
bad "1 < year > 2" 10 "same direction"
bad "'a' <= tag >= 'b'" 12 "same direction"
bad "1 < year == 2" 10 "do not chain"
bad "year < 1 < 2" 10 "do not chain"
bad "1 < ok < 2" 3 "bool"
bad "ok > true" 4 "bool field 'ok'"
bad "" 1 "empty"
bad "   " 1 "empty"
bad "year ==" 8 "expected a value"
bad "year == ok" 9 "expected a value"
bad "year" 5 "a comparison, 'in' or 'like'"
bad "year > 1)" 9 "unmatched '\\)'"
bad ")" 1 "expected a condition"
bad "()" 2 "expected a condition"
bad "not" 4 "expected a condition"
bad "year > 1 year < 2" 10 "expected 'and' or 'or'"
bad "year = 1" 6 "=="
bad "year > 1 & ok" 10 "&&"
bad "year > 1 | ok" 10 "\\|\\|"
bad "score == 01" 10 "leading zero"
bad "year > 1.5.2" 8 "malformed number"
bad "year > 2000abc" 8 "malformed number"
bad "year > 1e999" 8 "out of the double range"
bad "id == 9223372036854775808" 7 "out of the int64 range"
bad "id == -9223372036854775809" 7 "out of the int64 range"
bad "5 == 5" 6 "expected a field"
bad "year > 1 ok" 10 "expected 'and' or 'or'"
bad "year not like 'a'" 10 "expected 'in' after 'not'"
bad "tag == é" 8 "unexpected byte 0xC3"
bad "year # 1" 6 "unexpected character '#'"
expect_fail "a bad filter in a query's \"filter\"" 100 \
	'^vdb-query: fatal: (stdin:1: )?filter: column 7: expected a value' \
	sh -c 'echo "{\"vector\":[0,0,0,0],\"filter\":\"year >\"}" | vdb-query c'
test_expect "serve: a bad filter is an input error naming the column, and the session goes on" \
	"printf '%s\n' '{\"id\":1,\"op\":\"count\",\"collection\":\"c\",\"filter\":\"(ok\"}' \
	   '{\"id\":2,\"op\":\"count\",\"collection\":\"c\",\"filter\":\"ok\"}' |
	   vdb-query serve >'$TMP/s.out' &&
	 sed -n 1p '$TMP/s.out' | grep -q '^{\"id\":1,\"error\":{\"code\":\"input\",\"message\":\"filter: column 4: ' &&
	 [ \"\$(sed -n 2p '$TMP/s.out')\" = '{\"id\":2,\"count\":$n_ok}' ]"
test_done
