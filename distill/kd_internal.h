/* kd_internal.h — what kd_write.c and kd_read.c share: header packing and the byte (un)shuffle of the planes. */
#ifndef SC_KD_INTERNAL_H
#define SC_KD_INTERNAL_H

#include <stddef.h>

#include "distill/kd_format.h"

void kd_header_pack(unsigned char *b, const kd_header *h);
/* dst[b*count + i] = src[i*es + b]: byte b of every element together. */
void kd_shuffle(unsigned char *dst, const unsigned char *src, size_t count, int es);
void kd_unshuffle(unsigned char *dst, const unsigned char *src, size_t count, int es);

#endif
