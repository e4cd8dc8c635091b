/*
 * contract.c — the malloc family's contract, checked under the preload
 * library in each mode (run by preload_contract.sh with LD_PRELOAD): the
 * results glibc documents for every function, bad arguments, memory from
 * one function released by another, fork, threads and dlopen.
 * Exits 0 and prints "ok" when every check holds; otherwise names the
 * first one that failed.
 *
 * `contract bad-frees` (leakcheck mode only: glibc aborts) frees a block
 * twice and frees a pointer into the middle of one, and checks that the
 * blocks are not handed out twice afterwards.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failed;
#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
            failed = 1;                                                         \
        }                                                                       \
    } while (0)

static int aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* volatile: the compiler must not see through the bad sizes */
static volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2;

static void basics(void)
{
    char *p = malloc(100);
    CHECK(p != NULL && aligned_to(p, 16));
    memset(p, 'a', 100);
    CHECK(malloc_usable_size(p) >= 100);
    p = realloc(p, 100000);
    CHECK(p != NULL && p[99] == 'a');
    p = realloc(p, 10);
    CHECK(p != NULL && p[9] == 'a');
    free(p);
    free(NULL);

    CHECK(malloc(0) != NULL || errno == 0); /* either is allowed; must not crash */
    int *z = calloc(1000, sizeof *z);
    CHECK(z != NULL);
    for (int i = 0; z && i < 1000; i++)
        CHECK(z[i] == 0);
    free(z);

    p = realloc(NULL, 50); /* = malloc */
    CHECK(p != NULL);
    errno = 0;
    CHECK(realloc(p, 0) == NULL); /* frees, as glibc does */

    errno = 0;
    CHECK(malloc(huge) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(half, 3) == NULL && errno == ENOMEM);
    p = malloc(16);
    errno = 0;
    CHECK(realloc(p, huge) == NULL && errno == ENOMEM);
    free(p); /* still valid after a failed realloc */
    errno = 0;
    CHECK(reallocarray(NULL, half, 3) == NULL && errno == ENOMEM);
    p = reallocarray(NULL, 10, 10);
    CHECK(p != NULL && malloc_usable_size(p) >= 100);
    free(p);
    CHECK(malloc_usable_size(NULL) == 0);
}

static void alignment(void)
{
    size_t aligns[] = {8, 16, 32, 64, 128, 4096, 65536};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        void *p = NULL;
        CHECK(posix_memalign(&p, aligns[i], 100) == 0);
        CHECK(p != NULL && aligned_to(p, aligns[i]));
        memset(p, 1, 100);
        CHECK(malloc_usable_size(p) >= 100);
        p = realloc(p, 5000); /* an aligned block can be resized */
        CHECK(p != NULL && ((unsigned char *)p)[99] == 1);
        free(p);
        p = aligned_alloc(aligns[i], 3 * aligns[i]);
        CHECK(p != NULL && aligned_to(p, aligns[i]));
        free(p);
        p = memalign(aligns[i], 10);
        CHECK(p != NULL && aligned_to(p, aligns[i]));
        free(p);
    }
    void *p = (void *)1;
    CHECK(posix_memalign(&p, 3, 10) == EINVAL);          /* not a power of two */
    CHECK(posix_memalign(&p, sizeof(void *) / 2, 10) == EINVAL);
    CHECK(p == (void *)1);                                /* untouched on error */
    CHECK(posix_memalign(&p, 64, huge) == ENOMEM);
    /* C17 (DR 460) makes a bad alignment an error; glibc 2.36 still rounds
     * it up (2.38 rejects it), so only gcmalloc is held to it. */
    if (getenv("LD_PRELOAD") != NULL) {
        errno = 0;
        CHECK(aligned_alloc(3, 10) == NULL && errno == EINVAL);
    }
    long ps = sysconf(_SC_PAGESIZE);
    p = valloc(10);
    CHECK(p != NULL && aligned_to(p, (size_t)ps));
    free(p);
    p = pvalloc(10);
    CHECK(p != NULL && aligned_to(p, (size_t)ps) && malloc_usable_size(p) >= (size_t)ps);
    free(p);
}

struct msg {
    char *data;
    size_t n;
};

static void *alloc_for_other(void *arg)
{
    struct msg *m = arg;
    m->n = 4096;
    m->data = malloc(m->n);
    memset(m->data, 7, m->n);
    return NULL;
}

static void threads(void)
{
    /* Allocated on one thread, resized and freed on another. */
    struct msg m = {0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, alloc_for_other, &m) == 0);
    pthread_join(th, NULL);
    CHECK(m.data != NULL && m.data[4095] == 7);
    m.data = realloc(m.data, 8192);
    CHECK(m.data != NULL && m.data[4095] == 7);
    free(m.data);
}

static void forking(void)
{
    char *before = malloc(1000);
    strcpy(before, "parent");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child keeps working: allocate, free, use what the parent made. */
        int ok = strcmp(before, "parent") == 0;
        for (int i = 0; i < 100000; i++) {
            char *p = malloc(64 + i % 300);
            p[0] = 1;
            free(p);
        }
        free(before);
        _exit(ok ? 0 : 3);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(before);
}

static void loading(void)
{
    /* dlopen allocates through our malloc; the library then works. */
    void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    if (h != NULL) {
        const char *(*ver)(void) = (const char *(*)(void))dlsym(h, "zlibVersion");
        CHECK(ver != NULL && ver()[0] == '1');
        CHECK(dlclose(h) == 0);
    }
}

/* A call that succeeds leaves errno alone, as glibc's do: programs set
 * errno = 0, make a sequence of calls and test it (CMake's directory
 * count does, around readdir's allocations).  Sizes vary so that some
 * calls are sampled (the run at GCMALLOC_PROFILE_RATE=1 samples all). */
static void errno_kept(void)
{
    for (unsigned i = 0; i < 20000; i++) {
        size_t n = (size_t)(i * 2654435761u % 70000) + 1;
        errno = 4242;
        char *p = malloc(n);
        int ok = p != NULL && errno == 4242;
        p = realloc(p, n + 100);
        ok &= p != NULL && errno == 4242;
        free(p);
        ok &= errno == 4242;
        p = calloc(n, 1);
        ok &= p != NULL && errno == 4242;
        free(p);
        if (!ok) {
            CHECK(!"errno changed by a call that succeeded");
            return;
        }
    }
}

/* Enough allocation for several collections, half of it freed and so
 * reused: what a collector that lost a pointer would hand out again,
 * filled with 0x5a. */
static void churn(size_t block)
{
    for (int r = 0; r < 20000; r++) {
        char *x = malloc(block);
        memset(x, 0x5a, block);
        if (r % 2)
            free(x);
    }
}

/* The only pointers to blocks kept in a private, writable file mapping
 * (the JVM keeps pointers to malloc'd memory in its class-data archive,
 * mapped so): gc mode must scan it, or the blocks are reclaimed and
 * reused while the program still uses them. */
static void private_file_mapping(void)
{
    char path[] = "/tmp/gcm-contract-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    unlink(path);
    enum { SLOTS = 64, BLOCK = 4096, MAPPED = 1 << 16 };
    CHECK(ftruncate(fd, MAPPED) == 0);
    char **m = mmap(NULL, MAPPED, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    CHECK(m != MAP_FAILED);
    if (m == MAP_FAILED)
        return;
    for (int i = 0; i < SLOTS; i++) {
        m[i * 64] = malloc(BLOCK);
        memset(m[i * 64], 'A' + i % 26, BLOCK);
    }
    churn(BLOCK);
    int intact = 1;
    for (int i = 0; i < SLOTS; i++)
        for (int j = 0; j < BLOCK; j++)
            intact &= m[i * 64][j] == 'A' + i % 26;
    CHECK(intact);
    for (int i = 0; i < SLOTS; i++)
        free(m[i * 64]);
    munmap(m, MAPPED);
}

/* Memory shared with other processes is not scanned: PostgreSQL keeps its
 * shared_buffers (often gigabytes) in one MAP_SHARED|MAP_ANONYMOUS
 * mapping, and a collection that read it would make every page of it
 * resident (reading shared memory allocates it) and take seconds.  The
 * mapping is never touched by the program here: after collections, none
 * of it may be resident. */
static void shared_mapping_untouched(void)
{
    enum { SHARED = 64 << 20, BLOCK = 4096 };
    char *m = mmap(NULL, SHARED, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    CHECK(m != MAP_FAILED);
    if (m == MAP_FAILED)
        return;
    churn(BLOCK);
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = SHARED / (size_t)page, resident = 0;
    unsigned char *vec = malloc(pages);
    CHECK(vec != NULL && mincore(m, SHARED, vec) == 0);
    for (size_t i = 0; vec != NULL && i < pages; i++)
        resident += vec[i] & 1;
    free(vec);
    if (resident != 0)
        fprintf(stderr, "%zu of %zu pages of an untouched shared mapping resident\n",
                resident, pages);
    CHECK(resident == 0);
    munmap(m, SHARED);
}

/* Blocks whose only pointers are __thread variables, the main thread's and
 * another's (haproxy keeps its per-thread buffers so): the collected modes
 * must scan static TLS, or the blocks are reclaimed and reused. */
static __thread char *tls_block;
enum { TLS_BLOCK = 4096 };

static __attribute__((noinline)) void tls_fill(char c)
{
    tls_block = malloc(TLS_BLOCK);
    memset(tls_block, c, TLS_BLOCK);
}

static __attribute__((noinline)) int tls_intact(char c)
{
    churn(TLS_BLOCK);
    int intact = 1;
    for (int j = 0; j < TLS_BLOCK; j++)
        intact &= tls_block[j] == c;
    free(tls_block);
    return intact;
}

static void *tls_thread(void *arg)
{
    (void)arg;
    tls_fill('T');
    return (void *)(intptr_t)tls_intact('T');
}

/* libc's own pthread_create, past the preload library's: a thread started
 * so (by a runtime that creates threads behind the interposer's back) is
 * registered with the collector on its first malloc, and its stack bounds
 * come from bdwgc's GC_get_stack_base, not from our trampoline.  Its
 * static TLS must be scanned all the same, and finding those bounds
 * (pthread_getattr_np allocates) must not recurse into the registration. */
typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static create_fn libc_pthread_create(void)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    create_fn fn = libc != NULL ? (create_fn)dlsym(libc, "pthread_create") : NULL;
    if (libc != NULL)
        dlclose(libc);
    return fn;
}

static void thread_local_pointers(void)
{
    tls_fill('M');
    pthread_t th;
    void *r = NULL;
    CHECK(pthread_create(&th, NULL, tls_thread, NULL) == 0);
    CHECK(pthread_join(th, &r) == 0);
    CHECK(r != NULL);

    create_fn create = libc_pthread_create();
    CHECK(create != NULL); /* pthread_create itself under glibc's malloc */
    if (create != NULL) {
        r = NULL;
        CHECK(create(&th, NULL, tls_thread, NULL) == 0);
        CHECK(pthread_join(th, &r) == 0);
        CHECK(r != NULL);
    }
    CHECK(tls_intact('M'));
}

/* Memory whose only pointers the collector cannot see, allocated by a
 * library named libjvm.so (fake_jvm.c: HotSpot keeps such pointers in the
 * code it generates): the collected modes must never reclaim it. */
void fake_jvm_hold(int i, size_t n);
bool fake_jvm_intact(int i, size_t n);
void fake_jvm_release(int i);

static void hidden_by_libjvm(void)
{
    enum { SLOTS = 64, BLOCK = 4096 };
    for (int i = 0; i < SLOTS; i++)
        fake_jvm_hold(i, BLOCK);
    churn(BLOCK);
    int intact = 1;
    for (int i = 0; i < SLOTS; i++)
        intact &= fake_jvm_intact(i, BLOCK);
    CHECK(intact);
    for (int i = 0; i < SLOTS; i++)
        fake_jvm_release(i);
}

/* leakcheck refuses a free its tracking proves wrong, with a line saying
 * so, instead of freeing the block again: afterwards no two allocations
 * share a block. */
static volatile size_t inside = 32; /* hidden from -Wfree-nonheap-object */
static int bad_frees(void)
{
    char *volatile p = malloc(64); /* volatile: the compiler keeps both frees */
    free(p);
    free(p); /* the second free: refused */
    char *q = malloc(200);
    free(q + inside); /* inside a block: refused, q stays the program's */
    memset(q, 0x5a, 200);
    char *a = malloc(64), *b = malloc(64);
    CHECK(a != NULL && b != NULL && a != b);
    memset(a, 1, 64);
    memset(b, 2, 64);
    CHECK(a[0] == 1 && a[63] == 1 && b[0] == 2 && b[63] == 2);
    CHECK(q[0] == 0x5a && q[199] == 0x5a);
    free(a);
    free(b);
    free(q);
    if (failed)
        return 1;
    printf("ok\n");
    return 0;
}

/* glibc's SIGEV_THREAD timers: a helper thread that glibc creates itself
 * (never through the interposed pthread_create) waits for the timer signal
 * with it blocked and mallocs on each expiry, then starts a thread of its
 * own for the callback, which mallocs too.  Run first thing in a fresh
 * process, so that the helper's malloc is the collector's first contact
 * with another thread: it registered the helper and started bdwgc's marker
 * threads there, which hung (the registration's own malloc) and then
 * unblocked the timer signal in the helper, so the next expiry killed the
 * process. */
enum { TICKS = 8, TICK_BLOCK = 256 };
static char *tick_blocks[TICKS];
static int ticks;

static void tick(union sigval v)
{
    (void)v;
    int i = __atomic_load_n(&ticks, __ATOMIC_ACQUIRE);
    if (i >= TICKS)
        return;
    char *b = malloc(TICK_BLOCK);
    if (b == NULL)
        return;
    memset(b, 'a' + i, TICK_BLOCK);
    tick_blocks[i] = b;
    __atomic_store_n(&ticks, i + 1, __ATOMIC_RELEASE);
}

static int timer_threads(void)
{
    timer_t timer;
    struct sigevent ev = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = tick};
    CHECK(timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0);
    struct itimerspec every = {.it_interval = {.tv_nsec = 5000000}, .it_value = {.tv_nsec = 5000000}};
    CHECK(timer_settime(timer, 0, &every, NULL) == 0);
    /* A liveness bound, not a measurement: 8 expiries of a 5 ms timer. */
    for (int ms = 0; ms < 20000 && __atomic_load_n(&ticks, __ATOMIC_ACQUIRE) < TICKS; ms += 5)
        nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
    CHECK(timer_delete(timer) == 0);
    CHECK(__atomic_load_n(&ticks, __ATOMIC_ACQUIRE) == TICKS);
    churn(TICK_BLOCK);
    for (int i = 0; i < TICKS && i < __atomic_load_n(&ticks, __ATOMIC_ACQUIRE); i++) {
        int intact = 1;
        for (int j = 0; j < TICK_BLOCK; j++)
            intact &= tick_blocks[i][j] == 'a' + i;
        CHECK(intact);
        free(tick_blocks[i]);
    }
    if (failed)
        return 1;
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "bad-frees") == 0)
        return bad_frees();
    if (argc > 1 && strcmp(argv[1], "timer-threads") == 0)
        return timer_threads();
    /* Before anything else: the program's first malloc starts the preload
     * library (and mimalloc), whose start-up must not leak an errno. */
    errno = 4242;
    void *first = malloc(24);
    int first_kept = first != NULL && errno == 4242;
    free(first);
    /* Under LD_PRELOAD, make sure the malloc being tested is gcmalloc's. */
    if (getenv("LD_PRELOAD") != NULL) {
        Dl_info info;
        void *m = dlsym(RTLD_DEFAULT, "malloc");
        if (m == NULL || dladdr(m, &info) == 0 ||
            strstr(info.dli_fname, "gcmalloc-preload") == NULL) {
            fprintf(stderr, "FAIL: malloc is not the preloaded gcmalloc's\n");
            return 1;
        }
    }
    basics();
    alignment();
    threads();
    forking();
    loading();
    CHECK(first_kept);
    errno_kept();
    private_file_mapping();
    hidden_by_libjvm();
    thread_local_pointers();
    shared_mapping_untouched();
    if (failed)
        return 1;
    printf("ok\n");
    return 0;
}
