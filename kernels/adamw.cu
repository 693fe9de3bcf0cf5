// adamw.cu — the AdamW update of train/adamw.c (PyTorch's torch.optim.AdamW) on the device, for the placement
// where weights, gradients and both moments fit on the GPU. Elementwise, FP32; the bias corrections are computed
// on the host in double exactly as adamw_update does. Optionally writes the FP16 copy the forward reads.
#include <math.h>

#include "kernels/common.cuh"

__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, __half *p16, int64_t n, float grad_mul,
                             float decay, float b1, float b2, float c1, float c2, float step_size, float inv_sqrt_bc2,
                             float eps) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float gi = g[i] * grad_mul;
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) * inv_sqrt_bc2 + eps;
        float pi = p[i] * decay - step_size * mi / denom;
        p[i] = pi;
        if (p16) p16[i] = f2h(pi);
    }
}

extern "C" void kn_adamw_update(float *p, const float *g, float *m, float *v, kn_half *p16, int64_t n, float grad_mul,
                                float wd, float lr, float beta1, float beta2, float eps, int64_t t,
                                cudaStream_t stream) {
    if (n <= 0) return;
    const double bc1 = 1.0 - pow((double)beta1, (double)t), bc2 = 1.0 - pow((double)beta2, (double)t);
    const float step_size = (float)((double)lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    const float decay = 1.0f - lr * wd, c1 = 1.0f - beta1, c2 = 1.0f - beta2;
    adamw_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>(p, g, m, v, (__half *)p16, n, grad_mul, decay, beta1, beta2,
                                                       c1, c2, step_size, inv_sqrt_bc2, eps);
    KN_CHECK_LAUNCH();
}
