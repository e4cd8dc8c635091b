/*
 * realloc_grow.c — a buffer grown by realloc in small steps, as a string
 * builder or a log buffer does: 64 bytes at a time to 1 MiB.  Prints how
 * many times the buffer moved and fails if its contents did not survive.
 * preload/realloc_grow.sh checks that the preload library's collected
 * modes move it O(log n) times, not at every step or every page, and that
 * fast mode's sampler is not charged for growth in place (a sample costs
 * a stack walk and a copy of the whole buffer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    enum { STEP = 64, GOAL = 1 << 20 };
    unsigned char *b = NULL;
    size_t len = 0;
    long moves = 0;
    while (len < GOAL) {
        unsigned char *q = realloc(b, len + STEP);
        if (q == NULL) {
            perror("realloc");
            return 1;
        }
        if (q != b && b != NULL)
            moves++;
        memset(q + len, (int)(len / STEP % 251), STEP);
        b = q;
        len += STEP;
    }
    for (size_t i = 0; i < len; i += STEP)
        if (b[i] != i / STEP % 251 || b[i + STEP - 1] != i / STEP % 251) {
            fprintf(stderr, "realloc_grow: contents lost at %zu\n", i);
            return 1;
        }
    free(b);
    printf("moves %ld\n", moves);
    return 0;
}
