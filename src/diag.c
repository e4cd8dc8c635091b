/*
 * diag.c — the one diagnostics sink.
 *
 * Every message gcmalloc prints (bad option values, misuse reports, the
 * verbose option listing) goes through here.  The sink must work inside
 * malloc, inside a signal-driven dump, and before libc has finished
 * starting, so it never allocates: messages are formatted by a small
 * integer-only printf into a stack buffer and written with one write(2), so
 * lines from different threads do not interleave.
 *
 * glibc's snprintf is not used because it may call malloc (positional
 * arguments, wide strings, some floating-point conversions), and the
 * preloaded library would then re-enter itself.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static int diag_fd = 2;

int gcm__diag_fd(void) { return __atomic_load_n(&diag_fd, __ATOMIC_RELAXED); }

int gcm__write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* strerror() may allocate for unknown codes; strerrordesc_np never does. */
const char *gcm__strerror(int e)
{
    const char *s = strerrordesc_np(e);
    return s != NULL ? s : "unknown error";
}

void gcm__expand_path(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in != '\0' && n + 1 < cap; in++) {
        if (in[0] == '%' && in[1] == 'p') {
            n += gcm__fmt(out + n, cap - n, "%d", (int)getpid());
            if (n >= cap)
                n = cap - 1;
            in++;
        } else {
            out[n++] = *in;
        }
    }
    out[n] = '\0';
}

int gcm__open_output(const char *path, bool append)
{
    if (path == NULL || path[0] == '\0')
        return -1;
    if (strcmp(path, "stderr") == 0)
        return 2;
    if (strcmp(path, "stdout") == 0)
        return 1;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    int fd;
    do {
        fd = open(path, flags, 0644);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/* Where a duplicate of stderr goes: high, out of the way of the lowest-
 * free-descriptor numbering programs rely on (valgrind does the same). */
#define DIAG_FD_MIN 1000

void gcm__diag_keep_stderr(void)
{
    if (gcm__opt_int(GCM_OPT_LOG) == GCM_OUTPUT_PATH || gcm__diag_fd() != 2)
        return;
    int fd = fcntl(2, F_DUPFD_CLOEXEC, DIAG_FD_MIN);
    if (fd >= 0)
        __atomic_store_n(&diag_fd, fd, __ATOMIC_RELEASE);
}

void gcm__diag_open(void)
{
    if (gcm__opt_int(GCM_OPT_LOG) != GCM_OUTPUT_PATH)
        return;
    const char *path = gcm__opt_str(GCM_OPT_LOG);
    int fd = gcm__open_output(path, true);
    if (fd < 0) {
        int e = errno;
        gcm__diag("GCMALLOC_LOG=\"%s\": cannot open (%s); using default stderr",
                  path, gcm__strerror(e));
        return;
    }
    __atomic_store_n(&diag_fd, fd, __ATOMIC_RELEASE);
}

/* --- the formatter ------------------------------------------------------ */

typedef struct out {
    char *buf;
    size_t cap; /* including room for the NUL */
    size_t len; /* length that would have been written */
} out;

static void put(out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void put_pad(out *o, char c, int n)
{
    while (n-- > 0)
        put(o, c);
}

static void put_str(out *o, const char *s, size_t n, int width, bool left)
{
    int pad = width > (int)n ? width - (int)n : 0;
    if (!left)
        put_pad(o, ' ', pad);
    for (size_t i = 0; i < n; i++)
        put(o, s[i]);
    if (left)
        put_pad(o, ' ', pad);
}

static void put_num(out *o, unsigned long long v, bool neg, unsigned base,
                    int width, bool left, bool zero, const char *prefix)
{
    char tmp[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v != 0);
    int plen = (int)strlen(prefix) + (neg ? 1 : 0);
    int pad = width > n + plen ? width - n - plen : 0;
    if (!left && !zero)
        put_pad(o, ' ', pad);
    if (neg)
        put(o, '-');
    for (const char *p = prefix; *p; p++)
        put(o, *p);
    if (!left && zero)
        put_pad(o, '0', pad);
    while (n > 0)
        put(o, tmp[--n]);
    if (left)
        put_pad(o, ' ', pad);
}

size_t gcm__vfmt(char *buf, size_t cap, const char *fmt, va_list ap)
{
    out o = {buf, cap, 0};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&o, *f);
            continue;
        }
        f++;
        bool left = false, zero = false;
        for (;; f++) {
            if (*f == '-')
                left = true;
            else if (*f == '0')
                zero = true;
            else
                break;
        }
        int width = 0;
        if (*f == '*') {
            width = va_arg(ap, int);
            if (width < 0) {
                left = true;
                width = -width;
            }
            f++;
        } else {
            while (*f >= '0' && *f <= '9')
                width = width * 10 + (*f++ - '0');
        }
        int prec = -1;
        if (*f == '.') {
            f++;
            prec = 0;
            if (*f == '*') {
                prec = va_arg(ap, int);
                f++;
            } else {
                while (*f >= '0' && *f <= '9')
                    prec = prec * 10 + (*f++ - '0');
            }
        }
        int lng = 0; /* 0 int, 1 long, 2 long long, 3 size_t, 4 intmax */
        if (*f == 'l') {
            lng = 1;
            if (*++f == 'l') {
                lng = 2;
                f++;
            }
        } else if (*f == 'z') {
            lng = 3;
            f++;
        } else if (*f == 'j') {
            lng = 4;
            f++;
        }
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s == NULL)
                s = "(null)";
            size_t n = prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
            put_str(&o, s, n, width, left);
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            put_str(&o, &c, 1, width, left);
            break;
        }
        case 'd':
        case 'i': {
            long long v;
            switch (lng) {
            case 1: v = va_arg(ap, long); break;
            case 2: v = va_arg(ap, long long); break;
            case 3: v = (long long)va_arg(ap, ssize_t); break;
            case 4: v = (long long)va_arg(ap, intmax_t); break;
            default: v = va_arg(ap, int); break;
            }
            bool neg = v < 0;
            unsigned long long u = neg ? 0ULL - (unsigned long long)v
                                       : (unsigned long long)v;
            put_num(&o, u, neg, 10, width, left, zero, "");
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v;
            switch (lng) {
            case 1: v = va_arg(ap, unsigned long); break;
            case 2: v = va_arg(ap, unsigned long long); break;
            case 3: v = va_arg(ap, size_t); break;
            case 4: v = (unsigned long long)va_arg(ap, uintmax_t); break;
            default: v = va_arg(ap, unsigned); break;
            }
            put_num(&o, v, false, *f == 'x' ? 16 : 10, width, left, zero, "");
            break;
        }
        case 'p': {
            uintptr_t v = (uintptr_t)va_arg(ap, void *);
            put_num(&o, v, false, 16, width, left, false, "0x");
            break;
        }
        case '%':
            put(&o, '%');
            break;
        case '\0':
            f--; /* a lone '%' at the end: print nothing more */
            break;
        default: /* unknown conversion: show it rather than guess */
            put(&o, '%');
            put(&o, *f);
            break;
        }
    }
    if (cap > 0)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

size_t gcm__fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = gcm__vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* --- messages ----------------------------------------------------------- */

#define DIAG_MAX 1024

static void emit(const char *prefix, const char *fmt, va_list ap)
{
    char line[DIAG_MAX];
    size_t plen = strlen(prefix);
    memcpy(line, prefix, plen);
    size_t n = gcm__vfmt(line + plen, sizeof line - plen - 1, fmt, ap);
    size_t len = plen + n;
    if (len > sizeof line - 2) {
        len = sizeof line - 2; /* truncated: mark it */
        memcpy(line + len - 3, "...", 3);
    }
    line[len++] = '\n';
    int saved = errno;
    (void)gcm__write_all(gcm__diag_fd(), line, len);
    errno = saved;
}

void gcm__diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("gcmalloc: ", fmt, ap);
    va_end(ap);
}

void gcm__diag_misuse(const void *where, const char *fmt, ...)
{
    char msg[DIAG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    gcm__vfmt(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* dladdr does not allocate; it names the function when the caller's
     * object exports it, which is enough to find the call site together
     * with the address (addr2line -e <object> <offset>). */
    Dl_info info;
    if (where != NULL && dladdr(where, &info) != 0 && info.dli_fname != NULL) {
        uintptr_t off = (uintptr_t)where - (uintptr_t)info.dli_fbase;
        if (info.dli_sname != NULL)
            gcm__diag("misuse: %s (at %s+0x%zx in %s, offset 0x%zx)", msg,
                      info.dli_sname,
                      (size_t)((uintptr_t)where - (uintptr_t)info.dli_saddr),
                      info.dli_fname, (size_t)off);
        else
            gcm__diag("misuse: %s (at %p in %s, offset 0x%zx)", msg, where,
                      info.dli_fname, (size_t)off);
    } else {
        gcm__diag("misuse: %s (at %p)", msg, where);
    }
}
