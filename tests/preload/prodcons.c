/*
 * prodcons.c — a multithreaded producer/consumer that allocates on one
 * thread and frees on another, for the preload library's end-to-end tests.
 *
 * P producers each build M messages (malloc'd, variable size, some grown
 * with realloc, some from calloc and posix_memalign) and push them onto a
 * bounded queue; C consumers pop them, check their contents, fold them
 * into a checksum and free them.  The output (message count and checksum)
 * does not depend on scheduling, so it must be identical under glibc's
 * malloc and under every gcmalloc mode.
 *
 *   prodcons [producers] [consumers] [messages per producer]
 */
#define _POSIX_C_SOURCE 200809L /* posix_memalign under -std=c11 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct msg {
    uint32_t producer, seq, len;
    uint32_t sum;          /* of payload, computed by the producer */
    unsigned char *payload;
} msg;

#define QCAP 256
static msg *queue[QCAP];
static size_t qhead, qtail, qcount;
static int producers_left;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static long per_producer = 20000;

static uint64_t total_sum, total_msgs;

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void *producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    for (long i = 0; i < per_producer; i++) {
        uint32_t r = mix(id * 1000003u + (uint32_t)i);
        msg *m;
        if (r % 5 == 0)
            m = calloc(1, sizeof *m);
        else
            m = malloc(sizeof *m);
        m->producer = id;
        m->seq = (uint32_t)i;
        m->len = 16 + r % 2000;
        if (r % 7 == 0) {
            void *p = NULL;
            if (posix_memalign(&p, 64, m->len) != 0)
                abort();
            m->payload = p;
        } else {
            /* grow in two steps: realloc must keep the first part */
            m->payload = malloc(m->len / 2 + 1);
            memset(m->payload, 0xAB, m->len / 2 + 1);
            m->payload = realloc(m->payload, m->len);
        }
        uint32_t sum = 0;
        for (uint32_t k = 0; k < m->len; k++) {
            unsigned char b = (unsigned char)(mix(r + k) & 0xff);
            m->payload[k] = b;
            sum += b;
        }
        m->sum = sum;
        pthread_mutex_lock(&mu);
        while (qcount == QCAP)
            pthread_cond_wait(&not_full, &mu);
        queue[qtail] = m;
        qtail = (qtail + 1) % QCAP;
        qcount++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&mu);
    }
    pthread_mutex_lock(&mu);
    producers_left--;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    uint64_t sum = 0, n = 0;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (qcount == 0 && producers_left > 0)
            pthread_cond_wait(&not_empty, &mu);
        if (qcount == 0) {
            pthread_mutex_unlock(&mu);
            break;
        }
        msg *m = queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qcount--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&mu);
        uint32_t s = 0;
        for (uint32_t k = 0; k < m->len; k++)
            s += m->payload[k];
        if (s != m->sum) {
            fprintf(stderr, "corrupt message %u/%u\n", m->producer, m->seq);
            exit(1);
        }
        sum += s ^ (m->producer * 31u + m->seq);
        n++;
        free(m->payload); /* freed on another thread than it came from */
        free(m);
    }
    pthread_mutex_lock(&mu);
    total_sum += sum;
    total_msgs += n;
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(int argc, char **argv)
{
    int P = argc > 1 ? atoi(argv[1]) : 4;
    int C = argc > 2 ? atoi(argv[2]) : 4;
    if (argc > 3)
        per_producer = atol(argv[3]);
    if (P < 1 || C < 1 || P > 64 || C > 64 || per_producer < 1) {
        fprintf(stderr, "usage: prodcons [producers 1-64] [consumers 1-64] [messages]\n");
        return 2;
    }
    pthread_t tp[64], tc[64];
    producers_left = P;
    for (int i = 0; i < C; i++)
        pthread_create(&tc[i], NULL, consumer, NULL);
    for (int i = 0; i < P; i++)
        pthread_create(&tp[i], NULL, producer, (void *)(uintptr_t)i);
    for (int i = 0; i < P; i++)
        pthread_join(tp[i], NULL);
    for (int i = 0; i < C; i++)
        pthread_join(tc[i], NULL);
    printf("messages %llu checksum %llu\n", (unsigned long long)total_msgs,
           (unsigned long long)total_sum);
    return 0;
}
