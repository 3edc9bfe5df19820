#!/bin/sh
# run-unit.sh: the Criterion unit test binaries given as arguments.
status=0
for b in "$@"; do
	"$b" --jobs 1 || status=1
done
exit $status
