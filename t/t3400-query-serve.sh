#!/bin/sh
# vdb-query serve: formats/wire.md on stdin/stdout — one response line per
# request, in order, ids echoed, errors as responses; answers byte for byte
# the lines the command line prints.
. "$(dirname "$0")/test-lib.sh"

new_root "$TMP/r"
vdb-meta create sift --dim 128
vdb-ingest sift "$SIFT/siftsmall_base.fvecs" >/dev/null || exit 1
vdb-meta create c --dim 2 --field year:int64 --field tag:string:8
printf '{"id":1,"vector":[0,0],"year":1999,"tag":"a"}\n{"id":2,"vector":[1,0],"year":2001,"tag":"b\\"q"}\n' |
	vdb-ingest c >/dev/null

od -An -v -t f4 -w516 "$SIFT/siftsmall_query.fvecs" | head -5 |
	awk '{ printf "["; for (i = 2; i <= NF; i++) printf "%s%s", (i > 2 ? "," : ""), $i; print "]" }' >"$TMP/vecs"
awk '{ print "{\"vector\":" $0 "}" }' "$TMP/vecs" >"$TMP/q.jsonl"
vdb-query -k 10 sift "$TMP/q.jsonl" >"$TMP/cli"

test_expect "a search answers with the command line's lines" \
	"{ printf '{\"id\":\"s1\",\"op\":\"search\",\"collection\":\"sift\",\"k\":10,\"vectors\":['; paste -sd, '$TMP/vecs' | tr -d '\\n'; echo ']}'; } |
	   vdb-query serve >'$TMP/o' &&
	 [ \$(wc -l <'$TMP/o') = 1 ] &&
	 printf '{\"id\":\"s1\",\"results\":[%s]}\n' \"\$(paste -sd, '$TMP/cli')\" | cmp - '$TMP/o'"
test_expect "requests are answered in order, ids echoed" \
	"printf '%s\n' '{\"op\":\"ping\",\"id\":1}' '{\"op\":\"count\",\"collection\":\"c\",\"id\":2}' \
	   '{\"op\":\"count\",\"collection\":\"c\",\"filter\":\"year > 2000\",\"id\":\"three\"}' '{\"op\":\"ping\"}' |
	   vdb-query serve >'$TMP/o' &&
	 printf '%s\n' '{\"id\":1,\"ok\":true}' '{\"id\":2,\"count\":2}' '{\"id\":\"three\",\"count\":1}' '{\"id\":null,\"ok\":true}' |
	   cmp - '$TMP/o'"
test_expect "fields, filter and k in a request" \
	"echo '{\"id\":5,\"op\":\"search\",\"collection\":\"c\",\"vector\":[1,0],\"k\":1,\"fields\":[\"*\"],\"filter\":\"tag like \\\"b%\\\"\"}' |
	   vdb-query serve | grep -qx '{\"id\":5,\"results\":\[{\"query\":0,\"hits\":\[{\"id\":2,\"distance\":0,\"year\":2001,\"tag\":\"b\\\\\"q\"}\]}\]}'"

# errors are responses and the session goes on
cat >"$TMP/bad" <<'EOF'
not json
{"id":1,"op":"search","collection":"nope","vector":[1,2]}
{"id":2,"op":"search","collection":"c","vector":[1,2,3]}
{"id":3,"op":"search","collection":"c","vector":[1,2],"filtr":"x"}
{"id":4,"op":"search","collection":"c","vector":[1,2],"filter":"year >"}
{"id":5,"op":"frobnicate"}
{"id":[6],"op":"ping"}
{"id":7,"op":"search","collection":"c","vector":[1,2],"k":0}
{"id":8,"op":"search","collection":"c"}
{"id":9,"op":"count","collection":"c","k":3}
{"id":10,"op":"search","collection":"c","vector":[1,2],"fields":["nope"]}
{"id":11,"op":"ping"}
EOF
vdb-query serve <"$TMP/bad" >"$TMP/o" 2>"$TMP/e"
test_expect "every bad request gets an error response, the good one after them works" \
	"[ \$(wc -l <'$TMP/o') = 12 ] && [ \$(grep -c '\"error\":{\"code\":\"' '$TMP/o') = 11 ] &&
	 tail -1 '$TMP/o' | grep -qx '{\"id\":11,\"ok\":true}'"
test_expect "error codes and messages" \
	"sed -n 1p '$TMP/o' | grep -q '^{\"id\":null,\"error\":{\"code\":\"input\",\"message\":\"column [0-9]*: ' &&
	 sed -n 2p '$TMP/o' | grep -q '^{\"id\":1,\"error\":{\"code\":\"notfound\",\"message\":\"no such collection' &&
	 sed -n 3p '$TMP/o' | grep -q '^{\"id\":2,\"error\":{\"code\":\"input\",\"message\":\"a vector has 3 values, want 2' &&
	 sed -n 4p '$TMP/o' | grep -q 'unknown key \\\\\"filtr\\\\\"' &&
	 sed -n 5p '$TMP/o' | grep -q '\"message\":\"filter: column [0-9]*: ' &&
	 sed -n 6p '$TMP/o' | grep -q 'unknown op' &&
	 sed -n 7p '$TMP/o' | grep -q '^{\"id\":null,\"error\":{\"code\":\"input\",\"message\":\"\\\\\"id\\\\\" must be a string or an integer' &&
	 sed -n 12p '$TMP/o' | grep -q ok"
test_expect "serve says nothing on stderr for request errors, exits 0 at EOF" \
	"[ ! -s '$TMP/e' ] && vdb-query serve </dev/null"
test_expect "a request line over 64 MiB: an error, then the session ends" \
	"{ head -c 70000000 /dev/zero | tr '\0' ' '; echo; echo '{\"op\":\"ping\"}'; } | vdb-query serve >'$TMP/o' 2>'$TMP/e';
	 [ \$? = 100 ] && grep -q 'request line longer than 67108864 bytes' '$TMP/o' && ! grep -q ok '$TMP/o'"
test_expect "a session sees data ingested between its requests" \
	"mkfifo '$TMP/f' && : >'$TMP/o' && { vdb-query serve <'$TMP/f' >'$TMP/o' & } &&
	 exec 4>'$TMP/f' && echo '{\"op\":\"count\",\"collection\":\"c\"}' >&4 &&
	 n=0; while [ \$(wc -l <'$TMP/o') -lt 1 ] && [ \$n -lt 100 ]; do sleep 0.05; n=\$((n + 1)); done;
	 echo '{\"id\":3,\"vector\":[5,5],\"year\":1,\"tag\":\"z\"}' | vdb-ingest c >/dev/null &&
	 echo '{\"op\":\"count\",\"collection\":\"c\"}' >&4 && exec 4>&- && wait &&
	 printf '%s\n' '{\"id\":null,\"count\":2}' '{\"id\":null,\"count\":3}' | cmp - '$TMP/o'"
# a server's threads live from one search to the next: many searches,
# single and batched, with -j 2 and -j 3 answer exactly as with one thread
t_threads() {
	for i in 1 2 3 4 5 6 7 8 9 10; do
		sed -n "$(((i - 1) % 5 + 1))p" "$TMP/vecs" | sed 's/.*/{"id":'$i',"op":"search","collection":"sift","k":20,"vector":&}/'
		printf '{"id":"b%d","op":"search","collection":"sift","k":5,"vectors":[%s]}\n' $i "$(paste -sd, "$TMP/vecs")"
		printf '{"id":"c%d","op":"count","collection":"sift","filter":"id < %d"}\n' $i $((i * 1000))
	done >"$TMP/rq"
	vdb-query -j 1 serve <"$TMP/rq" >"$TMP/o1" &&
		vdb-query -j 2 serve <"$TMP/rq" >"$TMP/o2" &&
		vdb-query -j 3 serve <"$TMP/rq" >"$TMP/o3" &&
		[ "$(grep -c '"hits":\[{' "$TMP/o1")" -eq 20 ] && [ "$(grep -c '"count":' "$TMP/o1")" -eq 10 ] && cmp "$TMP/o1" "$TMP/o2" && cmp "$TMP/o1" "$TMP/o3"
}
test_expect "serve -j 2 and -j 3 answer 30 requests as -j 1 does" t_threads

# one request's bounds: vectors, vectors x k, the response's size
t_bounds() {
	v=$(head -1 "$TMP/vecs")
	{
		printf '{"id":1,"op":"search","collection":"sift","vectors":['
		i=0
		while [ $i -lt 16384 ]; do printf '[0],'; i=$((i + 1)); done
		printf '[0]]}\n'
		printf '{"id":2,"op":"search","collection":"sift","k":300,"vectors":['
		i=0
		while [ $i -lt 14000 ]; do printf '[0],'; i=$((i + 1)); done
		printf '[0]]}\n'
		printf '{"id":3,"op":"search","collection":"sift","k":16384,"vectors":['
		i=0
		while [ $i -lt 255 ]; do printf '%s,' "$v"; i=$((i + 1)); done
		printf '%s]}\n' "$v"
		echo '{"id":4,"op":"ping"}'
	} | vdb-query serve >"$TMP/o" &&
		printf '%s\n' '{"id":1,"error":{"code":"input","message":"more than 16384 vectors in one request"}}' \
			'{"id":2,"error":{"code":"input","message":"14001 vectors x k 300: more than 4194304 hits in one request"}}' \
			'{"id":3,"error":{"code":"input","message":"response longer than 67108864 bytes: ask for fewer vectors or a smaller k"}}' \
			'{"id":4,"ok":true}' | cmp - "$TMP/o"
}
test_expect "a request past a bound gets an input error, and the session goes on" t_bounds

# serve reads plain vectors from the text itself and leaves the rest to
# jansson: an escaped key ("vect\u006fr") takes jansson's way, and both
# ways must read every number alike and give the same errors
t_fastpath() {
	for v in '[0,0]' '[-0,1e2]' '[0.5E-3,-1.5e+2]' '[12345678901234567,1]' '[ 1 , 2 ]' \
		'[3.4028234663852886e38,-1]' '[1e39,0]' '[123456789012345678901,1]' '[1,2,3]' '[]' \
		'[01,2]' '[1.,2]' '[1,2,]' '[-,2]' '["1",2]' '[[1],2]' '[1,2]]' '[1 2]'; do
		printf '{"id":1,"op":"search","collection":"c","vector":%s,"k":2}\n' "$v"
		printf '{"id":1,"op":"search","collection":"c","vect\\u006fr":%s,"k":2}\n' "$v"
		printf '{"id":1,"op":"search","collection":"c","vectors":[%s,[1,1]],"k":2}\n' "$v"
		printf '{"id":1,"op":"search","collection":"c","vect\\u006frs":[%s,[1,1]],"k":2}\n' "$v"
	done >"$TMP/rq"
	printf '%s\n' '{"id":2,"op":"search","collection":"c","vectors":[[1,1]],"k": }' \
		'{"id":3,"vector":[1,1],"op":"search","collection":"c","vector":[2,2]}' \
		'{"id":4,"op":"search","collection":"c","vector":[1,1],"vectors":[[2,2]]}' >"$TMP/rq2"
	vdb-query serve <"$TMP/rq" >"$TMP/o" && vdb-query serve <"$TMP/rq2" >"$TMP/o2" || return 1
	[ "$(wc -l <"$TMP/o")" -eq 72 ] || return 1
	# each plain request answers as its escaped twin (whose parse errors
	# are 5 columns further on)
	awk '{ sub(/column [0-9]+/, "column") }
	     NR % 2 == 1 { a = $0; next } $0 != a { print "line " NR ": " a " vs " $0; bad = 1 }
	     END { exit bad }' "$TMP/o" || return 1
	grep -c '"hits":\[{' "$TMP/o" | grep -qx 24 &&
		grep -q 'vector value 0 is not a finite float' "$TMP/o" &&
		grep -q 'too big integer' "$TMP/o" && grep -q 'a vector has 3 values, want 2' "$TMP/o" &&
		grep -q 'query 0: a vector has 0 values, want 2' "$TMP/o" &&
		sed -n 1p "$TMP/o2" | grep -q '"message":"column 63: ' &&
		sed -n 2p "$TMP/o2" | grep -q 'duplicate object key' &&
		sed -n 3p "$TMP/o2" | grep -q 'both \\"vector\\" and \\"vectors\\"'
}
test_expect "vectors read from the text and through jansson answer alike, errors too" t_fastpath
test_done
