/* test_cpu_embedding.c — embedding_forward is an exact copy of table rows; embedding_backward accumulates into
 * the table in token order (bit-exact against an in-order loop, repeated ids included, C > one column block) and
 * matches central finite differences of L = sum(out * R). */
#include "host/cpu/ops.h"
#include "tests/testutil.h"

enum { V = 10, C = 70, T = 9 };

typedef struct {
    float *table, *R, *out;
    const int32_t *ids;
} emb_ctx;

static double emb_loss(void *p) {
    emb_ctx *c = p;
    embedding_forward(c->out, c->ids, c->table, T, C);
    return tu_dot(c->out, c->R, T * C);
}

int main(void) {
    sc_rng rng;
    rng_seed(&rng, 99);
    const int32_t ids[T] = {3, 0, 9, 3, 3, 7, 0, 1, 9};
    emb_ctx c = {tu_randn(&rng, V * C, 1.0), tu_randn(&rng, T * C, 1.0), tu_randn(&rng, T * C, 1.0), ids};

    embedding_forward(c.out, ids, c.table, T, C);
    double maxd = 0;
    for (int t = 0; t < T; t++) maxd = fmax(maxd, tu_maxabs_diff(c.out + t * C, c.table + ids[t] * C, C));
    tu_check("forward copies table rows exactly", maxd, 0.0);

    float *d0 = tu_randn(&rng, V * C, 1.0), *dt = tu_copy(d0, V * C), *ref = tu_copy(d0, V * C);
    embedding_backward(dt, c.R, ids, T, C);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < C; k++) ref[ids[t] * C + k] += c.R[t * C + k];
    tu_check("backward equals in-order accumulation bit for bit", tu_maxabs_diff(dt, ref, V * C), 0.0);

    double *g = TU_NEW(double, V * C);
    tu_fd_grad(g, c.table, V * C, 1e-3f, emb_loss, &c);
    float *dd = tu_sub(dt, d0, V * C);
    tu_check("backward dtable (accumulated) vs finite differences", tu_relerr(dd, g, V * C), 1e-3);
    free(c.table), free(c.R), free(c.out), free(d0), free(dt), free(ref), free(g), free(dd);
    return tu_finish("test_cpu_embedding");
}
