/*
 * test_signals.c — programs that block or take every signal still collect
 * (src/signals.c).
 *
 * bdwgc stops threads with one signal and restarts them with another
 * (GCMALLOC_GC_SIGNALS; SIGRTMIN+6 and SIGRTMIN+5 by default, run again
 * with bdwgc's own SIGPWR and SIGXCPU).  Before
 * signals.c, a thread that blocked all signals (the sigwait server
 * pattern) made the next collection resend and wait until bdwgc aborted
 * the process after ~15 s; a thread waiting in sigwait on every signal
 * would have taken the stop request itself.  Each test below runs
 * collections while other threads do one of those things, and checks that
 * the collections complete, that the threads' collected objects survive
 * them, and that the program still gets its own signals.
 *
 * Linked with the shared library, as programs are; and with bdwgc, only to
 * ask it which two signals gcmalloc gave it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define GC_THREADS             /* declares the thread-signal queries */
#define GC_NO_THREAD_REDIRECTS /* pthread_create stays the program's */
#include <gc/gc.h>

#include "gcmalloc.h"

/* The collector's two signals, as bdwgc reports them. */
static int S_SUSPEND, S_RESTART;

static void read_collector_signals(void)
{
    S_SUSPEND = GC_get_suspend_signal();
    S_RESTART = GC_get_thr_restart_signal();
}

static uint32_t cycles(void)
{
    struct gcm_memstats ms;
    gcm_read_memstats(&ms);
    return ms.num_gc;
}

/* A list of collected nodes reachable only from the caller's stack. */
struct node {
    struct node *next;
    uint64_t v;
};

static struct node *build(int n, uint64_t salt)
{
    struct node *head = NULL;
    for (int i = 0; i < n; i++) {
        struct node *x = gcm_malloc(sizeof *x);
        if (x == NULL)
            return NULL;
        x->next = head;
        x->v = (uint64_t)i * 2654435761u ^ salt;
        head = x;
    }
    return head;
}

static int check(const struct node *head, int n, uint64_t salt)
{
    for (int i = n - 1; i >= 0; i--, head = head->next)
        if (head == NULL || head->v != ((uint64_t)i * 2654435761u ^ salt))
            return 0;
    return head == NULL;
}

static void full_set(sigset_t *s)
{
    sigfillset(s);
}

/* --- masks: the program's view ------------------------------------------------------ */

static void test_masks_keep_collector_signals(void **state)
{
    (void)state;
    sigset_t all, cur, old;
    full_set(&all);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &all, &old), 0);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    assert_int_equal(sigismember(&cur, S_SUSPEND), 0);
    assert_int_equal(sigismember(&cur, S_RESTART), 0);
    assert_int_equal(sigismember(&cur, SIGUSR1), 1);
    assert_int_equal(sigismember(&cur, SIGTERM), 1);
    /* bdwgc's own pair is blocked as asked unless it is the collector's. */
    assert_int_equal(sigismember(&cur, SIGXCPU), S_SUSPEND != SIGXCPU && S_RESTART != SIGXCPU);
    assert_int_equal(sigismember(&cur, SIGPWR), S_SUSPEND != SIGPWR && S_RESTART != SIGPWR);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);

    assert_int_equal(sigprocmask(SIG_SETMASK, &all, &old), 0);
    assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
    assert_int_equal(sigismember(&cur, S_SUSPEND), 0);
    assert_int_equal(sigismember(&cur, S_RESTART), 0);
    assert_int_equal(sigismember(&cur, SIGINT), 1);
    assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);

    /* Bad arguments still reach the C library's checks. */
    assert_int_equal(pthread_sigmask(12345, &all, NULL), EINVAL);
    errno = 0;
    assert_int_equal(sigprocmask(12345, &all, NULL), -1);
    assert_int_equal(errno, EINVAL);
}

/* --- threads that block everything and allocate ---------------------------------- */

static volatile int stop_flag;

static void *blocker(void *arg)
{
    sigset_t all;
    full_set(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uint64_t salt = (uint64_t)(uintptr_t)arg;
    long ok = 1, rounds = 0;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE) || rounds < 4) {
        struct node *l = build(2000, salt + (uint64_t)rounds);
        for (int i = 0; i < 50; i++)
            gcm_free(gcm_malloc(64)); /* churn, so this thread allocates */
        ok &= check(l, 2000, salt + (uint64_t)rounds);
        rounds++;
    }
    return (void *)ok;
}

static void test_blocked_threads_collect(void **state)
{
    (void)state;
    pthread_t t[2];
    stop_flag = 0;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, blocker, (void *)(uintptr_t)(i + 1)), 0);
    uint32_t before = cycles();
    for (int i = 0; i < 30; i++)
        assert_int_equal(gcm_gc(), 0);
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        assert_true(ok == (void *)1);
    }
    assert_true(cycles() - before >= 30);
}

/* --- a sigwait server ---------------------------------------------------------------- */

enum { WAIT_SIGWAIT, WAIT_SIGWAITINFO, WAIT_SIGTIMEDWAIT, WAIT_SIGNALFD, WAIT_SIGSUSPEND };

struct waiter {
    int how;
    int got;         /* the signal the program's wait returned */
    int stray;       /* a collector signal the program was handed */
    volatile int ready;
    struct node *list;
};

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen = 1;
}

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    sigset_t all;
    full_set(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    /* Held only here, across every collection the main thread runs. */
    struct node *keep = build(1000, 77);
    w->list = keep;
    int fd = -1;
    if (w->how == WAIT_SIGNALFD)
        fd = signalfd(-1, &all, 0);
    __atomic_store_n(&w->ready, 1, __ATOMIC_RELEASE);
    for (;;) {
        int sig = 0;
        siginfo_t si;
        struct timespec ten_ms = {0, 10 * 1000 * 1000};
        switch (w->how) {
        case WAIT_SIGWAIT:
            if (sigwait(&all, &sig) != 0)
                sig = 0;
            break;
        case WAIT_SIGWAITINFO:
            sig = sigwaitinfo(&all, &si);
            break;
        case WAIT_SIGTIMEDWAIT:
            sig = sigtimedwait(&all, &si, &ten_ms);
            break;
        case WAIT_SIGNALFD: {
            struct signalfd_siginfo fi;
            if (read(fd, &fi, sizeof fi) == (ssize_t)sizeof fi)
                sig = (int)fi.ssi_signo;
            break;
        }
        case WAIT_SIGSUSPEND: {
            sigset_t m;
            full_set(&m);
            sigdelset(&m, SIGUSR1);
            sigsuspend(&m);
            if (usr1_seen)
                sig = SIGUSR1;
            break;
        }
        }
        if (sig == S_SUSPEND || sig == S_RESTART)
            w->stray = sig;
        if (sig == SIGUSR1) {
            w->got = sig;
            break;
        }
    }
    if (fd >= 0)
        close(fd);
    return (void *)(intptr_t)check(keep, 1000, 77);
}

static void run_waiter(int how)
{
    struct waiter w = {.how = how};
    pthread_t t;
    usr1_seen = 0;
    struct sigaction sa = {.sa_handler = on_usr1};
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
    assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
    while (!__atomic_load_n(&w.ready, __ATOMIC_ACQUIRE))
        sched_yield();
    uint32_t before = cycles();
    for (int i = 0; i < 20; i++) {
        /* Garbage between cycles, so that each one has work to do. */
        for (int j = 0; j < 1000; j++)
            gcm_malloc(128);
        assert_int_equal(gcm_gc(), 0);
    }
    assert_true(cycles() - before >= 20);
    assert_int_equal(pthread_kill(t, SIGUSR1), 0);
    void *ok;
    pthread_join(t, &ok);
    assert_int_equal(w.got, SIGUSR1);
    assert_int_equal(w.stray, 0);
    assert_true(ok == (void *)1);
    signal(SIGUSR1, SIG_DFL);
}

static void test_sigwait(void **state) { (void)state; run_waiter(WAIT_SIGWAIT); }
static void test_sigwaitinfo(void **state) { (void)state; run_waiter(WAIT_SIGWAITINFO); }
static void test_sigtimedwait(void **state) { (void)state; run_waiter(WAIT_SIGTIMEDWAIT); }
static void test_signalfd(void **state) { (void)state; run_waiter(WAIT_SIGNALFD); }
static void test_sigsuspend(void **state) { (void)state; run_waiter(WAIT_SIGSUSPEND); }

/* ppoll with a mask that blocks everything, while collections run. */
static void *ppoller(void *arg)
{
    (void)arg;
    sigset_t all;
    full_set(&all);
    struct node *keep = build(500, 5);
    struct timespec t = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 100; i++)
        ppoll(NULL, 0, &t, &all);
    return (void *)(intptr_t)check(keep, 500, 5);
}

static void test_ppoll(void **state)
{
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, ppoller, NULL), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(gcm_gc(), 0);
    void *ok;
    pthread_join(t, &ok);
    assert_true(ok == (void *)1);
}

/* --- dispositions ------------------------------------------------------------------ */

static void test_dispositions_refused(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = SIG_IGN}, cur;
    sigemptyset(&sa.sa_mask);
    errno = 0;
    assert_int_equal(sigaction(S_RESTART, &sa, NULL), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(sigaction(S_SUSPEND, &sa, &cur), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_true(signal(S_SUSPEND, SIG_IGN) == SIG_ERR);
    assert_int_equal(errno, EINVAL);
    /* Back to the default is what a child does to every signal between
     * fork and exec (libuv's spawn treats a failure as fatal): it succeeds,
     * and the collector's handler stays (exec resets it anyway). */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    assert_int_equal(sigaction(S_SUSPEND, &dfl, &cur), 0);
    assert_true(cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN);
    assert_int_equal(sigaction(S_RESTART, &dfl, NULL), 0);
    sighandler_t was = signal(S_RESTART, SIG_DFL);
    assert_true(was != SIG_ERR && was != SIG_DFL);
    /* Queries are answered: bdwgc's handlers are in place. */
    assert_int_equal(sigaction(S_SUSPEND, NULL, &cur), 0);
    assert_true(cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN);
    assert_int_equal(sigaction(S_RESTART, NULL, &cur), 0);
    assert_true(cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN);
    /* Other signals are the program's. */
    assert_int_equal(sigaction(SIGUSR2, &sa, NULL), 0);
    assert_true(signal(SIGUSR2, SIG_DFL) == SIG_IGN);
    /* And collections still work. */
    uint32_t before = cycles();
    assert_int_equal(gcm_gc(), 0);
    assert_true(cycles() > before);
}

/* The pair in force is the option's: bdwgc's real-time pair by default, and
 * whatever GCMALLOC_GC_SIGNALS names otherwise (this file runs again with
 * "SIGPWR,SIGXCPU").  Under the default, SIGXCPU and SIGPWR are the
 * program's: a handler installs and runs (xz catches SIGXCPU). */
static volatile sig_atomic_t xcpu_seen;
static void on_xcpu(int sig)
{
    (void)sig;
    xcpu_seen = 1;
}

static void test_signal_choice(void **state)
{
    (void)state;
    const char *opt = getenv("GCMALLOC_GC_SIGNALS");
    if (opt == NULL) {
        assert_int_equal(S_SUSPEND, SIGRTMIN + 6);
        assert_int_equal(S_RESTART, SIGRTMIN + 5);
        struct sigaction sa = {.sa_handler = on_xcpu}, old;
        sigemptyset(&sa.sa_mask);
        assert_int_equal(sigaction(SIGXCPU, &sa, &old), 0);
        assert_int_equal(raise(SIGXCPU), 0);
        assert_int_equal(xcpu_seen, 1);
        assert_int_equal(sigaction(SIGXCPU, &old, NULL), 0);
        assert_true(signal(SIGPWR, SIG_IGN) != SIG_ERR);
        assert_true(signal(SIGPWR, SIG_DFL) == SIG_IGN);
    } else if (strcmp(opt, "SIGPWR,SIGXCPU") == 0) {
        assert_int_equal(S_SUSPEND, SIGPWR);
        assert_int_equal(S_RESTART, SIGXCPU);
    } else {
        fail_msg("run with GCMALLOC_GC_SIGNALS unset or SIGPWR,SIGXCPU, not %s", opt);
    }
}

/* --- masks no interposer saw -------------------------------------------------------- */

/* A thread the C library made (as in a program that dlopen'ed gcmalloc
 * after making its threads) blocks everything with the raw system call
 * (as if before the collector started), then registers with the
 * collector: registration must leave the collector's two signals
 * deliverable, and only those, or the next collection would hang until
 * bdwgc aborted the process. */
static int unseen_pipe[2];
static int unseen_state; /* 1 blocked, 2 registered and unblocked, -1 failed */
static struct node *unseen_list;

static void *unseen_blocker(void *arg)
{
    (void)arg;
    sigset_t all, cur;
    full_set(&all);
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, (size_t)_NSIG / 8);
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    int blocked = sigismember(&cur, S_SUSPEND) == 1 && sigismember(&cur, S_RESTART) == 1;
    gcm_thread_register();
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    int unblocked = sigismember(&cur, S_SUSPEND) == 0 && sigismember(&cur, S_RESTART) == 0 &&
                    sigismember(&cur, SIGUSR1) == 1 && sigismember(&cur, SIGTERM) == 1;
    if (blocked && unblocked)
        unseen_list = build(2000, 77);
    __atomic_store_n(&unseen_state, blocked && unblocked ? 2 : -1, __ATOMIC_RELEASE);
    char c;
    while (read(unseen_pipe[0], &c, 1) < 0 && errno == EINTR)
        ; /* interrupted by the collector's stop: go on waiting */
    int ok = unseen_list != NULL && check(unseen_list, 2000, 77);
    unseen_list = NULL;
    return (void *)(intptr_t)ok;
}

static void test_mask_set_unseen(void **state)
{
    (void)state;
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    assert_non_null(libc);
    int (*libc_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(
            libc, "pthread_create");
    assert_non_null(libc_create);
    assert_int_equal(pipe(unseen_pipe), 0);
    pthread_t t;
    assert_int_equal(libc_create(&t, NULL, unseen_blocker, NULL), 0);
    while (__atomic_load_n(&unseen_state, __ATOMIC_ACQUIRE) == 0)
        sched_yield();
    assert_int_equal(unseen_state, 2); /* else a collection now would hang */
    uint32_t before = cycles();
    assert_int_equal(gcm_gc(), 0);
    assert_int_equal(gcm_gc(), 0);
    assert_true(cycles() >= before + 2);
    assert_int_equal(write(unseen_pipe[1], "x", 1), 1);
    void *ok = NULL;
    assert_int_equal(pthread_join(t, &ok), 0);
    assert_int_equal((intptr_t)ok, 1); /* its list survived, being scanned */
    close(unseen_pipe[0]);
    close(unseen_pipe[1]);
    dlclose(libc);
}

int main(void)
{
    read_collector_signals();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_choice),
        cmocka_unit_test(test_masks_keep_collector_signals),
        cmocka_unit_test(test_blocked_threads_collect),
        cmocka_unit_test(test_sigwait),
        cmocka_unit_test(test_sigwaitinfo),
        cmocka_unit_test(test_sigtimedwait),
        cmocka_unit_test(test_signalfd),
        cmocka_unit_test(test_sigsuspend),
        cmocka_unit_test(test_ppoll),
        cmocka_unit_test(test_dispositions_refused),
        cmocka_unit_test(test_mask_set_unseen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
