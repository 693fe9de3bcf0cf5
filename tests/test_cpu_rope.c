/* test_cpu_rope.c — rope_forward against a double rotate-half loop (pos0 != 0), against cos/sin values produced
 * by PyTorch's float32 HF formula at positions 4095 and 1000 (hd 72, theta 1e4), rope_backward against finite
 * differences of L = sum(out * R), and backward(forward(x)) == x. */
#include "host/cpu/ops.h"
#include "tests/testutil.h"

/* /usr/bin/python3, torch 1.13, transformers' LlamaRotaryEmbedding math:
 *   inv_freq = 1.0 / (10000.0 ** (torch.arange(0, 72, 2, dtype=torch.int64).float() / 72))
 *   freqs = inv_freq[None, :, None].float() @ torch.tensor([[4095., 1000.]])[:, None, :]; freqs.cos(), freqs.sin()
 * printed with %.9g. torch's float pow is not correctly rounded: its inv_freq[15] is 1 ulp above glibc's powf, which
 * moves that angle by ~1e-5 at position 4095, so the bound is 1e-5. An angle computed exactly in double (not
 * rounded like HF's float32 product) is off by up to 3e-4 and fails. */
static const float TORCH_COS[2][36] = {
    {-0.0659759939f, -0.73652637f, -0.263568193f, -0.997745752f, 0.168600976f, -0.589686751f, -0.854281187f,
     -0.207720399f, 0.451793522f, 0.459863335f, -0.971358299f, 0.902794361f, -0.00668823114f, -0.883193731f,
     0.661129653f, 0.966513515f, 0.692162812f, -0.868755102f, -0.994033098f, 0.958195746f, 0.834338069f,
     0.987582743f, -0.547606647f, 0.38850224f, -0.823995471f, 0.853730857f, 0.545098901f, -0.578907907f,
     -0.999579012f, -0.773339033f, -0.323981076f, 0.0989673585f, 0.418086857f, 0.635422468f, 0.775627732f,
     0.863367856f},
    {0.562379062f, 0.138470858f, -0.847252488f, 0.698993146f, 0.324970633f, -0.22307767f, -0.241929725f,
     -0.953656793f, -0.939486027f, 0.862318873f, -0.441563994f, -0.966860116f, -0.759661496f, -0.189030394f,
     -0.90099448f, -0.901834846f, -0.562787473f, 0.939671636f, -0.839071512f, 0.111115977f, 0.958716154f,
     -0.070740208f, -0.899478734f, -0.936236858f, -0.551063478f, -0.0971510336f, 0.275631428f, 0.540302336f,
     0.714936137f, 0.825626791f, 0.894198418f, 0.93611455f, 0.96153599f, 0.976881683f, 0.986119449f, 0.991671085f}};
static const float TORCH_SIN[2][36] = {
    {-0.997821212f, -0.676408827f, -0.964640796f, -0.0671069995f, 0.985684395f, 0.807632089f, 0.519811153f,
     -0.978188217f, 0.892122507f, 0.8879897f, 0.237619489f, 0.430072486f, 0.999977648f, 0.469008416f, 0.750271678f,
     0.256615847f, -0.721741438f, 0.49524197f, -0.109078795f, 0.286113411f, -0.55125314f, 0.157099545f,
     0.836735904f, -0.921447754f, 0.566596329f, 0.520714521f, -0.838371754f, -0.815392911f, -0.029012749f,
     0.633992672f, 0.946063578f, 0.995090663f, 0.908407032f, 0.772164643f, 0.631190658f, 0.504575014f},
    {0.826879561f, 0.990366518f, 0.531190395f, -0.715128362f, 0.94572413f, 0.974800706f, 0.97029376f,
     -0.300896615f, -0.342587292f, -0.506365657f, 0.897229731f, -0.255306661f, 0.650318682f, -0.981971264f,
     0.433830559f, 0.432080895f, -0.826601624f, 0.342077762f, -0.54402113f, 0.993807435f, -0.28436473f,
     -0.997494757f, -0.436964571f, 0.35136953f, 0.834463358f, 0.995269656f, 0.961263418f, 0.841470957f,
     0.699189782f, 0.564216614f, 0.447670907f, 0.35169521f, 0.274679095f, 0.213780612f, 0.166037589f,
     0.128796205f}};

enum { T = 7, NH = 3, HD = 6 };
static const int POS0 = 11;
static const float THETA = 10000.0f;

typedef struct {
    float *x, *R, *tmp;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    memcpy(c->tmp, c->x, sizeof(float) * T * NH * HD);
    rope_forward(c->tmp, T, NH, HD, POS0, THETA);
    return tu_dot(c->tmp, c->R, T * NH * HD);
}

/* The rotation of x[t, h] by exact double angles (pos0 + t) * theta^(-2i/hd). */
static void rope_naive(double *out, const float *x, int nt, int nh, int hd, int pos0, double theta) {
    int half = hd / 2;
    for (int t = 0; t < nt; t++)
        for (int h = 0; h < nh; h++) {
            const float *xr = x + ((int64_t)t * nh + h) * hd;
            double *o = out + ((int64_t)t * nh + h) * hd;
            for (int i = 0; i < half; i++) {
                double ang = (pos0 + t) * pow(theta, -2.0 * i / hd), c = cos(ang), s = sin(ang);
                o[i] = xr[i] * c - xr[i + half] * s;
                o[i + half] = xr[i + half] * c + xr[i] * s;
            }
        }
}

int main(void) {
    sc_rng rng;
    rng_seed(&rng, 77);
    enum { N = T * NH * HD };
    float *x = tu_randn(&rng, N, 1.0), *y = tu_copy(x, N);
    double *ref = TU_NEW(double, N);
    rope_naive(ref, x, T, NH, HD, POS0, THETA);
    rope_forward(y, T, NH, HD, POS0, THETA);
    tu_check("forward pos0=11 vs double rotate-half", tu_relerr(y, ref, N), 1e-6);

    /* hd 72, 2 heads, larger T: pairing for a realistic head size (angles up to ~300: float32 angle rounding
     * allows ~1e-5 relative difference from the exact double rotation) */
    enum { T2 = 300, H2 = 2, D2 = 72, N2 = T2 * H2 * D2 };
    float *x2 = tu_randn(&rng, N2, 1.0), *y2 = tu_copy(x2, N2);
    double *ref2 = TU_NEW(double, N2);
    rope_naive(ref2, x2, T2, H2, D2, 5, THETA);
    rope_forward(y2, T2, H2, D2, 5, THETA);
    tu_check("forward T=300 hd=72 pos0=5 vs double rotate-half", tu_relerr(y2, ref2, N2), 3e-5);

    /* PyTorch float32 cos/sin: rotate e_i (x1 = 1, x2 = 0) -> out[i] = cos, out[i + half] = sin. One row per
     * position with pos0 = 4095 and pos0 = 1000. */
    double worst = 0;
    const int pos[2] = {4095, 1000};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 36; i++) {
            float e[72] = {0};
            e[i] = 1.0f;
            rope_forward(e, 1, 1, 72, pos[p], THETA);
            worst = fmax(worst, fabs(e[i] - TORCH_COS[p][i]));
            worst = fmax(worst, fabs(e[i + 36] - TORCH_SIN[p][i]));
        }
    tu_check("cos/sin at positions 4095, 1000 vs PyTorch float32 (max abs)", worst, 1e-5);

    /* backward = inverse rotation */
    float *back = tu_copy(y, N);
    rope_backward(back, T, NH, HD, POS0, THETA);
    tu_check("backward(forward(x)) == x", tu_maxabs_diff(back, x, N), 1e-6);

    rope_ctx c = {x, tu_randn(&rng, N, 1.0), TU_NEW(float, N)};
    float *d = tu_copy(c.R, N);
    rope_backward(d, T, NH, HD, POS0, THETA);
    double *g = TU_NEW(double, N);
    tu_fd_grad(g, c.x, N, 1e-3f, rope_loss, &c);
    tu_check("backward vs finite differences", tu_relerr(d, g, N), 1e-3);
    free(x), free(y), free(ref), free(x2), free(y2), free(ref2), free(back), free(c.R), free(c.tmp), free(d), free(g);
    return tu_finish("test_cpu_rope");
}
