/*
 * strategy_pool.c — pools for everything (mem_pool.h): a typed pool each
 * for requests, fields and sessions, and buffer pools for every string and
 * buffer.  A request's objects go back when it ends (the walk in
 * request.c), an evicted session's when it is dropped.  Allocations are
 * the pools' misses: the objects they had to make.
 */
#include <errno.h>
#include <string.h>

#include <gcmalloc.h>

#include "sim.h"
#include "mem.h"

const char demo_strategy_name[] = "pool";

gcm_pool *demo_pool_request, *demo_pool_field, *demo_pool_session;

static struct demo_mem mem;

/* Objects come back zeroed, as calloc would give them. */
static void zero_request(void *obj, void *arg)
{
    (void)arg;
    memset(obj, 0, sizeof(struct request));
}

static void zero_field(void *obj, void *arg)
{
    (void)arg;
    memset(obj, 0, sizeof(struct field));
}

static void zero_session(void *obj, void *arg)
{
    (void)arg;
    memset(obj, 0, sizeof(struct session));
}

int demo_strategy_init(void)
{
    demo_pool_request = gcm_pool_new(&(gcm_pool_options){
        .name = "request", .size = sizeof(struct request), .reset_fn = zero_request});
    demo_pool_field = gcm_pool_new(&(gcm_pool_options){
        .name = "field", .size = sizeof(struct field), .reset_fn = zero_field});
    demo_pool_session = gcm_pool_new(&(gcm_pool_options){
        .name = "session", .size = sizeof(struct session), .reset_fn = zero_session});
    if (demo_pool_request == NULL || demo_pool_field == NULL || demo_pool_session == NULL)
        return errno != 0 ? errno : ENOMEM;
    return 0;
}

int demo_strategy_worker_init(struct worker *w)
{
    w->mem = &mem;
    return 0;
}

void demo_strategy_worker_done(struct worker *w) { (void)w; }

void demo_strategy_end_request(struct worker *w, struct request *r)
{
    demo_request_free(w, r);
}

void demo_strategy_session_drop(struct worker *w, struct session *s)
{
    MEM_SES_FREE_BYTES(w, s->user);
    MEM_SES_FREE_BYTES(w, s->last_path);
    MEM_SES_FREE_BYTES(w, s->activity);
    gcm_pool_put(demo_pool_session, s);
}

void demo_strategy_counts(struct demo_counts *c)
{
    struct gcm_memstats ms;
    gcm_read_memstats(&ms);
    *c = (struct demo_counts){
        .allocs = ms.mallocs + ms.pool_misses,
        .gc_cycles = ms.num_gc,
        .gc_cpu = ms.gc_cpu_fraction,
        .gc_pause_ns = ms.pause_total_ns,
    };
}
