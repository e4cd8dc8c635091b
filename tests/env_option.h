/*
 * env_option.h — set or clear one GCMALLOC_* variable in the middle of a
 * test and have gcmalloc read the environment again.  Include after
 * "internal.h".
 *
 * Reloading puts every option back to what the environment says, GOGC
 * included: a test that runs with the collector's pacing off (GOGC=-1, set
 * with gcm_set_gc_percent) passes keep_gc_off.
 */
#ifndef GCM_TESTS_ENV_OPTION_H
#define GCM_TESTS_ENV_OPTION_H

#include <stdbool.h>
#include <stdlib.h>

/* value NULL clears the variable. */
static inline void set_env_option(const char *name, const char *value,
                                  bool keep_gc_off)
{
    if (value != NULL)
        setenv(name, value, 1);
    else
        unsetenv(name);
    gcm__options_reload();
    if (keep_gc_off)
        gcm_set_gc_percent(-1);
}

#endif
