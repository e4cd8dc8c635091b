/*
 * coroutines.c — programs that run on stacks of their own, for the
 * preload tests (coroutines.sh).
 *
 *   coroutines malloc|mmap   coroutines (ucontext) on stacks from malloc or
 *                            from mmap, allocating and leaking on them and
 *                            on the main stack; blocks each coroutine keeps
 *                            only in its own frame must stay intact.  The
 *                            collected modes cannot scan such stacks: they
 *                            must stop collecting and say so, not crash.
 *   user-stack malloc|mmap   threads started on a stack the program
 *                            allocated (pthread_attr_setstack): an ordinary
 *                            thread to the collector, which must go on
 *                            collecting.
 * Prints "ok" and exits 0 when every block was intact.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Blocks only this frame points to, checked after every switch. */
static void keep_and_check(int id, void (*between)(int))
{
    char *mine[KEEP];
    for (int i = 0; i < KEEP; i++) {
        mine[i] = malloc(BLOCK);
        memset(mine[i], 'A' + id, BLOCK);
    }
    for (int r = 0; r < ROUNDS; r++) {
        churn();
        between(id);
        for (int i = 0; i < KEEP; i++)
            for (int j = 0; j < BLOCK; j++)
                if (mine[i][j] != 'A' + id) {
                    __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
                    break;
                }
    }
    for (int i = 0; i < KEEP; i++)
        free(mine[i]);
}

/* --- coroutines --------------------------------------------------------------------- */

static ucontext_t main_ctx, co_ctx[NCO];

static void yield(int id) { swapcontext(&co_ctx[id], &main_ctx); }

static void co_body(int id) { keep_and_check(id, yield); }

static int coroutines(void)
{
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
        }
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
        fprintf(stderr, "usage: %s coroutines|user-stack malloc|mmap\n", argv[0]);
        return 2;
    }
    use_mmap = strcmp(argv[2], "mmap") == 0;
    int rc;
    if (strcmp(argv[1], "coroutines") == 0)
        rc = coroutines();
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
