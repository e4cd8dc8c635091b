/*
 * session.c — the session cache: 4,096 sessions per worker, four-way set
 * associative, least recently used out.  90% of requests come from 3,000
 * hot sessions, which stay; the other 10% are a long tail, each a miss that
 * makes a session and evicts one — so the cache turns over all the time,
 * as a real one does, and a session's memory has a lifetime of its own,
 * longer than a request's and shorter than the program's.
 *
 * A session owns three allocations: its user name, its last path (replaced
 * by every request) and a 512-byte activity log.  Eviction hands it to the
 * strategy (demo_strategy_session_drop), which releases what it owns — or,
 * in one build, forgets to (strategy_malloc.c).
 *
 * The table is a global array: the collector scans the program's data, so
 * sessions on the collected heap stay alive while the cache points at them,
 * and the leak checker sees what is still reachable.
 */
#include <string.h>

#include "sim.h"
#include "mem.h"

struct slot {
    uint64_t id;
    uint64_t stamp; /* last use; the smallest in a set is evicted */
    struct session *s;
};

static struct slot cache[DEMO_MAX_WORKERS][DEMO_CACHE_SETS][DEMO_CACHE_WAYS];
static uint64_t clock_of[DEMO_MAX_WORKERS];

static size_t set_of(uint64_t id)
{
    id ^= id >> 31;
    id *= 0x7fb5d329728ea185ull;
    id ^= id >> 27;
    return (size_t)(id % DEMO_CACHE_SETS);
}

static struct session *session_new(struct worker *w, uint64_t id)
{
    struct session *s = MEM_SES_NEW(w);
    if (s == NULL)
        return NULL;
    s->id = id;
    char name[32];
    memcpy(name, "user-", 5);
    size_t n = 5 + demo_fmt_u64(name + 5, id % 100000);
    name[n] = '\0';
    s->user = MEM_SES_BYTES(w, n + 1);
    s->activity = MEM_SES_BYTES(w, DEMO_ACTIVITY);
    if (s->user == NULL || s->activity == NULL) {
        demo_strategy_session_drop(w, s);
        return NULL;
    }
    memcpy(s->user, name, n + 1);
    return s;
}

struct session *demo_session_get(struct worker *w, uint64_t id, int *is_new)
{
    struct slot *set = cache[w->id][set_of(id)];
    uint64_t now = ++clock_of[w->id];
    struct slot *victim = NULL;
    for (int i = 0; i < DEMO_CACHE_WAYS; i++) {
        if (set[i].s != NULL && set[i].id == id) {
            set[i].stamp = now;
            w->session_hits++;
            *is_new = 0;
            return set[i].s;
        }
        if (victim == NULL || (victim->s != NULL &&
                               (set[i].s == NULL || set[i].stamp < victim->stamp)))
            victim = &set[i];
    }
    w->session_misses++;
    if (victim->s != NULL) {
        struct session *old = victim->s;
        victim->s = NULL;
        demo_strategy_session_drop(w, old);
    }
    struct session *s = session_new(w, id);
    if (s == NULL)
        return NULL;
    *victim = (struct slot){.id = id, .stamp = now, .s = s};
    *is_new = 1;
    return s;
}

int demo_session_touch(struct worker *w, struct session *s, uint64_t n, const char *path)
{
    size_t len = strlen(path);
    char *p = MEM_SES_BYTES(w, len + 1);
    if (p == NULL)
        return -1;
    memcpy(p, path, len + 1);
    MEM_SES_FREE_BYTES(w, s->last_path);
    s->last_path = p;
    s->visits++;
    s->last_seen = n;
    /* "<n>:<path>;" at the end of the log, which starts over when full. */
    char rec[96];
    size_t k = demo_fmt_u64(rec, n);
    rec[k++] = ':';
    size_t pl = len < 64 ? len : 64;
    memcpy(rec + k, path, pl);
    k += pl;
    rec[k++] = ';';
    if (s->act_len + k > DEMO_ACTIVITY)
        s->act_len = 0;
    memcpy(s->activity + s->act_len, rec, k);
    s->act_len += (uint32_t)k;
    return 0;
}
