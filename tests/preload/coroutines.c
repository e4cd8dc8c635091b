/*
 * coroutines.c — programs that run on stacks of their own, for the
 * preload tests (coroutines.sh).
 *
 *   coroutines malloc|mmap   coroutines (ucontext) on stacks from malloc or
 *                            from mmap, allocating and leaking on them and
 *                            on the main stack; blocks each coroutine keeps
 *                            only in its own frame, and blocks main keeps
 *                            only in its frame while it is away on a
 *                            coroutine, must stay intact through the
 *                            collections each of them starts.
 *   threads malloc|mmap      two threads each run coroutines that sit
 *                            without allocating while a third thread
 *                            allocates, so that collections stop them on
 *                            the coroutines' stacks; the same blocks must
 *                            stay intact.
 *   user-stack malloc|mmap   threads started on a stack the program
 *                            allocated (pthread_attr_setstack): an ordinary
 *                            thread to the collector.
 * Prints "ok" and exits 0 when every block was intact.  Blocks that must
 * stay are allocated in keep() only, so a leak report can be checked for
 * them by that name.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

enum { NCO = 4, STACK = 256 * 1024, ROUNDS = 100, KEEP = 8, BLOCK = 512 };

static void *volatile sink;
static int bad;
static bool use_mmap;

static void *stack_alloc(size_t n)
{
    if (!use_mmap)
        return malloc(n);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Allocation enough to reach the collector's checkpoints and, where it
 * collects, its cycles: 200 KiB kept (leaked), 8 MiB freed. */
static void churn(void)
{
    for (int i = 0; i < 2000; i++) {
        char *x = malloc(4096);
        sink = x;
        x[0] = 1;
        free(x);
    }
    for (int i = 0; i < 200; i++)
        sink = malloc(1024);
}

/* Blocks only the caller's frame points to, filled with a byte of id's:
 * the collector reclaiming one shows as a changed byte (gc mode clears
 * what it hands out again), and a leak report naming keep() is false. */
static __attribute__((noinline)) void keep(char *mine[KEEP], int id)
{
    for (int i = 0; i < KEEP; i++) {
        mine[i] = malloc(BLOCK);
        memset(mine[i], 'A' + id, BLOCK);
    }
}

static void check(char *mine[KEEP], int id)
{
    for (int i = 0; i < KEEP; i++)
        for (int j = 0; j < BLOCK; j++)
            if (mine[i][j] != 'A' + id) {
                __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
                break;
            }
}

static void release(char *mine[KEEP])
{
    for (int i = 0; i < KEEP; i++)
        free(mine[i]);
}

/* Keeps blocks, and checks them after every call of between(). */
static void keep_and_check(int id, void (*between)(int))
{
    char *mine[KEEP];
    keep(mine, id);
    for (int r = 0; r < ROUNDS; r++) {
        churn();
        between(id);
        check(mine, id);
    }
    release(mine);
}

/* --- coroutines --------------------------------------------------------------------- */

static ucontext_t main_ctx, co_ctx[NCO];

static void yield(int id) { swapcontext(&co_ctx[id], &main_ctx); }

static void co_body(int id) { keep_and_check(id, yield); }

static int coroutines(void)
{
    char *mine[KEEP]; /* main's own, while it is away on the coroutines */
    keep(mine, NCO);
    for (int i = 0; i < NCO; i++) {
        getcontext(&co_ctx[i]);
        co_ctx[i].uc_stack.ss_sp = stack_alloc(STACK);
        if (co_ctx[i].uc_stack.ss_sp == NULL)
            return 2;
        co_ctx[i].uc_stack.ss_size = STACK;
        co_ctx[i].uc_link = &main_ctx;
        makecontext(&co_ctx[i], (void (*)(void))co_body, 1, i);
    }
    /* One more resume than the rounds: each coroutine returns to main. */
    for (int r = 0; r <= ROUNDS; r++)
        for (int i = 0; i < NCO; i++) {
            swapcontext(&main_ctx, &co_ctx[i]);
            churn();
            check(mine, NCO);
        }
    release(mine);
    return 0;
}

/* --- threads whose coroutines are stopped where they sit ------------------------------ */

enum { NTH = 2, TCO = 2, TROUNDS = 20 };

struct sched {
    ucontext_t home, co[TCO];
    int id;
};

static int running; /* worker threads not finished */

static void spin_ms(int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* Allocates nothing after its blocks: collections started by the
 * allocating thread stop this one here, on the coroutine's stack. */
static void sitter(struct sched *s, int k)
{
    int id = s->id * TCO + k;
    char *mine[KEEP];
    keep(mine, id);
    for (int r = 0; r < TROUNDS; r++) {
        spin_ms(2);
        check(mine, id);
        swapcontext(&s->co[k], &s->home);
    }
    release(mine);
}

static void *worker(void *arg)
{
    struct sched *s = arg;
    char *mine[KEEP]; /* the thread's own stack's, while it is away */
    keep(mine, NCO + 1 + s->id);
    for (int k = 0; k < TCO; k++) {
        getcontext(&s->co[k]);
        s->co[k].uc_stack.ss_sp = stack_alloc(STACK);
        if (s->co[k].uc_stack.ss_sp == NULL)
            abort();
        s->co[k].uc_stack.ss_size = STACK;
        s->co[k].uc_link = &s->home;
        makecontext(&s->co[k], (void (*)(void))sitter, 2, s, k);
    }
    for (int r = 0; r <= TROUNDS; r++)
        for (int k = 0; k < TCO; k++) {
            swapcontext(&s->home, &s->co[k]);
            check(mine, NCO + 1 + s->id);
        }
    release(mine);
    __atomic_sub_fetch(&running, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int threads(void)
{
    static struct sched s[NTH];
    pthread_t th[NTH];
    running = NTH;
    for (int i = 0; i < NTH; i++) {
        s[i].id = i;
        if (pthread_create(&th[i], NULL, worker, &s[i]) != 0)
            return 3;
    }
    while (__atomic_load_n(&running, __ATOMIC_ACQUIRE) > 0)
        churn(); /* the collections */
    for (int i = 0; i < NTH; i++)
        pthread_join(th[i], NULL);
    return 0;
}

/* --- threads on the program's stacks -------------------------------------------------- */

static void nothing(int id) { (void)id; }

static void *thread_body(void *arg)
{
    keep_and_check((int)(long)arg, nothing);
    return NULL;
}

static int user_stacks(void)
{
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        void *stack = stack_alloc(1 << 20);
        if (stack == NULL || pthread_attr_setstack(&attr, stack, 1 << 20) != 0)
            return 2;
        if (pthread_create(&th[i], &attr, thread_body, (void *)(long)i) != 0)
            return 3;
        pthread_attr_destroy(&attr);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "malloc") != 0 && strcmp(argv[2], "mmap") != 0)) {
        fprintf(stderr, "usage: %s coroutines|threads|user-stack malloc|mmap\n", argv[0]);
        return 2;
    }
    use_mmap = strcmp(argv[2], "mmap") == 0;
    int rc;
    if (strcmp(argv[1], "coroutines") == 0)
        rc = coroutines();
    else if (strcmp(argv[1], "threads") == 0)
        rc = threads();
    else if (strcmp(argv[1], "user-stack") == 0)
        rc = user_stacks();
    else
        rc = 2;
    if (rc != 0)
        return rc;
    if (bad != 0) {
        fprintf(stderr, "FAIL: %d blocks changed under the program\n", bad);
        return 1;
    }
    printf("ok\n");
    return 0;
}
