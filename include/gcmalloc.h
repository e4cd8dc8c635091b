/*
 * gcmalloc.h — Go's memory toolkit for C: request-scoped arenas,
 * sync.Pool-style pools, a GOGC-paced collected heap with a soft memory
 * limit, gctrace lines and sampled allocation profiles in pprof's format.
 *
 * This umbrella header includes the whole public API; every name is
 * gcm_<noun>_<verb> and every type opaque.  Behaviour shared by all calls:
 *
 *   - Allocation calls behave like malloc: on failure they return NULL with
 *     errno set (ENOMEM, or EINVAL for a bad argument) and never abort.
 *   - Control calls return 0 or an errno value.
 *   - Every GCMALLOC_* environment variable is described in docs/tuning.md;
 *     a bad value prints one line naming it and the default used.
 *
 * Link with `pkg-config --cflags --libs gcmalloc`, or in CMake with
 * `find_package(gcmalloc)` and the target `gcmalloc::gcmalloc`.
 */
#ifndef GCMALLOC_H
#define GCMALLOC_H

#include "gcmalloc/common.h"
#include "gcmalloc/arena.h"
#include "gcmalloc/gc.h"
#include "gcmalloc/pool.h"
#include "gcmalloc/prof.h"
#include "gcmalloc/stats.h"

#endif /* GCMALLOC_H */
