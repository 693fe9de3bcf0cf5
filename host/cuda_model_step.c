/* cuda_model_step.c — one sequence through the CUDA model (see host/cuda_model.h): a layer is the CPU model's
 * layer (host/model_cpu.c) with the projections fused: norm1(+add) -> qkv GEMM -> RoPE on q|k -> flash attention ->
 * o GEMM -> norm2(+add) -> gate|up GEMM -> SwiGLU -> down GEMM, the down output being added in the next norm.
 * Open-model biases (qwen2 q/k/v, Llama attention_bias/mlp_bias) are added after their GEMM (q/k before RoPE, as
 * HF), and RoPE reads the config's inverse frequencies (rope_scaling linear/llama3), as the CPU model does. The
 * fused GEMMs read the weights in place: q, k, v (and gate, up) are consecutive in the parameter table, so together
 * they are one [rows, C] matrix. Recompute (CUDA_MODEL_RECOMPUTE): every layer keeps its own x (the layer's input);
 * the rest of the activations are one shared set, refilled for layer l by running layer l's forward again from x
 * just before its backward. The kernels are deterministic, so the refill has the bits of the first forward. */
#include "host/cuda_model_internal.h"

#ifdef SC_HAVE_KERNELS
/* Where the gradient of parameter offset off (of layer l, or l < 0 for the embedding/final norm/lm_head) lives. */
static float *grad_of(const cuda_model *cm, int l, int64_t off) {
    if (cm->flags & CUDA_MODEL_FROZEN) return NULL; /* LoRA: the base takes no gradient */
    if (!cm->g_slot[0]) return cm->g + off;
    if (l >= 0) return cm->g_slot[l & 1] + (off - cm->offs[l].attn_norm);
    return off < cm->offs[0].attn_norm ? cm->g_embed + off : cm->g_tail + (off - cm->final_norm_off);
}

/* STREAM_GRADS around layer l's backward: the slot starts from what the sink holds (zero on a step's first
 * sequence), so gradients add in the same order as in one device block; its copy down runs on the copy stream
 * while the next layers' backward goes on; a slot is reused only after its previous copy finished. */
static void grad_slot_begin(cuda_model *cm, int l) {
    int s = l & 1;
    size_t bytes = sizeof(float) * (size_t)cm->layer_numel;
    CU_CHECK(cudaStreamWaitEvent(cm->stream, cm->copied[s], 0));
    if (cm->sink_clean) CU_CHECK(cudaMemsetAsync(cm->g_slot[s], 0, bytes, cm->stream));
    else CU_CHECK(cudaMemcpyAsync(cm->g_slot[s], cm->sink + cm->offs[l].attn_norm, bytes, cudaMemcpyHostToDevice, cm->stream));
}

static void grad_slot_end(cuda_model *cm, int l) {
    int s = l & 1;
    CU_CHECK(cudaEventRecord(cm->computed[s], cm->stream));
    CU_CHECK(cudaStreamWaitEvent(cm->copy, cm->computed[s], 0));
    CU_CHECK(cudaMemcpyAsync(cm->sink + cm->offs[l].attn_norm, cm->g_slot[s], sizeof(float) * (size_t)cm->layer_numel,
                             cudaMemcpyDeviceToHost, cm->copy));
    CU_CHECK(cudaEventRecord(cm->copied[s], cm->copy));
}

/* A layer's FP16 bias (NULL: none, kn_bias_forward adds nothing) and its gradient: the column sums of the output
 * gradient dy, into the tail of the gradients (biases come after the final norm in the parameter table). */
static const kn_half *bias_of(const cuda_model *cm, int64_t off) { return off >= 0 ? cm->w + off : NULL; }

static void bias_grad(cuda_model *cm, int64_t off, const kn_half *dy, int T, int n, float gs) {
    float *g = off >= 0 ? grad_of(cm, -1, off) : NULL; /* NULL too when the base is frozen (LoRA) */
    if (g) kn_bias_backward(g, gs, dy, T, n, cm->stream);
}

/* The input and output widths of a layer's fused linear matrix LIN_*. */
static int lin_in(const cuda_model *cm, int which) { return which == LIN_O ? cm->Q : which == LIN_DOWN ? cm->F : cm->C; }
static int lin_out(const cuda_model *cm, int which) {
    return which == LIN_QKV ? cm->QKV : which == LIN_GU ? 2 * cm->F : cm->C;
}

/* y[T, out] = x[T, in] W^T for a layer's fused linear matrix (LIN_*, at parameter offset off): FP16 in place, or
 * with CUDA_MODEL_INT8 one tile of rows (output features) at a time dequantized into the scratch, each GEMM writing
 * its columns of y (stream-ordered: a tile's GEMM runs before the next dequantization overwrites the scratch). */
static void lin_forward(cuda_model *cm, int l, int which, int64_t off, kn_half *y, const kn_half *x, int T) {
    int in = lin_in(cm, which), out = lin_out(cm, which);
    if (!cm->w8) {
        kn_matmul_forward(cm->blas, y, x, cm->w + off, T, in, out);
        return;
    }
    const cuda_int8_mat *q = &cm->q8[l * LIN_N + which];
    int rows = (int)(cm->deq_numel / in);
    for (int r0 = 0; r0 < out; r0 += rows) {
        int nr = out - r0 < rows ? out - r0 : rows;
        kn_int8_dequant_tile(cm->deq, cm->w8 + q->q, cm->s8 + q->s, in, in, r0, nr, 0, in, cm->stream);
        kn_gemm_cm(cm->blas, 1, 0, nr, T, in, 1.0f, cm->deq, in, x, in, 0.0f, y + r0, 0, out);
    }
}

/* dx[T, in] = dy[T, out] W and, with a gradient block, dW += gs dy^T x (kn_matmul_backward); with CUDA_MODEL_INT8 one tile of columns (input features)
 * at a time, each GEMM summing over every output feature and writing its columns of dx. */
static void lin_backward(cuda_model *cm, int l, int which, int64_t off, kn_half *dx, const kn_half *dy, int T,
                         float *dW, float gs, const kn_half *x) {
    int in = lin_in(cm, which), out = lin_out(cm, which);
    if (!cm->w8) {
        kn_matmul_backward(cm->blas, dx, 0, dW, gs, dy, x, cm->w + off, T, in, out);
        return;
    }
    const cuda_int8_mat *q = &cm->q8[l * LIN_N + which];
    int cols = (int)(cm->deq_numel / out);
    for (int c0 = 0; c0 < in; c0 += cols) {
        int nc = in - c0 < cols ? in - c0 : cols;
        kn_int8_dequant_tile(cm->deq, cm->w8 + q->q, cm->s8 + q->s, in, in, 0, out, c0, nc, cm->stream);
        kn_gemm_cm(cm->blas, 0, 0, nc, T, out, 1.0f, cm->deq, nc, dy, out, 0.0f, dx + c0, 0, in);
    }
}

/* LoRA: the adapter's branch of projection `target` of layer l (host/cuda_lora.c); nothing without an adapter. */
static void lora_fwd(cuda_model *cm, int l, int target, kn_half *y, int ldy, const kn_half *x, int T, int t0) {
    if (cm->lora) cuda_lora_forward(cm->lora, cm->blas, cm->stream, l, target, y, ldy, x, T, t0);
}

static void lora_bwd(cuda_model *cm, int l, int target, kn_half *dx, const kn_half *dy, int ldy, const kn_half *x,
                     int T, int t0) {
    if (cm->lora) cuda_lora_backward(cm->lora, cm->blas, cm->stream, l, target, dx, dy, ldy, x, T, t0);
}

/* The MLP runs in chunks of mlp_chunk tokens (a frozen base without dropout: tokens are independent there), so
 * with recompute its widest activations (gate|up, act, d(act): [T, 2F], [T, F], [T, F]) exist for one chunk only.
 * Layer l's gate|up and act of the chunk at token t0: their place in the stored activations (every layer kept: the
 * whole sequence is stored), or the one chunk-sized workspace (recompute). */
static kn_half *mlp_gu(cuda_model *cm, int l, int t0) {
    return cm->acts[l].gu + ((cm->flags & CUDA_MODEL_RECOMPUTE) ? 0 : (size_t)t0 * 2 * (size_t)cm->F);
}
static kn_half *mlp_act(cuda_model *cm, int l, int t0) {
    return cm->acts[l].act + ((cm->flags & CUDA_MODEL_RECOMPUTE) ? 0 : (size_t)t0 * (size_t)cm->F);
}

/* Tokens [t0, t0 + n) of layer l's MLP: gate|up GEMM -> SwiGLU -> down GEMM into down's rows t0.. (the adapter's
 * branches saved at t0 too). */
static void mlp_forward(cuda_model *cm, int l, int t0, int n) {
    cudaStream_t s = cm->stream;
    int C = cm->C, F = cm->F;
    const cuda_layer_offs *o = &cm->offs[l];
    const kn_half *xn2 = cm->acts[l].xn2 + (size_t)t0 * C;
    kn_half *gu = mlp_gu(cm, l, t0), *act = mlp_act(cm, l, t0), *down = cm->down + (size_t)t0 * C;
    lin_forward(cm, l, LIN_GU, o->wgu, gu, xn2, n);
    lora_fwd(cm, l, LORA_GATE, gu, 2 * F, xn2, n, t0);
    lora_fwd(cm, l, LORA_UP, gu + F, 2 * F, xn2, n, t0);
    kn_bias_forward(gu, bias_of(cm, o->bgu), n, 2 * F, s);
    kn_swiglu_forward(act, gu, gu + F, n, F, 2 * F, s);
    lin_forward(cm, l, LIN_DOWN, o->wdown, down, act, n);
    lora_fwd(cm, l, LORA_DOWN, down, C, act, n, t0);
    kn_bias_forward(down, bias_of(cm, o->bdown), n, C, s);
}

/* The backward of mlp_forward for its tokens, from dy = d(down) (cm->dx's rows) to d(xn2) in cm->dxn's rows;
 * recompute = run the chunk's forward first (its gate|up and act are not stored). */
static void mlp_backward(cuda_model *cm, int l, int t0, int n, float gs, int recompute) {
    cudaStream_t s = cm->stream;
    int C = cm->C, F = cm->F;
    const cuda_layer_offs *o = &cm->offs[l];
    const kn_half *xn2 = cm->acts[l].xn2 + (size_t)t0 * C, *dy = cm->dx + (size_t)t0 * C;
    kn_half *gu = mlp_gu(cm, l, t0), *act = mlp_act(cm, l, t0), *dxn = cm->dxn + (size_t)t0 * C;
    if (recompute) mlp_forward(cm, l, t0, n);
    lin_backward(cm, l, LIN_DOWN, o->wdown, cm->dact, dy, n, grad_of(cm, l, o->wdown), gs, act);
    lora_bwd(cm, l, LORA_DOWN, cm->dact, dy, C, act, n, t0);
    kn_half *dgu = cm->dgu ? cm->dgu : gu; /* frozen: in place (nothing reads gate|up after it) */
    kn_swiglu_backward(dgu, dgu + F, cm->dact, gu, gu + F, n, F, 2 * F, s);
    bias_grad(cm, o->bgu, dgu, n, 2 * F, gs);
    lin_backward(cm, l, LIN_GU, o->wgu, dxn, dgu, n, grad_of(cm, l, o->wgu), gs, xn2);
    lora_bwd(cm, l, LORA_GATE, dxn, dgu, 2 * F, xn2, n, t0);
    lora_bwd(cm, l, LORA_UP, dxn, dgu + F, 2 * F, xn2, n, t0);
}

/* Layer l from its input: resid_in + delta (delta NULL: resid_in is the stored x, as when recomputing); mlp = 0
 * stops after the second norm (the recompute before backward: mlp_backward recomputes the MLP chunk by chunk). */
static void layer_forward(cuda_model *cm, int l, int T, const kn_half *resid_in, const kn_half *delta, int mlp) {
    cudaStream_t s = cm->stream;
    float eps = (float)cm->cfg.rms_norm_eps;
    int C = cm->C, Q = cm->Q, KV = cm->KV, QKV = cm->QKV;
    const cuda_layer_offs *o = &cm->offs[l];
    cuda_layer_acts *A = &cm->acts[l];
    kn_rmsnorm_forward(A->x, A->xn1, A->rstd1, resid_in, delta, cm->w + o->attn_norm, T, C, eps, s);
    lin_forward(cm, l, LIN_QKV, o->wqkv, A->qkv, A->xn1, T);
    lora_fwd(cm, l, LORA_Q, A->qkv, QKV, A->xn1, T, 0);
    lora_fwd(cm, l, LORA_K, A->qkv + Q, QKV, A->xn1, T, 0);
    lora_fwd(cm, l, LORA_V, A->qkv + Q + KV, QKV, A->xn1, T, 0);
    kn_bias_forward(A->qkv, bias_of(cm, o->bqkv), T, QKV, s); /* before RoPE, as HF: q and k biases are rotated */
    (void)kn_rope_forward(A->qkv, cm->inv_freq, T, cm->nh + cm->nkv, cm->hd, QKV, 0, NULL, s); /* q|k in one call */
    /* shapes were checked at open, so this cannot fail */
    kn_attention_forward(A->att, A->lse, A->qkv, A->qkv + Q, A->qkv + Q + KV, T, cm->nh, cm->nkv, cm->hd, QKV, QKV, s);
    lin_forward(cm, l, LIN_O, o->wo, cm->o, A->att, T);
    lora_fwd(cm, l, LORA_O, cm->o, C, A->att, T, 0);
    kn_bias_forward(cm->o, bias_of(cm, o->bo), T, C, s);
    kn_rmsnorm_forward(A->xmid, A->xn2, A->rstd2, A->x, cm->o, cm->w + o->mlp_norm, T, C, eps, s);
    for (int t0 = 0; mlp && t0 < T; t0 += cm->mlp_chunk) mlp_forward(cm, l, t0, T - t0 < cm->mlp_chunk ? T - t0 : cm->mlp_chunk);
}

/* CUDA_MODEL_HOST_CKPT: layer l's input down to pinned host memory after its forward (dir 0), or back up before
 * its recompute (dir 1); on the compute stream, so the one device buffer is never overwritten early. */
static void ckpt_copy(cuda_model *cm, int l, int T, int up) {
    if (!cm->ckpt) return;
    size_t bytes = sizeof(kn_half) * (size_t)T * (size_t)cm->C;
    uint16_t *h = cm->ckpt + (size_t)l * (size_t)cm->max_T * (size_t)cm->C;
    if (up) CU_CHECK(cudaMemcpyAsync(cm->acts[l].x, h, bytes, cudaMemcpyHostToDevice, cm->stream));
    else CU_CHECK(cudaMemcpyAsync(h, cm->acts[l].x, bytes, cudaMemcpyDeviceToHost, cm->stream));
}

/* CUDA_MODEL_HOST_EMBED: the rows of ids gathered from the host table into pinned staging and copied up to emb
 * (an id outside the vocabulary gives a zero row); the copy is done before the step's end synchronises. */
static void embed_on_host(cuda_model *cm, const int32_t *ids, int T) {
    size_t row = sizeof(uint16_t) * (size_t)cm->C;
    for (int t = 0; t < T; t++) {
        uint16_t *dst = cm->emb_stage + (size_t)t * (size_t)cm->C;
        if (ids[t] >= 0 && ids[t] < cm->V) memcpy(dst, cm->emb_host + (size_t)ids[t] * (size_t)cm->C, row);
        else memset(dst, 0, row);
    }
    CU_CHECK(cudaMemcpyAsync(cm->emb, cm->emb_stage, row * (size_t)T, cudaMemcpyHostToDevice, cm->stream));
}

static void forward(cuda_model *cm, int T) {
    if (!cm->emb_on_host) kn_embedding_forward(cm->emb, cm->ids, cm->w + cm->embed_off, T, cm->C, cm->stream);
    const kn_half *resid_in = cm->emb, *delta = NULL;
    for (int l = 0; l < cm->L; l++) {
        layer_forward(cm, l, T, resid_in, delta, 1);
        ckpt_copy(cm, l, T, 0);
        resid_in = cm->acts[l].xmid;
        delta = cm->down;
    }
    kn_rmsnorm_forward(cm->xfinal, cm->xnf, cm->rstdf, resid_in, delta, cm->w + cm->final_norm_off, T, cm->C,
                       (float)cm->cfg.rms_norm_eps, cm->stream);
}

/* cm->dxn holds dL/dxnf of the scaled loss (grad_scale entered at the logits), so every FP16 activation
 * gradient below carries the loss scale; weight gradients accumulate in FP32 with the factor gs = 1 (the trainer
 * unscales them once, when they are finished: train/adamw.c grad_multiplier). */
static void backward(cuda_model *cm, int T, float gs, int nids) {
    cudaStream_t s = cm->stream;
    int C = cm->C, Q = cm->Q, KV = cm->KV, QKV = cm->QKV;
    kn_rmsnorm_backward(cm->dx, grad_of(cm, -1, cm->final_norm_off), gs, cm->dxn, NULL, cm->xfinal, cm->rstdf,
                        cm->w + cm->final_norm_off, T, C, cm->ws, s);
    for (int l = cm->L - 1; l >= 0; l--) {
        const cuda_layer_offs *o = &cm->offs[l];
        cuda_layer_acts *A = &cm->acts[l];
        /* the last layer's activations are still in the shared set (its MLP's too when it ran in one chunk) */
        int recompute = (cm->flags & CUDA_MODEL_RECOMPUTE) && l < cm->L - 1;
        if (recompute) {
            ckpt_copy(cm, l, T, 1);
            layer_forward(cm, l, T, A->x, NULL, 0);
        }
        int mlp_recompute = (cm->flags & CUDA_MODEL_RECOMPUTE) && (recompute || cm->mlp_chunk < T);
        if (cm->g_slot[0]) grad_slot_begin(cm, l);
        if (cm->lora) cuda_lora_layer_begin(cm->lora, l, s);
        /* MLP branch: its output was added to the stream, so its gradient is dx */
        bias_grad(cm, o->bdown, cm->dx, T, C, gs);
        for (int t0 = 0; t0 < T; t0 += cm->mlp_chunk)
            mlp_backward(cm, l, t0, T - t0 < cm->mlp_chunk ? T - t0 : cm->mlp_chunk, gs, mlp_recompute);
        kn_rmsnorm_backward(cm->dx, grad_of(cm, l, o->mlp_norm), gs, cm->dxn, cm->dx, A->xmid, A->rstd2, cm->w + o->mlp_norm,
                            T, C, cm->ws, s);
        if (l == cm->L / 2 && cm->backwards >= cm->ovf_first && cm->backwards <= cm->ovf_last) {
            static const uint16_t inf16 = 0x7c00; /* an FP16 overflow in the residual gradient, mid-backward */
            CU_CHECK(cudaMemcpyAsync(cm->dx, &inf16, sizeof inf16, cudaMemcpyHostToDevice, s));
        }
        /* attention branch */
        bias_grad(cm, o->bo, cm->dx, T, C, gs);
        lin_backward(cm, l, LIN_O, o->wo, cm->datt, cm->dx, T, grad_of(cm, l, o->wo), gs, A->att);
        lora_bwd(cm, l, LORA_O, cm->datt, cm->dx, C, A->att, T, 0);
        kn_attention_backward(cm->dqkv, cm->dqkv + Q, cm->dqkv + Q + KV, cm->datt, A->qkv, A->qkv + Q,
                              A->qkv + Q + KV, A->att, A->lse, T, cm->nh, cm->nkv, cm->hd, QKV, QKV, cm->ws, s);
        (void)kn_rope_backward(cm->dqkv, cm->inv_freq, T, cm->nh + cm->nkv, cm->hd, QKV, 0, NULL, s);
        bias_grad(cm, o->bqkv, cm->dqkv, T, QKV, gs); /* the gradient before RoPE, where the bias was added */
        lin_backward(cm, l, LIN_QKV, o->wqkv, cm->dxn, cm->dqkv, T, grad_of(cm, l, o->wqkv), gs, A->xn1);
        lora_bwd(cm, l, LORA_Q, cm->dxn, cm->dqkv, QKV, A->xn1, T, 0);
        lora_bwd(cm, l, LORA_K, cm->dxn, cm->dqkv + Q, QKV, A->xn1, T, 0);
        lora_bwd(cm, l, LORA_V, cm->dxn, cm->dqkv + Q + KV, QKV, A->xn1, T, 0);
        kn_rmsnorm_backward(cm->dx, grad_of(cm, l, o->attn_norm), gs, cm->dxn, cm->dx, A->x, A->rstd1, cm->w + o->attn_norm,
                            T, C, cm->ws, s);
        if (cm->g_slot[0]) grad_slot_end(cm, l);
        if (cm->lora) cuda_lora_layer_end(cm->lora, l, s);
    }
    if (!(cm->flags & CUDA_MODEL_FROZEN)) /* a frozen embedding: nothing to add */
        kn_embedding_backward(grad_of(cm, -1, cm->embed_off), gs, cm->dx, cm->plan, nids, T, C, s);
}

/* Uploads the teacher's rows of a step (kd != NULL) after checking them against what open reserved. */
static int upload_kd(cuda_model *cm, const int32_t *targets, int T, const kd_targets *kd) {
    int k = kd->k;
    if (k < 1 || k > cm->kd_k)
        return cm->kd_k ? sc_fail("cuda backend: teacher top-k %d; this model was opened for 1 to %d", k, cm->kd_k)
                        : sc_fail("cuda backend: opened without CUDA_MODEL_KD, cannot distil");
    if (!(kd->temperature > 0.0f)) return sc_fail("cuda backend: distillation temperature %g", (double)kd->temperature);
    for (int t = 0; t < T; t++)
        for (int i = 0; targets[t] >= 0 && targets[t] < cm->V && i < k; i++)
            if (kd->ids[(int64_t)t * k + i] < 0 || kd->ids[(int64_t)t * k + i] >= cm->V)
                return sc_fail("cuda backend: teacher id %d at position %d is outside the vocabulary (%d)",
                               kd->ids[(int64_t)t * k + i], t, cm->V);
    size_t n = (size_t)T * (size_t)k;
    for (size_t i = 0; i < n; i++) cm->h_kd16[i] = float_to_half(kd->logits[i]);
    cudaStream_t s = cm->stream;
    CU_CHECK(cudaMemcpyAsync(cm->kd_ids, kd->ids, sizeof(int32_t) * n, cudaMemcpyHostToDevice, s));
    CU_CHECK(cudaMemcpyAsync(cm->kd_logits, cm->h_kd16, sizeof(kn_half) * n, cudaMemcpyHostToDevice, s));
    CU_CHECK(cudaMemcpyAsync(cm->kd_lse, kd->lse, sizeof(float) * (size_t)T, cudaMemcpyHostToDevice, s));
    return 0;
}

/* The step of cuda_model_step and cuda_model_step_kd: kd NULL = cross-entropy. */
int cuda_model_run_step(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, float *logits_out,
                      const kd_targets *kd, int want_grads, float grad_scale, double *loss_sum, double *ce_sum,
                      int *counted) {
    if (T < 1 || T > cm->max_T)
        return sc_fail("cuda backend: a sequence of %d tokens; this model was opened for 1 to %d", T, cm->max_T);
    if (want_grads && !(cm->flags & CUDA_MODEL_GRADS)) return sc_fail("cuda backend: opened without gradients");
    if (logits_out && !cm->logits) return sc_fail("cuda backend: opened without a logits buffer");
    if (kd && upload_kd(cm, targets, T, kd)) return -1;
    cudaStream_t s = cm->stream;
    CU_CHECK(cudaMemcpyAsync(cm->ids, ids, sizeof(int32_t) * (size_t)T, cudaMemcpyHostToDevice, s));
    CU_CHECK(cudaMemcpyAsync(cm->targets, targets, sizeof(int32_t) * (size_t)T, cudaMemcpyHostToDevice, s));
    int nids = 0;
    if (want_grads) {
        nids = kn_embedding_plan(cm->h_plan, ids, T, cm->V);
        CU_CHECK(cudaMemcpyAsync(cm->plan, cm->h_plan, sizeof(int32_t) * kn_embedding_plan_ints(T),
                                 cudaMemcpyHostToDevice, s));
    }
    if (cm->emb_on_host) embed_on_host(cm, ids, T);
    forward(cm, T);
    /* the whole scale enters at the loss gradient: dlogits = d(grad_scale * loss)/dlogits in FP16 */
    const float gs = 1.0f;
    if (want_grads) cm->backwards++;
    kn_int8_mat head8 = {cm->head_int8 ? cm->w8 + cm->head8.q : NULL, cm->head_int8 ? cm->s8 + cm->head8.s : NULL,
                         cm->C, cm->deq, cm->deq_numel};
    if (kd && cm->head_int8)
        kn_kd_classifier_forward_backward_q8(cm->blas, cm->losses, cm->kd_ce, want_grads ? cm->dxn : NULL, cm->xnf,
                                             &head8, cm->targets, cm->kd_ids, cm->kd_logits, cm->kd_lse, kd->k,
                                             kd->alpha, kd->temperature, kd->reverse, T, cm->C, cm->V, grad_scale,
                                             cm->chunk, cm->ws, s);
    else if (kd) /* arguments were checked by upload_kd, so it cannot fail */
        kn_kd_classifier_forward_backward(cm->blas, cm->losses, cm->kd_ce, want_grads ? cm->dxn : NULL,
                                          want_grads ? grad_of(cm, -1, cm->lm_head_off) : NULL, gs, cm->xnf,
                                          cm->w + cm->lm_head_off, cm->targets, cm->kd_ids, cm->kd_logits, cm->kd_lse,
                                          kd->k, kd->alpha, kd->temperature, kd->reverse, T, cm->C, cm->V,
                                          grad_scale, cm->chunk, cm->ws, s);
    else if (cm->head_int8)
        kn_classifier_forward_backward_q8(cm->blas, cm->losses, logits_out ? cm->logits : NULL,
                                          want_grads ? cm->dxn : NULL, cm->xnf, &head8, cm->targets, T, cm->C, cm->V,
                                          grad_scale, cm->chunk, cm->ws, s);
    else
        kn_classifier_forward_backward(cm->blas, cm->losses, logits_out ? cm->logits : NULL,
                                       want_grads ? cm->dxn : NULL, want_grads ? grad_of(cm, -1, cm->lm_head_off) : NULL,
                                       gs, cm->xnf, cm->w + cm->lm_head_off, cm->targets, T, cm->C, cm->V,
                                       grad_scale, cm->chunk, cm->ws, s);
    if (want_grads) backward(cm, T, gs, nids);
    CU_CHECK(cudaMemcpyAsync(cm->h_losses, cm->losses, sizeof(float) * (size_t)T, cudaMemcpyDeviceToHost, s));
    if (kd) CU_CHECK(cudaMemcpyAsync(cm->h_ce, cm->kd_ce, sizeof(float) * (size_t)T, cudaMemcpyDeviceToHost, s));
    if (logits_out)
        CU_CHECK(cudaMemcpyAsync(logits_out, cm->logits, sizeof(float) * (size_t)T * (size_t)cm->V,
                                 cudaMemcpyDeviceToHost, s));
    CU_CHECK(cudaStreamSynchronize(s));
    if (want_grads && cm->g_slot[0]) {
        CU_CHECK(cudaStreamSynchronize(cm->copy));
        cm->sink_clean = 0;
    }
    if (want_grads && cm->lora) cuda_lora_grads_done(cm->lora);
    double total = 0.0;
    int n = 0;
    for (int t = 0; t < T; t++) {
        total += cm->h_losses[t]; /* ignored positions hold 0 */
        n += targets[t] >= 0;
    }
    *loss_sum = total;
    if (counted) *counted = n;
    if (ce_sum) {
        double ce = 0.0;
        for (int t = 0; kd && t < T; t++) ce += cm->h_ce[t];
        *ce_sum = kd ? ce : total;
    }
    return 0;
}

int cuda_model_step(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, float *logits_out,
                    int want_grads, float grad_scale, double *loss_sum, int *counted) {
    return cuda_model_run_step(cm, ids, targets, T, logits_out, NULL, want_grads, grad_scale, loss_sum, NULL, counted);
}

int cuda_model_step_kd(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, const kd_targets *kd,
                       int want_grads, float grad_scale, double *loss_sum, double *ce_sum, int *counted) {
    return cuda_model_run_step(cm, ids, targets, T, NULL, kd, want_grads, grad_scale, loss_sum, ce_sum, counted);
}
#endif
