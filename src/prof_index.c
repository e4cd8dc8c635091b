/*
 * prof_index.c — the hash indexes the profile writers build per dump.
 *
 * Writing a profile (pprof.c) or a text report (prof_report.c) turns
 * thousands of stacks into tables of unique things: locations by return
 * address, functions by (name, file), strings by content, report nodes by
 * source line.  Each needs "have I seen this one?" in constant time, and
 * each is built once per dump and thrown away, so both shapes here are the
 * simplest that are fast: open addressing with linear probing, kept at
 * most half full, capacities powers of two, growing by rebuilding at twice
 * the size.  No deletion is ever needed.
 *
 *   - gcm__u64map: a non-zero 64-bit key to a 64-bit value (a return
 *     address to its location or its nodes; a pair of string ids to a
 *     function id).  Keys and values live in the table.
 *   - gcm__index_reserve: an index over an array the caller owns, whose
 *     entries are their own keys (strings, nodes).  A slot holds an entry
 *     number + 1, so zero is empty; the caller probes and compares, since
 *     only it knows what "equal" means, and this file only rebuilds, with
 *     the caller's hash of entry i.
 *
 * Memory comes from gcm__prof_alloc (mimalloc), never malloc: these run
 * inside the preload library, under the profiler's lock.
 */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"

static size_t slot64(uint64_t x, size_t cap)
{
    x *= 0x9E3779B97F4A7C15ULL;
    return (size_t)(x ^ (x >> 31)) & (cap - 1);
}

bool gcm__u64map_get(const gcm__u64map *m, uint64_t key, uint64_t *val)
{
    if (m->cap == 0)
        return false;
    for (size_t i = slot64(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->k[i] == key) {
            *val = m->v[i];
            return true;
        }
        if (m->k[i] == 0)
            return false;
    }
}

static bool u64map_grow(gcm__u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    if (cap > SIZE_MAX / 2 / sizeof(uint64_t))
        return false;
    uint64_t *k = gcm__prof_alloc(cap * sizeof *k);
    uint64_t *v = gcm__prof_alloc(cap * sizeof *v);
    if (k == NULL || v == NULL) {
        gcm__prof_dealloc(k);
        gcm__prof_dealloc(v);
        return false;
    }
    memset(k, 0, cap * sizeof *k);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->k[i] == 0)
            continue;
        size_t j = slot64(m->k[i], cap);
        while (k[j] != 0)
            j = (j + 1) & (cap - 1);
        k[j] = m->k[i];
        v[j] = m->v[i];
    }
    gcm__prof_dealloc(m->k);
    gcm__prof_dealloc(m->v);
    m->k = k;
    m->v = v;
    m->cap = cap;
    return true;
}

bool gcm__u64map_put(gcm__u64map *m, uint64_t key, uint64_t val)
{
    if ((m->n + 1) * 2 > m->cap && !u64map_grow(m))
        return false;
    size_t i = slot64(key, m->cap);
    while (m->k[i] != 0)
        i = (i + 1) & (m->cap - 1);
    m->k[i] = key;
    m->v[i] = val;
    m->n++;
    return true;
}

void gcm__u64map_free(gcm__u64map *m)
{
    gcm__prof_dealloc(m->k);
    gcm__prof_dealloc(m->v);
    memset(m, 0, sizeof *m);
}

bool gcm__index_reserve(uint32_t **tab, size_t *cap, size_t n, size_t min_cap,
                        gcm__index_hash hash, const void *ctx)
{
    if ((n + 1) * 2 <= *cap)
        return true;
    size_t c = *cap ? *cap * 2 : min_cap;
    /* Slots hold entry numbers + 1 in 32 bits. */
    if (c > (size_t)UINT32_MAX || c > SIZE_MAX / sizeof(uint32_t))
        return false;
    uint32_t *t = gcm__prof_alloc(c * sizeof *t);
    if (t == NULL)
        return false;
    memset(t, 0, c * sizeof *t);
    for (size_t i = 0; i < n; i++) {
        size_t j = (size_t)hash(ctx, i) & (c - 1);
        while (t[j] != 0)
            j = (j + 1) & (c - 1);
        t[j] = (uint32_t)i + 1;
    }
    gcm__prof_dealloc(*tab);
    *tab = t;
    *cap = c;
    return true;
}
