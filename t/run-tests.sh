#!/bin/sh
# run-tests.sh: every t/tNNNN-*.sh, TAP through, then one closing line.
dir=$(dirname "$0")
pass=0 fail=0 bad=""
for t in "$dir"/t[0-9][0-9][0-9][0-9]-*.sh; do
	echo "# $t"
	out=$(sh "$t" 2>&1)
	status=$?
	echo "$out"
	p=$(printf '%s\n' "$out" | grep -c '^ok ')
	f=$(printf '%s\n' "$out" | grep -c '^not ok ')
	pass=$((pass + p))
	fail=$((fail + f))
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		fail=$((fail + 1))
		echo "not ok - $t exited $status"
	fi
	[ "$status" -ne 0 ] && bad="$bad $t"
done
[ -n "$bad" ] && echo "# failed:$bad"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
