/*
 * trace_parse.c — one gctrace line into a gct_cycle.
 *
 * The grammar, as Go 1.19 (and gcmalloc) print it:
 *
 *   gc N @T s U%: A+B+C ms clock, a+b/c/d+e ms cpu, H0->H1->H2 MB,
 *       G MB goal, S MB stacks, X MB globals, P P [(forced)]
 *
 * and what is accepted beyond it, so that logs of other Go versions read:
 *
 *   - five clock phases and seven CPU figures (Go 1.5, 1.6);
 *   - any list of ", K MB word" fields after the goal: none before Go 1.18,
 *     "stacks" and "globals" since; an unknown word (a later Go) is skipped;
 *   - a prefix before "gc" (timestamps, container log tags), trailing
 *     blanks and a CR (logs that went through Windows tools).
 *
 * Everything else is strict: a number is plain digits with an optional
 * fraction (Go never prints signs or exponents), at most 15 integer digits
 * (so every value is exact in a double and no arithmetic can overflow) and
 * 9 decimals.  The input is a byte range, never a C string, so NUL bytes
 * and invalid UTF-8 are just bytes that fail to match.
 *
 * A line that does not parse is "malformed" when it shows a piece of the
 * gctrace grammar ("gc N @", " ms clock", " ms cpu", " MB goal") — the
 * usual cause is another thread's output landing in the middle of a line,
 * which splits it in two — and "foreign" otherwise.
 */
#include <string.h>

#include "trace.h"

enum { MAX_INT_DIGITS = 15, MAX_FRAC_DIGITS = 9 };

typedef struct cursor {
    const char *p, *end;
} cursor;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_word_byte(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_';
}

/* Consumes the literal `lit` if it comes next. */
static bool lit(cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Plain digits: 1..MAX_INT_DIGITS of them. */
static bool uint_(cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    int digits = 0;
    while (c->p < c->end && is_digit(*c->p)) {
        if (++digits > MAX_INT_DIGITS)
            return false;
        v = v * 10 + (uint64_t)(*c->p++ - '0');
    }
    *out = v;
    return digits > 0;
}

/* digits [ . digits ] */
static bool dec(cursor *c, double *out)
{
    uint64_t ip;
    if (!uint_(c, &ip))
        return false;
    double v = (double)ip;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        uint64_t frac = 0, scale = 1;
        int digits = 0;
        while (c->p < c->end && is_digit(*c->p)) {
            if (++digits > MAX_FRAC_DIGITS)
                return false;
            frac = frac * 10 + (uint64_t)(*c->p++ - '0');
            scale *= 10;
        }
        if (digits == 0)
            return false;
        v += (double)frac / (double)scale;
    }
    *out = v;
    return true;
}

/* A+B+C or A+B+C+D+E */
static bool clock_phases(cursor *c, gct_cycle *g)
{
    int n = 0;
    do {
        if (n == GCT_MAX_PHASES || !dec(c, &g->clock_ms[n]))
            return false;
        n++;
    } while (lit(c, "+"));
    if (n != 3 && n != 5)
        return false;
    g->nphases = n;
    return true;
}

/* a+b/c/d+e (three phases) or a+s+w+b/c/d+e (five phases): the figure
 * before the first slash is the assist time, the two after it background
 * and idle mark time; one figure (mark termination) follows. */
static bool cpu_figures(cursor *c, gct_cycle *g)
{
    double v[GCT_MAX_PHASES + 2];
    char sep[GCT_MAX_PHASES + 2];
    int n = 0;
    for (;;) {
        if (n == (int)(sizeof v / sizeof v[0]) || !dec(c, &v[n]))
            return false;
        if (c->p < c->end && (*c->p == '+' || *c->p == '/')) {
            sep[n++] = *c->p++;
            continue;
        }
        sep[n++] = ' ';
        break;
    }
    if (n != g->nphases + 2)
        return false;
    /* Separators: '+' everywhere except sep[n-4] and sep[n-3], which are
     * the two slashes of the mark triple. */
    for (int i = 0; i < n - 1; i++) {
        bool slash = i == n - 4 || i == n - 3;
        if (sep[i] != (slash ? '/' : '+'))
            return false;
    }
    g->cpu_first_ms = v[0];
    g->cpu_assist_ms = v[n - 4];
    g->cpu_bg_ms = v[n - 3];
    g->cpu_idle_ms = v[n - 2];
    g->cpu_last_ms = v[n - 1];
    return true;
}

/* ", K MB word" fields after the goal, then ", P P". */
static bool tail_fields(cursor *c, gct_cycle *g)
{
    g->stacks_mb = g->globals_mb = -1;
    for (;;) {
        uint64_t v;
        if (!lit(c, ", ") || !uint_(c, &v))
            return false;
        if (lit(c, " P")) {
            g->procs = v;
            return true;
        }
        if (!lit(c, " MB "))
            return false;
        const char *w = c->p;
        while (c->p < c->end && *c->p >= 'a' && *c->p <= 'z')
            c->p++;
        size_t wn = (size_t)(c->p - w);
        if (wn == 0)
            return false;
        if (wn == 6 && memcmp(w, "stacks", 6) == 0)
            g->stacks_mb = (int64_t)v;
        else if (wn == 7 && memcmp(w, "globals", 7) == 0)
            g->globals_mb = (int64_t)v;
    }
}

/* Parses a line that starts exactly at "gc ". */
static bool parse_at(cursor c, gct_cycle *g)
{
    memset(g, 0, sizeof *g);
    if (!lit(&c, "gc ") || !uint_(&c, &g->n) || !lit(&c, " @") ||
        !dec(&c, &g->t_s) || !lit(&c, "s ") || !uint_(&c, &g->cpu_pct) ||
        !lit(&c, "%: ") || !clock_phases(&c, g) || !lit(&c, " ms clock, ") ||
        !cpu_figures(&c, g) || !lit(&c, " ms cpu, ") || !uint_(&c, &g->heap0_mb) ||
        !lit(&c, "->") || !uint_(&c, &g->heap1_mb) || !lit(&c, "->") ||
        !uint_(&c, &g->heap2_mb) || !lit(&c, " MB, ") || !uint_(&c, &g->goal_mb) ||
        !lit(&c, " MB goal") || !tail_fields(&c, g))
        return false;
    g->forced = lit(&c, " (forced)");
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\t' || *c.p == '\r'))
        c.p++;
    return c.p == c.end;
}

/* memmem, which C11 lacks. */
static const char *find(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0)
            return s + i;
    return NULL;
}

/* Where a gctrace line may start: "gc " at the start of the line or after
 * a byte that cannot end a word. */
static bool start_candidate(const char *s, size_t len, size_t i)
{
    return len - i >= 3 && memcmp(s + i, "gc ", 3) == 0 &&
           (i == 0 || !is_word_byte(s[i - 1]));
}

gct_line_kind gct_parse_line(const char *s, size_t len, gct_cycle *out)
{
    bool gc_start = false;
    for (size_t i = 0; i + 3 <= len; i++) {
        if (!start_candidate(s, len, i))
            continue;
        gct_cycle g;
        if (parse_at((cursor){s + i, s + len}, &g)) {
            *out = g;
            return GCT_LINE_CYCLE;
        }
        /* "gc N @" is the gctrace opening even if the rest is broken. */
        cursor c = {s + i + 3, s + len};
        uint64_t n;
        if (uint_(&c, &n) && lit(&c, " @"))
            gc_start = true;
    }
    if (gc_start || find(s, len, " ms clock") || find(s, len, " ms cpu") ||
        find(s, len, " MB goal"))
        return GCT_LINE_MALFORMED;
    return GCT_LINE_FOREIGN;
}

double gct_clock_a(const gct_cycle *c) { return c->clock_ms[0]; }

double gct_clock_c(const gct_cycle *c)
{
    return c->nphases > 0 ? c->clock_ms[c->nphases - 1] : 0;
}

double gct_clock_b(const gct_cycle *c)
{
    double b = 0;
    for (int i = 1; i < c->nphases - 1; i++)
        b += c->clock_ms[i];
    return b;
}
