/*
 * test_prof_symtab.c — src/prof_symtab.c: function names from ELF symbol
 * tables (the program's, a shared library's .dynsym, a stripped library's
 * debug file found by build-id or by .gnu_debuglink), what the cheap
 * GCMALLOC_PROFILE_SYMBOLS modes write, and how auto picks a mode.
 *
 * This process never symbolizes in lines mode, so its last test can check
 * that nothing here read DWARF: the functions and none modes' promise.
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
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"
#include "pprof_bytes.h"
#include "env_option.h"

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

/* --- debug files found by .gnu_debuglink ------------------------------------------ */

typedef void (*dbglink_fn)(void);

/* The static function of the stripped copy of symtab_dbglink.c in
 * GCM_DBGLINK_DIR/dir (tests/CMakeLists.txt), and *exported its exported
 * one. */
static uintptr_t dbglink_static(const char *dir, uintptr_t *exported)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/libsymtab_dbglink.so", GCM_DBGLINK_DIR, dir);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        fail_msg("dlopen %s: %s", path, dlerror());
    dbglink_fn (*fn)(void) = (dbglink_fn(*)(void))dlsym(h, "symtab_dbglink_fn");
    assert_non_null(fn);
    *exported = (uintptr_t)fn;
    return (uintptr_t)fn();
}

/* The object has no build-id, so only its debuglink leads to its debug
 * file: beside it, or in its .debug/ subdirectory.  Its static function is
 * in no other symbol table. */
static void test_debuglink(void **state)
{
    (void)state;
    static const char *const dirs[] = {"same", "sub", "next"};
    for (size_t i = 0; i < GCM_ARRAY_LEN(dirs); i++) {
        uintptr_t exported;
        uintptr_t fn = dbglink_static(dirs[i], &exported);
        gcm__symtab_hit h;
        if (!gcm__symtab_lookup(fn + 1, &h))
            fail_msg("%s: static function unnamed", dirs[i]);
        assert_string_equal(h.name, "symtab_dbglink_static");
        assert_true(h.local);
        assert_true(gcm__symtab_lookup(exported + 1, &h));
        assert_string_equal(h.name, "symtab_dbglink_fn");
        assert_false(h.local);
    }
}

/* A debug file of the right name whose CRC is not the debuglink's is
 * another build's: refused, although its symbols sit at the same addresses
 * and would name the function (wrongly).  The object falls back to its
 * .dynsym: the exported function keeps its name, the static one has none.
 * ("next", above, has such a file beside it and the right one in .debug/:
 * the search goes on past a wrong file.) */
static void test_debuglink_wrong_crc(void **state)
{
    (void)state;
    uintptr_t exported;
    uintptr_t fn = dbglink_static("wrong", &exported);
    gcm__symtab_hit h;
    if (gcm__symtab_lookup(fn + 1, &h))
        fail_msg("named %s from a debug file that does not match", h.name);
    assert_true(gcm__symtab_lookup(exported + 1, &h));
    assert_string_equal(h.name, "symtab_dbglink_fn");
}

static void test_resolve_by_mode(void **state)
{
    (void)state;
    gcm__sym_frame f[4];
    uintptr_t pc = (uintptr_t)&symtab_global_fn + 1;
    assert_int_equal(gcm__sym_resolve(GCM_SYM_FUNCTIONS, pc, f, 4), 1);
    assert_string_equal(f[0].function, "symtab_global_fn");
    assert_null(f[0].file);
    assert_int_equal(f[0].line, 0);
    assert_int_equal(gcm__sym_resolve(GCM_SYM_NONE, pc, f, 4), 0);
    assert_int_equal(gcm__sym_resolve(GCM_SYM_FUNCTIONS, 0x10, f, 4), 0);
    assert_int_equal(gcm__sym_resolve(GCM_SYM_FUNCTIONS, pc, NULL, 4), 0);
}

/* An -O0 program's out-of-line copy of the header's inline allocation
 * path is a local symbol named gcm_...: part of the call into gcmalloc,
 * cut from the stack without DWARF too. */
static void test_api_frames_without_dwarf(void **state)
{
    (void)state;
    void *(*volatile copy)(gcm_arena *, size_t) = gcm_arena_alloc_inline_;
    gcm__symtab_hit h;
    assert_true(gcm__symtab_lookup((uintptr_t)copy + 1, &h));
    assert_string_equal(h.name, "gcm_arena_alloc_inline_");
    assert_true(h.local);
    uintptr_t pcs[3] = {(uintptr_t)copy + 2, (uintptr_t)&symtab_global_fn + 2,
                        (uintptr_t)&symtab_global_fn + 2};
    assert_int_equal(gcm__sym_api_frames(GCM_SYM_FUNCTIONS, pcs, 3), 1);
    assert_int_equal(gcm__sym_api_frames(GCM_SYM_FUNCTIONS, pcs + 1, 2), 0);
    assert_int_equal(gcm__sym_api_frames(GCM_SYM_NONE, pcs, 3), 0);
    /* The library's own exported functions are global: never cut. */
    uintptr_t api[2] = {(uintptr_t)&gcm_arena_alloc_slow_ + 2, pcs[1]};
    assert_int_equal(gcm__sym_api_frames(GCM_SYM_FUNCTIONS, api, 2), 0);
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

/* Far enough from auto's one second that what it picks is known (a slow
 * sanitizer build may not be). */
static bool young(void)
{
    if (gcm__since_start_ns() < 500 * 1000000LL)
        return true;
    print_message("process older than 0.5s: auto's choice not checked\n");
    return false;
}

/* auto: lines once the process has run a second, writes a series of
 * profiles, or has read the DWARF anyway; an explicit mode is what it
 * says. */
static void test_mode_pick(void **state)
{
    (void)state;
    static const struct {
        int64_t option, ran_ms;
        bool series, loaded;
        gcm__sym_mode want;
    } rows[] = {
        {GCM_SYM_AUTO, 0, false, false, GCM_SYM_FUNCTIONS},
        {GCM_SYM_AUTO, 999, false, false, GCM_SYM_FUNCTIONS},
        {GCM_SYM_AUTO, 1000, false, false, GCM_SYM_LINES},
        {GCM_SYM_AUTO, 3600000, false, false, GCM_SYM_LINES},
        {GCM_SYM_AUTO, 5, true, false, GCM_SYM_LINES},  /* interval dumps */
        {GCM_SYM_AUTO, 5, false, true, GCM_SYM_LINES},  /* DWARF read anyway */
        {GCM_SYM_LINES, 0, false, false, GCM_SYM_LINES},
        {GCM_SYM_FUNCTIONS, 3600000, true, true, GCM_SYM_FUNCTIONS},
        {GCM_SYM_NONE, 3600000, true, true, GCM_SYM_NONE},
    };
    for (size_t i = 0; i < GCM_ARRAY_LEN(rows); i++)
        assert_int_equal(gcm__sym_mode_pick(rows[i].option, rows[i].ran_ms * 1000000,
                                            rows[i].series, rows[i].loaded),
                         rows[i].want);
    /* The modes are the option's words, in order (the option's value is
     * the mode). */
    const char *const *words = gcm__opt_def_of(GCM_OPT_PROFILE_SYMBOLS)->words;
    assert_string_equal(words[GCM_SYM_AUTO], "auto");
    assert_string_equal(words[GCM_SYM_LINES], "lines");
    assert_string_equal(words[GCM_SYM_FUNCTIONS], "functions");
    assert_string_equal(words[GCM_SYM_NONE], "none");

    /* Text reports: auto is lines at any run time, none is functions. */
    static const struct { const char *value; gcm__sym_mode text; } text[] = {
        {"auto", GCM_SYM_LINES}, {"lines", GCM_SYM_LINES},
        {"functions", GCM_SYM_FUNCTIONS}, {"none", GCM_SYM_FUNCTIONS},
    };
    for (size_t i = 0; i < GCM_ARRAY_LEN(text); i++) {
        set_env_option("GCMALLOC_PROFILE_SYMBOLS", text[i].value, false);
        assert_int_equal(gcm__sym_mode_text(), text[i].text);
    }
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", NULL, false);
    /* This test process is young and has read no DWARF. */
    if (young())
        assert_int_equal(gcm__sym_mode_now(), GCM_SYM_FUNCTIONS);
}

/* --- whole profiles ------------------------------------------------------------ */

static uintptr_t site_pcs[GCM_PROF_MAX_DEPTH];
static int site_depth;

__attribute__((noinline)) void symtab_alloc_site(void)
{
    site_depth = gcm__stack_capture(site_pcs, GCM_PROF_MAX_DEPTH, NULL);
    __asm__ volatile("" ::: "memory");
}

/* The profile.proto bytes (decompressed) of a one-sample profile of the
 * stack pcs. */
static char *profile_of(const uintptr_t *pcs, int depth, size_t *len)
{
    gcm__bucket *b = gcm__bucket_intern(pcs, depth, GCM_PROF_GC, NULL);
    assert_non_null(b);
    gcm__prof_rec rec = {b, {4, 256, 1, 64}};
    gcm__prof_snap s = {&rec, 1, 524288, 1};
    return (char *)pprof_bytes(&s, NULL, false, len);
}

/* The same, of symtab_alloc_site's stack. */
static char *profile_bytes(size_t *len)
{
    symtab_alloc_site();
    assert_true(site_depth > 2);
    return profile_of(site_pcs, site_depth, len);
}

/* The static function of GCM_FRESH_OBJECT (tests/CMakeLists.txt: the
 * unstripped second build of symtab_dbglink.c), which nothing else in this
 * process loads or looks up: the first name asked for in it opens its
 * file, so gcm__symtab_files_read shows whether a profile looked.  Every
 * object on this test's own stack was read by the tests before it, and a
 * lookup there opens nothing whatever the mode. */
static uintptr_t fresh_object_static(void)
{
    void *h = dlopen(GCM_FRESH_OBJECT, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        fail_msg("dlopen %s: %s", GCM_FRESH_OBJECT, dlerror());
    dbglink_fn (*fn)(void) = (dbglink_fn(*)(void))dlsym(h, "symtab_dbglink_fn");
    assert_non_null(fn);
    return (uintptr_t)fn(); /* kept loaded: the profiles below name it */
}

static bool has(const char *p, size_t n, const char *s)
{
    return memmem(p, n, s, strlen(s)) != NULL;
}

static void test_profiles_in_cheap_modes(void **state)
{
    (void)state;
    size_t n;
    char *p;

    /* functions: the site by name, and the reason there are no lines. */
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", "functions", false);
    p = profile_bytes(&n);
    assert_true(has(p, n, "symtab_alloc_site"));
    assert_true(has(p, n, "gcmalloc symbols=functions: "));
    assert_false(has(p, n, "test_prof_symtab.c"));
    free(p);

    /* auto in a young process: functions, saying it was auto's choice. */
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", NULL, false);
    if (young()) {
        p = profile_bytes(&n);
        assert_true(has(p, n, "symtab_alloc_site"));
        assert_true(has(p, n, "gcmalloc symbols=functions (auto: the process "
                              "had run less than 1s)"));
        free(p);
    }

    /* none: no names, and not one file opened to find any.  The sample's
     * leaf is in an object not read yet, so a lookup of it (for a name, or
     * for api_frames' cut) would open a file. */
    uintptr_t pcs[GCM_PROF_MAX_DEPTH];
    pcs[0] = fresh_object_static() + 2; /* a return address: the pc + 1 looked up */
    symtab_alloc_site();
    assert_true(site_depth > 2);
    int depth = site_depth < GCM_PROF_MAX_DEPTH ? site_depth + 1 : GCM_PROF_MAX_DEPTH;
    memcpy(pcs + 1, site_pcs, (size_t)(depth - 1) * sizeof *pcs);
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", "none", false);
    unsigned files = gcm__symtab_files_read();
    p = profile_of(pcs, depth, &n);
    assert_false(has(p, n, "symtab_alloc_site"));
    assert_false(has(p, n, "symtab_dbglink_other_static"));
    assert_true(has(p, n, "gcmalloc symbols=none"));
    assert_int_equal(gcm__symtab_files_read(), files);
    free(p);

    /* The same sample in functions mode does open that object, and only
     * it (the rest was read already): the count above could have moved. */
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", "functions", false);
    p = profile_of(pcs, depth, &n);
    assert_true(has(p, n, "symtab_dbglink_other_static"));
    assert_true(has(p, n, "symtab_alloc_site"));
    assert_int_equal(gcm__symtab_files_read(), files + 1);
    free(p);
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", NULL, false);
}

/* Last: everything above named addresses without libbacktrace, which
 * would have read the DWARF of every loaded object. */
/* auto counts a forked child's age from the fork, not from the parent's
 * start: a short worker of a long-running parent stays cheap at exit. */
static void test_age_restarts_at_fork(void **state)
{
    (void)state;
    int64_t before = gcm__now_ns();
    assert_true(gcm__sym_ran_ns() > 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) /* forked after `before`: at most that old */
        _exit(gcm__sym_ran_ns() <= gcm__now_ns() - before ? 0 : 1);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* The parent's age still counts from its start. */
    assert_true(gcm__sym_ran_ns() > gcm__now_ns() - before);
}

static void test_no_dwarf_was_read(void **state)
{
    (void)state;
    assert_true(gcm__symtab_files_read() > 0);
    assert_false(gcm__sym_dwarf_loaded());
}

int main(void)
{
    main_ret = (uintptr_t)__builtin_return_address(0);
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_program_functions),
        cmocka_unit_test(test_shared_library_dynsym),
        cmocka_unit_test(test_libc_names),
        cmocka_unit_test(test_debuglink),
        cmocka_unit_test(test_debuglink_wrong_crc),
        cmocka_unit_test(test_resolve_by_mode),
        cmocka_unit_test(test_api_frames_without_dwarf),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_mode_pick),
        cmocka_unit_test(test_profiles_in_cheap_modes),
        cmocka_unit_test(test_age_restarts_at_fork),
        cmocka_unit_test(test_no_dwarf_was_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
