/*
 * signals.c — the collector's two signals: choosing them, and keeping
 * them deliverable.
 *
 * bdwgc stops the world with signals: it sends every registered thread a
 * suspend signal, each thread's handler saves its registers, acknowledges
 * and waits in sigsuspend for a restart signal.  Its Linux defaults are
 * SIGPWR and SIGXCPU, and real programs handle those: xz and other
 * CPU-limit-aware tools catch SIGXCPU to clean up when RLIMIT_CPU runs
 * out, interactive shells trap it, UPS and init-style tools handle
 * SIGPWR.  Such a program cannot run with a collector that owns them.  So
 * gcmalloc moves the collector, before GC_init, to two real-time signals
 * (GCMALLOC_GC_SIGNALS, by default SIGRTMIN+6 to suspend and SIGRTMIN+5
 * to restart: the pair bdwgc itself uses where it builds with
 * GC_USESIGRT_SIGNALS).  Real-time signals are numbered, not named, so a
 * program uses one only after choosing it, and the usual choices are the
 * first few (POSIX timers take SIGRTMIN).  A program that does use the
 * pair chooses another with the option; a handler it installed before the
 * collector started is named in one line, since GC_init replaces it.
 *
 * A thread that blocks the suspend signal never acknowledges, and the
 * collecting thread resends and waits until bdwgc gives up and aborts the
 * process ("Signals delivery fails constantly", after about 15 s).
 * Blocking every signal is common and legitimate in C services: the sigwait pattern (block everything in
 * every thread, one thread takes signals synchronously), signalfd, worker
 * pools that keep signals away from their threads.  bdwgc's answer is
 * GC_pthread_sigmask, which the program must call instead of
 * pthread_sigmask; an unmodified program under the preload library cannot,
 * and a program linking gcmalloc should not have to.
 *
 * So, once the collector runs, gcmalloc interposes every call that sets a
 * thread's signal mask — pthread_sigmask, sigprocmask, sigsuspend, ppoll,
 * pselect, epoll_pwait — and removes the collector's two signals from any
 * set the call would block, exactly as GC_pthread_sigmask does.  The calls
 * that take signals synchronously — sigwait, sigwaitinfo, sigtimedwait,
 * signalfd — get the two removed from the set they take, because taking
 * them would steal the collector's stop request: sigwait would return
 * the suspend signal to the program and the collection would hang.  With
 * the signals left deliverable, a thread waiting in any of these runs
 * bdwgc's handler and goes on waiting (sigwait restarts; sigwaitinfo and friends may return
 * EINTR, like any call interrupted by a handler).  The program sees masks
 * without the two signals, as with GC_pthread_sigmask.
 *
 * A program that installs its own disposition for one of the two signals
 * would take the collector's handshake over; there is no way to run it
 * correctly, so sigaction and signal refuse with EINVAL — what the C
 * library itself answers for the signals it reserves for its own use
 * (SIGCANCEL, SIGSETXID) — and one line on the diagnostic sink says why,
 * once per signal.  Queries (a NULL new action) are answered.
 *
 * Calls are told apart without locks (these functions are
 * async-signal-safe and are called from signal handlers): bdwgc's own calls
 * are recognized by their return address in libgc's code, a range looked
 * up once.  Until the collector starts — before gcmalloc's constructor, or
 * for good in the preload library's fast mode, which never starts it —
 * every call passes through untouched.
 *
 * A mask set where no interposer sees it — before the collector started
 * (and inherited by the threads created since), by a raw system call, or
 * in a program that dlopen'ed gcmalloc — is corrected when the thread
 * registers with the collector (gcm__signals_unblock_self): the
 * collector's start, each thread's start, gcm_thread_register.
 *
 * bdwgc's suspend handler itself is wrapped once GC_init has installed it:
 * each stopped thread first notes which stack it runs on (gc_stacks.c:
 * coroutines), then answers the stop as bdwgc does.
 *
 * Not covered: a raw rt_sigprocmask/rt_sigaction system call made after
 * the thread registered, the obsolete sigset/sigblock/bsd_signal family,
 * and masks restored from a ucontext whose uc_sigmask the program filled
 * itself (setcontext, swapcontext).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS /* thread.c interposes pthread_create */
#include <gc/gc.h>

#include "internal.h"

#define API __attribute__((visibility("default")))

enum {
    F_PTHREAD_SIGMASK,
    F_SIGPROCMASK,
    F_SIGSUSPEND,
    F_PPOLL,
    F_PSELECT,
    F_EPOLL_PWAIT,
    F_SIGWAIT,
    F_SIGWAITINFO,
    F_SIGTIMEDWAIT,
    F_SIGNALFD,
    F_SIGACTION,
    F_SIGNAL,
    F__N
};

static const char *const fn_names[F__N] = {
    [F_PTHREAD_SIGMASK] = "pthread_sigmask",
    [F_SIGPROCMASK] = "sigprocmask",
    [F_SIGSUSPEND] = "sigsuspend",
    [F_PPOLL] = "ppoll",
    [F_PSELECT] = "pselect",
    [F_EPOLL_PWAIT] = "epoll_pwait",
    [F_SIGWAIT] = "sigwait",
    [F_SIGWAITINFO] = "sigwaitinfo",
    [F_SIGTIMEDWAIT] = "sigtimedwait",
    [F_SIGNALFD] = "signalfd",
    [F_SIGACTION] = "sigaction",
    [F_SIGNAL] = "signal",
};

static void *real_fn[F__N];
static bool active;
static int sig_suspend = -1, sig_restart = -1;
static uintptr_t gc_lo, gc_hi;
static int refused_once[2];

/* The C library's function.  Resolved for all at the collector's start;
 * a call before that (a constructor that runs before ours) resolves its
 * own, which is safe then: nothing but start-up code runs. */
static void *next(int f)
{
    return gcm__next_symbol(&real_fn[f], fn_names[f]);
}

#define REAL(f, type) ((type)next(f))
#define CALLER() ((uintptr_t)__builtin_return_address(0))

static bool engaged(uintptr_t caller)
{
    return __atomic_load_n(&active, __ATOMIC_ACQUIRE) && !(caller >= gc_lo && caller < gc_hi);
}

/* `set`, or a copy of it without the collector's signals when the caller
 * is the program's and the set holds either of them. */
static const sigset_t *keep_gc_signals(const sigset_t *set, sigset_t *copy, uintptr_t caller)
{
    if (set == NULL || !engaged(caller))
        return set;
    if (sigismember(set, sig_suspend) != 1 && sigismember(set, sig_restart) != 1)
        return set;
    *copy = *set;
    sigdelset(copy, sig_suspend);
    sigdelset(copy, sig_restart);
    return copy;
}

/* --- calls that set the mask ------------------------------------------------------ */

API int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    sigset_t copy;
    if (how != SIG_UNBLOCK)
        set = keep_gc_signals(set, &copy, CALLER());
    return REAL(F_PTHREAD_SIGMASK, int (*)(int, const sigset_t *, sigset_t *))(how, set, old);
}

API int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    sigset_t copy;
    if (how != SIG_UNBLOCK)
        set = keep_gc_signals(set, &copy, CALLER());
    return REAL(F_SIGPROCMASK, int (*)(int, const sigset_t *, sigset_t *))(how, set, old);
}

API int sigsuspend(const sigset_t *mask)
{
    sigset_t copy;
    mask = keep_gc_signals(mask, &copy, CALLER());
    return REAL(F_SIGSUSPEND, int (*)(const sigset_t *))(mask);
}

API int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
              const sigset_t *mask)
{
    sigset_t copy;
    mask = keep_gc_signals(mask, &copy, CALLER());
    return REAL(F_PPOLL, int (*)(struct pollfd *, nfds_t, const struct timespec *,
                                 const sigset_t *))(fds, n, timeout, mask);
}

API int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout,
                const sigset_t *mask)
{
    sigset_t copy;
    mask = keep_gc_signals(mask, &copy, CALLER());
    return REAL(F_PSELECT, int (*)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                                   const sigset_t *))(n, r, w, e, timeout, mask);
}

API int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout,
                    const sigset_t *mask)
{
    sigset_t copy;
    mask = keep_gc_signals(mask, &copy, CALLER());
    return REAL(F_EPOLL_PWAIT, int (*)(int, struct epoll_event *, int, int,
                                       const sigset_t *))(epfd, events, max, timeout, mask);
}

/* --- calls that take signals synchronously ----------------------------------------- */

API int sigwait(const sigset_t *set, int *sig)
{
    sigset_t copy;
    set = keep_gc_signals(set, &copy, CALLER());
    return REAL(F_SIGWAIT, int (*)(const sigset_t *, int *))(set, sig);
}

API int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
    sigset_t copy;
    set = keep_gc_signals(set, &copy, CALLER());
    return REAL(F_SIGWAITINFO, int (*)(const sigset_t *, siginfo_t *))(set, info);
}

API int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
    sigset_t copy;
    set = keep_gc_signals(set, &copy, CALLER());
    return REAL(F_SIGTIMEDWAIT, int (*)(const sigset_t *, siginfo_t *,
                                        const struct timespec *))(set, info, timeout);
}

API int signalfd(int fd, const sigset_t *mask, int flags)
{
    sigset_t copy;
    mask = keep_gc_signals(mask, &copy, CALLER());
    return REAL(F_SIGNALFD, int (*)(int, const sigset_t *, int))(fd, mask, flags);
}

/* --- calls that change a disposition ---------------------------------------------- */

/* True, with errno = EINVAL and the one-time explanation, when the program
 * tries to change the disposition of one of the collector's signals. */
static bool refuse(const char *call, int sig, uintptr_t caller)
{
    if (!engaged(caller) || (sig != sig_suspend && sig != sig_restart))
        return false;
    int *once = &refused_once[sig == sig_restart];
    if (__atomic_exchange_n(once, 1, __ATOMIC_RELAXED) == 0) {
        char a[24], b[24], s[24];
        gcm__signal_name(sig_suspend, a, sizeof a);
        gcm__signal_name(sig_restart, b, sizeof b);
        gcm__signal_name(sig, s, sizeof s);
        gcm__diag("%s(%s) refused with EINVAL: gcmalloc's collector stops and restarts "
                  "threads with %s and %s, and a disposition of the program's would "
                  "break every collection (GCMALLOC_GC_SIGNALS chooses two others; under "
                  "the preload library, GCMALLOC_MODE=fast leaves signals alone)",
                  call, s, a, b);
    }
    errno = EINVAL;
    return true;
}

/* Resetting one of the two to SIG_DFL is what a child does between fork and
 * exec to every signal (libuv's uv_spawn, hence node's child_process and
 * cmake; git's run-command): succeed without touching the collector's
 * handler — execve resets it anyway — and say nothing.  libuv treats a
 * failure there as fatal and the spawn fails with EINVAL. */
static bool reset_to_default(int sig, sighandler_t handler, uintptr_t caller)
{
    return handler == SIG_DFL && engaged(caller) && (sig == sig_suspend || sig == sig_restart);
}

API int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (act != NULL && !(act->sa_flags & SA_SIGINFO) &&
        reset_to_default(sig, act->sa_handler, CALLER()))
        return REAL(F_SIGACTION, int (*)(int, const struct sigaction *, struct sigaction *))(
            sig, NULL, old);
    if (act != NULL && refuse("sigaction", sig, CALLER()))
        return -1;
    return REAL(F_SIGACTION, int (*)(int, const struct sigaction *, struct sigaction *))(
        sig, act, old);
}

API sighandler_t signal(int sig, sighandler_t handler)
{
    if (reset_to_default(sig, handler, CALLER())) {
        struct sigaction cur;
        if (REAL(F_SIGACTION, int (*)(int, const struct sigaction *, struct sigaction *))(
                sig, NULL, &cur) != 0)
            return SIG_ERR;
        return cur.sa_handler;
    }
    if (refuse("signal", sig, CALLER()))
        return SIG_ERR;
    return REAL(F_SIGNAL, sighandler_t (*)(int, sighandler_t))(sig, handler);
}

/* --- start ---------------------------------------------------------------------- */

/* Before GC_init: tell bdwgc which two signals to use.  GC_init installs
 * its handlers on them, replacing whatever the program set before the
 * collector started (a constructor that ran first, or a program that
 * dlopen'ed gcmalloc late); that program would lose its handler without a
 * word, so say it once. */
void gcm__signals_choose(void)
{
    int64_t v = gcm__opt_int(GCM_OPT_GC_SIGNALS);
    int sigs[2] = {GCM_SIGNALS_FIRST(v), GCM_SIGNALS_SECOND(v)};
    for (int i = 0; i < 2; i++) {
        struct sigaction cur;
        if (REAL(F_SIGACTION, int (*)(int, const struct sigaction *, struct sigaction *))(
                sigs[i], NULL, &cur) != 0)
            continue;
        if (cur.sa_handler != SIG_DFL) { /* sa_sigaction shares its storage */
            char name[24];
            gcm__signal_name(sigs[i], name, sizeof name);
            gcm__diag("the program's disposition of %s is replaced by the collector's "
                      "handler; set GCMALLOC_GC_SIGNALS to two signals the program does "
                      "not use",
                      name);
        }
    }
    GC_set_suspend_signal(sigs[0]);
    GC_set_thr_restart_signal(sigs[1]);
}

/* bdwgc's suspend handler, wrapped: each stopped thread first notes which
 * stack it is on (gc_stacks.c) and lets go of a free-block cache it has
 * stopped using (gc.c), then answers the stop as bdwgc does.  The
 * wrapper's frame is on that stack too, below the signal frame and above
 * the registers bdwgc saves, so what bdwgc scans is unchanged.  bdwgc
 * installs it with SA_SIGINFO on Linux. */
static void (*bdwgc_suspend)(int, siginfo_t *, void *);

static void suspend_handler(int sig, siginfo_t *info, void *context)
{
    int saved = errno;
    gcm__stacks_stopped();
    gcm__gc_fcache_stopped();
    errno = saved;
    bdwgc_suspend(sig, info, context);
}

static void wrap_suspend_handler(void)
{
    typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
    struct sigaction act;
    if (REAL(F_SIGACTION, sigaction_fn)(sig_suspend, NULL, &act) == 0 &&
        (act.sa_flags & SA_SIGINFO) && act.sa_sigaction != NULL) {
        bdwgc_suspend = act.sa_sigaction;
        act.sa_sigaction = suspend_handler;
        if (REAL(F_SIGACTION, sigaction_fn)(sig_suspend, &act, NULL) == 0)
            return;
    }
    gcm__diag("cannot wrap the collector's suspend handler: a collection that "
              "stops a thread on a coroutine's stack may crash");
}

void gcm__signals_init(void)
{
    for (int f = 0; f < F__N; f++)
        next(f);
    gcm__code_range((const void *)&GC_init, &gc_lo, &gc_hi);
    sig_suspend = GC_get_suspend_signal();
    sig_restart = GC_get_thr_restart_signal();
    if (sig_suspend > 0 && sig_restart > 0) {
        wrap_suspend_handler();
        __atomic_store_n(&active, true, __ATOMIC_RELEASE);
    }
    gcm__signals_unblock_self();
}

/* A thread's mask may block the two signals without any call of ours
 * seeing it: it was set before the collector started (inherited by every
 * thread created since), by a raw system call, or in a program that
 * dlopen'ed gcmalloc, whose interposers its calls never reach.  Such a
 * thread, once registered, would hang the next collection until bdwgc
 * aborts; so every registration ends here and unblocks them, which is
 * what the interposers would have done to the mask. */
void gcm__signals_unblock_self(void)
{
    int a = GC_get_suspend_signal(), b = GC_get_thr_restart_signal();
    if (a <= 0 || b <= 0)
        return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, a);
    sigaddset(&set, b);
    REAL(F_PTHREAD_SIGMASK, int (*)(int, const sigset_t *, sigset_t *))(SIG_UNBLOCK, &set, NULL);
}
