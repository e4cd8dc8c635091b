/*
 * tmp_dir.h — remove a test's scratch directory (made with mkdtemp) and
 * the files in it.  Subdirectories are not expected and are left alone.
 */
#ifndef GCM_TESTS_TMP_DIR_H
#define GCM_TESTS_TMP_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

static inline void remove_tmp_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.')
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

#endif
