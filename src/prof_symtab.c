/*
 * prof_symtab.c — function names from ELF symbol tables, without DWARF.
 *
 * libbacktrace (prof_symbol.c) names addresses well but reads everything
 * at once: the first address it is asked about, even through its
 * symbol-table call, loads the DWARF of every loaded object and of their
 * separate debug files.  With Debian's -dbg packages that is ~63 ms for
 * libc, ld.so and libm alone, over half of it inflating their compressed
 * .debug_* sections — more than a short-lived process spends on its own
 * work.  A function name needs far less: the object's symbol table.
 *
 * This file reads only that, and only for the objects the profile's
 * addresses fall in:
 *
 *   1. dl_iterate_phdr finds the object holding the address (its load
 *      bias, path and build-id); objects are cached by (bias, path), so a
 *      library dlclose'd and replaced by another at the same address is
 *      read anew.
 *   2. The object's .symtab, or when it was stripped the .symtab of its
 *      separate debug file (/usr/lib/debug/.build-id/xx/yyyy.debug), or
 *      failing both its .dynsym.  Only the ELF header, the section headers,
 *      the symbol table and its string table are read — never a .debug_*
 *      section — so a debug file costs a read of its symbol table (0.8 ms
 *      for libc's 10,000 symbols) rather than the inflation of its DWARF
 *      (47 ms).
 *   3. Function symbols (STT_FUNC, STT_GNU_IFUNC, with a size) are sorted
 *      by address; of several at one address (aliases) a global name is
 *      kept before a weak one before a local one.  gcc's clone suffixes
 *      (.part.0, .isra.0, .constprop.0, .cold) and symbol versions
 *      (@@GLIBC_2.34) are cut off, so the name is the function's name in
 *      the source, as DWARF gives it.  Only these names are kept, not the
 *      whole string table.
 *
 * Nothing here calls malloc (the preload library replaces it): tables come
 * from gcm__prof_alloc, files are read with pread, and the sort is
 * gcm__sort (glibc's qsort may allocate).  Tables are kept for
 * the life of the process, like libbacktrace's.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

typedef struct fsym {
    uintptr_t addr;      /* link-time address (st_value)              */
    uint32_t size;
    uint32_t name;       /* offset in the object's strtab             */
    uint8_t rank;        /* 0 global, 1 weak, 2 local: lower is kept  */
} fsym;

typedef struct object {
    struct object *next;
    uintptr_t bias;      /* dlpi_addr                                  */
    char *path;          /* "" for the main executable                 */
    fsym *syms;
    size_t n;
    char *strtab;        /* while reading: the string table; then the
                            kept functions' names only                 */
} object;

static struct {
    pthread_mutex_t mu;
    object *objects;
    unsigned files_read; /* ELF files opened, debug files included     */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* --- finding the object of an address ------------------------------------------- */

typedef struct find_ctx {
    uintptr_t pc;
    bool found, main_exe;
    uintptr_t bias;
    char path[512];
    char build_id[68];
} find_ctx;

static int on_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    find_ctx *c = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type != PT_LOAD || c->pc < start || c->pc - start >= ph->p_memsz)
            continue;
        c->found = true;
        c->bias = info->dlpi_addr;
        c->main_exe = info->dlpi_name == NULL || info->dlpi_name[0] == '\0';
        gcm__fmt(c->path, sizeof c->path, "%s", c->main_exe ? "" : info->dlpi_name);
        gcm__phdr_build_id(info, c->build_id, sizeof c->build_id);
        return 1;
    }
    return 0;
}

/* --- reading an ELF file ----------------------------------------------------------- */

static bool read_at(int fd, void *p, size_t n, uint64_t off)
{
    char *d = p;
    while (n > 0) {
        ssize_t r = pread(fd, d, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        d += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return true;
}

/* The section headers of the ELF file open on fd (*n of them, from
 * gcm__prof_alloc), or NULL when it is not an ELF file of this machine's
 * class. */
static ElfW(Shdr) *read_sections(int fd, size_t *n)
{
    ElfW(Ehdr) eh;
    if (!read_at(fd, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
        eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0 || eh.e_shoff == 0)
        return NULL;
    ElfW(Shdr) *sh = gcm__prof_alloc((size_t)eh.e_shnum * sizeof *sh);
    if (sh == NULL)
        return NULL;
    if (!read_at(fd, sh, (size_t)eh.e_shnum * sizeof *sh, eh.e_shoff)) {
        gcm__prof_dealloc(sh);
        return NULL;
    }
    *n = eh.e_shnum;
    return sh;
}

static uint8_t rank_of(unsigned char info)
{
    switch (ELF64_ST_BIND(info)) {
    case STB_GLOBAL: return 0;
    case STB_WEAK: return 1;
    default: return 2;
    }
}

static bool is_function(const ElfW(Sym) *s, size_t strsz)
{
    unsigned t = ELF64_ST_TYPE(s->st_info);
    return (t == STT_FUNC || t == STT_GNU_IFUNC) && s->st_shndx != SHN_UNDEF &&
           s->st_size > 0 && s->st_size <= UINT32_MAX && s->st_name != 0 &&
           s->st_name < strsz;
}

/* Reads the function symbols of symbol-table section `which` (and its
 * string table) into o.  false when the section cannot be read. */
static bool read_symbols(int fd, const ElfW(Shdr) *sh, size_t nsh, size_t which,
                         object *o)
{
    const ElfW(Shdr) *st = &sh[which];
    if (st->sh_entsize != sizeof(ElfW(Sym)) || st->sh_link >= nsh ||
        (st->sh_flags & SHF_COMPRESSED))
        return false;
    const ElfW(Shdr) *str = &sh[st->sh_link];
    if (str->sh_type != SHT_STRTAB || (str->sh_flags & SHF_COMPRESSED) ||
        str->sh_size == 0 || str->sh_size > ((size_t)1 << 30))
        return false;
    size_t strsz = str->sh_size;
    char *strtab = gcm__prof_alloc(strsz + 1);
    if (strtab == NULL || !read_at(fd, strtab, strsz, str->sh_offset)) {
        gcm__prof_dealloc(strtab);
        return false;
    }
    strtab[strsz] = '\0';

    /* The symbols, a chunk at a time: only functions are kept. */
    enum { CHUNK = 1024 };
    ElfW(Sym) *chunk = gcm__prof_alloc(CHUNK * sizeof *chunk);
    fsym *syms = NULL;
    size_t n = 0, cap = 0, total = st->sh_size / sizeof(ElfW(Sym));
    bool ok = chunk != NULL;
    for (size_t i = 0; ok && i < total; i += CHUNK) {
        size_t k = total - i < CHUNK ? total - i : CHUNK;
        ok = read_at(fd, chunk, k * sizeof *chunk, st->sh_offset + i * sizeof *chunk);
        for (size_t j = 0; ok && j < k; j++) {
            const ElfW(Sym) *s = &chunk[j];
            if (!is_function(s, strsz))
                continue;
            ok = gcm__prof_grow((void **)&syms, &cap, n + 1, sizeof *syms);
            if (ok)
                syms[n++] = (fsym){s->st_value, (uint32_t)s->st_size,
                                   s->st_name, rank_of(s->st_info)};
        }
    }
    gcm__prof_dealloc(chunk);
    if (!ok) {
        gcm__prof_dealloc(syms);
        gcm__prof_dealloc(strtab);
        return false;
    }
    o->syms = syms;
    o->n = n;
    o->strtab = strtab;
    return true;
}

/* The index of the first section of `type` in sh, or 0 (never a real
 * symbol table: section 0 is the null section). */
static size_t find_section(const ElfW(Shdr) *sh, size_t nsh, uint32_t type)
{
    for (size_t i = 1; i < nsh; i++)
        if (sh[i].sh_type == type && sh[i].sh_size > 0)
            return i;
    return 0;
}

static int open_elf(const char *path)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0)
        GCM_ADD(&S.files_read, 1);
    return fd;
}

/* Reads o's symbol table from the file at path, or from the separate debug
 * file named by build_id when the file has no .symtab, or its .dynsym. */
static void load_object(object *o, const char *path, const char *build_id)
{
    int fd = open_elf(path);
    if (fd < 0)
        return;
    size_t nsh = 0;
    ElfW(Shdr) *sh = read_sections(fd, &nsh);
    if (sh == NULL) {
        close(fd);
        return;
    }
    size_t symtab = find_section(sh, nsh, SHT_SYMTAB);
    bool done = symtab != 0 && read_symbols(fd, sh, nsh, symtab, o);
    if (!done && build_id[0] != '\0' && build_id[1] != '\0') {
        /* Stripped: the debug file has the full symbol table (static
         * functions too).  Same link-time addresses, so the same bias. */
        char dbg[160];
        gcm__fmt(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug",
                 build_id, build_id + 2);
        int dfd = open_elf(dbg);
        if (dfd >= 0) {
            size_t dn = 0;
            ElfW(Shdr) *dsh = read_sections(dfd, &dn);
            size_t ds = dsh != NULL ? find_section(dsh, dn, SHT_SYMTAB) : 0;
            done = ds != 0 && read_symbols(dfd, dsh, dn, ds, o);
            gcm__prof_dealloc(dsh);
            close(dfd);
        }
    }
    if (!done) {
        size_t dynsym = find_section(sh, nsh, SHT_DYNSYM);
        if (dynsym != 0)
            (void)read_symbols(fd, sh, nsh, dynsym, o);
    }
    gcm__prof_dealloc(sh);
    close(fd);
}

/* --- the sorted table -------------------------------------------------------------- */

/* By address; of several at one address, the preferred first (global,
 * weak, local), then a fixed order, so the table does not depend on the
 * sort's instability. */
static int by_addr(const void *pa, const void *pb)
{
    const fsym *a = pa, *b = pb;
    if (a->addr != b->addr)
        return a->addr < b->addr ? -1 : 1;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return a->name < b->name ? -1 : a->name > b->name;
}

/* The length of the function's name in symbol name s: up to gcc's clone
 * suffixes ("foo.part.0" -> "foo") and symbol versions
 * ("__libc_start_main@@GLIBC_2.34").  A C or C++ symbol name has no '.' or
 * '@', so what follows one is the compiler's or the linker's. */
static size_t source_name_len(const char *s)
{
    size_t n = strcspn(s, ".@");
    return n > 0 ? n : strlen(s);
}

/* Sorts o's symbols, keeps the preferred one of each address, and keeps
 * only their names, cut to the source name: a large program's string
 * table is mostly names of data and of other symbol kinds. */
static void finish(object *o)
{
    gcm__sort(o->syms, o->n, sizeof *o->syms, by_addr);
    size_t k = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (k > 0 && o->syms[k - 1].addr == o->syms[i].addr)
            continue;
        o->syms[k++] = o->syms[i];
    }
    o->n = k;
    size_t bytes = 0;
    for (size_t i = 0; i < o->n; i++)
        bytes += source_name_len(o->strtab + o->syms[i].name) + 1;
    char *names = bytes > 0 && bytes <= UINT32_MAX ? gcm__prof_alloc(bytes) : NULL;
    if (names == NULL) {
        o->n = 0; /* no memory (or nothing): no names rather than wrong ones */
    } else {
        size_t at = 0;
        for (size_t i = 0; i < o->n; i++) {
            const char *name = o->strtab + o->syms[i].name;
            size_t len = source_name_len(name);
            memcpy(names + at, name, len);
            names[at + len] = '\0';
            o->syms[i].name = (uint32_t)at;
            at += len + 1;
        }
    }
    gcm__prof_dealloc(o->strtab);
    o->strtab = names;
}

static const fsym *search(const object *o, uintptr_t addr)
{
    size_t lo = 0, hi = o->n; /* the last symbol starting at or before addr */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->syms[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const fsym *s = &o->syms[lo - 1];
    return addr - s->addr < s->size ? s : NULL;
}

/* --- lookups ------------------------------------------------------------------------- */

static object *object_for(const find_ctx *c)
{
    for (object *o = S.objects; o != NULL; o = o->next)
        if (o->bias == c->bias && strcmp(o->path, c->path) == 0)
            return o;
    object *o = gcm__prof_alloc(sizeof *o);
    size_t len = strlen(c->path);
    char *path = gcm__prof_alloc(len + 1);
    if (o == NULL || path == NULL) {
        gcm__prof_dealloc(o);
        gcm__prof_dealloc(path);
        return NULL;
    }
    memset(o, 0, sizeof *o);
    memcpy(path, c->path, len + 1);
    o->bias = c->bias;
    o->path = path;
    load_object(o, c->main_exe ? "/proc/self/exe" : c->path, c->build_id);
    finish(o);
    o->next = S.objects;
    S.objects = o;
    return o;
}

bool gcm__symtab_lookup(uintptr_t pc, gcm__symtab_hit *out)
{
    if (out == NULL)
        return false;
    find_ctx c;
    memset(&c, 0, sizeof c);
    c.pc = pc;
    pthread_mutex_lock(&S.mu);
    dl_iterate_phdr(on_object, &c);
    const fsym *s = NULL;
    object *o = c.found ? object_for(&c) : NULL;
    if (o != NULL)
        s = search(o, pc - c.bias);
    if (s != NULL) {
        out->name = o->strtab + s->name;
        out->local = s->rank == 2;
    }
    pthread_mutex_unlock(&S.mu);
    return s != NULL;
}

unsigned gcm__symtab_files_read(void) { return GCM_LOAD(&S.files_read); }

void gcm__symtab_fork(int phase) { gcm__fork_mutex(&S.mu, phase); }
