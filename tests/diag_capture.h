/*
 * diag_capture.h — capture what gcmalloc's diagnostics sink writes during
 * part of a test, for tests that check its messages (debug-mode misuse
 * reports).  Include after <cmocka.h> and "internal.h".
 *
 * The sink writes to its own copy of stderr (gcm__diag_fd), so capturing
 * redirects that descriptor into a pipe and reads the pipe back.  Messages
 * longer than 16 KiB in one capture are cut.
 */
#ifndef GCM_TESTS_DIAG_CAPTURE_H
#define GCM_TESTS_DIAG_CAPTURE_H

#include <unistd.h>

static int capture_saved_fd_ = -1, capture_pipe_rd_ = -1;

static inline void capture_begin(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    capture_saved_fd_ = dup(gcm__diag_fd());
    dup2(p[1], gcm__diag_fd());
    close(p[1]);
    capture_pipe_rd_ = p[0];
}

/* What was written since capture_begin, NUL-terminated, in a static buffer
 * valid until the next call. */
static inline char *capture_end(void)
{
    static char buf[16384];
    dup2(capture_saved_fd_, gcm__diag_fd());
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
