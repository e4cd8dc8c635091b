/*
 * test_gc_coroutines.c — collections while threads run on stacks of their
 * own (src/gc_stacks.c).
 *
 * Coroutines (swapcontext here) run on stacks the program allocated; with
 * gcmalloc linked in, a coroutine stack from gcm_malloc is a collected
 * object.  bdwgc scans a stopped thread from its stack pointer up to the
 * stack base it registered, which from a coroutine's stack crossed
 * unmapped memory: a SIGSEGV inside the collection.  gc_stacks.c settles
 * each thread's stack at every stop instead.  What must hold:
 *
 *   - a collection started on a coroutine's stack goes through, and blocks
 *     only that coroutine's frame points to survive it;
 *   - blocks only the thread's own stack points to, while the thread is
 *     away on a coroutine, survive it (that stack is suspended where no
 *     collection saw it leave);
 *   - the same when the thread is stopped on a coroutine's stack by a
 *     collection another thread started, without allocating there.
 *
 * A reclaimed block shows as changed bytes: bdwgc clears what it hands out
 * again, and the test allocates blocks of the same size between checks.
 * Each case runs in a child process, so a crash fails the case instead of
 * ending the test program.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include <cmocka.h>

#include "gcmalloc.h"

#include "child_deadline.h"

#define DEADLINE_S 60

enum { KEEP = 16, BLOCK = 256, STACK = 128 * 1024, ROUNDS = 20 };

/* Blocks only the caller's frame points to (the array is volatile, so the
 * pointers live in the frame, not in registers a switch saves elsewhere). */
static void keep(char *volatile mine[KEEP], int id)
{
    for (int i = 0; i < KEEP; i++) {
        char *p = gcm_malloc(BLOCK);
        if (p != NULL)
            memset(p, 'a' + id, BLOCK);
        mine[i] = p;
    }
}

/* 0 when every block still holds its bytes. */
static int changed(char *volatile mine[KEEP], int id)
{
    int n = 0;
    for (int i = 0; i < KEEP; i++) {
        char *p = mine[i];
        if (p == NULL)
            return 1;
        for (int j = 0; j < BLOCK; j++)
            if (p[j] != 'a' + id) {
                n++;
                break;
            }
    }
    return n;
}

/* Garbage of the blocks' size, so a reclaimed block is handed out (and
 * cleared) again. */
static void churn(void)
{
    for (int i = 0; i < 2000; i++) {
        char *volatile p = gcm_malloc(BLOCK);
        if (p != NULL)
            p[0] = 1;
    }
}

static int bad;

/* --- a thread's own coroutines, collecting on them --------------------------------- */

static ucontext_t home_ctx, co_ctx;

static void collecting_coroutine(void)
{
    char *volatile mine[KEEP];
    keep(mine, 1);
    for (int r = 0; r < ROUNDS; r++) {
        churn();
        if (gcm_gc() != 0)
            bad++;
        churn();
        bad += changed(mine, 1);
        swapcontext(&co_ctx, &home_ctx);
    }
}

static int collect_on_coroutine(int unused)
{
    (void)unused;
    if (gcm_init() != 0)
        return 2;
    char *volatile mine[KEEP]; /* home's, while the thread is away */
    keep(mine, 0);
    char *stack = gcm_malloc(STACK);
    if (stack == NULL || getcontext(&co_ctx) != 0)
        return 3;
    co_ctx.uc_stack.ss_sp = stack;
    co_ctx.uc_stack.ss_size = STACK;
    co_ctx.uc_link = &home_ctx;
    makecontext(&co_ctx, collecting_coroutine, 0);
    for (int r = 0; r <= ROUNDS; r++) {
        if (swapcontext(&home_ctx, &co_ctx) != 0)
            return 4;
        bad += changed(mine, 0);
    }
    struct gcm_memstats m;
    if (gcm_read_memstats(&m) != 0 || m.num_gc < ROUNDS)
        return 5;
    gcm_free(stack);
    return bad != 0 ? 1 : 0;
}

/* --- another thread's coroutine, stopped where it sits ------------------------------- */

static ucontext_t worker_home, sit_ctx;
static int worker_ready, worker_done;
static uint64_t cycles_at_start;

static uint64_t cycles(void)
{
    struct gcm_memstats m;
    return gcm_read_memstats(&m) == 0 ? m.num_gc : 0;
}

/* Allocates nothing once its blocks are made: it waits, on its own stack,
 * for collections the main thread runs. */
static void sitting_coroutine(void)
{
    char *volatile mine[KEEP];
    keep(mine, 2);
    __atomic_store_n(&worker_ready, 1, __ATOMIC_RELEASE);
    while (cycles() < cycles_at_start + ROUNDS)
        nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
    bad += changed(mine, 2);
}

static void *worker(void *arg)
{
    (void)arg;
    char *volatile mine[KEEP];
    keep(mine, 3);
    char *stack = gcm_malloc(STACK);
    if (stack == NULL || getcontext(&sit_ctx) != 0) {
        bad++;
        __atomic_store_n(&worker_ready, 1, __ATOMIC_RELEASE);
        return NULL;
    }
    sit_ctx.uc_stack.ss_sp = stack;
    sit_ctx.uc_stack.ss_size = STACK;
    sit_ctx.uc_link = &worker_home;
    makecontext(&sit_ctx, sitting_coroutine, 0);
    swapcontext(&worker_home, &sit_ctx);
    bad += changed(mine, 3);
    gcm_free(stack);
    __atomic_store_n(&worker_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int stopped_on_coroutine(int unused)
{
    (void)unused;
    if (gcm_init() != 0)
        return 2;
    cycles_at_start = cycles();
    pthread_t th;
    if (pthread_create(&th, NULL, worker, NULL) != 0)
        return 3;
    while (!__atomic_load_n(&worker_ready, __ATOMIC_ACQUIRE))
        nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
    while (!__atomic_load_n(&worker_done, __ATOMIC_ACQUIRE)) {
        churn();
        if (gcm_gc() != 0)
            return 4;
    }
    pthread_join(th, NULL);
    return bad != 0 ? 1 : 0;
}

static void test_collect_on_coroutine(void **state)
{
    (void)state;
    assert_child_passes(collect_on_coroutine, 0, DEADLINE_S,
                        "collections started on a coroutine's stack");
}

static void test_stopped_on_coroutine(void **state)
{
    (void)state;
    assert_child_passes(stopped_on_coroutine, 0, DEADLINE_S,
                        "collections that stop a thread on a coroutine's stack");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collect_on_coroutine),
        cmocka_unit_test(test_stopped_on_coroutine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
