/*
 * preload_tsd.c — thread-specific data the collector would not see.
 *
 * pthread_setspecific stores its values inside glibc's thread descriptor,
 * which the collector does not scan.  Libraries keep per-thread state that
 * way: OpenSSL 3 keeps each thread's error queue (a 904-byte object from
 * CRYPTO_zalloc) only there.  In gc mode the collector reclaimed it as
 * garbage; OpenSSL freed it again at exit, bdwgc's free list became a
 * cycle, and the next collection never ended (measured with python3 and
 * hashlib).  So in the collected modes pthread_setspecific is interposed
 * and each value is also written to a per-thread shadow array that lives
 * in uncollectable (scanned, never collected) memory.  The array is freed
 * when the thread's last key destructors have run.
 *
 * Thread-local variables (__thread) have the same problem and no such
 * remedy; docs/preload.md lists them among gc mode's limits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>

#include "internal.h"

#define API __attribute__((visibility("default")))

typedef int (*setspecific_fn)(pthread_key_t, const void *);

/* The C library's pthread_setspecific, found on first use. */
static setspecific_fn real_setspecific(void)
{
    static void *real;
    return (setspecific_fn)gcm__next_symbol(&real, "pthread_setspecific");
}

static bool shadowing;
static GCM_TLS void **shadow;
static GCM_TLS bool shadow_done; /* this thread is past its last round */

static void release(gcm__tls *t)
{
    (void)t;
    if (shadow != NULL)
        GC_free(shadow);
    shadow = NULL;
    shadow_done = true;
}

void gcm__tsd_init(void)
{
    gcm__thread_on_exit(release);
    __atomic_store_n(&shadowing, true, __ATOMIC_RELEASE);
}

API int pthread_setspecific(pthread_key_t key, const void *value)
{
    setspecific_fn real = real_setspecific();
    if (real == NULL)
        return EAGAIN;
    int rc = real(key, value);
    if (rc != 0 || !__atomic_load_n(&shadowing, __ATOMIC_ACQUIRE) ||
        key >= PTHREAD_KEYS_MAX || shadow_done)
        return rc;
    if (shadow == NULL) {
        if (value == NULL)
            return rc;
        shadow = GC_malloc_uncollectable(PTHREAD_KEYS_MAX * sizeof(void *));
        if (shadow == NULL)
            return rc; /* not shadowed: no worse than without us */
    }
    shadow[key] = (void *)value;
    return rc;
}
