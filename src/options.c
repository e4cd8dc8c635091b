/*
 * options.c — every GCMALLOC_* environment variable, in one table.
 *
 * Go keeps each GODEBUG setting as one row of one table (runtime1.go's
 * dbgvars) and mimalloc keeps each MIMALLOC_* option as one row of
 * options.c; gcmalloc does the same.  A row holds the variable's name, its
 * type, its default written as a user would write it, its allowed range and
 * a one-line description.  docs/tuning.md documents every row, and a test
 * fails when the table and the document disagree.
 *
 * This is the only file that reads the environment.  It reads `environ`
 * directly (getenv is fine too, but the preloaded library may need an
 * option before libc has set `environ` up, in which case it reads
 * /proc/self/environ into memory it maps itself).  Nothing here allocates.
 *
 * A bad value never stops the host program: it prints one line naming the
 * variable, the value, why it was rejected and the default used instead,
 * and the program goes on with the default.  Defaults are parsed by the same
 * parser as user values, so a default that does not parse is caught by the
 * tests rather than silently used.
 *
 * Each feature adds its own rows when it lands; there are no rows for
 * features that do not exist.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define KiB ((int64_t)1 << 10)
#define MiB ((int64_t)1 << 20)
#define GiB ((int64_t)1 << 30)
#define TiB ((int64_t)1 << 40)
#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* GCMALLOC_PROFILE_SIGNAL's words; prof_dump.c maps them to signals. */
static const char *const profile_signal_words[] = {
    "off", "USR1", "USR2", "HUP", "SIGUSR1", "SIGUSR2", "SIGHUP", NULL,
};

/* The table.  Keep it in the order of gcm__opt_id (internal.h). */
static const gcm__opt_def table[GCM_OPT__COUNT] = {
    [GCM_OPT_VERBOSE] = {
        .name = "GCMALLOC_VERBOSE", .type = GCM_OT_BOOL, .def = "0",
        .doc = "print every option's effective value and its source at start-up",
    },
    [GCM_OPT_LOG] = {
        .name = "GCMALLOC_LOG", .type = GCM_OT_OUTPUT, .def = "stderr",
        .doc = "where diagnostics go: stderr, or a file path (appended to)",
    },
    [GCM_OPT_GOGC] = {
        .name = "GCMALLOC_GOGC", .type = GCM_OT_INT, .def = "100",
        .min = 0, .max = 1000000, .off_word = "off",
        .doc = "heap growth allowed between collections, in percent of the "
               "live heap (Go's GOGC); off = collect only for the memory limit",
    },
    [GCM_OPT_MEMLIMIT] = {
        .name = "GCMALLOC_MEMLIMIT", .type = GCM_OT_SIZE, .def = "off",
        .min = 0, .max = INT64_MAX - 1, .off_word = "off",
        .doc = "soft limit on all memory gcmalloc holds (Go's GOMEMLIMIT)",
    },
    [GCM_OPT_GCTRACE] = {
        .name = "GCMALLOC_GCTRACE", .type = GCM_OT_OUTPUT, .def = "0",
        .doc = "one line per collection in Go's gctrace format: 1 = stderr, "
               "or a file path (%p = pid; a forked child writes its own)",
    },
    [GCM_OPT_MARKERS] = {
        .name = "GCMALLOC_MARKERS", .type = GCM_OT_INT, .def = "0",
        .min = 0, .max = 64,
        .doc = "marker threads (1 = mark on the collecting thread only); "
               "0 = bdwgc's default, one per CPU",
    },
    [GCM_OPT_GC_SIGNALS] = {
        .name = "GCMALLOC_GC_SIGNALS", .type = GCM_OT_SIGNALS,
        .def = "SIGRTMIN+6,SIGRTMIN+5",
        .doc = "the two signals the collector stops and restarts threads "
               "with; a program's own handlers for them are refused",
    },
    [GCM_OPT_DEBUG] = {
        .name = "GCMALLOC_DEBUG", .type = GCM_OT_BOOL, .def = "0",
        .doc = "check for misuse (bad frees, double puts, stale marks) and "
               "report what and where; always on in a debug build",
    },
    [GCM_OPT_PROFILE_RATE] = {
        .name = "GCMALLOC_PROFILE_RATE", .type = GCM_OT_SIZE, .def = "512KiB",
        .min = 0, .max = GiB,
        .doc = "mean bytes allocated between two sampled allocations (Go's "
               "MemProfileRate); 1 = every allocation, 0 = profiling off",
    },
    [GCM_OPT_PROFILE] = {
        .name = "GCMALLOC_PROFILE", .type = GCM_OT_PATH, .def = "",
        .doc = "heap profile written at exit (pprof format, %p = pid); also "
               "the base name of signal and interval dumps (path.N)",
    },
    [GCM_OPT_PROFILE_SYMBOLS] = {
        .name = "GCMALLOC_PROFILE_SYMBOLS", .type = GCM_OT_ENUM, .def = "auto",
        .words = (const char *const[]){"auto", "lines", "functions", "none", NULL},
        .doc = "how profiles name addresses: lines (DWARF: files, lines, "
               "inlined frames), functions (symbol tables only), none; auto "
               "= lines once the process has run 1s, functions before",
    },
    [GCM_OPT_PROFILE_SIGNAL] = {
        .name = "GCMALLOC_PROFILE_SIGNAL", .type = GCM_OT_ENUM, .def = "off",
        .words = profile_signal_words,
        .doc = "write a numbered heap profile when this signal arrives",
    },
    [GCM_OPT_PROFILE_INTERVAL] = {
        .name = "GCMALLOC_PROFILE_INTERVAL", .type = GCM_OT_DURATION,
        .def = "off", .min = 100 * MS, .max = 24 * 3600 * SEC, .off_word = "off",
        .doc = "write a numbered heap profile this often",
    },
    [GCM_OPT_PROFILE_REPORT] = {
        .name = "GCMALLOC_PROFILE_REPORT", .type = GCM_OT_OUTPUT, .def = "0",
        .doc = "at exit, a text report of the top 10 allocation sites by "
               "in-use and by allocated bytes: 1 = stderr, or a file path",
    },
    [GCM_OPT_PROFILE_LEAK] = {
        .name = "GCMALLOC_PROFILE_LEAK", .type = GCM_OT_INT, .def = "off",
        .min = 2, .max = 1000, .off_word = "off",
        .doc = "report a site as a leak suspect when its in-use bytes grew "
               "in this many consecutive snapshots (GC cycles, interval dumps)",
    },
    [GCM_OPT_PROFILE_LEAK_MIN] = {
        .name = "GCMALLOC_PROFILE_LEAK_MIN", .type = GCM_OT_SIZE, .def = "1MiB",
        .min = 0, .max = INT64_MAX - 1,
        .doc = "a leak suspect's in-use bytes must have grown by more than "
               "this over its streak",
    },
    [GCM_OPT_ARENA_CHUNK] = {
        .name = "GCMALLOC_ARENA_CHUNK", .type = GCM_OT_SIZE, .def = "64KiB",
        .min = 4 * KiB, .max = 64 * MiB,
        .doc = "chunk size of arenas that do not set one (rounded up to a "
               "power of two); allocations above a quarter get their own",
    },
    [GCM_OPT_ARENA_POISON] = {
        .name = "GCMALLOC_ARENA_POISON", .type = GCM_OT_BOOL, .def = "0",
        .doc = "fill memory arenas release (reset, rewind, free) with 0x5a "
               "bytes, so a use after release reads garbage, not old data",
    },
    [GCM_OPT_MODE] = {
        .name = "GCMALLOC_MODE", .type = GCM_OT_ENUM, .def = "fast",
        .words = (const char *const[]){"fast", "leakcheck", "gc", NULL},
        .doc = "the preload library's malloc: fast (mimalloc), leakcheck "
               "(report unreachable memory, reclaim nothing), gc (reclaim it)",
    },
    [GCM_OPT_LEAKS] = {
        .name = "GCMALLOC_LEAKS", .type = GCM_OT_PATH, .def = "",
        .doc = "leakcheck mode: write the leaks found, by allocation site, as "
               "a pprof profile to this path at exit (%p = pid)",
    },
    [GCM_OPT_UNTRACKED_LIBS] = {
        .name = "GCMALLOC_UNTRACKED_LIBS", .type = GCM_OT_NAMES, .def = "libjvm.so",
        .off_word = "none",
        .doc = "gc and leakcheck modes: shared objects (file names, comma-"
               "separated) whose allocations are never collected nor reported: "
               "they keep pointers where no collector looks (HotSpot's libjvm.so "
               "writes them into generated code)",
    },
    [GCM_OPT_POINTER_ALIGN] = {
        .name = "GCMALLOC_POINTER_ALIGN", .type = GCM_OT_ENUM, .def = "4",
        .words = (const char *const[]){"8", "4", "2", "1", NULL},
        .doc = "bytes between the places the collector looks for a pointer "
               "inside a collected object: 8 = aligned words only (bdwgc's "
               "own); 4 also finds pointers in packed structs of ints; "
               "2 and 1 any packing, at more cost",
    },
    [GCM_OPT_POOLSTATS] = {
        .name = "GCMALLOC_POOLSTATS", .type = GCM_OT_BOOL, .def = "0",
        .doc = "print each pool's statistics (gets, hit rate and where hits "
               "came from, misses, puts, drops) at exit and when destroyed",
    },
    [GCM_OPT_PPROF_ADDR] = {
        .name = "GCMALLOC_PPROF_ADDR", .type = GCM_OT_ADDR, .def = "off",
        .min = 0, .max = 65535, .off_word = "off",
        .doc = "serve live profiles over HTTP at this host:port "
               "(/debug/pprof/heap, allocs, memstats); loopback only unless "
               "GCMALLOC_PPROF_ALLOW_REMOTE=1; port 0 = any free port",
    },
    [GCM_OPT_PPROF_ALLOW_REMOTE] = {
        .name = "GCMALLOC_PPROF_ALLOW_REMOTE", .type = GCM_OT_BOOL, .def = "0",
        .doc = "let GCMALLOC_PPROF_ADDR listen on a non-loopback address "
               "(\":port\" then means every interface)",
    },
};

/* --- effective values ---------------------------------------------------- */

#define PATH_STORE 4096

static struct {
    int64_t v;
    uint8_t src;      /* gcm__opt_source */
    char *s;          /* PATH/OUTPUT/ADDR text, in `strings` */
} vals[GCM_OPT__COUNT];

static char strings[GCM_OPT__COUNT][PATH_STORE];
static int opt_state; /* 0 = unread, 1 = reading, 2 = read */

const gcm__opt_def *gcm__opt_def_of(gcm__opt_id id)
{
    return (unsigned)id < GCM_OPT__COUNT ? &table[id] : NULL;
}

const gcm__opt_def *gcm__opt_find(const char *name)
{
    for (size_t i = 0; i < GCM_OPT__COUNT; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

const char *gcm__opt_type_name(const gcm__opt_def *d)
{
    switch (d->type) {
    case GCM_OT_BOOL: return "bool";
    case GCM_OT_INT: return "int";
    case GCM_OT_SIZE: return "size";
    case GCM_OT_DURATION: return "duration";
    case GCM_OT_ENUM: return "enum";
    case GCM_OT_PATH: return "path";
    case GCM_OT_OUTPUT: return "output";
    case GCM_OT_ADDR: return "addr";
    case GCM_OT_SIGNALS: return "signals";
    case GCM_OT_NAMES: return "names";
    }
    return "?";
}

/* --- reading the environment without malloc ------------------------------ */

extern char **environ;

static char *proc_env;      /* /proc/self/environ, when environ is NULL */
static size_t proc_env_len;

static void read_proc_environ(void)
{
    size_t cap = 256 * 1024;
    char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return;
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    if (fd >= 0) {
        while (len < cap - 1) {
            ssize_t n = read(fd, buf + len, cap - 1 - len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        close(fd);
    }
    buf[len] = '\0';
    proc_env = buf;
    proc_env_len = len;
}

static const char *match(const char *entry, const char *name, size_t nlen)
{
    if (strncmp(entry, name, nlen) == 0 && entry[nlen] == '=')
        return entry + nlen + 1;
    return NULL;
}

const char *gcm__getenv(const char *name)
{
    size_t nlen = strlen(name);
    char **env = environ;
    if (env != NULL) {
        for (; *env != NULL; env++) {
            const char *v = match(*env, name, nlen);
            if (v != NULL)
                return v;
        }
        return NULL;
    }
    if (proc_env == NULL)
        read_proc_environ();
    for (size_t off = 0; proc_env != NULL && off < proc_env_len;) {
        const char *v = match(proc_env + off, name, nlen);
        if (v != NULL)
            return v;
        off += strlen(proc_env + off) + 1;
    }
    return NULL;
}

/* --- parsers ------------------------------------------------------------- */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Copies text without surrounding blanks into buf; -1 if it does not fit. */
static int trim(const char *text, char *buf, size_t cap)
{
    while (is_space(*text))
        text++;
    size_t n = strlen(text);
    while (n > 0 && is_space(text[n - 1]))
        n--;
    if (n >= cap)
        return -1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    return 0;
}

/* trim() for a value that must say something: -1 with *why when it is too
 * long or blank. */
static int trim_value(const char *text, char *buf, size_t cap, const char **why)
{
    if (trim(text, buf, cap) != 0) {
        *why = "too long";
        return -1;
    }
    if (buf[0] == '\0') {
        *why = "empty";
        return -1;
    }
    return 0;
}

/* Parses leading decimal digits into *out; returns the count parsed, or -1
 * on overflow past INT64_MAX. */
static int parse_digits(const char *s, int64_t *out)
{
    int64_t v = 0;
    int n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        int d = s[n] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return n;
}

static int parse_int(const char *s, int64_t *out, const char **why)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    int64_t v;
    int n = parse_digits(s, &v);
    if (n < 0) {
        *why = "out of range (overflows a 64-bit integer)";
        return -1;
    }
    if (n == 0) {
        *why = "not a number";
        return -1;
    }
    if (s[n] != '\0') {
        *why = "trailing characters after the number";
        return -1;
    }
    *out = neg ? -v : v;
    return 0;
}

struct unit {
    const char *word;
    int64_t mult;
};

static const struct unit size_units[] = {
    {"B", 1},
    {"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB}, {"TiB", TiB},
    {"KB", 1000}, {"kB", 1000}, {"MB", 1000000}, {"GB", 1000000000},
    {"TB", 1000000000000},
};

static const struct unit duration_units[] = {
    {"ms", MS}, {"s", SEC}, {"m", 60 * SEC}, {"h", 3600 * SEC},
};

static int parse_with_unit(const char *s, const struct unit *units,
                           size_t nunits, bool unit_required, int64_t *out,
                           const char **why, const char *unit_help)
{
    if (*s == '-') {
        *why = "negative values are not allowed";
        return -1;
    }
    if (*s == '+')
        s++;
    int64_t v;
    int n = parse_digits(s, &v);
    if (n < 0) {
        *why = "out of range (overflows a 64-bit integer)";
        return -1;
    }
    if (n == 0) {
        *why = "not a number";
        return -1;
    }
    const char *u = s + n;
    if (*u == ' ')
        u++;
    if (*u == '\0') {
        if (unit_required && v != 0) {
            *why = unit_help;
            return -1;
        }
        *out = v;
        return 0;
    }
    if (*u == '.') {
        *why = "fractions are not accepted; use a smaller unit";
        return -1;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(u, units[i].word) == 0) {
            if (v > INT64_MAX / units[i].mult) {
                *why = "out of range (overflows a 64-bit integer)";
                return -1;
            }
            *out = v * units[i].mult;
            return 0;
        }
    }
    *why = unit_help;
    return -1;
}

int gcm__parse_size(const char *text, int64_t *out, const char **why)
{
    char buf[64];
    if (trim_value(text, buf, sizeof buf, why) != 0)
        return -1;
    return parse_with_unit(buf, size_units, GCM_ARRAY_LEN(size_units), false,
                           out, why,
                           "unknown unit (use B, KiB, MiB, GiB, TiB, or KB, "
                           "MB, GB, TB for powers of 1000)");
}

int gcm__parse_duration_ns(const char *text, int64_t *out, const char **why)
{
    char buf[64];
    if (trim_value(text, buf, sizeof buf, why) != 0)
        return -1;
    return parse_with_unit(buf, duration_units, GCM_ARRAY_LEN(duration_units),
                           true, out, why,
                           "missing or unknown unit (use ms, s, m or h, "
                           "e.g. 30s)");
}

static bool word_is(const char *s, const char *w) { return strcasecmp(s, w) == 0; }

int gcm__parse_addr(const char *text, gcm__addr *out, const char **why)
{
    char buf[128];
    if (trim_value(text, buf, sizeof buf, why) != 0)
        return -1;
    /* Split host and port at the last ':'; an IPv6 host is bracketed
     * ("[::1]:6060"), so its own colons are never mistaken for the port's. */
    char *host = buf, *port;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (close == NULL) {
            *why = "'[' without ']' (an IPv6 address is written [::1]:6060)";
            return -1;
        }
        *close = '\0';
        host = buf + 1;
        port = close + 1;
        if (*port != ':') {
            *why = "missing :port after the IPv6 address (e.g. [::1]:6060)";
            return -1;
        }
        port++;
    } else {
        char *colon = strrchr(buf, ':');
        if (colon == NULL) {
            *why = "missing :port (e.g. 127.0.0.1:6060, or :6060 for "
                   "loopback)";
            return -1;
        }
        *colon = '\0';
        port = colon + 1;
        if (strchr(host, ':') != NULL) {
            *why = "an IPv6 address must be in brackets (e.g. [::1]:6060)";
            return -1;
        }
    }
    int64_t pv;
    int n = parse_digits(port, &pv);
    if (n <= 0 || port[n] != '\0' || n > 5 || pv > 65535) {
        *why = "the port is not a number from 0 to 65535";
        return -1;
    }
    gcm__addr a;
    memset(&a, 0, sizeof a);
    a.port = (uint16_t)pv;
    static const uint8_t loopback4[4] = {127, 0, 0, 1};
    if (buf[0] == '[') {
        a.family = AF_INET6;
        if (inet_pton(AF_INET6, host, a.ip) != 1) {
            *why = "not an IPv6 address";
            return -1;
        }
    } else if (host[0] == '\0' || word_is(host, "localhost")) {
        /* ":6060" is Go's "every interface"; gcmalloc reads it as loopback
         * and widens it only where remote access is allowed (wildcard). */
        a.family = AF_INET;
        memcpy(a.ip, loopback4, 4);
        a.wildcard = host[0] == '\0';
    } else {
        a.family = AF_INET;
        if (inet_pton(AF_INET, host, a.ip) != 1) {
            *why = "the host is not an IPv4 address, [IPv6] address or "
                   "localhost (host names are not looked up)";
            return -1;
        }
    }
    *out = a;
    return 0;
}

/* The signals a collector may take over: those whose default action
 * merely terminates or is ignored, that the C library and the kernel do not
 * send on their own for a program's errors, and that bdwgc's handlers do
 * not let through while a thread is stopped (SIGINT, SIGQUIT, SIGTERM,
 * SIGABRT must stay the program's), plus every real-time signal.  The two
 * the C library reserves below SIGRTMIN (SIGCANCEL, SIGSETXID) are out of
 * range by construction. */
static bool collector_signal_ok(int sig)
{
    return sig == SIGUSR1 || sig == SIGUSR2 || sig == SIGPWR || sig == SIGXCPU ||
           sig == SIGXFSZ || sig == SIGVTALRM || (sig >= SIGRTMIN && sig <= SIGRTMAX);
}

void gcm__signal_name(int sig, char *buf, size_t cap)
{
    int lo = SIGRTMIN, hi = SIGRTMAX;
    if (sig >= lo && sig <= hi) {
        /* Written from the nearer end, as the C library's strsignal and
         * gdb's "SIG40" do not: SIGRTMIN's number differs between C
         * libraries, an offset from it does not. */
        if (sig - lo <= hi - sig)
            gcm__fmt(buf, cap, sig == lo ? "SIGRTMIN" : "SIGRTMIN+%d", sig - lo);
        else
            gcm__fmt(buf, cap, sig == hi ? "SIGRTMAX" : "SIGRTMAX-%d", hi - sig);
        return;
    }
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev != NULL)
        gcm__fmt(buf, cap, "SIG%s", abbrev);
    else
        gcm__fmt(buf, cap, "signal %d", sig);
}

/* One signal: a number, a name with or without "SIG" (any case), or
 * RTMIN+n / RTMAX-n. */
static int parse_signal(const char *s, int *out, const char **why)
{
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    int64_t n = 0;
    int sig = 0;
    if (*s >= '0' && *s <= '9') {
        int k = parse_digits(s, &n);
        if (k < 0 || s[k] != '\0' || n > 255) {
            *why = "not a signal name or number";
            return -1;
        }
        sig = (int)n;
    } else if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
        bool from_min = (s[4] == 'N' || s[4] == 'n');
        const char *t = s + 5;
        if (*t != '\0') {
            if (*t != (from_min ? '+' : '-')) {
                *why = from_min ? "write SIGRTMIN+n" : "write SIGRTMAX-n";
                return -1;
            }
            int k = parse_digits(t + 1, &n);
            if (k <= 0 || t[1 + k] != '\0' || n > 255) {
                *why = "not a signal name or number";
                return -1;
            }
        }
        sig = from_min ? SIGRTMIN + (int)n : SIGRTMAX - (int)n;
        if (sig < SIGRTMIN || sig > SIGRTMAX) {
            *why = "beyond the real-time signals (SIGRTMIN to SIGRTMAX)";
            return -1;
        }
    } else {
        for (int i = 1; i < SIGRTMIN; i++) {
            const char *a = sigabbrev_np(i);
            if (a != NULL && strcasecmp(a, s) == 0) {
                sig = i;
                break;
            }
        }
        if (sig == 0) {
            *why = "not a signal name or number";
            return -1;
        }
    }
    if (!collector_signal_ok(sig)) {
        *why = "not a signal the collector may take (the program, the C library or the "
               "kernel needs it)";
        return -1;
    }
    *out = sig;
    return 0;
}

/* Two signals separated by a comma, e.g. "SIGRTMIN+6,SIGRTMIN+5". */
static int parse_signal_pair(char *s, int64_t *out, const char **why)
{
    char *comma = strchr(s, ',');
    if (comma == NULL) {
        *why = "two signals are needed, separated by a comma";
        return -1;
    }
    *comma = '\0';
    char a[32], b[32];
    if (trim_value(s, a, sizeof a, why) != 0 || trim_value(comma + 1, b, sizeof b, why) != 0)
        return -1;
    int x, y;
    if (parse_signal(a, &x, why) != 0 || parse_signal(b, &y, why) != 0)
        return -1;
    if (x == y) {
        *why = "the two signals must differ";
        return -1;
    }
    *out = GCM_SIGNALS_PACK(x, y);
    return 0;
}

static int parse_bool(const char *s, int64_t *out, const char **why)
{
    if (word_is(s, "1") || word_is(s, "true") || word_is(s, "on")) {
        *out = 1;
        return 0;
    }
    if (word_is(s, "0") || word_is(s, "false") || word_is(s, "off")) {
        *out = 0;
        return 0;
    }
    *why = "not a boolean (use 0, 1, true, false, on or off)";
    return -1;
}

/* The i-th comma-separated name of text, blanks around it trimmed, into
 * out; false past the last one or when it does not fit. */
bool gcm__opt_name_at(const char *text, int i, char out[GCM_NAME_MAX])
{
    const char *p = text;
    for (int k = 0; k < i && p != NULL; k++) {
        p = strchr(p, ',');
        if (p != NULL)
            p++;
    }
    if (p == NULL)
        return false;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *end = strchr(p, ',');
    size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= GCM_NAME_MAX)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* A list of file names as GCM_OT_NAMES takes it: 1 to GCM_NAMES_MAX names,
 * none empty, none with a '/' (a file name is matched, not a path: the
 * same library loads from different directories), each shorter than
 * GCM_NAME_MAX. */
static int parse_names(const char *buf, const char **why)
{
    int count = 1;
    for (const char *c = buf; *c != '\0'; c++)
        count += *c == ',';
    if (count > GCM_NAMES_MAX) {
        *why = "more than 8 names";
        return -1;
    }
    for (int i = 0; i < count; i++) {
        char name[GCM_NAME_MAX];
        if (!gcm__opt_name_at(buf, i, name)) {
            *why = "a name of 64 bytes or more";
            return -1;
        }
        if (name[0] == '\0') {
            *why = "an empty name";
            return -1;
        }
        if (strchr(name, '/') != NULL) {
            *why = "a path, not a file name";
            return -1;
        }
    }
    return 0;
}

int gcm__opt_parse(const gcm__opt_def *d, const char *text, int64_t *out,
                   const char **why)
{
    char buf[PATH_STORE];
    if (text == NULL || trim(text, buf, sizeof buf) != 0) {
        *why = "too long";
        return -1;
    }
    if (buf[0] == '\0') {
        *why = "empty";
        return -1;
    }
    if (d->off_word != NULL && word_is(buf, d->off_word)) {
        *out = GCM_OPT_OFF;
        return 0;
    }
    int64_t v = 0;
    switch (d->type) {
    case GCM_OT_BOOL:
        return parse_bool(buf, out, why);
    case GCM_OT_INT:
        if (parse_int(buf, &v, why) != 0)
            return -1;
        break;
    case GCM_OT_SIZE:
        if (gcm__parse_size(buf, &v, why) != 0)
            return -1;
        break;
    case GCM_OT_DURATION:
        if (gcm__parse_duration_ns(buf, &v, why) != 0)
            return -1;
        break;
    case GCM_OT_ENUM:
        for (int i = 0; d->words[i] != NULL; i++) {
            if (word_is(buf, d->words[i])) {
                *out = i;
                return 0;
            }
        }
        *why = "not one of the allowed words";
        return -1;
    case GCM_OT_PATH:
        *out = GCM_OUTPUT_PATH;
        return 0;
    case GCM_OT_NAMES:
        if (parse_names(buf, why) != 0)
            return -1;
        *out = GCM_OUTPUT_PATH;
        return 0;
    case GCM_OT_OUTPUT:
        if (word_is(buf, "0") || word_is(buf, "off") || word_is(buf, "false"))
            *out = GCM_OUTPUT_NONE;
        else if (word_is(buf, "1") || word_is(buf, "on") ||
                 word_is(buf, "true") || word_is(buf, "stderr"))
            *out = GCM_OUTPUT_STDERR;
        else
            *out = GCM_OUTPUT_PATH;
        return 0;
    case GCM_OT_ADDR: {
        gcm__addr a;
        if (gcm__parse_addr(buf, &a, why) != 0)
            return -1;
        *out = a.port;
        return 0;
    }
    case GCM_OT_SIGNALS:
        return parse_signal_pair(buf, out, why);
    }
    if (v < d->min || v > d->max) {
        *why = "out of range";
        return -1;
    }
    *out = v;
    return 0;
}

/* What a valid value looks like, for the one-line warning. */
static void describe_expected(const gcm__opt_def *d, char *buf, size_t cap)
{
    char words[256];
    size_t n = 0;
    switch (d->type) {
    case GCM_OT_BOOL:
        gcm__fmt(buf, cap, "0, 1, true, false, on or off");
        return;
    case GCM_OT_INT:
        n = gcm__fmt(buf, cap, "an integer from %lld to %lld",
                     (long long)d->min, (long long)d->max);
        break;
    case GCM_OT_SIZE:
        n = gcm__fmt(buf, cap, "a size from %lld to %lld bytes, e.g. 512MiB",
                     (long long)d->min, (long long)d->max);
        break;
    case GCM_OT_DURATION:
        n = gcm__fmt(buf, cap, "a duration from %lldms to %llds, e.g. 30s",
                     (long long)(d->min / MS), (long long)(d->max / SEC));
        break;
    case GCM_OT_ENUM:
        words[0] = '\0';
        for (int i = 0; d->words[i] != NULL; i++) {
            size_t w = strlen(words);
            gcm__fmt(words + w, sizeof words - w, "%s%s", i ? ", " : "",
                     d->words[i]);
        }
        n = gcm__fmt(buf, cap, "one of: %s", words);
        break;
    case GCM_OT_PATH:
        n = gcm__fmt(buf, cap, "a file path");
        break;
    case GCM_OT_OUTPUT:
        n = gcm__fmt(buf, cap, "0/off, 1/stderr, or a file path");
        break;
    case GCM_OT_ADDR:
        n = gcm__fmt(buf, cap, "host:port (127.0.0.1:6060, :6060, "
                               "[::1]:6060, localhost:0)");
        break;
    case GCM_OT_NAMES:
        n = gcm__fmt(buf, cap, "file names separated by commas (libjvm.so,libfoo.so.1)");
        break;
    case GCM_OT_SIGNALS:
        n = gcm__fmt(buf, cap, "two different signals separated by a comma, each "
                               "SIGRTMIN+n, SIGRTMAX-n, SIGUSR1, SIGUSR2, SIGPWR, "
                               "SIGXCPU, SIGXFSZ or SIGVTALRM");
        break;
    }
    if (d->off_word != NULL && n < cap)
        gcm__fmt(buf + n, cap - n, " or %s", d->off_word);
}

/* --- loading ------------------------------------------------------------- */

static void store(size_t i, int64_t v, const char *text, uint8_t src)
{
    const gcm__opt_def *d = &table[i];
    if (d->type == GCM_OT_PATH || d->type == GCM_OT_OUTPUT ||
        d->type == GCM_OT_ADDR || d->type == GCM_OT_NAMES) {
        char *s = strings[i];
        bool has_text = d->type == GCM_OT_ADDR ? v != GCM_OPT_OFF
                                               : v == GCM_OUTPUT_PATH;
        if (has_text && text != NULL)
            (void)trim(text, s, PATH_STORE);
        else
            s[0] = '\0';
        vals[i].s = s;
    }
    __atomic_store_n(&vals[i].v, v, __ATOMIC_RELAXED);
    vals[i].src = src;
}

static void load_one(size_t i)
{
    const gcm__opt_def *d = &table[i];
    int64_t v;
    const char *why = NULL;
    if (d->def[0] == '\0' &&
        (d->type == GCM_OT_PATH || d->type == GCM_OT_OUTPUT)) {
        v = GCM_OUTPUT_NONE; /* no path by default */
    } else if (gcm__opt_parse(d, d->def, &v, &why) != 0) {
        /* A default that does not parse is a bug in this table; the option
         * tests catch it.  Keep going with zero rather than abort. */
        gcm__diag("internal: default \"%s\" of %s does not parse: %s", d->def,
                  d->name, why);
        v = 0;
    }
    store(i, v, d->def, GCM_SRC_DEFAULT);

    const char *env = gcm__getenv(d->name);
    if (env == NULL)
        return;
    int64_t ev;
    if (gcm__opt_parse(d, env, &ev, &why) == 0) {
        store(i, ev, env, GCM_SRC_ENV);
        return;
    }
    char expected[320];
    describe_expected(d, expected, sizeof expected);
    char shown[96];
    size_t elen = strlen(env);
    gcm__fmt(shown, sizeof shown, "%.*s%s", (int)(elen > 80 ? 80 : elen), env,
             elen > 80 ? "..." : "");
    gcm__diag("%s=\"%s\": %s; expected %s; using default %s", d->name, shown,
              why, expected, d->def);
    vals[i].src = GCM_SRC_INVALID;
}

static void load_all(void)
{
    for (size_t i = 0; i < GCM_OPT__COUNT; i++)
        load_one(i);
}

void gcm__options_init(void)
{
    int expected = 0;
    if (__atomic_load_n(&opt_state, __ATOMIC_ACQUIRE) == 2)
        return;
    if (__atomic_compare_exchange_n(&opt_state, &expected, 1, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        load_all();
        __atomic_store_n(&opt_state, 2, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&opt_state, __ATOMIC_ACQUIRE) != 2)
        sched_yield();
}

void gcm__options_reload(void)
{
    load_all();
    __atomic_store_n(&opt_state, 2, __ATOMIC_RELEASE);
}

static inline void ensure_loaded(void)
{
    if (GCM_UNLIKELY(__atomic_load_n(&opt_state, __ATOMIC_ACQUIRE) != 2))
        gcm__options_init();
}

int64_t gcm__opt_int(gcm__opt_id id)
{
    ensure_loaded();
    return __atomic_load_n(&vals[id].v, __ATOMIC_RELAXED);
}

bool gcm__opt_bool(gcm__opt_id id) { return gcm__opt_int(id) != 0; }

const char *gcm__opt_str(gcm__opt_id id)
{
    ensure_loaded();
    return vals[id].s != NULL ? vals[id].s : "";
}

gcm__opt_source gcm__opt_source_of(gcm__opt_id id)
{
    ensure_loaded();
    return (gcm__opt_source)vals[id].src;
}

int64_t gcm__opt_set_int(gcm__opt_id id, int64_t v)
{
    ensure_loaded();
    int64_t old = __atomic_exchange_n(&vals[id].v, v, __ATOMIC_ACQ_REL);
    vals[id].src = GCM_SRC_API;
    return old;
}

/* --- the verbose listing ------------------------------------------------- */

static void format_value(size_t i, char *buf, size_t cap)
{
    const gcm__opt_def *d = &table[i];
    int64_t v = __atomic_load_n(&vals[i].v, __ATOMIC_RELAXED);
    if (v == GCM_OPT_OFF && d->off_word != NULL) {
        gcm__fmt(buf, cap, "%s", d->off_word);
        return;
    }
    switch (d->type) {
    case GCM_OT_BOOL:
        gcm__fmt(buf, cap, "%s", v ? "1" : "0");
        return;
    case GCM_OT_INT:
        gcm__fmt(buf, cap, "%lld", (long long)v);
        return;
    case GCM_OT_SIZE: {
        static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int k = 0;
        int64_t x = v;
        while (k < 4 && x != 0 && x % 1024 == 0) {
            x /= 1024;
            k++;
        }
        gcm__fmt(buf, cap, "%lld%s", (long long)x, u[k]);
        return;
    }
    case GCM_OT_DURATION:
        if (v % (3600 * SEC) == 0 && v != 0)
            gcm__fmt(buf, cap, "%lldh", (long long)(v / (3600 * SEC)));
        else if (v % (60 * SEC) == 0 && v != 0)
            gcm__fmt(buf, cap, "%lldm", (long long)(v / (60 * SEC)));
        else if (v % SEC == 0)
            gcm__fmt(buf, cap, "%llds", (long long)(v / SEC));
        else
            gcm__fmt(buf, cap, "%lldms", (long long)(v / MS));
        return;
    case GCM_OT_ENUM:
        gcm__fmt(buf, cap, "%s", d->words[v]);
        return;
    case GCM_OT_PATH:
    case GCM_OT_OUTPUT:
        if (v == GCM_OUTPUT_NONE)
            gcm__fmt(buf, cap, "off");
        else if (v == GCM_OUTPUT_STDERR)
            gcm__fmt(buf, cap, "stderr");
        else
            gcm__fmt(buf, cap, "%s", vals[i].s);
        return;
    case GCM_OT_ADDR: /* "off" is handled above */
    case GCM_OT_NAMES:
        gcm__fmt(buf, cap, "%s", vals[i].s);
        return;
    case GCM_OT_SIGNALS: {
        char a[24], b[24];
        gcm__signal_name(GCM_SIGNALS_FIRST(v), a, sizeof a);
        gcm__signal_name(GCM_SIGNALS_SECOND(v), b, sizeof b);
        gcm__fmt(buf, cap, "%s,%s", a, b);
        return;
    }
    }
}

void gcm__options_print(void)
{
    static const char *const src_name[] = {"default", "env", "api",
                                           "default (bad env value)"};
    ensure_loaded();
    gcm__diag("gcmalloc %s options:", GCMALLOC_VERSION_STRING);
    for (size_t i = 0; i < GCM_OPT__COUNT; i++) {
        char value[128];
        format_value(i, value, sizeof value);
        gcm__diag("  %-28s = %-12s [%s] %s", table[i].name, value,
                  src_name[vals[i].src], table[i].doc);
    }
}

void gcm_options_print(void) { gcm__options_print(); }
