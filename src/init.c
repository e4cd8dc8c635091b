/*
 * init.c — library start-up.
 *
 * gcmalloc initializes itself on first use from any entry point, and also
 * from a constructor when the shared library is loaded, so that option
 * warnings and the GCMALLOC_VERBOSE listing appear at start-up rather than
 * at some later first allocation.  Initialization is idempotent and safe to
 * race: one thread runs it, the others wait for it to finish.  A thread
 * that re-enters while it is itself initializing (the preloaded malloc
 * called from inside start-up) must not wait for itself, so the running
 * thread is remembered and let through.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>

#include "internal.h"

int gcm__init_state;
static GCM_TLS bool initializing_here;

void gcm__init_slow(void)
{
    int expected = 0;
    if (initializing_here)
        return; /* re-entered from our own start-up: let it through */
    if (__atomic_compare_exchange_n(&gcm__init_state, &expected, 1, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        initializing_here = true;
        gcm__options_init();
        gcm__diag_open();
        if (gcm__opt_bool(GCM_OPT_VERBOSE))
            gcm__options_print();
        gcm__gc_init();
        gcm__gctrace_init();
        initializing_here = false;
        __atomic_store_n(&gcm__init_state, 2, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&gcm__init_state, __ATOMIC_ACQUIRE) != 2)
        sched_yield();
}

__attribute__((constructor)) static void gcm_constructor(void)
{
    gcm__ensure_init();
}

int gcm_init(void)
{
    gcm__ensure_init();
    return 0;
}

const char *gcm_version(void) { return GCMALLOC_VERSION_STRING; }
