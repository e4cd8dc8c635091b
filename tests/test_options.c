/*
 * test_options.c — the GCMALLOC_* table and its parser.
 *
 * Covers every value class (bool, int, size, duration, enum, path, output,
 * "off" words), every kind of bad value (empty, garbage, overflow, negative,
 * unit typos, fractions, huge strings), the one-line warning a bad value
 * prints, and proves in child processes that no bad value for any row of the
 * table crashes or aborts the program.  Also checks that docs/tuning.md
 * documents exactly the rows of the table with the same type and default.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

#include "diag_capture.h"

/* --- synthetic rows, one per value class ---------------------------------- */

static const char *const colors[] = {"red", "green", "blue", NULL};

static const gcm__opt_def d_bool = {.name = "T_BOOL", .type = GCM_OT_BOOL, .def = "0"};
static const gcm__opt_def d_int = {.name = "T_INT", .type = GCM_OT_INT, .def = "100",
                                   .min = 0, .max = 1000000, .off_word = "off"};
static const gcm__opt_def d_size = {.name = "T_SIZE", .type = GCM_OT_SIZE, .def = "512KiB",
                                    .min = 0, .max = INT64_MAX};
static const gcm__opt_def d_dur = {.name = "T_DUR", .type = GCM_OT_DURATION, .def = "30s",
                                   .min = 1000000, .max = 86400LL * 1000000000};
static const gcm__opt_def d_enum = {.name = "T_ENUM", .type = GCM_OT_ENUM, .def = "red",
                                    .words = colors};
static const gcm__opt_def d_path = {.name = "T_PATH", .type = GCM_OT_PATH, .def = ""};
static const gcm__opt_def d_out = {.name = "T_OUT", .type = GCM_OT_OUTPUT, .def = "0"};
static const gcm__opt_def d_sigs = {.name = "T_SIGS", .type = GCM_OT_SIGNALS,
                                    .def = "SIGRTMIN+6,SIGRTMIN+5"};
static const gcm__opt_def d_names = {.name = "T_NAMES", .type = GCM_OT_NAMES,
                                     .def = "libjvm.so", .off_word = "none"};
static const gcm__opt_def d_addr = {.name = "T_ADDR", .type = GCM_OT_ADDR, .def = "off",
                                    .min = 0, .max = 65535, .off_word = "off"};

static int64_t ok(const gcm__opt_def *d, const char *text)
{
    int64_t v = -12345;
    const char *why = NULL;
    int rc = gcm__opt_parse(d, text, &v, &why);
    if (rc != 0)
        fail_msg("%s=\"%s\" rejected: %s", d->name, text, why);
    return v;
}

static const char *bad(const gcm__opt_def *d, const char *text)
{
    int64_t v = -12345;
    const char *why = NULL;
    int rc = gcm__opt_parse(d, text, &v, &why);
    if (rc == 0)
        fail_msg("%s=\"%s\" accepted as %lld", d->name, text, (long long)v);
    assert_non_null(why);
    assert_int_equal(v, -12345); /* a rejected value leaves the output alone */
    return why;
}

static void test_bool(void **state)
{
    (void)state;
    const char *yes[] = {"1", "true", "on", "TRUE", "On", " 1 "};
    const char *no[] = {"0", "false", "off", "FALSE", "Off"};
    for (size_t i = 0; i < GCM_ARRAY_LEN(yes); i++)
        assert_int_equal(ok(&d_bool, yes[i]), 1);
    for (size_t i = 0; i < GCM_ARRAY_LEN(no); i++)
        assert_int_equal(ok(&d_bool, no[i]), 0);
    const char *nope[] = {"", "  ", "yes", "2", "-1", "tru", "1 0", "0x1"};
    for (size_t i = 0; i < GCM_ARRAY_LEN(nope); i++)
        bad(&d_bool, nope[i]);
}

static void test_int(void **state)
{
    (void)state;
    assert_int_equal(ok(&d_int, "0"), 0);
    assert_int_equal(ok(&d_int, "100"), 100);
    assert_int_equal(ok(&d_int, "+250"), 250);
    assert_int_equal(ok(&d_int, "1000000"), 1000000);
    assert_true(ok(&d_int, "off") == GCM_OPT_OFF);
    assert_true(ok(&d_int, "OFF") == GCM_OPT_OFF);
    assert_string_equal(bad(&d_int, "-1"), "out of range");
    assert_string_equal(bad(&d_int, "1000001"), "out of range");
    assert_string_equal(bad(&d_int, "99999999999999999999"),
                        "out of range (overflows a 64-bit integer)");
    assert_string_equal(bad(&d_int, "abc"), "not a number");
    assert_string_equal(bad(&d_int, "12abc"), "trailing characters after the number");
    assert_string_equal(bad(&d_int, "1.5"), "trailing characters after the number");
    assert_string_equal(bad(&d_int, ""), "empty");
    bad(&d_int, "-");
    bad(&d_int, "of");
}

static void test_size(void **state)
{
    (void)state;
    assert_int_equal(ok(&d_size, "0"), 0);
    assert_int_equal(ok(&d_size, "4096"), 4096);
    assert_int_equal(ok(&d_size, "7B"), 7);
    assert_int_equal(ok(&d_size, "64KiB"), 65536);
    assert_int_equal(ok(&d_size, "512MiB"), 536870912);
    assert_int_equal(ok(&d_size, "2GiB"), 2147483648LL);
    assert_int_equal(ok(&d_size, "3TiB"), 3LL << 40);
    assert_int_equal(ok(&d_size, "1KB"), 1000);
    assert_int_equal(ok(&d_size, "1kB"), 1000);
    assert_int_equal(ok(&d_size, "5MB"), 5000000);
    assert_int_equal(ok(&d_size, "2GB"), 2000000000);
    assert_int_equal(ok(&d_size, "1TB"), 1000000000000LL);
    assert_int_equal(ok(&d_size, " 1 MiB "), 1 << 20);
    assert_int_equal(ok(&d_size, "8388607TiB"), 8388607LL << 40);

    assert_string_equal(bad(&d_size, ""), "empty");
    assert_string_equal(bad(&d_size, "abc"), "not a number");
    assert_string_equal(bad(&d_size, "-1"), "negative values are not allowed");
    assert_string_equal(bad(&d_size, "-5MiB"), "negative values are not allowed");
    assert_string_equal(bad(&d_size, "99999999999999999999"),
                        "out of range (overflows a 64-bit integer)");
    assert_string_equal(bad(&d_size, "8388608TiB"),
                        "out of range (overflows a 64-bit integer)");
    assert_string_equal(bad(&d_size, "1.5GiB"),
                        "fractions are not accepted; use a smaller unit");
    /* unit typos */
    const char *typos[] = {"512Mib", "512mb", "512M", "512MiBs", "512 M",
                           "2G", "1 KiB B", "10bytes", "5  MiB", "3kib"};
    for (size_t i = 0; i < GCM_ARRAY_LEN(typos); i++)
        assert_non_null(strstr(bad(&d_size, typos[i]), "unknown unit"));
}

static void test_duration(void **state)
{
    (void)state;
    const int64_t ms = 1000000, s = 1000 * ms;
    assert_int_equal(ok(&d_dur, "30s"), 30 * s);
    assert_int_equal(ok(&d_dur, "250ms"), 250 * ms);
    assert_int_equal(ok(&d_dur, "5m"), 300 * s);
    assert_int_equal(ok(&d_dur, "2h"), 7200 * s);
    assert_int_equal(ok(&d_dur, "24h"), 86400 * s);
    assert_string_equal(bad(&d_dur, "0"), "out of range"); /* below 1ms */
    assert_string_equal(bad(&d_dur, "25h"), "out of range");
    assert_non_null(strstr(bad(&d_dur, "30"), "missing or unknown unit"));
    assert_non_null(strstr(bad(&d_dur, "30sec"), "missing or unknown unit"));
    assert_non_null(strstr(bad(&d_dur, "30S"), "missing or unknown unit"));
    assert_non_null(strstr(bad(&d_dur, "10us"), "missing or unknown unit"));
    assert_string_equal(bad(&d_dur, "-5s"), "negative values are not allowed");
    assert_string_equal(bad(&d_dur, "1.5s"), "fractions are not accepted; use a smaller unit");
    assert_string_equal(bad(&d_dur, ""), "empty");
    assert_string_equal(bad(&d_dur, "s"), "not a number");
    assert_string_equal(bad(&d_dur, "99999999999999h"),
                        "out of range (overflows a 64-bit integer)");
}

static void test_enum_path_output(void **state)
{
    (void)state;
    assert_int_equal(ok(&d_enum, "red"), 0);
    assert_int_equal(ok(&d_enum, "BLUE"), 2);
    assert_string_equal(bad(&d_enum, "purple"), "not one of the allowed words");
    assert_string_equal(bad(&d_enum, ""), "empty");
    assert_string_equal(bad(&d_enum, "re"), "not one of the allowed words");

    assert_int_equal(ok(&d_path, "/tmp/x.pb.gz"), GCM_OUTPUT_PATH);
    assert_string_equal(bad(&d_path, ""), "empty");
    assert_string_equal(bad(&d_path, "   "), "empty");

    assert_int_equal(ok(&d_out, "0"), GCM_OUTPUT_NONE);
    assert_int_equal(ok(&d_out, "off"), GCM_OUTPUT_NONE);
    assert_int_equal(ok(&d_out, "1"), GCM_OUTPUT_STDERR);
    assert_int_equal(ok(&d_out, "stderr"), GCM_OUTPUT_STDERR);
    assert_int_equal(ok(&d_out, "/var/log/gc.log"), GCM_OUTPUT_PATH);
    assert_string_equal(bad(&d_out, ""), "empty");

    /* A value longer than any path is rejected, not truncated. */
    char huge[8192];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_string_equal(bad(&d_out, huge), "too long");
}

/* Listening addresses (GCMALLOC_PPROF_ADDR): the forms accepted, what they
 * mean, and the garbage refused, each with a reason. */
static void test_addr(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int family;
        const char *ip;
        int port;
        bool wildcard;
    } good[] = {
        {"127.0.0.1:6060", AF_INET, "127.0.0.1", 6060, false},
        {":6060", AF_INET, "127.0.0.1", 6060, true},
        {"localhost:0", AF_INET, "127.0.0.1", 0, false},
        {"LocalHost:80", AF_INET, "127.0.0.1", 80, false},
        {"[::1]:6060", AF_INET6, "::1", 6060, false},
        {"[::]:1", AF_INET6, "::", 1, false},
        {"0.0.0.0:65535", AF_INET, "0.0.0.0", 65535, false},
        {"  10.1.2.3:8080 ", AF_INET, "10.1.2.3", 8080, false},
        {"[::ffff:127.0.0.1]:9", AF_INET6, "::ffff:127.0.0.1", 9, false},
    };
    for (size_t i = 0; i < GCM_ARRAY_LEN(good); i++) {
        gcm__addr a;
        const char *why = NULL;
        if (gcm__parse_addr(good[i].text, &a, &why) != 0)
            fail_msg("\"%s\" rejected: %s", good[i].text, why);
        char ip[INET6_ADDRSTRLEN];
        assert_int_equal(a.family, good[i].family);
        assert_non_null(inet_ntop(a.family, a.ip, ip, sizeof ip));
        assert_string_equal(ip, good[i].ip);
        assert_int_equal(a.port, good[i].port);
        assert_int_equal(a.wildcard, good[i].wildcard);
        assert_int_equal(ok(&d_addr, good[i].text), good[i].port);
    }
    assert_true(ok(&d_addr, "off") == GCM_OPT_OFF);
    static const struct {
        const char *text, *why_has;
    } junk[] = {
        {"6060", "missing :port"},
        {"127.0.0.1", "missing :port"},
        {"127.0.0.1:", "port"},
        {"127.0.0.1:65536", "port"},
        {"127.0.0.1:123456", "port"},
        {"127.0.0.1:-1", "port"},
        {"127.0.0.1:+1", "port"},
        {"127.0.0.1:60 60", "port"},
        {"127.0.0.1:http", "port"},
        {"::1:6060", "brackets"},
        {"[::1]", "missing :port"},
        {"[::1]6060", "missing :port"},
        {"[::1:6060", "without ']'"},
        {"[127.0.0.1]:6060", "IPv6"},
        {"[]:6060", "IPv6"},
        {"example.com:6060", "not looked up"},
        {"256.0.0.1:6060", "IPv4"},
        {"127.1:6060", "IPv4"},
        {"", "empty"},
    };
    for (size_t i = 0; i < GCM_ARRAY_LEN(junk); i++) {
        gcm__addr a;
        const char *why = NULL;
        if (gcm__parse_addr(junk[i].text, &a, &why) == 0)
            fail_msg("\"%s\" accepted", junk[i].text);
        assert_non_null(why);
        if (strstr(why, junk[i].why_has) == NULL)
            fail_msg("\"%s\": reason \"%s\" does not mention \"%s\"", junk[i].text,
                     why, junk[i].why_has);
        if (junk[i].text[0] != '\0')
            (void)bad(&d_addr, junk[i].text);
    }
    char huge[300];
    memset(huge, '1', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_string_equal(bad(&d_addr, huge), "too long");
}

/* Every default in the real table parses with its own parser. */
static void test_signals(void **state)
{
    (void)state;
    int rt = SIGRTMIN, rtmax = SIGRTMAX;
    struct {
        const char *text;
        int a, b;
    } good[] = {
        {"SIGRTMIN+6,SIGRTMIN+5", rt + 6, rt + 5},
        {"rtmin+6, rtmin+5", rt + 6, rt + 5},
        {" SIGPWR , SIGXCPU ", SIGPWR, SIGXCPU},
        {"pwr,xcpu", SIGPWR, SIGXCPU},
        {"SIGUSR1,SIGUSR2", SIGUSR1, SIGUSR2},
        {"SIGRTMAX,SIGRTMAX-1", rtmax, rtmax - 1},
        {"RTMIN,SIGVTALRM", rt, SIGVTALRM},
        {"40,41", 40, 41},
    };
    for (size_t i = 0; i < GCM_ARRAY_LEN(good); i++) {
        int64_t v = ok(&d_sigs, good[i].text);
        assert_int_equal(GCM_SIGNALS_FIRST(v), good[i].a);
        assert_int_equal(GCM_SIGNALS_SECOND(v), good[i].b);
    }
    struct {
        const char *text, *why;
    } junk[] = {
        {"SIGPWR", "two signals are needed"},
        {"SIGPWR,SIGPWR", "must differ"},
        {"RTMIN+5,rtmin+5", "must differ"},
        {"SIGSEGV,SIGXCPU", "not a signal the collector may take"},
        {"SIGPWR,SIGKILL", "not a signal the collector may take"},
        {"SIGINT,SIGXCPU", "not a signal the collector may take"},
        {"SIGCHLD,SIGXCPU", "not a signal the collector may take"},
        {"32,33", "not a signal the collector may take"}, /* the C library's own */
        {"0,SIGPWR", "not a signal the collector may take"},
        {"SIGRTMIN+99,SIGPWR", "beyond the real-time signals"},
        {"SIGRTMAX+1,SIGPWR", "write SIGRTMAX-n"},
        {"SIGRTMIN-1,SIGPWR", "write SIGRTMIN+n"},
        {"SIGFOO,SIGPWR", "not a signal name or number"},
        {"SIGPWR,", "empty"},
        {",SIGPWR", "empty"},
        {"99999999999999999999,1", "not a signal name or number"},
        {"SIGPWR,SIGXCPU,SIGUSR1", "not a signal name or number"},
    };
    for (size_t i = 0; i < GCM_ARRAY_LEN(junk); i++) {
        const char *why = bad(&d_sigs, junk[i].text);
        if (strstr(why, junk[i].why) == NULL)
            fail_msg("\"%s\": \"%s\", expected \"%s\"", junk[i].text, why, junk[i].why);
    }
    char name[24];
    gcm__signal_name(rt + 6, name, sizeof name);
    assert_string_equal(name, "SIGRTMIN+6");
    gcm__signal_name(rtmax - 2, name, sizeof name);
    assert_string_equal(name, "SIGRTMAX-2");
    gcm__signal_name(SIGXCPU, name, sizeof name);
    assert_string_equal(name, "SIGXCPU");
}

static void test_names(void **state)
{
    (void)state;
    static const char *const good[] = {"libjvm.so", " libjvm.so , libfoo.so.1 ",
                                       "a,b,c,d,e,f,g,h"};
    for (size_t i = 0; i < GCM_ARRAY_LEN(good); i++)
        assert_int_equal(ok(&d_names, good[i]), GCM_OUTPUT_PATH);
    assert_true(ok(&d_names, "none") == GCM_OPT_OFF);
    struct {
        const char *text, *why;
    } junk[] = {
        {"/usr/lib/jvm/lib/server/libjvm.so", "a path"},
        {"libjvm.so,,libfoo.so", "an empty name"},
        {"libjvm.so,", "an empty name"},
        {"a,b,c,d,e,f,g,h,i", "more than 8"},
        {"libaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.so",
         "64 bytes or more"},
        {"", "empty"},
    };
    for (size_t i = 0; i < GCM_ARRAY_LEN(junk); i++) {
        const char *why = bad(&d_names, junk[i].text);
        if (strstr(why, junk[i].why) == NULL)
            fail_msg("\"%s\": \"%s\", expected \"%s\"", junk[i].text, why, junk[i].why);
    }
    /* The names as the preload library reads them back. */
    char name[GCM_NAME_MAX];
    assert_true(gcm__opt_name_at(" libjvm.so , libfoo.so.1 ", 1, name));
    assert_string_equal(name, "libfoo.so.1");
    assert_true(gcm__opt_name_at(" libjvm.so , libfoo.so.1 ", 0, name));
    assert_string_equal(name, "libjvm.so");
    assert_false(gcm__opt_name_at(" libjvm.so , libfoo.so.1 ", 2, name));
}

static void test_table_defaults_parse(void **state)
{
    (void)state;
    for (int i = 0; i < GCM_OPT__COUNT; i++) {
        const gcm__opt_def *d = gcm__opt_def_of((gcm__opt_id)i);
        assert_non_null(d);
        assert_non_null(d->name);
        assert_true(strncmp(d->name, "GCMALLOC_", 9) == 0);
        assert_non_null(d->doc);
        assert_true(strlen(d->doc) > 10);
        assert_ptr_equal(gcm__opt_find(d->name), d);
        if (d->def[0] == '\0' && (d->type == GCM_OT_PATH || d->type == GCM_OT_OUTPUT))
            continue;
        int64_t v;
        const char *why = NULL;
        if (gcm__opt_parse(d, d->def, &v, &why) != 0)
            fail_msg("default %s=\"%s\" does not parse: %s", d->name, d->def, why);
        if (d->type == GCM_OT_ENUM)
            assert_non_null(d->words);
    }
    assert_null(gcm__opt_def_of(GCM_OPT__COUNT));
    assert_null(gcm__opt_find("GCMALLOC_NO_SUCH_OPTION"));
}

/* --- docs/tuning.md agrees with the table ----------------------------------- */

static char *strip_cell(char *s)
{
    while (*s == ' ')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\n'))
        *--e = '\0';
    if (*s == '`' && e > s + 1 && e[-1] == '`') {
        e[-1] = '\0';
        s++;
    }
    return s;
}

static void test_docs_match_table(void **state)
{
    (void)state;
    FILE *f = fopen(GCM_SOURCE_DIR "/docs/tuning.md", "r");
    assert_non_null(f);
    int seen[GCM_OPT__COUNT] = {0};
    char line[4096];
    int rows = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "| `GCMALLOC_", 12) != 0)
            continue;
        /* | `NAME` | type | `default` | values | doc | */
        char *cells[8] = {0};
        int n = 0;
        char *save = NULL;
        for (char *c = strtok_r(line + 1, "|", &save); c && n < 8;
             c = strtok_r(NULL, "|", &save))
            cells[n++] = strip_cell(c);
        assert_true(n >= 4);
        const gcm__opt_def *d = gcm__opt_find(cells[0]);
        if (d == NULL)
            fail_msg("docs/tuning.md documents %s, which is not in the table", cells[0]);
        int id = (int)(d - gcm__opt_def_of((gcm__opt_id)0));
        if (seen[id]++)
            fail_msg("docs/tuning.md documents %s twice", d->name);
        if (strcmp(cells[1], gcm__opt_type_name(d)) != 0)
            fail_msg("%s: docs say type %s, table says %s", d->name, cells[1],
                     gcm__opt_type_name(d));
        const char *docdef = strcmp(cells[2], "(none)") == 0 ? "" : cells[2];
        if (strcmp(docdef, d->def) != 0)
            fail_msg("%s: docs say default \"%s\", table says \"%s\"", d->name,
                     docdef, d->def);
        rows++;
    }
    fclose(f);
    for (int i = 0; i < GCM_OPT__COUNT; i++)
        if (!seen[i])
            fail_msg("%s is in the table but not in docs/tuning.md",
                     gcm__opt_def_of((gcm__opt_id)i)->name);
    assert_int_equal(rows, GCM_OPT__COUNT);
}

/* --- loading from the environment --------------------------------------------- */

static void test_env_good_and_bad(void **state)
{
    (void)state;
    setenv("GCMALLOC_VERBOSE", "on", 1);
    unsetenv("GCMALLOC_LOG");
    capture_stderr_begin();
    gcm__options_reload();
    char *out = capture_end();
    assert_string_equal(out, "");
    assert_true(gcm__opt_bool(GCM_OPT_VERBOSE));
    assert_int_equal(gcm__opt_source_of(GCM_OPT_VERBOSE), GCM_SRC_ENV);
    assert_int_equal(gcm__opt_source_of(GCM_OPT_LOG), GCM_SRC_DEFAULT);
    assert_int_equal(gcm__opt_int(GCM_OPT_LOG), GCM_OUTPUT_STDERR);

    setenv("GCMALLOC_VERBOSE", "maybe", 1);
    capture_stderr_begin();
    gcm__options_reload();
    out = capture_end();
    /* exactly one line: the variable, the value, why, and the default */
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "gcmalloc: GCMALLOC_VERBOSE=\"maybe\""));
    assert_non_null(strstr(out, "not a boolean"));
    assert_non_null(strstr(out, "using default 0"));
    assert_false(gcm__opt_bool(GCM_OPT_VERBOSE));
    assert_int_equal(gcm__opt_source_of(GCM_OPT_VERBOSE), GCM_SRC_INVALID);

    /* An API override reports its source and returns the old value. */
    assert_int_equal(gcm__opt_set_int(GCM_OPT_VERBOSE, 1), 0);
    assert_int_equal(gcm__opt_source_of(GCM_OPT_VERBOSE), GCM_SRC_API);
    assert_true(gcm__opt_bool(GCM_OPT_VERBOSE));

    setenv("GCMALLOC_LOG", "/tmp/gcm-test.log", 1);
    unsetenv("GCMALLOC_VERBOSE");
    gcm__options_reload();
    assert_int_equal(gcm__opt_int(GCM_OPT_LOG), GCM_OUTPUT_PATH);
    assert_string_equal(gcm__opt_str(GCM_OPT_LOG), "/tmp/gcm-test.log");
    unsetenv("GCMALLOC_LOG");
    gcm__options_reload();
}

/* GCMALLOC_POINTER_ALIGN takes only the steps the mark procedure has: a
 * number between them is refused with one line, and the default (4) kept,
 * not rounded to a neighbour. */
static void test_pointer_align_values(void **state)
{
    (void)state;
    static const char *const bad_values[] = {"3", "16", "0", "4.0"};
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        setenv("GCMALLOC_POINTER_ALIGN", bad_values[i], 1);
        capture_stderr_begin();
        gcm__options_reload();
        char *out = capture_end();
        assert_int_equal(count_lines(out), 1);
        char want[160];
        snprintf(want, sizeof want,
                 "gcmalloc: GCMALLOC_POINTER_ALIGN=\"%s\": not one of the allowed "
                 "words; expected one of: 8, 4, 2, 1; using default 4", bad_values[i]);
        assert_non_null(strstr(out, want));
        assert_int_equal(gcm__opt_int(GCM_OPT_POINTER_ALIGN), 1); /* "4" */
        assert_int_equal(gcm__opt_source_of(GCM_OPT_POINTER_ALIGN), GCM_SRC_INVALID);
    }
    setenv("GCMALLOC_POINTER_ALIGN", "8", 1);
    gcm__options_reload();
    assert_int_equal(gcm__opt_int(GCM_OPT_POINTER_ALIGN), 0);
    assert_int_equal(gcm__opt_source_of(GCM_OPT_POINTER_ALIGN), GCM_SRC_ENV);
    unsetenv("GCMALLOC_POINTER_ALIGN");
    gcm__options_reload();
    assert_int_equal(gcm__opt_int(GCM_OPT_POINTER_ALIGN), 1);
}

/* An enum row's bad value names the words it accepts and keeps the
 * default (GCMALLOC_PROFILE_SYMBOLS: a typo must not turn on the costly
 * mode, nor turn names off). */
static void test_enum_row_bad_value(void **state)
{
    (void)state;
    setenv("GCMALLOC_PROFILE_SYMBOLS", "dwarf", 1);
    capture_stderr_begin();
    gcm__options_reload();
    char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "gcmalloc: GCMALLOC_PROFILE_SYMBOLS=\"dwarf\": "
                                "not one of the allowed words; expected one of: "
                                "auto, lines, functions, none; using default auto"));
    assert_int_equal(gcm__opt_int(GCM_OPT_PROFILE_SYMBOLS), GCM_SYM_AUTO);
    assert_int_equal(gcm__opt_source_of(GCM_OPT_PROFILE_SYMBOLS), GCM_SRC_INVALID);

    setenv("GCMALLOC_PROFILE_SYMBOLS", " Functions ", 1);
    capture_stderr_begin();
    gcm__options_reload();
    out = capture_end();
    assert_string_equal(out, "");
    assert_int_equal(gcm__opt_int(GCM_OPT_PROFILE_SYMBOLS), GCM_SYM_FUNCTIONS);
    unsetenv("GCMALLOC_PROFILE_SYMBOLS");
    gcm__options_reload();
}

static void test_verbose_listing(void **state)
{
    (void)state;
    capture_stderr_begin();
    gcm__options_print();
    char *out = capture_end();
    assert_int_equal(count_lines(out), 1 + GCM_OPT__COUNT);
    for (int i = 0; i < GCM_OPT__COUNT; i++)
        assert_non_null(strstr(out, gcm__opt_def_of((gcm__opt_id)i)->name));
    assert_non_null(strstr(out, "[default]"));
}

/* Every row of the table, fed every kind of bad value in a child process:
 * the child must exit normally, print at most one line per bad value, and
 * keep the default. */
static void test_bad_values_never_crash(void **state)
{
    (void)state;
    static char huge[20000];
    memset(huge, '9', sizeof huge - 1);
    const char *values[] = {
        "", " ", "garbage", "99999999999999999999999999", "-1", "-9999999999999",
        "512Mib", "1.5", "0x10", "1e9", "off-ish", "\xff\xfe\x01", "%s%s%s%n",
        "1 2 3", "\t", huge,
    };
    for (int i = 0; i < GCM_OPT__COUNT; i++) {
        const gcm__opt_def *d = gcm__opt_def_of((gcm__opt_id)i);
        for (size_t k = 0; k < GCM_ARRAY_LEN(values); k++) {
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                setenv(d->name, values[k], 1);
                capture_stderr_begin();
                gcm__options_reload();
                char *out = capture_end();
                int64_t v;
                const char *why;
                bool valid = gcm__opt_parse(d, values[k], &v, &why) == 0;
                if (!valid && count_lines(out) != 1)
                    _exit(3);
                if (valid && count_lines(out) != 0)
                    _exit(4);
                if (!valid && gcm__opt_source_of((gcm__opt_id)i) != GCM_SRC_INVALID)
                    _exit(5);
                _exit(0);
            }
            int st = 0;
            assert_int_equal(waitpid(pid, &st, 0), pid);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fail_msg("%s=\"%.20s\": child %s %d", d->name, values[k],
                         WIFEXITED(st) ? "exited" : "killed by signal",
                         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        }
    }
}

static void test_getenv_direct(void **state)
{
    (void)state;
    setenv("GCMALLOC_TEST_DIRECT", "value=with=equals", 1);
    assert_string_equal(gcm__getenv("GCMALLOC_TEST_DIRECT"), "value=with=equals");
    assert_null(gcm__getenv("GCMALLOC_TEST_DIREC"));
    assert_null(gcm__getenv("GCMALLOC_TEST_DIRECT_NOT"));
    unsetenv("GCMALLOC_TEST_DIRECT");
    assert_null(gcm__getenv("GCMALLOC_TEST_DIRECT"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_enum_path_output),
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_signals),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_table_defaults_parse),
        cmocka_unit_test(test_docs_match_table),
        cmocka_unit_test(test_env_good_and_bad),
        cmocka_unit_test(test_enum_row_bad_value),
        cmocka_unit_test(test_pointer_align_values),
        cmocka_unit_test(test_verbose_listing),
        cmocka_unit_test(test_bad_values_never_crash),
        cmocka_unit_test(test_getenv_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
