/*
 * test_pprof_http.c — src/pprof_http.c through its public entry point,
 * gcm_pprof_serve(), with a small HTTP client of its own: the refusals
 * (malformed address, non-loopback address, port in use), one server per
 * process, the pages and their status codes, ?gc=1 running exactly one
 * collection, a delta profile (?seconds=1) answered a second later, a
 * profile that cannot be written answered 500 (absolute and delta), the
 * symbol page naming a known function, and fork (the
 * child starts a server of its own on IPv6 loopback while the parent's
 * keeps serving).  The end-to-end script (pprof_http.sh) covers the
 * environment variables, malformed traffic, `go tool pprof` and the
 * preload library.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"

static int port; /* of the server this process runs */

/* --- a tiny client ------------------------------------------------------------- */

static char reply[1 << 20];
static size_t reply_len;

/* Sends req to [family loopback]:p and reads the reply to EOF; returns the
 * status code (0: no reply).  The body starts at body(). */
static int http_at(int family, int p, const char *req, size_t req_len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc;
    if (family == AF_INET6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)p),
                                 .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc != 0)
        fail_msg("connect to port %d: %s", p, strerror(errno));
    for (size_t off = 0; off < req_len;) {
        ssize_t n = write(fd, req + off, req_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        off += (size_t)n;
    }
    reply_len = 0;
    for (;;) {
        ssize_t n = read(fd, reply + reply_len, sizeof reply - 1 - reply_len);
        /* A socket with a receive timeout is not restarted after a signal
         * (the collector stops the world with signals): retry. */
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        reply_len += (size_t)n;
    }
    close(fd);
    reply[reply_len] = '\0';
    int status = 0;
    if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    return status;
}

static int get(const char *method, const char *path)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                     method, path);
    return http_at(AF_INET, port, req, (size_t)n);
}

static const char *body(void)
{
    const char *b = strstr(reply, "\r\n\r\n");
    return b != NULL ? b + 4 : "";
}

static bool has_header(const char *line)
{
    const char *end = strstr(reply, "\r\n\r\n");
    const char *h = strstr(reply, line);
    return h != NULL && end != NULL && h < end;
}

/* --- refusals ------------------------------------------------------------------- */

static void test_bad_addresses(void **state)
{
    (void)state;
    int p = 123;
    assert_int_equal(gcm_pprof_serve(NULL, &p), EINVAL);
    assert_int_equal(p, 0);
    static const char *const bad[] = {
        "", "banana", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
        "127.0.0.1:-1", "127.0.0.1:60 60", "::1:6060", "[::1]", "[::1]6060",
        "[banana]:6060", "example.com:6060", "999.1.1.1:6060", ":0x10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = 123;
        if (gcm_pprof_serve(bad[i], &p) != EINVAL)
            fail_msg("gcm_pprof_serve(\"%s\") was not refused as malformed", bad[i]);
        assert_int_equal(p, 0);
    }
}

/* Without GCMALLOC_PPROF_ALLOW_REMOTE=1 nothing but loopback is served. */
static void test_remote_refused(void **state)
{
    (void)state;
    assert_false(gcm__opt_bool(GCM_OPT_PPROF_ALLOW_REMOTE));
    static const char *const remote[] = {
        "10.1.2.3:0", "0.0.0.0:0", "[::]:0", "192.0.2.1:6060", "[2001:db8::1]:0",
        "[::ffff:10.0.0.1]:0",
    };
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++) {
        int p = 123;
        if (gcm_pprof_serve(remote[i], &p) != EPERM)
            fail_msg("gcm_pprof_serve(\"%s\") was not refused", remote[i]);
        assert_int_equal(p, 0);
    }
}

static void test_port_in_use(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
    int p = 123;
    assert_int_equal(gcm_pprof_serve(addr, &p), EADDRINUSE);
    assert_int_equal(p, 0);
    close(fd);
}

/* --- serving ---------------------------------------------------------------------- */

static void test_serve(void **state)
{
    (void)state;
    assert_int_equal(gcm_pprof_serve(" :0 ", &port), 0); /* blanks are trimmed */
    assert_true(port > 0 && port < 65536);
    /* One server per process: a second call says so and names the port. */
    int again = 0;
    assert_int_equal(gcm_pprof_serve("127.0.0.1:0", &again), EALREADY);
    assert_int_equal(again, port);
    assert_int_equal(gcm_pprof_serve("127.0.0.1:0", NULL), EALREADY);
}

static void test_pages(void **state)
{
    (void)state;
    assert_int_equal(get("GET", "/debug/pprof/"), 200);
    assert_non_null(strstr(body(), "<a href='heap'>heap</a>"));
    assert_true(has_header("Content-Type: text/html"));

    assert_int_equal(get("GET", "/debug/pprof/memstats"), 200);
    assert_true(has_header("Content-Type: application/json"));
    assert_true(body()[0] == '{');
    assert_non_null(strstr(body(), "\n\"num_forced_gc\": "));
    assert_non_null(strstr(body(), "\n\"pause_ns\": [0,"));

    static const char *const profiles[] = {"/debug/pprof/heap", "/debug/pprof/allocs",
                                           "/debug/pprof/heap?gc=0&debug=0"};
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
        assert_int_equal(get("GET", profiles[i]), 200);
        const unsigned char *b = (const unsigned char *)body();
        assert_int_equal(b[0], 0x1f); /* gzip */
        assert_int_equal(b[1], 0x8b);
        char cl[64];
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n",
                 reply_len - (size_t)((const char *)b - reply));
        assert_true(has_header(cl));
    }
    /* HEAD: the headers of GET, no body. */
    assert_int_equal(get("HEAD", "/debug/pprof/heap"), 200);
    assert_string_equal(body(), "");

    assert_int_equal(get("GET", "/debug/pprof"), 301);
    assert_true(has_header("Location: /debug/pprof/\r\n"));
}

static void test_gc_parameter(void **state)
{
    (void)state;
    struct gcm_memstats ms;
    gcm_read_memstats(&ms);
    uint32_t before = ms.num_forced_gc;
    assert_int_equal(get("GET", "/debug/pprof/heap?gc=1"), 200);
    gcm_read_memstats(&ms);
    assert_int_equal(ms.num_forced_gc, before + 1);
    assert_int_equal(get("GET", "/debug/pprof/heap?gc=0"), 200);
    assert_int_equal(get("GET", "/debug/pprof/heap?gc=banana"), 400);
    gcm_read_memstats(&ms);
    assert_int_equal(ms.num_forced_gc, before + 1);
}

/* ?seconds=N: the reply comes N seconds later, a delta named as Go's; with
 * gc=1 a collection at each end of the window. */
static void test_delta(void **state)
{
    (void)state;
    struct gcm_memstats ms;
    gcm_read_memstats(&ms);
    uint32_t before = ms.num_forced_gc;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(get("GET", "/debug/pprof/heap?gc=1&seconds=1"), 200);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (took < 1.0 || took > 10)
        fail_msg("heap?seconds=1 answered after %.2fs", took);
    assert_true(has_header("Content-Disposition: attachment; filename=\"heap-delta\"\r\n"));
    const unsigned char *b = (const unsigned char *)body();
    assert_int_equal(b[0], 0x1f); /* gzip */
    assert_int_equal(b[1], 0x8b);
    gcm_read_memstats(&ms);
    assert_int_equal(ms.num_forced_gc, before + 2);
    assert_int_equal(get("HEAD", "/debug/pprof/allocs?seconds=1"), 200);
    assert_true(has_header("Content-Disposition: attachment; filename=\"allocs-delta\"\r\n"));
    assert_string_equal(body(), "");
}

/* A profile the server cannot write is its own failure: 500, absolute and
 * delta alike, and the next request is served.  RLIMIT_FSIZE 0 makes the
 * write into the profile's memfd fail with EFBIG; the SIGXFSZ that comes
 * with it stays pending on the server thread, which blocks every
 * asynchronous signal.  The limit is the process's, so this thread writes
 * no file until it is restored: the statuses are checked after. */
static void test_profile_unwritable(void **state)
{
    (void)state;
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit none = {.rlim_cur = 0, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &none), 0);
    int heap = get("GET", "/debug/pprof/heap");
    bool heap_said = strcmp(body(), "failed to write the heap profile: File too large\n") == 0;
    int delta = get("GET", "/debug/pprof/allocs?seconds=1");
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(heap, 500);
    assert_true(heap_said);
    assert_int_equal(delta, 500);
    assert_string_equal(body(), "failed to write the allocs-delta profile: File too large\n");
    assert_int_equal(get("GET", "/debug/pprof/heap"), 200);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        int status;
    } cases[] = {
        {"GET", "/debug/pprof/heap?gc=banana", 400},
        {"GET", "/debug/pprof/heap?seconds=", 400},
        {"GET", "/debug/pprof/heap?seconds=0", 400},
        {"GET", "/debug/pprof/heap?seconds=3601", 400},
        {"GET", "/debug/pprof/allocs?seconds=1&debug=1", 400},
        {"GET", "/debug/pprof/heap?debug=2", 400},
        {"GET", "/debug/pprof/heap?color=red", 400},
        {"GET", "/debug/pprof/memstats?gc=1", 400},
        {"GET", "/debug/pprof/goroutine", 404},
        {"GET", "/", 404},
        {"POST", "/debug/pprof/heap", 405},
        {"DELETE", "/debug/pprof/", 405},
        {"OPTIONS", "/debug/pprof/memstats", 405},
        {"PUT", "/debug/pprof/symbol", 405},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = get(cases[i].method, cases[i].path);
        if (st != cases[i].status)
            fail_msg("%s %s: %d, want %d", cases[i].method, cases[i].path, st,
                     cases[i].status);
        assert_true(has_header("Content-Type: text/plain"));
        if (st == 405)
            assert_true(has_header(strstr(cases[i].path, "symbol") != NULL
                                       ? "Allow: GET, HEAD, POST\r\n"
                                       : "Allow: GET, HEAD\r\n"));
    }
}

/* A function with a name of its own in this binary's symbol table. */
__attribute__((noinline)) int pprof_http_known_function(int x);
__attribute__((noinline)) int pprof_http_known_function(int x)
{
    return x * 3 + 1;
}

static void test_symbol(void **state)
{
    (void)state;
    assert_int_equal(pprof_http_known_function(1), 4);
    uintptr_t pc = (uintptr_t)&pprof_http_known_function + 1;
    char req[512], line[128];
    char addrs[160];
    /* A known address between two that are not, split by '+' as pprof
     * sends them. */
    int alen = snprintf(addrs, sizeof addrs, "0x10+%#lx+banana+0", (unsigned long)pc);
    int n = snprintf(req, sizeof req,
                     "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                     alen, addrs);
    assert_int_equal(http_at(AF_INET, port, req, (size_t)n), 200);
    snprintf(line, sizeof line, "num_symbols: 1\n%#lx pprof_http_known_function\n",
             (unsigned long)pc);
    assert_string_equal(body(), line);
    /* GET answers whether symbols are served at all. */
    assert_int_equal(get("GET", "/debug/pprof/symbol"), 200);
    assert_string_equal(body(), "num_symbols: 1\n");
    /* A body over the limit is refused. */
    static char big[(1 << 20) + 4096];
    size_t blen = (size_t)snprintf(big, sizeof big,
                                   "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Length: %d\r\nConnection: close\r\n\r\n",
                                   (1 << 20) + 16);
    memset(big + blen, '+', (1 << 20) + 16);
    assert_int_equal(http_at(AF_INET, port, big, blen + (1 << 20) + 16), 413);
}

/* --- fork -------------------------------------------------------------------------- */

static void test_fork(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* No descriptor of the parent's server came along... */
        for (int fd = 0; fd < 1024; fd++) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
                ss.ss_family == AF_INET &&
                ntohs(((struct sockaddr_in *)&ss)->sin_port) == port) {
                fprintf(stderr, "child: fd %d still holds the parent's port\n", fd);
                _exit(10);
            }
        }
        /* ...and the child may serve on its own, here on IPv6 loopback. */
        int p = 0;
        int rc = gcm_pprof_serve("[::1]:0", &p);
        if (rc != 0 || p == 0 || p == port) {
            fprintf(stderr, "child: gcm_pprof_serve: %s, port %d\n", strerror(rc), p);
            _exit(11);
        }
        char req[] = "GET /debug/pprof/memstats HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\n\r\n";
        if (http_at(AF_INET6, p, req, sizeof req - 1) != 200)
            _exit(12);
        exit(0); /* the exit handler stops the child's server */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(get("GET", "/debug/pprof/memstats"), 200);
}

int main(void)
{
    gcm_init();
    /* Something to profile. */
    for (int i = 0; i < 20000; i++)
        (void)gcm_malloc(64);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_remote_refused),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_gc_parameter),
        cmocka_unit_test(test_delta),
        cmocka_unit_test(test_profile_unwritable),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_symbol),
        cmocka_unit_test(test_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
