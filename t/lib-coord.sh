# lib-coord.sh: running vdb-coord in tests: a stand-in worker, starting
# and stopping servers, talking to them.  Source after test-lib.sh.

# STANDIN: a stand-in for `vdb-query serve` (formats/wire.md), so the
# relay can be tested on its own.  Per request line it answers
# {"id":ID,"results":[]}; op "ping": {"id":ID,"ok":true}; "pid": its pid;
# "fds": its open descriptors and $VDB_ROOT; "slow": answers after 0.5 s;
# "sleep": never answers (a child sleeps); "die": exits 3; "quit": answers
# ok, and 0.5 s later closes its input and output and sleeps.  A line not
# starting with { gets an input error.  The id is cut out of the text, so
# tests keep ids plain.
STANDIN=$TMP/standin.sh
cat >"$STANDIN" <<'EOF'
#!/bin/sh
while IFS= read -r line; do
	case $line in
	'{'*'"id":'*)
		id=${line#*\"id\":}
		id=${id%%[,\}]*} ;;
	'{'*) id=null ;;
	*) printf '{"id":null,"error":{"code":"input","message":"not JSON"}}\n'; continue ;;
	esac
	case $line in
	*'"die"'*) exit 3 ;;
	*'"quit"'*)
		printf '{"id":%s,"ok":true}\n' "$id"
		sleep 0.5
		exec <&- >&- sleep 1000 ;;
	*'"sleep"'*) sleep 1000 ;;
	*'"slow"'*) sleep 0.5 ;;
	esac
	case $line in
	*'"op":"ping"'*) printf '{"id":%s,"ok":true}\n' "$id" ;;
	*'"op":"pid"'*) printf '{"id":%s,"pid":%s}\n' "$id" $$ ;;
	*'"op":"fds"'*)
		fds=
		for f in /proc/$$/fd/*; do
			[ -e "$f" ] || continue
			[ "$(readlink "$f")" = "$0" ] && continue # the script itself
			fds="$fds${f##*/} "
		done
		printf '{"id":%s,"fds":"%s","root":"%s"}\n' "$id" "$fds" "$VDB_ROOT" ;;
	*) printf '{"id":%s,"results":[]}\n' "$id" ;;
	esac
done
EOF
chmod +x "$STANDIN"

# wait_for FILE PATTERN [COUNT]: until COUNT lines of FILE match the
# grep -E PATTERN; 10 s at most
wait_for() {
	_i=0
	while :; do
		_n=$(grep -c -E -- "$2" "$1" 2>/dev/null)
		[ "${_n:-0}" -ge "${3:-1}" ] && return 0
		[ $_i -ge 100 ] && return 1
		sleep 0.1
		_i=$((_i + 1))
	done
}

# coord_start NAME ARGS...: `vdb-coord ARGS` in the background; its log in
# $TMP/NAME.log, its pid in $TMP/NAME.pid, and its exit status, once it
# exits, in $TMP/NAME.rc.  Returns when it listens on every --listen
# address given on the command line, or has exited.
coord_start() {
	_name=$1
	shift
	_want=0
	for _a in "$@"; do [ "$_a" = --listen ] && _want=$((_want + 1)); done
	[ $_want -eq 0 ] && _want=1
	rm -f "$TMP/$_name.pid" "$TMP/$_name.rc" "$TMP/$_name.log"
	(
		sh -c 'echo $$ >"$0"; exec "$@"' "$TMP/$_name.pid" vdb-coord "$@" 2>>"$TMP/$_name.log"
		echo $? >"$TMP/$_name.rc"
	) &
	_i=0
	while [ $_i -lt 100 ]; do
		[ -s "$TMP/$_name.rc" ] && return 1
		_n=$(grep -c 'listening on' "$TMP/$_name.log" 2>/dev/null)
		[ "${_n:-0}" -ge $_want ] && [ -s "$TMP/$_name.pid" ] && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

coord_pid() { cat "$TMP/$1.pid"; }

# coord_port NAME: the port of its (first) tcp listener
coord_port() {
	sed -n 's/.*listening on tcp:.*:\([0-9][0-9]*\)$/\1/p' "$TMP/$1.log" | head -1
}

# coord_wait NAME: wait (15 s at most) for it to exit; its status in $rc
coord_wait() {
	_i=0
	while [ ! -s "$TMP/$1.rc" ] && [ $_i -lt 150 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	rc=$(cat "$TMP/$1.rc" 2>/dev/null)
	[ -n "$rc" ]
}

# coord_stop NAME [SIGNAL]: signal it (TERM) and wait; status in $rc
coord_stop() {
	kill -"${2:-TERM}" "$(coord_pid "$1")" 2>/dev/null
	coord_wait "$1"
}

# talk ADDRESS: standard input to the server, its answers to standard
# output; socat waits up to 10 s after our EOF for the server to finish
talk() {
	case $1 in
	unix:*) socat -t 10 - "UNIX-CONNECT:${1#unix:}" ;;
	tcp:*) socat -t 10 - "TCP:${1#tcp:}" ;;
	esac
}

# group_gone PGID: no process is left in the process group (5 s at most)
group_gone() {
	_i=0
	while ps -eo pgid= | awk -v p="$1" '$1 == p { f = 1 } END { exit !f }'; do
		[ $_i -ge 50 ] && return 1
		sleep 0.1
		_i=$((_i + 1))
	done
}

test_skip() {
	test_count=$((test_count + 1))
	echo "ok $test_count # skip $1"
}

# at exit, no server is left behind, whatever failed
coord_cleanup() {
	for _p in "$TMP"/*.pid; do
		[ -s "$_p" ] || continue
		_name=${_p%.pid}
		[ -s "$_name.rc" ] && continue
		kill -TERM "$(cat "$_p")" 2>/dev/null
	done
	sleep 0.5
	for _p in "$TMP"/*.pid; do
		[ -s "$_p" ] && [ ! -s "${_p%.pid}.rc" ] && kill -KILL "$(cat "$_p")" 2>/dev/null
	done
}
trap 'coord_cleanup; rm -rf "$TMP"' EXIT
