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

void cuda_lora_init(cuda_lora *cl, const sc_lora *ad, int T, int training, int shared_u, int stream_grads) {
    memset(cl, 0, sizeof *cl);
    cl->ad = ad, cl->T = T, cl->training = training, cl->shared_u = shared_u;
    cl->stream_grads = training && stream_grads && ad->nlayers > 0;
    cl->layer_numel = ad->nlayers > 0 ? ad->nparams / ad->nlayers : 0;
    /* the slots assume equal layers, each contiguous and in order (host/lora.c's layout); else one block */
    for (int l = 0; cl->stream_grads && l < ad->nlayers; l++)
        for (int t = 0; t < LORA_NTARGETS; t++) {
            int64_t a = ad->a_off[l * LORA_NTARGETS + t], b = ad->b_off[l * LORA_NTARGETS + t];
            int64_t lo = (int64_t)l * cl->layer_numel, hi = lo + cl->layer_numel;
            if (a >= 0 && (a < lo || a + (int64_t)ad->rank * ad->in[t] > hi || b < lo ||
                           b + (int64_t)ad->rank * ad->out[t] > hi))
                cl->stream_grads = 0;
        }
    if (cl->layer_numel * ad->nlayers != ad->nparams) cl->stream_grads = 0;
    cl->scale = lora_scaling(ad);
}

void cuda_lora_layout(cuda_lora *cl, cuda_arena *a) {
    const sc_lora *ad = cl->ad;
    size_t n = (size_t)ad->nparams, tr = (size_t)cl->T * (size_t)ad->rank;
    cuda_arena_name(a, "adapter weights");
    cl->w = cuda_arena_alloc(a, 2 * n);
    cuda_arena_name(a, "adapter grads");
    cl->g = cl->training && !cl->stream_grads ? cuda_arena_alloc(a, 4 * n) : NULL;
    for (int i = 0; i < 2; i++) cl->slot[i] = cl->stream_grads ? cuda_arena_alloc(a, 4 * (size_t)cl->layer_numel) : NULL;
    cuda_arena_name(a, "adapter activations");
    cl->u = cuda_arena_alloc(a, 2 * tr * (size_t)(cl->shared_u ? 1 : ad->nlayers) * LORA_NTARGETS);
    cl->du = cl->training ? cuda_arena_alloc(a, 2 * tr) : NULL;
    cl->xd = ad->dropout > 0 ? cuda_arena_alloc(a, 2 * (size_t)cl->T * (size_t)widest_input(ad)) : NULL;
}

size_t cuda_lora_host_bytes(const cuda_lora *cl) {
    return cl->stream_grads ? sizeof(float) * (size_t)cl->ad->nparams : 0;
}

void cuda_lora_free(cuda_lora *cl) {
#ifdef SC_HAVE_KERNELS
    if (cl->copy) {
        CU_CHECK(cudaStreamSynchronize((cudaStream_t)cl->copy));
        for (int i = 0; i < 2; i++) {
            CU_CHECK(cudaEventDestroy((cudaEvent_t)cl->computed[i]));
            CU_CHECK(cudaEventDestroy((cudaEvent_t)cl->copied[i]));
        }
        CU_CHECK(cudaStreamDestroy((cudaStream_t)cl->copy));
        cl->copy = NULL;
    }
    pinned_free(&cl->sink_buf);
#endif
    free(cl->h16);
    cl->h16 = NULL;
}

#ifdef SC_HAVE_KERNELS
void cuda_lora_start(cuda_lora *cl) {
    if (!cl->stream_grads) return;
    cudaStream_t copy;
    CU_CHECK(cudaStreamCreate(&copy));
    cl->copy = copy;
    for (int i = 0; i < 2; i++) {
        cudaEvent_t e1, e2;
        CU_CHECK(cudaEventCreate(&e1));
        CU_CHECK(cudaEventCreate(&e2));
        cl->computed[i] = e1, cl->copied[i] = e2;
    }
    cl->sink = pinned_alloc(&cl->sink_buf, sizeof(float) * (size_t)cl->ad->nparams, "the adapter's gradients");
    cl->sink_clean = 1;
}

/* The slot starts from what the accumulator holds for the layer (zero on a step's first sequence), so gradients
 * add in the same order as in one device block: the same bits; a slot is reused once its last copy down is done. */
void cuda_lora_layer_begin(cuda_lora *cl, int layer, cudaStream_t s) {
    if (!cl->stream_grads) return;
    int k = layer & 1;
    size_t bytes = sizeof(float) * (size_t)cl->layer_numel;
    CU_CHECK(cudaStreamWaitEvent(s, (cudaEvent_t)cl->copied[k], 0));
    if (cl->sink_clean) CU_CHECK(cudaMemsetAsync(cl->slot[k], 0, bytes, s));
    else CU_CHECK(cudaMemcpyAsync(cl->slot[k], cl->sink + (size_t)layer * (size_t)cl->layer_numel, bytes,
                                  cudaMemcpyHostToDevice, s));
}

void cuda_lora_layer_end(cuda_lora *cl, int layer, cudaStream_t s) {
    if (!cl->stream_grads) return;
    int k = layer & 1;
    cudaStream_t copy = (cudaStream_t)cl->copy;
    CU_CHECK(cudaEventRecord((cudaEvent_t)cl->computed[k], s));
    CU_CHECK(cudaStreamWaitEvent(copy, (cudaEvent_t)cl->computed[k], 0));
    CU_CHECK(cudaMemcpyAsync(cl->sink + (size_t)layer * (size_t)cl->layer_numel, cl->slot[k],
                             sizeof(float) * (size_t)cl->layer_numel, cudaMemcpyDeviceToHost, copy));
    CU_CHECK(cudaEventRecord((cudaEvent_t)cl->copied[k], copy));
}

void cuda_lora_grads_done(cuda_lora *cl) {
    if (!cl->stream_grads) return;
    CU_CHECK(cudaStreamSynchronize((cudaStream_t)cl->copy));
    cl->sink_clean = 0;
}

void cuda_lora_upload(cuda_lora *cl, const float *params, cudaStream_t stream) {
    int64_t n = cl->ad->nparams;
    if (!cl->h16) cl->h16 = sc_malloc(sizeof(uint16_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) cl->h16[i] = float_to_half(params[i]);
    CU_CHECK(cudaMemcpyAsync(cl->w, cl->h16, sizeof(uint16_t) * (size_t)n, cudaMemcpyHostToDevice, stream));
    CU_CHECK(cudaStreamSynchronize(stream));
}

void cuda_lora_read_grads(cuda_lora *cl, float *host, cudaStream_t stream) {
    size_t bytes = sizeof(float) * (size_t)cl->ad->nparams;
    if (cl->stream_grads) { /* the accumulator is complete once the copy stream is idle */
        CU_CHECK(cudaStreamSynchronize(stream));
        CU_CHECK(cudaStreamSynchronize((cudaStream_t)cl->copy));
        if (cl->sink_clean) memset(host, 0, bytes);
        else memcpy(host, cl->sink, bytes);
        return;
    }
    CU_CHECK(cudaMemcpyAsync(host, cl->g, bytes, cudaMemcpyDeviceToHost, stream));
    CU_CHECK(cudaStreamSynchronize(stream));
}

void cuda_lora_zero_grads(cuda_lora *cl, cudaStream_t stream) {
    if (cl->g) CU_CHECK(cudaMemsetAsync(cl->g, 0, sizeof(float) * (size_t)cl->ad->nparams, stream));
    cl->sink_clean = 1;
}

/* The FP32 gradient of the adapter parameter at offset off (of layer `layer`): in the block or in the layer's slot;
 * NULL when not training. */
static float *grad_at(cuda_lora *cl, int layer, int64_t off) {
    if (cl->g) return cl->g + off;
    if (!cl->stream_grads) return NULL;
    return cl->slot[layer & 1] + (off - (int64_t)layer * cl->layer_numel);
}

static kn_half *saved_u(cuda_lora *cl, int layer, int target) {
    size_t l = cl->shared_u ? 0 : (size_t)layer;
    return cl->u + (l * LORA_NTARGETS + (size_t)target) * (size_t)cl->T * (size_t)cl->ad->rank;
}

/* The adapter's input: x, or drop(x) in xd while training with dropout (the same mask in forward and backward). */
static const kn_half *adapter_input(cuda_lora *cl, int layer, int target, const kn_half *x, int T, cudaStream_t s) {
    if (!cl->dropout_on || !(cl->ad->dropout > 0)) return x;
    kn_lora_dropout(cl->xd, x, NULL, (int64_t)T * cl->ad->in[target], cl->dropout_key, layer * LORA_NTARGETS + target,
                    cl->ad->dropout, s);
    return cl->xd;
}

void cuda_lora_forward(cuda_lora *cl, kn_blas *b, cudaStream_t s, int layer, int target, kn_half *y, int ldy,
                       const kn_half *x, int T, int t0) {
    const sc_lora *ad = cl->ad;
    int64_t ao = ad->a_off[layer * LORA_NTARGETS + target], bo = ad->b_off[layer * LORA_NTARGETS + target];
    if (ao < 0 || T <= 0) return;
    int r = ad->rank, in = ad->in[target], out = ad->out[target];
    kn_half *u = saved_u(cl, layer, target) + (size_t)t0 * (size_t)r;
    const kn_half *xin = adapter_input(cl, layer, target, x, T, s);
    /* u[T, r] = drop(x) A^T */
    kn_gemm_cm(b, 1, 0, r, T, in, 1.0f, cl->w + ao, in, xin, in, 0.0f, u, 0, r);
    /* y[T, out] += s u B^T */
    kn_gemm_cm(b, 1, 0, out, T, r, cl->scale, cl->w + bo, r, u, r, 1.0f, y, 0, ldy);
}

void cuda_lora_backward(cuda_lora *cl, kn_blas *b, cudaStream_t s, int layer, int target, kn_half *dx_acc,
                        const kn_half *dy, int ldy, const kn_half *x, int T, int t0) {
    const sc_lora *ad = cl->ad;
    int slot = layer * LORA_NTARGETS + target;
    int64_t ao = ad->a_off[slot], bo = ad->b_off[slot];
    if (ao < 0 || T <= 0) return;
    int r = ad->rank, in = ad->in[target], out = ad->out[target];
    const kn_half *u = saved_u(cl, layer, target) + (size_t)t0 * (size_t)r;
    float *gA = grad_at(cl, layer, ao), *gB = grad_at(cl, layer, bo);
    if (gB) /* dB[out, r] += s dy^T u */
        kn_gemm_cm(b, 0, 1, r, out, T, cl->scale, u, r, dy, ldy, 1.0f, gB, 1, r);
    /* du[T, r] = s dy B */
    kn_gemm_cm(b, 0, 0, r, T, out, cl->scale, cl->w + bo, r, dy, ldy, 0.0f, cl->du, 0, r);
    if (gA) { /* dA[r, in] += du^T drop(x) (drop(x) regenerated) */
        const kn_half *xin = adapter_input(cl, layer, target, x, T, s);
        kn_gemm_cm(b, 0, 1, in, r, T, 1.0f, xin, in, cl->du, r, 1.0f, gA, 1, in);
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
