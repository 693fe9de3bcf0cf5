/* npy.c — see npy.h. Format: "\x93NUMPY", version 1.0, u16 header length, a Python dict literal padded with
 * spaces and a newline so the data starts on a 64-byte boundary, then the raw little-endian values. */
#include "model/npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"

int npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim) {
    char dict[256];
    int k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%lld,%s", (long long)shape[d], d + 1 < ndim ? " " : "");
        numel *= shape[d];
    }
    k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    size_t total = 10 + (size_t)k + 1, padded = (total + 63) / 64 * 64;
    char header[320];
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    uint16_t hlen = (uint16_t)(padded - 10);
    header[8] = (char)(hlen & 0xff);
    header[9] = (char)(hlen >> 8);
    memcpy(header + 10, dict, (size_t)k);
    memset(header + 10 + k, ' ', padded - 10 - (size_t)k - 1);
    header[padded - 1] = '\n';
    sc_atomic_file af;
    if (atomic_open(&af, path)) return -1;
    if (fwrite(header, 1, padded, af.f) != padded || fwrite(data, sizeof(float), (size_t)numel, af.f) != (size_t)numel) {
        int e = errno;
        atomic_abort(&af);
        return sc_fail("%s: write failed (%s)", path, strerror(e));
    }
    return atomic_commit(&af);
}
