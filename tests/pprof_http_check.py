#!/usr/bin/env python3
"""HTTP checks of gcmalloc's live /debug/pprof endpoint (tests/pprof_http.sh).

Plain sockets and the standard library only: the endpoint is checked the way
an arbitrary client sees it, malformed requests included.

  pprof_http_check.py port STDERR_FILE [TIMEOUT]   wait for the "serving" line,
                                                  print the port
  pprof_http_check.py service PORT SRCDIR          the full set, against a
                                                  program linking gcmalloc
  pprof_http_check.py preload PORT SRCDIR [MODE]   the same against a program
                                                  under the preload library in
                                                  GCMALLOC_MODE (default fast)
  pprof_http_check.py trickle PORT SECONDS         a slowloris client sending a
                                                  byte a second: checks the
                                                  server ends it in time
  pprof_http_check.py delta ABS0 DELTA ABS1 SECS   `go tool pprof -raw` texts of
                                                  an absolute allocs profile, a
                                                  SECS-second delta, another
                                                  absolute one: the delta covers
                                                  SECS seconds and holds only
                                                  what was allocated meanwhile
  pprof_http_check.py deltaheap DELTA SECS         a heap?gc=1 delta (-raw): its
                                                  duration, and the collected
                                                  heap's site in it
"""
import gzip
import json
import re
import socket
import sys
import threading
import time

# The limits src/pprof_http.c sets (its essay says why).
CONN_TIMEOUT_S = 10
CONN_LIFETIME_S = 30
MAX_CONNS_PER_IP = 16
MAX_DELTAS = 8
MAX_DELTA_S = 3600


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def wait_port(path, timeout):
    pat = re.compile(r"gcmalloc: pprof: serving http://([0-9.]+|\[[0-9a-f:]+\]):(\d+)/debug/pprof/")
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    m = pat.search(line)
                    if m:
                        return int(m.group(2))
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    fail("no 'gcmalloc: pprof: serving' line in %s after %ss" % (path, timeout))


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def raw(port, data, timeout=20):
    """Sends data as is and reads the reply to the end: (status, headers, body)."""
    s = connect(port, timeout)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    reply = b"".join(chunks)
    if not reply:
        return 0, {}, b""
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        fail("not an HTTP reply: %r" % lines[0][:80])
    headers = {}
    for h in lines[1:]:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body


def get(port, path, method="GET", extra=""):
    req = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s\r\n" % (
        method, path, port, extra)
    return raw(port, req.encode("latin-1"))


def expect(port, path, status, what, method="GET"):
    st, hd, body = get(port, path, method)
    if st != status:
        fail("%s: %s %s gave %d, want %d (%r)" % (what, method, path, st, status, body[:200]))
    return hd, body


def memstats_fields(srcdir):
    """The field names of struct gcm_memstats, from the public header."""
    text = open(srcdir + "/include/gcmalloc/stats.h").read()
    body = text[text.index("struct gcm_memstats {"):]
    body = body[:body.index("\n};")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return re.findall(r"^\s*(?:uint64_t|uint32_t|int64_t|double)\s+(\w+)", body, flags=re.M)


def read_memstats(port, srcdir):
    hd, body = expect(port, "/debug/pprof/memstats", 200, "memstats")
    if not hd.get("content-type", "").startswith("application/json"):
        fail("memstats content type: %r" % hd.get("content-type"))
    try:
        ms = json.loads(body)
    except ValueError as e:
        fail("memstats is not JSON: %s: %r" % (e, body[:200]))
    want = memstats_fields(srcdir)
    if len(want) < 40:
        fail("could not read the fields of stats.h (%d found)" % len(want))
    if list(ms.keys()) != want:
        missing = [k for k in want if k not in ms]
        extra = [k for k in ms if k not in want]
        fail("memstats keys differ from struct gcm_memstats: missing %s, extra %s, "
             "or in another order" % (missing, extra))
    for k, v in ms.items():
        if k in ("pause_ns", "pause_end"):
            if not (isinstance(v, list) and len(v) == 256 and all(isinstance(x, int) for x in v)):
                fail("memstats %s: want 256 integers" % k)
        elif k == "gc_cpu_fraction":
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                fail("memstats gc_cpu_fraction out of [0, 1]: %r" % v)
        elif not isinstance(v, int) or (v < 0 and k not in ("gc_percent",)):
            fail("memstats %s: want a non-negative integer, got %r" % (k, v))
    return ms


def check_profile(port, path):
    hd, body = expect(port, path, 200, "profile " + path)
    if hd.get("content-type") != "application/octet-stream":
        fail("%s content type: %r" % (path, hd.get("content-type")))
    if int(hd.get("content-length", "-1")) != len(body):
        fail("%s: content-length %s but %d bytes" % (path, hd.get("content-length"), len(body)))
    if body[:2] != b"\x1f\x8b":
        fail("%s is not gzipped" % path)
    pb = gzip.decompress(body)
    # profile.proto: field 1 (sample_type, length-delimited) comes first.
    if not pb or pb[0] != 0x0a:
        fail("%s does not start with a sample_type" % path)
    for word in (b"alloc_objects", b"alloc_space", b"inuse_objects", b"inuse_space"):
        if word not in pb:
            fail("%s has no %s sample type" % (path, word.decode()))
    return pb


def pb_fields(pb):
    """The top-level (field number, value) pairs of a protobuf message;
    length-delimited values as bytes, varints as signed int64."""
    out, i = [], 0

    def varint():
        nonlocal i
        v, shift = 0, 0
        while True:
            b = pb[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v
    while i < len(pb):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = varint()
            out.append((num, v - (1 << 64) if v >= 1 << 63 else v))
        elif wt == 2:
            n = varint()
            out.append((num, pb[i:i + n]))
            i += n
        else:
            fail("unexpected wire type %d in a profile" % wt)
    return out


def check_delta(port, srcdir):
    """?seconds=N: the reply comes N seconds later with duration_nanos set,
    the server answers others meanwhile, at most MAX_DELTAS wait at once,
    and a client that hangs up frees its place at once."""
    result = {}

    def fetch():
        t0 = time.time()
        result["reply"] = get(port, "/debug/pprof/allocs?seconds=2")
        result["took"] = time.time() - t0
    th = threading.Thread(target=fetch)
    th.start()
    time.sleep(0.3)
    t0 = time.time()
    read_memstats(port, srcdir)
    if time.time() - t0 > 1:
        fail("memstats took %.1fs while a delta profile was waiting" % (time.time() - t0))
    th.join()
    st, hd, body = result["reply"]
    if st != 200:
        fail("allocs?seconds=2: status %d (%r)" % (st, body[:200]))
    if not 2.0 <= result["took"] < 6:
        fail("allocs?seconds=2 answered after %.2fs" % result["took"])
    if hd.get("content-disposition") != 'attachment; filename="allocs-delta"':
        fail("delta content-disposition: %r" % hd.get("content-disposition"))
    pb = gzip.decompress(body)
    fields = pb_fields(pb)
    dur = [v for n, v in fields if n == 10]
    tn = [v for n, v in fields if n == 9]
    if len(dur) != 1 or not 1.9e9 <= dur[0] <= 6e9:
        fail("delta duration_nanos: %r, want about 2e9" % dur)
    if len(tn) != 1 or abs(tn[0] / 1e9 - time.time()) > 30:
        fail("delta time_nanos: %r" % tn)
    # The absolute profile has no duration.
    _, body = expect(port, "/debug/pprof/allocs", 200, "allocs")
    if any(n == 10 for n, _ in pb_fields(gzip.decompress(body))):
        fail("the absolute profile has a duration_nanos")

    # MAX_DELTAS parked requests; one more is turned away at once.
    parked = []
    for _ in range(MAX_DELTAS):
        s = connect(port)
        s.sendall(b"GET /debug/pprof/heap?seconds=20 HTTP/1.1\r\nHost: x\r\n\r\n")
        parked.append(s)
    end = time.time() + 5
    while True:
        t0 = time.time()
        st, _, body = get(port, "/debug/pprof/heap?seconds=1")
        if st == 503:
            break
        if time.time() > end:
            fail("delta %d of %d: status %d, want 503" % (MAX_DELTAS + 1, MAX_DELTAS, st))
    if time.time() - t0 > 1:
        fail("the 503 for one delta too many took %.1fs" % (time.time() - t0))
    # They hang up: their places are free long before their 20 seconds.
    for s in parked:
        s.close()
    end = time.time() + 3
    while True:
        st, _, body = get(port, "/debug/pprof/heap?seconds=1")
        if st == 200:
            break
        if st != 503 or time.time() > end:
            fail("after the parked clients hung up: status %d (%r)" % (st, body[:100]))
        time.sleep(0.1)


def raw_text(path):
    """(duration in seconds or None, [values per sample]) of a -raw text."""
    dur, samples, in_samples = None, [], False
    for line in open(path):
        m = re.match(r"Duration: ([0-9.]+)(ms|s)?$", line.strip())
        if m:
            dur = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        if line.startswith("Samples:"):
            in_samples = True
        elif in_samples and re.match(r"^[A-Z]", line):
            in_samples = False
        m = re.match(r"^\s*(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+):", line)
        if in_samples and m:
            samples.append([int(x) for x in m.groups()])
    return dur, samples


def check_raw_delta(abs0, delta, abs1, secs):
    """abs0 and abs1 are absolute allocs profiles taken just before and just
    after the delta: the delta's allocations must fit in what happened
    between them (a cumulative profile served by mistake would hold all of
    abs0 besides), and be under everything before."""
    dur, ds = raw_text(delta)
    if dur is None or not secs - 0.1 <= dur <= secs + 1.5:
        fail("delta: Duration %r, want about %ss" % (dur, secs))
    d0, s0 = raw_text(abs0)
    _, s1 = raw_text(abs1)
    if d0:
        fail("an absolute profile has a Duration (%r)" % d0)
    t0 = sum(v[0] for v in s0)
    t1 = sum(v[0] for v in s1)
    d = sum(v[0] for v in ds)
    if not ds or d <= 0:
        fail("delta: no allocations in %ss of a busy service" % secs)
    if any(v[0] < 0 or v[1] < 0 for v in ds):
        fail("delta: negative alloc_* values")
    if any(v == [0, 0, 0, 0] for v in ds):
        fail("delta: a sample with no change was kept")
    # Unbiasing is not exactly additive: allow a quarter more.
    if d > 1.25 * (t1 - t0) + 100:
        fail("delta: %d objects allocated, but only %d between the two absolute "
             "profiles around it" % (d, t1 - t0))
    # The service ran several times the window before it, at a steady rate.
    if d >= t0:
        fail("delta: %d objects allocated in %ss, but only %d in all before it "
             "(a cumulative profile?)" % (d, secs, t0))
    print("delta: %d objects in %.2fs; %d between the absolute profiles, %d before"
          % (d, dur, t1 - t0, t0))


def check_raw_delta_heap(delta, secs):
    dur, ds = raw_text(delta)
    if dur is None or not secs - 0.1 <= dur <= secs + 2.5:
        fail("heap delta: Duration %r, want about %ss" % (dur, secs))
    if not ds:
        fail("heap delta: no samples")
    if "cache_page" not in open(delta).read():
        fail("heap delta with gc=1: the collected heap's site (cache_page) is missing")
    print("heap delta: %d samples, %d with negative in-use space"
          % (len(ds), sum(1 for v in ds if v[3] < 0)))


def check_index(port):
    hd, body = expect(port, "/debug/pprof/", 200, "index")
    if not hd.get("content-type", "").startswith("text/html"):
        fail("index content type: %r" % hd.get("content-type"))
    html = body.decode()
    for link in ("href='heap'", "href='allocs'", "href='memstats'", "href='heap?gc=1'"):
        if link not in html:
            fail("index lacks the link %s" % link)
    if "go tool pprof http://127.0.0.1:%d/debug/pprof/heap" % port not in html:
        fail("index lacks the go tool pprof command for this port")
    # Go's redirect of the subtree without its slash.
    hd, _ = expect(port, "/debug/pprof", 301, "redirect")
    if hd.get("location") != "/debug/pprof/":
        fail("redirect location: %r" % hd.get("location"))
    # A Host header is quoted into the page, escaped.
    st, _, body = raw(port, b"GET /debug/pprof/ HTTP/1.1\r\nHost: <script>x</script>\r\n"
                      b"Connection: close\r\n\r\n")
    if st != 200 or b"<script>" in body:
        fail("Host header not escaped in the index (status %d)" % st)


def check_malformed(port):
    """Every malformed request gets a 4xx; none gets anything else."""
    cases = [
        ("/debug/pprof/heap?gc=banana", 400, "GET"),
        ("/debug/pprof/heap?gc=", 400, "GET"),
        ("/debug/pprof/heap?gc", 400, "GET"),
        ("/debug/pprof/heap?gc=-1", 400, "GET"),
        ("/debug/pprof/heap?gc=99999999999999999999", 400, "GET"),
        ("/debug/pprof/heap?seconds=", 400, "GET"),
        ("/debug/pprof/heap?seconds=0", 400, "GET"),
        ("/debug/pprof/heap?seconds=-1", 400, "GET"),
        ("/debug/pprof/heap?seconds=banana", 400, "GET"),
        ("/debug/pprof/heap?seconds=1.5", 400, "GET"),
        ("/debug/pprof/allocs?seconds=99999", 400, "GET"),
        ("/debug/pprof/allocs?seconds=%d" % (MAX_DELTA_S + 1), 400, "GET"),
        ("/debug/pprof/heap?seconds=2&debug=1", 400, "GET"),
        ("/debug/pprof/allocs?debug=1&seconds=2", 400, "GET"),
        ("/debug/pprof/memstats?seconds=2", 400, "GET"),
        ("/debug/pprof/heap?debug=1", 400, "GET"),
        ("/debug/pprof/heap?nope=1", 400, "GET"),
        ("/debug/pprof/memstats?gc=1", 400, "GET"),
        ("/debug/pprof/?x", 400, "GET"),
        ("/debug/pprof/goroutine", 404, "GET"),
        ("/debug/pprof/heap/", 404, "GET"),
        ("/debug/pprof/../../etc/passwd", 404, "GET"),
        ("/", 404, "GET"),
        ("/debug/pprof/heap", 405, "POST"),
        ("/debug/pprof/heap", 405, "DELETE"),
        ("/debug/pprof/", 405, "PUT"),
        ("/debug/pprof/", 405, "BREW"),
    ]
    for path, status, method in cases:
        hd, body = expect(port, path, status, "malformed request", method)
        if status == 405 and hd.get("allow") != "GET, HEAD":
            fail("405 without 'Allow: GET, HEAD' (%r)" % hd.get("allow"))
        if not body.endswith(b"\n") or b"<" in body:
            fail("%s %s: error body should be one plain line: %r" % (method, path, body))
        # Go's words for the delta parameter's refusals.
        if "seconds=" in path and "memstats" not in path:
            want = (b"seconds and debug params are incompatible" if "debug=1" in path
                    else b'invalid value for "seconds"')
            if want not in body:
                fail("%s: %r, want %r" % (path, body, want))
    # The symbol page (pprof's fallback symbolization): GET says symbols
    # are served; addresses it does not know, or junk, get no line; a body
    # over its limit is refused.
    _, body = expect(port, "/debug/pprof/symbol", 200, "symbol")
    if body != b"num_symbols: 1\n":
        fail("GET symbol: %r" % body)
    junk = b"0x10+junk+0xffffffffffffff+99999999999999999999999+0x"
    st, _, body = raw(port, b"POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(junk) + junk)
    if st != 200 or body != b"num_symbols: 1\n":
        fail("POST symbol with unknown addresses: %d %r" % (st, body))
    big = b"0x1+" * ((1 << 20) // 4 + 16)
    try:
        st, _, _ = raw(port, b"POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(big) + big)
    except (BrokenPipeError, ConnectionResetError):
        st = -1
    if st != 413:
        fail("POST symbol over the limit: %d, want 413" % st)
    # A very long URL, a header block larger than a connection may hold,
    # garbage instead of a request line, binary junk, HTTP/0.9, a bad version.
    floods = [
        ("long URL", b"GET /debug/pprof/heap?" + b"a" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("long header", b"GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"b" * 100000
         + b"\r\n\r\n"),
        ("many headers", b"GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\n"
         + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n"),
        ("garbage line", b"this is not http\r\n\r\n"),
        ("binary junk", bytes(range(256)) * 4 + b"\r\n\r\n"),
        ("bad version", b"GET /debug/pprof/ HTTP/x.y\r\nHost: x\r\n\r\n"),
        ("space in URL", b"GET /debug/pprof/ heap HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    for what, data in floods:
        try:
            st, _, _ = raw(port, data)
        except (BrokenPipeError, ConnectionResetError):
            st = -1  # the server hung up while we were still sending: fine
        if st != -1 and not 400 <= st < 500:
            fail("%s: status %d, want a 4xx" % (what, st))
    # A well-formed request of a version this server does not speak is
    # answered 505 HTTP Version Not Supported, as RFC 9110 (15.6.6) says.
    st, _, _ = raw(port, b"GET /debug/pprof/ HTTP/7.5\r\nHost: x\r\n\r\n")
    if st != 505:
        fail("HTTP/7.5: status %d, want 505" % st)
    # Requests split into tiny writes still work (the parser must not
    # depend on one packet per request).
    s = connect(port)
    for b in b"GET /debug/pprof/memstats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
        s.send(bytes([b]))
    reply = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        reply += b
    s.close()
    if not reply.startswith(b"HTTP/1.1 200"):
        fail("a request sent a byte at a time: %r" % reply[:60])


def check_slowloris(port):
    """Idle partial requests are timed out; while they wait, and while the
    connection limit is reached, the program is untouched and the endpoint
    recovers."""
    idle = []
    for _ in range(4):
        s = connect(port, timeout=CONN_TIMEOUT_S + 15)
        s.sendall(b"GET /debug/pprof/heap HTTP/1.1\r\nHost: x\r\nX-Part")
        idle.append(s)
    # Served while they hang.
    expect(port, "/debug/pprof/memstats", 200, "memstats during a slowloris attack")
    t0 = time.time()
    for s in idle:
        try:
            b = s.recv(100)
        except (ConnectionResetError, socket.timeout) as e:
            if isinstance(e, socket.timeout):
                fail("an idle partial request was still open after %ds" % (CONN_TIMEOUT_S + 15))
            b = b""
        if b and not b.startswith(b"HTTP/1.1 4"):
            fail("an idle partial request got %r" % b[:40])
        s.close()
    took = time.time() - t0
    if took > CONN_TIMEOUT_S + 5:
        fail("idle connections closed after %.1fs, want about %ds" % (took, CONN_TIMEOUT_S))
    # More connections than one address may hold: the excess is refused or
    # closed at once, never queued for good, and the endpoint comes back.
    flood = []
    for _ in range(MAX_CONNS_PER_IP + 8):
        try:
            flood.append(connect(port, timeout=5))
        except OSError:
            pass
    refused = 0
    for s in flood:
        s.settimeout(0.5)
        try:
            if s.recv(1) == b"":
                refused += 1
        except socket.timeout:
            pass
        except ConnectionResetError:
            refused += 1
    for s in flood:
        s.close()
    if refused < 8:
        fail("connection limit: only %d of %d connections were turned away" %
             (refused, len(flood)))
    end = time.time() + 5
    while True:
        try:
            st, _, _ = get(port, "/debug/pprof/memstats")
            if st == 200:
                break
        except OSError:
            pass
        if time.time() > end:
            fail("the endpoint did not recover after a connection flood")
        time.sleep(0.1)


def trickle(port, seconds):
    """A client sending one header byte a second: the idle timeout never
    fires, the lifetime limit must."""
    s = connect(port, timeout=5)
    s.sendall(b"GET /debug/pprof/heap HTTP/1.1\r\nHost: x\r\n")
    t0 = time.time()
    while time.time() - t0 < seconds:
        try:
            s.send(b"X")
        except (BrokenPipeError, ConnectionResetError):
            break
        s.settimeout(1)
        try:
            b = s.recv(100)
            if b == b"" or b.startswith(b"HTTP/1.1 4"):
                break
        except socket.timeout:
            pass
        except ConnectionResetError:
            break
    took = time.time() - t0
    s.close()
    if took >= seconds:
        fail("a trickling client was still connected after %.0fs" % took)
    if took < CONN_LIFETIME_S - 2:
        fail("a trickling client was cut after %.1fs, before the %ds lifetime" %
             (took, CONN_LIFETIME_S))
    print("trickle: cut after %.1fs" % took)


def check_service(port, srcdir):
    check_index(port)
    ms0 = read_memstats(port, srcdir)
    if ms0["preload_mode"] != 0:
        fail("preload_mode %d in a program linking gcmalloc" % ms0["preload_mode"])
    # The service allocates: a few hundred kilobytes at least by now.
    end = time.time() + 10
    while read_memstats(port, srcdir)["total_alloc"] < 4 << 20:
        if time.time() > end:
            fail("the service's total_alloc stays under 4 MiB")
        time.sleep(0.2)
    check_profile(port, "/debug/pprof/heap")
    check_profile(port, "/debug/pprof/allocs")
    check_profile(port, "/debug/pprof/heap?debug=0")
    # ?gc=1 runs exactly one forced collection; gc=0 none.
    f0 = read_memstats(port, srcdir)["num_forced_gc"]
    check_profile(port, "/debug/pprof/heap?gc=1")
    f1 = read_memstats(port, srcdir)["num_forced_gc"]
    if f1 != f0 + 1:
        fail("heap?gc=1: num_forced_gc went from %d to %d" % (f0, f1))
    check_profile(port, "/debug/pprof/heap?gc=0")
    if read_memstats(port, srcdir)["num_forced_gc"] != f1:
        fail("heap?gc=0 ran a collection")
    # HEAD: headers only.
    st, hd, body = get(port, "/debug/pprof/memstats", "HEAD")
    if st != 200 or body != b"":
        fail("HEAD memstats: %d with %d body bytes" % (st, len(body)))
    check_malformed(port)
    check_delta(port, srcdir)
    check_slowloris(port)
    # Still serving, and still the same process.
    ms = read_memstats(port, srcdir)
    if ms["total_alloc"] <= ms0["total_alloc"]:
        fail("the service stopped allocating while it was probed")


def check_preload(port, srcdir, mode):
    check_index(port)
    ms = read_memstats(port, srcdir)
    want = {"fast": 1, "leakcheck": 2, "gc": 3}[mode]
    if ms["preload_mode"] != want:
        fail("preload_mode %d, want %d (%s)" % (ms["preload_mode"], want, mode))
    # The program's mallocs are sampled (label kind=malloc) and served.
    end = time.time() + 10
    while b"malloc" not in check_profile(port, "/debug/pprof/allocs"):
        if time.time() > end:
            fail("the preloaded program's profile has no kind=malloc samples")
        time.sleep(0.2)
    # ?gc=1 collects where there is a collector to run (the collected
    # modes); fast mode has none, and its figures are exact anyway.
    f0 = read_memstats(port, srcdir)["num_forced_gc"]
    check_profile(port, "/debug/pprof/heap?gc=1")
    f1 = read_memstats(port, srcdir)["num_forced_gc"]
    if f1 != f0 + (0 if mode == "fast" else 1):
        fail("preload %s: heap?gc=1 took num_forced_gc from %d to %d" % (mode, f0, f1))
    # A delta profile, suspended and resumed, under the preload library.
    t0 = time.time()
    _, body = expect(port, "/debug/pprof/allocs?seconds=1", 200, "preload: delta")
    if time.time() - t0 < 1 or not any(n == 10 for n, _ in pb_fields(gzip.decompress(body))):
        fail("preload %s: allocs?seconds=1 is not a one-second delta" % mode)
    for path, status, method in (("/debug/pprof/heap?gc=banana", 400, "GET"),
                                 ("/debug/pprof/heap", 405, "POST"),
                                 ("/debug/pprof/nope", 404, "GET")):
        expect(port, path, status, "preload: malformed request", method)
    st, _, _ = raw(port, b"GET /debug/pprof/heap?" + b"a" * 200000 + b" HTTP/1.1\r\n\r\n")
    if not 400 <= st < 500:
        fail("preload: long URL gave %d" % st)
    read_memstats(port, srcdir)


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    cmd = sys.argv[1]
    if cmd == "port":
        print(wait_port(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 20))
    elif cmd == "service":
        check_service(int(sys.argv[2]), sys.argv[3])
    elif cmd == "preload":
        check_preload(int(sys.argv[2]), sys.argv[3],
                      sys.argv[4] if len(sys.argv) > 4 else "fast")
    elif cmd == "trickle":
        trickle(int(sys.argv[2]), float(sys.argv[3]))
    elif cmd == "delta":
        check_raw_delta(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif cmd == "deltaheap":
        check_raw_delta_heap(sys.argv[2], float(sys.argv[3]))
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    main()
