/* quant.h — weight-only symmetric INT8 with FP16 scales per row or per group of columns, and the INT8 x INT8
 * matrix-vector product used by decode: activations are quantized per token (per group) on the fly, weights stay
 * INT8, dot products run on AVX-512-VNNI / AVX-VNNI when compiled in, scalar otherwise. */
#ifndef SC_INFER_QUANT_H
#define SC_INFER_QUANT_H

#include <stdint.h>

/* A [rows, cols] INT8 matrix; group = columns per scale (== cols for per-row), ngroups = ceil(cols / group). */
typedef struct {
    int rows, cols, group, ngroups;
    const int8_t *q;       /* [rows, cols] (may point into a mapped file) */
    const void *scale;     /* [rows, ngroups] FP16 as stored: bytes that may sit at an odd address (a safetensors
                            * header may end in any number of spaces), so it is read with memcpy, never as uint16_t */
    float *fscale;         /* [rows, ngroups] the same as FP32 (owned) */
    int32_t *wsum;         /* [rows, ngroups] 128 * sum of the group's weights, for the u8 activation offset (owned) */
} sc_qmat;

/* Quantizes w [rows, cols] with `group` columns per scale (0 = per row): scale = max|w| / 127 rounded to FP16,
 * q = round(w / scale). q [rows*cols] and scale [rows*ngroups] are written. */
void quant_rows(const float *w, int rows, int cols, int group, int8_t *q, uint16_t *scale);
int quant_ngroups(int cols, int group);

/* Fills fscale and wsum of a matrix whose q and scale are set. */
void qmat_prepare(sc_qmat *m);
void qmat_free(sc_qmat *m);
/* out[(r - r0) * cols + c] = q * scale for rows r0..r1-1. */
void qmat_dequant_rows(const sc_qmat *m, int r0, int r1, float *out);

/* Per-token activation quantization in the matrix's groups: xq = round(x / s) + 128 (unsigned, so VNNI's u8 x s8
 * instruction applies; wsum removes the offset), xs[g] = max|x in g| / 127. xq [cols], xs [ngroups]. */
void act_quant(const float *x, int cols, int group, uint8_t *xq, float *xs);
/* y[r] = sum_g fscale[r,g] * xs[g] * (dot(xq - 128, q[r]) over group g), rows in parallel (OpenMP). */
void qmat_matvec(const sc_qmat *m, const uint8_t *xq, const float *xs, float *y);
/* qmat_matvec for nm <= QMULTI_MAX matrices of one input (same cols and group: q, k, v or gate, up) in one
 * parallel region: y[i] = m[i] x. */
enum { QMULTI_MAX = 4 };
void qmat_matvec_multi(const sc_qmat *const *m, int nm, const uint8_t *xq, const float *xs, float *const *y);
/* The same for T tokens: y[T, rows] from xq[T, cols], xs[T, ngroups] (weights read once per block of rows). */
void qmat_matmul(const sc_qmat *m, const uint8_t *xq, const float *xs, float *y, int T);
/* The row kernels (quant_dot.c): y[r] for rows [r0, r1) of one token. One per instruction set, all equal bit for
 * bit to the scalar one; the best the CPU supports is picked at start-up. */
typedef void (*qrows_fn)(const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs, float *y);
qrows_fn quant_rows_kernel(void);
/* The same for T tokens at once: y[t * m->rows + r] for rows [r0, r1), tokens [0, T), xq [T, cols], xs [T,
 * ngroups]. Each token's outputs equal the one-token kernel's bit for bit, whatever T (verification of drafted
 * tokens must give the logits of single steps); on AVX-512 VNNI each weight vector is loaded once for a tile of
 * up to 6 tokens. */
typedef void (*qmm_fn)(const sc_qmat *m, int r0, int r1, const uint8_t *xq, const float *xs, float *y, int T);
qmm_fn quant_matmul_kernel(void);
/* Which kernel runs ("avx512-vnni", "avx-vnni", "avx2", "scalar"). */
const char *quant_kernel_name(void);
/* Forces a kernel by name (tests, benchmarks); -1 when unknown or not supported by this CPU. Not thread-safe:
 * call it while no product runs. */
int quant_set_kernel(const char *name);

#endif
