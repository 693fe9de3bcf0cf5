/* test_command.c — the commands' shared start (host/command.h): the exit status of --help, of a usage error and of
 * an out-of-range value; positionals counted; --device resolved and threads set only in sc_command_setup; a
 * device that cannot be had stops with status 1. */
#include <stdio.h>
#include <string.h>

#include "host/command.h"
#include "host/device.h"
#include "host/error.h"
#include "tests/check.h"

static sc_enum device = {DEVICE_AUTO, device_names};
static int threads;
static const char *name;
static const sc_arg args[] = {{"device", 0, SC_ARG_ENUM, &device, "where to run", 0},
                              {"threads", 't', SC_ARG_INT, &threads, "CPU threads", 0},
                              {"name", 0, SC_ARG_STR, &name, "a name", 0}};
static const sc_cli cli = {"smallcoder test", "[options] FILE...", "test", args, 3, 0, -1};

/* 0 to go on; 10 + status when sc_command_parse stopped, 20 + status when sc_command_setup did */
static int start(sc_command *c, int argc, char **argv) {
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS};
    *c = (sc_command){.cli = &cli, SC_COMMAND_RANGES(ranges), .device = &device, .threads = &threads};
    if (sc_command_parse(c, argc, argv)) return 10 + c->status;
    return sc_command_setup(c) ? 20 + c->status : 0;
}

int main(void) {
    sc_command c;
    char *help[] = {"test", "--help"}, *bad[] = {"test", "--device", "gpu"}, *range[] = {"test", "-t", "5000"},
         *unknown[] = {"test", "--nope"};
    CHECK(start(&c, 2, help) == 10);
    CHECK(start(&c, 3, bad) == 12 && strstr(sc_error(), "--device must be cpu, cuda or auto"));
    CHECK(start(&c, 3, range) == 12);
    CHECK(start(&c, 2, unknown) == 12);

    char *ok[] = {"test", "a.c", "--device", "cpu", "-t", "3", "b.c"};
    CHECK(start(&c, 7, ok) == 0);
    CHECK(c.npos == 2 && !strcmp(ok[0], "a.c") && !strcmp(ok[1], "b.c"));
    CHECK(c.use_cuda == 0 && c.nthreads == 3);

    /* without a device pointer nothing is resolved; without threads nothing is set */
    device.value = DEVICE_CUDA;
    c.device = NULL, c.threads = NULL, c.nthreads = -7;
    CHECK(sc_command_setup(&c) == 0 && c.use_cuda == 0 && c.nthreads == -7);

    /* --device cuda: this machine's answer, one way or the other */
    char *cuda[] = {"test", "--device", "cuda"};
    int rc = start(&c, 3, cuda);
    if (device_count() > 0) CHECK(rc == 0 && c.use_cuda == 1);
    else CHECK(rc == 21 && c.use_cuda == 0 && strstr(sc_error(), "--device cuda"));
    return check_result("test_command");
}
