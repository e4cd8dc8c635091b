/*
 * preload_maps.c — memory the program maps itself, as roots.
 *
 * In the preload library's collected modes the collector must see every
 * place the program keeps pointers to malloc'd memory.  Many programs keep
 * some in memory they map themselves: Python allocates its small objects
 * in 256 KiB arenas and its frame stacks with mmap, and without scanning
 * those it reclaims live objects within seconds (measured: it hangs or
 * crashes).  So mmap, munmap, mremap and mprotect are interposed, and every
 * private, readable and writable mapping the *program* creates is pushed
 * as a root at each collection (not shared ones: see tracked_kind).  Mappings made by the C library (thread
 * stacks, which the collector scans as stacks, and whose unused 8 MiB would
 * only be paged in), the dynamic loader, bdwgc (its own heap!), mimalloc,
 * libunwind (the profiler's: a 256 KiB cache of unwind information per
 * thread, no pointers) and gcmalloc itself are left out, told apart by the
 * caller's address.
 *
 * The registry is an array of [lo, hi) slots read by the root provider
 * while the world is stopped, so every update is a sequence of single
 * stores each of which leaves a slot readable: empty (hi <= lo), the old
 * range, a shrunk range, or the new one.  Removal happens before the real
 * munmap (mprotect, mremap, or mmap over it with MAP_FIXED) and insertion
 * after the real mmap.  Writers serialize on a mutex; the reader takes none.
 *
 * That order keeps every range the collector pushes mapped only if the
 * thread changing it is stopped while the collector pushes and marks.
 * Not every thread is: one past its exit destructor is no longer
 * registered, and libraries unmap there (libunwind's 256 KiB per-thread
 * cache goes in a key destructor's last round), as may a thread that never
 * allocated.  A collection that had pushed such a range before its removal
 * read it after the munmap: a SIGSEGV in bdwgc's marker.  So a thread the
 * collector does not stop, having taken a range out, waits for any
 * collection in progress (bdwgc holds its allocation lock from the stop to
 * the end of marking) before the real call; threads it stops never wait.
 * mremap moves a range's pointers, so it is done whole under that lock by
 * every thread: each collection sees the range where it was or where it
 * went, never in neither place.
 *
 * Not covered, and documented: mappings made with a raw syscall, and memory
 * reserved PROT_NONE by one call and opened later by a mprotect from a
 * library gcmalloc leaves out.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>
#include <mimalloc.h>

#include "internal.h"

#define API __attribute__((visibility("default")))

enum { R_LIBC, R_LD, R_GC, R_MI, R_UNWIND, R_SELF, R__N };
static struct {
    uintptr_t lo, hi;
} excluded[R__N];

static bool from_program(const void *caller)
{
    uintptr_t pc = (uintptr_t)caller;
    for (int i = 0; i < R__N; i++)
        if (pc >= excluded[i].lo && pc < excluded[i].hi)
            return false;
    return true;
}

/* --- the registry ---------------------------------------------------------------- */

#define MAX_SLOTS (1u << 16)

struct slot {
    uintptr_t lo, hi;
};

static struct slot *slots;      /* MAX_SLOTS entries, mapped at init   */
static size_t used;             /* slots [0, used) may be occupied     */
static size_t live_ranges;      /* how many are                        */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool tracking;
static bool warned_full;

static void slot_clear(struct slot *s)
{
    __atomic_store_n(&s->hi, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&s->lo, 0, __ATOMIC_RELEASE);
}

static void slot_set(struct slot *s, uintptr_t lo, uintptr_t hi)
{
    /* From empty: lo first, so a reader sees (lo, 0) = empty until hi. */
    __atomic_store_n(&s->lo, lo, __ATOMIC_RELEASE);
    __atomic_store_n(&s->hi, hi, __ATOMIC_RELEASE);
}

/* Callers hold mu. */
static void add_locked(uintptr_t lo, uintptr_t hi)
{
    for (size_t i = 0; i < used; i++) {
        if (slots[i].hi <= slots[i].lo) {
            slot_set(&slots[i], lo, hi);
            live_ranges++;
            return;
        }
    }
    if (used < MAX_SLOTS) {
        slot_set(&slots[used], lo, hi);
        __atomic_store_n(&used, used + 1, __ATOMIC_RELEASE);
        live_ranges++;
        return;
    }
    if (!warned_full) {
        warned_full = true;
        gcm__diag("preload: more than %u mappings of the program's to scan; "
                  "further ones are not scanned, and objects only they point "
                  "to may be reclaimed", MAX_SLOTS);
    }
}

/* Callers hold mu. */
static bool overlaps(const struct slot *s, uintptr_t lo, uintptr_t hi)
{
    return s->hi > s->lo && s->hi > lo && s->lo < hi;
}

/* True when [lo, hi) overlapped a tracked range. */
static bool remove_locked(uintptr_t lo, uintptr_t hi)
{
    bool hit = false;
    for (size_t i = 0; i < used; i++) {
        if (!overlaps(&slots[i], lo, hi))
            continue;
        hit = true;
        uintptr_t a = slots[i].lo, b = slots[i].hi;
        if (lo <= a && hi >= b) {
            slot_clear(&slots[i]);
            live_ranges--;
        } else if (lo <= a) {
            __atomic_store_n(&slots[i].lo, hi, __ATOMIC_RELEASE); /* keep the tail */
        } else if (hi >= b) {
            __atomic_store_n(&slots[i].hi, lo, __ATOMIC_RELEASE); /* keep the head */
        } else {
            /* A hole in the middle: shrink to the head, add the tail. */
            __atomic_store_n(&slots[i].hi, lo, __ATOMIC_RELEASE);
            add_locked(hi, b);
        }
    }
    return hit;
}

static void add(void *p, size_t len)
{
    pthread_mutex_lock(&mu);
    remove_locked((uintptr_t)p, (uintptr_t)p + len); /* no double scanning */
    add_locked((uintptr_t)p, (uintptr_t)p + len);
    pthread_mutex_unlock(&mu);
}

static void *GC_CALLBACK nothing(void *arg) { return arg; }

/* Takes [p, p + len) out before the caller unmaps it or takes read access
 * away; returns when no collection can still read it (see the top). */
static void remove_range(void *p, size_t len)
{
    pthread_mutex_lock(&mu);
    bool hit = remove_locked((uintptr_t)p, (uintptr_t)p + len);
    pthread_mutex_unlock(&mu);
    if (hit && !(gcm__tls_self.flags & GCM_T_GC_REGISTERED))
        GC_call_with_alloc_lock(nothing, NULL);
}

/* The readers take no lock: slot i as one of the values the writers'
 * store sequences leave readable; false when it is empty. */
static inline bool slot_read(size_t i, uintptr_t *lo, uintptr_t *hi)
{
    *lo = __atomic_load_n(&slots[i].lo, __ATOMIC_ACQUIRE);
    *hi = __atomic_load_n(&slots[i].hi, __ATOMIC_ACQUIRE);
    return *hi > *lo;
}

/* The root provider: runs with the world stopped. */
static void push_maps(void)
{
    size_t n = __atomic_load_n(&used, __ATOMIC_ACQUIRE);
    uintptr_t lo, hi;
    for (size_t i = 0; i < n; i++)
        if (slot_read(i, &lo, &hi))
            gcm__gc_push_range((const void *)lo, (const void *)hi);
}

/* gcm__program_region: a range being changed reads as its old or its new
 * extent. */
static bool region_of(uintptr_t p, uintptr_t *lo, uintptr_t *hi)
{
    size_t n = __atomic_load_n(&used, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < n; i++)
        if (slot_read(i, lo, hi) && *lo <= p && p < *hi)
            return true;
    return false;
}

void gcm__maps_fork(int phase)
{
    gcm__fork_mutex(&mu, phase);
}

size_t gcm__maps_count(void) { return __atomic_load_n(&live_ranges, __ATOMIC_RELAXED); }

/* --- the real calls --------------------------------------------------------------- */

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);
typedef int (*mprotect_fn)(void *, size_t, int);

static mmap_fn real_mmap;
static munmap_fn real_munmap;
static mremap_fn real_mremap;
static mprotect_fn real_mprotect;

/* Until dlsym has found the C library's functions (it may allocate, so it
 * runs during start-up, not on the first mmap), go to the kernel. */
static void *sys_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
    long r = syscall(SYS_mmap, a, l, p, f, fd, o);
    return r == -1 ? MAP_FAILED : (void *)r;
}

static int sys_munmap(void *a, size_t l) { return (int)syscall(SYS_munmap, a, l); }

static int sys_mprotect(void *a, size_t l, int p)
{
    return (int)syscall(SYS_mprotect, a, l, p);
}

void gcm__maps_init(void)
{
    real_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
    real_munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
    real_mremap = (mremap_fn)dlsym(RTLD_NEXT, "mremap");
    real_mprotect = (mprotect_fn)dlsym(RTLD_NEXT, "mprotect");
    void *mem = sys_mmap(NULL, MAX_SLOTS * sizeof(struct slot),
                         PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        gcm__diag("preload: cannot map the table of the program's mappings; "
                  "memory it maps itself is not scanned");
        return;
    }
    slots = mem;
    gcm__code_range((const void *)&fputs, &excluded[R_LIBC].lo, &excluded[R_LIBC].hi);
    gcm__code_range((const void *)&dlsym, &excluded[R_LD].lo, &excluded[R_LD].hi);
    gcm__code_range((const void *)&GC_init, &excluded[R_GC].lo, &excluded[R_GC].hi);
    gcm__code_range((const void *)&mi_malloc, &excluded[R_MI].lo, &excluded[R_MI].hi);
    const void *unwinder = gcm__unwinder_code();
    if (unwinder != NULL)
        gcm__code_range(unwinder, &excluded[R_UNWIND].lo, &excluded[R_UNWIND].hi);
    gcm__code_range((const void *)&gcm__maps_init, &excluded[R_SELF].lo,
                    &excluded[R_SELF].hi);
    gcm__gc_add_roots(push_maps);
    __atomic_store_n(&gcm__program_region, region_of, __ATOMIC_RELEASE);
    __atomic_store_n(&tracking, true, __ATOMIC_RELEASE);
}

/* Private anonymous memory, and private (copy-on-write) file mappings
 * opened for writing: the program can store pointers in either.  The JVM
 * maps its class-data-sharing archive MAP_PRIVATE read-write and keeps
 * pointers to malloc'd memory in the classes there
 * (InstanceKlass::_dep_context).
 *
 * Memory shared with other processes (MAP_SHARED, anonymous or not) is
 * left out: an address in this process's heap names another object, or
 * nothing, in the processes it is shared with, so programs keep offsets
 * there; and servers keep their large caches there.  PostgreSQL's
 * shared_buffers is one MAP_SHARED|MAP_ANONYMOUS mapping (a quarter of
 * RAM is the usual advice): with it scanned, every backend read all of it
 * at each collection (0.4 s a cycle for 1 GiB) and, since reading shared
 * memory allocates its pages, made all of it resident (a backend's VmHWM
 * 1.1 GB, against 117 MB for the whole server under glibc). */
static bool tracked_kind(int prot, int flags, int fd)
{
    if (!(prot & PROT_READ) || !(prot & PROT_WRITE))
        return false;
    if ((flags & MAP_TYPE) != MAP_PRIVATE)
        return false;
    return (flags & MAP_ANONYMOUS) ? fd == -1 : fd >= 0;
}

API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    bool track = __atomic_load_n(&tracking, __ATOMIC_ACQUIRE);
    /* MAP_FIXED replaces what is there, perhaps with memory the collector
     * must not read (PROT_NONE, a file past its end): out first.  Should
     * the call then fail, the old range stays unscanned: a failed
     * MAP_FIXED may have unmapped it already. */
    if (track && (flags & MAP_FIXED))
        remove_range(addr, len);
    void *p = real_mmap ? real_mmap(addr, len, prot, flags, fd, off)
                        : sys_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && track && tracked_kind(prot, flags, fd) &&
        from_program(__builtin_return_address(0))) {
        int saved = errno;
        add(p, len);
        errno = saved;
    }
    return p;
}

/* glibc 2.36 on x86_64: mmap64 is the same function under another name. */
API void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

API int munmap(void *addr, size_t len)
{
    if (__atomic_load_n(&tracking, __ATOMIC_ACQUIRE))
        remove_range(addr, len); /* before: the collector must not push it */
    return real_munmap ? real_munmap(addr, len) : sys_munmap(addr, len);
}

struct remap {
    void *old, *new_addr, *result;
    size_t old_len, new_len;
    int flags, err;
    bool tracked; /* old is in a tracked range: so is what it becomes */
};

static void *real_remap(struct remap *r)
{
    if (real_mremap == NULL)
        return (void *)syscall(SYS_mremap, r->old, r->old_len, r->new_len, r->flags,
                               r->new_addr);
    return (r->flags & MREMAP_FIXED)
               ? real_mremap(r->old, r->old_len, r->new_len, r->flags, r->new_addr)
               : real_mremap(r->old, r->old_len, r->new_len, r->flags);
}

/* Under bdwgc's allocation lock: a tracked range, moved or resized. */
static void *GC_CALLBACK remap_tracked(void *arg)
{
    struct remap *r = arg;
    pthread_mutex_lock(&mu);
    remove_locked((uintptr_t)r->old, (uintptr_t)r->old + r->old_len);
    if (r->flags & MREMAP_FIXED) /* replaced, as by mmap's MAP_FIXED */
        remove_locked((uintptr_t)r->new_addr, (uintptr_t)r->new_addr + r->new_len);
    pthread_mutex_unlock(&mu);
    r->result = real_remap(r);
    r->err = errno;
    if (r->tracked)
        add(r->result != MAP_FAILED ? r->result : r->old,
            r->result != MAP_FAILED ? r->new_len : r->old_len); /* failed: unchanged */
    return NULL;
}

API void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    struct remap r = {.old = old, .old_len = old_len, .new_len = new_len, .flags = flags};
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        r.new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    bool hit = false;
    if (__atomic_load_n(&tracking, __ATOMIC_ACQUIRE)) {
        uintptr_t lo = (uintptr_t)old, to = (uintptr_t)r.new_addr;
        pthread_mutex_lock(&mu);
        for (size_t i = 0; i < used; i++) {
            const struct slot *sl = &slots[i];
            if (overlaps(sl, lo, lo + old_len)) {
                hit = true;
                r.tracked |= sl->lo <= lo && lo < sl->hi;
            }
            hit |= (flags & MREMAP_FIXED) && overlaps(sl, to, to + new_len);
        }
        pthread_mutex_unlock(&mu);
    }
    if (!hit)
        return real_remap(&r);
    GC_call_with_alloc_lock(remap_tracked, &r);
    errno = r.err;
    return r.result;
}

API int mprotect(void *addr, size_t len, int prot)
{
    bool track = __atomic_load_n(&tracking, __ATOMIC_ACQUIRE);
    /* Taking read access away: stop scanning first. */
    if (track && !(prot & PROT_READ))
        remove_range(addr, len);
    int rc = real_mprotect ? real_mprotect(addr, len, prot)
                           : sys_mprotect(addr, len, prot);
    if (rc == 0 && track && (prot & PROT_READ) && (prot & PROT_WRITE) &&
        from_program(__builtin_return_address(0))) {
        int saved = errno;
        add(addr, len); /* reserved earlier, opened now */
        errno = saved;
    }
    return rc;
}
