/*
 * symtab_dbglink.c — a shared object for test_prof_symtab's debuglink
 * cases (tests/CMakeLists.txt builds it without a build-id, splits its
 * symbols into a debug file, strips it and links the two with
 * .gnu_debuglink).  Built twice: the second time with DBGLINK_STATIC
 * renamed, for a debug file of the same code that does not match.
 */
#ifndef DBGLINK_STATIC
#define DBGLINK_STATIC symtab_dbglink_static
#endif

void (*symtab_dbglink_fn(void))(void);

static volatile int calls;

/* Static: once the object is stripped only its debug file names it. */
__attribute__((noinline)) static void DBGLINK_STATIC(void)
{
    calls = calls + 1;
    __asm__ volatile("" ::: "memory");
}

/* Exported (in .dynsym even when stripped): hands the test the static
 * function's address. */
void (*symtab_dbglink_fn(void))(void)
{
    return DBGLINK_STATIC;
}
