/*
 * mem_malloc.h — the C default: malloc and free for everything, each
 * object released by the code that owns it.  The server counts its calls
 * (gcmalloc does not see glibc's malloc).  This build does not link
 * gcmalloc at all: its malloc is glibc's, and the driver runs it a second
 * time under the preload library's leak check.
 */
#ifndef GCM_DEMO_MEM_MALLOC_H
#define GCM_DEMO_MEM_MALLOC_H

#include <stdint.h>
#include <stdlib.h>

struct demo_mem {
    uint64_t allocs; /* malloc, calloc and realloc calls */
};

#define MEM_REQ_NEW(w, T) ((w)->mem->allocs++, (struct T *)calloc(1, sizeof(struct T)))
#define MEM_REQ_BYTES(w, n) ((w)->mem->allocs++, (char *)malloc(n))
#define MEM_REQ_GROW(w, p, old, n) ((w)->mem->allocs++, (char *)realloc((p), (n)))
#define MEM_REQ_FREE_EACH 1
#define MEM_REQ_FREE(w, T, p) free(p)
#define MEM_REQ_FREE_BYTES(w, p) free(p)
#define MEM_SES_NEW(w) ((w)->mem->allocs++, (struct session *)calloc(1, sizeof(struct session)))
#define MEM_SES_BYTES(w, n) ((w)->mem->allocs++, (char *)malloc(n))
#define MEM_SES_FREE_BYTES(w, p) free(p)

#endif
