/*
 * arena.c — request-scoped arenas: bump allocation, reset, savepoints,
 * cleanups, and memory the collector can see.
 *
 * Allocation.  An arena is a list of chunks (chunk.c) and a bump pointer
 * into the newest regular one.  gcm_arena_alloc rounds the size up to 16
 * bytes (max_align_t), checks it against the room left and the large-size
 * limit, moves the pointer and counts the bytes: two compares, an add and
 * two stores, no lock, no thread-local access.  Rounding every size keeps
 * the pointer 16-aligned, so the fast path never aligns.  It is inline in
 * the caller (gcmalloc/arena.h), over the `hot` prefix of the arena, so a
 * loop of allocations pays no call.  The bump pointer itself is stored and
 * reloaded on every allocation: the slow path is a call the compiler must
 * assume writes the arena.  Keeping it in registers instead gains little
 * (bench/bench_arena_place.c measures both at eight code placements: the
 * loop's address moves either by 20-40%, more than registers save).
 *
 * The inline path bumps up to `limit`, which is the end of the chunk or
 * lower: the library lowers it to see allocations it must act on.  An ASan
 * build keeps it at the bump pointer, so every allocation reaches the slow
 * path and is unpoisoned there.  The profiler's sampling lives here too:
 * the inline path cannot reach the thread-local countdown the other
 * allocation paths use, so each arena keeps its own, as the logical
 * position of the next sampled byte (drawn from the same exponential
 * distribution), and limit stops just short of it (Go and tcmalloc fold
 * their sampling countdown into the allocation limit the same way).  The
 * allocation that reaches it comes to the slow path, which records it
 * (kind=arena, name=the arena's) and draws the next point; the fast path
 * pays nothing.  A point that falls on bytes no allocation took (a chunk's
 * wasted tail) is drawn again from the next allocation, so every
 * allocated byte keeps the same chance.  Reset, rewind and free release
 * the sampled allocations they release.
 *
 * When the chunk is full the slow path takes another chunk of the same
 * class from the chunk cache (the tail of the old one is wasted, as in
 * APR); an allocation larger than a quarter of the chunk size gets a big
 * chunk of its own, so no regular chunk is ever left more than a quarter
 * empty.
 *
 * The arena itself lives at the start of its first chunk, so creating one
 * is one chunk from the thread's cache and a few stores.  Reset keeps that
 * chunk: a service that reuses one arena per worker thread never touches
 * the cache at all in steady state.
 *
 *     first chunk                       later chunks, newest first
 *     +------+-------+----------+----+  +------+-----------+-------+
 *     | hdr  | arena | allocs.. |    |  | hdr  | allocs... | free  |
 *     +------+-------+----------+----+  +------+-----------+-------+
 *                    ^data0     ^top                       ^cur   ^end
 *
 * Savepoints.  A mark records the newest chunk, the bump chunk and pointer,
 * the newest cleanup and the counters; rewinding runs the cleanups
 * registered since, gives back the chunks added since and moves the pointer
 * back.  Marks nest like SQL savepoints: rewinding to one invalidates those
 * taken after it.  To catch a rewind to an invalidated mark without
 * tracking marks, each mark carries a position — a logical offset that
 * every allocation strictly increases — and the generation of the arena
 * (rewinds so far).  A rewind to position P at generation G records "marks
 * of generation <= G lie at or before P"; the arena keeps the last few such
 * facts as a stack increasing in both, which answers "was this mark rewound
 * past?" exactly for the last RW_DEPTH nesting levels, and conservatively
 * (never a false alarm) beyond.  A realloc grows the last allocation in
 * place only if it was made after the newest mark, so a rewind never cuts
 * an allocation that predates its mark.
 *
 * Cleanups are records allocated in the arena itself (as APR's), a list
 * newest first, run in that order on reset, free, and rewind past them.
 *
 * The collector.  A scan arena may hold the only pointer to a collected
 * object, so the collector must scan what the arena has handed out —
 * [data, bump pointer) of the current chunk, [data, top) of the others —
 * and nothing beyond it (freed memory would keep garbage alive).  One root
 * provider does that for all arenas: it walks the chunk registry (every
 * regular chunk and every big chunk of a scan arena) and, for each chunk
 * whose scan_owner is set, pushes the used range.  It runs while bdwgc has
 * the world stopped, so it takes no lock and allocates nothing, and it must
 * cope with an owner thread stopped between any two stores.  The protocol:
 *
 *   - A chunk's scan_owner is stored (release) only after the chunk's top
 *     and link are set, and cleared before the chunk leaves the arena; an
 *     arena clears the owner of every chunk before it gives any back, and
 *     the arena struct lives in the first chunk, so an owner the walker
 *     reads always points at a live arena struct.
 *   - The used end of a chunk is the arena's bump pointer if that pointer
 *     lies inside the chunk, otherwise the chunk's top.  While the owner
 *     switches chunks, the pointer still lies in the old chunk (whose top
 *     was set to it first) and the new chunk shows top = data, empty:
 *     nothing was allocated there yet.  After a rewind the old top may be
 *     stale-high for a moment, which scans released memory once: garbage
 *     kept one cycle longer, never live data missed.
 *   - The walker reads the owner's fields with the owner stopped; each is a
 *     single aligned word, so it sees the old value or the new one.
 *
 * noscan arenas never set scan_owner: the collector skips them entirely.
 *
 * Accounting.  Chunk memory in use by arenas counts as heap for the pacer
 * and in gctrace (Go counts its arenas as heap): gcm__gc_extra_heap for each
 * chunk that joins an arena or leaves one.  Each thread nets these in its
 * own state and tells the collector when the net reaches HEAP_FLUSH either
 * way (and when the thread exits), as gc.c folds a thread's collected-heap
 * bytes: a request that takes three chunks and gives them back touches no
 * shared cache line, and the collector's figure is never more than
 * HEAP_FLUSH per thread behind (gc.c allows itself the same).  Every chunk
 * held, in use or cached, is non-GC memory (chunk.c).  MemStats' arena
 * figures are summed from exact per-thread counters.
 *
 * Debugging.  GCMALLOC_ARENA_POISON fills released memory with 0x5a.  In
 * an ASan build released and not-yet-allocated memory is poisoned; each
 * allocation unpoisons exactly its bytes, so overruns into rounding slack
 * are caught too.  Misuse (a mark of another arena or one rewound past, a
 * cleanup registered twice, a reset from a cleanup) returns an error; in
 * debug mode it also prints what and where.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ALIGN 16               /* every allocation; max_align_t's        */
#define RW_DEPTH 8             /* rewinds remembered for mark checking   */
#define NAME_MAX_LEN 32
#define POISON_BYTE 0x5a       /* jemalloc's "freed" junk byte           */
/* Largest request considered at all: keeps every size computation below
 * far from overflow.  Nothing this large can be had anyway. */
#define MAX_REQUEST ((size_t)PTRDIFF_MAX / 4)
/* Net chunk bytes a thread may hold back from the collector's heap figure. */
#define HEAP_FLUSH ((int64_t)256 * 1024)

_Static_assert(_Alignof(max_align_t) <= ALIGN, "ALIGN below max_align_t");
_Static_assert(sizeof(gcm__chunk) <= GCM_CHUNK_HDR, "chunk header too big");

typedef struct cleanup {
    void (*fn)(void *);
    void *arg;
    struct cleanup *next;
} cleanup;

struct gcm_arena {
    /* The bump allocator: everything the inline path touches (arena.h). */
    struct gcm_arena_hot_ hot;
    char *end;             /* end of the bump chunk                          */
    gcm__chunk *bump;      /* the chunk hot.cur points into                  */
    gcm__chunk *chunks;    /* every chunk held, newest first; first is last  */
    cleanup *cleanups;     /* newest first                                   */
    uint64_t pos_base;     /* logical position of the bump chunk's start     */
    /* The rest. */
    gcm__chunk *first;     /* holds this struct; kept by reset               */
    char *data0;           /* where allocations in the first chunk start     */
    uint64_t mark_pos;     /* position of the newest live mark               */
    uint64_t gen;          /* rewinds and resets so far                      */
    struct {
        uint64_t gen, pos; /* marks of generation <= gen lie at or before pos */
    } rw[RW_DEPTH];
    uint32_t nrw;
    uint8_t cls;           /* chunk class                                    */
    uint8_t scan;          /* the collector scans it                         */
    uint8_t poison;        /* GCMALLOC_ARENA_POISON when it was created      */
    uint8_t in_cleanup;    /* running its cleanups                           */
    char name[NAME_MAX_LEN];
    /* The profiler: where the next sampled byte is, the rate generation it
     * was drawn for, and the sampled allocations held. */
    uint64_t prof_next;    /* logical position; UINT64_MAX = none            */
    uint32_t prof_gen;
    gcm__prof_list prof;
};

_Static_assert(offsetof(struct gcm_arena, hot) == 0, "hot must come first");

/* The inline path's stand-in for a NULL arena: no room, so every request
 * comes to alloc_slow, which reports EINVAL. */
const struct gcm_arena_hot_ gcm_arena_nil_ = {0};

/* What struct gcm_arena_mark holds. */
typedef struct mark_impl {
    gcm_arena *arena;
    gcm__chunk *head;      /* a->chunks when taken   */
    gcm__chunk *bump;
    char *cur;
    cleanup *cleanups;
    uint64_t pos, gen, requested;
    size_t prof_n;         /* sampled allocations held when taken */
} mark_impl;
_Static_assert(sizeof(mark_impl) <= sizeof(struct gcm_arena_mark),
               "struct gcm_arena_mark too small");

static inline size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Bytes of arena an allocation of n takes: n rounded up to ALIGN, and a
 * whole ALIGN for n == 0 so each allocation has its own address. */
static inline size_t span(size_t n) { return n == 0 ? ALIGN : round_up(n, ALIGN); }

static inline char *cur_of(const gcm_arena *a) { return (char *)a->hot.cur; }

/* Moves the bump pointer, and the inline path's limit with it: the end of
 * the chunk, or (ASan) the pointer itself, so the slow path sees every
 * allocation. */
static inline char *chunk_start(const gcm_arena *a, gcm__chunk *c)
{
    return c == a->first ? a->data0 : gcm__chunk_data(c);
}

static inline uint64_t pos_of(const gcm_arena *a, const char *p)
{
    return a->pos_base + (uint64_t)(p - chunk_start(a, a->bump));
}

/* The inline path's limit for bump pointer p: the end of the chunk, or
 * just short of the profiler's next sample point, so that the allocation
 * reaching it comes to the slow path. */
static inline uintptr_t limit_for(const gcm_arena *a, char *p)
{
    uintptr_t end = (uintptr_t)a->end;
    if (a->prof_next == UINT64_MAX)
        return end;
    uint64_t at = pos_of(a, p);
    if (a->prof_next <= at)
        return (uintptr_t)p;
    uint64_t room = a->prof_next - at - 1;
    return room < end - (uintptr_t)p ? (uintptr_t)p + room : end;
}

static inline void set_cur(gcm_arena *a, char *p)
{
    __atomic_store_n(&a->hot.cur, (uintptr_t)p, __ATOMIC_RELAXED);
    a->hot.limit = gcm__config_asan ? (uintptr_t)p : limit_for(a, p);
}

/* --- sampling for the profiler ------------------------------------------------ */

/* The next sample point after position `from`. */
static uint64_t prof_draw(gcm_arena *a, uint64_t from)
{
    uint32_t gen;
    int64_t c = gcm__prof_countdown(&gen);
    a->prof_gen = gen;
    return c > 0 ? from + (uint64_t)c : UINT64_MAX;
}

/* A fresh countdown from the bump pointer (a new arena). */
static void prof_restart(gcm_arena *a)
{
    a->prof_next = prof_draw(a, pos_of(a, cur_of(a)));
    set_cur(a, cur_of(a));
}

/* The bytes left to the sample point, taken before a reset or rewind moves
 * the bump pointer back: PROF_OFF when nothing is sampled, PROF_REDRAW
 * when the point fell on bytes no allocation took. */
#define PROF_OFF UINT64_MAX
#define PROF_REDRAW (UINT64_MAX - 1)
static inline uint64_t prof_left(const gcm_arena *a)
{
    if (a->prof_next == UINT64_MAX)
        return PROF_OFF;
    uint64_t at = pos_of(a, cur_of(a));
    return a->prof_next >= at ? a->prof_next - at : PROF_REDRAW;
}

/* ... and the countdown carried over to where the pointer is now: the
 * bytes allocated before the reset were allocated all the same, and what
 * is left of an exponential countdown is as good as a fresh draw (which
 * would cost a logarithm on every reset).  A new rate is picked up here. */
static inline void prof_carry(gcm_arena *a, uint64_t left)
{
    bool same_rate = a->prof_gen == gcm__prof_generation();
    if (GCM_LIKELY(same_rate && left == PROF_OFF))
        return; /* not sampling: the limit is the chunk's end already */
    uint64_t at = pos_of(a, cur_of(a));
    if (GCM_LIKELY(same_rate && left != PROF_REDRAW))
        a->prof_next = at + left;
    else
        a->prof_next = prof_draw(a, at);
    set_cur(a, cur_of(a));
}

/* prof_carry after a reset, which leaves the bump pointer at data0,
 * position 0: the same, without the position arithmetic (a reset per
 * request is common enough for a few nanoseconds to show). */
static inline void prof_carry_reset(gcm_arena *a, uint64_t left)
{
    bool same_rate = a->prof_gen == gcm__prof_generation();
    if (GCM_LIKELY(same_rate && left == PROF_OFF))
        return;
    if (GCM_UNLIKELY(!same_rate || left == PROF_REDRAW || gcm__config_asan)) {
        prof_carry(a, left);
        return;
    }
    a->prof_next = left;
    uintptr_t p = (uintptr_t)a->data0, room = (uintptr_t)a->end - p;
    a->hot.limit = left == 0 ? p : p + (left - 1 < room ? left - 1 : room);
}

/* An allocation of sz bytes at logical position pos, on the slow path:
 * sampled when it reaches the sample point (Go's rule: its size is at
 * least the countdown). */
static void prof_check(gcm_arena *a, uint64_t pos, size_t sz, const void *caller)
{
    if (a->prof_gen != gcm__prof_generation() ||
        (a->prof_next != UINT64_MAX && pos > a->prof_next))
        a->prof_next = prof_draw(a, pos);
    if (a->prof_next != UINT64_MAX && pos + sz >= a->prof_next) {
        gcm__prof_record_alloc_list(&a->prof, sz, GCM_PROF_ARENA, a->name,
                                    caller);
        a->prof_next = prof_draw(a, pos + sz);
    }
}

/* --- accounting ------------------------------------------------------------ */

static GCM_NOINLINE void heap_flush(gcm__tls *t)
{
    int64_t n = t->arena_heap_pending;
    t->arena_heap_pending = 0;
    if (n != 0)
        gcm__gc_extra_heap(n); /* may collect, when n > 0 */
}

static void chunks_in(size_t bytes)
{
    gcm__tls *t = &gcm__tls_self;
    GCM_BUMP(&t->arena_chunk_in, bytes);
    t->arena_heap_pending += (int64_t)bytes;
    if (t->arena_heap_pending >= HEAP_FLUSH)
        heap_flush(t);
}

static void chunks_out(size_t bytes)
{
    gcm__tls *t = &gcm__tls_self;
    GCM_BUMP(&t->arena_chunk_out, bytes);
    t->arena_heap_pending -= (int64_t)bytes;
    if (t->arena_heap_pending <= -HEAP_FLUSH)
        heap_flush(t);
}

void gcm__arena_memstats(struct gcm_memstats *ms)
{
    uint64_t in = gcm__thread_sum(offsetof(gcm__tls, arena_chunk_in));
    uint64_t out = gcm__thread_sum(offsetof(gcm__tls, arena_chunk_out));
    uint64_t made = gcm__thread_sum(offsetof(gcm__tls, arena_created));
    uint64_t gone = gcm__thread_sum(offsetof(gcm__tls, arena_freed));
    /* Each sum is taken separately while other threads go on: clamp. */
    ms->arena_inuse = in > out ? in - out : 0;
    ms->arena_sys = gcm__chunk_held();
    if (ms->arena_inuse > ms->arena_sys)
        ms->arena_inuse = ms->arena_sys;
    ms->arena_cached = ms->arena_sys - ms->arena_inuse;
    ms->arena_count = made > gone ? made - gone : 0;
}

/* --- releasing memory -------------------------------------------------------- */

/* [lo, hi) of a chunk is no longer handed out. */
static void release_range(const gcm_arena *a, char *lo, char *hi)
{
    if (hi <= lo)
        return;
    if (a->poison) {
        gcm__asan_unpoison(lo, (size_t)(hi - lo)); /* slack was poisoned */
        memset(lo, POISON_BYTE, (size_t)(hi - lo));
    }
    gcm__asan_poison(lo, (size_t)(hi - lo));
}

/* A chunk that has left the arena (scan_owner already cleared), whose used
 * part ends at `used`: poison it and give it back. */
static void give_back(const gcm_arena *a, gcm__chunk *c, char *used)
{
    release_range(a, gcm__chunk_data(c), used);
    gcm__asan_poison(gcm__chunk_data(c), c->size - GCM_CHUNK_HDR);
    gcm__chunk_put(c);
}

/* The used end of chunk c as the arena stands. */
static char *used_end(const gcm_arena *a, gcm__chunk *c)
{
    return c == a->bump ? cur_of(a) : c->top;
}

/* Returns the arena to an earlier state: `head` newest chunk, bump pointer
 * `cur` in chunk `bump`.  Chunks newer than head leave the arena. */
static void truncate_to(gcm_arena *a, gcm__chunk *head, gcm__chunk *bump,
                        char *cur)
{
    gcm__chunk *gone = NULL;
    size_t bytes = 0;
    while (a->chunks != head) {
        gcm__chunk *c = a->chunks;
        /* Unlink, then clear the owner: the walker ignores c from here. */
        __atomic_store_n(&a->chunks, c->next, __ATOMIC_RELEASE);
        __atomic_store_n(&c->scan_owner, NULL, __ATOMIC_RELEASE);
        /* Remember its used end while a->bump and the bump pointer still say. */
        __atomic_store_n(&c->top, used_end(a, c), __ATOMIC_RELAXED);
        c->next = gone;
        gone = c;
        bytes += c->size;
    }
    char *old_end = used_end(a, bump);
    a->bump = bump;
    a->end = gcm__chunk_end(bump);
    set_cur(a, cur);
    release_range(a, cur, old_end);
    while (gone != NULL) {
        gcm__chunk *next = gone->next;
        give_back(a, gone, gone->top);
        gone = next;
    }
    if (bytes > 0)
        chunks_out(bytes);
}

/* --- misuse ------------------------------------------------------------------ */

/* Runs the cleanups newer than `stop`, newest first.  A cleanup may
 * allocate and register more cleanups; those run in this pass too. */
static void run_cleanups(gcm_arena *a, cleanup *stop)
{
    a->in_cleanup = 1;
    while (a->cleanups != stop && a->cleanups != NULL) {
        cleanup *cl = a->cleanups;
        a->cleanups = cl->next;
        cl->fn(cl->arg);
    }
    a->in_cleanup = 0;
}

static bool busy(gcm_arena *a, const char *what, const void *caller)
{
    if (!a->in_cleanup)
        return false;
    if (gcm__debug_on())
        gcm__diag_misuse(caller, "%s(arena %p \"%s\") called from one of the "
                         "arena's own cleanups; ignored", what, (void *)a,
                         a->name);
    return true;
}

/* Records a rewind to position pos: every mark of this generation or an
 * earlier one that lies after pos is dead from now on. */
static void record_rewind(gcm_arena *a, uint64_t pos)
{
    while (a->nrw > 0 && a->rw[a->nrw - 1].pos >= pos)
        a->nrw--;
    if (a->nrw == RW_DEPTH) {
        /* Forget the oldest fact: marks it covered fall under the next one,
         * whose position is larger, so checks only get more lenient. */
        memmove(&a->rw[0], &a->rw[1], (RW_DEPTH - 1) * sizeof a->rw[0]);
        a->nrw--;
    }
    a->rw[a->nrw].gen = a->gen;
    a->rw[a->nrw].pos = pos;
    a->nrw++;
    a->gen++;
    a->mark_pos = pos;
}

static bool rewound_past(const gcm_arena *a, const mark_impl *m)
{
    if (m->gen > a->gen || m->pos > pos_of(a, cur_of(a)))
        return true;
    for (uint32_t i = 0; i < a->nrw; i++)
        if (a->rw[i].gen >= m->gen)
            return m->pos > a->rw[i].pos;
    return false;
}

static bool holds_chunk(const gcm_arena *a, const gcm__chunk *x)
{
    for (gcm__chunk *c = a->chunks; c != NULL; c = c->next)
        if (c == x)
            return true;
    return false;
}

/* 0 if the arena can be rewound to m, else EINVAL (with a message in debug
 * mode). */
static int check_mark(gcm_arena *a, const mark_impl *m, const void *caller)
{
    bool debug = gcm__debug_on();
    if (m->arena != a) {
        if (debug)
            gcm__diag_misuse(caller, "gcm_arena_rewind(arena %p \"%s\"): the "
                             "mark was taken on another arena (%p); the arena "
                             "is left as it was", (void *)a, a->name,
                             (void *)m->arena);
        return EINVAL;
    }
    bool stale = rewound_past(a, m);
    /* In debug mode also check the mark's chunks are still the arena's,
     * which holds whatever the rewind history has forgotten. */
    if (!stale && debug)
        stale = !holds_chunk(a, m->head) || !holds_chunk(a, m->bump) ||
                m->cur < chunk_start(a, m->bump) ||
                m->cur > gcm__chunk_end(m->bump);
    if (stale) {
        if (debug)
            gcm__diag_misuse(caller, "gcm_arena_rewind(arena %p \"%s\"): the "
                             "mark was already rewound past (by a rewind to an "
                             "earlier mark, or a reset); the arena is left as "
                             "it was", (void *)a, a->name);
        return EINVAL;
    }
    return 0;
}

/* --- allocation -------------------------------------------------------------- */

/* Moves to a fresh regular chunk.  false (errno = ENOMEM) if none. */
static bool next_chunk(gcm_arena *a)
{
    gcm__chunk *c = gcm__chunk_get(a->cls);
    if (c == NULL)
        return false;
    gcm__chunk *old = a->bump;
    /* The old chunk's used end first: from here the walker is right
     * whichever chunk the bump pointer points into. */
    __atomic_store_n(&old->top, cur_of(a), __ATOMIC_RELAXED);
    /* Positions in the new chunk come strictly after all of the old one's. */
    a->pos_base += (uint64_t)(a->end - chunk_start(a, old)) + 1;
    __atomic_store_n(&c->top, gcm__chunk_data(c), __ATOMIC_RELAXED);
    c->next = a->chunks;
    if (a->scan)
        __atomic_store_n(&c->scan_owner, a, __ATOMIC_RELEASE);
    __atomic_store_n(&a->chunks, c, __ATOMIC_RELEASE);
    a->bump = c;
    a->end = gcm__chunk_end(c);
    set_cur(a, gcm__chunk_data(c));
    chunks_in(c->size);
    return true;
}

/* An allocation with a chunk of its own. */
static void *alloc_big(gcm_arena *a, size_t n, size_t sz, size_t align,
                       const void *caller)
{
    size_t pad = align > GCM_CHUNK_HDR ? align - GCM_CHUNK_HDR : 0;
    size_t total;
    if (__builtin_add_overflow(sz, GCM_CHUNK_HDR + pad, &total) ||
        total > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    total = round_up(total, GCM_CHUNK_HDR);
    gcm__chunk *c = gcm__chunk_get_big(total, a->scan);
    if (c == NULL)
        return NULL;
    char *p = (char *)round_up((uintptr_t)gcm__chunk_data(c), align);
    __atomic_store_n(&c->top, p + sz, __ATOMIC_RELAXED);
    c->next = a->chunks;
    if (a->scan)
        __atomic_store_n(&c->scan_owner, a, __ATOMIC_RELEASE);
    __atomic_store_n(&a->chunks, c, __ATOMIC_RELEASE);
    uint64_t at = pos_of(a, cur_of(a));
    a->pos_base += sz; /* so the position moves on, as for any allocation */
    prof_check(a, at, sz, caller);
    set_cur(a, cur_of(a)); /* the limit, for the position moved */
    a->hot.requested += n;
    gcm__asan_unpoison(p, n);
    chunks_in(c->size);
    return p;
}

/* Everything the fast path does not: a new chunk, a big chunk, alignment
 * above 16, n == 0, and sizes too large or overflowing. */
static GCM_NOINLINE void *alloc_slow(gcm_arena *a, size_t n, size_t align,
                                     const void *caller)
{
    if (a == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (n > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    size_t sz = span(n);
    if (sz + (align > GCM_CHUNK_HDR ? align : 0) > a->hot.big)
        return alloc_big(a, n, sz, align, caller);
    char *p = (char *)round_up(a->hot.cur, align);
    if (p > a->end || sz > (size_t)(a->end - p)) {
        if (!next_chunk(a))
            return NULL;
        p = (char *)round_up(a->hot.cur, align);
    }
    prof_check(a, pos_of(a, p), sz, caller);
    set_cur(a, p + sz);
    a->hot.requested += n;
    gcm__asan_unpoison(p, n);
    return p;
}

/* The fast path, for this file's own allocating calls: the header's
 * inline bump (which never unpoisons: under ASan its limit sends every
 * allocation here), except that the slow path learns the caller of the
 * exported function take is inlined into, where a sampled allocation's
 * stack starts. */
static inline __attribute__((always_inline)) void *take(gcm_arena *a, size_t n)
{
    struct gcm_arena_hot_ *h =
        a != NULL ? (struct gcm_arena_hot_ *)(void *)a
                  : (struct gcm_arena_hot_ *)(void *)&gcm_arena_nil_;
    uintptr_t p = h->cur;
    size_t sz = (n + 15) & ~(size_t)15;
    if (GCM_LIKELY(sz - 1 < h->limit - p && sz <= h->big)) {
        h->cur = p + sz;
        h->requested += n;
        return (void *)p;
    }
    return alloc_slow(a, n, ALIGN, GCM_PROF_CALLER());
}

void *gcm_arena_alloc_slow_(gcm_arena *a, size_t n)
{
    return alloc_slow(a, n, ALIGN, GCM_PROF_CALLER());
}

/* The out-of-line entry point, for callers that take its address or bind
 * to the symbol (the parentheses keep the header's macro out). */
void *(gcm_arena_alloc)(gcm_arena *a, size_t n) { return take(a, n); }

void *gcm_arena_alloc_aligned(gcm_arena *a, size_t n, size_t align)
{
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= ALIGN)
        return take(a, n);
    if (align > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_slow(a, n, align, GCM_PROF_CALLER());
}

void *gcm_arena_calloc(gcm_arena *a, size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = take(a, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

char *gcm_arena_strdup(gcm_arena *a, const char *s)
{
    if (s == NULL) {
        errno = EINVAL;
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *p = take(a, n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

char *gcm_arena_strndup(gcm_arena *a, const char *s, size_t n)
{
    if (s == NULL) {
        errno = EINVAL;
        return NULL;
    }
    size_t len = strnlen(s, n);
    char *p = take(a, len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

static char *vsprintf_from(gcm_arena *a, const char *fmt, va_list ap,
                           const void *caller)
{
    if (a == NULL || fmt == NULL) {
        errno = EINVAL;
        return NULL;
    }
    va_list again;
    va_copy(again, ap);
    /* One pass when the result fits in the current chunk (APR's
     * apr_pvsprintf does the same): format straight into the free tail,
     * then claim what was written. */
    char *p = cur_of(a);
    size_t room = (size_t)(a->end - p);
    if (room > a->hot.big) /* a longer result gets a chunk of its own */
        room = a->hot.big;
    gcm__asan_unpoison(p, room);
    int len = vsnprintf(p, room, fmt, ap);
    if (len >= 0 && (size_t)len < room) {
        size_t n = (size_t)len + 1, sz = span(n);
        if (sz <= room) {
            prof_check(a, pos_of(a, p), sz, caller);
            set_cur(a, p + sz);
            a->hot.requested += n;
            gcm__asan_poison(p + n, room - n);
            va_end(again);
            return p;
        }
    }
    gcm__asan_poison(p, room);
    if (len < 0) { /* vsnprintf set errno (EOVERFLOW, EILSEQ) */
        va_end(again);
        return NULL;
    }
    /* It did not fit in the chunk's tail: the slow path's business. */
    char *q = alloc_slow(a, (size_t)len + 1, ALIGN, caller);
    if (q != NULL)
        vsnprintf(q, (size_t)len + 1, fmt, again);
    va_end(again);
    return q;
}

char *gcm_arena_vsprintf(gcm_arena *a, const char *fmt, va_list ap)
{
    return vsprintf_from(a, fmt, ap, GCM_PROF_CALLER());
}

char *gcm_arena_sprintf(gcm_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = vsprintf_from(a, fmt, ap, GCM_PROF_CALLER());
    va_end(ap);
    return p;
}

void *gcm_arena_realloc(gcm_arena *a, void *p, size_t old_size, size_t new_size)
{
    if (p == NULL)
        return take(a, new_size);
    if (a == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (new_size > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    char *q = p;
    size_t osz = span(old_size), nsz = span(new_size);
    /* The most recent allocation, in the bump chunk, made after the newest
     * mark: resize where it is. */
    if (old_size <= MAX_REQUEST && q + osz == cur_of(a) &&
        q >= chunk_start(a, a->bump) && pos_of(a, q) >= a->mark_pos &&
        nsz <= (size_t)(a->end - q) && nsz <= a->hot.big) {
        if (nsz < osz)
            release_range(a, q + nsz, q + osz);
        else if (nsz > osz) /* the growth is allocated, as by a new call */
            prof_check(a, pos_of(a, q + osz), nsz - osz, GCM_PROF_CALLER());
        set_cur(a, q + nsz);
        a->hot.requested = a->hot.requested - old_size + new_size;
        gcm__asan_unpoison(q, new_size);
        if (new_size < nsz)
            gcm__asan_poison(q + new_size, nsz - new_size);
        return p;
    }
    if (new_size <= old_size)
        return p; /* the bytes stay where they are until reset */
    void *r = take(a, new_size);
    if (r != NULL)
        memcpy(r, p, old_size);
    return r;
}

/* --- life cycle -------------------------------------------------------------- */

/* The class of chunks of at least `size` bytes. */
static unsigned class_of(size_t size)
{
    unsigned shift = GCM_CHUNK_MIN_SHIFT;
    while (((size_t)1 << shift) < size)
        shift++;
    return shift - GCM_CHUNK_MIN_SHIFT;
}

gcm_arena *gcm_arena_new(const gcm_arena_options *opts)
{
    gcm__ensure_init();
    size_t want = opts != NULL ? opts->chunk_size : 0;
    if (want == 0)
        want = (size_t)gcm__opt_int(GCM_OPT_ARENA_CHUNK);
    if (want > ((size_t)1 << GCM_CHUNK_MAX_SHIFT)) {
        errno = EINVAL;
        return NULL;
    }
    unsigned cls = class_of(want);
    gcm__chunk *c = gcm__chunk_get(cls);
    if (c == NULL)
        return NULL;
    gcm_arena *a = (gcm_arena *)gcm__chunk_data(c);
    size_t head = round_up(sizeof *a, GCM_CHUNK_HDR);
    gcm__asan_unpoison(a, sizeof *a);
    memset(a, 0, sizeof *a);
    a->first = a->bump = c;
    a->data0 = (char *)a + head;
    a->end = gcm__chunk_end(c);
    set_cur(a, a->data0);
    a->hot.big = c->size / 4;
    a->cls = (uint8_t)cls;
    a->scan = !(opts != NULL && opts->noscan);
    a->poison = gcm__opt_bool(GCM_OPT_ARENA_POISON);
    const char *name = opts != NULL && opts->name != NULL ? opts->name : "arena";
    size_t nl = strnlen(name, NAME_MAX_LEN - 1);
    memcpy(a->name, name, nl);
    a->name[nl] = '\0';
    c->next = NULL;
    __atomic_store_n(&c->top, a->data0, __ATOMIC_RELAXED);
    __atomic_store_n(&a->chunks, c, __ATOMIC_RELAXED);
    /* Published last: the walker may look at a from here on. */
    if (a->scan)
        __atomic_store_n(&c->scan_owner, a, __ATOMIC_RELEASE);
    gcm__tls *t = &gcm__tls_self;
    GCM_BUMP(&t->arena_created, 1);
    chunks_in(c->size);
    prof_restart(a);
    return a;
}

int gcm_arena_reset(gcm_arena *a)
{
    if (a == NULL)
        return EINVAL;
    if (busy(a, "gcm_arena_reset", __builtin_return_address(0)))
        return EBUSY;
    run_cleanups(a, NULL);
    uint64_t left = prof_left(a);
    a->prof_next = UINT64_MAX; /* until carried over, below */
    truncate_to(a, a->first, a->first, a->data0);
    a->pos_base = 0;
    a->hot.requested = 0;
    record_rewind(a, 0);
    if (a->prof.n != 0)
        gcm__prof_list_release(&a->prof, 0);
    prof_carry_reset(a, left);
    return 0;
}

void gcm_arena_free(gcm_arena *a)
{
    if (a == NULL)
        return;
    if (busy(a, "gcm_arena_free", __builtin_return_address(0)))
        return;
    run_cleanups(a, NULL);
    if (a->prof.n != 0)
        gcm__prof_list_release(&a->prof, 0);
    /* No chunk may be scanned on behalf of a once any chunk is back in a
     * cache: the first one holds a itself. */
    size_t bytes = 0;
    for (gcm__chunk *c = a->chunks; c != NULL; c = c->next) {
        __atomic_store_n(&c->scan_owner, NULL, __ATOMIC_RELEASE);
        __atomic_store_n(&c->top, used_end(a, c), __ATOMIC_RELAXED);
        bytes += c->size;
    }
    gcm__chunk *c = a->chunks, *first = a->first;
    bool poison = a->poison;
    while (c != first) {
        gcm__chunk *next = c->next;
        give_back(a, c, c->top);
        c = next;
    }
    gcm__tls *t = &gcm__tls_self;
    GCM_BUMP(&t->arena_freed, 1);
    chunks_out(bytes);
    /* Last, the chunk that holds the arena: after this, a is gone. */
    if (poison) {
        gcm__asan_unpoison(gcm__chunk_data(first), (size_t)(first->top -
                                                          gcm__chunk_data(first)));
        memset(gcm__chunk_data(first), POISON_BYTE,
               (size_t)(first->top - gcm__chunk_data(first)));
    }
    gcm__asan_poison(gcm__chunk_data(first), first->size - GCM_CHUNK_HDR);
    gcm__chunk_put(first);
}

/* --- savepoints and cleanups ----------------------------------------------- */

int gcm_arena_mark(gcm_arena *a, struct gcm_arena_mark *out)
{
    if (a == NULL || out == NULL)
        return EINVAL;
    mark_impl m = {
        .arena = a,
        .head = a->chunks,
        .bump = a->bump,
        .cur = cur_of(a),
        .cleanups = a->cleanups,
        .pos = pos_of(a, cur_of(a)),
        .gen = a->gen,
        .requested = a->hot.requested,
        .prof_n = gcm__prof_list_mark(&a->prof),
    };
    a->mark_pos = m.pos;
    memset(out, 0, sizeof *out);
    memcpy(out, &m, sizeof m);
    return 0;
}

int gcm_arena_rewind(gcm_arena *a, const struct gcm_arena_mark *mark)
{
    const void *caller = __builtin_return_address(0);
    if (a == NULL || mark == NULL)
        return EINVAL;
    if (busy(a, "gcm_arena_rewind", caller))
        return EBUSY;
    mark_impl m;
    memcpy(&m, mark, sizeof m);
    int rc = check_mark(a, &m, caller);
    if (rc != 0)
        return rc;
    run_cleanups(a, m.cleanups);
    uint64_t left = prof_left(a);
    a->prof_next = UINT64_MAX; /* until carried over, below */
    /* Whatever the cleanups allocated is after the mark too. */
    truncate_to(a, m.head, m.bump, m.cur);
    a->pos_base = m.pos - (uint64_t)(m.cur - chunk_start(a, m.bump));
    a->hot.requested = m.requested;
    record_rewind(a, m.pos);
    if (a->prof.n > m.prof_n)
        gcm__prof_list_release(&a->prof, m.prof_n);
    prof_carry(a, left);
    return 0;
}

int gcm_arena_add_cleanup(gcm_arena *a, void (*fn)(void *), void *arg)
{
    if (a == NULL || fn == NULL)
        return EINVAL;
    if (gcm__debug_on()) {
        for (cleanup *cl = a->cleanups; cl != NULL; cl = cl->next) {
            if (cl->fn == fn && cl->arg == arg) {
                gcm__diag_misuse(__builtin_return_address(0),
                                 "gcm_arena_add_cleanup(arena %p \"%s\", %p, "
                                 "%p): this cleanup is already registered and "
                                 "would run twice; not registered again",
                                 (void *)a, a->name, (void *)fn, arg);
                return EEXIST;
            }
        }
    }
    cleanup *cl = take(a, sizeof *cl);
    if (cl == NULL)
        return ENOMEM;
    /* The record is the arena's, not the caller's: not counted as theirs. */
    a->hot.requested -= sizeof *cl;
    cl->fn = fn;
    cl->arg = arg;
    cl->next = a->cleanups;
    a->cleanups = cl;
    return 0;
}

int gcm_arena_stats(const gcm_arena *a, struct gcm_arena_stats *st)
{
    if (a == NULL || st == NULL)
        return EINVAL;
    memset(st, 0, sizeof *st);
    st->name = a->name;
    st->requested = a->hot.requested;
    st->chunk_size = (size_t)1 << (a->cls + GCM_CHUNK_MIN_SHIFT);
    st->scan = a->scan;
    for (gcm__chunk *c = a->chunks; c != NULL; c = c->next) {
        st->chunks++;
        st->chunk_bytes += c->size;
        char *lo = chunk_start(a, c);
        if (c == a->bump) {
            st->used += (size_t)(cur_of(a) - lo);
            st->available = (size_t)(a->end - cur_of(a));
        } else {
            if (c->cls == GCM_CHUNK_BIG)
                lo = gcm__chunk_data(c); /* alignment padding is used too */
            st->used += (size_t)(c->top - lo);
            st->wasted += (size_t)(gcm__chunk_end(c) - c->top);
        }
    }
    for (cleanup *cl = a->cleanups; cl != NULL; cl = cl->next)
        st->cleanups++;
    return 0;
}

/* --- the collector's view -------------------------------------------------- */

/* The root provider: with the world stopped, push the used part of every
 * chunk a scan arena holds (see the essay above for why each read is safe).
 * Not instrumented by TSan: it reads the owners' fields by design while
 * they are stopped, which TSan cannot know. */
__attribute__((no_sanitize("thread"))) static void push_scan_arenas(void)
{
    for (gcm__chunk *c = gcm__chunk_registry(); c != NULL;
         c = __atomic_load_n(&c->all_next, __ATOMIC_ACQUIRE)) {
        gcm_arena *a = __atomic_load_n(&c->scan_owner, __ATOMIC_ACQUIRE);
        if (a == NULL)
            continue;
        char *lo = gcm__chunk_data(c), *end = gcm__chunk_end(c);
        char *hi = __atomic_load_n(&c->top, __ATOMIC_RELAXED);
        char *cur = (char *)__atomic_load_n(&a->hot.cur, __ATOMIC_RELAXED);
        if (cur >= lo && cur <= end)
            hi = cur;
        if (hi > end)
            hi = end;
        gcm__gc_push_range(lo, hi);
    }
}

void gcm__arena_init(void)
{
    gcm__thread_on_exit(heap_flush);
    /* The chunk cache's exit hook and trimmer reach threads through the
     * thread registry; make sure it is set up even when the collector is
     * started lazily. */
    gcm__thread_init();
    gcm__gc_add_roots(push_scan_arenas);
    gcm__chunk_init();
}
