/* fuzz_config.c — config.json (host/config.c config_load): any bytes must give a valid config or one error. */
#include "fuzz/fuzz_common.h"
#include "host/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("config.json");
    fuzz_write(path, data, size);
    sc_config c;
    if (config_load(&c, path) == 0) {
        /* a loaded config must be one the size arithmetic downstream can take */
        if (config_validate(&c, path) != 0) abort();
        (void)config_param_count(&c);
    }
    return 0;
}
