/* fuzz_kd.c — teacher logits (*.kd, distill/kd_read.c): kd_open, every frame (kd_verify) and an entry range
 * across frames. As in fuzz_shard.c, an input whose last byte is odd gets its header CRC (bytes 156..159, over
 * the header and the index) rewritten to match, so the header and index checks are reached. */
#include <math.h>

#include "host/checksum.h"
#include "distill/kd_format.h"
#include "fuzz/fuzz_common.h"

static void fix_crc(uint8_t *b, size_t size) {
    if (size < KD_HEADER_SIZE) return;
    uint64_t idx = 0;
    for (int i = 7; i >= 0; i--) idx = idx << 8 | b[56 + i];
    if (idx > size) return;
    uint32_t crc = crc32c_update(crc32c_update(0, b, 156), b + idx, size - idx);
    for (int i = 0; i < 4; i++) b[156 + i] = (uint8_t)(crc >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size + 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    if (size && (data[size - 1] & 1)) fix_crc(copy, size);
    const char *path = fuzz_path("shard.kd");
    fuzz_write(path, copy, size);
    free(copy);
    kd_reader *r;
    if (kd_open(&r, path) != 0) return 0;
    const kd_header *h = kd_info(r);
    if (kd_verify(r) == 0 && h->token_count) {
        size_t n = h->token_count < 3 * (uint64_t)h->frame_tokens ? (size_t)h->token_count : 3 * (size_t)h->frame_tokens;
        int32_t *ids = malloc(n * h->k * sizeof(int32_t) + 1);
        float *logits = malloc(n * h->k * sizeof(float) + 1), *lse = malloc(n * sizeof(float) + 1);
        if (!ids || !logits || !lse) abort();
        if (kd_read(r, h->token_count - n, n, ids, logits, lse) == 0)
            for (size_t i = 0; i < n * h->k; i++)
                if (ids[i] < 0 || (uint32_t)ids[i] >= h->vocab_size) abort();
        free(ids), free(logits), free(lse);
    }
    kd_close(r);
    return 0;
}
