#!/usr/bin/env bash
# End-to-end checks of the live /debug/pprof endpoint (src/pprof_http.c),
# against examples/service.c (links gcmalloc) and against an unmodified
# program, python3, under LD_PRELOAD=libgcmalloc-preload.so.
#
#   pprof_http.sh http SERVICE PRELOAD_LIB SRCDIR
#       GCMALLOC_PPROF_ADDR's forms and refusals (garbage, non-loopback,
#       port in use, remote allowed), gcm_pprof_serve(), then everything
#       tests/pprof_http_check.py checks against the running service (pages,
#       JSON memstats against the header's fields, ?gc=1, malformed requests,
#       slowloris, connection flood, a trickling client), a clean exit that
#       closes the port, and the same endpoint under the preload library in
#       its three modes (the server's own objects never reported as leaks).
#   pprof_http.sh go SERVICE PRELOAD_LIB SRCDIR
#       `go tool pprof` reading the endpoint of both (-raw, -top, -traces),
#       the server's own allocations absent from the program's profile,
#       delta profiles (-seconds 2) of allocs and heap?gc=1 covering their
#       window and only what happened in it.
#       Exit 77 (skipped) when go is not installed.
# KEEP_TMP=1 keeps the scratch directory (logs, profiles) for a look.
set -euo pipefail
mode=$1 svc=$2 preload=$3 src=$4
check=$src/tests/pprof_http_check.py
tmp=$(mktemp -d)
cleanup() {
    for f in "$tmp"/*.pid; do
        [[ -e $f ]] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    [[ -n ${KEEP_TMP:-} ]] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
unset GCMALLOC_PPROF_ADDR GCMALLOC_PPROF_ALLOW_REMOTE GCMALLOC_PROFILE \
      GCMALLOC_PROFILE_RATE GCMALLOC_LOG GCMALLOC_VERBOSE GCMALLOC_MODE LD_PRELOAD

fail() { echo "FAIL: $*" >&2; exit 1; }

# The real interpreter, not a shim script (pyenv's would run bash and more
# processes first, each loading the preload library and binding a port).
py=$(python3 -c 'import sys; print(sys.executable)')

# Starts `$@` in the background as $name, output in $tmp/$name.{out,err}.
start() {
    local name=$1; shift
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    echo $! >"$tmp/$name.pid"
}

# The port $name's endpoint serves on, from its "serving" line.
port_of() { python3 "$check" port "$tmp/$1.err" 20; }

stop() { # name: SIGTERM, then the exit status must be 0
    local pid; pid=$(cat "$tmp/$1.pid")
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    rm -f "$tmp/$1.pid"
    [[ $rc == 0 ]] || { cat "$tmp/$1.err" >&2; fail "$1 exited with $rc"; }
}

port_closed() { # port
    python3 -c "
import socket, sys
try:
    socket.create_connection(('127.0.0.1', $1), timeout=2).close()
except OSError:
    sys.exit(0)
sys.exit(1)" || fail "port $1 still accepts connections after the program exited"
}

# A python loop under the preload library: allocates, keeps some, and
# exits normally on SIGTERM (so the exit handlers run).
py_loop='
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
keep = []
end = time.time() + 120
while time.time() < end:
    keep.append(bytearray(4096))
    if len(keep) > 20000:
        del keep[:10000]
    time.sleep(0.0005)
'

if [[ $mode == http ]]; then
    # --- the address: forms, garbage, refusals ---------------------------------
    run() { # expect-serving(0/1) addr [env...]: a one-second service run
        local want=$1 addr=$2; shift 2
        local rc=0
        env "$@" GCMALLOC_PPROF_ADDR="$addr" "$svc" --seconds 1 --rate 2000 \
            >"$tmp/run.out" 2>"$tmp/run.err" || rc=$?
        [[ $rc == 0 ]] || { cat "$tmp/run.err" >&2; fail "GCMALLOC_PPROF_ADDR=$addr: exit $rc"; }
        grep -q 'served [0-9]* requests' "$tmp/run.out" || fail "$addr: the service did not run"
        if [[ $want == 1 ]]; then
            grep -q 'gcmalloc: pprof: serving http://' "$tmp/run.err" ||
                { cat "$tmp/run.err" >&2; fail "GCMALLOC_PPROF_ADDR=$addr: not serving"; }
        elif grep -q 'gcmalloc: pprof: serving' "$tmp/run.err"; then
            fail "GCMALLOC_PPROF_ADDR=$addr was served"
        fi
    }
    for bad in banana 127.0.0.1 :99999 'localhost:http' '::1:6060' '[::1]' 'example.com:6060'; do
        run 0 "$bad"
        { grep -qF "gcmalloc: GCMALLOC_PPROF_ADDR=\"$bad\": " "$tmp/run.err" &&
          grep -q '; expected host:port .*; using default off$' "$tmp/run.err"; } ||
            { cat "$tmp/run.err" >&2; fail "no one-line warning for \"$bad\""; }
        [[ $(wc -l <"$tmp/run.err") == 1 ]] || fail "\"$bad\": more than one line on stderr"
    done
    for remote in 10.1.2.3:6060 0.0.0.0:0 '[::]:0' '[2001:db8::1]:0'; do
        run 0 "$remote"
        grep -q "pprof: GCMALLOC_PPROF_ADDR: .* is not a loopback address; not serving (set GCMALLOC_PPROF_ALLOW_REMOTE=1" \
            "$tmp/run.err" || { cat "$tmp/run.err" >&2; fail "$remote was not refused with one line"; }
        [[ $(wc -l <"$tmp/run.err") == 1 ]] || fail "$remote: more than one line on stderr"
    done
    run 1 :0;          grep -q 'serving http://127.0.0.1:[0-9]*/' "$tmp/run.err" || fail ":0 is not loopback"
    run 1 localhost:0; grep -q 'serving http://127.0.0.1:[0-9]*/' "$tmp/run.err" || fail "localhost:0"
    run 1 '[::1]:0';   grep -q 'serving http://\[::1\]:[0-9]*/' "$tmp/run.err" || fail "[::1]:0"
    run 1 127.0.0.5:0; grep -q 'serving http://127.0.0.5:[0-9]*/' "$tmp/run.err" || fail "127.0.0.5:0"
    # Remote allowed: ":port" is every interface, reachable on loopback too.
    start remote env GCMALLOC_PPROF_ALLOW_REMOTE=1 GCMALLOC_PPROF_ADDR=:0 "$svc" --rate 2000
    port=$(port_of remote)
    grep -q "serving http://0.0.0.0:$port/debug/pprof/ on every interface" "$tmp/remote.err" ||
        fail "ALLOW_REMOTE=1 with :0: $(cat "$tmp/remote.err")"
    python3 - "$port" <<'EOF' || fail "ALLOW_REMOTE=1: not reachable"
import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/debug/pprof/memstats" % sys.argv[1], timeout=10).read()
EOF
    # The port taken: one line, and the service runs on without the endpoint.
    run 0 "127.0.0.1:$port"
    grep -q "pprof: GCMALLOC_PPROF_ADDR: cannot listen on 127.0.0.1:$port: Address already in use; not serving" \
        "$tmp/run.err" || { cat "$tmp/run.err" >&2; fail "port in use not reported"; }
    stop remote

    # --- gcm_pprof_serve(), alone and after the environment -------------------
    "$svc" --pprof 127.0.0.1:0 --seconds 1 --rate 2000 >"$tmp/api.out" 2>"$tmp/api.err"
    p=$(sed -n 's/^service: pprof endpoint on port \([0-9]*\)$/\1/p' "$tmp/api.out")
    [[ -n $p ]] && grep -q "serving http://127.0.0.1:$p/" "$tmp/api.err" ||
        fail "gcm_pprof_serve: $(cat "$tmp/api.out" "$tmp/api.err")"
    GCMALLOC_PPROF_ADDR=127.0.0.1:0 "$svc" --pprof 127.0.0.1:0 --seconds 1 --rate 2000 \
        >"$tmp/api.out" 2>"$tmp/api.err"
    p=$(sed -n 's/^service: pprof endpoint already serving on port \([0-9]*\)$/\1/p' "$tmp/api.out")
    [[ -n $p ]] && grep -q "serving http://127.0.0.1:$p/" "$tmp/api.err" ||
        fail "gcm_pprof_serve after GCMALLOC_PPROF_ADDR: $(cat "$tmp/api.out" "$tmp/api.err")"
    "$svc" --pprof 10.9.8.7:0 --seconds 1 --rate 2000 >"$tmp/api.out" 2>"$tmp/api.err"
    grep -q 'gcm_pprof_serve("10.9.8.7:0"): Operation not permitted' "$tmp/api.out" ||
        fail "gcm_pprof_serve of a remote address: $(cat "$tmp/api.out")"

    # --- the service, probed --------------------------------------------------
    start svc env GCMALLOC_PPROF_ADDR=127.0.0.1:0 "$svc"
    port=$(port_of svc)
    # A client trickling a byte a second, cut by the lifetime limit while
    # the rest runs.
    python3 "$check" trickle "$port" 60 >"$tmp/trickle.out" 2>&1 &
    trickle=$!
    python3 "$check" service "$port" "$src"
    wait "$trickle" || { cat "$tmp/trickle.out" >&2; fail "trickling client"; }
    kill -0 "$(cat "$tmp/svc.pid")" || fail "the service died"
    stop svc
    grep -q '^service: served [1-9][0-9]* requests' "$tmp/svc.out" || fail "service summary"
    port_closed "$port"
    # Misbehaving clients do not flood the program's log.
    n=$(grep -c 'pprof: libmicrohttpd' "$tmp/svc.err" || true)
    ((n <= 6)) || fail "$n libmicrohttpd lines in the program's log (at most 5 a minute + 1)"
    if grep -v -e '^gcmalloc: pprof: serving' -e '^gcmalloc: pprof: libmicrohttpd' \
            -e '^gcmalloc: pprof: more libmicrohttpd messages' "$tmp/svc.err"; then
        fail "unexpected lines on the service's stderr"
    fi

    # --- an unmodified program under the preload library ----------------------
    for m in fast gc leakcheck; do
        start py env LD_PRELOAD="$preload" GCMALLOC_MODE=$m GCMALLOC_PPROF_ADDR=127.0.0.1:0 GCMALLOC_LEAKS="$tmp/py.leaks.pb.gz" \
            "$py" -c "$py_loop"
        port=$(port_of py)
        python3 "$check" preload "$port" "$src" $m
        stop py
        port_closed "$port"
        # The server's objects stay reachable: none is reported as a leak.
        if grep -v '^gcmalloc: pprof: ' "$tmp/py.err" |
                grep -E 'MHD_|microhttpd|gnutls|serve_main|on_request'; then
            fail "preload $m: the endpoint's objects reported as leaked"
        fi
    done
    [[ -s $tmp/py.leaks.pb.gz ]] || fail "leakcheck mode wrote no leak profile"
    echo "ok: pprof endpoint (service and preload)"
    exit 0
fi

[[ $mode == go ]] || fail "mode must be http or go"
# go_env.sh rather than go_reader.sh, which would replace $tmp and the
# trap that stops the services.
. "$(dirname "$0")/go_env.sh"
need_go
go_env "$tmp"
pprof() {
    go tool pprof "$@" 2>"$tmp/pprof.err" || { cat "$tmp/pprof.err" >&2; fail "go tool pprof $*"; }
}
# Frames of the server (libmicrohttpd, the libraries it loads, our thread)
# must not be in a program's profile.
no_server_frames() { # file what
    if grep -E 'MHD_|microhttpd|gnutls|p11_kit|serve_main|on_request|send_profile|pprof_http' "$1"; then
        fail "$2: the endpoint's own allocations are in the program's profile"
    fi
}

start svc env GCMALLOC_PPROF_ADDR=127.0.0.1:0 "$svc" --rate 50000
svc_start=$SECONDS
port=$(port_of svc)
url=http://127.0.0.1:$port/debug/pprof
# Let the cache grow a few megabytes.
for _ in $(seq 100); do
    python3 - "$port" <<'EOF' && break
import json, sys, urllib.request
ms = json.load(urllib.request.urlopen("http://127.0.0.1:%s/debug/pprof/memstats" % sys.argv[1], timeout=10))
sys.exit(0 if ms["heap_alloc"] > 8 << 20 else 1)
EOF
    sleep 0.2
done
pprof -raw "$url/heap" >"$tmp/raw.txt"
grep -q '^PeriodType: space bytes$' "$tmp/raw.txt" || fail "heap: period type"
grep -q '^alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes$' \
    "$tmp/raw.txt" || fail "heap: sample types"
first_map=$(awk '/^Mappings/ { getline; print; exit }' "$tmp/raw.txt")
[[ $first_map == *service* && $first_map == *"[FN]"* ]] || fail "heap: main mapping: $first_map"
grep -q 'cache_page .*service.c:[0-9]' "$tmp/raw.txt" || fail "heap: cache_page with its line"
no_server_frames "$tmp/raw.txt" "service heap"

pprof -top "$url/heap" >"$tmp/top.txt"
cat "$tmp/top.txt"
grep -q '^Type: inuse_space$' "$tmp/top.txt" || fail "heap opens on inuse_space"
# The leak holds the most: the first row by flat value is cache_page.
first=$(awk '/flat%/ { getline; print $6; exit }' "$tmp/top.txt")
[[ $first == cache_page ]] || fail "heap -top: first row is $first, want cache_page"

pprof -top "$url/allocs" >"$tmp/allocs.txt"
grep -q '^Type: alloc_space$' "$tmp/allocs.txt" || fail "allocs opens on alloc_space"
grep -q ' parse_request' "$tmp/allocs.txt" || fail "allocs: parse_request (the arena) missing"
pprof -top "$url/heap?gc=1" >"$tmp/gc.txt"
grep -q 'cache_page' "$tmp/gc.txt" || fail "heap?gc=1 -top"
pprof -traces "$url/allocs" >"$tmp/traces.txt"
no_server_frames "$tmp/traces.txt" "service allocs"
# Delta profiles (?seconds=N, which -seconds adds to the URL).  The
# service has allocated at a steady rate for ten seconds, so two seconds'
# worth is well under everything before; an absolute profile on each side
# bounds what the window may hold (pprof_http_check.py delta).
while ((SECONDS - svc_start < 10)); do sleep 0.5; done
pprof -raw "$url/allocs" >"$tmp/abs0.txt"
pprof -seconds 2 -raw "$url/allocs" >"$tmp/delta_allocs.txt"
pprof -raw "$url/allocs" >"$tmp/abs1.txt"
python3 "$check" delta "$tmp/abs0.txt" "$tmp/delta_allocs.txt" "$tmp/abs1.txt" 2
no_server_frames "$tmp/delta_allocs.txt" "allocs delta"
# heap?gc=1 collects at both ends of the window (two forced collections),
# so the collected heap's allocations of the window are in it.
forced() {
    python3 -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1] + "/memstats", timeout=10))["num_forced_gc"])' "$url"
}
f0=$(forced)
pprof -seconds 2 -raw "$url/heap?gc=1" >"$tmp/delta_heap.txt"
f1=$(forced)
((f1 == f0 + 2)) || fail "heap?gc=1&seconds=2: num_forced_gc went from $f0 to $f1, want +2"
python3 "$check" deltaheap "$tmp/delta_heap.txt" 2
pprof -seconds 2 -top "$url/heap?gc=1" >"$tmp/delta_top.txt"
cat "$tmp/delta_top.txt"
grep -q '^Type: inuse_space$' "$tmp/delta_top.txt" || fail "heap delta opens on inuse_space"
grep -q '^Duration: 2' "$tmp/delta_top.txt" || fail "heap -seconds 2 -top: no two-second Duration"
stop svc

# The preloaded python, every allocation sampled: a profile of the
# program's mallocs with none of the server's.
start py env LD_PRELOAD="$preload" GCMALLOC_PPROF_ADDR=127.0.0.1:0 \
    GCMALLOC_PROFILE_RATE=1 "$py" -c "$py_loop"
port=$(port_of py)
url=http://127.0.0.1:$port/debug/pprof
sleep 1
for _ in 1 2 3; do pprof -raw "$url/heap" >/dev/null; done # the server at work
pprof -raw "$url/allocs" >"$tmp/py_raw.txt"
grep -q 'kind:\[malloc\]' "$tmp/py_raw.txt" || fail "preload: no kind=malloc samples"
no_server_frames "$tmp/py_raw.txt" "preload allocs"
pprof -top "$url/heap" >"$tmp/py_top.txt"
grep -q 'PyByteArray\|_PyObject_Malloc\|PyMem_' "$tmp/py_top.txt" ||
    fail "preload -top: no Python allocator frames: $(head -20 "$tmp/py_top.txt")"
stop py
echo "ok: go tool pprof reads the endpoint (service and preload)"
