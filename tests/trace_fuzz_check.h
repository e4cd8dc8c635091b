/*
 * trace_fuzz_check.h — one input through the whole gctrace analyzer, with
 * its invariants checked; shared by the libFuzzer target (fuzz_trace.c)
 * and the deterministic mutation test (test_trace_fuzz.c).
 */
#ifndef GCM_TESTS_TRACE_FUZZ_CHECK_H
#define GCM_TESTS_TRACE_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Reads `data` as a log (through a FILE, as the tool does), summarizes
 * every run under every stop-the-world rule, writes the report, the CSV
 * and the SVG of the first four runs to memory, and checks what must hold
 * whatever the input: every line is counted once; parsed figures are
 * finite and non-negative; distributions are ordered; outputs have no
 * NaN, the right number of CSV rows, balanced SVG markup, and no input
 * bytes in the report.  Returns NULL, or a static description of the
 * first broken invariant. */
const char *gct_fuzz_check(const uint8_t *data, size_t size);

#endif
