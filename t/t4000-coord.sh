#!/bin/sh
# vdb-coord: usage, listening, relaying in order, the two worker modes,
# timeouts, dead workers, limits, reload, shutdown, hostile clients and
# coord's memory with the stand-in worker of t/lib-coord.sh; then
# vdb-query serve itself: answers byte for byte as served directly, a
# worker killed mid-request, and 200 clients for COORD_LOAD_SECONDS
# (default 30) seconds in each worker mode.
. "$(dirname "$0")/test-lib.sh"
. "$(dirname "$0")/lib-coord.sh"

MAN=$(cd "$(dirname "$0")/.." && pwd)/man/vdb-coord.8
new_root "$TMP/r"
R=$TMP/r
S=$TMP/a.sock
W="exec $STANDIN"
: >"$TMP/file"
# kB of a server's resident memory (VmRSS) or its peak (VmHWM)
mem() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$(coord_pid "$1")/status"; }
# under ASan, freed memory is held in a quarantine of 256 MB: for a test
# that measures coord's memory (test_expect runs each in a subshell), let
# it go as malloc would
no_quarantine() {
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0
	export ASAN_OPTIONS
}

# --- usage and start-up errors: status 100 and one line
expect_fail "no root" 100 '^vdb-coord: fatal: no root: give -d ROOT or set VDB_ROOT$' \
	env -u VDB_ROOT vdb-coord --listen "unix:$S"
expect_fail "a root that is not a directory" 100 "^vdb-coord: fatal: $TMP/file: not a directory$" \
	vdb-coord -d "$TMP/file" --listen "unix:$S"
expect_fail "a root that is not there" 100 "^vdb-coord: fatal: $TMP/nope: No such file or directory$" \
	vdb-coord -d "$TMP/nope" --listen "unix:$S"
expect_fail "nothing to listen on" 100 \
	"^vdb-coord: fatal: nothing to listen on: give --listen or 'listen' in the config$" vdb-coord
expect_fail "an address of an unknown kind" 100 \
	"^vdb-coord: fatal: --listen: 'udp:1.2.3.4:5': want unix:PATH or tcp:HOST:PORT$" \
	vdb-coord --listen udp:1.2.3.4:5
expect_fail "a tcp address without a port" 100 \
	"^vdb-coord: fatal: --listen: 'tcp:localhost': want tcp:HOST:PORT$" vdb-coord --listen tcp:localhost
expect_fail "a socket path too long" 100 "^vdb-coord: fatal: --listen: 'unix:/x+': socket path longer than 107 bytes$" \
	vdb-coord --listen "unix:/$(printf '%0200d' 0 | tr 0 x)"
expect_fail "bad --workers" 100 "^vdb-coord: fatal: --workers: 'many' is not a number from 0 to 1024$" \
	vdb-coord --listen "unix:$S" --workers many
expect_fail "bad --max-conns" 100 "^vdb-coord: fatal: --max-conns: '0' is not a number from 1 to 65536$" \
	vdb-coord --listen "unix:$S" --max-conns 0
expect_fail "bad --timeout" 100 \
	"^vdb-coord: fatal: --timeout: '-1' is not a number of seconds from 0 to 86400$" \
	vdb-coord --listen "unix:$S" --timeout -1
expect_fail "bad --idle-timeout" 100 \
	"^vdb-coord: fatal: --idle-timeout: 'soon' is not a number of seconds from 0 to 86400$" \
	vdb-coord --listen "unix:$S" --idle-timeout soon
expect_fail "empty --worker" 100 "^vdb-coord: fatal: --worker: empty command$" \
	vdb-coord --listen "unix:$S" --worker ''
printf '# comment\n\nlisten unix:%s\nwokers 2\n' "$S" >"$TMP/bad1.conf"
expect_fail "config: an unknown key names file and line" 100 \
	"^vdb-coord: fatal: $TMP/bad1.conf:4: unknown key 'wokers'$" vdb-coord --config "$TMP/bad1.conf"
printf 'timeout 1\ntimeout 2\n' >"$TMP/bad2.conf"
expect_fail "config: a key twice" 100 "^vdb-coord: fatal: $TMP/bad2.conf:2: timeout: given twice$" \
	vdb-coord --config "$TMP/bad2.conf" --listen "unix:$S"
printf '  syslog   maybe  \n' >"$TMP/bad3.conf"
expect_fail "config: a bad value" 100 "^vdb-coord: fatal: $TMP/bad3.conf:1: syslog: 'maybe' is not yes or no$" \
	vdb-coord --config "$TMP/bad3.conf" --listen "unix:$S"
printf 'workers\n' >"$TMP/bad4.conf"
expect_fail "config: a key without a value" 100 "^vdb-coord: fatal: $TMP/bad4.conf:1: workers: no value$" \
	vdb-coord --config "$TMP/bad4.conf" --listen "unix:$S"
expect_fail "config: no such file" 100 "^vdb-coord: fatal: $TMP/nope.conf: No such file or directory$" \
	vdb-coord --config "$TMP/nope.conf" --listen "unix:$S"
t_usage_unknown() {
	vdb-coord --frob 2>"$TMP/u"
	[ $? -eq 100 ] && grep -q "unrecognized option '--frob'" "$TMP/u" && grep -q '^usage: vdb-coord ' "$TMP/u"
}
test_expect "an unknown option names itself, prints the usage and exits 100" t_usage_unknown
t_usage_operand() {
	vdb-coord --listen "unix:$S" extra 2>"$TMP/u"
	[ $? -eq 100 ] && head -1 "$TMP/u" | grep -q '^usage: vdb-coord '
}
test_expect "an operand is a usage error" t_usage_operand
test_expect "--help prints the usage on stdout and exits 0" \
	"vdb-coord --help >'$TMP/h' && head -1 '$TMP/h' | grep -q '^usage: vdb-coord ' && [ ! -e '$S' ]"
t_synopsis() {
	mandoc -Tascii "$MAN" | col -bx |
		sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s ' \n' '  ' >"$TMP/m"
	vdb-coord --help | sed 's/^usage: //' | tr -s ' \n' '  ' >"$TMP/u"
	echo "# man:   $(cat "$TMP/m")"
	echo "# usage: $(cat "$TMP/u")"
	[ "$(sed 's/^ //;s/ $//' "$TMP/m")" = "$(sed 's/^ //;s/ $//' "$TMP/u")" ]
}
if command -v mandoc >/dev/null; then
	test_expect "the usage is the man page SYNOPSIS" t_synopsis
	test_expect "the man page passes mandoc -Tlint -Wwarning" \
		"mandoc -Tlint -Wwarning '$MAN' >'$TMP/lint' 2>&1; [ ! -s '$TMP/lint' ]"
else
	test_skip "mandoc not installed"
	test_skip "mandoc not installed"
fi

# --- server a: unix and tcp, a worker per connection, 2 s timeout
coord_start a -d "$R" --listen "unix:$S" --listen tcp:127.0.0.1:0 --timeout 2 --worker "$W" ||
	echo "# server a did not start: $(cat "$TMP/a.log")"
T=tcp:127.0.0.1:$(coord_port a)
test_expect "it logs start and each address, with the real port for port 0" \
	"grep -q 'vdb-coord: start: pid [0-9]*, root $R, a worker per connection, timeout 2s, max-conns 256' '$TMP/a.log' &&
	 grep -q 'vdb-coord: listening on unix:$S$' '$TMP/a.log' &&
	 grep -Eq 'vdb-coord: listening on tcp:127.0.0.1:[1-9][0-9]*$' '$TMP/a.log'"
test_expect "the socket file is a socket, no access for others" \
	"[ -S '$S' ] && ls -l '$S' | cut -c8-10 | grep -qx -- '---'"
test_expect "ping over the unix socket" \
	"echo '{\"op\":\"ping\",\"id\":1}' | talk 'unix:$S' >'$TMP/o' && [ \"\$(cat '$TMP/o')\" = '{\"id\":1,\"ok\":true}' ]"
test_expect "ping over tcp" \
	"echo '{\"op\":\"ping\",\"id\":\"t\"}' | talk '$T' >'$TMP/o' && [ \"\$(cat '$TMP/o')\" = '{\"id\":\"t\",\"ok\":true}' ]"
t_reqlog() {
	wait_for "$TMP/a.log" 'id="t" op=ping' &&
		grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z vdb-coord: conn=[0-9]+ peer=unix:uid=[0-9]+ id=1 op=ping status=ok ms=[0-9]+\.[0-9]{3} bytes=19$' "$TMP/a.log" &&
		grep -Eq ' vdb-coord: conn=[0-9]+ peer=127\.0\.0\.1:[0-9]+ id="t" op=ping status=ok ms=[0-9.]+ bytes=21$' "$TMP/a.log"
}
test_expect "one log line per request: time, connection, peer, id, op, status, ms, bytes" t_reqlog
t_pipeline() {
	i=1
	while [ $i -le 300 ]; do
		printf '{"op":"search","id":%d,"collection":"c"}\n' $i
		i=$((i + 1))
	done >"$TMP/req"
	talk "unix:$S" <"$TMP/req" >"$TMP/resp" &&
		awk '$0 != "{\"id\":" NR ",\"results\":[]}" { exit 1 } END { exit NR != 300 }' "$TMP/resp"
}
test_expect "300 pipelined requests come back in order" t_pipeline
t_framing() {
	printf '{"op":"ping","id":1}\r\n\n \t\r\n{"op":"slow","id":2}\n{"op":"ping","id":3}' | talk "unix:$S" >"$TMP/o" &&
		printf '{"id":1,"ok":true}\n{"id":2,"results":[]}\n{"id":3,"ok":true}\n' | cmp -s - "$TMP/o"
}
test_expect "CR LF, empty and blank lines, a last line without newline; a slow one keeps its place" t_framing
t_perconn() {
	printf '{"op":"pid","id":1}\n{"op":"pid","id":2}\n' | talk "unix:$S" >"$TMP/p1" &&
		printf '{"op":"pid","id":1}\n' | talk "$T" >"$TMP/p2" || return 1
	p1a=$(sed -n '1s/.*"pid":\([0-9]*\)}$/\1/p' "$TMP/p1")
	p1b=$(sed -n '2s/.*"pid":\([0-9]*\)}$/\1/p' "$TMP/p1")
	p2=$(sed -n '1s/.*"pid":\([0-9]*\)}$/\1/p' "$TMP/p2")
	[ -n "$p1a" ] && [ "$p1a" = "$p1b" ] && [ -n "$p2" ] && [ "$p1a" != "$p2" ] &&
		wait_for "$TMP/a.log" "worker pid=$p1a exited with status 0 \(conn=[0-9]+, 2 served\)$"
}
test_expect "a worker per connection, which exits (0) when the connection closes, logged with it" t_perconn
t_fds() {
	echo '{"op":"fds","id":1}' | talk "unix:$S" >"$TMP/o" &&
		[ "$(cat "$TMP/o")" = "{\"id\":1,\"fds\":\"0 1 2 \",\"root\":\"$R\"}" ]
}
test_expect "a worker has stdin, stdout, stderr only, and the root in VDB_ROOT" t_fds 3>/dev/null 9>/dev/null
t_timeout() {
	printf '{"op":"sleep","id":"s1"}\n{"op":"ping","id":2}\n' | talk "unix:$S" >"$TMP/o" &&
		printf '%s\n' '{"id":"s1","error":{"code":"timeout","message":"no response within 2 s; worker killed"}}' \
			'{"id":2,"ok":true}' | cmp -s - "$TMP/o"
}
test_expect "a request past --timeout: timeout error, and the next one is served" t_timeout
t_timeout_group() {
	pid=$(sed -n 's/.*worker pid=\([0-9]*\) killed: request timed out$/\1/p' "$TMP/a.log" | tail -1)
	[ -n "$pid" ] && group_gone "$pid" && wait_for "$TMP/a.log" "worker pid=$pid killed by signal 9"
}
test_expect "the timed-out worker is killed with everything it started" t_timeout_group
t_die() {
	printf '{"op":"die","id":7}\n{"op":"ping","id":8}\n' | talk "unix:$S" >"$TMP/o" &&
		printf '%s\n' '{"id":7,"error":{"code":"worker","message":"worker exited with status 3"}}' \
			'{"id":8,"ok":true}' | cmp -s - "$TMP/o"
}
test_expect "a worker that exits mid-request: worker error, the next request is served" t_die
t_kill9() {
	rm -f "$TMP/fifo" "$TMP/o" && mkfifo "$TMP/fifo" || return 1
	talk "unix:$S" <"$TMP/fifo" >"$TMP/o" &
	tp=$!
	exec 3>"$TMP/fifo"
	printf '{"op":"pid","id":1}\n' >&3
	wait_for "$TMP/o" '"pid"' || return 1
	wpid=$(sed -n 's/.*"pid":\([0-9]*\)}$/\1/p' "$TMP/o")
	printf '{"op":"sleep","id":2}\n' >&3
	sleep 0.3
	kill -9 "$wpid"
	printf '{"op":"ping","id":3}\n' >&3
	exec 3>&-
	wait $tp
	[ "$(sed -n 2p "$TMP/o")" = '{"id":2,"error":{"code":"worker","message":"worker killed by signal 9"}}' ] &&
		[ "$(sed -n 3p "$TMP/o")" = '{"id":3,"ok":true}' ] && group_gone "$wpid"
}
test_expect "a worker killed (-9) mid-request: worker error, the next request is served" t_kill9
t_gone() {
	rm -f "$TMP/fifo" "$TMP/o" && mkfifo "$TMP/fifo" || return 1
	talk "unix:$S" <"$TMP/fifo" >"$TMP/o" &
	tp=$!
	exec 3>"$TMP/fifo"
	# the worker answers, then closes its socket and lives on
	printf '{"op":"quit","id":1}\n' >&3
	wait_for "$TMP/o" '"ok"' || return 1
	# coord stopped, so that it sees the worker's EOF and the next
	# request in the same poll pass
	kill -STOP "$(coord_pid a)"
	sleep 1
	printf '{"op":"ping","id":2}\n' >&3
	sleep 0.3
	kill -CONT "$(coord_pid a)"
	exec 3>&-
	wait $tp
	printf '%s\n' '{"id":1,"ok":true}' '{"id":2,"ok":true}' | cmp -s - "$TMP/o"
}
test_expect "a worker whose output ended as a request came in does not get it" t_gone
t_garbage() {
	head -c 300000 /dev/urandom | talk "unix:$S" >/dev/null
	printf '\0\0\0\n\377\376{\n{"id":\n{"id":"\\\n[[[[[[[[[[\n{"id":[[[[[[[[[[[[[}\n' | talk "unix:$S" >/dev/null
	head -c 1000000 /dev/zero | tr '\0' '[' | talk "unix:$S" >/dev/null
	kill -0 "$(coord_pid a)" && echo '{"op":"ping","id":1}' | talk "unix:$S" >"$TMP/o" &&
		[ "$(cat "$TMP/o")" = '{"id":1,"ok":true}' ]
}
test_expect "binary garbage and broken JSON do not hurt it" t_garbage
t_noread() {
	no_quarantine
	coord_start n -d "$R" --listen "unix:$TMP/n.sock" --timeout 2 --worker "$W" || return 1
	before=$(mem n VmRSS)
	# socat -u writes requests and never reads a response
	yes '{"op":"ping","id":1}' | head -c 100000000 | timeout 4 socat -u - "UNIX-CONNECT:$TMP/n.sock"
	after=$(mem n VmRSS)
	echo "# RSS before $before kB, after $after kB"
	wait_for "$TMP/n.log" 'closed: (hangup|Connection reset|Broken pipe)'
	r=$?
	coord_stop n
	[ $((after - before)) -lt 16384 ] && [ $r = 0 ]
}
test_expect "a client that never reads does not make it buffer without bound" t_noread
t_flood() {
	rm -f "$TMP/fifo" && mkfifo "$TMP/fifo" || return 1
	n=$(grep -c ' closed: ' "$TMP/a.log")
	# socat itself, to be killed
	socat - "UNIX-CONNECT:$S" <"$TMP/fifo" >/dev/null &
	tp=$!
	exec 3>"$TMP/fifo"
	# 400 kB of tiny requests behind one in flight that is not answered
	printf '{"op":"sleep","id":1}\n' >&3
	yes 1 | head -n 200000 >&3 &
	yp=$!
	exec 3>&-
	sleep 1
	kill $tp
	wait $tp
	wait $yp # ended by SIGPIPE
	wait_for "$TMP/a.log" ' closed: ' $((n + 1)) || return 1
	line=$(grep ' closed: ' "$TMP/a.log" | tail -1)
	echo "# $line"
	reqs=$(echo "$line" | sed -n 's/.* (\([0-9]*\) requests, .*/\1/p')
	[ -n "$reqs" ] && [ "$reqs" -le 65 ]
}
test_expect "pipelined requests are read ahead 64 at most, however many one read brings" t_flood
t_toolong() {
	{
		printf '{"op":"ping","id":1}\n'
		head -c 68157440 /dev/zero | tr '\0' a
	} | talk "unix:$S" >"$TMP/o" &&
		printf '%s\n' '{"id":1,"ok":true}' \
			'{"id":null,"error":{"code":"input","message":"request line longer than 67108864 bytes"}}' |
		cmp -s - "$TMP/o" &&
		echo '{"op":"ping","id":2}' | talk "unix:$S" >"$TMP/o" && [ "$(cat "$TMP/o")" = '{"id":2,"ok":true}' ]
}
test_expect "65 MiB without a newline: input error, connection closed, server up" t_toolong
t_vanish() {
	printf '{"op":"slow","id":"v"}\n' | socat -t 0 - "UNIX-CONNECT:$S"
	wait_for "$TMP/a.log" 'killed: its connection closed' &&
		wait_for "$TMP/a.log" 'id="v" op=slow status=worker' &&
		echo '{"op":"ping","id":1}' | talk "unix:$S" >"$TMP/o" && [ "$(cat "$TMP/o")" = '{"id":1,"ok":true}' ]
}
test_expect "a client gone mid-request: its worker is killed, the answer dropped" t_vanish
expect_fail "a live unix socket is not taken over (111)" 111 \
	"^vdb-coord: fatal: unix:$S: a server is listening there$" vdb-coord -d "$R" --listen "unix:$S"
expect_fail "a tcp address in use (111)" 111 "^vdb-coord: fatal: $T: bind: Address already in use$" \
	vdb-coord -d "$R" --listen "$T"
expect_fail "a file that is not a socket (111)" 111 "^vdb-coord: fatal: unix:$TMP/file: exists and is not a socket$" \
	vdb-coord -d "$R" --listen "unix:$TMP/file"
t_term() {
	rm -f "$TMP/fifo" "$TMP/o" && mkfifo "$TMP/fifo" || return 1
	talk "unix:$S" <"$TMP/fifo" >"$TMP/o" &
	tp=$!
	exec 3>"$TMP/fifo"
	printf '{"op":"pid","id":0}\n' >&3
	wait_for "$TMP/o" '"pid"' || return 1
	wpid=$(sed -n 's/.*"pid":\([0-9]*\)}$/\1/p' "$TMP/o")
	printf '{"op":"slow","id":1}\n{"op":"ping","id":2}\n{"op":"ping","id":3}\n' >&3
	sleep 0.2
	coord_stop a
	exec 3>&-
	wait $tp
	printf '%s\n' '{"id":0,"pid":'"$wpid"'}' '{"id":1,"results":[]}' \
		'{"id":2,"error":{"code":"shutdown","message":"vdb-coord is shutting down"}}' \
		'{"id":3,"error":{"code":"shutdown","message":"vdb-coord is shutting down"}}' | cmp -s - "$TMP/o" &&
		[ "$rc" = 0 ] && [ ! -e "$S" ] && group_gone "$wpid" && grep -q 'shutdown: done' "$TMP/a.log"
}
test_expect "SIGTERM: the request in flight finishes, queued ones get shutdown, socket removed, exit 0" t_term
t_stale() {
	coord_start a2 -d "$R" --listen "unix:$S" --worker "$W" && coord_stop a2 KILL &&
		[ -S "$S" ] && coord_start a3 -d "$R" --listen "unix:$S" --worker "$W" &&
		echo '{"op":"ping","id":1}' | talk "unix:$S" >"$TMP/o" && [ "$(cat "$TMP/o")" = '{"id":1,"ok":true}' ] &&
		coord_stop a3 && [ "$rc" = 0 ]
}
test_expect "a stale socket file (nothing answers) is replaced" t_stale

# --- server b: a pool of 2
B=unix:$TMP/b.sock
coord_start b -d "$R" --listen "$B" --workers 2 --worker "$W"
t_pool() {
	wait_for "$TMP/b.log" 'started \(slot 1\)' || return 1
	for i in 1 2 3 4 5 6 7 8; do printf '{"op":"pid","id":%d}\n' $i | talk "$B"; done >"$TMP/pp"
	sed -n 's/.*worker pid=\([0-9]*\) started (slot.*/\1/p' "$TMP/b.log" | sort >"$TMP/started"
	sed 's/.*"pid":\([0-9]*\)}$/\1/' "$TMP/pp" | sort -u >"$TMP/used"
	[ "$(wc -l <"$TMP/pp")" -eq 8 ] && [ "$(wc -l <"$TMP/started")" -eq 2 ] &&
		[ -z "$(comm -13 "$TMP/started" "$TMP/used")" ] && ! grep -q exited "$TMP/b.log"
}
test_expect "pool mode: connections share 2 long-lived workers" t_pool
t_pool_queue() {
	t0=$(date +%s%N)
	for i in 1 2 3 4 5 6; do
		(printf '{"op":"slow","id":%d}\n' $i | talk "$B" >"$TMP/q$i") &
	done
	wait
	t1=$(date +%s%N)
	for i in 1 2 3 4 5 6; do [ "$(cat "$TMP/q$i")" = "{\"id\":$i,\"results\":[]}" ] || return 1; done
	echo "# 6 slow requests on 2 workers: $(((t1 - t0) / 1000000)) ms"
	[ $((t1 - t0)) -ge 1400000000 ]
}
test_expect "a busy pool queues: 6 slow requests, 2 workers, all answered" t_pool_queue
t_pool_vanish() {
	printf '{"op":"slow","id":"pv"}\n' | socat -t 0 - "UNIX-CONNECT:$TMP/b.sock"
	wait_for "$TMP/b.log" 'id="pv" op=slow status=ok' && ! grep -q killed "$TMP/b.log"
}
test_expect "pool: a client gone mid-request kills nothing" t_pool_vanish
t_pool_restart() {
	pid=$(sed -n 's/.*worker pid=\([0-9]*\) started (slot 0)$/\1/p' "$TMP/b.log" | tail -1)
	kill -9 "$pid" && wait_for "$TMP/b.log" "worker pid=$pid killed by signal 9 \(slot 0" &&
		wait_for "$TMP/b.log" 'worker slot 0: restarting in 100 ms' &&
		wait_for "$TMP/b.log" 'started \(slot 0\)' 2 &&
		for i in 1 2 3 4; do echo '{"op":"ping","id":1}' | talk "$B"; done >"$TMP/o" &&
		[ "$(grep -c '^{"id":1,"ok":true}$' "$TMP/o")" -eq 4 ]
}
test_expect "pool: a dead worker is restarted after 0.1 s" t_pool_restart
t_pool_timeout() {
	printf '{"op":"sleep","id":1}\n' | talk "$B" >/dev/null &
	tp=$!
	kill -HUP "$(coord_pid b)"
	wait $tp
	echo '{"op":"ping","id":2}' | talk "$B" >"$TMP/o" && [ "$(cat "$TMP/o")" = '{"id":2,"ok":true}' ]
}
test_expect "pool: SIGHUP without --config changes nothing" t_pool_timeout
test_expect "pool: SIGTERM stops the workers and exits 0" \
	"coord_stop b && [ \"\$rc\" = 0 ] && [ \$(grep -c 'killed by signal 15 (slot\|exited with status 0 (slot' '$TMP/b.log') -ge 2 ] && [ ! -e '$TMP/b.sock' ]"

# --- server t: short timeouts, for ids, the idle timeout and slow clients
U=unix:$TMP/t.sock
coord_start t -d "$R" --listen "$U" --timeout 0.3 --idle-timeout 1 --worker "$W"
t_ids() {
	printf '%s\n' '{ "id" : "a b" , "op":"sleep" }' '{"\u0069d":5,"op":"sleep"}' \
		'{"op":"sleep","id":{"k":[1, 2.5, "x"]}}' '{"op":"sleep"}' '{"id":1,"id":2,"op":"sleep"}' \
		'{"id":3,"op":"sleep",' | talk "$U" | sed 's/,"error".*//' >"$TMP/o" &&
		printf '%s\n' '{"id":"a b"' '{"id":5' '{"id":{"k":[1,2.5,"x"]}' '{"id":null' '{"id":2' '{"id":null' |
		cmp -s - "$TMP/o"
}
test_expect "coord's own errors echo the request id, re-serialized" t_ids
t_idle() {
	{
		printf '{"op":"pi'
		sleep 3
	} | talk "$U" >"$TMP/o" &
	tp=$!
	wait_for "$TMP/t.log" 'closed: idle timeout \(0 requests'
	r=$?
	kill $tp 2>/dev/null
	wait $tp
	return $r
}
test_expect "a connection idle past --idle-timeout is closed" t_idle
t_slowloris() {
	{
		for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
			printf 'a'
			sleep 0.2
		done
	} | talk "$U" >"$TMP/o" &
	tp=$!
	wait_for "$TMP/t.log" 'closed: idle timeout \(0 requests' 2
	r=$?
	kill $tp 2>/dev/null
	wait $tp
	return $r
}
test_expect "a line dribbled a byte at a time does not keep it open" t_slowloris
coord_stop t

# --- server c: at most 2 connections
C=unix:$TMP/c.sock
coord_start c -d "$R" --listen "$C" --max-conns 2 --worker "$W"
t_maxconns() {
	rm -f "$TMP/f1" "$TMP/f2" && mkfifo "$TMP/f1" "$TMP/f2" || return 1
	# both clients start before the fifos' writers are opened, so neither
	# inherits the other's writer (closing it would not end the other)
	talk "$C" <"$TMP/f1" >"$TMP/o1" &
	p1=$!
	talk "$C" <"$TMP/f2" >"$TMP/o2" &
	p2=$!
	exec 4>"$TMP/f1" 5>"$TMP/f2"
	echo '{"op":"ping","id":1}' >&4
	echo '{"op":"ping","id":2}' >&5
	wait_for "$TMP/o1" ok && wait_for "$TMP/o2" ok || return 1
	# no request: coord closes at once, and a write could meet EPIPE first
	talk "$C" </dev/null >"$TMP/o3"
	exec 4>&-
	wait $p1
	wait_for "$TMP/c.log" 'closed: done' &&
		echo '{"op":"ping","id":4}' | talk "$C" >"$TMP/o4"
	exec 5>&-
	wait $p2
	[ "$(cat "$TMP/o3")" = '{"id":null,"error":{"code":"overloaded","message":"connection limit (2) reached"}}' ] &&
		[ "$(cat "$TMP/o4")" = '{"id":4,"ok":true}' ] && grep -q 'refused: overloaded (max-conns 2)' "$TMP/c.log"
}
test_expect "past --max-conns: an overloaded error and close; room again after a close" t_maxconns
coord_stop c

# --- server d: a config file, reloaded on SIGHUP
D=unix:$TMP/d.sock
cat >"$TMP/d.conf" <<EOF
# vdb-coord test configuration
listen $D
timeout 30
workers 1
worker $W
EOF
t_cli_wins() {
	coord_start d0 -d "$R" --config "$TMP/d.conf" --timeout 7 --listen "unix:$TMP/d0.sock" &&
		grep -q 'pool of 1 workers, timeout 7s' "$TMP/d0.log" && grep -q "listening on unix:$TMP/d0.sock" "$TMP/d0.log" &&
		! grep -q "listening on $D" "$TMP/d0.log" && coord_stop d0 && [ "$rc" = 0 ]
}
test_expect "command-line options override the config file" t_cli_wins
coord_start d -d "$R" --config "$TMP/d.conf"
t_reload() {
	sed -i 's/^timeout 30$/timeout 1/; s/^workers 1$/workers 3/' "$TMP/d.conf"
	kill -HUP "$(coord_pid d)"
	wait_for "$TMP/d.log" "reload: $TMP/d.conf: workers=3 max-conns=256 timeout=1s" &&
		wait_for "$TMP/d.log" 'started \(slot 2\)' &&
		echo '{"op":"sleep","id":1}' | talk "$D" >"$TMP/o" &&
		[ "$(cat "$TMP/o")" = '{"id":1,"error":{"code":"timeout","message":"no response within 1 s; worker killed"}}' ]
}
test_expect "SIGHUP re-reads the config: timeout and workers change" t_reload
t_reload_bad() {
	sed -i 's/^timeout 1$/timeout soon/' "$TMP/d.conf"
	kill -HUP "$(coord_pid d)"
	wait_for "$TMP/d.log" "vdb-coord: error: reload: $TMP/d.conf:3: timeout: 'soon' is not a number of seconds from 0 to 86400: keeping the configuration in effect" &&
		echo '{"op":"sleep","id":1}' | talk "$D" >"$TMP/o" &&
		[ "$(cat "$TMP/o")" = '{"id":1,"error":{"code":"timeout","message":"no response within 1 s; worker killed"}}' ]
}
test_expect "a bad config on SIGHUP is logged and the old one kept" t_reload_bad
t_reload_perconn() {
	sed -i 's/^timeout soon$/timeout 1/; s/^workers 3$/workers 0/' "$TMP/d.conf"
	kill -HUP "$(coord_pid d)"
	wait_for "$TMP/d.log" 'reload: .* workers=0 ' &&
		printf '{"op":"pid","id":1}\n' | talk "$D" >"$TMP/o" &&
		wait_for "$TMP/d.log" 'started \(conn=' && wait_for "$TMP/d.log" 'exited with status 0 \(slot 2' &&
		grep -q '"pid":' "$TMP/o"
}
test_expect "SIGHUP from a pool to a worker per connection" t_reload_perconn
coord_stop d

# --- server g: a pool shrunk and grown back, whose workers take 2 s to
# exit once stopped
G=unix:$TMP/g.sock
printf 'listen %s\nworkers 3\nworker %s; sleep 2\n' "$G" "$STANDIN" >"$TMP/g.conf"
coord_start g -d "$R" --config "$TMP/g.conf"
t_regrow() {
	wait_for "$TMP/g.log" 'started \(slot 2\)' || return 1
	sed -i 's/^workers 3$/workers 1/' "$TMP/g.conf"
	kill -HUP "$(coord_pid g)"
	wait_for "$TMP/g.log" 'reload: .* workers=1 ' || return 1
	sed -i 's/^workers 1$/workers 3/' "$TMP/g.conf"
	kill -HUP "$(coord_pid g)"
	wait_for "$TMP/g.log" 'reload: .* workers=3 ' || return 1
	# the slots are filled again at once, not when the stopped workers
	# have exited, and their exit is no crash to restart after
	sleep 0.5
	[ "$(grep -c 'started (slot 1)' "$TMP/g.log")" -eq 2 ] &&
		[ "$(grep -c 'started (slot 2)' "$TMP/g.log")" -eq 2 ] &&
		wait_for "$TMP/g.log" 'exited with status 0 \(slot 1, 0 served\)' &&
		wait_for "$TMP/g.log" 'exited with status 0 \(slot 2, 0 served\)' && sleep 0.3 &&
		! grep -q 'worker slot [12]: restarting' "$TMP/g.log" &&
		[ "$(grep -c 'started (slot [12])' "$TMP/g.log")" -eq 4 ] &&
		for i in 1 2 3; do echo '{"op":"ping","id":1}' | talk "$G"; done >"$TMP/o" &&
		[ "$(grep -c '^{"id":1,"ok":true}$' "$TMP/o")" -eq 3 ]
}
test_expect "SIGHUP: a pool shrunk and grown back is refilled at once" t_regrow
t_term_twice() {
	rm -f "$TMP/fifo" "$TMP/o" && mkfifo "$TMP/fifo" || return 1
	talk "$G" <"$TMP/fifo" >"$TMP/o" &
	tp=$!
	exec 3>"$TMP/fifo"
	printf '{"op":"sleep","id":1}\n' >&3
	sleep 0.3
	kill -TERM "$(coord_pid g)"
	wait_for "$TMP/g.log" 'shutdown: signal 15: 1 connections' || return 1
	t0=$(date +%s%N)
	coord_stop g
	t1=$(date +%s%N)
	exec 3>&-
	wait $tp
	echo "# exit $(((t1 - t0) / 1000000)) ms after the second SIGTERM"
	[ "$rc" = 0 ] && [ $((t1 - t0)) -lt 5000000000 ] &&
		grep -q 'shutdown: signal 15 again: not waiting for requests in flight' "$TMP/g.log" &&
		[ "$(cat "$TMP/o")" = '{"id":1,"error":{"code":"shutdown","message":"vdb-coord is shutting down"}}' ]
}
test_expect "a second SIGTERM does not wait for the request in flight" t_term_twice

# --- workers that cannot start
t_fail100() {
	coord_start x -d "$R" --listen "unix:$TMP/x.sock" --workers 2 --worker 'exit 100' || return 1
	wait_for "$TMP/x.log" 'giving up until SIGHUP' 2 &&
		echo '{"op":"ping","id":1}' | talk "unix:$TMP/x.sock" >"$TMP/o" &&
		[ "$(cat "$TMP/o")" = '{"id":1,"error":{"code":"worker","message":"no worker: every pool worker failed at start-up"}}' ] &&
		[ "$(grep -c 'started (slot 0)' "$TMP/x.log")" -eq 3 ] &&
		coord_stop x && [ "$rc" = 0 ]
}
test_expect "pool workers exiting 100 at start-up: 3 tries, then worker errors" t_fail100
t_fail100_hup() {
	printf 'listen unix:%s\nworkers 2\nworker exit 100\n' "$TMP/x2.sock" >"$TMP/x2.conf"
	coord_start x2 -d "$R" --config "$TMP/x2.conf" || return 1
	wait_for "$TMP/x2.log" 'giving up until SIGHUP' 2 || return 1
	echo 'wokers 2' >>"$TMP/x2.conf"
	kill -HUP "$(coord_pid x2)"
	wait_for "$TMP/x2.log" "error: reload: $TMP/x2.conf:4: unknown key 'wokers': keeping the configuration in effect" &&
		wait_for "$TMP/x2.log" 'giving up until SIGHUP' 4 &&
		[ "$(grep -c 'started (slot 0)' "$TMP/x2.log")" -eq 6 ] && coord_stop x2 && [ "$rc" = 0 ]
}
test_expect "SIGHUP with a bad config file still retries the workers that gave up" t_fail100_hup
t_fail111() {
	coord_start y -d "$R" --listen "unix:$TMP/y.sock" --workers 1 --timeout 1 --worker 'exit 111' || return 1
	wait_for "$TMP/y.log" 'restarting in 800 ms' &&
		grep -q 'restarting in 100 ms' "$TMP/y.log" && grep -q 'restarting in 400 ms' "$TMP/y.log" &&
		echo '{"op":"ping","id":1}' | talk "unix:$TMP/y.sock" >"$TMP/o" &&
		# either no worker came up within the timeout, or the request
		# went to one that died at once
		grep -Eqx '\{"id":1,"error":\{"code":"(timeout","message":"no worker was free for 1 s|worker","message":"worker exited with status 111)"\}\}' "$TMP/o" &&
		coord_stop y && [ "$rc" = 0 ]
}
test_expect "pool workers exiting 111: retried with doubling back-off" t_fail111

# --- a 64 MiB line exactly is relayed (a worker that counts bytes)
t_exact() {
	coord_start f -d "$R" --listen "unix:$TMP/f.sock" \
		--worker 'n=$(head -n 1 | wc -c); echo "{\"id\":null,\"bytes\":$n}"' || return 1
	{
		head -c 67108864 /dev/zero | tr '\0' a
		echo
	} | talk "unix:$TMP/f.sock" >"$TMP/o"
	coord_stop f
	[ "$(cat "$TMP/o")" = '{"id":null,"bytes":67108865}' ]
}
test_expect "a line of exactly 64 MiB is relayed" t_exact

# --- coord's memory, on a server of its own per test: a worker that
# answers a short request with 12 MB of hits and "id":"error" in front, and
# a long one with its length
cat >"$TMP/big.sh" <<'EOF'
n=$(head -n 1 | wc -c)
if [ "$n" -gt 1000000 ]; then
	echo "{\"id\":null,\"bytes\":$n}"
else
	printf '{"id":"error","results":[{"query":0,"hits":['
	yes '{"id":1,"distance":0.5},' | head -n 500000 | tr -d '\n'
	printf '{"id":2,"distance":0.5}]}]}\n'
fi
exec cat >/dev/null
EOF
t_bigresp() {
	no_quarantine
	coord_start h1 -d "$R" --listen "unix:$TMP/h1.sock" --worker "sh $TMP/big.sh" || return 1
	before=$(mem h1 VmHWM)
	echo '{"op":"search","id":"error"}' | talk "unix:$TMP/h1.sock" >"$TMP/o"
	after=$(mem h1 VmHWM)
	echo "# peak RSS before $before kB, after $after kB"
	coord_stop h1
	[ "$(wc -c <"$TMP/o")" -eq 12000072 ] && [ $((after - before)) -lt 65536 ] &&
		grep -q 'id="error" op=search status=ok ms=[0-9.]* bytes=12000072$' "$TMP/h1.log"
}
test_expect "a 12 MB response that mentions \"error\" is not parsed whole" t_bigresp
t_trim() {
	no_quarantine
	coord_start h3 -d "$R" --listen "unix:$TMP/h3.sock" --worker "sh $TMP/big.sh" || return 1
	rm -f "$TMP/fifo" "$TMP/o" && mkfifo "$TMP/fifo" || return 1
	talk "unix:$TMP/h3.sock" <"$TMP/fifo" >"$TMP/o" &
	tp=$!
	exec 3>"$TMP/fifo"
	before=$(mem h3 VmRSS)
	{
		head -c 60000000 /dev/zero | tr '\0' a
		echo
	} >&3
	wait_for "$TMP/o" bytes
	# answered, and the connection open and idle
	after=$(mem h3 VmRSS)
	echo "# RSS before $before kB, after $after kB"
	exec 3>&-
	wait $tp
	coord_stop h3
	[ "$(cat "$TMP/o")" = '{"id":null,"bytes":60000001}' ] && [ $((after - before)) -lt 16384 ]
}
test_expect "a connection idle after a 60 MB request does not keep its buffer" t_trim

# --- the real worker: vdb-query serve over a collection with sealed rows,
# rows in the log's tail and deletes
vdb-meta -d "$R" create c --dim 4 --field year:int64 --field tag:string:16 &&
	vdb-gen -f jsonl -n 3000 -d 4 -y | vdb-ingest -d "$R" c >/dev/null &&
	vdb-ingest -d "$R" --flush c >/dev/null &&
	vdb-gen -f jsonl -n 500 -d 4 -y -s 9 -i 3000 | vdb-ingest -d "$R" c >/dev/null &&
	printf '7\n3100\n' | vdb-ingest -d "$R" --delete c >/dev/null ||
	echo "# collection c not set up"
vdb-gen -f jsonl -n 20 -d 4 -s 5 | sed 's/.*"vector":\(\[[^]]*\]\).*/\1/' >"$TMP/qv"
{
	i=0
	while IFS= read -r v; do
		i=$((i + 1))
		printf '{"id":%d,"op":"search","collection":"c","vector":%s,"k":7,"fields":["year","tag"]}\n' $i "$v"
		printf '{"id":"f%d","op":"search","collection":"c","vector":%s,"k":5,"filter":"year >= 2000 and tag != \\"t1\\""}\n' $i "$v"
	done <"$TMP/qv"
	printf '{"id":"all","op":"search","collection":"c","vectors":[%s],"k":3}\n' "$(paste -sd, "$TMP/qv")"
	printf '%s\n' '{"id":"n","op":"count","collection":"c"}' '{"id":"r","op":"search","collection":"c","vector":[0,0,0,0],"radius":0.5}' \
		'{"id":"e1","op":"search","collection":"nope","vector":[1,2,3,4]}' 'not json' \
		'{"id":"e2","op":"search","collection":"c","vector":[1,2],"k":3}' '{"id":"e3","op":"count","collection":"c","filter":"year >"}' \
		' 	' '{"id":"last","op":"ping"}'
} >"$TMP/rq"
vdb-query -d "$R" serve <"$TMP/rq" >"$TMP/direct" 2>"$TMP/direct.err"
coord_start q -d "$R" --listen "unix:$TMP/q.sock" --listen tcp:127.0.0.1:0 ||
	echo "# server q did not start: $(cat "$TMP/q.log")"
Q=tcp:127.0.0.1:$(coord_port q)
test_expect "the direct answers are real: hits, fields, a count, errors" \
	"[ \$(wc -l <'$TMP/direct') -eq 48 ] && grep -q '^{\"id\":1,\"results\":\[{\"query\":0,\"hits\":\[{\"id\":[0-9]*,\"distance\":[0-9.e-]*,\"year\":' '$TMP/direct' &&
	 grep -qx '{\"id\":\"n\",\"count\":3498}' '$TMP/direct' && grep -q '^{\"id\":\"e3\",\"error\":{\"code\":\"input\"' '$TMP/direct' &&
	 ! grep -q '\"id\":7,\"distance\"\|\"id\":3100,\"distance\"' '$TMP/direct'"
test_expect "the default worker (vdb-query serve next to vdb-coord) answers byte for byte as serve does, unix" \
	"talk 'unix:$TMP/q.sock' <'$TMP/rq' >'$TMP/o' && cmp '$TMP/direct' '$TMP/o' && grep -q 'started (conn=' '$TMP/q.log'"
test_expect "... and over tcp" "talk '$Q' <'$TMP/rq' >'$TMP/o' && cmp '$TMP/direct' '$TMP/o'"
test_expect "... and one request per connection" \
	"while IFS= read -r l; do printf '%s\n' \"\$l\" | talk '$Q' || exit 1; done <'$TMP/rq' >'$TMP/o' && cmp '$TMP/direct' '$TMP/o'"
t_real_kill() {
	rm -f "$TMP/fifo" "$TMP/ko" && mkfifo "$TMP/fifo" || return 1
	talk "unix:$TMP/q.sock" <"$TMP/fifo" >"$TMP/ko" &
	tp=$!
	exec 3>"$TMP/fifo"
	head -1 "$TMP/rq" >&3
	wait_for "$TMP/ko" '"results"' || return 1
	n=$(grep -c 'started (conn=' "$TMP/q.log")
	wpid=$(sed -n 's/.*worker pid=\([0-9]*\) started (conn=.*/\1/p' "$TMP/q.log" | tail -1)
	# stopped, the worker holds the next request in flight for sure
	kill -STOP "$wpid"
	f1=$(grep -c 'id="f1" op=search' "$TMP/q.log")
	sed -n 2p "$TMP/rq" >&3
	sleep 0.3
	[ "$(grep -c 'id="f1" op=search' "$TMP/q.log")" -eq "$f1" ] || return 1
	kill -9 "$wpid"
	sed -n 3p "$TMP/rq" >&3
	exec 3>&-
	wait $tp
	head -1 "$TMP/direct" >"$TMP/want"
	echo '{"id":"f1","error":{"code":"worker","message":"worker killed by signal 9"}}' >>"$TMP/want"
	sed -n 3p "$TMP/direct" >>"$TMP/want"
	cut -c1-100 "$TMP/ko"
	tail -8 "$TMP/q.log"
	cmp "$TMP/want" "$TMP/ko" && [ "$(grep -c 'started (conn=' "$TMP/q.log")" -eq $((n + 1)) ]
}
test_expect "vdb-query serve killed (-9) mid-request: worker error for it, the next request is answered" t_real_kill
coord_stop q
test_expect "... and it stops cleanly" "[ '$rc' = 0 ]"

# --- load: 200 clients, each checking every answer (a real search, its
# answer byte for byte), for COORD_LOAD_SECONDS in each worker mode
LOAD=$BIN/coord-load
if [ ! -x "$LOAD" ]; then
	LOAD=$TMP/coord-load
	${CC:-cc} -O2 -o "$LOAD" "$(dirname "$0")/bench/coord-load.c" 2>"$TMP/err" || LOAD=
fi
SECS=${COORD_LOAD_SECONDS:-30}
REQ=$(head -1 "$TMP/rq" | sed 's/^{"id":1,//')
ANS=$(head -1 "$TMP/direct" | sed 's/^{"id":1,//')
load() {
	name=$1
	shift
	if coord_start "$name" -d "$R" --listen "unix:$TMP/$name.sock" "$@" &&
		"$LOAD" -c 200 -p 4 -s "$SECS" -q "$REQ" -a "$ANS" "unix:$TMP/$name.sock" >"$TMP/load" 2>"$TMP/err"; then
		coord_stop "$name"
		sent=$(sed 's/.* sent \([0-9]*\) .*/\1/' "$TMP/load")
		logged=$(grep -c "status=ok" "$TMP/$name.log")
		echo "# $(cat "$TMP/load")"
		rm -f "$TMP/$name.log"
		[ "$rc" = 0 ] && [ "$sent" -gt 0 ] && [ "$logged" -eq "$sent" ]
	else
		echo "# $(cat "$TMP/load" "$TMP/err" 2>/dev/null)"
		coord_stop "$name"
		return 1
	fi
}
if [ -n "$LOAD" ]; then
	if load L1; then ok "load: 200 clients, a vdb-query serve each, ${SECS}s: nothing lost"; else not_ok "load: a worker per connection"; fi
	if load L2 --workers 2; then ok "load: 200 clients, a pool of 2, ${SECS}s: nothing lost"; else not_ok "load: pool"; fi
else
	test_skip "no C compiler for t/bench/coord-load.c"
	test_skip "no C compiler for t/bench/coord-load.c"
fi
test_done
