/*
 * prof_bucket.c — interning sampled stacks.
 *
 * Every sample is counted in a bucket: one per distinct (stack, kind,
 * name), as Go's mprof.go keeps one bucket per stack.  A bucket holds the
 * objects and bytes allocated and freed at its site (prof_sampled.c keeps
 * the counts), and lives as long as the process, so the profile's
 * cumulative figures (alloc_space) never lose a site.
 *
 * Look-ups are lock-free: buckets are never removed and are published
 * into their hash chain with a release store after being filled in, so a
 * reader that finds one sees it whole.  Creation takes a mutex and looks
 * again.  Buckets and label names come from the profiler's permanent
 * memory (mapped chunks), never from malloc.
 */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"

#define HEADS_BITS 14
#define NAME_HEADS 256
#define NAME_MAX_LEN 127

typedef struct name {
    struct name *next;
    uint64_t hash;
    char s[];
} name;

static struct {
    pthread_mutex_t mu;
    gcm__bucket *heads[1u << HEADS_BITS];
    gcm__bucket *all;
    size_t count;
    name *names[NAME_HEADS];
} B = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *const kind_names[GCM_PROF__KINDS] = {
    [GCM_PROF_GC] = "gc",         [GCM_PROF_ARENA] = "arena",
    [GCM_PROF_POOL] = "pool",     [GCM_PROF_BUF] = "buf",
    [GCM_PROF_MALLOC] = "malloc",
};

const char *gcm__prof_kind_name(gcm__prof_kind k)
{
    return (unsigned)k < GCM_PROF__KINDS ? kind_names[k] : "?";
}

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x100000001B3ULL;
    h ^= h >> 29;
    return h;
}

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3ULL;
    return h;
}

/* The interned copy of s (at most NAME_MAX_LEN bytes of it).  Called with
 * B.mu held for creation; look-ups are lock-free. */
static const char *find_name(const char *s, size_t n, uint64_t h)
{
    for (name *e = __atomic_load_n(&B.names[h % NAME_HEADS], __ATOMIC_ACQUIRE);
         e != NULL; e = e->next)
        if (e->hash == h && strncmp(e->s, s, n) == 0 && e->s[n] == '\0')
            return e->s;
    return NULL;
}

static const char *intern_name(const char *s)
{
    size_t n = strnlen(s, NAME_MAX_LEN);
    uint64_t h = hash_str(s, n);
    const char *found = find_name(s, n, h);
    if (found != NULL)
        return found;
    pthread_mutex_lock(&B.mu);
    found = find_name(s, n, h);
    if (found == NULL) {
        name *e = gcm__prof_perm_alloc(sizeof *e + n + 1);
        if (e != NULL) {
            e->hash = h;
            memcpy(e->s, s, n);
            e->s[n] = '\0';
            e->next = B.names[h % NAME_HEADS];
            __atomic_store_n(&B.names[h % NAME_HEADS], e, __ATOMIC_RELEASE);
            found = e->s;
        }
    }
    pthread_mutex_unlock(&B.mu);
    return found;
}

static gcm__bucket *find(gcm__bucket *chain, uint64_t h, const uintptr_t *pcs,
                         int depth, unsigned kind, bool collected,
                         const char *nm)
{
    for (gcm__bucket *b = chain; b != NULL;
         b = __atomic_load_n(&b->next, __ATOMIC_ACQUIRE)) {
        if (b->hash == h && b->depth == depth && b->kind == kind &&
            b->collected == collected && b->name == nm &&
            (depth == 0 || memcmp(b->pcs, pcs, (size_t)depth * sizeof *pcs) == 0))
            return b;
    }
    return NULL;
}

gcm__bucket *gcm__bucket_intern(const uintptr_t *pcs, int depth,
                                unsigned kind_flags, const char *nm)
{
    unsigned kind = kind_flags & ~(unsigned)GCM_PROF_COLLECTED;
    if (depth < 0 || (depth > 0 && pcs == NULL) || kind >= GCM_PROF__KINDS)
        return NULL;
    bool collected = kind == GCM_PROF_GC || (kind_flags & GCM_PROF_COLLECTED);
    if (depth > GCM_PROF_MAX_DEPTH)
        depth = GCM_PROF_MAX_DEPTH;
    if (nm != NULL) {
        nm = intern_name(nm);
        if (nm == NULL)
            return NULL;
    }
    uint64_t h = mix(mix(0xCBF29CE484222325ULL, (uint64_t)kind << 1 | collected),
                     (uint64_t)(uintptr_t)nm);
    for (int i = 0; i < depth; i++)
        h = mix(h, pcs[i]);
    gcm__bucket **head = &B.heads[h & ((1u << HEADS_BITS) - 1)];
    gcm__bucket *b = find(__atomic_load_n(head, __ATOMIC_ACQUIRE), h, pcs,
                          depth, kind, collected, nm);
    if (b != NULL)
        return b;

    pthread_mutex_lock(&B.mu);
    b = find(*head, h, pcs, depth, kind, collected, nm);
    if (b == NULL) {
        b = gcm__prof_perm_alloc(sizeof *b + (size_t)depth * sizeof *pcs);
        if (b != NULL) {
            memset(b, 0, sizeof *b);
            b->hash = h;
            b->depth = (uint16_t)depth;
            b->kind = (uint8_t)kind;
            b->collected = collected;
            b->name = nm;
            if (depth > 0)
                memcpy(b->pcs, pcs, (size_t)depth * sizeof *pcs);
            b->id = (uint32_t)(B.count + 1);
            b->next = *head;
            b->all = B.all;
            __atomic_store_n(head, b, __ATOMIC_RELEASE);
            __atomic_store_n(&B.all, b, __ATOMIC_RELEASE);
            __atomic_store_n(&B.count, B.count + 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&B.mu);
    return b;
}

gcm__bucket *gcm__bucket_list(void)
{
    return __atomic_load_n(&B.all, __ATOMIC_ACQUIRE);
}

size_t gcm__bucket_count(void)
{
    return __atomic_load_n(&B.count, __ATOMIC_ACQUIRE);
}

void gcm__bucket_fork(int phase)
{
    gcm__fork_mutex(&B.mu, phase);
}
