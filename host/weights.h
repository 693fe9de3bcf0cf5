/* weights.h — the weights inference runs on, loaded from a model directory that is either FP32/FP16 (HF, through
 * model_load) or INT8 (written by `smallcoder quantize`: I8 tensors + F16 "<name>.scale" tensors, config.json
 * carrying quantization_config). Each matrix is FP32 or INT8; the norms are always FP32. */
#ifndef SC_INFER_WEIGHTS_H
#define SC_INFER_WEIGHTS_H

#include "host/model.h"
#include "host/quant.h"
#include "host/safetensors.h"

typedef struct {
    const float *f; /* FP32 [rows, cols], or NULL when quantized */
    sc_qmat q;
    int rows, cols;
} sc_wmat;

typedef struct {
    const float *attn_norm, *mlp_norm;
    sc_wmat wq, wk, wv, wo, wgate, wup, wdown;
} sc_wlayer;

typedef struct {
    sc_config cfg;
    int quantized;   /* 1: INT8 matrices */
    int group_size;  /* INT8: columns per scale, 0 = per row */
    sc_wlayer *layers;
    sc_wmat embed;   /* [V, C]; also the output projection when tied */
    sc_wmat lm_head; /* == embed when tied */
    const float *final_norm;
    /* storage */
    sc_model fp;     /* FP32 models */
    st_file st;      /* INT8 models: the mapped file the INT8 data points into */
    float *norms;    /* INT8 models: the norm weights converted to FP32 */
    int64_t weight_bytes; /* bytes of matrices + scales (what decode streams per token) */
} sc_weights;

/* Loads dir (FP32/FP16/BF16 or INT8). */
int weights_load(sc_weights *w, const char *dir);
void weights_free(sc_weights *w);
/* Refuses a tokenizer with more ids than the model's vocab_size at load, rather than failing requests later. */
int weights_check_vocab(const sc_weights *w, int tokenizer_ids, const char *dir);

/* Reads config.json's quantization_config: *group_size = its group_size; returns 1 when dir is an INT8 model,
 * 0 when not, -1 on a malformed config. */
int quant_config_read(const char *dir, int *group_size);

/* Loads any model directory as an FP32 sc_model, dequantizing INT8 ones (how eval measures the INT8 loss). */
int infer_model_load(sc_model *m, const char *dir);

/* Dequantized rows [r0, r1) of a matrix, or the FP32 rows themselves. */
void wmat_rows_f32(const sc_wmat *w, int r0, int r1, float *out);

#endif
