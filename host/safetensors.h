/* safetensors.h — read (mmap) and write HF safetensors files: 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the raw data.
 * The reader validates everything before anyone touches a byte of data. */
#ifndef SC_SAFETENSORS_H
#define SC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_F16, ST_BF16, ST_I8, ST_I32, ST_U8 } st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    size_t nbytes;
    const void *data;  /* points into the mapping */
} st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t map_len;
    st_tensor *tensors;
    int ntensors;
    char *metadata_json;  /* the "__metadata__" object as JSON text, or NULL */
} st_file;

const char *st_dtype_name(st_dtype t);

int st_open(st_file *f, const char *path);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
/* Converts a F32/F16/BF16 tensor to float32 into dst (numel floats); other dtypes are an error. */
int st_read_f32(const st_file *f, const st_tensor *t, float *dst);

/* ---- writer ---- */
typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;  /* numel * dtype size bytes */
} st_entry;

/* Writes atomically (temp file, fsync, rename). metadata: NULL or pairs {key, value, key, value, ..., NULL}. */
int st_write(const char *path, const st_entry *entries, int n, const char *const *metadata);

#endif
