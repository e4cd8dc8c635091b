/*
 * test_pool_threads.c — pools under 8 threads and concurrent GC cycles.
 *
 * Eight workers take objects from a pointer-holding pool (collected
 * objects, each pointing to a collected payload), from a plain pool
 * (mimalloc objects) and from the buffer pools, check that nobody else
 * holds what they got (an atomic owner field: 0 while cached), scribble
 * on it, hand some of it to the next worker (which puts it back into the
 * pool from its own thread), and put the rest back.  A collector thread
 * runs GC cycles all along, so rotations, releases and root scans happen
 * in the middle of every path.  In the plain build each worker is also
 * replaced by a fresh thread half-way, so exiting threads hand their
 * caches over while everything else goes on.
 *
 * At the end every count must balance: gets = puts, and every object ever
 * made is cached, a victim, or was released (drop_fn ran once for each);
 * two more cycles release them all.
 *
 * Under ThreadSanitizer (`make test-tsan`, label `threads`), bdwgc's
 * stop-the-world does not survive a running thread: TSan defers a signal
 * that arrives outside a blocking call until the thread's next intercepted
 * call, never delivers one to a thread blocked in pthread_mutex_lock
 * (llvm-project#83561: a worker waiting for bdwgc's allocation lock, held
 * by the collector that waits for the worker), and when the deferred stop
 * and restart signals nest it leaves every signal blocked in the thread for
 * good (google/sanitizers#1855), so the next collection cannot stop it.
 * bdwgc then aborts: "Signals delivery fails constantly".  So under TSan
 * only, the collector thread alternates between
 *   - gcm_gc() with every other registered thread parked in
 *     pthread_cond_wait (a blocking call: TSan delivers signals there at
 *     once, and a thread counted as parked under the mutex is inside it):
 *     the collection, its root scan of the pools and the rotation hook run
 *     for real, but not concurrently with Get and Put; and
 *   - gcm__pool_rotate(), the rotation a cycle runs, called directly with
 *     the workers running: the rotation races with every Get and Put, which
 *     is what TSan can check.
 * Workers never exit or get joined while a cycle may run.  Nothing is
 * suppressed.  The plain build runs everything concurrently.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"
#include "test_rng.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#define __SANITIZE_THREAD__ 1 /* clang spells it differently */
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#define ITERS 12000
#else
#define TSAN 0
#define ITERS 1000000
#endif

#define WORKERS 8
#define PAYLOAD 200
#define INBOX 64
#define HELD 6

enum { K_NODE, K_OBJ, K_BUF };

/* Pointer-holding pool: a node and its collected payload. */
typedef struct node {
    uint64_t magic;
    int owner;         /* 0 cached, else worker + 1 */
    uint32_t seed;
    unsigned char *payload;
} node;
#define NODE_MAGIC 0x6e6f64656e6f6465ull
#define DROPPED_MAGIC 0x64726f7070656421ull

/* Plain pool. */
typedef struct obj {
    uint64_t magic;
    int owner;
    uint32_t seed;
    unsigned char data[80];
} obj;
#define OBJ_MAGIC 0x6f626a6563746f62ull

static gcm_pool *node_pool, *obj_pool;
static int failures;
static char first_failure[256];
static int stop_gc, started;

/* Coordination of the workers, main and the collector thread. */
static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_cv = PTHREAD_COND_INITIALIZER;
static int finished;  /* workers done (sync_mu)                          */
static int may_exit;  /* the collector thread has stopped (sync_mu)      */
static int closed;    /* TSan: workers must park (sync_mu; read atomic)  */
static int parked;    /* TSan: threads waiting in sync_cv (sync_mu)      */
static uint64_t gc_cycles, node_drops, obj_drops;
#define MIN_CYCLES 5 /* collections that must overlap the workers */

static void failf(const char *fmt, ...)
{
    va_list ap;
    if (__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED) == 0) {
        va_start(ap, fmt);
        vsnprintf(first_failure, sizeof first_failure, fmt, ap);
        va_end(ap);
    }
}

static void nap(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* --- parking under TSan (see the comment at the top) ---------------------------------- */

/* Between iterations: if the collector wants the world quiet, wait in
 * pthread_cond_wait until it is done. */
static void park_point(void)
{
    if (!TSAN || !__atomic_load_n(&closed, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&sync_mu);
    parked++;
    while (closed)
        pthread_cond_wait(&sync_cv, &sync_mu);
    parked--;
    pthread_mutex_unlock(&sync_mu);
}

/* Waits (parked) until *flag reaches at least `until`. */
static void wait_for(int *flag, int until)
{
    pthread_mutex_lock(&sync_mu);
    parked++;
    while (*flag < until)
        pthread_cond_wait(&sync_cv, &sync_mu);
    parked--;
    pthread_mutex_unlock(&sync_mu);
}

/* --- the objects ----------------------------------------------------------------- */

static int node_new(void *p, void *arg)
{
    (void)arg;
    node *n = p;
    n->payload = gcm_malloc_atomic(PAYLOAD);
    if (n->payload == NULL)
        return ENOMEM;
    n->magic = NODE_MAGIC;
    n->seed = 0;
    memset(n->payload, 0, PAYLOAD);
    return 0;
}

static void node_drop(void *p, void *arg)
{
    (void)arg;
    node *n = p;
    if (n->magic != NODE_MAGIC || __atomic_load_n(&n->owner, __ATOMIC_ACQUIRE))
        failf("dropped node %p is not a cached node", p);
    /* A dropped node is garbage; if the pool handed it out again, the
     * magic would tell. */
    n->magic = DROPPED_MAGIC;
    __atomic_fetch_add(&node_drops, 1, __ATOMIC_RELAXED);
}

static int obj_new(void *p, void *arg)
{
    (void)arg;
    obj *o = p;
    o->magic = OBJ_MAGIC;
    return 0;
}

static void obj_reset(void *p, void *arg)
{
    (void)arg;
    obj *o = p;
    if (__atomic_load_n(&o->owner, __ATOMIC_ACQUIRE) != 0)
        failf("reset of obj %p still owned", p);
}

static void obj_drop(void *p, void *arg)
{
    (void)arg;
    obj *o = p;
    if (o->magic != OBJ_MAGIC || __atomic_load_n(&o->owner, __ATOMIC_ACQUIRE))
        failf("dropped obj %p is not a cached obj", p);
    __atomic_fetch_add(&obj_drops, 1, __ATOMIC_RELAXED);
}

/* A held item: what it is and what we wrote into it. */
typedef struct item {
    int kind;
    void *p;
    size_t size;     /* buffers: bytes asked for */
    unsigned char fill;
} item;

static void take(item *it, int me)
{
    int *owner = NULL;
    if (it->kind == K_NODE) {
        node *n = it->p;
        if (n->magic != NODE_MAGIC)
            failf("node %p has magic %llx", (void *)n, (unsigned long long)n->magic);
        owner = &n->owner;
    } else if (it->kind == K_OBJ) {
        obj *o = it->p;
        if (o->magic != OBJ_MAGIC)
            failf("obj %p has magic %llx", (void *)o, (unsigned long long)o->magic);
        owner = &o->owner;
    }
    if (owner != NULL) {
        int old = __atomic_exchange_n(owner, me + 1, __ATOMIC_ACQ_REL);
        if (old != 0)
            failf("kind %d %p handed to worker %d while worker %d holds it",
                  it->kind, it->p, me + 1, old);
    }
}

/* Checks what the holder wrote (another worker, for a handed-off item, or
 * whoever cached it), then writes its own pattern. */
static void scribble(item *it, uint32_t r)
{
    unsigned char f = (unsigned char)(r | 1);
    if (it->kind == K_NODE) {
        node *n = it->p;
        unsigned char want = (unsigned char)n->seed;
        for (int i = 0; i < PAYLOAD; i += 37)
            if (n->payload[i] != want)
                failf("node payload %p[%d] = %d, want %d (collected while "
                      "cached?)", (void *)n->payload, i, n->payload[i], want);
        n->seed = f;
        memset(n->payload, f, PAYLOAD);
    } else if (it->kind == K_OBJ) {
        obj *o = it->p;
        unsigned char want = (unsigned char)o->seed;
        if (o->data[0] != want || o->data[79] != want)
            failf("obj %p data %d/%d, want %d", it->p, o->data[0], o->data[79],
                  want);
        o->seed = f;
        memset(o->data, f, sizeof o->data);
    } else {
        unsigned char *b = it->p;
        size_t cap = gcm_buf_cap(b);
        if (cap < it->size)
            failf("buffer %p of %zu has capacity %zu", it->p, it->size, cap);
        it->fill = f;
        memset(b, f, it->size < 512 ? it->size : 512);
        b[it->size - 1] = f;
    }
}

static void check_buf(const item *it)
{
    const unsigned char *b = it->p;
    size_t n = it->size < 512 ? it->size : 512;
    for (size_t i = 0; i < n; i += 61)
        if (b[i] != it->fill)
            failf("buffer %p[%zu] changed under its holder", it->p, i);
    if (b[it->size - 1] != it->fill)
        failf("buffer %p end changed under its holder", it->p);
}

static void give_back(item *it)
{
    if (it->kind == K_NODE) {
        __atomic_store_n(&((node *)it->p)->owner, 0, __ATOMIC_RELEASE);
        gcm_pool_put(node_pool, it->p);
    } else if (it->kind == K_OBJ) {
        __atomic_store_n(&((obj *)it->p)->owner, 0, __ATOMIC_RELEASE);
        gcm_pool_put(obj_pool, it->p);
    } else {
        check_buf(it);
        gcm_buf_put(it->p);
    }
}

/* --- hand-off between workers ------------------------------------------------------- */

/* Static storage: scanned by the collector, so nodes in transit stay alive. */
static struct inbox {
    gcm__lock mu;
    int n;
    item items[INBOX];
} inbox[WORKERS];

static bool post(int to, const item *it)
{
    struct inbox *b = &inbox[to];
    gcm__lock_acquire(&b->mu);
    bool ok = b->n < INBOX;
    if (ok)
        b->items[b->n++] = *it;
    gcm__lock_release(&b->mu);
    return ok;
}

static int drain(int me, int from)
{
    struct inbox *b = &inbox[me];
    item got[INBOX];
    gcm__lock_acquire(&b->mu);
    int n = b->n;
    memcpy(got, b->items, (size_t)n * sizeof(item));
    b->n = 0;
    gcm__lock_release(&b->mu);
    for (int i = 0; i < n; i++) {
        item *it = &got[i];
        if (it->kind != K_BUF) {
            int *owner = it->kind == K_NODE ? &((node *)it->p)->owner
                                            : &((obj *)it->p)->owner;
            int old = __atomic_exchange_n(owner, me + 1, __ATOMIC_ACQ_REL);
            if (old != from + 1)
                failf("handed-off item owned by %d, expected %d", old, from + 1);
            scribble(it, (uint32_t)(me * 7919 + i));
        } else {
            check_buf(it);
        }
        give_back(it); /* put on this thread, got on another */
    }
    return n;
}

/* --- workers ------------------------------------------------------------------------ */

typedef struct worker {
    int id;
    int iters;
    test_rng rng;
    pthread_t th;
} worker;

/* 32 of the generator's bits (its 16th to 47th). */
static uint32_t next_rand(test_rng *r) { return (uint32_t)(test_rng_next(r) >> 16); }

static void *work(void *arg)
{
    worker *w = arg;
    int me = w->id, next = (me + 1) % WORKERS, prev = (me + WORKERS - 1) % WORKERS;
    item held[HELD];
    __atomic_fetch_add(&started, 1, __ATOMIC_SEQ_CST);
    /* Past iters until MIN_CYCLES collections have overlapped the work, so
     * that the overlap checked at the end does not depend on how the
     * machine schedules the collector thread. */
    for (int it = 0;
         it < w->iters || __atomic_load_n(&gc_cycles, __ATOMIC_RELAXED) < MIN_CYCLES; it++) {
        park_point();
        uint32_t r = next_rand(&w->rng);
        int k = 1 + (int)(r % HELD);
        for (int i = 0; i < k; i++) {
            item *h = &held[i];
            uint32_t rr = next_rand(&w->rng);
            h->kind = (int)(rr % 3);
            if (h->kind == K_NODE) {
                h->p = gcm_pool_get(node_pool);
            } else if (h->kind == K_OBJ) {
                h->p = gcm_pool_get(obj_pool);
            } else {
                /* Mostly small, some up to a page, a few above the classes. */
                uint32_t c = rr >> 8;
                h->size = c % 16 == 0 ? 1 + c % 40000
                        : c % 4 == 0 ? 1 + c % 4096 : 1 + c % 300;
                h->p = gcm_buf_get(h->size);
            }
            if (h->p == NULL) {
                failf("get of kind %d failed: %d", h->kind, errno);
                k = i; /* give back what we have */
                break;
            }
            take(h, me);
            scribble(h, rr);
        }
        for (int i = 0; i < k; i++) {
            item *h = &held[i];
            if (h->kind == K_BUF)
                check_buf(h);
            /* One in four goes to the next worker, which puts it back. */
            if ((next_rand(&w->rng) & 3) == 0 && post(next, &held[i]))
                continue;
            give_back(h);
        }
        if ((it & 15) == 0)
            drain(me, prev);
    }
    park_point();
    drain(me, prev);
    pthread_mutex_lock(&sync_mu);
    finished++;
    pthread_cond_broadcast(&sync_cv);
    pthread_mutex_unlock(&sync_mu);
    /* Under TSan a thread must not exit (bdwgc unregisters it, taking its
     * lock) nor be waited for in pthread_join while a cycle can run: stay
     * parked until the collector thread has stopped. */
    if (TSAN)
        wait_for(&may_exit, 1);
    return NULL;
}

/* --- the collector thread ----------------------------------------------------------- */

static void *collector(void *arg)
{
    (void)arg;
    /* Not before every worker is registered with the collector: a thread
     * registering takes bdwgc's lock, which a cycle holds (under TSan, a
     * thread blocked there cannot be stopped). */
    while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < WORKERS)
        nap(1000000);
    for (uint64_t k = 0; !__atomic_load_n(&stop_gc, __ATOMIC_ACQUIRE); k++) {
        if (TSAN && k % 2 == 1) {
            gcm__pool_rotate(); /* races with every Get and Put */
        } else {
            if (TSAN) {
                /* Every worker and main inside pthread_cond_wait. */
                pthread_mutex_lock(&sync_mu);
                __atomic_store_n(&closed, 1, __ATOMIC_RELEASE);
                while (parked < WORKERS + 1 &&
                       !__atomic_load_n(&stop_gc, __ATOMIC_ACQUIRE)) {
                    pthread_mutex_unlock(&sync_mu);
                    nap(100000);
                    pthread_mutex_lock(&sync_mu);
                }
                pthread_mutex_unlock(&sync_mu);
            }
            if (!__atomic_load_n(&stop_gc, __ATOMIC_ACQUIRE) && gcm_gc() != 0)
                failf("gcm_gc failed");
            if (TSAN) {
                pthread_mutex_lock(&sync_mu);
                __atomic_store_n(&closed, 0, __ATOMIC_RELEASE);
                pthread_cond_broadcast(&sync_cv);
                pthread_mutex_unlock(&sync_mu);
            }
        }
        __atomic_fetch_add(&gc_cycles, 1, __ATOMIC_RELAXED);
        nap(TSAN ? 2000000 : 400000);
    }
    return NULL;
}

/* --- the test ------------------------------------------------------------------------ */

static struct gcm_pool_stats st(gcm_pool *p)
{
    struct gcm_pool_stats s;
    assert_int_equal(gcm_pool_stats(p, &s), 0);
    return s;
}

static void print_stats(const char *what, const struct gcm_pool_stats *s)
{
    printf("  %-6s gets %llu hit %.1f%% (private %llu shared %llu stolen %llu "
           "victim %llu) misses %llu dropped %llu\n", what,
           (unsigned long long)s->gets, 100 * s->hit_rate,
           (unsigned long long)s->hits_private, (unsigned long long)s->hits_shared,
           (unsigned long long)s->hits_stolen, (unsigned long long)s->hits_victim,
           (unsigned long long)s->misses, (unsigned long long)s->dropped);
}

static void test_stress(void **state)
{
    (void)state;
    gcm_init();
    if (TSAN)
        gcm_set_gc_percent(-1); /* cycles only from the collector thread */
    gcm_pool_options no = {.name = "nodes", .size = sizeof(node),
                           .holds_pointers = 1, .new_fn = node_new,
                           .drop_fn = node_drop};
    gcm_pool_options oo = {.name = "objs", .size = sizeof(obj),
                           .new_fn = obj_new, .reset_fn = obj_reset,
                           .drop_fn = obj_drop};
    node_pool = gcm_pool_new(&no);
    obj_pool = gcm_pool_new(&oo);
    assert_non_null(node_pool);
    assert_non_null(obj_pool);

    worker w[WORKERS];
    int gens = TSAN ? 1 : 2; /* plain build: threads replaced half-way */
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (worker){.id = i, .iters = ITERS / gens,
                        .rng = test_rng_seeded(0x9e3779b97f4a7c15ull *
                                               (uint64_t)(i + 1))};
        assert_int_equal(pthread_create(&w[i].th, NULL, work, &w[i]), 0);
    }
    pthread_t gc;
    assert_int_equal(pthread_create(&gc, NULL, collector, NULL), 0);
    if (gens == 2) { /* never under TSan: see work() */
        for (int i = 0; i < WORKERS; i++) {
            pthread_join(w[i].th, NULL);
            assert_int_equal(pthread_create(&w[i].th, NULL, work, &w[i]), 0);
        }
    }
    wait_for(&finished, gens * WORKERS); /* parked: main is registered too */
    __atomic_store_n(&stop_gc, 1, __ATOMIC_RELEASE);
    pthread_join(gc, NULL);
    pthread_mutex_lock(&sync_mu);
    may_exit = 1;
    pthread_cond_broadcast(&sync_cv);
    pthread_mutex_unlock(&sync_mu);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i].th, NULL);
    for (int i = 0; i < WORKERS; i++)
        drain(i, (i + WORKERS - 1) % WORKERS); /* what the last posts left */

    if (failures)
        fail_msg("%d failures; first: %s", failures, first_failure);
    uint64_t cycles = __atomic_load_n(&gc_cycles, __ATOMIC_RELAXED);
    printf("  %llu cycles during the run\n", (unsigned long long)cycles);
    assert_true(cycles >= MIN_CYCLES);

    struct gcm_pool_stats s[2] = {st(node_pool), st(obj_pool)};
    print_stats("nodes", &s[0]);
    print_stats("objs", &s[1]);
    uint64_t drops[2] = {node_drops, obj_drops};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].gets, s[i].puts); /* all given back */
        /* Every object made is cached, a victim, or released (once). */
        assert_int_equal(s[i].misses, s[i].cached + s[i].victims + s[i].dropped);
        assert_int_equal(drops[i], s[i].dropped);
        assert_int_equal(s[i].gets, s[i].hits_private + s[i].hits_shared +
                                        s[i].hits_stolen + s[i].hits_victim +
                                        s[i].misses);
        assert_true(s[i].gets >= (uint64_t)ITERS); /* each worker took some */
    }
    struct gcm_memstats ms;
    assert_int_equal(gcm_read_memstats(&ms), 0);
    assert_int_equal(ms.pool_gets, ms.pool_puts);
    assert_int_equal(ms.pool_misses, ms.pool_cached + ms.pool_dropped);

    /* Idle now: two cycles release everything. */
    assert_int_equal(gcm_gc(), 0);
    assert_int_equal(gcm_gc(), 0);
    s[0] = st(node_pool);
    s[1] = st(obj_pool);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].cached + s[i].victims, 0);
        assert_int_equal(s[i].dropped, s[i].misses);
    }
    assert_int_equal(gcm_read_memstats(&ms), 0);
    assert_int_equal(ms.pool_cached, 0);
    assert_int_equal(ms.pool_dropped, ms.pool_misses);
    if (failures)
        fail_msg("%d failures; first: %s", failures, first_failure);
    assert_int_equal(gcm_pool_destroy(node_pool), 0);
    assert_int_equal(gcm_pool_destroy(obj_pool), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
