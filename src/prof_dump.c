/*
 * prof_dump.c — when profiles are written: on request, at exit, on a
 * signal, at an interval.
 *
 *   gcm_profile_write(path)       now, from the calling thread
 *   GCMALLOC_PROFILE=path         at exit (atexit), after a final
 *                                 collection, as `go test -memprofile`
 *                                 collects before writing
 *   GCMALLOC_PROFILE_SIGNAL=USR2  path.N on each signal
 *   GCMALLOC_PROFILE_INTERVAL=30s path.1, path.2, ... every 30 s
 *   GCMALLOC_PROFILE_REPORT=1     a text top-10 at exit
 *
 * Signal and interval dumps are written by a thread of the profiler's own
 * (internal: its allocations are not sampled).  The signal handler only
 * sets a flag and posts a semaphore — both async-signal-safe — because
 * writing a profile takes locks, allocates and symbolizes, none of which a
 * handler may do.  The same thread prints leak-suspect reports, so that
 * symbolizing never runs inside a program's allocation.
 *
 * Files are written to a temporary name and renamed into place, so a
 * reader polling for path.N never opens half a profile.  Dumps are
 * serialized by one mutex: two profiles are never built at once.
 *
 * After fork() the child has no profiler thread (threads do not survive
 * fork); its exit profile is written only when the path names it (%p), so
 * a child does not overwrite its parent's file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h> /* rename */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define PATH_CAP 4096

static struct {
    pthread_mutex_t mu;           /* serializes dumps and their numbering */
    sem_t wake;
    bool sem_ready;
    int helper;                   /* the profiler thread runs             */
    int sig;                      /* dump signal, 0 = none                */
    int64_t interval_ns;          /* 0 = none                             */
    int sig_pending, leak_pending;
    unsigned seq;                 /* numbered dumps written so far        */
    pid_t pid;                    /* the process that read the options    */
    /* Paths as given (%p expanded when used: a forked child has its own). */
    char base[PATH_CAP];          /* numbered dumps: base.N               */
    char exit_path[PATH_CAP];     /* "" = none                            */
    bool exit_has_pid;
    int report_mode;              /* GCM_OUTPUT_*                         */
    char report_path[PATH_CAP];
    bool report_has_pid;
    bool leak;
} D = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* --- writing a file ------------------------------------------------------------ */

static int write_fd_locked(int fd, bool allocs, gcm__prof_snap *keep)
{
    gcm__prof_snap s;
    int rc = gcm__prof_snap_take(&s);
    if (rc != 0)
        return rc;
    rc = gcm__pprof_write(fd, &s, allocs);
    if (keep != NULL)
        *keep = s;
    else
        gcm__prof_snap_free(&s);
    return rc;
}

/* Writes to path via a temporary file and rename.  D.mu held.  When keep
 * is not NULL it receives the snapshot the file was made from. */
static int write_path_locked(const char *path, bool allocs, gcm__prof_snap *keep)
{
    char tmp[PATH_CAP + 32];
    if (gcm__fmt(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp)
        return ENAMETOOLONG;
    int fd;
    do {
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno;
    int rc = write_fd_locked(fd, allocs, keep);
    if (close(fd) != 0 && rc == 0 && errno != EINTR)
        rc = errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = errno;
    if (rc != 0) {
        unlink(tmp);
        if (keep != NULL)
            gcm__prof_snap_free(keep);
    }
    return rc;
}

int gcm__prof_write_path(const char *path, bool allocs)
{
    if (path == NULL || path[0] == '\0')
        return EINVAL;
    pthread_mutex_lock(&D.mu);
    int rc = write_path_locked(path, allocs, NULL);
    pthread_mutex_unlock(&D.mu);
    return rc;
}

/* The next numbered dump, base.N; feeds the leak watcher when asked. */
static void dump_numbered(bool leak_snapshot)
{
    pthread_mutex_lock(&D.mu);
    unsigned n = ++D.seq;
    char base[PATH_CAP], path[PATH_CAP + 16];
    gcm__expand_path(D.base, base, sizeof base);
    gcm__fmt(path, sizeof path, "%s.%u", base, n);
    gcm__prof_snap s;
    int rc = write_path_locked(path, false, &s);
    pthread_mutex_unlock(&D.mu);
    if (rc != 0) {
        gcm__diag("heap profile %s: %s", path, gcm__strerror(rc));
        return;
    }
    if (leak_snapshot && D.leak && gcm__leak_observe(&s, gcm__now_ns()) > 0)
        gcm__leak_report(gcm__diag_fd());
    gcm__prof_snap_free(&s);
}

/* --- the profiler's thread --------------------------------------------------------- */

static void *helper_main(void *arg)
{
    (void)arg;
    int64_t next = D.interval_ns > 0 ? gcm__now_ns() + D.interval_ns : 0;
    for (;;) {
        int r;
        if (next != 0) {
            struct timespec ts = {.tv_sec = next / 1000000000,
                                  .tv_nsec = next % 1000000000};
            r = sem_clockwait(&D.wake, CLOCK_MONOTONIC, &ts);
        } else {
            r = sem_wait(&D.wake);
        }
        if (r != 0 && errno != ETIMEDOUT)
            continue; /* EINTR */
        if (__atomic_exchange_n(&D.sig_pending, 0, __ATOMIC_ACQ_REL))
            dump_numbered(false);
        if (next != 0 && gcm__now_ns() >= next) {
            dump_numbered(true);
            int64_t now = gcm__now_ns();
            next += D.interval_ns;
            if (next <= now) /* fell behind: keep the cadence from now */
                next = now + D.interval_ns;
        }
        if (__atomic_exchange_n(&D.leak_pending, 0, __ATOMIC_ACQ_REL))
            gcm__leak_report(gcm__diag_fd());
    }
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    __atomic_store_n(&D.sig_pending, 1, __ATOMIC_RELEASE);
    sem_post(&D.wake);
    errno = saved;
}

void gcm__prof_dump_wake(void)
{
    if (__atomic_load_n(&D.helper, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&D.leak_pending, 1, __ATOMIC_RELEASE);
        sem_post(&D.wake);
    } else {
        gcm__leak_report(gcm__diag_fd());
    }
}

/* --- exit ------------------------------------------------------------------------------ */

static void at_exit(void)
{
    bool mine = getpid() == D.pid;
    bool profile = D.exit_path[0] != '\0' && (mine || D.exit_has_pid);
    bool report = D.report_mode == GCM_OUTPUT_STDERR ||
                  (D.report_mode == GCM_OUTPUT_PATH && (mine || D.report_has_pid));
    if (!profile && !report && !D.leak)
        return;
    if (profile || report) {
        /* Publish what is reachable now, as `go test -memprofile` does. */
        gcm__counts c;
        gcm__counts_read(&c);
        if (c.mallocs > 0)
            (void)gcm_gc();
    }
    char path[PATH_CAP];
    /* The text report first: it reads the DWARF in any case (nothing can
     * symbolize a text later), and a profile written after it then gets
     * files and lines at no further cost (GCMALLOC_PROFILE_SYMBOLS=auto). */
    if (report) {
        gcm__expand_path(D.report_path, path, sizeof path);
        int fd = D.report_mode == GCM_OUTPUT_STDERR
                     ? 2 : gcm__open_output(path, true);
        if (fd < 0) {
            gcm__diag("GCMALLOC_PROFILE_REPORT=\"%s\": cannot open (%s)",
                      path, gcm__strerror(errno));
        } else {
            (void)gcm_profile_report(fd);
            if (fd > 2)
                close(fd);
        }
    }
    if (profile) {
        gcm__expand_path(D.exit_path, path, sizeof path);
        int rc = gcm__prof_write_path(path, false);
        if (rc != 0)
            gcm__diag("heap profile %s: %s", path, gcm__strerror(rc));
    }
    if (D.leak) {
        gcm__prof_snap s;
        if (gcm__prof_snap_take(&s) == 0) {
            gcm__leak_observe(&s, gcm__now_ns());
            gcm__prof_snap_free(&s);
        }
        gcm__leak_report(gcm__diag_fd());
    }
}

/* --- start-up ---------------------------------------------------------------------------- */

static void fork_prepare(void) { pthread_mutex_lock(&D.mu); }
static void fork_parent(void) { pthread_mutex_unlock(&D.mu); }
static void fork_child(void)
{
    pthread_mutex_init(&D.mu, NULL);
    __atomic_store_n(&D.helper, 0, __ATOMIC_RELEASE);
}

void gcm__prof_dump_fork(int phase)
{
    if (phase == GCM_FORK_PREPARE)
        fork_prepare();
    else if (phase == GCM_FORK_PARENT)
        fork_parent();
    else
        fork_child();
}

static int signal_of(int64_t word)
{
    /* The order of GCMALLOC_PROFILE_SIGNAL's words in options.c. */
    switch (word) {
    case 1: case 4: return SIGUSR1;
    case 2: case 5: return SIGUSR2;
    case 3: case 6: return SIGHUP;
    default: return 0;
    }
}

void gcm__prof_dump_init(void)
{
    D.pid = getpid();
    if (gcm__opt_int(GCM_OPT_PROFILE) == GCM_OUTPUT_PATH) {
        const char *p = gcm__opt_str(GCM_OPT_PROFILE);
        gcm__fmt(D.exit_path, sizeof D.exit_path, "%s", p);
        D.exit_has_pid = strstr(p, "%p") != NULL;
    }
    gcm__fmt(D.base, sizeof D.base, "%s",
             D.exit_path[0] != '\0' ? D.exit_path : "heap.%p.pb.gz");
    D.report_mode = (int)gcm__opt_int(GCM_OPT_PROFILE_REPORT);
    if (D.report_mode == GCM_OUTPUT_PATH) {
        const char *p = gcm__opt_str(GCM_OPT_PROFILE_REPORT);
        gcm__fmt(D.report_path, sizeof D.report_path, "%s", p);
        D.report_has_pid = strstr(p, "%p") != NULL;
    }
    D.sig = signal_of(gcm__opt_int(GCM_OPT_PROFILE_SIGNAL));
    int64_t iv = gcm__opt_int(GCM_OPT_PROFILE_INTERVAL);
    D.interval_ns = iv == GCM_OPT_OFF ? 0 : iv;
    D.leak = gcm__opt_int(GCM_OPT_PROFILE_LEAK) != GCM_OPT_OFF;

    if (sem_init(&D.wake, 0, 0) == 0)
        D.sem_ready = true;
}

/* The thread, the signal handler and the exit handler are set up from a
 * constructor rather than by gcm__prof_init: the preloaded library may
 * initialize inside the program's first malloc, before the C library has
 * finished starting, when creating a thread is not safe.  Constructors run
 * after the C library's. */
__attribute__((constructor)) static void dump_start(void)
{
    gcm__ensure_init();
    static int started;
    if (__atomic_exchange_n(&started, 1, __ATOMIC_ACQ_REL))
        return;
    if (D.sig != 0 || D.interval_ns > 0)
        gcm__sym_series(); /* compared with -base: one symbolization */
    if (D.sem_ready && (D.sig != 0 || D.interval_ns > 0 || D.leak)) {
        pthread_t th;
        int rc = gcm__thread_spawn(&th, helper_main, NULL);
        if (rc == 0) {
            pthread_detach(th);
            __atomic_store_n(&D.helper, 1, __ATOMIC_RELEASE);
        } else {
            gcm__diag("cannot start the profiler's thread (%s): no signal or "
                      "interval dumps", gcm__strerror(rc));
        }
    }
    if (D.sig != 0 && D.helper) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(D.sig, &sa, NULL) != 0)
            gcm__diag("GCMALLOC_PROFILE_SIGNAL: cannot install the handler (%s)",
                      gcm__strerror(errno));
    }
    if (D.exit_path[0] != '\0' || D.report_mode != GCM_OUTPUT_NONE || D.leak)
        atexit(at_exit);
}
