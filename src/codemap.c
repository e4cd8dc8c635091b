/*
 * codemap.c — the process's address map: where a loaded object's code
 * lies, which mapping holds an address, and the next definition of a
 * symbol gcmalloc interposes.
 *
 * Several interposed functions behave differently for calls that come from
 * inside a library gcmalloc depends on (bdwgc's own sigaction, the C
 * library's own mmap): they tell those calls apart by the caller's return
 * address.  dladdr would answer that per call, but it takes the dynamic
 * loader's lock, which is neither cheap nor async-signal-safe (sigaction
 * and sigprocmask are called from signal handlers).  So the executable
 * segments of the few objects that matter are looked up once, at start-up,
 * and each call compares two integers.
 *
 * An interposed function reaches the C library's definition through
 * dlsym(RTLD_NEXT): resolved once into a slot, read with one acquire load
 * afterwards.  dlsym may allocate (under the preload library, from our own
 * malloc, which is ready before any interposer can be called).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct find {
    uintptr_t addr, lo, hi;
    const char *name;
};

/* Is f->addr inside one of this object's loadable segments?  If so, the
 * object's executable range and name go into f and the walk stops. */
static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct find *f = arg;
    bool mine = false;
    uintptr_t lo = 0, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (f->addr >= s && f->addr < e)
            mine = true;
        if (!(ph->p_flags & PF_X))
            continue;
        if (lo == 0 || s < lo)
            lo = s;
        if (e > hi)
            hi = e;
    }
    if (!mine)
        return 0;
    f->lo = lo;
    f->hi = hi;
    f->name = info->dlpi_name;
    return 1;
}

/* One walk of the loaded objects' program headers.  (dladdr would find the
 * object too, but it also searches the object's symbol table for the
 * nearest symbol: at start-up that was most of the preload library's own
 * instructions.) */
void gcm__code_range(const void *sym, uintptr_t *lo, uintptr_t *hi)
{
    struct find f = {(uintptr_t)sym, 0, 0, NULL};
    dl_iterate_phdr(find_object, &f);
    *lo = f.lo;
    *hi = f.hi;
}

/* The path the loader knows the object by ("" for the executable), valid
 * while it stays loaded; NULL when no loaded object holds addr (generated
 * code).  One walk of the program headers: callers cache the answer. */
const char *gcm__object_name(const void *addr)
{
    struct find f = {(uintptr_t)addr, 0, 0, NULL};
    dl_iterate_phdr(find_object, &f);
    return f.name;
}

static uintptr_t parse_hex(const char **s)
{
    uintptr_t v = 0;
    for (;;) {
        char c = **s;
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return v;
        v = v * 16 + d;
        (*s)++;
    }
}

/* The mapping of /proc/self/maps that contains p, read in pieces into a
 * stack buffer: no malloc, no lock of ours, so the collector may ask with
 * the world stopped.  *grows: it is the main thread's "[stack]", which the
 * kernel extends downwards on demand. */
bool gcm__mapping_of(uintptr_t p, uintptr_t *lo, uintptr_t *hi, bool *grows)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[4096];
    size_t have = 0;
    bool found = false;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *line = buf;
        char *nl;
        while ((nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
            const char *s = line;
            uintptr_t a = parse_hex(&s);
            if (*s == '-') {
                s++;
                uintptr_t b = parse_hex(&s);
                if (p >= a && p < b) {
                    *lo = a;
                    *hi = b;
                    *nl = '\0';
                    *grows = strstr(s, "[stack]") != NULL;
                    found = true;
                    break;
                }
            }
            line = nl + 1;
        }
        if (found)
            break;
        size_t rest = have - (size_t)(line - buf);
        if (rest == sizeof buf - 1)
            rest = 0; /* a line longer than the buffer: skip it */
        memmove(buf, line, rest);
        have = rest;
    }
    close(fd);
    return found;
}

void gcm__exe_path(char *buf, size_t cap)
{
    ssize_t n = cap > 1 ? readlink("/proc/self/exe", buf, cap - 1) : -1;
    if (cap > 0)
        buf[n > 0 ? n : 0] = '\0';
}

void *gcm__next_symbol(void **slot, const char *name)
{
    void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (GCM_UNLIKELY(p == NULL)) {
        p = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, p, __ATOMIC_RELEASE);
    }
    return p;
}
