/*
 * prof_demo.c — a small request-serving loop to profile (docs/profiling.md).
 *
 * Each request is parsed into a per-worker arena (reset after the
 * request), formats its response into a pooled buffer, allocates a session
 * record on the collected heap (only the last 256 are kept), and stores the
 * response in a cache that never evicts anything: the leak.
 *
 *   GCMALLOC_PROFILE=heap.pb.gz ./prof_demo [requests]
 *   go tool pprof -top heap.pb.gz
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>

struct session {
    char user[48];
    long request;
};

static void *check(void *p)
{
    if (p == NULL) {
        perror("prof_demo");
        exit(1);
    }
    return p;
}

struct cache_entry {
    struct cache_entry *next;
    long key;
    char *value;
};

static struct session *recent[256];
static struct cache_entry *cache;

/* Splits "GET /item/<n>?user=<u>" into pieces, all in the request's arena. */
static char **parse_request(gcm_arena *a, long n)
{
    char *line = check(gcm_arena_sprintf(a, "GET /item/%ld?user=user%ld&lang=en",
                                         n, n % 97));
    char **parts = check(gcm_arena_alloc(a, 8 * sizeof *parts));
    int k = 0;
    for (char *p = line; k < 7 && p != NULL; k++) {
        char *end = strpbrk(p, "/?&=");
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        parts[k] = check(gcm_arena_strndup(a, p, len));
        p = end != NULL ? end + 1 : NULL;
    }
    parts[k] = NULL;
    return parts;
}

static struct session *new_session(char **parts, long n)
{
    struct session *s = check(gcm_malloc(sizeof *s));
    snprintf(s->user, sizeof s->user, "%s", parts[4] != NULL ? parts[4] : "-");
    s->request = n;
    recent[n % 256] = s; /* the session it replaces becomes garbage */
    return s;
}

/* The leak: every response is cached, nothing is ever evicted. */
static void cache_put(long key, const char *value, size_t len)
{
    struct cache_entry *e = check(gcm_malloc(sizeof *e));
    e->key = key;
    e->value = check(gcm_malloc_atomic(len + 1));
    memcpy(e->value, value, len + 1);
    e->next = cache;
    cache = e;
}

static void handle_request(gcm_arena *a, long n)
{
    char **parts = parse_request(a, n);
    struct session *s = new_session(parts, n);
    char *buf = check(gcm_buf_get(4096));
    int len = snprintf(buf, gcm_buf_cap(buf), "{\"item\": \"%s\", \"user\": \"%s\"}",
                       parts[2] != NULL ? parts[2] : "", s->user);
    if (n % 4 == 0)
        cache_put(n, buf, (size_t)len);
    gcm_buf_put(buf);
    gcm_arena_reset(a);
}

int main(int argc, char **argv)
{
    long requests = argc > 1 ? atol(argv[1]) : 2000000;
    gcm_arena_options ao = {.name = "request"};
    gcm_arena *a = gcm_arena_new(&ao);
    if (a == NULL) {
        perror("gcm_arena_new");
        return 1;
    }
    for (long n = 0; n < requests; n++)
        handle_request(a, n);
    gcm_arena_free(a);
    printf("served %ld requests\n", requests);
    return 0;
}
