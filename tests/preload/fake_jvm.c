/*
 * fake_jvm.c — built as a library named libjvm.so for the preload contract
 * test: a stand-in for HotSpot, which keeps the only pointers to some of
 * its malloc'd memory (inline-cache holders) inside the machine code it
 * generates, as the 8-byte immediate of a mov at whatever byte offset the
 * instruction lands on.  A conservative collector scans at pointer
 * alignment and never sees them; the preload library's collected modes
 * must not reclaim what this library allocates.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = 64, STRIDE = 16, IMM_OFFSET = 2 };

/* "Generated code": movabs $imm64, %rax is 48 b8 followed by the address,
 * which is therefore never 8-byte aligned. */
static unsigned char code[SLOTS * STRIDE];

static void *held(int i)
{
    void *p;
    memcpy(&p, &code[i * STRIDE + IMM_OFFSET], sizeof p);
    return p;
}

/* malloc is called from here, so the caller is this library. */
__attribute__((visibility("default"))) void fake_jvm_hold(int i, size_t n)
{
    unsigned char *p = malloc(n);
    if (p == NULL)
        abort();
    memset(p, 'A' + i % 26, n);
    code[i * STRIDE] = 0x48;
    code[i * STRIDE + 1] = 0xb8;
    memcpy(&code[i * STRIDE + IMM_OFFSET], &p, sizeof p);
}

__attribute__((visibility("default"))) bool fake_jvm_intact(int i, size_t n)
{
    const unsigned char *p = held(i);
    for (size_t j = 0; j < n; j++)
        if (p[j] != 'A' + i % 26)
            return false;
    return true;
}

__attribute__((visibility("default"))) void fake_jvm_release(int i)
{
    free(held(i));
    memset(&code[i * STRIDE + IMM_OFFSET], 0, sizeof(void *));
}
