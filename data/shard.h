/* shard.h — the token shard format (*.tok): a stream of token ids cut into independent zstd frames with an
 * index, so a reader can fetch any window of tokens by decompressing one or two frames. Writer: shard_write.c
 * (temp name + rename, never a half-written shard). Reader: shard_read.c (validates everything it reads).
 *
 * Byte layout, all integers little-endian:
 *
 *   offset size  field
 *   0      8     magic "SCTOK\0\0\0"
 *   8      4     version (1)
 *   12     4     dtype: bytes per token id, 2 (u16) when vocab_size <= 65536, else 4 (u32)
 *   16     4     vocab_size (every id is < vocab_size)
 *   20     4     frame_count
 *   24     8     token_count (sum of the frames' token counts)
 *   32     8     doc_count (documents; each ends with the tokenizer's end-of-text token, <|endoftext|> or </s>...)
 *   40     8     tokenizer_hash (tokenizer_hash() of the tokenizer that made the ids)
 *   48     8     index_offset (where the frame index starts; file size = index_offset + 32 * frame_count)
 *   56     4     frame_tokens (nominal tokens per frame; every frame but the last holds exactly this many)
 *   60     4     header_crc: CRC-32C of header bytes [0, 60) followed by the whole frame index
 *   64     ...   frame 0, frame 1, ... : each one complete zstd frame of token_count * dtype bytes
 *   index_offset: frame_count entries of 32 bytes:
 *          0  8  offset of the frame in the file (frame 0 at 64, each next one right after the previous)
 *          8  8  first_token: index of the frame's first token in the shard's stream
 *          16 4  compressed_size
 *          20 4  token_count of the frame (1 .. frame_tokens)
 *          24 4  crc: CRC-32C of the frame's decompressed bytes (the little-endian ids)
 *          28 4  reserved, 0
 *
 * Frame size: SHARD_FRAME_TOKENS_DEFAULT = 65536 tokens (128 KiB of u16 ids). A random training window of a few
 * thousand tokens touches one frame (two at a boundary), so a read decompresses ~128 KiB (~0.16 ms). Measured on
 * the Python stdlib's tokens (bench/results/tokenize-*.md): 1Mi-token frames would save only 5.6% of disk but cost
 * ~1.9 ms per random window; 16Ki frames cost 12.6% more disk. Small frames also localise a CRC failure. */
#ifndef SC_SHARD_H
#define SC_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define SHARD_MAGIC "SCTOK\0\0\0"
#define SHARD_VERSION 1
#define SHARD_HEADER_SIZE 64
#define SHARD_INDEX_ENTRY_SIZE 32
#define SHARD_FRAME_TOKENS_DEFAULT 65536
#define SHARD_FRAME_TOKENS_MAX (1u << 24)  /* readers refuse bigger frames: bounds the memory one read needs */

typedef struct {
    uint32_t version;
    uint32_t dtype;          /* 2 or 4 bytes per id */
    uint32_t vocab_size;
    uint32_t frame_count;
    uint64_t token_count;
    uint64_t doc_count;
    uint64_t tokenizer_hash;
    uint64_t index_offset;
    uint32_t frame_tokens;
} shard_header;

typedef struct {
    uint64_t offset;
    uint64_t first_token;
    uint32_t compressed_size;
    uint32_t token_count;
    uint32_t crc;
} shard_frame;

/* ---- writing ---- */
typedef struct shard_writer shard_writer;

typedef struct {
    uint32_t vocab_size;       /* required, > 0 */
    uint64_t tokenizer_hash;
    uint32_t frame_tokens;     /* 0 = SHARD_FRAME_TOKENS_DEFAULT */
    int zstd_level;            /* 0 = default (3) */
} shard_writer_options;

/* Starts a shard that will appear at path when shard_writer_close succeeds (bytes go to path.tmp.<pid>). */
int shard_writer_open(shard_writer **out, const char *path, const shard_writer_options *opt);
/* Appends ids (each must be < vocab_size) and adds n_docs to the document count. */
int shard_writer_append(shard_writer *w, const int32_t *ids, size_t n, uint64_t n_docs);
uint64_t shard_writer_tokens(const shard_writer *w);
/* Flushes the last frame, writes index and header, fsyncs and renames into place. Frees w in every case;
 * on failure the temporary file is removed and nothing appears at path. */
int shard_writer_close(shard_writer *w);
/* Gives up: removes the temporary file and frees w. NULL is fine. */
void shard_writer_abort(shard_writer *w);

/* ---- reading ---- */
typedef struct shard_reader shard_reader;

/* Opens and validates header and index (magic, version, dtype vs vocab, sizes, every index entry in range and
 * contiguous, header_crc). Frame contents are checked when read. Errors name the file and what is wrong. */
int shard_open(shard_reader **out, const char *path);
void shard_close(shard_reader *r);
const shard_header *shard_info(const shard_reader *r);
const shard_frame *shard_frame_info(const shard_reader *r, uint32_t i);
const char *shard_path(const shard_reader *r);
/* Decompresses frame i into out (shard_frame_info(r, i)->token_count ids), checking its size, CRC and ids. */
int shard_read_frame(shard_reader *r, uint32_t i, int32_t *out);
/* Reads ids [start, start + n) of the shard's stream (may span frames; keeps the last frame decoded so
 * sequential reads decompress each frame once). Not thread-safe: one reader per thread. */
int shard_read_tokens(shard_reader *r, uint64_t start, size_t n, int32_t *out);
/* Reads every frame once (CRC, sizes, ids): a full integrity check. */
int shard_verify(shard_reader *r);

#endif
