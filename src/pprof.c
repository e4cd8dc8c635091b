/*
 * pprof.c — writing a snapshot as Go's heap profile: gzipped profile.proto.
 *
 * The message layout (github.com/google/pprof proto/profile.proto):
 *
 *   Profile  1 sample_type (ValueType)   2 sample   3 mapping   4 location
 *            5 function   6 string_table   9 time_nanos   10 duration_nanos
 *            11 period_type   12 period   13 comment   14 default_sample_type
 *   Sample   1 location_id (packed)   2 value (packed)   3 label
 *   Label    1 key   2 str   3 num
 *   Mapping  1 id  2 memory_start  3 memory_limit  4 file_offset  5 filename
 *            6 build_id  7 has_functions  8 has_filenames
 *            9 has_line_numbers  10 has_inline_frames
 *   Location 1 id  2 mapping_id  3 address  4 line (Line: 1 function_id 2 line)
 *   Function 1 id  2 name  3 system_name  4 filename  5 start_line
 *
 * What Go's heap profile holds, and so ours: four sample types in the
 * order alloc_objects/count, alloc_space/bytes, inuse_objects/count,
 * inuse_space/bytes; period_type space/bytes and period = the sampling
 * rate; each value unbiased by Go's scaleHeapSample; a numeric label
 * `bytes` (the average object size); string_table[0] = ""; location
 * addresses = return address − 1; the main executable's mapping first.
 * We add string labels kind=gc|arena|pool|buf|malloc and name=<arena or
 * pool name>, so `pprof -tagfocus` splits the paths.  The "allocs" view is
 * the same data with default_sample_type = alloc_space.  One comment says
 * how the addresses were named (GCMALLOC_PROFILE_SYMBOLS, prof_symbol.c);
 * a mapping's has_* flags say what was found for every location in it.
 * A C++ function's name is demangled, its system_name the mangled symbol
 * (prof_demangle.c: readers other than pprof show `name` as it is).
 *
 * Delta profiles (gcm__pprof_write_delta, for the endpoint's ?seconds=N):
 * the same writer given a base snapshot taken N seconds earlier writes,
 * per sample, the later unbiased values minus the earlier ones -- what Go's
 * net/http/pprof serves, p1 merged with p0 scaled by -1.  In-use values
 * may be negative, samples that did not change are left out, time_nanos is
 * the later snapshot's and duration_nanos the distance between the two.
 * Without a base the output is the absolute profile, field for field.
 *
 * The encoder is a few dozen lines written here rather than a protobuf
 * library: a profile is written under the profiler's lock, inside a
 * process whose malloc may be gcmalloc's own preloaded one, from a signal
 * helper or an exit handler.  Everything here allocates from mimalloc
 * (gcm__prof_alloc) — the tables, the scratch buffers and zlib's state
 * (custom zalloc/zfree) — and writes with write(2).  Messages are
 * length-prefixed, so each one is built in a scratch buffer and then
 * streamed through deflate; the string table is written last, once every
 * string has its index (protobuf allows fields in any order).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "internal.h"

/* --- growable byte buffer and protobuf wire format --------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} buf;

static bool reserve(buf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = gcm__prof_realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void put_raw(buf *b, const void *d, size_t n)
{
    if (n == 0 || !reserve(b, n))
        return;
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(buf *b, uint64_t v)
{
    if (!reserve(b, 10))
        return;
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

enum { WT_VARINT = 0, WT_LEN = 2 };

static void put_tag(buf *b, int field, int wt)
{
    put_varint(b, ((uint64_t)field << 3) | (uint64_t)wt);
}

/* proto3 scalars: zero is the default and is not written. */
static void put_u64(buf *b, int field, uint64_t v)
{
    if (v == 0)
        return;
    put_tag(b, field, WT_VARINT);
    put_varint(b, v);
}

static void put_i64(buf *b, int field, int64_t v)
{
    put_u64(b, field, (uint64_t)v);
}

static void put_bytes(buf *b, int field, const void *d, size_t n)
{
    put_tag(b, field, WT_LEN);
    put_varint(b, n);
    put_raw(b, d, n);
}

static void put_packed(buf *b, int field, const uint64_t *v, size_t n)
{
    if (n == 0)
        return;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += varint_len(v[i]);
    put_tag(b, field, WT_LEN);
    put_varint(b, len);
    for (size_t i = 0; i < n; i++)
        put_varint(b, v[i]);
}

static void put_msg(buf *b, int field, const buf *m)
{
    put_bytes(b, field, m->p, m->len);
}

/* --- the gzip stream ----------------------------------------------------------------- */

#define GZ_OUT (64 * 1024)

typedef struct gz {
    z_stream z;
    int fd;
    int err;          /* errno value of the first failure */
    bool open;
    uint8_t *out;
} gz;

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return gcm__prof_alloc((size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    gcm__prof_dealloc(p);
}

static void gz_drain(gz *g)
{
    size_t have = GZ_OUT - g->z.avail_out;
    if (have > 0 && g->err == 0 && gcm__write_all(g->fd, (const char *)g->out, have) != 0)
        g->err = errno ? errno : EIO;
    g->z.next_out = g->out;
    g->z.avail_out = GZ_OUT;
}

static int gz_open(gz *g, int fd)
{
    memset(g, 0, sizeof *g);
    g->fd = fd;
    g->out = gcm__prof_alloc(GZ_OUT);
    if (g->out == NULL)
        return ENOMEM;
    g->z.zalloc = z_alloc;
    g->z.zfree = z_free;
    /* windowBits 15 + 16: a gzip header and trailer, as pprof expects. */
    if (deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        gcm__prof_dealloc(g->out);
        return ENOMEM;
    }
    g->open = true;
    g->z.next_out = g->out;
    g->z.avail_out = GZ_OUT;
    return 0;
}

static void gz_write(gz *g, const void *d, size_t n)
{
    g->z.next_in = (Bytef *)d;
    g->z.avail_in = (uInt)n;
    while (g->z.avail_in > 0 && g->err == 0) {
        if (deflate(&g->z, Z_NO_FLUSH) == Z_STREAM_ERROR) {
            g->err = EIO;
            break;
        }
        if (g->z.avail_out == 0)
            gz_drain(g);
    }
}

static int gz_close(gz *g)
{
    if (!g->open)
        return g->err;
    g->z.next_in = NULL;
    g->z.avail_in = 0;
    while (g->err == 0) {
        int rc = deflate(&g->z, Z_FINISH);
        if (rc == Z_STREAM_ERROR) {
            g->err = EIO;
            break;
        }
        if (rc == Z_STREAM_END || g->z.avail_out == 0)
            gz_drain(g);
        if (rc == Z_STREAM_END)
            break;
    }
    deflateEnd(&g->z);
    gcm__prof_dealloc(g->out);
    g->open = false;
    return g->err;
}

/* --- the builder ----------------------------------------------------------------------- */

typedef struct pline {
    uint32_t function; /* 1-based id */
    int64_t line;
} pline;

typedef struct ploc {
    uintptr_t pc;      /* return address */
    uint32_t mapping;  /* 1-based id, 0 = none */
    uint32_t line0, nlines;
} ploc;

typedef struct pfunc {
    int64_t name, sys, file; /* sys: the name as the symbol says it */
} pfunc;

typedef struct pmap {
    bool used, all_func, all_file, all_line;
} pmap;

typedef struct builder {
    bool oom;
    /* strings: pointers to text that outlives the write; looked up by s as
     * given, written as out (s made well-formed UTF-8) */
    struct pstr {
        const char *s;
        size_t len;
        const char *out;
        size_t outlen;
    } *str;
    size_t nstr, capstr;
    uint32_t *sht;     /* hash table of string indices + 1 */
    size_t shtcap;
    /* locations, lines, functions */
    ploc *loc;
    size_t nloc, caploc;
    pline *line;
    size_t nline, capline;
    pfunc *fn;
    size_t nfn, capfn;
    gcm__u64map locmap, fnmap;
    char **owned;      /* strings the builder made: demangled, made UTF-8 */
    size_t nowned, capowned;
    gcm__mapping *maps;
    pmap *mflags;
    int nmaps;
    gcm__sym_mode mode; /* how addresses are named, for the whole profile */
} builder;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3ULL;
    return h;
}

static uint64_t str_hash(const void *ctx, size_t i)
{
    const builder *B = ctx;
    return hash_bytes(B->str[i].s, B->str[i].len);
}

/* The length of the well-formed UTF-8 sequence at s (at most n bytes),
 * or 0: the rules of Unicode's table 3-7, which protobuf's validators
 * apply (no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* n bytes the builder keeps until it is freed (a string it made), or NULL
 * when memory is short. */
static char *owned_alloc(builder *B, size_t n)
{
    char *p = gcm__prof_alloc(n);
    if (p == NULL ||
        !gcm__prof_grow((void **)&B->owned, &B->capowned, B->nowned + 1, sizeof *B->owned)) {
        gcm__prof_dealloc(p);
        return NULL;
    }
    B->owned[B->nowned++] = p;
    return p;
}

/* s, or, when it is not well-formed UTF-8, a copy with each byte that is
 * not part of a well-formed sequence replaced by U+FFFD.  string_table
 * is `repeated string`: protoc, protobufjs and other strict proto3
 * decoders reject a whole profile over one string that is not UTF-8
 * (pprof itself does not check), and paths are bytes: a program in a
 * directory named in Latin-1 made every profile of it unreadable there.
 * NULL when memory is short. */
static const char *valid_utf8(builder *B, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), bad = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        bad += k == 0;
        i += k ? k : 1;
    }
    if (bad == 0)
        return s;
    char *copy = owned_alloc(B, n + 2 * bad + 1);
    if (copy == NULL)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0) {
            memcpy(copy + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i++;
        } else {
            memcpy(copy + w, s + i, k);
            w += k;
            i += k;
        }
    }
    copy[w] = '\0';
    return copy;
}

/* The string table index of s (NULL and "" are 0), written as well-formed
 * UTF-8.  Checked once per distinct string, when it is added: every
 * sample looks its strings up again. */
static int64_t str_id(builder *B, const char *s)
{
    if (B->oom)
        return 0;
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if (!gcm__index_reserve(&B->sht, &B->shtcap, B->nstr, 1024, str_hash, B)) {
        B->oom = true;
        return 0;
    }
    size_t j = (size_t)hash_bytes(s, n) & (B->shtcap - 1);
    for (; B->sht[j] != 0; j = (j + 1) & (B->shtcap - 1)) {
        uint32_t i = B->sht[j] - 1;
        if (B->str[i].len == n && memcmp(B->str[i].s, s, n) == 0)
            return i;
    }
    const char *out = valid_utf8(B, s);
    if (out == NULL ||
        !gcm__prof_grow((void **)&B->str, &B->capstr, B->nstr + 1, sizeof *B->str)) {
        B->oom = true;
        return 0;
    }
    B->str[B->nstr].s = s;
    B->str[B->nstr].len = n;
    B->str[B->nstr].out = out;
    B->str[B->nstr].outlen = out == s ? n : strlen(out);
    B->sht[j] = (uint32_t)B->nstr + 1;
    return (int64_t)B->nstr++;
}

/* The string index of name as people read it: a C++ mangled name
 * demangled (prof_demangle.c says why and in which form), any other as it
 * is. */
static int64_t display_name_id(builder *B, const char *name, int64_t sys)
{
    char tmp[512];
    size_t n = gcm__demangle(name, tmp, sizeof tmp);
    if (n == 0 || B->oom)
        return sys;
    char *copy = owned_alloc(B, n + 1);
    if (copy == NULL) {
        B->oom = true;
        return 0;
    }
    memcpy(copy, tmp, n + 1);
    return str_id(B, copy);
}

/* One function per (symbol name, file): overloads that demangle to the
 * same name stay apart, as pprof keeps them (by system_name). */
static uint32_t func_id(builder *B, const char *name, const char *file)
{
    int64_t n = str_id(B, name), f = str_id(B, file);
    uint64_t key = ((uint64_t)n << 32 | (uint64_t)f) + 1;
    uint64_t id;
    if (gcm__u64map_get(&B->fnmap, key, &id))
        return (uint32_t)id;
    id = B->nfn + 1;
    if (B->oom || !gcm__u64map_put(&B->fnmap, key, id) ||
        !gcm__prof_grow((void **)&B->fn, &B->capfn, B->nfn + 1, sizeof *B->fn)) {
        B->oom = true;
        return 0;
    }
    B->fn[B->nfn].name = display_name_id(B, name, n);
    B->fn[B->nfn].sys = n;
    B->fn[B->nfn].file = f;
    B->nfn++;
    return (uint32_t)id;
}

static uint32_t mapping_of(const builder *B, uintptr_t addr)
{
    for (int i = 0; i < B->nmaps; i++)
        if (addr >= B->maps[i].start && addr < B->maps[i].limit)
            return (uint32_t)i + 1;
    return 0;
}

#define MAX_INLINE 16

/* The location id of return address pc, symbolized on first sight. */
static uint32_t loc_id(builder *B, uintptr_t pc)
{
    uint64_t id;
    if (gcm__u64map_get(&B->locmap, (uint64_t)pc, &id))
        return (uint32_t)id;
    id = B->nloc + 1;
    if (B->oom || !gcm__u64map_put(&B->locmap, (uint64_t)pc, id) ||
        !gcm__prof_grow((void **)&B->loc, &B->caploc, B->nloc + 1, sizeof *B->loc)) {
        B->oom = true;
        return 0;
    }
    ploc *l = &B->loc[B->nloc++];
    l->pc = pc;
    uintptr_t addr = pc - 1; /* inside the call instruction */
    l->mapping = mapping_of(B, addr);
    l->line0 = (uint32_t)B->nline;
    l->nlines = 0;
    gcm__sym_frame fr[MAX_INLINE];
    int n = gcm__sym_resolve(B->mode, addr, fr, MAX_INLINE);
    bool func = n > 0, file = n > 0, line = n > 0;
    for (int i = 0; i < n; i++) {
        if (!gcm__prof_grow((void **)&B->line, &B->capline, B->nline + 1, sizeof *B->line)) {
            B->oom = true;
            return 0;
        }
        func &= fr[i].function != NULL;
        file &= fr[i].file != NULL;
        line &= fr[i].line > 0;
        B->line[B->nline].function = func_id(B, fr[i].function, fr[i].file);
        B->line[B->nline].line = fr[i].line;
        B->nline++;
        l->nlines++;
    }
    if (l->mapping != 0) {
        pmap *m = &B->mflags[l->mapping - 1];
        if (!m->used) {
            m->used = true;
            m->all_func = m->all_file = m->all_line = true;
        }
        m->all_func &= func;
        m->all_file &= file;
        m->all_line &= line;
    }
    return (uint32_t)id;
}

static void builder_free(builder *B)
{
    gcm__prof_dealloc(B->str);
    gcm__prof_dealloc(B->sht);
    gcm__prof_dealloc(B->loc);
    gcm__prof_dealloc(B->line);
    gcm__prof_dealloc(B->fn);
    gcm__prof_dealloc(B->maps);
    gcm__prof_dealloc(B->mflags);
    for (size_t i = 0; i < B->nowned; i++)
        gcm__prof_dealloc(B->owned[i]);
    gcm__prof_dealloc(B->owned);
    gcm__u64map_free(&B->locmap);
    gcm__u64map_free(&B->fnmap);
}

/* --- writing ------------------------------------------------------------------------------ */

/* Streams the accumulated top-level bytes through the compressor. */
static void flush_top(gz *g, buf *top, bool force)
{
    if (top->len > 0 && (force || top->len >= GZ_OUT)) {
        gz_write(g, top->p, top->len);
        top->len = 0;
    }
}

static void value_type(buf *top, buf *m, int field, int64_t type, int64_t unit)
{
    m->len = 0;
    put_i64(m, 1, type);
    put_i64(m, 2, unit);
    put_msg(top, field, m);
}

static void label(buf *sample, buf *m, int64_t key, int64_t str, int64_t num)
{
    m->len = 0;
    put_i64(m, 1, key);
    put_i64(m, 2, str);
    put_i64(m, 3, num);
    put_msg(sample, 3, m);
}

/* What one sample needs beyond its values. */
typedef struct sample_ctx {
    builder *B;
    gz *g;
    buf *top, *m, *m2;
    uint64_t *ids;
    int64_t s_bytes, s_kind, s_name;
} sample_ctx;

/* Writes one Sample: bucket b's stack and labels, values v (int64 in
 * profile.proto: a negative delta goes out as its two's complement, ten
 * bytes, which is how protobuf encodes a negative int64), and the `bytes`
 * label avg (0: none). */
static void put_sample(sample_ctx *x, const gcm__bucket *b, const uint64_t v[4],
                       uint64_t avg)
{
    builder *B = x->B;
    int skip = gcm__sym_api_frames(B->mode, b->pcs, b->depth);
    for (int d = skip; d < b->depth; d++)
        x->ids[d - skip] = loc_id(B, b->pcs[d]);
    buf *m = x->m;
    m->len = 0;
    put_packed(m, 1, x->ids, (size_t)(b->depth - skip));
    put_packed(m, 2, v, 4);
    if (avg != 0)
        label(m, x->m2, x->s_bytes, 0, (int64_t)avg);
    label(m, x->m2, x->s_kind, str_id(B, gcm__prof_kind_name(b->kind)), 0);
    if (b->name != NULL)
        label(m, x->m2, x->s_name, str_id(B, b->name), 0);
    put_msg(x->top, 2, m);
    flush_top(x->g, x->top, false);
}

/* The average object size of counts c, or 0. */
static uint64_t avg_size(const gcm__prof_counts *c)
{
    return c->allocs != 0 ? c->alloc_bytes / c->allocs : 0;
}

/* The delta samples: s minus base, record by record (Go's serveDeltaProfile:
 * p0 scaled by -1 and merged with p1).  Buckets are permanent and unique
 * per (stack, kind, name), so a bucket pointer names the same sample in
 * both snapshots and matching is a map lookup -- what pprof's Merge does by
 * comparing stacks and labels.  Values are differences of unbiased values,
 * each snapshot unbiased at its own rate (Go's profiles carry values
 * already scaled); in-use ones may be negative (more freed than allocated
 * in the window).  A sample whose four differences are zero is dropped
 * (Merge's isZeroSample).  A base record missing from s (published counts
 * can step back once, when the first cycle's publication replaces the
 * pending counts shown before it) is written with its values negated.
 * The `bytes` label is the window's average size when it allocated, the
 * later snapshot's otherwise.  false when memory is short. */
static bool put_delta_samples(sample_ctx *x, const gcm__prof_snap *s,
                              const gcm__prof_snap *base)
{
    builder *B = x->B;
    gcm__u64map idx = {0};
    bool *seen = NULL;
    if (base->n > 0) {
        seen = gcm__prof_alloc(base->n * sizeof *seen);
        if (seen == NULL)
            return false;
        memset(seen, 0, base->n * sizeof *seen);
    }
    for (size_t i = 0; i < base->n; i++) {
        if (!gcm__u64map_put(&idx, (uint64_t)(uintptr_t)base->recs[i].b, i)) {
            gcm__u64map_free(&idx);
            gcm__prof_dealloc(seen);
            return false;
        }
    }
    for (size_t i = 0; i < s->n && !B->oom; i++) {
        const gcm__prof_rec *r = &s->recs[i];
        uint64_t v[4], v0[4] = {0, 0, 0, 0}, j;
        gcm__prof_counts win = r->c;
        gcm__prof_values(&r->c, s->rate, v);
        if (gcm__u64map_get(&idx, (uint64_t)(uintptr_t)r->b, &j)) {
            const gcm__prof_counts *c0 = &base->recs[j].c;
            seen[j] = true;
            gcm__prof_values(c0, base->rate, v0);
            win.allocs = r->c.allocs > c0->allocs ? r->c.allocs - c0->allocs : 0;
            win.alloc_bytes = r->c.alloc_bytes > c0->alloc_bytes
                                  ? r->c.alloc_bytes - c0->alloc_bytes : 0;
        }
        /* Unsigned subtraction wraps to the two's complement of a
         * negative difference: exactly the int64 profile.proto wants. */
        for (int k = 0; k < 4; k++)
            v[k] -= v0[k];
        if ((v[0] | v[1] | v[2] | v[3]) == 0)
            continue;
        uint64_t avg = avg_size(&win);
        put_sample(x, r->b, v, avg != 0 ? avg : avg_size(&r->c));
    }
    for (size_t j = 0; j < base->n && !B->oom; j++) {
        if (seen[j])
            continue;
        const gcm__prof_rec *r = &base->recs[j];
        uint64_t v[4];
        gcm__prof_values(&r->c, base->rate, v);
        if ((v[0] | v[1] | v[2] | v[3]) == 0)
            continue;
        for (int k = 0; k < 4; k++)
            v[k] = 0 - v[k];
        put_sample(x, r->b, v, avg_size(&r->c));
    }
    gcm__u64map_free(&idx);
    gcm__prof_dealloc(seen);
    return true;
}

/* The profile's comment (`pprof -comments`, and `-raw`): which
 * GCMALLOC_PROFILE_SYMBOLS mode named the addresses, so a reader missing
 * files and lines learns why and what to set. */
static void symbols_comment(gcm__sym_mode mode, char *out, size_t cap)
{
    const char *why = gcm__opt_int(GCM_OPT_PROFILE_SYMBOLS) == GCM_SYM_AUTO
                          ? " (auto: the process had run less than 1s)" : "";
    switch (mode) {
    case GCM_SYM_LINES:
        gcm__fmt(out, cap, "gcmalloc symbols=lines: functions, files, lines "
                           "and inlined frames from DWARF");
        return;
    case GCM_SYM_FUNCTIONS:
        gcm__fmt(out, cap, "gcmalloc symbols=functions%s: function names from "
                           "symbol tables; GCMALLOC_PROFILE_SYMBOLS=lines adds "
                           "files, lines and inlined frames", why);
        return;
    default:
        gcm__fmt(out, cap, "gcmalloc symbols=none: addresses and mappings with "
                           "build IDs only");
        return;
    }
}

int gcm__pprof_write(int fd, const gcm__prof_snap *s, bool allocs)
{
    return gcm__pprof_write_delta(fd, s, NULL, allocs);
}

int gcm__pprof_write_delta(int fd, const gcm__prof_snap *s,
                           const gcm__prof_snap *base, bool allocs)
{
    if (s == NULL)
        return EINVAL;
    if (fd < 0)
        return EBADF;
    builder B;
    memset(&B, 0, sizeof B);
    buf top = {0}, m = {0}, m2 = {0};
    uint64_t *ids = NULL;
    gz g;
    int rc = gz_open(&g, fd);
    if (rc != 0)
        return rc;

    str_id(&B, ""); /* string_table[0] */
    B.mode = gcm__sym_mode_now();
    B.nmaps = gcm__mappings_read(&B.maps);
    if (B.nmaps < 0) {
        B.nmaps = 0;
        B.oom = true;
    }
    B.mflags = gcm__prof_alloc(((size_t)B.nmaps + 1) * sizeof *B.mflags);
    if (B.mflags == NULL)
        B.oom = true;
    else
        memset(B.mflags, 0, ((size_t)B.nmaps + 1) * sizeof *B.mflags);
    ids = gcm__prof_alloc(GCM_PROF_MAX_DEPTH * sizeof *ids);
    if (ids == NULL)
        B.oom = true;

    int64_t s_alloc_objects = str_id(&B, "alloc_objects");
    int64_t s_count = str_id(&B, "count");
    int64_t s_alloc_space = str_id(&B, "alloc_space");
    int64_t s_bytes = str_id(&B, "bytes");
    int64_t s_inuse_objects = str_id(&B, "inuse_objects");
    int64_t s_inuse_space = str_id(&B, "inuse_space");
    int64_t s_space = str_id(&B, "space");
    int64_t s_kind = str_id(&B, "kind");
    int64_t s_name = str_id(&B, "name");

    value_type(&top, &m, 1, s_alloc_objects, s_count);
    value_type(&top, &m, 1, s_alloc_space, s_bytes);
    value_type(&top, &m, 1, s_inuse_objects, s_count);
    value_type(&top, &m, 1, s_inuse_space, s_bytes);

    /* Samples: one per bucket with data (with a base: with a change). */
    sample_ctx x = {&B, &g, &top, &m, &m2, ids, s_bytes, s_kind, s_name};
    if (base != NULL) {
        if (!B.oom && !put_delta_samples(&x, s, base))
            B.oom = true;
    } else {
        for (size_t i = 0; i < s->n && !B.oom; i++) {
            const gcm__prof_rec *r = &s->recs[i];
            uint64_t v[4];
            gcm__prof_values(&r->c, s->rate, v);
            put_sample(&x, r->b, v, avg_size(&r->c));
        }
    }

    /* Mappings, main executable first, with what symbolization found. */
    for (int i = 0; i < B.nmaps && !B.oom; i++) {
        const gcm__mapping *mp = &B.maps[i];
        const pmap *f = &B.mflags[i];
        m.len = 0;
        put_u64(&m, 1, (uint64_t)i + 1);
        put_u64(&m, 2, mp->start);
        put_u64(&m, 3, mp->limit);
        put_u64(&m, 4, mp->offset);
        put_i64(&m, 5, str_id(&B, mp->path));
        put_i64(&m, 6, str_id(&B, mp->build_id));
        bool fn = f->used && f->all_func;
        put_u64(&m, 7, fn);
        put_u64(&m, 8, f->used && f->all_file);
        put_u64(&m, 9, f->used && f->all_line);
        put_u64(&m, 10, fn && B.mode == GCM_SYM_LINES); /* only DWARF knows */
        put_msg(&top, 3, &m);
        flush_top(&g, &top, false);
    }

    /* Locations. */
    for (size_t i = 0; i < B.nloc && !B.oom; i++) {
        const ploc *l = &B.loc[i];
        m.len = 0;
        put_u64(&m, 1, (uint64_t)i + 1);
        put_u64(&m, 2, l->mapping);
        put_u64(&m, 3, (uint64_t)(l->pc - 1));
        for (uint32_t k = 0; k < l->nlines; k++) {
            const pline *ln = &B.line[l->line0 + k];
            m2.len = 0;
            put_u64(&m2, 1, ln->function);
            put_i64(&m2, 2, ln->line);
            put_msg(&m, 4, &m2);
        }
        put_msg(&top, 4, &m);
        flush_top(&g, &top, false);
    }

    /* Functions. */
    for (size_t i = 0; i < B.nfn && !B.oom; i++) {
        m.len = 0;
        put_u64(&m, 1, (uint64_t)i + 1);
        put_i64(&m, 2, B.fn[i].name);
        put_i64(&m, 3, B.fn[i].sys);
        put_i64(&m, 4, B.fn[i].file);
        put_msg(&top, 5, &m);
        flush_top(&g, &top, false);
    }

    put_i64(&top, 9, s->time_ns);
    if (base != NULL) /* duration_nanos: the window the delta covers */
        put_i64(&top, 10, s->time_ns - base->time_ns);
    value_type(&top, &m, 11, s_space, s_bytes);
    put_i64(&top, 12, s->rate);
    /* comment: how the addresses were named, and how to get more. */
    char comment[200];
    symbols_comment(B.mode, comment, sizeof comment);
    put_i64(&top, 13, str_id(&B, comment));
    if (allocs)
        put_i64(&top, 14, s_alloc_space);
    /* The string table, now complete. */
    for (size_t i = 0; i < B.nstr && !B.oom; i++) {
        put_bytes(&top, 6, B.str[i].out, B.str[i].outlen);
        flush_top(&g, &top, false);
    }
    (void)s_inuse_space;

    if (B.oom || top.oom || m.oom || m2.oom)
        rc = ENOMEM;
    else
        flush_top(&g, &top, true);
    int zrc = gz_close(&g);
    if (rc == 0)
        rc = zrc;
    gcm__prof_dealloc(top.p);
    gcm__prof_dealloc(m.p);
    gcm__prof_dealloc(m2.p);
    gcm__prof_dealloc(ids);
    builder_free(&B);
    return rc;
}

/* --- sizes as pprof prints them ------------------------------------------------------ */

size_t gcm__fmt_bytes(char *out, size_t cap, uint64_t v)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    int u = 0;
    uint64_t div = 1;
    while (u < 5 && v / div >= 1024) {
        div *= 1024;
        u++;
    }
    if (u == 0)
        return gcm__fmt(out, cap, "%lluB", (unsigned long long)v);
    /* Two decimals, rounded half to even as Go's %.2f does, then a
     * trailing ".00" dropped (pprof's ScaledLabel). */
    __uint128_t x = (__uint128_t)v * 100;
    unsigned long long hundredths = (unsigned long long)(x / div);
    uint64_t rem = (uint64_t)(x % div);
    if (2 * rem > div || (2 * rem == div && (hundredths & 1)))
        hundredths++;
    unsigned long long whole = hundredths / 100, frac = hundredths % 100;
    if (frac == 0)
        return gcm__fmt(out, cap, "%llu%s", whole, units[u]);
    return gcm__fmt(out, cap, "%llu.%02llu%s", whole, frac, units[u]);
}
