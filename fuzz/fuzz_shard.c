/* fuzz_shard.c — token shards (*.tok, data/shard_read.c): shard_open, then every frame (shard_verify) and a
 * token range across frames. The header CRC covers header + index, so a mutated input would almost always stop at
 * the checksum: when the input's last byte is odd the target rewrites that CRC to match (a file as a buggy writer
 * could make it), so the index checks behind it are fuzzed too. Frame CRCs are left alone. */
#include "host/checksum.h"
#include "data/shard.h"
#include "fuzz/fuzz_common.h"

/* Recomputes the header CRC over bytes [0, 60) and the index (at index_offset to the end) into bytes 60..63. */
static void fix_crc(uint8_t *b, size_t size) {
    if (size < SHARD_HEADER_SIZE) return;
    uint64_t idx = 0;
    for (int i = 7; i >= 0; i--) idx = idx << 8 | b[48 + i];
    if (idx > size) return;
    uint32_t crc = crc32c_update(crc32c_update(0, b, 60), b + idx, size - idx);
    for (int i = 0; i < 4; i++) b[60 + i] = (uint8_t)(crc >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size + 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    if (size && (data[size - 1] & 1)) fix_crc(copy, size);
    const char *path = fuzz_path("shard.tok");
    fuzz_write(path, copy, size);
    free(copy);
    shard_reader *r;
    if (shard_open(&r, path) != 0) return 0;
    const shard_header *h = shard_info(r);
    if (shard_verify(r) == 0 && h->token_count) {
        size_t n = h->token_count < 3 * (uint64_t)h->frame_tokens ? (size_t)h->token_count : 3 * (size_t)h->frame_tokens;
        int32_t *ids = malloc(n * sizeof(int32_t) + 1);
        if (!ids) abort();
        if (shard_read_tokens(r, h->token_count - n, n, ids) == 0)
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || (uint32_t)ids[i] >= h->vocab_size) abort();
        free(ids);
    }
    shard_close(r);
    return 0;
}
