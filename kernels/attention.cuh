// attention.cuh — what the attention files share: the parameter block, the mapping of a block's rows to
// (query head, position), and the entry points of the two paths (attention_fma.cu: FP32 FMA for GPUs without
// usable tensor cores; attention_tc.cu: mma.sync m16n8k8, sm_75 and newer). attention.cu chooses between them.
//
// GQA packing: a block owns `hb` query heads of one KV group (hb divides nh/nkv) and `ppb` = BM / hb consecutive
// positions; block row r is head h0 + r % hb at position t0 + r / hb. So the K/V tiles a block loads serve all
// its heads at once, and each row still carries its own causal limit (key <= position).
#ifndef SC_KERNELS_ATTENTION_CUH
#define SC_KERNELS_ATTENTION_CUH

#include "kernels/common.cuh"

#define ATT_LOG2E 1.4426950408889634f
#define ATT_LN2 0.6931471805599453f

struct attn_params {
    const __half *q, *k, *v;  // inputs (q stride ldq, k/v stride ldkv)
    const __half *o, *dout;   // backward: forward output and its gradient (stride ldo)
    __half *out;              // forward output (stride ldo)
    __half *dq, *dk, *dv;     // backward outputs (strides ldq, ldkv)
    float *lse;               // forward: written; [nh, T], natural log
    const float *lse_in;      // backward: read
    const float *D;           // backward: rowsum(dout * o), [nh, T]
    int T, nh, nkv, group;    // group = nh / nkv
    int hb, ppb;              // heads and positions per block (set by the path's launcher for its BM)
    int ldq, ldkv, ldo;
    float scale;              // 1 / sqrt(hd)
};

struct attn_row {
    int head, pos, valid, lim;  // lim: the last key this row may attend to (0 for padding rows, which read zeros)
};

__device__ __forceinline__ attn_row attn_map_row(const attn_params &p, int t0, int h0, int r) {
    attn_row a;
    int i = r / p.hb;
    a.head = h0 + r % p.hb;
    a.pos = t0 + i;
    a.valid = i < p.ppb && a.pos < p.T;
    if (!a.valid) a.pos = 0;
    a.lim = a.valid ? a.pos : 0;
    return a;
}

// heads per block for a block of bm rows: the whole group when it fits, else the largest divisor that does
static inline void attn_pack(attn_params *p, int bm) {
    int hb = p->group <= bm ? p->group : 1;
    if (p->group > bm)
        for (int d = bm; d >= 1; d--)
            if (p->group % d == 0) {
                hb = d;
                break;
            }
    p->hb = hb;
    p->ppb = bm / hb;
}

// launch(H) with H the head dim hd as a constant: the five both paths are instantiated for (attn_hd_ok)
#define ATT_HD_DISPATCH(hd, launch)                                                                                \
    switch (hd) {                                                                                                  \
    case 64: launch(64); break;                                                                                    \
    case 72: launch(72); break;                                                                                    \
    case 80: launch(80); break;                                                                                    \
    case 96: launch(96); break;                                                                                    \
    default: launch(128); break;                                                                                   \
    }

// The paths' launchers (hd already validated).
void attn_fma_forward(attn_params p, int hd, cudaStream_t stream);
void attn_fma_backward(attn_params p, int hd, cudaStream_t stream);
void attn_tc_forward(attn_params p, int hd, cudaStream_t stream);
void attn_tc_backward(attn_params p, int hd, cudaStream_t stream);

#endif
