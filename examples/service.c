/*
 * service.c — a long-running request loop to watch through the live
 * /debug/pprof endpoint (docs/profiling.md, "Live profiles from a running
 * service").
 *
 * Worker threads serve a steady stream of made-up requests.  Each request
 * is parsed into the worker's arena (reset after every request), looks its
 * user's session up on the collected heap (a bounded table: replaced
 * sessions become garbage), renders its page into a pooled buffer, and —
 * the bug to find — remembers every rendered page in a cache that nothing
 * ever evicts, so the live heap grows for as long as the service runs.
 *
 *   GCMALLOC_PPROF_ADDR=127.0.0.1:6060 ./service &
 *   go tool pprof -top http://127.0.0.1:6060/debug/pprof/heap
 *
 *   service [--pprof ADDR] [--seconds N] [--rate REQUESTS_PER_SECOND]
 *           [--threads N]
 *
 * --pprof starts the endpoint with gcm_pprof_serve() instead of the
 * environment.  Without --seconds the service runs until SIGINT or
 * SIGTERM; it then stops its workers and exits normally, which stops the
 * endpoint too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gcmalloc.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void *check(void *p)
{
    if (p == NULL) {
        perror("service");
        exit(1);
    }
    return p;
}

/* --- sessions: a bounded table on the collected heap ----------------------- */

struct session {
    char user[32];
    long requests;
};

#define SESSIONS 1024
static struct session *sessions[SESSIONS];
static pthread_mutex_t sessions_mu = PTHREAD_MUTEX_INITIALIZER;

static struct session *session_for(const char *user, unsigned slot)
{
    pthread_mutex_lock(&sessions_mu);
    struct session *s = sessions[slot % SESSIONS];
    if (s == NULL || strcmp(s->user, user) != 0) {
        /* A new visitor takes the slot; the old session becomes garbage. */
        struct session *n = check(gcm_malloc(sizeof *n));
        snprintf(n->user, sizeof n->user, "%s", user);
        sessions[slot % SESSIONS] = n;
        s = n;
    }
    s->requests++;
    pthread_mutex_unlock(&sessions_mu);
    return s;
}

/* --- the page cache: the leak ----------------------------------------------- */

struct page {
    struct page *next;
    long key;
    size_t len;
    char *html;
};

static struct page *pages;
static long pages_held;
static pthread_mutex_t pages_mu = PTHREAD_MUTEX_INITIALIZER;

/* Every rendered page is remembered "for next time"; nothing is ever
 * looked up or evicted. */
static void cache_page(long key, const char *html, size_t len)
{
    struct page *p = check(gcm_malloc(sizeof *p));
    p->key = key;
    p->len = len;
    p->html = check(gcm_malloc_atomic(len + 1));
    memcpy(p->html, html, len + 1);
    pthread_mutex_lock(&pages_mu);
    p->next = pages;
    pages = p;
    pages_held++;
    pthread_mutex_unlock(&pages_mu);
}

/* --- one request ------------------------------------------------------------ */

struct request {
    const char *path;
    const char *user;
    const char *lang;
    long item;
};

/* Parses "GET /item/<n>?user=<u>&lang=<l>" into the request's arena. */
static struct request *parse_request(gcm_arena *a, long n)
{
    char *line = check(gcm_arena_sprintf(a, "GET /item/%ld?user=user%ld&lang=%s",
                                         n % 5000, n % 1499,
                                         n % 3 ? "en" : "fr"));
    struct request *r = check(gcm_arena_alloc(a, sizeof *r));
    char *q = strchr(line, '?');
    r->path = check(gcm_arena_strndup(a, line + 4, (size_t)(q - line - 4)));
    r->item = n % 5000;
    r->user = "-";
    r->lang = "en";
    for (char *kv = q + 1; kv != NULL && *kv != '\0';) {
        char *amp = strchr(kv, '&');
        size_t len = amp != NULL ? (size_t)(amp - kv) : strlen(kv);
        char *pair = check(gcm_arena_strndup(a, kv, len));
        char *eq = strchr(pair, '=');
        if (eq != NULL) {
            *eq = '\0';
            if (strcmp(pair, "user") == 0)
                r->user = eq + 1;
            else if (strcmp(pair, "lang") == 0)
                r->lang = eq + 1;
        }
        kv = amp != NULL ? amp + 1 : NULL;
    }
    return r;
}

static void handle_request(gcm_arena *a, long n)
{
    struct request *r = parse_request(a, n);
    struct session *s = session_for(r->user, (unsigned)(n % 1499));
    char *buf = check(gcm_buf_get(1024));
    int len = snprintf(buf, gcm_buf_cap(buf),
                       "<html lang=\"%s\"><body><h1>Item %ld</h1><p>Hello %s, "
                       "visit %ld.</p><p>%s</p></body></html>",
                       r->lang, r->item, s->user, s->requests, r->path);
    cache_page(n, buf, (size_t)len);
    gcm_buf_put(buf);
    gcm_arena_reset(a);
}

/* --- workers ---------------------------------------------------------------- */

struct worker {
    pthread_t th;
    int id, of;
    long rate; /* requests per second, this worker */
    long served;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    gcm_arena_options ao = {.name = "request"};
    gcm_arena *a = check(gcm_arena_new(&ao));
    /* Paced in 10 ms ticks: a batch, then sleep to the next tick. */
    long per_tick = w->rate / 100 > 0 ? w->rate / 100 : 1;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long n = w->id;
    while (!stopping) {
        for (long i = 0; i < per_tick; i++, n += w->of)
            handle_request(a, n);
        w->served += per_tick;
        next.tv_nsec += 10 * 1000 * 1000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR &&
               !stopping)
            ;
    }
    gcm_arena_free(a);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: service [--pprof ADDR] [--seconds N] [--rate N] "
                    "[--threads N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *pprof = NULL;
    long seconds = 0, rate = 20000, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--pprof") == 0)
            pprof = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atol(argv[++i]);
        else if (strcmp(argv[i], "--rate") == 0)
            rate = atol(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atol(argv[++i]);
        else
            usage();
    }
    if (rate < 1 || threads < 1 || threads > 64 || seconds < 0)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (pprof != NULL) {
        int port = 0;
        int rc = gcm_pprof_serve(pprof, &port);
        if (rc == 0)
            printf("service: pprof endpoint on port %d\n", port);
        else if (rc == EALREADY)
            printf("service: pprof endpoint already serving on port %d\n", port);
        else
            printf("service: gcm_pprof_serve(\"%s\"): %s\n", pprof, strerror(rc));
    }

    struct worker *w = check(calloc((size_t)threads, sizeof *w));
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){.id = i, .of = (int)threads,
                               .rate = rate / threads > 0 ? rate / threads : 1};
        if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    printf("service: pid %d serving %ld requests/s on %ld threads\n", (int)getpid(),
           rate, threads);

    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!stopping) {
        struct timespec tick = {0, 50 * 1000 * 1000};
        nanosleep(&tick, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (seconds > 0 && now.tv_sec - start.tv_sec >= seconds)
            stopping = 1;
    }
    long served = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].th, NULL);
        served += w[i].served;
    }
    free(w);
    printf("service: served %ld requests; the page cache holds %ld pages\n",
           served, pages_held);
    return 0;
}
