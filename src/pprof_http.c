/*
 * pprof_http.c — the live /debug/pprof endpoint: Go's net/http/pprof for a
 * C process.
 *
 *     GCMALLOC_PPROF_ADDR=127.0.0.1:6060 ./service &
 *     go tool pprof http://127.0.0.1:6060/debug/pprof/heap
 *
 *   /debug/pprof/           an HTML index of what is served, as Go's
 *   /debug/pprof/heap       the heap profile (?gc=1 collects first, as
 *                           Go's does, so in-use figures are as of now)
 *   /debug/pprof/allocs     the same data opening on alloc_space
 *     either with ?seconds=N  a delta profile, as Go's: what changed in
 *                           the next N seconds (1..3600), in-use values
 *                           possibly negative (see "delta profiles" below)
 *   /debug/pprof/memstats   gcm_read_memstats() as JSON
 *   /debug/pprof/symbol     names for addresses, for go tool pprof's
 *                           fallback symbolization, as Go's
 *
 * The profiles are the very files gcm_profile_write_view_fd() writes, so
 * everything docs/profiling.md shows works on a URL as on a file.
 *
 * Why libmicrohttpd, loaded on demand.  An HTTP server facing whatever
 * connects to it is exactly the code not to write again: libmicrohttpd
 * parses requests, bounds each connection's memory, times out idle
 * clients and answers protocol garbage with 4xx by itself.  It is not
 * linked, though: the preload library is loaded into every process an
 * operator starts with it, and libmicrohttpd brings gnutls, p11-kit,
 * nettle, gmp and six more libraries whose constructors would run in
 * every one of them.  So it is dlopen'ed (by soname, found at build time)
 * only when an endpoint is asked for; a machine without it gets one line
 * saying so, and everything else works.
 *
 * Whose thread.  libmicrohttpd can run threads of its own (an internal
 * polling thread, a thread per connection, a pool), but it would make them
 * with pthread_create, which gcmalloc interposes as the *program's*: they
 * would be registered with the collector yet not marked internal, and
 * every allocation the server makes — under the preload library, every
 * malloc of libmicrohttpd and of the profile writer's callers — would be
 * sampled into the very profile it serves.  MHD_OPTION_THREAD_STACK_SIZE
 * and friends tune those threads but cannot make them ours.  So the
 * daemon runs in "external" mode with epoll (MHD_USE_EPOLL without
 * MHD_USE_INTERNAL_POLLING_THREAD), in which libmicrohttpd starts no
 * thread at all, and one thread made by gcm__thread_spawn — registered
 * with the collector, so gcm_gc() for ?gc=1 is safe on it and the
 * pointers libmicrohttpd keeps on its stack are seen; marked internal, so
 * nothing it allocates is sampled — does everything libmicrohttpd does:
 * the dlopen (whose libraries' constructors allocate), the start, the
 * loop (poll() on libmicrohttpd's epoll descriptor and on an eventfd that
 * asks it to stop, then MHD_run) and the stop.  No program thread ever
 * runs libmicrohttpd code.  One thread is enough: profiles are built one
 * at a time anyway, a slow reader costs nothing because sending does
 * not block, and a delta profile's N seconds are not spent on the thread:
 * the request is suspended (libmicrohttpd's suspend/resume) and the loop
 * resumes it when its time is up, serving everyone else meanwhile.
 *
 * Signals.  The thread blocks every asynchronous signal except the
 * collector's two (it must still stop for a collection), so the program's
 * handlers never run on it, and a SIGPIPE raised by sending to a client
 * that went away stays pending on it, harmless; that is what lets
 * libmicrohttpd use sendfile (MHD_OPTION_SIGPIPE_HANDLED_BY_APP).
 *
 * Bad input never reaches the program.
 *   - Loopback only unless GCMALLOC_PPROF_ALLOW_REMOTE=1: a heap profile
 *     shows a program's code paths and what it holds.  A non-loopback
 *     address without it is refused with one line, never served.
 *   - GET and HEAD only (405; POST too on the symbol page), five known
 *     paths (404), known parameters with checked values (400; seconds
 *     from 1 to MAX_DELTA_S, never with debug).
 *   - Bounded: at most MAX_CONNS connections (MAX_CONNS_PER_IP from one
 *     address), each in a CONN_MEMORY pool that holds its request line and
 *     headers (longer ones are answered 414/431 by libmicrohttpd), each
 *     closed after CONN_TIMEOUT_S seconds without progress.  A client that
 *     trickles a byte now and then keeps resetting that clock (the
 *     slowloris attack), so a connection also lives at most
 *     CONN_LIFETIME_S seconds in all, whatever it does: the server thread
 *     shuts its socket down and libmicrohttpd closes it.  A delta request
 *     extends its connection's lifetime to its N seconds plus
 *     CONN_LIFETIME_S; at most MAX_DELTAS wait at once (503 beyond), each
 *     holding one snapshot (a pointer and four counts per site).  A profile is
 *     written into a memfd and sent from there, so even a large one never
 *     sits in the heap.
 *   - Two statuses for the server's own trouble, never mixed: 503 means
 *     "try later" (the delta or symbol requests' slots are all taken, or
 *     a parked delta was cut short by the program's exit); a reply that
 *     cannot be built (no memory for a snapshot, no memfd, a failed
 *     write) is a 500, whichever the page.
 *   - libmicrohttpd's own messages (mostly about misbehaving clients) are
 *     rate-limited in the program's log.
 *
 * Memory and locks.  libmicrohttpd allocates with malloc: under the
 * preload library that is gcmalloc's own, which serves any caller that
 * holds none of its locks, and nothing here calls into libmicrohttpd with
 * a gcmalloc lock held — starting and stopping are ordered by an atomic
 * state and two semaphores, not a lock.
 *
 * Start, stop, fork.  The endpoint starts from a constructor (the preload
 * library may start inside the program's first malloc, before threads can
 * be made), which does not wait for the thread, or from gcm_pprof_serve(),
 * which does and returns the outcome.  The thread binds the socket itself,
 * so a failure is reported with its errno, and the port the kernel picked
 * for port 0 is known at once: one diagnostics line names it.  At exit the
 * thread is asked to stop and waited for (a little, for a request in
 * progress); it stops the daemon, closing the port.  Threads do not
 * survive fork: a child closes its copies of the endpoint's sockets, so
 * it neither keeps the port bound nor holds the parent's clients open,
 * and may call gcm_pprof_serve() to start its own.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h> /* vsnprintf, for libmicrohttpd's messages only */
#include <stdlib.h> /* atexit */
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS /* thread.c interposes pthread_create */
#include <gc/gc.h>

#include "internal.h"

#ifndef GCM_MHD_SONAME
#error "GCM_MHD_SONAME (libmicrohttpd's soname) comes from CMakeLists.txt"
#endif

/* Limits (see the essay). */
#define MAX_CONNS 32
#define MAX_CONNS_PER_IP 16
#define CONN_TIMEOUT_S 10
#define CONN_LIFETIME_S 30
#define CONN_MEMORY (16 * 1024)
#define BACKLOG 16
#define STOP_WAIT_S 2
/* Delta profiles: at most MAX_DELTAS waiting at once, each at most
 * MAX_DELTA_S seconds long (an hour: longer windows are better served by
 * two absolute profiles and -base, which survive a dropped connection). */
#define MAX_DELTAS 8
#define MAX_DELTA_S 3600
/* Longest parameter value quoted back in a 400's body. */
#define SHOW_MAX 64

/* --- libmicrohttpd, resolved with dlsym ----------------------------------------- */

/* Declared with the header's own prototypes, so a mismatch is a compile
 * error rather than a call through the wrong type. */
static struct mhd_api {
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_run) *run;
    __typeof__(MHD_get_timeout) *get_timeout;
    __typeof__(MHD_get_daemon_info) *get_daemon_info;
    __typeof__(MHD_get_connection_info) *get_connection_info;
    __typeof__(MHD_get_connection_values_n) *get_connection_values_n;
    __typeof__(MHD_lookup_connection_value) *lookup_connection_value;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_create_response_from_fd) *create_response_from_fd;
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_is_feature_supported) *is_feature_supported;
    __typeof__(MHD_suspend_connection) *suspend_connection;
    __typeof__(MHD_resume_connection) *resume_connection;
} M;

static const struct {
    const char *name;
    size_t off;
} mhd_syms[] = {
    {"MHD_start_daemon", offsetof(struct mhd_api, start_daemon)},
    {"MHD_stop_daemon", offsetof(struct mhd_api, stop_daemon)},
    {"MHD_run", offsetof(struct mhd_api, run)},
    {"MHD_get_timeout", offsetof(struct mhd_api, get_timeout)},
    {"MHD_get_daemon_info", offsetof(struct mhd_api, get_daemon_info)},
    {"MHD_get_connection_info", offsetof(struct mhd_api, get_connection_info)},
    {"MHD_get_connection_values_n", offsetof(struct mhd_api, get_connection_values_n)},
    {"MHD_lookup_connection_value", offsetof(struct mhd_api, lookup_connection_value)},
    {"MHD_create_response_from_buffer",
     offsetof(struct mhd_api, create_response_from_buffer)},
    {"MHD_create_response_from_fd", offsetof(struct mhd_api, create_response_from_fd)},
    {"MHD_add_response_header", offsetof(struct mhd_api, add_response_header)},
    {"MHD_queue_response", offsetof(struct mhd_api, queue_response)},
    {"MHD_destroy_response", offsetof(struct mhd_api, destroy_response)},
    {"MHD_is_feature_supported", offsetof(struct mhd_api, is_feature_supported)},
    {"MHD_suspend_connection", offsetof(struct mhd_api, suspend_connection)},
    {"MHD_resume_connection", offsetof(struct mhd_api, resume_connection)},
};

static int mhd_loaded; /* 0 not tried, 1 loaded, -1 failed (and said so) */

/* Loads libmicrohttpd once; 0, or ELIBACC after one diagnostics line.
 * Called by the thread that won the start (the state machine below
 * serializes starts).  The library is never unloaded. */
static int load_mhd(void)
{
    if (mhd_loaded != 0)
        return mhd_loaded > 0 ? 0 : ELIBACC;
    mhd_loaded = -1;
    void *lib = dlopen(GCM_MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        gcm__diag("pprof: cannot load %s (%s): install libmicrohttpd "
                  "(Debian: libmicrohttpd12); not serving",
                  GCM_MHD_SONAME, e != NULL ? e : "unknown error");
        return ELIBACC;
    }
    for (size_t i = 0; i < GCM_ARRAY_LEN(mhd_syms); i++) {
        void *f = dlsym(lib, mhd_syms[i].name);
        if (f == NULL) {
            gcm__diag("pprof: %s has no %s; not serving", GCM_MHD_SONAME,
                      mhd_syms[i].name);
            return ELIBACC;
        }
        memcpy((char *)&M + mhd_syms[i].off, &f, sizeof f);
    }
    if (M.is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES) {
        gcm__diag("pprof: this %s was built without epoll; not serving",
                  GCM_MHD_SONAME);
        return ELIBACC;
    }
    mhd_loaded = 1;
    return 0;
}

/* --- state ------------------------------------------------------------------------- */

/* Start and stop are ordered by `state` (compare-and-swap), so nothing
 * holds a lock while libmicrohttpd runs or allocates. */
enum { OFF, STARTING, SERVING, STOPPING };

static struct {
    int state;
    pid_t pid;             /* the process that started it                   */
    struct MHD_Daemon *d;
    int listen_fd, epoll_fd, wake_fd;
    int port;
    char where[80];        /* "127.0.0.1:6060", "[::1]:6060"                */
    /* Sockets of open connections, for a forked child to close and for the
     * lifetime limit; each slot is set when libmicrohttpd accepts and
     * cleared before it closes (both on the server thread). */
    int conn_fd[MAX_CONNS];
    int64_t conn_deadline[MAX_CONNS]; /* server thread only */
    /* GCMALLOC_PPROF_ADDR, parsed at start-up (gcm__pprof_http_init). */
    gcm__addr env_addr;
    bool env_set;
    bool atexit_done;
} H = {.listen_fd = -1, .epoll_fd = -1, .wake_fd = -1};

static void close_fd(int *fd)
{
    int f = __atomic_exchange_n(fd, -1, __ATOMIC_ACQ_REL);
    if (f >= 0)
        close(f);
}

/* --- libmicrohttpd's messages ------------------------------------------------------ */

/* libmicrohttpd reports through this (MHD_OPTION_EXTERNAL_LOGGER): at
 * start-up, failures worth reading; later, mostly clients that broke the
 * protocol, which a hostile client could repeat at will.  So after
 * start-up at most LOG_BURST lines per minute reach the program's log.
 * The messages are printf formats with conversions gcm__fmt lacks, so
 * vsnprintf formats them: this runs on the server thread or the starting
 * thread, never inside an allocation, where libc's printf family is as
 * safe as in any program. */
#define LOG_BURST 5
static struct {
    int64_t window_ns;
    int lines;
    bool started;
} L;

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (L.started) {
        int64_t now = gcm__now_ns();
        if (now - L.window_ns > (int64_t)60 * 1000000000) {
            L.window_ns = now;
            L.lines = 0;
        }
        if (++L.lines > LOG_BURST) {
            if (L.lines == LOG_BURST + 1)
                gcm__diag("pprof: more libmicrohttpd messages this minute "
                          "are dropped");
            return;
        }
    }
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Its error replies quote the HTML page sent ("... code is 414
     * ('<html>...</html>')"): keep the code, drop the page. */
    char *page = strstr(msg, " ('<html>");
    char *end = page != NULL ? strstr(page, "')") : NULL;
    if (end != NULL)
        memmove(page, end + 2, strlen(end + 2) + 1);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    gcm__diag("pprof: libmicrohttpd: %s", msg);
}

/* Remembers connection sockets for a forked child (see the essay). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode what)
{
    (void)cls;
    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            M.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci == NULL)
            return;
        for (int i = 0; i < MAX_CONNS; i++) {
            int expected = -1;
            if (__atomic_compare_exchange_n(&H.conn_fd[i], &expected,
                                            ci->connect_fd, false,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                H.conn_deadline[i] =
                    gcm__now_ns() + (int64_t)CONN_LIFETIME_S * 1000000000;
                *socket_ctx = &H.conn_fd[i];
                return;
            }
        }
        *socket_ctx = NULL;
    } else if (*socket_ctx != NULL) {
        /* Before libmicrohttpd closes it: a child forked in between
         * keeps a copy open rather than closing a number reused since. */
        __atomic_store_n((int *)*socket_ctx, -1, __ATOMIC_RELEASE);
        *socket_ctx = NULL;
    }
}

/* --- text building ----------------------------------------------------------------- */

/* Responses are built in one static buffer: only the server thread builds
 * them, and libmicrohttpd copies each before the handler returns. */
static char out_buf[32 * 1024];

typedef struct sbuf {
    char *p;
    size_t cap, len; /* len may pass cap: the text did not fit */
} sbuf;

static void GCM_PRINTF(2, 3) sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    b->len += gcm__vfmt(room > 0 ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
}

/* Text that came from outside (a Host header, the program's name) as
 * HTML: only what is safe verbatim, the rest as character references. */
static void sb_html(sbuf *b, const char *s, size_t max)
{
    for (size_t i = 0; s[i] != '\0' && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr(" .,:-_/[]()+@", c) != NULL)
            sb_add(b, "%c", c);
        else
            sb_add(b, "&#%u;", c);
    }
}

/* --- responses ----------------------------------------------------------------------- */

static enum MHD_Result send_copy(struct MHD_Connection *c, unsigned status,
                                 const char *type, const char *body, size_t len,
                                 const char *allow)
{
    struct MHD_Response *r =
        M.create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO; /* out of memory: libmicrohttpd drops the connection */
    M.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    M.add_response_header(r, "X-Content-Type-Options", "nosniff");
    M.add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow != NULL)
        M.add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ok = M.queue_response(c, status, r);
    M.destroy_response(r);
    return ok;
}

/* A reply whose body is the file fd (a memfd), sent with sendfile;
 * libmicrohttpd closes fd with the response.  `disposition` may be NULL. */
static enum MHD_Result reply_from_fd(struct MHD_Connection *c, int fd,
                                     const char *type, const char *disposition)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return send_copy(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                         "text/plain; charset=utf-8", gcm__strerror(e),
                         strlen(gcm__strerror(e)), NULL);
    }
    struct MHD_Response *r = M.create_response_from_fd((size_t)st.st_size, fd);
    if (r == NULL) {
        close(fd);
        return MHD_NO;
    }
    M.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (disposition != NULL)
        M.add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
    M.add_response_header(r, "X-Content-Type-Options", "nosniff");
    M.add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = M.queue_response(c, MHD_HTTP_OK, r);
    M.destroy_response(r);
    return ok;
}

/* An error as Go's http.Error writes one: the message and a newline, as
 * plain text.  `allow` is the Allow header of a 405. */
static enum MHD_Result GCM_PRINTF(4, 0)
    send_verror(struct MHD_Connection *c, unsigned status, const char *allow,
                const char *fmt, va_list ap)
{
    char msg[512];
    size_t n = gcm__vfmt(msg, sizeof msg - 1, fmt, ap);
    if (n > sizeof msg - 2)
        n = sizeof msg - 2;
    msg[n++] = '\n';
    msg[n] = '\0';
    return send_copy(c, status, "text/plain; charset=utf-8", msg, n, allow);
}

static enum MHD_Result GCM_PRINTF(3, 4)
    send_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result ok = send_verror(c, status, NULL, fmt, ap);
    va_end(ap);
    return ok;
}

static enum MHD_Result GCM_PRINTF(3, 4)
    send_405(struct MHD_Connection *c, const char *allow, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result ok = send_verror(c, MHD_HTTP_METHOD_NOT_ALLOWED, allow, fmt, ap);
    va_end(ap);
    return ok;
}

/* --- query parameters ---------------------------------------------------------------- */

enum { P_GC = 1, P_DEBUG = 2, P_SECONDS = 4 };

typedef struct query {
    unsigned allowed; /* P_* this route takes                */
    long gc;          /* gc=N                                */
    long debug;       /* debug=N (only 0 is served)          */
    long seconds;     /* seconds=N, the first one; 0 = none  */
    char err[256];    /* the first problem, or ""            */
} query;

/* A non-negative decimal of at most 9 digits (no sign, no blanks). */
static bool small_uint(const char *v, size_t n, long *out)
{
    if (v == NULL || n == 0 || n > 9)
        return false;
    long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return true;
}

static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind,
                                   const char *key, size_t klen,
                                   const char *value, size_t vlen)
{
    (void)kind;
    query *q = cls;
    int kshow = (int)(klen > SHOW_MAX ? SHOW_MAX : klen);
    int vshow = (int)(vlen > SHOW_MAX ? SHOW_MAX : vlen);
    const char *v = value != NULL ? value : "";
    long x;
    if (klen == 2 && memcmp(key, "gc", 2) == 0 && (q->allowed & P_GC)) {
        if (!small_uint(value, vlen, &x)) {
            gcm__fmt(q->err, sizeof q->err,
                     "gc=%.*s: want a number (gc=1 collects before the "
                     "profile is taken)", vshow, v);
            return MHD_NO;
        }
        if (x > q->gc)
            q->gc = x;
    } else if (klen == 5 && memcmp(key, "debug", 5) == 0 && (q->allowed & P_DEBUG)) {
        /* A number other than 0 is refused once every parameter is seen:
         * with seconds, in Go's words (on_request). */
        if (!small_uint(value, vlen, &x)) {
            gcm__fmt(q->err, sizeof q->err,
                     "debug=%.*s: only the binary profile (debug=0) is "
                     "served; read it with go tool pprof", vshow, v);
            return MHD_NO;
        }
        if (x > q->debug)
            q->debug = x;
    } else if (klen == 7 && memcmp(key, "seconds", 7) == 0 &&
               (q->allowed & P_SECONDS)) {
        /* Go's messages.  An empty value is refused too (Go would serve
         * the absolute profile): a client that asked for a delta and
         * got a cumulative profile would misread it. */
        if (q->seconds != 0)
            return MHD_YES; /* the first one counts, as Go's FormValue */
        if (!small_uint(value, vlen, &x) || x == 0) {
            gcm__fmt(q->err, sizeof q->err, "invalid value for \"seconds\" "
                     "- must be a positive integer");
            return MHD_NO;
        }
        if (x > MAX_DELTA_S) {
            gcm__fmt(q->err, sizeof q->err, "invalid value for \"seconds\" "
                     "- at most %d is served (an hour); for longer, take two "
                     "profiles and compare them with go tool pprof -base",
                     MAX_DELTA_S);
            return MHD_NO;
        }
        q->seconds = x;
    } else {
        gcm__fmt(q->err, sizeof q->err, "unknown parameter \"%.*s\"", kshow,
                 key);
        return MHD_NO;
    }
    return MHD_YES;
}

/* --- the pages ----------------------------------------------------------------------- */

/* A snapshot of the profile as of now: with ?gc=N (N > 0) after a
 * collection, as Go's handler runs runtime.GC() first.  Before the
 * collector has started (the preload library's fast mode) nothing is
 * collected, and every in-use figure is already exact.  0 or ENOMEM. */
static int snap_now(long gc, gcm__prof_snap *s)
{
    if (gc > 0 && gcm__gc_ready())
        (void)gcm_gc();
    int rc = gcm__prof_snap_take(s);
    if (rc != 0)
        gcm__prof_snap_free(s);
    return rc;
}

/* The one way a profile becomes a reply, absolute or delta: a snapshot
 * taken now (see snap_now), minus `base` when there is one, written as
 * gcm_profile_write_view_fd() writes it into a memfd and sent from there.
 * A reply that cannot be built (no memory for the snapshot, no memfd, a
 * failed write) is this server's failure: 500, as on every page (see the
 * essay). */
static enum MHD_Result send_profile(struct MHD_Connection *c, bool allocs, long gc,
                                    const gcm__prof_snap *base)
{
    gcm__prof_snap now;
    if (snap_now(gc, &now) != 0)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "failed to collect profile"); /* Go's words */
    /* As Go's handler names them. */
    const char *name = base != NULL ? (allocs ? "allocs-delta" : "heap-delta")
                                    : (allocs ? "allocs" : "heap");
    int fd = memfd_create("gcmalloc-pprof", MFD_CLOEXEC);
    int rc = fd < 0 ? errno : gcm__pprof_write_delta(fd, &now, base, allocs);
    gcm__prof_snap_free(&now);
    if (rc != 0) {
        if (fd >= 0)
            close(fd);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "failed to write the %s profile: %s", name,
                          gcm__strerror(rc));
    }
    char disposition[64];
    gcm__fmt(disposition, sizeof disposition, "attachment; filename=\"%s\"", name);
    return reply_from_fd(c, fd, "application/octet-stream", disposition);
}

/* --- delta profiles (?seconds=N) ----------------------------------------------------- */

/* Go's handler takes a profile, sleeps N seconds, takes another and sends
 * the difference.  Sleeping is not an option on the one server thread, so
 * a delta request is parked instead: the handler takes the base snapshot
 * and suspends the connection (libmicrohttpd then neither reads, writes
 * nor times it out), the server loop wakes at the earliest due time and
 * resumes it, and libmicrohttpd calls the handler again, which takes the
 * second snapshot and writes the delta (gcm__pprof_write_delta).  While
 * suspended, libmicrohttpd does not notice a client that hangs up, so the
 * loop watches each parked socket for that itself and ends the request
 * early (as Go's handler does when its request's context is cancelled).
 *
 * A slot holds a request from the suspension to libmicrohttpd's
 * completion notice (on_completed), which frees the base; at most
 * MAX_DELTAS requests wait at once (503 beyond), far below the connection
 * limit they also count against.  Only the server thread touches the
 * slots. */
static struct delta {
    bool used;
    bool allocs;
    bool suspended;
    int cancelled;    /* 0, or why it ends early: CANCEL_*              */
    long gc;          /* ?gc=N: collect before each snapshot            */
    int fd;           /* the connection's socket, watched for a hangup  */
    int64_t due_ns;   /* gcm__now_ns() at which to take the second      */
    struct MHD_Connection *c;
    gcm__prof_snap base;
} deltas[MAX_DELTAS];

enum { CANCEL_HANGUP = 1, CANCEL_STOP = 2 };

static struct delta *delta_of(void *req_cls)
{
    struct delta *d = req_cls;
    return d >= deltas && d < deltas + MAX_DELTAS ? d : NULL;
}

static void delta_free(struct delta *d)
{
    gcm__prof_snap_free(&d->base);
    d->used = false;
    d->suspended = false;
    d->c = NULL;
}

/* The first call: the base snapshot, then park the connection. */
static enum MHD_Result delta_start(struct MHD_Connection *c, bool allocs,
                                   long gc, long seconds, void **req_cls)
{
    struct delta *d = NULL;
    for (int i = 0; i < MAX_DELTAS && d == NULL; i++)
        if (!deltas[i].used)
            d = &deltas[i];
    if (d == NULL)
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "%d delta profiles are already being taken; try "
                          "again later", MAX_DELTAS);
    const union MHD_ConnectionInfo *ci =
        M.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "cannot find the connection's socket");
    /* ?gc=1 collects before each end of the window, so that both count
     * the collected heap as of then. */
    *d = (struct delta){.allocs = allocs, .gc = gc, .fd = ci->connect_fd, .c = c};
    if (snap_now(gc, &d->base) != 0)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "failed to collect profile");
    int64_t now = gcm__now_ns();
    d->due_ns = now + (int64_t)seconds * 1000000000;
    /* The connection may live the window plus the usual lifetime (see the
     * essay): extended from now, never shortened, never revived once cut. */
    int64_t until = d->due_ns + (int64_t)CONN_LIFETIME_S * 1000000000;
    for (int i = 0; i < MAX_CONNS; i++)
        if (__atomic_load_n(&H.conn_fd[i], __ATOMIC_ACQUIRE) == d->fd &&
            H.conn_deadline[i] != INT64_MAX && H.conn_deadline[i] < until)
            H.conn_deadline[i] = until;
    d->used = true;
    d->suspended = true;
    *req_cls = d;
    M.suspend_connection(c);
    return MHD_YES;
}

/* The call after the resumption: the second snapshot and the delta. */
static enum MHD_Result delta_finish(struct MHD_Connection *c, struct delta *d,
                                    size_t *upload_data_size)
{
    /* Ended early: an answer rather than MHD_NO, which libmicrohttpd would
     * log as an internal error.  To a client that hung up it goes nowhere
     * (libmicrohttpd then closes); on_completed frees d either way. */
    if (d->cancelled != 0)
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "the delta profile was cut short: %s",
                          d->cancelled == CANCEL_STOP ? "the program is exiting"
                                                      : "the client went away");
    if (*upload_data_size != 0) {
        /* A GET with a body, read now that the connection runs again:
         * discarded, as on every other page; the reply comes at its end. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    enum MHD_Result ok = send_profile(c, d->allocs, d->gc, &d->base);
    gcm__prof_snap_free(&d->base); /* no longer needed; the slot waits for on_completed */
    return ok;
}

static void delta_resume(struct delta *d, int cancel)
{
    if (!d->used || !d->suspended)
        return;
    d->suspended = false;
    d->cancelled = cancel;
    M.resume_connection(d->c);
}

/* On the server thread, before each poll: resumes the deltas that are due.
 * Returns the milliseconds until the next is (0: one was resumed and
 * libmicrohttpd must run now; -1: none waits). */
static int deltas_due(void)
{
    int64_t now = gcm__now_ns(), next = -1;
    bool resumed = false;
    for (int i = 0; i < MAX_DELTAS; i++) {
        struct delta *d = &deltas[i];
        if (!d->used || !d->suspended)
            continue;
        if (d->due_ns <= now) {
            delta_resume(d, 0);
            resumed = true;
        } else if (next < 0 || d->due_ns - now < next) {
            next = d->due_ns - now;
        }
    }
    if (resumed)
        return 0;
    return next < 0 ? -1 : (int)(next / 1000000 + 1);
}

/* gcm_memstats as JSON, one member per field under its C name; the type
 * of each is taken from the struct itself, so a field changing type
 * cannot be printed wrongly (tests/pprof_http.sh checks that every field
 * of the header is here). */
enum { J_U64, J_U32, J_I64, J_F64, J_RING };
#define JTYPE(f)                                                          \
    _Generic(((struct gcm_memstats *)0)->f, uint64_t: J_U64,              \
             uint32_t: J_U32, int64_t: J_I64, double: J_F64,              \
             uint64_t *: J_RING)
#define JF(f) {#f, offsetof(struct gcm_memstats, f), JTYPE(f)}
static const struct jfield {
    const char *name;
    size_t off;
    int type;
} memstats_fields[] = {
    JF(alloc), JF(total_alloc), JF(sys), JF(mallocs), JF(frees),
    JF(heap_alloc), JF(heap_sys), JF(heap_idle), JF(heap_inuse),
    JF(heap_released), JF(heap_objects), JF(heap_live),
    JF(nongc_sys),
    JF(arena_inuse), JF(arena_cached), JF(arena_sys), JF(arena_count),
    JF(preload_mode),
    JF(leaked_objects), JF(leaked_bytes),
    JF(pool_gets), JF(pool_puts), JF(pool_hits_private), JF(pool_hits_shared),
    JF(pool_hits_stolen), JF(pool_hits_victim), JF(pool_misses),
    JF(pool_dropped), JF(pool_cached), JF(pool_count), JF(buf_sys),
    JF(next_gc), JF(last_gc), JF(pause_total_ns), JF(pause_ns), JF(pause_end),
    JF(num_gc), JF(num_forced_gc), JF(gc_cpu_fraction), JF(gc_percent),
    JF(memory_limit), JF(limiter_active),
};
#undef JF
#undef JTYPE

/* A fraction as a JSON number with nine decimals (gcm__fmt has no
 * floating point; JSON has no NaN). */
static void sb_fraction(sbuf *b, double x)
{
    if (!(x >= 0 && x < 1e15))
        x = 0;
    uint64_t whole = (uint64_t)x;
    uint64_t frac = (uint64_t)((x - (double)whole) * 1e9 + 0.5);
    if (frac >= 1000000000) {
        whole++;
        frac -= 1000000000;
    }
    sb_add(b, "%llu.%09llu", (unsigned long long)whole, (unsigned long long)frac);
}

static enum MHD_Result serve_memstats(struct MHD_Connection *c)
{
    struct gcm_memstats ms;
    gcm_read_memstats(&ms);
    sbuf b = {out_buf, sizeof out_buf, 0};
    sb_add(&b, "{");
    for (size_t i = 0; i < GCM_ARRAY_LEN(memstats_fields); i++) {
        const struct jfield *f = &memstats_fields[i];
        const char *p = (const char *)&ms + f->off;
        sb_add(&b, "%s\n\"%s\": ", i ? "," : "", f->name);
        uint64_t u;
        uint32_t u32;
        int64_t s;
        double d;
        switch (f->type) {
        case J_U64:
            memcpy(&u, p, sizeof u);
            sb_add(&b, "%llu", (unsigned long long)u);
            break;
        case J_U32:
            memcpy(&u32, p, sizeof u32);
            sb_add(&b, "%u", u32);
            break;
        case J_I64:
            memcpy(&s, p, sizeof s);
            sb_add(&b, "%lld", (long long)s);
            break;
        case J_F64:
            memcpy(&d, p, sizeof d);
            sb_fraction(&b, d);
            break;
        case J_RING:
            sb_add(&b, "[");
            for (int k = 0; k < GCM_PAUSE_RING; k++) {
                memcpy(&u, p + (size_t)k * sizeof u, sizeof u);
                sb_add(&b, "%s%llu", k ? "," : "", (unsigned long long)u);
            }
            sb_add(&b, "]");
            break;
        }
    }
    sb_add(&b, "\n}\n");
    if (b.len >= b.cap)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "memstats do not fit the response buffer");
    return send_copy(c, MHD_HTTP_OK, "application/json", b.p, b.len, NULL);
}

static enum MHD_Result serve_index(struct MHD_Connection *c)
{
    /* Go's index shows how many records each profile has. */
    size_t records = 0;
    gcm__prof_snap s;
    if (gcm__prof_snap_take(&s) == 0) {
        records = s.n;
        gcm__prof_snap_free(&s);
    }
    const char *host = M.lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_HOST);
    if (host == NULL || host[0] == '\0')
        host = H.where;
    sbuf b = {out_buf, sizeof out_buf, 0};
    sb_add(&b,
           "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n"
           ".profile-name{\n\tdisplay:inline-block;\n\twidth:6rem;\n}\n"
           "</style>\n</head>\n<body>\n/debug/pprof/\n<br>\n<p>gcmalloc %s, "
           "process %d (",
           GCMALLOC_VERSION_STRING, (int)getpid());
    sb_html(&b, program_invocation_short_name, 64);
    sb_add(&b,
           ")</p>\n<br>\nTypes of profiles available:\n<table>\n"
           "<thead><td>Count</td><td>Profile</td></thead>\n"
           "<tr><td>%zu</td><td><a href='allocs'>allocs</a></td></tr>\n"
           "<tr><td>%zu</td><td><a href='heap'>heap</a></td></tr>\n"
           "<tr><td></td><td><a href='memstats'>memstats</a></td></tr>\n"
           "</table>\n<a href='heap?gc=1'>heap after a collection</a>\n"
           "<br>\n<p>\nProfile Descriptions:\n<ul>\n"
           "<li><div class=profile-name>allocs: </div> A sampling of all past "
           "memory allocations (opens on alloc_space)</li>\n"
           "<li><div class=profile-name>heap: </div> A sampling of memory "
           "allocations of live objects. You can specify the gc GET parameter "
           "to run a collection before taking the heap sample.</li>\n"
           "<li>Either takes the seconds GET parameter (1 to %d) for a delta "
           "profile: what was allocated and freed in the next that many "
           "seconds (<code>go tool pprof -seconds 30 ...</code>).</li>\n"
           "<li><div class=profile-name>memstats: </div> gcm_read_memstats() "
           "as JSON: the collected heap, arenas, pools, the preloaded malloc, "
           "the collector's pacing and pauses</li>\n"
           "</ul>\n</p>\n<p>Read a profile with <code>go tool pprof http://",
           records, records, MAX_DELTA_S);
    sb_html(&b, host, 128);
    sb_add(&b, "/debug/pprof/heap</code></p>\n</body>\n</html>\n");
    if (b.len >= b.cap)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "the index does not fit the response buffer");
    return send_copy(c, MHD_HTTP_OK, "text/html; charset=utf-8", b.p, b.len, NULL);
}

/* --- /debug/pprof/symbol ------------------------------------------------------------ */

/* go tool pprof asks the server it fetched a profile from to name the
 * addresses of any mapping the profile left unsymbolized (a stripped
 * library): it POSTs "0x4a1f30+0x4a2b08+..." and reads back
 * "num_symbols: 1" and one "0x4a1f30 name" line per address known, as Go's
 * pprof.Symbol writes them.  Without this page such a fetch fails
 * outright.  Addresses are looked up in this process's own symbol tables
 * (gcm__sym_resolve: tables only, never memory at the address), so any
 * number a client sends is harmless.
 *
 * A POST body arrives in pieces; each is parsed as it comes (a token split
 * between two pieces is carried over) and the reply is written to a memfd,
 * so a request holds no more than its slot below, and the body is capped
 * at SYM_BODY_MAX (413 beyond). */
#define SYM_BODY_MAX (1 << 20)
#define SYM_TOKEN_MAX 24

static struct symreq {
    bool used;
    bool too_big;
    int fd;                       /* the reply being written; -1 = none */
    size_t body;                  /* bytes of body seen                 */
    size_t carry_len;
    char carry[SYM_TOKEN_MAX];    /* a token cut by the end of a piece  */
} symreqs[MAX_CONNS];

/* Lines are gathered here and written out at the end of each call. */
static struct {
    char buf[8192];
    size_t len;
    int fd;
    int err;
} W;

static void w_flush(void)
{
    if (W.len > 0 && W.err == 0 && gcm__write_all(W.fd, W.buf, W.len) != 0)
        W.err = errno;
    W.len = 0;
}

static void w_line(const char *s, size_t n)
{
    if (W.len + n > sizeof W.buf)
        w_flush();
    if (n > sizeof W.buf)
        n = sizeof W.buf;
    memcpy(W.buf + W.len, s, n);
    W.len += n;
}

/* One address: "0x..." (hex) or decimal, as Go's strconv.ParseUint(s, 0,
 * 64) reads it; anything else is skipped, as Go skips it. */
static void sym_token(const char *t, size_t n)
{
    uint64_t pc = 0;
    size_t i = 0;
    unsigned base = 10;
    if (n > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (n == 0 || n - i > 16 + (base == 10 ? 4 : 0))
        return;
    for (; i < n; i++) {
        unsigned d;
        char ch = t[i];
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (base == 16 && ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (base == 16 && ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            return;
        if (pc > (UINT64_MAX - d) / base)
            return;
        pc = pc * base + d;
    }
    if (pc == 0)
        return;
    gcm__sym_frame f[8];
    if (gcm__sym_resolve(gcm__sym_mode_text(), (uintptr_t)pc, f,
                         (int)GCM_ARRAY_LEN(f)) <= 0 ||
        f[0].function == NULL)
        return;
    char line[600];
    size_t len = gcm__fmt(line, sizeof line - 1, "0x%llx %.*s",
                          (unsigned long long)pc, 512, f[0].function);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    w_line(line, len);
}

/* Splits text into tokens at '+' and blanks; the last token is carried
 * over to the next piece unless `last`. */
static void sym_parse(struct symreq *q, const char *text, size_t n, bool last)
{
    for (size_t i = 0; i <= n; i++) {
        bool sep = i == n ? last : (text[i] == '+' || text[i] == ' ' ||
                                    text[i] == '\n' || text[i] == '\r' ||
                                    text[i] == '\t' || text[i] == '&');
        if (i < n && !sep) {
            if (q->carry_len < sizeof q->carry)
                q->carry[q->carry_len] = text[i];
            q->carry_len++; /* past the buffer: too long to be an address */
            continue;
        }
        if (sep && q->carry_len > 0) {
            if (q->carry_len <= sizeof q->carry)
                sym_token(q->carry, q->carry_len);
            q->carry_len = 0;
        }
    }
}

/* GET: the addresses, if any, are the query ("?0x4a1f30+0x4a2b08"). */
static enum MHD_Result sym_query_arg(void *cls, enum MHD_ValueKind kind,
                                     const char *key, size_t klen,
                                     const char *value, size_t vlen)
{
    (void)kind;
    struct symreq *q = cls;
    sym_parse(q, key, klen, true);
    if (value != NULL)
        sym_parse(q, value, vlen, true);
    return MHD_YES;
}

static enum MHD_Result serve_symbol(struct MHD_Connection *c, bool post,
                                    const char *data, size_t *data_size,
                                    void **req_cls)
{
    struct symreq *q = *req_cls;
    if (q == NULL) {
        /* The first call: headers only. */
        for (int i = 0; i < MAX_CONNS && q == NULL; i++)
            if (!symreqs[i].used)
                q = &symreqs[i];
        if (q == NULL)
            return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy");
        int fd = memfd_create("gcmalloc-pprof-symbol", MFD_CLOEXEC);
        if (fd < 0)
            return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "cannot make a buffer for the reply: %s",
                              gcm__strerror(errno));
        *q = (struct symreq){.used = true, .fd = fd};
        *req_cls = q;
        W.fd = fd;
        W.err = 0;
        w_line("num_symbols: 1\n", 15);
        if (!post)
            M.get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, sym_query_arg, q);
        w_flush();
        if (post)
            return MHD_YES; /* the body follows */
    } else if (*data_size > 0) {
        /* A piece of the body. */
        if (!q->too_big) {
            q->body += *data_size;
            if (q->body > SYM_BODY_MAX) {
                q->too_big = true;
            } else {
                W.fd = q->fd;
                W.err = 0;
                sym_parse(q, data, *data_size, false);
                w_flush();
                if (W.err != 0)
                    q->too_big = true;
            }
        }
        *data_size = 0;
        return MHD_YES;
    } else if (!q->too_big) {
        /* The end of the body. */
        W.fd = q->fd;
        W.err = 0;
        sym_parse(q, "", 0, true);
        w_flush();
    }
    if (q->too_big)
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                          "more than %d bytes of addresses", SYM_BODY_MAX);
    int fd = q->fd;
    q->fd = -1; /* libmicrohttpd's from here */
    return reply_from_fd(c, fd, "text/plain; charset=utf-8", NULL);
}

/* Frees a request's slot (a symbol request's or a delta's) however it
 * ended (libmicrohttpd calls this for completed, failed and timed-out
 * requests alike, and for those open when the daemon stops). */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    struct delta *d = delta_of(*req_cls);
    if (d != NULL) {
        delta_free(d);
        *req_cls = NULL;
        return;
    }
    struct symreq *q = *req_cls;
    if (q == NULL)
        return;
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
    q->used = false;
    *req_cls = NULL;
}

/* --- routing ------------------------------------------------------------------------- */

enum route { R_INDEX, R_HEAP, R_ALLOCS, R_MEMSTATS, R_SYMBOL };
static const struct {
    const char *path;
    enum route route;
    unsigned params;
} routes[] = {
    {"/debug/pprof/", R_INDEX, 0},
    {"/debug/pprof/heap", R_HEAP, P_GC | P_DEBUG | P_SECONDS},
    {"/debug/pprof/allocs", R_ALLOCS, P_GC | P_DEBUG | P_SECONDS},
    {"/debug/pprof/memstats", R_MEMSTATS, 0},
    {"/debug/pprof/symbol", R_SYMBOL, 0},
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    (void)version;
    if (delta_of(*req_cls) != NULL) /* a delta profile, resumed */
        return delta_finish(c, delta_of(*req_cls), upload_data_size);
    if (*req_cls != NULL) /* a POST to the symbol page, continued */
        return serve_symbol(c, true, upload_data, upload_data_size, req_cls);
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
               strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (strcmp(url, "/debug/pprof") == 0 && get) {
        /* As Go's ServeMux does for a subtree without its slash. */
        struct MHD_Response *r = M.create_response_from_buffer(
            0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (r == NULL)
            return MHD_NO;
        M.add_response_header(r, MHD_HTTP_HEADER_LOCATION, "/debug/pprof/");
        enum MHD_Result ok = M.queue_response(c, MHD_HTTP_MOVED_PERMANENTLY, r);
        M.destroy_response(r);
        return ok;
    }
    size_t i = 0;
    while (i < GCM_ARRAY_LEN(routes) && strcmp(url, routes[i].path) != 0)
        i++;
    if (i == GCM_ARRAY_LEN(routes))
        return send_error(c, MHD_HTTP_NOT_FOUND,
                          strncmp(url, "/debug/pprof/", 13) == 0
                              ? "Unknown profile (served: heap, allocs, memstats, symbol)"
                              : "not found (profiles are under /debug/pprof/)");
    /* Other pages answer on this first call, with the headers: a body, if
     * a client sent one, is never read (libmicrohttpd then closes the
     * connection after the reply). */
    if (routes[i].route == R_SYMBOL) {
        if (!get && !post)
            return send_405(c, "GET, HEAD, POST",
                            "method not allowed: use GET or POST");
        return serve_symbol(c, post, upload_data, upload_data_size, req_cls);
    }
    if (!get)
        return send_405(c, "GET, HEAD", "method not allowed: use GET");
    query q = {.allowed = routes[i].params};
    M.get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, check_param, &q);
    if (q.err[0] == '\0' && q.debug != 0) {
        if (q.seconds != 0)
            gcm__fmt(q.err, sizeof q.err, "seconds and debug params are incompatible");
        else
            gcm__fmt(q.err, sizeof q.err, "debug=%ld: only the binary profile "
                     "(debug=0) is served; read it with go tool pprof", q.debug);
    }
    if (q.err[0] != '\0')
        return send_error(c, MHD_HTTP_BAD_REQUEST, "%s", q.err);
    switch (routes[i].route) {
    case R_INDEX:
        return serve_index(c);
    case R_HEAP:
    case R_ALLOCS:
        if (q.seconds != 0)
            return delta_start(c, routes[i].route == R_ALLOCS, q.gc, q.seconds,
                               req_cls);
        return send_profile(c, routes[i].route == R_ALLOCS, q.gc, NULL);
    case R_MEMSTATS:
        return serve_memstats(c);
    case R_SYMBOL:
        break;
    }
    return MHD_NO;
}

/* --- the server thread --------------------------------------------------------------- */

/* One start at a time (the STARTING state): what to start, and how it
 * went.  The semaphores are made anew for each start. */
static struct {
    gcm__addr addr;   /* where, widened to every interface if allowed   */
    bool every;       /* ":port" with remote access allowed             */
    const char *what; /* the variable or the call, for messages         */
    sem_t started;    /* posted when the start succeeded or failed      */
    sem_t stopped;    /* posted when the thread has finished            */
    int rc;           /* the start's result                              */
} S;

/* Ends connections past their lifetime: shutdown(2) only, so that
 * libmicrohttpd sees the end at its next read or write and closes the
 * socket itself.  Returns the milliseconds until the next deadline (-1:
 * none).  The slots change only on this thread, so an fd here is still
 * libmicrohttpd's. */
static int enforce_lifetimes(void)
{
    int64_t now = gcm__now_ns(), next = -1;
    for (int i = 0; i < MAX_CONNS; i++) {
        int fd = __atomic_load_n(&H.conn_fd[i], __ATOMIC_ACQUIRE);
        if (fd < 0)
            continue;
        if (H.conn_deadline[i] <= now) {
            (void)shutdown(fd, SHUT_RDWR);
            H.conn_deadline[i] = INT64_MAX; /* once */
        } else if (H.conn_deadline[i] != INT64_MAX &&
                   (next < 0 || H.conn_deadline[i] - now < next)) {
            next = H.conn_deadline[i] - now;
        }
    }
    return next < 0 ? -1 : (int)(next / 1000000 + 1);
}

/* Binds the listening socket: 0 or an errno value.  Sets *fd and *port. */
static int listen_on(const gcm__addr *a, int *fd_out, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        memcpy(&s6->sin6_addr, a->ip, 16);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        memcpy(&s4->sin_addr, a->ip, 4);
        len = sizeof *s4;
    }
    int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int one = 1;
    /* A restarted service gets its port back while the old one's
     * connections linger in TIME_WAIT. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, BACKLOG) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    *port = ntohs(a->family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                        : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

static void format_where(const gcm__addr *a, int port, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (inet_ntop(a->family, a->ip, ip, sizeof ip) == NULL)
        gcm__fmt(ip, sizeof ip, "?");
    if (a->family == AF_INET6)
        gcm__fmt(buf, cap, "[%s]:%d", ip, port);
    else
        gcm__fmt(buf, cap, "%s:%d", ip, port);
}

/* Loads libmicrohttpd, binds, starts the daemon: 0 or an errno value,
 * after one diagnostics line.  On the server thread, so that nothing
 * libmicrohttpd or the libraries dlopen brings along (their constructors
 * run now) allocates is sampled into the program's profile. */
static int open_daemon(void)
{
    char where[80];
    format_where(&S.addr, S.addr.port, where, sizeof where);
    int rc = load_mhd();
    if (rc != 0)
        return rc;
    int port = 0, lfd = -1;
    rc = listen_on(&S.addr, &lfd, &port);
    if (rc != 0) {
        gcm__diag("pprof: %s: cannot listen on %s: %s; not serving", S.what,
                  where, gcm__strerror(rc));
        return rc;
    }
    struct stat lst;
    if (fstat(lfd, &lst) != 0)
        memset(&lst, 0, sizeof lst);
    __atomic_store_n(&H.listen_fd, lfd, __ATOMIC_RELEASE);
    int wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wfd < 0) {
        rc = errno;
        gcm__diag("pprof: eventfd: %s; not serving", gcm__strerror(rc));
        close_fd(&H.listen_fd);
        return rc;
    }
    __atomic_store_n(&H.wake_fd, wfd, __ATOMIC_RELEASE);
    for (int i = 0; i < MAX_CONNS; i++)
        __atomic_store_n(&H.conn_fd[i], -1, __ATOMIC_RELEASE);
    L.started = false;
    H.d = M.start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME, 0, NULL,
        NULL, on_request, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, to see all */
        MHD_OPTION_LISTEN_SOCKET, lfd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)MAX_CONNS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)BACKLOG,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
        MHD_OPTION_END);
    const union MHD_DaemonInfo *di =
        H.d != NULL ? M.get_daemon_info(H.d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (di == NULL) {
        gcm__diag("pprof: libmicrohttpd did not start; not serving");
        if (H.d != NULL) {
            M.stop_daemon(H.d); /* closes the listening socket */
            H.d = NULL;
            __atomic_store_n(&H.listen_fd, -1, __ATOMIC_RELEASE);
        } else {
            /* Close the socket unless libmicrohttpd already did (the
             * number may have been reused since: compare the inode). */
            struct stat now;
            int f = __atomic_exchange_n(&H.listen_fd, -1, __ATOMIC_ACQ_REL);
            if (fstat(f, &now) == 0 && now.st_ino == lst.st_ino &&
                now.st_dev == lst.st_dev)
                close(f);
        }
        close_fd(&H.wake_fd);
        return EIO;
    }
    L.started = true;
    __atomic_store_n(&H.epoll_fd, di->epoll_fd, __ATOMIC_RELEASE);
    format_where(&S.addr, port, H.where, sizeof H.where);
    __atomic_store_n(&H.port, port, __ATOMIC_RELEASE);
    return 0;
}

/* Runs libmicrohttpd until asked to stop (or until it cannot go on), then
 * stops it, still on this thread. */
static void serve_loop(void)
{
    /* libmicrohttpd's epoll descriptor, the stop eventfd, then the sockets
     * of parked delta requests, watched for a client hanging up. */
    struct pollfd p[2 + MAX_DELTAS] = {
        {.fd = H.epoll_fd, .events = POLLIN},
        {.fd = H.wake_fd, .events = POLLIN},
    };
    struct delta *watched[MAX_DELTAS];
    for (;;) {
        MHD_UNSIGNED_LONG_LONG ms;
        int timeout = enforce_lifetimes();
        int due = deltas_due();
        if (due >= 0 && (timeout < 0 || due < timeout))
            timeout = due;
        if (M.get_timeout(H.d, &ms) == MHD_YES && (timeout < 0 || ms < (unsigned)timeout))
            timeout = ms > INT_MAX ? INT_MAX : (int)ms;
        nfds_t np = 2;
        for (int i = 0; i < MAX_DELTAS; i++) {
            if (deltas[i].used && deltas[i].suspended) {
                watched[np - 2] = &deltas[i];
                p[np++] = (struct pollfd){.fd = deltas[i].fd, .events = POLLRDHUP};
            }
        }
        int r = poll(p, np, timeout);
        if (r < 0 && errno != EINTR) {
            gcm__diag("pprof: poll: %s; the endpoint stops",
                      gcm__strerror(errno));
            break;
        }
        if (r > 0 && (p[1].revents & POLLIN))
            break; /* asked to stop */
        if (r > 0 && ((p[0].revents | p[1].revents) & POLLNVAL)) {
            /* Some daemons close every descriptor they did not open
             * themselves; polling a closed one would spin. */
            gcm__diag("pprof: the program closed the endpoint's descriptors; "
                      "the endpoint stops (call gcm_pprof_serve() after "
                      "closing them)");
            break;
        }
        /* A parked client that hung up (or shut its side): its request
         * ends now, not when its window would have. */
        for (nfds_t k = 2; r > 0 && k < np; k++)
            if (p[k].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
                delta_resume(watched[k - 2], CANCEL_HANGUP);
        if (M.run(H.d) != MHD_YES) {
            gcm__diag("pprof: libmicrohttpd failed; the endpoint stops");
            break;
        }
    }
    /* libmicrohttpd must not be stopped with connections suspended: end
     * the parked deltas first (their handler answers 503), then free any
     * base it did not get to. */
    bool parked = false;
    for (int i = 0; i < MAX_DELTAS; i++) {
        parked |= deltas[i].used && deltas[i].suspended;
        delta_resume(&deltas[i], CANCEL_STOP);
    }
    if (parked)
        (void)M.run(H.d);
    M.stop_daemon(H.d); /* closes the listening socket and the connections */
    for (int i = 0; i < MAX_DELTAS; i++)
        if (deltas[i].used)
            delta_free(&deltas[i]);
    H.d = NULL;
    __atomic_store_n(&H.listen_fd, -1, __ATOMIC_RELEASE);
    __atomic_store_n(&H.epoll_fd, -1, __ATOMIC_RELEASE);
    close_fd(&H.wake_fd);
}

static void *serve_main(void *arg)
{
    (void)arg;
    int rc = open_daemon();
    S.rc = rc;
    if (rc != 0) {
        __atomic_store_n(&H.state, OFF, __ATOMIC_RELEASE);
        sem_post(&S.started);
        sem_post(&S.stopped);
        return NULL;
    }
    __atomic_store_n(&H.state, SERVING, __ATOMIC_RELEASE);
    gcm__diag("pprof: serving http://%s/debug/pprof/%s (go tool pprof "
              "http://%s/debug/pprof/heap)", H.where,
              S.every ? " on every interface" : "", H.where);
    sem_post(&S.started);
    serve_loop();
    __atomic_store_n(&H.state, OFF, __ATOMIC_RELEASE);
    sem_post(&S.stopped);
    return NULL;
}

/* Starts the thread with every asynchronous signal blocked but the
 * collector's (see the essay); the mask is inherited, so no signal can
 * land on the thread before it runs.  Detached: the semaphores say when
 * it is done. */
static int spawn_server(void)
{
    sigset_t block, old;
    sigfillset(&block);
    static const int keep[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS,
                               SIGABRT};
    for (size_t i = 0; i < GCM_ARRAY_LEN(keep); i++)
        sigdelset(&block, keep[i]);
    sigdelset(&block, GC_get_suspend_signal());
    sigdelset(&block, GC_get_thr_restart_signal());
    pthread_sigmask(SIG_BLOCK, &block, &old);
    /* pthread_create allocates the new thread's TLS vector with malloc, on
     * this (the program's) thread: under the preload library, a malloc the
     * profiler would sample.  Like the profiler's own allocations (and
     * pool.c's), it is neither sampled nor counted down. */
    gcm__tls_self.prof_busy++;
    pthread_t th;
    int rc = gcm__thread_spawn(&th, serve_main, NULL);
    gcm__tls_self.prof_busy--;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        pthread_detach(th);
    return rc;
}

/* --- start and stop ------------------------------------------------------------------ */

static bool is_loopback(const gcm__addr *a)
{
    if (a->family == AF_INET)
        return a->ip[0] == 127;
    static const uint8_t v6_loopback[16] = {[15] = 1};
    static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
    return memcmp(a->ip, v6_loopback, 16) == 0 ||
           (memcmp(a->ip, v4_mapped, 12) == 0 && a->ip[12] == 127);
}

static void stop_at_exit(void)
{
    int expected = SERVING;
    if (H.pid != getpid() ||
        !__atomic_compare_exchange_n(&H.state, &expected, STOPPING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
    uint64_t one = 1;
    ssize_t w;
    do {
        w = write(H.wake_fd, &one, sizeof one);
    } while (w < 0 && errno == EINTR);
    /* A request in progress (a large profile) gets a moment to finish;
     * the program's exit does not wait for more. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += STOP_WAIT_S;
    int r;
    do {
        r = sem_timedwait(&S.stopped, &ts);
    } while (r != 0 && errno == EINTR);
    if (r != 0)
        gcm__diag("pprof: a request was still running at exit");
}

/* Takes the right to start (OFF -> STARTING).  Waits for a start already
 * under way (the environment's, say) to finish, so that the caller learns
 * its outcome: 0 when the caller may start, EALREADY with *port_out set
 * when a server runs. */
static int claim(int *port_out)
{
    for (int i = 0;; i++) {
        int expected = OFF;
        if (__atomic_compare_exchange_n(&H.state, &expected, STARTING, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 0;
        if (expected != STARTING || i == 10000) {
            if (port_out != NULL)
                *port_out = expected == SERVING
                                ? __atomic_load_n(&H.port, __ATOMIC_ACQUIRE) : 0;
            return EALREADY;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

/* Starts serving on `a` (after claim()).  `what` names the request in
 * messages.  With `wait`, returns the outcome (0 or an errno value) and
 * the port; otherwise returns 0 once the thread is on its way, and the
 * thread reports.  Every failure prints one line. */
static int start(const gcm__addr *a, const char *what, bool wait, int *port_out)
{
    S.addr = *a;
    S.what = what;
    S.every = false;
    S.rc = 0;
    bool remote = gcm__opt_bool(GCM_OPT_PPROF_ALLOW_REMOTE);
    if (a->wildcard && remote) {
        memset(S.addr.ip, 0, sizeof S.addr.ip); /* ":6060": every interface */
        S.every = true;
    }
    if (!remote && !is_loopback(&S.addr)) {
        char where[80];
        format_where(&S.addr, S.addr.port, where, sizeof where);
        gcm__diag("pprof: %s: %s is not a loopback address; not serving (set "
                  "GCMALLOC_PPROF_ALLOW_REMOTE=1 to serve profiles to other "
                  "hosts)", what, where);
        __atomic_store_n(&H.state, OFF, __ATOMIC_RELEASE);
        return EPERM;
    }
    /* Profiles fetched from a running process are compared with one
     * another: the same symbolization for all of them. */
    gcm__sym_series();
    /* Posts left from an earlier server (one that stopped by itself). */
    while (sem_trywait(&S.started) == 0)
        ;
    while (sem_trywait(&S.stopped) == 0)
        ;
    H.pid = getpid();
    if (!H.atexit_done) {
        H.atexit_done = true;
        atexit(stop_at_exit);
    }
    int rc = spawn_server();
    if (rc != 0) {
        gcm__diag("pprof: cannot start the server thread (%s); not serving",
                  gcm__strerror(rc));
        __atomic_store_n(&H.state, OFF, __ATOMIC_RELEASE);
        return rc;
    }
    if (!wait)
        return 0;
    while (sem_wait(&S.started) != 0 && errno == EINTR)
        ;
    if (S.rc == 0 && port_out != NULL)
        *port_out = __atomic_load_n(&H.port, __ATOMIC_ACQUIRE);
    return S.rc;
}

/* A forked child's last sweep: every socket bound to the served port,
 * found by listing /proc/self/fd with the raw getdents64 (no allocation:
 * this runs in a fork handler).  The tracked descriptors miss one kind:
 * a connection libmicrohttpd is closing at the moment of the fork (its
 * slot is cleared just before the close, so that a child never closes a
 * number reused since). */
static void close_port_sockets(int port)
{
    if (port <= 0)
        return;
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return;
    char buf[4096] __attribute__((aligned(8)));
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            off += d->reclen;
            if (d->name[0] < '0' || d->name[0] > '9')
                continue;
            int fd = 0;
            for (const char *c = d->name; *c >= '0' && *c <= '9'; c++)
                fd = fd * 10 + (*c - '0');
            if (fd == dir)
                continue;
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
                continue;
            int p = ss.ss_family == AF_INET
                        ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                    : ss.ss_family == AF_INET6
                        ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                        : -1;
            if (p == port)
                close(fd);
        }
    }
    close(dir);
}

void gcm__pprof_http_fork(int phase)
{
    if (phase != GCM_FORK_CHILD)
        return;
    sem_init(&S.started, 0, 0);
    sem_init(&S.stopped, 0, 0);
    if (__atomic_load_n(&H.state, __ATOMIC_ACQUIRE) == OFF)
        return;
    /* The server thread did not come along; its sockets did.  The
     * daemon's memory is left as it is (libmicrohttpd cannot be stopped
     * without the thread that runs it). */
    close_fd(&H.listen_fd);
    close_fd(&H.epoll_fd);
    close_fd(&H.wake_fd);
    for (int i = 0; i < MAX_CONNS; i++) {
        close_fd(&H.conn_fd[i]);
        if (symreqs[i].used)
            close_fd(&symreqs[i].fd);
        symreqs[i].used = false;
    }
    /* Parked deltas belong to the parent's connections; their base
     * snapshots are left as they are, like the daemon's memory. */
    for (int i = 0; i < MAX_DELTAS; i++)
        deltas[i] = (struct delta){0};
    close_port_sockets(__atomic_load_n(&H.port, __ATOMIC_ACQUIRE));
    H.d = NULL;
    __atomic_store_n(&H.state, OFF, __ATOMIC_RELEASE);
}

void gcm__pprof_http_init(void)
{
    sem_init(&S.started, 0, 0);
    sem_init(&S.stopped, 0, 0);
    if (gcm__opt_int(GCM_OPT_PPROF_ADDR) == GCM_OPT_OFF)
        return;
    const char *why = NULL;
    if (gcm__parse_addr(gcm__opt_str(GCM_OPT_PPROF_ADDR), &H.env_addr, &why) == 0)
        H.env_set = true;
}

/* From a constructor, for the reason prof_dump.c gives: the preloaded
 * library may initialize inside the program's first malloc, before the C
 * library can make threads; constructors run after the C library's.  It
 * does not wait for the thread: a constructor may run with the dynamic
 * loader's lock held, which the thread's dlopen needs. */
__attribute__((constructor)) static void pprof_http_start(void)
{
    gcm__ensure_init();
    static int started;
    if (!H.env_set || __atomic_exchange_n(&started, 1, __ATOMIC_ACQ_REL))
        return;
    if (claim(NULL) == 0)
        (void)start(&H.env_addr, "GCMALLOC_PPROF_ADDR", false, NULL);
}

/* --- the public API ------------------------------------------------------------------ */

int gcm_pprof_serve(const char *addr, int *port)
{
    gcm__ensure_init();
    if (port != NULL)
        *port = 0;
    if (addr == NULL)
        return EINVAL;
    gcm__addr a;
    const char *why = NULL;
    if (gcm__parse_addr(addr, &a, &why) != 0) {
        size_t n = strlen(addr);
        gcm__diag("pprof: gcm_pprof_serve(\"%.*s%s\"): %s; not serving",
                  (int)(n > SHOW_MAX ? SHOW_MAX : n), addr,
                  n > SHOW_MAX ? "..." : "", why);
        return EINVAL;
    }
    int rc = claim(port);
    if (rc != 0)
        return rc;
    return start(&a, "gcm_pprof_serve", true, port);
}
