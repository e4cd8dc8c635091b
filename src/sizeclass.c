/*
 * sizeclass.c — the size classes of the buffer pools.
 *
 * The table itself is generated (tools/gen_sizeclasses.c writes
 * src/sizeclasses.h, whose comment shows every class with its worst-case
 * waste, as Go's sizeclasses.go does).  This file answers the questions the
 * rest of the library asks of it: how big a class is and how its chunks
 * are laid out.  Which class serves a size is an inline lookup in two small
 * tables (internal.h's gcm__size_class), as Go's size_to_class8 and
 * size_to_class128: one entry per byte up to 1 KiB, one per 128 bytes above
 * (every class above 1 KiB is a multiple of 128, so rounding the size up to
 * 128 never skips a class).
 */
#include "internal.h"
#include "sizeclasses.h"

_Static_assert(GCM_NUM_CLASSES < 256, "classes are stored in a byte");
_Static_assert(GCM_SC_MAX == GCM_MAX_CLASS,
               "internal.h's GCM_SC_MAX must match the generated table");
_Static_assert(GCM_SC_COUNT == GCM_NUM_CLASSES,
               "internal.h's GCM_SC_COUNT must match the generated table");
_Static_assert(GCM_SC_SMALL_MAX == GCM_CLASS_SMALL_MAX &&
                   GCM_SC_LARGE_STEP == GCM_CLASS_LARGE_STEP,
               "internal.h's lookup constants must match the generated table");

/* The lookup itself is inline (internal.h's gcm__size_class); its two
 * tables, gcm__sc_small and gcm__sc_large, are defined by sizeclasses.h. */

size_t gcm__class_bytes(unsigned c)
{
    return c >= 1 && c <= GCM_NUM_CLASSES ? gcm__class_size[c] : 0;
}

size_t gcm__class_chunk_bytes(unsigned c)
{
    if (c < 1 || c > GCM_NUM_CLASSES)
        return 0;
    return (size_t)gcm__class_units[c] << GCM_CLASS_UNIT_SHIFT;
}

uint32_t gcm__class_objects(unsigned c)
{
    if (c < 1 || c > GCM_NUM_CLASSES)
        return 0;
    return (uint32_t)(gcm__class_chunk_bytes(c) / gcm__class_size[c]);
}
