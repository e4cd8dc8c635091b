/*
 * fuzz_trace.c — libFuzzer entry point for the gctrace analyzer: every
 * input goes through the whole tool with its invariants checked
 * (trace_fuzz_check.c); a broken invariant aborts, which libFuzzer reports
 * with the input that did it.  Built only when a compiler with
 * -fsanitize=fuzzer is found (tests/CMakeLists.txt); run for a bounded
 * time by tests/trace_libfuzzer.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "trace_fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = gct_fuzz_check(data, size);
    if (why != NULL) {
        fprintf(stderr, "fuzz_trace: invariant broken: %s\n", why);
        abort();
    }
    return 0;
}
