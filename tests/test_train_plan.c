/* test_train_plan.c — the memory planner: the 304m model at seq 4096, micro-batch 1 fits DESIGN.md's 2 GiB
 * card in the offload placement (under 1.6 GiB), sizes add up, scale with seq and not with the micro-batch, and the
 * over-budget advice names what to lower. */
#include <string.h>

#include "tests/check.h"
#include "host/config.h"
#include "train/plan.h"

#define GiB (1024.0 * 1024.0 * 1024.0)
#define MiB (1024.0 * 1024.0)

static const plan_item *item(const train_plan *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0) return &p->items[i];
    return NULL;
}

static void test_304m(void) {
    sc_config c;
    CHECK(config_preset(&c, "304m") == 0);
    train_plan off, full, cpu;
    plan_cuda(&off, &c, 4096, 1, PLAN_OFFLOAD, 1);
    plan_cuda(&full, &c, 4096, 1, PLAN_FULL, 1);
    plan_cpu(&cpu, &c, 4096, 1, 2);
    plan_print(stdout, &off, (int64_t)(1.75 * GiB));
    CHECK(off.nparams == config_param_count(&c));
    CHECK(off.nparams == 304539264);
    CHECK(off.device_bytes < 1.6 * GiB);        /* the goal */
    CHECK(off.device_bytes > 0.9 * GiB);        /* and not an empty plan */
    CHECK(item(&off, "weights")->bytes == 2 * off.nparams);
    /* FP32 gradients of the embedding (+ final norm) and two layer slots; every layer's input kept */
    int64_t grads = item(&off, "embedding grads")->bytes + item(&off, "layer grads")->bytes;
    CHECK(grads == (32768ll * 1152 + 1152) * 4 + 2 * 14821632ll * 4);
    int64_t ckpt = item(&off, "activation checkpoints")->bytes;
    CHECK(ckpt == 18ll * 4096 * 1152 * 2);
    CHECK(item(&off, "classifier")->bytes < 20 * MiB); /* never T x V */
    /* the host holds FP32 master + m + v (3.65 GB) and the FP32 accumulators */
    CHECK(item(&off, "master weights, AdamW m, v")->bytes == 12 * off.nparams);
    CHECK(off.host_bytes > 4.8e9 && off.host_bytes < 5.2e9);
    /* full keeps master, grads, m, v (16 bytes/param) and every activation on the device */
    CHECK(full.device_bytes > off.device_bytes + 14 * off.nparams);
    int64_t sum = 0;
    for (int i = 0; i < full.n; i++) sum += full.items[i].where == PLAN_DEVICE ? full.items[i].bytes : 0;
    CHECK(sum == full.device_bytes);
    CHECK(cpu.device_bytes == 0 && cpu.host_bytes > 16 * cpu.nparams);
    /* FP32 storage doubles the working weights */
    train_plan off32;
    plan_cuda(&off32, &c, 4096, 1, PLAN_OFFLOAD, 0);
    CHECK(item(&off32, "weights")->bytes == 4 * off.nparams);
}

static void test_scaling(void) {
    sc_config c;
    config_preset(&c, "small");
    train_plan a, b, m2;
    plan_cuda(&a, &c, 512, 1, PLAN_OFFLOAD, 1);
    plan_cuda(&b, &c, 1024, 1, PLAN_OFFLOAD, 1);
    plan_cuda(&m2, &c, 512, 2, PLAN_OFFLOAD, 1);
    CHECK(b.device_bytes > a.device_bytes);
    /* activations depend on seq only: the sequences of a micro-batch run one after another */
    CHECK(m2.device_bytes == a.device_bytes);
    CHECK(item(&b, "activation checkpoints")->bytes == 2 * item(&a, "activation checkpoints")->bytes);
    CHECK(item(&b, "weights")->bytes == item(&a, "weights")->bytes);
}

static void test_advice(void) {
    sc_config c;
    config_preset(&c, "304m");
    train_plan full;
    plan_cuda(&full, &c, 4096, 2, PLAN_FULL, 0);
    char buf[1024];
    int64_t budget = (int64_t)(1.75 * GiB);
    CHECK(full.device_bytes > budget);
    plan_advice(buf, sizeof buf, &c, &full, budget);
    printf("advice: %s\n", buf);
    CHECK(strstr(buf, "--placement offload") != NULL);
    CHECK(strstr(buf, "--precision fp16") != NULL);
    CHECK(strstr(buf, "(fits)") != NULL);
    /* a budget below the weights themselves: a smaller model is the only way */
    train_plan off;
    plan_cuda(&off, &c, 4096, 1, PLAN_OFFLOAD, 1);
    plan_advice(buf, sizeof buf, &c, &off, (int64_t)(512 * MiB));
    CHECK(strstr(buf, "smaller model") != NULL);
    char b[32];
    CHECK(strcmp(plan_fmt_bytes(b, sizeof b, (int64_t)(1.5 * GiB)), "1.50 GiB") == 0);
    CHECK(strcmp(plan_fmt_bytes(b, sizeof b, 3 * 1048576), "3.0 MiB") == 0);
}

int main(void) {
    test_304m();
    test_scaling();
    test_advice();
    return check_result("test_train_plan");
}
