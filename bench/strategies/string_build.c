/*
 * string_build.c — building a string piece by piece.
 *
 * The Go guides' first example: `s += piece` in a loop copies the whole
 * string each time (O(n²) bytes), strings.Builder grows geometrically, and
 * Builder.Grow(n) sizes it once.  In C the first is the realloc to the
 * exact new length after every append, seen in much hand-written string
 * code.  Each op builds "item_0,item_1,...,item_999," (8,890 bytes):
 *
 *   BadReallocExact   realloc(s, len + piece + 1) per piece: 1,000 allocations
 *   GoodGeometric     capacity doubles when full (from 16): 11 allocations
 *   GoodPresized      capacity estimated up front (pieces × 12): 1 allocation
 */
#include <string.h>

#include "strat.h"

#define PIECES 1000

/* Writes "item_<i>," to dst (room for 20 bytes); returns its length. */
static size_t format_piece(char *dst, unsigned i)
{
    char digits[12];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + i % 10);
        i /= 10;
    } while (i != 0);
    memcpy(dst, "item_", 5);
    for (size_t k = 0; k < nd; k++)
        dst[5 + k] = digits[nd - 1 - k];
    dst[5 + nd] = ',';
    return 6 + nd;
}

/* A byte builder: the layout of Go's strings.Builder. */
typedef struct builder {
    char *p;
    size_t len, cap;
} builder;

static void builder_append(strat_allocs *c, builder *sb, const char *s, size_t n)
{
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap < 16 ? 16 : sb->cap;
        while (cap < sb->len + n + 1)
            cap *= 2;
        sb->p = strat_realloc(c, sb->p, cap);
        sb->cap = cap;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

static void bad_realloc_exact(bench_b *b)
{
    strat_allocs c = {0};
    for (int64_t it = 0; it < b->n; it++) {
        char *s = NULL;
        size_t len = 0;
        for (unsigned i = 0; i < PIECES; i++) {
            char piece[20];
            size_t k = format_piece(piece, i);
            s = strat_realloc(&c, s, len + k + 1);
            memcpy(s + len, piece, k);
            len += k;
            s[len] = '\0';
        }
        bench_sink(s);
        free(s);
    }
    strat_report(b, &c);
}

static void build(bench_b *b, size_t presize)
{
    strat_allocs c = {0};
    for (int64_t it = 0; it < b->n; it++) {
        builder sb = {0};
        if (presize > 0) {
            sb.p = strat_malloc(&c, presize);
            sb.cap = presize;
        }
        for (unsigned i = 0; i < PIECES; i++) {
            char piece[20];
            size_t k = format_piece(piece, i);
            builder_append(&c, &sb, piece, k);
        }
        bench_sink(sb.p);
        free(sb.p);
    }
    strat_report(b, &c);
}

static void good_geometric(bench_b *b) { build(b, 0); }
static void good_presized(bench_b *b) { build(b, PIECES * 12); }

const bench_def strat_string_build[] = {
    {"StringBuild/BadReallocExact", bad_realloc_exact},
    {"StringBuild/GoodGeometric", good_geometric},
    {"StringBuild/GoodPresized", good_presized},
    {NULL, NULL},
};
