/* npy.h — writes float32 arrays as NumPy .npy (version 1.0), so logits can be compared with any tool. */
#ifndef SC_NPY_H
#define SC_NPY_H

#include <stdint.h>

/* Atomic write of a C-order float32 array of the given shape. */
int npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim);

#endif
