/* kd_format.h — teacher logits (*.kd), one file per token shard (*.tok), frame for frame aligned with it: entry j
 * of a .kd is the teacher's prediction of token j+1 of the shard's stream given tokens <= j: the top-k ids, their
 * logits (FP16) and the FP32 logsumexp of the full distribution, so the tail mass 1 - sum_i exp(l_i - lse) is known.
 * Logits are the teacher's z / temperature (the header's temperature); lse is of those same scaled logits.
 *
 * Byte layout, all integers little-endian:
 *   offset size  field
 *   0      8     magic "SCKD\0\0\0\0"
 *   8      4     version (1)
 *   12     4     k (1 .. vocab_size, at most KD_MAX_K)
 *   16     4     temperature (FP32)
 *   20     4     id_bytes: 2 when vocab_size <= 65536, else 4
 *   24     4     vocab_size (of the teacher; equals the shard's)
 *   28     4     frame_count (= the shard's)
 *   32     8     token_count (= the shard's)
 *   40     8     tokenizer_hash (= the shard's = the student's)
 *   48     8     shard_header_hash: hash64 of the shard's 64 header bytes (which carry the CRC of its index)
 *   56     8     index_offset (file size = index_offset + 32 * frame_count)
 *   64     4     frame_tokens (= the shard's)
 *   68     4     context: tokens per teacher window
 *   72     4     overlap: tokens of each window (but the first) that only serve as context
 *   76     4     reserved, 0
 *   80     64    teacher name, NUL-padded UTF-8 (the model directory's last path component by default)
 *   144    12    reserved, 0
 *   156    4     header_crc: CRC-32C of bytes [0, 156) followed by the whole index
 *   160    ...   frames: each one zstd frame of n entries (n = the shard frame's token count) in planes:
 *                ids [n*k] (id_bytes each), logits [n*k] FP16, lse [n] FP32; every plane byte-shuffled (byte 0 of
 *                all values, then byte 1, ...) so the sign/exponent bytes of the sorted logits compress well.
 *                Within an entry the k ids are in descending logit order.
 *   index: frame_count entries of 32 bytes: offset u64, first_token u64, compressed_size u32, token_count u32,
 *          crc u32 (CRC-32C of the decompressed frame), reserved u32.
 * Writer: kd_write.c (temp name + rename). Reader: kd_read.c (validates header, index, and each frame it reads). */
#ifndef SC_KD_FORMAT_H
#define SC_KD_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "data/shard.h"

#define KD_MAGIC "SCKD\0\0\0\0"
#define KD_VERSION 1
#define KD_HEADER_SIZE 160
#define KD_INDEX_ENTRY_SIZE 32
#define KD_NAME_SIZE 64
#define KD_MAX_K 1024
/* entries (positions x k) one frame may hold: a reader allocates a frame's planes from the header's frame_tokens and
 * k, so their product is bounded (2^26: the default 65536-token frames at k = 1024, ~400 MB decoded) */
#define KD_MAX_FRAME_ENTRIES ((uint64_t)1 << 26)

typedef struct {
    uint32_t version, k;
    float temperature;
    uint32_t id_bytes, vocab_size, frame_count;
    uint64_t token_count, tokenizer_hash, shard_header_hash, index_offset;
    uint32_t frame_tokens, context, overlap;
    char teacher[KD_NAME_SIZE + 1];
} kd_header;

/* hash64 of a shard's 64 header bytes, read from its file (what a .kd records and is checked against). */
int kd_shard_header_hash(const char *shard_path, uint64_t *out);
/* Bytes of one decompressed frame of n entries. */
size_t kd_frame_bytes(const kd_header *h, uint32_t n);

/* ---- writing: frames are appended in order, each exactly the matching shard frame's token count ---- */
typedef struct kd_writer kd_writer;

/* h: every field but version/index_offset set by the caller (from the shard and the teacher). */
int kd_writer_open(kd_writer **out, const char *path, const kd_header *h, int zstd_level);
/* One frame of n entries: ids [n*k], logits [n*k] (rounded to FP16), lse [n]. */
int kd_writer_append_frame(kd_writer *w, const int32_t *ids, const float *logits, const float *lse, uint32_t n);
uint64_t kd_writer_bytes(const kd_writer *w);
/* Writes index + header, fsyncs and renames into place; frees w. On failure nothing appears at path. */
int kd_writer_close(kd_writer *w);
void kd_writer_abort(kd_writer *w);

/* ---- reading ---- */
typedef struct kd_reader kd_reader;

int kd_open(kd_reader **out, const char *path);
void kd_close(kd_reader *r);
const kd_header *kd_info(const kd_reader *r);
/* Checks that the .kd belongs to the shard: token and frame counts, each frame's token count, tokenizer hash and
 * the shard header hash. One clear message naming both files on a mismatch. */
int kd_check_shard(const kd_reader *r, const shard_reader *s);
/* Entries [start, start+n) of the stream: ids [n*k], logits [n*k] (FP32), lse [n]. Any pointer may be NULL.
 * Keeps the last decoded frame, so sequential reads decompress each frame once. */
int kd_read(kd_reader *r, uint64_t start, size_t n, int32_t *ids, float *logits, float *lse);
/* Reads every frame (CRC, sizes, ids < vocab). */
int kd_verify(kd_reader *r);

#endif
