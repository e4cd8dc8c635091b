/*
 * test_rng.h — the tests' pseudo-random numbers: Marsaglia's xorshift64
 * (shifts 13, 7, 17; period 2^64 - 1), small, fast and deterministic, so
 * that a test draws the same values on every run and a failure can be
 * replayed.  Not for anything that needs good statistics or secrecy.
 *
 * Each user keeps its own state, seeded with its own constant:
 *
 *     static test_rng rng = TEST_RNG_INIT(88172645463325252ull);
 *     test_rng r = test_rng_seeded(seed);      (at run time)
 *     uint64_t x = test_rng_next(&r);
 *     size_t i = (size_t)test_rng_below(&r, n);    (0 <= i < n)
 *
 * A seed is the generator's first state, so a given seed draws what the
 * xorshift64 loops the tests carried before drew from it.  Zero, which
 * xorshift never leaves, stands for TEST_RNG_ZERO_SEED.  Needs nothing but
 * <stdint.h>: cmocka tests and plain test programs alike include it.
 */
#ifndef GCM_TESTS_TEST_RNG_H
#define GCM_TESTS_TEST_RNG_H

#include <stdint.h>

typedef struct test_rng {
    uint64_t s; /* never 0 */
} test_rng;

/* What seed 0 means (2^64 / golden ratio, any nonzero value would do). */
#define TEST_RNG_ZERO_SEED 0x9e3779b97f4a7c15ull

/* A static initializer: static test_rng r = TEST_RNG_INIT(seed). */
#define TEST_RNG_INIT(seed) \
    {(uint64_t)(seed) != 0 ? (uint64_t)(seed) : TEST_RNG_ZERO_SEED}

static inline test_rng test_rng_seeded(uint64_t seed)
{
    test_rng r = TEST_RNG_INIT(seed);
    return r;
}

/* The next 64 bits (never 0). */
static inline uint64_t test_rng_next(test_rng *r)
{
    uint64_t x = r->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->s = x;
    return x;
}

/* A value in [0, n) (modulo: a bias of n / 2^64 at most); 0 when n is 0. */
static inline uint64_t test_rng_below(test_rng *r, uint64_t n)
{
    return n != 0 ? test_rng_next(r) % n : 0;
}

#endif
