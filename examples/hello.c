/*
 * hello.c — the smallest gcmalloc program: initialize the library and show
 * what it was configured with.  Try:
 *
 *     GCMALLOC_VERBOSE=1 ./hello
 *     GCMALLOC_VERBOSE=maybe ./hello      # a bad value: warned, default used
 */
#include <stdio.h>

#include <gcmalloc.h>

int main(void)
{
    if (gcm_init() != 0) {
        fprintf(stderr, "hello: gcm_init failed\n");
        return 1;
    }
    printf("gcmalloc %s initialized; its options:\n", gcm_version());
    fflush(stdout);
    gcm_options_print();
    return 0;
}
