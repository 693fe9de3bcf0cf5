/* quantize.h — an FP32 model written as an INT8 model directory (host/weights.c reads it back). */
#ifndef SC_INFER_QUANTIZE_H
#define SC_INFER_QUANTIZE_H

#include "host/model.h"

/* Writes m as an INT8 model directory (model.safetensors + config.json); used by cmd_quantize and the tests. */
int quantize_model(const sc_model *m, const char *out, int group);

#endif
