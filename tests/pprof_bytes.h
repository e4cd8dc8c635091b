/*
 * pprof_bytes.h — a snapshot written by gcmalloc's pprof writer, as the
 * profile.proto bytes a reader decodes (gunzipped).  For the tests that
 * look inside profiles.  Include after <cmocka.h> and "internal.h".
 */
#ifndef GCM_TESTS_PPROF_BYTES_H
#define GCM_TESTS_PPROF_BYTES_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

/* s written whole (base NULL) or less base (a delta profile); the caller
 * frees the result. */
static inline uint8_t *pprof_bytes(const gcm__prof_snap *s, const gcm__prof_snap *base,
                                   bool allocs, size_t *len)
{
    FILE *tf = tmpfile();
    assert_non_null(tf);
    int fd = fileno(tf);
    if (base == NULL)
        assert_int_equal(gcm__pprof_write(fd, s, allocs), 0);
    else
        assert_int_equal(gcm__pprof_write_delta(fd, s, base, allocs), 0);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size > 20);
    uint8_t *gz = malloc((size_t)size);
    assert_non_null(gz);
    assert_int_equal(pread(fd, gz, (size_t)size, 0), size);
    fclose(tf);
    assert_int_equal(gz[0], 0x1f); /* gzip magic */
    assert_int_equal(gz[1], 0x8b);
    size_t cap = 1 << 20;
    uint8_t *raw = malloc(cap);
    assert_non_null(raw);
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
    z.next_in = gz;
    z.avail_in = (uInt)size;
    z.next_out = raw;
    z.avail_out = (uInt)cap;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    *len = cap - z.avail_out;
    inflateEnd(&z);
    free(gz);
    return raw;
}

#endif
