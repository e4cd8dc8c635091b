/*
 * diag_capture.h — capture what is written to a descriptor during part of
 * a test, for tests that check gcmalloc's messages: capture_begin for the
 * diagnostics sink (debug-mode misuse reports), capture_stderr_begin for
 * file descriptor 2 (bad option values, reported before the sink exists).
 * Include after <cmocka.h> and "internal.h".
 *
 * The sink writes to its own copy of stderr (gcm__diag_fd), so capturing
 * redirects that descriptor (or fd 2) into a pipe and reads the pipe back.
 * Output longer than 16 KiB in one capture is cut.
 */
#ifndef GCM_TESTS_DIAG_CAPTURE_H
#define GCM_TESTS_DIAG_CAPTURE_H

#include <unistd.h>

#include <stdio.h>

static int capture_fd_ = -1, capture_saved_fd_ = -1, capture_pipe_rd_ = -1;

static inline void capture_fd_begin(int fd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stderr);
    capture_fd_ = fd;
    capture_saved_fd_ = dup(fd);
    dup2(p[1], fd);
    close(p[1]);
    capture_pipe_rd_ = p[0];
}

static inline void capture_begin(void) { capture_fd_begin(gcm__diag_fd()); }
static inline void capture_stderr_begin(void) { capture_fd_begin(2); }

/* What was written since capture_*begin, NUL-terminated, in a static
 * buffer valid until the next call. */
static inline char *capture_end(void)
{
    static char buf[16384];
    fflush(stderr);
    dup2(capture_saved_fd_, capture_fd_);
    close(capture_saved_fd_);
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 &&
           (n = read(capture_pipe_rd_, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    close(capture_pipe_rd_);
    buf[len] = '\0';
    return buf;
}

/* Lines in s. */
static inline int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#endif
