/*
 * test_sort.c — gcm__sort (src/sort.c): qsort's contract without malloc.
 *
 * Arrays of every small length and of large ones, elements of odd sizes
 * (the byte-wise tail of the swap) and of word multiples, keys with many
 * duplicates: the result must be ordered and a permutation of the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "test_rng.h"

typedef struct odd {
    uint16_t key;
    uint8_t tag; /* which input position it came from, mod 256 */
} __attribute__((packed)) odd; /* 3 bytes */

typedef struct wide {
    uint64_t key;
    uint64_t pos;
    uint64_t pad;
} wide; /* 24 bytes */

static int cmp_odd(const void *a, const void *b)
{
    uint16_t x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return (x > y) - (x < y);
}

static int cmp_wide(const void *a, const void *b)
{
    const wide *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static test_rng rng = TEST_RNG_INIT(88172645463325252ull);

static void test_wide(void **state)
{
    (void)state;
    static wide v[5000];
    static uint64_t seen[5000];
    size_t lens[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100, 1000, 5000};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        size_t n = lens[li];
        uint64_t mod = li % 2 ? 7 : UINT64_MAX; /* many duplicates, or few */
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            v[i].key = test_rng_next(&rng) % mod;
            v[i].pos = i;
            v[i].pad = ~v[i].key;
            sum += v[i].key;
        }
        gcm__sort(v, n, sizeof *v, cmp_wide);
        memset(seen, 0, sizeof seen);
        uint64_t after = 0;
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                assert_true(v[i - 1].key <= v[i].key);
            assert_true(v[i].pad == ~v[i].key); /* moved whole */
            assert_true(v[i].pos < n);
            assert_int_equal(seen[v[i].pos]++, 0); /* each input once */
            after += v[i].key;
        }
        assert_true(after == sum);
    }
}

static void test_odd_size(void **state)
{
    (void)state;
    static odd v[3001];
    static unsigned count[65536], tags[256];
    size_t n = 3001;
    memset(count, 0, sizeof count);
    memset(tags, 0, sizeof tags);
    for (size_t i = 0; i < n; i++) {
        uint16_t k = (uint16_t)(test_rng_next(&rng) % 500);
        memcpy(&v[i].key, &k, sizeof k);
        v[i].tag = (uint8_t)i;
        count[k]++;
        tags[(uint8_t)i]++;
    }
    gcm__sort(v, n, sizeof *v, cmp_odd);
    for (size_t i = 0; i < n; i++) {
        uint16_t k, prev;
        memcpy(&k, &v[i].key, sizeof k);
        if (i > 0) {
            memcpy(&prev, &v[i - 1].key, sizeof prev);
            assert_true(prev <= k);
        }
        assert_true(count[k] > 0);
        count[k]--;
        assert_true(tags[v[i].tag] > 0);
        tags[v[i].tag]--;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wide),
        cmocka_unit_test(test_odd_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
