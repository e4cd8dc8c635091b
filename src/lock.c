/*
 * lock.c — the spin lock and the backoff of every spin-wait in gcmalloc.
 *
 * The pools' locks guard a few pointer moves, so an uncontended acquire
 * (one atomic exchange) is all they should cost.  Under contention a waiter
 * spins briefly (the holder is probably running and nearly done), then
 * yields, then sleeps with exponentially longer naps up to a millisecond
 * (the holder may be descheduled, or stopped by the collector).
 *
 * Why sleep rather than block on a futex or a pthread mutex: the collector
 * stops the world with signals, and a waiter must take its signal promptly
 * or the whole collection waits.  A kernel wait does take signals, except
 * under ThreadSanitizer, which defers a signal until the intercepted call
 * it arrived in returns -- forever, if the holder is the thread stopping
 * the world (llvm-project#83561; fixed in LLVM 19, not in gcc 12's TSan).
 * nanosleep is one of the calls TSan delivers signals in at once.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <time.h>

#include "internal.h"

#if defined(__SANITIZE_THREAD__)
int gcm__tsan_heap; /* see gcm__tsan_freeing */
#endif

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#else
    __asm__ volatile("" ::: "memory");
#endif
}

void gcm__backoff(unsigned *round)
{
    unsigned r = (*round)++;
    if (r < 10) {
        for (unsigned i = 0; i < (2u << r); i++)
            cpu_relax();
    } else if (r < 20) {
        sched_yield();
    } else {
        unsigned shift = r - 20 < 10 ? r - 20 : 10; /* 1 µs .. 1 ms */
        struct timespec ts = {0, 1000L << shift};
        nanosleep(&ts, NULL);
    }
}

void gcm__lock_wait(gcm__lock *l)
{
    unsigned round = 0;
    for (;;) {
        while (__atomic_load_n(&l->v, __ATOMIC_RELAXED))
            gcm__backoff(&round);
        if (!__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE))
            return;
    }
}
