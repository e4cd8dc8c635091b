/*
 * prof.c — the allocation profiler: sampling, and the public API.
 *
 * What it answers.  Three questions a Go programmer asks `go tool pprof`:
 * who allocates (alloc_space, alloc_objects), who holds memory now
 * (inuse_space, inuse_objects), and what grows (the difference between two
 * profiles, `pprof -base`).  gcmalloc answers them for every allocation
 * path it owns — the collected heap, arenas, pools, buffer pools and the
 * preloaded malloc — in a file Go's own pprof reads without help.
 *
 * Sampling.  Recording every allocation's stack would cost a stack walk
 * (0.1–0.2 µs) per allocation; like Go (and tcmalloc, jemalloc) we record a
 * random sample.  Each thread counts down a number of bytes drawn from an
 * exponential distribution with mean R = GCMALLOC_PROFILE_RATE (512 KiB):
 *
 *     t->prof_countdown -= size;  if (t->prof_countdown <= 0) slow path
 *
 * is all an allocation pays (gcm__prof_tick, inline in internal.h).  The
 * slow path samples the allocation and draws a fresh countdown.  Sampling
 * is then a Poisson process over allocated bytes: an allocation of s bytes
 * is sampled with probability 1 − e^(−s/R) whatever happened before it,
 * so a profile can undo the bias exactly (Go's scaleHeapSample): a site
 * whose sampled objects average s bytes stands for 1/(1 − e^(−s/R)) times
 * what was sampled.  R = 1 samples everything; R = 0 turns sampling off
 * (the countdown then re-checks the rate every 16 MiB, so a rate set later
 * is noticed).
 *
 * A sampled allocation (gcm__prof_record_alloc):
 *
 *   1. captures its stack (prof_stack.c): libunwind's unw_backtrace, or a
 *      frame-pointer walk in a GCMALLOC_UNWIND=fp build, from the return
 *      address into the program outwards, at most 64 frames;
 *   2. interns it (prof_bucket.c): one bucket per (stack, kind, name),
 *      holding allocated and freed objects and bytes;
 *   3. remembers the object (prof_sampled.c) in a table keyed by address,
 *      and sets its slot in a counting filter, so that a free can tell
 *      cheaply whether the object may have been sampled.  Arenas keep their
 *      sampled allocations in a list of their own instead (gcm__prof_list)
 *      and release it on reset or free.
 *
 * Frees.  An explicit free (gcm_free, a pool dropping an object, free()
 * under preload) looks at one filter word; only when it is non-zero does it
 * look the object up and account the free in its bucket.  GC-heap objects
 * that the collector reclaims are found by the profiler: at reclaim start
 * (marks final) it notes which sampled objects are unmarked, and at reclaim
 * end — after bdwgc's finalization pass may have revived some — it accounts
 * those that stayed dead.  Both run inside bdwgc's lock with the world
 * running; they take only the profiler's own table lock, which no thread
 * holds while it waits for the collector.
 *
 * In-use as of the last cycle.  For the collected heap, a profile shows
 * what was in use when the last collection finished, as Go's does:
 *
 *        cycle N-1 ends          cycle N marks        cycle N ends
 *   ---------|---------------------|-----------------------|--------->
 *            |  a: alloc  b: alloc |  c: alloc             |
 *            |     a dropped       |  (a found dead)       |
 *            |                     |                       |
 *   published at N: a allocated+freed, b allocated (in use); c waits for
 *   N+1.  A live count of "allocated − freed so far" would show a as in
 *   use until some later cycle notices it, so a profile taken just before
 *   a collection would mistake all the garbage of the moment for memory in
 *   use; the published figures are a consistent picture at one instant.
 *
 * Events are therefore counted in two pending slots by cycle parity and
 * folded into the published counts at reclaim end (not in a "cycle
 * finished" hook: bdwgc may run two collections of its own before our hook
 * runs, and then the slots would mix).  Until the first cycle completes,
 * profiles include the pending counts, so a program that never collects
 * (GCMALLOC_GOGC=off) still gets a profile.  Kinds released explicitly —
 * arena, pool, buf, malloc — are exact at the moment the profile is
 * written: their frees are known when they happen.
 *
 * Output.  pprof.c writes Go's heap profile format (gzipped profile.proto)
 * with a hand-written encoder and zlib; prof_symbol.c symbolizes in the
 * process with libbacktrace (function, file, line, inlined frames), since
 * Go 1.19's pprof cannot symbolize -O2 C code or libc itself.  prof_dump.c
 * writes profiles at exit, on a signal and at an interval from a thread of
 * its own; prof_report.c prints a `pprof -top`-like text report;
 * prof_leak.c watches snapshots for sites whose in-use bytes keep growing.
 *
 * Nothing on the sampling and free paths calls malloc: the preloaded
 * library's malloc calls them.  Allocations made while the profiler itself
 * runs (t->prof_busy) are neither sampled nor counted down.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include <mimalloc.h>

#include "internal.h"

/* A thread that is not sampling re-checks the rate this often. */
#define RECHECK_BYTES ((int64_t)16 << 20)

static struct {
    int64_t rate;   /* bytes; 0 = off                          */
    int ready;      /* gcm__prof_init has run                  */
    uint64_t seeds; /* distinguishes threads seeded together   */
} P;

uint32_t gcm__prof_gen; /* bumped at every rate change */

int64_t gcm__prof_rate(void) { return GCM_LOAD(&P.rate); }

/* --- the countdown ---------------------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int64_t gcm__prof_draw(uint64_t *rng, int64_t rate)
{
    if (rate <= 1)
        return rate == 1 ? 1 : RECHECK_BYTES;
    /* u uniform in (0, 1]; −ln(u)·R is exponential with mean R. */
    double u = (double)((xorshift(rng) >> 11) + 1) * 0x1.0p-53;
    double x = -log(u) * (double)rate;
    return (int64_t)x + 1;
}

static void seed(gcm__tls *t)
{
    uint64_t s = (uint64_t)(uintptr_t)t * 0x9E3779B97F4A7C15ULL;
    s ^= (uint64_t)gcm__now_ns();
    s ^= GCM_ADD(&P.seeds, 1) << 40;
    t->prof_rng = s != 0 ? s : 0x853C49E6748FEA9BULL;
}

bool gcm__prof_sample_slow(gcm__tls *t, size_t bytes)
{
    int64_t c = GCM_LOAD(&t->prof_countdown);
    if (t->prof_busy) {
        /* The profiler's own allocation (a nested malloc under preload):
         * it neither counts toward nor takes the next sample. */
        GCM_STORE(&t->prof_countdown, c + (int64_t)bytes);
        return false;
    }
    uint32_t gen = __atomic_load_n(&gcm__prof_gen, __ATOMIC_ACQUIRE);
    int64_t rate = GCM_LOAD(&P.rate);
    if (rate <= 0 || t->internal ||
        !__atomic_load_n(&P.ready, __ATOMIC_ACQUIRE)) {
        t->prof_gen = gen;
        GCM_STORE(&t->prof_countdown, RECHECK_BYTES);
        return false;
    }
    if (t->prof_rng == 0)
        seed(t);
    if (t->prof_gen != gen) {
        /* The countdown was drawn for another rate (or never): start a
         * fresh one here, as if the previous allocation had been sampled. */
        t->prof_gen = gen;
        c = gcm__prof_draw(&t->prof_rng, rate) - (int64_t)bytes;
        if (c > 0) {
            GCM_STORE(&t->prof_countdown, c);
            return false;
        }
    }
    GCM_STORE(&t->prof_countdown, gcm__prof_draw(&t->prof_rng, rate));
    return true;
}

int64_t gcm__prof_countdown(uint32_t *gen)
{
    gcm__tls *t = &gcm__tls_self;
    *gen = __atomic_load_n(&gcm__prof_gen, __ATOMIC_ACQUIRE);
    int64_t rate = GCM_LOAD(&P.rate);
    if (rate <= 0 || t->internal || t->prof_busy ||
        !__atomic_load_n(&P.ready, __ATOMIC_ACQUIRE))
        return 0;
    if (t->prof_rng == 0)
        seed(t);
    return gcm__prof_draw(&t->prof_rng, rate);
}

static void reset_countdown(gcm__tls *t, void *arg)
{
    (void)arg;
    GCM_STORE(&t->prof_countdown, 0);
    GCM_STORE(&t->prof_budget, 0);
}

static int64_t set_rate(int64_t rate)
{
    int64_t old = __atomic_exchange_n(&P.rate, rate, __ATOMIC_ACQ_REL);
    __atomic_fetch_add(&gcm__prof_gen, 1, __ATOMIC_ACQ_REL);
    /* Make every thread take the slow path at its next allocation, where
     * it sees the new generation.  A thread may overwrite this store with
     * its own update; it then notices at its next sample or re-check. */
    gcm__thread_foreach(reset_countdown, NULL);
    return old;
}

void gcm__prof_unbias(uint64_t count, uint64_t bytes, int64_t rate,
                      uint64_t *ucount, uint64_t *ubytes)
{
    if (count == 0 || bytes == 0) {
        *ucount = *ubytes = 0;
        return;
    }
    if (rate <= 1) {
        *ucount = count;
        *ubytes = bytes;
        return;
    }
    double avg = (double)bytes / (double)count;
    double scale = 1.0 / (1.0 - exp(-avg / (double)rate));
    *ucount = (uint64_t)((double)count * scale);
    *ubytes = (uint64_t)((double)bytes * scale);
}

void gcm__prof_values(const gcm__prof_counts *c, int64_t rate, uint64_t v[4])
{
    gcm__prof_unbias(c->allocs, c->alloc_bytes, rate, &v[GCM_V_ALLOC_N],
                     &v[GCM_V_ALLOC_B]);
    uint64_t in_n = c->allocs > c->frees ? c->allocs - c->frees : 0;
    uint64_t in_b = c->alloc_bytes > c->free_bytes ? c->alloc_bytes - c->free_bytes : 0;
    gcm__prof_unbias(in_n, in_b, rate, &v[GCM_V_INUSE_N], &v[GCM_V_INUSE_B]);
}

/* --- recording ----------------------------------------------------------------- */

void gcm__prof_record_alloc(void *p, size_t bytes, unsigned kind,
                            const char *name, const void *caller)
{
    if (p == NULL || (kind & ~(unsigned)GCM_PROF_COLLECTED) >= GCM_PROF__KINDS)
        return;
    gcm__tls *t = &gcm__tls_self;
    t->prof_busy++;
    uintptr_t pcs[GCM_PROF_MAX_DEPTH];
    int n = gcm__stack_capture(pcs, GCM_PROF_MAX_DEPTH, caller);
    gcm__bucket *b = gcm__bucket_intern(pcs, n, kind, name);
    if (b != NULL)
        (void)gcm__sampled_add(p, bytes, b);
    t->prof_busy--;
}

/* An arena's sampled allocations, newest last, in chunks. */
#define LCHUNK 62
struct gcm__prof_lchunk {
    struct gcm__prof_lchunk *next; /* older chunk */
    uint32_t n;
    struct {
        gcm__bucket *b;
        size_t bytes;
    } e[LCHUNK];
};

void gcm__prof_record_alloc_list(gcm__prof_list *l, size_t bytes,
                                 gcm__prof_kind kind, const char *name,
                                 const void *caller)
{
    if (l == NULL || (unsigned)kind >= GCM_PROF__KINDS || kind == GCM_PROF_GC)
        return;
    gcm__tls *t = &gcm__tls_self;
    t->prof_busy++;
    struct gcm__prof_lchunk *c = l->head;
    if (c == NULL || c->n == LCHUNK) {
        c = gcm__prof_alloc(sizeof *c);
        if (c == NULL)
            goto out; /* not recorded at all: counts stay balanced */
        c->next = l->head;
        c->n = 0;
        l->head = c;
    }
    uintptr_t pcs[GCM_PROF_MAX_DEPTH];
    int n = gcm__stack_capture(pcs, GCM_PROF_MAX_DEPTH, caller);
    gcm__bucket *b = gcm__bucket_intern(pcs, n, kind, name);
    if (b != NULL) {
        c->e[c->n].b = b;
        c->e[c->n].bytes = bytes;
        c->n++;
        l->n++;
        gcm__sampled_count(b, bytes, true);
    }
out:
    t->prof_busy--;
}

void gcm__prof_list_release(gcm__prof_list *l, size_t keep)
{
    if (l == NULL)
        return;
    while (l->n > keep && l->head != NULL) {
        struct gcm__prof_lchunk *c = l->head;
        while (c->n > 0 && l->n > keep) {
            c->n--;
            l->n--;
            gcm__sampled_count(c->e[c->n].b, c->e[c->n].bytes, false);
        }
        if (c->n > 0)
            break;
        l->head = c->next;
        gcm__prof_dealloc(c);
    }
    if (l->head == NULL)
        l->n = 0;
}

/* --- internal memory ----------------------------------------------------------- */

void *gcm__prof_alloc(size_t n) { return mi_malloc(n); }
void *gcm__prof_realloc(void *p, size_t n) { return mi_realloc(p, n); }
void gcm__prof_dealloc(void *p) { mi_free(p); }

bool gcm__prof_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return false;
        c *= 2;
    }
    size_t bytes;
    if (__builtin_mul_overflow(c, elem, &bytes))
        return false;
    void *np = gcm__prof_realloc(*p, bytes);
    if (np == NULL)
        return false;
    *p = np;
    *cap = c;
    return true;
}

#define PERM_CHUNK ((size_t)1 << 20)

static struct {
    pthread_mutex_t mu;
    char *cur, *end;
} perm = {.mu = PTHREAD_MUTEX_INITIALIZER};

void *gcm__prof_perm_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    pthread_mutex_lock(&perm.mu);
    if ((size_t)(perm.end - perm.cur) < n) {
        size_t sz = n > PERM_CHUNK ? (n + 4095) & ~(size_t)4095 : PERM_CHUNK;
        void *m = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            pthread_mutex_unlock(&perm.mu);
            return NULL;
        }
        gcm__gc_nongc((int64_t)sz);
        perm.cur = m;
        perm.end = (char *)m + sz;
    }
    void *p = perm.cur;
    perm.cur += n;
    pthread_mutex_unlock(&perm.mu);
    return p;
}

/* --- start-up ------------------------------------------------------------------- */

/* fork(): the child must not inherit a profiler lock some other thread
 * held at the moment of the fork.  Symbolization's locks come after the
 * leak watcher's, which reports (and symbolizes) under its own. */
static void fork_prepare(void)
{
    gcm__leak_fork(GCM_FORK_PREPARE);
    gcm__sym_fork(GCM_FORK_PREPARE);
    gcm__bucket_fork(GCM_FORK_PREPARE);
    gcm__fork_mutex(&perm.mu, GCM_FORK_PREPARE);
    gcm__sampled_fork(GCM_FORK_PREPARE);
}

static void fork_parent(void)
{
    gcm__sampled_fork(GCM_FORK_PARENT);
    gcm__fork_mutex(&perm.mu, GCM_FORK_PARENT);
    gcm__bucket_fork(GCM_FORK_PARENT);
    gcm__sym_fork(GCM_FORK_PARENT);
    gcm__leak_fork(GCM_FORK_PARENT);
}

static void fork_child(void)
{
    gcm__sampled_fork(GCM_FORK_CHILD);
    gcm__fork_mutex(&perm.mu, GCM_FORK_CHILD);
    gcm__bucket_fork(GCM_FORK_CHILD);
    gcm__sym_fork(GCM_FORK_CHILD);
    gcm__leak_fork(GCM_FORK_CHILD);
}

void gcm__prof_fork(int phase)
{
    if (phase == GCM_FORK_PREPARE)
        fork_prepare();
    else if (phase == GCM_FORK_PARENT)
        fork_parent();
    else
        fork_child();
}

void gcm__prof_init(void)
{
    if (P.ready)
        return;
    gcm__sampled_init();
    set_rate(gcm__opt_int(GCM_OPT_PROFILE_RATE));
    __atomic_store_n(&P.ready, 1, __ATOMIC_RELEASE);
    int64_t k = gcm__opt_int(GCM_OPT_PROFILE_LEAK);
    gcm__leak_init(k == GCM_OPT_OFF ? 0 : k,
                   gcm__opt_int(GCM_OPT_PROFILE_LEAK_MIN));
    gcm__prof_dump_init();
}

/* --- the public API ------------------------------------------------------------ */

int64_t gcm_profile_set_rate(int64_t rate)
{
    gcm__ensure_init();
    if (rate < 0)
        return gcm__prof_rate();
    if (rate > ((int64_t)1 << 40))
        rate = (int64_t)1 << 40;
    int64_t old = set_rate(rate);
    gcm__opt_set_int(GCM_OPT_PROFILE_RATE, rate);
    return old;
}

int gcm_profile_write_view_fd(int fd, gcm_profile_view view)
{
    gcm__ensure_init();
    if (fd < 0)
        return EBADF;
    if (view != GCM_PROFILE_HEAP && view != GCM_PROFILE_ALLOCS)
        return EINVAL;
    gcm__prof_snap s;
    int rc = gcm__prof_snap_take(&s);
    if (rc != 0)
        return rc;
    rc = gcm__pprof_write(fd, &s, view == GCM_PROFILE_ALLOCS);
    gcm__prof_snap_free(&s);
    return rc;
}

int gcm_profile_write_fd(int fd)
{
    return gcm_profile_write_view_fd(fd, GCM_PROFILE_HEAP);
}

int gcm_profile_write_view(const char *path, gcm_profile_view view)
{
    gcm__ensure_init();
    if (path == NULL || path[0] == '\0')
        return EINVAL;
    if (view != GCM_PROFILE_HEAP && view != GCM_PROFILE_ALLOCS)
        return EINVAL;
    return gcm__prof_write_path(path, view == GCM_PROFILE_ALLOCS);
}

int gcm_profile_write(const char *path)
{
    return gcm_profile_write_view(path, GCM_PROFILE_HEAP);
}

int gcm_profile_report(int fd)
{
    gcm__ensure_init();
    if (fd < 0)
        return EBADF;
    gcm__prof_snap s;
    int rc = gcm__prof_snap_take(&s);
    if (rc != 0)
        return rc;
    rc = gcm__prof_report(fd, &s, 10);
    gcm__prof_snap_free(&s);
    return rc;
}
