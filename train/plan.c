/* plan.c — see plan.h. The CUDA device rows are host/cuda_model_layout.c's layout itself (cuda_model_plan); the CPU plan
 * and the host rows follow the buffers host/model_cpu.c and the trainers allocate. Every activation term is tokens
 * times a per-token width, so the table shows exactly what --seq costs. */
#include "train/plan.h"

#include <stdarg.h>
#include <string.h>

#include "host/cuda_model.h"
#include "host/lora.h"
#include "train/backend.h"

typedef struct {
    int64_t C, F, Q, KV, nh, V, L;
    int64_t layer;   /* parameters of one transformer layer */
    int64_t embed;   /* V x C: the embedding (and the tied classifier) */
    int64_t head;    /* V x C when lm_head is untied, else 0 */
    int64_t total;
} plan_dims;

static plan_dims dims_of(const sc_config *c) {
    plan_dims d;
    d.C = c->hidden_size, d.F = c->intermediate_size, d.V = c->vocab_size, d.L = c->num_hidden_layers;
    d.Q = (int64_t)c->num_attention_heads * c->head_dim, d.KV = (int64_t)c->num_key_value_heads * c->head_dim;
    d.nh = c->num_attention_heads;
    d.layer = 2 * d.C + 2 * d.Q * d.C + 2 * d.KV * d.C + 3 * d.F * d.C;
    d.embed = d.V * d.C;
    d.head = c->tie_word_embeddings ? 0 : d.V * d.C;
    d.total = d.embed + d.head + d.L * d.layer + d.C;
    return d;
}

static void add(train_plan *p, plan_where where, int64_t bytes, const char *name, const char *fmt, ...) {
    if (p->n >= PLAN_MAX_ITEMS || bytes <= 0) return;
    plan_item *it = &p->items[p->n++];
    snprintf(it->name, sizeof it->name, "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->note, sizeof it->note, fmt, ap);
    va_end(ap);
    it->bytes = bytes;
    it->where = where;
    if (where == PLAN_DEVICE) p->device_bytes += bytes;
    else p->host_bytes += bytes;
}

static void plan_begin(train_plan *p, plan_placement pl, int fp16, int seq, int mb, const plan_dims *d) {
    memset(p, 0, sizeof *p);
    p->placement = pl, p->fp16 = fp16, p->seq = seq, p->micro_batch = mb, p->nparams = d->total;
}

int plan_cuda_flags(plan_placement pl) {
    return CUDA_MODEL_GRADS | (pl == PLAN_OFFLOAD ? CUDA_MODEL_STREAM_GRADS | CUDA_MODEL_RECOMPUTE : CUDA_MODEL_MASTER);
}

/* One device row of a CUDA plan: a part host/cuda_model_layout.c's layout named, with what it is for. */
static void add_device_row(train_plan *p, const plan_dims *dd, const char *n, int64_t b, const char *dt, int64_t T,
                           int64_t N) {
    plan_dims d = *dd;
    int64_t chunk = (16ll << 20) / (4 * d.V); /* as cuda_model_layout.c: at most 16 MiB of FP32 logits */
    chunk = chunk < 1 ? 1 : chunk > T ? T : chunk;
    if (!strcmp(n, "weights"))
        add(p, PLAN_DEVICE, b, n, "%s working copy of all %lld parameters", dt, (long long)N);
    else if (!strcmp(n, "gradients"))
        add(p, PLAN_DEVICE, b, n, "FP32 accumulators (GEMMs write FP32 with beta=1)");
    else if (!strcmp(n, "master weights"))
        add(p, PLAN_DEVICE, b, n, "FP32, updated by AdamW on the device");
    else if (!strcmp(n, "AdamW m, v"))
        add(p, PLAN_DEVICE, b, n, "FP32");
    else if (!strcmp(n, "embedding grads"))
        add(p, PLAN_DEVICE, b, n, "FP32: embedding (tied classifier), final norm%s; to the host after each sequence",
            d.head ? ", lm_head" : "");
    else if (!strcmp(n, "layer grads"))
        add(p, PLAN_DEVICE, b, n,
            "FP32, two layer slots: one streams to pinned host memory while backward fills the other");
    else if (!strcmp(n, "activation checkpoints"))
        add(p, PLAN_DEVICE, b, n, "each layer's input, %s [%lld x %lld]", dt, (long long)T, (long long)d.C);
    else if (!strcmp(n, "layer workspace"))
        add(p, PLAN_DEVICE, b, n,
            "one layer's activations, recomputed just before its backward (flash attention: no T x T)");
    else if (!strcmp(n, "activations"))
        add(p, PLAN_DEVICE, b, n, "every layer's activations kept for backward (no recompute), %s", dt);
    else if (!strcmp(n, "model buffers"))
        add(p, PLAN_DEVICE, b, n, "embedding out, attention/MLP outputs, final norm in/out; losses, ids, "
            "targets, embedding-backward plan");
    else if (!strcmp(n, "backward scratch"))
        add(p, PLAN_DEVICE, b, n, "dx, d(norm out), d(att), d(qkv), d(gate|up), d(act), %s", dt);
    else if (!strcmp(n, "classifier"))
        add(p, PLAN_DEVICE, b, n, "FP32 logits of %lld tokens at a time -> loss -> dlogits in place (never "
            "T x V); the ops' shared workspace", (long long)chunk);
    else if (!strcmp(n, "GEMM staging"))
        add(p, PLAN_DEVICE, b, n,
            "FP32 blocks for the SGEMM candidate and the GEMM tuner's scratch output (kernels/gemm.cu)");
    else if (!strcmp(n, "cuBLAS workspace")) /* + a margin for what the layout cannot know here */
        add(p, PLAN_DEVICE, b + PLAN_MISC_SLACK, "cuBLAS workspace, misc",
            "32 MiB cuBLAS (4 MiB before Hopper), alignment, teacher rows when distilling");
    else
        add(p, PLAN_DEVICE, b, n, "%s", "");
}

/* The CUDA plan's device rows are host/cuda_model_layout.c's own layout, run against a sizing arena (cuda_model_plan):
 * each row is a part the layout named, in its order, with its bytes; this file only adds what each row is for.
 * The CUDA trainer runs the sequences of a micro-batch one after another through the same buffers, so device
 * memory depends on seq, not on the micro-batch. */
void plan_cuda(train_plan *p, const sc_config *cfg, int seq, int mb, plan_placement pl, int fp16) {
    plan_dims d = dims_of(cfg);
    plan_begin(p, pl, fp16, seq, mb, &d);
    const int64_t T = seq, N = d.total;
    const char *dt = fp16 ? "FP16" : "FP32";
    p->recompute = pl == PLAN_OFFLOAD;

    cuda_arena a;
    if (cuda_model_plan(&a, cfg, seq, plan_cuda_flags(pl), PLAN_CUBLAS_WORKSPACE, !fp16) == 0)
        for (int i = 0; i < a.nitems; i++) add_device_row(p, &d, a.items[i].name, (int64_t)a.items[i].bytes, dt, T, N);

    if (pl == PLAN_OFFLOAD) {
        add(p, PLAN_HOST, 3 * N * 4, "master weights, AdamW m, v", "FP32, AdamW runs here (threaded, vectorised)");
        add(p, PLAN_HOST, N * 4, "gradient accumulators", "FP32, pinned, summed over the sequences of a step");
        add(p, PLAN_HOST, 2 * (8ll << 20), "transfer staging", "pinned, two 8 MiB FP16 chunks for weight uploads");
    } else {
        add(p, PLAN_HOST, 3 * N * 4, "checkpoint copy", "FP32 weights, m, v copied down while saving");
    }
}

void plan_cpu(train_plan *p, const sc_config *cfg, int seq, int mb, int threads) {
    plan_dims d = dims_of(cfg);
    plan_begin(p, PLAN_CPU, 0, seq, mb, &d);
    const int64_t T = seq, N = d.total;
    if (threads < 1) threads = 1;
    add(p, PLAN_HOST, N * 4, "weights", "FP32, %lld parameters", (long long)N);
    add(p, PLAN_HOST, N * 4, "gradients", "FP32, accumulated over the micro-batches of a step");
    add(p, PLAN_HOST, 2 * N * 4, "AdamW m, v", "FP32");
    /* host/model_cpu.c cpu_acts_create: one sequence's activations; the micro-batch reuses them */
    int64_t acts = d.L * (T * (3 * d.C + 2 * d.Q + 2 * d.KV + 3 * d.F + 2) + d.nh * T) + T * (2 * d.C + 2);
    add(p, PLAN_HOST, acts * 4, "activations", "every layer of one %lld-token sequence, FP32", (long long)T);
    int64_t scratch = T * (2 * d.C + 2 * d.Q + 2 * d.KV + 3 * d.F + d.C);
    add(p, PLAN_HOST, scratch * 4, "backward scratch", "FP32");
    int64_t cls = (T < 64 ? T : 64) * d.V, att = threads * 2 * 64 * T + threads * 2 * T * d.KV;
    add(p, PLAN_HOST, (cls + att) * 4, "op scratch", "classifier chunk of 64 tokens, attention blocks per thread");
    add(p, PLAN_HOST, (int64_t)mb * (T + 1) * 4 * 2, "token windows", "micro-batch of %d windows + targets", mb);
}

void plan_cpu_lora(train_plan *p, const sc_config *cfg, int seq, int mb, int threads, int rank, unsigned targets) {
    plan_dims d = dims_of(cfg);
    plan_begin(p, PLAN_CPU, 0, seq, mb, &d);
    const int64_t T = seq, N = d.total, r = rank;
    if (threads < 1) threads = 1;
    /* in/out of q k v o gate up down, as host/lora.c lays the adapter out */
    const int64_t in[7] = {d.C, d.C, d.C, d.Q, d.C, d.C, d.F}, out[7] = {d.Q, d.KV, d.KV, d.C, d.F, d.F, d.C};
    int64_t P = 0, widest = 1, nmod = 0;
    for (int t = 0; t < 7; t++) {
        if (!(targets & (1u << t))) continue;
        P += d.L * r * (in[t] + out[t]);
        nmod++;
        widest = in[t] > widest ? in[t] : widest;
    }
    p->nparams = P;
    add(p, PLAN_HOST, N * 4, "base weights (frozen)", "FP32, %lld parameters: no gradients, no AdamW state", (long long)N);
    add(p, PLAN_HOST, 4 * P * 4, "adapter, grads, AdamW m, v", "FP32, %lld parameters (rank %d, %lld modules per layer)",
        (long long)P, rank, (long long)nmod);
    int64_t acts = d.L * (T * (3 * d.C + 2 * d.Q + 2 * d.KV + 3 * d.F + 2) + d.nh * T) + T * (2 * d.C + 2);
    add(p, PLAN_HOST, acts * 4, "activations", "every layer of one %lld-token sequence, FP32", (long long)T);
    add(p, PLAN_HOST, (d.L * 7 * T * r + T * r + T * widest) * 4, "adapter activations",
        "A x of every module (kept for backward), dropout scratch");
    int64_t scratch = T * (2 * d.C + 2 * d.Q + 2 * d.KV + 3 * d.F + d.C);
    add(p, PLAN_HOST, scratch * 4, "backward scratch", "FP32");
    int64_t cls = (T < 64 ? T : 64) * d.V, att = threads * 2 * 64 * T + threads * 2 * T * d.KV;
    add(p, PLAN_HOST, (cls + att) * 4, "op scratch", "classifier chunk of 64 tokens, attention blocks per thread");
    add(p, PLAN_HOST, (int64_t)mb * (T + 1) * 4 * 2, "token windows", "micro-batch of %d windows + targets", mb);
}

/* The CUDA LoRA plan: host/cuda_model_layout.c's layout of a frozen base with the adapter (cuda_model_plan_lora), so the
 * rows are what backend_lora_cuda_open allocates; the adapter's master and moments are on the host. */
void plan_cuda_lora(train_plan *p, const sc_config *cfg, int seq, int mb, plan_placement pl, int rank,
                    unsigned targets, float dropout, int int8) {
    plan_dims d = dims_of(cfg);
    plan_begin(p, pl, 1, seq, mb, &d);
    p->recompute = pl == PLAN_OFFLOAD;
    p->lora = 1;
    const int64_t T = seq, N = d.total;
    sc_lora ad;
    if (lora_create(&ad, cfg, rank, 2.0f * (float)rank, targets, dropout, NULL)) return;
    const int64_t P = ad.nparams;
    const int host_embed = pl == PLAN_OFFLOAD && d.head; /* backend_lora_cuda_flags: untied embedding on the host */
    p->nparams = P;
    cuda_arena a;
    if (cuda_model_plan_lora(&a, cfg, &ad, seq, backend_lora_cuda_flags(int8, pl == PLAN_OFFLOAD),
                             PLAN_CUBLAS_WORKSPACE) == 0) {
        for (int i = 0; i < a.nitems; i++) {
            const char *n = a.items[i].name;
            int64_t b = (int64_t)a.items[i].bytes;
            if (!strcmp(n, "weights") && (int8 || host_embed))
                add(p, PLAN_DEVICE, b, "base weights (frozen)", "FP16%s%s norms%s; no gradients, no dW GEMMs",
                    host_embed ? "" : " embedding,", int8 ? "" : " linear layers,", d.head && !int8 ? ", lm_head" : "");
            else if (!strcmp(n, "weights"))
                add(p, PLAN_DEVICE, b, "base weights (frozen)", "FP16, all %lld parameters; no gradients, no dW GEMMs",
                    (long long)N);
            else if (!strcmp(n, "INT8 weights"))
                add(p, PLAN_DEVICE, b, "base linear layers (frozen)", "INT8 rows + FP16 per-row scales (q k v o gate "
                    "up down%s)", d.head ? ", lm_head" : "");
            else if (!strcmp(n, "dequant scratch"))
                add(p, PLAN_DEVICE, b, n, "FP16: one tile of an INT8 matrix, dequantized right before its GEMM");
            else if (!strcmp(n, "adapter weights"))
                add(p, PLAN_DEVICE, b, n, "FP16 copies of A and B, %lld parameters (rank %d); FP32 master on the host",
                    (long long)P, rank);
            else if (!strcmp(n, "adapter grads") && pl == PLAN_OFFLOAD)
                add(p, PLAN_DEVICE, b, n, "FP32, two layer slots: one streams to the pinned host accumulator while "
                    "backward fills the other");
            else if (!strcmp(n, "adapter grads"))
                add(p, PLAN_DEVICE, b, n, "FP32, accumulated over the sequences of a step, read down once per step");
            else if (!strcmp(n, "activation checkpoints") && pl == PLAN_OFFLOAD)
                add(p, PLAN_DEVICE, b, n, "the input of the layer being computed, FP16 [%lld x %lld]; all %lld in "
                    "pinned host memory", (long long)T, (long long)d.C, (long long)d.L);
            else if (!strcmp(n, "backward scratch"))
                add(p, PLAN_DEVICE, b, n, "dx, d(norm out), d(att), d(qkv), d(act), FP16, d(gate|up) in place; "
                    "the first three hold the forward's outputs");
            else if (!strcmp(n, "model buffers"))
                add(p, PLAN_DEVICE, b, n, "final norm in/out; losses, ids, targets, embedding-backward plan");
            else if (!strcmp(n, "layer workspace") && T > (T + 7) / 8 && !(dropout > 0))
                add(p, PLAN_DEVICE, b, n, "one layer's activations, recomputed before its backward (no T x T); "
                    "the MLP's %lld tokens at a time", (long long)((T + 7) / 8));
            else if (!strcmp(n, "adapter activations"))
                add(p, PLAN_DEVICE, b, n, "FP16 A x of every adapted module [T x %d], s dy B%s", rank,
                    dropout > 0 ? ", dropout scratch" : "");
            else
                add_device_row(p, &d, n, b, "FP16", T, N);
        }
    }
    add(p, PLAN_HOST, N * 4, "base weights (loaded)", "FP32 as read (rounded to %s), uploaded once",
        int8 ? "INT8 per row" : "FP16");
    add(p, PLAN_HOST, 4 * P * 4, "adapter, grads, AdamW m, v", "FP32: AdamW runs here (train/adamw.c), as on the CPU");
    if (host_embed)
        add(p, PLAN_HOST, d.embed * 2 + T * d.C * 2, "embedding (frozen)", "FP16 table; each step's rows gathered "
            "here and copied up (pinned staging)");
    if (pl == PLAN_OFFLOAD) {
        add(p, PLAN_HOST, d.L * T * d.C * 2, "activation checkpoints", "pinned, FP16: each layer's input, down after "
            "its forward, up before its recompute");
        add(p, PLAN_HOST, P * 4, "adapter grad accumulator", "pinned, FP32: each layer's slot goes in before its "
            "backward and down after it");
    }
    lora_free(&ad);
}

void plan_set_context(train_plan *p, int64_t bytes, const char *note) {
    p->context_bytes = bytes;
    snprintf(p->context_note, sizeof p->context_note, "%s", note);
}

const char *plan_placement_name(plan_placement p) {
    return p == PLAN_CPU ? "cpu" : p == PLAN_FULL ? "full" : "offload";
}

const char *plan_fmt_bytes(char *buf, size_t n, int64_t b) {
    double v = (double)b;
    if (v >= 1024.0 * 1024 * 1024) snprintf(buf, n, "%.2f GiB", v / (1024.0 * 1024 * 1024));
    else if (v >= 1024.0 * 1024) snprintf(buf, n, "%.1f MiB", v / (1024.0 * 1024));
    else snprintf(buf, n, "%.1f KiB", v / 1024.0);
    return buf;
}

void plan_print(FILE *f, const train_plan *p, int64_t budget) {
    char b[32];
    if (p->placement == PLAN_CPU)
        fprintf(f, "memory plan: cpu, FP32, seq %d x micro-batch %d\n", p->seq, p->micro_batch);
    else
        fprintf(f, "memory plan: cuda %s%s, %s, seq %d x micro-batch %d, %s\n", p->lora ? "LoRA " : "",
                plan_placement_name(p->placement),
                p->fp16 ? "FP16 mixed precision" : "FP32", p->seq, p->micro_batch,
                p->recompute ? "layer recompute" : "no recompute");
    for (int w = 0; w < 2; w++) {
        plan_where where = w == 0 ? PLAN_DEVICE : PLAN_HOST;
        int any = 0;
        for (int i = 0; i < p->n; i++) {
            const plan_item *it = &p->items[i];
            if (it->where != where) continue;
            if (!any++) fprintf(f, "  %s:\n", where == PLAN_DEVICE ? "device" : "host");
            fprintf(f, "    %-28s %11s  %s\n", it->name, plan_fmt_bytes(b, sizeof b, it->bytes), it->note);
        }
        if (any)
            fprintf(f, "    %-28s %11s\n", where == PLAN_DEVICE ? "device total" : "host total",
                    plan_fmt_bytes(b, sizeof b, where == PLAN_DEVICE ? p->device_bytes : p->host_bytes));
        if (any && where == PLAN_DEVICE && p->context_bytes > 0) {
            fprintf(f, "    %-28s %11s  %s\n", "CUDA context, cuBLAS, kernels",
                    plan_fmt_bytes(b, sizeof b, p->context_bytes), p->context_note);
            fprintf(f, "    %-28s %11s  what the card must hold\n", "device total + context",
                    plan_fmt_bytes(b, sizeof b, p->device_bytes + p->context_bytes));
        }
    }
    if (budget > 0 && p->placement != PLAN_CPU) {
        char bb[32];
        plan_fmt_bytes(bb, sizeof bb, budget);
        if (p->device_bytes <= budget)
            fprintf(f, "  fits the device budget of %s (%s to spare)\n", bb,
                    plan_fmt_bytes(b, sizeof b, budget - p->device_bytes));
        else
            fprintf(f, "  OVER the device budget of %s by %s\n", bb,
                    plan_fmt_bytes(b, sizeof b, p->device_bytes - budget));
    }
}

const char *plan_advice(char *buf, size_t n, const sc_config *cfg, const train_plan *p, int64_t budget) {
    size_t k = 0;
    char b[32], b2[32];
    buf[0] = 0;
#define SAY(...) (k += (size_t)snprintf(buf + k, k < n ? n - k : 0, __VA_ARGS__), k = k < n ? k : n)
    train_plan q;
    if (p->placement == PLAN_FULL) {
        plan_cuda(&q, cfg, p->seq, p->micro_batch, PLAN_OFFLOAD, p->fp16);
        SAY("--placement offload needs %s%s; ", plan_fmt_bytes(b, sizeof b, q.device_bytes),
            q.device_bytes <= budget ? " (fits)" : "");
    }
    if (!p->fp16) {
        plan_cuda(&q, cfg, p->seq, p->micro_batch, p->placement, 1);
        SAY("--precision fp16 needs %s%s; ", plan_fmt_bytes(b, sizeof b, q.device_bytes),
            q.device_bytes <= budget ? " (fits)" : "");
    }
    /* all of the above together, then the longest --seq that fits with them */
    int changes = (p->placement == PLAN_FULL) + !p->fp16;
    char flags[128] = "";
    if (p->placement == PLAN_FULL) strcat(flags, " --placement offload");
    if (!p->fp16) strcat(flags, " --precision fp16");
    if (changes > 1) {
        plan_cuda(&q, cfg, p->seq, 1, PLAN_OFFLOAD, 1);
        SAY("together,%s needs %s%s; ", flags, plan_fmt_bytes(b, sizeof b, q.device_bytes),
            q.device_bytes <= budget ? " (fits)" : "");
    }
    plan_cuda(&q, cfg, p->seq, 1, PLAN_OFFLOAD, 1);
    int best = 0, combined_fits = q.device_bytes <= budget;
    for (int s = p->seq / 2; s >= 64 && !best && !combined_fits; s /= 2) {
        plan_cuda(&q, cfg, s, 1, PLAN_OFFLOAD, 1);
        if (q.device_bytes <= budget) best = s;
    }
    if (best) SAY("%s%s--seq %d needs %s (fits); ", flags + (flags[0] == ' '), flags[0] ? " " : "", best, plan_fmt_bytes(b, sizeof b, q.device_bytes));
    plan_cuda(&q, cfg, 64, 1, PLAN_OFFLOAD, 1);
    if (q.device_bytes > budget)
        SAY("even offload at --seq 64 needs %s: the FP16 weights alone are %s, so a smaller model is needed; ",
            plan_fmt_bytes(b, sizeof b, q.device_bytes), plan_fmt_bytes(b2, sizeof b2, q.items[0].bytes));
#undef SAY
    if (k >= 2 && buf[k - 2] == ';') buf[k - 2] = 0;
    return buf;
}
