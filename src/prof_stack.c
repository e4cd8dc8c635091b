/*
 * prof_stack.c — capturing a sampled allocation's call stack.
 *
 * Two unwinders, chosen per build (CMake GCMALLOC_UNWIND):
 *
 *   libunwind (default)  unw_backtrace: reads the .eh_frame unwind tables
 *                        every binary carries, so it walks code built
 *                        without frame pointers (most of Debian, and most
 *                        programs built with -O2).  ~110–160 ns per stack.
 *                        It caches per thread in memory it maps itself.
 *   fp                   follows the saved frame-pointer chain: ~10–15 ns,
 *                        but the chain ends (or goes astray) at the first
 *                        frame built without -fno-omit-frame-pointer, which
 *                        often means one frame.
 *
 * At the default sampling rate either cost is noise (one sample per 512 KiB
 * allocated); at rate 1 libunwind's cost dominates the allocation.  glibc's
 * backtrace() is not an option: it loads libgcc_s with dlopen, which calls
 * malloc, on first use — inside the preloaded malloc that recurses.
 *
 * Which frames are kept.  The profile should start at the program's call
 * into gcmalloc, not inside it.  Every allocation path passes the return
 * address of its exported entry point (GCM_PROF_CALLER()); the captured
 * stack is cut just before that address.  When it cannot be found (a
 * broken chain), frames inside libgcmalloc's own text are dropped instead
 * (when gcmalloc is a shared object; linked statically, only the
 * profiler's own frames).
 *
 * The frame-pointer walk must never fault: it reads only inside the
 * current thread's stack mapping (found once per thread in
 * /proc/self/maps, read without malloc) and only ever moves towards the
 * stack's base.
 *
 * fork().  libunwind takes locks of its own while it walks (its caches of
 * unwind tables), and has no fork handlers: a thread forking while another
 * is inside unw_backtrace leaves the child a lock held for good, and the
 * child's first sampled allocation hangs (test_pool_fork caught one).  So
 * captures announce themselves in a count, and fork's prepare phase closes
 * the gate and waits for the count to drain; a capture that finds the gate
 * closed walks the frame pointers instead (fewer frames for the few
 * allocations sampled during a fork, never a hang; counted, so that the
 * tests can tell which way a capture went).  A gate rather than a lock: a
 * signal handler may sample on a thread already inside unw_backtrace, and
 * a writer-preferring lock would deadlock it against a waiting fork; the
 * forking thread's own capture, if it forked from a handler in the middle
 * of one, is not waited for.
 */
#define _GNU_SOURCE
#include <link.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef GCM_UNWIND_LIBUNWIND
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#endif

#include "internal.h"

/* Frames captured beyond the requested depth, for those cut off inside
 * gcmalloc. */
#define SLACK 16

const char *gcm__stack_method(void)
{
    return gcm__config_libunwind ? "libunwind" : "frame pointers";
}

/* --- where gcmalloc's own code is ---------------------------------------------- */

static struct {
    pthread_once_t once;
    uintptr_t lo, hi;
} own = {.once = PTHREAD_ONCE_INIT};

static int find_own(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t me = (uintptr_t)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        uintptr_t hi = lo + ph->p_memsz;
        if (me >= lo && me < hi) {
            /* Linked into the main program: our code is mixed with the
             * program's, so there is no range to drop. */
            if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0') {
                own.lo = lo;
                own.hi = hi;
            }
            return 1;
        }
    }
    return 0;
}

static void find_own_range(void)
{
    dl_iterate_phdr(find_own, (void *)(uintptr_t)&gcm__stack_capture);
}

static void own_range(uintptr_t *lo, uintptr_t *hi)
{
    pthread_once(&own.once, find_own_range);
    *lo = own.lo;
    *hi = own.hi;
}

/* The C library's code, where a thread's first frames are. */
static struct {
    pthread_once_t once;
    uintptr_t lo, hi;
} libc = {.once = PTHREAD_ONCE_INIT};

static void find_libc_range(void)
{
    gcm__code_range((const void *)&fputs, &libc.lo, &libc.hi);
}

static void libc_range(uintptr_t *lo, uintptr_t *hi)
{
    pthread_once(&libc.once, find_libc_range);
    *lo = libc.lo;
    *hi = libc.hi;
}

/* --- frame-pointer walk ----------------------------------------------------------- */

/* The calling thread's stack around sp, cached per thread: read again
 * only when sp is outside the cached one (a signal on an alternate stack).
 * false when unknown. */
static bool thread_stack(gcm__tls *t, uintptr_t sp)
{
    if (sp < t->prof_stack_lo || sp >= t->prof_stack_hi) {
        uintptr_t lo = 0, hi = 0;
        bool grows = false;
        if (!gcm__mapping_of(sp, &lo, &hi, &grows))
            lo = hi = 0;
        /* The main thread's stack is mapped as far as it has been used;
         * it may grow to its resource limit (8 MiB assumed when
         * unlimited). */
        struct rlimit rl;
        if (grows && getrlimit(RLIMIT_STACK, &rl) == 0) {
            uintptr_t size = rl.rlim_cur == RLIM_INFINITY ? (uintptr_t)8 << 20
                                                          : (uintptr_t)rl.rlim_cur;
            if (hi - size < lo && size < hi)
                lo = hi - size;
        }
        t->prof_stack_lo = lo;
        t->prof_stack_hi = hi;
    }
    return t->prof_stack_hi != 0;
}

size_t gcm__stack_room(void)
{
    gcm__tls *t = &gcm__tls_self;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    return thread_stack(t, sp) ? sp - t->prof_stack_lo : 0;
}

static GCM_NOINLINE int fp_walk(uintptr_t *buf, int max)
{
    gcm__tls *t = &gcm__tls_self;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    thread_stack(t, sp);
    uintptr_t hi = t->prof_stack_hi;
    if (hi == 0)
        return 0; /* stack unknown: walk nothing rather than guess */
    const uintptr_t *fp = __builtin_frame_address(0);
    int n = 0;
    while (n < max) {
        uintptr_t f = (uintptr_t)fp;
        if (f < sp || f > hi - 2 * sizeof(uintptr_t) || (f & 7) != 0)
            break;
        uintptr_t ret = fp[1];
        if (ret < 4096)
            break;
        buf[n++] = ret;
        uintptr_t next = fp[0];
        if (next <= f)
            break; /* frames only move towards the base */
        fp = (const uintptr_t *)next;
    }
    return n;
}

/* --- the fork gate ------------------------------------------------------------------ */

static int unwinders;     /* captures inside libunwind now         */
static int gate_closed;   /* a fork is between prepare and after   */
static GCM_TLS int unwinding_here;
/* Captures that found the gate closed and walked the frame pointers: the
 * only sign, short of reading their stacks, that a sample lost frames to a
 * fork.  Relaxed: a count, read by nothing that orders on it. */
static uint64_t fork_fallbacks;

/* Enters libunwind unless a fork is on its way: seq_cst on both sides, so
 * that fork's prepare either sees this capture counted or the capture sees
 * the gate closed (never neither). */
static bool unwind_enter(void)
{
    if (__atomic_load_n(&gate_closed, __ATOMIC_SEQ_CST))
        return false;
    __atomic_add_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&gate_closed, __ATOMIC_SEQ_CST)) {
        __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
        return false;
    }
    unwinding_here++;
    return true;
}

static void unwind_leave(void)
{
    unwinding_here--;
    __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
}

/* raw_capture enters and leaves the gate itself rather than through this
 * callback, so that libunwind's walk starts in raw_capture's own frame,
 * where gcm__stack_capture expects it. */
bool gcm__stack_gated(void (*fn)(void *), void *arg)
{
    if (!unwind_enter())
        return false;
    fn(arg);
    unwind_leave();
    return true;
}

uint64_t gcm__stack_fork_fallbacks(void)
{
    return GCM_LOAD(&fork_fallbacks);
}

void gcm__stack_fork(int phase)
{
    if (phase == GCM_FORK_PREPARE) {
        __atomic_store_n(&gate_closed, 1, __ATOMIC_SEQ_CST);
        /* Unwinds take microseconds; a thread stopped by a collection
         * meanwhile finishes when the collection does. */
        while (__atomic_load_n(&unwinders, __ATOMIC_SEQ_CST) > unwinding_here)
            sched_yield();
    } else {
        if (phase == GCM_FORK_CHILD) /* the others did not come along */
            __atomic_store_n(&unwinders, unwinding_here, __ATOMIC_SEQ_CST);
        __atomic_store_n(&gate_closed, 0, __ATOMIC_SEQ_CST);
    }
}

const void *gcm__unwinder_code(void)
{
#ifdef GCM_UNWIND_LIBUNWIND
    return (const void *)&unw_backtrace;
#else
    return NULL;
#endif
}

/* --- capture ------------------------------------------------------------------------- */

static GCM_NOINLINE int raw_capture(uintptr_t *buf, int max)
{
    int n;
#ifdef GCM_UNWIND_LIBUNWIND
    if (unwind_enter()) {
        n = unw_backtrace((void **)buf, max);
        unwind_leave();
    } else {
        GCM_ADD(&fork_fallbacks, 1);
        n = fp_walk(buf, max); /* a fork is in progress */
    }
    if (n <= 0) {
        /* libunwind found no unwind information (generated code, a corrupt
         * table): our own frames at least keep their frame pointers. */
        n = fp_walk(buf, max);
    }
#else
    n = fp_walk(buf, max);
#endif
    /* Not a tail call: gcm__stack_capture counts on this frame being on
     * the stack (raw[0] is in here). */
    __asm__ volatile("" ::: "memory");
    return n;
}

int gcm__stack_capture(uintptr_t *pcs, int max, const void *caller)
{
    if (pcs == NULL || max <= 0)
        return 0;
    if (max > GCM_PROF_MAX_DEPTH)
        max = GCM_PROF_MAX_DEPTH;
    uintptr_t raw[GCM_PROF_MAX_DEPTH + SLACK];
    int n = raw_capture(raw, max + SLACK);
    int start = -1;
    uintptr_t lo, hi;
    own_range(&lo, &hi);
    if (caller != NULL) {
        for (int i = 0; i < n; i++) {
            if (raw[i] == (uintptr_t)caller) {
                start = i;
                break;
            }
        }
        /* An entry point called by another of ours (gcm_arena_sprintf by
         * gcm_arena_calloc...): its caller is still inside gcmalloc. */
        while (start >= 0 && start < n - 1 && raw[start] >= lo && raw[start] < hi)
            start++;
    }
    if (start < 0) {
        /* raw[0] is in raw_capture, raw[1] in this function. */
        start = n > 2 ? 2 : n;
        while (start < n && raw[start] >= lo && raw[start] < hi)
            start++;
        if (start >= n && caller != NULL) {
            /* Nothing usable: at least the call into gcmalloc. */
            pcs[0] = (uintptr_t)caller;
            return 1;
        }
    }
    /* The cold end: a thread gcmalloc started runs its routine from
     * thread.c's trampoline, whose frame stays under the program's (it
     * keeps the routine's value alive until the join).  Below the C
     * library's thread start (start_thread, clone3), our frames are left
     * out.  Only when the capture reached the thread's first frame, and
     * only where our code has a range of its own (a shared library). */
    if (n < max + SLACK && hi > lo) {
        uintptr_t clo, chi;
        libc_range(&clo, &chi);
        int i = n - 1;
        while (i > start && raw[i] >= clo && raw[i] < chi)
            i--;
        int j = i;
        while (j > start && raw[j] >= lo && raw[j] < hi)
            j--;
        if (j < i) {
            memmove(raw + j + 1, raw + i + 1, (size_t)(n - i - 1) * sizeof *raw);
            n -= i - j;
        }
    }
    int depth = n - start;
    if (depth > max)
        depth = max;
    if (depth < 0)
        depth = 0;
    memcpy(pcs, raw + start, (size_t)depth * sizeof *pcs);
    return depth;
}
