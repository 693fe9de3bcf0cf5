/* checksum.h — the two small hashes the data pipeline needs: CRC-32C to detect corruption in shards, and a
 * 64-bit content hash (MurmurHash64A) for exact-duplicate detection and the deterministic train/val split.
 * Neither zstd nor any Debian library we link exposes a stable checksum API, so they live here (≈60 lines). */
#ifndef SC_CHECKSUM_H
#define SC_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli). Pass crc = 0 to start; feed the previous result to continue over several buffers. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);

/* MurmurHash64A of n bytes with a seed: fast, well mixed, stable across platforms (reads little-endian). */
uint64_t hash64(const void *data, size_t n, uint64_t seed);

#endif
