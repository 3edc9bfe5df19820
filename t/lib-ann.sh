# lib-ann.sh: recall measurements for the index tests.

# rows FILE TYPE WIDTH: one line per ivecs/fvecs record ("n v1 v2 ..."), for awk
rows() { od -An -v -t "$2" -w"$3" "$1" | awk '{$1 = $1; print}'; }

# recall RES.ivecs K GT.ivecs GTK: the mean over queries of how many of
# the ground truth's first 10 ids the result's first 10 hold, over 10
recall() {
	rows "$1" d4 $((4 + 4 * $2)) >"$TMP/recall.res"
	rows "$3" d4 $((4 + 4 * $4)) >"$TMP/recall.gt"
	paste -d'|' "$TMP/recall.res" "$TMP/recall.gt" | awk -F'|' '
	{
		na = split($1, a, " "); nb = split($2, b, " "); split("", s)
		for (i = 2; i <= 11 && i <= nb; i++) s[b[i]] = 1
		for (i = 2; i <= 11 && i <= na; i++) if (a[i] in s) n++
	}
	END { printf "%.4f\n", n / (10 * NR) }'
}

# at_least X Y: X >= Y, as decimals
at_least() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x + 0 >= y + 0) }'; }
