/*
 * test_prof_stack.c — src/prof_stack.c: stacks start at the caller's return
 * address, run outwards through the real callers, are cut at the requested
 * depth keeping the innermost frames, and work on any thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"

/* Each test names the frames it expects by resolving them. */
static const char *name_of(uintptr_t ret)
{
    gcm__sym_frame f[16];
    int n = gcm__sym_resolve(GCM_SYM_LINES, ret - 1, f, 16);
    /* The outermost of an inlined chain is the function the code is in. */
    return n > 0 ? f[n - 1].function : NULL;
}

static uintptr_t got[GCM_PROF_MAX_DEPTH];
static int got_n;

/* Whether the last capture passed through fn. */
static bool got_has(const char *fn)
{
    for (int i = 0; i < got_n; i++) {
        const char *n = name_of(got[i]);
        if (n != NULL && strcmp(n, fn) == 0)
            return true;
    }
    return false;
}

/* Plays the part of an exported allocation entry point: captures from its
 * own return address, as gcm__prof_record_alloc does. */
__attribute__((noinline)) void stack_entry(int max)
{
    got_n = gcm__stack_capture(got, max, __builtin_return_address(0));
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void stack_inner(int max)
{
    stack_entry(max);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void stack_outer(int max)
{
    stack_inner(max);
    __asm__ volatile("" ::: "memory");
}

static void test_starts_at_caller(void **state)
{
    (void)state;
    stack_outer(GCM_PROF_MAX_DEPTH);
    assert_true(got_n >= 3);
    /* Nothing of the entry point or the unwinder: frame 0 is its caller. */
    assert_string_equal(name_of(got[0]), "stack_inner");
    assert_string_equal(name_of(got[1]), "stack_outer");
    assert_string_equal(name_of(got[2]), "test_starts_at_caller");
    /* Frame pointers stop at the first frame built without them: cmocka's
     * (Debian builds it without), between main and this test. */
    if (gcm__config_libunwind)
        assert_true(got_has("main"));
}

__attribute__((noinline)) int recurse(int depth, int max)
{
    if (depth == 0) {
        stack_entry(max);
        return got_n;
    }
    int r = recurse(depth - 1, max);
    __asm__ volatile("" ::: "memory");
    return r;
}

static void test_depth_limit_keeps_innermost(void **state)
{
    (void)state;
    assert_int_equal(recurse(100, GCM_PROF_MAX_DEPTH), GCM_PROF_MAX_DEPTH);
    for (int i = 0; i < GCM_PROF_MAX_DEPTH; i++)
        assert_string_equal(name_of(got[i]), "recurse");
    assert_int_equal(recurse(10, 5), 5);
    /* More than the maximum is the maximum. */
    assert_int_equal(recurse(100, 1000), GCM_PROF_MAX_DEPTH);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uintptr_t pcs[4];
    assert_int_equal(gcm__stack_capture(NULL, 4, NULL), 0);
    assert_int_equal(gcm__stack_capture(pcs, 0, NULL), 0);
    assert_int_equal(gcm__stack_capture(pcs, -1, NULL), 0);
    /* A caller that is on no stack: the profiler's frames are dropped
     * (or, linked statically, the capture still finds real frames). */
    int n = gcm__stack_capture(pcs, 4, (void *)0x1234);
    assert_true(n >= 1);
}

static void *thread_main(void *arg)
{
    (void)arg;
    stack_outer(GCM_PROF_MAX_DEPTH);
    return NULL;
}

static void test_on_another_thread(void **state)
{
    (void)state;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_main, NULL), 0);
    pthread_join(th, NULL);
    assert_true(got_n >= 3);
    assert_string_equal(name_of(got[0]), "stack_inner");
    assert_string_equal(name_of(got[1]), "stack_outer");
    assert_string_equal(name_of(got[2]), "thread_main");
}

static void test_method(void **state)
{
    (void)state;
    const char *m = gcm__stack_method();
    assert_true(strcmp(m, gcm__config_libunwind ? "libunwind" : "frame pointers") == 0);
}

/* fork() while another thread is inside the unwinder: libunwind takes
 * locks of its own and has no fork handlers, so a child forked while one
 * was held hung at its first capture (test_pool_fork caught it once).
 * prof_stack.c's gate makes fork wait for captures inside libunwind.  A
 * thread holds the gate as a capture would, for 100 ms; fork must not
 * return before it has let go, in the parent or in the child. */
static int gate_entered, gate_left;

static void hold_gate(void *arg)
{
    (void)arg;
    __atomic_store_n(&gate_entered, 1, __ATOMIC_RELEASE);
    struct timespec t = {0, 100 * 1000 * 1000};
    nanosleep(&t, NULL);
    __atomic_store_n(&gate_left, 1, __ATOMIC_RELEASE);
}

static void *gate_holder(void *arg)
{
    return (void *)(intptr_t)gcm__stack_gated(hold_gate, arg);
}

static void test_fork_waits_for_unwinders(void **state)
{
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, gate_holder, NULL), 0);
    while (!__atomic_load_n(&gate_entered, __ATOMIC_ACQUIRE))
        sched_yield();
    pid_t pid = fork();
    assert_true(pid >= 0);
    int left = __atomic_load_n(&gate_left, __ATOMIC_ACQUIRE);
    if (pid == 0) {
        uintptr_t pcs[64];
        /* The child's own capture works, and through libunwind: the gate
         * is open again (a closed one would cost every later sample of the
         * child its frames, silently). */
        uint64_t fallbacks = gcm__stack_fork_fallbacks();
        bool ok = left && gcm__stack_capture(pcs, 64, NULL) > 0;
        _exit(ok && gcm__stack_fork_fallbacks() == fallbacks ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    void *ran = NULL;
    pthread_join(t, &ran);
    assert_true(ran == (void *)1);
    assert_int_equal(left, 1);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* While a fork is under way, a capture walks the frame pointers instead
 * of entering libunwind (raw_capture's branch on the gate), and its stack
 * still starts at the caller and runs through the real callers.  The
 * fallback count says which way it went: a libunwind capture returns the
 * same first frames, so the stack alone cannot tell.  Once the gate
 * reopens, captures enter libunwind again.  In a GCMALLOC_UNWIND=fp build
 * (the TSan job's) every capture walks the frame pointers and the count
 * stays 0. */
static void test_capture_during_fork(void **state)
{
    (void)state;
    const uint64_t fallback = gcm__config_libunwind ? 1 : 0;
    uint64_t before = gcm__stack_fork_fallbacks();
    gcm__stack_fork(GCM_FORK_PREPARE);
    stack_outer(GCM_PROF_MAX_DEPTH);
    uint64_t during = gcm__stack_fork_fallbacks();
    bool gated = gcm__stack_gated(hold_gate, NULL);
    gcm__stack_fork(GCM_FORK_PARENT);
    assert_int_equal(during - before, fallback);
    assert_false(gated);
    /* This file is built with frame pointers, so the walk gets at least
     * as far as this test. */
    assert_true(got_n >= 3);
    assert_string_equal(name_of(got[0]), "stack_inner");
    assert_string_equal(name_of(got[1]), "stack_outer");
    assert_string_equal(name_of(got[2]), "test_capture_during_fork");

    stack_outer(GCM_PROF_MAX_DEPTH);
    assert_int_equal(gcm__stack_fork_fallbacks(), during);
    assert_true(got_n >= 3);
    assert_string_equal(name_of(got[0]), "stack_inner");
    /* libunwind reads .eh_frame, so it gets past cmocka to main. */
    if (gcm__config_libunwind)
        assert_true(got_has("main"));
}

/* The same through a program's path: an arena allocation sampled at rate
 * 1 (gcm_arena_alloc -> the arena's sampling -> gcm__prof_record_alloc_list
 * -> gcm__stack_capture) while the gate is closed is recorded, with a
 * stack that starts at the allocating function.  The out-of-line entry
 * point (the parentheses keep the header's macro out): the inline one, not
 * inlined at -O0, would be a frame of its own, which only symbolization
 * cuts. */
__attribute__((noinline)) void *alloc_in_fork(gcm_arena *a)
{
    void *p = (gcm_arena_alloc)(a, 48);
    __asm__ volatile("" ::: "memory");
    return p;
}

static const gcm__bucket *arena_bucket(const char *name)
{
    for (const gcm__bucket *b = gcm__bucket_list(); b != NULL; b = b->all)
        if (b->kind == GCM_PROF_ARENA && b->name != NULL && strcmp(b->name, name) == 0)
            return b;
    return NULL;
}

static void test_sampled_during_fork(void **state)
{
    (void)state;
    const uint64_t fallback = gcm__config_libunwind ? 1 : 0;
    /* The rate first: an arena places its next sample point when made,
     * and its inline path runs up to it without asking again.  One arena
     * for each side of the gate, so that each sample has a bucket of its
     * own (buckets are per stack and name). */
    int64_t rate = gcm_profile_set_rate(1);
    gcm_arena *closed = gcm_arena_new(&(gcm_arena_options){.name = "gate-closed"});
    gcm_arena *open = gcm_arena_new(&(gcm_arena_options){.name = "gate-open"});
    assert_non_null(closed);
    assert_non_null(open);

    uint64_t before = gcm__stack_fork_fallbacks();
    gcm__stack_fork(GCM_FORK_PREPARE);
    void *p = alloc_in_fork(closed);
    uint64_t during = gcm__stack_fork_fallbacks();
    gcm__stack_fork(GCM_FORK_PARENT);
    void *q = alloc_in_fork(open);
    uint64_t after = gcm__stack_fork_fallbacks();
    gcm_profile_set_rate(rate);

    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal(during - before, fallback);
    assert_int_equal(after, during);
    const gcm__bucket *b = arena_bucket("gate-closed");
    assert_non_null(b);
    assert_int_equal(b->active.allocs, 1);
    assert_true(b->depth >= 2);
    assert_string_equal(name_of(b->pcs[0]), "alloc_in_fork");
    assert_string_equal(name_of(b->pcs[1]), "test_sampled_during_fork");
    b = arena_bucket("gate-open");
    assert_non_null(b);
    assert_int_equal(b->active.allocs, 1);
    assert_string_equal(name_of(b->pcs[0]), "alloc_in_fork");
    gcm_arena_free(closed);
    gcm_arena_free(open);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_at_caller),
        cmocka_unit_test(test_depth_limit_keeps_innermost),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_on_another_thread),
        cmocka_unit_test(test_method),
        cmocka_unit_test(test_fork_waits_for_unwinders),
        cmocka_unit_test(test_capture_during_fork),
        cmocka_unit_test(test_sampled_during_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
