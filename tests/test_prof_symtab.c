/*
 * test_prof_symtab.c — src/prof_symtab.c: function names from ELF symbol
 * tables (the program's, a shared library's .dynsym, a stripped library's
 * build-id debug file).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"

static volatile int sink;

/* Bodies of a few instructions: an address inside is pc + 1 .. + 4. */
__attribute__((noinline)) void symtab_global_fn(void)
{
    sink = sink + 1;
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void symtab_static_fn(void)
{
    sink = sink + 2;
    __asm__ volatile("" ::: "memory");
}

static uintptr_t main_ret; /* main's return address: in libc */

static void test_program_functions(void **state)
{
    (void)state;
    symtab_global_fn();
    symtab_static_fn();
    gcm__symtab_hit h;
    assert_true(gcm__symtab_lookup((uintptr_t)&symtab_global_fn + 1, &h));
    assert_string_equal(h.name, "symtab_global_fn");
    assert_false(h.local);
    assert_true(gcm__symtab_lookup((uintptr_t)&symtab_static_fn + 1, &h));
    assert_string_equal(h.name, "symtab_static_fn");
    assert_true(h.local);
    /* Outside any function, or any object: nothing. */
    assert_false(gcm__symtab_lookup(0x10, &h));
    assert_false(gcm__symtab_lookup((uintptr_t)&main_ret, &h)); /* data */
    assert_false(gcm__symtab_lookup((uintptr_t)&symtab_global_fn, NULL));
}

static void test_shared_library_dynsym(void **state)
{
    (void)state;
    /* zlib has no debug file here: its exported names come from .dynsym. */
    gcm__symtab_hit h;
    assert_true(gcm__symtab_lookup((uintptr_t)&crc32 + 4, &h));
    assert_string_equal(h.name, "crc32");
    assert_false(h.local);
}

static int libc_build_id(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && main_ret >= start && main_ret - start < ph->p_memsz) {
            gcm__phdr_build_id(info, arg, 68);
            return 1;
        }
    }
    return 0;
}

/* libc is stripped; its -dbg package's debug file (by build-id) has the
 * full symbol table, static functions and versioned names included. */
static void test_libc_names(void **state)
{
    (void)state;
    gcm__symtab_hit h;
    /* __libc_start_main is exported (.dynsym) and, in the debug file, has
     * versioned aliases: the name is the plain one either way. */
    void *start_main = dlsym(RTLD_DEFAULT, "__libc_start_main");
    assert_non_null(start_main);
    assert_true(gcm__symtab_lookup((uintptr_t)start_main + 8, &h));
    assert_string_equal(h.name, "__libc_start_main");

    char id[68] = "";
    dl_iterate_phdr(libc_build_id, id);
    assert_int_equal(strlen(id), 40);
    char dbg[128];
    snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug", id, id + 2);
    if (access(dbg, R_OK) != 0) {
        /* Without libc6-dbg the static function main returns to has no
         * name at all, rather than a wrong one. */
        print_message("no %s: static libc functions unnamed\n", dbg);
        assert_false(gcm__symtab_lookup(main_ret - 1, &h) &&
                     strcmp(h.name, "__libc_start_call_main") == 0);
        return;
    }
    assert_true(gcm__symtab_lookup(main_ret - 1, &h));
    assert_string_equal(h.name, "__libc_start_call_main");
    assert_true(h.local);
}

/* An -O0 program's out-of-line copy of the header's inline allocation
 * path is a local symbol named gcm_...: what tells it from the library's
 * own (global) functions without DWARF. */
static void test_api_inline_copy(void **state)
{
    (void)state;
    void *(*volatile copy)(gcm_arena *, size_t) = gcm_arena_alloc_inline_;
    gcm__symtab_hit h;
    assert_true(gcm__symtab_lookup((uintptr_t)copy + 1, &h));
    assert_string_equal(h.name, "gcm_arena_alloc_inline_");
    assert_true(h.local);
    assert_true(gcm__symtab_lookup((uintptr_t)&gcm_arena_alloc_slow_ + 2, &h));
    assert_false(h.local);
}

static void *lookups(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        gcm__symtab_hit h;
        if (!gcm__symtab_lookup((uintptr_t)&crc32 + 4, &h) || strcmp(h.name, "crc32") != 0 ||
            !gcm__symtab_lookup((uintptr_t)&symtab_global_fn + 1, &h) ||
            strcmp(h.name, "symtab_global_fn") != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, lookups, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
}

int main(void)
{
    main_ret = (uintptr_t)__builtin_return_address(0);
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_program_functions),
        cmocka_unit_test(test_shared_library_dynsym),
        cmocka_unit_test(test_libc_names),
        cmocka_unit_test(test_api_inline_copy),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
