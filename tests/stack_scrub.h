/*
 * stack_scrub.h — for tests that check what a collection frees.
 *
 * The collector scans the collecting thread's stack conservatively, and
 * that includes the slots of its own frames that nothing has written yet
 * in this cycle: padding, unused locals, unused parts of the area it
 * saves the registers in.  Those slots hold whatever ran at that
 * depth before: the test's own allocations, or bdwgc's marking in the
 * previous cycle, which passes {object, descriptor} pairs of the objects
 * it marks through its frames.  An object live in the last cycle and
 * dropped since is then found again through its own stale mark entry,
 * about 1 KiB below the caller of gcm_gc(), and kept.
 *
 * So a test clears the stack below itself right before the collection it
 * checks -- scrub_stack(); gcm_gc(); in the same function, so that the
 * collector's frames land on cleared memory.
 *
 * The stores are volatile: a memset of a local array that is never read
 * again is a dead store, and GCC 12 at -O2 drops it, and then the call
 * (the function has no other effect; noinline does not keep it).  Not
 * instrumented by ASan, whose redzones around the array would be left
 * unwritten.
 */
#ifndef GCM_TEST_STACK_SCRUB_H
#define GCM_TEST_STACK_SCRUB_H

#include <stddef.h>

/* Far more than the collector's frames take below gcm_gc()'s caller. */
#define SCRUB_STACK_BYTES (32 * 1024)

__attribute__((noinline, no_sanitize_address)) static void scrub_stack(void)
{
    volatile unsigned char pad[SCRUB_STACK_BYTES];
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = 0;
}

#endif
