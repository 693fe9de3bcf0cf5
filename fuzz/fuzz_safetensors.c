/* fuzz_safetensors.c — the safetensors header (host/safetensors.c st_open) and the float conversion of every
 * tensor it accepts: whatever the header says, no read may leave the file. */
#include "fuzz/fuzz_common.h"
#include "host/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("model.safetensors");
    fuzz_write(path, data, size);
    st_file f;
    if (st_open(&f, path) != 0) return 0;
    for (int i = 0; i < f.ntensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if (st_find(&f, t->name) != t) abort(); /* names are unique */
        float *dst = malloc((size_t)t->numel * sizeof(float) + 1);
        if (!dst) abort();
        (void)st_read_f32(&f, t, dst);
        free(dst);
    }
    st_close(&f);
    return 0;
}
