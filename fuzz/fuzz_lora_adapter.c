/* fuzz_lora_adapter.c — PEFT LoRA adapter directories (host/lora.c lora_load: adapter_config.json read with cJSON,
 * adapter_model.safetensors with F32/F16/BF16 lora_A/lora_B tensors), checked against the base scripts/fuzz makes
 * its seeds with: the tiny preset cut to 1 layer (`init --preset tiny --layers 1`, whose adapter `lora init` writes).
 * Input: a 4-byte little-endian length L, L bytes of adapter_config.json, the rest adapter_model.safetensors. An
 * adapter that loads has every A and B element read (a sum), so a tensor shorter than its header says shows up. */
#include "fuzz/fuzz_common.h"
#include "host/config.h"
#include "host/error.h"
#include "host/lora.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    uint32_t L = fuzz_le32(data);
    if (L > size - 4) return 0;
    static sc_config base;
    static int ready;
    if (!ready) {
        if (config_preset(&base, "tiny")) abort();
        base.num_hidden_layers = 1;
        ready = 1;
    }
    char cfg[1100], st[1100];
    snprintf(cfg, sizeof cfg, "%s", fuzz_path("adapter_config.json"));
    snprintf(st, sizeof st, "%s", fuzz_path("adapter_model.safetensors"));
    fuzz_write(cfg, data + 4, L);
    fuzz_write(st, data + 4 + L, size - 4 - L);
    sc_lora ad;
    if (lora_load(&ad, fuzz_dir(), &base, NULL) != 0) return 0;
    volatile float sum = 0.0f;
    for (int64_t i = 0; i < ad.nparams; i++) sum += ad.params[i];
    (void)sum;
    lora_free(&ad);
    return 0;
}
