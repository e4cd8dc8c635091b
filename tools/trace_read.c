/*
 * trace_read.c — lines in, cycles out: splits the input into lines with a
 * fixed-size buffer, classifies each (trace_parse.c), keeps the cycles and
 * counts the rest.
 *
 * Bounded by design: a line longer than GCT_LINE_MAX is read to its end
 * but only its first GCT_LINE_MAX bytes are kept (and it is never taken as
 * a cycle); of the skipped lines only the count and the first
 * GCT_KEEP_LINES line numbers are kept.  Memory grows only with the number
 * of cycles, and running out of it stops collecting cycles, not the
 * program.
 *
 * Runs.  Cycle numbers rise by one and times never go back within one
 * process.  When either goes back, another process's lines begin: a
 * program restarted with GCMALLOC_GCTRACE appending to the same file, or
 * the several processes of `go run` (the go command, the compiler, the
 * linker, the program) sharing one stderr.  Each cycle is tagged with its
 * run so the analysis never mixes two timelines.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

void gct_log_init(gct_log *log) { memset(log, 0, sizeof *log); }

void gct_log_free(gct_log *log)
{
    free(log->cycles);
    gct_log_init(log);
}

static void remember(uint64_t *at, uint64_t count, uint64_t line)
{
    if (count <= GCT_KEEP_LINES)
        at[count - 1] = line;
}

static bool append_cycle(gct_log *log, const gct_cycle *c)
{
    if (log->out_of_memory)
        return false;
    if (log->n == log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 256;
        gct_cycle *p = cap > SIZE_MAX / sizeof *p
                           ? NULL
                           : realloc(log->cycles, cap * sizeof *p);
        if (p == NULL) {
            log->out_of_memory = true;
            return false;
        }
        log->cycles = p;
        log->cap = cap;
    }
    log->cycles[log->n++] = *c;
    return true;
}

void gct_log_add_line(gct_log *log, const char *s, size_t len, bool truncated)
{
    uint64_t line = ++log->lines;
    if (truncated)
        log->overlong++;
    gct_cycle c;
    gct_line_kind kind = gct_parse_line(s, len, &c);
    if (kind == GCT_LINE_CYCLE && truncated)
        kind = GCT_LINE_MALFORMED;
    switch (kind) {
    case GCT_LINE_CYCLE: {
        const gct_cycle *prev = log->n ? &log->cycles[log->n - 1] : NULL;
        bool new_run = prev == NULL || c.n <= prev->n || c.t_s < prev->t_s;
        c.line = line;
        c.run = log->runs + (new_run ? 1 : 0);
        if (append_cycle(log, &c) && new_run) {
            log->runs++;
            if (log->runs >= 2 && log->runs - 2 < GCT_KEEP_LINES)
                log->run_start_line[log->runs - 2] = line;
        }
        break;
    }
    case GCT_LINE_MALFORMED:
        log->malformed++;
        remember(log->malformed_at, log->malformed, line);
        break;
    case GCT_LINE_FOREIGN:
        log->foreign++;
        remember(log->foreign_at, log->foreign, line);
        break;
    }
}

int gct_log_read(gct_log *log, FILE *in)
{
    char line[GCT_LINE_MAX];
    size_t len = 0;
    bool truncated = false, pending = false;
    char chunk[1 << 16];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, in)) > 0) {
        for (size_t i = 0; i < got; i++) {
            char ch = chunk[i];
            if (ch == '\n') {
                gct_log_add_line(log, line, len, truncated);
                len = 0;
                truncated = pending = false;
            } else if (len < sizeof line) {
                line[len++] = ch;
                pending = true;
            } else {
                truncated = true;
            }
        }
    }
    if (pending) /* a last line without its newline */
        gct_log_add_line(log, line, len, truncated);
    return ferror(in) ? (errno ? errno : EIO) : 0;
}

void gct_log_run(const gct_log *log, unsigned run, size_t *first, size_t *count)
{
    size_t i = 0;
    while (i < log->n && log->cycles[i].run < run)
        i++;
    size_t j = i;
    while (j < log->n && log->cycles[j].run == run)
        j++;
    *first = i;
    *count = j - i;
}
