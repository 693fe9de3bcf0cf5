/* cuda_lora.c — see cuda_lora.h. Every product is kn_gemm_cm (column-major, so a row-major [R, C] matrix with row
 * stride ld is read as its transpose [C, R] with leading dimension ld); the GEMM path is the one the model's own
 * projections take, chosen per shape by measurement (kernels/gemm.cu). */
#include "host/cuda_lora.h"

#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#ifdef SC_HAVE_KERNELS
#include "host/cuda_check.h"
#include "host/half.h"
#endif

static int widest_input(const sc_lora *ad) {
    int w = 1;
    for (int t = 0; t < LORA_NTARGETS; t++)
        if ((ad->targets & (1u << t)) && ad->in[t] > w) w = ad->in[t];
    return w;
}

void cuda_lora_init(cuda_lora *cl, const sc_lora *ad, int T, int training) {
    memset(cl, 0, sizeof *cl);
    cl->ad = ad, cl->T = T, cl->training = training;
    cl->scale = lora_scaling(ad);
}

void cuda_lora_layout(cuda_lora *cl, cuda_arena *a) {
    const sc_lora *ad = cl->ad;
    size_t n = (size_t)ad->nparams, tr = (size_t)cl->T * (size_t)ad->rank;
    cuda_arena_name(a, "adapter weights");
    cl->w = cuda_arena_alloc(a, 2 * n);
    cuda_arena_name(a, "adapter grads");
    cl->g = cl->training ? cuda_arena_alloc(a, 4 * n) : NULL;
    cuda_arena_name(a, "adapter activations");
    cl->u = cuda_arena_alloc(a, 2 * tr * (size_t)ad->nlayers * LORA_NTARGETS);
    cl->du = cl->training ? cuda_arena_alloc(a, 2 * tr) : NULL;
    cl->xd = ad->dropout > 0 ? cuda_arena_alloc(a, 2 * (size_t)cl->T * (size_t)widest_input(ad)) : NULL;
}

void cuda_lora_free(cuda_lora *cl) {
    free(cl->h16);
    cl->h16 = NULL;
}

#ifdef SC_HAVE_KERNELS
void cuda_lora_upload(cuda_lora *cl, const float *params, cudaStream_t stream) {
    int64_t n = cl->ad->nparams;
    if (!cl->h16) cl->h16 = sc_malloc(sizeof(uint16_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) cl->h16[i] = float_to_half(params[i]);
    CU_CHECK(cudaMemcpyAsync(cl->w, cl->h16, sizeof(uint16_t) * (size_t)n, cudaMemcpyHostToDevice, stream));
    CU_CHECK(cudaStreamSynchronize(stream));
}

void cuda_lora_read_grads(cuda_lora *cl, float *host, cudaStream_t stream) {
    CU_CHECK(cudaMemcpyAsync(host, cl->g, sizeof(float) * (size_t)cl->ad->nparams, cudaMemcpyDeviceToHost, stream));
    CU_CHECK(cudaStreamSynchronize(stream));
}

void cuda_lora_zero_grads(cuda_lora *cl, cudaStream_t stream) {
    if (cl->g) CU_CHECK(cudaMemsetAsync(cl->g, 0, sizeof(float) * (size_t)cl->ad->nparams, stream));
}

static kn_half *saved_u(cuda_lora *cl, int layer, int target) {
    return cl->u + ((size_t)layer * LORA_NTARGETS + (size_t)target) * (size_t)cl->T * (size_t)cl->ad->rank;
}

/* The adapter's input: x, or drop(x) in xd while training with dropout (the same mask in forward and backward). */
static const kn_half *adapter_input(cuda_lora *cl, int layer, int target, const kn_half *x, int T, cudaStream_t s) {
    if (!cl->dropout_on || !(cl->ad->dropout > 0)) return x;
    kn_lora_dropout(cl->xd, x, NULL, (int64_t)T * cl->ad->in[target], cl->dropout_key, layer * LORA_NTARGETS + target,
                    cl->ad->dropout, s);
    return cl->xd;
}

void cuda_lora_forward(cuda_lora *cl, kn_blas *b, cudaStream_t s, int layer, int target, kn_half *y, int ldy,
                       const kn_half *x, int T) {
    const sc_lora *ad = cl->ad;
    int64_t ao = ad->a_off[layer * LORA_NTARGETS + target], bo = ad->b_off[layer * LORA_NTARGETS + target];
    if (ao < 0 || T <= 0) return;
    int r = ad->rank, in = ad->in[target], out = ad->out[target];
    kn_half *u = saved_u(cl, layer, target);
    const kn_half *xin = adapter_input(cl, layer, target, x, T, s);
    /* u[T, r] = drop(x) A^T */
    kn_gemm_cm(b, 1, 0, r, T, in, 1.0f, cl->w + ao, in, xin, in, 0.0f, u, 0, r);
    /* y[T, out] += s u B^T */
    kn_gemm_cm(b, 1, 0, out, T, r, cl->scale, cl->w + bo, r, u, r, 1.0f, y, 0, ldy);
}

void cuda_lora_backward(cuda_lora *cl, kn_blas *b, cudaStream_t s, int layer, int target, kn_half *dx_acc,
                        const kn_half *dy, int ldy, const kn_half *x, int T) {
    const sc_lora *ad = cl->ad;
    int slot = layer * LORA_NTARGETS + target;
    int64_t ao = ad->a_off[slot], bo = ad->b_off[slot];
    if (ao < 0 || T <= 0) return;
    int r = ad->rank, in = ad->in[target], out = ad->out[target];
    const kn_half *u = saved_u(cl, layer, target);
    if (cl->g) /* dB[out, r] += s dy^T u */
        kn_gemm_cm(b, 0, 1, r, out, T, cl->scale, u, r, dy, ldy, 1.0f, cl->g + bo, 1, r);
    /* du[T, r] = s dy B */
    kn_gemm_cm(b, 0, 0, r, T, out, cl->scale, cl->w + bo, r, dy, ldy, 0.0f, cl->du, 0, r);
    if (cl->g) { /* dA[r, in] += du^T drop(x) (drop(x) regenerated) */
        const kn_half *xin = adapter_input(cl, layer, target, x, T, s);
        kn_gemm_cm(b, 0, 1, in, r, T, 1.0f, xin, in, cl->du, r, 1.0f, cl->g + ao, 1, in);
    }
    if (!dx_acc) return;
    if (!cl->dropout_on || !(ad->dropout > 0)) { /* dx[T, in] += du A */
        kn_gemm_cm(b, 0, 0, in, T, r, 1.0f, cl->w + ao, in, cl->du, r, 1.0f, dx_acc, 0, in);
        return;
    }
    /* through the dropout: xd = du A, then dx += mask * xd */
    kn_gemm_cm(b, 0, 0, in, T, r, 1.0f, cl->w + ao, in, cl->du, r, 0.0f, cl->xd, 0, in);
    kn_lora_dropout(dx_acc, cl->xd, dx_acc, (int64_t)T * in, cl->dropout_key, slot, ad->dropout, s);
}
#endif
