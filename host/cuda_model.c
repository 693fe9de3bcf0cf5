/* cuda_model.c — see cuda_model.h: open (the arena, streams, pinned buffers, the weights up), uploads, the
 * gradient blocks and the device optimizer state, close. The layout is host/cuda_model_layout.c, a step
 * host/cuda_model_step.c; the struct is host/cuda_model_internal.h. */
#include "host/cuda_model_internal.h"

#ifdef SC_HAVE_KERNELS
static int model_open(cuda_model **out, const sc_model *m, const sc_lora *ad, int max_T, int flags) {
    *out = NULL;
    const sc_config *c = &m->cfg;
    if (device_count() <= 0) return sc_fail("cuda backend: no CUDA device is visible");
    if (kn_attention_check(c->head_dim, c->num_attention_heads, c->num_key_value_heads,
                           (c->num_attention_heads + 2 * c->num_key_value_heads) * c->head_dim,
                           (c->num_attention_heads + 2 * c->num_key_value_heads) * c->head_dim))
        return sc_fail("cuda backend: %s", kn_last_error());
    if (max_T < 1) return sc_fail("cuda backend: max_T must be positive, got %d", max_T);
    int kd_k = flags >> 16;
    if (kd_k > KN_KD_MAX_TOPK || kd_k > c->vocab_size)
        return sc_fail("cuda backend: distillation top-k %d is above %d or the vocabulary (%d)", kd_k, KN_KD_MAX_TOPK,
                       c->vocab_size);
    cuda_model *cm = cuda_model_shape(m, max_T, flags);
    if (!cm) return -1;
    if (ad) cuda_model_attach_lora(cm, ad);
    int dev = 0, major = 0;
    CU_CHECK(cudaGetDevice(&dev));
    CU_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    cm->blas_ws_bytes = (size_t)(major >= 9 ? 32 : 4) << 20; /* NVIDIA's advice: 32 MiB on Hopper */
    if (device_describe(dev, cm->device, sizeof cm->device)) snprintf(cm->device, sizeof cm->device, "cuda:%d", dev);

    cuda_arena sizing;
    cuda_arena_sizing(&sizing);
    cuda_model_layout(cm, &sizing);
    if (cuda_arena_open(&cm->arena, sizing.used)) {
        sc_fail_prefix("cuda backend (%d tokens, %s)", max_T, cm->device);
        cuda_model_free_shape(cm);
        return -1;
    }
    cuda_model_layout(cm, &cm->arena);
    if (cm->lora) cuda_lora_start(cm->lora);
    CU_CHECK(cudaStreamCreate(&cm->stream));
    cm->blas = kn_blas_create(cm->stream, cm->blas_ws, cm->blas_ws_bytes, cm->gemm_staging, KN_GEMM_STAGING_BYTES);
    cm->h_losses = sc_malloc(sizeof(float) * (size_t)max_T);
    cm->h_plan = (flags & CUDA_MODEL_GRADS) ? sc_malloc(sizeof(int32_t) * kn_embedding_plan_ints(max_T)) : NULL;
    cm->h_ce = kd_k ? sc_malloc(sizeof(float) * (size_t)max_T) : NULL;
    cm->h_kd16 = kd_k ? sc_malloc(sizeof(uint16_t) * (size_t)max_T * (size_t)kd_k) : NULL;
    if (cm->g_slot[0]) {
        CU_CHECK(cudaStreamCreate(&cm->copy));
        for (int i = 0; i < 2; i++) {
            CU_CHECK(cudaEventCreate(&cm->computed[i]));
            CU_CHECK(cudaEventCreate(&cm->copied[i]));
        }
        /* pageable when pinning is refused (pinned.h): correct, only the copies stop overlapping */
        for (int i = 0; i < 2; i++) {
            CU_CHECK(cudaEventCreate(&cm->up_done[i]));
            cm->up16[i] = pinned_alloc(&cm->up_buf[i], sizeof(uint16_t) * UPLOAD_CHUNK, "weight uploads");
        }
        cm->sink = pinned_alloc(&cm->sink_buf, sizeof(float) * (size_t)cm->nparams, "the gradient accumulators");
    }
    if (cm->emb_on_host) {
        cm->emb_host = sc_malloc(sizeof(uint16_t) * (size_t)cm->V * (size_t)cm->C);
        cm->emb_stage = pinned_alloc(&cm->emb_stage_buf, sizeof(uint16_t) * (size_t)max_T * (size_t)cm->C,
                                     "the embedding rows");
    }
    if ((flags & CUDA_MODEL_HOST_CKPT) && (flags & CUDA_MODEL_RECOMPUTE))
        cm->ckpt = pinned_alloc(&cm->ckpt_buf, sizeof(uint16_t) * (size_t)cm->L * (size_t)max_T * (size_t)cm->C,
                                "the activation checkpoints");
    float inv[512]; /* head_dim <= 1024 (config.c); rope_scaling included, as the CPU model's */
    config_rope_inv_freq(c, inv);
    CU_CHECK(cudaMemcpy(cm->inv_freq, inv, sizeof(float) * (size_t)(cm->hd / 2), cudaMemcpyHostToDevice));
    const char *ovf = getenv("SMALLCODER_TEST_OVERFLOW");
    if (ovf && *ovf) { /* "N": backward pass N only; "N+": from pass N on */
        long long first = atoll(ovf);
        cuda_model_test_overflow(cm, first, strchr(ovf, '+') ? INT64_MAX : first);
    }
    if (flags & CUDA_MODEL_GRADS) cuda_model_zero_grads(cm);
    *out = cm;
    if (cm->lora) {
        cuda_lora_zero_grads(cm->lora, cm->stream);
        cuda_lora_upload(cm->lora, ad->params, cm->stream);
    }
    return cuda_model_upload(cm, m->params);
}

int cuda_model_open(cuda_model **out, const sc_model *m, int max_T, int flags) {
    return model_open(out, m, NULL, max_T, flags);
}

int cuda_model_open_lora(cuda_model **out, const sc_model *m, const sc_lora *ad, int max_T, int flags) {
    if (!(flags & CUDA_MODEL_FROZEN)) return sc_fail("cuda backend: a LoRA base must be opened frozen");
    if (ad->nlayers != m->cfg.num_hidden_layers) return sc_fail("cuda backend: the adapter has %d layers, the base %d",
                                                                  ad->nlayers, m->cfg.num_hidden_layers);
    return model_open(out, m, ad, max_T, flags);
}

/* FP32 -> FP16 on the host (round to nearest even, as kn_f32_to_f16), chunk by chunk into the pinned buffers. */
static void upload_pinned(cuda_model *cm, const float *params) {
    int b = 0;
    for (int64_t off = 0; off < cm->nparams; off += UPLOAD_CHUNK, b ^= 1) {
        int64_t n = cm->nparams - off < UPLOAD_CHUNK ? cm->nparams - off : UPLOAD_CHUNK;
        CU_CHECK(cudaEventSynchronize(cm->up_done[b])); /* its previous copy has left the buffer */
        uint16_t *dst = cm->up16[b];
        const float *src = params + off;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) dst[i] = float_to_half(src[i]);
        CU_CHECK(cudaMemcpyAsync(cm->w + off, dst, sizeof(uint16_t) * (size_t)n, cudaMemcpyHostToDevice, cm->stream));
        CU_CHECK(cudaEventRecord(cm->up_done[b], cm->stream));
    }
    CU_CHECK(cudaStreamSynchronize(cm->stream));
}

/* The compact layout (compact_shape): each tensor of the host parameter block to its place, linear layers quantized
 * per row with CUDA_MODEL_INT8 (host quant_rows, as `smallcoder quantize`), the embedding into the host FP16 table
 * with HOST_EMBED, the rest rounded to FP16 on the device; one tensor at a time through host staging. */
static int upload_compact(cuda_model *cm, const float *params) {
    int64_t q8 = 0, s8 = 0, w16 = 0; /* the table's order is compact_shape's, so running sums are the offsets */
    for (int i = 0; i < cm->ntensors; i++) {
        const sc_param *p = &cm->table[i];
        int64_t n = p->numel;
        if (i == 0 && cm->emb_on_host) {
            for (int64_t j = 0; j < n; j++) cm->emb_host[j] = float_to_half(params[p->offset + j]);
        } else if (cm->w8 && cuda_model_is_int8(p)) {
            int rows = (int)p->shape[0], cols = (int)p->shape[1];
            int8_t *q = sc_malloc((size_t)n);
            uint16_t *sc = sc_malloc(sizeof(uint16_t) * (size_t)rows);
            quant_rows(params + p->offset, rows, cols, 0, q, sc);
            CU_CHECK(cudaMemcpy(cm->w8 + q8, q, (size_t)n, cudaMemcpyHostToDevice));
            CU_CHECK(cudaMemcpy(cm->s8 + s8, sc, sizeof(uint16_t) * (size_t)rows, cudaMemcpyHostToDevice));
            q8 += n, s8 += rows;
            free(q), free(sc);
        } else {
            uint16_t *h = sc_malloc(sizeof(uint16_t) * (size_t)n);
            for (int64_t j = 0; j < n; j++) h[j] = float_to_half(params[p->offset + j]);
            CU_CHECK(cudaMemcpy(cm->w + w16, h, sizeof(uint16_t) * (size_t)n, cudaMemcpyHostToDevice));
            w16 += n;
            free(h);
        }
    }
    return 0;
}

int cuda_model_upload(cuda_model *cm, const float *params) {
    if (cm->table) return upload_compact(cm, params);
    if (cm->up16[0]) {
        upload_pinned(cm, params);
        return 0;
    }
    /* through the workspace in chunks: FP32 up, cast to FP16 on the device */
    int64_t chunk = (int64_t)(cm->ws_bytes / sizeof(float));
    for (int64_t off = 0; off < cm->nparams; off += chunk) {
        int64_t n = cm->nparams - off < chunk ? cm->nparams - off : chunk;
        CU_CHECK(cudaMemcpyAsync(cm->ws, params + off, sizeof(float) * (size_t)n, cudaMemcpyHostToDevice, cm->stream));
        kn_f32_to_f16(cm->w + off, (const float *)cm->ws, n, cm->stream);
    }
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    return 0;
}

void cuda_model_zero_grads(cuda_model *cm) {
    if (cm->g) CU_CHECK(cudaMemsetAsync(cm->g, 0, sizeof(float) * (size_t)cm->nparams, cm->stream));
    if (cm->g_slot[0]) {
        CU_CHECK(cudaMemsetAsync(cm->g_embed, 0, sizeof(float) * (size_t)cm->offs[0].attn_norm, cm->stream));
        CU_CHECK(cudaMemsetAsync(cm->g_tail, 0, sizeof(float) * (size_t)(cm->nparams - cm->final_norm_off), cm->stream));
        cm->sink_clean = 1;
    }
}

int cuda_model_read_grads(cuda_model *cm, float *host) {
    if (!(cm->flags & CUDA_MODEL_GRADS)) return sc_fail("cuda backend: opened without gradients");
    if (cm->g) {
        CU_CHECK(cudaMemcpyAsync(host, cm->g, sizeof(float) * (size_t)cm->nparams, cudaMemcpyDeviceToHost, cm->stream));
        CU_CHECK(cudaStreamSynchronize(cm->stream));
        return 0;
    }
    int64_t e = cm->offs[0].attn_norm, tail = cm->nparams - cm->final_norm_off;
    CU_CHECK(cudaMemcpyAsync(host, cm->g_embed, sizeof(float) * (size_t)e, cudaMemcpyDeviceToHost, cm->stream));
    CU_CHECK(cudaMemcpyAsync(host + cm->final_norm_off, cm->g_tail, sizeof(float) * (size_t)tail,
                             cudaMemcpyDeviceToHost, cm->stream));
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    CU_CHECK(cudaStreamSynchronize(cm->copy));
    size_t layer_bytes = sizeof(float) * (size_t)(cm->final_norm_off - e);
    if (cm->sink_clean) memset(host + e, 0, layer_bytes);
    else if (host != cm->sink) memcpy(host + e, cm->sink + e, layer_bytes);
    return 0;
}

float *cuda_model_grad_sink(cuda_model *cm) { return cm->sink; }

void cuda_model_test_overflow(cuda_model *cm, int64_t first, int64_t last) {
    cm->ovf_first = first > 0 ? first : 1, cm->ovf_last = first > 0 ? last : 0;
}

int cuda_model_grad_sumsq(cuda_model *cm, double *out) {
    if (!cm->g) return sc_fail("cuda backend: no device gradient block to take the norm of");
    kn_sumsq(cm->sumsq, cm->g, cm->nparams, cm->ws, cm->stream);
    CU_CHECK(cudaMemcpyAsync(out, cm->sumsq, sizeof(double), cudaMemcpyDeviceToHost, cm->stream));
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    return 0;
}

void cuda_model_adamw(cuda_model *cm, int64_t off, int64_t n, float grad_mul, float wd, float lr, float beta1,
                      float beta2, float eps, int64_t t) {
    kn_adamw_update(cm->master + off, cm->g + off, cm->mom1 + off, cm->mom2 + off, cm->w + off, n, grad_mul, wd, lr,
                    beta1, beta2, eps, t, cm->stream);
}

int cuda_model_get_master(cuda_model *cm, float *params, float *m, float *v) {
    if (!cm->master) return sc_fail("cuda backend: no master weights on the device");
    size_t bytes = sizeof(float) * (size_t)cm->nparams;
    if (params) CU_CHECK(cudaMemcpyAsync(params, cm->master, bytes, cudaMemcpyDeviceToHost, cm->stream));
    if (m) CU_CHECK(cudaMemcpyAsync(m, cm->mom1, bytes, cudaMemcpyDeviceToHost, cm->stream));
    if (v) CU_CHECK(cudaMemcpyAsync(v, cm->mom2, bytes, cudaMemcpyDeviceToHost, cm->stream));
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    return 0;
}

int cuda_model_set_master(cuda_model *cm, const float *params, const float *m, const float *v) {
    if (!cm->master) return sc_fail("cuda backend: no master weights on the device");
    size_t bytes = sizeof(float) * (size_t)cm->nparams;
    CU_CHECK(cudaMemcpyAsync(cm->master, params, bytes, cudaMemcpyHostToDevice, cm->stream));
    if (m) CU_CHECK(cudaMemcpyAsync(cm->mom1, m, bytes, cudaMemcpyHostToDevice, cm->stream));
    else CU_CHECK(cudaMemsetAsync(cm->mom1, 0, bytes, cm->stream));
    if (v) CU_CHECK(cudaMemcpyAsync(cm->mom2, v, bytes, cudaMemcpyHostToDevice, cm->stream));
    else CU_CHECK(cudaMemsetAsync(cm->mom2, 0, bytes, cm->stream));
    kn_f32_to_f16(cm->w, cm->master, cm->nparams, cm->stream);
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    return 0;
}

size_t cuda_model_device_bytes(const cuda_model *cm) { return cm->arena.high; }

const char *cuda_model_device_name(const cuda_model *cm) { return cm->device; }

void cuda_model_close(cuda_model *cm) {
    if (!cm) return;
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    kn_blas_destroy(cm->blas);
    CU_CHECK(cudaStreamDestroy(cm->stream));
    if (cm->copy) {
        CU_CHECK(cudaStreamSynchronize(cm->copy));
        for (int i = 0; i < 2; i++) {
            CU_CHECK(cudaEventDestroy(cm->computed[i]));
            CU_CHECK(cudaEventDestroy(cm->copied[i]));
            CU_CHECK(cudaEventDestroy(cm->up_done[i]));
            pinned_free(&cm->up_buf[i]);
        }
        CU_CHECK(cudaStreamDestroy(cm->copy));
    }
    pinned_free(&cm->sink_buf);
    pinned_free(&cm->ckpt_buf);
    pinned_free(&cm->emb_stage_buf);
    free(cm->emb_host);
    cuda_arena_close(&cm->arena);
    free(cm->h_losses), free(cm->h_plan), free(cm->h_ce), free(cm->h_kd16);
    cuda_model_free_shape(cm);
}

/* ---- LoRA (cuda_model_open_lora): the adapter's own buffers live in host/cuda_lora.c ---- */
int cuda_model_lora_upload(cuda_model *cm, const float *params) {
    if (!cm->lora) return sc_fail("cuda backend: opened without an adapter");
    cuda_lora_upload(cm->lora, params, cm->stream);
    return 0;
}

int cuda_model_lora_read_grads(cuda_model *cm, float *host) {
    if (!cm->lora || !cm->lora->training) return sc_fail("cuda backend: no adapter gradients");
    cuda_lora_read_grads(cm->lora, host, cm->stream);
    return 0;
}

void cuda_model_lora_zero_grads(cuda_model *cm) {
    if (cm->lora) cuda_lora_zero_grads(cm->lora, cm->stream);
}

void cuda_model_lora_dropout(cuda_model *cm, int on, uint64_t key) {
    if (!cm->lora) return;
    cm->lora->dropout_on = on;
    cm->lora->dropout_key = key;
}
#endif
