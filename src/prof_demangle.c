/*
 * prof_demangle.c — C++ function names as people read them, for profiles.
 *
 * Symbol tables, and DWARF's linkage names, name C++ functions by their
 * Itanium-mangled names (_ZN3app5Cache3putEi...).  profile.proto keeps two
 * names per function: `name`, "in human-readable form if available", and
 * `system_name`, "as identified by the system, for instance a C++ mangled
 * name".  `go tool pprof` demangles a function whose two names are equal,
 * so a profile with the mangled name in both reads well there; every other
 * reader (speedscope, Datadog's, Pyroscope's, anything built on
 * profile.proto) shows `name` as it is.  So the writer puts the mangled
 * name in system_name and this, demangled, in name.
 *
 * The form is pprof's default one (its demangler with NoParams and
 * NoTemplateParams): app::Cache::put, std::vector::_M_realloc_insert,
 * std::operator<< -- without parameters or template arguments, so that the
 * same function reads the same in every reader, `go tool pprof` included
 * (it leaves a name alone once it differs from system_name;
 * `-symbolize=remote:demangle=full` still gets the full form from
 * system_name).
 *
 * libiberty's demangler, in the callback form: it builds its parse on the
 * stack and allocates nothing, which a profile written inside the
 * preloaded malloc requires.  Its stack grows with the name (up to about
 * 110 bytes a character), so names longer than GCM_DEMANGLE_MAX, and names
 * whose parse would not fit in what is left of the calling thread's stack,
 * stay mangled.
 */
#define _GNU_SOURCE
#include <string.h>

#include <libiberty/demangle.h>

#include "internal.h"

typedef struct out {
    char *p;
    size_t len, cap;
    int depth;       /* of template arguments being left out */
    char tail[12];   /* the last characters demangled, kept or not */
    bool full;
} out;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Whether a '<' or '>' that follows tail belongs to an operator's name
 * (operator<, operator<<, operator<=>, operator->, operator>>=...) rather
 * than opening or closing template arguments. */
static bool in_operator(const char *tail)
{
    static const char *const prefixes[] = {"operator", "operator<", "operator>",
                                           "operator<<", "operator>>",
                                           "operator<=", "operator-"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (ends_with(tail, prefixes[i]))
            return true;
    return false;
}

static void put_char(out *o, char c)
{
    size_t t = strlen(o->tail);
    bool op = (c == '<' || c == '>') && in_operator(o->tail);
    if (t + 1 >= sizeof o->tail) {
        memmove(o->tail, o->tail + 1, t - 1);
        t--;
    }
    o->tail[t] = c;
    o->tail[t + 1] = '\0';
    if (!op && c == '<') {
        o->depth++;
        return;
    }
    if (!op && c == '>' && o->depth > 0) {
        o->depth--;
        return;
    }
    if (o->depth > 0)
        return;
    if (o->len + 1 >= o->cap) {
        o->full = true;
        return;
    }
    o->p[o->len++] = c;
}

static void on_text(const char *s, size_t n, void *opaque)
{
    out *o = opaque;
    for (size_t i = 0; i < n && !o->full; i++)
        put_char(o, s[i]);
}

size_t gcm__demangle(const char *mangled, char *buf, size_t cap)
{
    if (mangled == NULL || cap == 0 || strncmp(mangled, "_Z", 2) != 0)
        return 0;
    size_t len = strlen(mangled);
    /* The parse's arrays are sized by the name before anything is read
     * (measured: 73-110 bytes a character, 22 KB for a 207-character
     * std::map member).  Reports and profiles are written on whatever
     * thread asks -- a collection's leak report on a thread of 64 KiB, a
     * program calling exit from a small worker -- so a name whose parse
     * would not fit in what is left of this thread's stack stays mangled,
     * rather than the program overrunning its stack. */
    if (len > GCM_DEMANGLE_MAX || gcm__stack_room() < GCM_DEMANGLE_STACK(len))
        return 0;
    out o = {.p = buf, .cap = cap};
    /* No DMGL_PARAMS: no parameter list, no return type. */
    if (!cplus_demangle_v3_callback(mangled, DMGL_NO_OPTS, on_text, &o) || o.full)
        return 0;
    /* "std::operator<< <char>" loses its arguments, not the space. */
    size_t w = 0;
    for (size_t r = 0; r < o.len; r++) {
        if (buf[r] == ' ' && (r + 1 == o.len || buf[r + 1] == ':'))
            continue;
        buf[w++] = buf[r];
    }
    buf[w] = '\0';
    return w;
}

const char *gcm__demangled(const char *name, char *buf, size_t cap)
{
    return name != NULL && gcm__demangle(name, buf, cap) > 0 ? buf : name;
}
