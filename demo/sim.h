/*
 * sim.h — the request-handling simulation the demo runs under each memory
 * strategy.
 *
 * One program, four builds.  request.c and session.c hold the server's
 * logic — receive a request, parse it, keep a session cache, build a
 * response — written once.  Where they need memory they use the macros of
 * mem.h, which each build binds to one strategy (mem_malloc.h, mem_gc.h,
 * mem_arena.h, mem_pool.h), and the rest of a strategy (what happens when a
 * request ends, when a session is evicted) lives in strategy_<name>.c.  So
 * the four servers do the same work, byte for byte — the driver checks
 * that their responses agree — and differ only in where memory comes from.
 *
 * Macros rather than function pointers, so that each allocation is made
 * by the function that needs it: a heap profile then names parse_headers
 * or session_new as the allocation site, not a wrapper every site shares.
 *
 * Workers share nothing: each has its own request stream (seeded by its
 * number) and its own shard of the session cache, so each run is
 * deterministic whatever the thread interleaving.
 */
#ifndef GCM_DEMO_SIM_H
#define GCM_DEMO_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "latency.h"

#define DEMO_MAX_WORKERS 8
#define DEMO_TEMPLATES 1024       /* request texts generated per worker    */
#define DEMO_CACHE_WAYS 4
#define DEMO_CACHE_SETS 1024      /* 4096 sessions per worker              */
#define DEMO_HOT_SESSIONS 3000    /* 90% of requests come from these ids   */
#define DEMO_ACTIVITY 512         /* bytes of a session's activity log     */

/* A "name: value" pair: a query parameter or a header, in a list. */
struct field {
    struct field *next;
    char *name;
    char *value;
};

struct request {
    char *buf;               /* the received bytes                          */
    size_t len;
    char *method, *path;
    struct field *params;    /* query parameters, decoded                   */
    struct field *headers;   /* names lower-cased, values trimmed           */
    const char *body;        /* into buf                                    */
    size_t body_len;
    uint64_t session_id;
    const char *request_id;  /* a header value, or NULL                     */
    int nparams, nheaders;
    char *response;          /* built by the handler, released with it      */
    size_t response_len, response_cap;
};

struct session {
    uint64_t id;
    char *user;              /* "user-<n>"                                  */
    char *last_path;         /* replaced by every request                   */
    char *activity;          /* a ring of "<request>:<path>;" records       */
    uint32_t act_len;
    uint32_t visits;
    uint64_t last_seen;
};

/* The strategy's per-worker state (declared by the strategy's mem header). */
struct demo_mem;

struct worker {
    int id;
    uint64_t rng;
    /* Pre-generated request texts (the "network"): a session id is patched
     * into a template before each request. */
    char *templates[DEMO_TEMPLATES];
    size_t template_len[DEMO_TEMPLATES];
    size_t sid_offset[DEMO_TEMPLATES];
    uint64_t checksum;       /* sum of the responses' FNV-1a hashes         */
    uint64_t requests;
    uint64_t session_hits, session_misses;
    struct latency lat;
    struct demo_mem *mem;
};

/* request.c */
/* Decimal digits of v into dst (room for 20); returns how many. */
size_t demo_fmt_u64(char *dst, uint64_t v);
/* Fills w->templates (plain malloc, before anything is measured); 0 or -1. */
int demo_make_templates(struct worker *w);
void demo_free_templates(struct worker *w);
/* The text of w's next request (a template with a session id patched in),
 * as the network would deliver it: not part of the handler's time. */
const char *demo_next_request(struct worker *w, size_t *len);
/* Handles request number n, text[0..len), start to end: receive, parse,
 * session, response, send, and the strategy's end-of-request release.
 * Returns 0, or -1 when memory ran out. */
int demo_handle_request(struct worker *w, uint64_t n, const char *text, size_t len);

/* session.c */
/* The session for id, found in w's cache or made (evicting the least
 * recently used of its set); NULL when memory ran out. */
struct session *demo_session_get(struct worker *w, uint64_t id, int *is_new);
/* Records request n for path in s (its last path and activity log). */
int demo_session_touch(struct worker *w, struct session *s, uint64_t n, const char *path);

/* strategy_<name>.c */
extern const char demo_strategy_name[];
/* Process set-up (pools...); 0 or an errno value. */
int demo_strategy_init(void);
/* Per worker, on the worker's thread; 0 or an errno value. */
int demo_strategy_worker_init(struct worker *w);
void demo_strategy_worker_done(struct worker *w);
/* The request is answered: release what it allocated. */
void demo_strategy_end_request(struct worker *w, struct request *r);
/* An evicted session: release it and what it owns. */
void demo_strategy_session_drop(struct worker *w, struct session *s);

/* What a run cost, as the strategy counts it (see demo_strategy_counts). */
struct demo_counts {
    uint64_t allocs;        /* requests that reached an allocator: malloc
                               calls, collected objects, pool misses, arena
                               chunks beyond the one each reset keeps      */
    uint64_t gc_cycles;
    double gc_cpu;          /* the collector's share of all CPUs' time
                               since the process started                   */
    uint64_t gc_pause_ns;   /* stop-the-world time, in all                  */
};
/* Called once before the workers start and once after they end; the
 * difference is the run's. */
void demo_strategy_counts(struct demo_counts *c);

/* The releasing walk malloc and pools need (request.c). */
void demo_request_free(struct worker *w, struct request *r);

#endif
