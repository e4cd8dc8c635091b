/*
 * trees.c — a pointer-dense heap for comparing how collectors mark, run
 * under LD_PRELOAD (bench/pointer_align.sh).
 *
 * After Boehm's GCBench: one long-lived binary tree of 2^(L+1) - 1 nodes
 * (32 bytes each: two child pointers and two payload words) stays live the
 * whole run, so every collection marks it, while R rounds build and free
 * short-lived trees of depth S, 4 MiB of nodes a round, and free them —
 * or, with `leak`, drop them for a collector to reclaim (gc mode), so that
 * collections come every few rounds and each marks the long-lived tree.
 * The printed checksum does not depend on the allocator.
 *
 *   trees [long-lived depth L] [rounds R] [short-lived depth S] [leak]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    struct node *left, *right;
    uint64_t i, j;
} node;

static node *make(int depth, uint64_t *count)
{
    node *n = malloc(sizeof *n);
    if (n == NULL) {
        perror("malloc");
        exit(1);
    }
    n->i = (*count)++;
    n->j = n->i * 2654435761u;
    n->left = depth > 0 ? make(depth - 1, count) : NULL;
    n->right = depth > 0 ? make(depth - 1, count) : NULL;
    return n;
}

static uint64_t check(const node *n)
{
    uint64_t s = 0;
    for (; n != NULL; n = n->right)
        s += n->i ^ n->j ^ check(n->left);
    return s;
}

static void drop(node *n)
{
    if (n == NULL)
        return;
    drop(n->left);
    drop(n->right);
    free(n);
}

int main(int argc, char **argv)
{
    int live = argc > 1 ? atoi(argv[1]) : 18;
    int rounds = argc > 2 ? atoi(argv[2]) : 40;
    int depth = argc > 3 ? atoi(argv[3]) : 16;
    int leak = argc > 4 && strcmp(argv[4], "leak") == 0;
    uint64_t count = 0, sum = 0;
    node *keep = make(live, &count);
    for (int r = 0; r < rounds; r++) {
        node *t = make(depth, &count);
        sum += check(t);
        if (!leak)
            drop(t);
    }
    sum += check(keep);
    drop(keep);
    printf("%llu nodes, checksum %llx\n", (unsigned long long)count,
           (unsigned long long)sum);
    return 0;
}
