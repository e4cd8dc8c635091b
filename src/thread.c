/*
 * thread.c — per-thread state, and making every thread visible to the
 * collector.
 *
 * The collector must scan the stack of every thread that may hold a pointer
 * to a collected object, and bdwgc only scans threads it knows.  A thread
 * it does not know either has its objects freed under it or, if it starts a
 * collection, aborts the process ("Collecting from unknown thread").  So
 * registration has to be automatic, and it happens in two ways:
 *
 *  1. At creation.  libgcmalloc interposes pthread_create: the new thread
 *     starts in a trampoline that registers it with bdwgc before running
 *     the caller's start routine, so its whole stack is scanned from its
 *     first instruction, even if it never calls into gcmalloc and only
 *     receives collected pointers from other threads.  The trampoline takes
 *     its own frame as the cold end of the stack (everything the thread
 *     does lives below it), which avoids pthread_getattr_np: that call
 *     allocates, and inside the preloaded malloc it must not.
 *     bdwgc's own marker threads are created through the same symbol; they
 *     must not be registered, so a start routine inside libgc passes
 *     straight through.
 *
 *  2. On first use.  A thread started before gcmalloc was loaded, or by a
 *     runtime that interposes pthread_create ahead of us (sanitizers),
 *     registers itself the first time it calls into gcmalloc: before its
 *     first collected allocation, hence before it can hold a pointer to one.
 *
 * Either way the thread is unregistered when it exits, from a pthread key
 * destructor (which runs for pthread_exit and for a normal return), because
 * bdwgc would otherwise keep scanning a stack that no longer exists.
 *
 * The per-thread state (gcm__tls) lives in static TLS.  Threads are linked
 * into a registry so that statistics can sum their counters; an exiting
 * thread folds its counters into the totals of exited threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS /* we interpose pthread_create ourselves */
#include <gc/gc.h>
#include <mimalloc.h>

#include "internal.h"

GCM_TLS gcm__tls gcm__tls_self;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static gcm__tls *reg_head;
static int reg_count;
static gcm__tls dead; /* counters of threads that have exited */
static pthread_key_t exit_key;
static bool key_ready;

#define MAX_EXIT_HOOKS 8
static void (*exit_hooks[MAX_EXIT_HOOKS])(gcm__tls *t);
static int n_exit_hooks;

/* The uint64_t counters that gcm__thread_sum adds up and that an exiting
 * thread folds into `dead`. */
static const size_t summable[] = {
    offsetof(gcm__tls, gc_mallocs),
    offsetof(gcm__tls, gc_frees),
    offsetof(gcm__tls, gc_alloc_bytes),
    offsetof(gcm__tls, gc_free_bytes),
    offsetof(gcm__tls, arena_created),
    offsetof(gcm__tls, arena_freed),
    offsetof(gcm__tls, arena_chunk_in),
    offsetof(gcm__tls, arena_chunk_out),
};

static uint64_t *field(gcm__tls *t, size_t off)
{
    return (uint64_t *)((char *)t + off);
}

void gcm__thread_on_exit(void (*fn)(gcm__tls *t))
{
    pthread_mutex_lock(&reg_mu);
    if (n_exit_hooks < MAX_EXIT_HOOKS)
        exit_hooks[n_exit_hooks++] = fn;
    pthread_mutex_unlock(&reg_mu);
}

/* Key destructors run in rounds: after a round, any key whose value is
 * still (or again) non-NULL gets another, up to PTHREAD_DESTRUCTOR_ITERATIONS.
 * Other libraries' destructors may use collected memory (their values,
 * pointers on this stack), which is safe only while this thread's stack is
 * scanned; so ours sets its value again until the last round and only then
 * unregisters the thread. */
static GCM_TLS uint8_t exit_rounds;

/* ThreadSanitizer tears an exiting thread's own state down in the last
 * round, before the remaining destructors run; work done then (atomics on
 * this thread's TLS) crashes inside TSan.  Under TSan we finish one round
 * earlier. */
#if defined(__SANITIZE_THREAD__)
#define LAST_EXIT_ROUND (PTHREAD_DESTRUCTOR_ITERATIONS - 1)
#else
#define LAST_EXIT_ROUND PTHREAD_DESTRUCTOR_ITERATIONS
#endif

static void thread_exit(void *arg)
{
    gcm__tls *t = arg;
    if (++exit_rounds < LAST_EXIT_ROUND) {
        pthread_setspecific(exit_key, t);
        return;
    }
    exit_rounds = 0;
    int n = __atomic_load_n(&n_exit_hooks, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        exit_hooks[i](t);
    pthread_mutex_lock(&reg_mu);
    if (t->flags & GCM_T_LINKED) {
        for (size_t i = 0; i < GCM_ARRAY_LEN(summable); i++)
            GCM_ADD(field(&dead, summable[i]), GCM_LOAD(field(t, summable[i])));
        for (size_t i = 0; i < GCM_ARRAY_LEN(summable); i++)
            GCM_STORE(field(t, summable[i]), 0);
        if (t->prev != NULL)
            t->prev->next = t->next;
        else
            reg_head = t->next;
        if (t->next != NULL)
            t->next->prev = t->prev;
        t->next = t->prev = NULL;
        reg_count--;
        t->flags &= (uint8_t)~GCM_T_LINKED;
    }
    pthread_mutex_unlock(&reg_mu);
    if (t->flags & GCM_T_GC_OURS)
        GC_unregister_my_thread();
    gcm__stacks_unregistered(t);
    t->flags &= (uint8_t)~(GCM_T_GC_REGISTERED | GCM_T_GC_OURS);
    t->flags |= GCM_T_EXITED;
}

/* fork(): only the forking thread exists in the child.  The others'
 * state blocks are copies nobody will update again: fold their counters
 * into the exited totals and leave the forking thread alone in the
 * registry. */
static void fork_child(void)
{
    pthread_mutex_init(&reg_mu, NULL);
    gcm__tls *self = &gcm__tls_self;
    for (gcm__tls *t = reg_head; t != NULL; t = t->next) {
        if (t == self)
            continue;
        for (size_t i = 0; i < GCM_ARRAY_LEN(summable); i++)
            GCM_ADD(field(&dead, summable[i]), GCM_LOAD(field(t, summable[i])));
    }
    bool linked = self->flags & GCM_T_LINKED;
    reg_head = linked ? self : NULL;
    reg_count = linked ? 1 : 0;
    self->next = self->prev = NULL;
}

void gcm__thread_fork(int phase)
{
    if (phase == GCM_FORK_PREPARE)
        pthread_mutex_lock(&reg_mu);
    else if (phase == GCM_FORK_PARENT)
        pthread_mutex_unlock(&reg_mu);
    else
        fork_child();
}

void gcm__thread_init(void)
{
    if (!key_ready && pthread_key_create(&exit_key, thread_exit) == 0)
        key_ready = true;
}

/* A thread past its last exit destructor is not linked again: nothing
 * would unlink it, and the registry would keep its freed TLS.  What it
 * still counts (a free from glibc's clean-up of cached stacks) is lost to
 * the statistics until the next collection measures the heap. */
void gcm__thread_attach(gcm__tls *t)
{
    if (t->flags & (GCM_T_LINKED | GCM_T_EXITED))
        return;
    pthread_mutex_lock(&reg_mu);
    t->prev = NULL;
    t->next = reg_head;
    if (reg_head != NULL)
        reg_head->prev = t;
    reg_head = t;
    reg_count++;
    t->flags |= GCM_T_LINKED;
    pthread_mutex_unlock(&reg_mu);
    /* A non-NULL value makes the key's destructor run when the thread
     * exits.  Setting it again after an exit destructor re-attached the
     * thread schedules one more destructor round, as POSIX allows. */
    if (key_ready)
        pthread_setspecific(exit_key, t);
}

uint64_t gcm__thread_sum(size_t off)
{
    pthread_mutex_lock(&reg_mu);
    uint64_t sum = GCM_LOAD(field(&dead, off));
    for (gcm__tls *t = reg_head; t != NULL; t = t->next)
        sum += GCM_LOAD(field(t, off));
    pthread_mutex_unlock(&reg_mu);
    return sum;
}

int gcm__thread_count(void)
{
    return __atomic_load_n(&reg_count, __ATOMIC_RELAXED);
}

void gcm__thread_foreach(void (*fn)(gcm__tls *t, void *arg), void *arg)
{
    pthread_mutex_lock(&reg_mu);
    for (gcm__tls *t = reg_head; t != NULL; t = t->next)
        fn(t, arg);
    pthread_mutex_unlock(&reg_mu);
}

/* Registration with the collector, from the first use of a thread and
 * from the threads we start alike.  The thread's signal mask may have been
 * set where no interposer saw it (by its creator, before it started):
 * the collector's two signals are unblocked in it. */
static void register_with_gc(gcm__tls *t, struct GC_stack_base *sb)
{
    int rc = GC_register_my_thread(sb);
    t->flags |= GCM_T_GC_REGISTERED;
    if (rc == GC_SUCCESS)
        t->flags |= GCM_T_GC_OURS;
    gcm__stacks_registered(t);
    gcm__signals_unblock_self();
}

/* A thread's first use, never after its exit destructor: glibc frees
 * other threads' cached stacks (and calls free) after the last destructor,
 * with every signal blocked; a thread registered again then was never
 * unregistered, and the next collection waited for its answer to the stop
 * signal until bdwgc aborted the process ("Signals delivery fails
 * constantly", python3 with threads in gc mode).
 *
 * bdwgc finds the thread's stack with pthread_getattr_np,
 * which allocates (its CPU set, and a copy kept in the attributes): under
 * the preloaded malloc in a collected mode those calls come back here
 * before the thread is registered, and the inner pthread_getattr_np waited
 * forever on the lock the outer one held.  Every thread glibc starts
 * without our pthread_create meets this (a timer's SIGEV_THREAD thread, a
 * runtime calling libc's pthread_create directly), so while the thread is
 * looking for its stack the preloaded malloc serves it from mimalloc, as
 * it serves start-up (preload.c), and a nested call here returns at once. */
void gcm__thread_gc_register(gcm__tls *t)
{
    if (t->flags & (GCM_T_GC_REGISTERED | GCM_T_GC_UNSCANNED))
        return;
    if (!gcm__gc_ready())
        return;
    /* Starting bdwgc's marker threads allocates too (each new thread's
     * TLS vector), and bdwgc accepts no registration until they run. */
    t->flags |= GCM_T_GC_REGISTERING;
    gcm__gc_allow_threads();
    struct GC_stack_base sb;
    int rc = GC_get_stack_base(&sb);
    t->flags &= (uint8_t)~GCM_T_GC_REGISTERING;
    if (rc != GC_SUCCESS) {
        gcm__diag("cannot find this thread's stack; its collected pointers "
                  "are not scanned");
        return;
    }
    register_with_gc(t, &sb);
    gcm__thread_attach(t);
}

int gcm_thread_register(void)
{
    gcm__ensure_init();
    gcm__thread_gc_register(&gcm__tls_self);
    return 0;
}

/* --- pthread_create interposition ----------------------------------------- */

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *,
                                 void *(*)(void *), void *);

static pthread_create_fn real_create(void)
{
    static void *real;
    return (pthread_create_fn)gcm__next_symbol(&real, "pthread_create");
}

struct start {
    void *(*fn)(void *);
    void *arg;
    bool internal;
    bool scanned; /* from bdwgc's uncollectable memory, not mimalloc's */
};

/* --- static TLS ---------------------------------------------------------------- */

/* Pointers kept only in __thread variables (haproxy keeps its per-thread
 * buffers and pool caches so) must be seen by the collector, or it reclaims
 * what they point to while the thread still uses it.  On x86-64, glibc
 * lays out each thread's static TLS block (the __thread variables of the
 * program and of every library loaded at start-up) just below the thread
 * descriptor, which the thread pointer addresses, and, for a thread it
 * creates, the stack just below that block.  So a new thread's stack is
 * registered up to its thread pointer, TLS included, and the main thread's
 * block, which the loader allocated elsewhere, is a root of its own.  (A
 * library dlopen'ed later gets its TLS from the loader's malloc, which is
 * scanned and never collected.) */
#if defined(__x86_64__) && defined(__GLIBC__)
#define TLS_BELOW_TP 1
#else
#define TLS_BELOW_TP 0
#endif

/* No static TLS block is this large; anything further is not one. */
#define TLS_MAX_SPAN ((uintptr_t)64 << 20)

/* The cold end of a new thread's stack for the collector: its thread
 * pointer when that lies just above `frame`, so its TLS is scanned too. */
static char *stack_cold_end(char *frame)
{
#if TLS_BELOW_TP
    char *tp = (char *)pthread_self();
    if (tp > frame && (uintptr_t)(tp - frame) <= TLS_MAX_SPAN)
        return tp;
#endif
    return frame;
}

#if TLS_BELOW_TP
struct tls_span {
    uintptr_t tp, lo;
};

static int lowest_tls(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct tls_span *s = arg;
    uintptr_t b = (uintptr_t)info->dlpi_tls_data;
    if (info->dlpi_tls_modid != 0 && b != 0 && b < s->tp && s->tp - b <= TLS_MAX_SPAN &&
        b < s->lo)
        s->lo = b;
    return 0;
}
#endif

void gcm__thread_main_tls_root(void)
{
#if TLS_BELOW_TP
    if (getpid() != (pid_t)syscall(SYS_gettid))
        return; /* another thread's TLS is in its stack, scanned with it */
    struct tls_span s = {(uintptr_t)pthread_self(), (uintptr_t)pthread_self()};
    dl_iterate_phdr(lowest_tls, &s);
    if (s.lo < s.tp)
        GC_add_roots((void *)s.lo, (void *)s.tp);
#endif
}

/* Its frame stays under the start routine's (the routine's value is kept
 * for pthread_join after it returns); stack captures leave it out
 * (prof_stack.c). */
static void *trampoline(void *p)
{
    struct start s = *(struct start *)p;
    gcm__tls *t = &gcm__tls_self;
    t->internal = s.internal;
    if (gcm__gc_ready()) {
        /* The cold end of this thread's stack, as far as anything we need to
         * scan is concerned: our own frame (plus the saved frame pointer and
         * return address above it).  Everything the start routine does, and
         * `s` itself, lives below. */
        struct GC_stack_base sb = {
            .mem_base = stack_cold_end((char *)__builtin_frame_address(0) +
                                       2 * sizeof(void *)),
        };
        register_with_gc(t, &sb);
    }
    /* Only now, with `s` on a stack the collector scans (see create). */
    if (s.scanned)
        GC_free(p);
    else
        mi_free(p);
    t->flags |= GCM_T_STARTED;
    gcm__thread_attach(t);
    void *value = s.fn(s.arg);
    gcm__thread_exit_value(value);
    return value;
}

/* Is fn bdwgc's code (one of its marker threads)?  bdwgc's code range is
 * found once (codemap.c) and each thread creation compares two integers;
 * two threads racing to find it store the same values. */
static bool inside_libgc(void *(*fn)(void *))
{
    static uintptr_t gc_lo, gc_hi;
    uintptr_t hi = __atomic_load_n(&gc_hi, __ATOMIC_ACQUIRE);
    if (hi == 0) {
        uintptr_t lo;
        gcm__code_range((const void *)&GC_init, &lo, &hi);
        __atomic_store_n(&gc_lo, lo, __ATOMIC_RELAXED);
        __atomic_store_n(&gc_hi, hi, __ATOMIC_RELEASE);
    }
    uintptr_t pc = (uintptr_t)fn;
    return pc >= __atomic_load_n(&gc_lo, __ATOMIC_RELAXED) && pc < hi;
}

static int create(pthread_t *th, const pthread_attr_t *attr,
                  void *(*fn)(void *), void *arg, bool internal)
{
    pthread_create_fn real = real_create();
    if (real == NULL)
        return EAGAIN;
    if ((!gcm__gc_ready() && !internal) || gcm__gc_starting_markers() ||
        inside_libgc(fn))
        return real(th, attr, fn, arg);
    gcm__gc_allow_threads();
    /* From pthread_create's return until the new thread has registered,
     * this block may be all that holds `arg` (std::thread hands over the
     * state holding its callable and forgets it), so it is memory the
     * collector scans once it runs: in mimalloc's, leakcheck reported such
     * arguments as leaks (tests/preload/thread_args.c) and gc mode could
     * reclaim them under the thread.  Uncollectable, and freed by the
     * thread after it registered. */
    bool scanned = gcm__gc_ready();
    struct start *s = scanned ? GC_malloc_uncollectable(sizeof *s) : mi_malloc(sizeof *s);
    if (s == NULL)
        return EAGAIN;
    *s = (struct start){fn, arg, internal, scanned};
    int rc = real(th, attr, trampoline, s);
    if (rc != 0) {
        if (scanned)
            GC_free(s);
        else
            mi_free(s);
    }
    return rc;
}

/* Exported on purpose (see docs/architecture.md): the one symbol outside the
 * gcm_ namespace that libgcmalloc defines, because registration at thread
 * creation is the only way to scan a thread that never calls us. */
__attribute__((visibility("default"))) int
pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
               void *arg)
{
    return create(th, attr, fn, arg, false);
}

int gcm__thread_spawn(pthread_t *th, void *(*fn)(void *), void *arg)
{
    return create(th, NULL, fn, arg, true);
}
