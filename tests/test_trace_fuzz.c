/*
 * test_trace_fuzz.c — deterministic mutation fuzzing of the gctrace
 * analyzer, built by the project's compiler and run by every `make test`
 * (and under ASan/UBSan by `make test-asan`), so that it guards the parser
 * on machines without clang's libFuzzer (fuzz_trace.c is that fuzzer).
 *
 * Each iteration picks a few real lines (the committed logs under
 * tests/data/ plus hand-written lines of other Go versions), mutates them
 * the ways real logs break and attackers break them — flipped bytes,
 * inserted NULs and invalid UTF-8, cut and spliced lines, digit runs far
 * past 64 bits, lines of tens of kilobytes, separators swapped — and runs
 * the result through the whole tool with its invariants checked
 * (trace_fuzz_check.c).  The generator is seeded, so a failure reproduces:
 * the failing input is written to a file named in the failure message.
 *
 * GCM_TRACE_FUZZ_ITERS overrides the iteration count (default 4000).
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_rng.h"
#include "trace.h"
#include "trace_fuzz_check.h"

#define DATA GCM_SOURCE_DIR "/tests/data/"

enum { MAX_SEEDS = 512, MAX_INPUT = 1 << 18 };

static char *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static size_t nseeds;

static void add_seed(const char *s, size_t n)
{
    if (nseeds == MAX_SEEDS)
        return;
    seeds[nseeds] = malloc(n + 1);
    assert_non_null(seeds[nseeds]);
    memcpy(seeds[nseeds], s, n);
    seed_len[nseeds++] = n;
}

static void add_file_lines(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char line[GCT_LINE_MAX];
    while (fgets(line, sizeof line, f) != NULL)
        add_seed(line, strcspn(line, "\n"));
    fclose(f);
}

static test_rng rng = TEST_RNG_INIT(0x2545F4914F6CDD1Dull);

static size_t below(size_t n) { return (size_t)test_rng_below(&rng, n); }

typedef struct buf {
    char *p;
    size_t n;
} buf;

static void insert(buf *b, size_t at, const char *s, size_t n)
{
    if (b->n + n > MAX_INPUT)
        return;
    memmove(b->p + at + n, b->p + at, b->n - at);
    memcpy(b->p + at, s, n);
    b->n += n;
}

static void erase(buf *b, size_t at, size_t n)
{
    if (at + n > b->n)
        n = b->n - at;
    memmove(b->p + at, b->p + at + n, b->n - at - n);
    b->n -= n;
}

static void mutate(buf *b)
{
    size_t at = below(b->n + 1);
    char tmp[64];
    switch (below(12)) {
    case 0: /* flip a byte to anything */
        if (b->n)
            b->p[below(b->n)] = (char)test_rng_next(&rng);
        break;
    case 1: { /* NULs, invalid UTF-8, CR, control bytes */
        static const char *const junk[] = {"\0", "\xff", "\xc3\x28", "\xe2\x82",
                                           "\r", "\x1b[31m", "\xf0\x9f\x92", "\n"};
        const char *j = junk[below(8)];
        insert(b, at, j, j[0] ? strlen(j) : 1);
        break;
    }
    case 2: /* delete a range */
        erase(b, at, 1 + below(40));
        break;
    case 3: /* duplicate a range */
        if (b->n) {
            size_t from = below(b->n), n = 1 + below(80);
            if (from + n > b->n)
                n = b->n - from;
            char *copy = malloc(n);
            assert_non_null(copy);
            memcpy(copy, b->p + from, n);
            insert(b, at, copy, n);
            free(copy);
        }
        break;
    case 4: { /* a digit run far past 64 bits, or just long */
        size_t n = 1 + below(400);
        char *d = malloc(n);
        assert_non_null(d);
        for (size_t i = 0; i < n; i++)
            d[i] = (char)('0' + below(10));
        insert(b, at, d, n);
        free(d);
        break;
    }
    case 5: { /* a very long line */
        size_t n = GCT_LINE_MAX - 64 + below(4 * GCT_LINE_MAX);
        char *d = malloc(n);
        assert_non_null(d);
        for (size_t i = 0; i < n; i++)
            d[i] = below(4) ? "gc 1 @0.5s +/->MB"[below(17)]
                            : (char)test_rng_next(&rng);
        insert(b, at, d, n);
        free(d);
        break;
    }
    case 6: /* swap a separator for another */
        for (size_t i = 0, k = below(b->n + 1); b->n && i < b->n; i++) {
            char *ch = &b->p[(k + i) % b->n];
            if (*ch == '+' || *ch == '/' || *ch == '>' || *ch == '.' || *ch == ',') {
                *ch = "+/>.,- "[below(7)];
                break;
            }
        }
        break;
    case 7: /* truncate */
        b->n = at;
        break;
    case 8: /* splice two lines: drop a newline */
        for (size_t i = at; i < b->n; i++)
            if (b->p[i] == '\n') {
                erase(b, i, 1);
                break;
            }
        break;
    case 9: { /* a well-formed field with an extreme value */
        static const char *const v[] = {"999999999999999", "0.000000001", "0",
                                        "1234567890123456", "18446744073709551616",
                                        "4294967296", "-1", "1e308"};
        const char *s = v[below(8)];
        insert(b, at, s, strlen(s));
        break;
    }
    case 10: /* a prefix before a line */
        snprintf(tmp, sizeof tmp, "%llu [x] ", (unsigned long long)below(1000000));
        insert(b, at, tmp, strlen(tmp));
        break;
    case 11: { /* the gctrace grammar's own pieces, out of place */
        static const char *const v[] = {"gc ", " ms clock, ", " ms cpu, ", " MB goal",
                                        " P", " (forced)", "->", " MB, ", "%: ", " @"};
        const char *s = v[below(10)];
        insert(b, at, s, strlen(s));
        break;
    }
    }
}

static void test_mutations(void **state)
{
    (void)state;
    add_file_lines(DATA "gctrace-go1.19-leak.log");
    add_file_lines(DATA "gctrace-gcmalloc-leak.log");
    static const char *const extra[] = {
        "gc 7 @0.036s 1%: 0.062+0.033+0.16+1.1+0.21 ms clock, "
        "0.062+0.033+0+0.17/0.95/0.070+0.21 ms cpu, 4->4->1 MB, 4 MB goal, 4 P (forced)",
        "gc 12 @3.141s 2%: 0.011+1.2+0.045 ms clock, 0.044+0.34/1.1/2.1+0.18 ms cpu, "
        "4->4->0 MB, 5 MB goal, 4 P",
        "scvg0: inuse: 3, idle: 0, sys: 3, released: 0, consumed: 3 (MB)",
        "2024-05-01T10:00:00Z stderr F gc 3 @1.000s 0%: 1+2+3 ms clock, 1+0/2/0+3 ms cpu, "
        "5->6->2 MB, 8 MB goal, 1 MB stacks, 2 MB arenas, 3 MB globals, 8 P",
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        add_seed(extra[i], strlen(extra[i]));
    assert_true(nseeds > 90);

    const char *why = NULL;
    long iters = 4000;
    const char *env = getenv("GCM_TRACE_FUZZ_ITERS");
    if (env != NULL && atol(env) > 0)
        iters = atol(env);
    buf b = {malloc(MAX_INPUT), 0};
    assert_non_null(b.p);
    uint64_t parsed = 0;
    for (long it = 0; it < iters; it++) {
        b.n = 0;
        size_t lines = 1 + below(24);
        for (size_t i = 0; i < lines; i++) {
            size_t s = below(nseeds);
            insert(&b, b.n, seeds[s], seed_len[s]);
            insert(&b, b.n, "\n", 1);
        }
        size_t muts = below(9); /* sometimes none: valid input must pass too */
        for (size_t m = 0; m < muts; m++)
            mutate(&b);
        why = gct_fuzz_check((const uint8_t *)b.p, b.n);
        if (why != NULL) {
            char path[] = "/tmp/gcm-trace-fuzz-XXXXXX";
            int fd = mkstemp(path);
            FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
            if (f != NULL) {
                fwrite(b.p, 1, b.n, f);
                fclose(f);
            }
            fail_msg("iteration %ld: %s (input saved to %s)", it, why, path);
        }
        /* Count inputs that still parse, to show the mutations do not
         * merely produce garbage the parser rejects at the first byte. */
        gct_log log;
        gct_log_init(&log);
        for (size_t i = 0, start = 0; i <= b.n; i++)
            if (i == b.n || b.p[i] == '\n') {
                gct_log_add_line(&log, b.p + start, i - start, false);
                start = i + 1;
            }
        parsed += log.n > 0;
        gct_log_free(&log);
    }
    print_message("%ld inputs, %llu with at least one cycle\n", iters,
                  (unsigned long long)parsed);
    assert_true(parsed > (uint64_t)iters / 4);
    assert_true(parsed < (uint64_t)iters);
    free(b.p);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
