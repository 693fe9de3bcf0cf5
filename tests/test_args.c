/* test_args.c — choice options (SC_ARG_ENUM) are parsed once to their index, a bad value is a usage error (2) with
 * the one wording sc_enum_index gives ("--device must be cpu, cuda or auto, got 'gpu'"), device_resolve uses the
 * same; and the one monotonic clock does not go backwards. */
#include <stdio.h>
#include <string.h>

#include "host/args.h"
#include "host/clock.h"
#include "host/device.h"
#include "host/error.h"
#include "host/kv_cache.h"
#include "tests/check.h"

static int parse(sc_enum *device, int argc, char **argv) {
    sc_arg args[] = {{"device", 0, SC_ARG_ENUM, device, "where to run", 0}};
    sc_cli cli = {"smallcoder test", "[--device D]", "test", args, 1, 0, 0};
    int npos;
    return sc_args_parse(&cli, argc, argv, &npos);
}

int main(void) {
    sc_enum device = {DEVICE_AUTO, device_names};
    char *ok[] = {"test", "--device", "cuda"}, *eq[] = {"test", "--device=cpu"}, *bad[] = {"test", "--device", "gpu"};
    CHECK(parse(&device, 3, ok) == 0 && device.value == DEVICE_CUDA);
    CHECK(parse(&device, 2, eq) == 0 && device.value == DEVICE_CPU);
    CHECK(parse(&device, 3, bad) == 2 && device.value == DEVICE_CPU); /* refused, value untouched */
    CHECK(strcmp(sc_error(), "--device must be cpu, cuda or auto, got 'gpu'") == 0);
    static const char *const two[] = {"f16", "f32", NULL};
    CHECK(sc_enum_index("kv", two, "f32") == 1);
    CHECK(sc_enum_index("kv", two, "f8") == -1 && strcmp(sc_error(), "--kv must be f16 or f32, got 'f8'") == 0);
    /* --kv's one table (host/kv_cache.h): the enum values index their names */
    CHECK(!strcmp(kv_type_names[SC_KV_F16], "f16") && !strcmp(kv_type_names[SC_KV_F32], "f32"));
    for (int t = 0; t < SC_KV_NTYPES; t++) CHECK(sc_enum_index("kv", kv_type_names, kv_type_names[t]) == t);
    CHECK(kv_type_names[SC_KV_NTYPES] == NULL);
    CHECK(device_resolve("gpu", 1) == -1 && strcmp(sc_error(), "--device must be cpu, cuda or auto, got 'gpu'") == 0);
    CHECK(device_resolve("cpu", 1) == 0);
    double t0 = clock_now(), t1 = clock_now();
    CHECK(t1 >= t0 && t0 > 0);
    return check_result("test_args");
}
