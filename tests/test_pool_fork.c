/*
 * test_pool_fork.c — fork() while other threads are inside pools and
 * buffers: the child must find every lock free and every path working.
 *
 * A child inherits a spin lock in whatever state some other thread had it
 * at the fork; if it was held, the child's next use of it spins forever.
 * No public call holds a pool lock for long enough to fork inside it on
 * purpose, so three workers keep the locks busy (shared lists and steals
 * take the locals' locks, statistics take the registry's and every
 * local's, large buffers take the stripes' sets, small ones the buffer
 * classes', debug pools their object sets) while the main thread forks
 * again and again.  Each child then walks everything — statistics (every
 * lock of every pool), gets and puts on every pool, large buffers in all
 * the stripes, a collection (the rotation) — and exits 0; a child that
 * hangs is killed by its alarm and fails the test.  Without the fork
 * handlers this hangs within a few dozen forks on two cores.
 *
 * The child also checks the other side of the same handlers: the slots of
 * threads that did not come along are freed, so a collection in the child
 * does not wait for their busy flags.
 *
 * The workers' sampled allocations (pool misses, new buffers, at the
 * default rate) race the forks too.  libunwind's locks have no fork
 * handlers, so a fork closes the profiler's gate first and a capture that
 * finds it closed walks the frame pointers instead (prof_stack.c).  The
 * parent checks that some did (a few a fork here, most while the fork
 * waits for a worker's capture already inside libunwind and the others
 * sample on), so that the test is known to race captures against forks;
 * each child checks that the gate is open again for its own sampled
 * allocation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"
#include "test_rng.h"

#include "env_option.h"

enum { WORKERS = 3, FORKS = 150, LARGE = 1 << 20 };

static gcm_pool *plain, *collected, *checked;
static volatile int stop;

static void churn_pool(gcm_pool *p, unsigned seed)
{
    void *held[8];
    int n = (int)(seed % 8) + 1;
    for (int i = 0; i < n; i++)
        held[i] = gcm_pool_get(p);
    for (int i = 0; i < n; i++)
        if (held[i] != NULL)
            gcm_pool_put(p, held[i]);
}

static void *worker(void *arg)
{
    test_rng rng = test_rng_seeded((uintptr_t)arg);
    struct gcm_pool_stats st;
    struct gcm_memstats ms;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        uint32_t r = (uint32_t)(test_rng_next(&rng) >> 32);
        churn_pool(plain, r >> 8);
        churn_pool(collected, r >> 12);
        churn_pool(checked, r >> 16);
        void *b = gcm_buf_get(16 + (r >> 20) % 4000);
        void *L = gcm_buf_get(LARGE + (r >> 16) % 4096);
        gcm_buf_put(L);
        gcm_buf_put(b);
        gcm_pool_stats(plain, &st);
        if ((r >> 24) % 8 == 0)
            gcm_read_memstats(&ms);
    }
    return NULL;
}

/* Everything a child touches; returns only if nothing hung. */
static void child_walk(void)
{
    alarm(60); /* a last resort: the parent gives up at 30 s and prints the stack */
    struct gcm_memstats ms;
    struct gcm_pool_stats st;
    if (gcm_read_memstats(&ms) != 0 || gcm_pool_stats(plain, &st) != 0 ||
        gcm_pool_stats(checked, &st) != 0)
        _exit(2);
    for (unsigned s = 0; s < 64; s++) {
        churn_pool(plain, s);
        churn_pool(collected, s);
        churn_pool(checked, s);
    }
    /* Large buffers spread over the stripes by address. */
    void *L[48];
    for (int i = 0; i < 48; i++)
        if ((L[i] = gcm_buf_get(LARGE + (size_t)i * 4096)) == NULL)
            _exit(3);
    for (int i = 0; i < 48; i++)
        gcm_buf_put(L[i]);
    for (size_t n = 16; n <= 65536; n *= 2)
        gcm_buf_put(gcm_buf_get(n));
    /* A sampled allocation: through libunwind, the gate being open again,
     * and through the profiler's tables, whose locks the handlers made
     * anew. */
    uint64_t fallbacks = gcm__stack_fork_fallbacks();
    int64_t rate = gcm_profile_set_rate(1);
    void *sampled = gcm_malloc(64);
    gcm_profile_set_rate(rate);
    if (sampled == NULL || gcm__stack_fork_fallbacks() != fallbacks)
        _exit(5);
    /* A collection rotates every pool: with the other threads' slots left
     * taken it could wait for a busy flag that never clears. */
    gcm_gc();
    gcm_gc();
    for (unsigned s = 0; s < 16; s++)
        churn_pool(plain, s);
    if (gcm_read_memstats(&ms) != 0)
        _exit(4);
    _exit(0);
}

/* Waits up to 30 s; a hung child is killed and counted as failed, after
 * its stack is printed (where gdb is installed), so that a failure names
 * the lock it hung on. */
static int wait_child(pid_t pid)
{
    int status = 0;
    for (int i = 0; i < 3000; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (access("/usr/bin/gdb", X_OK) == 0) {
        char cmd[160];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/gdb -p %d -batch -ex 'thread apply all bt' 1>&2 2>/dev/null",
                 (int)pid);
        if (system(cmd) != 0)
            fprintf(stderr, "(gdb could not attach to the hung child)\n");
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void test_fork_during_pool_traffic(void **state)
{
    (void)state;
    plain = gcm_pool_new(&(gcm_pool_options){.name = "plain", .size = 48});
    collected = gcm_pool_new(&(gcm_pool_options){.name = "collected",
                                                 .size = 64,
                                                 .holds_pointers = true});
    /* A debug pool has headers and an object set, whose lock the fork
     * handlers must take too; the others keep the private-slot paths. */
    set_env_option("GCMALLOC_DEBUG", "1", false);
    checked = gcm_pool_new(&(gcm_pool_options){.name = "checked", .size = 32});
    set_env_option("GCMALLOC_DEBUG", NULL, false);
    assert_non_null(plain);
    assert_non_null(collected);
    assert_non_null(checked);

    pthread_t th[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker,
                                        (void *)(uintptr_t)(i * 7919 + 1)), 0);
    int failed = 0, first_rc = 0;
    for (int i = 0; i < FORKS && failed == 0; i++) {
        struct timespec ts = {0, (long)(i % 5) * 200 * 1000};
        nanosleep(&ts, NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child_walk();
        int rc = wait_child(pid);
        if (rc != 0) {
            failed++;
            first_rc = rc;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(th[i], NULL);
    if (failed)
        fail_msg("a forked child failed or hung (status %d; -1 = hung)", first_rc);
    /* A hundred to a few hundred a run on two cores (ASan, or other runs
     * alongside, included): none would mean the workers no longer sample
     * during the forks. */
    if (gcm__config_libunwind)
        assert_true(gcm__stack_fork_fallbacks() > 0);

    assert_int_equal(gcm_pool_destroy(plain), 0);
    assert_int_equal(gcm_pool_destroy(collected), 0);
    assert_int_equal(gcm_pool_destroy(checked), 0);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_during_pool_traffic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
