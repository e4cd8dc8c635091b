/*
 * gcmalloc/gc.h — the collected heap.
 *
 * Memory from gcm_malloc and friends is reclaimed by a garbage collector
 * (Boehm GC) once nothing points to it, as in Go.  The collector finds
 * pointers conservatively in: the stacks and registers of registered threads,
 * the writable data segments of the program and its libraries, other
 * collected objects, `scan` arenas and pooled objects.  It does NOT see:
 *
 *   - thread-local storage (`__thread` / `_Thread_local` variables): keep a
 *     collected object reachable from somewhere else as well;
 *   - memory from plain malloc, mmap or other allocators;
 *   - disguised pointers (XOR'd, compressed, or stored only in a file or
 *     the kernel, e.g. epoll user data).
 *
 * Threads are registered automatically: libgcmalloc interposes
 * pthread_create so every thread started after the library is loaded has its
 * stack scanned from its first instruction, and any other thread registers
 * itself on its first call into gcmalloc.  Collections run with the world
 * stopped, from whichever thread's allocation crosses the heap goal.  The
 * world is stopped with signals (SIGPWR, SIGXCPU): calls that are never
 * restarted after a signal handler (poll, epoll_wait, nanosleep, socket
 * calls with SO_RCVTIMEO/SO_SNDTIMEO) may fail with EINTR during a
 * collection, so retry them (docs/architecture.md).
 *
 * Pacing follows Go: after each collection the heap goal is
 *     live heap × (1 + GOGC/100), at least 4 MiB × GOGC/100,
 * capped by the soft memory limit (GCMALLOC_MEMLIMIT / gcm_set_memory_limit)
 * but never below the live heap.  See docs/tuning.md and docs/gctrace.md.
 *
 * All functions here are thread-safe.
 */
#ifndef GCMALLOC_GC_H
#define GCMALLOC_GC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Allocates n bytes of zeroed, collected memory that may hold pointers to
 * other collected memory.  NULL with errno = ENOMEM on failure.
 * gcm_malloc(0) returns a unique pointer. */
GCM_API GCM_ATTR_MALLOC GCM_ATTR_ALLOC_SIZE(1) void *gcm_malloc(size_t n);

/* Allocates n bytes of collected memory that holds no pointers (strings,
 * numeric buffers).  Not zeroed and never scanned: the collector marks
 * faster and cannot be fooled by bytes that look like pointers. */
GCM_API GCM_ATTR_MALLOC GCM_ATTR_ALLOC_SIZE(1) void *gcm_malloc_atomic(size_t n);

/* Allocates count × size zeroed bytes; NULL with errno = ENOMEM when the
 * product overflows or memory is short. */
GCM_API GCM_ATTR_MALLOC GCM_ATTR_ALLOC_SIZE2(1, 2) void *gcm_calloc(size_t count,
                                                                  size_t size);

/* Resizes a collected object, keeping its kind (atomic or not).
 * gcm_realloc(NULL, n) is gcm_malloc(n); gcm_realloc(p, 0) frees p and
 * returns NULL.  On failure returns NULL, sets errno and leaves p intact. */
GCM_API GCM_ATTR_ALLOC_SIZE(2) void *gcm_realloc(void *p, size_t n);

/* A collected, pointer-free copy of s. */
GCM_API GCM_ATTR_MALLOC char *gcm_strdup(const char *s);

/* Releases a collected object now instead of waiting for the collector.
 * Optional; the caller promises nothing points to it any more.
 * gcm_free(NULL) does nothing. */
GCM_API void gcm_free(void *p);

/* Runs a full collection now and waits for it, like Go's runtime.GC().
 * The cycle is marked "(forced)" in gctrace.  Returns 0, or EDEADLK when
 * called from a GC-cycle hook or finalizer of the cycle in progress. */
GCM_API int gcm_gc(void);

/* Sets GOGC: the heap may grow by percent% of the live heap between
 * collections.  A negative value turns paced collection off (GOGC=off);
 * the memory limit still applies.  Returns the previous setting, like Go's
 * debug.SetGCPercent.  Takes effect from the next allocation check. */
GCM_API int gcm_set_gc_percent(int percent);

/* Sets the soft memory limit in bytes (GOMEMLIMIT): collections are paced
 * so that gcmalloc's total memory stays under it when the live heap allows.
 * INT64_MAX means no limit; a negative value only queries.  Returns the
 * previous limit, like Go's debug.SetMemoryLimit. */
GCM_API int64_t gcm_set_memory_limit(int64_t bytes);

/* A finalizer: called once, on the finalizer thread, some time after obj
 * became unreachable; obj is reclaimed by a later cycle unless the
 * finalizer makes it reachable again. */
typedef void (*gcm_finalizer_fn)(void *obj, void *arg);

/* Attaches fn(obj, arg) to the collected object obj (which must be the
 * start of a gcm_malloc'd block); fn == NULL removes it.  As in Go, when
 * finalizable objects point at each other only the first of a chain runs
 * per cycle, and a cycle of finalizable objects is never finalized.
 * Returns 0, or EINVAL when obj is not the start of a collected object. */
GCM_API int gcm_set_finalizer(void *obj, gcm_finalizer_fn fn, void *arg);

/* Registers the calling thread with the collector.  Needed only for a
 * thread that was started before gcmalloc was loaded (or by a sanitizer
 * runtime that hides pthread_create) AND holds collected pointers without
 * ever calling into gcmalloc; every other thread is registered
 * automatically.  Returns 0. */
GCM_API int gcm_thread_register(void);

#ifdef __cplusplus
}
#endif

#endif /* GCMALLOC_GC_H */
