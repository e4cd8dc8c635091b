/*
 * test_pprof.c — src/pprof.c: the profile.proto writer, checked by decoding
 * its output here (gunzip, then a small protobuf reader): sample types and
 * their order, period, unbiased values, labels, locations (return address
 * − 1, lines innermost first), functions, mappings (main first, build-id,
 * flags that agree with what was resolved), the string table, the allocs
 * view, delta profiles (a base snapshot subtracted: negative in-use values,
 * unchanged samples dropped, duration_nanos), C++ names (demangled in
 * `name`, mangled in `system_name`), strings made UTF-8, and errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"
#include "pprof_bytes.h"
#include "env_option.h"
#include "cxx_site.h"

/* --- a protobuf reader ------------------------------------------------------- */

typedef struct field {
    int num, wt;
    uint64_t v;            /* varint */
    const uint8_t *p;      /* length-delimited */
    size_t len;
} field;

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static uint64_t varint(reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        assert_true(r->p < r->end);
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    fail_msg("varint too long");
    return 0;
}

static bool next(reader *r, field *f)
{
    if (r->p >= r->end)
        return false;
    uint64_t key = varint(r);
    f->num = (int)(key >> 3);
    f->wt = (int)(key & 7);
    assert_true(f->num > 0);
    if (f->wt == 0) {
        f->v = varint(r);
    } else if (f->wt == 2) {
        f->len = varint(r);
        assert_true(f->len <= (size_t)(r->end - r->p));
        f->p = r->p;
        r->p += f->len;
    } else {
        fail_msg("unexpected wire type %d", f->wt);
    }
    return true;
}

static reader sub(const field *f)
{
    return (reader){f->p, f->p + f->len};
}

/* --- the decoded profile ------------------------------------------------------ */

typedef struct dline { uint64_t fn; int64_t line; } dline;
typedef struct dloc { uint64_t id, mapping, address; dline lines[16]; int nlines; } dloc;
typedef struct dfn { uint64_t id; int64_t name, sys, file; } dfn;
typedef struct dmap {
    uint64_t id, start, limit, offset;
    int64_t file, build_id;
    bool fn, fl, ln, inl;
} dmap;
typedef struct dlabel { int64_t key, str, num; } dlabel;
typedef struct dsample {
    uint64_t locs[GCM_PROF_MAX_DEPTH];
    int nlocs;
    int64_t v[8];
    int nv;
    dlabel labels[4];
    int nlabels;
} dsample;

typedef struct profile {
    int64_t types[8][2];
    int ntypes;
    dsample samples[16];
    int nsamples;
    dloc locs[256];
    int nlocs;
    dfn fns[256];
    int nfns;
    dmap maps[128];
    int nmaps;
    char *strs[1024];
    int nstrs;
    int64_t time, duration, period, period_type[2], default_type;
    int64_t comments[4];
    int ncomments;
    uint8_t *raw;
} profile;

static void packed_or_single(const field *f, uint64_t *out, int *n, int cap)
{
    if (f->wt == 0) {
        assert_true(*n < cap);
        out[(*n)++] = f->v;
        return;
    }
    reader r = sub(f);
    while (r.p < r.end) {
        assert_true(*n < cap);
        out[(*n)++] = varint(&r);
    }
}

static void decode(const uint8_t *buf, size_t len, profile *P)
{
    memset(P, 0, sizeof *P);
    reader r = {buf, buf + len};
    field f;
    while (next(&r, &f)) {
        reader s = f.wt == 2 ? sub(&f) : (reader){0};
        field g;
        switch (f.num) {
        case 1: /* sample_type */
        case 11: { /* period_type */
            int64_t t = 0, u = 0;
            while (next(&s, &g))
                if (g.num == 1) t = (int64_t)g.v; else if (g.num == 2) u = (int64_t)g.v;
            if (f.num == 1) {
                P->types[P->ntypes][0] = t;
                P->types[P->ntypes++][1] = u;
            } else {
                P->period_type[0] = t;
                P->period_type[1] = u;
            }
            break;
        }
        case 2: {
            dsample *d = &P->samples[P->nsamples++];
            while (next(&s, &g)) {
                if (g.num == 1) {
                    packed_or_single(&g, d->locs, &d->nlocs, GCM_PROF_MAX_DEPTH);
                } else if (g.num == 2) {
                    uint64_t v[8];
                    int n = 0;
                    packed_or_single(&g, v, &n, 8);
                    for (int i = 0; i < n; i++)
                        d->v[d->nv++] = (int64_t)v[i];
                } else if (g.num == 3) {
                    reader lr = sub(&g);
                    field h;
                    dlabel *l = &d->labels[d->nlabels++];
                    while (next(&lr, &h)) {
                        if (h.num == 1) l->key = (int64_t)h.v;
                        if (h.num == 2) l->str = (int64_t)h.v;
                        if (h.num == 3) l->num = (int64_t)h.v;
                    }
                }
            }
            break;
        }
        case 3: {
            dmap *m = &P->maps[P->nmaps++];
            while (next(&s, &g)) {
                switch (g.num) {
                case 1: m->id = g.v; break;
                case 2: m->start = g.v; break;
                case 3: m->limit = g.v; break;
                case 4: m->offset = g.v; break;
                case 5: m->file = (int64_t)g.v; break;
                case 6: m->build_id = (int64_t)g.v; break;
                case 7: m->fn = g.v; break;
                case 8: m->fl = g.v; break;
                case 9: m->ln = g.v; break;
                case 10: m->inl = g.v; break;
                }
            }
            break;
        }
        case 4: {
            dloc *l = &P->locs[P->nlocs++];
            while (next(&s, &g)) {
                if (g.num == 1) l->id = g.v;
                if (g.num == 2) l->mapping = g.v;
                if (g.num == 3) l->address = g.v;
                if (g.num == 4) {
                    reader lr = sub(&g);
                    field h;
                    dline *ln = &l->lines[l->nlines++];
                    while (next(&lr, &h)) {
                        if (h.num == 1) ln->fn = h.v;
                        if (h.num == 2) ln->line = (int64_t)h.v;
                    }
                }
            }
            break;
        }
        case 5: {
            dfn *fn = &P->fns[P->nfns++];
            while (next(&s, &g)) {
                if (g.num == 1) fn->id = g.v;
                if (g.num == 2) fn->name = (int64_t)g.v;
                if (g.num == 3) fn->sys = (int64_t)g.v;
                if (g.num == 4) fn->file = (int64_t)g.v;
            }
            break;
        }
        case 6: {
            char *str = malloc(f.len + 1);
            memcpy(str, f.p, f.len);
            str[f.len] = '\0';
            assert_true(P->nstrs < 1024);
            P->strs[P->nstrs++] = str;
            break;
        }
        case 9: P->time = (int64_t)f.v; break;
        case 10: P->duration = (int64_t)f.v; break;
        case 12: P->period = (int64_t)f.v; break;
        case 13:
            assert_true(P->ncomments < 4);
            P->comments[P->ncomments++] = (int64_t)f.v;
            break;
        case 14: P->default_type = (int64_t)f.v; break;
        default: fail_msg("unexpected Profile field %d", f.num);
        }
    }
}

static void profile_free(profile *P)
{
    for (int i = 0; i < P->nstrs; i++)
        free(P->strs[i]);
    free(P->raw);
}

static const char *S(const profile *P, int64_t i)
{
    assert_true(i >= 0 && i < P->nstrs);
    return P->strs[i];
}

static const dloc *loc(const profile *P, uint64_t id)
{
    for (int i = 0; i < P->nlocs; i++)
        if (P->locs[i].id == id)
            return &P->locs[i];
    fail_msg("no location %llu", (unsigned long long)id);
    return NULL;
}

static const dfn *fn(const profile *P, uint64_t id)
{
    for (int i = 0; i < P->nfns; i++)
        if (P->fns[i].id == id)
            return &P->fns[i];
    fail_msg("no function %llu", (unsigned long long)id);
    return NULL;
}

/* Writes s (less base, when not NULL) through gcm__pprof_write_delta and
 * decodes the result. */
static void write_and_decode_delta(const gcm__prof_snap *s, const gcm__prof_snap *base,
                                   bool allocs, profile *P)
{
    size_t len;
    uint8_t *raw = pprof_bytes(s, base, allocs, &len);
    decode(raw, len, P);
    P->raw = raw;
}

static void write_and_decode(const gcm__prof_snap *s, bool allocs, profile *P)
{
    write_and_decode_delta(s, NULL, allocs, P);
}

/* --- a snapshot with known stacks ---------------------------------------------- */

static uintptr_t pcs_a[GCM_PROF_MAX_DEPTH], pcs_b[GCM_PROF_MAX_DEPTH];
static int depth_a, depth_b;

static inline __attribute__((always_inline)) void pp_inline(void)
{
    depth_a = gcm__stack_capture(pcs_a, GCM_PROF_MAX_DEPTH, NULL);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void pp_site_a(void)
{
    pp_inline();
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void pp_site_b(void)
{
    depth_b = gcm__stack_capture(pcs_b, GCM_PROF_MAX_DEPTH, NULL);
    __asm__ volatile("" ::: "memory");
}

static gcm__prof_rec recs[3];
static gcm__prof_snap snap;

static int build_snapshot(void **state)
{
    (void)state;
    pp_site_a();
    pp_site_b();
    if (depth_a < 3 || depth_b < 3)
        fail_msg("stacks too short: %d, %d", depth_a, depth_b);
    /* The capture starts inside the profiler (no caller given): start the
     * stacks at the test's own frames. */
    int skip_a = 0, skip_b = 0;
    gcm__sym_frame f[16];
    while (skip_a < depth_a) {
        int n = gcm__sym_resolve(GCM_SYM_LINES, pcs_a[skip_a] - 1, f, 16);
        if (n > 0 && strcmp(f[n - 1].function, "pp_site_a") == 0)
            break;
        skip_a++;
    }
    while (skip_b < depth_b) {
        int n = gcm__sym_resolve(GCM_SYM_LINES, pcs_b[skip_b] - 1, f, 16);
        if (n > 0 && strcmp(f[n - 1].function, "pp_site_b") == 0)
            break;
        skip_b++;
    }
    assert_true(skip_a < depth_a && skip_b < depth_b);
    gcm__bucket *a = gcm__bucket_intern(pcs_a + skip_a, depth_a - skip_a, GCM_PROF_GC, NULL);
    gcm__bucket *b = gcm__bucket_intern(pcs_b + skip_b, depth_b - skip_b, GCM_PROF_POOL, "pool-x");
    uintptr_t nowhere[2] = {0x11, 0x21};
    gcm__bucket *c = gcm__bucket_intern(nowhere, 2, GCM_PROF_MALLOC, NULL);
    recs[0] = (gcm__prof_rec){a, {10, 640, 4, 256}};
    recs[1] = (gcm__prof_rec){b, {3, 3000, 0, 0}};
    recs[2] = (gcm__prof_rec){c, {1, 16, 1, 16}};
    snap = (gcm__prof_snap){recs, 3, 524288, 1234567890123456789};
    return 0;
}

static int64_t label_num(const profile *P, const dsample *d, const char *key)
{
    for (int i = 0; i < d->nlabels; i++)
        if (strcmp(S(P, d->labels[i].key), key) == 0)
            return d->labels[i].num;
    return -1;
}

static const char *label_str(const profile *P, const dsample *d, const char *key)
{
    for (int i = 0; i < d->nlabels; i++)
        if (strcmp(S(P, d->labels[i].key), key) == 0)
            return S(P, d->labels[i].str);
    return NULL;
}

static void test_layout(void **state)
{
    (void)state;
    profile P;
    write_and_decode(&snap, false, &P);
    /* The string table starts with "" and every index is in range (S()
     * asserts it). */
    assert_true(P.nstrs > 10);
    assert_string_equal(P.strs[0], "");
    static const char *const types[4][2] = {
        {"alloc_objects", "count"}, {"alloc_space", "bytes"},
        {"inuse_objects", "count"}, {"inuse_space", "bytes"},
    };
    assert_int_equal(P.ntypes, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(S(&P, P.types[i][0]), types[i][0]);
        assert_string_equal(S(&P, P.types[i][1]), types[i][1]);
    }
    assert_string_equal(S(&P, P.period_type[0]), "space");
    assert_string_equal(S(&P, P.period_type[1]), "bytes");
    assert_int_equal(P.period, 524288);
    assert_int_equal(P.time, 1234567890123456789);
    assert_int_equal(P.default_type, 0); /* heap view: pprof shows the last */
    /* One comment: how the addresses were named. */
    assert_int_equal(P.ncomments, 1);
    assert_true(strncmp(S(&P, P.comments[0]), "gcmalloc symbols=", 17) == 0);
    profile_free(&P);
}

static void test_samples_values_and_labels(void **state)
{
    (void)state;
    profile P;
    write_and_decode(&snap, false, &P);
    assert_int_equal(P.nsamples, 3);
    for (int i = 0; i < 3; i++) {
        const dsample *d = &P.samples[i];
        const gcm__prof_rec *r = &recs[i];
        assert_int_equal(d->nv, 4);
        uint64_t v[4];
        gcm__prof_unbias(r->c.allocs, r->c.alloc_bytes, snap.rate, &v[0], &v[1]);
        gcm__prof_unbias(r->c.allocs - r->c.frees, r->c.alloc_bytes - r->c.free_bytes,
                         snap.rate, &v[2], &v[3]);
        for (int k = 0; k < 4; k++)
            assert_int_equal(d->v[k], v[k]);
        assert_int_equal(d->nlocs, r->b->depth);
        for (int k = 0; k < d->nlocs; k++) {
            const dloc *l = loc(&P, d->locs[k]);
            assert_int_equal(l->address, r->b->pcs[k] - 1); /* leaf first */
        }
        assert_int_equal(label_num(&P, d, "bytes"), r->c.alloc_bytes / r->c.allocs);
        assert_string_equal(label_str(&P, d, "kind"), gcm__prof_kind_name(r->b->kind));
    }
    /* The inuse values of the first: 6 objects, 384 bytes, unbiased. */
    assert_true(P.samples[0].v[2] > 6 && P.samples[0].v[3] > 384);
    assert_string_equal(label_str(&P, &P.samples[1], "name"), "pool-x");
    assert_null(label_str(&P, &P.samples[0], "name"));
    assert_int_equal(P.samples[2].v[2], 0); /* all freed */
    assert_int_equal(P.samples[2].v[3], 0);
    profile_free(&P);
}

static void test_locations_functions_mappings(void **state)
{
    (void)state;
    profile P;
    write_and_decode(&snap, false, &P);
    /* Ids non-zero and unique. */
    for (int i = 0; i < P.nlocs; i++) {
        assert_true(P.locs[i].id != 0);
        for (int j = 0; j < i; j++)
            assert_true(P.locs[j].id != P.locs[i].id);
    }
    for (int i = 0; i < P.nfns; i++) {
        assert_true(P.fns[i].id != 0);
        assert_int_equal(P.fns[i].name, P.fns[i].sys);
        for (int j = 0; j < i; j++) {
            assert_true(P.fns[j].id != P.fns[i].id);
            /* one function per (name, file) */
            assert_false(P.fns[j].name == P.fns[i].name && P.fns[j].file == P.fns[i].file);
        }
    }
    /* The first sample's leaf: the inlined helper, then its host. */
    const dloc *leaf = loc(&P, P.samples[0].locs[0]);
    assert_int_equal(leaf->nlines, 2);
    const dfn *f0 = fn(&P, leaf->lines[0].fn), *f1 = fn(&P, leaf->lines[1].fn);
    assert_string_equal(S(&P, f0->name), "pp_inline");
    assert_string_equal(S(&P, f1->name), "pp_site_a");
    const char *file = S(&P, f0->file);
    assert_true(strlen(file) > 12 && strcmp(file + strlen(file) - 12, "test_pprof.c") == 0);
    assert_true(leaf->lines[0].line > 0 && leaf->lines[1].line > 0);
    /* The unresolvable stack: locations without mapping or lines. */
    const dloc *nowhere = loc(&P, P.samples[2].locs[0]);
    assert_int_equal(nowhere->address, 0x10);
    assert_int_equal(nowhere->mapping, 0);
    assert_int_equal(nowhere->nlines, 0);
    /* Mappings: the main executable first, with its build-id. */
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n] = '\0';
    assert_true(P.nmaps >= 3);
    assert_int_equal(P.maps[0].id, 1);
    assert_string_equal(S(&P, P.maps[0].file), exe);
    assert_int_equal(strlen(S(&P, P.maps[0].build_id)), 40);
    /* Every located address lies in its mapping, and each mapping's flags
     * say exactly whether all of its locations were resolved. */
    for (int m = 0; m < P.nmaps; m++) {
        const dmap *mp = &P.maps[m];
        assert_true(mp->start < mp->limit);
        bool any = false, all_fn = true, all_fl = true, all_ln = true;
        for (int i = 0; i < P.nlocs; i++) {
            const dloc *l = &P.locs[i];
            if (l->mapping != mp->id)
                continue;
            any = true;
            assert_true(l->address >= mp->start && l->address < mp->limit);
            all_fn &= l->nlines > 0;
            all_fl &= l->nlines > 0;
            all_ln &= l->nlines > 0;
            for (int k = 0; k < l->nlines; k++) {
                const dfn *f = fn(&P, l->lines[k].fn);
                all_fn &= S(&P, f->name)[0] != '\0';
                all_fl &= S(&P, f->file)[0] != '\0';
                all_ln &= l->lines[k].line > 0;
            }
        }
        assert_int_equal(mp->fn, any && all_fn);
        assert_int_equal(mp->fl, any && all_fl);
        assert_int_equal(mp->ln, any && all_ln);
        assert_int_equal(mp->inl, mp->fn);
    }
    assert_true(P.maps[0].fn); /* everything in the test binary has a name */
    profile_free(&P);
}

static void test_allocs_view(void **state)
{
    (void)state;
    profile P;
    write_and_decode(&snap, true, &P);
    assert_string_equal(S(&P, P.default_type), "alloc_space");
    assert_int_equal(P.nsamples, 3);
    profile_free(&P);
}

static void test_empty_and_rate_one(void **state)
{
    (void)state;
    gcm__prof_snap empty = {NULL, 0, 1, 42};
    profile P;
    write_and_decode(&empty, false, &P);
    assert_int_equal(P.nsamples, 0);
    assert_int_equal(P.ntypes, 4);
    assert_int_equal(P.period, 1);
    profile_free(&P);
    /* At rate 1 the values are the counts themselves. */
    gcm__prof_snap one = {recs, 2, 1, 42};
    write_and_decode(&one, false, &P);
    assert_int_equal(P.samples[0].v[0], 10);
    assert_int_equal(P.samples[0].v[1], 640);
    assert_int_equal(P.samples[0].v[2], 6);
    assert_int_equal(P.samples[0].v[3], 384);
    profile_free(&P);
}

/* The sample of bucket b (by its stack), or NULL. */
static const dsample *sample_of(const profile *P, const gcm__bucket *b)
{
    for (int i = 0; i < P->nsamples; i++) {
        const dsample *d = &P->samples[i];
        if (d->nlocs != b->depth)
            continue;
        int k = 0;
        while (k < d->nlocs && loc(P, d->locs[k])->address == b->pcs[k] - 1)
            k++;
        if (k == d->nlocs)
            return d;
    }
    return NULL;
}

static void test_delta(void **state)
{
    (void)state;
    gcm__bucket *a = recs[0].b, *b = recs[1].b, *c = recs[2].b;
    uintptr_t fresh_pcs[2] = {0x31, 0x41};
    gcm__bucket *fresh = gcm__bucket_intern(fresh_pcs, 2, GCM_PROF_MALLOC, NULL);
    assert_non_null(fresh);
    /* p0: recs as in the other tests.  p1, three seconds later: a
     * allocated 5 more objects (320 bytes) and freed 8 (512), so it holds
     * 3 fewer than before; b did not change (dropped); c is gone (its
     * values negated); fresh is new. */
    gcm__prof_rec later[3] = {
        {fresh, {2, 64, 0, 0}},
        {a, {15, 960, 12, 768}},
        {b, {3, 3000, 0, 0}},
    };
    const int64_t t0 = 1700000000000000000, t1 = t0 + 3000000123;
    gcm__prof_snap p0 = {recs, 3, 1, t0}, p1 = {later, 3, 1, t1};
    profile P;
    write_and_decode_delta(&p1, &p0, false, &P);
    assert_int_equal(P.time, t1);
    assert_int_equal(P.duration, 3000000123);
    assert_int_equal(P.period, 1);
    assert_int_equal(P.ntypes, 4);
    assert_int_equal(P.nsamples, 3);
    assert_null(sample_of(&P, b)); /* all four values zero: dropped */
    /* At rate 1 the values are the counts: differences of the counts. */
    const dsample *da = sample_of(&P, a), *dc = sample_of(&P, c),
                  *df = sample_of(&P, fresh);
    assert_non_null(da);
    assert_non_null(dc);
    assert_non_null(df);
    static const int64_t want_a[4] = {5, 320, -3, -192}; /* in use 6 -> 3 */
    static const int64_t want_c[4] = {-1, -16, 0, 0};
    static const int64_t want_f[4] = {2, 64, 2, 64};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(da->v[k], want_a[k]);
        assert_int_equal(dc->v[k], want_c[k]);
        assert_int_equal(df->v[k], want_f[k]);
    }
    /* The bytes label: the window's average size (320 / 5). */
    assert_int_equal(label_num(&P, da, "bytes"), 64);
    assert_int_equal(label_num(&P, df, "bytes"), 32);
    assert_string_equal(label_str(&P, dc, "kind"), "malloc");
    profile_free(&P);

    /* Sampled: each end unbiased at its own rate, then subtracted. */
    p0.rate = 524288;
    p1.rate = 524288;
    write_and_decode_delta(&p1, &p0, true, &P);
    assert_string_equal(S(&P, P.default_type), "alloc_space");
    da = sample_of(&P, a);
    assert_non_null(da);
    uint64_t u0[4], u1[4];
    gcm__prof_unbias(10, 640, 524288, &u0[0], &u0[1]);
    gcm__prof_unbias(6, 384, 524288, &u0[2], &u0[3]);
    gcm__prof_unbias(15, 960, 524288, &u1[0], &u1[1]);
    gcm__prof_unbias(3, 192, 524288, &u1[2], &u1[3]);
    for (int k = 0; k < 4; k++)
        assert_int_equal(da->v[k], (int64_t)u1[k] - (int64_t)u0[k]);
    assert_true(da->v[2] < 0 && da->v[3] < 0);
    profile_free(&P);

    /* Nothing changed: no samples, but the header and the duration. */
    write_and_decode_delta(&p0, &p0, false, &P);
    assert_int_equal(P.nsamples, 0);
    assert_int_equal(P.ntypes, 4);
    assert_int_equal(P.duration, 0);
    profile_free(&P);
    /* No base: the absolute profile, without a duration. */
    write_and_decode(&p1, false, &P);
    assert_int_equal(P.nsamples, 3);
    assert_int_equal(P.duration, 0);
    profile_free(&P);
}

static void test_errors(void **state)
{
    (void)state;
    assert_int_equal(gcm__pprof_write_delta(-1, &snap, &snap, false), EBADF);
    assert_int_equal(gcm__pprof_write_delta(1, NULL, &snap, false), EINVAL);
    assert_int_equal(gcm__pprof_write(-1, &snap, false), EBADF);
    assert_int_equal(gcm__pprof_write(1, NULL, false), EINVAL);
    int fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        assert_int_equal(gcm__pprof_write(fd, &snap, false), ENOSPC);
        close(fd);
    }
}

static void test_fmt_bytes(void **state)
{
    (void)state;
    static const struct { uint64_t v; const char *s; } rows[] = {
        {0, "0B"}, {1023, "1023B"}, {1024, "1kB"}, {1536, "1.50kB"},
        {1048576, "1MB"}, {1572864, "1.50MB"}, {138022443, "131.63MB"},
        {(uint64_t)1 << 40, "1TB"}, {1100 * 1024, "1.07MB"},
        {208000, "203.12kB"}, /* 203.125: half to even, as Go prints it */
        {1023 * 1024 + 1013, "1023.99kB"}, {1048575, "1024kB"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char buf[32];
        gcm__fmt_bytes(buf, sizeof buf, rows[i].v);
        assert_string_equal(buf, rows[i].s);
    }
}

/* GCMALLOC_PROFILE_SYMBOLS: what each mode writes for the same stacks.
 * (DWARF is loaded already -- build_snapshot resolved in lines mode -- so
 * this checks what is written, not what is read: test_prof_symtab.c
 * checks that functions and none never read DWARF.) */
static void test_symbol_modes(void **state)
{
    (void)state;
    profile P;

    set_env_option("GCMALLOC_PROFILE_SYMBOLS", "functions", false);
    write_and_decode(&snap, false, &P);
    assert_string_equal(S(&P, P.comments[0]),
                        "gcmalloc symbols=functions: function names from symbol "
                        "tables; GCMALLOC_PROFILE_SYMBOLS=lines adds files, "
                        "lines and inlined frames");
    /* The leaf is named by the function it is in: the inlined helper is
     * not known without DWARF. */
    const dloc *leaf = loc(&P, P.samples[0].locs[0]);
    assert_int_equal(leaf->nlines, 1);
    const dfn *f = fn(&P, leaf->lines[0].fn);
    assert_string_equal(S(&P, f->name), "pp_site_a");
    assert_string_equal(S(&P, f->file), "");
    assert_int_equal(leaf->lines[0].line, 0);
    assert_string_equal(S(&P, fn(&P, loc(&P, P.samples[1].locs[0])->lines[0].fn)->name),
                        "pp_site_b");
    assert_true(P.maps[0].fn);
    for (int m = 0; m < P.nmaps; m++)
        assert_false(P.maps[m].fl || P.maps[m].ln || P.maps[m].inl);
    profile_free(&P);

    set_env_option("GCMALLOC_PROFILE_SYMBOLS", "none", false);
    write_and_decode(&snap, false, &P);
    assert_string_equal(S(&P, P.comments[0]),
                        "gcmalloc symbols=none: addresses and mappings with "
                        "build IDs only");
    assert_int_equal(P.nfns, 0);
    for (int i = 0; i < P.nlocs; i++)
        assert_int_equal(P.locs[i].nlines, 0);
    assert_true(P.locs[0].mapping != 0); /* still placed in its mapping */
    for (int m = 0; m < P.nmaps; m++)
        assert_false(P.maps[m].fn || P.maps[m].fl || P.maps[m].ln || P.maps[m].inl);
    assert_int_equal(strlen(S(&P, P.maps[0].build_id)), 40);
    profile_free(&P);

    set_env_option("GCMALLOC_PROFILE_SYMBOLS", "lines", false);
    write_and_decode(&snap, false, &P);
    assert_string_equal(S(&P, P.comments[0]),
                        "gcmalloc symbols=lines: functions, files, lines and "
                        "inlined frames from DWARF");
    assert_int_equal(loc(&P, P.samples[0].locs[0])->nlines, 2);
    assert_true(P.maps[0].fn && P.maps[0].inl); /* _start has no file */
    profile_free(&P);

    /* auto, once DWARF has been read (here by build_snapshot), is lines
     * whatever the run time: it costs nothing more. */
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", NULL, false);
    write_and_decode(&snap, false, &P);
    assert_int_equal(loc(&P, P.samples[0].locs[0])->nlines, 2);
    profile_free(&P);
}

/* Readers other than pprof show Function.name as written, so a C++
 * function's name must be readable there: demangled in `name` (as pprof
 * shows it by default), the symbol in `system_name`. */
static void test_cxx_names(void **state)
{
    (void)state;
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", "functions", false);
    gcm__bucket *b = cxx_site_bucket();
    gcm__prof_rec r = {b, {1, 64, 1, 64}};
    gcm__prof_snap one = {&r, 1, 1, 42};
    profile P;
    write_and_decode(&one, false, &P);
    const dfn *leaf = fn(&P, loc(&P, P.samples[0].locs[0])->lines[0].fn);
    assert_string_equal(S(&P, leaf->name), CXX_SITE_NAME);
    assert_string_equal(S(&P, leaf->sys), CXX_SITE_SYMBOL);
    /* C names are the same in both. */
    const dfn *caller = fn(&P, loc(&P, P.samples[0].locs[1])->lines[0].fn);
    assert_string_equal(S(&P, caller->name), "test_cxx_names");
    assert_int_equal(caller->name, caller->sys);
    profile_free(&P);
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", NULL, false);
}

/* string_table is `repeated string`: strict decoders (protoc, protobufjs)
 * reject a profile with one string that is not UTF-8.  Names and paths are
 * bytes, so the writer replaces each byte outside a well-formed sequence
 * with U+FFFD and keeps well-formed ones, multibyte included. */
static void test_strings_utf8(void **state)
{
    (void)state;
    static const char *const rows[][2] = {
        {"caf\xe9", "caf\xEF\xBF\xBD"},                        /* Latin-1 */
        {"pool-\xe2\x82\xac", "pool-\xe2\x82\xac"},             /* U+20AC, kept */
        {"\xf0\x9f\x90\x98!", "\xf0\x9f\x90\x98!"},             /* U+1F418, kept */
        {"a\xc0\xaf" "b", "a\xEF\xBF\xBD\xEF\xBF\xBD" "b"},     /* overlong '/' */
        {"\xed\xa0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* surrogate */
        {"x\xe2\x82", "x\xEF\xBF\xBD\xEF\xBF\xBD"},             /* truncated */
        {"\xf4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
    };
    enum { N = sizeof rows / sizeof rows[0] };
    gcm__prof_rec r[N];
    for (int i = 0; i < N; i++) {
        uintptr_t pcs[1] = {0x51 + 0x10 * (uintptr_t)i};
        r[i] = (gcm__prof_rec){gcm__bucket_intern(pcs, 1, GCM_PROF_POOL, rows[i][0]),
                               {1, 16, 1, 16}};
        assert_non_null(r[i].b);
    }
    gcm__prof_snap s = {r, N, 1, 42};
    profile P;
    write_and_decode(&s, false, &P);
    assert_int_equal(P.nsamples, N);
    for (int i = 0; i < N; i++)
        assert_string_equal(label_str(&P, &P.samples[i], "name"), rows[i][1]);
    profile_free(&P);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_samples_values_and_labels),
        cmocka_unit_test(test_locations_functions_mappings),
        cmocka_unit_test(test_allocs_view),
        cmocka_unit_test(test_empty_and_rate_one),
        cmocka_unit_test(test_delta),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_fmt_bytes),
        cmocka_unit_test(test_symbol_modes),
        cmocka_unit_test(test_cxx_names),
        cmocka_unit_test(test_strings_utf8),
    };
    return cmocka_run_group_tests(tests, build_snapshot, NULL);
}
