/*
 * sigblock.c — the sigwait server pattern, for the preload library's
 * end-to-end tests.
 *
 * The main thread blocks every signal before it starts any thread, so all
 * threads inherit the full mask (the pattern POSIX recommends for
 * multithreaded servers); one thread takes signals with sigwait on the
 * full set; W workers build linked lists with malloc, drop most of them
 * without freeing (so the collected modes have garbage to collect), and
 * check the lists they keep.  When the workers are done the main thread
 * sends the process SIGUSR1 and the sigwait thread reports it.
 *
 * Under a collected mode, before gcmalloc kept its stop-the-world signals
 * out of the program's masks, the first collection hung for ~15 s and then
 * aborted the process.  The output does not depend on scheduling, so it
 * must be identical under glibc's malloc and under every gcmalloc mode.
 *
 *   sigblock [workers] [lists per worker]
 *   sigblock handle SIG  tries to install a handler for SIG (XCPU, PWR or
 *                        RTMIN+n), raises it, and says what happened: the
 *                        collected modes refuse the collector's own two
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

struct node {
    struct node *next;
    uint64_t v;
    char pad[40];
};

static long lists_per_worker = 2000;

static struct node *build(int n, uint64_t salt)
{
    struct node *head = NULL;
    for (int i = 0; i < n; i++) {
        struct node *x = malloc(sizeof *x);
        if (x == NULL)
            abort();
        x->next = head;
        x->v = (uint64_t)i * 2654435761u ^ salt;
        head = x;
    }
    return head;
}

static uint64_t sum_and_free(struct node *l)
{
    uint64_t s = 0;
    while (l != NULL) {
        struct node *n = l->next;
        s += l->v;
        free(l);
        l = n;
    }
    return s;
}

static void *worker(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg, sum = 0;
    struct node *kept = build(1000, id);
    for (long i = 0; i < lists_per_worker; i++) {
        struct node *l = build(100, id * 1000003u + (uint64_t)i);
        if (i % 8 == 0)
            sum += sum_and_free(l); /* the rest are leaked */
    }
    sum += sum_and_free(kept);
    uint64_t *out = malloc(sizeof *out);
    *out = sum;
    return out;
}

static void *waiter(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    int sig = 0;
    while (sigwait(&all, &sig) == 0 && sig != SIGUSR1)
        printf("unexpected signal %d\n", sig);
    printf("sigwait took SIGUSR1\n");
    return NULL;
}

static volatile sig_atomic_t handled;

static void on_signal(int sig)
{
    (void)sig;
    handled = 1;
}

static int try_handle(const char *name)
{
    int sig;
    if (strcmp(name, "XCPU") == 0)
        sig = SIGXCPU;
    else if (strcmp(name, "PWR") == 0)
        sig = SIGPWR;
    else if (strncmp(name, "RTMIN+", 6) == 0)
        sig = SIGRTMIN + atoi(name + 6);
    else
        return 2;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) {
        printf("SIG%s handler refused: %s\n", name, strerror(errno));
        return 0;
    }
    raise(sig);
    printf("SIG%s handler installed%s\n", name, handled ? " and ran" : ", but did not run");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "handle") == 0)
        return try_handle(argv[2]);
    int workers = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2)
        lists_per_worker = atol(argv[2]);
    if (workers < 1 || workers > 64 || lists_per_worker < 1)
        return 2;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    pthread_t w, t[64];
    pthread_create(&w, NULL, waiter, NULL);
    for (int i = 0; i < workers; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    uint64_t total = 0;
    for (int i = 0; i < workers; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += *(uint64_t *)r;
        free(r);
    }
    kill(getpid(), SIGUSR1);
    pthread_join(w, NULL);
    printf("%d workers, %ld lists each, checksum %llu\n", workers, lists_per_worker,
           (unsigned long long)total);
    return 0;
}
