#!/usr/bin/env bash
# A real service under the preload library: haproxy (2 threads) proxying
# to a second frontend of its own, under a few thousand requests from 16
# keep-alive clients, in each mode, gc mode collecting often.  haproxy
# keeps per-thread buffers and pool caches in __thread variables; before
# the collector scanned static TLS, gc mode reclaimed them and haproxy
# crashed at its first requests.  Every response must be right, and
# haproxy must stop cleanly on SIGUSR1 (soft stop).
# Skips (exit 77) where haproxy is not installed.
# Usage: haproxy_service.sh PRELOAD_SO
set -uo pipefail
lib=$1
command -v haproxy > /dev/null || { echo "SKIP: haproxy is not installed"; exit 77; }
tmp=$(mktemp -d)
hpid=
cleanup() { [[ -n $hpid ]] && kill -9 "$hpid" 2> /dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

read -r front back < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

cat > "$tmp/h.cfg" <<CFG
global
  nbthread 2
  maxconn 1000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend front
  bind 127.0.0.1:$front
  http-request set-header X-Seen %[rand]
  default_backend self
backend self
  server s1 127.0.0.1:$back
frontend back
  bind 127.0.0.1:$back
  http-request return status 200 content-type text/plain lf-string "ok %[path]"
CFG

client() { # port: 16 keep-alive clients, 250 requests each; prints "ok N" or the first failure
    python3 - "$1" <<'PY'
import http.client, sys, threading
port = int(sys.argv[1]); bad = []; n = [0]; lock = threading.Lock()
def run(c):
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    for i in range(250):
        path = "/c%d/r%d/%s" % (c, i, "x" * (i % 200))
        try:
            h.request("GET", path); r = h.getresponse(); body = r.read().decode()
        except Exception as e:
            with lock: bad.append("%s: %r" % (path, e))
            return
        with lock:
            if r.status != 200 or body != "ok " + path: bad.append("%s: %d %r" % (path, r.status, body[:80]))
            else: n[0] += 1
ts = [threading.Thread(target=run, args=(c,)) for c in range(16)]
for t in ts: t.start()
for t in ts: t.join()
print("ok %d" % n[0] if not bad else "FAIL %d bad, first: %s" % (len(bad), bad[0]))
PY
}

fail=0
for mode in fast leakcheck gc; do
    env LD_PRELOAD="$lib" GCMALLOC_MODE=$mode GCMALLOC_GOGC=10 \
        haproxy -db -f "$tmp/h.cfg" > "$tmp/out.$mode" 2>&1 &
    hpid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $front)).close()" 2> /dev/null && break
        sleep 0.05
    done
    res=$(client "$front")
    kill -USR1 "$hpid" 2> /dev/null
    rc=
    for _ in $(seq 200); do
        kill -0 "$hpid" 2> /dev/null || { wait "$hpid"; rc=$?; break; }
        sleep 0.05
    done
    [[ -z $rc ]] && { kill -9 "$hpid"; wait "$hpid" 2> /dev/null; rc=hang; }
    hpid=
    if [[ $res != "ok 4000" || $rc != 0 ]]; then
        echo "FAIL: haproxy in $mode mode: client: $res; exit status: $rc"
        tail -20 "$tmp/out.$mode"
        fail=1
    else
        echo "ok: haproxy in $mode mode served 4000 requests and stopped cleanly"
    fi
done
exit $fail
