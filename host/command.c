/* command.c — see command.h. */
#include "host/command.h"

#include <stdio.h>

#include "host/device.h"
#include "host/error.h"
#include "host/threads.h"

int sc_command_parse(sc_command *c, int argc, char **argv) {
    c->npos = c->use_cuda = c->nthreads = c->status = 0;
    int rc = sc_args_parse(c->cli, argc, argv, &c->npos);
    if (!rc && c->ranges) rc = sc_args_check_ranges(c->cli, c->ranges, c->nranges);
    c->status = rc == 1 ? 0 : 2; /* --help printed, or a usage error */
    return rc != 0;
}

int sc_command_setup(sc_command *c) {
    if (c->device) {
        c->use_cuda = device_resolve(device_names[c->device->value], c->auto_prefers_cuda);
        if (c->use_cuda < 0) {
            c->use_cuda = 0;
            c->status = sc_command_fail(c);
            return 1;
        }
    }
    if (c->threads) c->nthreads = sc_set_threads(*c->threads);
    return 0;
}

int sc_command_fail(const sc_command *c) {
    fprintf(stderr, "%s: %s\n", c->cli->command, sc_error());
    return 1;
}
