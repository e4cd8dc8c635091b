#!/usr/bin/env bash
# Installs gcmalloc into a temporary prefix and builds a tiny program against
# the *installed* package, through pkg-config and through
# find_package(gcmalloc), shared and static, and runs each.
set -euo pipefail
# `cmd | grep pattern >/dev/null`, never `grep -q`, here and in every test
# script: under pipefail, grep -q's exit at the first match can kill a writer
# that has more to say (ldd, pprof) with SIGPIPE and fail the test at random.
build=$1 src=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -n1); libdir=${libdir%/}
[[ -f $prefix/include/gcmalloc.h ]]
[[ -f $prefix/include/gcmalloc/common.h ]]
# The gctrace analyzer is installed and runs from the prefix.
"$prefix/bin/gcmalloc-trace" --version | grep "^gcmalloc-trace " >/dev/null

cat > "$tmp/consumer.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <gcmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void)
{
    if (gcm_init() != 0) return 1;
    if (strcmp(gcm_version(), GCMALLOC_VERSION_STRING) != 0) return 2;
    /* Linking gcmalloc must not replace the program's malloc: the malloc
     * the program calls is still the C library's. */
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (m == NULL || dladdr(m, &info) == 0 || strstr(info.dli_fname, "/libc.so") == NULL) {
        printf("malloc comes from %s, not libc\n", m ? info.dli_fname : "nowhere");
        return 3;
    }
    void *p = gcm_malloc(100);
    printf("consumer ok %s %p\n", gcm_version(), p);
    return 0;
}
C

# 1. pkg-config, shared
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -o "$tmp/pc-shared" "$tmp/consumer.c" $(pkg-config --cflags --libs gcmalloc) -ldl
LD_LIBRARY_PATH=$libdir "$tmp/pc-shared" | grep "consumer ok" >/dev/null
# 2. pkg-config, static
cc -o "$tmp/pc-static" "$tmp/consumer.c" $(pkg-config --cflags gcmalloc) \
   "$libdir/libgcmalloc.a" $(pkg-config --libs --static gcmalloc | sed 's/-lgcmalloc//') -ldl
"$tmp/pc-static" | tee "$tmp/out" | grep "consumer ok" >/dev/null || { cat "$tmp/out"; exit 1; }

# 3. find_package(gcmalloc), shared and static targets
mkdir -p "$tmp/proj"
cp "$tmp/consumer.c" "$tmp/proj/"
cat > "$tmp/proj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(gcmalloc 0.1 REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE gcmalloc::gcmalloc)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE gcmalloc::gcmalloc_static)
CM
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/proj/build" >/dev/null
"$tmp/proj/build/consumer" | grep "consumer ok" >/dev/null
"$tmp/proj/build/consumer_static" | tee "$tmp/out" | grep "consumer ok" >/dev/null || { cat "$tmp/out"; exit 1; }
# The installed shared library finds itself through its RUNPATH or not at all:
# make sure the consumer really used the installed copy.
ldd "$tmp/proj/build/consumer" | grep "$libdir/libgcmalloc.so" >/dev/null
echo "ok: pkg-config (shared, static) and find_package (shared, static)"
