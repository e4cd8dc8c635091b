/*
 * gcmalloc/prof.h — sampled allocation profiles that `go tool pprof` reads.
 *
 * Included by the umbrella header <gcmalloc.h>; include that instead.
 *
 * gcmalloc samples allocations on every path (the collected heap, arenas,
 * pools, buffer pools and the preloaded malloc) the way Go's runtime does:
 * on average one sample per GCMALLOC_PROFILE_RATE bytes allocated (512 KiB
 * by default, Go's MemProfileRate), each with its call stack.  A profile is
 * a gzipped profile.proto with Go's four heap sample types, in this order:
 *
 *     alloc_objects/count  alloc_space/bytes  inuse_objects/count  inuse_space/bytes
 *
 * scaled to unbiased estimates of the real figures, symbolized in the
 * process (function, file, line, inlined frames), with each sample labelled
 * kind=gc|arena|pool|buf|malloc and, for arenas and pools, name=<its name>.
 *
 *     go tool pprof -top heap.pb.gz                      # who holds memory
 *     go tool pprof -sample_index=alloc_space -top ...   # who allocates
 *     go tool pprof -base old.pb.gz new.pb.gz            # what grows
 *
 * In-use figures for the collected heap are as of the last completed
 * collection, as Go publishes them (an object is known to be garbage only
 * once a collection has found it unreachable); call gcm_gc() first for a
 * profile of what is reachable now.  Objects released explicitly (arenas,
 * pools, buffers, malloc/free) are exact at the time of writing.  See
 * docs/profiling.md.
 *
 * Every call here is thread-safe.  Control calls return 0 or an errno
 * value and never abort.
 */
#ifndef GCMALLOC_PROF_H
#define GCMALLOC_PROF_H

#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which of Go's two views of the same data a profile opens on. */
typedef enum gcm_profile_view {
    GCM_PROFILE_HEAP = 0,   /* Go's "heap" profile: pprof shows inuse_space */
    GCM_PROFILE_ALLOCS = 1, /* Go's "allocs" profile: pprof shows alloc_space */
} gcm_profile_view;

/* Writes a heap profile to path (created or truncated; written to a
 * temporary name and renamed, so a reader never sees half a file).
 * Returns 0, EINVAL for a NULL or empty path, or the errno value of the
 * failed open/write/rename. */
GCM_API int gcm_profile_write(const char *path);

/* Writes a heap profile to an open file descriptor (not closed).  Returns
 * 0, EBADF for a negative fd, or the errno value of the failed write. */
GCM_API int gcm_profile_write_fd(int fd);

/* As above, choosing the view. EINVAL for an unknown view. */
GCM_API int gcm_profile_write_view(const char *path, gcm_profile_view view);
GCM_API int gcm_profile_write_view_fd(int fd, gcm_profile_view view);

/* Sets the sampling rate: the mean number of bytes allocated between two
 * samples (1 = every allocation, 0 = off), as Go's runtime.MemProfileRate.
 * A negative rate changes nothing.  Returns the previous rate.  Each
 * thread picks the new rate up at its next allocation.  Profiles scale all
 * samples by the rate in force when they are written, as Go does, so set
 * it once, early. */
GCM_API int64_t gcm_profile_set_rate(int64_t rate);

/* Writes a text report to fd: the top 10 allocation sites by in-use bytes
 * and by allocated bytes, laid out as `pprof -top` (what
 * GCMALLOC_PROFILE_REPORT prints at exit).  Returns 0, EBADF, or the errno
 * value of the failed write. */
GCM_API int gcm_profile_report(int fd);

/* Starts the live profile endpoint, as GCMALLOC_PPROF_ADDR does at
 * start-up: an HTTP server on a thread of gcmalloc's own serving
 * /debug/pprof/ (an index), /debug/pprof/heap (?gc=1 collects first),
 * /debug/pprof/allocs and /debug/pprof/memstats (JSON); heap and allocs
 * also serve Go's delta profiles (?seconds=N, 1..3600), so that
 *
 *     go tool pprof http://127.0.0.1:6060/debug/pprof/heap
 *     go tool pprof -seconds 30 http://127.0.0.1:6060/debug/pprof/allocs
 *
 * reads the running process.  addr is "host:port": an IPv4 address,
 * "[IPv6]", "localhost", or nothing (":6060", loopback); port 0 picks a
 * free port.  Only loopback addresses are served unless the environment
 * has GCMALLOC_PPROF_ALLOW_REMOTE=1 (":port" then means every interface):
 * exposing profiles is the operator's decision.  One server per process;
 * it stops at exit.  libmicrohttpd is loaded, on the server's own thread,
 * when the server starts; the call waits for the outcome, so do not make
 * it from a library constructor.
 *
 * On success stores the port served (useful with port 0) in *port when
 * port is not NULL.  Returns 0; EALREADY when a server is already running
 * (*port then receives its port; a start under way, GCMALLOC_PPROF_ADDR's
 * say, is waited for first); EINVAL for a NULL or malformed addr;
 * EPERM for a non-loopback address without GCMALLOC_PPROF_ALLOW_REMOTE=1;
 * ELIBACC when libmicrohttpd cannot be loaded; or the errno value of the
 * failed socket, bind or listen (EADDRINUSE...).  Every failure but
 * EALREADY also prints one diagnostics line.  See docs/profiling.md. */
GCM_API int gcm_pprof_serve(const char *addr, int *port);

#ifdef __cplusplus
}
#endif

#endif /* GCMALLOC_PROF_H */
