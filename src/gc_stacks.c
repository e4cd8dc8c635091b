/*
 * gc_stacks.c — threads that run on stacks of their own (coroutines).
 *
 * bdwgc scans a stopped thread's stack from its stack pointer up to the
 * cold end registered for the thread.  A program that switches stacks
 * itself (coroutines with swapcontext, or an assembly switch as
 * boost.context and libco do) runs on memory it allocated, and a
 * collection that stopped a thread there scanned from that memory up to
 * the real stack's cold end, across whatever lay between: a SIGSEGV inside
 * GC_gcollect, in both collected modes.  bdwgc's answer is
 * GC_set_stackbottom, called by the program at each switch; an unmodified
 * program's switches never pass through us.
 *
 * So the question "where is this thread's stack?" is asked when it has an
 * answer: while the world is stopped, every thread sits at a stack pointer
 * that will not move until the collection ends.
 *
 *  1. Each stopped thread looks where its stack pointer is, in the
 *     collector's suspend-signal handler (signals.c wraps bdwgc's).  On a
 *     collected object, or on memory the program mapped (preload_maps.c),
 *     that does not hold the stack it registered, above the pointer, the
 *     thread is *away*: it notes the region and links itself into this
 *     stop's list.  The collecting thread does the same for itself.
 *  2. Before bdwgc pushes the stacks (push_other_roots, world stopped),
 *     each away thread's cold end is set to its region's end, so bdwgc
 *     scans [sp, region end): the live part of the running coroutine's
 *     stack, and the registers the handler saved there.  A thread found at
 *     home again gets its registered cold end back.
 *  3. The stack an away thread left is suspended at a stack pointer nobody
 *     saw (the switch did not pass through us), so all of it is pushed:
 *     from the low end of its mapping up to its registered cold end.  More
 *     than is live, never less, and never unmapped memory.
 *  4. The coroutines' stacks themselves need nothing more: each is a
 *     collected object, kept and scanned like any other while the program
 *     points to it (a switch's saved context points into it, and bdwgc
 *     honours interior pointers), or a mapping, scanned as a root.
 *
 * A thread started on a stack the program allocated (pthread_attr_setstack)
 * has its registered cold end in that same block, above its stack pointer:
 * it is at home there.
 *
 * The cost, per stop and thread: a GC_base and a linear search of the
 * program's mappings, next to a signal's delivery and the handshake
 * (docs/performance.md: within the noise with 16 threads, and with 3,000
 * mappings).  Nothing on the allocation path.  An away
 * thread adds the push of the stack it left (its whole mapping: 8 MiB for
 * a default thread stack, most of it never touched, read as zero pages)
 * and, for the main thread, one read of /proc/self/maps, whose "[stack]"
 * grows.
 *
 * Not covered: a stack on memory that is neither collected nor a mapping
 * the program made with mmap — a static array, a raw system call's
 * mapping, a shared mapping.  bdwgc then scans from that stack pointer to
 * the registered cold end, as it always did (docs/preload.md).
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>

#include "internal.h"

bool (*gcm__program_region)(uintptr_t p, uintptr_t *lo, uintptr_t *hi);

/* This stop's threads to settle: away, or back home with their cold end
 * still moved.  Written by the stopped threads' handlers (lock-free, they
 * run concurrently), read by the collecting thread once all of them have
 * acknowledged the stop, as often as bdwgc pushes the roots in it (again
 * after a mark stack overflow); every thread on it is stopped, so its
 * state stays valid while it is read.  Emptied when the next stop begins,
 * before anything reads it again. */
static gcm__tls *settle_list;

/* Counts stops, so that a thread sent the suspend signal twice in one stop
 * (bdwgc resends to threads slow to answer) links itself once.  Starts at 1:
 * a thread's epoch 0 means "never stopped". */
static uint32_t stop_epoch = 1;

static bool region_of(uintptr_t p, uintptr_t *lo, uintptr_t *hi)
{
    void *base = GC_base((void *)p);
    if (base != NULL) {
        *lo = (uintptr_t)base;
        *hi = *lo + GC_size(base);
        return true;
    }
    bool (*program)(uintptr_t, uintptr_t *, uintptr_t *) =
        __atomic_load_n(&gcm__program_region, __ATOMIC_ACQUIRE);
    return program != NULL && program(p, lo, hi);
}

/* Notes where t runs, sp being its stack pointer now; t is the calling
 * thread.  Async-signal-safe: GC_base reads bdwgc's block tables, which
 * only change under the lock the collecting thread holds. */
static void note(gcm__tls *t, uintptr_t sp)
{
    if (__atomic_load_n(&t->gc_handle, __ATOMIC_ACQUIRE) == NULL)
        return; /* not registered by us */
    uint32_t e = __atomic_load_n(&stop_epoch, __ATOMIC_ACQUIRE);
    if (t->gc_stop_epoch == e)
        return; /* noted in this stop already: linking it again would loop */
    t->gc_stop_epoch = e;
    uintptr_t lo, hi, home = t->gc_base;
    if (!region_of(sp, &lo, &hi) || (sp < home && home > lo && home <= hi))
        hi = 0; /* at home */
    t->gc_away_hi = hi;
    if (hi == 0 && t->gc_bottom == home)
        return; /* at home, as registered: nothing to do */
    gcm__tls *head = __atomic_load_n(&settle_list, __ATOMIC_RELAXED);
    do
        t->gc_settle_next = head;
    while (!__atomic_compare_exchange_n(&settle_list, &head, t, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
}

void gcm__stacks_registered(gcm__tls *t)
{
    struct GC_stack_base sb = {0};
    void *handle = GC_get_my_stackbottom(&sb);
    t->gc_base = t->gc_bottom = (uintptr_t)sb.mem_base;
    t->gc_home_lo = 0;
    t->gc_away_hi = 0;
    t->gc_stop_epoch = 0;
    __atomic_store_n(&t->gc_handle, sb.mem_base != NULL ? handle : NULL, __ATOMIC_RELEASE);
}

void gcm__stacks_unregistered(gcm__tls *t)
{
    __atomic_store_n(&t->gc_handle, NULL, __ATOMIC_RELEASE);
}

void gcm__stacks_stop_begin(void)
{
    __atomic_store_n(&settle_list, NULL, __ATOMIC_RELAXED);
    __atomic_add_fetch(&stop_epoch, 1, __ATOMIC_ACQ_REL);
}

void gcm__stacks_stopped(void)
{
    note(&gcm__tls_self, (uintptr_t)__builtin_frame_address(0));
}

/* The stack t left: from the low end of the memory that holds its
 * registered cold end up to that end.  A thread's stack never moves, so
 * the low end is looked up once — except the main thread's "[stack]",
 * which the kernel grows as it is used. */
static void push_home(gcm__tls *t)
{
    uintptr_t home = t->gc_base, lo = t->gc_home_lo, hi;
    if (lo == 0) {
        bool grows = false;
        if (!region_of(home - 1, &lo, &hi) && !gcm__mapping_of(home - 1, &lo, &hi, &grows))
            return; /* not mapped: no stack to scan */
        if (!grows)
            t->gc_home_lo = lo;
    }
    gcm__gc_push_range((const void *)lo, (const void *)home);
}

void gcm__stacks_settle(void)
{
    note(&gcm__tls_self, (uintptr_t)__builtin_frame_address(0));
    for (gcm__tls *t = __atomic_load_n(&settle_list, __ATOMIC_ACQUIRE); t != NULL;
         t = t->gc_settle_next) {
        uintptr_t end = t->gc_away_hi != 0 ? t->gc_away_hi : t->gc_base;
        if (end != t->gc_bottom) {
            struct GC_stack_base sb = {.mem_base = (void *)end};
            GC_set_stackbottom(t->gc_handle, &sb);
            t->gc_bottom = end;
        }
        if (t->gc_away_hi != 0)
            push_home(t);
    }
}
