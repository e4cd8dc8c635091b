/*
 * planted_leak.c — a program with one known leak, for leakcheck's tests.
 *
 * leak_records() loses exactly LEAK_COUNT objects of LEAK_SIZE bytes each
 * (it drops the only pointer to each); everything else is freed.  Under
 * GCMALLOC_MODE=leakcheck with GCMALLOC_PROFILE_RATE=1 the report must
 * name leak_records with exactly that count and LEAK_COUNT × LEAK_SIZE
 * bytes, and nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAK_COUNT 137
#define LEAK_SIZE 1000

struct record {
    char name[32];
    struct record *next;
};

static struct record *kept; /* reachable to the end: not a leak */

__attribute__((noinline)) static void keep_records(int n)
{
    for (int i = 0; i < n; i++) {
        struct record *r = malloc(sizeof *r);
        snprintf(r->name, sizeof r->name, "kept %d", i);
        r->next = kept;
        kept = r;
    }
}

__attribute__((noinline)) static void leak_records(void)
{
    for (int i = 0; i < LEAK_COUNT; i++) {
        char *p = malloc(LEAK_SIZE);
        memset(p, i, LEAK_SIZE); /* used, then forgotten */
    }
}

__attribute__((noinline)) static void churn(int n)
{
    for (int i = 0; i < n; i++) {
        char *p = malloc(64 + i % 512);
        p[0] = (char)i;
        free(p);
    }
}

int main(void)
{
    keep_records(100);
    churn(100000);
    leak_records();
    churn(100000);
    int n = 0;
    for (struct record *r = kept; r != NULL; r = r->next)
        n++;
    printf("kept %d records\n", n);
    return 0;
}
