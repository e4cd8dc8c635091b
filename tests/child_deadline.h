/*
 * child_deadline.h — run a test case in a forked child and wait for it at
 * most a deadline.  For cases whose failure is a hang or an abort inside
 * the collector (a deadlock with every signal blocked, bdwgc giving up on a
 * thread): in the child they end the child, not the test program.  An
 * alarm in the child would not do, since the hang may have every signal
 * blocked.  The deadline bounds a hang; it measures nothing.  Include
 * after <cmocka.h>.
 */
#ifndef GCM_TESTS_CHILD_DEADLINE_H
#define GCM_TESTS_CHILD_DEADLINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Runs fn(arg) in a child that exits with its result.  Returns false when
 * the child had not ended after deadline_s seconds (it is killed), else
 * true with its wait status in *status; -1 in *status when fork failed. */
static inline bool run_child_within(int (*fn)(int), int arg, int deadline_s, int *status)
{
    fflush(NULL);
    *status = -1;
    pid_t pid = fork();
    if (pid < 0)
        return true;
    if (pid == 0)
        _exit(fn(arg));
    pid_t got = 0;
    for (int ms = 0; ms < deadline_s * 1000 && got == 0; ms += 10) {
        got = waitpid(pid, status, WNOHANG);
        if (got == 0)
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    if (got != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, status, 0);
        return false;
    }
    return true;
}

/* The case passes when fn(arg) returned 0 in time; `what` names the case
 * in the failure. */
static inline void assert_child_passes(int (*fn)(int), int arg, int deadline_s,
                                       const char *what)
{
    int status;
    if (!run_child_within(fn, arg, deadline_s, &status))
        fail_msg("%s: still running after %d s (a hang)", what, deadline_s);
    assert_int_not_equal(status, -1);
    if (WIFSIGNALED(status))
        fail_msg("%s: killed by signal %d", what, WTERMSIG(status));
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s: exited %d", what, WEXITSTATUS(status));
}

#endif
