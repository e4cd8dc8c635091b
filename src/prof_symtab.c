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
 *      separate debug file, or failing both its .dynsym.  The debug file
 *      is found as gdb finds it: by build-id first
 *      (/usr/lib/debug/.build-id/xx/yyyy.debug, how distributions install
 *      them), then by the file name in the object's .gnu_debuglink section,
 *      looked for beside the object, in its .debug/ subdirectory, and under
 *      /usr/lib/debug followed by the object's directory (how a program
 *      built with objcopy --only-keep-debug / --add-gnu-debuglink keeps
 *      them, and an object linked without a build-id can only be found).
 *      Only the ELF header, the section headers, the symbol table and its
 *      string table are read — never a .debug_* section — so a debug file
 *      costs a read of its symbol table (0.8 ms for libc's 10,000 symbols)
 *      rather than the inflation of its DWARF (47 ms).
 *
 *      A debuglink names its file by name only, so a file of that name may
 *      be another build's (a library rebuilt beside yesterday's debug
 *      file), whose symbols would name every address wrongly — worse than
 *      no name.  The link also carries the CRC-32 of the debug file, and a
 *      file whose CRC differs is passed over, as gdb passes it over.  That
 *      reads the whole file, DWARF included (not inflated): measured here
 *      on libc's 4.2 MB debug file, 0.8–1.1 ms in the page cache and 3 ms
 *      out of it, about what its symbol table costs, so a debug file found
 *      this way costs twice what it would by build-id; ~0.25 ms a MB, on a
 *      path taken only for objects whose build-id leads to no file.  The
 *      cheaper checks are not enough: the file's size or time say nothing
 *      of its build, and an object linked without a build-id has none to
 *      compare with the debug file's.
 *   3. Function symbols (STT_FUNC, STT_GNU_IFUNC, with a size) are sorted
 *      by address; of several at one address (aliases) a global name is
 *      kept before a weak one before a local one.  gcc's clone suffixes
 *      (.part.0, .isra.0, .constprop.0, .cold) and symbol versions
 *      (@@GLIBC_2.34) are cut off, so the name is the function's name in
 *      the source, as DWARF gives it.  Only these names are kept, not the
 *      whole string table.
 *
 * Nothing here calls malloc (the preload library replaces it): tables come
 * from gcm__prof_alloc, files are read with pread, the sort is gcm__sort
 * (glibc's qsort may allocate), and the CRC is zlib's crc32, which
 * allocates nothing (zlib allocates only for its streams).  Tables are kept
 * for the life of the process, like libbacktrace's.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

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
    bool found;
    uintptr_t bias;
    char path[512];      /* "" for the main executable                   */
    object *cached;      /* the object, when it was read already          */
    char build_id[68];   /* only when it was not: load_object's to use    */
} find_ctx;

/* The object read already at c's bias and path (S.mu held). */
static object *cached_object(const find_ctx *c)
{
    for (object *o = S.objects; o != NULL; o = o->next)
        if (o->bias == c->bias && strcmp(o->path, c->path) == 0)
            return o;
    return NULL;
}

/* Runs under S.mu (gcm__symtab_lookup holds it across the walk). */
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
        gcm__fmt(c->path, sizeof c->path, "%s",
                 info->dlpi_name != NULL ? info->dlpi_name : "");
        /* The build-id (a walk of the notes) only for an object not read
         * yet: every symbolized address comes through here. */
        c->cached = cached_object(c);
        if (c->cached == NULL)
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
 * class.  *names is the index of the section holding their names. */
static ElfW(Shdr) *read_sections(int fd, size_t *n, size_t *names)
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
    *names = eh.e_shstrndx;
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

/* Reads the .symtab of the separate debug file open on fd into o.  The
 * debug file has the object's full symbol table (static functions too) at
 * the same link-time addresses, so the object's bias applies to it. */
static bool read_debug_file(int fd, object *o)
{
    size_t n = 0, names = 0;
    ElfW(Shdr) *sh = read_sections(fd, &n, &names);
    size_t st = sh != NULL ? find_section(sh, n, SHT_SYMTAB) : 0;
    bool ok = st != 0 && read_symbols(fd, sh, n, st, o);
    gcm__prof_dealloc(sh);
    return ok;
}

/* The debug file named by the object's build-id.  Nothing to verify: the
 * build-id is a hash of the object, and the path is made of it. */
static bool load_by_build_id(object *o, const char *build_id)
{
    if (build_id[0] == '\0' || build_id[1] == '\0')
        return false;
    char dbg[160];
    gcm__fmt(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug", build_id,
             build_id + 2);
    int fd = open_elf(dbg);
    if (fd < 0)
        return false;
    bool ok = read_debug_file(fd, o);
    close(fd);
    return ok;
}

/* What an object's .gnu_debuglink section holds: the debug file's name,
 * without a directory (objcopy --add-gnu-debuglink keeps only the last
 * component), and the CRC-32 of the whole debug file. */
typedef struct debuglink {
    char name[256];
    uint32_t crc;
} debuglink;

/* Reads the .gnu_debuglink section of the ELF file open on fd (sections sh,
 * their names in section `names`).  false when there is none, or it is
 * malformed: a name that is empty, has a '/' (it could then name any file
 * on the system), or leaves no room for the CRC. */
static bool read_debuglink(int fd, const ElfW(Shdr) *sh, size_t nsh, size_t names,
                           debuglink *out)
{
    if (names == 0 || names >= nsh || sh[names].sh_type != SHT_STRTAB ||
        sh[names].sh_size == 0 || sh[names].sh_size > 65536)
        return false;
    size_t strsz = sh[names].sh_size;
    char *str = gcm__prof_alloc(strsz + 1);
    if (str == NULL || !read_at(fd, str, strsz, sh[names].sh_offset)) {
        gcm__prof_dealloc(str);
        return false;
    }
    str[strsz] = '\0';
    size_t at = 0;
    for (size_t i = 1; i < nsh && at == 0; i++)
        if (sh[i].sh_type == SHT_PROGBITS && sh[i].sh_name < strsz &&
            strcmp(str + sh[i].sh_name, ".gnu_debuglink") == 0)
            at = i;
    gcm__prof_dealloc(str);
    /* The name, NUL-terminated and padded to 4 bytes, then the CRC in the
     * object's byte order: this machine's, as the object is loaded here. */
    char sec[sizeof out->name + 8];
    size_t size = at != 0 ? sh[at].sh_size : 0;
    if (size < 6 || size > sizeof sec || !read_at(fd, sec, size, sh[at].sh_offset))
        return false;
    size_t len = strnlen(sec, size);
    size_t crc_at = (len + 4) & ~(size_t)3;
    if (len == 0 || len >= sizeof out->name || memchr(sec, '/', len) != NULL ||
        crc_at + 4 > size)
        return false;
    memcpy(out->name, sec, len + 1);
    memcpy(&out->crc, sec + crc_at, 4);
    return true;
}

/* The CRC-32 of the whole file open on fd, as objcopy computes it for the
 * debuglink: zlib's crc32 (the same polynomial; tables built in, nothing
 * allocated), over 64 KiB reads. */
static bool file_crc(int fd, uint32_t *out)
{
    enum { CHUNK = 64 * 1024 };
    unsigned char *buf = gcm__prof_alloc(CHUNK);
    if (buf == NULL)
        return false;
    uLong crc = crc32(0, Z_NULL, 0);
    uint64_t off = 0;
    bool ok = true;
    for (;;) {
        ssize_t r = pread(fd, buf, CHUNK, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ok = r == 0;
            break;
        }
        crc = crc32(crc, buf, (uInt)r);
        off += (uint64_t)r;
    }
    gcm__prof_dealloc(buf);
    *out = (uint32_t)crc;
    return ok;
}

/* The debug file named by the object's debuglink, looked for where gdb
 * looks: the object's directory, its .debug/ subdirectory, and the global
 * debug directory followed by the object's directory
 * (/usr/lib/debug/usr/lib/x86_64-linux-gnu/libfoo.so.debug).  path is the
 * object's path as the dynamic loader has it; a relative one has no place
 * under /usr/lib/debug, so only the first two are tried for it.  A file
 * whose CRC differs is another build's (say, a library rebuilt next to
 * yesterday's debug file): its symbols would name every address wrongly,
 * which is worse than no name, so it is passed over as gdb passes it over,
 * and the search goes on. */
static bool load_by_debuglink(object *o, const char *path, const debuglink *link)
{
    const char *slash = strrchr(path, '/');
    const char *dir = slash != NULL ? path : ".";
    int dirlen = slash != NULL ? (int)(slash - path) : 1;
    for (int where = 0; where < 3; where++) {
        char file[1024];
        size_t len;
        if (where == 0)
            len = gcm__fmt(file, sizeof file, "%.*s/%s", dirlen, dir, link->name);
        else if (where == 1)
            len = gcm__fmt(file, sizeof file, "%.*s/.debug/%s", dirlen, dir, link->name);
        else if (dir[0] == '/')
            len = gcm__fmt(file, sizeof file, "/usr/lib/debug%.*s/%s", dirlen, dir,
                           link->name);
        else
            break;
        if (len >= sizeof file)
            continue;
        int fd = open_elf(file);
        if (fd < 0)
            continue;
        uint32_t crc = 0;
        bool match = file_crc(fd, &crc) && crc == link->crc;
        bool ok = match && read_debug_file(fd, o);
        close(fd);
        if (match)
            return ok;
    }
    return false;
}

/* Reads o's symbol table: the object's .symtab; when it was stripped, its
 * separate debug file's, found by build-id first (distributions install
 * debug files that way, and the path needs no check), then by debuglink;
 * failing those, its .dynsym (exported functions only). */
static void load_object(object *o, const find_ctx *c)
{
    int fd = open_elf(c->path[0] == '\0' ? "/proc/self/exe" : c->path);
    if (fd < 0)
        return;
    size_t nsh = 0, names = 0;
    ElfW(Shdr) *sh = read_sections(fd, &nsh, &names);
    if (sh == NULL) {
        close(fd);
        return;
    }
    size_t symtab = find_section(sh, nsh, SHT_SYMTAB);
    bool done = symtab != 0 && read_symbols(fd, sh, nsh, symtab, o);
    if (!done)
        done = load_by_build_id(o, c->build_id);
    debuglink link;
    if (!done && read_debuglink(fd, sh, nsh, names, &link)) {
        /* The main executable's directory is where /proc/self/exe points,
         * not /proc/self. */
        char exe[512];
        const char *path = c->path;
        if (path[0] == '\0') {
            gcm__exe_path(exe, sizeof exe);
            path = exe;
        }
        done = path[0] != '\0' && load_by_debuglink(o, path, &link);
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
    if (c->cached != NULL)
        return c->cached;
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
    load_object(o, c);
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
