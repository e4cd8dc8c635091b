/*
 * prof_symbol.c — what the addresses in a profile mean.
 *
 * How much a profile says about its addresses is GCMALLOC_PROFILE_SYMBOLS,
 * because the cost differs by two orders of magnitude:
 *
 *   lines      function, file, line and inlined frames, from DWARF, with
 *              libbacktrace (below).  Its first use reads the debug
 *              information of every loaded object — ~63 ms for libc, ld.so
 *              and libm with Debian's compressed -dbg files, more for a
 *              large program — once per process.
 *   functions  function names from the ELF symbol tables of the objects
 *              the addresses fall in (prof_symtab.c): well under 1 ms per
 *              object, no DWARF read.
 *   none       nothing: addresses and the mappings with their build-ids,
 *              for pprof to symbolize where the binaries are.
 *   auto       (the default) lines for a process that writes profiles
 *              as it runs (interval or signal dumps, the /debug/pprof
 *              endpoint) or has run for a second, functions before: a
 *              service or a long job pays the DWARF read once and gets
 *              files and lines; a short process under the preload library
 *              (make, a shell loop, a test suite running thousands of them)
 *              is not made several times slower.  Once the DWARF has been
 *              read anyway (a text report), auto is lines too.
 *
 * A writer picks the mode once (gcm__sym_mode_now) and uses it for every
 * address of one profile, so one profile is never a mix.  Text reports
 * (gcm__sym_mode_text) are asked for and cannot be symbolized later: auto
 * gives them lines at any run time, and none function names.
 *
 * libbacktrace (the library gcc ships as libbacktrace.a and uses for its
 * own sanitizers' reports) reads the DWARF line tables and the symbol
 * tables of the executable and of every loaded shared object (following
 * .gnu_debuglink and build-id links to separate debug files), reports
 * inlined frames innermost first, and allocates only with mmap — never
 * malloc, so it is safe in a process whose malloc is ours.  Its state is
 * made once and kept: it cannot be freed, and rebuilding it would re-read
 * the debug information.  Frames without DWARF information (libc without
 * its -dbg package) fall back to the symbol table's names.  It has no
 * cheaper entry: backtrace_syminfo reads the DWARF of everything too.
 *
 * Inline code of gcmalloc's public headers (gcm_arena_alloc's inline
 * path) is left out of a frame's inlined chain: it belongs to the call
 * into gcmalloc, as the library's own frames do, which the stack capture
 * already drops.
 *
 * Why in-process: Go 1.19's `go tool pprof` symbolizes C code poorly — it
 * has no symbol-table fallback, fails on `main` built by gcc -O2 (placed
 * in .text.startup) and shows libc frames as `[libc.so.6]` — so a profile
 * that already carries names reads well everywhere, including on a
 * machine without the binary.
 *
 * The mappings (gcm__mappings_read) are the executable segments of the
 * loaded objects as dl_iterate_phdr reports them, main executable first,
 * each with its path and GNU build-id, as pprof expects them.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#include <backtrace.h>

#include "internal.h"

/* --- libbacktrace --------------------------------------------------------------- */

static struct backtrace_state *state;
static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t sym_errors; /* messages libbacktrace reported (no debug info...) */

static void on_error(void *data, const char *msg, int errnum)
{
    (void)data;
    (void)msg;
    (void)errnum;
    GCM_ADD(&sym_errors, 1);
}

static struct backtrace_state *get_state(void)
{
    struct backtrace_state *s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    if (s != NULL)
        return s;
    pthread_mutex_lock(&state_mu);
    s = state;
    if (s == NULL) {
        s = backtrace_create_state(NULL, 1, on_error, NULL);
        __atomic_store_n(&state, s, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&state_mu);
    return s;
}

typedef struct resolve_ctx {
    gcm__sym_frame *out;
    int max, n;
} resolve_ctx;

static int on_pcinfo(void *data, uintptr_t pc, const char *file, int line,
                     const char *function)
{
    (void)pc;
    resolve_ctx *c = data;
    if (file == NULL && function == NULL)
        return 0;
    if (c->n < c->max) {
        c->out[c->n].function = function;
        c->out[c->n].file = file;
        c->out[c->n].line = line > 0 ? line : 0;
        c->n++;
    }
    return c->n >= c->max; /* non-zero stops the walk */
}

static void on_syminfo(void *data, uintptr_t pc, const char *symname,
                       uintptr_t symval, uintptr_t symsize)
{
    (void)pc;
    (void)symval;
    (void)symsize;
    *(const char **)data = symname;
}

/* An inline function of gcmalloc's public headers (gcm_arena_alloc's
 * inline path): part of the call into gcmalloc, not of the program. */
static bool api_inline(const gcm__sym_frame *f)
{
    if (f->function == NULL || f->file == NULL ||
        strncmp(f->function, "gcm_", 4) != 0)
        return false;
    size_t n = strlen(f->file);
    return n > 2 && strcmp(f->file + n - 2, ".h") == 0 &&
           strstr(f->file, "gcmalloc/") != NULL;
}

/* Function, file, line and inlined frames from DWARF (lines mode). */
static int resolve_lines(uintptr_t pc, gcm__sym_frame *out, int max)
{
    struct backtrace_state *s = get_state();
    if (s == NULL)
        return 0;
    resolve_ctx c = {out, max, 0};
    backtrace_pcinfo(s, pc, on_pcinfo, on_error, &c);
    if (c.n == 0 || out[c.n - 1].function == NULL) {
        /* No DWARF for this address (or no name for the outermost frame):
         * the symbol table may still name the function. */
        const char *sym = NULL;
        backtrace_syminfo(s, pc, on_syminfo, on_error, &sym);
        if (sym != NULL) {
            if (c.n == 0) {
                out[0].function = sym;
                out[0].file = NULL;
                out[0].line = 0;
                c.n = 1;
            } else {
                out[c.n - 1].function = sym;
            }
        }
    }
    /* The stack starts where the program calls gcmalloc: leave out our
     * headers' inline code it was inlined into. */
    int skip = 0;
    while (skip < c.n - 1 && api_inline(&out[skip]))
        skip++;
    if (skip > 0) {
        memmove(out, out + skip, (size_t)(c.n - skip) * sizeof *out);
        c.n -= skip;
    }
    return c.n;
}

/* --- modes ------------------------------------------------------------------------- */

/* auto: how long a process must have run before its profiles are worth
 * the DWARF read (at most ~10% of its life at ~65-110 ms a process). */
#define AUTO_LINES_AFTER_NS ((int64_t)1000000000)

static int series; /* the process writes profiles as it runs */

void gcm__sym_series(void) { __atomic_store_n(&series, 1, __ATOMIC_RELEASE); }

gcm__sym_mode gcm__sym_mode_pick(int64_t option, int64_t ran_ns, bool in_series,
                                 bool dwarf_loaded)
{
    switch (option) {
    case GCM_SYM_LINES:
    case GCM_SYM_FUNCTIONS:
    case GCM_SYM_NONE:
        return (gcm__sym_mode)option;
    default:
        /* A series of profiles is compared with -base, which matches
         * frames by name, file and line: all of it in one mode, from the
         * first.  Once libbacktrace holds the DWARF, lines cost nothing
         * more. */
        return ran_ns >= AUTO_LINES_AFTER_NS || in_series || dwarf_loaded
                   ? GCM_SYM_LINES : GCM_SYM_FUNCTIONS;
    }
}

/* When this process was forked, if it was (0 otherwise).  A child forked
 * without exec (a worker of a pool, python's multiprocessing) lives its
 * own life from the fork: counted from the parent's start, every short
 * worker of a long-running parent would pay the DWARF read at its exit. */
static int64_t forked_ns;

int64_t gcm__sym_ran_ns(void)
{
    int64_t f = __atomic_load_n(&forked_ns, __ATOMIC_RELAXED);
    return f != 0 ? gcm__now_ns() - f : gcm__since_start_ns();
}

gcm__sym_mode gcm__sym_mode_now(void)
{
    return gcm__sym_mode_pick(gcm__opt_int(GCM_OPT_PROFILE_SYMBOLS),
                              gcm__sym_ran_ns(),
                              __atomic_load_n(&series, __ATOMIC_ACQUIRE) != 0,
                              gcm__sym_dwarf_loaded());
}

/* A text report (leak check, leak suspects, GCMALLOC_PROFILE_REPORT) is
 * asked for, read once by a person, and cannot be symbolized afterwards:
 * auto gives it files and lines whatever the run time, and none function
 * names. */
gcm__sym_mode gcm__sym_mode_text(void)
{
    switch (gcm__opt_int(GCM_OPT_PROFILE_SYMBOLS)) {
    case GCM_SYM_FUNCTIONS:
    case GCM_SYM_NONE:
        return GCM_SYM_FUNCTIONS;
    default:
        return GCM_SYM_LINES;
    }
}

bool gcm__sym_dwarf_loaded(void)
{
    return __atomic_load_n(&state, __ATOMIC_ACQUIRE) != NULL;
}

int gcm__sym_resolve(gcm__sym_mode mode, uintptr_t pc, gcm__sym_frame *out, int max)
{
    if (out == NULL || max <= 0)
        return 0;
    if (mode == GCM_SYM_LINES)
        return resolve_lines(pc, out, max);
    gcm__symtab_hit h;
    if (mode != GCM_SYM_FUNCTIONS || !gcm__symtab_lookup(pc, &h))
        return 0;
    out[0].function = h.name;
    out[0].file = NULL;
    out[0].line = 0;
    return 1;
}

/* The symbol-table form of api_inline: without files, an out-of-line copy
 * of a header's static inline function is a local symbol named gcm_ (the
 * library's own functions are global, or gcm__ and never on a stack). */
static bool api_symbol(uintptr_t pc)
{
    gcm__symtab_hit h;
    return gcm__symtab_lookup(pc, &h) && h.local &&
           strncmp(h.name, "gcm_", 4) == 0 && h.name[4] != '_';
}

int gcm__sym_api_frames(gcm__sym_mode mode, const uintptr_t *pcs, int depth)
{
    int k = 0;
    while (k < depth - 1) {
        if (mode == GCM_SYM_FUNCTIONS) {
            if (!api_symbol(pcs[k] - 1))
                break;
        } else if (mode == GCM_SYM_LINES) {
            gcm__sym_frame f[4];
            /* resolve_lines drops API frames inlined into others; one
             * left alone is a function of its own. */
            if (resolve_lines(pcs[k] - 1, f, 4) != 1 || !api_inline(&f[0]))
                break;
        } else {
            break; /* none: nothing is read, so nothing is known */
        }
        k++;
    }
    return k;
}

void gcm__sym_fork(int phase)
{
    gcm__fork_mutex(&state_mu, phase);
    gcm__symtab_fork(phase);
    if (phase == GCM_FORK_CHILD)
        __atomic_store_n(&forked_ns, gcm__now_ns(), __ATOMIC_RELAXED);
}

/* --- mappings ----------------------------------------------------------------------- */

typedef struct map_ctx {
    gcm__mapping *m;
    int n, cap;
    bool oom;
    bool first;
} map_ctx;

void gcm__phdr_build_id(const struct dl_phdr_info *info, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *nh;
            const unsigned char *desc =
                (const unsigned char *)(name + ((nh->n_namesz + 3) & ~3u));
            const char *next = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
            if (next > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0) {
                static const char hex[] = "0123456789abcdef";
                size_t k = 0;
                for (size_t j = 0; j < nh->n_descsz && k + 2 < cap; j++) {
                    out[k++] = hex[desc[j] >> 4];
                    out[k++] = hex[desc[j] & 15];
                }
                out[k] = '\0';
                return;
            }
            p = next;
        }
    }
}

static int on_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    map_ctx *c = arg;
    bool main_exe = c->first;
    c->first = false;
    char path[512];
    path[0] = '\0';
    if (main_exe) {
        gcm__exe_path(path, sizeof path);
    } else if (info->dlpi_name != NULL) {
        size_t n = strnlen(info->dlpi_name, sizeof path - 1);
        memcpy(path, info->dlpi_name, n);
        path[n] = '\0';
    }
    if (!main_exe && path[0] == '\0')
        return 0; /* nothing to name it by */
    char build_id[sizeof c->m->build_id];
    gcm__phdr_build_id(info, build_id, sizeof build_id);
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_memsz == 0)
            continue;
        if (c->n == c->cap) {
            int ncap = c->cap ? c->cap * 2 : 32;
            gcm__mapping *nm = gcm__prof_realloc(c->m, (size_t)ncap * sizeof *nm);
            if (nm == NULL) {
                c->oom = true;
                return 1;
            }
            c->m = nm;
            c->cap = ncap;
        }
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        uintptr_t lo = start & ~(pg - 1);
        gcm__mapping *m = &c->m[c->n++];
        m->start = lo;
        m->limit = (start + ph->p_memsz + pg - 1) & ~(pg - 1);
        m->offset = ph->p_offset - (start - lo);
        memcpy(m->path, path, sizeof m->path);
        memcpy(m->build_id, build_id, sizeof m->build_id);
    }
    return 0;
}

int gcm__mappings_read(gcm__mapping **out)
{
    if (out == NULL)
        return -1;
    map_ctx c = {.first = true};
    dl_iterate_phdr(on_object, &c);
    if (c.oom) {
        gcm__prof_dealloc(c.m);
        *out = NULL;
        return -1;
    }
    *out = c.m;
    return c.n;
}
